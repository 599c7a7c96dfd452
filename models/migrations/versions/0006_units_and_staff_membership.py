"""units and staff membership

The organisation model's data: units (a department in a division, or an institution such as
a hospital) and the unit an officer or clerk belongs to, or the division a supervisor
oversees. Existing accounts keep their department (``unit``) and get neither. Each task row
records the unit its step was routed to; rows from before routing have none.

Revision ID: 0006
Revises: 0005
Create Date: 2026-12-03 06:00:50.593308
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

from models.tables import UTCDateTime

revision: str = "0006"
down_revision: str | Sequence[str] | None = "0005"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "units",
        sa.Column("code", sa.String(length=64), nullable=False),
        sa.Column("department", sa.String(length=64), nullable=False),
        sa.Column("division_code", sa.String(length=6), nullable=False),
        sa.Column("kind", sa.String(length=16), nullable=False),
        sa.Column("name_zh", sa.String(length=128), nullable=False),
        sa.Column("window_zh", sa.String(length=128), nullable=True),
        sa.Column("active", sa.Boolean(), nullable=False),
        sa.Column("created_at", UTCDateTime(), nullable=False),
        sa.PrimaryKeyConstraint("code"),
    )
    with op.batch_alter_table("units", schema=None) as batch_op:
        batch_op.create_index("ix_units_department_division", ["department", "division_code"], unique=False)

    with op.batch_alter_table("user_accounts", schema=None) as batch_op:
        batch_op.add_column(sa.Column("unit_code", sa.String(length=64), nullable=True))
        batch_op.add_column(sa.Column("division_code", sa.String(length=6), nullable=True))
        batch_op.create_index(batch_op.f("ix_user_accounts_unit_code"), ["unit_code"], unique=False)
        batch_op.create_foreign_key("fk_user_accounts_unit_code_units", "units", ["unit_code"], ["code"])

    with op.batch_alter_table("tasks", schema=None) as batch_op:
        batch_op.add_column(sa.Column("unit_code", sa.String(length=64), nullable=True))
        batch_op.create_index("ix_tasks_unit_status_due", ["unit_code", "status", "due_at"], unique=False)

    with op.batch_alter_table("cases", schema=None) as batch_op:
        batch_op.add_column(sa.Column("accepting_unit_code", sa.String(length=64), nullable=True))
        batch_op.create_index(batch_op.f("ix_cases_accepting_unit_code"), ["accepting_unit_code"], unique=False)


def downgrade() -> None:
    with op.batch_alter_table("cases", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_cases_accepting_unit_code"))
        batch_op.drop_column("accepting_unit_code")

    with op.batch_alter_table("tasks", schema=None) as batch_op:
        batch_op.drop_index("ix_tasks_unit_status_due")
        batch_op.drop_column("unit_code")

    with op.batch_alter_table("user_accounts", schema=None) as batch_op:
        batch_op.drop_constraint("fk_user_accounts_unit_code_units", type_="foreignkey")
        batch_op.drop_index(batch_op.f("ix_user_accounts_unit_code"))
        batch_op.drop_column("division_code")
        batch_op.drop_column("unit_code")

    with op.batch_alter_table("units", schema=None) as batch_op:
        batch_op.drop_index("ix_units_department_division")

    op.drop_table("units")

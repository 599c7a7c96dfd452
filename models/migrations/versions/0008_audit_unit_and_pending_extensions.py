"""audit log unit code, pending extensions

Each staff action's audit row names the staff member's unit (units.code) beside the
department: for a task action, the unit the task was routed to. Rows written before it have
none. Adding a column is not an UPDATE, so the append-only triggers of 0002 stay as they are.
A task row carries the working days of a pending extension request (延期申请), so supervisors
list the requests awaiting their decision.

Revision ID: 0008
Revises: 0007
Create Date: 2026-12-03 10:00:00.000000
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0008"
down_revision: str | Sequence[str] | None = "0007"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    # A plain ADD COLUMN on SQLite and PostgreSQL alike: the table (and its triggers) stays.
    op.add_column("audit_log", sa.Column("unit_code", sa.String(length=64), nullable=True))
    op.create_index("ix_audit_log_unit_code", "audit_log", ["unit_code"], unique=False)
    op.add_column("tasks", sa.Column("extension_days", sa.Integer(), nullable=True))
    op.create_index("ix_tasks_extension_days", "tasks", ["extension_days"], unique=False)


def downgrade() -> None:
    op.drop_index("ix_tasks_extension_days", table_name="tasks")
    with op.batch_alter_table("tasks") as batch:
        batch.drop_column("extension_days")
    op.drop_index("ix_audit_log_unit_code", table_name="audit_log")
    # SQLite drops a column by copying the table, which would lose the append-only triggers.
    with op.batch_alter_table("audit_log", recreate="never") as batch:
        batch.drop_column("unit_code")

"""verified identity on applicant accounts, the applicant's key on cases

An applicant account carries the person it was verified as: the name, the ID number masked
for display, a keyed hash of the number (``person_key``) to find the person's walk-in cases
by, and a phone. The full number is not kept on the account. A case row carries the same
keyed hash of its applicant's number, so a walk-in case is found for its person at sign-in.

Revision ID: 0009
Revises: 0008
Create Date: 2026-12-03 13:30:00.000000
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0009"
down_revision: str | Sequence[str] | None = "0008"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.add_column("user_accounts", sa.Column("person_name", sa.String(length=64), nullable=True))
    op.add_column("user_accounts", sa.Column("id_number_masked", sa.String(length=18), nullable=True))
    op.add_column("user_accounts", sa.Column("person_key", sa.String(length=64), nullable=True))
    op.add_column("user_accounts", sa.Column("phone", sa.String(length=20), nullable=True))
    op.create_index("ix_user_accounts_person_key", "user_accounts", ["person_key"], unique=False)
    op.add_column("cases", sa.Column("applicant_key", sa.String(length=64), nullable=True))
    op.create_index("ix_cases_applicant_key", "cases", ["applicant_key"], unique=False)


def downgrade() -> None:
    op.drop_index("ix_cases_applicant_key", table_name="cases")
    with op.batch_alter_table("cases") as batch:
        batch.drop_column("applicant_key")
    op.drop_index("ix_user_accounts_person_key", table_name="user_accounts")
    with op.batch_alter_table("user_accounts") as batch:
        for column in ("phone", "person_key", "id_number_masked", "person_name"):
            batch.drop_column(column)

"""case numbers, subjects and the application

Readable case numbers and one case per subject (case_registrations, case_number_sequences,
infra/case_registry.py); the application and the applicant's name on the case row, for the
staff who work it and for search. Cases filed before keep none of these.

Revision ID: 0005
Revises: 0004
Create Date: 2026-12-03 00:47:57.559492
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

from models.tables import UTCDateTime

revision: str = "0005"
down_revision: str | Sequence[str] | None = "0004"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "case_number_sequences",
        sa.Column("prefix", sa.String(length=16), nullable=False),
        sa.Column("last_number", sa.Integer(), nullable=False),
        sa.PrimaryKeyConstraint("prefix"),
    )
    op.create_table(
        "case_registrations",
        sa.Column("case_id", sa.String(length=64), nullable=False),
        sa.Column("case_no", sa.String(length=32), nullable=False),
        sa.Column("thing", sa.String(length=64), nullable=False),
        sa.Column("subject_key", sa.String(length=64), nullable=True),
        sa.Column("registered_at", UTCDateTime(), nullable=False),
        sa.PrimaryKeyConstraint("case_id"),
        sa.UniqueConstraint("case_no"),
        sa.UniqueConstraint("thing", "subject_key", name="uq_case_registrations_subject"),
    )
    with op.batch_alter_table("cases", schema=None) as batch_op:
        batch_op.add_column(sa.Column("case_no", sa.String(length=32), nullable=True))
        batch_op.add_column(sa.Column("applicant_name", sa.String(length=64), nullable=True))
        batch_op.add_column(sa.Column("form", sa.JSON(), nullable=True))
        batch_op.create_index(batch_op.f("ix_cases_applicant_name"), ["applicant_name"], unique=False)
        batch_op.create_index(batch_op.f("ix_cases_case_no"), ["case_no"], unique=True)


def downgrade() -> None:
    with op.batch_alter_table("cases", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_cases_case_no"))
        batch_op.drop_index(batch_op.f("ix_cases_applicant_name"))
        batch_op.drop_column("form")
        batch_op.drop_column("applicant_name")
        batch_op.drop_column("case_no")

    op.drop_table("case_registrations")
    op.drop_table("case_number_sequences")

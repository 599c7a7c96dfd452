"""electronic licences (电子证照)

Each licence a step issued: its number, case and step, title and issuer, when, its status,
the canonical content and the platform's Ed25519 signature of it.

Revision ID: 0012
Revises: 0011
Create Date: 2026-12-03 14:00:00.000000
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

from models.tables import UTCDateTime

revision: str = "0012"
down_revision: str | Sequence[str] | None = "0011"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "licences",
        sa.Column("number", sa.String(length=32), nullable=False),
        sa.Column("case_id", sa.String(length=64), nullable=False),
        sa.Column("thing", sa.String(length=64), nullable=False),
        sa.Column("step", sa.String(length=64), nullable=False),
        sa.Column("title_zh", sa.String(length=64), nullable=False),
        sa.Column("issuer_zh", sa.String(length=128), nullable=False),
        sa.Column("issued_at", UTCDateTime(), nullable=False),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("content", sa.JSON(), nullable=False),
        sa.Column("signature", sa.String(length=128), nullable=False),
        sa.PrimaryKeyConstraint("number"),
    )
    op.create_index("ix_licences_case_id", "licences", ["case_id"], unique=False)


def downgrade() -> None:
    op.drop_index("ix_licences_case_id", table_name="licences")
    op.drop_table("licences")

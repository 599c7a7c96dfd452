"""disabled accounts (停用账号)

Removing an account disables it (``disabled_at``) instead of deleting the row: its username is
never free for another person, who would otherwise take over the removed account's cases,
audit trail and sign-in name.

Revision ID: 0016
Revises: 0015
Create Date: 2026-12-03 18:00:00.000000
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

from models.tables import UTCDateTime

revision: str = "0016"
down_revision: str | Sequence[str] | None = "0015"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.add_column("user_accounts", sa.Column("disabled_at", UTCDateTime(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("user_accounts") as batch:
        batch.drop_column("disabled_at")

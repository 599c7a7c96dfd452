"""sign-in sessions (登录会话)

Every access token names a session (its ``sid`` claim) and is honoured only while the
session is live: logout, a new password, a change of role or unit, the account's removal
or an admin's revoke end it (``ended_at``, ``end_reason``). Tokens issued before this
revision carry no session and are refused: everyone signs in again.

Revision ID: 0015
Revises: 0014
Create Date: 2026-12-05 09:00:00.000000
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

from models.tables import UTCDateTime

revision: str = "0015"
down_revision: str | Sequence[str] | None = "0014"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "auth_sessions",
        sa.Column("session_id", sa.String(length=32), nullable=False),
        sa.Column("username", sa.String(length=64), nullable=False),
        sa.Column("created_at", UTCDateTime(), nullable=False),
        sa.Column("expires_at", UTCDateTime(), nullable=False),
        sa.Column("ended_at", UTCDateTime(), nullable=True),
        sa.Column("end_reason", sa.String(length=32), nullable=True),
        sa.PrimaryKeyConstraint("session_id"),
    )
    with op.batch_alter_table("auth_sessions") as batch:
        batch.create_index(batch.f("ix_auth_sessions_username"), ["username"], unique=False)


def downgrade() -> None:
    with op.batch_alter_table("auth_sessions") as batch:
        batch.drop_index(batch.f("ix_auth_sessions_username"))
    op.drop_table("auth_sessions")

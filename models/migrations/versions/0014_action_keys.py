"""idempotency keys of actions, bound to their request

Each Idempotency-Key sent with an action (a workflow Update: claim, complete, 补正, 撤回,
督办 …) is bound to its user, action, target and body: ``scope`` is the SHA-256 of
(user, action, target, key), ``fingerprint`` the SHA-256 of the request's body. The same
key with another body, or by another user, is no longer taken for a retry.

Revision ID: 0014
Revises: 0013
Create Date: 2026-12-04 10:00:00.000000
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

from models.tables import UTCDateTime

revision: str = "0014"
down_revision: str | Sequence[str] | None = "0013"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "action_keys",
        sa.Column("scope", sa.String(length=64), nullable=False),
        sa.Column("fingerprint", sa.String(length=64), nullable=False),
        sa.Column("created_at", UTCDateTime(), nullable=False),
        sa.PrimaryKeyConstraint("scope"),
    )


def downgrade() -> None:
    op.drop_table("action_keys")

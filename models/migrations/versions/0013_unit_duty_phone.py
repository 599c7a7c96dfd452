"""a unit's duty phone (值班手机)

A unit may have a duty mobile phone: a 督办 of a step routed to the unit is texted there
through the SMS outbox. None: the unit is not texted.

Revision ID: 0013
Revises: 0012
Create Date: 2026-12-03 14:30:00.000000
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0013"
down_revision: str | Sequence[str] | None = "0012"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.add_column("units", sa.Column("duty_phone", sa.String(length=20), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("units") as batch:
        batch.drop_column("duty_phone")

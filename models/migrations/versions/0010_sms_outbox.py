"""sms outbox and the dev sms sink

Notices to applicants reach their phones: each is queued in ``sms_outbox`` in the
transaction that writes its notification, and NoticeDeliveryWorkflow sends the due rows,
retrying with backoff; a row is marked sent or, after many attempts, failed (never deleted).
``dev_sms_messages`` is what the API's dev-only sink (POST /dev/sms) received.

Revision ID: 0010
Revises: 0009
Create Date: 2026-12-03 14:00:00.000000
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

from models.tables import UTCDateTime

revision: str = "0010"
down_revision: str | Sequence[str] | None = "0009"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "sms_outbox",
        sa.Column("id", sa.String(length=200), nullable=False),
        sa.Column("case_id", sa.String(length=64), nullable=False),
        sa.Column("phone", sa.String(length=20), nullable=False),
        sa.Column("text", sa.String(), nullable=False),
        sa.Column("kind", sa.String(length=64), nullable=False),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("attempts", sa.Integer(), nullable=False),
        sa.Column("last_error", sa.String(length=500), nullable=True),
        sa.Column("next_attempt_at", UTCDateTime(), nullable=False),
        sa.Column("created_at", UTCDateTime(), nullable=False),
        sa.Column("sent_at", UTCDateTime(), nullable=True),
        sa.PrimaryKeyConstraint("id"),
    )
    with op.batch_alter_table("sms_outbox", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_sms_outbox_case_id"), ["case_id"], unique=False)
        batch_op.create_index("ix_sms_outbox_status_next_attempt", ["status", "next_attempt_at"], unique=False)

    op.create_table(
        "dev_sms_messages",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("phone", sa.String(length=20), nullable=False),
        sa.Column("text", sa.String(), nullable=False),
        sa.Column("at", UTCDateTime(), nullable=False),
        sa.PrimaryKeyConstraint("id"),
    )
    with op.batch_alter_table("dev_sms_messages", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_dev_sms_messages_at"), ["at"], unique=False)
        batch_op.create_index("ix_dev_sms_messages_phone_at", ["phone", "at"], unique=False)


def downgrade() -> None:
    with op.batch_alter_table("dev_sms_messages", schema=None) as batch_op:
        batch_op.drop_index("ix_dev_sms_messages_phone_at")
        batch_op.drop_index(batch_op.f("ix_dev_sms_messages_at"))
    op.drop_table("dev_sms_messages")

    with op.batch_alter_table("sms_outbox", schema=None) as batch_op:
        batch_op.drop_index("ix_sms_outbox_status_next_attempt")
        batch_op.drop_index(batch_op.f("ix_sms_outbox_case_id"))
    op.drop_table("sms_outbox")

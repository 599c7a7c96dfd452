"""Payloads of the SMS outbox's delivery (workflows/notice_delivery.py, activities/notice_delivery.py)."""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum

from pydantic import BaseModel, ConfigDict, Field


class NoticeActivityName(StrEnum):
    DELIVER_PENDING_SMS = "deliver_pending_sms"


class DeliverNoticesInput(BaseModel):
    model_config = ConfigDict(extra="forbid")

    batch_limit: int = Field(default=100, ge=1, le=1000)  # messages per round at most
    # A round stops taking new messages after this long, well inside a minute's schedule.
    time_budget_seconds: float = Field(default=40.0, gt=0, le=240)


class DeliverNoticesResult(BaseModel):
    model_config = ConfigDict(extra="forbid")

    sent: int = 0
    retrying: int = 0  # not taken this time; tried again after their backoff
    failed: int = 0  # given up on after the last attempt (the rows stay, status failed)
    ran_at: datetime | None = None  # workflow time of the round

"""The dev SMS sink: in dev the worker's SMS gateway posts here (settings.sms_gateway_url), and
a developer reads what a phone would have received. Included in the app in dev only."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Annotated

from fastapi import APIRouter, Query
from pydantic import BaseModel, ConfigDict, Field
from sqlalchemy import select
from sqlmodel import col

from api.deps import SessionDep
from api.errors import error_responses
from domain.forms import Phone
from models.tables import DevSmsMessage

router = APIRouter(prefix="/dev/sms", tags=["dev"], responses=error_responses(413, 422))

MAX_SMS_TEXT = 500  # several concatenated SMS parts; anything longer is not a text message


class SmsIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    phone: Phone
    text: str = Field(min_length=1, max_length=MAX_SMS_TEXT)


class SmsOut(BaseModel):
    phone: str
    text: str
    at: datetime


@router.post("", status_code=201, response_model=SmsOut)
def receive_sms(message: SmsIn, session: SessionDep) -> SmsOut:
    """What the SMS gateway would hand to the operator: kept for GET /dev/sms."""
    row = DevSmsMessage(phone=message.phone, text=message.text, at=datetime.now(UTC))
    session.add(row)
    session.commit()
    return SmsOut(phone=row.phone, text=row.text, at=row.at)


@router.get("", response_model=list[SmsOut])
def received_sms(
    session: SessionDep,
    phone: Annotated[Phone | None, Query()] = None,
    limit: Annotated[int, Query(ge=1, le=500)] = 100,
) -> list[SmsOut]:
    """The messages received, newest first: one phone's, or without ``phone`` everyone's."""
    query = select(DevSmsMessage).order_by(col(DevSmsMessage.at).desc(), col(DevSmsMessage.id).desc()).limit(limit)
    if phone is not None:
        query = query.where(col(DevSmsMessage.phone) == phone)
    return [SmsOut(phone=row.phone, text=row.text, at=row.at) for row in session.execute(query).scalars()]

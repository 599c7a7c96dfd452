"""The audit log for admins (审计日志查询): read-only, filtered and paginated, oldest first."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any

from fastapi import APIRouter, Query
from pydantic import BaseModel
from sqlalchemy import ColumnElement, func, select
from sqlmodel import col

from api.deps import ActorDep, SessionDep, require_role
from api.errors import error_responses
from api.schemas import IsoDateTime, OffsetQuery
from domain.workcalendar import SHANGHAI
from models.tables import AuditRecord, Unit
from services.audit import AUDIT_ACTION_ZH, AuditAction

router = APIRouter(prefix="/audit", tags=["audit"], responses=error_responses(401, 403, 422))


class AuditEntry(BaseModel):
    id: int
    at: datetime
    actor: str
    role: str
    unit: str | None
    unit_code: str | None = None
    unit_zh: str | None = None
    action: str
    action_zh: str
    case_id: str | None
    target: str | None
    detail: dict[str, Any]


class AuditList(BaseModel):
    items: list[AuditEntry]
    total: int
    limit: int
    offset: int


def _aware(moment: datetime) -> datetime:
    # A time without an offset is read as Beijing time, like every time a reader types.
    return moment if moment.tzinfo is not None else moment.replace(tzinfo=SHANGHAI)


@router.get("", response_model=AuditList)
def read_audit_log(
    actor: ActorDep,
    session: SessionDep,
    case_id: Annotated[str | None, Query(max_length=64)] = None,
    actor_name: Annotated[str | None, Query(alias="actor", max_length=64)] = None,
    unit_code: Annotated[str | None, Query(max_length=64, description="the staff member's unit (单位代码)")] = None,
    action: AuditAction | None = None,
    from_: Annotated[IsoDateTime | None, Query(alias="from", description="from this time on (ISO 8601)")] = None,
    to: Annotated[IsoDateTime | None, Query(description="before this time (ISO 8601)")] = None,
    limit: Annotated[int, Query(ge=1, le=200)] = 50,
    offset: OffsetQuery = 0,
) -> AuditList:
    """Staff actions by case, actor, action and time range (``from`` inclusive, ``to`` exclusive)."""
    require_role(actor, "admin")
    conditions: list[ColumnElement[bool]] = []
    if case_id:
        conditions.append(col(AuditRecord.case_id) == case_id)
    if actor_name:
        conditions.append(col(AuditRecord.actor) == actor_name)
    if unit_code:
        conditions.append(col(AuditRecord.unit_code) == unit_code)
    if action is not None:
        conditions.append(col(AuditRecord.action) == action.value)
    if from_ is not None:
        conditions.append(col(AuditRecord.at) >= _aware(from_))
    if to is not None:
        conditions.append(col(AuditRecord.at) < _aware(to))
    total = session.execute(select(func.count()).select_from(AuditRecord).where(*conditions)).scalar_one()
    rows = (
        session.execute(
            select(AuditRecord)
            .where(*conditions)
            .order_by(col(AuditRecord.at), col(AuditRecord.id))
            .limit(limit)
            .offset(offset)
        )
        .scalars()
        .all()
    )
    codes = {row.unit_code for row in rows if row.unit_code}
    names: dict[str, str] = dict(
        session.execute(select(col(Unit.code), col(Unit.name_zh)).where(col(Unit.code).in_(sorted(codes)))).all()
    )
    items = [
        AuditEntry(
            id=row.id or 0,
            at=row.at,
            actor=row.actor,
            role=row.role,
            unit=row.unit,
            unit_code=row.unit_code,
            unit_zh=names.get(row.unit_code) if row.unit_code else None,
            action=row.action,
            action_zh=AUDIT_ACTION_ZH[AuditAction(row.action)],
            case_id=row.case_id,
            target=row.target,
            detail=row.detail,
        )
        for row in rows
    ]
    return AuditList(items=items, total=int(total), limit=limit, offset=offset)

"""督办 notices for departments: an officer sees the notices about their unit's tasks and
acknowledges each with a reply; until then the supervisor sees it as unanswered."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Annotated, Any

from fastapi import APIRouter, Query, Request, Response
from pydantic import BaseModel, Field
from sqlalchemy import ColumnElement, Engine, exists, func, select
from sqlmodel import Session, col

from activities.read_model import bump_inbox_versions
from api.deps import ActorDep, EngineDep, SessionDep, require_role
from api.errors import error_responses
from api.exports import csv_response, wants_csv
from api.routes.supervision import NOTICE_COLUMNS, notice_rows
from api.schemas import NoticeId, OffsetQuery, also_as
from models.case import Actor
from models.errors import DomainError, ErrorCode
from models.tables import SupervisionNotice, TaskRecord
from services.access import in_unit_scope, task_unit_scope
from services.audit import AuditAction, record_staff_action

router = APIRouter(prefix="/notices", tags=["notices"], responses=error_responses(401, 403, 404, 409, 413, 422))


class AcknowledgeRequest(BaseModel):
    reply: str = Field(min_length=1, max_length=1000)


@router.get("", response_model=None, responses=also_as("text/csv"))
def department_notices(
    request: Request,
    actor: ActorDep,
    session: SessionDep,
    acknowledged: bool = False,
    limit: Annotated[int, Query(ge=1, le=500)] = 100,
    offset: OffsetQuery = 0,
) -> Response | dict[str, Any]:
    """The officer's department's notices, oldest first (unacknowledged by default)."""
    rows, total = department_notice_page(session, actor, acknowledged, limit, offset)
    if wants_csv(request):
        return csv_response(rows, NOTICE_COLUMNS, "notices")
    return {"items": rows, "total": total, "limit": limit, "offset": offset}


def _of_own_unit(actor: Actor) -> ColumnElement[bool]:
    """A notice about a task of the officer's unit (another county's police has notices of its own)."""
    return exists(
        select(col(TaskRecord.task_id)).where(
            col(TaskRecord.case_id) == col(SupervisionNotice.case_id),
            col(TaskRecord.step) == col(SupervisionNotice.step),
            task_unit_scope(actor),
        )
    )


def department_notice_page(
    session: Session, actor: Actor, acknowledged: bool, limit: int, offset: int
) -> tuple[list[dict[str, Any]], int]:
    """One page of the officer's department's notices and their total (the JSON list and the console's)."""
    require_role(actor, "officer")
    where: list[ColumnElement[bool]] = [
        col(SupervisionNotice.department) == actor.unit,
        _of_own_unit(actor),
        col(SupervisionNotice.acknowledged_at).is_not(None)
        if acknowledged
        else col(SupervisionNotice.acknowledged_at).is_(None),
    ]
    total = session.execute(select(func.count()).select_from(SupervisionNotice).where(*where)).scalar_one()
    rows = notice_rows(
        session.execute(
            select(SupervisionNotice)
            .where(*where)
            .order_by(col(SupervisionNotice.issued_at), col(SupervisionNotice.notice_id))
            .limit(limit)
            .offset(offset)
        ).scalars()
    )
    return rows, int(total)


@router.post("/{notice_id}/ack")
def acknowledge_notice(
    notice_id: NoticeId, body: AcknowledgeRequest, actor: ActorDep, session: SessionDep, engine: EngineDep
) -> dict[str, Any]:
    return acknowledge(session, engine, actor, notice_id, body.reply).model_dump()


def acknowledge(session: Session, engine: Engine, actor: Actor, notice_id: str, reply: str) -> SupervisionNotice:
    """An officer's acknowledgement (签收) of a 督办 notice of the department, with a reply; audited."""
    require_role(actor, "officer")
    notice = session.get(SupervisionNotice, notice_id)
    if notice is None:
        raise DomainError(ErrorCode.NOT_FOUND, "督办通知不存在 (no such notice)")
    if notice.department != actor.unit:
        raise DomainError(ErrorCode.FORBIDDEN, "该督办通知不属于您的部门 (another department's notice)")
    task = session.get(TaskRecord, f"{notice.case_id}:{notice.step}")
    if task is None or not in_unit_scope(actor, task.department, task.unit_code):
        # 404, not 403: another unit's notice is not revealed to exist.
        raise DomainError(ErrorCode.NOT_FOUND, "督办通知不存在 (no such notice)")
    if notice.acknowledged_at is not None:
        raise DomainError(ErrorCode.CONFLICT, "该督办通知已签收 (already acknowledged)")
    notice.acknowledged_at = datetime.now(UTC)
    notice.acknowledged_by = actor.username
    notice.reply = reply
    session.add(notice)
    bump_inbox_versions(session, {notice.department})  # its 督办 badge goes from the inbox
    session.commit()
    session.refresh(notice)
    record_staff_action(
        engine,
        actor,
        AuditAction.NOTICE_ACKNOWLEDGE,
        case_id=notice.case_id,
        target=notice.notice_id,
        detail={"step": notice.step, "reply": reply},
    )
    return notice

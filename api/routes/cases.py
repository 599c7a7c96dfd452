"""Cases: submission (受理), reading, lists, supplements (补正) and the timeline."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta
from typing import Annotated, Any

from fastapi import APIRouter, Header, Query, Response
from pydantic import BaseModel, ConfigDict, Field, ValidationError
from sqlalchemy import Engine, func, select
from sqlmodel import Session, col
from starlette.concurrency import run_in_threadpool
from temporalio.client import Client, WorkflowHandle, WorkflowUpdateRPCTimeoutOrCancelledError
from temporalio.service import RPCError, RPCStatusCode

from api.access import is_case_staff, visible_case, visible_cases_filter
from api.actions import WORKER_WAIT, refuse_reused_key, request_fingerprint, run_case_update, update_id
from api.audit import AuditAction, record_staff_action
from api.deps import ActorDep, CalendarDep, ClientDep, EngineDep, SessionDep, SettingsDep, require_role
from api.errors import error_responses, invalid_input
from api.faults import crash_if_injected
from api.schemas import (
    CaseList,
    CaseResponse,
    CaseSummary,
    NotificationResponse,
    OffsetQuery,
    SubmitCaseRequest,
    SupplementRequest,
    TimelineResponse,
)
from api.timeline import build_timeline, read_case_history
from models.archive import ArchiveCheck, check_package
from models.case import Actor, CaseInput, CaseSnapshot, RateInput, RatingView, SupplementInput
from models.catalogue import ThingDefinition, resolve_for_case
from models.catalogue_store import definition_for
from models.errors import DomainError, ErrorCode
from models.forms import FORMS
from models.redaction import OVERSIGHT_ROLES, masked, sees_case_personal_data
from models.tables import CaseRecord, NotificationRecord, TaskRecord
from settings import Settings
from workflows.case.workflow import CaseWorkflow
from workflows.starter import new_case_id, start_case

router = APIRouter(tags=["cases"], responses=error_responses(401, 403, 404, 409, 413, 422, 503))


def _current_definition(engine: Engine, thing: str) -> ThingDefinition:
    with Session(engine) as session:
        try:
            return definition_for(session, thing)
        except DomainError:
            raise DomainError(
                ErrorCode.INVALID, "未知的事项 (unknown thing)", {"thing": f"no active thing {thing!r}"}
            ) from None


def _validated_form(definition: ThingDefinition, form: dict[str, Any]) -> dict[str, Any]:
    try:
        model = FORMS[definition.form].model_validate(form)
    except ValidationError as exc:
        raise invalid_input(exc, "form") from exc
    clean = model.model_dump(mode="json", exclude_none=True)
    born_at = clean.get("newborn", {}).get("born_at")
    if born_at and datetime.fromisoformat(born_at) > datetime.now(UTC) + timedelta(minutes=5):
        raise DomainError(
            ErrorCode.INVALID, "输入有误 (invalid input)", {"form.newborn.born_at": "cannot be in the future"}
        )
    return clean


def _case_response(snapshot: CaseSnapshot) -> CaseResponse:
    return CaseResponse.model_validate(snapshot.model_dump())


async def _accepted_snapshot(handle: WorkflowHandle[CaseWorkflow, CaseSnapshot]) -> CaseSnapshot:
    """The case once accepted: from the running workflow, or by query once it has closed."""
    try:
        snapshot: CaseSnapshot = await asyncio.wait_for(
            handle.execute_update(CaseWorkflow.wait_accepted),
            WORKER_WAIT.total_seconds(),
        )
        return snapshot
    # wait_for's cancellation reaches the SDK's update poll, which re-raises it as its own timeout error.
    except (TimeoutError, WorkflowUpdateRPCTimeoutOrCancelledError) as exc:
        raise DomainError(
            ErrorCode.UNAVAILABLE,
            f"案件{handle.id}已接收，正在排队受理，请稍后查询 (accepted for processing; try again shortly)",
        ) from exc
    except RPCError as exc:
        if exc.status != RPCStatusCode.NOT_FOUND:
            raise
        closed: CaseSnapshot = await handle.query(CaseWorkflow.snapshot)
        return closed


@router.post("/cases", status_code=201, response_model=CaseResponse)
async def submit_case(
    body: SubmitCaseRequest,
    actor: ActorDep,
    client: ClientDep,
    engine: EngineDep,
    settings: SettingsDep,
    response: Response,
    idempotency_key: Annotated[str | None, Header(alias="Idempotency-Key", max_length=128)] = None,
) -> CaseResponse:
    snapshot, created = await accept_submission(body, actor, client, engine, settings, idempotency_key)
    if not created:
        response.status_code = 200
    return _case_response(snapshot)


async def accept_submission(
    body: SubmitCaseRequest,
    actor: Actor,
    client: Client,
    engine: Engine,
    settings: Settings,
    idempotency_key: str | None,
) -> tuple[CaseSnapshot, bool]:
    """受理: validate a submission, start its case (once per Idempotency-Key) and wait until it is
    accepted; returns the case and whether this request created it. POST /cases and the web
    console's application forms both come here."""
    require_role(actor, "applicant", "clerk")
    definition = await run_in_threadpool(_current_definition, engine, body.thing)
    channels = {channel.code: channel for channel in definition.channels}
    if body.channel not in channels:
        raise DomainError(ErrorCode.INVALID, "输入有误 (invalid input)", {"channel": "not offered for this thing"})
    if actor.role == "clerk" and channels[body.channel].accepting_unit != actor.unit:
        raise DomainError(ErrorCode.FORBIDDEN, "只能受理本单位窗口的申请 (clerks accept for their own unit)")
    form = _validated_form(definition, body.form)
    case = CaseInput(
        case_id=new_case_id(actor.username, idempotency_key),
        definition=resolve_for_case(definition, form, body.answers),
        answers=body.answers or {},
        channel=body.channel,
        form=form,
        owner=actor.username if actor.role == "applicant" else None,
        submitted_by=actor,
        supervision_phone=settings.supervision_phone,
        request_fingerprint=request_fingerprint(
            {"thing": body.thing, "channel": body.channel, "form": form, "answers": body.answers or {}}
        ),
    )
    crash_if_injected(settings, "before_case_start")
    handle, created = await start_case(client, settings.task_queue, case)
    crash_if_injected(settings, "after_case_start")
    snapshot = await _accepted_snapshot(handle)
    if not created:
        refuse_reused_key(snapshot.request_fingerprint, case.request_fingerprint)
    await run_in_threadpool(
        record_staff_action,
        engine,
        actor,
        AuditAction.CASE_ACCEPT,
        case_id=snapshot.case_id,
        target=snapshot.case_id,
        detail={"thing": snapshot.thing, "channel": snapshot.channel},
        idempotency_key=idempotency_key,
    )
    return snapshot, created


@router.get("/cases/{case_id}", response_model=CaseResponse)
def read_case(case_id: str, actor: ActorDep, session: SessionDep) -> CaseResponse:
    record = visible_case(session, actor, case_id)
    snapshot = CaseSnapshot.model_validate(record.snapshot)
    response = _case_response(snapshot)
    return response if sees_case_personal_data(actor, snapshot) else masked(response)


@router.get("/cases", response_model=CaseList)
def list_cases(
    actor: ActorDep,
    session: SessionDep,
    status: str | None = None,
    thing: str | None = None,
    department: str | None = None,
    limit: Annotated[int, Query(ge=1, le=200)] = 50,
    offset: OffsetQuery = 0,
) -> CaseList:
    require_role(actor, "clerk", "officer", "supervisor", "admin")
    conditions = [visible_cases_filter(actor)]
    if status:
        conditions.append(col(CaseRecord.status) == status)
    if thing:
        conditions.append(col(CaseRecord.thing) == thing)
    if department:
        conditions.append(
            select(col(TaskRecord.task_id))
            .where(col(TaskRecord.case_id) == col(CaseRecord.case_id), col(TaskRecord.department) == department)
            .exists()
        )
    total = session.execute(select(func.count()).select_from(CaseRecord).where(*conditions)).scalar_one()
    rows = session.execute(
        select(CaseRecord).where(*conditions).order_by(col(CaseRecord.submitted_at).desc()).limit(limit).offset(offset)
    ).scalars()
    items = [
        CaseSummary(
            case_id=row.case_id,
            thing=row.thing,
            channel=row.channel,
            status=row.status,
            submitted_at=row.submitted_at,
            accepting_unit=row.accepting_unit,
        )
        for row in rows
    ]
    return CaseList(items=items, total=total, limit=limit, offset=offset)


def _load_visible(engine: Any, actor: Actor, case_id: str) -> CaseRecord:
    with Session(engine) as session:
        return visible_case(session, actor, case_id)


@router.post("/cases/{case_id}/supplements", response_model=CaseResponse)
async def supply_materials(
    case_id: str,
    body: SupplementRequest,
    actor: ActorDep,
    client: ClientDep,
    engine: EngineDep,
    idempotency_key: Annotated[str | None, Header(alias="Idempotency-Key", max_length=128)] = None,
) -> CaseResponse:
    return _case_response(await supply_case_materials(case_id, body.materials, actor, client, engine, idempotency_key))


async def supply_case_materials(
    case_id: str,
    materials: dict[str, str],
    actor: Actor,
    client: Client,
    engine: Engine,
    idempotency_key: str | None,
) -> CaseSnapshot:
    """补正: the applicant (or the accepting clerk) supplies missing materials; used by
    POST /cases/{case_id}/supplements and the web console."""
    require_role(actor, "applicant", "clerk")
    await run_in_threadpool(_load_visible, engine, actor, case_id)
    snapshot = await run_case_update(
        client,
        case_id,
        CaseWorkflow.supplement,
        SupplementInput(actor=actor, materials=materials),
        result_type=CaseSnapshot,
        update_id=update_id("supplement", case_id, idempotency_key),
    )
    await run_in_threadpool(
        record_staff_action,
        engine,
        actor,
        AuditAction.CASE_SUPPLEMENT,
        case_id=case_id,
        target=case_id,
        detail={"materials": sorted(materials)},
        idempotency_key=idempotency_key,
    )
    return snapshot


class RatingRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")

    score: int = Field(ge=1, le=5, description="5 非常满意, 4 满意, 3 基本满意, 2 不满意, 1 非常不满意")
    comment: str | None = Field(default=None, max_length=500)
    step: str | None = Field(default=None, max_length=64)


@router.post("/cases/{case_id}/rating", status_code=201, response_model=RatingView)
async def rate_case(
    case_id: str,
    body: RatingRequest,
    actor: ActorDep,
    client: ClientDep,
    engine: EngineDep,
    idempotency_key: Annotated[str | None, Header(alias="Idempotency-Key", max_length=128)] = None,
) -> RatingView:
    """好差评 by the applicant, for the case or one of its steps, once it is delivered."""
    return await rate_case_as(case_id, body, actor, client, engine, idempotency_key)


async def rate_case_as(
    case_id: str,
    body: RatingRequest,
    actor: Actor,
    client: Client,
    engine: Engine,
    idempotency_key: str | None,
) -> RatingView:
    """The applicant's 好差评, once per Idempotency-Key; POST /cases/{case_id}/rating and the console."""
    require_role(actor, "applicant")
    await run_in_threadpool(_load_visible, engine, actor, case_id)
    return await run_case_update(
        client,
        case_id,
        CaseWorkflow.rate,
        RateInput(actor=actor, score=body.score, comment=body.comment, step=body.step),
        result_type=RatingView,
        update_id=update_id("rate", f"{case_id}:{body.step or ''}", idempotency_key),
    )


@router.get("/cases/{case_id}/timeline", response_model=TimelineResponse)
async def read_timeline(
    case_id: str, actor: ActorDep, client: ClientDep, engine: EngineDep, calendar: CalendarDep
) -> TimelineResponse:
    record = await run_in_threadpool(_load_visible, engine, actor, case_id)
    if not is_case_staff(actor, record):
        raise DomainError(ErrorCode.FORBIDDEN, "时间线仅对经办人员和监督人员开放 (staff only)")
    case, events = await read_case_history(client, case_id)
    timeline = build_timeline(case, events, calendar)
    if sees_case_personal_data(actor, CaseSnapshot.model_validate(record.snapshot)):
        return timeline
    return masked(timeline)


@router.get("/cases/{case_id}/archive", response_model=ArchiveCheck)
async def read_archive(case_id: str, actor: ActorDep, engine: EngineDep, settings: SettingsDep) -> ArchiveCheck:
    """The archive manifest of a closed case, checked for completeness (§8.1.3 档案完整)."""
    record = await run_in_threadpool(_load_visible, engine, actor, case_id)
    if not is_case_staff(actor, record):
        raise DomainError(ErrorCode.FORBIDDEN, "档案仅对经办人员和监督人员开放 (staff only)")
    if record.status not in {"completed", "refused"}:
        raise DomainError(ErrorCode.CONFLICT, "案件尚未办结，未归档 (the case is not closed yet)")
    if record.rating_open:
        raise DomainError(ErrorCode.CONFLICT, "评价期结束后归档 (archived when the rating period ends)")
    return await run_in_threadpool(check_package, settings.archive_dir, case_id)


@router.get("/notifications", response_model=list[NotificationResponse])
def my_notifications(
    actor: ActorDep, session: SessionDep, limit: Annotated[int, Query(ge=1, le=200)] = 50
) -> list[NotificationResponse]:
    rows = session.execute(
        select(NotificationRecord)
        .where(col(NotificationRecord.recipient) == actor.username)
        .order_by(col(NotificationRecord.created_at).desc())
        .limit(limit)
    ).scalars()
    notifications = [NotificationResponse.model_validate(row, from_attributes=True) for row in rows]
    # Each message is the recipient's own; supervisors and admins read theirs masked like everything else.
    return [masked(item) for item in notifications] if actor.role in OVERSIGHT_ROLES else notifications

"""Cases: submission (受理), reading, lists, supplements (补正) and the timeline."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Header, Query, Response
from pydantic import BaseModel, ConfigDict, Field
from sqlalchemy import func, select
from sqlmodel import Session, col
from starlette.concurrency import run_in_threadpool

from api.deps import ActorDep, CalendarDep, ClientDep, EngineDep, SessionDep, SettingsDep
from api.errors import error_responses
from api.schemas import (
    CaseId,
    CaseList,
    CaseResponse,
    CaseStatusFilter,
    CaseSummary,
    Code,
    EndCaseRequest,
    NotificationResponse,
    OffsetQuery,
    SubmitCaseRequest,
    SupplementRequest,
    TimelineResponse,
)
from api.timeline import build_timeline, read_case_history
from documents.archive import ArchiveCheck, check_package, package_zip
from domain.redaction import OVERSIGHT_ROLES, mask_name, masked, sees_case_personal_data
from infra.signing import archive_keys
from models.case import Actor, CaseSnapshot, RatingView
from models.errors import DomainError, ErrorCode
from models.tables import CaseRecord, NotificationRecord, TaskRecord
from services.access import case_search, is_case_staff, visible_case, visible_cases_filter
from services.cases import accept_submission, end_case, rate_case_as, supply_case_materials
from services.identity import adopt_walk_in_cases

router = APIRouter(tags=["cases"], responses=error_responses(401, 403, 404, 409, 413, 422, 503))


def _case_response(snapshot: CaseSnapshot) -> CaseResponse:
    return CaseResponse.model_validate(snapshot.model_dump())


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
    snapshot, created = await accept_submission(
        thing=body.thing,
        channel=body.channel,
        form=body.form,
        answers=body.answers,
        actor=actor,
        client=client,
        engine=engine,
        settings=settings,
        idempotency_key=idempotency_key,
        proxy_authorization=body.proxy.authorization_material if body.proxy is not None else None,
    )
    if not created:
        response.status_code = 200
    return _case_response(snapshot)


@router.get("/cases/{case_id}", response_model=CaseResponse)
def read_case(case_id: CaseId, actor: ActorDep, session: SessionDep) -> CaseResponse:
    record = visible_case(session, actor, case_id)
    snapshot = CaseSnapshot.model_validate(record.snapshot)
    response = _case_response(snapshot)
    # Everyone who may read the case reads the application (supervisors masked, below).
    response.form = record.form
    return response if sees_case_personal_data(actor, snapshot) else masked(response)


@router.get("/cases", response_model=CaseList)
async def list_cases(
    actor: ActorDep,
    client: ClientDep,
    engine: EngineDep,
    status: CaseStatusFilter | None = None,
    thing: Code | None = None,
    department: Code | None = None,
    q: Annotated[
        str | None,
        Query(
            min_length=1,
            max_length=50,
            # No control characters (PostgreSQL text cannot hold NUL): 422, not a failed query.
            pattern=r"^[^\x00-\x1f\x7f]+$",
            description="受理编号 (whole or its end), case id, or part of the applicant's name",
        ),
    ] = None,
    limit: Annotated[int, Query(ge=1, le=200)] = 50,
    offset: OffsetQuery = 0,
) -> CaseList:
    """An applicant's own cases (walk-ins filed for their identity included), or the cases a
    member of staff may see."""
    if actor.role == "applicant":
        await adopt_walk_in_cases(actor, client, engine)
    query = CaseQuery(q=q, status=status, thing=thing, department=department, limit=limit, offset=offset)
    return await run_in_threadpool(_case_list, engine, actor, query)


class CaseQuery(BaseModel):
    q: str | None
    status: str | None
    thing: str | None
    department: str | None
    limit: int
    offset: int


def _case_list(engine: Any, actor: Actor, query: CaseQuery) -> CaseList:
    q, status, thing, department = query.q, query.status, query.thing, query.department
    limit, offset = query.limit, query.offset
    conditions = [visible_cases_filter(actor)]
    if q and q.strip():
        conditions.append(case_search(q))
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
    with Session(engine) as session:
        total = session.execute(select(func.count()).select_from(CaseRecord).where(*conditions)).scalar_one()
        rows = list(
            session.execute(
                select(CaseRecord)
                .where(*conditions)
                .order_by(col(CaseRecord.submitted_at).desc())
                .limit(limit)
                .offset(offset)
            ).scalars()
        )
    items = [
        CaseSummary(
            case_id=row.case_id,
            case_no=row.case_no,
            # Supervisors and admins read personal data masked, names included.
            applicant_name=mask_name(row.applicant_name)
            if row.applicant_name and actor.role in OVERSIGHT_ROLES
            else row.applicant_name,
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
    case_id: CaseId,
    body: SupplementRequest,
    actor: ActorDep,
    client: ClientDep,
    engine: EngineDep,
    idempotency_key: Annotated[str | None, Header(alias="Idempotency-Key", max_length=128)] = None,
) -> CaseResponse:
    return _case_response(await supply_case_materials(case_id, body.materials, actor, client, engine, idempotency_key))


@router.post("/cases/{case_id}/withdraw", response_model=CaseResponse)
async def withdraw_case(
    case_id: CaseId,
    body: EndCaseRequest,
    actor: ActorDep,
    client: ClientDep,
    engine: EngineDep,
    idempotency_key: Annotated[str | None, Header(alias="Idempotency-Key", max_length=128)] = None,
) -> CaseResponse:
    """撤回: the applicant or the accepting clerk, before the last step is done; open steps are cancelled."""
    return _case_response(await end_case(case_id, "withdraw", body.reason, actor, client, engine, idempotency_key))


@router.post("/cases/{case_id}/decline", response_model=CaseResponse)
async def decline_case(
    case_id: CaseId,
    body: EndCaseRequest,
    actor: ActorDep,
    client: ClientDep,
    engine: EngineDep,
    idempotency_key: Annotated[str | None, Header(alias="Idempotency-Key", max_length=128)] = None,
) -> CaseResponse:
    """不予受理: the accepting clerk, while no step has been claimed or completed; the applicant is told why."""
    return _case_response(await end_case(case_id, "decline", body.reason, actor, client, engine, idempotency_key))


class RatingRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")

    score: int = Field(ge=1, le=5, description="5 非常满意, 4 满意, 3 基本满意, 2 不满意, 1 非常不满意")
    comment: str | None = Field(default=None, max_length=500)
    step: str | None = Field(default=None, max_length=64)


@router.post("/cases/{case_id}/rating", status_code=201, response_model=RatingView)
async def rate_case(
    case_id: CaseId,
    body: RatingRequest,
    actor: ActorDep,
    client: ClientDep,
    engine: EngineDep,
    idempotency_key: Annotated[str | None, Header(alias="Idempotency-Key", max_length=128)] = None,
) -> RatingView:
    """好差评 by the applicant, for the case or one of its steps, once it is delivered."""
    return await rate_case_as(
        case_id,
        score=body.score,
        comment=body.comment,
        step=body.step,
        actor=actor,
        client=client,
        engine=engine,
        idempotency_key=idempotency_key,
    )


@router.get("/cases/{case_id}/timeline", response_model=TimelineResponse)
async def read_timeline(
    case_id: CaseId, actor: ActorDep, client: ClientDep, engine: EngineDep, calendar: CalendarDep
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
async def read_archive(case_id: CaseId, actor: ActorDep, engine: EngineDep, settings: SettingsDep) -> ArchiveCheck:
    """The archive manifest of a closed case, checked for completeness (§8.1.3 档案完整)."""
    record = await run_in_threadpool(_load_visible, engine, actor, case_id)
    if not is_case_staff(actor, record):
        raise DomainError(ErrorCode.FORBIDDEN, "档案仅对经办人员和监督人员开放 (staff only)")
    if record.status not in {"completed", "refused"}:
        raise DomainError(ErrorCode.CONFLICT, "案件尚未办结，未归档 (the case is not closed yet)")
    if record.rating_open:
        raise DomainError(ErrorCode.CONFLICT, "评价期结束后归档 (archived when the rating period ends)")
    return await run_in_threadpool(check_package, settings.archive_dir, case_id, archive_keys(settings))


@router.get(
    "/cases/{case_id}/archive/download",
    response_class=Response,
    responses={200: {"content": {"application/zip": {}}, "description": "the package: parts, manifest, signature"}},
)
async def download_archive(case_id: CaseId, actor: ActorDep, engine: EngineDep, settings: SettingsDep) -> Response:
    """The electronic archive as a zip (§7.1.3): for the case's applicant and the supervisors of
    its division. The parts are unsealed; ``manifest.sig`` is the platform's Ed25519 signature
    of ``manifest.json``, which lists each part's SHA-256. A package that fails verification is
    not handed out (409): ``GET /cases/{id}/archive`` names what is wrong."""
    record = await run_in_threadpool(_load_visible, engine, actor, case_id)
    if actor.role not in {"applicant", "supervisor"}:
        raise DomainError(ErrorCode.FORBIDDEN, "档案下载仅对申请人和监督人员开放 (the applicant and supervisors only)")
    keys = archive_keys(settings)
    check = await run_in_threadpool(check_package, settings.archive_dir, case_id, keys)
    if check.manifest is None and check.verdict == "absent":
        closed = record.status in {"completed", "refused", "withdrawn", "declined"}
        reason = "评价期结束后归档 (archived when the rating period ends)" if closed else "案件尚未办结，未归档"
        raise DomainError(ErrorCode.CONFLICT, reason)
    if not check.complete:
        raise DomainError(ErrorCode.CONFLICT, "档案校验未通过，请联系监督人员 (the archive failed verification)")
    content = await run_in_threadpool(package_zip, settings.archive_dir, case_id, keys)
    disposition = f'attachment; filename="{record.case_no or case_id}-archive.zip"'
    return Response(content, media_type="application/zip", headers={"Content-Disposition": disposition})


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

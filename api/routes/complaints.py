"""Complaints (投诉, DB33/T 2304-2021 §8.1.2): filing, lists, assignment, answer, closing, timeline.

An applicant complains about one of their own cases (optionally one step or
department of it) or about a department; a clerk may file for a walk-in
applicant. Each complaint runs as a ComplaintWorkflow (ID ``cp-<hex>``, no
personal data) on the cases' task queue; its actions are workflow Updates whose
validators decide role, department, state and input, and whose Update ids derive
from the request's Idempotency-Key. A staff member's filing or action carries its
audit-log row in the workflow's input, and the workflow writes it in the same
transaction as the change it records (activities/complaints.py): nothing here writes
the read model. Lists and reads come from the read model (ComplaintRecord), the
timeline from the workflow's history.
"""

from __future__ import annotations

import hashlib
import re
import uuid
from datetime import datetime
from typing import Annotated, Any

from fastapi import APIRouter, Header, Query, Request, Response
from pydantic import BaseModel, ConfigDict, Field, StringConstraints
from sqlalchemy import ColumnElement, Engine, false, func, or_, select, true
from sqlmodel import Session, col
from starlette.concurrency import run_in_threadpool
from temporalio.client import Client, WorkflowHandle

from api.deps import ActorDep, ClientDep, EngineDep, SessionDep, SettingsDep, require_role
from api.errors import error_responses
from api.exports import csv_response
from api.schemas import ComplaintId, OffsetQuery
from api.timeline import read_projected_history
from domain.catalogue import load_departments
from domain.redaction import masked, sees_complaint_personal_data
from models.case import Actor
from models.complaint import (
    ANSWER_MAX_CHARS,
    ANSWER_WORKING_DAYS,
    COMPLAINT_EVENT_TYPE_ZH,
    COMPLAINT_STATUS_ZH,
    CONTENT_MAX_CHARS,
    CONTENT_MIN_CHARS,
    NOTE_MAX_CHARS,
    AnswerComplaintInput,
    AssignComplaintInput,
    CloseComplaintInput,
    ComplaintActivityName,
    ComplaintChanges,
    ComplaintEvent,
    ComplaintInput,
    ComplaintSnapshot,
    ComplaintStatus,
    ProjectComplaintInput,
)
from models.errors import DomainError, ErrorCode
from models.tables import CaseRecord, ComplaintRecord
from services.access import can_see_case, supervised_cases_filter, supervised_divisions, visible_case
from services.audit import AuditAction
from services.cases import staff_audit
from services.gateway import refuse_reused_key, request_fingerprint, start_with_update
from services.idempotency import send_action
from workflows.complaint.workflow import ComplaintWorkflow

router = APIRouter(
    prefix="/complaints", tags=["complaints"], responses=error_responses(401, 403, 404, 409, 413, 422, 503)
)

ComplaintHandle = WorkflowHandle[ComplaintWorkflow, ComplaintSnapshot]
IdempotencyKey = Annotated[str | None, Header(alias="Idempotency-Key", max_length=128)]
COMPLAINT_ID = re.compile(r"cp-[0-9a-f]{20}")
# A CSV export holds every matching complaint, up to this many.
EXPORT_LIMIT = 10_000


# --- bodies ---------------------------------------------------------------------------


class _Body(BaseModel):
    model_config = ConfigDict(extra="forbid")


class FileComplaintRequest(_Body):
    case_id: str | None = Field(default=None, min_length=1, max_length=64)
    department: str | None = Field(default=None, min_length=1, max_length=64)
    step: str | None = Field(default=None, min_length=1, max_length=64)
    content: Annotated[
        str, StringConstraints(strip_whitespace=True, min_length=CONTENT_MIN_CHARS, max_length=CONTENT_MAX_CHARS)
    ]


class AssignComplaintRequest(_Body):
    department: str = Field(max_length=64)
    note: str | None = Field(default=None, max_length=NOTE_MAX_CHARS)


class AnswerComplaintRequest(_Body):
    # The workflow's validator refuses a blank answer (and, for any other client, a long one).
    answer: str = Field(max_length=ANSWER_MAX_CHARS)


class CloseComplaintRequest(_Body):
    satisfied: bool
    note: str | None = Field(default=None, max_length=NOTE_MAX_CHARS)


class ComplaintResponse(BaseModel):
    complaint_id: str
    status: str
    status_zh: str
    case_id: str | None
    step: str | None
    named_department: str | None
    department: str | None
    department_zh: str | None
    assigned_department: str | None
    complainant: str | None
    filed_by: str
    content: str
    filed_at: datetime
    due_at: datetime | None
    provisional: bool
    assigned_at: datetime | None
    assign_note: str | None
    answer: str | None
    answered_at: datetime | None
    answered_by: str | None
    closed_at: datetime | None
    satisfied: bool | None
    close_note: str | None
    overdue: bool
    escalations: int


class ComplaintList(BaseModel):
    items: list[ComplaintResponse]
    total: int
    limit: int
    offset: int


class ComplaintTimelineEvent(BaseModel):
    seq: int
    at: datetime
    type: str
    type_zh: str
    actor: str | None
    department: str | None
    due_at: datetime | None
    detail: dict[str, Any]


class ComplaintTimeline(BaseModel):
    complaint_id: str
    case_id: str | None
    events: list[ComplaintTimelineEvent]


def _response(snapshot: ComplaintSnapshot) -> ComplaintResponse:
    return ComplaintResponse.model_validate(snapshot.model_dump())


# --- starting a complaint ---------------------------------------------------------------


def new_complaint_id(username: str, idempotency_key: str | None) -> str:
    """``cp-`` and 20 hex digits: random, or a hash of (account, key) so a retried request finds its complaint."""
    if idempotency_key is None:
        return f"cp-{uuid.uuid4().hex[:20]}"
    digest = hashlib.sha256(f"complaint\x00{username}\x00{idempotency_key}".encode()).hexdigest()
    return f"cp-{digest[:20]}"


def _complaint_input(
    engine: Engine, actor: Actor, body: FileComplaintRequest, complaint_id: str, idempotency_key: str | None
) -> ComplaintInput:
    """Check what the complaint is about and who follows it (404 for a case the actor may not see)."""
    departments = load_departments()
    complainant = actor.username if actor.role == "applicant" else None
    department = body.department
    fields: dict[str, str] = {}
    if department is not None and department not in departments:
        fields["department"] = f"no department {department!r}"
    if body.case_id is None:
        if body.step is not None:
            fields["step"] = "name the case the step belongs to"
        if department is None:
            fields["department"] = "name the department or the case complained about"
    else:
        with Session(engine) as session:
            case = visible_case(session, actor, body.case_id)
        complainant = case.owner
        step_departments = {step["step"]: step["department"] for step in case.snapshot.get("steps", [])}
        if body.step is not None:
            if body.step not in step_departments:
                fields["step"] = f"no step {body.step!r} in this case"
            elif department is not None and department != step_departments[body.step]:
                fields["department"] = "not the department of this step"
            else:
                department = step_departments[body.step]
        elif department is not None and department not in {*step_departments.values(), case.accepting_unit}:
            fields.setdefault("department", "not a department of this case")
    if fields:
        raise DomainError(ErrorCode.INVALID, "投诉信息有误 (invalid complaint)", fields)
    return ComplaintInput(
        complaint_id=complaint_id,
        content=body.content,
        filed_by=actor,
        complainant=complainant,
        case_id=body.case_id,
        step=body.step,
        department=department,
        department_names={code: item.name_zh for code, item in departments.items()},
        assignable=[code for code, item in departments.items() if item.tasks],
        answer_working_days=ANSWER_WORKING_DAYS,
        request_fingerprint=request_fingerprint(body.model_dump()),
        submission_id=uuid.uuid4().hex,
        # A clerk's filing is audited (an applicant's own is not: staff_audit gives None).
        audit=staff_audit(
            actor,
            AuditAction.COMPLAINT_FILE,
            complaint_id,
            {"step": body.step, "department": department},
            idempotency_key,
        ),
    )


@router.post("", status_code=201, response_model=ComplaintResponse)
async def file_complaint(
    body: FileComplaintRequest,
    actor: ActorDep,
    client: ClientDep,
    engine: EngineDep,
    settings: SettingsDep,
    response: Response,
    idempotency_key: IdempotencyKey = None,
) -> ComplaintResponse:
    """受理 a complaint; the answer is due within five working days."""
    require_role(actor, "applicant", "clerk")
    complaint_id = new_complaint_id(actor.username, idempotency_key)
    complaint = await run_in_threadpool(_complaint_input, engine, actor, body, complaint_id, idempotency_key)
    snapshot = await start_with_update(
        client,
        ComplaintWorkflow.run,
        complaint,
        workflow_id=complaint_id,
        task_queue=settings.task_queue,
        update=ComplaintWorkflow.wait_accepted,
        query=ComplaintWorkflow.snapshot,
        result_type=ComplaintSnapshot,
        noun_zh="投诉",
    )
    if snapshot.submission_id != complaint.submission_id:
        refuse_reused_key(snapshot.request_fingerprint, complaint.request_fingerprint)
        response.status_code = 200
    return _response(snapshot)


def _shown_to(actor: Actor, snapshot: ComplaintSnapshot) -> ComplaintResponse:
    """The complaint as this reader may see it: personal data masked unless they are a party to it."""
    response = _response(snapshot)
    return response if sees_complaint_personal_data(actor, snapshot) else masked(response)


# --- reading ------------------------------------------------------------------------------


def visible_complaints_filter(actor: Actor) -> ColumnElement[bool]:
    """Admins and province supervisors see every complaint, a division's supervisor those about a
    case of their division or one within it, officers those assigned to their department,
    applicants their own, clerks those they filed."""
    if actor.role == "supervisor" and supervised_divisions(actor) is not None:
        cases_seen = select(col(CaseRecord.case_id)).where(supervised_cases_filter(actor))
        return col(ComplaintRecord.case_id).in_(cases_seen)
    if actor.role in {"supervisor", "admin"}:
        return true()
    if actor.role == "officer" and actor.unit:
        return col(ComplaintRecord.assigned_department) == actor.unit
    if actor.role == "applicant":
        return col(ComplaintRecord.complainant) == actor.username
    if actor.role == "clerk":
        return col(ComplaintRecord.filed_by) == actor.username
    return false()


def _can_see(actor: Actor, record: ComplaintRecord, session: Session) -> bool:
    if actor.role == "supervisor" and supervised_divisions(actor) is not None:
        case = session.get(CaseRecord, record.case_id) if record.case_id else None
        return case is not None and can_see_case(actor, case)
    if actor.role in {"supervisor", "admin"}:
        return True
    if actor.role == "officer":
        return actor.unit is not None and record.assigned_department == actor.unit
    if actor.role == "applicant":
        return record.complainant == actor.username
    return actor.role == "clerk" and record.filed_by == actor.username


def _known_id(complaint_id: str) -> None:
    if not COMPLAINT_ID.fullmatch(complaint_id):
        raise DomainError(ErrorCode.NOT_FOUND, "投诉不存在 (no such complaint)")


def visible_complaint(session: Session, actor: Actor, complaint_id: str) -> ComplaintRecord:
    """The complaint if the actor may see it; otherwise 404, so strangers learn nothing."""
    _known_id(complaint_id)
    record = session.get(ComplaintRecord, complaint_id)
    if record is None or not _can_see(actor, record, session):
        raise DomainError(ErrorCode.NOT_FOUND, "投诉不存在或无权查看 (no such complaint)")
    return record


@router.get(
    "",
    response_model=ComplaintList,
    responses={200: {"content": {"text/csv": {}}, "description": "JSON, or CSV with `Accept: text/csv`"}},
)
def list_complaints(
    request: Request,
    actor: ActorDep,
    session: SessionDep,
    status: ComplaintStatus | None = None,
    department: Annotated[str | None, Query(max_length=64)] = None,
    limit: Annotated[int, Query(ge=1, le=200)] = 50,
    offset: OffsetQuery = 0,
) -> ComplaintList | Response:
    """Visible complaints, oldest due first; ``Accept: text/csv`` exports every match as CSV."""
    if actor.role == "officer" and department not in (None, actor.unit):
        raise DomainError(ErrorCode.FORBIDDEN, "只能查看本部门的投诉 (own department only)")
    conditions = [visible_complaints_filter(actor)]
    if status is not None:
        conditions.append(col(ComplaintRecord.status) == status.value)
    if department:
        conditions.append(
            or_(col(ComplaintRecord.department) == department, col(ComplaintRecord.assigned_department) == department)
        )
    query = (
        select(ComplaintRecord)
        .where(*conditions)
        .order_by(col(ComplaintRecord.due_at).asc(), col(ComplaintRecord.complaint_id))
    )
    if "text/csv" in request.headers.get("accept", ""):
        return complaints_csv(list(session.execute(query.limit(EXPORT_LIMIT)).scalars()))
    total = session.execute(select(func.count()).select_from(ComplaintRecord).where(*conditions)).scalar_one()
    rows = session.execute(query.limit(limit).offset(offset)).scalars()
    items = [_shown_to(actor, ComplaintSnapshot.model_validate(row.snapshot)) for row in rows]
    return ComplaintList(items=items, total=total, limit=limit, offset=offset)


CSV_COLUMNS = [
    ("complaint_id", "投诉编号"),
    ("status_zh", "状态"),
    ("department_zh", "部门"),
    ("filed_at", "受理时间"),
    ("due_at", "答复期限"),
    ("answered_at", "答复时间"),
    ("overdue", "是否超期"),
    ("closed_at", "办结时间"),
    ("satisfied", "是否满意"),
    ("case_id", "关联案件"),
    ("step", "环节"),
    ("department", "部门编码"),
]


def complaints_csv(rows: list[ComplaintRecord]) -> Response:
    def as_row(row: ComplaintRecord) -> dict[str, Any]:
        snapshot = ComplaintSnapshot.model_validate(row.snapshot)
        return {
            **row.model_dump(),
            "status_zh": COMPLAINT_STATUS_ZH[ComplaintStatus(row.status)],
            "department_zh": snapshot.department_zh,
        }

    return csv_response([as_row(row) for row in rows], CSV_COLUMNS, "complaints")


@router.get("/{complaint_id}", response_model=ComplaintResponse)
def read_complaint(complaint_id: ComplaintId, actor: ActorDep, session: SessionDep) -> ComplaintResponse:
    record = visible_complaint(session, actor, complaint_id)
    return _shown_to(actor, ComplaintSnapshot.model_validate(record.snapshot))


def _load_visible(engine: Engine, actor: Actor, complaint_id: str) -> ComplaintRecord:
    with Session(engine) as session:
        return visible_complaint(session, actor, complaint_id)


async def read_complaint_history(client: Client, complaint_id: str) -> tuple[ComplaintInput, list[ComplaintEvent]]:
    """The complaint's input and business events, decoded from its workflow history."""
    complaint, events = await read_projected_history(
        client,
        complaint_id,
        ComplaintInput,
        ComplaintActivityName.PROJECT_COMPLAINT,
        ProjectComplaintInput,
        ComplaintActivityName.WRITE_COMPLAINT_CHANGES,
        ComplaintChanges,
    )
    if complaint is None:
        raise DomainError(ErrorCode.NOT_FOUND, "投诉不存在 (no such complaint)")
    return complaint, events


@router.get("/{complaint_id}/timeline", response_model=ComplaintTimeline)
async def read_complaint_timeline(
    complaint_id: ComplaintId, actor: ActorDep, client: ClientDep, engine: EngineDep
) -> ComplaintTimeline:
    """Every business event of the complaint, read from its workflow history."""
    record = await run_in_threadpool(_load_visible, engine, actor, complaint_id)
    complaint, events = await read_complaint_history(client, complaint_id)
    timeline = ComplaintTimeline(
        complaint_id=complaint.complaint_id,
        case_id=complaint.case_id,
        events=[
            ComplaintTimelineEvent(
                type_zh=COMPLAINT_EVENT_TYPE_ZH[event.type],
                **event.model_dump(exclude={"type"}),
                type=event.type.value,
            )
            for event in events
        ],
    )
    if sees_complaint_personal_data(actor, ComplaintSnapshot.model_validate(record.snapshot)):
        return timeline
    return masked(timeline)


# --- actions (workflow Updates) -------------------------------------------------------------


AUDIT_ACTIONS = {
    "assign": AuditAction.COMPLAINT_ASSIGN,
    "answer": AuditAction.COMPLAINT_ANSWER,
    "close": AuditAction.COMPLAINT_CLOSE,
}


async def _act(
    client: Client,
    engine: Engine,
    complaint_id: str,
    action: str,
    update: Any,
    argument: AssignComplaintInput | AnswerComplaintInput | CloseComplaintInput,
    idempotency_key: str | None,
) -> ComplaintResponse:
    _known_id(complaint_id)
    # What was asked (the department, the answer, the note …): the Idempotency-Key is bound to it.
    asked = argument.model_dump(mode="json", exclude={"actor", "audit"})
    # The audit row travels with the Update: the workflow writes it with the change it records.
    entry = staff_audit(
        argument.actor,
        AUDIT_ACTIONS[action],
        complaint_id,
        # The answer itself stays in the complaint; the log says who answered and when.
        argument.model_dump(mode="json", exclude={"actor", "answer", "audit"}, exclude_none=True),
        idempotency_key,
    )
    argument = argument.model_copy(update={"audit": entry})
    try:
        snapshot = await send_action(
            client,
            engine,
            complaint_id,
            update,
            argument,
            actor=argument.actor,
            action=action,
            target=complaint_id,
            idempotency_key=idempotency_key,
            body=asked,
            result_type=ComplaintSnapshot,
        )
    except DomainError as error:
        if error.code == ErrorCode.NOT_FOUND:
            raise DomainError(ErrorCode.NOT_FOUND, "投诉不存在 (no such complaint)") from error
        if error.code == ErrorCode.CONFLICT:
            raise DomainError(ErrorCode.CONFLICT, "投诉已办结 (the complaint is closed)") from error
        raise
    return _shown_to(argument.actor, snapshot)


@router.post("/{complaint_id}/assign", response_model=ComplaintResponse)
async def assign_complaint(
    complaint_id: ComplaintId,
    body: AssignComplaintRequest,
    actor: ActorDep,
    client: ClientDep,
    engine: EngineDep,
    idempotency_key: IdempotencyKey = None,
) -> ComplaintResponse:
    """分派: a supervisor hands the complaint to a department."""
    require_role(actor, "supervisor")
    argument = AssignComplaintInput(actor=actor, department=body.department, note=body.note)
    return await _act(client, engine, complaint_id, "assign", ComplaintWorkflow.assign, argument, idempotency_key)


@router.post("/{complaint_id}/answer", response_model=ComplaintResponse)
async def answer_complaint(
    complaint_id: ComplaintId,
    body: AnswerComplaintRequest,
    actor: ActorDep,
    client: ClientDep,
    engine: EngineDep,
    idempotency_key: IdempotencyKey = None,
) -> ComplaintResponse:
    """答复: an officer of the assigned department answers."""
    require_role(actor, "officer")
    argument = AnswerComplaintInput(actor=actor, answer=body.answer)
    return await _act(client, engine, complaint_id, "answer", ComplaintWorkflow.answer, argument, idempotency_key)


@router.post("/{complaint_id}/close", response_model=ComplaintResponse)
async def close_complaint(
    complaint_id: ComplaintId,
    body: CloseComplaintRequest,
    actor: ActorDep,
    client: ClientDep,
    engine: EngineDep,
    idempotency_key: IdempotencyKey = None,
) -> ComplaintResponse:
    """办结: a supervisor closes the answered complaint, recording whether the complainant was satisfied."""
    require_role(actor, "supervisor")
    argument = CloseComplaintInput(actor=actor, satisfied=body.satisfied, note=body.note)
    return await _act(client, engine, complaint_id, "close", ComplaintWorkflow.close, argument, idempotency_key)

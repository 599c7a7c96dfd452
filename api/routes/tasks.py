"""Officers' inbox and task actions: claim (签收), complete (办结), return (退回补正), refuse (不予办理).

A task id is ``<case_id>:<step>``. Each action is a workflow Update; its validator
decides (department, state, assignee, result schema) and a rejected action writes
nothing to the case's history.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Annotated, Any

from fastapi import APIRouter, Header, Query
from pydantic import BaseModel
from sqlalchemy import ColumnElement, Engine, func, select
from sqlmodel import Session, col
from starlette.concurrency import run_in_threadpool
from temporalio.client import Client

from api.actions import run_case_update, update_id
from api.audit import AuditAction, record_staff_action
from api.deps import ActorDep, ClientDep, EngineDep, SessionDep, require_role
from api.errors import error_responses
from api.schemas import (
    CompleteTaskRequest,
    OffsetQuery,
    RefuseTaskRequest,
    ReturnTaskRequest,
    TaskList,
    TaskResponse,
)
from models.case import (
    Actor,
    CaseSnapshot,
    ClaimInput,
    CompleteStepInput,
    RefuseStepInput,
    ReturnStepInput,
    StepStatus,
    StepView,
)
from models.errors import DomainError, ErrorCode
from models.redaction import masked, sees_case_personal_data
from models.tables import CaseRecord, TaskRecord
from workflows.case.workflow import CaseWorkflow

router = APIRouter(prefix="/tasks", tags=["tasks"], responses=error_responses(401, 403, 404, 409, 413, 422, 503))

INBOX_STATUSES = [StepStatus.OPEN.value, StepStatus.CLAIMED.value, StepStatus.AWAITING_SUPPLEMENT.value]
IdempotencyKey = Annotated[str | None, Header(alias="Idempotency-Key", max_length=128)]
MAX_CASE_ID_LENGTH = 64


@router.get("", response_model=TaskList)
def inbox(
    actor: ActorDep,
    session: SessionDep,
    status: StepStatus | None = None,
    department: str | None = None,
    limit: Annotated[int, Query(ge=1, le=200)] = 50,
    offset: OffsetQuery = 0,
) -> TaskList:
    """The department's tasks, oldest due first; open, claimed and awaiting by default."""
    rows, total = inbox_tasks(session, actor, status, department, limit, offset)
    items = [TaskResponse.model_validate(row, from_attributes=True) for row in rows]
    return TaskList(items=items, total=total, limit=limit, offset=offset)


def inbox_tasks(
    session: Session, actor: Actor, status: StepStatus | None, department: str | None, limit: int, offset: int
) -> tuple[list[TaskRecord], int]:
    """One page of the inbox ``actor`` may read, oldest due first, and its total (the JSON inbox and the console's)."""
    require_role(actor, "officer", "clerk", "supervisor", "admin")
    if actor.role in {"officer", "clerk"}:
        if department not in (None, actor.unit):
            raise DomainError(ErrorCode.FORBIDDEN, "只能查看本部门的任务 (own department only)")
        department = actor.unit
    conditions: list[ColumnElement[bool]] = [col(TaskRecord.status).in_([status.value] if status else INBOX_STATUSES)]
    if department:
        conditions.append(col(TaskRecord.department) == department)
    if actor.role in {"officer", "clerk"}:
        # A clerk's inbox holds only the tasks clerks may act on (e.g. 出件).
        conditions.append(col(TaskRecord.roles).contains(actor.role))
    total = session.execute(select(func.count()).select_from(TaskRecord).where(*conditions)).scalar_one()
    rows = session.execute(
        select(TaskRecord)
        .where(*conditions)
        .order_by(col(TaskRecord.due_at).asc(), col(TaskRecord.task_id))
        .limit(limit)
        .offset(offset)
    ).scalars()
    return list(rows), int(total)


def parse_task_id(task_id: str) -> tuple[str, str]:
    case_id, _, step = task_id.rpartition(":")
    # An id Temporal would refuse as an argument (empty, or longer than any case id) is simply unknown.
    if not case_id or not step or len(case_id) > MAX_CASE_ID_LENGTH:
        raise DomainError(ErrorCode.NOT_FOUND, "任务不存在 (no such task)")
    return case_id, step


AUDIT_ACTIONS = {
    "claim": AuditAction.TASK_CLAIM,
    "complete": AuditAction.TASK_COMPLETE,
    "return": AuditAction.TASK_RETURN,
    "refuse": AuditAction.TASK_REFUSE,
}


async def act_on_task(
    task_id: str,
    actor: Actor,
    client: Client,
    engine: Engine,
    action: str,
    update: Any,
    make_input: Callable[[str], BaseModel],
    idempotency_key: str | None,
) -> StepView:
    """Send one officer action to the task's case as a workflow Update, and audit it."""
    # Supervisors act only on 回访 tasks; the workflow's validator holds each role to its steps.
    require_role(actor, "officer", "clerk", "supervisor")
    case_id, step = parse_task_id(task_id)
    argument = make_input(step)
    view = await run_case_update(
        client,
        case_id,
        update,
        argument,
        result_type=StepView,
        update_id=update_id(action, task_id, idempotency_key),
    )
    # The result's values may be personal (a newborn's ID number): the log keeps the rest.
    detail = argument.model_dump(mode="json", exclude={"actor", "result"}, exclude_none=True)
    await run_in_threadpool(
        record_staff_action,
        engine,
        actor,
        AUDIT_ACTIONS[action],
        case_id=case_id,
        target=task_id,
        detail=detail,
        idempotency_key=idempotency_key,
    )
    return await run_in_threadpool(_as_seen_by, engine, actor, case_id, view)


def _as_seen_by(engine: Engine, actor: Actor, case_id: str, view: StepView) -> StepView:
    with Session(engine) as session:
        record = session.get(CaseRecord, case_id)
    if record is not None and sees_case_personal_data(actor, CaseSnapshot.model_validate(record.snapshot)):
        return view
    return masked(view)


@router.post("/{task_id}/claim", response_model=StepView)
async def claim_task(
    task_id: str, actor: ActorDep, client: ClientDep, engine: EngineDep, idempotency_key: IdempotencyKey = None
) -> StepView:
    return await act_on_task(
        task_id,
        actor,
        client,
        engine,
        "claim",
        CaseWorkflow.claim,
        lambda step: ClaimInput(actor=actor, step=step),
        idempotency_key,
    )


@router.post("/{task_id}/complete", response_model=StepView)
async def complete_task(
    task_id: str,
    body: CompleteTaskRequest,
    actor: ActorDep,
    client: ClientDep,
    engine: EngineDep,
    idempotency_key: IdempotencyKey = None,
) -> StepView:
    def make_input(step: str) -> CompleteStepInput:
        return CompleteStepInput(actor=actor, step=step, result=body.result, comment=body.comment)

    return await act_on_task(
        task_id, actor, client, engine, "complete", CaseWorkflow.complete, make_input, idempotency_key
    )


@router.post("/{task_id}/return", response_model=StepView)
async def return_task(
    task_id: str,
    body: ReturnTaskRequest,
    actor: ActorDep,
    client: ClientDep,
    engine: EngineDep,
    idempotency_key: IdempotencyKey = None,
) -> StepView:
    def make_input(step: str) -> ReturnStepInput:
        return ReturnStepInput(actor=actor, step=step, missing=body.missing, reason=body.reason)

    return await act_on_task(
        task_id, actor, client, engine, "return", CaseWorkflow.return_for_supplement, make_input, idempotency_key
    )


@router.post("/{task_id}/refuse", response_model=StepView)
async def refuse_task(
    task_id: str,
    body: RefuseTaskRequest,
    actor: ActorDep,
    client: ClientDep,
    engine: EngineDep,
    idempotency_key: IdempotencyKey = None,
) -> StepView:
    def make_input(step: str) -> RefuseStepInput:
        return RefuseStepInput(actor=actor, step=step, reason=body.reason)

    return await act_on_task(task_id, actor, client, engine, "refuse", CaseWorkflow.refuse, make_input, idempotency_key)

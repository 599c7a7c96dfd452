"""Officers' inbox and task actions: claim (签收), complete (办结), return (退回补正), refuse (不予办理),
and the task operations: unclaim (退回待办), reassign (改派), transfer (转办), suspend and resume
(中止, 恢复), extension (延期: the unit asks, a supervisor of its division approves or rejects).

A task id is ``<case_id>:<step>``. Each action is a workflow Update; its validator
decides (department, state, assignee, result schema) and a rejected action writes
nothing to the case's history.
"""

from __future__ import annotations

from collections.abc import AsyncGenerator, AsyncIterator
from typing import Annotated

from fastapi import APIRouter, Depends, Header, Query, Request, Response
from fastapi.responses import StreamingResponse

from api.deps import (
    ActorDep,
    ClientDep,
    EngineDep,
    SessionDep,
    oauth2_scheme,
    signed_in,
)
from api.errors import error_responses
from api.inbox_feed import InboxWatcher, matches_if_none_match
from api.routes.codec import SESSION_COOKIE
from api.schemas import (
    Code,
    CompleteTaskRequest,
    ExtensionTaskRequest,
    OffsetQuery,
    ReassignTaskRequest,
    RefuseTaskRequest,
    RejectExtensionRequest,
    ReturnTaskRequest,
    SuspendTaskRequest,
    TaskId,
    TaskList,
    TaskResponse,
    TransferTaskRequest,
)
from models.case import (
    Actor,
    ClaimInput,
    CompleteStepInput,
    ExtensionDecisionInput,
    ExtensionInput,
    ReassignInput,
    RefuseStepInput,
    ResumeInput,
    ReturnStepInput,
    StepStatus,
    StepView,
    SuspendInput,
    TransferInput,
    UnclaimInput,
)
from models.errors import DomainError
from services.inbox import MAX_SEARCH_LENGTH, DueFilter, InboxFilters, inbox_query, listing, read_versions
from services.tasks import act_on_task, colleague, transfer_target
from workflows.case.workflow import CaseWorkflow

router = APIRouter(prefix="/tasks", tags=["tasks"], responses=error_responses(401, 403, 404, 409, 413, 422, 503))

IdempotencyKey = Annotated[str | None, Header(alias="Idempotency-Key", max_length=128)]


def inbox_filters(
    step: Annotated[str | None, Query(max_length=64, pattern=r"^[a-z][a-z0-9_]*$")] = None,
    due: DueFilter | None = None,
    supervised: bool = False,
    q: Annotated[str | None, Query(max_length=MAX_SEARCH_LENGTH)] = None,
) -> InboxFilters:
    """Narrowing the inbox: ``step`` (``follow_up`` for every 回访), ``due`` (``overdue``; ``today``
    or ``week``: due by the end of today or of this week, Beijing time, not yet past), ``supervised``
    (only tasks under 督办) and ``q`` (part of a case number or applicant name, or a case id)."""
    return InboxFilters(step=step, due=due, supervised=supervised, search=q)


FiltersDep = Annotated[InboxFilters, Depends(inbox_filters)]


@router.get(
    "",
    response_model=TaskList,
    responses={304: {"description": "列表未变 (not modified: the If-None-Match ETag is current)"}},
)
def inbox(
    actor: ActorDep,
    session: SessionDep,
    response: Response,
    filters: FiltersDep,
    status: StepStatus | None = None,
    department: Code | None = None,
    limit: Annotated[int, Query(ge=1, le=200)] = 50,
    offset: OffsetQuery = 0,
    if_none_match: Annotated[str | None, Header(alias="If-None-Match", max_length=2048)] = None,
) -> TaskList | Response:
    """The department's tasks, oldest due first; open, claimed and awaiting by default.

    Answers an ``ETag`` that changes whenever a task of a listed department changes; sent
    back in ``If-None-Match``, it is answered ``304`` without running the listing.
    ``GET /tasks/events`` streams the ETag as it changes.
    """
    query = inbox_query(actor, status, department, limit, offset, filters)
    # The versions are read before the tasks: a change committed in between makes the
    # ETag older than the list, never newer, so the next request fetches it.
    etag = query.etag(read_versions(session, query.department))
    headers = {"ETag": etag, "Cache-Control": "private, no-cache", "Vary": "Authorization"}
    if matches_if_none_match(if_none_match, etag):
        return Response(status_code=304, headers=headers)
    response.headers.update(headers)
    rows, total = listing(session, query)
    items = [TaskResponse.model_validate(row, from_attributes=True) for row in rows]
    return TaskList(items=items, total=total, limit=limit, offset=offset)


def stream_token(request: Request, token: Annotated[str | None, Depends(oauth2_scheme)]) -> str | None:
    """The bearer token, or the console session's (a browser's EventSource sends cookies, not headers)."""
    return token or request.cookies.get(SESSION_COOKIE)


async def get_stream_actor(request: Request, token: Annotated[str | None, Depends(stream_token)]) -> Actor:
    """The stream's actor, while its session is live."""
    return (await signed_in(token, request)).actor


async def while_signed_in(body: AsyncGenerator[bytes], request: Request, token: str | None) -> AsyncIterator[bytes]:
    """The stream, until its session ends (logout, revoke, removal): checked before each event and
    heartbeat, so a revoked officer's open inbox stops within a heartbeat, not at reconnection."""
    try:
        async for chunk in body:
            try:
                await signed_in(token, request)
            except DomainError:
                return
            yield chunk
    finally:
        await body.aclose()  # its subscription ends with the stream, not when it is collected


@router.get("/events", include_in_schema=False)
async def inbox_events(
    request: Request,
    actor: Annotated[Actor, Depends(get_stream_actor)],
    token: Annotated[str | None, Depends(stream_token)],
    filters: FiltersDep,
    status: StepStatus | None = None,
    department: Code | None = None,
    limit: Annotated[int, Query(ge=1, le=200)] = 50,
    offset: OffsetQuery = 0,
) -> StreamingResponse:
    """Server-Sent Events: ``event: inbox`` with ``{"etag": ...}``, the ETag ``GET /tasks`` answers
    for the same query, on connect and each time it changes; ``: keep-alive`` when idle.

    Outside the OpenAPI document: a stream never ends, so it cannot be called like the rest.
    """
    query = inbox_query(actor, status, department, limit, offset, filters)
    watcher: InboxWatcher = request.app.state.inbox_watcher
    await watcher.refresh()
    return StreamingResponse(
        while_signed_in(watcher.stream(query), request, token),
        media_type="text/event-stream",
        headers={"Cache-Control": "no-cache", "X-Accel-Buffering": "no"},
    )


@router.post("/{task_id}/claim", response_model=StepView)
async def claim_task(
    task_id: TaskId, actor: ActorDep, client: ClientDep, engine: EngineDep, idempotency_key: IdempotencyKey = None
) -> StepView:
    return await act_on_task(
        task_id,
        actor,
        client,
        "claim",
        CaseWorkflow.claim,
        lambda step: ClaimInput(actor=actor, step=step),
        idempotency_key,
        engine=engine,
    )


@router.post("/{task_id}/complete", response_model=StepView)
async def complete_task(
    task_id: TaskId,
    body: CompleteTaskRequest,
    actor: ActorDep,
    client: ClientDep,
    engine: EngineDep,
    idempotency_key: IdempotencyKey = None,
) -> StepView:
    def make_input(step: str) -> CompleteStepInput:
        return CompleteStepInput(actor=actor, step=step, result=body.result, comment=body.comment)

    return await act_on_task(
        task_id, actor, client, "complete", CaseWorkflow.complete, make_input, idempotency_key, engine=engine
    )


@router.post("/{task_id}/return", response_model=StepView)
async def return_task(
    task_id: TaskId,
    body: ReturnTaskRequest,
    actor: ActorDep,
    client: ClientDep,
    engine: EngineDep,
    idempotency_key: IdempotencyKey = None,
) -> StepView:
    def make_input(step: str) -> ReturnStepInput:
        return ReturnStepInput(actor=actor, step=step, missing=body.missing, reason=body.reason)

    return await act_on_task(
        task_id, actor, client, "return", CaseWorkflow.return_for_supplement, make_input, idempotency_key, engine=engine
    )


@router.post("/{task_id}/refuse", response_model=StepView)
async def refuse_task(
    task_id: TaskId,
    body: RefuseTaskRequest,
    actor: ActorDep,
    client: ClientDep,
    engine: EngineDep,
    idempotency_key: IdempotencyKey = None,
) -> StepView:
    def make_input(step: str) -> RefuseStepInput:
        return RefuseStepInput(actor=actor, step=step, reason=body.reason)

    return await act_on_task(
        task_id, actor, client, "refuse", CaseWorkflow.refuse, make_input, idempotency_key, engine=engine
    )


@router.post("/{task_id}/unclaim", response_model=StepView)
async def unclaim_task(
    task_id: TaskId, actor: ActorDep, client: ClientDep, engine: EngineDep, idempotency_key: IdempotencyKey = None
) -> StepView:
    """退回待办: the assignee, or a supervisor of the unit's division, puts the task back in the unit's inbox."""

    def make_input(step: str) -> UnclaimInput:
        return UnclaimInput(actor=actor, step=step)

    return await act_on_task(
        task_id, actor, client, "unclaim", CaseWorkflow.unclaim, make_input, idempotency_key, engine=engine
    )


@router.post("/{task_id}/reassign", response_model=StepView)
async def reassign_task(
    task_id: TaskId,
    body: ReassignTaskRequest,
    actor: ActorDep,
    client: ClientDep,
    session: SessionDep,
    engine: EngineDep,
    idempotency_key: IdempotencyKey = None,
) -> StepView:
    """改派: to a colleague of the same unit, claimed in their name."""
    to = colleague(session, body.to)

    def make_input(step: str) -> ReassignInput:
        return ReassignInput(actor=actor, step=step, to=to)

    return await act_on_task(
        task_id, actor, client, "reassign", CaseWorkflow.reassign, make_input, idempotency_key, engine=engine
    )


@router.post("/{task_id}/transfer", response_model=StepView)
async def transfer_task(
    task_id: TaskId,
    body: TransferTaskRequest,
    actor: ActorDep,
    client: ClientDep,
    session: SessionDep,
    engine: EngineDep,
    idempotency_key: IdempotencyKey = None,
) -> StepView:
    """转办: a wrongly routed task goes to another unit of its department; the statutory clock runs on."""
    unit, department = transfer_target(session, body.unit)

    def make_input(step: str) -> TransferInput:
        return TransferInput(actor=actor, step=step, unit=unit, unit_department=department, reason=body.reason)

    return await act_on_task(
        task_id, actor, client, "transfer", CaseWorkflow.transfer, make_input, idempotency_key, engine=engine
    )


@router.post("/{task_id}/suspend", response_model=StepView)
async def suspend_task(
    task_id: TaskId,
    body: SuspendTaskRequest,
    actor: ActorDep,
    client: ClientDep,
    engine: EngineDep,
    idempotency_key: IdempotencyKey = None,
) -> StepView:
    """中止: a statutory special procedure (e.g. a DNA test before 户口登记); the clock stops until resumed."""

    def make_input(step: str) -> SuspendInput:
        return SuspendInput(actor=actor, step=step, reason=body.reason, materials=body.materials)

    return await act_on_task(
        task_id, actor, client, "suspend", CaseWorkflow.suspend, make_input, idempotency_key, engine=engine
    )


@router.post("/{task_id}/resume", response_model=StepView)
async def resume_task(
    task_id: TaskId, actor: ActorDep, client: ClientDep, engine: EngineDep, idempotency_key: IdempotencyKey = None
) -> StepView:
    """恢复办理: the clock runs again with the working time it had left."""

    def make_input(step: str) -> ResumeInput:
        return ResumeInput(actor=actor, step=step)

    return await act_on_task(
        task_id, actor, client, "resume", CaseWorkflow.resume, make_input, idempotency_key, engine=engine
    )


@router.post("/{task_id}/extension", response_model=StepView)
async def request_extension(
    task_id: TaskId,
    body: ExtensionTaskRequest,
    actor: ActorDep,
    client: ClientDep,
    engine: EngineDep,
    idempotency_key: IdempotencyKey = None,
) -> StepView:
    """延期申请: the assignee asks a supervisor of the unit's division for more working days."""

    def make_input(step: str) -> ExtensionInput:
        return ExtensionInput(actor=actor, step=step, working_days=body.working_days, reason=body.reason)

    return await act_on_task(
        task_id, actor, client, "extension", CaseWorkflow.request_extension, make_input, idempotency_key, engine=engine
    )


@router.post("/{task_id}/extension/approve", response_model=StepView)
async def approve_extension(
    task_id: TaskId, actor: ActorDep, client: ClientDep, engine: EngineDep, idempotency_key: IdempotencyKey = None
) -> StepView:
    """批准延期: the due date moves by the working days asked for."""

    def make_input(step: str) -> ExtensionDecisionInput:
        return ExtensionDecisionInput(actor=actor, step=step, approve=True)

    return await act_on_task(
        task_id,
        actor,
        client,
        "extension_approve",
        CaseWorkflow.decide_extension,
        make_input,
        idempotency_key,
        engine=engine,
    )


@router.post("/{task_id}/extension/reject", response_model=StepView)
async def reject_extension(
    task_id: TaskId,
    body: RejectExtensionRequest,
    actor: ActorDep,
    client: ClientDep,
    engine: EngineDep,
    idempotency_key: IdempotencyKey = None,
) -> StepView:
    """不批准延期: the due date stays; the reason is kept on the timeline."""

    def make_input(step: str) -> ExtensionDecisionInput:
        return ExtensionDecisionInput(actor=actor, step=step, approve=False, reason=body.reason)

    return await act_on_task(
        task_id,
        actor,
        client,
        "extension_reject",
        CaseWorkflow.decide_extension,
        make_input,
        idempotency_key,
        engine=engine,
    )

"""延期审批: the supervisor's list of extension requests awaiting a decision in their division,
each approved (the due date moves by the working days asked) or rejected with a reason, through
the same workflow Update as the JSON API (POST /tasks/{task_id}/extension/approve|reject)."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import Depends, Query, Request, Response
from sqlalchemy import Engine
from sqlmodel import Session
from starlette.concurrency import run_in_threadpool
from temporalio.client import WorkflowUpdateFailedError

from api.console.base import (
    checked_form,
    console_router,
    flash_redirect,
    form_text,
    idempotency_key_of,
    render,
    require_console_role,
)
from api.console.officer import Labels
from api.deps import ClientDep, EngineDep
from api.errors import from_update_failure
from models.case import Actor, ExtensionDecisionInput
from models.errors import DomainError, ErrorCode
from services.supervision import pending_extensions
from services.tasks import act_on_task
from workflows.case.workflow import CaseWorkflow

router = console_router()

SupervisorActor = Annotated[Actor, Depends(require_console_role("supervisor"))]
PAGE_SIZE = 50
LIST_URL = "/dashboard/extensions"


def _context(engine: Engine, actor: Actor, page: int) -> dict[str, Any]:
    with Session(engine) as session:
        items, total = pending_extensions(session, actor, PAGE_SIZE, (page - 1) * PAGE_SIZE)
        labels = Labels(session)
    for item in items:
        item["thing_zh"] = labels.thing(item["thing"])
        item["step_zh"] = labels.step(item["thing"], item["step"])
        item["department_zh"] = labels.department(item["department"])
    return {"items": items, "total": total, "page": page, "pages": max(1, -(-total // PAGE_SIZE))}


async def _page(
    request: Request, actor: Actor, engine: Engine, page: int = 1, errors: dict[str, str] | None = None
) -> Response:
    context = await run_in_threadpool(_context, engine, actor, page)
    context |= {"active_nav": LIST_URL, "errors": errors or {}}
    return render(request, "supervisor_extensions.html", context, status_code=422 if errors else 200, actor=actor)


@router.get("/dashboard/extensions")
async def extensions(
    request: Request, actor: SupervisorActor, engine: EngineDep, page: Annotated[int, Query(ge=1)] = 1
) -> Response:
    """The extension requests awaiting this supervisor's decision."""
    return await _page(request, actor, engine, page)


@router.post("/dashboard/extensions/{task_id}/{decision}")
async def decide(
    request: Request, task_id: str, decision: str, actor: SupervisorActor, client: ClientDep, engine: EngineDep
) -> Response:
    """批准 or 不批准: a refusal needs a reason, kept on the case's timeline."""
    if decision not in {"approve", "reject"}:
        raise DomainError(ErrorCode.NOT_FOUND, "页面不存在")
    form = await checked_form(request)
    reason = form_text(form, "reason")
    if decision == "reject" and not 1 <= len(reason) <= 500:
        return await _page(request, actor, engine, errors={task_id: "不批准须说明理由（1至500字）"})
    approve = decision == "approve"

    def make_input(step: str) -> ExtensionDecisionInput:
        return ExtensionDecisionInput(actor=actor, step=step, approve=approve, reason=None if approve else reason)

    try:
        await act_on_task(
            task_id,
            actor,
            client,
            f"extension_{decision}",
            CaseWorkflow.decide_extension,
            make_input,
            idempotency_key_of(form),
            engine=engine,
        )
    except (DomainError, WorkflowUpdateFailedError) as error:
        domain = from_update_failure(error) if isinstance(error, WorkflowUpdateFailedError) else error
        if domain.code in {ErrorCode.CONFLICT, ErrorCode.UNAVAILABLE, ErrorCode.INVALID}:
            return flash_redirect(request, LIST_URL, domain.message, "error")
        raise domain from error
    return flash_redirect(request, LIST_URL, "已批准延期，办理期限已顺延" if approve else "已不批准延期，办理期限不变")

"""The officer's task operations in the console: 退回待办, 改派, 转办, 中止/恢复 and 延期申请,
each sent as the same workflow Update as the JSON API (api/routes/tasks.py); a refusal comes
back on the task page as the other actions' do."""

from __future__ import annotations

import re

from fastapi import Request, Response
from sqlmodel import Session
from starlette.concurrency import run_in_threadpool

from api.console.base import checked_form, console_router, form_text
from api.console.officer import FormState, TaskActor, _act, _reason, _task_page
from api.deps import ClientDep, EngineDep
from models.case import (
    ExtensionInput,
    ReassignInput,
    ResumeInput,
    SuspendInput,
    TransferInput,
    UnclaimInput,
)
from models.errors import DomainError
from services.tasks import colleague, transfer_target
from workflows.case.task_operations import MAX_EXTENSION_WORKING_DAYS
from workflows.case.workflow import CaseWorkflow

router = console_router()

_ITEMS = re.compile(r"[、,，;；\n]+")
MAX_SUSPENSION_MATERIALS = 20


@router.post("/inbox/{task_id}/unclaim")
async def unclaim(request: Request, task_id: str, actor: TaskActor, client: ClientDep, engine: EngineDep) -> Response:
    """退回待办: the task goes back to the unit's inbox for a colleague to claim."""
    form = await checked_form(request)
    return await _act(
        request,
        actor,
        client,
        engine,
        task_id,
        form,
        "unclaim",
        CaseWorkflow.unclaim,
        lambda step: UnclaimInput(actor=actor, step=step),
        FormState(),
        "已退回待办，本单位其他工作人员可签收",
        "/inbox",
    )


@router.post("/inbox/{task_id}/reassign")
async def reassign(request: Request, task_id: str, actor: TaskActor, client: ClientDep, engine: EngineDep) -> Response:
    """改派: to a colleague of the same unit, claimed in their name."""
    form = await checked_form(request)
    username = form_text(form, "to")
    state = FormState(open_form="reassign", values={"to": username})
    if not username:
        state.errors, state.message = {"to": "请选择改派给哪位工作人员"}, "请选择改派对象"
        return await _task_page(request, actor, engine, task_id, state, status_code=422)

    def find() -> ReassignInput:
        with Session(engine) as session:
            return ReassignInput(actor=actor, step="", to=colleague(session, username))

    try:
        found = await run_in_threadpool(find)
    except DomainError:
        state.errors, state.message = {"to": "没有该工作人员"}, "改派对象有误"
        return await _task_page(request, actor, engine, task_id, state, status_code=422)
    return await _act(
        request,
        actor,
        client,
        engine,
        task_id,
        form,
        "reassign",
        CaseWorkflow.reassign,
        lambda step: found.model_copy(update={"step": step}),
        state,
        f"已改派给 {username}",
        "/inbox",
    )


@router.post("/inbox/{task_id}/transfer")
async def transfer(request: Request, task_id: str, actor: TaskActor, client: ClientDep, engine: EngineDep) -> Response:
    """转办: a wrongly routed task goes to another unit of the department; its time limit runs on."""
    form = await checked_form(request)
    code = form_text(form, "unit")
    errors: dict[str, str] = {}
    reason = _reason(form, errors)
    state = FormState(open_form="transfer", values={"unit": code, "reason": reason}, errors=errors)
    if not code:
        errors["unit"] = "请选择转办单位"
    if errors:
        state.message = "转办信息不完整"
        return await _task_page(request, actor, engine, task_id, state, status_code=422)

    def find() -> TransferInput:
        with Session(engine) as session:
            unit, department = transfer_target(session, code)
        return TransferInput(actor=actor, step="", unit=unit, unit_department=department, reason=reason)

    try:
        found = await run_in_threadpool(find)
    except DomainError:
        state.errors, state.message = {"unit": "没有该单位或已停用"}, "转办单位有误"
        return await _task_page(request, actor, engine, task_id, state, status_code=422)
    return await _act(
        request,
        actor,
        client,
        engine,
        task_id,
        form,
        "transfer",
        CaseWorkflow.transfer,
        lambda step: found.model_copy(update={"step": step}),
        state,
        f"已转办至{found.unit.name_zh}，办理时限继续计算",
        "/inbox",
    )


@router.post("/inbox/{task_id}/suspend")
async def suspend(request: Request, task_id: str, actor: TaskActor, client: ClientDep, engine: EngineDep) -> Response:
    """中止办理: a statutory special procedure; the time limit stops until the officer resumes."""
    form = await checked_form(request)
    errors: dict[str, str] = {}
    reason = _reason(form, errors)
    materials = [item.strip() for item in _ITEMS.split(form_text(form, "materials")) if item.strip()]
    if len(materials) > MAX_SUSPENSION_MATERIALS or any(len(item) > 100 for item in materials):
        errors["materials"] = f"最多{MAX_SUSPENSION_MATERIALS}项，每项不超过100字"
    state = FormState(
        open_form="suspend", values={"reason": reason, "materials": form_text(form, "materials")}, errors=errors
    )
    if errors:
        state.message = "中止办理须说明理由"
        return await _task_page(request, actor, engine, task_id, state, status_code=422)
    return await _act(
        request,
        actor,
        client,
        engine,
        task_id,
        form,
        "suspend",
        CaseWorkflow.suspend,
        lambda step: SuspendInput(actor=actor, step=step, reason=reason, materials=materials),
        state,
        "已中止办理，办理时限暂停计算",
    )


@router.post("/inbox/{task_id}/resume")
async def resume(request: Request, task_id: str, actor: TaskActor, client: ClientDep, engine: EngineDep) -> Response:
    """恢复办理: the time limit runs again with the working time it had left."""
    form = await checked_form(request)
    return await _act(
        request,
        actor,
        client,
        engine,
        task_id,
        form,
        "resume",
        CaseWorkflow.resume,
        lambda step: ResumeInput(actor=actor, step=step),
        FormState(),
        "已恢复办理，办理时限按剩余时间继续计算",
    )


@router.post("/inbox/{task_id}/extension")
async def ask_extension(
    request: Request, task_id: str, actor: TaskActor, client: ClientDep, engine: EngineDep
) -> Response:
    """延期申请: asks a supervisor of the unit's division for more working days."""
    form = await checked_form(request)
    errors: dict[str, str] = {}
    reason = _reason(form, errors)
    days_text = form_text(form, "working_days")
    days = int(days_text) if days_text.isdigit() else 0
    if not 1 <= days <= MAX_EXTENSION_WORKING_DAYS:
        errors["working_days"] = f"请填写1至{MAX_EXTENSION_WORKING_DAYS}个工作日"
    state = FormState(open_form="extension", values={"working_days": days_text, "reason": reason}, errors=errors)
    if errors:
        state.message = "延期申请不完整"
        return await _task_page(request, actor, engine, task_id, state, status_code=422)
    return await _act(
        request,
        actor,
        client,
        engine,
        task_id,
        form,
        "extension",
        CaseWorkflow.request_extension,
        lambda step: ExtensionInput(actor=actor, step=step, working_days=days, reason=reason),
        state,
        f"已申请延期{days}个工作日，待监督人员审批",
    )


__all__ = ["router"]

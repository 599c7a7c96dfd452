"""Officers' task actions: claim (签收), complete (办结), return (退回补正), refuse (不予办理) and the
task operations (退回待办, 改派, 转办, 中止/恢复, 延期 and its decision); the JSON
routes (api/routes/tasks.py) and the console (api/console/officer.py) both send them here.

A task id is ``<case_id>:<step>``. Each action is a workflow Update; its validator decides
(department, state, assignee, result schema) and a rejected action writes nothing. The
staff member's audit row travels with the Update and is written with the change.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from pydantic import BaseModel
from sqlalchemy import Engine
from sqlmodel import Session
from temporalio.client import Client

from models.case import Actor, Colleague, StepUnit, StepView
from models.errors import DomainError, ErrorCode
from models.tables import Unit, UserAccount
from services.access import require_role
from services.audit import AuditAction
from services.cases import staff_audit
from services.idempotency import send_action

MAX_CASE_ID_LENGTH = 64


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
    "unclaim": AuditAction.TASK_UNCLAIM,
    "reassign": AuditAction.TASK_REASSIGN,
    "transfer": AuditAction.TASK_TRANSFER,
    "suspend": AuditAction.TASK_SUSPEND,
    "resume": AuditAction.TASK_RESUME,
    "extension": AuditAction.TASK_EXTENSION_REQUEST,
    "extension_approve": AuditAction.TASK_EXTENSION_APPROVE,
    "extension_reject": AuditAction.TASK_EXTENSION_REJECT,
}


async def act_on_task(
    task_id: str,
    actor: Actor,
    client: Client,
    action: str,
    update: Any,
    make_input: Callable[[str], BaseModel],
    idempotency_key: str | None,
    *,
    engine: Engine,
) -> StepView:
    """Send one officer action to the task's case as a workflow Update; its audit row goes
    with it and is written in the same transaction as the change (activities/case_changes.py).
    Its Idempotency-Key is bound to the actor, the action, the task and the input asked for."""
    # Supervisors act only on 回访 tasks; the workflow's validator holds each role to its steps.
    require_role(actor, "officer", "clerk", "supervisor")
    case_id, step = parse_task_id(task_id)
    argument = make_input(step)
    # What was asked (the result, the reason, the unit …), not who asked nor the audit row added here.
    asked = argument.model_dump(mode="json", exclude={"actor", "audit"})
    # The result's values may be personal (a newborn's ID number): the log keeps the rest.
    detail = argument.model_dump(
        mode="json", exclude={"actor", "result", "audit", "unit_department"}, exclude_none=True
    )
    argument = argument.model_copy(
        update={"audit": staff_audit(actor, AUDIT_ACTIONS[action], task_id, detail, idempotency_key)}
    )
    view = await send_action(
        client,
        engine,
        case_id,
        update,
        argument,
        actor=actor,
        action=action,
        target=task_id,
        idempotency_key=idempotency_key,
        body=asked,
        result_type=StepView,
    )
    # The workflow answered with the view this actor may read (masked or not): no reload.
    return view


def colleague(session: Session, username: str) -> Colleague:
    """The officer a task is to be reassigned to (改派); the workflow checks they share its unit."""
    account = session.get(UserAccount, username)
    if account is None:
        raise DomainError(ErrorCode.INVALID, "没有该工作人员 (no such account)", {"to": "no such account"})
    unit = session.get(Unit, account.unit_code) if account.unit_code else None
    return Colleague(
        username=account.username,
        role=account.role,
        unit=account.unit,
        unit_code=account.unit_code,
        division_code=unit.division_code if unit is not None else account.division_code,
    )


def transfer_target(session: Session, code: str) -> tuple[StepUnit, str]:
    """The unit a task is to be transferred to (转办), and its department."""
    unit = session.get(Unit, code)
    if unit is None or not unit.active:
        raise DomainError(
            ErrorCode.INVALID, "没有该单位或已停用 (no such active unit)", {"unit": "no such active unit"}
        )
    step_unit = StepUnit(
        code=unit.code, name_zh=unit.name_zh, division_code=unit.division_code, window_zh=unit.window_zh
    )
    return step_unit, unit.department

"""Supervisors' actions on a case: a manual 督办 (to the step's department) or 催办 (to its
assignee); the JSON routes (api/routes/supervision.py) and the console both send them here.
And the extension requests (延期申请) awaiting a supervisor's decision."""

from __future__ import annotations

from typing import Any, Literal

from sqlalchemy import Engine, func, select
from sqlmodel import Session, col
from temporalio.client import Client

from domain.redaction import masked
from models.case import Actor, StepView, SuperviseInput
from models.errors import DomainError, ErrorCode
from models.tables import CaseRecord, TaskRecord, Unit
from services.access import supervised_tasks_filter
from services.audit import AuditAction
from services.cases import staff_audit
from services.idempotency import send_action
from workflows.case.workflow import CaseWorkflow


async def supervise(
    client: Client,
    actor: Actor,
    case_id: str,
    step: str,
    message: str,
    kind: Literal["notice", "urge"],
    idempotency_key: str | None,
    *,
    engine: Engine,
) -> StepView:
    """A supervisor's 督办 (notice) or 催办 (urge) on a case's step; its audit row goes with it."""
    if actor.role != "supervisor":
        raise DomainError(ErrorCode.FORBIDDEN, "仅监督人员可督办、催办 (supervisors only)")
    target = f"{case_id}:{step}"
    action = AuditAction.SUPERVISION_NOTICE if kind == "notice" else AuditAction.SUPERVISION_URGE
    audit = staff_audit(actor, action, target, {"step": step, "message": message}, idempotency_key)
    view = await send_action(
        client,
        engine,
        case_id,
        CaseWorkflow.supervise,
        SuperviseInput(actor=actor, step=step, kind=kind, message=message, audit=audit),
        actor=actor,
        action=kind,
        target=target,
        idempotency_key=idempotency_key,
        body={"message": message},
        result_type=StepView,
    )
    return masked(view)  # supervisors read personal data masked


def pending_extensions(session: Session, actor: Actor, limit: int, offset: int) -> tuple[list[dict[str, Any]], int]:
    """One page of the extension requests (延期申请) awaiting a decision in the supervisor's
    division and those within it, the soonest due first, and their total."""
    where = [col(TaskRecord.extension_days).is_not(None), supervised_tasks_filter(actor)]
    total = session.execute(select(func.count()).select_from(TaskRecord).where(*where)).scalar_one()
    tasks = list(
        session.execute(
            select(TaskRecord)
            .where(*where)
            .order_by(col(TaskRecord.due_at), col(TaskRecord.task_id))
            .limit(limit)
            .offset(offset)
        ).scalars()
    )
    cases = {
        record.case_id: record
        for record in session.execute(
            select(CaseRecord).where(col(CaseRecord.case_id).in_({task.case_id for task in tasks}))
        ).scalars()
    }
    units: dict[str, str] = dict(
        session.execute(
            select(col(Unit.code), col(Unit.name_zh)).where(
                col(Unit.code).in_({task.unit_code for task in tasks if task.unit_code})
            )
        ).all()
    )
    items = []
    for task in tasks:
        record = cases.get(task.case_id)
        steps = record.snapshot.get("steps", []) if record is not None else []
        request = next((step.get("extension_request") for step in steps if step.get("step") == task.step), None) or {}
        items.append(
            {
                "task_id": task.task_id,
                "case_id": task.case_id,
                "case_no": record.case_no if record is not None else None,
                "thing": task.thing,
                "step": task.step,
                "department": task.department,
                "unit_code": task.unit_code,
                "unit_zh": units.get(task.unit_code or ""),
                "assignee": task.assignee,
                "due_at": task.due_at,
                "provisional": task.provisional,
                "working_days": task.extension_days,
                "reason": request.get("reason"),
                "requested_by": request.get("requested_by"),
                "requested_at": request.get("requested_at"),
            }
        )
    return items, int(total)

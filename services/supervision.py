"""Supervisors' actions on a case: a manual 督办 (to the step's department) or 催办 (to its
assignee); the JSON routes (api/routes/supervision.py) and the console both send them here."""

from __future__ import annotations

from typing import Literal

from temporalio.client import Client

from domain.redaction import masked
from models.case import Actor, StepView, SuperviseInput
from models.errors import DomainError, ErrorCode
from services.audit import AuditAction
from services.cases import staff_audit
from services.gateway import send_update, update_id
from workflows.case.workflow import CaseWorkflow


async def supervise(
    client: Client,
    actor: Actor,
    case_id: str,
    step: str,
    message: str,
    kind: Literal["notice", "urge"],
    idempotency_key: str | None,
) -> StepView:
    """A supervisor's 督办 (notice) or 催办 (urge) on a case's step; its audit row goes with it."""
    if actor.role != "supervisor":
        raise DomainError(ErrorCode.FORBIDDEN, "仅监督人员可督办、催办 (supervisors only)")
    target = f"{case_id}:{step}"
    action = AuditAction.SUPERVISION_NOTICE if kind == "notice" else AuditAction.SUPERVISION_URGE
    audit = staff_audit(actor, action, target, {"step": step, "message": message}, idempotency_key)
    view = await send_update(
        client,
        case_id,
        CaseWorkflow.supervise,
        SuperviseInput(actor=actor, step=step, kind=kind, message=message, audit=audit),
        result_type=StepView,
        update_id=update_id(kind, target, idempotency_key),
    )
    return masked(view)  # supervisors read personal data masked

"""The audit log (审计日志): every staff action that succeeded.

A case's or complaint's staff action carries its row into its workflow
(``services.cases.staff_audit``), which writes it in the same transaction as the change
it records. Other routes (catalogue, units, 督办 acknowledgements, session revokes) call ``record_staff_action``
after the action has taken effect. A request retried with the same Idempotency-Key is
the same action and adds no second row (unique on action + request key). Applicants'
own actions are in their case's history and not audited here. Rows are only ever
added: nothing updates or deletes them (models/tables.py refuses both); admins read
them at ``GET /audit``. Free text in ``detail`` is stored masked, so the log holds no
ID number or phone. If ``record_staff_action`` cannot write the row the request fails
although the action took effect; a retry with the same Idempotency-Key then writes the
row without repeating the action.
"""

from __future__ import annotations

import logging
from datetime import UTC, datetime
from enum import StrEnum
from typing import Any

from sqlalchemy import Engine
from sqlalchemy.exc import IntegrityError
from sqlmodel import Session

from domain.redaction import mask_personal_data
from models.case import Actor
from models.tables import AuditRecord

logger = logging.getLogger(__name__)


class AuditAction(StrEnum):
    CASE_ACCEPT = "case_accept"
    CASE_SUPPLEMENT = "case_supplement"
    TASK_CLAIM = "task_claim"
    TASK_COMPLETE = "task_complete"
    TASK_RETURN = "task_return"
    TASK_REFUSE = "task_refuse"
    SUPERVISION_NOTICE = "supervision_notice"
    SUPERVISION_URGE = "supervision_urge"
    NOTICE_ACKNOWLEDGE = "notice_acknowledge"
    CATALOGUE_PUBLISH = "catalogue_publish"
    CATALOGUE_RETIRE = "catalogue_retire"
    COMPLAINT_FILE = "complaint_file"
    COMPLAINT_ASSIGN = "complaint_assign"
    COMPLAINT_ANSWER = "complaint_answer"
    COMPLAINT_CLOSE = "complaint_close"
    UNIT_CREATE = "unit_create"
    UNIT_UPDATE = "unit_update"
    TASK_UNCLAIM = "task_unclaim"
    TASK_REASSIGN = "task_reassign"
    TASK_TRANSFER = "task_transfer"
    TASK_SUSPEND = "task_suspend"
    TASK_RESUME = "task_resume"
    TASK_EXTENSION_REQUEST = "task_extension_request"
    TASK_EXTENSION_APPROVE = "task_extension_approve"
    TASK_EXTENSION_REJECT = "task_extension_reject"
    CASE_WITHDRAW = "case_withdraw"
    CASE_DECLINE = "case_decline"
    LICENCE_REVOKE = "licence_revoke"
    SESSIONS_REVOKE = "sessions_revoke"
    CODEC_DECODE = "codec_decode"
    CODEC_DECODE_REFUSED = "codec_decode_refused"


AUDIT_ACTION_ZH: dict[AuditAction, str] = {
    AuditAction.CASE_ACCEPT: "窗口受理",
    AuditAction.CASE_SUPPLEMENT: "代为补正",
    AuditAction.TASK_CLAIM: "签收",
    AuditAction.TASK_COMPLETE: "办结",
    AuditAction.TASK_RETURN: "退回补正",
    AuditAction.TASK_REFUSE: "不予办理",
    AuditAction.SUPERVISION_NOTICE: "督办",
    AuditAction.SUPERVISION_URGE: "催办",
    AuditAction.NOTICE_ACKNOWLEDGE: "督办签收",
    AuditAction.CATALOGUE_PUBLISH: "发布事项版本",
    AuditAction.CATALOGUE_RETIRE: "停用事项版本",
    AuditAction.COMPLAINT_FILE: "代为投诉",
    AuditAction.COMPLAINT_ASSIGN: "投诉分派",
    AuditAction.COMPLAINT_ANSWER: "投诉答复",
    AuditAction.COMPLAINT_CLOSE: "投诉办结",
    AuditAction.UNIT_CREATE: "新增单位",
    AuditAction.UNIT_UPDATE: "修改单位",
    AuditAction.TASK_UNCLAIM: "退回待办",
    AuditAction.TASK_REASSIGN: "改派",
    AuditAction.TASK_TRANSFER: "转办",
    AuditAction.TASK_SUSPEND: "中止办理",
    AuditAction.TASK_RESUME: "恢复办理",
    AuditAction.TASK_EXTENSION_REQUEST: "申请延期",
    AuditAction.TASK_EXTENSION_APPROVE: "批准延期",
    AuditAction.TASK_EXTENSION_REJECT: "不批准延期",
    AuditAction.CASE_WITHDRAW: "撤回申请",
    AuditAction.CASE_DECLINE: "不予受理",
    AuditAction.LICENCE_REVOKE: "撤销电子证照",
    AuditAction.SESSIONS_REVOKE: "强制下线",
    AuditAction.CODEC_DECODE: "解密工作流载荷",
    AuditAction.CODEC_DECODE_REFUSED: "拒绝解密工作流载荷",
}


def record_staff_action(
    engine: Engine,
    actor: Actor,
    action: AuditAction,
    *,
    case_id: str | None,
    target: str | None = None,
    detail: dict[str, Any] | None = None,
    idempotency_key: str | None = None,
) -> None:
    """Append one row for a staff action that succeeded (blocking: call it from a thread in async code)."""
    if actor.role == "applicant":
        return
    request_key = f"{target or case_id or ''}/{idempotency_key}" if idempotency_key else None
    row = AuditRecord(
        at=datetime.now(UTC),
        actor=actor.username,
        role=actor.role,
        unit=actor.unit,
        unit_code=actor.unit_code,
        action=action.value,
        case_id=case_id,
        target=target,
        detail=mask_personal_data(detail or {}),
        request_key=request_key,
    )
    with Session(engine) as session:
        session.add(row)
        try:
            session.commit()
        except IntegrityError:
            # Only a retried request (same action and key) can collide: it is already logged.
            session.rollback()
            if request_key is None:
                raise
            logger.debug("audit: %s %s already recorded for this Idempotency-Key", action.value, target)

"""What a case tells people: the materials split for the acceptance notice (received,
fetched by data sharing, still owed) and the applicant's notifications. Pure functions."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from temporalio import workflow

from workflows.case.state import CaseState, StepState
from workflows.case.views import DELIVERY_METHOD_ZH, delivery_method

with workflow.unsafe.imports_passed_through():
    from models.case import (
        CaseStatus,
        EscalationInput,
        MaterialEntry,
        MaterialRequest,
        NotificationInput,
        SuperviseInput,
        SupervisionNoticeInput,
    )
    from models.catalogue import Material, read_path


@dataclass(frozen=True)
class Notice:
    """One notification for the applicant: its kind, text and the step it is about."""

    kind: str
    message_zh: str
    step: str | None = None


def to_applicant(state: CaseState, notice: Notice, at: datetime) -> NotificationInput:
    """The notification that carries ``notice`` to the case's applicant."""
    return NotificationInput(
        case_id=state.case.case_id,
        kind=notice.kind,
        recipient=state.case.owner,
        message_zh=notice.message_zh,
        step=notice.step,
        at=at,
    )


def applicable_materials(state: CaseState) -> list[Material]:
    form = state.case.form
    return [m for m in state.case.definition.materials if m.applies(form)]


def data_sharing_requests(state: CaseState) -> list[MaterialRequest]:
    """What to ask the data-sharing platform for: documents of people named in the form."""
    form = state.case.form
    return [
        MaterialRequest(
            material=m.code, document=m.document or "", subject_id_number=str(read_path(form, m.subject or ""))
        )
        for m in applicable_materials(state)
        if m.source == "data_sharing" and read_path(form, m.subject or "")
    ]


def sort_materials(
    state: CaseState, found: dict[str, str]
) -> tuple[list[MaterialEntry], list[MaterialEntry], list[MaterialEntry]]:
    """The applicable materials as received, fetched by data sharing (``found``), and owed."""
    applicable = applicable_materials(state)
    uploaded = state.case.form.get("materials") or {}
    received = [MaterialEntry(code=m.code, name_zh=m.name_zh) for m in applicable if m.source == "form"]
    shared: list[MaterialEntry] = []
    to_supply: list[MaterialEntry] = []
    for material in applicable:
        if material.source == "form":
            continue
        if material.code in found:
            shared.append(MaterialEntry(code=material.code, name_zh=material.name_zh, reference=found[material.code]))
        elif material.code in uploaded:
            received.append(
                MaterialEntry(code=material.code, name_zh=material.name_zh, reference=uploaded[material.code])
            )
        elif material.source != "commitment":
            to_supply.append(MaterialEntry(code=material.code, name_zh=material.name_zh))
    return received, shared, to_supply


def case_completed(state: CaseState) -> Notice:
    return Notice("case_completed", f"您的{state.case.definition.name_zh}已全部办结。")


def case_refused(state: CaseState, refused: StepState) -> Notice:
    definition = state.case.definition
    reason = (refused.result or {}).get("reason", "")
    return Notice(
        "case_refused",
        f"您的{definition.name_zh}经{definition.department_name(refused.department)}审查不予办理：{reason}",
    )


def supplement_requested(step: StepState, reason: str) -> Notice:
    return Notice(
        "supplement_requested",
        f"补齐补正通知：请补交以下材料：{'、'.join(step.missing)}。原因：{reason}",
        step=step.code,
    )


def after_completion(state: CaseState, step: StepState) -> list[Notice]:
    """The step's own notice, if the catalogue gives one, and word of delivery when no
    step of the case delivers everything at once."""
    notices: list[Notice] = []
    notification = step.definition.notify_on_complete
    if notification is not None:
        notices.append(Notice(notification.kind, notification.message_zh, step=step.code))
    if not any(s.definition.delivers_case for s in state.steps.values()):
        method = delivery_method(state)
        notices.append(
            Notice(
                "result_delivery",
                f"{step.definition.name_zh}已办结，结果将以{DELIVERY_METHOD_ZH.get(method, method)}方式送达。",
                step=step.code,
            )
        )
    return notices


def escalation(state: CaseState, step: StepState, sequence: int, at: datetime) -> EscalationInput:
    """The automatic 督办 numbered ``sequence`` of an overdue step, for the instant it fell due."""
    assert step.clock.due_at is not None
    return EscalationInput(
        case_id=state.case.case_id,
        step=step.code,
        department=step.department,
        sequence=sequence,
        due_at=step.clock.due_at,
        at=at,
        assignee=step.assignee,
    )


def supervision_notice(
    state: CaseState, step: StepState, action: SuperviseInput, now: datetime
) -> SupervisionNoticeInput:
    """A supervisor's manual 督办 (to the department) or 催办 (to the assignee)."""
    return SupervisionNoticeInput(
        case_id=state.case.case_id,
        step=step.code,
        department=step.department,
        kind=action.kind,
        sequence=state.manual_notices,
        message_zh=action.message,
        issued_by=action.actor.username,
        assignee=step.assignee,
        due_at=step.clock.due_at,
        at=now,
    )


def case_ended(state: CaseState) -> Notice:
    """撤回 or 不予受理: the applicant is told the case has ended, and why."""
    name = state.case.definition.name_zh
    reason = state.ended_reason or ""
    if state.ended_as == CaseStatus.DECLINED:
        return Notice("case_declined", f"不予受理通知：您申请的{name}不予受理。理由：{reason}")
    return Notice("case_withdrawn", f"撤回通知：您申请的{name}已撤回，各部门已停止办理。原因：{reason}")

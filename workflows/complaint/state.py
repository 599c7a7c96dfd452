"""A complaint's state and the pure rules of its actions: a supervisor assigns it to a
department, an officer of that department answers, the supervisor closes it. Nothing here
calls Temporal; tests/rules/test_complaint_state.py checks the rules on their own."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime

from temporalio import workflow

from workflows.kit.clock import ClockState

with workflow.unsafe.imports_passed_through():
    from models.case import Actor
    from models.complaint import (
        ANSWER_MAX_CHARS,
        COMPLAINT_STATUS_ZH,
        NOTE_MAX_CHARS,
        AnswerComplaintInput,
        AssignComplaintInput,
        CloseComplaintInput,
        ComplaintInput,
        ComplaintSnapshot,
        ComplaintStatus,
    )
    from models.errors import DomainError, ErrorCode

STATE_CONFLICTS = {
    ComplaintStatus.ACCEPTED: "投诉尚未分派 (the complaint is not assigned yet)",
    ComplaintStatus.ASSIGNED: "投诉尚未答复 (the complaint is not answered yet)",
    ComplaintStatus.ANSWERED: "投诉已答复 (the complaint is already answered)",
    ComplaintStatus.CLOSED: "投诉已办结 (the complaint is closed)",
}


def _note_too_long(note: str | None) -> bool:
    return note is not None and len(note) > NOTE_MAX_CHARS


@dataclass
class ComplaintState:
    complaint: ComplaintInput
    status: ComplaintStatus = ComplaintStatus.ACCEPTED
    accepted: bool = False
    filed_at: datetime | None = None
    clock: ClockState = field(default_factory=ClockState)
    assigned_department: str | None = None
    assigned_at: datetime | None = None
    assign_note: str | None = None
    answer: str | None = None
    answered_at: datetime | None = None
    answered_by: str | None = None
    closed_at: datetime | None = None
    satisfied: bool | None = None
    close_note: str | None = None

    def unanswered(self) -> bool:
        return self.status in {ComplaintStatus.ACCEPTED, ComplaintStatus.ASSIGNED}

    def department(self) -> str | None:
        """The department that owes the answer: the assigned one, else the one complained about."""
        return self.assigned_department or self.complaint.department

    # --- transitions --------------------------------------------------------------------

    def assign(self, action: AssignComplaintInput, now: datetime) -> None:
        self.status = ComplaintStatus.ASSIGNED
        self.assigned_department = action.department
        self.assigned_at = now
        self.assign_note = action.note or None

    def record_answer(self, action: AnswerComplaintInput, now: datetime) -> None:
        self.status = ComplaintStatus.ANSWERED
        self.answer = action.answer.strip()
        self.answered_at = now
        self.answered_by = action.actor.username

    def close(self, action: CloseComplaintInput, now: datetime) -> None:
        self.status = ComplaintStatus.CLOSED
        self.closed_at = now
        self.satisfied = action.satisfied
        self.close_note = action.note or None

    # --- rules (raise DomainError) --------------------------------------------------------

    def check_assign(self, action: AssignComplaintInput) -> None:
        self._require_supervisor(action.actor)
        if not self.accepted or not self.unanswered():
            raise self.state_conflict()
        fields: dict[str, str] = {}
        if action.department not in self.complaint.assignable:
            fields["department"] = f"no department {action.department!r} that can answer complaints"
        if _note_too_long(action.note):
            fields["note"] = f"at most {NOTE_MAX_CHARS} characters"
        if fields:
            raise DomainError(ErrorCode.INVALID, "分派信息有误 (invalid assignment)", fields)

    def check_answer(self, action: AnswerComplaintInput) -> None:
        actor = action.actor
        if actor.role != "officer":
            raise DomainError(
                ErrorCode.FORBIDDEN, "只有承办部门的工作人员可以答复 (officers of the assigned department only)"
            )
        if self.assigned_department is not None and actor.unit != self.assigned_department:
            raise DomainError(
                ErrorCode.FORBIDDEN, "该投诉不属于您的部门 (the complaint is assigned to another department)"
            )
        if self.status != ComplaintStatus.ASSIGNED:
            raise self.state_conflict()
        if not action.answer.strip() or len(action.answer) > ANSWER_MAX_CHARS:
            raise DomainError(
                ErrorCode.INVALID,
                "答复内容有误 (invalid answer)",
                {"answer": f"give an answer of 1 to {ANSWER_MAX_CHARS} characters"},
            )

    def check_close(self, action: CloseComplaintInput) -> None:
        self._require_supervisor(action.actor)
        if self.status != ComplaintStatus.ANSWERED:
            raise self.state_conflict()
        if _note_too_long(action.note):
            raise DomainError(
                ErrorCode.INVALID, "办结说明过长 (note too long)", {"note": f"at most {NOTE_MAX_CHARS} characters"}
            )

    @staticmethod
    def _require_supervisor(actor: Actor) -> None:
        if actor.role != "supervisor":
            raise DomainError(ErrorCode.FORBIDDEN, "只有效能监督人员可以进行此操作 (supervisors only)")

    def state_conflict(self) -> DomainError:
        message = STATE_CONFLICTS[self.status] if self.accepted else "投诉正在受理 (the complaint is being accepted)"
        return DomainError(ErrorCode.CONFLICT, message)

    # --- view ---------------------------------------------------------------------------

    def snapshot(self, *, now: datetime, revision: int) -> ComplaintSnapshot:
        complaint = self.complaint
        department = self.department()
        return ComplaintSnapshot(
            complaint_id=complaint.complaint_id,
            case_id=complaint.case_id,
            step=complaint.step,
            named_department=complaint.department,
            department=department,
            department_zh=complaint.department_names.get(department, department) if department else None,
            assigned_department=self.assigned_department,
            status=self.status,
            status_zh=COMPLAINT_STATUS_ZH[self.status],
            complainant=complaint.complainant,
            filed_by=complaint.filed_by.username,
            content=complaint.content,
            filed_at=self.filed_at or now,
            due_at=self.clock.due_at,
            warning_at=self.clock.warning_at,
            provisional=self.clock.provisional,
            assigned_at=self.assigned_at,
            assign_note=self.assign_note,
            answer=self.answer,
            answered_at=self.answered_at,
            answered_by=self.answered_by,
            closed_at=self.closed_at,
            satisfied=self.satisfied,
            close_note=self.close_note,
            overdue=self.clock.overdue,
            escalations=self.clock.escalations,
            revision=revision,
            request_fingerprint=complaint.request_fingerprint,
            submission_id=complaint.submission_id,
        )

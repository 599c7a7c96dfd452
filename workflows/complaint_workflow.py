"""The complaint workflow: one durable run per complaint (投诉, §8.1.2).

Accepted on filing, with the answer due within five working days (computed by the
calendar activity, so the deadline is in history); a supervisor assigns it to a
department, an officer of that department answers, the supervisor closes it. While
it is unanswered the clock warns at 00:00 of the last day, marks it overdue at the
deadline and sends a 督办 to the department each further working day. Actions are
Updates whose validators reject bad requests before anything is written to
history; every change is projected to the read model through one activity, whose
inputs double as the complaint's timeline in history.
"""

from __future__ import annotations

import asyncio
from datetime import datetime, timedelta
from typing import Any

from temporalio import workflow
from temporalio.common import RetryPolicy
from temporalio.exceptions import ApplicationError

from workflows.projection import Projection

with workflow.unsafe.imports_passed_through():
    from models.case import (
        ActivityName,
        Actor,
        ComputeDeadlinesInput,
        ComputeDeadlinesResult,
        DeadlineRequest,
        NextEscalationInput,
        NextEscalationResult,
    )
    from models.complaint import (
        ANSWER_CLOCK,
        ANSWER_MAX_CHARS,
        COMPLAINT_STATUS_ZH,
        NOTE_MAX_CHARS,
        AnswerComplaintInput,
        AssignComplaintInput,
        CloseComplaintInput,
        ComplaintActivityName,
        ComplaintEscalationInput,
        ComplaintEvent,
        ComplaintEventType,
        ComplaintInput,
        ComplaintSnapshot,
        ComplaintStatus,
        ProjectComplaintInput,
    )
    from models.errors import ErrorCode

# Reading the calendar or writing the read model never fails for business reasons.
LOCAL_SERVICE_RETRY = RetryPolicy(initial_interval=timedelta(seconds=1), maximum_interval=timedelta(minutes=1))


def _rejection(code: ErrorCode, message: str, fields: dict[str, str] | None = None) -> ApplicationError:
    return ApplicationError(message, {"fields": fields or {}}, type=code.value, non_retryable=True)


def _note_too_long(note: str | None) -> bool:
    return note is not None and len(note) > NOTE_MAX_CHARS


@workflow.defn
class ComplaintWorkflow:
    @workflow.init
    def __init__(self, complaint: ComplaintInput) -> None:
        self._input = complaint
        self._status = ComplaintStatus.ACCEPTED
        self._accepted = False
        self._filed_at: datetime | None = None
        self._due_at: datetime | None = None
        self._warning_at: datetime | None = None
        self._provisional = False
        self._warned = False
        self._overdue = False
        self._escalations = 0
        self._next_escalation_at: datetime | None = None
        self._assigned_department: str | None = None
        self._assigned_at: datetime | None = None
        self._assign_note: str | None = None
        self._answer: str | None = None
        self._answered_at: datetime | None = None
        self._answered_by: str | None = None
        self._closed_at: datetime | None = None
        self._satisfied: bool | None = None
        self._close_note: str | None = None
        self._events: list[ComplaintEvent] = []
        self._projection: Projection[ComplaintEvent] = Projection()

    # --- the run ----------------------------------------------------------------

    @workflow.run
    async def run(self, complaint: ComplaintInput) -> ComplaintSnapshot:
        now = self._filed_at = workflow.now()
        projector = asyncio.create_task(self._projection.run(lambda: self._accepted, self._write_projection))
        computed = await workflow.execute_activity(
            ActivityName.COMPUTE_DEADLINES,
            ComputeDeadlinesInput(
                requests=[DeadlineRequest(step=ANSWER_CLOCK, opened_at=now, working_days=complaint.answer_working_days)]
            ),
            result_type=ComputeDeadlinesResult,
            start_to_close_timeout=timedelta(seconds=10),
            retry_policy=LOCAL_SERVICE_RETRY,
        )
        (deadline,) = computed.deadlines
        self._due_at = deadline.due_at
        self._warning_at = deadline.warning_at
        self._provisional = deadline.provisional
        self._record(
            ComplaintEventType.ACCEPTED,
            actor=complaint.filed_by.username,
            department=complaint.department,
            due_at=self._due_at,
            detail={"case_id": complaint.case_id, "step": complaint.step} if complaint.case_id else {},
        )
        self._accepted = True
        self._changed()
        clock = asyncio.create_task(self._keep_clock())

        await workflow.wait_condition(lambda: self._status == ComplaintStatus.CLOSED)
        await clock
        await workflow.wait_condition(lambda: workflow.all_handlers_finished() and self._projection.settled)
        projector.cancel()
        return self._snapshot()

    # --- the answer's statutory clock ------------------------------------------------

    def _unanswered(self) -> bool:
        return self._status in {ComplaintStatus.ACCEPTED, ComplaintStatus.ASSIGNED}

    async def _keep_clock(self) -> None:
        while self._unanswered():
            target, is_warning = self._next_clock_event()
            delay = (target - workflow.now()).total_seconds()
            if delay > 0:
                try:
                    await workflow.wait_condition(lambda: not self._unanswered(), timeout=delay)
                    continue
                except TimeoutError:
                    pass
            if is_warning:
                self._warned = True
                self._record(ComplaintEventType.WARNING, department=self._department(), due_at=self._due_at)
                self._changed()
            else:
                await self._escalate(target)

    def _next_clock_event(self) -> tuple[datetime, bool]:
        assert self._due_at is not None
        if self._overdue:
            assert self._next_escalation_at is not None
            return self._next_escalation_at, False
        if not self._warned and self._warning_at is not None and self._warning_at < self._due_at:
            return self._warning_at, True
        return self._due_at, False

    async def _escalate(self, at: datetime) -> None:
        assert self._due_at is not None
        department = self._department()
        if not self._overdue:
            self._overdue = True
            self._record(ComplaintEventType.OVERDUE, department=department, due_at=self._due_at)
        self._escalations += 1
        await workflow.execute_activity(
            ComplaintActivityName.ESCALATE_OVERDUE_COMPLAINT,
            ComplaintEscalationInput(
                complaint_id=self._input.complaint_id,
                department=department,
                sequence=self._escalations,
                due_at=self._due_at,
                at=at,
            ),
            start_to_close_timeout=timedelta(seconds=30),
            retry_policy=LOCAL_SERVICE_RETRY,
        )
        self._record(
            ComplaintEventType.SUPERVISION_NOTICE,
            department=department,
            due_at=self._due_at,
            detail={"sequence": self._escalations},
        )
        result: NextEscalationResult = await workflow.execute_activity(
            ActivityName.COMPUTE_NEXT_ESCALATION,
            NextEscalationInput(after=at),
            result_type=NextEscalationResult,
            start_to_close_timeout=timedelta(seconds=10),
            retry_policy=LOCAL_SERVICE_RETRY,
        )
        self._next_escalation_at = result.at
        self._changed()

    # --- queries and Updates ----------------------------------------------------------

    @workflow.query
    def snapshot(self) -> ComplaintSnapshot:
        return self._snapshot()

    @workflow.update
    async def wait_accepted(self) -> ComplaintSnapshot:
        """Answers once the complaint is accepted (its deadline known) and in the read model."""
        await workflow.wait_condition(lambda: self._accepted)
        await self._flush()
        return self._snapshot()

    @workflow.update
    async def assign(self, action: AssignComplaintInput) -> ComplaintSnapshot:
        self._status = ComplaintStatus.ASSIGNED
        self._assigned_department = action.department
        self._assigned_at = workflow.now()
        self._assign_note = action.note or None
        detail = {"note": action.note} if action.note else {}
        self._record(
            ComplaintEventType.ASSIGNED, actor=action.actor.username, department=action.department, detail=detail
        )
        self._changed()
        await self._flush()
        return self._snapshot()

    @assign.validator
    def _validate_assign(self, action: AssignComplaintInput) -> None:
        self._require_supervisor(action.actor)
        if not self._accepted or not self._unanswered():
            raise self._state_conflict()
        fields: dict[str, str] = {}
        if action.department not in self._input.assignable:
            fields["department"] = f"no department {action.department!r} that can answer complaints"
        if _note_too_long(action.note):
            fields["note"] = f"at most {NOTE_MAX_CHARS} characters"
        if fields:
            raise _rejection(ErrorCode.INVALID, "分派信息有误 (invalid assignment)", fields)

    @workflow.update
    async def answer(self, action: AnswerComplaintInput) -> ComplaintSnapshot:
        self._status = ComplaintStatus.ANSWERED
        self._answer = action.answer.strip()
        self._answered_at = workflow.now()
        self._answered_by = action.actor.username
        self._record(
            ComplaintEventType.ANSWERED,
            actor=action.actor.username,
            department=self._assigned_department,
            due_at=self._due_at,
            detail={"on_time": not self._overdue},
        )
        self._changed()
        await self._flush()
        return self._snapshot()

    @answer.validator
    def _validate_answer(self, action: AnswerComplaintInput) -> None:
        actor = action.actor
        if actor.role != "officer":
            raise _rejection(
                ErrorCode.FORBIDDEN, "只有承办部门的工作人员可以答复 (officers of the assigned department only)"
            )
        if self._assigned_department is not None and actor.unit != self._assigned_department:
            raise _rejection(
                ErrorCode.FORBIDDEN, "该投诉不属于您的部门 (the complaint is assigned to another department)"
            )
        if self._status != ComplaintStatus.ASSIGNED:
            raise self._state_conflict()
        if not action.answer.strip() or len(action.answer) > ANSWER_MAX_CHARS:
            raise _rejection(
                ErrorCode.INVALID,
                "答复内容有误 (invalid answer)",
                {"answer": f"give an answer of 1 to {ANSWER_MAX_CHARS} characters"},
            )

    @workflow.update
    async def close(self, action: CloseComplaintInput) -> ComplaintSnapshot:
        self._status = ComplaintStatus.CLOSED
        self._closed_at = workflow.now()
        self._satisfied = action.satisfied
        self._close_note = action.note or None
        detail: dict[str, Any] = {"satisfied": action.satisfied}
        if action.note:
            detail["note"] = action.note
        self._record(
            ComplaintEventType.CLOSED, actor=action.actor.username, department=self._department(), detail=detail
        )
        self._changed()
        await self._flush()
        return self._snapshot()

    @close.validator
    def _validate_close(self, action: CloseComplaintInput) -> None:
        self._require_supervisor(action.actor)
        if self._status != ComplaintStatus.ANSWERED:
            raise self._state_conflict()
        if _note_too_long(action.note):
            raise _rejection(
                ErrorCode.INVALID, "办结说明过长 (note too long)", {"note": f"at most {NOTE_MAX_CHARS} characters"}
            )

    # --- helpers ----------------------------------------------------------------------

    def _require_supervisor(self, actor: Actor) -> None:
        if actor.role != "supervisor":
            raise _rejection(ErrorCode.FORBIDDEN, "只有效能监督人员可以进行此操作 (supervisors only)")

    def _state_conflict(self) -> ApplicationError:
        messages = {
            ComplaintStatus.ACCEPTED: "投诉尚未分派 (the complaint is not assigned yet)",
            ComplaintStatus.ASSIGNED: "投诉尚未答复 (the complaint is not answered yet)",
            ComplaintStatus.ANSWERED: "投诉已答复 (the complaint is already answered)",
            ComplaintStatus.CLOSED: "投诉已办结 (the complaint is closed)",
        }
        message = messages[self._status] if self._accepted else "投诉正在受理 (the complaint is being accepted)"
        return _rejection(ErrorCode.CONFLICT, message)

    def _department(self) -> str | None:
        """The department that owes the answer: the assigned one, else the one complained about."""
        return self._assigned_department or self._input.department

    def _record(
        self,
        event_type: ComplaintEventType,
        *,
        actor: str | None = None,
        department: str | None = None,
        due_at: datetime | None = None,
        detail: dict[str, Any] | None = None,
    ) -> None:
        event = ComplaintEvent(
            seq=len(self._events) + 1,
            at=workflow.now(),
            type=event_type,
            actor=actor,
            department=department,
            due_at=due_at,
            detail=detail or {},
        )
        self._events.append(event)
        self._projection.record(event)

    def _changed(self) -> None:
        self._projection.changed()

    async def _flush(self) -> None:
        await self._projection.flush()

    async def _write_projection(self, events: list[ComplaintEvent]) -> None:
        await workflow.execute_activity(
            ComplaintActivityName.PROJECT_COMPLAINT,
            ProjectComplaintInput(snapshot=self._snapshot(), events=events),
            start_to_close_timeout=timedelta(seconds=30),
            retry_policy=LOCAL_SERVICE_RETRY,
        )

    def _snapshot(self) -> ComplaintSnapshot:
        department = self._department()
        return ComplaintSnapshot(
            complaint_id=self._input.complaint_id,
            case_id=self._input.case_id,
            step=self._input.step,
            named_department=self._input.department,
            department=department,
            department_zh=self._input.department_names.get(department, department) if department else None,
            assigned_department=self._assigned_department,
            status=self._status,
            status_zh=COMPLAINT_STATUS_ZH[self._status],
            complainant=self._input.complainant,
            filed_by=self._input.filed_by.username,
            content=self._input.content,
            filed_at=self._filed_at or workflow.now(),
            due_at=self._due_at,
            warning_at=self._warning_at,
            provisional=self._provisional,
            assigned_at=self._assigned_at,
            assign_note=self._assign_note,
            answer=self._answer,
            answered_at=self._answered_at,
            answered_by=self._answered_by,
            closed_at=self._closed_at,
            satisfied=self._satisfied,
            close_note=self._close_note,
            overdue=self._overdue,
            escalations=self._escalations,
            revision=self._projection.revision,
            request_fingerprint=self._input.request_fingerprint,
        )

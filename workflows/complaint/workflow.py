"""The complaint workflow: one durable run per complaint (投诉, §8.1.2).

Accepted on filing, with the answer due within five working days (computed by the
calendar activity, so the deadline is in history). While it is unanswered the shared
statutory clock (workflows/kit/clock.py) warns, marks it overdue and sends a 督办 to the
department each further working day. Actions are Updates whose validators reject bad
requests before anything is written to history (workflows/complaint/state.py holds the
rules); every change is projected to the read model through one writer, and a staff
action's audit row (sent by the API in the action's input) goes with the write that
records the action, in its transaction.
"""

from __future__ import annotations

import asyncio
from datetime import datetime
from typing import Any

from temporalio import workflow

from workflows.complaint.state import ComplaintState
from workflows.kit import calls
from workflows.kit.calls import ONE_WRITE_PATCH, WRITES_AFTER_TASK_PATCH, CalendarCalls
from workflows.kit.clock import ClockHooks, StatutoryClock
from workflows.kit.projection import Projection
from workflows.kit.rejection import checked

with workflow.unsafe.imports_passed_through():
    from models.case import AuditEntry, DeadlineRequest
    from models.complaint import (
        ANSWER_CLOCK,
        AnswerComplaintInput,
        AssignComplaintInput,
        CloseComplaintInput,
        ComplaintChanges,
        ComplaintEscalationInput,
        ComplaintEvent,
        ComplaintEventType,
        ComplaintInput,
        ComplaintSnapshot,
        ComplaintStatus,
        ProjectComplaintInput,
    )


@workflow.defn
class ComplaintWorkflow:
    @workflow.init
    def __init__(self, complaint: ComplaintInput) -> None:
        self._state = ComplaintState(complaint)
        # Complaints started before this patch replay their regular activities; later ones
        # ask the calendar locally and write each task's changes at once.
        self._one_write = workflow.patched(ONE_WRITE_PATCH)
        self._writes_after_task = self._one_write and workflow.patched(WRITES_AFTER_TASK_PATCH)
        self._calendar = CalendarCalls(short=self._one_write)
        self._escalations: list[ComplaintEscalationInput] = []
        self._audit: list[AuditEntry] = []  # staff actions' audit rows since the previous write
        self._projection: Projection[ComplaintEvent] = Projection()

    @workflow.run
    async def run(self, complaint: ComplaintInput) -> ComplaintSnapshot:
        state = self._state
        now = state.filed_at = workflow.now()
        settled = (lambda: self._calendar.in_flight == 0) if self._one_write else None
        projector = asyncio.create_task(self._projection.run(lambda: state.accepted, self._write_projection, settled))
        state.clock.start(
            await self._calendar.deadline(
                DeadlineRequest(step=ANSWER_CLOCK, opened_at=now, working_days=complaint.answer_working_days)
            )
        )
        self._record(
            ComplaintEventType.ACCEPTED,
            actor=complaint.filed_by.username,
            department=complaint.department,
            due_at=state.clock.due_at,
            detail={"case_id": complaint.case_id, "step": complaint.step} if complaint.case_id else {},
        )
        self._audited(complaint.audit)
        state.accepted = True
        self._projection.changed()
        clock = asyncio.create_task(self._answer_clock().keep())

        await workflow.wait_condition(lambda: state.status == ComplaintStatus.CLOSED)
        await clock
        await workflow.wait_condition(lambda: workflow.all_handlers_finished() and self._projection.settled)
        projector.cancel()
        return self._snapshot()

    def _answer_clock(self) -> StatutoryClock:
        state = self._state

        async def send_escalation(sequence: int, at: datetime) -> None:
            assert state.clock.due_at is not None
            escalation = ComplaintEscalationInput(
                complaint_id=state.complaint.complaint_id,
                department=state.department(),
                sequence=sequence,
                due_at=state.clock.due_at,
                at=at,
            )
            if self._one_write:
                self._escalations.append(escalation)
            else:
                await calls.escalate_overdue_complaint(escalation)

        def record(event: ComplaintEventType, **detail: Any) -> None:
            self._record(event, department=state.department(), due_at=state.clock.due_at, detail=detail)

        hooks = ClockHooks(
            running=state.unanswered,
            paused=lambda: False,
            warned=lambda: record(ComplaintEventType.WARNING),
            overdue=lambda: record(ComplaintEventType.OVERDUE),
            send_escalation=send_escalation,
            escalated=lambda sequence: record(ComplaintEventType.SUPERVISION_NOTICE, sequence=sequence),
            next_escalation=self._calendar.next_escalation,
            changed=self._projection.changed,
        )
        return StatutoryClock(state.clock, hooks)

    # --- queries and Updates ----------------------------------------------------------

    @workflow.query
    def snapshot(self) -> ComplaintSnapshot:
        return self._snapshot()

    @workflow.update
    async def wait_accepted(self) -> ComplaintSnapshot:
        """Answers once the complaint is accepted (its deadline known) and in the read model."""
        await workflow.wait_condition(lambda: self._state.accepted)
        await self._projection.flush()
        return self._snapshot()

    @workflow.update
    async def assign(self, action: AssignComplaintInput) -> ComplaintSnapshot:
        self._state.assign(action, workflow.now())
        self._audited(action.audit)
        detail = {"note": action.note} if action.note else {}
        self._record(
            ComplaintEventType.ASSIGNED, actor=action.actor.username, department=action.department, detail=detail
        )
        return await self._changed()

    @assign.validator
    def _validate_assign(self, action: AssignComplaintInput) -> None:
        checked(self._state.check_assign, action)

    @workflow.update
    async def answer(self, action: AnswerComplaintInput) -> ComplaintSnapshot:
        state = self._state
        on_time = not state.clock.overdue
        state.record_answer(action, workflow.now())
        self._audited(action.audit)
        self._record(
            ComplaintEventType.ANSWERED,
            actor=action.actor.username,
            department=state.assigned_department,
            due_at=state.clock.due_at,
            detail={"on_time": on_time},
        )
        return await self._changed()

    @answer.validator
    def _validate_answer(self, action: AnswerComplaintInput) -> None:
        checked(self._state.check_answer, action)

    @workflow.update
    async def close(self, action: CloseComplaintInput) -> ComplaintSnapshot:
        self._state.close(action, workflow.now())
        self._audited(action.audit)
        detail: dict[str, Any] = {"satisfied": action.satisfied}
        if action.note:
            detail["note"] = action.note
        self._record(
            ComplaintEventType.CLOSED, actor=action.actor.username, department=self._state.department(), detail=detail
        )
        return await self._changed()

    @close.validator
    def _validate_close(self, action: CloseComplaintInput) -> None:
        checked(self._state.check_close, action)

    # --- helpers ----------------------------------------------------------------------

    async def _changed(self) -> ComplaintSnapshot:
        """Mark a change, and answer once the read model holds it."""
        self._projection.changed()
        await self._projection.flush()
        return self._snapshot()

    def _record(self, event_type: ComplaintEventType, **fields: Any) -> None:
        """Record a business event (fields: actor, department, due_at, detail); the next write projects it."""
        self._projection.record(
            ComplaintEvent(seq=self._projection.next_seq, at=workflow.now(), type=event_type, **fields)
        )

    def _audited(self, entry: AuditEntry | None) -> None:
        """The staff action's audit row goes with the write that records its change."""
        if entry is not None:
            self._audit.append(entry if entry.at else entry.model_copy(update={"at": workflow.now()}))

    async def _write_projection(self, events: list[ComplaintEvent]) -> None:
        audit, self._audit = self._audit, []
        if self._one_write:
            escalations, self._escalations = self._escalations, []
            changes = ComplaintChanges(snapshot=self._snapshot(), events=events, escalations=escalations, audit=audit)
            await calls.write_complaint_changes(changes, after_task=self._writes_after_task)
        else:
            # A complaint started before the one-write patch writes its audit rows through the
            # project_complaint activity its history already schedules, in that write's
            # transaction and only if its revision is new (as a first-edition case does): the
            # commands replay unchanged (an activity's input is not compared), the API writes
            # no row of its own, so a row is neither lost nor written twice.
            projection = ProjectComplaintInput(snapshot=self._snapshot(), events=events, audit=audit)
            await calls.project_complaint(projection)

    def _snapshot(self) -> ComplaintSnapshot:
        return self._state.snapshot(now=workflow.now(), revision=self._projection.revision)

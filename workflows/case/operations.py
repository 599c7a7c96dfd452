"""The case workflow's task operations as Updates: 退回待办, 改派, 转办, 中止/恢复, 延期 and
its decision, 撤回 and 不予受理. CaseWorkflow (workflows/case/workflow.py) takes them from
this mixin; the rules are workflows/case/task_operations.py. Each validator refuses before
anything is written; each handler audits the action, records its event (the timeline) and
moves the step's clock as the law says: 中止 stops it, 转办 leaves it running, 延期 moves it.
"""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from temporalio import workflow

from workflows.case import notices, task_operations, views
from workflows.case.clocks import restart_clocks
from workflows.case.state import CaseState, StepState
from workflows.case.writes import CaseWrites
from workflows.kit.calls import CalendarCalls
from workflows.kit.projection import Projection
from workflows.kit.rejection import checked

with workflow.unsafe.imports_passed_through():
    from models.case import (
        Actor,
        AdoptCaseInput,
        AuditEntry,
        CaseEvent,
        CaseSnapshot,
        CaseStatus,
        DeadlineRequest,
        EndCaseInput,
        EventType,
        ExtensionDecisionInput,
        ExtensionInput,
        ReassignInput,
        ResumeInput,
        StepView,
        SuspendInput,
        TransferInput,
        UnclaimInput,
    )


class CaseOperations:
    # Kept by CaseWorkflow; declared here for the type checker.
    _state: CaseState
    _writes: CaseWrites
    _calendar: CalendarCalls
    _projection: Projection[CaseEvent]

    def _step(self, code: str) -> StepState:
        raise NotImplementedError

    def _record(self, event_type: EventType, *, step: StepState | None = None, **fields: Any) -> None:
        raise NotImplementedError

    def _changed(self) -> None:
        raise NotImplementedError

    def _notify(self, notice: notices.Notice) -> None:
        raise NotImplementedError

    def _snapshot(self) -> CaseSnapshot:
        raise NotImplementedError

    async def _answer(self, step: StepState, actor: Actor, audit: AuditEntry | None) -> StepView:
        self._writes.audit(audit)
        self._changed()
        await self._projection.flush()
        return views.step_view_for(self._state, step, actor)

    # --- 退回待办, 改派, 转办 --------------------------------------------------------------

    @workflow.update
    async def unclaim(self, action: UnclaimInput) -> StepView:
        step = self._step(action.step)
        held_by = step.assignee
        task_operations.unclaim(step)
        self._record(EventType.UNCLAIMED, step=step, actor=action.actor.username, detail={"from": held_by})
        return await self._answer(step, action.actor, action.audit)

    @unclaim.validator
    def _validate_unclaim(self, action: UnclaimInput) -> None:
        checked(task_operations.check_unclaim, self._state, action.actor, action.step)

    @workflow.update
    async def reassign(self, action: ReassignInput) -> StepView:
        step = self._step(action.step)
        held_by = step.assignee
        task_operations.reassign(step, action.to.username)
        detail = {"from": held_by, "to": action.to.username}
        self._record(EventType.REASSIGNED, step=step, actor=action.actor.username, detail=detail)
        return await self._answer(step, action.actor, action.audit)

    @reassign.validator
    def _validate_reassign(self, action: ReassignInput) -> None:
        checked(task_operations.check_reassign, self._state, action)

    @workflow.update
    async def transfer(self, action: TransferInput) -> StepView:
        step = self._step(action.step)
        left = task_operations.transfer(self._state, step, action.unit)
        detail = {
            "from_unit": left.code if left else None,
            "from_unit_zh": left.name_zh if left else None,
            "to_unit": action.unit.code,
            "to_unit_zh": action.unit.name_zh,
            "to_division_code": action.unit.division_code,
            "reason": action.reason,
        }
        # The statutory clock runs on: a wrong routing is the administration's, not the applicant's.
        self._record(
            EventType.TRANSFERRED, step=step, actor=action.actor.username, due_at=step.clock.due_at, detail=detail
        )
        return await self._answer(step, action.actor, action.audit)

    @transfer.validator
    def _validate_transfer(self, action: TransferInput) -> None:
        checked(task_operations.check_transfer, self._state, action)

    # --- 中止 and 恢复 ----------------------------------------------------------------------

    @workflow.update
    async def suspend(self, action: SuspendInput) -> StepView:
        step = self._step(action.step)
        task_operations.suspend(step, action, workflow.now())
        detail = {"reason": action.reason, "required_materials": list(action.materials)}
        self._record(
            EventType.SUSPENDED, step=step, actor=action.actor.username, due_at=step.clock.due_at, detail=detail
        )
        assert step.clock.due_at is not None
        # The clock stands still: what was left is kept and given back on resumption.
        step.clock.pause(await self._calendar.remaining_seconds(workflow.now(), step.clock.due_at))
        return await self._answer(step, action.actor, action.audit)

    @suspend.validator
    def _validate_suspend(self, action: SuspendInput) -> None:
        checked(task_operations.check_suspend, self._state, action)

    @workflow.update
    async def resume(self, action: ResumeInput) -> StepView:
        step = self._step(action.step)

        def resumed(restarted: StepState) -> None:
            task_operations.resume(restarted)
            self._record(EventType.RESUMED, step=restarted, actor=action.actor.username, due_at=restarted.clock.due_at)

        await restart_clocks([step], self._calendar, workflow.now(), resumed)
        return await self._answer(step, action.actor, action.audit)

    @resume.validator
    def _validate_resume(self, action: ResumeInput) -> None:
        checked(task_operations.check_resume, self._state, action.actor, action.step)

    # --- 延期 -------------------------------------------------------------------------------

    @workflow.update
    async def request_extension(self, action: ExtensionInput) -> StepView:
        step = self._step(action.step)
        task_operations.request_extension(step, action, workflow.now())
        detail = {"working_days": action.working_days, "reason": action.reason}
        self._record(
            EventType.EXTENSION_REQUESTED,
            step=step,
            actor=action.actor.username,
            due_at=step.clock.due_at,
            detail=detail,
        )
        return await self._answer(step, action.actor, action.audit)

    @request_extension.validator
    def _validate_request_extension(self, action: ExtensionInput) -> None:
        checked(task_operations.check_extension, self._state, action)

    @workflow.update
    async def decide_extension(self, action: ExtensionDecisionInput) -> StepView:
        step = self._step(action.step)
        request = task_operations.extension_decided(step, action.approve)
        detail: dict[str, Any] = {"working_days": request.working_days, "requested_by": request.requested_by}
        if action.approve:
            due_before = step.clock.due_at
            assert due_before is not None
            # The new last day is the old one's ``working_days`` working days later.
            deadline = await self._calendar.deadline(
                DeadlineRequest(
                    step=step.code, opened_at=due_before - timedelta(seconds=1), working_days=request.working_days
                )
            )
            step.clock.move(deadline, workflow.now())
            detail |= {"reason": request.reason, "due_before": due_before.isoformat()}
            self._record(
                EventType.EXTENDED, step=step, actor=action.actor.username, due_at=deadline.due_at, detail=detail
            )
        else:
            detail["reason"] = action.reason
            self._record(
                EventType.EXTENSION_REJECTED,
                step=step,
                actor=action.actor.username,
                due_at=step.clock.due_at,
                detail=detail,
            )
        return await self._answer(step, action.actor, action.audit)

    @decide_extension.validator
    def _validate_decide_extension(self, action: ExtensionDecisionInput) -> None:
        checked(task_operations.check_extension_decision, self._state, action)

    # --- 撤回 and 不予受理 --------------------------------------------------------------------

    @workflow.update
    async def withdraw(self, action: EndCaseInput) -> CaseSnapshot:
        return await self._end(action, CaseStatus.WITHDRAWN, EventType.WITHDRAWN)

    @withdraw.validator
    def _validate_withdraw(self, action: EndCaseInput) -> None:
        checked(task_operations.check_withdraw, self._state, action)

    @workflow.update
    async def decline(self, action: EndCaseInput) -> CaseSnapshot:
        return await self._end(action, CaseStatus.DECLINED, EventType.DECLINED)

    @decline.validator
    def _validate_decline(self, action: EndCaseInput) -> None:
        checked(task_operations.check_decline, self._state, action)

    # --- 实名认领 ------------------------------------------------------------------------------

    @workflow.update
    async def adopt(self, action: AdoptCaseInput) -> CaseSnapshot:
        task_operations.adopt(self._state, action.actor.username)
        self._record(EventType.ADOPTED, actor=action.actor.username)
        self._changed()
        await self._projection.flush()
        return self._snapshot()

    @adopt.validator
    def _validate_adopt(self, action: AdoptCaseInput) -> None:
        checked(task_operations.check_adopt, self._state, action)

    async def _end(self, action: EndCaseInput, status: CaseStatus, event: EventType) -> CaseSnapshot:
        """The case ends; the run cancels its open steps and tells the applicant (close_ended)."""
        task_operations.end_case(self._state, status, action.reason)
        self._writes.audit(action.audit)
        self._record(event, actor=action.actor.username, detail={"reason": action.reason})
        self._changed()
        await workflow.wait_condition(lambda: self._state.closed)
        await self._projection.flush()
        return self._snapshot()

    def _close_refused(self) -> None:
        state = self._state
        for step in state.cancel_unfinished():
            self._writes.pending.finished(step.code)
            self._record(EventType.CANCELLED, step=step)
        self._notify(notices.case_refused(state, state.steps[state.refused_step or ""]))

    def _close_ended(self) -> None:
        """Open steps are cancelled (they leave their units' inboxes) and the applicant is told why."""
        state = self._state
        for step in state.cancel_unfinished():
            self._writes.pending.finished(step.code)
            self._record(EventType.CANCELLED, step=step, detail={"reason": state.ended_reason})
        self._notify(notices.case_ended(state))

"""The case workflow: one durable run per "one thing" application.

It interprets the catalogue definition it was started with (workflows/case/state.py holds
the rules), keeps each open step's statutory clock (workflows/kit/clock.py) and takes
officers' and applicants' actions as Updates whose validators reject bad requests before
anything is written (the task operations are in workflows/case/operations.py). One writer
(workflows/kit/projection.py) takes each workflow task's changes to the read model at once
(workflows/case/writes.py); a case started before that replays its first-edition activities.
"""

from __future__ import annotations

import asyncio
import contextlib
from datetime import datetime
from typing import Any

from temporalio import workflow
from temporalio.common import SearchAttributeKey

from workflows.case import notices, views
from workflows.case.clocks import resume_after_supplement, step_clock
from workflows.case.intake import gather_materials
from workflows.case.operations import CaseOperations
from workflows.case.state import LOW_SCORE, RATING_DAYS, CaseState, StepState, follow_up_step
from workflows.case.writes import CaseWrites
from workflows.kit import calls
from workflows.kit.calls import CalendarCalls
from workflows.kit.projection import Projection
from workflows.kit.rejection import checked

with workflow.unsafe.imports_passed_through():
    from domain.results import check_result_identities, negative_result, validate_result
    from models.case import (
        SEARCH_ATTRIBUTE_STATUS,
        AcceptanceNotice,
        CaseEvent,
        CaseInput,
        CaseSnapshot,
        CaseStatus,
        ClaimInput,
        CompleteStepInput,
        DeadlineRequest,
        EventType,
        RateInput,
        RatingView,
        RefuseStepInput,
        ReturnStepInput,
        StepView,
        SuperviseInput,
        SupplementInput,
    )

CASE_STATUS_KEY = SearchAttributeKey.for_keyword(SEARCH_ATTRIBUTE_STATUS)


@workflow.defn
class CaseWorkflow(CaseOperations):
    @workflow.init
    def __init__(self, case: CaseInput) -> None:
        self._state = CaseState.start(case)
        self._calendar = CalendarCalls(short=True)
        self._writes = CaseWrites()
        self._submitted_at: datetime | None = None
        self._notice: AcceptanceNotice | None = None
        self._projection: Projection[CaseEvent] = Projection()
        self._status_seen: CaseStatus | None = None
        self._side_tasks: list[asyncio.Task[None]] = []

    # --- the run ----------------------------------------------------------------------

    @workflow.run
    async def run(self, case: CaseInput) -> CaseSnapshot:
        state = self._state
        self._submitted_at = workflow.now()
        # One write per workflow task (a first-edition history keeps its own rhythm).
        settled = (lambda: self._calendar.in_flight == 0) if self._writes.one_write else None
        projector = asyncio.create_task(self._projection.run(lambda: state.accepted, self._write_projection, settled))
        self._writes.audit(case.audit)
        received, shared, to_supply = await gather_materials(state, local=self._writes.one_write)
        state.intake_missing = [material.code for material in to_supply]
        state.record_intake(received, shared, to_supply)
        self._writes.pending.form, self._writes.pending.applicant_key = case.form, case.applicant_key
        self._record(EventType.ACCEPTED, actor=case.submitted_by.username)
        await self._open_ready_steps()
        self._notice = views.acceptance_notice(
            state, accepted_at=self._submitted_at, received=received, shared=shared, to_supply=to_supply
        )
        state.accepted = True
        self._changed()

        while not state.ended() and not state.all_steps_done():
            await workflow.wait_condition(lambda: state.ended() or state.all_steps_done() or bool(state.ready_steps()))
            if not state.ended():
                await self._open_ready_steps()

        if state.refused_step is not None:  # the ends of a case: workflows/case/operations.py
            self._close_refused()
        elif state.ended_as is not None:
            self._close_ended()  # 撤回 or 不予受理
        else:
            self._record(EventType.CASE_COMPLETED)
            self._notify(notices.case_completed(state))
        state.closed = True
        self._changed()
        if not state.ended() and workflow.patched("rating-window"):
            await self._collect_ratings()
        await workflow.wait_condition(lambda: workflow.all_handlers_finished() and self._projection.settled)
        await asyncio.gather(*self._side_tasks)
        await self._writes.sent()
        projector.cancel()
        if workflow.patched("archive-closed-cases"):
            await self._archive()
        return self._snapshot()

    async def _open_ready_steps(self) -> None:
        ready = self._state.ready_steps()
        if not ready:
            return
        now = workflow.now()
        deadlines = await self._calendar.deadlines(
            [DeadlineRequest(step=s.code, opened_at=now, working_days=s.time_limit) for s in ready]
        )
        by_step = {deadline.step: deadline for deadline in deadlines}
        for step in ready:
            self._state.open_step(step, now)
            step.clock.start(by_step[step.code])
            self._record(EventType.OPENED, step=step, due_at=step.clock.due_at)
            self._keep_clock(step)
        self._changed()

    async def _collect_ratings(self) -> None:
        """好差评 (§8.1.2): the applicant may rate for 5 working days after delivery; a low
        rating opens a 回访 for the supervisors, kept on the same statutory clock."""
        state = self._state
        window = await self._calendar.deadline(
            DeadlineRequest(step="rating_window", opened_at=workflow.now(), working_days=RATING_DAYS)
        )
        state.rating_closes_at = window.due_at
        state.rating_open = True
        self._changed()
        remaining = (window.due_at - workflow.now()).total_seconds()
        if remaining > 0:
            with contextlib.suppress(TimeoutError):
                await workflow.wait_condition(lambda: False, timeout=remaining)
        state.rating_open = False
        self._changed()
        await workflow.wait_condition(state.all_follow_ups_finished)

    async def _open_follow_up(self, rating: RatingView) -> None:
        step = follow_up_step(len(self._state.follow_ups) + 1)
        now = workflow.now()
        deadline = await self._calendar.deadline(
            DeadlineRequest(step=step.code, opened_at=now, working_days=step.time_limit)
        )
        step.opened_at = now
        step.clock.start(deadline)
        self._state.follow_ups[step.code] = step
        self._record(
            EventType.OPENED,
            step=step,
            due_at=deadline.due_at,
            detail={"rating_score": rating.score, "rated_step": rating.step},
        )
        self._keep_clock(step)

    async def _archive(self) -> None:
        """File the closed case in the electronic archive (§7.1.3)."""
        await calls.archive_case(views.archive_input(self._state, self._snapshot(), self._projection.events))

    # --- each open step's statutory clock ----------------------------------------------

    def _keep_clock(self, step: StepState) -> None:
        clock = step_clock(self._state, step, self._record, self._writes, self._calendar, self._changed)
        self._side_tasks.append(asyncio.create_task(clock.keep()))

    # --- queries and Updates ------------------------------------------------------------

    @workflow.query
    def snapshot(self) -> CaseSnapshot:
        return self._snapshot()

    @workflow.update
    async def wait_accepted(self) -> CaseSnapshot:
        """Answers once the case is accepted and its acceptance notice is in the read model."""
        await workflow.wait_condition(lambda: self._state.accepted)
        await self._projection.flush()
        return self._snapshot()

    @workflow.update
    async def claim(self, action: ClaimInput) -> StepView:
        step = self._step(action.step)
        self._writes.audit(action.audit)
        if self._state.claim(step, action.actor.username):
            self._record(EventType.CLAIMED, step=step, actor=action.actor.username)
            self._changed()
        await self._projection.flush()
        return views.step_view_for(self._state, step, action.actor)

    @claim.validator
    def _validate_claim(self, action: ClaimInput) -> None:
        checked(self._state.check_claim, action.actor, action.step)

    @workflow.update
    async def complete(self, action: CompleteStepInput) -> StepView:
        state = self._state
        step = self._step(action.step)
        result = validate_result(step.definition, action.result, state.case.form)
        # A refusing finding (核验不通过) ends the case as the catalogue says; definitions
        # without `negative` never come here, so older cases replay unchanged.
        if (negative := negative_result(step.definition, result)) and step.code not in state.follow_ups:
            state.refuse_by_result(step, result, negative[1].reason_zh, workflow.now())
            return await self._refused(step, action, {"reason": negative[1].reason_zh, "field": negative[0]})
        state.complete(step, result, workflow.now())
        detail = {"comment": action.comment} if action.comment else {}
        self._writes.audit(action.audit)
        self._writes.pending.finished(step.code)
        self._record(EventType.COMPLETED, step=step, actor=action.actor.username, detail=detail)
        if step.definition.delivers_case:
            self._record(EventType.DELIVERED, step=step, actor=action.actor.username)
        if step.code not in state.follow_ups:
            for notice in notices.after_completion(state, step):
                self._notify(notice)
        self._changed()
        # Answer once the steps this one unblocked are open, so the next
        # department sees its task as soon as this officer sees "done".
        await workflow.wait_condition(lambda: not state.ready_steps())
        await self._projection.flush()
        return views.step_view_for(self._state, step, action.actor)

    @complete.validator
    def _validate_complete(self, action: CompleteStepInput) -> None:
        state = self._state

        def check() -> None:
            step = state.actionable_step(action.actor, action.step)
            state.require_own_claim(step, action.actor)
            validate_result(step.definition, action.result, state.case.form)
            check_result_identities(step.definition, action.result, state.case.form)

        checked(check)

    @workflow.update
    async def return_for_supplement(self, action: ReturnStepInput) -> StepView:
        step = self._step(action.step)
        self._state.return_for_supplement(step, action.missing)
        self._state.request_materials(step, action.reason)
        self._writes.audit(action.audit)
        self._record(
            EventType.RETURNED,
            step=step,
            actor=action.actor.username,
            detail={"missing": step.missing, "reason": action.reason},
        )
        assert step.clock.due_at is not None
        step.clock.pause(await self._calendar.remaining_seconds(workflow.now(), step.clock.due_at))
        self._notify(notices.supplement_requested(step, action.reason))
        self._changed()
        await self._projection.flush()
        return views.step_view_for(self._state, step, action.actor)

    @return_for_supplement.validator
    def _validate_return(self, action: ReturnStepInput) -> None:
        checked(self._state.check_return, action)

    @workflow.update
    async def refuse(self, action: RefuseStepInput) -> StepView:
        step = self._step(action.step)
        self._state.refuse(step, action.reason, workflow.now())
        return await self._refused(step, action, {"reason": action.reason})

    async def _refused(
        self, step: StepState, action: RefuseStepInput | CompleteStepInput, detail: dict[str, Any]
    ) -> StepView:
        """Records a step's refusal of the case and answers once the case has closed."""
        self._writes.audit(action.audit)
        self._writes.pending.finished(step.code)
        self._record(EventType.REFUSED, step=step, actor=action.actor.username, detail=detail)
        self._changed()
        await workflow.wait_condition(lambda: self._state.closed)
        await self._projection.flush()
        return views.step_view_for(self._state, step, action.actor)

    @refuse.validator
    def _validate_refuse(self, action: RefuseStepInput) -> None:
        checked(self._state.check_refuse, action.actor, action.step, action.reason)

    @workflow.update
    async def supervise(self, action: SuperviseInput) -> StepView:
        """A supervisor's manual 督办 to the step's department, or 催办 to its assignee."""
        state = self._state
        step = self._step(action.step)
        state.manual_notices += 1
        event = EventType.SUPERVISION_NOTICE if action.kind == "notice" else EventType.URGED
        self._record(
            event,
            step=step,
            actor=action.actor.username,
            due_at=step.clock.due_at,
            detail={"origin": "manual", "message": action.message, "sequence": state.manual_notices},
        )
        notice = notices.supervision_notice(state, step, action, workflow.now())
        self._writes.audit(action.audit)
        await self._writes.supervision_notice(notice)
        self._changed()
        await self._projection.flush()
        return views.step_view_for(self._state, step, action.actor)

    @supervise.validator
    def _validate_supervise(self, action: SuperviseInput) -> None:
        checked(self._state.check_supervise, action.actor, action.step, action.kind)

    @workflow.update
    async def supplement(self, action: SupplementInput) -> CaseSnapshot:
        state = self._state
        self._record(
            EventType.SUPPLEMENTED, actor=action.actor.username, detail={"materials": sorted(action.materials)}
        )
        state.intake_missing = []
        state.materials_supplied(action.materials)
        self._writes.audit(action.audit)

        def resumed(step: StepState) -> None:
            self._record(EventType.SUPPLEMENTED, step=step, actor=action.actor.username, due_at=step.clock.due_at)

        await resume_after_supplement(state, self._calendar, workflow.now(), resumed)
        self._changed()
        await workflow.wait_condition(lambda: not state.ready_steps())
        await self._projection.flush()
        return self._snapshot()

    @supplement.validator
    def _validate_supplement(self, action: SupplementInput) -> None:
        checked(self._state.check_supplement, action)

    @workflow.update
    async def rate(self, rating: RateInput) -> RatingView:
        view = self._state.add_rating(rating, workflow.now())
        step = self._state.steps.get(rating.step) if rating.step else None
        self._record(
            EventType.RATED,
            step=step,
            actor=rating.actor.username,
            detail={"score": rating.score, "comment": rating.comment or ""},
        )
        if rating.score <= LOW_SCORE:
            await self._open_follow_up(view)
        self._changed()
        await self._projection.flush()
        return view

    @rate.validator
    def _validate_rate(self, rating: RateInput) -> None:
        checked(self._state.check_rate, rating)

    # --- helpers ------------------------------------------------------------------------

    def _step(self, code: str) -> StepState:
        step = self._state.find_step(code)
        assert step is not None, "the validator found it"
        return step

    def _notify(self, notice: notices.Notice) -> None:
        self._writes.notify(notices.to_applicant(self._state, notice, workflow.now()))

    def _record(self, event_type: EventType, *, step: StepState | None = None, **fields: Any) -> None:
        """Record a business event (fields: actor, due_at, detail); the next write projects it."""
        self._projection.record(
            CaseEvent(
                seq=self._projection.next_seq,
                at=workflow.now(),
                type=event_type,
                step=step.code if step else None,
                department=step.department if step else None,
                **fields,
            )
        )

    def _changed(self) -> None:
        self._projection.changed()
        status = self._state.status()
        if status != self._status_seen:
            self._status_seen = status
            workflow.upsert_search_attributes([CASE_STATUS_KEY.value_set(status.value)])

    async def _write_projection(self, events: list[CaseEvent]) -> None:
        await self._writes.write(self._snapshot(), events, self._projection.events)

    def _snapshot(self) -> CaseSnapshot:
        return views.snapshot(
            self._state,
            submitted_at=self._submitted_at or workflow.now(),
            notice=self._notice,
            revision=self._projection.revision,
        )

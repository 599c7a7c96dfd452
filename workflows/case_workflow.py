"""The case workflow: one durable run per "one thing" application.

It interprets the catalogue definition it was started with: opens every step
whose dependencies are done, keeps each step's statutory clock (warning, overdue,
a 督办 each further working day, paused while waiting for 补正), and takes officers'
actions as Updates whose validators reject bad requests before anything is
written to history. Every state change is projected to the read model through
one activity, whose inputs double as the case's timeline in history.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from temporalio import workflow
from temporalio.common import RetryPolicy, SearchAttributeKey
from temporalio.exceptions import ActivityError, ApplicationError

from workflows.projection import Projection
from workflows.short_activities import run_short_activity

with workflow.unsafe.imports_passed_through():
    from models.case import (
        CASE_STATUS_ZH,
        FINISHED_STEP_STATUSES,
        SEARCH_ATTRIBUTE_STATUS,
        STEP_STATUS_ZH,
        AcceptanceNotice,
        ActivityName,
        Actor,
        ArchiveCaseInput,
        ArchiveResult,
        CaseEvent,
        CaseInput,
        CaseSnapshot,
        CaseStatus,
        ClaimInput,
        CompleteStepInput,
        ComputeDeadlinesInput,
        ComputeDeadlinesResult,
        DeadlineRequest,
        EscalationInput,
        EventType,
        FetchSharedMaterialsInput,
        FetchSharedMaterialsResult,
        MaterialEntry,
        MaterialRequest,
        NextEscalationInput,
        NextEscalationResult,
        NotificationInput,
        ProjectCaseInput,
        RateInput,
        RatingView,
        RefuseStepInput,
        RemainingTimeInput,
        RemainingTimeResult,
        ReturnStepInput,
        StepStatus,
        StepView,
        SuperviseInput,
        SupervisionNoticeInput,
        SupplementInput,
    )
    from models.catalogue import FOLLOW_UP, StepDefinition, read_path
    from models.errors import DomainError, ErrorCode
    from models.results import validate_result

CASE_STATUS_KEY = SearchAttributeKey.for_keyword(SEARCH_ATTRIBUTE_STATUS)

# Reading the calendar or writing the read model never fails for business
# reasons, so those activities retry until they succeed.
LOCAL_SERVICE_RETRY = RetryPolicy(initial_interval=timedelta(seconds=1), maximum_interval=timedelta(minutes=1))
# The data-sharing platform is someone else's service: retry for a bounded
# time, then ask the applicant for the materials instead of hanging the case.
DATA_SHARING_RETRY = RetryPolicy(
    initial_interval=timedelta(seconds=1),
    backoff_coefficient=2.0,
    maximum_interval=timedelta(seconds=30),
    maximum_attempts=6,
)

RATING_DAYS = 5  # working days an applicant has to rate a delivered case
LOW_SCORE = 2  # ratings at or below it open a 回访

DELIVERY_METHOD_ZH = {"pickup": "窗口领取", "mail": "邮寄送达"}


@dataclass
class _Step:
    definition: StepDefinition
    department: str
    time_limit: int
    status: StepStatus = StepStatus.PENDING
    opened_at: datetime | None = None
    due_at: datetime | None = None
    warning_at: datetime | None = None
    provisional: bool = False
    completed_at: datetime | None = None
    overdue: bool = False
    warned: bool = False
    assignee: str | None = None
    result: dict[str, Any] | None = None
    missing: list[str] = field(default_factory=list)
    escalations: int = 0
    next_escalation_at: datetime | None = None
    remaining_seconds: float = 0.0
    # Bumped whenever the deadline moves so a sleeping clock re-reads it.
    clock_generation: int = 0

    @property
    def code(self) -> str:
        return self.definition.code

    @property
    def finished(self) -> bool:
        return self.status in FINISHED_STEP_STATUSES


def _rejection(code: ErrorCode, message: str, fields: dict[str, str] | None = None) -> ApplicationError:
    return ApplicationError(message, {"fields": fields or {}}, type=code.value, non_retryable=True)


@workflow.defn
class CaseWorkflow:
    @workflow.init
    def __init__(self, case: CaseInput) -> None:
        self._case = case
        self._definition = case.definition
        self._steps: dict[str, _Step] = {
            step.code: _Step(
                definition=step,
                department=step.department_for(case.channel),
                time_limit=step.time_limit_for(case.channel),
            )
            for step in case.definition.steps_for(case.channel)
        }
        self._submitted_at: datetime | None = None
        self._accepted = False
        self._closed = False
        self._refused_step: str | None = None
        self._intake_missing: list[str] = []
        self._notice: AcceptanceNotice | None = None
        self._events: list[CaseEvent] = []
        self._projection: Projection[CaseEvent] = Projection()
        self._status_seen: CaseStatus | None = None
        self._side_tasks: list[asyncio.Task[None]] = []
        self._manual_notices = 0
        self._follow_ups: dict[str, _Step] = {}
        self._ratings: list[RatingView] = []
        self._rating_open = False
        self._rating_closes_at: datetime | None = None

    # --- the run ----------------------------------------------------------------

    @workflow.run
    async def run(self, case: CaseInput) -> CaseSnapshot:
        self._submitted_at = workflow.now()
        projector = asyncio.create_task(self._projection.run(lambda: self._accepted, self._write_projection))
        received, shared, to_supply = await self._gather_materials()
        self._intake_missing = [material.code for material in to_supply]
        self._record(EventType.ACCEPTED, actor=case.submitted_by.username)
        await self._open_ready_steps()
        self._notice = self._build_notice(received, shared, to_supply)
        self._accepted = True
        self._changed()

        while self._refused_step is None and not self._all_steps_done():
            await workflow.wait_condition(
                lambda: self._refused_step is not None or self._all_steps_done() or bool(self._ready_steps())
            )
            if self._refused_step is None:
                await self._open_ready_steps()

        if self._refused_step is not None:
            self._close_refused()
        else:
            self._record(EventType.CASE_COMPLETED)
            self._notify("case_completed", f"您的{self._definition.name_zh}已全部办结。")
        self._closed = True
        self._changed()
        if self._refused_step is None and workflow.patched("rating-window"):
            await self._collect_ratings()
        await workflow.wait_condition(lambda: workflow.all_handlers_finished() and self._projection.settled)
        await asyncio.gather(*self._side_tasks)
        projector.cancel()
        if workflow.patched("archive-closed-cases"):
            await self._archive()
        return self._snapshot()

    async def _collect_ratings(self) -> None:
        """好差评 (§8.1.2): the applicant may rate for 5 working days after delivery; a low
        rating opens a 回访 for the supervisors, kept on the same statutory clock."""
        computed = await run_short_activity(
            ActivityName.COMPUTE_DEADLINES,
            ComputeDeadlinesInput(
                requests=[DeadlineRequest(step="rating_window", opened_at=workflow.now(), working_days=RATING_DAYS)]
            ),
            result_type=ComputeDeadlinesResult,
            start_to_close_timeout=timedelta(seconds=10),
            retry_policy=LOCAL_SERVICE_RETRY,
        )
        self._rating_closes_at = computed.deadlines[0].due_at
        self._rating_open = True
        self._changed()
        remaining = (self._rating_closes_at - workflow.now()).total_seconds()
        if remaining > 0:
            with contextlib.suppress(TimeoutError):
                await workflow.wait_condition(lambda: False, timeout=remaining)
        self._rating_open = False
        self._changed()
        await workflow.wait_condition(lambda: all(step.finished for step in self._follow_ups.values()))

    @workflow.update
    async def rate(self, rating: RateInput) -> RatingView:
        step = self._steps.get(rating.step) if rating.step else None
        view = RatingView(
            step=rating.step,
            department=step.department if step else None,
            score=rating.score,
            comment=rating.comment,
            rated_at=workflow.now(),
        )
        self._ratings.append(view)
        self._record(
            EventType.RATED,
            step=step,
            actor=rating.actor.username,
            detail={"score": rating.score, "comment": rating.comment or ""},
        )
        if rating.score <= LOW_SCORE:
            await self._open_follow_up(view)
        self._changed()
        await self._flush()
        return view

    @rate.validator
    def _validate_rate(self, rating: RateInput) -> None:
        if rating.actor.role != "applicant" or rating.actor.username != self._case.owner:
            raise _rejection(ErrorCode.FORBIDDEN, "仅申请人本人可评价 (only the applicant rates the case)")
        if not self._rating_open:
            raise _rejection(ErrorCode.CONFLICT, "当前不在评价期内 (rating is open for 5 working days after delivery)")
        if rating.step is not None and (
            rating.step not in self._steps or self._steps[rating.step].status != StepStatus.DONE
        ):
            raise _rejection(
                ErrorCode.INVALID, "评价的环节有误 (no such completed step)", {"step": "not a step of this case"}
            )
        if any(existing.step == rating.step for existing in self._ratings):
            raise _rejection(ErrorCode.CONFLICT, "已评价过 (already rated)")
        if not 1 <= rating.score <= 5:
            raise _rejection(ErrorCode.INVALID, "评分为1至5 (score 1 to 5)", {"score": "must be 1 to 5"})

    async def _open_follow_up(self, rating: RatingView) -> None:
        code = f"follow_up_{len(self._follow_ups) + 1}"
        now = workflow.now()
        computed = await run_short_activity(
            ActivityName.COMPUTE_DEADLINES,
            ComputeDeadlinesInput(
                requests=[DeadlineRequest(step=code, opened_at=now, working_days=FOLLOW_UP.time_limit_for(""))]
            ),
            result_type=ComputeDeadlinesResult,
            start_to_close_timeout=timedelta(seconds=10),
            retry_policy=LOCAL_SERVICE_RETRY,
        )
        deadline = computed.deadlines[0]
        step = _Step(
            definition=FOLLOW_UP.model_copy(update={"code": code}),
            department=FOLLOW_UP.department or "supervision",
            time_limit=FOLLOW_UP.time_limit_for(""),
            status=StepStatus.OPEN,
            opened_at=now,
            due_at=deadline.due_at,
            warning_at=deadline.warning_at,
            provisional=deadline.provisional,
        )
        self._follow_ups[code] = step
        self._record(
            EventType.OPENED,
            step=step,
            due_at=deadline.due_at,
            detail={"rating_score": rating.score, "rated_step": rating.step},
        )
        self._side_tasks.append(asyncio.create_task(self._keep_clock(step)))

    async def _archive(self) -> None:
        """File the closed case in the electronic archive (§7.1.3)."""
        await workflow.execute_activity(
            ActivityName.ARCHIVE_CASE,
            ArchiveCaseInput(
                case=self._case,
                snapshot=self._snapshot(),
                events=list(self._events),
                ratings=[rating.model_dump(mode="json") for rating in self._ratings],
            ),
            result_type=ArchiveResult,
            start_to_close_timeout=timedelta(minutes=2),
            retry_policy=LOCAL_SERVICE_RETRY,
        )

    async def _gather_materials(
        self,
    ) -> tuple[list[MaterialEntry], list[MaterialEntry], list[MaterialEntry]]:
        """Split the applicable materials into received, fetched by data sharing, and owed."""
        form = self._case.form
        applicable = [m for m in self._definition.materials if m.applies(form)]
        requests = [
            MaterialRequest(
                material=m.code, document=m.document or "", subject_id_number=str(read_path(form, m.subject or ""))
            )
            for m in applicable
            if m.source == "data_sharing" and read_path(form, m.subject or "")
        ]
        found: dict[str, str] = {}
        if requests:
            try:
                fetched = await workflow.execute_activity(
                    ActivityName.FETCH_SHARED_MATERIALS,
                    FetchSharedMaterialsInput(case_id=self._case.case_id, requests=requests),
                    result_type=FetchSharedMaterialsResult,
                    start_to_close_timeout=timedelta(seconds=30),
                    retry_policy=DATA_SHARING_RETRY,
                )
                found = {item.material: item.reference for item in fetched.found}
            except ActivityError:
                workflow.logger.warning("data sharing unavailable; materials will be requested")
        uploaded = form.get("materials") or {}
        received = [MaterialEntry(code=m.code, name_zh=m.name_zh) for m in applicable if m.source == "form"]
        shared: list[MaterialEntry] = []
        to_supply: list[MaterialEntry] = []
        for material in applicable:
            if material.source == "form":
                continue
            if material.code in found:
                shared.append(
                    MaterialEntry(code=material.code, name_zh=material.name_zh, reference=found[material.code])
                )
            elif material.code in uploaded:
                received.append(
                    MaterialEntry(code=material.code, name_zh=material.name_zh, reference=uploaded[material.code])
                )
            elif material.source != "commitment":
                to_supply.append(MaterialEntry(code=material.code, name_zh=material.name_zh))
        return received, shared, to_supply

    def _ready_steps(self) -> list[_Step]:
        if self._intake_missing or self._refused_step is not None:
            return []
        return [
            step
            for step in self._steps.values()
            if step.status == StepStatus.PENDING
            and all(
                dependency not in self._steps or self._steps[dependency].status == StepStatus.DONE
                for dependency in step.definition.depends_on
            )
        ]

    def _all_steps_done(self) -> bool:
        return all(step.status == StepStatus.DONE for step in self._steps.values())

    async def _open_ready_steps(self) -> None:
        ready = self._ready_steps()
        if not ready:
            return
        now = workflow.now()
        computed = await run_short_activity(
            ActivityName.COMPUTE_DEADLINES,
            ComputeDeadlinesInput(
                requests=[DeadlineRequest(step=s.code, opened_at=now, working_days=s.time_limit) for s in ready]
            ),
            result_type=ComputeDeadlinesResult,
            start_to_close_timeout=timedelta(seconds=10),
            retry_policy=LOCAL_SERVICE_RETRY,
        )
        deadlines = {deadline.step: deadline for deadline in computed.deadlines}
        for step in ready:
            deadline = deadlines[step.code]
            step.status = StepStatus.OPEN
            step.opened_at = now
            step.due_at = deadline.due_at
            step.warning_at = deadline.warning_at
            step.provisional = deadline.provisional
            self._record(EventType.OPENED, step=step, due_at=deadline.due_at)
            self._side_tasks.append(asyncio.create_task(self._keep_clock(step)))
        self._changed()

    def _close_refused(self) -> None:
        for step in self._steps.values():
            if not step.finished:
                step.status = StepStatus.CANCELLED
                self._record(EventType.CANCELLED, step=step)
        refused = self._steps[self._refused_step or ""]
        reason = (refused.result or {}).get("reason", "")
        self._notify(
            "case_refused",
            f"您的{self._definition.name_zh}经{self._definition.department_name(refused.department)}审查不予办理：{reason}",
        )

    # --- the statutory clock of one step -------------------------------------------

    def _clock_stopped(self, step: _Step) -> bool:
        # Closing the case stops its steps' clocks; a 回访 runs on after it.
        return self._closed and step.code not in self._follow_ups

    async def _keep_clock(self, step: _Step) -> None:
        while not step.finished and not self._clock_stopped(step):
            if step.status == StepStatus.AWAITING_SUPPLEMENT:
                await workflow.wait_condition(
                    lambda: step.status != StepStatus.AWAITING_SUPPLEMENT or self._clock_stopped(step)
                )
                continue
            target, is_warning = self._next_clock_event(step)
            delay = (target - workflow.now()).total_seconds()
            if delay > 0:
                try:
                    await workflow.wait_condition(self._clock_interrupted(step), timeout=delay)
                    continue
                except TimeoutError:
                    pass
            if is_warning:
                step.warned = True
                self._record(EventType.WARNING, step=step, due_at=step.due_at)
                self._changed()
            else:
                await self._escalate(step, target)

    def _clock_interrupted(self, step: _Step) -> Callable[[], bool]:
        """True once the step ends, pauses, or its deadline moves after this call."""
        generation = step.clock_generation
        return lambda: (
            step.finished
            or self._clock_stopped(step)
            or step.status == StepStatus.AWAITING_SUPPLEMENT
            or step.clock_generation != generation
        )

    def _next_clock_event(self, step: _Step) -> tuple[datetime, bool]:
        assert step.due_at is not None
        if step.overdue:
            assert step.next_escalation_at is not None
            return step.next_escalation_at, False
        if not step.warned and step.time_limit > 0 and step.warning_at is not None and step.warning_at < step.due_at:
            return step.warning_at, True
        return step.due_at, False

    async def _escalate(self, step: _Step, at: datetime) -> None:
        assert step.due_at is not None
        if not step.overdue:
            step.overdue = True
            self._record(EventType.OVERDUE, step=step, due_at=step.due_at)
        step.escalations += 1
        await workflow.execute_activity(
            ActivityName.ESCALATE_OVERDUE_STEP,
            EscalationInput(
                case_id=self._case.case_id,
                step=step.code,
                department=step.department,
                sequence=step.escalations,
                due_at=step.due_at,
                at=at,
                assignee=step.assignee,
            ),
            start_to_close_timeout=timedelta(seconds=30),
            retry_policy=LOCAL_SERVICE_RETRY,
        )
        self._record(EventType.SUPERVISION_NOTICE, step=step, due_at=step.due_at, detail={"sequence": step.escalations})
        step.next_escalation_at = await self._next_escalation(at)
        self._changed()

    async def _next_escalation(self, after: datetime) -> datetime:
        result: NextEscalationResult = await run_short_activity(
            ActivityName.COMPUTE_NEXT_ESCALATION,
            NextEscalationInput(after=after),
            result_type=NextEscalationResult,
            start_to_close_timeout=timedelta(seconds=10),
            retry_policy=LOCAL_SERVICE_RETRY,
        )
        return result.at

    # --- queries and Updates ----------------------------------------------------------

    @workflow.query
    def snapshot(self) -> CaseSnapshot:
        return self._snapshot()

    @workflow.update
    async def wait_accepted(self) -> CaseSnapshot:
        """Answers once the case is accepted and its acceptance notice is in the read model."""
        await workflow.wait_condition(lambda: self._accepted)
        await self._flush()
        return self._snapshot()

    @workflow.update
    async def claim(self, action: ClaimInput) -> StepView:
        step = self._find_step(action.step)
        assert step is not None  # the validator found it
        if step.assignee != action.actor.username:
            step.status = StepStatus.CLAIMED
            step.assignee = action.actor.username
            self._record(EventType.CLAIMED, step=step, actor=action.actor.username)
            self._changed()
        await self._flush()
        return self._step_view(step)

    @claim.validator
    def _validate_claim(self, action: ClaimInput) -> None:
        step = self._actionable_step(action.actor, action.step)
        if step.status == StepStatus.CLAIMED and step.assignee == action.actor.username:
            return
        if step.status != StepStatus.OPEN:
            raise self._state_conflict(step, action.actor)

    @workflow.update
    async def complete(self, action: CompleteStepInput) -> StepView:
        step = self._find_step(action.step)
        assert step is not None  # the validator found it
        step.result = validate_result(step.definition, action.result, self._case.form)
        step.status = StepStatus.DONE
        step.completed_at = workflow.now()
        detail = {"comment": action.comment} if action.comment else {}
        self._record(EventType.COMPLETED, step=step, actor=action.actor.username, detail=detail)
        if step.definition.delivers_case:
            self._record(EventType.DELIVERED, step=step, actor=action.actor.username)
        self._after_completion(step)
        self._changed()
        # Answer once the steps this one unblocked are open, so the next
        # department sees its task as soon as this officer sees "done".
        await workflow.wait_condition(lambda: not self._ready_steps())
        await self._flush()
        return self._step_view(step)

    @complete.validator
    def _validate_complete(self, action: CompleteStepInput) -> None:
        step = self._actionable_step(action.actor, action.step)
        self._require_own_claim(step, action.actor)
        try:
            validate_result(step.definition, action.result, self._case.form)
        except DomainError as exc:
            raise _rejection(exc.code, exc.message, exc.fields) from None

    @workflow.update
    async def return_for_supplement(self, action: ReturnStepInput) -> StepView:
        step = self._steps[action.step]
        step.status = StepStatus.AWAITING_SUPPLEMENT
        step.missing = list(action.missing)
        self._record(
            EventType.RETURNED,
            step=step,
            actor=action.actor.username,
            detail={"missing": step.missing, "reason": action.reason},
        )
        assert step.due_at is not None
        remaining = await run_short_activity(
            ActivityName.COMPUTE_REMAINING_TIME,
            RemainingTimeInput(paused_at=workflow.now(), due_at=step.due_at),
            result_type=RemainingTimeResult,
            start_to_close_timeout=timedelta(seconds=10),
            retry_policy=LOCAL_SERVICE_RETRY,
        )
        step.remaining_seconds = remaining.remaining_seconds
        self._notify(
            "supplement_requested",
            f"补齐补正通知：请补交以下材料：{'、'.join(step.missing)}。原因：{action.reason}",
            step=step.code,
        )
        self._changed()
        await self._flush()
        return self._step_view(step)

    @return_for_supplement.validator
    def _validate_return(self, action: ReturnStepInput) -> None:
        step = self._actionable_step(action.actor, action.step)
        self._require_own_claim(step, action.actor)
        fields: dict[str, str] = {}
        if not action.missing or len(action.missing) > 20:
            fields["missing"] = "list 1 to 20 missing items"
        for index, item in enumerate(action.missing):
            if not item.strip() or len(item) > 100:
                fields[f"missing[{index}]"] = "each item is 1 to 100 characters"
        if not action.reason.strip() or len(action.reason) > 500:
            fields["reason"] = "give a reason of 1 to 500 characters"
        if fields:
            raise _rejection(ErrorCode.INVALID, "补正要求不完整 (invalid return)", fields)

    @workflow.update
    async def refuse(self, action: RefuseStepInput) -> StepView:
        step = self._steps[action.step]
        step.status = StepStatus.REFUSED
        step.completed_at = workflow.now()
        step.result = {"reason": action.reason}
        self._refused_step = step.code
        self._record(EventType.REFUSED, step=step, actor=action.actor.username, detail={"reason": action.reason})
        self._changed()
        await workflow.wait_condition(lambda: self._closed)
        await self._flush()
        return self._step_view(step)

    @refuse.validator
    def _validate_refuse(self, action: RefuseStepInput) -> None:
        step = self._actionable_step(action.actor, action.step)
        self._require_own_claim(step, action.actor)
        if not action.reason.strip() or len(action.reason) > 500:
            raise _rejection(
                ErrorCode.INVALID,
                "不予办理须说明理由 (a refusal needs a reason)",
                {"reason": "give a reason of 1 to 500 characters"},
            )

    @workflow.update
    async def supervise(self, action: SuperviseInput) -> StepView:
        """A supervisor's manual 督办 to the step's department, or 催办 to its assignee."""
        step = self._steps[action.step]
        self._manual_notices += 1
        event = EventType.SUPERVISION_NOTICE if action.kind == "notice" else EventType.URGED
        self._record(
            event,
            step=step,
            actor=action.actor.username,
            due_at=step.due_at,
            detail={"origin": "manual", "message": action.message, "sequence": self._manual_notices},
        )
        await workflow.execute_activity(
            ActivityName.RECORD_SUPERVISION_NOTICE,
            SupervisionNoticeInput(
                case_id=self._case.case_id,
                step=step.code,
                department=step.department,
                kind=action.kind,
                sequence=self._manual_notices,
                message_zh=action.message,
                issued_by=action.actor.username,
                assignee=step.assignee,
                due_at=step.due_at,
                at=workflow.now(),
            ),
            start_to_close_timeout=timedelta(seconds=30),
            retry_policy=LOCAL_SERVICE_RETRY,
        )
        self._changed()
        await self._flush()
        return self._step_view(step)

    @supervise.validator
    def _validate_supervise(self, action: SuperviseInput) -> None:
        if action.actor.role != "supervisor":
            raise _rejection(ErrorCode.FORBIDDEN, "仅监督人员可督办、催办 (supervisors only)")
        step = self._steps.get(action.step)
        if step is None:
            raise _rejection(ErrorCode.NOT_FOUND, f"no step {action.step!r} in this case")
        if step.status == StepStatus.PENDING or step.finished or self._closed:
            raise self._state_conflict(step, action.actor)
        if action.kind == "urge" and step.assignee is None:
            raise _rejection(ErrorCode.CONFLICT, "任务尚无人签收，无法催办 (no assignee to urge yet)")

    @workflow.update
    async def supplement(self, action: SupplementInput) -> CaseSnapshot:
        now = workflow.now()
        self._record(
            EventType.SUPPLEMENTED, actor=action.actor.username, detail={"materials": sorted(action.materials)}
        )
        self._intake_missing = []
        resumed = [step for step in self._steps.values() if step.status == StepStatus.AWAITING_SUPPLEMENT]
        fresh_deadlines = [s for s in resumed if not s.overdue]
        if fresh_deadlines:
            computed = await run_short_activity(
                ActivityName.COMPUTE_DEADLINES,
                ComputeDeadlinesInput(
                    requests=[
                        DeadlineRequest(step=s.code, opened_at=now, remaining_seconds=s.remaining_seconds)
                        for s in fresh_deadlines
                    ]
                ),
                result_type=ComputeDeadlinesResult,
                start_to_close_timeout=timedelta(seconds=10),
                retry_policy=LOCAL_SERVICE_RETRY,
            )
            for deadline in computed.deadlines:
                step = self._steps[deadline.step]
                step.due_at = deadline.due_at
                step.warning_at = deadline.warning_at
                step.provisional = step.provisional or deadline.provisional
        for step in resumed:
            if step.overdue:
                step.next_escalation_at = await self._next_escalation(now)
            step.status = StepStatus.CLAIMED if step.assignee else StepStatus.OPEN
            step.missing = []
            step.clock_generation += 1
            self._record(EventType.SUPPLEMENTED, step=step, actor=action.actor.username, due_at=step.due_at)
        self._changed()
        await workflow.wait_condition(lambda: not self._ready_steps())
        await self._flush()
        return self._snapshot()

    @supplement.validator
    def _validate_supplement(self, action: SupplementInput) -> None:
        if not self._accepted or self._closed:
            raise _rejection(ErrorCode.CONFLICT, "案件当前无需补正 (the case is not awaiting supplements)")
        owed = self._owed_materials()
        if not owed:
            raise _rejection(ErrorCode.CONFLICT, "案件当前无需补正 (the case is not awaiting supplements)")
        fields = {
            f"materials.{item}": "required: listed in the supplement notice"
            for item in owed
            if not str(action.materials.get(item, "")).strip()
        }
        if fields:
            raise _rejection(ErrorCode.INVALID, "补正材料不齐 (supplement incomplete)", fields)

    # --- helpers ----------------------------------------------------------------------

    def _owed_materials(self) -> list[str]:
        owed = list(self._intake_missing)
        for step in self._steps.values():
            if step.status == StepStatus.AWAITING_SUPPLEMENT:
                owed.extend(item for item in step.missing if item not in owed)
        return owed

    def _find_step(self, code: str) -> _Step | None:
        return self._steps.get(code) or self._follow_ups.get(code)

    def _actionable_step(self, actor: Actor, code: str) -> _Step:
        step = self._find_step(code)
        if step is None:
            raise _rejection(ErrorCode.NOT_FOUND, f"no task for step {code!r} in this case")
        if actor.role not in step.definition.actors or actor.unit != step.department:
            raise _rejection(ErrorCode.FORBIDDEN, "该任务不属于您的部门 (the task belongs to another department)")
        if code not in self._follow_ups and (self._closed or self._refused_step is not None):
            raise _rejection(ErrorCode.CONFLICT, "案件已结束 (the case is closed)")
        if step.status in {StepStatus.PENDING} | FINISHED_STEP_STATUSES:
            raise self._state_conflict(step, actor)
        return step

    def _require_own_claim(self, step: _Step, actor: Actor) -> None:
        if step.status != StepStatus.CLAIMED or step.assignee != actor.username:
            raise self._state_conflict(step, actor)

    def _state_conflict(self, step: _Step, actor: Actor) -> ApplicationError:
        if step.status == StepStatus.PENDING:
            message = "环节尚未启动 (the step is not open yet)"
        elif step.status in FINISHED_STEP_STATUSES:
            message = f"环节状态为{STEP_STATUS_ZH[step.status]} (the step is {step.status.value})"
        elif step.status == StepStatus.OPEN:
            message = "请先签收任务 (claim the task first)"
        elif step.status == StepStatus.AWAITING_SUPPLEMENT:
            message = "环节正在等待补正 (the step awaits supplementary materials)"
        elif step.assignee != actor.username:
            message = "任务已由他人签收 (the task is claimed by another officer)"
        else:
            message = f"当前状态不允许该操作 (not allowed while {step.status.value})"
        return _rejection(ErrorCode.CONFLICT, message)

    def _after_completion(self, step: _Step) -> None:
        if step.code in self._follow_ups:
            return
        notification = step.definition.notify_on_complete
        if notification is not None:
            self._notify(notification.kind, notification.message_zh, step=step.code)
        has_delivery_step = any(s.definition.delivers_case for s in self._steps.values())
        if not has_delivery_step:
            method = str(read_path(self._case.form, "delivery.method") or "pickup")
            self._notify(
                "result_delivery",
                f"{step.definition.name_zh}已办结，结果将以{DELIVERY_METHOD_ZH.get(method, method)}方式送达。",
                step=step.code,
            )

    def _notify(self, kind: str, message_zh: str, step: str | None = None) -> None:
        notification = NotificationInput(
            case_id=self._case.case_id,
            kind=kind,
            recipient=self._case.owner,
            message_zh=message_zh,
            step=step,
            at=workflow.now(),
        )
        self._side_tasks.append(asyncio.create_task(self._send(notification)))

    async def _send(self, notification: NotificationInput) -> None:
        await run_short_activity(
            ActivityName.SEND_NOTIFICATION,
            notification,
            start_to_close_timeout=timedelta(seconds=30),
            retry_policy=LOCAL_SERVICE_RETRY,
        )

    def _record(
        self,
        event_type: EventType,
        *,
        step: _Step | None = None,
        actor: str | None = None,
        due_at: datetime | None = None,
        detail: dict[str, Any] | None = None,
    ) -> None:
        event = CaseEvent(
            seq=len(self._events) + 1,
            at=workflow.now(),
            type=event_type,
            step=step.code if step else None,
            department=step.department if step else None,
            actor=actor,
            due_at=due_at,
            detail=detail or {},
        )
        self._events.append(event)
        self._projection.record(event)

    def _changed(self) -> None:
        self._projection.changed()
        status = self._status()
        if status != self._status_seen:
            self._status_seen = status
            workflow.upsert_search_attributes([CASE_STATUS_KEY.value_set(status.value)])

    async def _flush(self) -> None:
        await self._projection.flush()

    async def _write_projection(self, events: list[CaseEvent]) -> None:
        await run_short_activity(
            ActivityName.PROJECT_CASE,
            ProjectCaseInput(snapshot=self._snapshot(), events=events),
            start_to_close_timeout=timedelta(seconds=30),
            retry_policy=LOCAL_SERVICE_RETRY,
        )

    def _status(self) -> CaseStatus:
        if self._refused_step is not None:
            return CaseStatus.REFUSED
        if self._closed or (self._accepted and self._all_steps_done()):
            return CaseStatus.COMPLETED
        if self._intake_missing or any(s.status == StepStatus.AWAITING_SUPPLEMENT for s in self._steps.values()):
            return CaseStatus.AWAITING_SUPPLEMENT
        if any(s.status not in {StepStatus.PENDING, StepStatus.OPEN} for s in self._steps.values()):
            return CaseStatus.IN_PROGRESS
        return CaseStatus.ACCEPTED

    def _step_view(self, step: _Step) -> StepView:
        return StepView(
            step=step.code,
            name_zh=step.definition.name_zh,
            department=step.department,
            department_zh=self._definition.department_name(step.department),
            status=step.status,
            status_zh=STEP_STATUS_ZH[step.status],
            time_limit_working_days=step.time_limit,
            opened_at=step.opened_at,
            due_at=step.due_at,
            warning_at=step.warning_at,
            provisional=step.provisional,
            completed_at=step.completed_at,
            overdue=step.overdue,
            assignee=step.assignee,
            result=step.result,
            missing=list(step.missing),
            escalations=step.escalations,
            actors=list(step.definition.actors),
        )

    def _snapshot(self) -> CaseSnapshot:
        status = self._status()
        return CaseSnapshot(
            case_id=self._case.case_id,
            thing=self._definition.code,
            thing_zh=self._definition.name_zh,
            catalogue_version=self._definition.version,
            situation=self._definition.situation,
            channel=self._case.channel,
            status=status,
            status_zh=CASE_STATUS_ZH[status],
            submitted_at=self._submitted_at or workflow.now(),
            owner=self._case.owner,
            submitted_by=self._case.submitted_by.username,
            accepting_unit=self._definition.channel(self._case.channel).accepting_unit,
            missing_materials=self._owed_materials(),
            steps=[self._step_view(step) for step in [*self._steps.values(), *self._follow_ups.values()]],
            acceptance_notice=self._notice,
            revision=self._projection.revision,
            request_fingerprint=self._case.request_fingerprint,
            ratings=list(self._ratings),
            rating_open=self._rating_open,
            rating_closes_at=self._rating_closes_at,
        )

    def _build_notice(
        self, received: list[MaterialEntry], shared: list[MaterialEntry], to_supply: list[MaterialEntry]
    ) -> AcceptanceNotice:
        channel = self._definition.channel(self._case.channel)
        method = str(read_path(self._case.form, "delivery.method") or "pickup")
        unit = channel.accepting_unit
        submitter = self._case.submitted_by
        return AcceptanceNotice(
            case_id=self._case.case_id,
            thing=self._definition.code,
            thing_zh=self._definition.name_zh,
            channel=channel.code,
            channel_zh=channel.name_zh,
            accepting_unit=unit,
            accepting_unit_zh=self._definition.department_name(unit) if unit else "网上办事大厅",
            accepting_staff=submitter.username if submitter.role == "clerk" else None,
            accepted_at=self._submitted_at or workflow.now(),
            materials_received=received,
            materials_shared=shared,
            materials_to_supply=to_supply,
            steps=[self._step_view(step) for step in self._steps.values()],
            delivery_method=method,
            delivery_method_zh=DELIVERY_METHOD_ZH.get(method, method),
            supervision_phone=self._case.supervision_phone,
        )

"""A case's state and the pure rules that change it: which steps are ready, what each
officer or applicant action may do, the case's status. Nothing here calls Temporal: the workflow
(workflows/case/workflow.py) calls these with ``workflow.now()`` and records the events;
tests/rules/test_case_state.py checks the rules on their own.

Rules refuse with DomainError; the workflow's validators turn that into the Update's
rejection, so a refused action writes nothing to history.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from temporalio import workflow

from workflows.kit.clock import ClockState

with workflow.unsafe.imports_passed_through():
    from domain.catalogue import FOLLOW_UP
    from domain.follow_links import walk_in_rater
    from models.case import (
        FINISHED_STEP_STATUSES,
        MATERIAL_STATUS_ZH,
        STEP_STATUS_ZH,
        Actor,
        CaseInput,
        CaseStatus,
        ExtensionRequest,
        MaterialEntry,
        MaterialStatus,
        MaterialView,
        RateInput,
        RatingView,
        ReturnStepInput,
        StepStatus,
        StepUnit,
        SupplementInput,
        Suspension,
    )
    from models.catalogue import StepDefinition
    from models.errors import DomainError, ErrorCode

RATING_DAYS = 5  # working days an applicant has to rate a delivered case
LOW_SCORE = 2  # ratings at or below it open a 回访
MAX_MISSING_ITEMS = 20
MAX_ITEM_CHARS = 100
MAX_REASON_CHARS = 500
NOT_SHARED_ZH = "数据共享平台未能获取，请提交"
NOT_SUBMITTED_ZH = "申请时未提交"


@dataclass
class StepState:
    definition: StepDefinition
    department: str
    time_limit: int
    status: StepStatus = StepStatus.PENDING
    opened_at: datetime | None = None
    completed_at: datetime | None = None
    assignee: str | None = None
    result: dict[str, Any] | None = None
    missing: list[str] = field(default_factory=list)
    clock: ClockState = field(default_factory=ClockState)
    suspension: Suspension | None = None
    extension_request: ExtensionRequest | None = None
    extended_working_days: int = 0

    @property
    def code(self) -> str:
        return self.definition.code

    @property
    def finished(self) -> bool:
        return self.status in FINISHED_STEP_STATUSES

    @property
    def warns(self) -> bool:
        # A same-day step (0 working days) has no "last day" to warn on.
        return self.time_limit > 0


def follow_up_step(number: int) -> StepState:
    """回访 number ``number`` after a low rating, for the supervisors."""
    return StepState(
        definition=FOLLOW_UP.model_copy(update={"code": f"follow_up_{number}"}),
        department=FOLLOW_UP.department or "supervision",
        time_limit=FOLLOW_UP.time_limit_for(""),
        status=StepStatus.OPEN,
    )


def _refuse(code: ErrorCode, message: str, fields: dict[str, str] | None = None) -> DomainError:
    return DomainError(code, message, fields)


@dataclass
class CaseState:
    case: CaseInput
    steps: dict[str, StepState]
    follow_ups: dict[str, StepState] = field(default_factory=dict)
    accepted: bool = False
    closed: bool = False
    refused_step: str | None = None
    intake_missing: list[str] = field(default_factory=list)
    ratings: list[RatingView] = field(default_factory=list)
    rating_open: bool = False
    rating_closes_at: datetime | None = None
    manual_notices: int = 0
    # Each material of the case as it stands now (by code; a step may ask for items by name).
    materials: dict[str, MaterialView] = field(default_factory=dict)
    # Each step's unit now: as routed at acceptance, until a 转办 moves it.
    units: dict[str, StepUnit] = field(default_factory=dict)
    # 撤回 or 不予受理: the case ended before it was done (CaseStatus), and why.
    ended_as: CaseStatus | None = None
    ended_reason: str | None = None

    @classmethod
    def start(cls, case: CaseInput) -> CaseState:
        steps = {
            step.code: StepState(
                definition=step,
                department=step.department_for(case.channel),
                time_limit=step.time_limit_for(case.channel),
            )
            for step in case.definition.steps_for(case.channel)
        }
        return cls(case=case, steps=steps, units=dict(case.units))

    # --- reading ----------------------------------------------------------------------

    def ready_steps(self) -> list[StepState]:
        """Pending steps whose dependencies are done; none while intake materials are owed."""
        if self.intake_missing or self.ended():
            return []
        return [
            step
            for step in self.steps.values()
            if step.status == StepStatus.PENDING
            and all(
                dependency not in self.steps or self.steps[dependency].status == StepStatus.DONE
                for dependency in step.definition.depends_on
            )
        ]

    def ended(self) -> bool:
        """Refused, withdrawn or declined: no step opens any more."""
        return self.refused_step is not None or self.ended_as is not None

    def all_steps_done(self) -> bool:
        return all(step.status == StepStatus.DONE for step in self.steps.values())

    def status(self) -> CaseStatus:
        if self.refused_step is not None:
            return CaseStatus.REFUSED
        if self.ended_as is not None:
            return self.ended_as
        if self.closed or (self.accepted and self.all_steps_done()):
            return CaseStatus.COMPLETED
        if self.intake_missing or any(s.status == StepStatus.AWAITING_SUPPLEMENT for s in self.steps.values()):
            return CaseStatus.AWAITING_SUPPLEMENT
        if any(s.status not in {StepStatus.PENDING, StepStatus.OPEN} for s in self.steps.values()):
            return CaseStatus.IN_PROGRESS
        return CaseStatus.ACCEPTED

    def owed_materials(self) -> list[str]:
        owed = list(self.intake_missing)
        for step in self.steps.values():
            if step.status == StepStatus.AWAITING_SUPPLEMENT:
                owed.extend(item for item in step.missing if item not in owed)
        return owed

    def find_step(self, code: str) -> StepState | None:
        return self.steps.get(code) or self.follow_ups.get(code)

    def clock_stopped(self, step: StepState) -> bool:
        # Closing the case stops its steps' clocks; a 回访 runs on after it.
        return self.closed and step.code not in self.follow_ups

    def clock_running(self, step: StepState) -> bool:
        return not step.finished and not self.clock_stopped(step)

    def all_follow_ups_finished(self) -> bool:
        return all(step.finished for step in self.follow_ups.values())

    # --- transitions (the workflow records the matching events) --------------------------

    def open_step(self, step: StepState, now: datetime) -> None:
        step.status = StepStatus.OPEN
        step.opened_at = now

    def claim(self, step: StepState, username: str) -> bool:
        """Claims the task; False when the officer already holds it (nothing changes)."""
        if step.assignee == username:
            return False
        step.status = StepStatus.CLAIMED
        step.assignee = username
        return True

    def complete(self, step: StepState, result: dict[str, Any], now: datetime) -> None:
        step.result = result
        step.status = StepStatus.DONE
        step.completed_at = now

    def return_for_supplement(self, step: StepState, missing: list[str]) -> None:
        step.status = StepStatus.AWAITING_SUPPLEMENT
        step.missing = list(missing)

    def refuse(self, step: StepState, reason: str, now: datetime) -> None:
        step.status = StepStatus.REFUSED
        step.completed_at = now
        step.result = {"reason": reason}
        self.refused_step = step.code

    def refuse_by_result(self, step: StepState, result: dict[str, Any], reason: str, now: datetime) -> None:
        """The department's finding is itself a refusal (a failed verification): the case is
        refused at this step, its finding kept beside the reason."""
        self.refuse(step, reason, now)
        step.result = {**result, "reason": reason}

    # --- materials ------------------------------------------------------------------------

    def _material(self, code: str, status: MaterialStatus, **fields: Any) -> MaterialView:
        known = next((m for m in self.case.definition.materials if m.code == code), None)
        return MaterialView(
            code=code,
            name_zh=known.name_zh if known else code,
            status=status,
            status_zh=MATERIAL_STATUS_ZH[status],
            **fields,
        )

    def record_intake(
        self, received: list[MaterialEntry], shared: list[MaterialEntry], to_supply: list[MaterialEntry]
    ) -> None:
        """The materials as acceptance sorted them; what is owed says why."""
        sources = {m.code: m.source for m in self.case.definition.materials}
        for entry in received:
            self.materials[entry.code] = self._material(entry.code, MaterialStatus.RECEIVED, reference=entry.reference)
        for entry in shared:
            self.materials[entry.code] = self._material(entry.code, MaterialStatus.SHARED, reference=entry.reference)
        for entry in to_supply:
            reason = NOT_SHARED_ZH if sources.get(entry.code) == "data_sharing" else NOT_SUBMITTED_ZH
            self.materials[entry.code] = self._material(entry.code, MaterialStatus.TO_SUPPLY, reason=reason)

    def request_materials(self, step: StepState, reason: str) -> None:
        """A step's 补正: the items it asks for are owed again, with its reason."""
        for item in step.missing:
            self.materials[item] = self._material(item, MaterialStatus.TO_SUPPLY, reason=reason, step=step.code)

    def materials_supplied(self, supplied: dict[str, str]) -> None:
        for code, material in list(self.materials.items()):
            if material.status == MaterialStatus.TO_SUPPLY:
                self.materials[code] = self._material(
                    code, MaterialStatus.RECEIVED, reference=supplied.get(code), step=material.step
                )

    def awaiting_supplement(self) -> list[StepState]:
        return [step for step in self.steps.values() if step.status == StepStatus.AWAITING_SUPPLEMENT]

    def resume(self, step: StepState) -> None:
        """The materials a step waited for are in: back to its officer, or to the inbox."""
        step.status = StepStatus.CLAIMED if step.assignee else StepStatus.OPEN
        step.missing = []

    def cancel_unfinished(self) -> list[StepState]:
        cancelled = [step for step in self.steps.values() if not step.finished]
        for step in cancelled:
            step.status = StepStatus.CANCELLED
        return cancelled

    def add_rating(self, rating: RateInput, now: datetime) -> RatingView:
        step = self.steps.get(rating.step) if rating.step else None
        view = RatingView(
            step=rating.step,
            department=step.department if step else None,
            score=rating.score,
            comment=rating.comment,
            rated_at=now,
        )
        self.ratings.append(view)
        return view

    # --- rules for actions (raise DomainError) -------------------------------------------

    def actionable_step(self, actor: Actor, code: str) -> StepState:
        """The step ``actor`` may act on now, or the reason why not."""
        step = self.find_step(code)
        if step is None:
            raise _refuse(ErrorCode.NOT_FOUND, f"no task for step {code!r} in this case")
        if actor.role not in step.definition.actors or actor.unit != step.department:
            raise _refuse(ErrorCode.FORBIDDEN, "该任务不属于您的部门 (the task belongs to another department)")
        routed = self.units.get(code)
        # A routed step is its unit's alone: another county's police (or an account in no unit)
        # may not act on it, whatever its department.
        if routed is not None and actor.role != "supervisor" and actor.unit_code != routed.code:
            # 404, not 403: another unit's task is not revealed to exist.
            raise _refuse(ErrorCode.NOT_FOUND, "任务不存在或不属于本单位 (no such task in your unit)")
        if code not in self.follow_ups and (self.closed or self.ended()):
            raise _refuse(ErrorCode.CONFLICT, "案件已结束 (the case is closed)")
        if step.status in {StepStatus.PENDING} | FINISHED_STEP_STATUSES:
            raise self.state_conflict(step, actor)
        return step

    def require_own_claim(self, step: StepState, actor: Actor) -> None:
        if step.status != StepStatus.CLAIMED or step.assignee != actor.username:
            raise self.state_conflict(step, actor)

    def check_claim(self, actor: Actor, code: str) -> None:
        step = self.actionable_step(actor, code)
        if step.status == StepStatus.CLAIMED and step.assignee == actor.username:
            return  # claiming again is harmless
        if step.status != StepStatus.OPEN:
            raise self.state_conflict(step, actor)

    def check_return(self, action: ReturnStepInput) -> None:
        step = self.actionable_step(action.actor, action.step)
        self.require_own_claim(step, action.actor)
        fields: dict[str, str] = {}
        if not action.missing or len(action.missing) > MAX_MISSING_ITEMS:
            fields["missing"] = f"list 1 to {MAX_MISSING_ITEMS} missing items"
        for index, item in enumerate(action.missing):
            if not item.strip() or len(item) > MAX_ITEM_CHARS:
                fields[f"missing[{index}]"] = f"each item is 1 to {MAX_ITEM_CHARS} characters"
        if not action.reason.strip() or len(action.reason) > MAX_REASON_CHARS:
            fields["reason"] = f"give a reason of 1 to {MAX_REASON_CHARS} characters"
        if fields:
            raise _refuse(ErrorCode.INVALID, "补正要求不完整 (invalid return)", fields)

    def check_refuse(self, actor: Actor, code: str, reason: str) -> None:
        step = self.actionable_step(actor, code)
        self.require_own_claim(step, actor)
        if not reason.strip() or len(reason) > MAX_REASON_CHARS:
            raise _refuse(
                ErrorCode.INVALID,
                "不予办理须说明理由 (a refusal needs a reason)",
                {"reason": f"give a reason of 1 to {MAX_REASON_CHARS} characters"},
            )

    def check_supervise(self, actor: Actor, code: str, kind: str) -> None:
        if actor.role != "supervisor":
            raise _refuse(ErrorCode.FORBIDDEN, "仅监督人员可督办、催办 (supervisors only)")
        step = self.steps.get(code)
        if step is None:
            raise _refuse(ErrorCode.NOT_FOUND, f"no step {code!r} in this case")
        if step.status == StepStatus.PENDING or step.finished or self.closed:
            raise self.state_conflict(step, actor)
        if kind == "urge" and step.assignee is None:
            raise _refuse(ErrorCode.CONFLICT, "任务尚无人签收，无法催办 (no assignee to urge yet)")

    def check_supplement(self, action: SupplementInput) -> None:
        if not self.accepted or self.closed:
            raise _refuse(ErrorCode.CONFLICT, "案件当前无需补正 (the case is not awaiting supplements)")
        owed = self.owed_materials()
        if not owed:
            raise _refuse(ErrorCode.CONFLICT, "案件当前无需补正 (the case is not awaiting supplements)")
        fields = {
            f"materials.{item}": "required: listed in the supplement notice"
            for item in owed
            if not str(action.materials.get(item, "")).strip()
        }
        if fields:
            raise _refuse(ErrorCode.INVALID, "补正材料不齐 (supplement incomplete)", fields)

    def check_rate(self, rating: RateInput) -> None:
        # The owner, or for a walk-in case nobody owns, the holder of the link sent by SMS (the
        # API checked its signature, domain/follow_links.py).
        rater = self.case.owner if self.case.owner is not None else walk_in_rater(self.case.case_id)
        if rating.actor.role != "applicant" or rating.actor.username != rater:
            raise _refuse(ErrorCode.FORBIDDEN, "仅申请人本人可评价 (only the applicant rates the case)")
        if not self.rating_open:
            raise _refuse(ErrorCode.CONFLICT, "当前不在评价期内 (rating is open for 5 working days after delivery)")
        if rating.step is not None and (
            rating.step not in self.steps or self.steps[rating.step].status != StepStatus.DONE
        ):
            raise _refuse(
                ErrorCode.INVALID, "评价的环节有误 (no such completed step)", {"step": "not a step of this case"}
            )
        if any(existing.step == rating.step for existing in self.ratings):
            raise _refuse(ErrorCode.CONFLICT, "已评价过 (already rated)")
        if not 1 <= rating.score <= 5:
            raise _refuse(ErrorCode.INVALID, "评分为1至5 (score 1 to 5)", {"score": "must be 1 to 5"})

    def state_conflict(self, step: StepState, actor: Actor) -> DomainError:
        if step.status == StepStatus.PENDING:
            message = "环节尚未启动 (the step is not open yet)"
        elif step.status in FINISHED_STEP_STATUSES:
            message = f"环节状态为{STEP_STATUS_ZH[step.status]} (the step is {step.status.value})"
        elif step.status == StepStatus.OPEN:
            message = "请先签收任务 (claim the task first)"
        elif step.status == StepStatus.AWAITING_SUPPLEMENT:
            message = "环节正在等待补正 (the step awaits supplementary materials)"
        elif step.status == StepStatus.SUSPENDED:
            message = "环节已中止办理，请先恢复 (the step is suspended: resume it first)"
        elif step.assignee != actor.username:
            message = "任务已由他人签收 (the task is claimed by another officer)"
        else:
            message = f"当前状态不允许该操作 (not allowed while {step.status.value})"
        return _refuse(ErrorCode.CONFLICT, message)

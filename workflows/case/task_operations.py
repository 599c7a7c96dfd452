"""The rules of the task operations officers use every day, beside claim and complete:
退回待办 (unclaim), 改派 (reassign), 转办 (transfer), 中止/恢复 (suspend, resume), 延期
(extension, asked by the unit and decided by a supervisor of its division), and the ends
of a case before it is done: 撤回 (withdraw) and 不予受理 (decline).

Plain functions of the case's state, like workflows/case/state.py: the checks raise
DomainError (the Update's validator turns it into a rejection that writes nothing), the
transitions change the state; the workflow (workflows/case/operations.py) records the
events and moves the clocks. tests/rules/test_task_operations.py checks them on their own.
"""

from __future__ import annotations

from datetime import datetime

from temporalio import workflow

from workflows.case.state import MAX_ITEM_CHARS, MAX_MISSING_ITEMS, MAX_REASON_CHARS, CaseState, StepState

with workflow.unsafe.imports_passed_through():
    from domain.divisions import DEFAULT_COUNTY, PROVINCE, is_within
    from models.case import (
        Actor,
        AdoptCaseInput,
        CaseStatus,
        Colleague,
        EndCaseInput,
        ExtensionDecisionInput,
        ExtensionInput,
        ExtensionRequest,
        ReassignInput,
        StepStatus,
        StepUnit,
        SuspendInput,
        Suspension,
        TransferInput,
    )
    from models.errors import DomainError, ErrorCode

# 行政许可法 第42条 allows ten more days; a catalogue's own limits are shorter, so a month of
# working days is the most any request may ask.
MAX_EXTENSION_WORKING_DAYS = 30
WORKED_STATUSES = frozenset({StepStatus.OPEN, StepStatus.CLAIMED})


def _invalid(message: str, field: str, reason: str) -> DomainError:
    return DomainError(ErrorCode.INVALID, message, {field: reason})


def _conflict(message: str) -> DomainError:
    return DomainError(ErrorCode.CONFLICT, message)


def check_reason(reason: str | None, message: str = "请说明理由 (a reason is required)") -> None:
    if reason is None or not reason.strip() or len(reason) > MAX_REASON_CHARS:
        raise _invalid(message, "reason", f"give a reason of 1 to {MAX_REASON_CHARS} characters")


# --- who may act on a step -------------------------------------------------------------


def step_division(state: CaseState, step: StepState) -> str:
    """The division of the step's unit; a step accepted before routing is the default county's."""
    unit = state.units.get(step.code)
    return unit.division_code if unit is not None else DEFAULT_COUNTY


def oversees(actor: Actor, division_code: str) -> bool:
    """A supervisor oversees their division's whole subtree; one of no division, the province."""
    scope = actor.division_code
    return scope is None or scope == PROVINCE or is_within(division_code, scope)


def supervised_step(state: CaseState, actor: Actor, code: str) -> StepState:
    """The step a supervisor of its division may act on now, or the reason why not."""
    step = state.steps.get(code)
    if step is None:
        raise DomainError(ErrorCode.NOT_FOUND, f"no task for step {code!r} in this case")
    if actor.role != "supervisor":
        raise DomainError(ErrorCode.FORBIDDEN, "仅监督人员可以审批 (supervisors only)")
    if not oversees(actor, step_division(state, step)):
        # 404, not 403: another division's case is not revealed to exist.
        raise DomainError(ErrorCode.NOT_FOUND, "任务不存在或不在监督范围内 (no such task in your division)")
    if state.closed or state.ended():
        raise _conflict("案件已结束 (the case is closed)")
    if step.status == StepStatus.PENDING or step.finished:
        raise state.state_conflict(step, actor)
    return step


def managed_step(state: CaseState, actor: Actor, code: str) -> StepState:
    """The step an officer of its unit, or a supervisor of its division, may manage: an
    officer only while the task is unclaimed or theirs."""
    if actor.role == "supervisor":
        return supervised_step(state, actor, code)
    step = state.actionable_step(actor, code)
    if step.assignee is not None and step.assignee != actor.username:
        raise state.state_conflict(step, actor)
    return step


# --- 退回待办, 改派, 转办 ------------------------------------------------------------------


def check_unclaim(state: CaseState, actor: Actor, code: str) -> None:
    step = managed_step(state, actor, code)
    if step.status != StepStatus.CLAIMED:
        raise _conflict(f"任务未被签收，无需退回 (the task is {step.status.value}, not claimed)")


def unclaim(step: StepState) -> None:
    step.status = StepStatus.OPEN
    step.assignee = None


def _colleague_of(state: CaseState, step: StepState, colleague: Colleague) -> bool:
    if colleague.role not in step.definition.actors or colleague.unit != step.department:
        return False
    routed = state.units.get(step.code)
    if routed is None:  # accepted before routing: the default county's department
        return colleague.unit_code is None or colleague.division_code == DEFAULT_COUNTY
    return colleague.unit_code == routed.code


def check_reassign(state: CaseState, action: ReassignInput) -> None:
    step = managed_step(state, action.actor, action.step)
    if step.status not in WORKED_STATUSES:
        raise state.state_conflict(step, action.actor)
    if not _colleague_of(state, step, action.to):
        raise _invalid(
            "只能改派给本单位的工作人员 (reassign within the unit)", "to", "not an officer of the task's unit"
        )
    if step.assignee == action.to.username:
        raise _conflict("任务已由该工作人员办理 (the task is already theirs)")


def reassign(step: StepState, username: str) -> None:
    step.status = StepStatus.CLAIMED
    step.assignee = username


def check_transfer(state: CaseState, action: TransferInput) -> None:
    step = managed_step(state, action.actor, action.step)
    if step.status not in WORKED_STATUSES:
        raise state.state_conflict(step, action.actor)
    if action.unit_department != step.department:
        raise _invalid(
            "只能转办至同一部门的其他单位 (transfer to a unit of the same department)",
            "unit",
            f"not a {step.department} unit",
        )
    current = state.units.get(step.code)
    if current is not None and current.code == action.unit.code:
        raise _invalid("任务已在该单位 (the task is already with that unit)", "unit", "the task's own unit")
    check_reason(action.reason, "转办须说明理由 (a transfer needs a reason)")


def transfer(state: CaseState, step: StepState, unit: StepUnit) -> StepUnit | None:
    """The task is the new unit's, unclaimed; its clock runs on. Answers the unit it left."""
    previous = state.units.get(step.code)
    state.units[step.code] = unit
    step.status = StepStatus.OPEN
    step.assignee = None
    return previous


# --- 中止 and 恢复 ------------------------------------------------------------------------


def check_suspend(state: CaseState, action: SuspendInput) -> None:
    step = state.actionable_step(action.actor, action.step)
    state.require_own_claim(step, action.actor)
    check_reason(action.reason, "中止办理须说明理由 (a suspension needs a reason)")
    if len(action.materials) > MAX_MISSING_ITEMS:
        raise _invalid("材料清单过长 (too many materials)", "materials", f"at most {MAX_MISSING_ITEMS} items")
    for index, item in enumerate(action.materials):
        if not item.strip() or len(item) > MAX_ITEM_CHARS:
            raise _invalid(
                "材料名称有误 (invalid material)", f"materials[{index}]", f"1 to {MAX_ITEM_CHARS} characters"
            )


def suspend(step: StepState, action: SuspendInput, now: datetime) -> None:
    step.status = StepStatus.SUSPENDED
    step.suspension = Suspension(
        reason=action.reason, materials=list(action.materials), suspended_by=action.actor.username, suspended_at=now
    )


def check_resume(state: CaseState, actor: Actor, code: str) -> None:
    step = managed_step(state, actor, code)
    if step.status != StepStatus.SUSPENDED:
        raise _conflict(f"环节未中止 (the step is {step.status.value}, not suspended)")


def resume(step: StepState) -> None:
    step.status = StepStatus.CLAIMED if step.assignee else StepStatus.OPEN
    step.suspension = None


# --- 延期 ---------------------------------------------------------------------------------


def check_extension(state: CaseState, action: ExtensionInput) -> None:
    step = state.actionable_step(action.actor, action.step)
    state.require_own_claim(step, action.actor)
    if not 1 <= action.working_days <= MAX_EXTENSION_WORKING_DAYS:
        raise _invalid(
            "延期天数有误 (invalid extension)",
            "working_days",
            f"1 to {MAX_EXTENSION_WORKING_DAYS} working days",
        )
    check_reason(action.reason, "延期须说明理由 (an extension needs a reason)")
    if step.extension_request is not None:
        raise _conflict("已有待审批的延期申请 (an extension request is already pending)")
    if step.clock.overdue:
        raise _conflict("已超过办理时限，不能申请延期 (the time limit has passed)")


def request_extension(step: StepState, action: ExtensionInput, now: datetime) -> None:
    step.extension_request = ExtensionRequest(
        working_days=action.working_days, reason=action.reason, requested_by=action.actor.username, requested_at=now
    )


def check_extension_decision(state: CaseState, action: ExtensionDecisionInput) -> None:
    step = supervised_step(state, action.actor, action.step)
    if step.extension_request is None:
        raise _conflict("没有待审批的延期申请 (no extension request is pending)")
    if not action.approve:
        check_reason(action.reason, "不批准延期须说明理由 (a refusal needs a reason)")
    elif step.clock.overdue:
        raise _conflict("已超过办理时限，不能批准延期 (the time limit has passed)")


def extension_decided(step: StepState, approved: bool) -> ExtensionRequest:
    """Clears the pending request and answers it; an approval adds its days to the step's."""
    request = step.extension_request
    assert request is not None  # the validator found it
    step.extension_request = None
    if approved:
        step.extended_working_days += request.working_days
    return request


# --- 撤回 and 不予受理 ----------------------------------------------------------------------


def _accepting_clerk(state: CaseState, actor: Actor) -> bool:
    if actor.role != "clerk":
        return False
    window = state.case.accepting_window
    if window is not None:
        return actor.unit_code == window.code
    # No window's unit recorded (filed by the applicant, or before routing): the channel's accepting
    # department in the default county, as the read model shows such cases to clerks.
    accepting = state.case.definition.channel(state.case.channel).accepting_unit
    in_default_county = actor.unit_code is None or actor.division_code == DEFAULT_COUNTY
    return accepting is not None and actor.unit == accepting and in_default_county


def _check_open_case(state: CaseState) -> None:
    if not state.accepted or state.closed or state.ended():
        raise _conflict(f"案件已{state.status().value}，不能再撤回或不予受理 (the case is {state.status().value})")


def check_withdraw(state: CaseState, action: EndCaseInput) -> None:
    actor = action.actor
    applicant = actor.role == "applicant" and actor.username == state.case.owner
    if not (applicant or _accepting_clerk(state, actor)):
        raise DomainError(
            ErrorCode.FORBIDDEN, "仅申请人或受理窗口可以撤回 (only the applicant or the accepting window withdraws)"
        )
    _check_open_case(state)
    check_reason(action.reason, "撤回须说明理由 (a withdrawal needs a reason)")


def check_decline(state: CaseState, action: EndCaseInput) -> None:
    if not _accepting_clerk(state, action.actor):
        raise DomainError(ErrorCode.FORBIDDEN, "仅受理窗口可以不予受理 (only the accepting window declines a case)")
    _check_open_case(state)
    taken_up = [
        step
        for step in state.steps.values()
        if step.assignee is not None or step.status not in {StepStatus.PENDING, StepStatus.OPEN}
    ]
    if taken_up:
        raise _conflict(
            f"{taken_up[0].definition.name_zh}已开始办理，不能不予受理，请撤回 (a department has taken the case up)"
        )
    check_reason(action.reason, "不予受理须说明理由 (a decline needs a reason)")


def end_case(state: CaseState, status: CaseStatus, reason: str) -> None:
    state.ended_as = status
    state.ended_reason = reason


# --- 实名认领 (a walk-in case becomes its applicant's) -------------------------------------------


def check_adopt(state: CaseState, action: AdoptCaseInput) -> None:
    """Only an applicant account, and only a case nobody owns (a walk-in's): the API has checked
    that the account's verified identity is the form's applicant."""
    if action.actor.role != "applicant":
        raise DomainError(ErrorCode.FORBIDDEN, "仅申请人本人可以认领 (only the applicant adopts a case)")
    if state.case.owner is not None:
        raise _conflict("该办件已有申请人账号 (the case has an owner already)")


def adopt(state: CaseState, username: str) -> None:
    state.case.owner = username

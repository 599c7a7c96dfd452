"""The task operations' rules on their own, without Temporal (workflows/case/task_operations.py):
who may put back, reassign, transfer, suspend, resume, extend, withdraw and decline, in which
state, and what each changes."""

from __future__ import annotations

from models.case import (
    Actor,
    CaseStatus,
    Colleague,
    EndCaseInput,
    ExtensionDecisionInput,
    ExtensionInput,
    ReassignInput,
    StepStatus,
    StepUnit,
    SuspendInput,
    TransferInput,
)
from models.errors import ErrorCode
from tests.rules.test_case_state import APPLICANT, HOSPITAL, NOW, birth_case, open_ready, refusal
from workflows.case import task_operations as ops

STEP = "birth_certificate"
COLLEAGUE = Actor(username="hospital_officer2", role="officer", unit="hospital")
HANGZHOU = Actor(username="supervisor_3301", role="supervisor", unit="supervision", division_code="330100")
NINGBO = Actor(username="supervisor_3302", role="supervisor", unit="supervision", division_code="330200")
XIHU_HOSPITAL = StepUnit(code="hospital_330106_fybj", name_zh="杭州市西湖区妇幼保健院", division_code="330106")


def claimed_case():
    state = birth_case()
    open_ready(state)
    state.claim(state.steps[STEP], HOSPITAL.username)
    return state


def test_a_supervisor_oversees_the_subtree_of_their_division_only():
    assert ops.oversees(HANGZHOU, "330102") and ops.oversees(HANGZHOU, "330100")
    assert not ops.oversees(NINGBO, "330102")
    assert ops.oversees(Actor(username="supervisor", role="supervisor"), "330203")  # the province


def test_only_the_assignee_or_a_supervisor_of_the_division_puts_a_task_back():
    state = claimed_case()
    assert refusal(ops.check_unclaim, state, COLLEAGUE, STEP).code == ErrorCode.CONFLICT
    # An unrouted step belongs to the default county, 上城区, within 杭州 and not 宁波.
    assert refusal(ops.check_unclaim, state, NINGBO, STEP).code == ErrorCode.NOT_FOUND
    ops.check_unclaim(state, HANGZHOU, STEP)
    ops.check_unclaim(state, HOSPITAL, STEP)
    ops.unclaim(state.steps[STEP])
    assert (state.steps[STEP].status, state.steps[STEP].assignee) == (StepStatus.OPEN, None)
    assert refusal(ops.check_unclaim, state, HOSPITAL, STEP).code == ErrorCode.CONFLICT


def test_reassigning_needs_an_officer_of_the_same_unit():
    state = claimed_case()
    stranger = Colleague(username="police_officer", role="officer", unit="police")
    elsewhere = Colleague(username="h2", role="officer", unit="hospital", unit_code="hospital_330203_fybj")
    for target in (stranger, elsewhere):
        error = refusal(ops.check_reassign, state, ReassignInput(actor=HOSPITAL, step=STEP, to=target))
        assert error.code == ErrorCode.INVALID and set(error.fields or {}) == {"to"}
    ops.check_reassign(
        state, ReassignInput(actor=HOSPITAL, step=STEP, to=Colleague(username="h2", role="officer", unit="hospital"))
    )


def test_a_transfer_moves_the_step_to_the_new_unit_unclaimed_and_leaves_its_clock():
    state = claimed_case()
    step = state.steps[STEP]
    wrong = TransferInput(actor=HOSPITAL, step=STEP, unit=XIHU_HOSPITAL, unit_department="police", reason="错派")
    assert set(refusal(ops.check_transfer, state, wrong).fields or {}) == {"unit"}
    action = wrong.model_copy(update={"unit_department": "hospital"})
    ops.check_transfer(state, action)
    due = step.clock.due_at
    assert ops.transfer(state, step, XIHU_HOSPITAL) is None
    assert state.units[STEP] == XIHU_HOSPITAL and (step.status, step.assignee) == (StepStatus.OPEN, None)
    assert step.clock.due_at == due
    # Now the old unit's officer is refused as from another unit; the same unit again is no transfer.
    assert refusal(ops.check_unclaim, state, HOSPITAL, STEP).code == ErrorCode.NOT_FOUND
    assert set(refusal(ops.check_transfer, state, action.model_copy(update={"actor": HANGZHOU})).fields or {}) == {
        "unit"
    }


def test_suspension_needs_the_assignee_and_a_reason_and_resumption_a_suspended_step():
    state = claimed_case()
    step = state.steps[STEP]
    blank = SuspendInput(actor=HOSPITAL, step=STEP, reason=" ")
    assert set(refusal(ops.check_suspend, state, blank).fields or {}) == {"reason"}
    assert refusal(ops.check_resume, state, HOSPITAL, STEP).code == ErrorCode.CONFLICT
    action = SuspendInput(actor=HOSPITAL, step=STEP, reason="医学鉴定", materials=["鉴定报告"])
    ops.check_suspend(state, action)
    ops.suspend(step, action, NOW)
    assert step.status == StepStatus.SUSPENDED and step.suspension is not None
    assert refusal(state.require_own_claim, step, HOSPITAL).code == ErrorCode.CONFLICT  # no completing now
    ops.check_resume(state, HOSPITAL, STEP)
    ops.resume(step)
    assert (step.status, step.suspension) == (StepStatus.CLAIMED, None)


def test_an_extension_is_asked_once_by_the_assignee_and_decided_by_a_supervisor_before_the_deadline():
    state = claimed_case()
    step = state.steps[STEP]
    ask = ExtensionInput(actor=HOSPITAL, step=STEP, working_days=3, reason="会诊")
    ops.check_extension(state, ask)
    ops.request_extension(step, ask, NOW)
    assert refusal(ops.check_extension, state, ask).code == ErrorCode.CONFLICT
    approve = ExtensionDecisionInput(actor=HANGZHOU, step=STEP, approve=True)
    assert refusal(ops.check_extension_decision, state, approve.model_copy(update={"actor": HOSPITAL})).code == (
        ErrorCode.FORBIDDEN
    )
    step.clock.overdue = True
    assert refusal(ops.check_extension_decision, state, approve).code == ErrorCode.CONFLICT
    step.clock.overdue = False
    reject = ExtensionDecisionInput(actor=HANGZHOU, step=STEP, approve=False)
    assert set(refusal(ops.check_extension_decision, state, reject).fields or {}) == {"reason"}
    ops.check_extension_decision(state, approve)
    assert ops.extension_decided(step, True).working_days == 3
    assert (step.extension_request, step.extended_working_days) == (None, 3)
    assert refusal(ops.check_extension_decision, state, approve).code == ErrorCode.CONFLICT


def test_withdrawal_and_decline_end_the_case_with_their_status():
    state = claimed_case()
    ops.check_withdraw(state, EndCaseInput(actor=APPLICANT, reason="不办了"))
    stranger = Actor(username="applicant2", role="applicant")
    assert refusal(ops.check_withdraw, state, EndCaseInput(actor=stranger, reason="x")).code == ErrorCode.FORBIDDEN
    # An online case has no accepting window to decline it.
    clerk = Actor(username="hospital_clerk", role="clerk", unit="hospital")
    assert refusal(ops.check_decline, state, EndCaseInput(actor=clerk, reason="x")).code == ErrorCode.FORBIDDEN
    ops.end_case(state, CaseStatus.WITHDRAWN, "不办了")
    assert state.status() == CaseStatus.WITHDRAWN and state.ended() and state.ready_steps() == []
    assert refusal(ops.check_withdraw, state, EndCaseInput(actor=APPLICANT, reason="x")).code == ErrorCode.CONFLICT


def test_a_window_case_is_declined_only_before_any_step_is_taken_up():
    state = birth_case("hospital")
    clerk = Actor(username="hospital_clerk", role="clerk", unit="hospital")
    state.case = state.case.model_copy(update={"submitted_by": clerk})
    open_ready(state)
    ops.check_decline(state, EndCaseInput(actor=clerk, reason="信息不符"))
    state.claim(state.steps[STEP], HOSPITAL.username)
    assert refusal(ops.check_decline, state, EndCaseInput(actor=clerk, reason="信息不符")).code == ErrorCode.CONFLICT

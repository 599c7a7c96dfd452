"""The case's rules on their own, without Temporal: readiness, the status, who may act."""

from __future__ import annotations

from datetime import datetime

import pytest

from domain.catalogue import resolve_for_case, shipped_definitions
from domain.samples import sample_birth_form
from domain.workcalendar import SHANGHAI
from models.case import (
    Actor,
    CaseInput,
    CaseStatus,
    MaterialEntry,
    MaterialStatus,
    RateInput,
    ReturnStepInput,
    StepStatus,
    SupplementInput,
)
from models.errors import DomainError, ErrorCode
from workflows.case.state import NOT_SHARED_ZH, CaseState

NOW = datetime(2026, 11, 24, 10, 0, tzinfo=SHANGHAI)
POLICE = Actor(username="police_officer", role="officer", unit="police")
HOSPITAL = Actor(username="hospital_officer", role="officer", unit="hospital")
APPLICANT = Actor(username="applicant1", role="applicant")


def birth_case(channel: str = "online") -> CaseState:
    form = sample_birth_form()
    definition = resolve_for_case(shipped_definitions()["birth"], form)
    state = CaseState.start(
        CaseInput(
            case_id="ot-test",
            definition=definition,
            channel=channel,
            form=form,
            owner="applicant1",
            submitted_by=APPLICANT,
        )
    )
    state.accepted = True
    return state


def open_ready(state: CaseState) -> list[str]:
    ready = state.ready_steps()
    for step in ready:
        state.open_step(step, NOW)
    return [step.code for step in ready]


def refusal(call, *arguments) -> DomainError:
    with pytest.raises(DomainError) as caught:
        call(*arguments)
    return caught.value


def test_only_the_hospital_steps_are_ready_at_first() -> None:
    state = birth_case()
    assert open_ready(state) == ["birth_certificate", "vaccination_certificate"]
    assert state.status() == CaseStatus.ACCEPTED


def test_completing_a_step_makes_its_dependants_ready() -> None:
    state = birth_case()
    open_ready(state)
    step = state.steps["birth_certificate"]
    state.claim(step, HOSPITAL.username)
    state.complete(step, {"certificate_number": "X"}, NOW)
    assert "hukou_registration" in [s.code for s in state.ready_steps()]
    assert state.status() == CaseStatus.IN_PROGRESS


def test_owed_intake_materials_hold_every_step_back() -> None:
    state = birth_case()
    state.intake_missing = ["father_id_copy"]
    assert state.ready_steps() == []
    assert state.status() == CaseStatus.AWAITING_SUPPLEMENT
    assert state.owed_materials() == ["father_id_copy"]


def test_police_cannot_claim_the_hospital_step() -> None:
    state = birth_case()
    open_ready(state)
    error = refusal(state.check_claim, POLICE, "birth_certificate")
    assert error.code == ErrorCode.FORBIDDEN


def test_a_pending_step_cannot_be_claimed() -> None:
    state = birth_case()
    open_ready(state)
    error = refusal(state.check_claim, POLICE, "hukou_registration")
    assert error.code == ErrorCode.CONFLICT
    assert "尚未启动" in error.message


def test_claiming_again_is_harmless_but_another_officer_conflicts() -> None:
    state = birth_case()
    open_ready(state)
    step = state.steps["birth_certificate"]
    assert state.claim(step, HOSPITAL.username) is True
    state.check_claim(HOSPITAL, "birth_certificate")  # no refusal
    assert state.claim(step, HOSPITAL.username) is False
    colleague = Actor(username="hospital_officer2", role="officer", unit="hospital")
    assert "他人签收" in refusal(state.check_claim, colleague, "birth_certificate").message


def test_a_return_needs_missing_items_and_a_reason() -> None:
    state = birth_case()
    open_ready(state)
    state.claim(state.steps["birth_certificate"], HOSPITAL.username)
    error = refusal(
        state.check_return, ReturnStepInput(actor=HOSPITAL, step="birth_certificate", missing=[], reason=" ")
    )
    assert error.code == ErrorCode.INVALID
    assert set(error.fields) == {"missing", "reason"}


def test_a_returned_step_awaits_supplement_and_resumes_with_its_officer() -> None:
    state = birth_case()
    open_ready(state)
    step = state.steps["birth_certificate"]
    state.claim(step, HOSPITAL.username)
    state.return_for_supplement(step, ["father_id_copy"])
    assert state.status() == CaseStatus.AWAITING_SUPPLEMENT
    error = refusal(state.check_supplement, SupplementInput(actor=APPLICANT, materials={}))
    assert error.fields == {"materials.father_id_copy": "required: listed in the supplement notice"}
    state.check_supplement(SupplementInput(actor=APPLICANT, materials={"father_id_copy": "UP-1"}))
    state.resume(step)
    assert step.status == StepStatus.CLAIMED
    assert step.missing == []


def test_a_refusal_cancels_the_rest_and_refuses_the_case() -> None:
    state = birth_case()
    open_ready(state)
    step = state.steps["birth_certificate"]
    state.claim(step, HOSPITAL.username)
    state.check_refuse(HOSPITAL, "birth_certificate", "材料虚假")
    state.refuse(step, "材料虚假", NOW)
    cancelled = state.cancel_unfinished()
    assert step not in cancelled
    assert all(s.status == StepStatus.CANCELLED for s in cancelled)
    assert state.status() == CaseStatus.REFUSED


def test_a_refusing_finding_refuses_the_case_keeps_the_finding_and_readies_nothing() -> None:
    state = birth_case()
    open_ready(state)
    step = state.steps["birth_certificate"]
    state.claim(step, HOSPITAL.username)
    state.refuse_by_result(step, {"certificate_no": "X330102001"}, "核验未通过", NOW)
    assert step.status == StepStatus.REFUSED
    assert step.result == {"certificate_no": "X330102001", "reason": "核验未通过"}
    assert state.ready_steps() == []
    assert state.status() == CaseStatus.REFUSED


def test_only_the_owner_rates_and_only_while_rating_is_open() -> None:
    state = birth_case()
    rating = RateInput(actor=APPLICANT, score=5)
    assert refusal(state.check_rate, rating).code == ErrorCode.CONFLICT
    state.rating_open = True
    state.check_rate(rating)
    stranger = Actor(username="someone_else", role="applicant")
    assert refusal(state.check_rate, RateInput(actor=stranger, score=5)).code == ErrorCode.FORBIDDEN
    state.add_rating(rating, NOW)
    assert "已评价过" in refusal(state.check_rate, rating).message


def test_a_closed_case_refuses_officer_actions_but_not_its_follow_up() -> None:
    from workflows.case.state import follow_up_step

    state = birth_case()
    open_ready(state)
    state.closed = True
    assert refusal(state.check_claim, HOSPITAL, "birth_certificate").code == ErrorCode.CONFLICT
    follow_up = follow_up_step(1)
    state.follow_ups[follow_up.code] = follow_up
    supervisor = Actor(username="supervisor", role="supervisor", unit="supervision")
    state.check_claim(supervisor, follow_up.code)
    assert state.clock_running(follow_up)
    assert not state.clock_running(state.steps["birth_certificate"])


# --- materials: where each stands ---------------------------------------------------------


def _entry(code: str, reference: str | None = None) -> MaterialEntry:
    return MaterialEntry(code=code, name_zh=code, reference=reference)


def test_intake_sorts_materials_and_says_why_each_owed_one_is_owed() -> None:
    state = birth_case()

    state.record_intake(
        [_entry("registration_form")],
        [_entry("mother_id_card", "SHARED-1")],
        [_entry("marriage_certificate")],
    )

    materials = state.materials
    assert materials["registration_form"].status == MaterialStatus.RECEIVED
    assert (materials["mother_id_card"].status, materials["mother_id_card"].reference) == (
        MaterialStatus.SHARED,
        "SHARED-1",
    )
    owed = materials["marriage_certificate"]
    assert (owed.status, owed.status_zh, owed.name_zh) == (MaterialStatus.TO_SUPPLY, "需补正", "结婚证")
    assert owed.reason == NOT_SHARED_ZH


def test_a_step_asking_again_makes_the_material_owed_with_its_reason_and_step() -> None:
    state = birth_case()
    state.record_intake([_entry("registration_form")], [_entry("mother_id_card", "SHARED-1")], [])
    open_ready(state)
    step = state.steps["birth_certificate"]
    state.return_for_supplement(step, ["mother_id_card", "出生医学证明首页复印件"])

    state.request_materials(step, "影像不清晰")

    asked = state.materials["mother_id_card"]
    assert (asked.status, asked.reason, asked.step) == (MaterialStatus.TO_SUPPLY, "影像不清晰", "birth_certificate")
    # An item the catalogue does not list keeps the officer's words as its name.
    assert state.materials["出生医学证明首页复印件"].name_zh == "出生医学证明首页复印件"


def test_a_supplement_turns_every_owed_material_into_a_received_one_with_its_reference() -> None:
    state = birth_case()
    state.record_intake([], [], [_entry("marriage_certificate"), _entry("father_hukou_booklet")])

    state.materials_supplied({"marriage_certificate": "UP-1", "father_hukou_booklet": "UP-2"})

    assert {code: (m.status, m.reference, m.reason) for code, m in state.materials.items()} == {
        "marriage_certificate": (MaterialStatus.RECEIVED, "UP-1", None),
        "father_hukou_booklet": (MaterialStatus.RECEIVED, "UP-2", None),
    }

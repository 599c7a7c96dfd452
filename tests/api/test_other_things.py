"""POST /cases for the other one things (企业开办, 身后, 退休): the situation comes from the
answers or the form, bad answers are named, forms are checked, and every department
of every shipped thing has a demo officer who can act on its tasks."""

from __future__ import annotations

import asyncio
import copy
import time
from typing import Any

import pytest
from sqlalchemy import func, select
from sqlmodel import Session

from api.accounts import demo_accounts
from domain.catalogue import shipped_definitions
from domain.samples import sample_answers, sample_form, sample_result
from models.catalogue import read_path
from models.tables import CaseRecord
from tests.api.helpers import assert_error

OTHER_THINGS = ("company_opening", "death", "retirement")
DEFINITIONS = shipped_definitions()

SITUATIONS = [
    pytest.param(thing, situation.code, id=f"{thing}-{situation.code}")
    for thing in OTHER_THINGS
    for situation in DEFINITIONS[thing].situations
]


def _without_answers(thing: str, form: dict[str, Any]) -> dict[str, Any]:
    """The form with every situation answer it carries left out."""
    stripped = copy.deepcopy(form)
    for question in DEFINITIONS[thing].questions:
        assert question.from_form, f"{thing}.{question.code} is not read from the form"
        *parents, last = question.from_form.split(".")
        node = stripped
        for part in parents:
            node = node[part]
        del node[last]
    return stripped


def _situation_steps(thing: str, situation: str, channel: str) -> list[str]:
    definition = DEFINITIONS[thing]
    listed = definition.situation_named(situation).steps or []
    return [step.code for step in definition.steps if step.code in listed and step.applies_to(channel)]


def _case_count(engine) -> int:
    with Session(engine) as session:
        return int(session.execute(select(func.count()).select_from(CaseRecord)).scalar_one())


async def _post(api, login, thing: str, form: dict[str, Any], answers: dict[str, str] | None, **options: Any):
    body: dict[str, Any] = {"thing": thing, "channel": options.get("channel", "online"), "form": form}
    if answers is not None:
        body["answers"] = answers
    return await api.post("/cases", json=body, headers=await login(options.get("as_user", "applicant1")))


async def _status_once_settled(cases, case_id: str, timeout: float = 10.0) -> str:
    """The case's status once the read model has caught up with the closed workflow."""
    deadline = time.monotonic() + timeout
    while True:
        status = str((await cases.read(case_id))["status"])
        if status != "in_progress" or time.monotonic() > deadline:
            return status
        await asyncio.sleep(0.05)


# --- the situation -----------------------------------------------------------------------


@pytest.mark.parametrize(("thing", "situation"), SITUATIONS)
async def test_answers_select_the_situation_when_the_form_leaves_them_out(api, login, thing, situation):
    form = _without_answers(thing, sample_form(thing, situation, delivery="mail"))

    response = await _post(api, login, thing, form, sample_answers(thing, situation))

    assert response.status_code == 201, response.text
    body = response.json()
    assert (body["thing"], body["situation"], body["status"]) == (thing, situation, "accepted")
    assert [step["step"] for step in body["steps"]] == _situation_steps(thing, situation, "online")
    assert body["acceptance_notice"]["materials_to_supply"] == []


@pytest.mark.parametrize(("thing", "situation"), SITUATIONS)
async def test_a_form_that_carries_the_answers_needs_no_answers(api, login, thing, situation):
    response = await _post(api, login, thing, sample_form(thing, situation, delivery="mail"), None)

    assert response.status_code == 201, response.text
    assert response.json()["situation"] == situation


@pytest.mark.parametrize("thing", OTHER_THINGS)
async def test_a_missing_answer_is_422_naming_it_and_starts_no_case(api, login, engine, thing):
    definition = DEFINITIONS[thing]
    unanswered = definition.questions[-1].code
    answers = {code: value for code, value in sample_answers(thing).items() if code != unanswered}
    form = _without_answers(thing, sample_form(thing))

    response = await _post(api, login, thing, form, answers)

    error = assert_error(response, 422, "validation_error", [f"answers.{unanswered}"])
    assert set(error["fields"]) == {f"answers.{unanswered}"}
    assert _case_count(engine) == 0


@pytest.mark.parametrize("thing", OTHER_THINGS)
async def test_answers_that_contradict_the_form_are_422_and_start_no_case(api, login, engine, thing):
    definition = DEFINITIONS[thing]
    form = sample_form(thing)
    question = definition.questions[0]
    stated = str(read_path(form, question.from_form or ""))
    other = next(value for value in question.options if value != stated)

    response = await _post(api, login, thing, form, {question.code: other})

    error = assert_error(response, 422, "validation_error", [f"answers.{question.code}"])
    assert "contradicts the form" in error["fields"][f"answers.{question.code}"]
    assert _case_count(engine) == 0


async def test_an_answer_that_is_not_an_option_is_422_listing_the_options(api, login):
    form = _without_answers("death", sample_form("death"))

    response = await _post(api, login, "death", form, {"death_type": "unknown", "housing_fund": "yes"})

    error = assert_error(response, 422, "validation_error", ["answers.death_type"])
    assert "normal" in error["fields"]["answers.death_type"] and "unnatural" in error["fields"]["answers.death_type"]


# --- the forms ---------------------------------------------------------------------------


async def test_invoices_without_a_tax_agent_are_refused(api, login):
    form = sample_form("company_opening", "hiring_invoicing")
    del form["tax"]["agent"]

    response = await _post(api, login, "company_opening", form, None)

    assert_error(response, 422, "validation_error", ["form.tax"])


async def test_an_employer_credit_code_with_a_wrong_check_character_is_refused(api, login):
    form = sample_form("retirement", "normal_with_fund")
    code = form["employer"]["credit_code"]
    form["employer"]["credit_code"] = code[:17] + ("0" if code[17] != "0" else "1")

    response = await _post(api, login, "retirement", form, None)

    error = assert_error(response, 422, "validation_error", ["form.employer.credit_code"])
    assert "校验码" in error["fields"]["form.employer.credit_code"]


async def test_a_lower_case_credit_code_and_id_check_character_are_normalised(api, login):
    form = sample_form("retirement", "disability_with_fund")
    assert form["retiree"]["id_number"].endswith("X")
    form["retiree"]["id_number"] = form["retiree"]["id_number"].lower()
    form["applicant"]["id_number"] = form["applicant"]["id_number"].lower()
    form["employer"]["credit_code"] = form["employer"]["credit_code"].lower()

    response = await _post(api, login, "retirement", form, None)

    assert response.status_code == 201, response.text
    # The normalised numbers found the shared records: nothing is owed.
    shared = {m["code"] for m in response.json()["acceptance_notice"]["materials_shared"]}
    assert shared == {"retiree_id_card", "employer_business_licence", "work_capacity_conclusion"}


async def test_a_death_in_the_future_is_refused(api, login):
    form = sample_form("death")
    form["deceased"]["died_at"] = "2999-01-01T08:00:00+08:00"

    response = await _post(api, login, "death", form, None)

    error = assert_error(response, 422, "validation_error")
    assert any("future" in reason for reason in error["fields"].values())


# --- the departments' accounts -----------------------------------------------------------


def _step_departments() -> set[str]:
    return {
        step.department_for(channel.code)
        for definition in DEFINITIONS.values()
        for step in definition.steps
        for channel in definition.channels
        if step.applies_to(channel.code)
    }


async def test_every_department_of_every_shipped_thing_has_a_demo_officer_who_can_log_in(api, login):
    departments = _step_departments()
    assert {
        "market_regulation",
        "police",
        "tax",
        "hr_social_security",
        "medical_security",
        "housing_fund",
        "bank",
        "health",
        "civil_affairs",
        "funeral_home",
        "service_center",
    } <= departments
    for department in sorted(departments):
        headers = await login(f"{department}_officer")
        me = (await api.get("/auth/me", headers=headers)).json()
        assert (me["role"], me["unit"]) == ("officer", department)
    assert {f"{d}_officer" for d in departments} <= {name for name, *_ in demo_accounts(list(DEFINITIONS.values()))}


@pytest.mark.parametrize("thing", OTHER_THINGS)
async def test_a_window_case_is_finished_by_the_demo_officers_of_its_departments(api, login, cases, thing):
    definition = DEFINITIONS[thing]
    situation = definition.situations[0].code
    form = sample_form(thing, situation)
    response = await _post(
        api,
        login,
        thing,
        form,
        sample_answers(thing, situation),
        channel="service_center",
        as_user="service_center_clerk",
    )
    assert response.status_code == 201, response.text
    case = response.json()
    assert case["acceptance_notice"]["accepting_unit"] == "service_center"

    finished_by: dict[str, str] = {}
    while True:
        current = await cases.read(case["case_id"])
        ready = [step for step in current["steps"] if step["status"] == "open"]
        if not ready:
            assert all(step["status"] == "done" for step in current["steps"]), current["steps"]
            break
        step = ready[0]
        user = f"{step['department']}_officer"
        claimed = await cases.act("claim", case["case_id"], step["step"], as_user=user)
        assert claimed.status_code == 200, claimed.text
        result = sample_result(definition.step(step["step"]), form)
        done = await cases.act("complete", case["case_id"], step["step"], as_user=user, body={"result": result})
        assert done.status_code == 200, done.text
        finished_by[step["step"]] = user

    assert await _status_once_settled(cases, case["case_id"]) == "completed"
    assert finished_by == {
        code: f"{definition.step(code).department_for('service_center')}_officer"
        for code in _situation_steps(thing, situation, "service_center")
    }


async def test_early_retirement_conditions_found_unmet_refuse_the_case_and_no_pension_is_approved(api, login, cases):
    definition = DEFINITIONS["retirement"]
    form = sample_form("retirement", "special_work_with_fund")
    response = await _post(api, login, "retirement", form, sample_answers("retirement", "special_work_with_fund"))
    assert response.status_code == 201, response.text
    case = response.json()
    user = f"{definition.step('early_retirement_review').department}_officer"
    claimed = await cases.act("claim", case["case_id"], "early_retirement_review", as_user=user)
    assert claimed.status_code == 200, claimed.text

    done = await cases.act(
        "complete", case["case_id"], "early_retirement_review", as_user=user, body={"result": {"conditions_met": False}}
    )

    assert done.status_code == 200, done.text
    assert done.json()["status"] == "refused"
    assert await _status_once_settled(cases, case["case_id"]) == "refused"
    steps = {step["step"]: step for step in (await cases.read(case["case_id"]))["steps"]}
    assert steps["early_retirement_review"]["status"] == "refused"
    assert steps["pension_approval"]["status"] == "cancelled"
    assert steps["pension_approval"]["opened_at"] is None

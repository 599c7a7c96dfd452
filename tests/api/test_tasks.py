"""Officers' inbox and task actions (claim, complete, refuse) through HTTP, with the 403/404/409/422
decided by the workflow's Update validators."""

from __future__ import annotations

from datetime import datetime

import pytest
from sqlmodel import Session

from api.security import hash_password
from models.tables import UserAccount
from tests.api.helpers import assert_error, events_of, result_for, step_of, task_id

INBOX_FIELDS = {"task_id", "case_id", "step", "department", "status", "due_at", "assignee"}


@pytest.fixture
def second_police_officer(engine) -> str:
    with Session(engine) as session:
        colleague = session.get(UserAccount, "police_officer")
        assert colleague is not None
        session.add(
            UserAccount(
                username="police_officer2",
                password_hash=hash_password("demo"),
                role="officer",
                unit="police",
                # A colleague: a member of the same unit as the demo police_officer.
                unit_code=colleague.unit_code,
                display_name_zh="公安部门工作人员二",
            )
        )
        session.commit()
    return "police_officer2"


async def _inbox(api, login, user: str, **params: str) -> list[dict]:
    response = await api.get("/tasks", params=params, headers=await login(user))
    assert response.status_code == 200, response.text
    items: list[dict] = response.json()["items"]
    return items


# --- the inbox -------------------------------------------------------------------------


async def test_officer_inbox_shows_own_departments_open_tasks_by_default(api, login, cases):
    case = await cases.submit()

    hospital = await _inbox(api, login, "hospital_officer")
    police = await _inbox(api, login, "police_officer")

    assert {item["task_id"] for item in hospital} == {
        task_id(case["case_id"], "birth_certificate"),
        task_id(case["case_id"], "vaccination_certificate"),
    }
    assert police == []  # 户口登记 waits for the birth certificate


async def test_inbox_items_carry_the_contract_fields(api, login, cases):
    case = await cases.submit()
    await cases.claim(case, "birth_certificate")

    item = next(
        item
        for item in await _inbox(api, login, "hospital_officer")
        if item["task_id"] == task_id(case["case_id"], "birth_certificate")
    )

    assert set(item) >= INBOX_FIELDS
    assert item["case_id"] == case["case_id"]
    assert item["step"] == "birth_certificate"
    assert item["department"] == "hospital"
    assert item["status"] == "claimed"
    assert item["assignee"] == "hospital_officer"
    assert datetime.fromisoformat(item["due_at"]) == datetime.fromisoformat(
        step_of(case, "birth_certificate")["due_at"]
    )


async def test_inbox_lists_the_oldest_due_first(api, login, cases):
    # Online the certificates have one working day; at the hospital window, the same day.
    online = await cases.submit(channel="online")
    window = await cases.submit(channel="hospital")

    items = await _inbox(api, login, "hospital_officer")

    due = [datetime.fromisoformat(item["due_at"]) for item in items]
    assert due == sorted(due)
    assert [item["case_id"] for item in items] == [window["case_id"]] * 2 + [online["case_id"]] * 2
    assert due[1] < due[2]


async def test_officer_asking_for_another_departments_inbox_is_403(api, login):
    response = await api.get("/tasks", params={"department": "hospital"}, headers=await login("police_officer"))

    assert_error(response, 403, "forbidden")


async def test_officer_may_name_own_department(api, login, cases):
    await cases.submit()

    assert len(await _inbox(api, login, "hospital_officer", department="hospital")) == 2


async def test_supervisor_may_filter_the_inbox_by_any_department(api, login, cases):
    case = await cases.submit()
    await cases.walk_to(case, "hukou_registration")

    police = await _inbox(api, login, "supervisor", department="police")
    everyone = await _inbox(api, login, "supervisor")

    assert [item["task_id"] for item in police] == [task_id(case["case_id"], "hukou_registration")]
    assert {item["department"] for item in everyone} == {"hospital", "police"}


async def test_inbox_can_be_filtered_by_status(api, login, cases):
    case = await cases.submit()
    await cases.complete(case, "birth_certificate")

    done = await _inbox(api, login, "hospital_officer", status="done")
    default = await _inbox(api, login, "hospital_officer")

    assert [item["step"] for item in done] == ["birth_certificate"]
    assert [item["step"] for item in default] == ["vaccination_certificate"]


async def test_an_unknown_status_filter_is_422(api, login):
    response = await api.get("/tasks", params={"status": "lost"}, headers=await login("hospital_officer"))

    assert_error(response, 422, "validation_error")


async def test_applicant_cannot_read_the_inbox(api, login):
    assert_error(await api.get("/tasks", headers=await login("applicant1")), 403, "forbidden")


# --- claim and complete --------------------------------------------------------------


async def test_claim_then_complete_moves_the_case_to_the_next_department(api, login, cases):
    case = await cases.submit()
    case_id = case["case_id"]

    claimed = await cases.claim(case, "birth_certificate")
    assert (claimed["status"], claimed["assignee"]) == ("claimed", "hospital_officer")
    assert (await cases.read(case_id))["status"] == "in_progress"

    result = result_for("birth_certificate", case["_form"])
    response = await cases.act(
        "complete", case_id, "birth_certificate", as_user="hospital_officer", body={"result": result}
    )

    assert response.status_code == 200, response.text
    assert response.json()["status"] == "done"
    after = await cases.read(case_id)
    assert step_of(after, "birth_certificate")["result"] == result
    assert step_of(after, "birth_certificate")["completed_at"] is not None
    hukou = step_of(after, "hukou_registration")
    assert hukou["status"] == "open" and hukou["due_at"] is not None
    police = await _inbox(api, login, "police_officer")
    assert [item["task_id"] for item in police] == [task_id(case_id, "hukou_registration")]


async def test_completing_every_step_completes_the_case(cases):
    case = await cases.submit()

    await cases.finish(case)

    after = await cases.read(case["case_id"], as_user="applicant1")
    assert after["status"] == "completed"
    assert {step["status"] for step in after["steps"]} == {"done"}


async def test_claiming_twice_is_harmless_for_the_same_officer(cases, engine):
    case = await cases.submit()

    await cases.claim(case, "birth_certificate")
    again = await cases.claim(case, "birth_certificate")

    assert again["assignee"] == "hospital_officer"
    assert len(events_of(engine, case["case_id"], "claimed", "birth_certificate")) == 1


async def test_police_cannot_complete_hospital_step(cases):
    case = await cases.submit()
    await cases.claim(case, "birth_certificate")

    response = await cases.act(
        "complete",
        case["case_id"],
        "birth_certificate",
        as_user="police_officer",
        body={"result": result_for("birth_certificate", case["_form"])},
    )

    assert_error(response, 403, "forbidden")
    assert step_of(await cases.read(case["case_id"]), "birth_certificate")["status"] == "claimed"


async def test_police_cannot_claim_hospital_step(cases):
    case = await cases.submit()

    assert_error(
        await cases.act("claim", case["case_id"], "birth_certificate", as_user="police_officer"), 403, "forbidden"
    )


async def test_hospital_clerk_cannot_claim_an_officers_step(cases):
    case = await cases.submit()

    response = await cases.act("claim", case["case_id"], "birth_certificate", as_user="hospital_clerk")

    assert_error(response, 403, "forbidden")


@pytest.mark.parametrize("user", ["applicant1", "supervisor", "admin"])
async def test_only_officers_and_clerks_act_on_tasks(cases, user):
    case = await cases.submit()

    assert_error(await cases.act("claim", case["case_id"], "birth_certificate", as_user=user), 403, "forbidden")


async def test_an_unknown_step_of_a_case_is_404(cases):
    case = await cases.submit()

    response = await cases.act("claim", case["case_id"], "passport", as_user="hospital_officer")

    assert_error(response, 404, "not_found")


async def test_a_task_of_an_unknown_case_is_404(cases):
    response = await cases.act("claim", "ot-00000000000000000000", "birth_certificate", as_user="hospital_officer")

    assert_error(response, 404, "not_found")


async def test_a_malformed_task_id_is_404(api, login):
    response = await api.post("/tasks/not-a-task/claim", headers=await login("hospital_officer"))

    assert_error(response, 404, "not_found")


async def test_completing_an_unclaimed_task_is_409(cases, engine):
    case = await cases.submit()

    response = await cases.act(
        "complete",
        case["case_id"],
        "birth_certificate",
        as_user="hospital_officer",
        body={"result": result_for("birth_certificate", case["_form"])},
    )

    assert_error(response, 409, "conflict")
    assert events_of(engine, case["case_id"], "completed") == []


async def test_claiming_a_task_claimed_by_another_officer_is_409(cases, second_police_officer):
    case = await cases.submit()
    await cases.walk_to(case, "hukou_registration")
    await cases.claim(case, "hukou_registration", "police_officer")

    response = await cases.act("claim", case["case_id"], "hukou_registration", as_user=second_police_officer)

    assert_error(response, 409, "conflict")
    assert step_of(await cases.read(case["case_id"]), "hukou_registration")["assignee"] == "police_officer"


async def test_completing_a_task_claimed_by_another_officer_is_409(cases, second_police_officer):
    case = await cases.submit()
    await cases.walk_to(case, "hukou_registration")
    await cases.claim(case, "hukou_registration", "police_officer")

    response = await cases.act(
        "complete",
        case["case_id"],
        "hukou_registration",
        as_user=second_police_officer,
        body={"result": result_for("hukou_registration", case["_form"])},
    )

    assert_error(response, 409, "conflict")


async def test_completing_a_done_task_is_409(cases, engine):
    case = await cases.submit()
    await cases.complete(case, "birth_certificate")

    response = await cases.act(
        "complete",
        case["case_id"],
        "birth_certificate",
        as_user="hospital_officer",
        body={"result": result_for("birth_certificate", case["_form"])},
    )

    assert_error(response, 409, "conflict")
    assert len(events_of(engine, case["case_id"], "completed", "birth_certificate")) == 1


async def test_claiming_a_done_task_is_409(cases):
    case = await cases.submit()
    await cases.complete(case, "birth_certificate")

    response = await cases.act("claim", case["case_id"], "birth_certificate", as_user="hospital_officer")

    assert_error(response, 409, "conflict")


async def test_acting_on_a_step_not_yet_open_is_409(cases, engine):
    case = await cases.submit()

    claim = await cases.act("claim", case["case_id"], "hukou_registration", as_user="police_officer")
    complete = await cases.act(
        "complete",
        case["case_id"],
        "hukou_registration",
        as_user="police_officer",
        body={"result": result_for("hukou_registration", case["_form"])},
    )

    assert_error(claim, 409, "conflict")
    assert_error(complete, 409, "conflict")
    assert step_of(await cases.read(case["case_id"]), "hukou_registration")["status"] == "pending"
    assert events_of(engine, case["case_id"], "claimed") == []


# --- step results ----------------------------------------------------------------------


async def test_a_bad_certificate_number_is_422_naming_the_result_field(cases, engine):
    case = await cases.submit()
    await cases.claim(case, "birth_certificate")

    response = await cases.act(
        "complete",
        case["case_id"],
        "birth_certificate",
        as_user="hospital_officer",
        body={"result": {"certificate_no": "12345"}},
    )

    assert_error(response, 422, "validation_error", ["result.certificate_no"])
    assert step_of(await cases.read(case["case_id"]), "birth_certificate")["status"] == "claimed"
    assert events_of(engine, case["case_id"], "completed") == []


async def test_money_given_as_a_float_is_422(cases):
    case = await cases.submit()
    await cases.walk_to(case, "maternity_benefit_review")
    await cases.claim(case, "maternity_benefit_review")

    result = {"medical_costs_settled": "3200.00", "allowance_amount": 15230.5}
    response = await cases.act(
        "complete",
        case["case_id"],
        "maternity_benefit_review",
        as_user="medical_security_officer",
        body={"result": result},
    )

    error = assert_error(response, 422, "validation_error", ["result.allowance_amount"])
    assert "result.medical_costs_settled" not in error["fields"]


async def test_a_missing_or_unknown_result_field_is_422_naming_each(cases):
    case = await cases.submit()
    await cases.claim(case, "vaccination_certificate")

    response = await cases.act(
        "complete",
        case["case_id"],
        "vaccination_certificate",
        as_user="hospital_officer",
        body={"result": {"vaccine_batch": "B1"}},
    )

    assert_error(response, 422, "validation_error", ["result.certificate_no", "result.vaccine_batch"])


async def test_a_citizen_id_with_another_birth_date_is_422(cases):
    case = await cases.submit()
    await cases.walk_to(case, "hukou_registration")
    await cases.claim(case, "hukou_registration")
    result = {**result_for("hukou_registration", case["_form"]), "citizen_id_number": "11010519491231002X"}

    response = await cases.act(
        "complete", case["case_id"], "hukou_registration", as_user="police_officer", body={"result": result}
    )

    assert_error(response, 422, "validation_error", ["result.citizen_id_number"])


async def test_an_unknown_field_in_a_completion_body_is_422(cases):
    case = await cases.submit()
    await cases.claim(case, "birth_certificate")
    body = {"result": result_for("birth_certificate", case["_form"]), "signature": "王"}

    response = await cases.act("complete", case["case_id"], "birth_certificate", as_user="hospital_officer", body=body)

    assert_error(response, 422, "validation_error", ["signature"])


# --- idempotent actions ----------------------------------------------------------------


async def test_the_same_idempotency_key_on_complete_twice_completes_the_step_once(cases, engine):
    case = await cases.submit()
    await cases.claim(case, "birth_certificate")
    body = {"result": result_for("birth_certificate", case["_form"])}

    first = await cases.act(
        "complete", case["case_id"], "birth_certificate", as_user="hospital_officer", body=body, key="done-1"
    )
    again = await cases.act(
        "complete", case["case_id"], "birth_certificate", as_user="hospital_officer", body=body, key="done-1"
    )

    assert (first.status_code, again.status_code) == (200, 200), again.text
    assert again.json() == first.json()
    assert len(events_of(engine, case["case_id"], "completed", "birth_certificate")) == 1
    assert len(events_of(engine, case["case_id"], "opened", "hukou_registration")) == 1


async def test_one_key_reused_for_claim_and_complete_performs_both(cases):
    case = await cases.submit()
    body = {"result": result_for("birth_certificate", case["_form"])}

    claimed = await cases.act("claim", case["case_id"], "birth_certificate", as_user="hospital_officer", key="k")
    done = await cases.act(
        "complete", case["case_id"], "birth_certificate", as_user="hospital_officer", body=body, key="k"
    )

    assert claimed.json()["status"] == "claimed"
    assert done.status_code == 200, done.text
    assert done.json()["status"] == "done"


async def test_retrying_the_last_step_with_its_key_after_the_case_closed_is_still_200(cases, engine):
    case = await cases.submit(channel="online")
    for code in [step["step"] for step in case["steps"]][:-1]:
        await cases.complete(case, code)
    await cases.claim(case, "social_security_card")
    body = {"result": result_for("social_security_card", case["_form"])}

    first = await cases.act(
        "complete", case["case_id"], "social_security_card", as_user="hr_social_security_officer", body=body, key="z"
    )
    again = await cases.act(
        "complete", case["case_id"], "social_security_card", as_user="hr_social_security_officer", body=body, key="z"
    )

    assert (first.status_code, again.status_code) == (200, 200), again.text
    assert (await cases.read(case["case_id"]))["status"] == "completed"
    assert len(events_of(engine, case["case_id"], "completed", "social_security_card")) == 1


# --- refusal (不予办理) ------------------------------------------------------------------


async def test_refusal_closes_the_case_as_refused_and_cancels_the_other_steps(api, login, cases, engine):
    case = await cases.submit()
    await cases.claim(case, "birth_certificate")

    response = await cases.act(
        "refuse", case["case_id"], "birth_certificate", as_user="hospital_officer", body={"reason": "出生信息无法核实"}
    )

    assert response.status_code == 200, response.text
    assert response.json()["status"] == "refused"
    after = await cases.read(case["case_id"], as_user="applicant1")
    assert after["status"] == "refused"
    statuses = {step["step"]: step["status"] for step in after["steps"]}
    assert statuses.pop("birth_certificate") == "refused"
    assert set(statuses.values()) == {"cancelled"}
    assert await _inbox(api, login, "hospital_officer") == []
    refused = events_of(engine, case["case_id"], "refused")
    assert [(event.step, event.actor, event.detail["reason"]) for event in refused] == [
        ("birth_certificate", "hospital_officer", "出生信息无法核实")
    ]


async def test_acting_on_a_refused_case_is_409(cases):
    case = await cases.submit()
    await cases.claim(case, "birth_certificate")
    await cases.act("refuse", case["case_id"], "birth_certificate", as_user="hospital_officer", body={"reason": "无"})

    response = await cases.act("claim", case["case_id"], "vaccination_certificate", as_user="hospital_officer")

    assert_error(response, 409, "conflict")


async def test_refusing_an_unclaimed_task_is_409(cases):
    case = await cases.submit()

    response = await cases.act(
        "refuse", case["case_id"], "birth_certificate", as_user="hospital_officer", body={"reason": "材料不实"}
    )

    assert_error(response, 409, "conflict")
    assert (await cases.read(case["case_id"]))["status"] == "accepted"


@pytest.mark.parametrize("reason", ["", "   "])
async def test_a_refusal_needs_a_reason(cases, reason):
    case = await cases.submit()
    await cases.claim(case, "birth_certificate")

    response = await cases.act(
        "refuse", case["case_id"], "birth_certificate", as_user="hospital_officer", body={"reason": reason}
    )

    assert_error(response, 422, "validation_error", ["reason"])
    assert (await cases.read(case["case_id"]))["status"] == "in_progress"


async def test_clerk_inbox_holds_only_tasks_clerks_may_act_on(api, login, cases):
    case = await cases.submit(as_user="hospital_clerk", channel="hospital")
    assert await _inbox(api, login, "hospital_clerk") == []  # hospital steps are officers' work
    await cases.walk_to(case, "delivery")
    items = await _inbox(api, login, "hospital_clerk")
    assert [item["step"] for item in items] == ["delivery"]

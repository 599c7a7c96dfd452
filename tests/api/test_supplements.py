"""Return for supplement (退回补正) and POST /cases/{id}/supplements (补齐补正)."""

from __future__ import annotations

from domain.samples import MOTHER_WITHOUT_MARRIAGE_RECORD_ID
from tests.api.helpers import PROXY, assert_error, birth_form, events_of, result_for, step_of


async def _returned(cases, missing: list[str]) -> dict:
    """A hospital case whose birth-certificate step the officer sent back for ``missing``."""
    case = await cases.submit()
    await cases.claim(case, "birth_certificate")
    response = await cases.act(
        "return",
        case["case_id"],
        "birth_certificate",
        as_user="hospital_officer",
        body={"missing": missing, "reason": "分娩记录不清晰"},
    )
    assert response.status_code == 200, response.text
    assert response.json()["status"] == "awaiting_supplement"
    return case


async def _supplement(api, login, case_id: str, materials: dict[str, str], as_user: str = "applicant1"):
    return await api.post(f"/cases/{case_id}/supplements", json={"materials": materials}, headers=await login(as_user))


async def test_a_returned_step_puts_the_case_awaiting_supplement(cases):
    case = await _returned(cases, ["delivery_record", "mother_photo"])

    after = await cases.read(case["case_id"], as_user="applicant1")

    assert after["status"] == "awaiting_supplement"
    assert after["missing_materials"] == ["delivery_record", "mother_photo"]
    step = step_of(after, "birth_certificate")
    assert (step["status"], step["missing"]) == ("awaiting_supplement", ["delivery_record", "mother_photo"])


async def test_supplying_the_missing_materials_puts_the_step_back_in_the_officers_hands(api, login, cases, engine):
    case = await _returned(cases, ["delivery_record"])

    response = await _supplement(api, login, case["case_id"], {"delivery_record": "UPLOAD-0042"})

    assert response.status_code == 200, response.text
    body = response.json()
    assert body["status"] == "in_progress"
    assert body["missing_materials"] == []
    step = step_of(body, "birth_certificate")
    assert (step["status"], step["assignee"]) == ("claimed", "hospital_officer")
    supplied = events_of(engine, case["case_id"], "supplemented", "birth_certificate")
    assert [event.actor for event in supplied] == ["applicant1"]


async def test_after_a_supplement_the_officer_can_complete_the_step(api, login, cases):
    case = await _returned(cases, ["delivery_record"])
    await _supplement(api, login, case["case_id"], {"delivery_record": "UPLOAD-0042"})

    response = await cases.act(
        "complete",
        case["case_id"],
        "birth_certificate",
        as_user="hospital_officer",
        body={"result": result_for("birth_certificate", case["_form"])},
    )

    assert response.status_code == 200, response.text
    assert response.json()["status"] == "done"


async def test_a_supplement_lacking_a_missing_item_is_422_naming_it(api, login, cases):
    case = await _returned(cases, ["delivery_record", "mother_photo"])

    response = await _supplement(api, login, case["case_id"], {"delivery_record": "UPLOAD-0042"})

    error = assert_error(response, 422, "validation_error", ["materials.mother_photo"])
    assert "materials.delivery_record" not in error["fields"]
    assert (await cases.read(case["case_id"]))["status"] == "awaiting_supplement"


async def test_a_supplement_when_nothing_is_owed_is_409(api, login, cases):
    case = await cases.submit()

    response = await _supplement(api, login, case["case_id"], {"delivery_record": "UPLOAD-0042"})

    assert_error(response, 409, "conflict")


async def test_a_second_supplement_after_the_first_is_409(api, login, cases):
    case = await _returned(cases, ["delivery_record"])
    assert (await _supplement(api, login, case["case_id"], {"delivery_record": "UPLOAD-1"})).status_code == 200

    response = await _supplement(api, login, case["case_id"], {"delivery_record": "UPLOAD-2"})

    assert_error(response, 409, "conflict")


async def test_an_empty_supplement_is_422(api, login, cases):
    case = await _returned(cases, ["delivery_record"])

    assert_error(await _supplement(api, login, case["case_id"], {}), 422, "validation_error", ["materials"])


async def test_an_oversized_material_reference_is_422_naming_it_and_the_step_still_waits(api, login, cases):
    case = await _returned(cases, ["delivery_record"])

    response = await _supplement(api, login, case["case_id"], {"delivery_record": "档" * 501})

    error = assert_error(response, 422, "validation_error")
    assert any("delivery_record" in field for field in error["fields"]), error
    assert (await cases.read(case["case_id"]))["status"] == "awaiting_supplement"


async def test_another_applicant_cannot_supplement_the_case(api, login, cases):
    case = await _returned(cases, ["delivery_record"])

    response = await _supplement(api, login, case["case_id"], {"delivery_record": "X"}, as_user="applicant2")

    assert_error(response, 404, "not_found")
    assert (await cases.read(case["case_id"]))["status"] == "awaiting_supplement"


async def test_an_officer_cannot_supplement_on_the_applicants_behalf(api, login, cases):
    case = await _returned(cases, ["delivery_record"])

    response = await _supplement(api, login, case["case_id"], {"delivery_record": "X"}, as_user="hospital_officer")

    assert_error(response, 403, "forbidden")


async def test_the_accepting_clerk_may_supplement_a_window_case(api, login, cases):
    case = await cases.submit(as_user="hospital_clerk")
    await cases.claim(case, "birth_certificate")
    await cases.act(
        "return",
        case["case_id"],
        "birth_certificate",
        as_user="hospital_officer",
        body={"missing": ["delivery_record"], "reason": "缺分娩记录"},
    )

    response = await _supplement(api, login, case["case_id"], {"delivery_record": "SCAN-7"}, as_user="hospital_clerk")

    assert response.status_code == 200, response.text
    assert response.json()["status"] == "in_progress"


async def test_completing_a_step_awaiting_supplement_is_409(cases):
    case = await _returned(cases, ["delivery_record"])

    response = await cases.act(
        "complete",
        case["case_id"],
        "birth_certificate",
        as_user="hospital_officer",
        body={"result": result_for("birth_certificate", case["_form"])},
    )

    assert_error(response, 409, "conflict")


async def test_returning_needs_a_list_of_missing_items(cases):
    case = await cases.submit()
    await cases.claim(case, "birth_certificate")

    response = await cases.act(
        "return", case["case_id"], "birth_certificate", as_user="hospital_officer", body={"missing": [], "reason": "缺"}
    )

    assert_error(response, 422, "validation_error", ["missing"])


async def test_returning_an_unclaimed_step_is_409(cases):
    case = await cases.submit()

    response = await cases.act(
        "return",
        case["case_id"],
        "birth_certificate",
        as_user="hospital_officer",
        body={"missing": ["delivery_record"], "reason": "缺"},
    )

    assert_error(response, 409, "conflict")


async def test_materials_owed_at_intake_are_supplied_and_the_first_steps_open(api, login, cases):
    case = await cases.submit(form=birth_form(mother_id=MOTHER_WITHOUT_MARRIAGE_RECORD_ID), proxy=PROXY)
    assert case["status"] == "awaiting_supplement"

    missing = await _supplement(api, login, case["case_id"], {"other": "X"})
    assert_error(missing, 422, "validation_error", ["materials.marriage_certificate"])
    response = await _supplement(api, login, case["case_id"], {"marriage_certificate": "UPLOAD-MAR-1"})

    assert response.status_code == 200, response.text
    body = response.json()
    assert body["missing_materials"] == []
    assert step_of(body, "birth_certificate")["status"] == "open"
    assert step_of(body, "vaccination_certificate")["status"] == "open"

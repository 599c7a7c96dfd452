"""An action's Idempotency-Key is bound to its user, action, target and body (services/idempotency.py):
the same key with the same body is a retry, answered with the first result and applied once; the same
key with another body is 422 naming ``Idempotency-Key`` and applies nothing; another user's identical
key is a request of their own, never answered with someone else's result."""

from __future__ import annotations

from typing import Any

from sqlmodel import Session, col, select

from models.tables import ActionKey, AuditRecord
from tests.api.helpers import assert_error, events_of, result_for, step_of, task_id

FIRST = "birth_certificate"  # the hospital's step, open on acceptance
HUKOU = "hukou_registration"
POLICE = "police_330102_officer"  # a 上城区 police officer; police_officer is their colleague


def _audited(engine, action: str, target: str) -> list[tuple[str, str | None]]:
    with Session(engine) as session:
        rows = session.exec(
            select(AuditRecord)
            .where(col(AuditRecord.action) == action, col(AuditRecord.target) == target)
            .order_by(col(AuditRecord.at))
        ).all()
    return [(row.actor, row.request_key) for row in rows]


def _bindings(engine) -> int:
    with Session(engine) as session:
        return len(session.exec(select(ActionKey)).all())


async def _complete(cases, case: dict[str, Any], result: dict[str, Any], key: str):
    body = {"result": result}
    return await cases.act("complete", case["case_id"], FIRST, as_user="hospital_officer", body=body, key=key)


# --- (1) a retry is answered with the first result and applied once ----------------------------------


async def test_a_claim_retried_with_its_key_is_answered_the_same_and_claimed_once(api, login, cases, engine):
    case = await cases.submit()

    first = await cases.act("claim", case["case_id"], FIRST, as_user="hospital_officer", key="claim-1")
    again = await cases.act("claim", case["case_id"], FIRST, as_user="hospital_officer", key="claim-1")

    assert (first.status_code, again.status_code) == (200, 200), again.text
    assert again.json() == first.json()
    assert first.json()["assignee"] == "hospital_officer"
    assert len(events_of(engine, case["case_id"], "claimed", FIRST)) == 1
    timeline = await api.get(f"/cases/{case['case_id']}/timeline", headers=await login("hospital_officer"))
    assert timeline.status_code == 200, timeline.text
    assert [event["type"] for event in timeline.json()["events"]].count("claimed") == 1
    target = task_id(case["case_id"], FIRST)
    assert _audited(engine, "task_claim", target) == [("hospital_officer", f"{target}/hospital_officer/claim-1")]


# --- (2) the same key with another body is 422 and applies nothing -----------------------------------


async def test_a_completion_key_reused_with_another_result_is_422_and_the_first_result_stays(cases, engine):
    case = await cases.submit()
    await cases.claim(case, FIRST)
    result_a = result_for(FIRST, case["_form"])
    result_b = {**result_a, "certificate_no": "Y987654321"}
    assert result_b != result_a

    first = await _complete(cases, case, result_a, "done-1")
    reused = await _complete(cases, case, result_b, "done-1")

    assert first.status_code == 200, first.text
    error = assert_error(reused, 422, "validation_error", ["Idempotency-Key"])
    assert "Idempotency-Key" in error["message"]
    step = step_of(await cases.read(case["case_id"], as_user="hospital_officer"), FIRST)
    assert (step["status"], step["result"]) == ("done", result_a)
    assert len(events_of(engine, case["case_id"], "completed", FIRST)) == 1
    # The refusal did not unbind the key: the first request's retry still gets its answer.
    retried = await _complete(cases, case, result_a, "done-1")
    assert retried.status_code == 200, retried.text
    assert retried.json() == first.json()


async def test_a_key_whose_action_the_workflow_refused_may_carry_the_corrected_request(cases, engine):
    case = await cases.submit()
    await cases.claim(case, FIRST)

    wrong = await _complete(cases, case, {"certificate_no": "not a number"}, "fix-me")
    assert_error(wrong, 422, "validation_error", ["result.certificate_no"])
    assert _bindings(engine) == 0  # a refused action leaves no binding behind
    corrected = await _complete(cases, case, result_for(FIRST, case["_form"]), "fix-me")

    assert corrected.status_code == 200, corrected.text
    assert corrected.json()["status"] == "done"


# --- (3) another user's identical key is their own request -------------------------------------------


async def test_a_colleague_reusing_an_officers_key_does_not_get_the_officers_answer(cases, engine):
    case = await cases.submit()
    await cases.walk_to(case, HUKOU)
    mine = await cases.act("claim", case["case_id"], HUKOU, as_user=POLICE, key="shared-key")
    assert mine.status_code == 200, mine.text

    theirs = await cases.act("claim", case["case_id"], HUKOU, as_user="police_officer", key="shared-key")

    # Refused for its own reason (the task is the first officer's), not answered with the first claim.
    assert_error(theirs, 409, "conflict")
    assert step_of(await cases.read(case["case_id"]), HUKOU)["assignee"] == POLICE
    assert [event.actor for event in events_of(engine, case["case_id"], "claimed", HUKOU)] == [POLICE]


async def test_a_colleagues_action_under_the_same_key_is_applied_and_audited_as_theirs(cases, engine):
    case = await cases.submit()
    await cases.walk_to(case, HUKOU)
    assert (await cases.act("claim", case["case_id"], HUKOU, as_user=POLICE, key="shared-key")).status_code == 200
    assert (await cases.act("unclaim", case["case_id"], HUKOU, as_user=POLICE, key="back")).status_code == 200

    theirs = await cases.act("claim", case["case_id"], HUKOU, as_user="police_officer", key="shared-key")

    assert theirs.status_code == 200, theirs.text
    assert (theirs.json()["status"], theirs.json()["assignee"]) == ("claimed", "police_officer")
    claims = [event.actor for event in events_of(engine, case["case_id"], "claimed", HUKOU)]
    assert claims == [POLICE, "police_officer"]
    target = task_id(case["case_id"], HUKOU)
    assert _audited(engine, "task_claim", target) == [
        (POLICE, f"{target}/{POLICE}/shared-key"),
        ("police_officer", f"{target}/police_officer/shared-key"),
    ]


# --- (4) supplements and withdrawals ----------------------------------------------------------------


async def _returned(cases) -> dict[str, Any]:
    case = await cases.submit()
    await cases.claim(case, FIRST)
    body = {"missing": ["delivery_record"], "reason": "分娩记录不清晰"}
    response = await cases.act("return", case["case_id"], FIRST, as_user="hospital_officer", body=body)
    assert response.status_code == 200, response.text
    return case


async def _supplement(api, login, case_id: str, materials: dict[str, str], key: str):
    headers = {**await login("applicant1"), "Idempotency-Key": key}
    return await api.post(f"/cases/{case_id}/supplements", json={"materials": materials}, headers=headers)


async def test_a_supplement_key_reused_with_other_materials_is_422(api, login, cases, engine):
    case = await _returned(cases)

    first = await _supplement(api, login, case["case_id"], {"delivery_record": "UPLOAD-0042"}, "supply-1")
    again = await _supplement(api, login, case["case_id"], {"delivery_record": "UPLOAD-0042"}, "supply-1")
    other = await _supplement(api, login, case["case_id"], {"delivery_record": "UPLOAD-9999"}, "supply-1")

    assert (first.status_code, again.status_code) == (200, 200), again.text
    assert again.json() == first.json()
    assert_error(other, 422, "validation_error", ["Idempotency-Key"])
    supplied = events_of(engine, case["case_id"], "supplemented")
    assert [event.detail for event in supplied if event.step is None] == [{"materials": ["delivery_record"]}]


async def test_a_withdrawal_key_reused_with_another_reason_is_422(api, login, cases, engine):
    case = await cases.submit()
    headers = {**await login("applicant1"), "Idempotency-Key": "withdraw-1"}

    first = await api.post(f"/cases/{case['case_id']}/withdraw", json={"reason": "已在外省办理"}, headers=headers)
    again = await api.post(f"/cases/{case['case_id']}/withdraw", json={"reason": "已在外省办理"}, headers=headers)
    other = await api.post(f"/cases/{case['case_id']}/withdraw", json={"reason": "不想办了"}, headers=headers)

    assert (first.status_code, again.status_code) == (200, 200), again.text
    assert again.json() == first.json()
    assert_error(other, 422, "validation_error", ["Idempotency-Key"])
    (event,) = events_of(engine, case["case_id"], "withdrawn")
    assert event.detail == {"reason": "已在外省办理"}

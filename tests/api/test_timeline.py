"""GET /cases/{id}/timeline: every step's clock and every business event, read from Temporal history."""

from __future__ import annotations

from collections import Counter
from datetime import datetime

from sqlalchemy import delete
from sqlmodel import Session

from models.tables import CaseEventRecord
from tests.api.helpers import officer_of


async def _timeline(api, login, case_id: str, user: str = "supervisor") -> dict:
    response = await api.get(f"/cases/{case_id}/timeline", headers=await login(user))
    assert response.status_code == 200, response.text
    body: dict = response.json()
    return body


async def test_supervisor_timeline_of_a_completed_case_has_every_steps_clock_on_time(api, login, cases):
    case = await cases.submit(as_user="applicant1", channel="hospital")
    await cases.finish(case)

    timeline = await _timeline(api, login, case["case_id"])

    assert timeline["case_id"] == case["case_id"]
    assert [step["step"] for step in timeline["steps"]] == [step["step"] for step in case["steps"]]
    for step in timeline["steps"]:
        opened, due, completed = (datetime.fromisoformat(step[k]) for k in ("opened_at", "due_at", "completed_at"))
        assert opened <= completed <= due, step
        assert step["on_time"] is True, step
        assert step["working_hours_used"] is not None and step["working_hours_used"] >= 0, step


async def test_timeline_events_name_who_did_what(api, login, cases):
    case = await cases.submit(as_user="applicant1", channel="hospital")
    await cases.finish(case)

    events = (await _timeline(api, login, case["case_id"]))["events"]

    types = Counter(event["type"] for event in events)
    assert {"accepted", "opened", "claimed", "completed", "delivered", "case_completed"} <= set(types)
    steps = [step["step"] for step in case["steps"]]
    assert types["opened"] == types["claimed"] == types["completed"] == len(steps)
    accepted = next(event for event in events if event["type"] == "accepted")
    assert accepted["actor"] == "applicant1"
    for event in events:
        if event["type"] in {"claimed", "completed"}:
            assert event["actor"] == officer_of(event["step"], "hospital"), event
        if event["type"] == "opened":
            assert event["due_at"] is not None and event["actor"] is None, event
    delivered = [event for event in events if event["type"] == "delivered"]
    assert [(e["step"], e["department"], e["actor"]) for e in delivered] == [
        ("delivery", "hospital", "hospital_officer")
    ]
    assert [event["seq"] for event in events] == sorted(event["seq"] for event in events)
    assert events[-1]["type"] == "case_completed"


async def test_timeline_records_a_return_and_the_supplement(api, login, cases):
    case = await cases.submit()
    await cases.claim(case, "birth_certificate")
    await cases.act(
        "return",
        case["case_id"],
        "birth_certificate",
        as_user="hospital_officer",
        body={"missing": ["delivery_record"], "reason": "缺分娩记录"},
    )
    await api.post(
        f"/cases/{case['case_id']}/supplements",
        json={"materials": {"delivery_record": "UPLOAD-9"}},
        headers=await login("applicant1"),
    )

    timeline = await _timeline(api, login, case["case_id"], user="hospital_officer")

    returned = [e for e in timeline["events"] if e["type"] == "returned"]
    assert [(e["step"], e["actor"], e["detail"]["missing"]) for e in returned] == [
        ("birth_certificate", "hospital_officer", ["delivery_record"])
    ]
    supplemented = [e for e in timeline["events"] if e["type"] == "supplemented" and e["step"] == "birth_certificate"]
    assert [e["actor"] for e in supplemented] == ["applicant1"]
    step = next(s for s in timeline["steps"] if s["step"] == "birth_certificate")
    assert step["completed_at"] is None and step["on_time"] is None


async def test_timeline_of_a_case_in_progress_leaves_unopened_steps_empty(api, login, cases):
    case = await cases.submit()

    steps = {step["step"]: step for step in (await _timeline(api, login, case["case_id"]))["steps"]}

    assert steps["birth_certificate"]["opened_at"] is not None
    assert steps["birth_certificate"]["completed_at"] is None
    hukou = steps["hukou_registration"]
    assert (hukou["opened_at"], hukou["due_at"], hukou["completed_at"], hukou["on_time"]) == (None, None, None, None)


async def test_timeline_comes_from_the_workflow_history_not_the_read_model(api, login, cases, engine):
    case = await cases.submit()
    await cases.complete(case, "birth_certificate")
    before = await _timeline(api, login, case["case_id"])
    with Session(engine) as session:
        session.execute(delete(CaseEventRecord).where(CaseEventRecord.case_id == case["case_id"]))
        session.commit()

    after = await _timeline(api, login, case["case_id"])

    assert after["events"] == before["events"]
    assert {"accepted", "opened", "claimed", "completed"} <= {event["type"] for event in after["events"]}


async def test_a_refused_case_is_archived_at_once_with_a_verifiable_manifest(api, login, cases, api_settings):
    case = await cases.submit(channel="hospital")
    await cases.claim(case, "birth_certificate")
    refused = await cases.act(
        "refuse", case["case_id"], "birth_certificate", as_user="hospital_officer", body={"reason": "材料不符"}
    )
    assert refused.status_code == 200, refused.text
    archive = await api.get(f"/cases/{case['case_id']}/archive", headers=await login("supervisor"))
    assert archive.status_code == 200, archive.text
    body = archive.json()
    assert body["complete"] is True
    assert {part["name"] for part in body["manifest"]["parts"]} >= {"form.json", "timeline.json", "results.json"}
    (api_settings.archive_dir / case["case_id"] / "results.json").unlink()
    again = await api.get(f"/cases/{case['case_id']}/archive", headers=await login("supervisor"))
    assert again.json()["complete"] is False and again.json()["missing"] == ["results.json"]


async def test_an_open_case_has_no_archive_yet(api, login, cases):
    case = await cases.submit()
    response = await api.get(f"/cases/{case['case_id']}/archive", headers=await login("supervisor"))
    assert response.status_code == 409


async def test_a_delivered_case_is_archived_when_its_rating_period_ends(api, login, cases):
    case = await cases.submit(channel="hospital")
    await cases.finish(case)
    response = await api.get(f"/cases/{case['case_id']}/archive", headers=await login("supervisor"))
    assert response.status_code == 409 and "rating" in response.json()["error"]["message"]

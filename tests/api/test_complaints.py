"""Complaints (投诉) over HTTP: filing on one's own case or about a department, who may
see and act on which complaint, the audit rows of staff actions (once per request), the
timeline from history and the CSV export."""

from __future__ import annotations

import csv
import io
from datetime import datetime
from typing import Any

import httpx
import pytest
from sqlalchemy import Engine, select
from sqlmodel import Session, col
from temporalio.testing import WorkflowEnvironment

from api.routes.complaints import new_complaint_id
from domain.catalogue import load_departments
from domain.workcalendar import WorkingCalendar, default_calendar_file
from models.tables import AuditRecord
from tests.api.helpers import Cases, Login, assert_error

CALENDAR = WorkingCalendar.load(default_calendar_file())
CONTENT = "出生医学证明办理超时，窗口答复不清。"


@pytest.fixture(scope="module")
def env(module_env: WorkflowEnvironment) -> WorkflowEnvironment:
    """A test here skips three days: this module's complaints run on a test server of their own."""
    return module_env


async def file(
    api: httpx.AsyncClient, login: Login, as_user: str = "applicant1", key: str | None = None, **body: Any
) -> httpx.Response:
    headers = dict(await login(as_user))
    if key is not None:
        headers["Idempotency-Key"] = key
    return await api.post("/complaints", json={"content": CONTENT, **body}, headers=headers)


async def filed(api: httpx.AsyncClient, login: Login, as_user: str = "applicant1", **body: Any) -> dict[str, Any]:
    response = await file(api, login, as_user, **body)
    assert response.status_code == 201, response.text
    result: dict[str, Any] = response.json()
    return result


async def act(
    api: httpx.AsyncClient,
    login: Login,
    complaint_id: str,
    action: str,
    as_user: str,
    key: str | None = None,
    **body: Any,
) -> httpx.Response:
    headers = dict(await login(as_user))
    if key is not None:
        headers["Idempotency-Key"] = key
    return await api.post(f"/complaints/{complaint_id}/{action}", json=body, headers=headers)


async def listed(api: httpx.AsyncClient, login: Login, as_user: str, **params: Any) -> list[str]:
    response = await api.get("/complaints", params=params, headers=await login(as_user))
    assert response.status_code == 200, response.text
    return [item["complaint_id"] for item in response.json()["items"]]


async def test_applicant_files_a_complaint_about_a_step_of_own_case_due_in_five_working_days(api, login, cases: Cases):
    case = await cases.submit(as_user="applicant1")

    response = await file(api, login, case_id=case["case_id"], step="vaccination_certificate")

    assert response.status_code == 201, response.text
    complaint = response.json()
    assert complaint["complaint_id"].startswith("cp-") and len(complaint["complaint_id"]) == 23
    assert (complaint["status"], complaint["status_zh"]) == ("accepted", "已受理")
    # The department is the step's.
    assert (complaint["department"], complaint["department_zh"]) == ("hospital", load_departments()["hospital"].name_zh)
    assert (complaint["case_id"], complaint["step"]) == (case["case_id"], "vaccination_certificate")
    assert (complaint["complainant"], complaint["filed_by"], complaint["content"]) == (
        "applicant1",
        "applicant1",
        CONTENT,
    )
    filed_at = datetime.fromisoformat(complaint["filed_at"])
    assert datetime.fromisoformat(complaint["due_at"]) == CALENDAR.add_working_days(filed_at, 5).due_at

    read = await api.get(f"/complaints/{complaint['complaint_id']}", headers=await login("applicant1"))
    assert read.status_code == 200, read.text
    assert read.json() == complaint


async def test_complaint_about_another_applicants_case_or_an_unknown_case_is_not_found(api, login, cases: Cases):
    case = await cases.submit(as_user="applicant1")

    assert_error(await file(api, login, as_user="applicant2", case_id=case["case_id"]), 404, "not_found")
    assert_error(await file(api, login, case_id="ot-00000000000000000000"), 404, "not_found")
    # A clerk of a unit the case never reached may not file on it either.
    assert_error(await file(api, login, as_user="service_center_clerk", case_id=case["case_id"]), 404, "not_found")


async def test_filing_checks_content_department_and_step(api, login, cases: Cases):
    case = await cases.submit(as_user="applicant1")
    on_case = {"case_id": case["case_id"]}

    assert_error(await file(api, login, department="police", content="太慢了"), 422, "validation_error", ["content"])
    assert_error(
        await file(api, login, department="police", content="   太慢了   "), 422, "validation_error", ["content"]
    )
    assert_error(await file(api, login, department="police", content="慢" * 2001), 422, "validation_error", ["content"])
    assert_error(await file(api, login, department="nowhere"), 422, "validation_error", ["department"])
    assert_error(await file(api, login), 422, "validation_error", ["department"])  # about nothing
    assert_error(
        await file(api, login, department="police", step="hukou_registration"), 422, "validation_error", ["step"]
    )
    assert_error(await file(api, login, **on_case, step="no_such_step"), 422, "validation_error", ["step"])
    assert_error(
        await file(api, login, **on_case, step="birth_certificate", department="police"),
        422,
        "validation_error",
        ["department"],
    )
    assert_error(await file(api, login, **on_case, department="tax"), 422, "validation_error", ["department"])

    # About a department in general, and about a case without naming a step.
    general = await filed(api, login, department="tax", content="  税务窗口排队时间过长。  ")
    assert (general["department"], general["case_id"], general["content"]) == ("tax", None, "税务窗口排队时间过长。")
    whole_case = await filed(api, login, **on_case)
    assert (whole_case["case_id"], whole_case["department"]) == (case["case_id"], None)
    named = await filed(api, login, **on_case, department="police")
    assert named["department"] == "police"


async def test_a_retried_filing_with_the_same_idempotency_key_finds_the_same_complaint(api, login):
    first = await file(api, login, key="complaint-1", department="police")
    again = await file(api, login, key="complaint-1", department="police")
    other = await file(api, login, key="complaint-1", department="tax")

    assert (first.status_code, again.status_code) == (201, 200)
    assert again.json()["complaint_id"] == first.json()["complaint_id"]
    assert_error(other, 422, "validation_error", ["Idempotency-Key"])
    assert await listed(api, login, "applicant1") == [first.json()["complaint_id"]]


async def test_clerk_files_for_a_walk_in_applicant_who_then_follows_it(api, login, cases: Cases):
    case = await cases.submit(as_user="applicant1")

    complaint = await filed(api, login, as_user="hospital_clerk", case_id=case["case_id"], step="birth_certificate")
    walk_in = await filed(api, login, as_user="hospital_clerk", department="police")

    assert (complaint["complainant"], complaint["filed_by"]) == ("applicant1", "hospital_clerk")
    assert (walk_in["complainant"], walk_in["filed_by"]) == (None, "hospital_clerk")
    assert await listed(api, login, "applicant1") == [complaint["complaint_id"]]
    assert set(await listed(api, login, "hospital_clerk")) == {complaint["complaint_id"], walk_in["complaint_id"]}
    assert await listed(api, login, "service_center_clerk") == []


async def test_each_endpoint_refuses_the_wrong_role_department_and_state(api, login, cases: Cases):
    case = await cases.submit(as_user="applicant1")
    complaint_id = (await filed(api, login, case_id=case["case_id"], step="birth_certificate"))["complaint_id"]

    for user in ("hospital_officer", "supervisor", "admin"):
        assert_error(await file(api, login, as_user=user, department="police"), 403, "forbidden")
    for user in ("applicant1", "hospital_officer", "hospital_clerk", "admin"):
        assert_error(await act(api, login, complaint_id, "assign", user, department="police"), 403, "forbidden")
    assert_error(await act(api, login, complaint_id, "answer", "police_officer", answer="已处理。"), 409, "conflict")
    assert_error(
        await act(api, login, complaint_id, "assign", "supervisor", department="nowhere"),
        422,
        "validation_error",
        ["department"],
    )

    assert (await act(api, login, complaint_id, "assign", "supervisor", department="police")).status_code == 200

    for user in ("applicant1", "supervisor", "hospital_clerk"):
        assert_error(await act(api, login, complaint_id, "answer", user, answer="已处理。"), 403, "forbidden")
    # The department complained about is not the one it was assigned to.
    assert_error(await act(api, login, complaint_id, "answer", "hospital_officer", answer="已处理。"), 403, "forbidden")
    assert_error(
        await act(api, login, complaint_id, "answer", "police_officer", answer="  "),
        422,
        "validation_error",
        ["answer"],
    )
    assert_error(await act(api, login, complaint_id, "close", "supervisor", satisfied=True), 409, "conflict")
    assert_error(await act(api, login, complaint_id, "close", "supervisor"), 422, "validation_error", ["satisfied"])

    assert (await act(api, login, complaint_id, "answer", "police_officer", answer="已处理。")).status_code == 200

    for user in ("applicant1", "police_officer", "admin"):
        assert_error(await act(api, login, complaint_id, "close", user, satisfied=True), 403, "forbidden")
    assert_error(await act(api, login, complaint_id, "answer", "police_officer", answer="再答复。"), 409, "conflict")

    # Unknown complaints, or ids that are not complaints at all.
    for unknown in ("cp-00000000000000000000", case["case_id"], "nonsense"):
        assert_error(await act(api, login, unknown, "assign", "supervisor", department="police"), 404, "not_found")
        assert_error(await api.get(f"/complaints/{unknown}", headers=await login("supervisor")), 404, "not_found")


async def test_full_path_through_the_api_and_a_closed_complaint_takes_no_more_actions(api, login, cases: Cases):
    case = await cases.submit(as_user="applicant1")
    complaint_id = (await filed(api, login, case_id=case["case_id"], step="birth_certificate"))["complaint_id"]

    assigned = await act(api, login, complaint_id, "assign", "supervisor", key="a-1", department="police", note="转办")
    retried = await act(api, login, complaint_id, "assign", "supervisor", key="a-1", department="police", note="转办")
    assert assigned.status_code == retried.status_code == 200, (assigned.text, retried.text)
    assert (assigned.json()["status"], assigned.json()["assigned_department"], assigned.json()["assign_note"]) == (
        "assigned",
        "police",
        "转办",
    )
    answered = await act(api, login, complaint_id, "answer", "police_officer", answer="已联系申请人并整改。")
    assert answered.status_code == 200, answered.text
    assert (answered.json()["status_zh"], answered.json()["answered_by"]) == ("已答复", "police_officer")
    closed = await act(api, login, complaint_id, "close", "supervisor", satisfied=False, note="申请人仍不满意")
    assert closed.status_code == 200, closed.text
    body = closed.json()
    assert (body["status"], body["status_zh"], body["satisfied"], body["close_note"]) == (
        "closed",
        "已办结",
        False,
        "申请人仍不满意",
    )

    read = await api.get(f"/complaints/{complaint_id}", headers=await login("applicant1"))
    assert (read.json()["status"], read.json()["answer"], read.json()["satisfied"]) == (
        "closed",
        "已联系申请人并整改。",
        False,
    )
    # The workflow has finished: a further action is a conflict, in the one error shape.
    assert_error(await act(api, login, complaint_id, "assign", "supervisor", department="tax"), 409, "conflict")
    # The retried assignment (same Idempotency-Key) was applied once.
    timeline = await api.get(f"/complaints/{complaint_id}/timeline", headers=await login("supervisor"))
    assert [event["type"] for event in timeline.json()["events"]] == ["accepted", "assigned", "answered", "closed"]


def audit_rows(engine: Engine, complaint_id: str) -> list[tuple[str, str, str | None]]:
    with Session(engine) as session:
        query = select(AuditRecord).where(col(AuditRecord.target) == complaint_id).order_by(col(AuditRecord.at))
        return [(row.action, row.actor, row.request_key) for row in session.execute(query).scalars()]


async def test_a_retried_filing_or_action_with_the_same_idempotency_key_is_audited_once(
    api, login, engine, cases: Cases
):
    case = await cases.submit(as_user="applicant1")
    body = {"case_id": case["case_id"], "step": "birth_certificate"}
    first = await file(api, login, as_user="hospital_clerk", key="audited-walk-in", **body)
    again = await file(api, login, as_user="hospital_clerk", key="audited-walk-in", **body)
    assert (first.status_code, again.status_code) == (201, 200), (first.text, again.text)
    complaint_id = first.json()["complaint_id"]
    assert again.json()["complaint_id"] == complaint_id

    for action, user, payload in (
        ("assign", "supervisor", {"department": "hospital", "note": "请核实"}),
        ("answer", "hospital_officer", {"answer": "已核实并致歉。"}),
        ("close", "supervisor", {"satisfied": True}),
    ):
        for attempt in range(2):  # the second is the client's retry, with the same key
            response = await act(api, login, complaint_id, action, user, key=f"{action}-1", **payload)
            assert response.status_code == 200, (action, attempt, response.text)

    assert audit_rows(engine, complaint_id) == [
        ("complaint_file", "hospital_clerk", f"{complaint_id}/hospital_clerk/audited-walk-in"),
        ("complaint_assign", "supervisor", f"{complaint_id}/supervisor/assign-1"),
        ("complaint_answer", "hospital_officer", f"{complaint_id}/hospital_officer/answer-1"),
        ("complaint_close", "supervisor", f"{complaint_id}/supervisor/close-1"),
    ]


async def test_lists_and_reads_show_each_role_only_its_complaints_oldest_due_first(
    api, login, env: WorkflowEnvironment
):
    # Idempotency keys fix the ids so that id order is the reverse of due order.
    first_key = "first"
    first_id = new_complaint_id("applicant1", first_key)
    second_key = next(k for k in (f"second-{n}" for n in range(100)) if new_complaint_id("applicant2", k) < first_id)
    first = await filed(api, login, key=first_key, department="hospital")
    await env.sleep(3 * 24 * 3600)  # three days later: a later due date whatever the weekday
    second = await filed(api, login, as_user="applicant2", key=second_key, department="tax")
    assert first["complaint_id"] == first_id and second["complaint_id"] < first_id
    assert datetime.fromisoformat(first["due_at"]) < datetime.fromisoformat(second["due_at"])
    assigned = await act(api, login, first_id, "assign", "supervisor", department="police")
    assert assigned.status_code == 200, assigned.text

    both = [first_id, second["complaint_id"]]
    assert await listed(api, login, "supervisor") == both
    assert await listed(api, login, "admin") == both
    assert await listed(api, login, "applicant1") == [first_id]
    assert await listed(api, login, "applicant2") == [second["complaint_id"]]
    # Officers see the complaints assigned to their department, not those merely about it.
    assert await listed(api, login, "police_officer") == [first_id]
    assert await listed(api, login, "hospital_officer") == []
    assert await listed(api, login, "tax_officer") == []
    assert_error(
        await api.get("/complaints", params={"department": "tax"}, headers=await login("police_officer")),
        403,
        "forbidden",
    )
    # Supervisors filter by status and department.
    assert await listed(api, login, "supervisor", status="assigned") == [first_id]
    assert await listed(api, login, "supervisor", status="accepted") == [second["complaint_id"]]
    assert await listed(api, login, "supervisor", department="tax") == [second["complaint_id"]]
    assert await listed(api, login, "supervisor", department="police") == [first_id]
    assert await listed(api, login, "supervisor", status="closed") == []
    assert_error(
        await api.get("/complaints", params={"status": "lost"}, headers=await login("supervisor")),
        422,
        "validation_error",
    )

    for user, visible in [
        ("supervisor", True),
        ("police_officer", True),
        ("applicant1", True),
        ("applicant2", False),
        ("hospital_officer", False),
        ("hospital_clerk", False),
    ]:
        response = await api.get(f"/complaints/{first_id}", headers=await login(user))
        timeline = await api.get(f"/complaints/{first_id}/timeline", headers=await login(user))
        if visible:
            assert response.status_code == timeline.status_code == 200, (user, response.text, timeline.text)
        else:
            assert_error(response, 404, "not_found")
            assert_error(timeline, 404, "not_found")
    assert_error(await api.get("/complaints"), 401, "unauthorized")


async def test_timeline_lists_every_event_from_the_workflow_history(api, login, cases: Cases):
    case = await cases.submit(as_user="applicant1")
    complaint_id = (await filed(api, login, case_id=case["case_id"], step="birth_certificate"))["complaint_id"]
    await act(api, login, complaint_id, "assign", "supervisor", department="hospital", note="请核查")
    await act(api, login, complaint_id, "answer", "hospital_officer", answer="已核查。")
    await act(api, login, complaint_id, "close", "supervisor", satisfied=True)

    response = await api.get(f"/complaints/{complaint_id}/timeline", headers=await login("applicant1"))

    assert response.status_code == 200, response.text
    timeline = response.json()
    assert (timeline["complaint_id"], timeline["case_id"]) == (complaint_id, case["case_id"])
    events = timeline["events"]
    assert [(e["type"], e["type_zh"], e["actor"]) for e in events] == [
        ("accepted", "受理", "applicant1"),
        ("assigned", "分派", "supervisor"),
        ("answered", "答复", "hospital_officer"),
        ("closed", "办结", "supervisor"),
    ]
    assert [e["seq"] for e in events] == [1, 2, 3, 4]
    moments = [datetime.fromisoformat(e["at"]) for e in events]
    assert moments == sorted(moments)
    assert events[0]["due_at"] is not None and events[0]["detail"]["step"] == "birth_certificate"
    assert events[1]["detail"] == {"note": "请核查"} and events[1]["department"] == "hospital"
    assert events[3]["detail"] == {"satisfied": True}


async def test_csv_export_has_chinese_headers_and_a_byte_order_mark(api, login, cases: Cases):
    case = await cases.submit(as_user="applicant1")
    complaint_id = (await filed(api, login, case_id=case["case_id"], step="birth_certificate"))["complaint_id"]
    await act(api, login, complaint_id, "assign", "supervisor", department="police")
    await act(api, login, complaint_id, "answer", "police_officer", answer="已处理。")
    other_id = (await filed(api, login, as_user="applicant2", department="tax"))["complaint_id"]

    response = await api.get("/complaints", headers={**await login("supervisor"), "Accept": "text/csv"})

    assert response.status_code == 200, response.text
    assert response.headers["content-type"].startswith("text/csv")
    assert response.content.startswith(b"\xef\xbb\xbf")
    rows = list(csv.reader(io.StringIO(response.content.decode("utf-8-sig"))))
    header, *body = rows
    assert header[:7] == ["投诉编号", "状态", "部门", "受理时间", "答复期限", "答复时间", "是否超期"]
    assert {"办结时间", "是否满意", "关联案件"} <= set(header)
    by_id = {row[0]: dict(zip(header, row, strict=True)) for row in body}
    assert set(by_id) == {complaint_id, other_id}
    answered = by_id[complaint_id]
    departments = load_departments()
    assert (answered["状态"], answered["部门"], answered["是否超期"]) == ("已答复", departments["police"].name_zh, "否")
    assert answered["答复时间"] and answered["关联案件"] == case["case_id"]
    waiting = by_id[other_id]
    assert (waiting["状态"], waiting["部门"], waiting["答复时间"]) == ("已受理", departments["tax"].name_zh, "")

    # An applicant's export holds only their own complaints.
    own = await api.get("/complaints", headers={**await login("applicant2"), "Accept": "text/csv"})
    assert [row[0] for row in csv.reader(io.StringIO(own.content.decode("utf-8-sig")))][1:] == [other_id]

"""The task operations officers use every day (issue 14), through the HTTP API: 退回待办,
改派, 转办, 中止/恢复, 延期 (asked by the unit, decided by a supervisor of its division),
撤回 and 不予受理. Each happy path, its refusals (wrong role, wrong unit, wrong state: 403,
404, 409 or 422 in the one error shape, with nothing written) and its effect on the
statutory clock: suspension stops it, transfer does not, extension moves it."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from sqlalchemy import func
from sqlmodel import Session, col, select
from temporalio.api.testservice.v1 import SleepRequest
from temporalio.testing import WorkflowEnvironment

from domain.workcalendar import make_calendar
from models.tables import AuditRecord, CaseEventRecord, NotificationRecord, TaskRecord
from tests.api.helpers import assert_error, birth_form, events_of, step_of, task_id

HUKOU = "hukou_registration"
FIRST = "birth_certificate"  # the hospital's step, open on acceptance
POLICE = "police_330102_officer"  # a 上城区 police officer; police_officer is their colleague


def _count(engine, table) -> int:
    with Session(engine) as session:
        return int(session.execute(select(func.count()).select_from(table)).scalar_one())


def _written(engine, case_id: str) -> tuple[int, int]:
    """What a refused operation must not add to: the audit log and the case's events."""
    with Session(engine) as session:
        events = session.execute(
            select(func.count()).select_from(CaseEventRecord).where(col(CaseEventRecord.case_id) == case_id)
        ).scalar_one()
    return _count(engine, AuditRecord), int(events)


def _aware(moment: datetime) -> datetime:
    """The read model's times (naive on SQLite) as UTC."""
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)


@pytest.fixture(scope="module")
def env(module_env: WorkflowEnvironment) -> WorkflowEnvironment:
    """The clock tests skip days: this module's cases run on a test server of their own."""
    return module_env


async def _sleep_past(env: WorkflowEnvironment, moment: datetime) -> None:
    """Skip the test server's clock an hour past ``moment``, no further."""
    request = SleepRequest()
    request.duration.FromTimedelta(moment - await env.get_current_time() + timedelta(hours=1))
    await env.client.test_service.unlock_time_skipping_with_sleep(request, timeout=timedelta(minutes=1))


def _due(case: dict[str, Any], step: str) -> datetime:
    return datetime.fromisoformat(step_of(case, step)["due_at"])


async def _claimed_hukou(cases, as_user: str = POLICE) -> dict[str, Any]:
    case = await cases.submit()
    await cases.walk_to(case, HUKOU)
    await cases.claim(case, HUKOU, as_user)
    return case


async def _ok(response) -> dict[str, Any]:
    assert response.status_code == 200, response.text
    body: dict[str, Any] = response.json()
    return body


# --- 退回待办 (unclaim) ------------------------------------------------------------------


async def test_the_assignee_unclaims_a_task_back_to_the_units_inbox(api, login, cases, engine):
    case = await _claimed_hukou(cases)
    view = await _ok(await cases.act("unclaim", case["case_id"], HUKOU, as_user=POLICE, key="u-1"))
    assert (view["status"], view["assignee"]) == ("open", None)
    # A colleague of the unit can now claim it.
    await cases.claim(case, HUKOU, "police_officer")
    (event,) = events_of(engine, case["case_id"], "unclaimed", HUKOU)
    assert event.actor == POLICE
    with Session(engine) as session:
        rows = session.exec(select(AuditRecord).where(col(AuditRecord.action) == "task_unclaim")).all()
    assert [row.actor for row in rows] == [POLICE]


async def test_a_colleague_cannot_unclaim_anothers_task_and_nothing_is_written(cases, engine):
    case = await _claimed_hukou(cases)
    before = _written(engine, case["case_id"])
    response = await cases.act("unclaim", case["case_id"], HUKOU, as_user="police_officer")
    assert_error(response, 409, "conflict")
    assert _written(engine, case["case_id"]) == before
    assert step_of(await cases.read(case["case_id"]), HUKOU)["assignee"] == POLICE


async def test_a_supervisor_of_the_division_unclaims_but_another_citys_is_404(cases):
    case = await _claimed_hukou(cases)
    ningbo = await cases.act("unclaim", case["case_id"], HUKOU, as_user="supervisor_3302")
    assert_error(ningbo, 404, "not_found")
    view = await _ok(await cases.act("unclaim", case["case_id"], HUKOU, as_user="supervisor_3301"))
    assert view["status"] == "open"


async def test_unclaiming_an_open_task_is_409(cases):
    case = await cases.submit()
    response = await cases.act("unclaim", case["case_id"], FIRST, as_user="hospital_officer")
    assert_error(response, 409, "conflict")


async def test_another_units_officer_cannot_unclaim_and_learns_nothing(cases):
    case = await _claimed_hukou(cases)
    response = await cases.act("unclaim", case["case_id"], HUKOU, as_user="police_330203_officer")
    assert_error(response, 404, "not_found")


async def test_an_applicant_cannot_unclaim(cases):
    case = await _claimed_hukou(cases)
    assert_error(await cases.act("unclaim", case["case_id"], HUKOU, as_user="applicant1"), 403, "forbidden")


# --- 改派 (reassign) ----------------------------------------------------------------------


async def test_the_assignee_reassigns_to_a_colleague_of_the_same_unit(cases, engine):
    case = await _claimed_hukou(cases)
    view = await _ok(await cases.act("reassign", case["case_id"], HUKOU, as_user=POLICE, body={"to": "police_officer"}))
    assert (view["status"], view["assignee"]) == ("claimed", "police_officer")
    (event,) = events_of(engine, case["case_id"], "reassigned", HUKOU)
    assert event.detail == {"from": POLICE, "to": "police_officer"}
    # The new assignee completes it; the former one no longer can.
    refused = await cases.act("refuse", case["case_id"], HUKOU, as_user=POLICE, body={"reason": "x"})
    assert_error(refused, 409, "conflict")


async def test_reassigning_to_another_units_officer_is_422_naming_to_and_writes_nothing(cases, engine):
    case = await _claimed_hukou(cases)
    before = _written(engine, case["case_id"])
    for colleague in ("police_330203_officer", "hospital_officer"):
        response = await cases.act("reassign", case["case_id"], HUKOU, as_user=POLICE, body={"to": colleague})
        assert_error(response, 422, "validation_error", ["to"])
    unknown = await cases.act("reassign", case["case_id"], HUKOU, as_user=POLICE, body={"to": "nobody_here"})
    assert_error(unknown, 422, "validation_error", ["to"])
    assert _written(engine, case["case_id"]) == before


async def test_reassigning_a_task_someone_else_holds_is_409(cases):
    case = await _claimed_hukou(cases)
    response = await cases.act(
        "reassign", case["case_id"], HUKOU, as_user="police_officer", body={"to": "police_officer"}
    )
    assert_error(response, 409, "conflict")


# --- 转办 (transfer) ----------------------------------------------------------------------


async def test_a_wrongly_routed_task_is_transferred_and_its_clock_keeps_running(api, env, login, cases, engine):
    case = await _claimed_hukou(cases)
    due_before = _due(await cases.read(case["case_id"]), HUKOU)
    view = await _ok(
        await cases.act(
            "transfer",
            case["case_id"],
            HUKOU,
            as_user=POLICE,
            body={"unit": "police_330106", "reason": "户籍地址属西湖区"},
            key="t-1",
        )
    )
    assert view["status"] == "open" and view["assignee"] is None
    assert view["unit"]["code"] == "police_330106" and view["unit"]["division_code"] == "330106"
    # The clock runs on: the due date is unchanged.
    assert datetime.fromisoformat(view["due_at"]) == due_before
    with Session(engine) as session:
        task = session.get(TaskRecord, task_id(case["case_id"], HUKOU))
        assert task is not None and task.unit_code == "police_330106"
    # It left the 上城区 inbox and is in the 西湖区 one; the old unit may no longer act on it.
    inbox = await api.get("/tasks", headers=await login(POLICE))
    assert task_id(case["case_id"], HUKOU) not in {item["task_id"] for item in inbox.json()["items"]}
    inbox = await api.get("/tasks", headers=await login("police_330106_officer"))
    assert task_id(case["case_id"], HUKOU) in {item["task_id"] for item in inbox.json()["items"]}
    assert_error(await cases.act("claim", case["case_id"], HUKOU, as_user=POLICE), 404, "not_found")
    (event,) = events_of(engine, case["case_id"], "transferred", HUKOU)
    assert event.detail["to_unit"] == "police_330106" and event.detail["reason"] == "户籍地址属西湖区"
    # Past the unchanged due date, the step is overdue: the transfer did not stop the clock.
    await _sleep_past(env, due_before)
    step = step_of(await cases.read(case["case_id"]), HUKOU)
    assert step["overdue"] is True and datetime.fromisoformat(step["due_at"]) == due_before
    assert events_of(engine, case["case_id"], "overdue", HUKOU)


async def test_transfer_refusals_name_the_unit_field_or_the_state(cases, engine):
    case = await _claimed_hukou(cases)
    before = _written(engine, case["case_id"])
    for unit in ("medical_security_330106", "police_330102", "no_such_unit"):
        response = await cases.act(
            "transfer", case["case_id"], HUKOU, as_user=POLICE, body={"unit": unit, "reason": "错派"}
        )
        assert_error(response, 422, "validation_error", ["unit"])
    no_reason = await cases.act("transfer", case["case_id"], HUKOU, as_user=POLICE, body={"unit": "police_330106"})
    assert_error(no_reason, 422, "validation_error", ["reason"])
    blank = await cases.act(
        "transfer", case["case_id"], HUKOU, as_user=POLICE, body={"unit": "police_330106", "reason": "   "}
    )
    assert_error(blank, 422, "validation_error", ["reason"])
    pending = await cases.act(
        "transfer",
        case["case_id"],
        "medical_insurance_enrollment",
        as_user="medical_security_officer",
        body={"unit": "medical_security_330106", "reason": "错派"},
    )
    assert_error(pending, 409, "conflict")
    assert _written(engine, case["case_id"]) == before


# --- 中止 and 恢复 (suspend, resume) -----------------------------------------------------------


async def test_a_suspended_step_stops_its_clock_and_resumes_with_the_time_it_had_left(env, cases, engine, api_settings):
    case = await _claimed_hukou(cases)
    due_before = _due(await cases.read(case["case_id"]), HUKOU)
    view = await _ok(
        await cases.act(
            "suspend",
            case["case_id"],
            HUKOU,
            as_user=POLICE,
            body={"reason": "需进行亲子鉴定", "materials": ["亲子鉴定报告"]},
        )
    )
    assert view["status"] == "suspended" and view["status_zh"] == "中止办理"
    assert view["suspension"]["reason"] == "需进行亲子鉴定" and view["suspension"]["materials"] == ["亲子鉴定报告"]
    # Officers cannot complete a suspended step.
    completing = await cases.act("complete", case["case_id"], HUKOU, as_user=POLICE, body={"result": {}})
    assert_error(completing, 409, "conflict")
    # Its due date passes: the step is not overdue, because its clock stood still.
    await _sleep_past(env, due_before)
    step = step_of(await cases.read(case["case_id"]), HUKOU)
    assert step["overdue"] is False and not events_of(engine, case["case_id"], "overdue", HUKOU)
    resumed = await _ok(await cases.act("resume", case["case_id"], HUKOU, as_user=POLICE))
    assert resumed["status"] == "claimed" and resumed["assignee"] == POLICE and resumed["suspension"] is None
    # The working time it had left when suspended starts again on resumption.
    suspended_event, resumed_event = events_of(engine, case["case_id"], step=HUKOU)[-2:]
    assert (suspended_event.type, resumed_event.type) == ("suspended", "resumed")
    calendar = make_calendar(api_settings.calendar_file)
    left = calendar.working_seconds_between(_aware(suspended_event.at), due_before)
    assert left > 0
    expected = calendar.add_working_seconds(_aware(resumed_event.at), left).due_at
    # (to the second: the pause is measured when the clock stops, a moment after the event)
    due_after = datetime.fromisoformat(resumed["due_at"])
    assert abs(due_after - expected) < timedelta(seconds=1) and due_after > due_before


async def test_only_the_assignee_suspends_and_only_a_suspended_step_resumes(cases, engine):
    case = await _claimed_hukou(cases)
    before = _written(engine, case["case_id"])
    other = await cases.act("suspend", case["case_id"], HUKOU, as_user="police_officer", body={"reason": "鉴定"})
    assert_error(other, 409, "conflict")
    elsewhere = await cases.act(
        "suspend", case["case_id"], HUKOU, as_user="police_330203_officer", body={"reason": "鉴定"}
    )
    assert_error(elsewhere, 404, "not_found")
    applicant = await cases.act("suspend", case["case_id"], HUKOU, as_user="applicant1", body={"reason": "鉴定"})
    assert_error(applicant, 403, "forbidden")
    assert_error(await cases.act("resume", case["case_id"], HUKOU, as_user=POLICE), 409, "conflict")
    no_reason = await cases.act("suspend", case["case_id"], HUKOU, as_user=POLICE, body={"reason": ""})
    assert_error(no_reason, 422, "validation_error", ["reason"])
    assert _written(engine, case["case_id"]) == before


# --- 延期 (extension) -------------------------------------------------------------------------


async def test_an_approved_extension_moves_the_due_date_by_its_working_days(cases, engine, api_settings):
    case = await _claimed_hukou(cases)
    due_before = _due(await cases.read(case["case_id"]), HUKOU)
    asked = await _ok(
        await cases.act(
            "extension", case["case_id"], HUKOU, as_user=POLICE, body={"working_days": 3, "reason": "需外省协查"}
        )
    )
    assert asked["extension_request"]["working_days"] == 3
    assert datetime.fromisoformat(asked["due_at"]) == due_before  # asking alone moves nothing
    # The unit's officer cannot approve its own request; a supervisor of another city cannot see it.
    assert_error(await cases.act("extension/approve", case["case_id"], HUKOU, as_user=POLICE), 403, "forbidden")
    assert_error(
        await cases.act("extension/approve", case["case_id"], HUKOU, as_user="supervisor_3302"), 404, "not_found"
    )
    approved = await _ok(await cases.act("extension/approve", case["case_id"], HUKOU, as_user="supervisor_3301"))
    expected = make_calendar(api_settings.calendar_file).add_working_days(due_before - timedelta(seconds=1), 3)
    assert datetime.fromisoformat(approved["due_at"]) == expected.due_at > due_before
    assert approved["extension_request"] is None and approved["extended_working_days"] == 3
    (event,) = events_of(engine, case["case_id"], "extended", HUKOU)
    assert event.actor == "supervisor_3301" and event.detail["reason"] == "需外省协查"
    # Decided once: a second decision finds nothing pending.
    again = await cases.act("extension/reject", case["case_id"], HUKOU, as_user="supervisor", body={"reason": "x"})
    assert_error(again, 409, "conflict")


async def test_a_rejected_extension_leaves_the_due_date(cases, engine):
    case = await _claimed_hukou(cases)
    due_before = _due(await cases.read(case["case_id"]), HUKOU)
    await _ok(
        await cases.act(
            "extension", case["case_id"], HUKOU, as_user=POLICE, body={"working_days": 2, "reason": "材料复杂"}
        )
    )
    no_reason = await cases.act("extension/reject", case["case_id"], HUKOU, as_user="supervisor", body={"reason": ""})
    assert_error(no_reason, 422, "validation_error", ["reason"])
    rejected = await _ok(
        await cases.act(
            "extension/reject", case["case_id"], HUKOU, as_user="supervisor", body={"reason": "时限内可办结"}
        )
    )
    assert datetime.fromisoformat(rejected["due_at"]) == due_before and rejected["extension_request"] is None
    assert rejected["extended_working_days"] == 0
    (event,) = events_of(engine, case["case_id"], "extension_rejected", HUKOU)
    assert event.detail["reason"] == "时限内可办结"


async def test_extension_requests_are_refused_without_writing(cases, engine):
    case = await _claimed_hukou(cases)
    before = _written(engine, case["case_id"])
    for body, field in (
        ({"working_days": 0, "reason": "x"}, "working_days"),
        ({"working_days": 31, "reason": "x"}, "working_days"),
    ):
        assert_error(
            await cases.act("extension", case["case_id"], HUKOU, as_user=POLICE, body=body),
            422,
            "validation_error",
            [field],
        )
    other = await cases.act(
        "extension", case["case_id"], HUKOU, as_user="police_officer", body={"working_days": 2, "reason": "x"}
    )
    assert_error(other, 409, "conflict")
    nothing = await cases.act("extension/approve", case["case_id"], HUKOU, as_user="supervisor")
    assert_error(nothing, 409, "conflict")
    assert _written(engine, case["case_id"]) == before


# --- 撤回 and 不予受理 (withdraw, decline) -------------------------------------------------------


async def _end(api, login, how: str, case_id: str, as_user: str, reason: str = "申请人不再办理"):
    return await api.post(f"/cases/{case_id}/{how}", json={"reason": reason}, headers=await login(as_user))


async def test_the_applicant_withdraws_and_open_steps_are_cancelled(api, login, cases, engine):
    case = await cases.submit()
    await cases.complete(case, FIRST)
    response = await _end(api, login, "withdraw", case["case_id"], "applicant1", "已在外省办理")
    body = await _ok(response)
    assert body["status"] == "withdrawn" and body["status_zh"] == "已撤回"
    assert body["ended_reason"] == "已在外省办理"
    statuses = {step["step"]: step["status"] for step in body["steps"]}
    assert statuses[FIRST] == "done" and statuses[HUKOU] == "cancelled"
    assert "open" not in statuses.values() and "pending" not in statuses.values()
    (event,) = events_of(engine, case["case_id"], "withdrawn")
    assert event.actor == "applicant1" and event.detail == {"reason": "已在外省办理"}
    # The police's inbox no longer holds the task.
    inbox = await api.get("/tasks", headers=await login(POLICE))
    assert task_id(case["case_id"], HUKOU) not in {item["task_id"] for item in inbox.json()["items"]}
    # Nothing more can happen to it.
    assert_error(await cases.act("claim", case["case_id"], HUKOU, as_user=POLICE), 409, "conflict")
    assert_error(await _end(api, login, "withdraw", case["case_id"], "applicant1"), 409, "conflict")
    # The newborn may be applied for again.
    again = await cases.post(form=case["_form"])
    assert again.status_code == 201, again.text


async def test_withdrawal_refusals(api, login, cases, engine):
    case = await cases.submit()
    before = _written(engine, case["case_id"])
    assert_error(await _end(api, login, "withdraw", case["case_id"], "hospital_officer"), 403, "forbidden")
    assert_error(await _end(api, login, "withdraw", case["case_id"], "applicant2"), 404, "not_found")
    blank = await _end(api, login, "withdraw", case["case_id"], "applicant1", reason="  ")
    assert_error(blank, 422, "validation_error", ["reason"])
    assert _written(engine, case["case_id"]) == before
    await cases.finish(case)
    assert_error(await _end(api, login, "withdraw", case["case_id"], "applicant1"), 409, "conflict")


async def test_the_accepting_clerk_declines_a_window_case_and_the_applicant_is_told_why(api, login, cases, engine):
    form = birth_form()
    case = await cases.submit(as_user="hospital_clerk", form=form)
    response = await _end(api, login, "decline", case["case_id"], "hospital_clerk", "出生医学证明信息与户籍不符")
    body = await _ok(response)
    assert body["status"] == "declined" and body["status_zh"] == "不予受理"
    assert all(step["status"] == "cancelled" for step in body["steps"])
    with Session(engine) as session:
        notices = session.exec(
            select(NotificationRecord).where(col(NotificationRecord.case_id) == case["case_id"])
        ).all()
    texts = [row.message_zh for row in notices]
    assert any("不予受理" in text and "出生医学证明信息与户籍不符" in text for text in texts)
    with Session(engine) as session:
        rows = session.exec(select(AuditRecord).where(col(AuditRecord.action) == "case_decline")).all()
    assert [row.target for row in rows] == [case["case_id"]]


async def test_decline_refusals_wrong_role_and_a_case_already_taken_up(api, login, cases, engine):
    case = await cases.submit(as_user="hospital_clerk")
    before = _written(engine, case["case_id"])
    # Only the accepting window declines: not an officer, not another county's clerk, not the applicant.
    assert_error(await _end(api, login, "decline", case["case_id"], "hospital_officer"), 403, "forbidden")
    assert_error(await _end(api, login, "decline", case["case_id"], "hospital_330203_clerk"), 404, "not_found")
    assert _written(engine, case["case_id"]) == before
    await cases.claim(case, FIRST)
    taken_up = await _end(api, login, "decline", case["case_id"], "hospital_clerk")
    assert_error(taken_up, 409, "conflict")
    # Withdrawal is still open to the accepting clerk.
    withdrawn = await _ok(await _end(api, login, "withdraw", case["case_id"], "hospital_clerk"))
    assert withdrawn["status"] == "withdrawn"


async def test_the_timeline_names_each_events_unit_before_and_after_a_transfer(api, login, cases):
    case = await _claimed_hukou(cases)
    await _ok(
        await cases.act(
            "transfer", case["case_id"], HUKOU, as_user=POLICE, body={"unit": "police_330106", "reason": "户籍属西湖区"}
        )
    )
    await cases.claim(case, HUKOU, "police_330106_officer")
    response = await api.get(f"/cases/{case['case_id']}/timeline", headers=await login("supervisor"))
    assert response.status_code == 200, response.text
    hukou = [
        (event["type"], (event["unit"] or {}).get("code"))
        for event in response.json()["events"]
        if event["step"] == HUKOU
    ]
    assert hukou == [
        ("opened", "police_330102"),
        ("claimed", "police_330102"),
        ("transferred", "police_330102"),
        ("claimed", "police_330106"),
    ]
    (transferred,) = [event for event in response.json()["events"] if event["type"] == "transferred"]
    assert transferred["type_zh"] == "转办" and transferred["detail"]["to_unit_zh"] == "杭州市西湖区公安分局"

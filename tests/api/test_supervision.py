"""Supervision: timeliness aggregates on hand-built cases with known answers (across a
weekend, the 2026 National Day holiday and a 补正 pause), overdue and warning lists,
manual 督办 and 催办, acknowledgements, verification against history, CSV exports."""

from __future__ import annotations

import csv
import io
from datetime import UTC, datetime, timedelta

import pytest
from sqlmodel import Session, select

from models.case import EventType
from models.tables import CaseRecord, TaskRecord
from tests.api.helpers import CALENDAR, assert_error, project_single_step_case, shanghai_at


@pytest.fixture
def known_cases(engine):
    # A: opened the day before National Day, done on the first working day after it:
    #    9 h (Sep 30) + 0 (Oct 1–7 off) + 10 h (Oct 8) = 19 h, on time (due 24:00 Oct 8).
    project_single_step_case(
        engine,
        "ot-a",
        "birth_certificate",
        "hospital",
        [(EventType.OPENED, "2026-09-30T15:00", "2026-10-09T00:00"), (EventType.COMPLETED, "2026-10-08T10:00", None)],
    )
    # B: opened Fri Oct 9, due 24:00 Sat Oct 10 (a make-up working day), done Mon 09:00:
    #    15 h + 24 h + 0 (Sun) + 9 h = 48 h, late.
    project_single_step_case(
        engine,
        "ot-b",
        "hukou_registration",
        "police",
        [(EventType.OPENED, "2026-10-09T09:00", "2026-10-11T00:00"), (EventType.COMPLETED, "2026-10-12T09:00", None)],
    )
    # C: opened Mon Nov 16 10:00, returned for 补正 at 14:00, supplemented Thu 10:00 with the
    #    34 h left (due Fri 20:00), done Fri 12:00: 98 h elapsed − 68 h paused = 30 h, on time.
    project_single_step_case(
        engine,
        "ot-c",
        "vaccination_certificate",
        "hospital",
        [
            (EventType.OPENED, "2026-11-16T10:00", "2026-11-18T00:00"),
            (EventType.RETURNED, "2026-11-16T14:00", None),
            (EventType.SUPPLEMENTED, "2026-11-19T10:00", "2026-11-20T20:00"),
            (EventType.COMPLETED, "2026-11-20T12:00", None),
        ],
    )
    # D: still open, due 24:00 Tue Nov 24: overdue now.
    project_single_step_case(
        engine, "ot-d", "birth_certificate", "hospital", [(EventType.OPENED, "2026-11-23T09:00", "2026-11-25T00:00")]
    )


def test_hand_built_cases_have_the_working_hours_the_calendar_gives(engine, known_cases):
    with Session(engine) as session:
        hours = {t.case_id: (t.working_hours_used, t.on_time, t.completed_on) for t in session.exec(select(TaskRecord))}
    assert hours == {
        "ot-a": (19.0, True, "2026-10-08"),
        "ot-b": (48.0, False, "2026-10-12"),
        "ot-c": (30.0, True, "2026-11-20"),
        "ot-d": (None, None, None),
    }


async def test_timeliness_by_department_counts_rates_percentiles_and_open_overdue(api, login, known_cases):
    response = await api.get("/supervision/timeliness?group_by=department", headers=await login("supervisor"))
    assert response.status_code == 200, response.text
    rows = {row["department"]: row for row in response.json()["rows"]}
    assert rows["hospital"] == {
        "department": "hospital",
        "completed": 2,
        "on_time": 2,
        "overdue": 0,
        "on_time_rate": 1.0,
        "median_working_hours": 19.0,
        "p90_working_hours": 30.0,
        "open_overdue": 1,
    }
    assert rows["police"] == {
        "department": "police",
        "completed": 1,
        "on_time": 0,
        "overdue": 1,
        "on_time_rate": 0.0,
        "median_working_hours": 48.0,
        "p90_working_hours": 48.0,
        "open_overdue": 0,
    }


async def test_timeliness_by_day_and_within_a_period(api, login, known_cases):
    headers = await login("supervisor")
    by_day = (await api.get("/supervision/timeliness?group_by=day", headers=headers)).json()["rows"]
    assert [(r["completed_on"], r["completed"], r["open_overdue"]) for r in by_day] == [
        ("2026-10-08", 1, 0),
        ("2026-10-12", 1, 0),
        ("2026-11-20", 1, 0),
        ("2026-11-25", 0, 1),
    ]
    october = await api.get("/supervision/timeliness?group_by=thing&from=2026-10-01&to=2026-10-31", headers=headers)
    (row,) = october.json()["rows"]
    assert (row["thing"], row["completed"], row["on_time"], row["overdue"]) == ("birth", 2, 1, 1)


async def test_timeliness_by_step_and_filtered_by_department(api, login, known_cases):
    headers = await login("supervisor")
    rows = (await api.get("/supervision/timeliness?group_by=step&department=hospital", headers=headers)).json()["rows"]
    assert {(r["thing"], r["step"], r["completed"], r["open_overdue"]) for r in rows} == {
        ("birth", "birth_certificate", 1, 1),
        ("birth", "vaccination_certificate", 1, 0),
    }


async def test_timeliness_exports_csv_with_chinese_headers(api, login, known_cases):
    response = await api.get(
        "/supervision/timeliness?group_by=department", headers={**await login("supervisor"), "Accept": "text/csv"}
    )
    assert response.headers["content-type"].startswith("text/csv")
    table = list(csv.reader(io.StringIO(response.text.lstrip("\ufeff"))))
    assert table[0][:4] == ["部门", "办结数", "按时办结数", "超期办结数"]
    assert table[2][:4] == ["police", "1", "0", "1"]


async def test_overdue_list_has_open_late_steps_oldest_first_with_working_hours_late(api, login, known_cases):
    body = (await api.get("/supervision/overdue", headers=await login("supervisor"))).json()
    assert [item["case_id"] for item in body["items"]] == ["ot-d"]
    item = body["items"][0]
    late = CALENDAR.working_seconds_between(shanghai_at("2026-11-25T00:00"), datetime.now(UTC)) / 3600
    assert item["department"] == "hospital"
    assert abs(item["overdue_working_hours"] - late) < 0.05


async def test_warning_list_has_steps_in_their_last_working_day(api, login, engine, known_cases):
    now = datetime.now(UTC)
    with Session(engine) as session:
        session.add(
            TaskRecord(
                task_id="ot-e:birth_certificate",
                case_id="ot-e",
                thing="birth",
                step="birth_certificate",
                department="hospital",
                status="claimed",
                assignee="hospital_officer",
                due_at=now + timedelta(hours=5),
                warning_at=now - timedelta(hours=1),
            )
        )
        session.commit()
    body = (await api.get("/supervision/warnings", headers=await login("supervisor"))).json()
    assert [(i["case_id"], i["assignee"]) for i in body["items"]] == [("ot-e", "hospital_officer")]


@pytest.mark.parametrize(
    "path", ["timeliness", "overdue", "warnings", "notices", "verify?case_id=x", "ratings", "report"]
)
async def test_only_supervisors_and_admins_reach_supervision(api, login, path):
    for user in ("applicant1", "hospital_officer", "hospital_clerk"):
        assert_error(await api.get(f"/supervision/{path}", headers=await login(user)), 403, "forbidden")
    assert (await api.get(f"/supervision/{path}", headers=await login("admin"))).status_code in {200, 404}


async def test_manual_notice_reaches_the_department_until_acknowledged(api, login, cases):
    case = await cases.submit()
    supervisor = await login("supervisor")
    issued = await api.post(
        "/supervision/notices",
        json={"case_id": case["case_id"], "step": "birth_certificate", "message": "请加快办理"},
        headers=supervisor,
    )
    assert issued.status_code == 201, issued.text

    hospital = await login("hospital_officer")
    notices = (await api.get("/notices", headers=hospital)).json()["items"]
    assert [(n["case_id"], n["origin"], n["message_zh"]) for n in notices] == [
        (case["case_id"], "manual", "请加快办理")
    ]
    assert (await api.get("/notices", headers=await login("police_officer"))).json()["items"] == []
    unanswered = await api.get("/supervision/notices?acknowledged=false", headers=supervisor)
    assert [n["notice_id"] for n in unanswered.json()["items"]] == [notices[0]["notice_id"]]

    notice_id = notices[0]["notice_id"]
    assert_error(
        await api.post(f"/notices/{notice_id}/ack", json={"reply": "好"}, headers=await login("police_officer")),
        403,
        "forbidden",
    )
    acked = await api.post(f"/notices/{notice_id}/ack", json={"reply": "已加派人手"}, headers=hospital)
    assert acked.status_code == 200 and acked.json()["reply"] == "已加派人手"
    assert_error(await api.post(f"/notices/{notice_id}/ack", json={"reply": "再次"}, headers=hospital), 409, "conflict")
    assert (await api.get("/notices", headers=hospital)).json()["items"] == []
    assert (await api.get("/supervision/notices?acknowledged=false", headers=supervisor)).json()["items"] == []

    timeline = (await api.get(f"/cases/{case['case_id']}/timeline", headers=supervisor)).json()
    assert [e["actor"] for e in timeline["events"] if e["type"] == "supervision_notice"] == ["supervisor"]


async def test_urge_goes_to_the_assignee_once_the_task_is_claimed(api, login, cases, engine):
    case = await cases.submit()
    supervisor = await login("supervisor")
    body = {"case_id": case["case_id"], "step": "birth_certificate", "message": "今日内办结"}
    assert_error(await api.post("/supervision/urges", json=body, headers=supervisor), 409, "conflict")
    await cases.claim(case, "birth_certificate")
    assert (await api.post("/supervision/urges", json=body, headers=supervisor)).status_code == 201
    inbox = (await api.get("/notifications", headers=await login("hospital_officer"))).json()
    assert [n["kind"] for n in inbox] == ["urge"]
    assert_error(await api.post("/supervision/urges", json=body, headers=await login("admin")), 403, "forbidden")


async def test_verify_agrees_with_history_and_catches_a_tampered_read_model(api, login, cases, engine):
    case = await cases.submit(channel="hospital")
    await cases.complete(case, "birth_certificate")
    supervisor = await login("supervisor")
    verdict = (await api.get(f"/supervision/verify?case_id={case['case_id']}", headers=supervisor)).json()
    assert verdict == {"case_id": case["case_id"], "agrees": True, "differences": []}

    with Session(engine) as session:
        task = session.get(TaskRecord, f"{case['case_id']}:birth_certificate")
        assert task is not None and task.on_time is True
        task.on_time = False
        session.add(task)
        session.commit()
    verdict = (await api.get(f"/supervision/verify?case_id={case['case_id']}", headers=supervisor)).json()
    assert verdict["agrees"] is False
    assert [(d["step"], d["field"], d["history"], d["read_model"]) for d in verdict["differences"]] == [
        ("birth_certificate", "on_time", True, False)
    ]


async def test_applicant_rates_a_delivered_case_and_supervisors_see_the_aggregates(api, login, cases, engine):
    case = await cases.submit(channel="hospital")
    applicant = await login("applicant1")
    body = {"score": 5, "comment": "很方便"}
    assert_error(await api.post(f"/cases/{case['case_id']}/rating", json=body, headers=applicant), 409, "conflict")
    await cases.finish(case)
    rated = await api.post(f"/cases/{case['case_id']}/rating", json=body, headers=applicant)
    assert rated.status_code == 201, rated.text
    step_rating = {"score": 1, "step": "hukou_registration"}
    assert (await api.post(f"/cases/{case['case_id']}/rating", json=step_rating, headers=applicant)).status_code == 201
    assert_error(
        await api.post(f"/cases/{case['case_id']}/rating", json={"score": 6}, headers=applicant),
        422,
        "validation_error",
        ["score"],
    )
    assert_error(
        await api.post(f"/cases/{case['case_id']}/rating", json=body, headers=await login("applicant2")),
        404,
        "not_found",
    )

    # An earlier delivered case whose rating period ended without a rating.
    with Session(engine) as session:
        session.add(
            CaseRecord(
                case_id="ot-unrated",
                thing="birth",
                catalogue_version=1,
                channel="online",
                status="completed",
                submitted_by="applicant2",
                submitted_at=datetime(2026, 10, 12, tzinfo=UTC),
                rating_closes_at=datetime(2026, 10, 20, tzinfo=UTC),
            )
        )
        session.commit()

    supervisor = await login("supervisor")
    by_thing = (await api.get("/supervision/ratings?group_by=thing", headers=supervisor)).json()["rows"]
    assert by_thing == [
        {
            "thing": "birth",
            "rated": 1,
            "average_score": 5.0,
            "low": 0,
            "not_rated": 1,
            "score_1": 0,
            "score_2": 0,
            "score_3": 0,
            "score_4": 0,
            "score_5": 1,
        }
    ]
    by_department = (await api.get("/supervision/ratings?group_by=department", headers=supervisor)).json()["rows"]
    assert [(r["department"], r["rated"], r["low"]) for r in by_department] == [("police", 1, 1)]
    inbox = (await api.get("/tasks?department=supervision", headers=supervisor)).json()["items"]
    assert [task["step"] for task in inbox] == ["follow_up_1"]
    table = await api.get("/supervision/ratings", headers={**supervisor, "Accept": "text/csv"})
    assert table.text.lstrip("\ufeff").startswith("事项,评价数,平均分,非常满意")


async def test_check_items_report_per_sub_item_in_json_and_printable_html(api, login, cases, api_settings):
    case = await cases.submit(channel="hospital")
    await cases.claim(case, "birth_certificate")
    refused = await cases.act(
        "refuse", case["case_id"], "birth_certificate", as_user="hospital_officer", body={"reason": "材料不符"}
    )
    assert refused.status_code == 200
    supervisor = await login("supervisor")
    # The shared test server's clock may have been moved ahead by earlier tests: ask for a wide period.
    period = "from=2026-01-01&to=2030-12-31"
    report = (await api.get(f"/supervision/report?{period}", headers=supervisor)).json()
    birth = next(item for item in report["sub_items"] if item["thing"] == "birth")
    items = {item["code"]: item for item in birth["items"]}
    assert set(items) == {
        "guide_complete",
        "flowchart_present",
        "data_sharing_coverage",
        "joint_handling",
        "time_limits_met",
        "complaints_on_time",
        "follow_ups_on_time",
        "archives_complete",
    }
    assert items["guide_complete"]["passed"] is True and items["flowchart_present"]["passed"] is True
    assert items["archives_complete"]["value"] == 1.0  # the refused case was archived at once
    (api_settings.archive_dir / case["case_id"] / "timeline.json").unlink()
    report = (await api.get(f"/supervision/report?{period}", headers=supervisor)).json()
    birth = next(item for item in report["sub_items"] if item["thing"] == "birth")
    archives = next(item for item in birth["items"] if item["code"] == "archives_complete")
    assert archives["passed"] is False and archives["value"] == 0.0

    page = await api.get(f"/supervision/report?{period}", headers={**supervisor, "Accept": "text/html"})
    assert page.headers["content-type"].startswith("text/html")
    assert "一件事检查事项报告" in page.text and "档案完整、规范" in page.text and "不符合" in page.text
    assert_error(await api.get("/supervision/report", headers=await login("hospital_officer")), 403, "forbidden")


@pytest.mark.parametrize(
    ("path", "first_headers"),
    [
        ("/supervision/overdue", ["任务编号", "案件编号", "事项", "环节", "部门", "经办人", "办理期限"]),
        ("/supervision/warnings", ["任务编号", "案件编号", "事项", "环节", "部门", "经办人", "办理期限"]),
        ("/supervision/notices", ["督办编号", "案件编号", "环节", "部门", "来源", "督办内容", "督办时间"]),
        ("/supervision/timeliness?group_by=step", ["事项", "环节", "办结数", "按时办结数", "超期办结数"]),
    ],
)
async def test_every_supervision_list_exports_csv_with_chinese_headers(api, login, known_cases, path, first_headers):
    response = await api.get(path, headers={**await login("supervisor"), "Accept": "text/csv"})
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/csv") and response.content.startswith(b"\xef\xbb\xbf")
    header, *rows = list(csv.reader(io.StringIO(response.content.decode("utf-8-sig"))))
    assert header[: len(first_headers)] == first_headers
    if path == "/supervision/overdue":
        assert [row[1] for row in rows] == ["ot-d"]
        assert rows[0][6] == "2026-11-25 00:00"  # Beijing time


async def test_a_manual_notice_and_its_acknowledgement_each_change_the_departments_inbox_etag(api, login, cases):
    case = await cases.submit()
    hospital = await login("hospital_officer")

    async def inbox_etag() -> str:
        response = await api.get("/tasks", headers=hospital)
        assert response.status_code == 200
        return response.headers["etag"]

    before = await inbox_etag()
    issued = await api.post(
        "/supervision/notices",
        json={"case_id": case["case_id"], "step": "birth_certificate", "message": "请加快办理"},
        headers=await login("supervisor"),
    )
    assert issued.status_code == 201, issued.text
    with_notice = await inbox_etag()
    [notice] = (await api.get("/notices", headers=hospital)).json()["items"]
    acked = await api.post(f"/notices/{notice['notice_id']}/ack", json={"reply": "已加派人手"}, headers=hospital)
    assert acked.status_code == 200, acked.text

    # The 督办 badge appears, then goes: a console following the feed sees both.
    assert len({before, with_notice, await inbox_etag()}) == 3

"""Supervision scoped to the supervisor's division (行政区划): a supervisor belongs to a division
and sees its whole subtree — the province supervisor everything, 杭州's supervisor (330100) its
counties, 宁波's (330200) theirs — in the timeliness figures (read from the rollup, per division),
``group_by=division`` (a row per county, rolled up to its city and the province), the overdue
and warning lists, 督办, CSV exports, the check-items report, case reads and lists (another
division's case is 404) and the console."""

from __future__ import annotations

import csv
import io
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from sqlalchemy import update
from sqlmodel import Session, col

from models.case import EventType
from models.tables import TaskRecord
from tests.api.console_client import console_users
from tests.api.helpers import assert_error, birth_form, project_single_step_case

SHANGCHENG = "330102"  # 杭州市上城区
XIHU = "330106"  # 杭州市西湖区
HAISHU = "330203"  # 宁波市海曙区
EVERY_DAY = "from=2000-01-01&to=2099-12-31"


def _form_in(county: str) -> dict[str, Any]:
    """A birth application whose every step is routed to ``county``: born and registered there."""
    form = birth_form()
    form["hukou"]["division_code"] = county
    form["newborn"]["birthplace_division_code"] = county
    return form


async def _case_in(cases, county: str, finished: tuple[str, ...]) -> dict[str, Any]:
    """A case in ``county`` whose hospital steps ``finished`` are done by that county's hospital."""
    case = await cases.submit(form=_form_in(county))
    officer = "hospital_officer" if county == SHANGCHENG else f"hospital_{county}_officer"
    for step in finished:
        await cases.complete(case, step, as_user=officer)
    return case


async def _timeliness(api, login, user: str, query: str = "") -> list[dict[str, Any]]:
    response = await api.get(f"/supervision/timeliness?{EVERY_DAY}&{query}", headers=await login(user))
    assert response.status_code == 200, response.text
    rows: list[dict[str, Any]] = response.json()["rows"]
    return rows


def _completed(rows: list[dict[str, Any]], key: str) -> dict[str, int]:
    return {row[key]: row["completed"] for row in rows if row["completed"]}


async def test_hangzhou_supervisor_figures_include_shangcheng_and_exclude_ningbo(api, login, cases):
    # One step done in 上城区, two in 海曙区: each supervisor's count tells whose steps it holds.
    await _case_in(cases, SHANGCHENG, ("birth_certificate",))
    await _case_in(cases, HAISHU, ("birth_certificate", "vaccination_certificate"))

    hangzhou = await _timeliness(api, login, "supervisor_3301")
    ningbo = await _timeliness(api, login, "supervisor_3302")
    province = await _timeliness(api, login, "supervisor")

    assert _completed(hangzhou, "department") == {"hospital": 1}
    assert _completed(ningbo, "department") == {"hospital": 2}
    assert _completed(province, "department") == {"hospital": 3}
    # By step too: 杭州 has no vaccination certificate done, 宁波 has one.
    by_step = _completed(await _timeliness(api, login, "supervisor_3301", "group_by=step"), "step")
    assert by_step == {"birth_certificate": 1}
    by_step = _completed(await _timeliness(api, login, "supervisor_3302", "group_by=step"), "step")
    assert by_step == {"birth_certificate": 1, "vaccination_certificate": 1}


async def test_group_by_division_rows_carry_division_code_and_roll_up_to_the_city(api, login, cases):
    await _case_in(cases, SHANGCHENG, ("birth_certificate",))
    await _case_in(cases, XIHU, ("birth_certificate", "vaccination_certificate"))
    await _case_in(cases, HAISHU, ("birth_certificate",))

    rows = await _timeliness(api, login, "supervisor_3301", "group_by=division")
    assert [(r["division_code"], r["division_name_zh"], r["level"], r["completed"]) for r in rows] == [
        ("330100", "杭州市", "city", 3),  # 上城区's one and 西湖区's two
        (SHANGCHENG, "上城区", "county", 1),
        (XIHU, "西湖区", "county", 2),
    ]
    # The province supervisor: every county, each city above them, and the province.
    rows = await _timeliness(api, login, "supervisor", "group_by=division")
    assert [(r["division_code"], r["level"], r["completed"]) for r in rows] == [
        ("330000", "province", 4),
        ("330100", "city", 3),
        (SHANGCHENG, "county", 1),
        (XIHU, "county", 2),
        ("330200", "city", 1),
        (HAISHU, "county", 1),
    ]
    hangzhou = next(row for row in rows if row["division_code"] == "330100")
    assert hangzhou["on_time"] + hangzhou["overdue"] == 3 and hangzhou["median_working_hours"] is not None
    # 宁波's supervisor: its city and county only.
    rows = await _timeliness(api, login, "supervisor_3302", "group_by=division")
    assert [(r["division_code"], r["completed"]) for r in rows] == [("330200", 1), (HAISHU, 1)]

    # The same grouping as CSV, with the division's code, name and level.
    response = await api.get(
        f"/supervision/timeliness?group_by=division&{EVERY_DAY}",
        headers={**await login("supervisor_3301"), "Accept": "text/csv"},
    )
    assert response.status_code == 200 and response.headers["content-type"].startswith("text/csv")
    table = list(csv.reader(io.StringIO(response.content.decode("utf-8-sig"))))
    assert table[0][:4] == ["行政区划代码", "行政区划", "层级", "办结数"]
    assert [line[:4] for line in table[1:]] == [
        ["330100", "杭州市", "city", "3"],
        [SHANGCHENG, "上城区", "county", "1"],
        [XIHU, "西湖区", "county", "2"],
    ]


async def test_supervisor_reads_another_city_case_as_404(api, login, cases):
    hangzhou = await cases.submit(form=_form_in(SHANGCHENG))
    ningbo = await cases.submit(form=_form_in(HAISHU))
    hangzhou_supervisor = await login("supervisor_3301")

    assert (await api.get(f"/cases/{hangzhou['case_id']}", headers=hangzhou_supervisor)).status_code == 200
    assert_error(await api.get(f"/cases/{ningbo['case_id']}", headers=hangzhou_supervisor), 404, "not_found")
    assert_error(
        await api.get(f"/supervision/verify?case_id={ningbo['case_id']}", headers=hangzhou_supervisor),
        404,
        "not_found",
    )
    notice = {"case_id": ningbo["case_id"], "step": "birth_certificate", "message": "请加快办理"}
    assert_error(await api.post("/supervision/notices", json=notice, headers=hangzhou_supervisor), 404, "not_found")
    listed = (await api.get("/cases", headers=hangzhou_supervisor)).json()["items"]
    assert [item["case_id"] for item in listed] == [hangzhou["case_id"]]

    # 宁波's supervisor the other way round; the province supervisor both.
    ningbo_supervisor = await login("supervisor_3302")
    assert_error(await api.get(f"/cases/{hangzhou['case_id']}", headers=ningbo_supervisor), 404, "not_found")
    assert (await api.get(f"/cases/{ningbo['case_id']}", headers=ningbo_supervisor)).status_code == 200
    listed = (await api.get("/cases", headers=await login("supervisor"))).json()["items"]
    assert {item["case_id"] for item in listed} == {hangzhou["case_id"], ningbo["case_id"]}

    # The console: the case page is not found, and the search finds only the division's cases.
    async with console_users(api) as browser:
        console = await browser("supervisor_3301")
        other = await console.get(f"/dashboard/cases/{ningbo['case_id']}")
        own = await console.get(f"/dashboard/cases/{hangzhou['case_id']}")
        found = await console.get("/dashboard/cases", no=hangzhou["case_no"])
        not_found = await console.get("/dashboard/cases", no=ningbo["case_no"])
    assert other.status == 404 and own.status == 200
    assert f"/dashboard/cases/{hangzhou['case_id']}" in found.html
    assert f"/dashboard/cases/{ningbo['case_id']}" not in not_found.html


async def test_supervisors_notices_list_only_their_divisions_steps(api, login, cases):
    hangzhou = await cases.submit(form=_form_in(SHANGCHENG))
    ningbo = await cases.submit(form=_form_in(HAISHU))
    province = await login("supervisor")
    for case in (hangzhou, ningbo):
        issued = await api.post(
            "/supervision/notices",
            json={"case_id": case["case_id"], "step": "birth_certificate", "message": "请加快办理"},
            headers=province,
        )
        assert issued.status_code == 201, issued.text

    async def notice_cases(user: str) -> list[str]:
        body = (await api.get("/supervision/notices", headers=await login(user))).json()
        return [item["case_id"] for item in body["items"]]

    assert await notice_cases("supervisor_3301") == [hangzhou["case_id"]]
    assert await notice_cases("supervisor_3302") == [ningbo["case_id"]]
    assert sorted(await notice_cases("supervisor")) == sorted([hangzhou["case_id"], ningbo["case_id"]])


@pytest.fixture
def open_steps_in_two_cities(engine) -> None:
    """Two open steps long overdue and two in their last working day (预警), one of each in
    上城区 (without a unit: a case from before routing) and one in 海曙区 (routed to its police)."""
    for case_id in ("ot-hz-late", "ot-nb-late"):
        opened: list[tuple[EventType, str, str | None]] = [(EventType.OPENED, "2026-10-09T09:00", "2026-10-11T00:00")]
        project_single_step_case(engine, case_id, "hukou_registration", "police", opened)
    now = datetime.now(UTC)
    with Session(engine) as session:
        for case_id in ("ot-hz-soon", "ot-nb-soon"):
            session.add(
                TaskRecord(
                    task_id=f"{case_id}:hukou_registration",
                    case_id=case_id,
                    thing="birth",
                    step="hukou_registration",
                    department="police",
                    status="open",
                    due_at=now + timedelta(hours=5),
                    warning_at=now - timedelta(hours=1),
                )
            )
        session.execute(
            update(TaskRecord)
            .where(col(TaskRecord.case_id).in_(["ot-nb-late", "ot-nb-soon"]))
            .values(unit_code="police_330203")
        )
        session.commit()


@pytest.mark.parametrize("path", ["overdue", "warnings"])
async def test_overdue_and_warning_lists_and_their_csv_are_scoped(api, login, open_steps_in_two_cities, path):
    kind = "late" if path == "overdue" else "soon"

    async def listed(user: str) -> list[str]:
        body = (await api.get(f"/supervision/{path}", headers=await login(user))).json()
        assert body["total"] == len(body["items"])
        return sorted(item["case_id"] for item in body["items"])

    assert await listed("supervisor_3301") == [f"ot-hz-{kind}"]
    assert await listed("supervisor_3302") == [f"ot-nb-{kind}"]
    assert await listed("supervisor") == [f"ot-hz-{kind}", f"ot-nb-{kind}"]

    response = await api.get(f"/supervision/{path}", headers={**await login("supervisor_3302"), "Accept": "text/csv"})
    table = list(csv.DictReader(io.StringIO(response.content.decode("utf-8-sig"))))
    assert [row["案件编号"] for row in table] == [f"ot-nb-{kind}"]

    # The timeliness figures' open overdue steps, and the console's list, too.
    if path == "overdue":
        rows = await _timeliness(api, login, "supervisor_3302", "group_by=division")
        assert [(r["division_code"], r["open_overdue"]) for r in rows] == [("330200", 1), (HAISHU, 1)]
        rows = await _timeliness(api, login, "supervisor_3301")
        assert [(r["department"], r["open_overdue"]) for r in rows] == [("police", 1)]
        async with console_users(api) as browser:
            page = await (await browser("supervisor_3301")).get("/dashboard/overdue")
        assert page.status == 200 and "ot-hz-late" in page.html and "ot-nb-late" not in page.html


async def test_check_items_report_counts_only_the_supervisors_divisions_cases(api, login, cases):
    await _case_in(cases, SHANGCHENG, ("birth_certificate",))
    await _case_in(cases, HAISHU, ("birth_certificate", "vaccination_certificate"))

    async def birth_items(user: str) -> dict[str, dict[str, Any]]:
        report = (await api.get(f"/supervision/report?{EVERY_DAY}", headers=await login(user))).json()
        birth = next(item for item in report["sub_items"] if item["thing"] == "birth")
        return {item["code"]: item for item in birth["items"]}

    hangzhou = await birth_items("supervisor_3301")
    ningbo = await birth_items("supervisor_3302")
    province = await birth_items("supervisor")
    assert hangzhou["joint_handling"]["detail_zh"].startswith("期内受理1件")
    assert hangzhou["time_limits_met"]["detail_zh"].endswith("/1个环节")
    assert ningbo["joint_handling"]["detail_zh"].startswith("期内受理1件")
    assert ningbo["time_limits_met"]["detail_zh"].endswith("/2个环节")
    assert province["joint_handling"]["detail_zh"].startswith("期内受理2件")
    assert province["time_limits_met"]["detail_zh"].endswith("/3个环节")

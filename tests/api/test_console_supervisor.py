"""The console's supervisor area: the timeliness dashboard (figures and SVG charts from hand-built
cases with known answers), the CSV export, the overdue and warning lists, a case's timeline read
from its workflow history with 督办 from the page, ratings and the check-items report."""

from __future__ import annotations

import csv
import io
import re
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta

import pytest
from sqlmodel import Session, col, select

from api.console.charts import BAR_AREA_WIDTH, Bar, Point, bar_chart, line_chart
from domain.samples import FATHER_ID, MOTHER_ID, MOTHER_WITHOUT_MARRIAGE_RECORD_ID
from domain.workcalendar import WorkingCalendar, default_calendar_file
from models.case import EventType
from models.tables import RatingRecord, SupervisionNotice, TaskRecord
from tests.api.console_client import ConsoleUsers, console_users
from tests.api.helpers import PROXY, birth_form, project_single_step_case

CALENDAR = WorkingCalendar.load(default_calendar_file())
NOVEMBER = {"from": "2026-11-01", "to": "2026-11-30"}


@pytest.fixture
async def browser(api) -> AsyncIterator[ConsoleUsers]:
    async with console_users(api) as make:
        yield make


def _project(engine, case_id: str, step: str, department: str, opened: str, due: str, completed: str | None) -> None:
    """Project a one-step birth case whose step opened, was due and (maybe) completed at these Shanghai times."""
    events: list[tuple[EventType, str, str | None]] = [(EventType.OPENED, opened, due)]
    if completed:
        events.append((EventType.COMPLETED, completed, None))
    project_single_step_case(engine, case_id, step, department, events)


@pytest.fixture
def known_cases(engine) -> None:
    # Mon 16 to Wed 18 November 2026, all working days: two hospital steps on time, one police step late.
    _project(
        engine, "ot-a", "birth_certificate", "hospital", "2026-11-16T10:00", "2026-11-18T00:00", "2026-11-17T10:00"
    )
    _project(engine, "ot-b", "hukou_registration", "police", "2026-11-16T09:00", "2026-11-17T00:00", "2026-11-18T09:00")
    _project(
        engine,
        "ot-c",
        "vaccination_certificate",
        "hospital",
        "2026-11-17T09:00",
        "2026-11-19T00:00",
        "2026-11-18T11:00",
    )


def _open_task(engine, task: str, *, due_in: timedelta, warning_in: timedelta, status: str = "claimed") -> None:
    now = datetime.now(UTC)
    case_id, step = task.split(":")
    with Session(engine) as session:
        session.add(
            TaskRecord(
                task_id=task,
                case_id=case_id,
                thing="birth",
                step=step,
                department="police",
                status=status,
                assignee="police_officer" if status == "claimed" else None,
                opened_at=now - timedelta(days=2),
                due_at=now + due_in,
                warning_at=now + warning_in,
                escalations=2,
            )
        )
        session.commit()


# --- charts ---------------------------------------------------------------------------------


def test_bar_chart_draws_each_rate_to_scale_and_escapes_labels():
    svg = str(bar_chart([Bar("公安部门", 0.5, "办结 2 件"), Bar("<b>x</b>", None)], title="按时办结率", testid="c"))

    assert svg.startswith("<svg") and svg.endswith("</svg>")
    assert f'width="{BAR_AREA_WIDTH * 0.5:.1f}"' in svg  # half the scale for 50 %
    assert 'data-label="公安部门" data-rate="0.5000"' in svg and "50.0%" in svg
    assert "<b>" not in svg and "&lt;b&gt;x&lt;/b&gt;" in svg
    assert 'class="bar bar-none"' in svg  # no completions: grey, no rate
    assert "公安部门：按时办结率 50.0%（办结 2 件）" in svg


def test_bar_chart_without_data_says_so():
    assert "统计期内无办结环节" in bar_chart([], title="t", testid="c")


def test_line_chart_breaks_the_line_on_days_without_completions():
    points = [Point("11-16", 1.0), Point("11-17", None), Point("11-18", 0.5), Point("11-19", 0.75)]

    svg = str(line_chart(points, title="趋势", testid="trend"))

    assert svg.count("<polyline") == 1  # 11-16 stands alone; 11-18 → 11-19 is one run
    assert re.findall(r'data-label="([^"]+)" data-rate="([^"]+)"', svg) == [
        ("11-16", "1.0000"),
        ("11-18", "0.5000"),
        ("11-19", "0.7500"),
    ]
    assert "统计期内无数据" in line_chart([], title="t", testid="c")


# --- the dashboard ----------------------------------------------------------------------------


async def test_dashboard_shows_the_on_time_rate_by_department_step_and_day(browser, known_cases):
    supervisor = await browser("supervisor")

    page = await supervisor.get("/dashboard", **{"from": "2026-11-16", "to": "2026-11-20"})

    assert page.status == 200
    assert page.text("on-time-rate") == "66.7%"
    assert page.one("on-time-rate").attrs["data-rate"] == "0.6667"
    assert (page.text("completed-count"), page.text("on-time-count")) == ("3", "2")
    department_bars = [bar for bar in page.all("chart-bar") if bar.attrs["data-label"] in {"助产机构", "公安部门"}]
    assert {bar.attrs["data-label"]: bar.attrs["data-rate"] for bar in department_bars} == {
        "助产机构": "1.0000",
        "公安部门": "0.0000",
    }
    assert page.all("chart-department") and page.all("chart-step") and page.all("chart-trend")
    step_bars = {bar.attrs["data-label"] for bar in page.all("chart-bar")} - {"助产机构", "公安部门"}
    assert step_bars == {"出生医学证明办理", "户口登记", "预防接种证办理"}
    trend = {point.attrs["data-label"]: point.attrs["data-rate"] for point in page.all("chart-point")}
    assert trend == {"11-17": "1.0000", "11-18": "0.5000"}  # no completions on the 16th, 19th, 20th
    rows = {row.attrs["data-department"]: " ".join(row.text.split()) for row in page.all("department-row")}
    assert rows["police"].startswith("公安部门 1 0 1 0.0%")


async def test_dashboard_period_and_thing_filter_what_is_counted(browser, known_cases):
    supervisor = await browser("supervisor")

    only_17th = await supervisor.get("/dashboard", **{"from": "2026-11-17", "to": "2026-11-17"})
    other_thing = await supervisor.get("/dashboard", **NOVEMBER, thing="death")

    assert only_17th.text("on-time-rate") == "100.0%" and only_17th.text("completed-count") == "1"
    assert other_thing.text("on-time-rate") == "—" and other_thing.text("completed-count") == "0"


async def test_an_invalid_period_is_told_on_the_dashboard_itself(browser):
    supervisor = await browser("supervisor")

    reversed_period = await supervisor.get("/dashboard", **{"from": "2026-11-30", "to": "2026-11-01"})
    not_a_date = await supervisor.get("/dashboard", **{"from": "yesterday"})

    assert reversed_period.status == 400 and "开始日期不能晚于结束日期" in reversed_period.text("period-error")
    assert reversed_period.all("dashboard-summary")  # the dashboard still, with the last 30 days' figures
    assert reversed_period.one("period-form")
    assert 'name="from" value="2026-11-30"' in reversed_period.html  # what was asked stays in the filter
    assert not_a_date.status == 400 and "开始日期不是有效的日期" in not_a_date.text("period-error")
    assert not_a_date.response.headers["content-type"].startswith("text/html")


async def test_export_csv_is_utf8_with_bom_chinese_headers_and_names(browser, known_cases):
    supervisor = await browser("supervisor")

    response = await supervisor.client.get("/dashboard/export.csv", params={"group_by": "department", **NOVEMBER})

    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/csv")
    assert 'filename="timeliness-department-2026-11-01-2026-11-30.csv"' in response.headers["content-disposition"]
    assert response.content.startswith("\ufeff".encode())
    table = list(csv.reader(io.StringIO(response.content.decode("utf-8-sig"))))
    assert table[0][:5] == ["部门", "部门名称", "办结数", "按时办结数", "超期办结数"]
    assert table[0][5] == "按时办结率"
    assert {tuple(row[:6]) for row in table[1:]} == {
        ("hospital", "助产机构", "2", "2", "0", "1.0"),
        ("police", "公安部门", "1", "0", "1", "0.0"),
    }
    by_step = await supervisor.client.get("/dashboard/export.csv", params={"group_by": "step", **NOVEMBER})
    header = next(csv.reader(io.StringIO(by_step.content.decode("utf-8-sig"))))
    assert header[:4] == ["事项", "环节", "事项名称", "环节名称"]
    assert "户口登记" in by_step.content.decode("utf-8-sig")


# --- overdue and warning lists ----------------------------------------------------------------


async def test_overdue_and_warning_lists_link_to_each_case(browser, engine):
    _open_task(engine, "ot-late:hukou_registration", due_in=timedelta(hours=-30), warning_in=timedelta(hours=-54))
    _open_task(engine, "ot-soon:hukou_registration", due_in=timedelta(hours=5), warning_in=timedelta(hours=-2))
    supervisor = await browser("supervisor")

    dashboard = await supervisor.get("/dashboard")
    overdue = await supervisor.get("/dashboard/overdue")
    warnings = await supervisor.get("/dashboard/warnings")

    assert (dashboard.text("overdue-now"), dashboard.text("warnings-now")) == ("1", "1")
    (late,) = overdue.all("overdue-row")
    assert late.attrs["data-task-id"] == "ot-late:hukou_registration"
    assert "户口登记" in late.text and "公安部门" in late.text and "police_officer" in late.text
    assert 'href="/dashboard/cases/ot-late"' in overdue.html
    # How late, in working days (none yet right after a due time on a Friday night).
    assert re.fullmatch(r"已超期( [1-9]\d* 个工作日)?", overdue.text("overdue-for"))
    assert "工作小时" not in overdue.html
    (soon,) = warnings.all("warning-row")
    assert soon.attrs["data-task-id"] == "ot-soon:hukou_registration"
    assert overdue.text("list-total") == "1" and warnings.text("list-total") == "1"


# --- a case's timeline and 督办 ---------------------------------------------------------------


async def test_case_timeline_comes_from_history_with_personal_data_masked(cases, browser):
    case = await cases.submit()
    await cases.complete(case, "birth_certificate")
    supervisor = await browser("supervisor")

    page = await supervisor.get(f"/dashboard/cases/{case['case_id']}")

    assert page.status == 200
    types = [event.attrs["data-type"] for event in page.all("timeline-event")]
    assert types[0] == "accepted" and "claimed" in types and "completed" in types
    steps = {step.attrs["data-step"]: " ".join(step.text.split()) for step in page.all("timeline-step")}
    assert "按时" in steps["birth_certificate"] and "办理中" in steps["vaccination_certificate"]
    assert MOTHER_ID not in page.html  # supervisors read personal data masked
    assert page.all("supervise-form")

    admin_view = await (await browser("admin")).get(f"/dashboard/cases/{case['case_id']}")
    assert admin_view.status == 200 and admin_view.all("supervise-form") == []  # admins read, supervisors act
    assert (await supervisor.get("/dashboard/cases/ot-nonexistent")).status == 404


async def test_supervisor_issues_a_notice_from_the_case_page_once(cases, browser, engine):
    case = await cases.submit()
    supervisor = await browser("supervisor")
    page = await supervisor.get(f"/dashboard/cases/{case['case_id']}")
    form = page.form(f"/dashboard/cases/{case['case_id']}/supervise")

    blank = await supervisor.send(form, {"step": "vaccination_certificate", "kind": "notice", "message": ""})
    assert blank.status_code == 422 and "请填写督办内容" in blank.text

    data = {"step": "vaccination_certificate", "kind": "notice", "message": "请于今日办结"}
    first, second = await supervisor.send(form, data), await supervisor.send(form, data)

    assert (first.status_code, second.status_code) == (303, 303)
    assert "已发出督办通知" in (await supervisor.follow(first)).text("flash")
    with Session(engine) as session:
        notices = session.execute(
            select(SupervisionNotice).where(
                col(SupervisionNotice.case_id) == case["case_id"], col(SupervisionNotice.origin) == "manual"
            )
        ).scalars()
        assert [(n.step, n.department, n.message_zh) for n in notices] == [
            ("vaccination_certificate", "hospital", "请于今日办结")
        ]
    officer_view = await (await browser("hospital_officer")).get("/inbox/notices")
    assert "请于今日办结" in officer_view.text("notice-row")


# --- ratings and the report ---------------------------------------------------------------------


async def test_ratings_page_shows_averages_and_low_ratings_by_thing_and_department(browser, engine):
    now = datetime.now(UTC)
    with Session(engine) as session:
        session.add(RatingRecord(case_id="ot-r1", step="", thing="birth", score=5, rated_at=now))
        session.add(RatingRecord(case_id="ot-r2", step="", thing="birth", score=2, comment="等太久", rated_at=now))
        session.add(
            RatingRecord(
                case_id="ot-r1", step="birth_certificate", thing="birth", department="hospital", score=4, rated_at=now
            )
        )
        session.commit()
    supervisor = await browser("supervisor")

    page = await supervisor.get("/dashboard/ratings")

    (by_thing,) = [row for row in page.all("rating-row") if "出生一件事" in row.text]
    assert " ".join(by_thing.text.split()).startswith("出生一件事 2 3.50 1 0 0 1 0 1")
    department = [row for row in page.all("rating-row") if "助产机构" in row.text]
    assert len(department) == 1 and "4.00" in department[0].text


async def test_check_items_report_lists_each_thing_with_verdicts(browser, known_cases):
    supervisor = await browser("supervisor")

    page = await supervisor.get("/dashboard/report", **NOVEMBER)

    assert page.status == 200
    things = {item.attrs["data-thing"] for item in page.all("report-sub-item")}
    assert {"birth", "death", "retirement", "company_opening"} <= things
    codes = {item.attrs["data-code"] for item in page.all("report-item")}
    assert {"guide_complete", "flowchart_present", "time_limits_met", "archives_complete"} <= codes
    assert "统计期间 2026年11月1日 至 2026年11月30日" in page.html
    verdicts = {" ".join(item.text.split()) for item in page.all("report-verdict")}
    assert verdicts <= {"符合", "不符合", "无数据"} and "不符合" in verdicts  # one police step was late


# --- case search, and report lines naming their case -------------------------------------------


def _found(page) -> list[str]:
    return [row.attrs["data-case-id"] for row in page.all("search-row")]


async def test_a_supervisor_finds_a_case_by_name_number_and_id_number_and_not_others(cases, browser):
    mine = await cases.submit()
    other_form = birth_form(mother_id=MOTHER_WITHOUT_MARRIAGE_RECORD_ID)
    other_form["applicant"]["name"] = other_form["mother"]["name"] = "赵敏"
    other = await cases.submit(form=other_form, proxy=PROXY)
    supervisor = await browser("supervisor")

    by_name = await supervisor.get("/dashboard/cases", name="李芳")
    by_number = await supervisor.get("/dashboard/cases", no=other["case_no"])
    by_digits = await supervisor.get("/dashboard/cases", no=mine["case_no"][-6:])
    by_id_number = await supervisor.get("/dashboard/cases", id_number=MOTHER_WITHOUT_MARRIAGE_RECORD_ID)
    by_father = await supervisor.get("/dashboard/cases", id_number=FATHER_ID)
    by_status = await supervisor.get("/dashboard/cases", status="awaiting_supplement", department="hospital")
    nobody = await supervisor.get("/dashboard/cases", name="钱多多")

    assert by_name.status == 200 and _found(by_name) == [mine["case_id"]]
    assert "李*" in by_name.html and "李芳" not in by_name.html.replace('value="李芳"', "")  # shown masked
    (row,) = by_name.all("open-case")
    assert row.attrs["href"] == f"/dashboard/cases/{mine['case_id']}" and row.text.strip() == mine["case_no"]
    assert _found(by_number) == [other["case_id"]]
    assert _found(by_digits) == [mine["case_id"]]
    assert _found(by_id_number) == [other["case_id"]]
    assert set(_found(by_father)) == {mine["case_id"], other["case_id"]}  # the father is on both applications
    assert _found(by_status) == [other["case_id"]]  # it owes the 结婚证
    assert _found(nobody) == [] and nobody.text("search-empty") == "没有符合条件的案件"


async def test_a_reversed_date_range_is_told_beside_the_search_fields(cases, browser):
    await cases.submit()
    supervisor = await browser("supervisor")

    page = await supervisor.get("/dashboard/cases", **{"from": "2026-12-05", "to": "2026-12-01"})
    bad_id = await supervisor.get("/dashboard/cases", id_number="12345")

    assert page.status == 400
    assert "不能晚于" in page.text("error-from") and "受理日期自" in page.text("search-error")
    assert page.all("search-row") == [] and page.one("case-search-form")
    assert 'value="2026-12-05"' in page.html  # what was typed stays in the field
    assert bad_id.status == 400 and "18位身份证号码" in bad_id.text("error-id_number")


async def test_report_and_rating_lines_name_and_link_their_case(cases, browser, engine, known_cases):
    case = await cases.submit()
    with Session(engine) as session:
        session.add(RatingRecord(case_id=case["case_id"], step="", thing="birth", score=1, rated_at=datetime.now(UTC)))
        session.commit()
    supervisor = await browser("supervisor")

    report = await supervisor.get("/dashboard/report", **NOVEMBER)
    ratings = await supervisor.get("/dashboard/ratings")

    (late,) = [
        item
        for item in report.all("report-item")
        if item.attrs["data-code"] == "time_limits_met" and "不符合" in item.text
    ]
    # The late police step's case, by name and link; the cases on time are not named.
    assert "涉及案件：ot-b" in "".join(late.text.split()) and "ot-a" not in late.text and "ot-c" not in late.text
    assert 'href="/dashboard/cases/ot-b"' in report.html
    linked = {link.attrs["data-case-id"] for link in report.all("report-case")}
    assert "ot-b" in linked and linked <= {"ot-a", "ot-b", "ot-c"}
    (low,) = ratings.all("low-rating-row")
    assert low.attrs["data-case-id"] == case["case_id"] and case["case_no"] in low.text
    assert f'href="/dashboard/cases/{case["case_id"]}"' in ratings.html


async def test_the_dashboard_warns_while_next_years_holiday_notice_is_missing(api):
    calendar = api._transport.app.state.calendar
    async with console_users(api) as browser:
        supervisor = await browser("supervisor")
        calendar.missing_next_year = lambda today: 2027
        warned = await supervisor.get("/dashboard")
        calendar.missing_next_year = lambda today: None
        quiet = await supervisor.get("/dashboard")

    assert warned.status == 200
    assert "2027年节假日安排" in warned.text("calendar-warning") and "暂定" in warned.text("calendar-warning")
    assert quiet.all("calendar-warning") == []

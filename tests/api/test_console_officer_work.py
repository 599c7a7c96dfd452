"""The officer's view of the case beside the work (issue 13): the application as filed in labelled
Chinese sections, the situation answers, the materials as they stand now, earlier steps' results,
result-form hints derived from the application, the 回访 task's rating and contact; and the inbox
as a work list: claim from the list, filters, search by case number or applicant name, 督办 badges,
and a change feed that follows the filtered listing."""

from __future__ import annotations

import re
from collections.abc import AsyncIterator
from datetime import UTC, date, datetime, time, timedelta

import pytest
from sqlmodel import Session

from domain.identity import make_id_number
from domain.redaction import mask_text
from domain.samples import MOTHER_ID
from domain.workcalendar import SHANGHAI
from models.tables import CaseRecord, TaskRecord
from tests.api.console_client import ConsoleUsers, Page, console_users
from tests.api.helpers import PROXY, birth_form, result_for, step_of, task_id


@pytest.fixture
async def browser(api) -> AsyncIterator[ConsoleUsers]:
    async with console_users(api) as make:
        yield make


def _text(page: Page, testid: str) -> str:
    return " ".join(" ".join(element.text.split()) for element in page.all(testid))


def _row_ids(page: Page) -> list[str]:
    return [row.attrs["data-task-id"] for row in page.all("task-row")]


def _day_zh(iso: str) -> tuple[str, str]:
    """2026年11月20日 and 20261120: the Beijing date of a form's date-time."""
    day = datetime.fromisoformat(iso).astimezone(SHANGHAI).date()
    return f"{day.year}年{day.month}月{day.day}日", day.strftime("%Y%m%d")


# --- the application beside the work --------------------------------------------------------------


async def test_the_police_task_shows_the_application_in_full_and_the_birth_certificate_number(cases, browser):
    case = await cases.submit()
    await cases.walk_to(case, "hukou_registration")  # the birth certificate is done: 户口登记 opens
    task = task_id(case["case_id"], "hukou_registration")
    police = await browser("police_officer")

    page = await police.get(f"/inbox/{task}")

    assert page.status == 200, page.html
    assert page.text("case-no") == case["case_no"] and page.text("case-id") == case["case_id"]
    application = page.text("application-form")
    birth_day, _ = _day_zh(case["_form"]["newborn"]["born_at"])
    # Labelled as on the application form; choices by their Chinese names, never their codes.
    assert "新生儿信息" in application and "王小明" in application
    assert "性别 男" in application and "male" not in application
    assert f"出生时间 {birth_day}" in application
    assert "送达方式 窗口领取" in application and "pickup" not in application
    # The department whose step has opened reads the ID numbers in full.
    assert f"母亲信息 姓名 李芳 公民身份号码 {MOTHER_ID}" in application
    assert page.all("application-masked") == []
    assert "新生儿父母是否登记结婚 婚生" in page.text("situation-answers")
    assert "新生儿随父还是随母落户 随父落户" in page.text("situation-answers")
    # The hospital's result, labelled as in the catalogue.
    certificate = result_for("birth_certificate", case["_form"])["certificate_no"]
    earlier = page.text("earlier-results")
    assert "出生医学证明办理" in earlier and f"出生医学证明编号 {certificate}" in earlier


async def test_the_id_number_field_of_hukou_registration_hints_the_newborns_birth_date_and_sex(cases, browser):
    case = await cases.submit()
    await cases.walk_to(case, "hukou_registration")
    await cases.claim(case, "hukou_registration")
    task = task_id(case["case_id"], "hukou_registration")
    police = await browser("police_officer")

    page = await police.get(f"/inbox/{task}")

    birth_day, digits = _day_zh(case["_form"]["newborn"]["born_at"])
    hint = page.text("result-hint-citizen_id_number")
    assert f"新生儿出生日期 {birth_day}" in hint and digits in hint
    assert "性别 男（第17位为奇数）" in hint
    assert page.all("result-hint-booklet_page") == []  # nothing in the form to say about a page number


async def test_materials_show_their_status_in_chinese_and_why_one_is_owed(cases, browser):
    case = await cases.submit()
    await cases.claim(case, "birth_certificate")
    returned = await cases.act(
        "return",
        case["case_id"],
        "birth_certificate",
        as_user="hospital_officer",
        body={"missing": ["mother_id_card"], "reason": "身份证照片不清晰"},
    )
    assert returned.status_code == 200, returned.text
    officer = await browser("hospital_officer")

    page = await officer.get(f"/inbox/{task_id(case['case_id'], 'birth_certificate')}")

    rows = {row.attrs["data-material"]: row for row in page.all("material-row")}
    owed = rows["mother_id_card"]
    assert owed.attrs["data-status"] == "to_supply"
    assert "母亲居民身份证" in owed.text and "需补正" in owed.text
    assert "出生医学证明办理：身份证照片不清晰" in " ".join(owed.text.split())
    assert rows["registration_form"].attrs["data-status"] == "received" and "已收取" in rows["registration_form"].text
    shared = [row for row in rows.values() if row.attrs["data-status"] == "shared"]
    assert shared and all("已共享" in row.text and "需补正" not in row.text for row in shared)
    assert "to_supply" not in page.text("case-materials")


async def test_a_case_without_a_stored_form_says_so_in_chinese(cases, browser, engine):
    case = await cases.submit()
    with Session(engine) as session:
        record = session.get(CaseRecord, case["case_id"])
        assert record is not None
        record.form = None  # as for a case filed before the read model kept the form
        session.add(record)
        session.commit()
    officer = await browser("hospital_officer")

    page = await officer.get(f"/inbox/{task_id(case['case_id'], 'birth_certificate')}")

    assert "未保存申请表" in page.text("application-missing")
    assert page.all("application-section") == []
    assert page.all("material-row"), "the materials still show"


async def test_the_follow_up_shows_the_rating_and_how_to_reach_the_applicant_with_the_form_masked(
    cases, browser, api, login
):
    case = await cases.submit()
    await cases.finish(case)
    rating = await api.post(
        f"/cases/{case['case_id']}/rating",
        json={"score": 1, "comment": "窗口等候太久", "step": "birth_certificate"},
        headers=await login("applicant1"),
    )
    assert rating.status_code == 201, rating.text
    supervisor = await browser("supervisor")

    page = await supervisor.get(f"/inbox/{task_id(case['case_id'], 'follow_up_1')}")

    assert page.status == 200, page.html
    assert "1 分 · 非常不满意" in page.text("follow-up-score")
    assert page.text("follow-up-comment") == "窗口等候太久"
    assert "出生医学证明办理" in page.text("follow-up-step")
    contact = page.text("follow-up-contact")
    assert "李芳" in contact and "13800000000" in contact  # the supervisor has to call
    # Everything else of the application stays masked for a supervisor.
    application = page.text("application-form")
    assert page.all("application-masked")
    assert mask_text(MOTHER_ID) in application and MOTHER_ID not in page.html
    assert "138****0000" in application and "13800000000" not in application


# --- the inbox as a work list ---------------------------------------------------------------------


async def test_an_officer_claims_a_task_from_the_inbox_list(cases, browser):
    case = await cases.submit()
    task = task_id(case["case_id"], "birth_certificate")
    officer = await browser("hospital_officer")
    inbox = await officer.get("/inbox")
    row = next(row for row in inbox.all("task-row") if row.attrs["data-task-id"] == task)
    assert "待签收" in row.text

    response = await officer.send(inbox.form(f"/inbox/{task}/claim"))

    assert response.status_code == 303 and response.headers["location"].startswith("/inbox")
    back = await officer.follow(response)
    assert "已签收" in back.text("flash")
    row = next(row for row in back.all("task-row") if row.attrs["data-task-id"] == task)
    assert "办理中" in row.text and "本人" in row.text
    assert all(form.action != f"/inbox/{task}/claim" for form in back.forms)
    assert step_of(await cases.read(case["case_id"]), "birth_certificate")["assignee"] == "hospital_officer"


async def test_the_inbox_shows_case_numbers_and_the_chosen_tasks_summary(cases, browser, engine):
    case = await cases.submit()
    task = task_id(case["case_id"], "vaccination_certificate")
    officer = await browser("hospital_officer")

    page = await officer.get("/inbox", task=task)

    row = next(row for row in page.all("task-row") if row.attrs["data-task-id"] == task)
    assert case["case_no"] and case["case_no"] in row.text and case["case_id"] in row.text
    assert "李芳" in row.text
    detail = page.text("inbox-detail")
    assert "预防接种证办理" in detail and case["case_no"] in detail
    assert page.one("detail-open-task").attrs["href"] == f"/inbox/{task}"


def _move_due(engine, task: str, due_at: datetime, escalations: int = 0) -> None:
    with Session(engine) as session:
        record = session.get(TaskRecord, task)
        assert record is not None
        record.due_at, record.warning_at, record.overdue = due_at, due_at - timedelta(days=1), False
        record.escalations = escalations
        session.add(record)
        session.commit()


async def test_filters_and_search_narrow_the_inbox_and_supervised_tasks_carry_a_badge(
    cases, browser, api, login, engine
):
    first = await cases.submit()
    other_form = birth_form()
    grandmother = make_id_number("330102", date(1962, 5, 1), 12)
    other_form["applicant"] = {**other_form["applicant"], "name": "赵敏", "id_number": grandmother}
    other_form["applicant"]["relation"] = "grandparent"
    second = await cases.submit(form=other_form, proxy=PROXY)  # 李芳 files for her mother
    now = datetime.now(UTC)
    end_of_today = datetime.combine(now.astimezone(SHANGHAI).date() + timedelta(days=1), time(0), SHANGHAI)
    late = task_id(first["case_id"], "birth_certificate")
    today = task_id(first["case_id"], "vaccination_certificate")
    escalated = task_id(second["case_id"], "birth_certificate")
    noticed = task_id(second["case_id"], "vaccination_certificate")
    issued = await api.post(
        "/supervision/notices",
        json={"case_id": second["case_id"], "step": "vaccination_certificate", "message": "请加快办理"},
        headers=await login("supervisor"),
    )
    assert issued.status_code == 201, issued.text
    # The read model as the workflow leaves it once a step went overdue and was escalated (督办).
    _move_due(engine, late, now - timedelta(hours=2))
    _move_due(engine, today, end_of_today)  # 24:00 today: due today
    _move_due(engine, escalated, now + timedelta(days=30), escalations=1)
    _move_due(engine, noticed, now + timedelta(days=31))
    officer = await browser("hospital_officer")

    # The filter form sent as it first shows (every choice "all") lists everything.
    everything = await officer.get("/inbox", status="", step="", due="", q="")
    assert everything.status == 200
    assert set(_row_ids(everything)) == {late, today, escalated, noticed}
    flagged = {
        row.attrs["data-task-id"] for row in everything.all("task-row") if row.attrs["data-supervised"] == "true"
    }
    assert flagged == {escalated, noticed}
    assert len(everything.all("supervision-badge")) == 2

    assert _row_ids(await officer.get("/inbox", due="overdue")) == [late]
    assert _row_ids(await officer.get("/inbox", due="today")) == [today]
    this_week = _row_ids(await officer.get("/inbox", due="week"))
    assert today in this_week and late not in this_week and escalated not in this_week
    assert set(_row_ids(await officer.get("/inbox", supervised="1"))) == {escalated, noticed}
    assert set(_row_ids(await officer.get("/inbox", step="vaccination_certificate"))) == {today, noticed}
    by_number = await officer.get("/inbox", q=first["case_no"])
    assert set(_row_ids(by_number)) == {late, today}
    assert set(_row_ids(await officer.get("/inbox", q="赵敏"))) == {escalated, noticed}
    nothing = await officer.get("/inbox", q="查无此人", step="birth_certificate")
    assert _row_ids(nothing) == [] and "没有符合条件的任务" in nothing.text("inbox-empty")

    # The JSON inbox takes the same filters.
    headers = await login("hospital_officer")
    listed = await api.get("/tasks", params={"q": second["case_no"], "supervised": "true"}, headers=headers)
    assert listed.status_code == 200, listed.text
    assert {item["task_id"] for item in listed.json()["items"]} == {escalated, noticed}
    assert (await api.get("/tasks", params={"due": "soon"}, headers=headers)).status_code == 422

    # The page follows the change feed of the filtered listing: the same query, the same ETag.
    live = re.search(r'data-inbox-etag="([^"]*)" data-inbox-events="([^"]*)"', by_number.html)
    assert live is not None
    events_url = live.group(2).replace("&amp;", "&")
    assert events_url.startswith("/tasks/events?") and f"q={first['case_no']}" in events_url
    query = dict(part.split("=", 1) for part in events_url.split("?", 1)[1].split("&"))
    json_etag = (await api.get("/tasks", params=query, headers=headers)).headers["ETag"]
    assert live.group(1).replace("&#34;", '"') == json_etag
    unfiltered = (await api.get("/tasks", params={"limit": "50", "offset": "0"}, headers=headers)).headers["ETag"]
    assert json_etag != unfiltered


async def test_a_refusing_answer_is_announced_on_the_task_page_and_ends_the_case_when_chosen(cases, browser):
    case = await cases.submit(form=birth_form(marital_status="unmarried", follow="mother"), proxy=PROXY)
    await cases.walk_to(case, "unmarried_declaration_review")
    await cases.claim(case, "unmarried_declaration_review")
    task = task_id(case["case_id"], "unmarried_declaration_review")
    police = await browser("police_officer")

    page = await police.get(f"/inbox/{task}")
    warning = page.text("negative-hint-declaration_verified")
    assert "选择“否”即不予办理" in warning and "非婚生育声明核验未通过" in warning

    answered = await police.submit(
        f"/inbox/{task}", f"/inbox/{task}/complete", {"result.declaration_verified": "false"}
    )
    shown = await police.follow(answered)
    assert "核验结论为不予办理，本件已终止" in shown.text("flash")
    read = await cases.read(case["case_id"])
    assert step_of(read, "unmarried_declaration_review")["status"] == "refused"
    assert step_of(read, "hukou_registration")["status"] == "cancelled"

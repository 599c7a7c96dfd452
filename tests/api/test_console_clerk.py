"""The window clerk's console pages (一窗受理): intake at the clerk's own window and the
printable 受理通知书."""

from __future__ import annotations

import re
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import pytest
from sqlalchemy import Engine, select
from sqlmodel import Session, col

from api.console.notice import expected_completion
from domain.display import due_zh
from domain.samples import MOTHER_WITHOUT_MARRIAGE_RECORD_ID, sample_birth_form
from models.case import CaseSnapshot, CaseStatus, StepStatus, StepView
from models.tables import AuditRecord, CaseRecord
from tests.api.console_access_rows import (
    console_login,
    csrf_of,
    field_error,
    flat_form,
    idempotency_key_of,
    session_csrf,
)
from tests.api.console_client import ConsoleUsers, Page, console_users
from tests.api.helpers import BIRTH, CALENDAR, Cases, Login, birth_form, events_of, shanghai_at

MARRIED_FATHER = {"marital_status": "married", "hukou_follow": "father"}


def _birth_form() -> dict[str, Any]:
    return sample_birth_form(born_at=datetime.now(UTC) - timedelta(days=2))


async def _window_form_data(api: httpx.AsyncClient, form: dict[str, Any]) -> dict[str, str]:
    page = await api.get("/window/apply/birth", params=MARRIED_FATHER)
    assert page.status_code == 200, page.text
    return {
        **flat_form(form),
        **{f"answer.{code}": value for code, value in MARRIED_FATHER.items()},
        "csrf_token": csrf_of(page.text),
        "idempotency_key": idempotency_key_of(page.text),
    }


def _accepted_by(engine: Engine, unit: str) -> list[CaseRecord]:
    with Session(engine) as session:
        return list(session.execute(select(CaseRecord).where(col(CaseRecord.accepting_unit) == unit)).scalars())


def _acceptances(engine: Engine, case_id: str) -> list[AuditRecord]:
    with Session(engine) as session:
        return list(
            session.execute(
                select(AuditRecord).where(col(AuditRecord.case_id) == case_id, col(AuditRecord.action) == "case_accept")
            ).scalars()
        )


async def test_the_window_offers_the_things_its_unit_accepts(api):
    await console_login(api, "hospital_clerk")
    hospital = await api.get("/window")
    await console_login(api, "service_center_clerk")
    service_center = await api.get("/window")

    assert hospital.status_code == service_center.status_code == 200
    assert 'href="/window/apply/birth"' in hospital.text
    assert 'href="/window/apply/company_opening"' not in hospital.text
    for thing in ("birth", "company_opening", "death", "retirement"):
        assert f'href="/window/apply/{thing}"' in service_center.text


async def test_a_clerk_accepts_a_walk_in_application_and_prints_the_notice(api, login: Login, engine):
    await console_login(api, "hospital_clerk")

    response = await api.post("/window/apply/birth", data=await _window_form_data(api, _birth_form()))

    assert response.status_code == 303, response.text
    location = response.headers["location"]
    assert location.startswith("/window/cases/") and location.endswith("/notice")
    case_id = location.removeprefix("/window/cases/").removesuffix("/notice")
    notice = await api.get(location)
    assert notice.status_code == 200
    assert "已受理" in notice.text  # the flash message
    assert "受理通知书" in notice.text and f'data-case-id="{case_id}"' in notice.text
    assert "助产机构窗口" in notice.text  # the window: the hospital's channel
    assert 'data-testid="accepting-staff">助产机构窗口人员<' in notice.text  # the display name, not the login
    assert "浙江省出生" in notice.text  # the registration form, received at the window
    assert "母亲居民身份证" in notice.text and "数据共享自动获取" in notice.text
    assert "即办" in notice.text  # the hospital's steps on its own channel
    assert "窗口领取" in notice.text  # the pickup method
    assert "@media print" in (await api.get("/static/console.css")).text
    # The same case as POST /cases would make: on the clerk's channel, logged as a window acceptance.
    case = (await api.get(f"/cases/{case_id}", headers=await login("hospital_clerk"))).json()
    assert (case["channel"], case["acceptance_notice"]["accepting_staff"]) == ("hospital", "hospital_clerk")
    assert [row.actor for row in _acceptances(engine, case_id)] == ["hospital_clerk"]
    assert f'data-case-id="{case_id}"' in (await api.get("/window")).text


async def test_a_double_submitted_window_form_accepts_once(api, engine):
    await console_login(api, "hospital_clerk")
    data = await _window_form_data(api, _birth_form())

    first = await api.post("/window/apply/birth", data=data)
    second = await api.post("/window/apply/birth", data=data)

    assert first.status_code == second.status_code == 303
    assert first.headers["location"] == second.headers["location"]
    assert len(_accepted_by(engine, "hospital")) == 1
    case_id = first.headers["location"].split("/")[3]
    assert len(_acceptances(engine, case_id)) == 1


async def test_window_form_errors_are_shown_beside_the_fields(api, engine):
    await console_login(api, "hospital_clerk")
    form = _birth_form()
    form["applicant"]["phone"] = "12345"

    response = await api.post("/window/apply/birth", data=await _window_form_data(api, form))

    assert response.status_code == 422
    assert field_error(response.text, "applicant.phone") == "格式不正确，应为11位手机号码或带区号的固定电话"
    assert 'data-testid="submit-case"' in response.text and "确认受理" in response.text
    assert _accepted_by(engine, "hospital") == []


async def test_a_window_submission_without_the_csrf_token_is_refused(api, engine):
    await console_login(api, "hospital_clerk")
    data = {**await _window_form_data(api, _birth_form()), "csrf_token": ""}

    response = await api.post("/window/apply/birth", data=data)

    assert response.status_code == 403
    assert _accepted_by(engine, "hospital") == []


async def test_a_clerk_cannot_take_a_thing_their_window_does_not_accept(api):
    await console_login(api, "hospital_clerk")

    response = await api.get("/window/apply/company_opening")

    assert response.status_code == 403
    assert "本窗口不受理该事项" in response.text


async def test_another_units_notice_is_not_found(api, cases: Cases):
    case = await cases.submit(as_user="hospital_clerk")
    await console_login(api, "service_center_clerk")

    response = await api.get(f"/window/cases/{case['case_id']}/notice")

    assert response.status_code == 404
    assert "案件不存在" in response.text


# --- the notice as the case stands now, and 补正 at the window --------------------------------

DATE_ZH = re.compile(r"\d{4}年\d{1,2}月\d{1,2}日")


@pytest.fixture
async def browser(api) -> AsyncIterator[ConsoleUsers]:
    async with console_users(api) as make:
        yield make


async def _window_case_owing_the_marriage_certificate(cases: Cases) -> dict[str, Any]:
    """A walk-in birth case whose marriage record data sharing could not find: it owes the 结婚证."""
    case = await cases.submit(as_user="hospital_clerk", form=birth_form(mother_id=MOTHER_WITHOUT_MARRIAGE_RECORD_ID))
    assert case["status"] == "awaiting_supplement" and case["missing_materials"] == ["marriage_certificate"]
    return case


def _materials(page: Page, testid: str) -> dict[str, str]:
    """The rows of a notice's materials table: name → what the row says of it."""
    rows = {}
    for row in page.all(testid):
        name, _, rest = " ".join(row.text.split()).partition(" ")
        rows[name] = rest
    return rows


async def test_the_printed_notice_tells_who_what_is_owed_and_after_the_supplement_what_was_received(
    cases: Cases, browser
):
    case = await _window_case_owing_the_marriage_certificate(cases)
    clerk = await browser("hospital_clerk")
    notice_url = f"/window/cases/{case['case_id']}/notice"

    before = await clerk.get(notice_url)

    assert before.status == 200
    assert before.text("case-no") == case["case_no"] and case["case_no"]  # the readable number, as the main number
    assert before.text("applicant-name") == case["_form"]["applicant"]["name"]
    assert before.text("accepting-staff") == "助产机构窗口人员"  # the account's display name, not hospital_clerk
    assert DATE_ZH.fullmatch(before.text("notice-date"))
    assert DATE_ZH.match(before.text("accepted-at"))
    assert "-" not in before.text("accepted-at")  # no ISO dates
    owed = _materials(before, "material-owed")
    assert list(owed) == ["结婚证"] and "数据共享平台未能获取" in owed["结婚证"]
    assert "申请材料齐全" not in before.text("notice-text")
    assert "尚需补正以下材料：结婚证（数据共享平台未能获取" in before.text("notice-text").replace(" ", "")
    assert "marriage_certificate" not in before.one("acceptance-notice").text  # materials by name, never by code
    assert "补正材料齐全之日起" in before.text("expected-completion")
    assert "即办" in before.text("time-limits") and "1个工作日" in before.text("time-limits")

    recorded = await clerk.submit(
        f"/window/cases/{case['case_id']}/supplement",
        f"/window/cases/{case['case_id']}/supplement",
        {"materials.marriage_certificate": "收件-2026-0001"},
    )
    after = await clerk.follow(recorded)

    assert "已收取补正材料：结婚证" in after.text("flash")
    assert after.all("material-owed") == [] and after.all("materials-owed") == []
    received = _materials(after, "material")
    assert received["结婚证"].startswith("已收取") and "收件-2026-0001" in received["结婚证"]
    assert "申请材料齐全" in after.text("notice-text")
    assert re.fullmatch(rf"按各环节法定时限，最迟于{DATE_ZH.pattern}前全部办结", after.text("expected-completion"))
    assert after.text("case-status") != "待补正"


async def test_a_clerk_records_a_walk_ins_supplement_with_errors_beside_the_field(
    cases: Cases, browser, engine: Engine
):
    case = await _window_case_owing_the_marriage_certificate(cases)
    clerk = await browser("hospital_clerk")
    window = await clerk.get("/window")
    (link,) = [e for e in window.all("record-supplement") if case["case_id"] in e.attrs["href"]]
    page = await clerk.get(link.attrs["href"])
    (owed,) = page.all("owed-material")
    assert "结婚证" in owed.text and "数据共享平台未能获取" in owed.text
    form = page.form(f"/window/cases/{case['case_id']}/supplement")

    blank = await clerk.send(form, {"materials.marriage_certificate": " "})

    assert blank.status_code == 422
    assert field_error(blank.text, "marriage_certificate") == (
        "请填写收取的材料编号（如纸质材料的收件编号或扫描件存档号）"
    )
    assert (await cases.read(case["case_id"]))["status"] == "awaiting_supplement"

    done = await clerk.send(form, {"materials.marriage_certificate": "收件-2026-0002"})

    assert done.status_code == 303 and done.headers["location"] == f"/window/cases/{case['case_id']}/notice"
    after = await cases.read(case["case_id"])
    assert after["status"] != "awaiting_supplement" and after["missing_materials"] == []
    assert [event.actor for event in events_of(engine, case["case_id"], "supplemented")][:1] == ["hospital_clerk"]
    # Nothing is owed any more: the page sends the clerk back to the notice.
    again = await clerk.follow(await clerk.client.get(f"/window/cases/{case['case_id']}/supplement"))
    assert "没有需要补正的材料" in again.text("flash") and again.all("owed-material") == []


async def test_a_clerk_cannot_record_a_supplement_for_a_case_another_window_accepted(
    api, cases: Cases, browser, login: Login
):
    # Accepted at the service centre; the hospital's step on it sends it back for the 结婚证.
    case = await cases.submit(as_user="service_center_clerk", channel="service_center")
    await cases.claim(case, "birth_certificate")
    returned = await cases.act(
        "return",
        case["case_id"],
        "birth_certificate",
        as_user="hospital_officer",
        body={"missing": ["marriage_certificate"], "reason": "结婚证信息不一致"},
    )
    assert returned.status_code == 200, returned.text
    hospital_clerk = await browser("hospital_clerk")
    url = f"/window/cases/{case['case_id']}/supplement"
    # The hospital's clerk sees the case (its unit has a step on it), but did not accept it.
    assert (await api.get(f"/cases/{case['case_id']}", headers=await login("hospital_clerk"))).status_code == 200

    page = await hospital_clerk.get(url)
    posted = await hospital_clerk.client.post(
        url,
        data={"csrf_token": await session_csrf(hospital_clerk.client), "materials.marriage_certificate": "收件-9"},
    )

    assert page.status == 404 and posted.status_code == 404
    assert (await cases.read(case["case_id"]))["status"] == "awaiting_supplement"
    # The accepting window does see the owed material with the officer's reason and step.
    own = await (await browser("service_center_clerk")).get(url)
    (owed,) = own.all("owed-material")
    assert "结婚证" in owed.text and "结婚证信息不一致" in owed.text and "出生医学证明办理" in owed.text


# --- the whole case's due date, on the working-day calendar -------------------------------------


def _step(code: str, status: StepStatus, limit: int, **times: datetime) -> StepView:
    return StepView(
        step=code,
        name_zh=code,
        department="hospital",
        department_zh="助产机构",
        status=status,
        status_zh=status.value,
        time_limit_working_days=limit,
        **times,
    )


def _birth_case(status: CaseStatus, steps: list[StepView]) -> CaseSnapshot:
    return CaseSnapshot(
        case_id="ot-due",
        thing="birth",
        thing_zh="出生一件事",
        catalogue_version=1,
        channel="hospital",
        status=status,
        status_zh=status.value,
        submitted_at=shanghai_at("2026-12-03T09:00"),
        owner=None,
        submitted_by="hospital_clerk",
        accepting_unit="hospital",
        steps=steps,
    )


def test_the_whole_case_is_due_when_its_longest_chain_of_steps_is():
    # Thu 3 December 2026: the certificate done at 10:00, the vaccination card due at the end of the day.
    running = [
        _step("birth_certificate", StepStatus.DONE, 0, completed_at=shanghai_at("2026-12-03T10:00")),
        _step("vaccination_certificate", StepStatus.OPEN, 0, due_at=shanghai_at("2026-12-04T00:00")),
        _step("hukou_registration", StepStatus.OPEN, 1, due_at=shanghai_at("2026-12-05T00:00")),
        _step("medical_insurance_enrollment", StepStatus.PENDING, 1),
        _step("maternity_benefit_review", StepStatus.PENDING, 1),
        _step("social_security_card", StepStatus.PENDING, 1),
        _step("delivery", StepStatus.PENDING, 1),
    ]

    due = expected_completion(_birth_case(CaseStatus.IN_PROGRESS, running), BIRTH, CALENDAR)

    # 户口登记 by Fri 4; 医保 and 生育保险 by Mon 7 (the weekend skipped); 社保卡 by Tue 8; 出件 by Wed 9.
    assert due_zh(due.due_at) == "2026年12月9日"
    paused = [*running[:2], _step("hukou_registration", StepStatus.AWAITING_SUPPLEMENT, 1), *running[3:]]
    waiting = expected_completion(_birth_case(CaseStatus.AWAITING_SUPPLEMENT, paused), BIRTH, CALENDAR)
    assert (waiting.due_at, waiting.days_after_supplement) == (None, 4)  # 户口, 医保, 社保卡, 出件
    done = [_step(s.step, StepStatus.DONE, 1, completed_at=shanghai_at("2026-12-08T15:00")) for s in running]
    finished = expected_completion(_birth_case(CaseStatus.COMPLETED, done), BIRTH, CALENDAR)
    assert finished.completed_at == shanghai_at("2026-12-08T15:00") and finished.due_at is None

"""Daily work in the console, in a real browser (Chromium, headless) against real processes:
what an applicant, an officer, a window clerk and a supervisor meet on an ordinary day.

Each journey shares one running stack (module scope); each files its own newborn (its own
name and birth time: one case per subject). The journeys read what the page shows — a birth
date, a hint, a case number — never the test's own data, and every page their people visit is
scanned for developer text (regular expressions, English messages, codes) with the scan of
tests/api/test_console_plain_chinese.py.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from pathlib import Path
from urllib.parse import urlsplit

import httpx
import pytest
from playwright.sync_api import Browser, Frame, expect

from domain.catalogue import shipped_definitions
from domain.identity import make_id_number
from domain.samples import FATHER_ID, MOTHER_WITHOUT_MARRIAGE_RECORD_ID, sample_result
from domain.workcalendar import SHANGHAI
from tests.api.test_console_plain_chinese import READ_ATTRIBUTES, problems_in_text
from tests.e2e.conftest import login_headers
from tests.e2e.console_browser import Person, Screenshots, chromium
from tests.e2e.test_console_browser import BIRTHPLACE, birth_form_inputs, fill_birth_form

pytestmark = pytest.mark.e2e

BIRTH = shipped_definitions()["birth"]
ZH_DATE = re.compile(r"(\d{4})年(\d{1,2})月(\d{1,2})日")
ISO_DATE = re.compile(r"\d{4}-\d{2}-\d{2}(?!\d)|\d{2}:\d{2}:\d{2}|T\d{2}:\d{2}")
# The attributes people read (placeholder, title, aria-label, alt), from the page as the browser has it.
READ_ATTRIBUTES_JS = """(names) => Array.from(document.querySelectorAll(names.map((name) => `[${name}]`).join(",")))
  .flatMap((element) => names.map((name) => element.getAttribute(name)).filter(Boolean))"""


# --- every page a journey visits, scanned ------------------------------------------------------


@dataclass
class SeenPage:
    name: str
    url: str
    chunks: list[str]


class PageScan:
    """The pages a journey's people saw, as they saw them: the body's rendered text (line by
    line), the title and the attributes people read. Every page a person's browser navigated to
    must have been looked at, so that no page of the journey goes unscanned."""

    def __init__(self) -> None:
        self.seen: list[SeenPage] = []
        self.navigated: list[str] = []

    def watch(self, person: Person) -> None:
        page = person.page

        def navigated(frame: Frame) -> None:
            if frame == page.main_frame and frame.url.startswith("http"):
                self.navigated.append(frame.url)

        page.on("framenavigated", navigated)

    def look(self, person: Person, name: str) -> None:
        page = person.page
        page.wait_for_load_state()
        attributes: list[str] = page.evaluate(READ_ATTRIBUTES_JS, list(READ_ATTRIBUTES))
        chunks = [page.title(), *page.inner_text("body").splitlines(), *attributes]
        self.seen.append(SeenPage(name, page.url, [" ".join(chunk.split()) for chunk in chunks if chunk.strip()]))

    def unscanned(self) -> list[str]:
        looked = {urlsplit(page.url).path for page in self.seen}
        return sorted({urlsplit(url).path for url in self.navigated} - looked)

    def problems(self) -> list[str]:
        report: list[str] = []
        for page in self.seen:
            path = urlsplit(page.url).path
            for chunk in dict.fromkeys(page.chunks):
                report += [f"{page.name} ({path}): {problem} in {chunk!r}" for problem in problems_in_text(chunk)]
        return report

    def assert_plain(self) -> None:
        assert self.seen, "no page was scanned"
        assert not self.unscanned(), f"pages visited but never scanned: {self.unscanned()}"
        report = self.problems()
        assert not report, "developer text on console pages:\n" + "\n".join(report)


class Visitor(Person):
    """A person whose every page is scanned (``look``), and screenshotted when ``shot`` asks."""

    def __init__(self, browser: Browser, base_url: str, shots: Screenshots, scan: PageScan) -> None:
        super().__init__(browser, base_url, shots)
        self.scan = scan
        scan.watch(self)

    def look(self, name: str) -> None:
        self.scan.look(self, f"{self.username or '未登录'} · {name}")

    def log_in(self, username: str, screenshot: str | None = None) -> None:
        """Log in as Person does, looking at the login page and at the page the login leads to."""
        if screenshot is None:
            self.page.goto("/login")
            self.look("登录")
        super().log_in(username, screenshot)
        self.look("登录后首页")

    def shot(self, name: str) -> Path:
        self.look(name)
        return super().shot(name)


@pytest.fixture(scope="module")
def browser() -> Iterator[Browser]:
    with chromium() as launched:
        yield launched


@pytest.fixture(scope="module")
def shots() -> Screenshots:
    return Screenshots()


def _born(minutes_ago: int) -> datetime:
    """A birth two days ago, ``minutes_ago`` earlier still: each journey its own newborn."""
    return (datetime.now(SHANGHAI) - timedelta(days=2, minutes=minutes_ago)).replace(second=0, microsecond=0)


def test_back_and_submit_again_shows_the_existing_case_and_never_files_a_second(
    live_stack: str, browser: Browser, shots: Screenshots
) -> None:
    applicant = Person(browser, live_stack, shots)
    applicant.log_in("applicant2")
    inputs = birth_form_inputs(_born(10), delivery="mail", newborn="陈一一")
    # applicant2 is the father: he files for himself (an applicant must be the signed-in person).
    inputs |= {"applicant.name": "王强", "applicant.id_number": FATHER_ID, "applicant.phone": "13900000000"}
    inputs["applicant.relation"] = "father"
    applicant.page.goto("/apply/birth")
    fill_birth_form(applicant, inputs)
    applicant.testid("submit-case").click()
    applicant.flash("申请已受理")
    case_url = applicant.page.url
    assert re.search(r"/my/cases/[^/]+$", case_url), case_url

    # Back to the form: it comes again with a fresh idempotency key, and the browser fills it in again.
    applicant.page.go_back()
    expect(applicant.testid("submit-case")).to_be_visible()
    applicant.fill_inputs(inputs)
    applicant.testid("submit-case").click()

    expect(applicant.testid("form-error")).to_contain_text("已提交过相同申请")
    shots.take(applicant.page, "duplicate-submission")
    applicant.testid("existing-case-link").click()
    expect(applicant.page).to_have_url(case_url)
    applicant.page.goto("/my/cases")
    expect(applicant.page.locator('[data-testid="case-row"]')).to_have_count(1)
    applicant.close()


# --- the journeys' shared steps -----------------------------------------------------------------


def _day_shown(text: str) -> date:
    """The date written 年月日 in a piece of page text."""
    match = ZH_DATE.search(text)
    assert match, f"no date written 年月日 in {text!r}"
    return date(int(match.group(1)), int(match.group(2)), int(match.group(3)))


def _apply_online(applicant: Visitor, inputs: dict[str, str], label: str) -> tuple[str, str]:
    """The applicant fills the birth form in and submits it; the case's technical id and its
    number, as the case page shows them."""
    applicant.page.goto("/apply/birth")
    applicant.look(f"{label} 申请事项情形")
    fill_birth_form(applicant, inputs)
    applicant.look(f"{label} 申请表")
    applicant.testid("submit-case").click()
    applicant.flash("申请已受理")
    expect(applicant.page).to_have_url(re.compile(r"/my/cases/[^/]+$"))
    applicant.look(f"{label} 已受理")
    case_id = (applicant.testid("case-id").text_content() or "").strip()
    case_no = (applicant.testid("case-no").text_content() or "").strip()
    assert case_id and case_no and case_no != case_id, (case_id, case_no)
    # The number people quote is the one the flash message gave.
    applicant.flash(case_no)
    return case_id, case_no


def _complete_over_http(base_url: str, case_id: str, step: str) -> None:
    """The department's officer claims and completes a step through the JSON API (the hospital's
    own steps are not what the journey is about)."""
    definition = BIRTH.step(step)
    with httpx.Client(base_url=base_url, timeout=60) as client:
        headers = login_headers(client, f"{definition.department}_officer")
        task = f"{case_id}:{step}"
        claimed = client.post(f"/tasks/{task}/claim", headers=headers)
        assert claimed.status_code == 200, claimed.text
        result = sample_result(definition, {})
        completed = client.post(f"/tasks/{task}/complete", headers=headers, json={"result": result})
        assert completed.status_code == 200, completed.text


# --- a. the police officer registers the newborn's hukou from what the task page shows ---------------


def test_an_officer_completes_the_hukou_step_with_the_birth_date_read_from_the_page(
    live_stack: str, browser: Browser, shots: Screenshots
) -> None:
    scan = PageScan()
    born = _born(20)
    applicant = Visitor(browser, live_stack, shots, scan)
    applicant.log_in("applicant1", screenshot="hukou-login")
    case_id, _ = _apply_online(applicant, birth_form_inputs(born, delivery="mail", newborn="林小禾"), "出生")
    _complete_over_http(live_stack, case_id, "birth_certificate")  # the police step waits only for it

    officer = Visitor(browser, live_stack, shots, scan)
    officer.log_in("police_officer")
    task = f"{case_id}:hukou_registration"
    officer.open_task(task, inbox_screenshot="hukou-inbox")
    page = officer.page
    expect(page.locator("#task-title")).to_have_text("户口登记")
    officer.look("户口登记任务")
    officer.testid("claim").click()
    officer.flash("已签收")
    expect(officer.testid("task-status")).to_have_attribute("data-status", "claimed")
    officer.shot("hukou-claimed")

    # What the officer reads: the application's birth date and birthplace, and the hint beside the field.
    application = officer.testid("application-form")
    born_shown = application.locator('[data-field="newborn.born_at"]').inner_text()
    birthplace_shown = application.locator('[data-field="newborn.birthplace_division_code"]').inner_text().strip()
    hint = officer.testid("result-hint-citizen_id_number").inner_text()
    birth_day = _day_shown(born_shown)
    assert ZH_DATE.search(born_shown) and not ISO_DATE.search(born_shown), born_shown
    assert _day_shown(hint) == birth_day, (hint, born_shown)  # the hint repeats the application's date
    assert f"第7至14位为 {birth_day:%Y%m%d}" in hint, hint
    assert birth_day == born.date()  # …which is the day the applicant typed
    assert birthplace_shown == BIRTHPLACE
    parity = re.search(r"第17位为(奇数|偶数)", hint)
    assert parity, hint
    sequence = 7 if parity.group(1) == "奇数" else 8
    citizen_id = make_id_number(birthplace_shown, birth_day, sequence)

    officer.testid("result-citizen_id_number").fill(citizen_id)
    officer.testid("result-booklet_page").fill("户号330102012345第3页")
    officer.testid("complete").click()
    officer.flash("已办结")
    expect(officer.testid("step-done")).to_contain_text("本环节已办结")
    expect(officer.testid("step-result")).to_contain_text(citizen_id)
    expect(officer.testid("task-status")).to_have_text("已办结")
    officer.shot("hukou-done")
    officer.close()

    # The applicant sees the registration done, with the new ID number.
    hukou = applicant.page.locator('[data-testid="step"][data-step="hukou_registration"][data-status="done"]')
    applicant.reload_until(f"/my/cases/{case_id}", hukou, "the registered hukou")
    expect(hukou).to_contain_text("已办结")
    expect(hukou).to_contain_text(citizen_id)
    applicant.look("户口登记已办结")
    applicant.close()
    scan.assert_plain()


# --- b. a walk-in 补正 at the window ------------------------------------------------------------------


def test_the_clerk_records_a_walk_in_supplement_and_the_notice_shows_it_received(
    live_stack: str, browser: Browser, shots: Screenshots
) -> None:
    scan = PageScan()
    clerk = Visitor(browser, live_stack, shots, scan)
    clerk.log_in("hospital_clerk")
    # The data-sharing platform holds no marriage record for this mother: 结婚证 is owed from acceptance.
    inputs = birth_form_inputs(_born(30), delivery="pickup", newborn="林小满")
    inputs["mother.id_number"] = inputs["applicant.id_number"] = MOTHER_WITHOUT_MARRIAGE_RECORD_ID
    clerk.testid("window-apply-birth").click()
    clerk.look("窗口受理情形")
    fill_birth_form(clerk, inputs)
    clerk.look("窗口受理申请表")
    clerk.testid("submit-case").click()
    clerk.flash("请打印受理通知书")
    page = clerk.page
    expect(page).to_have_url(re.compile(r"/window/cases/[^/]+/notice$"))
    notice_url = urlsplit(page.url).path
    sheet = clerk.testid("acceptance-notice")
    case_id = sheet.get_attribute("data-case-id") or ""
    assert case_id

    # The printed notice names the applicant, writes its dates 年月日 and says what is owed and why.
    expect(clerk.testid("applicant-name")).to_have_text(inputs["applicant.name"])
    expect(clerk.testid("notice-text")).to_contain_text("尚需补正以下材料：结婚证")
    owed = clerk.testid("materials-owed")
    expect(owed).to_contain_text("结婚证")
    expect(owed).to_contain_text("数据共享平台未能获取")
    expect(clerk.testid("accepted-at")).to_have_text(re.compile(r"^\d{4}年\d{1,2}月\d{1,2}日 \d{2}:\d{2}$"))
    expect(clerk.testid("notice-date")).to_have_text(re.compile(r"^\d{4}年\d{1,2}月\d{1,2}日$"))
    expect(clerk.testid("expected-completion")).to_have_text(re.compile(r"^补正材料齐全之日起\d+个工作日内全部办结$"))
    printed = sheet.inner_text()
    assert ZH_DATE.search(printed) and not ISO_DATE.search(printed), printed
    expect(clerk.testid("record-supplement")).to_be_visible()
    clerk.shot("walk-in-notice-owing")

    # The window's list shows the case waiting for materials, with the way to record them.
    clerk.testid("nav-window").click()
    row = page.locator(f'[data-testid="case-row"][data-case-id="{case_id}"]')
    expect(row).to_contain_text("待补正")
    clerk.look("窗口受理列表")
    row.get_by_test_id("record-supplement").click()
    expect(page).to_have_url(re.compile(r"/window/cases/[^/]+/supplement$"))
    material = page.locator('[data-testid="owed-material"][data-code="marriage_certificate"]')
    expect(material).to_contain_text("结婚证")
    expect(material).to_contain_text("补正原因：数据共享平台未能获取")
    expect(clerk.testid("case-no")).not_to_have_text(case_id)  # the case number, not the technical id
    clerk.shot("walk-in-supplement")

    # Sent empty first: told beside the material, nothing recorded.
    clerk.testid("record-supplement").click()
    expect(clerk.testid("supplement-error")).to_contain_text("补正材料未收齐")
    expect(clerk.testid("error-marriage_certificate")).to_contain_text("请填写收取的材料编号")
    clerk.look("补正未填")
    material.get_by_role("textbox").fill("JHZ-330102-2026-0018")
    clerk.testid("record-supplement").click()
    clerk.flash("已收取补正材料：结婚证")
    expect(page).to_have_url(re.compile(f"{re.escape(notice_url)}$"))

    received = clerk.testid("materials-received").locator('[data-testid="material"]', has_text="结婚证")
    expect(received).to_have_attribute("data-status", "received")
    expect(received).to_contain_text("已收取")
    expect(received).to_contain_text("JHZ-330102-2026-0018")
    expect(clerk.testid("materials-owed")).to_have_count(0)
    expect(clerk.testid("notice-text")).to_contain_text("申请材料齐全")
    expect(clerk.testid("record-supplement")).to_have_count(0)
    expect(clerk.testid("expected-completion")).to_have_text(re.compile(r"最迟于\d{4}年\d{1,2}月\d{1,2}日前全部办结$"))
    printed = sheet.inner_text()
    assert "需补正" not in printed and not ISO_DATE.search(printed), printed
    clerk.shot("walk-in-notice-received")

    clerk.testid("nav-window").click()
    expect(row).not_to_contain_text("待补正")
    expect(row.get_by_test_id("record-supplement")).to_have_count(0)
    clerk.look("窗口受理列表（已补正）")
    clerk.close()
    scan.assert_plain()


# --- c. the supervisor finds a case by the applicant's name ---------------------------------------


def test_a_supervisor_finds_a_case_by_the_applicants_name_and_opens_it(
    live_stack: str, browser: Browser, shots: Screenshots
) -> None:
    scan = PageScan()
    name = "欧阳晓雯"  # no other journey's applicant: the search finds this case alone
    inputs = birth_form_inputs(_born(40), delivery="pickup", newborn="欧阳小树")
    # A mother without an account, filing at the hospital's window with her ID card.
    inputs["mother.name"] = inputs["applicant.name"] = name
    inputs["mother.id_number"] = inputs["applicant.id_number"] = make_id_number("330102", date(1994, 6, 8), 24)
    clerk = Visitor(browser, live_stack, shots, scan)
    clerk.log_in("hospital_clerk")
    clerk.testid("window-apply-birth").click()
    clerk.look("查询 窗口受理情形")
    fill_birth_form(clerk, inputs)
    clerk.look("查询 窗口受理申请表")
    clerk.testid("submit-case").click()
    clerk.flash("请打印受理通知书")
    clerk.look("查询 受理通知书")
    case_id = clerk.testid("acceptance-notice").get_attribute("data-case-id") or ""
    case_no = (clerk.testid("case-no").text_content() or "").strip()
    assert case_id and case_no, (case_id, case_no)
    clerk.shot("search-walk-in-case")
    clerk.close()

    supervisor = Visitor(browser, live_stack, shots, scan)
    supervisor.log_in("supervisor")
    supervisor.testid("nav-cases").click()
    page = supervisor.page
    expect(page.locator("#search-title")).to_have_text("案件查询")
    supervisor.look("案件查询")
    page.get_by_label("申请人姓名").fill("晓雯")  # part of the name, as read out on the phone
    supervisor.testid("search").click()
    expect(page).to_have_url(re.compile(r"/dashboard/cases\?"))
    expect(supervisor.testid("search-total")).to_have_text("1")
    row = page.locator(f'[data-testid="search-row"][data-case-id="{case_id}"]')
    expect(row).to_contain_text("欧***")  # found by the name, shown masked like the ID numbers
    expect(row).not_to_contain_text(name)
    expect(row).to_contain_text("出生一件事")
    expect(row.get_by_test_id("open-case")).to_have_text(case_no)
    supervisor.shot("search-by-name")

    row.get_by_test_id("open-case").click()
    expect(page).to_have_url(re.compile(rf"/dashboard/cases/{re.escape(case_id)}$"))
    expect(page.locator("#case-title")).to_contain_text("出生一件事")
    expect(supervisor.testid("case-no")).to_have_text(case_no)
    expect(page.locator('[data-testid="timeline-event"]').first).to_have_attribute("data-type", "accepted")
    supervisor.shot("search-opened-case")
    supervisor.close()
    scan.assert_plain()

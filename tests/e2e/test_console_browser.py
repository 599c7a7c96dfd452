"""The web console in a real browser (Chromium, headless) against real processes: the birth
case from the applicant's form, through every department's inbox, to the rating and the
supervisor's dashboard — plus a walk-in application at the hospital's window, its printable
受理通知书 and the window's 出件 (delivery) task.

Each page visited is saved as a full-page screenshot under ``test-artifacts/console/``.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from datetime import datetime, timedelta

import pytest
from playwright.sync_api import Browser, expect

from domain.identity import make_id_number
from domain.samples import FATHER_ID, MOTHER_ID, SAMPLE_ADDRESS
from domain.workcalendar import SHANGHAI
from tests.e2e.conftest import StackFactory
from tests.e2e.console_browser import Person, Screenshots, chromium

pytestmark = pytest.mark.e2e

BIRTHPLACE = "330102"
# The online channel's steps (domain/things/birth.yaml, situation 婚生·随父落户), by department, in
# the order they open; the window channels add 出件 at the accepting unit.
ONLINE_STEPS = [
    "birth_certificate",
    "vaccination_certificate",
    "hukou_registration",
    "medical_insurance_enrollment",
    "maternity_benefit_review",
    "social_security_card",
]
STEP_ZH = {
    "birth_certificate": "出生医学证明办理",
    "vaccination_certificate": "预防接种证办理",
    "hukou_registration": "户口登记",
    "medical_insurance_enrollment": "医保参保登记",
    "maternity_benefit_review": "生育保险待遇审核",
    "social_security_card": "社保卡办理",
    "delivery": "出件",
}
OFFICER_STEPS = {
    "hospital_officer": ["birth_certificate", "vaccination_certificate"],
    "police_officer": ["hukou_registration"],
    "medical_security_officer": ["medical_insurance_enrollment", "maternity_benefit_review"],
    "hr_social_security_officer": ["social_security_card"],
}
SHARED_MATERIALS = ["mother_id_card", "father_id_card", "father_hukou_booklet", "marriage_certificate"]


@pytest.fixture
def browser() -> Iterator[Browser]:
    with chromium() as launched:
        yield launched


def birth_form_inputs(born: datetime, delivery: str, newborn: str = "王小明") -> dict[str, str]:
    """What the applicant types into the birth form (married, the child registered with the father)."""
    values = {
        "newborn.name": newborn,
        "newborn.sex": "male",
        "newborn.born_at": born.strftime("%Y-%m-%dT%H:%M"),  # <input type="datetime-local">, Beijing time
        "newborn.birthplace_division_code": BIRTHPLACE,
        "mother.name": "李芳",
        "mother.id_number": MOTHER_ID,
        "father.name": "王强",
        "father.id_number": FATHER_ID,
        "hukou.address": SAMPLE_ADDRESS,
        "applicant.name": "李芳",
        "applicant.id_number": MOTHER_ID,
        "applicant.phone": "13800000000",
        "applicant.relation": "mother",
        "delivery.method": delivery,
    }
    if delivery == "mail":
        values["delivery.address"] = SAMPLE_ADDRESS
    return values


def step_results(born: datetime, serial: int) -> dict[str, dict[str, str]]:
    """Each step's result as the officer types it; ``serial`` keeps two cases' numbers apart."""
    return {
        "birth_certificate": {"certificate_no": f"X33010200{serial}"},
        "vaccination_certificate": {"certificate_no": f"YM-2026-00012{serial}"},
        "hukou_registration": {
            # The newborn's ID number carries the birth date of the form; an odd sequence: a boy.
            "citizen_id_number": make_id_number(BIRTHPLACE, born.date(), 2 * serial - 1),
            "booklet_page": f"户号33010201234{serial}第3页",
        },
        "medical_insurance_enrollment": {"enrollment_no": f"YB-330100-8800{serial}"},
        "maternity_benefit_review": {"medical_costs_settled": "3200.00", "allowance_amount": "15230.50"},
        "social_security_card": {"card_no": f"K3301020012{serial}"},
        "delivery": {"recipient": "李芳"},
    }


def expect_questions_first(person: Person) -> None:
    """The situation questions come first; the form itself only once they are answered."""
    page = person.page
    expect(person.testid("question-marital_status")).to_contain_text("新生儿父母是否登记结婚")
    expect(person.testid("question-hukou_follow")).to_contain_text("新生儿随父还是随母落户")
    expect(person.testid("submit-case")).to_have_count(0)
    expect(page.locator("#steps")).to_contain_text("选择情形后显示")


def fill_birth_form(person: Person, inputs: dict[str, str]) -> None:
    person.choose(person.testid("question-marital_status"), "婚生")
    person.choose(person.testid("question-hukou_follow"), "随父落户")
    person.testid("choose-situation").click()
    expect(person.testid("situation")).to_contain_text("当前情形：婚生·随父落户")
    expect(person.testid("group-father")).to_contain_text("父亲信息")
    # The situation's answers are not asked again as fields.
    expect(person.page.locator('[name="marital_status"], [name="hukou.follow"]')).to_have_count(0)
    # Materials the data-sharing platform holds are fetched, not uploaded; the form is the registration form.
    for code in SHARED_MATERIALS:
        expect(person.testid(f"material-{code}")).to_contain_text("自动获取")
    expect(person.testid("material-registration_form")).to_contain_text("在线填写")
    expect(person.testid("material-unmarried_birth_declaration")).to_have_count(0)
    steps_table = person.page.locator("#steps")
    for step in ONLINE_STEPS:
        expect(steps_table).to_contain_text(STEP_ZH[step])
    person.fill_inputs(inputs)


def test_a_birth_case_runs_through_the_console_in_a_real_browser(
    live_stack_factory: StackFactory, browser: Browser
) -> None:
    stack = live_stack_factory().start_all()
    shots = Screenshots()
    born = (datetime.now(SHANGHAI) - timedelta(days=2)).replace(second=0, microsecond=0)
    online_results, window_results = step_results(born, 1), step_results(born, 2)

    def person() -> Person:
        return Person(browser, stack.base_url, shots)

    # --- the applicant applies online ------------------------------------------------------
    applicant = person()
    applicant.log_in("applicant1", screenshot="login")
    expect(applicant.page).to_have_url(re.compile(r"/my/cases$"))
    expect(applicant.page.locator("#my-cases")).to_contain_text("您还没有办件")
    applicant.shot("my-cases-empty")

    applicant.testid("nav-apply").click()
    expect(applicant.page.get_by_role("heading", name="我要办理")).to_be_visible()
    expect(applicant.page.locator('[data-testid="thing-card"][data-thing="birth"]')).to_contain_text("出生一件事")
    applicant.shot("apply-things")
    applicant.testid("apply-birth").click()
    expect(applicant.page.locator("#apply-title")).to_have_text("网上申办：出生一件事")
    expect_questions_first(applicant)
    applicant.shot("apply-questions")
    fill_birth_form(applicant, birth_form_inputs(born, delivery="mail"))
    applicant.shot("apply-form")
    applicant.testid("submit-case").click()

    applicant.flash("申请已受理")
    expect(applicant.page).to_have_url(re.compile(r"/my/cases/[^/]+$"))
    online_case = (applicant.testid("case-id").text_content() or "").strip()
    assert online_case, "the case page shows no case number"
    expect(applicant.testid("case-status")).to_have_attribute("data-status", re.compile("accepted|in_progress"))
    notice = applicant.testid("acceptance-notice")
    expect(notice).to_contain_text("受理通知书")
    expect(notice).to_contain_text("网上申办")
    expect(notice).to_contain_text("邮寄送达")
    expect(notice).to_contain_text("结婚证")
    expect(notice.get_by_text("自动获取")).to_have_count(len(SHARED_MATERIALS))
    progress = applicant.page.locator('[data-testid="step"]')
    expect(progress).to_have_count(len(ONLINE_STEPS))  # online: results go out step by step, no 出件
    first_step = applicant.page.locator('[data-testid="step"][data-step="birth_certificate"]')
    expect(first_step).to_have_attribute("data-status", "open")
    expect(first_step).to_contain_text("出生医学证明办理")
    # A due time at 24:00 reads as its last day, "应于 2026年12月4日前办结", with the working days left.
    due_shown = re.search(r"应于 (\d{4}年\d{1,2}月\d{1,2}日(?: \d{2}:\d{2})?)前办结", first_step.inner_text())
    assert due_shown, first_step.inner_text()
    expect(first_step.get_by_test_id("step-time-left")).to_have_text(re.compile(r"^(今日到期|剩余 \d+ 个工作日)$"))
    hukou = applicant.page.locator('[data-testid="step"][data-step="hukou_registration"]')
    expect(hukou).to_have_attribute("data-status", "pending")
    expect(hukou).to_contain_text("待前序环节办结后启动")
    expect(applicant.page.locator("#rating")).to_contain_text("办结送达后可对本次办理作出评价")
    applicant.shot("case-accepted")

    # --- a walk-in applicant at the hospital's window; the clerk prints the 受理通知书 -------------
    clerk = person()
    clerk.log_in("hospital_clerk")
    expect(clerk.page.get_by_role("heading", name=re.compile("窗口受理"))).to_be_visible()
    clerk.shot("window")
    clerk.testid("window-apply-birth").click()
    expect(clerk.page.locator("#apply-title")).to_have_text("窗口受理：出生一件事")
    expect_questions_first(clerk)
    fill_birth_form(clerk, birth_form_inputs(born, delivery="pickup", newborn="王小刚"))
    clerk.shot("window-apply-form")
    expect(clerk.testid("submit-case")).to_have_text("确认受理")
    clerk.testid("submit-case").click()

    clerk.flash("请打印受理通知书")
    expect(clerk.page).to_have_url(re.compile(r"/window/cases/[^/]+/notice$"))
    window_case = clerk.testid("acceptance-notice").get_attribute("data-case-id") or ""
    assert window_case and window_case != online_case
    printed = clerk.testid("acceptance-notice")
    expect(printed.locator("h1")).to_contain_text("受理通知书")
    expect(clerk.testid("window")).to_contain_text("助产机构窗口")
    expect(clerk.testid("accepting-staff")).to_have_text("助产机构窗口人员")  # the display name, not the login
    expect(clerk.testid("pickup")).to_contain_text("窗口领取")
    expect(clerk.testid("materials-received")).to_contain_text("数据共享自动获取")
    expect(clerk.testid("time-limits")).to_contain_text("即办")  # the hospital's own steps, at its window
    expect(clerk.testid("time-limits")).to_contain_text("出件")
    clerk.shot("notice-print")
    # Printed: only the sheet, no header, navigation, flash or print button.
    clerk.page.emulate_media(media="print")
    expect(clerk.testid("print")).to_be_hidden()
    expect(clerk.page.locator("#site-header")).to_be_hidden()
    expect(printed).to_be_visible()
    clerk.shot("notice-print-media")
    clerk.page.emulate_media(media="screen")

    # --- each department's officer works both cases from the inbox ---------------------------
    for username, steps in OFFICER_STEPS.items():
        officer = person()
        officer.log_in(username)
        expect(officer.testid("nav-inbox")).to_have_text("待办任务")
        for index, step in enumerate(steps):
            prefix = f"{username.removesuffix('_officer')}-{step}" if index == 0 else None
            officer.claim_and_complete(
                f"{online_case}:{step}",
                STEP_ZH[step],
                online_results[step],
                prefix,
                due_shown.group(1) if step == "birth_certificate" else None,
            )
            officer.claim_and_complete(f"{window_case}:{step}", STEP_ZH[step], window_results[step])
        officer.close()

    # --- the window hands everything over (出件) ----------------------------------------------
    clerk.testid("nav-inbox").click()
    expect(clerk.page.locator("#inbox-title")).to_be_visible()
    clerk.claim_and_complete(
        f"{window_case}:delivery", STEP_ZH["delivery"], window_results["delivery"], "clerk-delivery"
    )
    window_row = clerk.page.locator(f'[data-testid="case-row"][data-case-id="{window_case}"]')
    clerk.reload_until("/window", window_row.filter(has_text="已办结"), "the delivered case")
    clerk.shot("window-delivered")
    clerk.close()

    # --- the applicant sees every step done and rates the case (好差评) --------------------------
    done = applicant.page.locator('[data-testid="case-status"][data-status="completed"]')
    applicant.reload_until(f"/my/cases/{online_case}", done, "the completed case")
    expect(applicant.testid("case-status")).to_have_text("已办结")
    for step in ONLINE_STEPS:
        expect(applicant.page.locator(f'[data-testid="step"][data-step="{step}"]')).to_have_attribute(
            "data-status", "done"
        )
    expect(applicant.page.locator("#progress")).to_contain_text("出生医学证明编号")
    expect(applicant.page.locator("#progress")).to_contain_text(online_results["social_security_card"]["card_no"])
    expect(applicant.page.locator("#rating")).to_contain_text("前对本次办理作出评价")
    applicant.shot("case-completed")
    applicant.testid("score-5").check()
    applicant.page.locator("#rating-comment").fill("一次申请，全部办好，很方便")
    applicant.testid("rate").click()
    applicant.flash("感谢您的评价")
    expect(applicant.testid("rating")).to_contain_text("非常满意")
    expect(applicant.testid("rating")).to_contain_text("整体评价")
    applicant.shot("case-rated")
    applicant.testid("nav-my-cases").click()
    expect(applicant.page.locator(f'[data-testid="case-row"][data-case-id="{online_case}"]')).to_contain_text("已办结")
    applicant.close()

    # --- the supervisor: timeliness, ratings and the case's timeline -----------------------------
    supervisor = person()
    supervisor.log_in("supervisor")
    expect(supervisor.page).to_have_url(re.compile(r"/dashboard$"))
    expect(supervisor.page.locator("#dashboard-title")).to_have_text("效能总览")
    steps_completed = 2 * len(ONLINE_STEPS) + 1  # both cases' department steps and the window's 出件
    expect(supervisor.testid("completed-count")).to_have_text(str(steps_completed))
    rate = supervisor.testid("on-time-rate")
    expect(rate).to_have_text(re.compile(r"^\d{1,3}(\.\d)?%$"))
    expect(rate).to_have_attribute("data-rate", re.compile(r"^(0|1)(\.\d+)?$"))
    for department in ("hospital", "police", "medical_security", "hr_social_security"):
        row = supervisor.page.locator(f'[data-testid="department-row"][data-department="{department}"]')
        expect(row.get_by_test_id("department-rate")).to_have_text(re.compile(r"%$"))
    expect(supervisor.page.locator("#department-chart svg")).to_be_visible()
    supervisor.shot("dashboard")

    supervisor.testid("nav-ratings").click()
    birth_ratings = supervisor.page.locator('[data-testid="ratings-by-thing"] [data-testid="rating-row"]').filter(
        has_text="出生一件事"
    )
    expect(birth_ratings.locator("td").nth(1)).to_have_text("1")  # 评价数
    expect(birth_ratings.get_by_test_id("average-score")).to_have_text("5.00")
    supervisor.shot("ratings")

    supervisor.page.goto(f"/dashboard/cases/{online_case}")
    expect(supervisor.page.locator("#case-title")).to_contain_text("出生一件事")
    expect(supervisor.testid("case-status")).to_have_text("已办结")
    timeline_steps = supervisor.page.locator('[data-testid="timeline-step"]')
    expect(timeline_steps).to_have_count(len(ONLINE_STEPS))
    expect(timeline_steps.get_by_test_id("step-timeliness").filter(has_text="按时")).to_have_count(len(ONLINE_STEPS))
    events = supervisor.page.locator('[data-testid="timeline-event"]')
    expect(events.first).to_have_attribute("data-type", "accepted")
    expect(supervisor.page.locator('[data-testid="timeline-event"][data-type="completed"]')).to_have_count(
        len(ONLINE_STEPS)
    )
    expect(supervisor.page.locator('[data-testid="timeline-event"][data-type="case_completed"]')).to_have_count(1)
    expect(supervisor.testid("nothing-to-supervise")).to_be_visible()
    supervisor.shot("case-timeline")
    supervisor.close()

    assert [path.name for path in shots.taken][:2] == ["01-login.png", "02-my-cases-empty.png"]
    assert all(path.stat().st_size > 0 for path in shots.taken)

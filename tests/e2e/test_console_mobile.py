"""The applicant's pages on a phone: Chromium with a 390 x 844 screen (an iPhone 12-15's CSS
width), against real processes. Every page fits the screen's width — nothing to scroll sideways —
and 我的办件 shows each case's status and its link on the screen; the form's inputs bring up the
right keyboard (inputmode, type="tel").

Screenshots of each page go to ``test-artifacts/console-mobile/``.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from datetime import datetime, timedelta

import pytest
from playwright.sync_api import Browser, Locator, expect

from domain.workcalendar import SHANGHAI
from tests.e2e.conftest import StackFactory
from tests.e2e.console_browser import ACTION_TIMEOUT_MS, SCREENSHOT_DIR, Person, Screenshots, chromium
from tests.e2e.test_console_browser import birth_form_inputs, fill_birth_form

pytestmark = pytest.mark.e2e

PHONE_WIDTH, PHONE_HEIGHT = 390, 844
# Elements sticking out to the right of the screen, to say what is too wide when a page is.
WIDER_THAN_SCREEN = """() => {
  const width = document.documentElement.clientWidth;
  return Array.from(document.querySelectorAll('body *'))
    .filter((element) => element.getBoundingClientRect().right > width + 0.5)
    .slice(0, 8)
    .map((element) => element.tagName.toLowerCase() + (element.id ? '#' + element.id : '')
      + (element.className && typeof element.className === 'string' ? '.' + element.className.split(' ').join('.') : '')
      + ' right=' + Math.round(element.getBoundingClientRect().right));
}"""


class Phone(Person):
    """A person at a phone: a 390-px-wide mobile screen with touch, the page's viewport meta obeyed."""

    def __init__(self, browser: Browser, base_url: str, screenshots: Screenshots) -> None:
        self.context = browser.new_context(
            base_url=base_url,
            locale="zh-CN",
            timezone_id="Asia/Shanghai",
            viewport={"width": PHONE_WIDTH, "height": PHONE_HEIGHT},
            device_scale_factor=3,
            is_mobile=True,
            has_touch=True,
        )
        self.context.set_default_timeout(ACTION_TIMEOUT_MS)
        self.page = self.context.new_page()
        self.screenshots = screenshots
        self.username = ""

    def fits_the_screen(self, what: str) -> None:
        """Nothing on the page is wider than the screen: no sideways scrolling."""
        self.page.wait_for_load_state("load")
        scroll_width = self.page.evaluate("document.documentElement.scrollWidth")
        assert scroll_width <= PHONE_WIDTH, (
            f"{what}: the page is {scroll_width}px wide on a {PHONE_WIDTH}px screen; "
            f"too wide: {self.page.evaluate(WIDER_THAN_SCREEN)}"
        )

    def on_screen(self, locator: Locator, what: str) -> None:
        """Shown, and within the screen's width (left and right edges)."""
        expect(locator).to_be_visible()
        box = locator.bounding_box()
        assert box is not None, what
        assert box["x"] >= 0 and box["x"] + box["width"] <= PHONE_WIDTH, f"{what} is off the screen: {box}"


@pytest.fixture
def browser() -> Iterator[Browser]:
    with chromium() as launched:
        yield launched


def test_the_applicant_pages_fit_a_390px_phone_screen(live_stack_factory: StackFactory, browser: Browser) -> None:
    stack = live_stack_factory().start_all()
    shots = Screenshots(SCREENSHOT_DIR.parent / "console-mobile")
    born = (datetime.now(SHANGHAI) - timedelta(days=2)).replace(second=0, microsecond=0)
    phone = Phone(browser, stack.base_url, shots)
    page = phone.page

    phone.log_in("applicant1", screenshot="login")
    expect(page).to_have_url(re.compile(r"/my/cases$"))
    phone.fits_the_screen("我的办件 (empty)")
    assert page.evaluate("window.innerWidth") == PHONE_WIDTH  # the viewport meta: laid out at the phone's width
    # The site icon is linked from every page.
    expect(page.locator('link[rel="icon"]')).to_have_attribute("href", "/static/favicon.svg")

    # --- the things on offer, and the application form -----------------------------------------
    phone.testid("nav-apply").click()
    expect(page.locator('[data-testid="thing-card"][data-thing="birth"]')).to_be_visible()
    phone.fits_the_screen("我要办理")
    phone.shot("things")

    phone.testid("apply-birth").click()
    expect(page.locator("#apply-title")).to_have_text("网上申办：出生一件事")
    phone.fits_the_screen("the situation questions")
    fill_birth_form(phone, birth_form_inputs(born, delivery="mail"))
    phone.fits_the_screen("the application form")
    phone.shot("apply-form")

    # The keyboards: an ID number may end in X, so the text keyboard with capitals; a phone
    # number the phone keypad; a code of digits the numeric keypad.
    for name in ("mother.id_number", "father.id_number", "applicant.id_number"):
        id_input = page.locator(f'input[name="{name}"]')
        expect(id_input).to_have_attribute("inputmode", "text")
        expect(id_input).to_have_attribute("autocapitalize", "characters")
        expect(id_input).to_have_attribute("autocomplete", "off")
    phone_input = page.locator('input[name="applicant.phone"]')
    expect(phone_input).to_have_attribute("type", "tel")
    expect(phone_input).to_have_attribute("inputmode", "tel")
    expect(page.locator('input[name="newborn.birthplace_division_code"]')).to_have_attribute("inputmode", "numeric")

    phone.testid("submit-case").click()
    phone.flash("申请已受理")
    expect(page).to_have_url(re.compile(r"/my/cases/[^/]+$"))
    case_id = (phone.testid("case-id").text_content() or "").strip()
    assert case_id
    expect(phone.testid("acceptance-notice")).to_contain_text("受理通知书")
    first_step = page.locator('[data-testid="step"][data-step="birth_certificate"]')
    expect(first_step).to_contain_text(re.compile(r"应于 \d{4}年\d{1,2}月\d{1,2}日"))
    phone.fits_the_screen("the case page")
    phone.on_screen(phone.testid("case-status"), "the case's status")
    phone.shot("case")

    # --- 我的办件: a card per case, its status and link on the screen -------------------------------
    phone.testid("nav-my-cases").click()
    row = page.locator(f'[data-testid="case-row"][data-case-id="{case_id}"]')
    expect(row).to_be_visible()
    expect(page.locator("#my-cases thead")).to_be_hidden()  # labels beside each value instead
    phone.fits_the_screen("我的办件")
    phone.on_screen(row.get_by_test_id("case-row-status"), "the case row's status")
    phone.on_screen(row.get_by_test_id("open-case"), "the case row's link")
    expect(row).to_contain_text("出生一件事")
    expect(row).to_contain_text(re.compile(r"\d{4}年\d{1,2}月\d{1,2}日 \d{2}:\d{2}"))  # 提交时间
    phone.shot("my-cases")

    row.get_by_test_id("open-case").tap()
    expect(phone.testid("case-id")).to_have_text(case_id)
    phone.fits_the_screen("the case page, opened from the list")
    phone.close()

    assert all(path.stat().st_size > 0 for path in shots.taken)

"""A real browser for the web console's end-to-end test: Debian's Chromium driven by
Playwright (never a browser Playwright downloads), one browser context (cookie jar) per
person, and full-page screenshots numbered in the order the pages were visited."""

from __future__ import annotations

import re
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest
from playwright.sync_api import Browser, BrowserContext, Locator, Page, expect, sync_playwright

from settings import ROOT

CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
SCREENSHOT_DIR = ROOT / "test-artifacts" / "console"
# A page waits on the workflow (submit, claim, complete): generous on a loaded 2-core machine.
ACTION_TIMEOUT_MS = 30_000
DEMO_PASSWORD = "demo"


@contextmanager
def chromium() -> Iterator[Browser]:
    """Headless Chromium on a fresh profile (Playwright's ``launch`` makes a throwaway user-data dir)."""
    if not CHROMIUM.exists():
        pytest.fail(
            f"Chromium is missing ({CHROMIUM}): `make test` installs it (Debian packages chromium and "
            "fonts-wqy-microhei, the Makefile's system-deps target); Playwright never downloads a browser here"
        )
    expect.set_options(timeout=ACTION_TIMEOUT_MS)
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=str(CHROMIUM), headless=True, args=CHROMIUM_ARGS)
        try:
            yield browser
        finally:
            browser.close()


class Screenshots:
    """Full-page screenshots named ``01-login.png``, ``02-…`` in the order they are taken."""

    def __init__(self, directory: Path = SCREENSHOT_DIR) -> None:
        self.directory = directory
        directory.mkdir(parents=True, exist_ok=True)
        for old in directory.glob("*.png"):
            old.unlink()
        self.taken: list[Path] = []

    def take(self, page: Page, name: str) -> Path:
        path = self.directory / f"{len(self.taken) + 1:02d}-{name}.png"
        page.screenshot(path=str(path), full_page=True)
        self.taken.append(path)
        return path


class Person:
    """One person at their own browser window: a context of their own, so their own session cookie."""

    def __init__(self, browser: Browser, base_url: str, screenshots: Screenshots) -> None:
        self.context: BrowserContext = browser.new_context(
            base_url=base_url, locale="zh-CN", timezone_id="Asia/Shanghai", viewport={"width": 1280, "height": 900}
        )
        self.context.set_default_timeout(ACTION_TIMEOUT_MS)
        self.page: Page = self.context.new_page()
        self.screenshots = screenshots
        self.username = ""

    def shot(self, name: str) -> Path:
        return self.screenshots.take(self.page, name)

    def testid(self, testid: str) -> Locator:
        return self.page.get_by_test_id(testid)

    def log_in(self, username: str, screenshot: str | None = None) -> None:
        """Open the console's home page (anonymous: sent to the login page) and log in."""
        page = self.page
        page.goto("/")
        expect(page).to_have_url(re.compile(r"/login(\?|$)"))
        expect(page.locator("html")).to_have_attribute("lang", "zh-CN")
        expect(page.get_by_role("heading", name="登录一件事集成服务")).to_be_visible()
        if screenshot:
            self.shot(screenshot)
        self.testid("username-input").fill(username)
        self.testid("password-input").fill(DEMO_PASSWORD)
        self.testid("login-submit").click()
        expect(self.testid("username")).to_have_text(username)
        self.username = username

    def flash(self, text: str) -> None:
        expect(self.testid("flash")).to_contain_text(text)

    def choose(self, scope: Locator, label: str) -> None:
        """Tick the radio button labelled exactly ``label`` (婚生 is not 非婚生)."""
        scope.get_by_label(label, exact=True).check()

    def fill_inputs(self, values: dict[str, str]) -> None:
        """Type into the inputs named by their form paths; radio groups get the option whose value is given."""
        for name, value in values.items():
            field = self.page.locator(f'[name="{name}"]')
            if field.first.get_attribute("type") == "radio":
                self.page.locator(f'input[name="{name}"][value="{value}"]').check()
            else:
                field.fill(value)

    def reload_until(self, path: str, ready: Locator, what: str, timeout_s: float = 60) -> None:
        """Open ``path`` again until ``ready`` is on it: the read model follows the workflow a moment later."""
        deadline = time.monotonic() + timeout_s
        while True:
            self.page.goto(path)
            if ready.count() > 0:
                return
            if time.monotonic() > deadline:
                raise AssertionError(f"{self.username}: {what} not shown on {path} within {timeout_s:.0f}s")
            self.page.wait_for_timeout(400)

    def task_row(self, task_id: str) -> Locator:
        return self.page.locator(f'[data-testid="task-row"][data-task-id="{task_id}"]')

    def open_task(self, task_id: str, inbox_screenshot: str | None = None) -> None:
        """Find the task in the inbox (it opens once the steps before it are done) and open it."""
        self.reload_until("/inbox", self.task_row(task_id), f"task {task_id}")
        expect(self.page.locator("#inbox-title")).to_have_text(re.compile("待办任务|出件任务"))
        if inbox_screenshot:
            self.shot(inbox_screenshot)
        self.task_row(task_id).get_by_test_id("open-task").click()
        expect(self.testid("case-id")).to_have_text(task_id.split(":", 1)[0])

    def claim_and_complete(
        self,
        task_id: str,
        step_zh: str,
        result: dict[str, str],
        screenshot_prefix: str | None = None,
        due_shown_to_applicant: str | None = None,
    ) -> None:
        """签收 then 办结 the open task with the step's result form, as the officer would."""
        page = self.page
        self.open_task(task_id, f"{screenshot_prefix}-inbox" if screenshot_prefix else None)
        expect(page.locator("#task-title")).to_have_text(step_zh)
        if due_shown_to_applicant:
            # The officer and the applicant read the same deadline, written the same way.
            expect(self.testid("due-at")).to_contain_text(due_shown_to_applicant)
        expect(self.testid("task-status")).to_have_attribute("data-status", "open")
        expect(self.testid("task-actions")).to_contain_text("该任务尚未签收")
        if screenshot_prefix:
            self.shot(f"{screenshot_prefix}-task")
        self.testid("claim").click()
        self.flash("已签收")
        expect(self.testid("task-status")).to_have_attribute("data-status", "claimed")
        expect(self.testid("assignee")).to_contain_text(f"{self.username}（本人）")
        for name, value in result.items():
            self.testid(f"result-{name}").fill(value)
        if screenshot_prefix:
            self.shot(f"{screenshot_prefix}-result-form")
        self.testid("complete").click()
        self.flash("已办结")
        expect(self.testid("step-done")).to_contain_text("本环节已办结")
        result_facts = self.testid("step-result")
        for value in result.values():
            expect(result_facts).to_contain_text(value)
        if screenshot_prefix:
            self.shot(f"{screenshot_prefix}-done")

    def close(self) -> None:
        self.context.close()

"""The task operations in the officer's console (issue 14): on a claimed task the officer can put
it back (退回待办), reassign it within the unit (改派), transfer it to another unit (转办), suspend
and resume it (中止/恢复) and ask for an extension (延期申请); each goes through the same Update
as the JSON API, and a refusal comes back on the page in Chinese."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest

from tests.api.console_client import ConsoleUsers, console_users
from tests.api.helpers import step_of, task_id

HUKOU = "hukou_registration"
POLICE = "police_330102_officer"


@pytest.fixture
async def browser(api) -> AsyncIterator[ConsoleUsers]:
    async with console_users(api) as make:
        yield make


async def _claimed(cases) -> tuple[dict, str]:
    case = await cases.submit()
    await cases.walk_to(case, HUKOU)
    await cases.claim(case, HUKOU, POLICE)
    return case, task_id(case["case_id"], HUKOU)


async def test_a_claimed_task_offers_the_operations_and_another_officer_sees_none(cases, browser):
    _case, task = await _claimed(cases)
    page = await (await browser(POLICE)).get(f"/inbox/{task}")
    for testid in ("unclaim", "open-reassign", "open-transfer", "open-suspend", "open-extension"):
        assert page.all(testid), testid
    # Transfer lists the other police units by name, not this one; reassign lists colleagues of the unit.
    units = page.text("transfer-unit")
    assert "杭州市西湖区公安分局" in units and "宁波市海曙区公安分局" in units and "上城区公安分局" not in units
    assert "police_officer" in page.text("reassign-to")
    colleague = await (await browser("police_officer")).get(f"/inbox/{task}")
    assert colleague.all("task-operations") == []


async def test_transfer_in_the_console_moves_the_task_to_the_chosen_unit(cases, browser):
    case, task = await _claimed(cases)
    officer = await browser(POLICE)
    page = await officer.get(f"/inbox/{task}")
    response = await officer.send(
        page.form(f"/inbox/{task}/transfer"), {"unit": "police_330106", "reason": "户籍地址属西湖区"}
    )
    inbox = await officer.follow(response)
    assert "已转办至杭州市西湖区公安分局" in inbox.html
    step = step_of(await cases.read(case["case_id"]), HUKOU)
    assert step["unit"]["code"] == "police_330106" and step["status"] == "open"
    xihu = await (await browser("police_330106_officer")).get(f"/inbox/{task}")
    assert xihu.status == 200


async def test_a_transfer_without_a_reason_comes_back_on_the_form(cases, browser):
    case, task = await _claimed(cases)
    officer = await browser(POLICE)
    page = await officer.get(f"/inbox/{task}")
    response = await officer.send(page.form(f"/inbox/{task}/transfer"), {"unit": "police_330106", "reason": ""})
    assert response.status_code == 422
    assert "请填写理由" in response.text
    assert step_of(await cases.read(case["case_id"]), HUKOU)["unit"]["code"] == "police_330102"


async def test_suspend_then_resume_in_the_console(cases, browser):
    case, task = await _claimed(cases)
    officer = await browser(POLICE)
    page = await officer.get(f"/inbox/{task}")
    response = await officer.send(
        page.form(f"/inbox/{task}/suspend"), {"reason": "需进行亲子鉴定", "materials": "亲子鉴定报告、出生证明原件"}
    )
    suspended = await officer.follow(response)
    assert "需进行亲子鉴定" in suspended.text("suspended") and "亲子鉴定报告、出生证明原件" in suspended.text(
        "suspended"
    )
    assert suspended.one("task-status").attrs.get("data-status") == "suspended"
    resumed = await officer.follow(await officer.send(suspended.form(f"/inbox/{task}/resume")))
    assert resumed.one("task-status").attrs.get("data-status") == "claimed"
    assert step_of(await cases.read(case["case_id"]), HUKOU)["suspension"] is None


async def test_an_extension_request_from_the_console_awaits_a_supervisor(cases, browser):
    case, task = await _claimed(cases)
    officer = await browser(POLICE)
    page = await officer.get(f"/inbox/{task}")
    bad = await officer.send(page.form(f"/inbox/{task}/extension"), {"working_days": "0", "reason": "协查"})
    assert bad.status_code == 422 and "请填写1至30个工作日" in bad.text
    asked = await officer.follow(
        await officer.send(page.form(f"/inbox/{task}/extension"), {"working_days": "3", "reason": "需外省协查"})
    )
    assert "已申请延期 3 个工作日" in asked.text("extension-pending")
    assert asked.all("open-extension") == []  # one request at a time
    assert step_of(await cases.read(case["case_id"]), HUKOU)["extension_request"]["working_days"] == 3


async def test_unclaim_in_the_console_returns_the_task_to_the_units_inbox(cases, browser):
    case, task = await _claimed(cases)
    officer = await browser(POLICE)
    page = await officer.get(f"/inbox/{task}")
    inbox = await officer.follow(await officer.send(page.form(f"/inbox/{task}/unclaim")))
    assert "已退回待办" in inbox.html
    step = step_of(await cases.read(case["case_id"]), HUKOU)
    assert (step["status"], step["assignee"]) == ("open", None)


async def test_a_supervisor_of_the_division_approves_an_extension_from_the_list(api, login, cases, browser):
    case, task = await _claimed(cases)
    due_before = step_of(await cases.read(case["case_id"]), HUKOU)["due_at"]
    asked = await cases.act(
        "extension", case["case_id"], HUKOU, as_user=POLICE, body={"working_days": 2, "reason": "需外省协查"}
    )
    assert asked.status_code == 200, asked.text
    # 宁波's supervisor has no such request to decide; 杭州's lists it, in the API and the console.
    ningbo = await api.get("/supervision/extensions", headers=await login("supervisor_3302"))
    assert task not in {item["task_id"] for item in ningbo.json()["items"]}
    listed = await api.get("/supervision/extensions", headers=await login("supervisor_3301"))
    (row,) = [item for item in listed.json()["items"] if item["task_id"] == task]
    assert (row["working_days"], row["reason"], row["unit_zh"]) == (2, "需外省协查", "杭州市上城区公安分局")
    supervisor = await browser("supervisor_3301")
    page = await supervisor.get("/dashboard/extensions")
    (line,) = [item for item in page.all("extension-row") if item.attrs.get("data-task-id") == task]
    assert "需外省协查" in line.text and "2 个工作日" in line.text
    empty_reason = await supervisor.send(page.form(f"/dashboard/extensions/{task}/reject"), {"reason": ""})
    assert empty_reason.status_code == 422 and "不批准须说明理由" in empty_reason.text
    done = await supervisor.follow(await supervisor.send(page.form(f"/dashboard/extensions/{task}/approve")))
    assert "已批准延期" in done.html
    assert task not in {item.attrs.get("data-task-id") for item in done.all("extension-row")}
    step = step_of(await cases.read(case["case_id"]), HUKOU)
    assert step["extended_working_days"] == 2 and step["due_at"] > due_before


async def test_the_applicant_withdraws_from_the_case_page(cases, browser):
    case = await cases.submit()
    applicant = await browser("applicant1")
    page = await applicant.get(f"/my/cases/{case['case_id']}")
    assert page.all("open-withdraw")
    empty = await applicant.follow(await applicant.send(page.form(f"/my/cases/{case['case_id']}/withdraw"), {}))
    assert "请填写撤回原因" in empty.html and empty.one("case-status").attrs.get("data-status") != "withdrawn"
    done = await applicant.follow(
        await applicant.send(page.form(f"/my/cases/{case['case_id']}/withdraw"), {"reason": "已在外省办理"})
    )
    assert done.one("case-status").attrs.get("data-status") == "withdrawn"
    assert "已在外省办理" in done.text("ended-reason") and done.all("open-withdraw") == []


async def test_the_window_clerk_declines_a_case_no_department_has_taken_up(cases, browser):
    case = await cases.submit(as_user="hospital_clerk")
    clerk = await browser("hospital_clerk")
    window = await clerk.get("/window")
    assert any(row.attrs.get("data-case-id") == case["case_id"] for row in window.all("case-row")) and window.all(
        "end-case"
    )
    page = await clerk.get(f"/window/cases/{case['case_id']}/end")
    blank = await clerk.send(page.form(f"/window/cases/{case['case_id']}/decline"), {"reason": ""})
    assert blank.status_code == 422 and "请填写理由" in blank.text
    done = await clerk.follow(
        await clerk.send(page.form(f"/window/cases/{case['case_id']}/decline"), {"reason": "出生医学证明信息有误"})
    )
    assert "已作出不予受理决定" in done.html
    body = await cases.read(case["case_id"])
    assert body["status"] == "declined" and body["ended_reason"] == "出生医学证明信息有误"


async def test_once_a_department_has_claimed_the_window_offers_withdrawal_only(cases, browser):
    case = await cases.submit(as_user="hospital_clerk")
    await cases.claim(case, "birth_certificate")
    clerk = await browser("hospital_clerk")
    page = await clerk.get(f"/window/cases/{case['case_id']}/end")
    assert page.all("decline-closed") and page.all("withdraw")

"""The console's officer area: the inbox with its due-date badges, a task with its case, claim,
complete, return for 补正 and refuse through plain forms (POST → 303 → GET), form errors beside
the fields, CSRF refusal, a double-submitted form acting once, and 督办 notices acknowledged."""

from __future__ import annotations

import re
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta

import pytest
from sqlmodel import Session, col, select

from api.security import hash_password
from models.tables import AuditRecord, SupervisionNotice, TaskRecord, UserAccount
from services.audit import AuditAction
from tests.api.console_client import ConsoleUsers, console_users
from tests.api.helpers import events_of, result_for, step_of, task_id


@pytest.fixture
async def browser(api) -> AsyncIterator[ConsoleUsers]:
    async with console_users(api) as make:
        yield make


def _audit(engine, action: AuditAction, target: str) -> list[AuditRecord]:
    with Session(engine) as session:
        query = select(AuditRecord).where(col(AuditRecord.action) == action.value, col(AuditRecord.target) == target)
        return list(session.execute(query).scalars())


def _set_task_clock(engine, task: str, *, due_in: timedelta, warning_in: timedelta) -> None:
    """Moves a task's due and warning times in the read model, as if it had opened earlier."""
    now = datetime.now(UTC)
    with Session(engine) as session:
        record = session.get(TaskRecord, task)
        assert record is not None
        record.due_at, record.warning_at, record.overdue = now + due_in, now + warning_in, False
        session.add(record)
        session.commit()


# --- the inbox ----------------------------------------------------------------------------


async def test_officer_inbox_lists_the_departments_tasks_with_due_badges(cases, browser, engine):
    case = await cases.submit()
    birth, vaccination = (
        task_id(case["case_id"], "birth_certificate"),
        task_id(case["case_id"], "vaccination_certificate"),
    )
    _set_task_clock(engine, birth, due_in=timedelta(hours=-3), warning_in=timedelta(hours=-27))
    _set_task_clock(engine, vaccination, due_in=timedelta(hours=5), warning_in=timedelta(hours=-1))

    officer = await browser("hospital_officer")
    page = await officer.get("/inbox")

    assert page.status == 200
    assert '<html lang="zh-CN">' in page.html
    rows = page.all("task-row")
    # Oldest due first: the overdue task, then the one in its last working day.
    assert [(row.attrs["data-task-id"], row.attrs["data-due"]) for row in rows] == [
        (birth, "overdue"),
        (vaccination, "warning"),
    ]
    badges = [" ".join(badge.text.split()) for badge in page.all("due-badge")]
    assert badges == ["超期", "预警"]
    # The time left in working days (never working hours); due dates as dates, not ISO strings.
    late_hint, soon_hint = (" ".join(row.text.split()) for row in rows)
    assert re.search(r"已超期( [1-9]\d* 个工作日)?", late_hint), late_hint
    assert re.search(r"今日到期|剩余 [1-9]\d* 个工作日", soon_hint), soon_hint
    assert "工作小时" not in page.html and not re.search(r"\d{4}-\d{2}-\d{2}", page.text("inbox-table"))
    assert "出生医学证明办理" in page.html and "预防接种证办理" in page.html
    assert page.text("inbox-overdue") == "1" and page.text("inbox-warnings") == "1"

    police = await (await browser("police_officer")).get("/inbox")
    assert police.all("task-row") == []  # 户口登记 waits for the birth certificate
    assert police.all("inbox-empty")


async def test_officer_claims_and_completes_a_step_through_the_forms(cases, browser, engine):
    case = await cases.submit()
    task = task_id(case["case_id"], "birth_certificate")
    officer = await browser("hospital_officer")

    page = await officer.get(f"/inbox/{task}")
    assert page.status == 200
    assert page.text("task-status") == "待签收"
    assert page.text("case-status") in {"已受理", "办理中"}
    assert page.all("complete") == []  # nothing to complete before claiming

    claimed = await officer.follow(await officer.send(page.form(f"/inbox/{task}/claim")))
    assert "已签收" in claimed.text("flash")
    assert claimed.text("task-status") == "办理中"
    assert claimed.text("assignee").startswith("hospital_officer")
    assert claimed.all("result-certificate_no"), "the result form is generated from the step definition"

    result = result_for("birth_certificate", case["_form"])
    response = await officer.send(
        claimed.form(f"/inbox/{task}/complete"), {"result.certificate_no": result["certificate_no"], "comment": "已核"}
    )
    done = await officer.follow(response)
    assert "已办结" in done.text("flash")
    assert done.text("task-status") == "已办结"
    assert result["certificate_no"] in done.text("step-result")

    step = step_of(await cases.read(case["case_id"]), "birth_certificate")
    assert (step["status"], step["result"]) == ("done", {"certificate_no": result["certificate_no"]})
    assert len(_audit(engine, AuditAction.TASK_CLAIM, task)) == 1
    assert len(_audit(engine, AuditAction.TASK_COMPLETE, task)) == 1


async def test_an_invalid_result_is_shown_beside_its_field_and_nothing_is_done(cases, browser, engine):
    case = await cases.submit()
    await cases.claim(case, "birth_certificate")
    task = task_id(case["case_id"], "birth_certificate")
    officer = await browser("hospital_officer")

    response = await officer.submit(f"/inbox/{task}", f"/inbox/{task}/complete", {"result.certificate_no": "bad-123"})

    assert response.status_code == 422
    assert response.headers["content-type"].startswith("text/html")
    assert "格式不正确" in response.text and 'data-testid="error-result.certificate_no"' in response.text
    assert 'value="bad-123"' in response.text  # what was typed comes back
    empty = await officer.submit(f"/inbox/{task}", f"/inbox/{task}/complete", {"result.certificate_no": ""})
    assert empty.status_code == 422 and "出生医学证明编号为必填项" in empty.text
    assert step_of(await cases.read(case["case_id"]), "birth_certificate")["status"] == "claimed"
    assert _audit(engine, AuditAction.TASK_COMPLETE, task) == []


async def test_a_double_submitted_form_acts_once(cases, browser, engine):
    case = await cases.submit()
    task = task_id(case["case_id"], "birth_certificate")
    officer = await browser("hospital_officer")

    claim_form = (await officer.get(f"/inbox/{task}")).form(f"/inbox/{task}/claim")
    first, second = await officer.send(claim_form), await officer.send(claim_form)
    assert (first.status_code, second.status_code) == (303, 303)
    assert len(_audit(engine, AuditAction.TASK_CLAIM, task)) == 1

    result = result_for("birth_certificate", case["_form"])
    complete_form = (await officer.get(f"/inbox/{task}")).form(f"/inbox/{task}/complete")
    data = {"result.certificate_no": result["certificate_no"]}
    first, second = await officer.send(complete_form, data), await officer.send(complete_form, data)
    assert (first.status_code, second.status_code) == (303, 303)
    assert "已办结" in (await officer.follow(second)).text("flash")
    assert len(events_of(engine, case["case_id"], "completed", "birth_certificate")) == 1
    assert len(_audit(engine, AuditAction.TASK_COMPLETE, task)) == 1


async def test_a_post_without_the_csrf_token_is_refused_and_changes_nothing(cases, browser, engine):
    case = await cases.submit()
    task = task_id(case["case_id"], "birth_certificate")
    officer = await browser("hospital_officer")
    form = (await officer.get(f"/inbox/{task}")).form(f"/inbox/{task}/claim")

    missing = await officer.client.post(form.action, data={"idempotency_key": form.fields["idempotency_key"]})
    forged = await officer.send(form, {"csrf_token": "forged"})

    assert (missing.status_code, forged.status_code) == (403, 403)
    assert "页面已过期或来源不明" in missing.text and missing.headers["content-type"].startswith("text/html")
    assert step_of(await cases.read(case["case_id"]), "birth_certificate")["status"] == "open"
    assert _audit(engine, AuditAction.TASK_CLAIM, task) == []


@pytest.fixture
def second_hospital_officer(engine) -> str:
    with Session(engine) as session:
        colleague = session.get(UserAccount, "hospital_officer")
        assert colleague is not None
        session.add(
            UserAccount(
                username="hospital_officer2",
                password_hash=hash_password("demo"),
                role="officer",
                unit="hospital",
                # A colleague: a member of the same unit as the demo hospital_officer.
                unit_code=colleague.unit_code,
                display_name_zh="助产机构工作人员二",
            )
        )
        session.commit()
    return "hospital_officer2"


async def test_a_task_claimed_by_a_colleague_shows_who_and_a_late_claim_is_a_message(
    cases, browser, second_hospital_officer
):
    case = await cases.submit()
    task = task_id(case["case_id"], "birth_certificate")
    colleague = await browser(second_hospital_officer)
    stale_form = (await colleague.get(f"/inbox/{task}")).form(f"/inbox/{task}/claim")
    await cases.claim(case, "birth_certificate")  # hospital_officer was quicker

    page = await colleague.follow(await colleague.send(stale_form))

    assert page.one("flash").attrs["class"] == "flash flash--error"
    assert "任务已由他人签收" in page.text("flash")
    assert "hospital_officer" in page.text("claimed-by-other")
    assert page.all("complete") == [] and page.all("claim") == []
    assert step_of(await cases.read(case["case_id"]), "birth_certificate")["assignee"] == "hospital_officer"


async def test_another_departments_task_is_a_404_page_and_its_actions_do_nothing(cases, browser):
    case = await cases.submit()
    task = task_id(case["case_id"], "birth_certificate")
    police = await browser("police_officer")

    page = await police.get(f"/inbox/{task}")
    assert page.status == 404
    assert page.one("error").attrs["data-status"] == "404"
    assert page.html.lstrip().lower().startswith("<!doctype html>")

    home = await police.get("/inbox")
    csrf = home.form("/logout").fields["csrf_token"]
    refused = await police.client.post(f"/inbox/{task}/claim", data={"csrf_token": csrf})
    assert refused.status_code == 404
    assert step_of(await cases.read(case["case_id"]), "birth_certificate")["status"] == "open"


async def test_officer_returns_a_step_for_supplement_choosing_missing_materials(cases, browser):
    case = await cases.submit()
    await cases.claim(case, "birth_certificate")
    task = task_id(case["case_id"], "birth_certificate")
    officer = await browser("hospital_officer")
    page = await officer.get(f"/inbox/{task}")
    assert page.all("missing-mother_id_card"), "the case's materials are offered as checkboxes"

    incomplete = await officer.send(page.form(f"/inbox/{task}/return"), {"reason": "材料不清晰"})
    assert incomplete.status_code == 422 and "请至少选择或填写一项需补正的材料" in incomplete.text

    response = await officer.send(
        page.form(f"/inbox/{task}/return"),
        {"missing": ["mother_id_card"], "missing_other": "分娩记录", "reason": "身份证照片不清晰"},
    )
    returned = await officer.follow(response)
    assert "已退回补正" in returned.text("flash")
    assert "母亲居民身份证" in returned.text("awaiting-supplement")
    body = await cases.read(case["case_id"])
    assert body["status"] == "awaiting_supplement"
    assert step_of(body, "birth_certificate")["missing"] == ["mother_id_card", "分娩记录"]


async def test_officer_refuses_a_case_with_a_reason(cases, browser):
    case = await cases.submit()
    await cases.claim(case, "birth_certificate")
    task = task_id(case["case_id"], "birth_certificate")
    officer = await browser("hospital_officer")
    form = (await officer.get(f"/inbox/{task}")).form(f"/inbox/{task}/refuse")

    without_reason = await officer.send(form, {"reason": "  "})
    assert without_reason.status_code == 422 and "请填写理由" in without_reason.text
    assert (await cases.read(case["case_id"]))["status"] != "refused"

    refused = await officer.follow(await officer.send(form, {"reason": "非本院出生，不符合办理条件"}))
    assert "不予办理" in refused.text("flash")
    assert (await cases.read(case["case_id"]))["status"] == "refused"


# --- 督办 notices ------------------------------------------------------------------------------


async def test_officer_acknowledges_a_supervision_notice_with_a_reply(cases, browser, api, login, engine):
    case = await cases.submit()
    issued = await api.post(
        "/supervision/notices",
        json={"case_id": case["case_id"], "step": "birth_certificate", "message": "请加快办理出生医学证明"},
        headers=await login("supervisor"),
    )
    assert issued.status_code == 201, issued.text
    officer = await browser("hospital_officer")

    page = await officer.get("/inbox/notices")
    (row,) = page.all("notice-row")
    assert "请加快办理出生医学证明" in row.text and "人工督办" in row.text
    assert page.text("pending-count") == "1"
    action = f"/inbox/notices/{row.attrs['data-notice-id']}/ack".replace(":", "%3A")

    blank = await officer.send(page.form(action), {"reply": ""})
    assert blank.status_code == 422 and "请填写回复" in blank.text

    done = await officer.follow(await officer.send(page.form(action), {"reply": "已于当日办结"}))
    assert "已签收" in done.text("flash")
    assert done.all("notice-row") == [] and done.all("no-pending-notices")
    assert "已于当日办结" in done.text("answered-notices")
    with Session(engine) as session:
        notice = session.get(SupervisionNotice, row.attrs["data-notice-id"])
        assert notice is not None and (notice.acknowledged_by, notice.reply) == ("hospital_officer", "已于当日办结")
    assert len(_audit(engine, AuditAction.NOTICE_ACKNOWLEDGE, row.attrs["data-notice-id"])) == 1

    # The page sent twice: the second finds it acknowledged and says so; nothing changes.
    again = await officer.follow(await officer.send(page.form(action), {"reply": "再次回复"}))
    assert "已签收" in again.text("flash")
    assert len(_audit(engine, AuditAction.NOTICE_ACKNOWLEDGE, row.attrs["data-notice-id"])) == 1

"""Every console page of the main journeys reads as plain Chinese for the person at it.

Each journey opens its role's pages as a browser would — including forms sent back with
errors, the supervisor's dashboard with a reversed period, error pages — and scans what the
page shows (text and the attributes people read: placeholder, title, aria-label, alt; not
scripts, styles, input values or markup) for developer text: regular expressions, English
words or sentences, and raw codes such as ``father_hukou_booklet``.

What may stay, kept tight: case ids (``ot-`` and 20 hex digits) and the demo accounts'
usernames — both are identifiers people copy or type exactly as shown —, the brand name
``OneThing``, and abbreviations written in capitals (CSV, the DB33/T standard).
"""

from __future__ import annotations

import re
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from html.parser import HTMLParser
from typing import Any

import httpx
import pytest
from sqlmodel import Session

from api.accounts import demo_accounts
from api.console.messages import field_reason, pydantic_reason, zh_text
from domain.catalogue import shipped_definitions
from domain.results import validate_result
from domain.samples import sample_birth_form, sample_form
from models.errors import DomainError
from models.tables import TaskRecord
from tests.api.console_access_rows import field_error, flat_form
from tests.api.console_client import ConsoleUser, ConsoleUsers, console_users
from tests.api.helpers import Cases, task_id

# --- the scan -------------------------------------------------------------------------------

CJK = re.compile(r"[\u3400-\u9fff\uf900-\ufaff]")
# Pieces of regular-expression syntax: ^[  \d  ]{  ]+  $'  {4,32}  (?:
REGEX_SYNTAX = re.compile(r"\^\[|\\[dDwWsSbB]|\][{+*?]|\$['\")]|\{\d+,\d*\}|\(\?[:=!<P]")
# A code as the catalogue and the models write them: material, step and status codes, field paths.
SNAKE_CASE = re.compile(r"(?<![A-Za-z0-9_])[a-z][a-z0-9]*(?:_[a-z0-9]+)+(?![A-Za-z0-9_])")
# A run of three or more words in Latin letters: an English sentence or message.
ENGLISH_RUN = re.compile(r"(?<![A-Za-z0-9_])[A-Za-z]+(?:[ ,;:'\"-]+[A-Za-z]+){2,}(?![A-Za-z0-9_])")
# One word in Latin letters (two or more, not part of a code such as X330102001 or P90).
LATIN_WORD = re.compile(r"(?<![A-Za-z0-9_+])[A-Za-z]{2,}(?![A-Za-z0-9_])")
CASE_ID = re.compile(r"\bot-[0-9a-f]{20}\b")
ALLOWED_WORDS = {"OneThing"}
USERNAMES = {username for username, *_ in demo_accounts(list(shipped_definitions().values()))}
_USERNAME = re.compile(r"(?<![A-Za-z0-9_])(?:" + "|".join(sorted(map(re.escape, USERNAMES), key=len)[::-1]) + r")\b")
READ_ATTRIBUTES = ("placeholder", "title", "aria-label", "alt")


class _VisibleText(HTMLParser):
    """The text nodes of a page and the attributes people read, without scripts and styles."""

    def __init__(self) -> None:
        super().__init__()
        self.chunks: list[str] = []
        self._hidden = 0

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag in {"script", "style"}:
            self._hidden += 1
        for name, value in attrs:
            if name in READ_ATTRIBUTES and value:
                self.chunks.append(value)

    def handle_endtag(self, tag: str) -> None:
        if tag in {"script", "style"}:
            self._hidden = max(0, self._hidden - 1)

    def handle_data(self, data: str) -> None:
        if not self._hidden and data.strip():
            self.chunks.append(" ".join(data.split()))


def visible_chunks(html: str) -> list[str]:
    parser = _VisibleText()
    parser.feed(html)
    return parser.chunks


def problems_in_text(text: str) -> list[str]:
    """What in one piece of visible text is not plain Chinese for people."""
    found: list[str] = []
    if match := REGEX_SYNTAX.search(text):
        found.append(f"regular expression {match.group(0)!r}")
    shown = _USERNAME.sub(" ", CASE_ID.sub(" ", text))
    found += [f"code {match!r}" for match in SNAKE_CASE.findall(shown)]
    if match := ENGLISH_RUN.search(shown):
        found.append(f"English text {match.group(0)!r}")
    # A word with a small letter is English or a code; capitals are abbreviations (CSV).
    words = [word for word in LATIN_WORD.findall(shown) if word not in ALLOWED_WORDS and not word.isupper()]
    found += [f"English word {word!r}" for word in words if not any(word in problem for problem in found)]
    return found


def problems_in_page(html: str) -> list[str]:
    return [f"{problem} in {chunk!r}" for chunk in visible_chunks(html) for problem in problems_in_text(chunk)]


def assert_plain(pages: dict[str, Any]) -> None:
    """Every page (a name → httpx.Response or console Page) shows plain Chinese only."""
    report: list[str] = []
    for name, page in pages.items():
        html = page.text if isinstance(page, httpx.Response) else page.html
        report += [f"{name}: {problem}" for problem in problems_in_page(html)]
    assert not report, "developer text on console pages:\n" + "\n".join(report)


# --- the scan itself: it finds what users found, and lets through what belongs there -------------

OFFENDERS = [
    "出生医学证明编号：String should match pattern '^[A-Z]\\d{9}$'",
    "格式不正确 (does not match ^[A-Z]\\d{9}$)",
    '金额须为两位小数，如 1234.50 (decimal yuan with two places as a string, e.g. "1234.50")',
    "助产机构 · 按办理期限先后排列（Inbox, oldest due first）",
    "缺件：father_hukou_booklet",
    "来源：manual",
    "时间线取自流程历史（workflow history）",
    "query.page：Input should be greater than or equal to 1",
    "用户名 Username",
]
PLAIN = [
    "受理编号 ot-0123456789abcdef0123",
    "该任务已由 hospital_officer 签收办理。",
    "一件事集成服务 OneThing · 高效办成一件事",
    "导出 CSV（按环节）",
    "例：X330102001",
    "依据 DB33/T 2304-2021《“一件事”集成服务规范》",
    "格式不正确，示例：YM-2026-000123",
    "用时P90",
]


@pytest.mark.parametrize("text", OFFENDERS)
def test_the_scan_finds_developer_text(text: str) -> None:
    assert problems_in_text(text), text


@pytest.mark.parametrize("text", PLAIN)
def test_the_scan_lets_plain_chinese_through(text: str) -> None:
    assert problems_in_text(text) == []


def test_the_scan_reads_text_and_read_attributes_but_not_scripts_or_values() -> None:
    html = (
        '<p title="missing field">标题</p><script>var a_b = "three english words";</script>'
        '<input value="user typed this value" placeholder="例：X330102001"><style>.a_b{}</style>'
    )

    assert visible_chunks(html) == ["missing field", "标题", "例：X330102001"]


# --- the one place that words validation problems ---------------------------------------------


def test_pydantic_problems_are_worded_for_people() -> None:
    pattern = {"type": "string_pattern_mismatch", "loc": ("phone",), "msg": "x", "ctx": {"pattern": "^1\\d{10}$"}}
    assert pydantic_reason(pattern, path="applicant.phone") == "格式不正确，应为11位手机号码或带区号的固定电话"
    assert pydantic_reason(pattern, path="unknown.code") == "格式不正确"
    assert pydantic_reason({"type": "missing", "loc": ("name",), "msg": "Field required"}) == "必填"
    assert (
        pydantic_reason({"type": "datetime_from_date_parsing", "loc": ("at",), "msg": "x"}) == "请填写有效的日期和时间"
    )
    too_long = {"type": "string_too_long", "loc": ("a",), "msg": "x", "ctx": {"max_length": 50}}
    assert pydantic_reason(too_long) == "最多50个字符"
    english = {"type": "value_error", "loc": ("a",), "msg": "Value error, contains control characters"}
    assert pydantic_reason(english) == "填写有误"
    bilingual = {"type": "value_error", "loc": ("a",), "msg": "Value error, 校验码错误 / checksum mismatch"}
    assert pydantic_reason(bilingual) == "校验码错误"


def test_step_result_problems_give_the_example_never_the_pattern() -> None:
    definition = shipped_definitions()["birth"]
    with pytest.raises(DomainError) as refused:
        validate_result(
            definition.step("maternity_benefit_review"),
            {"medical_costs_settled": "3200", "allowance_amount": "15230.50"},
            {},
        )
    with pytest.raises(DomainError) as bad_number:
        validate_result(definition.step("birth_certificate"), {"certificate_no": "bad-123"}, {})

    money = field_reason(refused.value.fields["result.medical_costs_settled"])
    number = field_reason(bad_number.value.fields["result.certificate_no"])
    assert money.startswith("金额应保留两位小数，示例：")
    assert number == "格式不正确，示例：X330102001"
    assert problems_in_text(money) == problems_in_text(number) == []


def test_bilingual_messages_keep_their_chinese() -> None:
    assert zh_text("任务已由他人签收 (already claimed)") == "任务已由他人签收"
    assert zh_text("长度应为18位 / wrong length: expected 18 characters, got 17") == "长度应为18位"
    assert zh_text("no situation matches this choice", "请重新选择") == "请重新选择"
    assert zh_text("督办 / 催办") == "督办 / 催办"


# --- the journeys ---------------------------------------------------------------------------------

MARRIED_FATHER = {"marital_status": "married", "hukou_follow": "father"}


@pytest.fixture
async def browser(api: httpx.AsyncClient) -> AsyncIterator[ConsoleUsers]:
    async with console_users(api) as make:
        yield make


def _birth_form() -> dict[str, Any]:
    return sample_birth_form(born_at=datetime.now(UTC) - timedelta(days=2))


async def _send_intake(user: ConsoleUser, path: str, answers: dict[str, str], values: dict[str, str]) -> httpx.Response:
    """Open the application form for these answers and send it with ``values`` typed in."""
    page = await user.get(path, **answers)
    form = page.form(path)
    return await user.send(form, {**{f"answer.{code}": value for code, value in answers.items()}, **values})


def _birth_values_with_mistakes() -> dict[str, str]:
    values = flat_form(_birth_form())
    values.update(
        {
            "newborn.name": "王2明",
            "newborn.birthplace_division_code": "33010",
            "newborn.born_at": "2026-13-45T99:99",
            "mother.id_number": "330102199003070028",  # wrong check digit
            "applicant.phone": "12345",
            "delivery.method": "mail",  # mail without an address
            "father.name": "",
        }
    )
    return values


async def test_applicant_pages_are_plain_chinese(browser: ConsoleUsers, cases: Cases) -> None:
    returned = await cases.submit()
    await cases.claim(returned, "birth_certificate")
    body = {"missing": ["father_hukou_booklet", "分娩记录"], "reason": "户口簿照片不清晰"}
    response = await cases.act(
        "return", returned["case_id"], "birth_certificate", as_user="hospital_officer", body=body
    )
    assert response.status_code == 200, response.text
    finished = await cases.submit()
    await cases.finish(finished)
    anonymous = await browser(None)
    login = await anonymous.get("/login")
    wrong = {"username": "applicant1", "password": "wrong"}
    applicant = await browser("applicant1")

    pages: dict[str, Any] = {
        "login": login,
        "wrong password": await anonymous.send(login.form("/login"), wrong),
        "things": await applicant.get("/apply"),
        "questions": await applicant.get("/apply/birth"),
        "birth form": await applicant.get("/apply/birth", **MARRIED_FATHER),
        "company form": await applicant.get("/apply/company_opening", hires_employees="yes", needs_invoices="yes"),
        "my cases": await applicant.get("/my/cases"),
        "returned case": await applicant.get(f"/my/cases/{returned['case_id']}"),
        "finished case": await applicant.get(f"/my/cases/{finished['case_id']}"),
        "no such case": await applicant.get("/my/cases/ot-00000000000000000000"),
    }
    mistakes = await _send_intake(applicant, "/apply/birth", MARRIED_FATHER, _birth_values_with_mistakes())
    assert mistakes.status_code == 422
    pages["birth form with mistakes"] = mistakes
    company = flat_form(sample_form("company_opening", "hiring_invoicing"))
    company.update({"company.registered_capital": "1000", "employer.credit_code": "913301", "employees.headcount": "0"})
    company_answers = {"hires_employees": "yes", "needs_invoices": "yes"}
    pages["company form with mistakes"] = await _send_intake(
        applicant, "/apply/company_opening", company_answers, company
    )
    assert pages["company form with mistakes"].status_code == 422
    # An answer no situation has (a stale or edited page): asked again, with a reason.
    unknown = {"answer.marital_status": "widowed", "answer.hukou_follow": "father"}
    pages["unknown situation"] = await applicant.send(pages["birth form"].form("/apply/birth"), unknown)
    supplement = pages["returned case"].form(f"/my/cases/{returned['case_id']}/supplement")
    pages["incomplete supplement"] = await applicant.follow(await applicant.send(supplement))
    rating = pages["finished case"].form(f"/my/cases/{finished['case_id']}/rating")
    pages["bad rating"] = await applicant.follow(await applicant.send(rating, {"score": "9"}))

    assert "父亲居民户口簿" in pages["returned case"].html  # the material's name, not its code
    written = pages["birth form with mistakes"].text
    assert field_error(written, "applicant.phone") == "格式不正确，应为11位手机号码或带区号的固定电话"
    assert field_error(written, "newborn.name") == "第2个字符「2」不能用于姓名：数字"
    assert field_error(written, "newborn.born_at") == "请填写有效的日期和时间"
    assert 'value="12345"' in written  # what was typed stays on the form
    assert "格式不正确，应为以元为单位" in pages["company form with mistakes"].text
    assert "没有与此选择对应的办理情形" in pages["unknown situation"].text
    assert_plain(pages)


async def test_window_pages_are_plain_chinese(browser: ConsoleUsers) -> None:
    clerk = await browser("hospital_clerk")

    pages: dict[str, Any] = {
        "window": await clerk.get("/window"),
        "questions": await clerk.get("/window/apply/birth"),
        "form": await clerk.get("/window/apply/birth", **MARRIED_FATHER),
    }
    mistakes = await _send_intake(clerk, "/window/apply/birth", MARRIED_FATHER, _birth_values_with_mistakes())
    assert mistakes.status_code == 422
    pages["form with mistakes"] = mistakes
    accepted = await _send_intake(clerk, "/window/apply/birth", MARRIED_FATHER, flat_form(_birth_form()))
    pages["notice"] = await clerk.follow(accepted)
    pages["other window's thing"] = await clerk.get("/window/apply/company_opening")

    assert_plain(pages)


async def test_officer_pages_are_plain_chinese(browser: ConsoleUsers, cases: Cases, api, login) -> None:
    case = await cases.submit()
    task = task_id(case["case_id"], "birth_certificate")
    issued = await api.post(
        "/supervision/notices",
        json={"case_id": case["case_id"], "step": "birth_certificate", "message": "请加快办理"},
        headers=await login("supervisor"),
    )
    assert issued.status_code == 201, issued.text
    officer = await browser("hospital_officer")

    pages: dict[str, Any] = {"inbox": await officer.get("/inbox"), "task": await officer.get(f"/inbox/{task}")}
    pages["claimed"] = await officer.follow(await officer.send(pages["task"].form(f"/inbox/{task}/claim")))
    claimed = pages["claimed"]
    pages["bad result"] = await officer.send(
        claimed.form(f"/inbox/{task}/complete"), {"result.certificate_no": "bad-123"}
    )
    assert pages["bad result"].status_code == 422
    pages["long comment"] = await officer.send(
        claimed.form(f"/inbox/{task}/complete"), {"result.certificate_no": "X330102001", "comment": "长" * 501}
    )
    pages["return without materials"] = await officer.send(claimed.form(f"/inbox/{task}/return"), {"reason": "不清晰"})
    pages["refuse without reason"] = await officer.send(claimed.form(f"/inbox/{task}/refuse"), {"reason": ""})
    pages["stale claim"] = await officer.follow(await officer.send(pages["task"].form(f"/inbox/{task}/claim")))
    pages["notices"] = await officer.get("/inbox/notices")
    (row,) = pages["notices"].all("notice-row")
    ack = f"/inbox/notices/{row.attrs['data-notice-id']}/ack".replace(":", "%3A")
    pages["blank reply"] = await officer.send(pages["notices"].form(ack), {"reply": ""})
    pages["bad page number"] = await officer.get("/inbox", page="0")
    pages["bad status"] = await officer.get("/inbox", status="nonsense")
    pages["no such task"] = await officer.get("/inbox/ot-00000000000000000000:birth_certificate")

    await cases.walk_to(case, "maternity_benefit_review")
    await cases.claim(case, "maternity_benefit_review")
    insurer = await browser("medical_security_officer")
    benefit = task_id(case["case_id"], "maternity_benefit_review")
    page = await insurer.get(f"/inbox/{benefit}")
    money = {"result.medical_costs_settled": "3200", "result.allowance_amount": "一万"}
    pages["bad money"] = await insurer.send(page.form(f"/inbox/{benefit}/complete"), money)
    assert pages["bad money"].status_code == 422
    pages["later task"] = await officer.get(f"/inbox/{task}")

    assert field_error(pages["bad result"].text, "result.certificate_no") == "格式不正确，示例：X330102001"
    assert field_error(pages["bad money"].text, "result.medical_costs_settled") == "金额应保留两位小数，示例：3200.00"
    assert "页码</strong>：不能小于1" in pages["bad page number"].html
    assert_plain(pages)


async def test_supervisor_pages_are_plain_chinese(browser: ConsoleUsers, cases: Cases, api, login, engine) -> None:
    case = await cases.submit()
    await cases.complete(case, "birth_certificate")
    await cases.claim(case, "vaccination_certificate")
    body = {"missing": ["father_hukou_booklet"], "reason": "户口簿照片不清晰"}
    returned = await cases.act(
        "return", case["case_id"], "vaccination_certificate", as_user="hospital_officer", body=body
    )
    assert returned.status_code == 200, returned.text
    supplied = await api.post(
        f"/cases/{case['case_id']}/supplements",
        json={"materials": {"father_hukou_booklet": "UPLOAD-0042"}},
        headers=await login("applicant1"),
    )
    assert supplied.status_code == 200, supplied.text
    issued = await api.post(
        "/supervision/notices",
        json={"case_id": case["case_id"], "step": "vaccination_certificate", "message": "请加快办理"},
        headers=await login("supervisor"),
    )
    assert issued.status_code == 201, issued.text
    rated = await cases.submit()
    await cases.finish(rated)
    rating = await api.post(
        f"/cases/{rated['case_id']}/rating",
        json={"score": 1, "comment": "等太久", "step": "birth_certificate"},
        headers=await login("applicant1"),
    )
    assert rating.status_code == 201, rating.text
    with Session(engine) as session:
        late = session.get(TaskRecord, task_id(case["case_id"], "vaccination_certificate"))
        assert late is not None
        late.due_at, late.overdue = datetime.now(UTC) - timedelta(hours=3), True
        session.add(late)
        session.commit()
    supervisor = await browser("supervisor")

    pages: dict[str, Any] = {
        "dashboard": await supervisor.get("/dashboard"),
        "reversed period": await supervisor.get("/dashboard", **{"from": "2026-11-30", "to": "2026-11-01"}),
        "not a date": await supervisor.get("/dashboard", **{"from": "yesterday"}),
        "too long a period": await supervisor.get("/dashboard", **{"from": "2024-01-01", "to": "2026-01-01"}),
        "overdue": await supervisor.get("/dashboard/overdue"),
        "warnings": await supervisor.get("/dashboard/warnings"),
        "ratings": await supervisor.get("/dashboard/ratings"),
        "report": await supervisor.get("/dashboard/report"),
        "reversed report": await supervisor.get("/dashboard/report", **{"from": "2026-11-30", "to": "2026-11-01"}),
        "case": await supervisor.get(f"/dashboard/cases/{case['case_id']}"),
        "rated case": await supervisor.get(f"/dashboard/cases/{rated['case_id']}"),
        "follow-ups": await supervisor.get("/inbox"),
    }
    form = pages["case"].form(f"/dashboard/cases/{case['case_id']}/supervise")
    pages["blank supervision"] = await supervisor.send(form, {"message": "", "kind": "other"})
    for name in ("reversed period", "not a date", "reversed report"):
        assert pages[name].status == 400, name  # told on the page itself, not a bare error page
        assert pages[name].all("period-error"), name
    follow_up = next(row for row in pages["follow-ups"].all("task-row"))
    pages["follow-up task"] = await supervisor.get(f"/inbox/{follow_up.attrs['data-task-id']}")

    assert "开始日期不能晚于结束日期" in pages["reversed period"].text("period-error")
    timeline = pages["case"].text("timeline-events")
    assert "需补正的材料：父亲居民户口簿" in timeline and "方式：人工督办" in timeline
    assert_plain(pages)

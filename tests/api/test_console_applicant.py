"""The applicant's console pages: the catalogue, the generated application form, my cases,
补正 and 好差评 — each through the same domain code as the JSON API."""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
from sqlalchemy import Engine, func, select
from sqlmodel import Session, col

from domain.catalogue import shipped_definitions
from domain.samples import MOTHER_WITHOUT_MARRIAGE_RECORD_ID, sample_birth_form
from models.tables import CaseRecord
from tests.api.console_access_rows import (
    console_login,
    csrf_of,
    field_error,
    flat_form,
    idempotency_key_of,
    session_csrf,
)
from tests.api.console_client import Element, Page
from tests.api.helpers import PROXY, Cases, Login, step_of

MARRIED_FATHER = {"marital_status": "married", "hukou_follow": "father"}


def _birth_form(**options: Any) -> dict[str, Any]:
    options.setdefault("born_at", datetime.now(UTC) - timedelta(days=2))
    return sample_birth_form(**options)


def _answers(answers: dict[str, str]) -> dict[str, str]:
    return {f"answer.{code}": value for code, value in answers.items()}


async def _form_page(api: httpx.AsyncClient, thing: str, answers: dict[str, str]) -> httpx.Response:
    page = await api.get(f"/apply/{thing}", params=answers)
    assert page.status_code == 200, page.text
    return page


async def _submit_birth(
    api: httpx.AsyncClient, form: dict[str, Any], answers: dict[str, str] = MARRIED_FATHER, **extra: str
) -> httpx.Response:
    """Open the form for the situation, fill it in as the applicant would and submit it."""
    page = await _form_page(api, "birth", answers)
    data = {
        **flat_form(form),
        **_answers(answers),
        "csrf_token": csrf_of(page.text),
        "idempotency_key": idempotency_key_of(page.text),
        **extra,
    }
    return await api.post("/apply/birth", data=data)


def _owned_cases(engine: Engine, owner: str) -> int:
    with Session(engine) as session:
        return int(
            session.execute(
                select(func.count()).select_from(CaseRecord).where(col(CaseRecord.owner) == owner)
            ).scalar_one()
        )


def _legend(html: str, group: str) -> str:
    """The legend of a fieldset of the form, as text."""
    match = re.search(rf'data-testid="group-{group}">\s*<legend>(.*?)</legend>', html, re.S)
    assert match is not None, f"no fieldset {group}"
    return " ".join(re.sub(r"<[^>]+>", " ", match.group(1)).split())


def _materials(page: Page) -> dict[str, str]:
    """The case page's materials as they are now: each row's status and text, by material code."""
    rows: list[Element] = page.all("material-row")
    return {row.attrs["data-material"]: f"{row.attrs['data-status']} {' '.join(row.text.split())}" for row in rows}


def _status_of(html: str) -> str:
    match = re.search(r'data-testid="case-status" data-status="([a-z_]+)"', html)
    assert match is not None, html
    return match.group(1)


async def test_the_apply_page_lists_every_thing_of_the_catalogue(api):
    await console_login(api, "applicant1")

    page = await api.get("/apply")

    assert page.status_code == 200
    for definition in shipped_definitions().values():
        assert definition.name_zh in page.text
        assert f'href="/apply/{definition.code}"' in page.text


async def test_the_form_asks_the_situation_questions_first(api):
    await console_login(api, "applicant1")

    page = await api.get("/apply/birth")

    assert "新生儿父母是否登记结婚" in page.text and "新生儿随父还是随母落户" in page.text
    assert 'data-testid="choose-situation"' in page.text
    assert 'data-testid="submit-case"' not in page.text


async def test_a_married_couples_form_needs_the_father_and_fetches_their_documents(api):
    await console_login(api, "applicant1")

    page = await _form_page(api, "birth", MARRIED_FATHER)

    assert "婚生·随父落户" in page.text
    assert 'name="father.id_number"' in page.text and 'name="newborn.born_at"' in page.text
    assert _legend(page.text, "father") == "父亲信息"
    marriage = re.search(r'data-testid="material-marriage_certificate">.*?</li>', page.text, re.S)
    assert marriage is not None and "自动获取" in marriage.group(0)
    assert "material-unmarried_birth_declaration" not in page.text
    # The situation answers are not asked again as form fields.
    assert 'name="marital_status"' not in page.text and 'name="hukou.follow"' not in page.text


def _input_tag(html: str, name: str) -> str:
    match = re.search(rf'<input[^>]*\bname="{re.escape(name)}"[^>]*>', html, re.S)
    assert match is not None, f"no input {name}"
    return " ".join(match.group(0).split())


async def test_inputs_bring_up_the_right_keyboard_on_a_phone(api):
    await console_login(api, "applicant1")

    birth = (await _form_page(api, "birth", MARRIED_FATHER)).text
    company = (await _form_page(api, "company_opening", {"hires_employees": "yes", "needs_invoices": "no"})).text

    # ID numbers may end in X: the text keyboard with capitals, never the digits-only keypad.
    for name in ("mother.id_number", "father.id_number", "applicant.id_number"):
        tag = _input_tag(birth, name)
        assert 'type="text"' in tag and 'inputmode="text"' in tag and 'autocapitalize="characters"' in tag, tag
        assert 'autocomplete="off"' in tag and 'spellcheck="false"' in tag, tag
    phone = _input_tag(birth, "applicant.phone")
    assert 'type="tel"' in phone and 'inputmode="tel"' in phone and 'autocomplete="tel"' in phone, phone
    assert 'inputmode="numeric"' in _input_tag(birth, "newborn.birthplace_division_code")
    assert 'inputmode="decimal"' in _input_tag(company, "company.registered_capital")
    headcount = _input_tag(company, "employees.headcount")
    assert 'type="number"' in headcount and 'inputmode="numeric"' in headcount, headcount
    retirement = (await _form_page(api, "retirement", {"retirement_type": "normal", "housing_fund": "no"})).text
    assert 'autocapitalize="characters"' in _input_tag(retirement, "employer.credit_code")
    assert 'inputmode="numeric"' in _input_tag(retirement, "bank_account.account_no")
    assert "inputmode" not in _input_tag(birth, "newborn.name")


async def test_an_unmarried_mothers_form_asks_for_the_declaration_and_leaves_the_father_optional(api):
    await console_login(api, "applicant1")

    page = await _form_page(api, "birth", {"marital_status": "unmarried", "hukou_follow": "mother"})

    assert 'name="materials.unmarried_birth_declaration"' in page.text
    assert "material-marriage_certificate" not in page.text
    assert _legend(page.text, "father") == "父亲信息 （选填）"


async def test_company_opening_asks_for_headcount_and_tax_agent_only_when_the_situation_needs_them(api):
    await console_login(api, "applicant1")

    neither = await _form_page(api, "company_opening", {"hires_employees": "no", "needs_invoices": "no"})
    both = await _form_page(api, "company_opening", {"hires_employees": "yes", "needs_invoices": "yes"})

    assert 'name="employees.headcount"' not in neither.text and 'name="tax.agent.name"' not in neither.text
    assert "material-tax_agent_id_card" not in neither.text
    assert 'name="employees.headcount"' in both.text and 'name="tax.agent.name"' in both.text
    assert "material-tax_agent_id_card" in both.text
    assert 'name="commit.premises_commitment"' in both.text


async def test_an_applicant_submits_through_the_form_and_follows_the_case(api, login: Login):
    await console_login(api, "applicant1")

    response = await _submit_birth(api, _birth_form())

    assert response.status_code == 303, response.text
    case_id = response.headers["location"].removeprefix("/my/cases/")
    page = await api.get(response.headers["location"])
    assert page.status_code == 200
    assert "申请已受理" in page.text  # the flash message left by the redirect
    assert _status_of(page.text) in {"accepted", "in_progress"}
    assert "受理通知书" in page.text and "网上申办" in page.text
    assert 'data-step="birth_certificate"' in page.text and "出生医学证明办理" in page.text
    assert "应于" in page.text  # the open steps' due dates
    # …as dates with the working days left, never ISO strings or working hours.
    assert re.search(r"应于 <span[^>]*>\d{4}年\d{1,2}月\d{1,2}日</span>前办结", page.text)
    assert re.search(r'data-testid="step-time-left">(今日到期|剩余 \d+ 个工作日)<', page.text)
    assert not re.search(r"\d{4}-\d{2}-\d{2}[ T]\d{2}:\d{2}", page.text)
    listing = await api.get("/my/cases")
    assert f'data-case-id="{case_id}"' in listing.text
    # The JSON API sees the same case: submitted online, owned by the applicant.
    case = (await api.get(f"/cases/{case_id}", headers=await login("applicant1"))).json()
    assert (case["channel"], case["situation"]) == ("online", "married_father")


async def test_invalid_input_comes_back_with_chinese_errors_beside_the_fields(api, engine):
    await console_login(api, "applicant1")
    form = _birth_form()
    form["newborn"]["name"] = "王2明"
    form["mother"]["id_number"] = "330102199003070028"  # wrong check digit
    form["delivery"] = {"method": "mail"}  # mail without an address

    response = await _submit_birth(api, form)

    assert response.status_code == 422
    assert "申请表填写有误" in response.text
    assert "不能用于姓名" in (field_error(response.text, "newborn.name") or "")
    assert field_error(response.text, "mother.id_number")
    assert field_error(response.text, "delivery.address") == "选择邮寄送达时须填写邮寄地址"
    assert field_error(response.text, "father.name") is None
    assert 'value="13800000000"' in response.text  # what was typed is kept
    assert _owned_cases(engine, "applicant1") == 0


async def test_a_missing_section_names_each_of_its_fields(api, engine):
    await console_login(api, "applicant1")
    form = _birth_form()
    del form["father"]

    response = await _submit_birth(api, form)

    assert response.status_code == 422
    assert field_error(response.text, "father.name") == "必填"
    assert field_error(response.text, "father.id_number") == "必填"
    assert _owned_cases(engine, "applicant1") == 0


async def test_a_rule_of_the_shared_submission_code_is_shown_beside_its_field(api, engine):
    await console_login(api, "applicant1")

    response = await _submit_birth(api, _birth_form(born_at=datetime.now(UTC) + timedelta(days=1)))

    assert response.status_code == 422
    assert field_error(response.text, "newborn.born_at") == "不能晚于当前时间"
    assert _owned_cases(engine, "applicant1") == 0


async def test_a_submission_without_the_csrf_token_is_refused_and_creates_nothing(api, engine):
    await console_login(api, "applicant1")

    response = await _submit_birth(api, _birth_form(), csrf_token="forged")

    assert response.status_code == 403
    assert "页面已过期或来源不明" in response.text
    assert _owned_cases(engine, "applicant1") == 0


async def test_a_double_submitted_form_creates_one_case(api, engine):
    await console_login(api, "applicant1")
    page = await _form_page(api, "birth", MARRIED_FATHER)
    data = {
        **flat_form(_birth_form()),
        **_answers(MARRIED_FATHER),
        "csrf_token": csrf_of(page.text),
        "idempotency_key": idempotency_key_of(page.text),
    }

    first = await api.post("/apply/birth", data=data)
    second = await api.post("/apply/birth", data=data)

    assert first.status_code == second.status_code == 303
    assert first.headers["location"] == second.headers["location"]
    assert _owned_cases(engine, "applicant1") == 1


async def test_another_applicants_case_is_not_found(api, cases: Cases):
    case = await cases.submit(as_user="applicant2")
    await console_login(api, "applicant1")

    response = await api.get(f"/my/cases/{case['case_id']}")

    assert response.status_code == 404
    assert "案件不存在" in response.text
    assert case["case_id"] not in (await api.get("/my/cases")).text


async def test_the_applicant_supplies_returned_materials_through_the_case_page(api, cases: Cases):
    case = await cases.submit()
    await cases.claim(case, "birth_certificate")
    returned = await cases.act(
        "return",
        case["case_id"],
        "birth_certificate",
        as_user="hospital_officer",
        body={"missing": ["delivery_record"], "reason": "分娩记录不清晰"},
    )
    assert returned.status_code == 200, returned.text
    await console_login(api, "applicant1")

    page = await api.get(f"/my/cases/{case['case_id']}")
    assert _status_of(page.text) == "awaiting_supplement"
    assert "分娩记录不清晰" in page.text and 'name="materials.delivery_record"' in page.text

    supplement_form = page.text[page.text.index('id="supplement-form"') :]
    response = await api.post(
        f"/my/cases/{case['case_id']}/supplement",
        data={
            "csrf_token": csrf_of(page.text),
            "idempotency_key": idempotency_key_of(supplement_form),
            "materials.delivery_record": "UPLOAD-0042",
        },
    )

    assert response.status_code == 303
    after = await api.get(response.headers["location"])
    assert "补正材料已提交" in after.text
    assert _status_of(after.text) == "in_progress"
    assert step_of(await cases.read(case["case_id"]), "birth_certificate")["status"] == "claimed"
    # The materials are listed as they are now: the returned one owed (with the step's reason), then received.
    owed = _materials(Page(page))["delivery_record"]
    assert owed.startswith("to_supply") and "需补正" in owed and "出生医学证明办理：分娩记录不清晰" in owed
    supplied = _materials(Page(after))["delivery_record"]
    assert supplied.startswith("received") and "已收取" in supplied and "UPLOAD-0042" in supplied


async def test_the_case_page_shows_the_case_number_the_materials_now_and_when_the_case_is_due(api, cases: Cases):
    # The data-sharing platform holds no marriage record for this mother: 结婚证 is owed from acceptance.
    form = _birth_form(mother_id=MOTHER_WITHOUT_MARRIAGE_RECORD_ID)
    case = await cases.submit(form=form, channel="online", proxy=PROXY)  # 李芳 files for this mother
    assert case["status"] == "awaiting_supplement" and case["case_no"]
    await console_login(api, "applicant1")

    before = Page(await api.get(f"/my/cases/{case['case_id']}"))

    # The case number people quote comes first; the technical id stays beside it.
    assert before.text("case-no") == case["case_no"] and before.text("case-id") == case["case_id"]
    assert case["case_no"] in before.text("acceptance-notice")
    materials = _materials(before)
    owed = materials["marriage_certificate"]
    assert owed.startswith("to_supply") and "结婚证" in owed and "需补正" in owed
    assert "数据共享平台未能获取，请提交" in owed  # why it is owed
    assert materials["mother_id_card"].startswith("shared") and "已共享" in materials["mother_id_card"]
    assert "marriage_certificate" not in before.text("case-materials")  # named, never by code
    # While materials are owed the clock stops: the whole case's time is counted from the 补正.
    assert re.fullmatch(r"补正材料齐全之日起\d+个工作日内全部办结", before.text("expected-completion"))

    supplement = before.form(f"/my/cases/{case['case_id']}/supplement")
    response = await api.post(
        supplement.action, data={**supplement.fields, "materials.marriage_certificate": "JHZ-330102-0088"}
    )
    assert response.status_code == 303, response.text
    after = Page(await api.get(response.headers["location"]))

    supplied = _materials(after)["marriage_certificate"]
    assert supplied.startswith("received") and "已收取" in supplied and "JHZ-330102-0088" in supplied
    assert "需补正" not in after.text("case-materials")
    assert re.fullmatch(
        r"最迟于\d{4}年\d{1,2}月\d{1,2}日(?: \d{2}:\d{2})?前全部办结", after.text("expected-completion")
    )
    assert after.text("case-no") == case["case_no"]


async def test_an_incomplete_supplement_changes_nothing(api, cases: Cases):
    case = await cases.submit()
    await cases.claim(case, "birth_certificate")
    body = {"missing": ["delivery_record"], "reason": "分娩记录不清晰"}
    await cases.act("return", case["case_id"], "birth_certificate", as_user="hospital_officer", body=body)
    await console_login(api, "applicant1")

    response = await api.post(
        f"/my/cases/{case['case_id']}/supplement",
        data={"csrf_token": await session_csrf(api), "materials.delivery_record": ""},
    )

    assert response.status_code == 303
    assert "请填写全部补正材料" in (await api.get(response.headers["location"])).text
    assert (await cases.read(case["case_id"]))["status"] == "awaiting_supplement"


async def test_the_applicant_rates_a_delivered_case_once_even_when_the_form_is_sent_twice(api, cases: Cases, engine):
    case = await cases.submit()
    await console_login(api, "applicant1")
    before = await api.get(f"/my/cases/{case['case_id']}")
    assert 'data-testid="rate"' not in before.text  # not before delivery
    await cases.finish(case)

    page = await api.get(f"/my/cases/{case['case_id']}")
    assert 'data-testid="rate"' in page.text
    rating_form = page.text[page.text.index('id="rating-form"') :]
    data = {
        "csrf_token": csrf_of(page.text),
        "idempotency_key": idempotency_key_of(rating_form),
        "score": "5",
        "comment": "很方便",
        "step": "",
    }
    first = await api.post(f"/my/cases/{case['case_id']}/rating", data=data)
    second = await api.post(f"/my/cases/{case['case_id']}/rating", data=data)

    assert first.status_code == second.status_code == 303
    after = await api.get(first.headers["location"])
    assert "感谢您的评价" in after.text
    assert after.text.count('data-testid="rating"') == 1
    with Session(engine) as session:
        record = session.get(CaseRecord, case["case_id"])
        assert record is not None
        assert [(r["score"], r["comment"]) for r in record.snapshot["ratings"]] == [(5, "很方便")]


async def test_a_rating_out_of_range_is_refused_with_a_message(api, cases: Cases):
    case = await cases.submit()
    await cases.finish(case)
    await console_login(api, "applicant1")

    response = await api.post(
        f"/my/cases/{case['case_id']}/rating", data={"csrf_token": await session_csrf(api), "score": "9"}
    )

    assert response.status_code == 303
    after = await api.get(response.headers["location"])
    assert "请选择 1 至 5 分的评价" in after.text
    assert 'data-testid="rating"' not in after.text

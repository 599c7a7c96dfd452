"""Valid sample submissions and step results, derived from the catalogue.

Used by the demo seeding (``make run``), the guides, and the tests, so that an
example can never drift from the definition it illustrates.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from datetime import datetime, timedelta
from typing import Any

from domain.catalogue import shipped_definitions
from domain.forms import FORMS
from domain.identity import make_id_number
from domain.workcalendar import SHANGHAI
from models.catalogue import StepDefinition, read_path

# Invented people known to the dev/test data-sharing fixture.
MOTHER_ID = "330102199003070027"
FATHER_ID = "330106199208150114"
UNMARRIED_MOTHER_ID = "330105199709090061"
MOTHER_WITHOUT_MARRIAGE_RECORD_ID = "330102198801010040"
# 企业开办: the legal representative and the tax agent (办税人员).
LEGAL_REPRESENTATIVE_ID = "330106198506120314"
TAX_AGENT_ID = "330102199304080480"
# 身后: the deceased.
DECEASED_ID = "330103194103020178"
# 退休: one retiree per kind of retirement (only the last has a 劳动能力鉴定结论),
# and the employer declaring, known by its unified social credit code.
RETIREE_ID = "330104196603100356"
SPECIAL_WORK_RETIREE_ID = "330105197105030130"
DISABILITY_RETIREE_ID = "33011019751020019X"
EMPLOYER_CREDIT_CODE = "91330104MA2B3KLT8L"

SAMPLE_ADDRESS = "浙江省杭州市上城区示例路1号"
# Who files the samples: the demo applicant1 (api/accounts.py), the newborn's mother, who is
# also the company's 经办人, the deceased's daughter and the employer's HR agent.
SAMPLE_APPLICANT = {"name": "李芳", "id_number": MOTHER_ID, "phone": "13800000000"}


def sample_birth_form(
    *,
    born_at: datetime | None = None,
    marital_status: str = "married",
    follow: str = "father",
    delivery: str = "pickup",
    mother_id: str | None = None,
) -> dict[str, Any]:
    born = born_at or datetime(2026, 11, 20, 8, 30, tzinfo=SHANGHAI)
    married = marital_status == "married"
    form: dict[str, Any] = {
        "newborn": {
            "name": "王小明",
            "sex": "male",
            "born_at": born.isoformat(),
            "birthplace_division_code": "330102",
        },
        "mother": {"name": "李芳", "id_number": mother_id or (MOTHER_ID if married else UNMARRIED_MOTHER_ID)},
        "marital_status": marital_status,
        "hukou": {"follow": follow, "address": "浙江省杭州市上城区示例路1号", "division_code": "330102"},
        "applicant": {
            "name": "李芳",
            "id_number": mother_id or (MOTHER_ID if married else UNMARRIED_MOTHER_ID),
            "phone": "13800000000",
            "relation": "mother",
        },
        "delivery": {"method": delivery, "address": "浙江省杭州市上城区示例路1号" if delivery == "mail" else None},
    }
    if married or follow == "father":
        form["father"] = {"name": "王强", "id_number": FATHER_ID}
    if not married:
        form["materials"] = {"unmarried_birth_declaration": "UPLOAD-DECL-0001"}
    return form


def another_newborn(form: dict[str, Any], number: int) -> dict[str, Any]:
    """A birth form for the ``number``-th newborn of a series, born a second before the one
    before it: each a subject of its own (one case per subject, domain/subjects.py)."""
    born = datetime.fromisoformat(form["newborn"]["born_at"]) - timedelta(seconds=number)
    return {**form, "newborn": {**form["newborn"], "born_at": born.isoformat()}}


def sample_answers(thing: str, situation: str | None = None) -> dict[str, str]:
    """Answers to every question of a shipped thing that select ``situation`` (default:
    its first situation); empty for a thing without situations."""
    definition = shipped_definitions()[thing]
    if not definition.situations:
        return {}
    chosen = definition.situation_named(situation) if situation else definition.situations[0]
    answers = {
        question.code: chosen.when.get(question.code, next(iter(question.options))) for question in definition.questions
    }
    selected = definition.situation_for(answers)
    if selected is None or selected.code != chosen.code:
        raise ValueError(f"{thing}: answers {answers} select {selected and selected.code!r}, not {chosen.code!r}")
    return answers


def sample_form(thing: str, situation: str | None = None, **options: Any) -> dict[str, Any]:
    """A valid form for a shipped thing in ``situation`` (default: its first situation).

    The situation's answers are written where its questions read them (``from_form``),
    and every material the applicant must hand in for that situation is attached as
    an upload reference, so a case started with this form opens its steps at once.
    Options go to the thing's builder (e.g. ``delivery="mail"``, ``born_at=...``).
    """
    definition = shipped_definitions()[thing]
    answers = sample_answers(thing, situation)
    form = _FORM_BUILDERS[definition.form](answers, **options)
    for question in definition.questions:
        if question.from_form and question.code in answers:
            _write_path(form, question.from_form, answers[question.code])
    chosen = situation or (definition.situations[0].code if definition.situations else None)
    resolved = definition.for_situation(chosen) if chosen else definition
    uploads = form.setdefault("materials", {})
    for material in resolved.materials:
        if material.source == "submit" and material.applies(form):
            uploads.setdefault(material.code, f"UPLOAD-{material.code.upper().replace('_', '-')}")
    if not uploads:
        del form["materials"]
    # A builder that drifted from the form model fails here, not in a test far away.
    FORMS[definition.form].model_validate(form)
    return form


def _write_path(form: dict[str, Any], dotted: str, value: Any) -> None:
    *parents, last = dotted.split(".")
    node = form
    for part in parents:
        node = node.setdefault(part, {})
    node[last] = value


def _delivery(method: str) -> dict[str, Any]:
    return {"method": method, "address": SAMPLE_ADDRESS if method == "mail" else None}


def _birth_form(answers: Mapping[str, str], **options: Any) -> dict[str, Any]:
    return sample_birth_form(
        marital_status=answers.get("marital_status", "married"), follow=answers.get("hukou_follow", "father"), **options
    )


def _company_opening_form(answers: Mapping[str, str], *, delivery: str = "pickup") -> dict[str, Any]:
    legal_representative = {"name": "赵建国", "id_number": LEGAL_REPRESENTATIVE_ID, "phone": "13900000001"}
    hiring = answers.get("hires_employees", "yes")
    invoices = answers.get("needs_invoices", "yes")
    tax: dict[str, Any] = {"invoices": invoices}
    if invoices == "yes":
        tax["agent"] = {"name": "钱丽", "id_number": TAX_AGENT_ID, "phone": "13900000002"}
    return {
        "company": {
            "name": "杭州示例科技有限公司",
            "registered_capital": "1000000.00",
            "business_scope": "软件开发；信息技术咨询服务",
            "address": "浙江省杭州市上城区示例路8号101室",
        },
        "legal_representative": legal_representative,
        "employees": {"hiring": hiring, **({"headcount": 5} if hiring == "yes" else {})},
        "tax": tax,
        "bank": {"bank_name": "中国工商银行"},
        "applicant": {**SAMPLE_APPLICANT, "role": "agent"},
        "delivery": _delivery(delivery),
    }


PLACES_OF_DEATH = {"normal": "浙江省杭州市西湖区示例医院", "unnatural": "浙江省杭州市西湖区示例路12号"}


def _death_form(
    answers: Mapping[str, str], *, delivery: str = "pickup", died_at: datetime | None = None
) -> dict[str, Any]:
    death_type = answers.get("death_type", "normal")
    died = died_at or datetime(2026, 11, 18, 3, 40, tzinfo=SHANGHAI)
    return {
        "deceased": {
            "name": "孙德福",
            "id_number": DECEASED_ID,
            "died_at": died.isoformat(),
            "place_of_death": "浙江省杭州市西湖区示例医院"
            if death_type == "normal"
            else "浙江省杭州市西湖区示例路12号",
            "death_type": death_type,
            "housing_fund_account": answers.get("housing_fund", "yes"),
        },
        "applicant": {**SAMPLE_APPLICANT, "relation": "child"},
        "payout_account": {
            "holder": SAMPLE_APPLICANT["name"],
            "bank_name": "中国农业银行",
            "account_no": "6228480012345678901",
        },
        "delivery": _delivery(delivery),
    }


RETIREES = {
    "normal": ("周志明", RETIREE_ID),
    "special_work": ("吴国强", SPECIAL_WORK_RETIREE_ID),
    "disability": ("郑海波", DISABILITY_RETIREE_ID),
}


def _retirement_form(answers: Mapping[str, str], *, delivery: str = "pickup") -> dict[str, Any]:
    kind = answers.get("retirement_type", "normal")
    name, id_number = RETIREES[kind]
    retiree = {"name": name, "id_number": id_number, "phone": "13600000004"}
    retirement: dict[str, Any] = {"kind": kind}
    if kind == "special_work":
        retirement["special_work"] = {"job_title": "高温炉前工", "years": 12}
    return {
        "retiree": retiree,
        "employer": {"name": "杭州示例机械制造有限公司", "credit_code": EMPLOYER_CREDIT_CODE},
        "retirement": retirement,
        "housing_fund": {"has_account": answers.get("housing_fund", "yes")},
        "bank_account": {"holder": name, "bank_name": "中国建设银行", "account_no": "6217000012345678901"},
        "applicant": {**SAMPLE_APPLICANT, "role": "employer_agent"},
        "delivery": _delivery(delivery),
    }


# By form name (a definition's ``form:``): the thing-specific part of a sample form.
_FORM_BUILDERS: dict[str, Callable[..., dict[str, Any]]] = {
    "birth": _birth_form,
    "company_opening": _company_opening_form,
    "death": _death_form,
    "retirement": _retirement_form,
}


def sample_result(step: StepDefinition, form: dict[str, Any]) -> dict[str, Any]:
    """A result that passes the step's checks for this form."""
    result: dict[str, Any] = {}
    for name, spec in step.result.items():
        if spec.type == "citizen_id":
            born = datetime.fromisoformat(str(read_path(form, spec.birth_date_of or "") or "2026-01-01T00:00:00+08:00"))
            division = str(read_path(form, "newborn.birthplace_division_code") or "330102")
            person = (spec.birth_date_of or "").rpartition(".")[0]
            # The sequence's parity gives the sex the form states for that person (odd: male).
            sequence = 2 if person and read_path(form, f"{person}.sex") == "female" else 1
            result[name] = make_id_number(division, born.astimezone(SHANGHAI).date(), sequence)
        elif spec.example is not None:
            result[name] = spec.example
        elif spec.type == "money":
            result[name] = "0.00"
        elif spec.type == "boolean":
            result[name] = True
        else:
            result[name] = f"{step.code}-result"
    return result


def birth_moment_days_ago(now: datetime, days: int) -> datetime:
    return (now - timedelta(days=days)).astimezone(SHANGHAI).replace(second=0, microsecond=0)

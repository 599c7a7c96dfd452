"""Application forms: what an applicant or a window clerk fills in for each "one thing".

A definition names its form (``form: birth``); ``FORMS`` maps that name to the
pydantic model that validates a submission before any workflow starts.
"""

from __future__ import annotations

import re
import unicodedata
from datetime import UTC, date, datetime, timedelta
from typing import Annotated, Any, Literal

from pydantic import AfterValidator, AwareDatetime, BaseModel, ConfigDict, Field, model_validator

from domain.divisions import DEFAULT_COUNTY, CountyCode, DivisionCode
from domain.identity import SEX_ZH, InvalidIdNumber, id_number_birth_date, id_number_sex, validate_id_number
from domain.workcalendar import SHANGHAI


def _clean_text(value: str) -> str:
    value = unicodedata.normalize("NFC", value).strip()
    if any(unicodedata.category(char) in {"Cc", "Cs"} for char in value):
        raise ValueError("contains control characters")
    # Zero-width spaces, joiners, byte-order marks and bidi overrides: invisible, they make
    # two equal-looking texts differ (and a bidi override can make one read as another).
    if any(unicodedata.category(char) == "Cf" for char in value):
        raise ValueError("含不可见的格式字符 (contains invisible format characters such as zero-width spaces)")
    return value


def _check_id_number(value: str) -> str:
    try:
        return validate_id_number(value)
    except InvalidIdNumber as exc:
        raise ValueError(str(exc)) from exc


# 统一社会信用代码 (GB 32100-2015): registration authority, entity type, 6-digit
# division code, 9-character organisation code and a check character (MOD 31).
# The letters I, O, S, V and Z are never used.
CREDIT_CODE_CHARACTERS = "0123456789ABCDEFGHJKLMNPQRTUWXY"
_CREDIT_CODE_WEIGHTS = (1, 3, 9, 27, 19, 26, 16, 17, 20, 29, 25, 13, 8, 24, 10, 30, 28)
_CREDIT_CODE = re.compile(r"[0-9A-HJ-NPQRTUWXY]{18}")


def credit_code_check_character(first_17: str) -> str:
    """The check character of a unified social credit code from its first 17 characters."""
    if len(first_17) != 17 or any(char not in CREDIT_CODE_CHARACTERS for char in first_17):
        raise ValueError("the first 17 characters must come from 0-9 and A-Y without I, O, S, V, Z")
    total = sum(
        CREDIT_CODE_CHARACTERS.index(char) * weight for char, weight in zip(first_17, _CREDIT_CODE_WEIGHTS, strict=True)
    )
    return CREDIT_CODE_CHARACTERS[(31 - total % 31) % 31]


def validate_credit_code(value: str) -> str:
    """The normalised (upper-case) code, or ValueError saying what is wrong."""
    code = value.strip().upper()
    if len(code) != 18:
        raise ValueError(f"统一社会信用代码应为18位 / expected 18 characters, got {len(code)}")
    if not _CREDIT_CODE.fullmatch(code):
        raise ValueError("统一社会信用代码含无效字符 / only 0-9 and A-Y without I, O, S, V, Z")
    if credit_code_check_character(code[:17]) != code[17]:
        raise ValueError("统一社会信用代码校验码错误 / checksum mismatch")
    return code


# --- 姓名 -----------------------------------------------------------------------------

# Han ideographs by code point rather than by unicodedata, which on Python 3.11
# (Unicode 14) would call the newest extensions (H, I) unassigned.
HAN_IDEOGRAPH_RANGES = (
    (0x3400, 0x4DBF),  # Extension A
    (0x4E00, 0x9FFF),  # CJK Unified Ideographs
    (0xF900, 0xFAFF),  # Compatibility Ideographs
    (0x20000, 0x2A6DF),  # Extension B
    (0x2A700, 0x2EE5F),  # Extensions C, D, E, F, I
    (0x2F800, 0x2FA1F),  # Compatibility Ideographs Supplement
    (0x30000, 0x323AF),  # Extensions G, H
)
NAME_SEPARATOR = "·"  # U+00B7, the separator in transliterated names (阿依古丽·买买提)
# Dots people type for it from other keyboards and fonts, stored as the one separator.
_MIDDLE_DOT_LOOKALIKES = str.maketrans(dict.fromkeys("・･•‧∙⋅", NAME_SEPARATOR))
# Parts of names in Latin letters ("Jean-Pierre O'Neil"); the Tibetan tsheg between syllables.
_OTHER_SEPARATORS = frozenset(" -'\u0f0b")
# Ideographic variation selectors choose a glyph of the Han character before them.
_IDEOGRAPHIC_VARIATION_SELECTORS = ((0xFE00, 0xFE0D), (0xE0100, 0xE01EF))
_PRESENTATION_SELECTORS = "\ufe0e\ufe0f"  # text or emoji style for the character before
_REFUSED_BY_CATEGORY = {
    "C": "控制、格式、私用或未分配的字符 (a control, invisible format, private-use or unassigned character)",
    "M": "不在字母上的组合符号 (a combining mark not on a letter of an alphabetic script)",
    "N": "数字 (a digit or number)",
    "P": "标点 (punctuation)",
    "S": "符号或表情 (a symbol or emoji)",
    "Z": "空白 (white space other than a single space)",
}


def _in_ranges(char: str, ranges: tuple[tuple[int, int], ...]) -> bool:
    return any(low <= ord(char) <= high for low, high in ranges)


def _name_character_kind(char: str) -> str:
    """``han``, ``letter``, ``mark``, ``variation`` or ``separator``; else the Unicode
    category class (C, M, N, P, S, Z) the character is refused for."""
    if _in_ranges(char, HAN_IDEOGRAPH_RANGES):
        return "han"
    if _in_ranges(char, _IDEOGRAPHIC_VARIATION_SELECTORS):
        return "variation"
    if char == NAME_SEPARATOR or char in _OTHER_SEPARATORS:
        return "separator"
    if char in _PRESENTATION_SELECTORS:
        return "S"
    category = unicodedata.category(char)[0]
    return {"L": "letter", "M": "mark"}.get(category, category)


_STRAY_VARIATION_SELECTOR = "不在汉字后的异体字选择符 (a variation selector not after a Han character)"
_MISPLACED_SEPARATOR = "分隔符不能在开头或连用 (a separator cannot start a name or follow another)"


def _refusal(kind: str, previous: str) -> str | None:
    """Why a character of this kind cannot follow one of the ``previous`` kind; None if it can."""
    if kind == "mark":
        return None if previous in {"letter", "mark"} else _REFUSED_BY_CATEGORY["M"]
    if kind == "variation":
        return None if previous == "han" else _STRAY_VARIATION_SELECTOR
    if kind == "separator":
        return _MISPLACED_SEPARATOR if previous == "separator" else None
    return _REFUSED_BY_CATEGORY.get(kind)


def validate_person_name(value: str) -> str:
    """A person's name as registered: NFC-normalised, or ValueError naming the wrong character and why.

    Allowed, so that every registered name can be filed:
    - Han ideographs of every CJK block and extension (A to I, and the compatibility
      ideographs): GB 18030-2022 covers the rare characters in real names (𠮷, 䶮, 𪚥).
    - Letters of any other script, for names kept in an ethnic-minority script or
      written in Latin letters, with the combining marks those scripts put on a letter
      (Tibetan vowel signs, Arabic harakat, accents); a decomposed "é" becomes "é".
    - "·" between the parts of a transliterated ethnic-minority or foreign name
      (阿依古丽·买买提); look-alike dots (・ • ‧) are stored as "·". A single space,
      hyphen or apostrophe also separates parts of a name in Latin letters, and the
      tsheg (་) the syllables of a Tibetan one.
    - An ideographic variation selector after a Han character (a registered glyph variant).

    Refused: digits, punctuation, symbols and emoji; control characters and invisible
    ones (zero-width spaces and joiners, byte-order marks, bidi overrides), which make
    equal-looking names differ; private-use code points, which mean nothing outside
    the system that assigned them; a combining mark with no letter under it, or on a
    Han character; a separator at either end or next to another.
    """
    name = unicodedata.normalize("NFC", value).strip().translate(_MIDDLE_DOT_LOOKALIKES)
    previous = "separator"  # so that a name cannot start with a separator or a mark
    for position, char in enumerate(name, start=1):
        kind = _name_character_kind(char)
        refused = _refusal(kind, previous)
        if refused is not None:
            where = f"第{position}个字符 U+{ord(char):04X}"
            raise ValueError(f"{where} 不能用于姓名 (character {position} is not allowed in a name): {refused}")
        previous = kind
    if name and previous == "separator":
        raise ValueError("姓名不能以分隔符结尾 (a name cannot end with a separator)")
    return name


PersonName = Annotated[str, Field(min_length=1, max_length=50), AfterValidator(validate_person_name)]
OrganisationName = Annotated[str, Field(min_length=2, max_length=100), AfterValidator(_clean_text)]
CreditCode = Annotated[str, Field(min_length=18, max_length=20), AfterValidator(validate_credit_code)]
# Decimal yuan with two places, as in step results ("1000000.00").
Money = Annotated[str, Field(pattern=r"^(0|[1-9]\d{0,11})\.\d{2}$")]
BankAccountNo = Annotated[str, Field(pattern=r"^\d{12,30}$")]
# A situation answer the form may carry; left out, the request's ``answers`` give it.
YesNo = Literal["yes", "no"]
MaterialCode = Annotated[str, Field(pattern=r"^[a-z][a-z0-9_]*$")]
MaterialReference = Annotated[str, Field(min_length=1, max_length=200)]
Address = Annotated[str, Field(min_length=2, max_length=200), AfterValidator(_clean_text)]
IdNumber = Annotated[str, Field(min_length=15, max_length=20), AfterValidator(_check_id_number)]
Phone = Annotated[str, Field(pattern=r"^(1\d{10}|0\d{2,3}-?\d{7,8})$")]


class _Form(BaseModel):
    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True)


class Newborn(_Form):
    name: PersonName
    sex: Literal["male", "female"]
    born_at: AwareDatetime
    birthplace_division_code: DivisionCode


class Parent(_Form):
    name: PersonName
    id_number: IdNumber


class Hukou(_Form):
    follow: Literal["father", "mother"]
    address: Address
    # 落户地 (county level): which police station registers the newborn. Left out, the
    # province's default county (domain/divisions.py), as before divisions were asked for.
    division_code: CountyCode = DEFAULT_COUNTY


class ApplicantPerson(_Form):
    name: PersonName
    id_number: IdNumber
    phone: Phone
    relation: Literal["father", "mother", "grandparent", "guardian", "other"]


class Delivery(_Form):
    method: Literal["pickup", "mail"]
    address: Address | None = None

    @model_validator(mode="after")
    def _mail_needs_address(self) -> Delivery:
        if self.method == "mail" and not self.address:
            raise ValueError("address is required when the method is mail")
        return self


class BirthForm(_Form):
    """出生"一件事"办理登记表: birth basics, hukou declaration, insurance and applicant."""

    newborn: Newborn
    mother: Parent
    father: Parent | None = None
    marital_status: Literal["married", "unmarried"]
    hukou: Hukou
    applicant: ApplicantPerson
    delivery: Delivery
    # Materials handed in with the form (code → document reference), e.g. the
    # 非婚生育声明; materials the data-sharing platform holds are not uploaded.
    materials: dict[
        Annotated[str, Field(pattern=r"^[a-z][a-z0-9_]*$")],
        Annotated[str, Field(min_length=1, max_length=200)],
    ] = Field(default_factory=dict, max_length=50)

    @model_validator(mode="after")
    def _father_rules(self) -> BirthForm:
        if self.father is None and (self.marital_status == "married" or self.hukou.follow == "father"):
            raise ValueError("father is required when the parents are married or the child follows the father")
        return self


# --- 企业开办一件事 -------------------------------------------------------------------


class ContactPerson(_Form):
    name: PersonName
    id_number: IdNumber
    phone: Phone


class Company(_Form):
    name: OrganisationName  # 企业名称 (自主申报)
    registered_capital: Money  # 注册资本（元）
    business_scope: Annotated[str, Field(min_length=2, max_length=1000), AfterValidator(_clean_text)]
    address: Address  # 住所, declared under a written commitment instead of a lease or deed


class Employees(_Form):
    # Situation answer (hires_employees); left out, the request's answers give it.
    hiring: YesNo | None = None
    headcount: int | None = Field(default=None, ge=1, le=100_000)

    @model_validator(mode="after")
    def _headcount_rules(self) -> Employees:
        if self.hiring == "yes" and self.headcount is None:
            raise ValueError("headcount is required when the company hires employees")
        if self.hiring == "no" and self.headcount is not None:
            raise ValueError("headcount is only for a company that hires employees")
        return self


class Tax(_Form):
    # Situation answer (needs_invoices); left out, the request's answers give it.
    invoices: YesNo | None = None
    # 办税人员: invoices are issued only to a named person (发票管理办法 第十五条).
    agent: ContactPerson | None = None

    @model_validator(mode="after")
    def _agent_rules(self) -> Tax:
        if self.invoices == "yes" and self.agent is None:
            raise ValueError("agent (办税人员) is required when the company applies for invoices")
        return self


class BankAppointment(_Form):
    bank_name: Annotated[str, Field(min_length=2, max_length=50), AfterValidator(_clean_text)]


class CompanyApplicant(ContactPerson):
    role: Literal["legal_representative", "agent"]


class CompanyOpeningForm(_Form):
    """企业开办"一件事"申请表: the company, its legal representative, staff, tax and bank."""

    company: Company
    legal_representative: ContactPerson
    employees: Employees = Field(default_factory=Employees)
    tax: Tax = Field(default_factory=Tax)
    bank: BankAppointment
    applicant: CompanyApplicant
    delivery: Delivery
    materials: dict[MaterialCode, MaterialReference] = Field(default_factory=dict, max_length=50)

    @model_validator(mode="after")
    def _applicant_rules(self) -> CompanyOpeningForm:
        if self.applicant.role == "legal_representative" and self.applicant.id_number != (
            self.legal_representative.id_number
        ):
            raise ValueError("an applicant acting as legal representative must be the legal representative")
        return self


# --- 身后一件事 -------------------------------------------------------------------------


class Deceased(_Form):
    name: PersonName
    id_number: IdNumber
    died_at: AwareDatetime
    place_of_death: Address
    # Situation answers (death_type, housing_fund); left out, the request's answers give them.
    death_type: Literal["normal", "unnatural"] | None = None
    housing_fund_account: YesNo | None = None


class PayoutAccount(_Form):
    """The bank account payouts go to (account balances, grants, withdrawals)."""

    holder: PersonName
    bank_name: Annotated[str, Field(min_length=2, max_length=50), AfterValidator(_clean_text)]
    account_no: BankAccountNo


class Kin(ContactPerson):
    relation: Literal["spouse", "child", "parent", "sibling", "other_relative"]


# A clock a little fast on the applicant's device must not reject a death just recorded.
CLOCK_TOLERANCE = timedelta(minutes=5)


class DeathForm(_Form):
    """身后"一件事"联办申请表: the deceased, the family member applying, and the payout account."""

    deceased: Deceased
    applicant: Kin
    payout_account: PayoutAccount
    delivery: Delivery
    materials: dict[MaterialCode, MaterialReference] = Field(default_factory=dict, max_length=50)

    @model_validator(mode="after")
    def _death_rules(self) -> DeathForm:
        if self.applicant.id_number == self.deceased.id_number:
            raise ValueError("the applicant must be a family member, not the deceased")
        if self.deceased.died_at > datetime.now(UTC) + CLOCK_TOLERANCE:
            raise ValueError("deceased.died_at cannot be in the future")
        if self.deceased.died_at.astimezone(SHANGHAI).date() < id_number_birth_date(self.deceased.id_number):
            raise ValueError("deceased.died_at is before the birth date in the ID number")
        return self


# --- 退休一件事 -------------------------------------------------------------------------


class Employer(_Form):
    name: OrganisationName
    credit_code: CreditCode  # 统一社会信用代码


class SpecialWork(_Form):
    """特殊工种: the job and the years worked in it, checked against the personnel file."""

    job_title: Annotated[str, Field(min_length=2, max_length=50), AfterValidator(_clean_text)]
    years: int = Field(ge=1, le=50)


class Retirement(_Form):
    # Situation answer (retirement_type); left out, the request's answers give it.
    kind: Literal["normal", "special_work", "disability"] | None = None
    special_work: SpecialWork | None = None

    @model_validator(mode="after")
    def _special_work_rules(self) -> Retirement:
        if self.kind == "special_work" and self.special_work is None:
            raise ValueError("special_work is required for early retirement from a special type of work")
        if self.kind in {"normal", "disability"} and self.special_work is not None:
            raise ValueError("special_work is only for early retirement from a special type of work")
        return self


class HousingFund(_Form):
    # Situation answer (housing_fund); left out, the request's answers give it.
    has_account: YesNo | None = None


class RetirementApplicant(ContactPerson):
    role: Literal["retiree", "employer_agent"]


class RetirementForm(_Form):
    """退休"一件事"联办申请表: the retiree, the employer declaring, and the pension account."""

    retiree: ContactPerson
    employer: Employer
    retirement: Retirement = Field(default_factory=Retirement)
    housing_fund: HousingFund = Field(default_factory=HousingFund)
    # Pension and housing-fund withdrawals are paid into the retiree's own account.
    bank_account: PayoutAccount
    applicant: RetirementApplicant
    delivery: Delivery
    materials: dict[MaterialCode, MaterialReference] = Field(default_factory=dict, max_length=50)

    @model_validator(mode="after")
    def _retiree_rules(self) -> RetirementForm:
        if self.applicant.role == "retiree" and self.applicant.id_number != self.retiree.id_number:
            raise ValueError("an applicant acting as the retiree must be the retiree")
        if self.bank_account.holder != self.retiree.name:
            raise ValueError("bank_account.holder must be the retiree: benefits are paid to the retiree's own account")
        return self


FORMS: dict[str, type[_Form]] = {
    "birth": BirthForm,
    "company_opening": CompanyOpeningForm,
    "death": DeathForm,
    "retirement": RetirementForm,
}


def form_has_field(model: type[BaseModel], dotted: str) -> bool:
    """Whether ``dotted`` (``hukou.division_code``) names a field of the form model."""
    current: Any = model
    for part in dotted.split("."):
        fields = getattr(current, "model_fields", None)
        if fields is None or part not in fields:
            return False
        annotation = fields[part].annotation
        # Optional[Sub] and Sub: step into the model inside the annotation.
        candidates = [annotation, *getattr(annotation, "__args__", ())]
        current = next((c for c in candidates if isinstance(c, type) and issubclass(c, BaseModel)), None)
    return True


# --- who the people on a form are: checks beyond each number's checksum -------------------------

MIN_PARENT_AGE = 14  # years, at the newborn's birth
MAX_PARENT_AGE = 80
ADULT_AGE = 18


def _age_on(id_number: str, day: date) -> int:
    born = id_number_birth_date(id_number)
    return day.year - born.year - ((day.month, day.day) < (born.month, born.day))


def _sex_problem(id_number: str, expected: Literal["male", "female"], who_zh: str, who: str) -> str | None:
    if id_number_sex(id_number) == expected:
        return None
    sex_zh = SEX_ZH[id_number_sex(id_number)]
    return (
        f"{who_zh}的公民身份号码第17位表示{sex_zh}性，与身份不符，请核对 "
        f"(the {who}'s number is a {'man' if sex_zh == '男' else 'woman'}'s by its 17th digit)"
    )


def identity_problems(form: BaseModel) -> dict[str, str]:
    """Problems with the people a valid form names, by field (``mother.id_number`` …): a number
    whose 17th digit gives the other sex than the role implies, a birth date implausible for the
    role, or an applicant whose stated relation the form contradicts. Empty when all is well."""
    if not isinstance(form, BirthForm):
        return {}
    problems: dict[str, str] = {}
    birth_day = form.newborn.born_at.astimezone(SHANGHAI).date()
    parents: list[tuple[str, str, Parent, Literal["male", "female"]]] = [("mother", "母亲", form.mother, "female")]
    if form.father is not None:
        parents.append(("father", "父亲", form.father, "male"))
    for key, who_zh, parent, sex in parents:
        problem = _sex_problem(parent.id_number, sex, who_zh, key)
        age = _age_on(parent.id_number, birth_day)
        if problem is None and not MIN_PARENT_AGE <= age <= MAX_PARENT_AGE:
            problem = (
                f"按号码中的出生日期，{who_zh}在新生儿出生时{age}岁，请核对 "
                f"(by the birth date in the number, the {key} was {age} at the birth)"
            )
        if problem is not None:
            problems[f"{key}.id_number"] = problem
    applicant = form.applicant
    relation = applicant.relation
    if relation in {"mother", "father"}:
        named: Parent | None = form.mother if relation == "mother" else form.father
        parent_number = named.id_number if named is not None else None
        if applicant.id_number != parent_number:
            who_zh = "母亲" if relation == "mother" else "父亲"
            problems["applicant.id_number"] = (
                f"申请人为新生儿{who_zh}，公民身份号码应与{who_zh}一致，否则请选择其他关系并按代办提交 "
                f"(the applicant is the {relation}: the number must be the {relation}'s)"
            )
    elif _age_on(applicant.id_number, birth_day) < ADULT_AGE:
        problems["applicant.id_number"] = (
            "申请人须为成年人，请核对公民身份号码 (the applicant must be an adult by the number's birth date)"
        )
    return problems

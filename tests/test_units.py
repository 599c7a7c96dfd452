"""单位: the pure rules of units (domain/units.py) and the demo organisation built from them."""

from __future__ import annotations

import pytest

from api.accounts import DEMO_COUNTIES, demo_accounts, demo_units
from domain.catalogue import shipped_definitions
from domain.identity import MOBILE_PHONE
from domain.units import (
    check_new_unit,
    check_supervisor_division,
    check_unit_code,
    check_unit_division,
    default_unit_code,
    default_unit_name,
    local_name,
)
from models.errors import DomainError, ErrorCode

DEFINITIONS = list(shipped_definitions().values())


def refused_fields(**unit: str) -> dict[str, str]:
    with pytest.raises(DomainError) as refused:
        check_new_unit(**unit)  # type: ignore[arg-type]
    assert refused.value.code == ErrorCode.INVALID
    return refused.value.fields


def test_a_department_units_code_and_name_follow_from_department_and_division():
    assert default_unit_code("police", "330102") == "police_330102"
    assert default_unit_name("police", "330102") == "杭州市上城区公安分局"  # a district's bureau is a branch
    assert default_unit_name("police", "330127") == "杭州市淳安县公安局"  # a county has its own
    assert default_unit_name("police", "330100") == "杭州市公安局"  # the city's
    assert default_unit_name("medical_security", "330203") == "宁波市海曙区医疗保障分局"
    assert default_unit_name("hr_social_security", "330106") == "杭州市西湖区人力资源和社会保障局"
    assert default_unit_name("service_center", "330102") == "杭州市上城区行政服务中心"
    assert local_name("330102") == "杭州市上城区"  # below the province: how the units' names read


def test_a_hospital_has_no_default_name_it_is_an_institution():
    assert default_unit_name("hospital", "330102") is None

    assert set(refused_fields(department="hospital", division_code="330102")) == {"name_zh"}
    unit = check_new_unit(
        department="hospital",
        division_code="330102",
        kind="institution",
        code="hospital_330102_zjfy",
        name_zh=" 浙江大学医学院附属妇产科医院 ",
    )
    assert (unit.code, unit.kind, unit.name_zh) == (
        "hospital_330102_zjfy",
        "institution",
        "浙江大学医学院附属妇产科医院",
    )


def test_a_department_unit_is_filled_in_and_may_not_take_another_code():
    unit = check_new_unit(department="police", division_code="330102", window_zh="上城区市民之家 3 号窗口")

    assert (unit.code, unit.kind, unit.name_zh) == ("police_330102", "department", "杭州市上城区公安分局")
    assert unit.window_zh == "上城区市民之家 3 号窗口"
    assert "police_330102" in refused_fields(department="police", division_code="330102", code="police_hz")["code"]


def test_an_institution_needs_a_code_of_its_own_and_a_name():
    assert set(refused_fields(department="hospital", division_code="330102", kind="institution")) == {
        "code",
        "name_zh",
    }
    reserved = refused_fields(
        department="police", division_code="330102", kind="institution", code="police_330102", name_zh="某机构"
    )
    assert set(reserved) == {"code"}  # that code is the police unit's of 上城区


@pytest.mark.parametrize("code", ["A1", "x", "-abc", "_abc", "police 330102", "a" * 65, "警察"])
def test_malformed_unit_codes_are_refused(code):
    with pytest.raises(ValueError, match="单位代码"):
        check_unit_code(code)


def test_well_formed_unit_codes_pass():
    for code in ("police_330102", "hospital_330102_zjfy", "a1", "x-y_z", "a" * 64):
        assert check_unit_code(code) == code


def test_a_unit_sits_in_a_current_city_or_county_of_the_province():
    assert check_unit_division("330102") == "330102"
    assert check_unit_division("330100") == "330100"  # a city's own unit (杭州市公安局)
    with pytest.raises(ValueError, match="330105"):
        check_unit_division("330103")  # retired: the reason names its successor
    with pytest.raises(ValueError, match="省级"):
        check_unit_division("330000")
    with pytest.raises(ValueError, match="不在本省"):
        check_unit_division("110101")
    with pytest.raises(ValueError, match="不存在"):
        check_unit_division("abc")


def test_every_refused_field_is_named_at_once():
    fields = refused_fields(department="mars", division_code="330103", kind="branch", code="X")

    assert set(fields) == {"department", "division_code", "kind", "code"}
    assert "330105" in fields["division_code"]  # domain/divisions' reason, successor named
    assert "mars" in fields["department"]


def test_a_department_that_receives_no_tasks_has_no_units():
    assert set(refused_fields(department="big_data", division_code="330102")) == {"department"}


def test_a_supervisors_division_is_any_current_division_of_the_province():
    for code in ("330000", "330100", "330102"):
        assert check_supervisor_division(code) == code
    with pytest.raises(ValueError, match="330105"):
        check_supervisor_division("330103")
    with pytest.raises(ValueError, match="不在本省"):
        check_supervisor_division("110000")


def test_the_demo_seeds_a_unit_of_every_staffed_department_in_each_county():
    units = {unit.code: unit for unit in demo_units(DEFINITIONS)}
    accounts = {account.username: account for account in demo_accounts(DEFINITIONS)}
    officer_departments = {account.unit for account in accounts.values() if account.role == "officer"}

    for county in DEMO_COUNTIES:
        seeded = {unit.department for unit in units.values() if unit.division_code == county}
        assert officer_departments <= seeded, county
        hospitals = [u for u in units.values() if u.division_code == county and u.department == "hospital"]
        assert [u.kind for u in hospitals] == ["institution"]
    assert units["police_330102"].name_zh == "杭州市上城区公安分局"
    assert units["hospital_330102_fybj"].name_zh == "杭州市上城区妇幼保健院"
    # Each with a duty phone of its own, where its 督办 are texted in dev.
    phones = [unit.duty_phone for unit in units.values()]
    assert all(phone is not None and MOBILE_PHONE.fullmatch(phone) for phone in phones)
    assert len(set(phones)) == len(phones)


def test_every_demo_member_is_of_its_units_department():
    units = {unit.code: unit for unit in demo_units(DEFINITIONS)}
    accounts = {account.username: account for account in demo_accounts(DEFINITIONS)}

    for account in accounts.values():
        if account.unit_code is not None:
            assert account.role in {"officer", "clerk"}, account
            assert units[account.unit_code].department == account.unit, account
    assert accounts["police_330203_officer"].unit_code == "police_330203"
    assert accounts["police_officer"].unit_code == "police_330102"  # the first accounts work in 上城区
    assert accounts["hospital_clerk"].unit_code == "hospital_330102_fybj"
    assert accounts["service_center_330106_clerk"].unit_code == "service_center_330106"
    assert (accounts["supervisor_3301"].division_code, accounts["supervisor_3302"].division_code) == (
        "330100",
        "330200",
    )
    assert accounts["supervisor"].division_code is None  # the province


def test_a_duty_phone_is_a_mainland_mobile_number_or_none():
    assert check_new_unit(department="police", division_code="330102", duty_phone=" 13700001234 ").duty_phone == (
        "13700001234"
    )
    assert check_new_unit(department="police", division_code="330102", duty_phone="").duty_phone is None
    assert check_new_unit(department="police", division_code="330102").duty_phone is None
    for phone in ("12345678901", "1370000123", "+8613700001234", "13７00001234"):
        assert set(refused_fields(department="police", division_code="330102", duty_phone=phone)) == {"duty_phone"}


def test_names_with_control_characters_or_too_long_are_refused():
    fields = refused_fields(department="police", division_code="330102", name_zh="上城\x00分局", window_zh="窗" * 129)

    assert set(fields) == {"name_zh", "window_zh"}

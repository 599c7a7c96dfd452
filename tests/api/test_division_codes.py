"""行政区划 on application forms: a hukou division must be a current county of the province (the
police station that registers the newborn is chosen by it), a birthplace any current division of the
country; an unknown, retired or wrong-level code is 422 naming the field, and no case starts. A birth
form without a hukou division keeps working and goes to the default county."""

from __future__ import annotations

import pytest
from sqlalchemy import func, select
from sqlmodel import Session

from domain.divisions import DEFAULT_COUNTY
from models.tables import CaseRecord
from tests.api.helpers import assert_error, birth_form


def _case_count(engine) -> int:
    with Session(engine) as session:
        return int(session.execute(select(func.count()).select_from(CaseRecord)).scalar_one())


@pytest.mark.parametrize(
    ("code", "says"),
    [
        ("999999", "不存在"),
        ("330104", "已于2021年撤销"),  # 江干区, merged in 2021
        ("330100", "不是县级区划"),  # 杭州市: a city, not a county
        ("110101", "不在本省"),  # 北京市东城区
        ("33010", None),  # not six digits
    ],
)
async def test_a_hukou_division_that_is_not_a_current_county_of_the_province_is_422(cases, engine, code, says):
    form = birth_form()
    form["hukou"]["division_code"] = code

    error = assert_error(await cases.post(form=form), 422, "validation_error", ["form.hukou.division_code"])

    if says is not None:
        assert says in error["fields"]["form.hukou.division_code"]
    assert _case_count(engine) == 0


async def test_a_retired_division_is_refused_naming_what_to_write_instead(cases):
    form = birth_form()
    form["hukou"]["division_code"] = "330204"  # 宁波市江东区, merged into 鄞州区 in 2016

    error = assert_error(await cases.post(form=form), 422, "validation_error", ["form.hukou.division_code"])

    assert "330212" in error["fields"]["form.hukou.division_code"]


async def test_an_unknown_birthplace_division_is_422(cases, engine):
    form = birth_form()
    form["newborn"]["birthplace_division_code"] = "000000"

    assert_error(await cases.post(form=form), 422, "validation_error", ["form.newborn.birthplace_division_code"])

    assert _case_count(engine) == 0


async def test_a_birth_outside_the_province_is_accepted_at_a_hospital_window_of_the_province(cases):
    # Born in 上海市黄浦区 and brought to this hospital's window: its own staff issue the certificate.
    form = birth_form()
    form["newborn"]["birthplace_division_code"] = "310101"

    response = await cases.post(form=form, channel="hospital", as_user="hospital_clerk")

    assert response.status_code == 201, response.text


async def test_a_birth_form_without_a_hukou_division_goes_to_the_default_county(cases, api, login):
    form = birth_form()
    del form["hukou"]["division_code"]

    created = await cases.submit(form=form)

    read = await api.get(f"/cases/{created['case_id']}", headers=await login("applicant1"))
    assert read.json()["form"]["hukou"]["division_code"] == DEFAULT_COUNTY


async def test_a_hukou_division_in_another_city_of_the_province_is_accepted(cases, api, login):
    form = birth_form()
    form["hukou"]["division_code"] = "330203"  # 宁波市海曙区

    created = await cases.submit(form=form)

    read = await api.get(f"/cases/{created['case_id']}", headers=await login("applicant1"))
    assert read.json()["form"]["hukou"]["division_code"] == "330203"

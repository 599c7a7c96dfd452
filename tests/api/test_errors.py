"""Invalid submissions (422 naming each bad field), oversized bodies (413), unknown resources (404),
all in the one error shape {"error": {"code", "message", "fields"?}}."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta

from sqlalchemy import func, select
from sqlmodel import Session

from models.tables import CaseRecord
from tests.api.helpers import assert_error, birth_form

LIMIT = 64 * 1024  # api_settings in tests/api/conftest.py


def _case_count(engine) -> int:
    with Session(engine) as session:
        return int(session.execute(select(func.count()).select_from(CaseRecord)).scalar_one())


async def test_a_mother_id_number_with_a_wrong_checksum_is_422_naming_the_field(cases, engine):
    form = birth_form()
    form["mother"]["id_number"] = "330102199003070028"  # 330102199003070027 with its check digit changed

    error = assert_error(await cases.post(form=form), 422, "validation_error", ["form.mother.id_number"])

    assert "checksum" in error["fields"]["form.mother.id_number"]
    assert _case_count(engine) == 0


async def test_a_missing_newborn_name_is_422_naming_the_field(cases):
    form = birth_form()
    del form["newborn"]["name"]

    assert_error(await cases.post(form=form), 422, "validation_error", ["form.newborn.name"])


async def test_every_bad_field_is_named_at_once(cases):
    form = birth_form()
    del form["newborn"]["name"]
    form["applicant"]["phone"] = "12"
    form["newborn"]["sex"] = "unknown"

    error = assert_error(await cases.post(form=form), 422, "validation_error")

    assert {"form.newborn.name", "form.applicant.phone", "form.newborn.sex"} <= set(error["fields"])


async def test_mail_delivery_without_an_address_is_422_naming_delivery(cases):
    form = birth_form(delivery="mail")
    form["delivery"].pop("address")

    error = assert_error(await cases.post(form=form), 422, "validation_error", ["form.delivery"])

    assert "address" in error["fields"]["form.delivery"]


async def test_an_unknown_thing_is_422_naming_thing(cases):
    assert_error(await cases.post(thing="marriage"), 422, "validation_error", ["thing"])


async def test_an_unknown_channel_is_422_naming_channel(cases):
    assert_error(await cases.post(channel="fax"), 422, "validation_error", ["channel"])


async def test_a_birth_in_the_future_is_422_naming_born_at(cases, engine):
    form = birth_form(born_at=datetime.now(UTC) + timedelta(days=1))

    assert_error(await cases.post(form=form), 422, "validation_error", ["form.newborn.born_at"])
    assert _case_count(engine) == 0


async def test_a_birth_time_without_a_timezone_is_422(cases):
    form = birth_form()
    form["newborn"]["born_at"] = "2026-11-20T08:30:00"

    assert_error(await cases.post(form=form), 422, "validation_error", ["form.newborn.born_at"])


async def test_an_unknown_top_level_field_is_422_naming_it(api, login):
    body = {"thing": "birth", "channel": "hospital", "form": birth_form(), "priority": "urgent"}

    response = await api.post("/cases", json=body, headers=await login("applicant1"))

    assert_error(response, 422, "validation_error", ["priority"])


async def test_an_unknown_form_field_is_422_naming_it(cases):
    form = birth_form()
    form["newborn"]["blood_type"] = "A"

    assert_error(await cases.post(form=form), 422, "validation_error", ["form.newborn.blood_type"])


async def test_a_body_that_is_not_json_is_422(api, login):
    headers = {**await login("applicant1"), "Content-Type": "application/json"}

    response = await api.post("/cases", content=b"{not json", headers=headers)

    assert_error(response, 422, "validation_error")


async def test_a_body_over_the_limit_is_413(api, login, engine):
    form = birth_form()
    form["materials"] = {"padding": "x" * (LIMIT + 1)}

    response = await api.post(
        "/cases", json={"thing": "birth", "channel": "hospital", "form": form}, headers=await login("applicant1")
    )

    assert_error(response, 413, "payload_too_large")
    assert _case_count(engine) == 0


async def test_a_chunked_body_over_the_limit_is_413_too(api, login):
    payload = json.dumps({"thing": "birth", "channel": "hospital", "form": {"padding": "x" * (LIMIT + 1)}}).encode()

    async def chunks():
        for start in range(0, len(payload), 8192):
            yield payload[start : start + 8192]

    headers = {**await login("applicant1"), "Content-Type": "application/json"}
    response = await api.post("/cases", content=chunks(), headers=headers)

    assert response.request.headers.get("transfer-encoding") == "chunked"
    assert_error(response, 413, "payload_too_large")


async def test_a_body_just_under_the_limit_is_read_and_validated(api, login):
    form = birth_form()
    form["padding"] = "x" * (LIMIT - 4096)

    response = await api.post(
        "/cases", json={"thing": "birth", "channel": "hospital", "form": form}, headers=await login("applicant1")
    )

    assert_error(response, 422, "validation_error", ["form.padding"])


async def test_an_unknown_case_is_404(api, login):
    response = await api.get("/cases/ot-00000000000000000000", headers=await login("supervisor"))

    assert_error(response, 404, "not_found")


async def test_an_unknown_path_is_404_in_the_same_shape(api, login):
    response = await api.get("/no-such-endpoint", headers=await login("supervisor"))

    assert_error(response, 404, "not_found")

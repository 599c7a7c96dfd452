"""Bad input gets a clear 4xx naming the field and the reason, and leaves nothing half-written:
malformed bodies (deep JSON, wrong media types, invalid UTF-8, JSON that is not an object),
person names (rare CJK characters and ·-separated names accepted; emoji, invisible and
control characters, stray combining marks refused) and ID numbers (wrong check digit,
impossible birth date). Size limits are in test_errors.py."""

from __future__ import annotations

import json
import uuid

import pytest
from sqlalchemy import func, select
from sqlmodel import Session
from temporalio.service import RPCError, RPCStatusCode

from api.main import MAX_JSON_DEPTH
from api.timeline import read_case_history
from domain.identity import check_character
from models.tables import CaseRecord
from tests.api.helpers import assert_error, birth_form, result_for
from workflows.case.workflow import CaseWorkflow
from workflows.starter import new_case_id

APPLICANT = "applicant1"
BODY_LIMIT = 64 * 1024  # api_settings in tests/api/conftest.py


def _case_count(engine) -> int:
    with Session(engine) as session:
        return int(session.execute(select(func.count()).select_from(CaseRecord)).scalar_one())


async def _assert_no_case_started(env, engine, key: str, cases_before: int) -> None:
    """Nothing half-written: no case in the read model and no workflow under the request's Idempotency-Key."""
    assert _case_count(engine) == cases_before
    with pytest.raises(RPCError) as raised:
        await env.client.get_workflow_handle(new_case_id(APPLICANT, key)).describe()
    assert raised.value.status == RPCStatusCode.NOT_FOUND


async def _post_raw(api, login, body: bytes, content_type: str | None, key: str):
    headers = {**await login(APPLICANT), "Idempotency-Key": key}
    if content_type is not None:
        headers["Content-Type"] = content_type
    return await api.post("/cases", content=body, headers=headers)


def _submission(form: dict) -> bytes:
    return json.dumps({"thing": "birth", "channel": "hospital", "form": form}, ensure_ascii=False).encode()


# --- malformed bodies ---------------------------------------------------------------------------


async def test_json_nested_ten_thousand_deep_is_422_naming_the_body_not_a_500(api, login, env, engine):
    key = uuid.uuid4().hex
    body = b"[" * 10_000 + b"]" * 10_000

    error = assert_error(await _post_raw(api, login, body, "application/json", key), 422, "validation_error", ["body"])

    assert "nested too deeply" in error["fields"]["body"]
    await _assert_no_case_started(env, engine, key, 0)


async def test_json_nested_past_the_depth_limit_inside_the_form_is_422_naming_the_body(api, login, env, engine):
    key = uuid.uuid4().hex
    form = birth_form()
    nested: dict = {}
    form["materials"] = nested
    for _ in range(MAX_JSON_DEPTH):
        nested["x"] = {}
        nested = nested["x"]

    error = assert_error(
        await _post_raw(api, login, _submission(form), "application/json", key), 422, "validation_error", ["body"]
    )

    assert f"deeper than {MAX_JSON_DEPTH} levels" in error["fields"]["body"]
    await _assert_no_case_started(env, engine, key, 0)


async def test_a_deeply_nested_step_result_is_422_and_the_step_is_not_completed(cases, env):
    case = await cases.submit()
    await cases.claim(case, "birth_certificate")
    result = result_for("birth_certificate", case["_form"])
    deep: dict = result
    for _ in range(MAX_JSON_DEPTH + 1):
        deep["note"] = {}
        deep = deep["note"]

    response = await cases.act(
        "complete", case["case_id"], "birth_certificate", as_user="hospital_officer", body={"result": result}
    )

    assert_error(response, 422, "validation_error", ["body"])
    snapshot = await env.client.get_workflow_handle(case["case_id"]).query(CaseWorkflow.snapshot)
    assert next(s for s in snapshot.steps if s.step == "birth_certificate").status == "claimed"


@pytest.mark.parametrize("content_type", ["text/plain", "application/xml", "application/x-www-form-urlencoded", None])
async def test_a_submission_in_another_media_type_than_json_is_422_naming_content_type(
    api, login, env, engine, content_type
):
    key = uuid.uuid4().hex

    response = await _post_raw(api, login, _submission(birth_form()), content_type, key)

    error = assert_error(response, 422, "validation_error", ["Content-Type"])
    assert "expected application/json" in error["fields"]["Content-Type"]
    assert f"got {content_type or 'none'}" in error["fields"]["Content-Type"]
    await _assert_no_case_started(env, engine, key, 0)


async def test_a_json_body_with_a_charset_parameter_is_accepted(api, login):
    response = await _post_raw(
        api, login, _submission(birth_form()), "application/json; charset=utf-8", uuid.uuid4().hex
    )

    assert response.status_code == 201, response.text


async def test_json_sent_to_the_login_form_is_422_naming_content_type(api):
    response = await api.post("/auth/token", json={"username": APPLICANT, "password": "demo"})

    error = assert_error(response, 422, "validation_error", ["Content-Type"])
    assert "expected application/x-www-form-urlencoded" in error["fields"]["Content-Type"]


async def test_login_accepts_a_multipart_form_as_well(api):
    response = await api.post("/auth/token", files={"username": (None, APPLICANT), "password": (None, "demo")})

    assert response.status_code == 200, response.text


async def test_a_body_that_is_not_valid_utf8_is_422_naming_the_body(api, login, env, engine):
    key = uuid.uuid4().hex
    body = _submission(birth_form()).replace("王小明".encode(), b"\xff\xfe\xfd")

    error = assert_error(await _post_raw(api, login, body, "application/json", key), 422, "validation_error", ["body"])

    assert "UTF-8" in error["fields"]["body"]
    await _assert_no_case_started(env, engine, key, 0)


async def test_a_body_that_is_not_json_names_the_body_and_where_it_breaks(api, login):
    response = await _post_raw(api, login, b'{"thing": "birth",', "application/json", uuid.uuid4().hex)

    error = assert_error(response, 422, "validation_error", ["body"])
    assert "invalid JSON at character" in error["fields"]["body"]


@pytest.mark.parametrize("body", [b"[]", b'"birth"', b"42", b"null", b"true"])
async def test_json_that_is_not_an_object_is_422_naming_the_body(api, login, env, engine, body):
    key = uuid.uuid4().hex

    assert_error(await _post_raw(api, login, body, "application/json", key), 422, "validation_error", ["body"])

    await _assert_no_case_started(env, engine, key, 0)


# --- person names -------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "name",
    [
        "王𠮷",  # U+20BB7, Extension B
        "龚䶮",  # U+4DAE, Extension A (the name of 刘䶮)
        "𪚥",  # U+2A6A5, Extension B
        "李𰻞",  # U+30EDE, Extension G
        "阿依古丽·买买提",  # an ethnic-minority name with the middle dot
    ],
)
async def test_rare_cjk_characters_and_middle_dot_names_are_accepted_and_kept_as_given(cases, env, name):
    form = birth_form()
    form["newborn"]["name"] = name

    case = await cases.submit(form=form)

    submitted, _ = await read_case_history(env.client, case["case_id"])
    assert submitted.form["newborn"]["name"] == name


async def test_a_look_alike_dot_and_a_decomposed_accent_are_stored_normalised(cases, env):
    form = birth_form()
    form["newborn"]["name"] = "阿依古丽・买买提"  # U+30FB KATAKANA MIDDLE DOT
    form["mother"]["name"] = "Jose\u0301 李"  # e + COMBINING ACUTE ACCENT

    case = await cases.submit(form=form)

    submitted, _ = await read_case_history(env.client, case["case_id"])
    assert submitted.form["newborn"]["name"] == "阿依古丽·买买提"  # U+00B7
    assert submitted.form["mother"]["name"] == "Jos\u00e9 李"  # NFC


@pytest.mark.parametrize(
    ("field", "name", "reason"),
    [
        ("newborn", "王小明😀", "symbol or emoji"),
        ("newborn", "王小明\u2764\ufe0f", "symbol or emoji"),
        ("mother", "李\u200b芳", "invisible format"),  # ZERO WIDTH SPACE
        ("mother", "李\u200d芳", "invisible format"),  # ZERO WIDTH JOINER
        ("mother", "\ufeff李芳", "invisible format"),  # BYTE ORDER MARK
        ("applicant", "李\u202e芳", "invisible format"),  # RIGHT-TO-LEFT OVERRIDE
        ("applicant", "李\u0007芳", "control"),
        ("father", "王\u0301强", "combining mark"),  # an accent on a Han character
        ("father", "\u0301王强", "combining mark"),  # a mark with nothing under it
        ("father", "·王强", "separator"),
        ("father", "王··强", "separator"),
        ("newborn", "王小明2", "digit"),
        ("newborn", "王\ue000明", "private-use"),
    ],
)
async def test_a_name_with_a_character_no_name_can_have_is_422_naming_the_field_and_the_character(
    cases, env, engine, field, name, reason
):
    key = uuid.uuid4().hex
    form = birth_form()
    form[field]["name"] = name

    error = assert_error(await cases.post(form=form, key=key), 422, "validation_error", [f"form.{field}.name"])

    assert reason in error["fields"][f"form.{field}.name"]
    await _assert_no_case_started(env, engine, key, 0)


async def test_an_invisible_character_in_an_address_is_422_naming_the_field(cases):
    form = birth_form()
    form["hukou"]["address"] = "浙江省杭州市\u200b上城区示例路1号"

    error = assert_error(await cases.post(form=form), 422, "validation_error", ["form.hukou.address"])

    assert "invisible" in error["fields"]["form.hukou.address"]


# --- ID numbers ----------------------------------------------------------------------------------


def _with_birth_date(division: str, yyyymmdd: str, sequence: str) -> str:
    """An ID number whose check digit is right, so only the date can be wrong."""
    body = division + yyyymmdd + sequence
    return body + check_character(body)


@pytest.mark.parametrize("birth_date", ["19900230", "19000229", "19901301", "19900000"])
async def test_an_id_number_with_an_impossible_birth_date_is_422_naming_the_field(cases, env, engine, birth_date):
    key = uuid.uuid4().hex
    form = birth_form()
    form["mother"]["id_number"] = _with_birth_date("330102", birth_date, "002")

    error = assert_error(await cases.post(form=form, key=key), 422, "validation_error", ["form.mother.id_number"])

    assert "impossible birth date" in error["fields"]["form.mother.id_number"]
    await _assert_no_case_started(env, engine, key, 0)


async def test_an_applicant_id_number_with_a_wrong_check_digit_starts_no_case(cases, env, engine):
    key = uuid.uuid4().hex
    form = birth_form()
    valid = form["applicant"]["id_number"]
    form["applicant"]["id_number"] = valid[:17] + ("0" if valid[17] != "0" else "1")

    error = assert_error(await cases.post(form=form, key=key), 422, "validation_error", ["form.applicant.id_number"])

    assert "checksum" in error["fields"]["form.applicant.id_number"]
    await _assert_no_case_started(env, engine, key, 0)


async def test_a_rejected_submission_leaves_earlier_cases_as_they_were(cases, env, engine):
    await cases.submit()
    key = uuid.uuid4().hex
    form = birth_form()
    form["newborn"]["name"] = "王😀"

    assert_error(await cases.post(form=form, key=key), 422, "validation_error", ["form.newborn.name"])

    await _assert_no_case_started(env, engine, key, 1)


# --- sizes (the JSON endpoints' 413 is in test_errors.py) ---------------------------------------


async def test_an_oversized_login_form_is_413(api):
    response = await api.post("/auth/token", data={"username": APPLICANT, "password": "x" * (BODY_LIMIT + 1)})

    assert_error(response, 413, "payload_too_large")


async def test_an_oversized_submission_with_an_idempotency_key_starts_no_workflow(api, login, env, engine):
    key = uuid.uuid4().hex
    form = birth_form()
    form["materials"] = {"padding": "x" * (BODY_LIMIT + 1)}

    assert_error(await _post_raw(api, login, _submission(form), "application/json", key), 413, "payload_too_large")

    await _assert_no_case_started(env, engine, key, 0)

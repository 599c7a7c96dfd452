"""The codec server (/codec) lets the Temporal UI show decrypted payloads to staff only."""

from __future__ import annotations

import base64
import json
from datetime import UTC, datetime, timedelta

import pytest
from temporalio.api.common.v1 import Payload
from temporalio.api.enums.v1 import EventType
from temporalio.testing import WorkflowEnvironment

from api.routes.codec import SESSION_COOKIE
from domain.samples import MOTHER_ID
from infra.codec import ENCRYPTED_ENCODING
from models.case import Actor
from tests.api.helpers import assert_error, issued_token

UI_ORIGIN = "http://localhost:8233"


def _as_json(payload: Payload) -> dict:
    return {
        "metadata": {name: base64.b64encode(value).decode() for name, value in payload.metadata.items()},
        "data": base64.b64encode(payload.data).decode(),
    }


def _from_json(item: dict) -> Payload:
    return Payload(
        metadata={name: base64.b64decode(value) for name, value in item.get("metadata", {}).items()},
        data=base64.b64decode(item.get("data", "")),
    )


async def _sealed(env: WorkflowEnvironment, value: object) -> Payload:
    (payload,) = await env.client.data_converter.encode([value])
    assert payload.metadata["encoding"] == ENCRYPTED_ENCODING
    return payload


@pytest.mark.parametrize("username", ["hospital_clerk", "hospital_officer", "police_officer"])
async def test_clerks_and_officers_decode_in_full(api, login, env, username) -> None:
    payload = await _sealed(env, {"id_number": MOTHER_ID, "name": "李芳"})
    response = await api.post("/codec/decode", json={"payloads": [_as_json(payload)]}, headers=await login(username))
    assert response.status_code == 200, response.text
    (decoded,) = response.json()["payloads"]
    assert json.loads(_from_json(decoded).data) == {"id_number": MOTHER_ID, "name": "李芳"}


@pytest.mark.parametrize("username", ["supervisor", "admin"])
async def test_supervisors_and_admins_decode_with_personal_data_masked(api, login, env, username) -> None:
    payload = await _sealed(env, {"id_number": MOTHER_ID, "name": "李芳", "phone": "13800000000"})
    response = await api.post("/codec/decode", json={"payloads": [_as_json(payload)]}, headers=await login(username))
    assert response.status_code == 200, response.text
    (decoded,) = response.json()["payloads"]
    assert json.loads(_from_json(decoded).data) == {
        "id_number": "330102********0027",
        "name": "李*",
        "phone": "138****0000",
    }


async def test_every_decode_is_audited_with_who_and_the_namespace(api, login, env) -> None:
    payload = await _sealed(env, {"id_number": MOTHER_ID})
    officer = await login("hospital_officer")
    body = {"payloads": [_as_json(payload), _as_json(payload)]}

    for _ in range(2):
        decoded = await api.post("/codec/decode", json=body, headers={**officer, "X-Namespace": "default"})
        assert decoded.status_code == 200, decoded.text

    audit = await api.get("/audit", params={"action": "codec_decode"}, headers=await login("admin"))
    rows = audit.json()["items"]
    assert [(row["actor"], row["target"], row["detail"]["payloads"]) for row in rows] == [
        ("hospital_officer", "default", 2)
    ] * 2


@pytest.mark.parametrize("username", ["hospital_clerk", "police_officer", "supervisor"])
async def test_only_an_admin_may_encode_under_the_key(api, login, username) -> None:
    original = Payload(metadata={"encoding": b"json/plain"}, data=b'{"forged": true}')
    response = await api.post("/codec/encode", json={"payloads": [_as_json(original)]}, headers=await login(username))
    assert_error(response, 403, "forbidden")


@pytest.mark.parametrize("path", ["/codec/decode", "/codec/encode"])
async def test_an_applicant_is_refused_even_for_their_own_data(api, login, env, path) -> None:
    payload = await _sealed(env, {"id_number": MOTHER_ID})
    response = await api.post(path, json={"payloads": [_as_json(payload)]}, headers=await login("applicant1"))
    assert_error(response, 403, "forbidden")


@pytest.mark.parametrize("path", ["/codec/decode", "/codec/encode"])
async def test_anonymous_callers_are_refused(api, env, path) -> None:
    payload = await _sealed(env, {"id_number": MOTHER_ID})
    response = await api.post(path, json={"payloads": [_as_json(payload)]})
    assert_error(response, 401, "unauthorized")


async def test_an_invalid_or_expired_token_is_refused(api, api_settings, engine, env) -> None:
    body = {"payloads": [_as_json(await _sealed(env, {"id_number": MOTHER_ID}))]}
    supervisor = Actor(username="supervisor", role="supervisor")
    long_ago = datetime.now(UTC) - timedelta(minutes=api_settings.token_ttl_minutes + 60)
    expired = issued_token(engine, supervisor, api_settings, now=long_ago)
    forged = issued_token(
        engine, supervisor, api_settings.model_copy(update={"secret_key": "another-secret-" + "0" * 32})
    )

    for token in (expired, forged, "not-a-jwt"):
        response = await api.post("/codec/decode", json=body, headers={"Authorization": f"Bearer {token}"})
        assert_error(response, 401, "unauthorized")


async def test_the_session_cookie_is_accepted_for_staff_only(api, api_settings, engine, env) -> None:
    # The Temporal UI's "include credentials" sends cookies, never our bearer header.
    body = {"payloads": [_as_json(await _sealed(env, {"id_number": MOTHER_ID}))]}
    staff = issued_token(engine, Actor(username="police_officer", role="officer", unit="police"), api_settings)
    applicant = issued_token(engine, Actor(username="applicant1", role="applicant"), api_settings)

    api.cookies.set(SESSION_COOKIE, staff)
    try:
        assert (await api.post("/codec/decode", json=body)).status_code == 200
        api.cookies.set(SESSION_COOKIE, applicant)
        assert_error(await api.post("/codec/decode", json=body), 403, "forbidden")
    finally:
        api.cookies.clear()


async def test_a_real_case_input_decodes_to_the_submitted_form(api, login, env, cases) -> None:
    case = await cases.submit()
    history = await env.client.get_workflow_handle(case["case_id"]).fetch_history()
    started = next(e for e in history.events if e.event_type == EventType.EVENT_TYPE_WORKFLOW_EXECUTION_STARTED)
    (stored,) = started.workflow_execution_started_event_attributes.input.payloads
    assert stored.metadata["encoding"] == ENCRYPTED_ENCODING
    assert MOTHER_ID.encode() not in stored.data

    response = await api.post(
        "/codec/decode", json={"payloads": [_as_json(stored)]}, headers=await login("hospital_officer")
    )

    assert response.status_code == 200, response.text
    (decoded,) = response.json()["payloads"]
    plain = _from_json(decoded)
    assert plain.metadata["encoding"] == b"json/plain"
    form = json.loads(plain.data)["form"]
    for person in ("mother", "father", "applicant"):
        assert form[person] == case["_form"][person]


async def test_encode_then_decode_round_trips(api, login) -> None:
    headers = await login("admin")
    original = Payload(metadata={"encoding": b"json/plain"}, data=json.dumps({"phone": "13800000000"}).encode())

    encoded = await api.post("/codec/encode", json={"payloads": [_as_json(original)]}, headers=headers)
    assert encoded.status_code == 200, encoded.text
    (sealed,) = encoded.json()["payloads"]
    assert _from_json(sealed).metadata["encoding"] == ENCRYPTED_ENCODING
    assert b"13800000000" not in _from_json(sealed).data

    decoded = await api.post("/codec/decode", json={"payloads": [sealed]}, headers=await login("police_officer"))
    assert decoded.status_code == 200, decoded.text
    assert [_from_json(item) for item in decoded.json()["payloads"]] == [original]


async def test_a_payload_written_before_encryption_is_shown_as_it_is(api, login) -> None:
    legacy = _as_json(Payload(metadata={"encoding": b"json/plain"}, data=b'"before encryption"'))
    response = await api.post("/codec/decode", json={"payloads": [legacy]}, headers=await login("supervisor"))
    assert response.status_code == 200, response.text
    assert response.json()["payloads"] == [legacy]


async def test_malformed_bodies_are_named(api, login, env) -> None:
    headers = await login("supervisor")
    cases = [
        ({"payloads": [{"metadata": {"encoding": "anNvbi9wbGFpbg=="}, "data": "not base64!"}]}, "payloads.0.data"),
        ({"payloads": [{"metadata": {"encoding": 42}, "data": ""}]}, "payloads.0.metadata.encoding"),
        ({"payloads": "everything"}, "payloads"),
        ({}, "payloads"),
    ]
    for body, field in cases:
        assert_error(await api.post("/codec/decode", json=body, headers=headers), 422, "validation_error", [field])

    sealed = await _sealed(env, {"id_number": MOTHER_ID})
    tampered = _as_json(Payload(metadata=dict(sealed.metadata), data=sealed.data[:-1] + bytes([sealed.data[-1] ^ 1])))
    unknown = _as_json(Payload(metadata={**sealed.metadata, "encryption-key-id": b"nobody"}, data=sealed.data))
    response = await api.post("/codec/decode", json={"payloads": [_as_json(sealed), tampered]}, headers=headers)
    error = assert_error(response, 422, "validation_error", ["payloads.1"])
    assert "altered" in error["fields"]["payloads.1"]
    response = await api.post("/codec/decode", json={"payloads": [unknown]}, headers=headers)
    assert (
        "unknown key id 'nobody'"
        in assert_error(response, 422, "validation_error", ["payloads.0"])["fields"]["payloads.0"]
    )


async def test_the_temporal_ui_origin_may_call_with_credentials(api) -> None:
    preflight = await api.options(
        "/codec/decode",
        headers={
            "Origin": UI_ORIGIN,
            "Access-Control-Request-Method": "POST",
            "Access-Control-Request-Headers": "content-type,x-namespace",
        },
    )
    assert preflight.status_code == 200, preflight.text
    assert preflight.headers["access-control-allow-origin"] == UI_ORIGIN
    assert preflight.headers["access-control-allow-credentials"] == "true"

    # Even a refusal carries the CORS headers, so the UI can tell the user why.
    refused = await api.post("/codec/decode", json={"payloads": []}, headers={"Origin": UI_ORIGIN})
    assert refused.status_code == 401
    assert refused.headers["access-control-allow-origin"] == UI_ORIGIN


async def test_a_foreign_origin_gets_no_cors_permission(api) -> None:
    preflight = await api.options(
        "/codec/decode",
        headers={
            "Origin": "https://evil.example",
            "Access-Control-Request-Method": "POST",
            "Access-Control-Request-Headers": "content-type",
        },
    )
    assert preflight.status_code >= 400
    assert "access-control-allow-origin" not in preflight.headers

    response = await api.post("/codec/decode", json={"payloads": []}, headers={"Origin": "https://evil.example"})
    assert "access-control-allow-origin" not in response.headers

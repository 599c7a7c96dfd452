"""The codec server (/codec) lets the Temporal UI show decrypted payloads to staff only, each
payload to those who may read its case as the API has it, and audits every decode and refusal."""

from __future__ import annotations

import base64
import json
from datetime import UTC, datetime, timedelta

import pytest
from google.protobuf.message import Message
from temporalio.api.common.v1 import Payload
from temporalio.api.enums.v1 import EventType
from temporalio.api.history.v1 import History
from temporalio.testing import WorkflowEnvironment

from api.routes.codec import SESSION_COOKIE, get_payload_codec
from domain.samples import MOTHER_ID
from infra.codec import ENCRYPTED_ENCODING, WORKFLOW_ID_METADATA, PayloadEncryptionCodec
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
    """Sealed outside any workflow (as before payloads were bound to their case): admins only."""
    (payload,) = await env.client.data_converter.encode([value])
    assert payload.metadata["encoding"] == ENCRYPTED_ENCODING
    return payload


def _payloads_in(message: Message) -> list[Payload]:
    """Every Payload anywhere in a history (inputs, results, Update arguments, failures…)."""
    if isinstance(message, Payload):
        return [message]
    found: list[Payload] = []
    for descriptor, value in message.ListFields():
        if descriptor.message_type is None:
            continue
        if descriptor.message_type.GetOptions().map_entry:
            items = list(value.values())
        else:
            items = [value] if isinstance(value, Message) else list(value)  # one message, or a repeated field
        for item in items:
            if isinstance(item, Message):
                found += _payloads_in(item)
    return found


async def _case_history(env: WorkflowEnvironment, case_id: str) -> History:
    return History(events=(await env.client.get_workflow_handle(case_id).fetch_history()).events)


async def _case_input(env: WorkflowEnvironment, case_id: str) -> Payload:
    """The case's input as the Temporal server stores it, from its real history."""
    history = await _case_history(env, case_id)
    started = next(e for e in history.events if e.event_type == EventType.EVENT_TYPE_WORKFLOW_EXECUTION_STARTED)
    (stored,) = started.workflow_execution_started_event_attributes.input.payloads
    assert stored.metadata["encoding"] == ENCRYPTED_ENCODING
    assert MOTHER_ID.encode() not in stored.data
    return stored


async def _decode(api, headers: dict[str, str], *payloads: Payload) -> list[Payload]:
    response = await api.post("/codec/decode", json={"payloads": [_as_json(p) for p in payloads]}, headers=headers)
    assert response.status_code == 200, response.text
    return [_from_json(item) for item in response.json()["payloads"]]


async def test_every_payload_of_a_case_is_sealed_for_that_case(env, cases) -> None:
    case = await cases.submit()
    await cases.complete(case, "birth_certificate")  # Updates from the API, activities, their results
    sealed = [
        p
        for p in _payloads_in(await _case_history(env, case["case_id"]))
        if p.metadata.get("encoding") == ENCRYPTED_ENCODING
    ]
    assert len(sealed) > 3  # the input, activities' inputs and results, the acceptance Update
    assert {p.metadata[WORKFLOW_ID_METADATA] for p in sealed} == {case["case_id"].encode()}


async def test_an_officer_decodes_a_payload_of_a_case_their_department_works(api, login, env, cases) -> None:
    case = await cases.submit()  # at the hospital's window: its step is open, the police's not yet
    stored = await _case_input(env, case["case_id"])

    for username in ("hospital_officer", "hospital_clerk"):
        (plain,) = await _decode(api, await login(username), stored)
        assert plain.metadata["encoding"] == b"json/plain"
        form = json.loads(plain.data)["form"]
        for person in ("mother", "father", "applicant"):
            assert form[person] == case["_form"][person]  # in full: they work the case

    # The police officer's step has not opened: the case is not theirs yet, in the API or here.
    assert (await api.get(f"/cases/{case['case_id']}", headers=await login("police_officer"))).status_code == 404
    assert await _decode(api, await login("police_officer"), stored) == [stored]
    await cases.complete(case, "birth_certificate")
    assert (await api.get(f"/cases/{case['case_id']}", headers=await login("police_officer"))).status_code == 200
    (plain,) = await _decode(api, await login("police_officer"), stored)
    assert json.loads(plain.data)["form"]["mother"]["id_number"] == MOTHER_ID


async def test_a_clerk_cannot_decode_another_departments_payload(api, login, env, cases) -> None:
    case = await cases.submit()
    stored = await _case_input(env, case["case_id"])

    for username in ("service_center_clerk", "hospital_330203_clerk", "police_330203_officer"):
        (returned,) = await _decode(api, await login(username), stored)
        assert returned == stored  # still the ciphertext, exactly as the server holds it
        assert MOTHER_ID.encode() not in returned.SerializeToString()


@pytest.mark.parametrize(
    "username",
    [
        "hospital_officer",
        "hospital_clerk",
        "police_officer",
        "medical_security_officer",
        "service_center_clerk",
        "hospital_330203_clerk",
        "police_330203_officer",
        "supervisor_3301",
        "supervisor_3302",
        "supervisor",
        "admin",
    ],
)
async def test_decoding_follows_who_may_read_the_case_in_the_api(api, login, env, cases, username) -> None:
    case = await cases.submit()
    stored = await _case_input(env, case["case_id"])
    headers = await login(username)

    reads_case = (await api.get(f"/cases/{case['case_id']}", headers=headers)).status_code == 200
    (returned,) = await _decode(api, headers, stored)

    assert (returned != stored) == reads_case


@pytest.mark.parametrize("username", ["supervisor", "admin"])
async def test_supervisors_and_admins_decode_with_personal_data_masked(api, login, env, cases, username) -> None:
    case = await cases.submit()
    (plain,) = await _decode(api, await login(username), await _case_input(env, case["case_id"]))
    mother = json.loads(plain.data)["form"]["mother"]
    assert mother["id_number"] == "330102********0027"
    assert mother["name"] == case["_form"]["mother"]["name"][0] + "*" * (len(case["_form"]["mother"]["name"]) - 1)


async def test_a_payload_sealed_for_no_case_decodes_for_admins_only_and_masked(api, login, env) -> None:
    payload = await _sealed(env, {"id_number": MOTHER_ID, "name": "李芳", "phone": "13800000000"})

    (plain,) = await _decode(api, await login("admin"), payload)
    assert json.loads(plain.data) == {"id_number": "330102********0027", "name": "李*", "phone": "138****0000"}
    for username in ("hospital_clerk", "hospital_officer", "police_officer", "supervisor"):
        assert await _decode(api, await login(username), payload) == [payload]


async def test_a_payload_moved_to_another_case_does_not_decrypt(api, login, env, cases) -> None:
    first, second = await cases.submit(), await cases.submit(as_user="applicant2")
    stored = await _case_input(env, first["case_id"])
    officer = await login("hospital_officer")  # works both cases
    moved = Payload(metadata={**stored.metadata, WORKFLOW_ID_METADATA: second["case_id"].encode()}, data=stored.data)

    response = await api.post("/codec/decode", json={"payloads": [_as_json(moved)]}, headers=officer)

    assert "altered" in assert_error(response, 422, "validation_error", ["payloads.0"])["fields"]["payloads.0"]
    # Stripped of its case, it reads as sealed for none: not for an officer, and not for an admin either.
    unbound = Payload(
        metadata={k: v for k, v in stored.metadata.items() if k != WORKFLOW_ID_METADATA}, data=stored.data
    )
    assert await _decode(api, officer, unbound) == [unbound]
    response = await api.post("/codec/decode", json={"payloads": [_as_json(unbound)]}, headers=await login("admin"))
    assert_error(response, 422, "validation_error", ["payloads.0"])


async def test_every_decode_and_refusal_is_audited(api, login, env, cases) -> None:
    case = await cases.submit()
    stored = await _case_input(env, case["case_id"])
    unbound = await _sealed(env, {"id_number": MOTHER_ID})
    body = {"payloads": [_as_json(stored), _as_json(stored), _as_json(unbound)]}

    for username in ("hospital_officer", "hospital_officer", "police_officer"):
        response = await api.post(
            "/codec/decode", json=body, headers={**await login(username), "X-Namespace": "default"}
        )
        assert response.status_code == 200, response.text

    admin = await login("admin")
    rows = []
    for action in ("codec_decode", "codec_decode_refused"):
        audit = await api.get("/audit", params={"action": action}, headers=admin)
        rows += [
            (row["actor"], row["action"], row["case_id"], row["target"], row["detail"]) for row in audit.json()["items"]
        ]
    decoded = (
        "codec_decode",
        case["case_id"],
        "default",
        {"workflow_id": case["case_id"], "payloads": 2, "masked": False},
    )
    refused_case = ("codec_decode_refused", case["case_id"], "default", {"workflow_id": case["case_id"], "payloads": 2})
    refused_unbound = ("codec_decode_refused", None, "default", {"workflow_id": None, "payloads": 1})
    assert sorted(rows, key=str) == sorted(
        [
            ("hospital_officer", *decoded),
            ("hospital_officer", *refused_unbound),
            ("hospital_officer", *decoded),
            ("hospital_officer", *refused_unbound),
            ("police_officer", *refused_case),
            ("police_officer", *refused_unbound),
        ],
        key=str,
    )
    # The case's own audit trail shows who read its payloads in the Temporal UI, and who was refused.
    trail = await api.get("/audit", params={"case_id": case["case_id"]}, headers=admin)
    assert {(row["actor"], row["action"]) for row in trail.json()["items"]} >= {
        ("hospital_officer", "codec_decode"),
        ("police_officer", "codec_decode_refused"),
    }


async def test_production_refuses_a_plain_payload_at_the_codec_server(api, api_app, api_settings, login) -> None:
    plain = Payload(metadata={"encoding": b"json/plain"}, data=b'"written around our clients"')
    production = api_settings.model_copy(update={"env": "prod"})  # only the environment matters to the codec
    api_app.dependency_overrides[get_payload_codec] = lambda: PayloadEncryptionCodec.from_settings(production)
    try:
        response = await api.post("/codec/decode", json={"payloads": [_as_json(plain)]}, headers=await login("admin"))
    finally:
        api_app.dependency_overrides.pop(get_payload_codec)
    assert "not encrypted" in assert_error(response, 422, "validation_error", ["payloads.0"])["fields"]["payloads.0"]


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
    stored = await _case_input(env, case["case_id"])
    assert stored.metadata[WORKFLOW_ID_METADATA] == case["case_id"].encode()  # the case number, in clear

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

    # Sealed for no case: it reads back for admins (masked, as everything they decode), no one else.
    decoded = await api.post("/codec/decode", json={"payloads": [sealed]}, headers=headers)
    assert decoded.status_code == 200, decoded.text
    assert [json.loads(_from_json(item).data) for item in decoded.json()["payloads"]] == [{"phone": "138****0000"}]
    refused = await api.post("/codec/decode", json={"payloads": [sealed]}, headers=await login("police_officer"))
    assert refused.json()["payloads"] == [sealed]


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

    headers = await login("admin")  # payloads sealed for no case decode for admins alone
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

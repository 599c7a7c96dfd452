"""Payload encryption: what the Temporal server is given is ciphertext naming its key and the
workflow it was sealed for; keys rotate without losing what older keys sealed; damage, unknown
keys, a payload moved to another case and (in production) plain payloads are loud."""

from __future__ import annotations

import base64
import json
import os
from pathlib import Path
from typing import Any

import pytest
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from pydantic import ValidationError
from temporalio.api.common.v1 import Payload
from temporalio.api.enums.v1 import EventType
from temporalio.api.failure.v1 import Failure
from temporalio.client import WorkflowHistory
from temporalio.converter import ActivitySerializationContext, WorkflowSerializationContext
from temporalio.exceptions import ApplicationError

from domain.samples import MOTHER_ID
from infra.codec import (
    ENCRYPTED_ENCODING,
    KEY_ID_METADATA,
    WORKFLOW_ID_METADATA,
    PayloadCodecError,
    PayloadEncryptionCodec,
    sealed_workflow_id,
)
from infra.temporal import build_data_converter
from settings import DEV_PAYLOAD_KEY, Settings
from tests.conftest import TEST_DATA_CONVERTER

OCTOBER_KEY = bytes(range(32))
NOVEMBER_KEY = bytes(range(32, 64))
SECRET = "x" * 40
# Production needs actor seal keys too (infra/actor_seal.py); the codec ignores them.
SEAL_KEYS: dict[str, Any] = {"actor_seal_keys": {"s": base64.b64encode(b"s" * 32).decode()}, "actor_seal_key_id": "s"}


def _b64(key: bytes) -> str:
    return base64.b64encode(key).decode()


def _plain(text: str) -> Payload:
    return Payload(metadata={"encoding": b"json/plain"}, data=json.dumps(text, ensure_ascii=False).encode())


async def test_a_payload_round_trips_and_is_stored_as_ciphertext_naming_its_key() -> None:
    codec = PayloadEncryptionCodec({"2026-10": OCTOBER_KEY}, "2026-10")
    original = _plain(f"李芳 {MOTHER_ID} 13800000000")

    (sealed,) = await codec.encode([original])

    assert sealed.metadata["encoding"] == ENCRYPTED_ENCODING
    assert sealed.metadata[KEY_ID_METADATA] == b"2026-10"
    assert MOTHER_ID.encode() not in sealed.SerializeToString()
    assert "李芳".encode() not in sealed.SerializeToString()
    assert await codec.decode([sealed]) == [original]


async def test_the_same_payload_encrypts_differently_each_time() -> None:
    codec = PayloadEncryptionCodec({"2026-10": OCTOBER_KEY}, "2026-10")
    first, second = await codec.encode([_plain(MOTHER_ID), _plain(MOTHER_ID)])
    assert first.data != second.data  # a fresh nonce per payload


async def test_after_rotation_old_payloads_still_decrypt_and_new_ones_use_the_new_key() -> None:
    october = PayloadEncryptionCodec({"2026-10": OCTOBER_KEY}, "2026-10")
    (sealed_in_october,) = await october.encode([_plain(MOTHER_ID)])

    november = PayloadEncryptionCodec({"2026-10": OCTOBER_KEY, "2026-11": NOVEMBER_KEY}, "2026-11")

    assert await november.decode([sealed_in_october]) == [_plain(MOTHER_ID)]
    (sealed_in_november,) = await november.encode([_plain(MOTHER_ID)])
    assert sealed_in_november.metadata[KEY_ID_METADATA] == b"2026-11"
    with pytest.raises(PayloadCodecError, match="unknown key id '2026-11'"):
        await october.decode([sealed_in_november])


async def test_rotation_is_configured_through_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("ONETHING_PAYLOAD_KEYS", json.dumps({"2026-10": _b64(OCTOBER_KEY)}))
    monkeypatch.setenv("ONETHING_PAYLOAD_KEY_ID", "2026-10")
    (sealed,) = await PayloadEncryptionCodec.from_settings(Settings(env="prod", secret_key=SECRET, **SEAL_KEYS)).encode(
        [_plain(MOTHER_ID)]
    )

    monkeypatch.setenv(
        "ONETHING_PAYLOAD_KEYS", json.dumps({"2026-10": _b64(OCTOBER_KEY), "2026-11": _b64(NOVEMBER_KEY)})
    )
    monkeypatch.setenv("ONETHING_PAYLOAD_KEY_ID", "2026-11")
    rotated = PayloadEncryptionCodec.from_settings(Settings(env="prod", secret_key=SECRET, **SEAL_KEYS))

    assert rotated.current_key_id == "2026-11"
    assert await rotated.decode([sealed]) == [_plain(MOTHER_ID)]


async def test_tampered_ciphertext_is_refused() -> None:
    codec = PayloadEncryptionCodec({"2026-10": OCTOBER_KEY}, "2026-10")
    (sealed,) = await codec.encode([_plain(MOTHER_ID)])
    damaged = bytearray(sealed.data)
    damaged[-1] ^= 0x01
    tampered = Payload(metadata=dict(sealed.metadata), data=bytes(damaged))

    with pytest.raises(PayloadCodecError, match="altered or damaged"):
        await codec.decode([tampered])


async def test_relabelling_a_payload_with_another_known_key_id_is_refused() -> None:
    codec = PayloadEncryptionCodec({"2026-10": OCTOBER_KEY, "2026-11": NOVEMBER_KEY}, "2026-10")
    (sealed,) = await codec.encode([_plain(MOTHER_ID)])
    relabelled = Payload(metadata={**sealed.metadata, KEY_ID_METADATA: b"2026-11"}, data=sealed.data)

    with pytest.raises(PayloadCodecError, match="altered or damaged"):
        await codec.decode([relabelled])


async def test_a_payload_under_an_unknown_key_id_is_refused() -> None:
    codec = PayloadEncryptionCodec({"2026-10": OCTOBER_KEY}, "2026-10")
    (sealed,) = await codec.encode([_plain(MOTHER_ID)])
    foreign = Payload(metadata={**sealed.metadata, KEY_ID_METADATA: b"retired-2025"}, data=sealed.data)

    with pytest.raises(PayloadCodecError, match="unknown key id 'retired-2025'"):
        await codec.decode([foreign])


async def test_a_payload_written_before_encryption_passes_through_on_decode_only() -> None:
    codec = PayloadEncryptionCodec({"2026-10": OCTOBER_KEY}, "2026-10", allow_plain=True)
    legacy = _plain("written before encryption")

    assert await codec.decode([legacy]) == [legacy]
    (sealed,) = await codec.encode([legacy])
    assert sealed.metadata["encoding"] == ENCRYPTED_ENCODING


def test_production_refuses_the_built_in_dev_key() -> None:
    with pytest.raises(ValidationError, match="built-in dev key"):
        Settings(env="prod", secret_key=SECRET, **SEAL_KEYS)
    with pytest.raises(ValidationError, match="built-in dev key"):
        Settings(
            env="prod",
            **SEAL_KEYS,
            secret_key=SECRET,
            payload_keys={"old": DEV_PAYLOAD_KEY, "2026-11": _b64(NOVEMBER_KEY)},
            payload_key_id="2026-11",
        )
    own = Settings(
        env="prod",
        secret_key=SECRET,
        payload_keys={"2026-11": _b64(NOVEMBER_KEY)},
        payload_key_id="2026-11",
        **SEAL_KEYS,
    )
    assert own.payload_key_bytes() == {"2026-11": NOVEMBER_KEY}


def test_dev_and_test_run_with_the_built_in_key() -> None:
    for env in ("dev", "test"):
        assert Settings(env=env, secret_key=SECRET).payload_key_id == "dev"


def test_the_current_key_id_must_name_a_configured_key() -> None:
    with pytest.raises(ValidationError, match="ONETHING_PAYLOAD_KEY_ID '2026-12' is not in"):
        Settings(env="test", secret_key=SECRET, payload_keys={"2026-11": _b64(NOVEMBER_KEY)}, payload_key_id="2026-12")


def test_a_key_that_is_not_32_bytes_of_base64_is_named() -> None:
    with pytest.raises(ValidationError, match=r"ONETHING_PAYLOAD_KEYS\['short'\] must be 32 bytes"):
        Settings(env="test", secret_key=SECRET, payload_keys={"short": _b64(b"0" * 16)}, payload_key_id="short")
    with pytest.raises(ValidationError, match=r"ONETHING_PAYLOAD_KEYS\['garbled'\] is not valid base64"):
        Settings(env="test", secret_key=SECRET, payload_keys={"garbled": "not base64!"}, payload_key_id="garbled")


async def test_the_data_converter_encrypts_values_and_failure_messages() -> None:
    converter = build_data_converter(Settings(env="test", secret_key=SECRET))
    form = {"mother": {"name": "李芳", "id_number": MOTHER_ID}}

    (payload,) = await converter.encode([form])
    assert payload.metadata["encoding"] == ENCRYPTED_ENCODING
    assert MOTHER_ID.encode() not in payload.SerializeToString()
    assert await converter.decode([payload], [dict]) == [form]

    failure = Failure()
    await converter.encode_failure(
        ApplicationError(f"身份证号 {MOTHER_ID} 与户籍不符", type="validation_error"), failure
    )
    assert MOTHER_ID.encode() not in failure.SerializeToString()
    assert failure.application_failure_info.type == "validation_error"  # the error kind stays readable
    decoded = await converter.decode_failure(failure)
    assert isinstance(decoded, ApplicationError)
    assert decoded.message == f"身份证号 {MOTHER_ID} 与户籍不符"


# --- payloads bound to their workflow -----------------------------------------------------

HISTORIES = Path(__file__).parent / "histories"


def _for_case(codec: PayloadEncryptionCodec, workflow_id: str) -> PayloadEncryptionCodec:
    return codec.with_context(WorkflowSerializationContext(namespace="default", workflow_id=workflow_id))


async def test_a_payload_records_the_workflow_it_was_sealed_for() -> None:
    converter = build_data_converter(Settings(env="test", secret_key=SECRET))
    in_workflow = converter.with_context(WorkflowSerializationContext(namespace="default", workflow_id="ot-a1"))
    in_activity = converter.with_context(
        ActivitySerializationContext(
            namespace="default",
            activity_id="1",
            activity_type="project_case",
            activity_task_queue="cases",
            workflow_id="ot-a1",
            workflow_type="CaseWorkflow",
            is_local=False,
        )
    )

    for bound in (in_workflow, in_activity):
        (payload,) = await bound.encode([{"id_number": MOTHER_ID}])
        assert payload.metadata[WORKFLOW_ID_METADATA] == b"ot-a1"  # in clear: a case number, no personal data
        assert sealed_workflow_id(payload) == "ot-a1"
        assert MOTHER_ID.encode() not in payload.SerializeToString()
        # Any converter decodes it: the id travels with the payload, not with the reader.
        assert await converter.decode([payload], [dict]) == [{"id_number": MOTHER_ID}]
    (unbound,) = await converter.encode([{"id_number": MOTHER_ID}])
    assert WORKFLOW_ID_METADATA not in unbound.metadata and sealed_workflow_id(unbound) is None


async def test_a_payload_moved_to_another_case_does_not_decrypt() -> None:
    codec = PayloadEncryptionCodec({"2026-10": OCTOBER_KEY}, "2026-10")
    (sealed,) = await _for_case(codec, "ot-aaaaaaaaaaaaaaaaaaaa").encode([_plain(MOTHER_ID)])
    assert await codec.decode([sealed]) == [_plain(MOTHER_ID)]

    moved = Payload(metadata={**sealed.metadata, WORKFLOW_ID_METADATA: b"ot-bbbbbbbbbbbbbbbbbbbb"}, data=sealed.data)
    with pytest.raises(PayloadCodecError, match="altered or damaged"):
        await codec.decode([moved])
    # Nor can it pass as one sealed before payloads were bound to their case.
    unbound = Payload(
        metadata={k: v for k, v in sealed.metadata.items() if k != WORKFLOW_ID_METADATA}, data=sealed.data
    )
    with pytest.raises(PayloadCodecError, match="altered or damaged"):
        await codec.decode([unbound])
    # And one sealed before the binding cannot be claimed by a case either.
    (legacy,) = await codec.encode([_plain(MOTHER_ID)])
    claimed = Payload(metadata={**legacy.metadata, WORKFLOW_ID_METADATA: b"ot-aaaaaaaaaaaaaaaaaaaa"}, data=legacy.data)
    with pytest.raises(PayloadCodecError, match="altered or damaged"):
        await codec.decode([claimed])


def test_a_key_id_cannot_blur_the_workflow_binding() -> None:
    with pytest.raises(ValueError, match="NUL"):
        PayloadEncryptionCodec({"2026-10\x00ot-a1": OCTOBER_KEY}, "2026-10\x00ot-a1")


async def test_payloads_sealed_before_cases_were_bound_still_decrypt() -> None:
    # Sealed the way every payload was before the binding: the key id alone as associated data.
    nonce = os.urandom(12)
    original = _plain(f"李芳 {MOTHER_ID}")
    ciphertext = AESGCM(OCTOBER_KEY).encrypt(nonce, original.SerializeToString(), b"2026-10")
    legacy = Payload(metadata={"encoding": ENCRYPTED_ENCODING, KEY_ID_METADATA: b"2026-10"}, data=nonce + ciphertext)
    assert await PayloadEncryptionCodec({"2026-10": OCTOBER_KEY}, "2026-10").decode([legacy]) == [original]

    # And a real one: a case's input as recorded in a released version's history.
    path = HISTORIES / "v1" / "birth-hospital.json"
    history = WorkflowHistory.from_json(path.stem, path.read_text(encoding="utf-8"))
    started = next(e for e in history.events if e.event_type == EventType.EVENT_TYPE_WORKFLOW_EXECUTION_STARTED)
    (recorded,) = started.workflow_execution_started_event_attributes.input.payloads
    assert recorded.metadata["encoding"] == ENCRYPTED_ENCODING and sealed_workflow_id(recorded) is None
    (case_input,) = await TEST_DATA_CONVERTER.decode([recorded], [dict])
    assert case_input["channel"] == "hospital" and case_input["form"]["mother"]["id_number"]


def _as_in_production(env: str) -> Settings:
    # Only the environment matters to the codec; production's other required settings are
    # checked by their own tests.
    return Settings(env="test", secret_key=SECRET).model_copy(update={"env": env})


async def test_production_refuses_a_plain_payload() -> None:
    plain = _plain("written around our clients")
    production = build_data_converter(_as_in_production("prod"))
    assert isinstance(production.payload_codec, PayloadEncryptionCodec)

    with pytest.raises(PayloadCodecError, match="not encrypted"):
        await production.payload_codec.decode([plain])
    with pytest.raises(PayloadCodecError, match="not encrypted"):
        await production.decode([plain], [str])
    # Bound to a workflow (as the worker decodes an activation) it is refused all the same.
    bound = production.with_context(WorkflowSerializationContext(namespace="default", workflow_id="ot-a1"))
    with pytest.raises(PayloadCodecError, match="not encrypted"):
        await bound.decode([plain], [str])
    # What production itself seals still reads back.
    (sealed,) = await bound.encode(["written by us"])
    assert await production.decode([sealed], [str]) == ["written by us"]


@pytest.mark.parametrize("env", ["dev", "test"])
async def test_dev_and_test_still_pass_a_plain_payload_through(env: str) -> None:
    plain = _plain("from an old ./var/temporal.db")
    assert await build_data_converter(_as_in_production(env)).decode([plain], [str]) == [
        "from an old ./var/temporal.db"
    ]

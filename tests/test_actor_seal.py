"""The actor seal's rules, without Temporal: what makes a seal valid for exactly one Update."""

from __future__ import annotations

import base64
import json

import pytest
from temporalio.api.common.v1 import Payload

from infra.actor_seal import SealKeys, SealRejected, seal, verify
from models.case import ClaimInput
from tests.conftest import test_settings as settings_for
from tests.workflows.helpers import officer

KEYS = SealKeys({"2026-12": b"k" * 32}, "2026-12", max_age_seconds=300)
HOSPITAL_CLAIM = ClaimInput(actor=officer("hospital"), step="birth_certificate")
NOW = 1_796_000_000.0


def sealed(keys: SealKeys = KEYS, argument: object = HOSPITAL_CLAIM, issued_at: float = NOW) -> Payload:
    return seal(keys, workflow_id="ot-1", update="claim", update_id="u-1", argument=argument, issued_at=issued_at)


def check(
    header: Payload | None,
    *,
    keys: SealKeys = KEYS,
    argument: object = HOSPITAL_CLAIM,
    made_for: dict[str, str] | None = None,
) -> None:
    target = {"workflow_id": "ot-1", "update": "claim", "update_id": "u-1", **(made_for or {})}
    verify(keys, header, argument=argument, now=NOW + 1, **target)


def test_a_seal_verifies_for_the_update_it_was_made_for() -> None:
    check(sealed())


def test_an_update_without_a_seal_is_refused() -> None:
    with pytest.raises(SealRejected, match="no actor seal"):
        check(None)


def test_a_seal_made_with_another_key_is_refused() -> None:
    forger = SealKeys({"2026-12": b"f" * 32}, "2026-12", max_age_seconds=300)
    with pytest.raises(SealRejected, match="signature is wrong"):
        check(sealed(keys=forger))


def test_a_seal_naming_an_unknown_key_is_refused() -> None:
    other = SealKeys({"old": b"k" * 32}, "old", max_age_seconds=300)
    with pytest.raises(SealRejected, match="unknown key"):
        check(sealed(keys=other))


def test_a_seal_whose_claims_were_edited_is_refused() -> None:
    header = sealed()
    envelope = json.loads(header.data)
    envelope["claims"]["actor"]["unit"] = "police"
    tampered = Payload(metadata=dict(header.metadata), data=json.dumps(envelope).encode())
    with pytest.raises(SealRejected, match="signature is wrong"):
        check(tampered, argument=ClaimInput(actor=officer("police"), step="birth_certificate"))


def test_a_valid_seal_cannot_carry_another_actor() -> None:
    impostor = ClaimInput(actor=officer("police"), step="birth_certificate")
    with pytest.raises(SealRejected, match="not the one sealed"):
        check(sealed(), argument=impostor)


@pytest.mark.parametrize("made_for", [{"workflow_id": "ot-2"}, {"update": "complete"}, {"update_id": "u-2"}])
def test_a_seal_replayed_on_another_update_is_refused(made_for: dict[str, str]) -> None:
    with pytest.raises(SealRejected, match="another Update"):
        check(sealed(), made_for=made_for)


def test_a_stale_seal_is_refused() -> None:
    with pytest.raises(SealRejected, match="stale"):
        check(sealed(issued_at=NOW - 400))


def test_a_seal_dated_in_the_future_is_refused() -> None:
    with pytest.raises(SealRejected, match="future"):
        check(sealed(issued_at=NOW + 120))


def test_an_unreadable_seal_is_refused() -> None:
    with pytest.raises(SealRejected, match="unreadable"):
        check(Payload(metadata={"encoding": b"json/plain"}, data=b"{not json"))


def test_a_rotated_key_still_verifies_seals_made_before_the_switch() -> None:
    old = SealKeys({"2026-11": b"o" * 32}, "2026-11", max_age_seconds=300)
    rotated = SealKeys({"2026-11": b"o" * 32, "2026-12": b"n" * 32}, "2026-12", max_age_seconds=300)
    check(sealed(keys=old), keys=rotated)
    check(sealed(keys=rotated), keys=rotated)


def test_settings_refuse_production_without_seal_keys_and_name_a_bad_one(tmp_path) -> None:
    payload_key = base64.b64encode(b"p" * 32).decode()
    production = {"env": "prod", "payload_keys": {"p": payload_key}, "payload_key_id": "p"}
    with pytest.raises(ValueError, match="ONETHING_ACTOR_SEAL_KEYS must be set"):
        settings_for(tmp_path, **production)
    with pytest.raises(ValueError, match=r"ONETHING_ACTOR_SEAL_KEYS\['short'\]"):
        settings_for(tmp_path, actor_seal_keys={"short": base64.b64encode(b"x").decode()}, actor_seal_key_id="short")
    with pytest.raises(ValueError, match="ONETHING_ACTOR_SEAL_KEY_ID"):
        settings_for(tmp_path, actor_seal_keys={"a": base64.b64encode(b"a" * 32).decode()}, actor_seal_key_id="b")

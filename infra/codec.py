"""Encryption of every Temporal payload (AES-256-GCM), so that the Temporal server,
its database and its UI never hold personal data in clear.

The codec runs in the client and the worker, outside the workflow sandbox: the
server only ever sees ciphertext. Each encrypted payload names the key that
sealed it (``encryption-key-id``), so keys can rotate: new payloads use the
current key while payloads written under an older key still decrypt as long as
that key stays configured.
"""

from __future__ import annotations

import os
from collections.abc import Mapping, Sequence

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from temporalio.api.common.v1 import Payload
from temporalio.converter import PayloadCodec

from settings import Settings

ENCRYPTED_ENCODING = b"binary/encrypted"
KEY_ID_METADATA = "encryption-key-id"
NONCE_BYTES = 12


class PayloadCodecError(ValueError):
    """A payload could not be decrypted: unknown key, damaged or altered ciphertext."""


class PayloadEncryptionCodec(PayloadCodec):
    """AES-GCM with a fresh 12-byte nonce per payload; the whole original payload
    (metadata and data) is sealed, and the key id is bound as associated data."""

    def __init__(self, keys: Mapping[str, bytes], current_key_id: str) -> None:
        if current_key_id not in keys:
            raise ValueError(f"payload key id {current_key_id!r} is not among the configured keys")
        self._ciphers = {key_id: AESGCM(key) for key_id, key in keys.items()}
        self.current_key_id = current_key_id

    @classmethod
    def from_settings(cls, settings: Settings) -> PayloadEncryptionCodec:
        return cls(settings.payload_key_bytes(), settings.payload_key_id)

    async def encode(self, payloads: Sequence[Payload]) -> list[Payload]:
        return [self.encrypt(payload) for payload in payloads]

    async def decode(self, payloads: Sequence[Payload]) -> list[Payload]:
        return [self.decrypt(payload) for payload in payloads]

    def encrypt(self, payload: Payload) -> Payload:
        key_id = self.current_key_id
        nonce = os.urandom(NONCE_BYTES)
        sealed = self._ciphers[key_id].encrypt(nonce, payload.SerializeToString(), key_id.encode())
        return Payload(
            metadata={"encoding": ENCRYPTED_ENCODING, KEY_ID_METADATA: key_id.encode()},
            data=nonce + sealed,
        )

    def decrypt(self, payload: Payload) -> Payload:
        if payload.metadata.get("encoding") != ENCRYPTED_ENCODING:
            # Passed through on purpose: histories written before encryption was
            # switched on (the dev server's ./var/temporal.db) must still replay and
            # show in the UI. Encoding never produces such a payload, so nothing new
            # is ever stored in clear.
            return payload
        key_id = payload.metadata.get(KEY_ID_METADATA, b"").decode(errors="replace")
        cipher = self._ciphers.get(key_id)
        if cipher is None:
            raise PayloadCodecError(f"payload was encrypted with unknown key id {key_id!r}")
        if len(payload.data) <= NONCE_BYTES:
            raise PayloadCodecError(f"encrypted payload under key {key_id!r} is truncated")
        nonce, sealed = payload.data[:NONCE_BYTES], payload.data[NONCE_BYTES:]
        try:
            plain = cipher.decrypt(nonce, sealed, key_id.encode())
        except InvalidTag as exc:
            raise PayloadCodecError(f"encrypted payload under key {key_id!r} was altered or damaged") from exc
        return Payload.FromString(plain)

"""Encryption of every Temporal payload (AES-256-GCM), so that the Temporal server,
its database and its UI never hold personal data in clear.

The codec runs in the client and the worker, outside the workflow sandbox: the
server only ever sees ciphertext. Each encrypted payload names the key that
sealed it (``encryption-key-id``), so keys can rotate: new payloads use the
current key while payloads written under an older key still decrypt as long as
that key stays configured.

Each payload also names, in clear, the workflow it was sealed for
(``encryption-workflow-id``: a case or complaint number, no personal data), taken
from the SDK's serialization context, and that id is bound into the AES-GCM
associated data: relabelling a payload as another case's makes it fail to
decrypt. The codec server (api/routes/codec.py) decides who may read a payload
from that id. Payloads sealed before the binding carry no workflow id and still
decrypt, under the key id alone as before.

A payload that is not encrypted is refused on decode, except by a codec built for dev or
test (``from_settings``; the API's client, the workers and the codec server all build theirs
there): nothing ever writes one, so in production one in a history was put there around our
clients.
"""

from __future__ import annotations

import copy
import os
from collections.abc import Mapping, Sequence
from typing import Self

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from temporalio.api.common.v1 import Payload
from temporalio.converter import (
    ActivitySerializationContext,
    PayloadCodec,
    SerializationContext,
    WithSerializationContext,
    WorkflowSerializationContext,
)

from settings import Settings

ENCRYPTED_ENCODING = b"binary/encrypted"
KEY_ID_METADATA = "encryption-key-id"
WORKFLOW_ID_METADATA = "encryption-workflow-id"
NONCE_BYTES = 12
# Joins the key id and the workflow id in the associated data. Key ids never hold it
# (checked below), so no payload sealed for a workflow can pass as one sealed before
# the binding (whose associated data is the key id alone), nor the other way round.
_SEPARATOR = b"\x00"


class PayloadCodecError(ValueError):
    """A payload could not be decrypted: unknown key, damaged or altered ciphertext, or a
    plain payload where only encrypted ones are accepted."""


def sealed_workflow_id(payload: Payload) -> str | None:
    """The workflow an encrypted payload says it was sealed for; None for one sealed before
    payloads were bound to their workflow (or sealed outside any workflow). Only a payload
    that then decrypts proves the claim: the id is part of its associated data."""
    raw = payload.metadata.get(WORKFLOW_ID_METADATA)
    return None if raw is None else raw.decode(errors="replace")


def is_encrypted(payload: Payload) -> bool:
    return payload.metadata.get("encoding") == ENCRYPTED_ENCODING


def _associated_data(key_id: str, workflow_id: bytes | None) -> bytes:
    if workflow_id is None:
        return key_id.encode()
    return key_id.encode() + _SEPARATOR + workflow_id


class PayloadEncryptionCodec(PayloadCodec, WithSerializationContext):
    """AES-GCM with a fresh 12-byte nonce per payload; the whole original payload
    (metadata and data) is sealed, and the key id (with the workflow id, when the SDK
    gives one) is bound as associated data."""

    def __init__(
        self,
        keys: Mapping[str, bytes],
        current_key_id: str,
        *,
        allow_plain: bool = False,
        workflow_id: str | None = None,
    ) -> None:
        if current_key_id not in keys:
            raise ValueError(f"payload key id {current_key_id!r} is not among the configured keys")
        if any(_SEPARATOR.decode() in key_id for key_id in keys):
            raise ValueError("a payload key id must not contain a NUL character")
        self._ciphers = {key_id: AESGCM(key) for key_id, key in keys.items()}
        self.current_key_id = current_key_id
        self.allow_plain = allow_plain
        self.workflow_id = workflow_id

    @classmethod
    def from_settings(cls, settings: Settings) -> PayloadEncryptionCodec:
        # Dev and test keep passing plain payloads through for histories written before
        # encryption (the dev server's ./var/temporal.db); production never had any.
        return cls(
            settings.payload_key_bytes(),
            settings.payload_key_id,
            allow_plain=settings.env in ("dev", "test"),
        )

    def with_context(self, context: SerializationContext) -> Self:
        """This codec sealing for the context's workflow: a workflow's own payloads and its
        activities' carry its id; a child's or a signalled workflow's payloads carry theirs.
        Decoding does not compare the sealed id with the context: a scheduled workflow's
        input was sealed for the schedule's id prefix, not the id it runs under."""
        workflow_id: str | None = None
        if isinstance(context, WorkflowSerializationContext | ActivitySerializationContext):
            workflow_id = context.workflow_id or None
        if workflow_id == self.workflow_id:
            return self
        bound = copy.copy(self)
        bound.workflow_id = workflow_id
        return bound

    async def encode(self, payloads: Sequence[Payload]) -> list[Payload]:
        return [self.encrypt(payload) for payload in payloads]

    async def decode(self, payloads: Sequence[Payload]) -> list[Payload]:
        return [self.decrypt(payload) for payload in payloads]

    def encrypt(self, payload: Payload) -> Payload:
        key_id = self.current_key_id
        metadata = {"encoding": ENCRYPTED_ENCODING, KEY_ID_METADATA: key_id.encode()}
        workflow_id = self.workflow_id.encode() if self.workflow_id else None
        if workflow_id is not None:
            metadata[WORKFLOW_ID_METADATA] = workflow_id
        nonce = os.urandom(NONCE_BYTES)
        sealed = self._ciphers[key_id].encrypt(
            nonce, payload.SerializeToString(), _associated_data(key_id, workflow_id)
        )
        return Payload(metadata=metadata, data=nonce + sealed)

    def decrypt(self, payload: Payload) -> Payload:
        if not is_encrypted(payload):
            if not self.allow_plain:
                raise PayloadCodecError("payload is not encrypted; only encrypted payloads are accepted here")
            # Passed through on purpose, in dev and test only: histories written before
            # encryption was switched on (the dev server's ./var/temporal.db) must still
            # replay and show in the UI. Encoding never produces such a payload, so
            # nothing new is ever stored in clear.
            return payload
        key_id = payload.metadata.get(KEY_ID_METADATA, b"").decode(errors="replace")
        cipher = self._ciphers.get(key_id)
        if cipher is None:
            raise PayloadCodecError(f"payload was encrypted with unknown key id {key_id!r}")
        if len(payload.data) <= NONCE_BYTES:
            raise PayloadCodecError(f"encrypted payload under key {key_id!r} is truncated")
        nonce, sealed = payload.data[:NONCE_BYTES], payload.data[NONCE_BYTES:]
        associated = _associated_data(key_id, payload.metadata.get(WORKFLOW_ID_METADATA))
        try:
            plain = cipher.decrypt(nonce, sealed, associated)
        except InvalidTag as exc:
            raise PayloadCodecError(f"encrypted payload under key {key_id!r} was altered or damaged") from exc
        return Payload.FromString(plain)

"""Codec server for the Temporal UI: decrypts (and encrypts) payloads for staff only.

The Temporal UI, pointed at ``/codec`` (``temporal server start-dev --ui-codec-endpoint``),
posts the payloads of a history to ``/codec/decode`` and shows what comes back.
The bodies follow Temporal's codec-server JSON shape, ``{"payloads": [{"metadata":
{name: base64}, "data": base64}]}``. The caller proves who they are with the staff
JWT, as ``Authorization: Bearer`` or in the ``onething_session`` cookie (the UI's
``includeCredentials`` sends cookies, not headers). Applicants are refused: the
histories hold every applicant's data, not just their own.

Decoding is read like the API reads a case: supervisors and admins get JSON payloads with
personal data masked (ID numbers, phones, names; any other encoding stays sealed), clerks and
officers in full. Every decode is audited (who, the namespace, how many payloads). Encoding
under the production key is for admins only: nothing in the UI needs it, and a sealed
payload forged by anyone else must not pass as ours.
"""

from __future__ import annotations

import base64
import binascii
import json
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Request
from pydantic import BaseModel, BeforeValidator, ConfigDict, Field, PlainSerializer, WithJsonSchema
from starlette.concurrency import run_in_threadpool
from temporalio.api.common.v1 import Payload

from api.deps import SESSION_COOKIE as SESSION_COOKIE  # api/routes/tasks.py takes it from here
from api.deps import EngineDep, SettingsDep, oauth2_scheme, require_role, signed_in
from api.errors import error_responses
from domain.redaction import OVERSIGHT_ROLES, mask_personal_data
from infra.codec import PayloadCodecError, PayloadEncryptionCodec
from models.case import Actor
from models.errors import DomainError, ErrorCode
from services.audit import AuditAction, record_staff_action

router = APIRouter(prefix="/codec", tags=["codec"], responses=error_responses(401, 403, 413, 422))


def _from_base64(value: Any) -> bytes:
    # Strict on purpose: lenient decoding would turn a garbled payload into
    # silently wrong bytes instead of a 422 naming the field.
    if isinstance(value, bytes):  # built in Python from a decoded payload; JSON only ever gives text
        return value
    if not isinstance(value, str):
        raise ValueError("须为 base64 字符串 (must be a base64 string)")
    try:
        return base64.b64decode(value, validate=True)
    except (binascii.Error, ValueError) as exc:
        raise ValueError("不是有效的 base64 (not valid base64)") from exc


Base64 = Annotated[
    bytes,
    BeforeValidator(_from_base64),
    PlainSerializer(lambda raw: base64.b64encode(raw).decode("ascii"), return_type=str),
    WithJsonSchema({"type": "string", "contentEncoding": "base64"}),
]


class CodecPayload(BaseModel):
    """One Temporal payload as protobuf JSON: bytes as base64 text."""

    model_config = ConfigDict(extra="ignore")

    metadata: dict[str, Base64] = Field(default_factory=dict)
    data: Base64 = b""

    def to_proto(self) -> Payload:
        return Payload(metadata=self.metadata, data=self.data)

    @classmethod
    def from_proto(cls, payload: Payload) -> CodecPayload:
        return cls(metadata=dict(payload.metadata), data=payload.data)


class CodecPayloads(BaseModel):
    payloads: list[CodecPayload]


async def get_codec_caller(request: Request, token: Annotated[str | None, Depends(oauth2_scheme)]) -> Actor:
    """The staff member the bearer token or the session cookie names, while its session is live."""
    actor = (await signed_in(token or request.cookies.get(SESSION_COOKIE), request)).actor
    require_role(actor, "clerk", "officer", "supervisor", "admin")
    return actor


def get_payload_codec(settings: SettingsDep) -> PayloadEncryptionCodec:
    return PayloadEncryptionCodec.from_settings(settings)


CodecCaller = Annotated[Actor, Depends(get_codec_caller)]
CodecDep = Annotated[PayloadEncryptionCodec, Depends(get_payload_codec)]


@router.post("/encode")
async def encode(body: CodecPayloads, caller: CodecCaller, codec: CodecDep) -> CodecPayloads:
    require_role(caller, "admin")
    encoded = await codec.encode([payload.to_proto() for payload in body.payloads])
    return CodecPayloads(payloads=[CodecPayload.from_proto(payload) for payload in encoded])


@router.post("/decode")
async def decode(
    body: CodecPayloads, caller: CodecCaller, codec: CodecDep, engine: EngineDep, request: Request
) -> CodecPayloads:
    decoded: list[CodecPayload] = []
    for index, payload in enumerate(body.payloads):
        try:
            (plain,) = await codec.decode([payload.to_proto()])
        except PayloadCodecError as error:
            raise DomainError(
                ErrorCode.INVALID, "载荷无法解密 (payload cannot be decrypted)", {f"payloads.{index}": str(error)}
            ) from error
        if caller.role in OVERSIGHT_ROLES:
            plain = _masked(plain, payload.to_proto())
        decoded.append(CodecPayload.from_proto(plain))
    namespace = request.headers.get("x-namespace", "")[:100] or None
    await run_in_threadpool(
        record_staff_action,
        engine,
        caller,
        AuditAction.CODEC_DECODE,
        case_id=None,
        target=namespace,
        detail={"payloads": len(body.payloads), "masked": caller.role in OVERSIGHT_ROLES},
    )
    return CodecPayloads(payloads=decoded)


def _masked(plain: Payload, sealed: Payload) -> Payload:
    """A decoded JSON payload with its personal data masked; any other kind stays sealed."""
    if plain.metadata.get("encoding") != b"json/plain":
        return sealed
    try:
        value = json.loads(plain.data)
    except ValueError:
        return sealed
    data = json.dumps(mask_personal_data(value), ensure_ascii=False).encode()
    return Payload(metadata=dict(plain.metadata), data=data)

"""Codec server for the Temporal UI: decrypts (and encrypts) payloads for staff only.

The Temporal UI, pointed at ``/codec`` (``temporal server start-dev --ui-codec-endpoint``),
posts the payloads of a history to ``/codec/decode`` and shows what comes back.
The bodies follow Temporal's codec-server JSON shape, ``{"payloads": [{"metadata":
{name: base64}, "data": base64}]}``. The caller proves who they are with the staff
JWT, as ``Authorization: Bearer`` or in the ``onething_session`` cookie (the UI's
``includeCredentials`` sends cookies, not headers). Applicants are refused: the
histories hold every applicant's data, not just their own.

Decoding is scoped like the API reads a case. Each encrypted payload names, in clear and
bound into its ciphertext, the workflow it was sealed for (infra/codec.py); a payload decodes
for a caller who may read that case (services.access.can_see_case: an officer's or clerk's
unit works a step of it, a clerk's window accepted it, a supervisor's division holds it) or
that complaint (the complaints API's rule). Supervisors and admins get JSON payloads with
personal data masked (ID numbers, phones, names; any other encoding stays sealed), clerks
and officers in full. A payload sealed for no case (sealed before payloads were bound to
their workflow, by ``/codec/encode``, or for a workflow that is neither a case nor a
complaint) decodes for admins only, masked like everything an admin decodes.

A payload the caller may not read is returned unchanged, still encrypted, with 200: the UI
then shows that one payload as ciphertext and decodes the rest of the history, where a 403
would fail the whole request and leave its other payloads undecoded too. Every
decode and every refusal is audited, one row per workflow and outcome (``codec_decode`` /
``codec_decode_refused``: who, the namespace, the case, how many payloads). Encoding under
the production key is for admins only: nothing in the UI needs it, and a sealed payload
forged by anyone else must not pass as ours.
"""

from __future__ import annotations

import base64
import binascii
import json
from collections import Counter
from dataclasses import dataclass, field
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Request
from pydantic import BaseModel, BeforeValidator, ConfigDict, Field, PlainSerializer, WithJsonSchema
from sqlalchemy import Engine
from sqlmodel import Session
from starlette.concurrency import run_in_threadpool
from temporalio.api.common.v1 import Payload

from api.deps import SESSION_COOKIE as SESSION_COOKIE  # api/routes/tasks.py takes it from here
from api.deps import EngineDep, SettingsDep, oauth2_scheme, require_role, signed_in
from api.errors import error_responses
from api.routes.complaints import visible_complaint
from domain.redaction import OVERSIGHT_ROLES, mask_personal_data
from infra.codec import PayloadCodecError, PayloadEncryptionCodec, is_encrypted, sealed_workflow_id
from models.case import Actor
from models.errors import DomainError, ErrorCode
from models.tables import CaseRecord
from services.access import can_see_case
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

    # An encoding, a key id, the workflow id it was sealed for (Temporal's ids: at most 1000 bytes).
    metadata: dict[
        Annotated[str, Field(max_length=256)],
        Annotated[
            Base64,
            Field(max_length=4096),
            WithJsonSchema({"type": "string", "contentEncoding": "base64", "maxLength": 5464}),
        ],
    ] = Field(default_factory=dict, max_length=32)
    # Temporal refuses a payload over 2 MiB (its default blob size limit); twice that leaves room
    # for a sealed one's nonce and tag, so no answer of this server is ever refused by it.
    data: Annotated[Base64, Field(max_length=4 * 1024 * 1024, json_schema_extra={"maxLength": 5_592_408})] = b""

    def to_proto(self) -> Payload:
        return Payload(metadata=self.metadata, data=self.data)

    @classmethod
    def from_proto(cls, payload: Payload) -> CodecPayload:
        return cls(metadata=dict(payload.metadata), data=payload.data)


class CodecPayloads(BaseModel):
    # The Temporal UI posts the payloads of one page of a history at a time.
    payloads: list[CodecPayload] = Field(max_length=1000)


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
    payloads = [payload.to_proto() for payload in body.payloads]
    # The workflow each encrypted payload was sealed for, as its metadata claims; a plain payload has none.
    sealed_for = {index: sealed_workflow_id(payload) for index, payload in enumerate(payloads) if is_encrypted(payload)}
    scope = await run_in_threadpool(_decode_scope, engine, caller, set(sealed_for.values()))
    masked = caller.role in OVERSIGHT_ROLES
    decoded: list[CodecPayload] = []
    outcomes: Counter[tuple[AuditAction, str | None, bool]] = Counter()
    for index, payload in enumerate(payloads):
        encrypted = index in sealed_for
        workflow_id = sealed_for.get(index)
        if encrypted and workflow_id not in scope.readable:
            # Never decrypted: the caller gets back exactly what the Temporal server holds.
            decoded.append(CodecPayload.from_proto(payload))
            outcomes[AuditAction.CODEC_DECODE_REFUSED, workflow_id, encrypted] += 1
            continue
        try:
            # Decrypting also proves the claimed workflow id: it is bound into the ciphertext.
            (plain,) = await codec.decode([payload])
        except PayloadCodecError as error:
            raise DomainError(
                ErrorCode.INVALID, "载荷无法解密 (payload cannot be decrypted)", {f"payloads.{index}": str(error)}
            ) from error
        if masked:
            plain = _masked(plain, payload)
        decoded.append(CodecPayload.from_proto(plain))
        outcomes[AuditAction.CODEC_DECODE, workflow_id, encrypted] += 1
    namespace = request.headers.get("x-namespace", "")[:100] or None
    await run_in_threadpool(_audit, engine, caller, namespace, masked, outcomes, scope.cases)
    return CodecPayloads(payloads=decoded)


@dataclass
class _DecodeScope:
    readable: set[str | None] = field(default_factory=set)  # workflow ids (None: sealed for none)
    cases: set[str] = field(default_factory=set)  # those that are cases, for the audit's case column


def _decode_scope(engine: Engine, caller: Actor, workflow_ids: set[str | None]) -> _DecodeScope:
    """Which of these workflows' payloads the caller may read: by the API's rules for cases
    and complaints; anything else (no workflow, a schedule's, an unknown id) admins only."""
    scope = _DecodeScope()
    with Session(engine) as session:
        for workflow_id in workflow_ids:
            if workflow_id is None:
                if caller.role == "admin":
                    scope.readable.add(workflow_id)
                continue
            case = session.get(CaseRecord, workflow_id)
            if case is not None:
                scope.cases.add(workflow_id)
                if can_see_case(caller, case):
                    scope.readable.add(workflow_id)
            elif caller.role == "admin" or _sees_complaint(session, caller, workflow_id):
                scope.readable.add(workflow_id)
    return scope


def _sees_complaint(session: Session, caller: Actor, workflow_id: str) -> bool:
    try:
        visible_complaint(session, caller, workflow_id)
    except DomainError:  # not a complaint, or not one the caller may see
        return False
    return True


def _audit(
    engine: Engine,
    caller: Actor,
    namespace: str | None,
    masked: bool,
    outcomes: Counter[tuple[AuditAction, str | None, bool]],
    cases: set[str],
) -> None:
    """One row per workflow and outcome, so a case's audit trail shows who read (or was
    refused) its payloads in the Temporal UI."""
    for (action, workflow_id, encrypted), count in sorted(outcomes.items(), key=lambda item: str(item[0])):
        detail: dict[str, Any] = {"workflow_id": workflow_id[:100] if workflow_id else None, "payloads": count}
        if action == AuditAction.CODEC_DECODE:
            detail["masked"] = masked
        if not encrypted:
            detail["encrypted"] = False  # passed through as it was (dev and test only)
        record_staff_action(
            engine,
            caller,
            action,
            case_id=workflow_id if workflow_id in cases else None,
            target=namespace,
            detail=detail,
        )


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

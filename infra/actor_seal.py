"""Signed actors: a workflow acts only on Updates the API sealed.

Workflows trust the ``actor`` inside an Update's argument (who, role, unit) for every
access rule. Anyone who can reach the Temporal frontend could otherwise send a
``complete`` Update naming any officer, past the API's checks and its audit log. So the
API's client seals each Update it sends: an HMAC over the actor's claims, the workflow,
the Update's name and id (derived from the request's idempotency key) and the time, in
a header. The workers' interceptor checks the seal before the workflow's own validator
runs; a missing, wrong, stale or misdirected seal rejects the Update, and a rejected
Update writes nothing to history.

Starts of cases and complaints are sealed the same way (the case's first actor: the
applicant, or the clerk who accepted a walk-in); a forged start fails the workflow before
it does anything. A start's seal has no age limit: a case whose first task waits an hour
for a worker must not be lost, and the seal names the workflow id, which Temporal never
starts twice (REJECT_DUPLICATE), so it cannot start anything else.

Validators do not run on replay, and a start is checked only when first run, so a key
dropped after rotation cannot make replay diverge.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import time
import uuid
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.kdf.hkdf import HKDF
from pydantic import BaseModel
from temporalio import client, workflow
from temporalio.api.common.v1 import Payload
from temporalio.exceptions import ApplicationError
from temporalio.worker import (
    ExecuteWorkflowInput,
    HandleUpdateInput,
    Interceptor,
    WorkflowInboundInterceptor,
    WorkflowInterceptorClassInput,
)

from models.errors import ErrorCode
from settings import Settings

SEAL_HEADER = "onething-actor-seal"
SEAL_VERSION = 1
DERIVED_KEY_ID = "derived"
# The claims of an actor that access rules read; other fields may be added to Actor freely.
ACTOR_CLAIMS = ("username", "role", "unit", "unit_code", "division_code")
# A seal may be this much younger than the worker's clock: clocks of two machines differ a little.
CLOCK_SKEW_SECONDS = 30
# Workflows whose start names an actor; others (the SMS delivery a schedule starts) carry none.
SEALED_STARTS = frozenset({"CaseWorkflow", "ComplaintWorkflow"})


def start_action(workflow_type: str) -> str:
    """What a start's seal is made for, in place of an Update's name."""
    return f"start:{workflow_type}"


class SealRejected(Exception):
    """An Update's seal is missing, unreadable, forged, stale or made for another Update."""


@dataclass(frozen=True)
class SealKeys:
    keys: Mapping[str, bytes]
    current_key_id: str
    max_age_seconds: int

    @classmethod
    def from_settings(cls, settings: Settings) -> SealKeys:
        if settings.actor_seal_keys:
            keys = settings.actor_seal_key_bytes()
            assert settings.actor_seal_key_id is not None  # settings validated it
            return cls(keys, settings.actor_seal_key_id, settings.actor_seal_max_age_seconds)
        # Dev and test only (settings refuse production without keys).
        derived = HKDF(algorithm=hashes.SHA256(), length=32, salt=None, info=b"onething-actor-seal").derive(
            settings.secret_key.encode()
        )
        return cls({DERIVED_KEY_ID: derived}, DERIVED_KEY_ID, settings.actor_seal_max_age_seconds)


# Where an Update's or a start's argument names who acts.
ACTOR_FIELDS = ("actor", "submitted_by", "filed_by")


def actor_claims(argument: Any) -> dict[str, Any] | None:
    """The sealed part of the argument's actor; None for an argument without one."""
    actor = next((getattr(argument, name) for name in ACTOR_FIELDS if getattr(argument, name, None) is not None), None)
    if actor is None:
        return None
    if isinstance(actor, BaseModel):
        dumped = actor.model_dump(mode="json")
        return {claim: dumped.get(claim) for claim in ACTOR_CLAIMS}
    return {"value": str(actor)}


def _canonical(claims: Mapping[str, Any]) -> bytes:
    return json.dumps(claims, sort_keys=True, separators=(",", ":"), ensure_ascii=False).encode()


def seal(keys: SealKeys, *, workflow_id: str, update: str, update_id: str, argument: Any, issued_at: float) -> Payload:
    claims = {
        "v": SEAL_VERSION,
        "kid": keys.current_key_id,
        "workflow_id": workflow_id,
        "update": update,
        "update_id": update_id,
        "issued_at_ms": int(issued_at * 1000),
        "actor": actor_claims(argument),
    }
    mac = hmac.new(keys.keys[keys.current_key_id], _canonical(claims), hashlib.sha256).hexdigest()
    return Payload(metadata={"encoding": b"json/plain"}, data=_canonical({"claims": claims, "mac": mac}))


def verify(
    keys: SealKeys,
    header: Payload | None,
    *,
    workflow_id: str,
    update: str,
    update_id: str,
    argument: Any,
    now: float | None,
) -> None:
    """Raise SealRejected unless ``header`` is a valid seal of exactly this Update, fresh at
    ``now`` (None: of any age)."""
    if header is None:
        raise SealRejected("the Update carries no actor seal")
    try:
        envelope = json.loads(header.data)
        claims, mac = envelope["claims"], envelope["mac"]
        key = keys.keys.get(claims["kid"])
        issued_at = claims["issued_at_ms"] / 1000
    except (ValueError, KeyError, TypeError) as exc:
        raise SealRejected("the actor seal is unreadable") from exc
    if key is None:
        raise SealRejected(f"the actor seal names an unknown key {claims['kid']!r}")
    expected = hmac.new(key, _canonical(claims), hashlib.sha256).hexdigest()
    if not isinstance(mac, str) or not hmac.compare_digest(expected, mac):
        raise SealRejected("the actor seal's signature is wrong")
    if claims.get("v") != SEAL_VERSION:
        raise SealRejected(f"unknown actor seal version {claims.get('v')!r}")
    made_for = (claims.get("workflow_id"), claims.get("update"), claims.get("update_id"))
    if made_for != (workflow_id, update, update_id):
        raise SealRejected("the actor seal was made for another Update")
    if claims.get("actor") != actor_claims(argument):
        raise SealRejected("the Update's actor is not the one sealed")
    if now is None:
        return
    if now - issued_at > keys.max_age_seconds:
        raise SealRejected(f"the actor seal is stale (older than {keys.max_age_seconds} s)")
    if issued_at - now > CLOCK_SKEW_SECONDS:
        raise SealRejected("the actor seal is dated in the future")


class ActorSealSigner(client.Interceptor):
    """The API's (and every tool's) client: seals each Update it sends."""

    def __init__(self, keys: SealKeys) -> None:
        self.keys = keys

    def intercept_client(self, next: client.OutboundInterceptor) -> client.OutboundInterceptor:
        return _SealingOutbound(next, self.keys)


class _SealingOutbound(client.OutboundInterceptor):
    def __init__(self, next: client.OutboundInterceptor, keys: SealKeys) -> None:
        super().__init__(next)
        self.keys = keys

    def _sealed(
        self, headers: Mapping[str, Payload], workflow_id: str, update: str, update_id: str, args: Any
    ) -> dict[str, Payload]:
        argument = args[0] if args else None
        stamp = seal(
            self.keys,
            workflow_id=workflow_id,
            update=update,
            update_id=update_id,
            argument=argument,
            issued_at=time.time(),
        )
        return {**headers, SEAL_HEADER: stamp}

    async def start_workflow(self, input: client.StartWorkflowInput) -> client.WorkflowHandle[Any, Any]:
        if input.workflow in SEALED_STARTS:
            input.headers = self._sealed(input.headers, input.id, start_action(input.workflow), input.id, input.args)
        return await super().start_workflow(input)

    async def start_workflow_update(self, input: client.StartWorkflowUpdateInput) -> client.WorkflowUpdateHandle[Any]:
        # The seal names the Update's id, so the id is fixed here rather than by the SDK later.
        input.update_id = input.update_id or str(uuid.uuid4())
        input.headers = self._sealed(input.headers, input.id, input.update, input.update_id, input.args)
        return await super().start_workflow_update(input)

    async def start_update_with_start_workflow(
        self, input: client.StartWorkflowUpdateWithStartInput
    ) -> client.WorkflowUpdateHandle[Any]:
        start, update = input.start_workflow_input, input.update_workflow_input
        if start.workflow in SEALED_STARTS:
            start.headers = self._sealed(start.headers, start.id, start_action(start.workflow), start.id, start.args)
        update.update_id = update.update_id or str(uuid.uuid4())
        update.headers = self._sealed(update.headers, start.id, update.update, update.update_id, update.args)
        return await super().start_update_with_start_workflow(input)


class ActorSealVerifier(Interceptor):
    """The worker's side: every Update with a validator must carry a valid seal."""

    def __init__(self, keys: SealKeys) -> None:
        self.keys = keys

    def workflow_interceptor_class(
        self, input: WorkflowInterceptorClassInput
    ) -> type[WorkflowInboundInterceptor] | None:
        keys = self.keys

        class _VerifyingInbound(WorkflowInboundInterceptor):
            async def execute_workflow(self, input: ExecuteWorkflowInput) -> Any:
                info = workflow.info()
                if info.workflow_type in SEALED_STARTS and not workflow.unsafe.is_replaying():
                    try:
                        verify(
                            keys,
                            input.headers.get(SEAL_HEADER),
                            workflow_id=info.workflow_id,
                            update=start_action(info.workflow_type),
                            update_id=info.workflow_id,
                            argument=input.args[0] if input.args else None,
                            now=None,
                        )
                    except SealRejected as rejected:
                        raise _refusal(rejected) from None
                return await super().execute_workflow(input)

            def handle_update_validator(self, input: HandleUpdateInput) -> None:
                try:
                    verify(
                        keys,
                        input.headers.get(SEAL_HEADER),
                        workflow_id=workflow.info().workflow_id,
                        update=input.update,
                        update_id=input.id,
                        argument=input.args[0] if input.args else None,
                        now=time.time(),
                    )
                except SealRejected as rejected:
                    raise _refusal(rejected) from None
                super().handle_update_validator(input)

        return _VerifyingInbound


def _refusal(rejected: SealRejected) -> ApplicationError:
    # The shape every validator's refusal has (workflows/kit/rejection.py).
    return ApplicationError(
        f"操作未获授权 (unsealed action): {rejected}",
        {"fields": {"actor": str(rejected)}},
        type=ErrorCode.FORBIDDEN.value,
        non_retryable=True,
    )

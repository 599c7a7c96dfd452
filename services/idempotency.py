"""Idempotency-Keys of actions (workflow Updates), bound to who sent them, for what, with what.

Before an action with an Idempotency-Key is sent, its key is bound (table ``action_keys``) to
the user, the action, its target and the request's body. The same key with the same body is a
retry: it is sent with the same Update id and gets the first answer, applied once. The same
key with another body is refused, 422 naming ``Idempotency-Key``, and nothing is sent. Another
user's, action's or target's identical key is a key of its own.

The Update id derives from the binding and the body, so two requests that differ never share
an answer, not even where the binding is gone (a read model rebuilt from Temporal). An action
its workflow's validator refused was applied nowhere: its binding is dropped, so the key may
carry a corrected request (a form sent back with its errors keeps its key).
"""

from __future__ import annotations

import hashlib
import json
from datetime import UTC, datetime
from typing import Any, TypeVar

from sqlalchemy import Engine, delete, select
from sqlmodel import col
from starlette.concurrency import run_in_threadpool
from temporalio.client import Client, WorkflowUpdateFailedError

from infra.db import insert_new, write_session
from models.case import Actor
from models.tables import ActionKey
from services.gateway import refuse_reused_key, request_fingerprint, send_update

Result = TypeVar("Result")


def action_scope(username: str, action: str, target: str, idempotency_key: str) -> str:
    """What one key is bound within: the SHA-256 of (user, action, target, key)."""
    canonical = json.dumps([username, action, target, idempotency_key], ensure_ascii=False)
    return hashlib.sha256(canonical.encode()).hexdigest()


def _update_id(action: str, target: str, scope: str, fingerprint: str) -> str:
    return f"{action}/{target}/{hashlib.sha256(f'{scope}/{fingerprint}'.encode()).hexdigest()}"


def bind_action_key(
    engine: Engine, actor: Actor, action: str, target: str, idempotency_key: str | None, body: Any
) -> str | None:
    """The Update id of this action: the key's first use binds it to ``body``; a retry with
    the same body gets the same id; another body is DomainError 422. No key: None (the
    Update gets an id of its own). Blocking: call it from a thread in async code."""
    if not idempotency_key:
        return None
    scope = action_scope(actor.username, action, target, idempotency_key)
    fingerprint = request_fingerprint(body)
    with write_session(engine) as session:
        row = {"scope": scope, "fingerprint": fingerprint, "created_at": datetime.now(UTC)}
        insert_new(session, ActionKey, [row])  # the key's first use; a retry's finds the row there
        stored = session.execute(select(col(ActionKey.fingerprint)).where(col(ActionKey.scope) == scope)).scalar_one()
    refuse_reused_key(stored, fingerprint)
    return _update_id(action, target, scope, fingerprint)


def release_action_key(
    engine: Engine, actor: Actor, action: str, target: str, idempotency_key: str | None, body: Any
) -> None:
    """Forget the binding of a refused action (nothing was applied), if it is still this body's."""
    if not idempotency_key:
        return
    scope = action_scope(actor.username, action, target, idempotency_key)
    with write_session(engine) as session:
        session.execute(
            delete(ActionKey).where(
                col(ActionKey.scope) == scope, col(ActionKey.fingerprint) == request_fingerprint(body)
            )
        )


async def send_action(
    client: Client,
    engine: Engine,
    workflow_id: str,
    update: Any,
    argument: Any,
    *,
    actor: Actor,
    action: str,
    target: str,
    idempotency_key: str | None,
    body: Any,
    result_type: type[Result],
) -> Result:
    """Send one action as a workflow Update (services/gateway.send_update), its Idempotency-Key
    bound first. ``body`` is what the caller asked for (the request's body, before the API adds
    an audit row or a time to it): a retry must send the same."""
    update_id = await run_in_threadpool(bind_action_key, engine, actor, action, target, idempotency_key, body)
    try:
        return await send_update(client, workflow_id, update, argument, result_type=result_type, update_id=update_id)
    except WorkflowUpdateFailedError:
        # Its validator refused it: nothing was applied, the key may carry a corrected request.
        if update_id is not None:
            await run_in_threadpool(release_action_key, engine, actor, action, target, idempotency_key, body)
        raise

"""Sending an action (a workflow Update) to a case, with the API's error rules.

A validator's rejection comes back as WorkflowUpdateFailedError and is mapped in
api/errors.py; a case whose workflow has already closed answers 409, an unknown
one 404. The Update id derives from the request's Idempotency-Key so a retried
request is applied once.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
from datetime import timedelta
from typing import Any, TypeVar

from temporalio.client import Client, WorkflowUpdateRPCTimeoutOrCancelledError
from temporalio.service import RPCError, RPCStatusCode

from models.errors import DomainError, ErrorCode

Result = TypeVar("Result")

WORKER_WAIT = timedelta(seconds=30)


def update_id(action: str, target: str, idempotency_key: str | None) -> str | None:
    # Scoped by action and target so one key reused for "claim" then "complete"
    # can never return the claim's answer to the completion.
    return f"{action}/{target}/{idempotency_key}" if idempotency_key else None


async def run_case_update(
    client: Client, case_id: str, update: Any, argument: Any, *, result_type: type[Result], update_id: str | None
) -> Result:
    handle = client.get_workflow_handle(case_id)
    try:
        result: Result = await asyncio.wait_for(
            handle.execute_update(update, argument, id=update_id, result_type=result_type),
            WORKER_WAIT.total_seconds(),
        )
        return result
    except (TimeoutError, WorkflowUpdateRPCTimeoutOrCancelledError) as exc:
        # wait_for's cancellation comes back from the SDK as its own error type.
        raise DomainError(ErrorCode.UNAVAILABLE, "流程服务繁忙，请稍后重试 (workflow service busy)") from exc
    except RPCError as exc:
        if exc.status != RPCStatusCode.NOT_FOUND:
            raise
        try:
            await handle.describe()
        except RPCError:
            raise DomainError(ErrorCode.NOT_FOUND, "案件不存在 (no such case)") from exc
        raise DomainError(ErrorCode.CONFLICT, "案件已结束 (the case is closed)") from exc


def request_fingerprint(request: Any) -> str:
    """A hash of a submission's content, kept with what it created."""
    canonical = json.dumps(request, sort_keys=True, ensure_ascii=False, default=str)
    return hashlib.sha256(canonical.encode()).hexdigest()


def refuse_reused_key(stored_fingerprint: str, fingerprint: str) -> None:
    """A retried request must be the same request: a key reused for another one is 422."""
    if stored_fingerprint != fingerprint:
        raise DomainError(
            ErrorCode.INVALID,
            "幂等键已用于另一份申请 (Idempotency-Key reused with a different request)",
            {"Idempotency-Key": "already used for a different request"},
        )

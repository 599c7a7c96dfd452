"""The one way the API talks to workflows: start one (with its first answer in the same
round trip), send it an Update, and what each outcome means for the caller.

A validator's rejection comes back as WorkflowUpdateFailedError and is mapped in
api/errors.py; a workflow that has already closed answers 409 for an action, an unknown
one 404; a worker that does not answer in time 503 (the request may be retried with the
same Idempotency-Key: the Update id derives from it and the request, so a retry is applied
once; services/idempotency.py binds each key to its user, action, target and body).
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import uuid
from datetime import timedelta
from typing import Any, TypeVar

from temporalio.client import (
    Client,
    WithStartWorkflowOperation,
    WorkflowUpdateRPCTimeoutOrCancelledError,
)
from temporalio.common import TypedSearchAttributes, WorkflowIDConflictPolicy, WorkflowIDReusePolicy
from temporalio.exceptions import WorkflowAlreadyStartedError
from temporalio.service import RPCError, RPCStatusCode

from models.errors import DomainError, ErrorCode

Result = TypeVar("Result")

WORKER_WAIT = timedelta(seconds=30)
BUSY = "流程服务繁忙，请稍后重试 (workflow service busy)"
RETRIED_UPDATE_STATUSES = frozenset({RPCStatusCode.RESOURCE_EXHAUSTED, RPCStatusCode.UNAVAILABLE})
RETRY_FIRST_PAUSE = 0.05  # seconds
RETRY_LONGEST_PAUSE = 1.0


def update_id(action: str, target: str, idempotency_key: str | None) -> str | None:
    """An Update id from a fixed key the server chose (the SMS rating link's). A key a client
    sent is bound to its user and body first: services/idempotency.send_action."""
    return f"{action}/{target}/{idempotency_key}" if idempotency_key else None


async def start_with_update(
    client: Client,
    run: Any,
    argument: Any,
    *,
    workflow_id: str,
    task_queue: str,
    update: Any,
    query: Any,
    result_type: type[Result],
    noun_zh: str,
    search_attributes: TypedSearchAttributes | None = None,
) -> Result:
    """Start the workflow unless ``workflow_id`` runs already, and answer with ``update``'s
    result, in one round trip (Update-with-start). A workflow of that id that has closed
    answers its ``query`` instead."""
    start = WithStartWorkflowOperation(
        run,
        argument,
        id=workflow_id,
        task_queue=task_queue,
        id_conflict_policy=WorkflowIDConflictPolicy.USE_EXISTING,
        id_reuse_policy=WorkflowIDReusePolicy.REJECT_DUPLICATE,
        search_attributes=search_attributes,
    )
    try:
        result: Result = await asyncio.wait_for(
            client.execute_update_with_start_workflow(update, start_workflow_operation=start, result_type=result_type),
            WORKER_WAIT.total_seconds(),
        )
        return result
    # wait_for's cancellation reaches the SDK's update poll, which re-raises it as its own timeout error.
    except (TimeoutError, WorkflowUpdateRPCTimeoutOrCancelledError) as exc:
        raise DomainError(
            ErrorCode.UNAVAILABLE,
            f"{noun_zh}{workflow_id}已接收，正在排队受理，请稍后查询 (accepted for processing; try again shortly)",
        ) from exc
    except WorkflowAlreadyStartedError:
        closed: Result = await client.get_workflow_handle(workflow_id).query(query, result_type=result_type)
        return closed


async def send_update(
    client: Client,
    workflow_id: str,
    update: Any,
    argument: Any,
    *,
    result_type: type[Result],
    update_id: str | None,
    not_found_message: str = "案件不存在 (no such case)",
    closed_message: str = "案件已结束 (the case is closed)",
) -> Result:
    handle = client.get_workflow_handle(workflow_id)
    # One id for every attempt: an attempt the server did apply is answered, not applied twice.
    update_id = update_id or uuid.uuid4().hex

    async def attempts() -> Result:
        pause = RETRY_FIRST_PAUSE
        while True:
            try:
                answer: Result = await handle.execute_update(update, argument, id=update_id, result_type=result_type)
                return answer
            except RPCError as exc:
                # A burst of Updates to one case: the server refuses those beyond its in-flight limit
                # (RESOURCE_EXHAUSTED) or aborts one whose speculative workflow task it dropped
                # (UNAVAILABLE); neither was applied, so it is sent again until the wait runs out.
                if exc.status not in RETRIED_UPDATE_STATUSES:
                    raise
            await asyncio.sleep(pause)
            pause = min(pause * 2, RETRY_LONGEST_PAUSE)

    try:
        result: Result = await asyncio.wait_for(attempts(), WORKER_WAIT.total_seconds())
        return result
    except (TimeoutError, WorkflowUpdateRPCTimeoutOrCancelledError) as exc:
        # wait_for's cancellation comes back from the SDK as its own error type.
        raise DomainError(ErrorCode.UNAVAILABLE, BUSY) from exc
    except RPCError as exc:
        if exc.status != RPCStatusCode.NOT_FOUND:
            raise
        try:
            await handle.describe()
        except RPCError:
            raise DomainError(ErrorCode.NOT_FOUND, not_found_message) from exc
        raise DomainError(ErrorCode.CONFLICT, closed_message) from exc


def request_fingerprint(request: Any) -> str:
    """A hash of a request's content: a submission's, kept with what it created, or an action's body."""
    canonical = json.dumps(request, sort_keys=True, ensure_ascii=False, default=str)
    return hashlib.sha256(canonical.encode()).hexdigest()


def refuse_reused_key(stored_fingerprint: str, fingerprint: str) -> None:
    """A retried request must be the same request: a key reused for another one (a submission,
    or an action: services/idempotency.py) is 422."""
    if stored_fingerprint != fingerprint:
        raise DomainError(
            ErrorCode.INVALID,
            "幂等键已用于另一项请求 (Idempotency-Key reused with a different request)",
            {"Idempotency-Key": "already used for a different request"},
        )

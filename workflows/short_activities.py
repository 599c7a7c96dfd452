"""Short work a case runs inside its own worker: calendar arithmetic and read-model writes.

These activities take milliseconds, touch only the worker's own calendar and the read
model, and are idempotent, so they run as *local* activities: the result is recorded
in history as one marker instead of three activity events and an extra workflow task
(bench/: the full path's history shrank by about half). A deadline computed this way
is still recorded in history, so a calendar update never changes a replay.

Cases started before this existed replay their regular activities: the choice is
guarded by a patch, so both kinds of history stay valid.
"""

from __future__ import annotations

from datetime import timedelta
from typing import Any, TypeVar, overload

from temporalio import workflow
from temporalio.common import RetryPolicy

LOCAL_ACTIVITIES_PATCH = "local-short-activities"

Result = TypeVar("Result")


@overload
async def run_short_activity(
    name: str,
    argument: Any,
    *,
    result_type: type[Result],
    start_to_close_timeout: timedelta,
    retry_policy: RetryPolicy,
) -> Result: ...


@overload
async def run_short_activity(
    name: str,
    argument: Any,
    *,
    result_type: None = None,
    start_to_close_timeout: timedelta,
    retry_policy: RetryPolicy,
) -> None: ...


async def run_short_activity(
    name: str,
    argument: Any,
    *,
    result_type: type[Any] | None = None,
    start_to_close_timeout: timedelta,
    retry_policy: RetryPolicy,
) -> Any:
    if workflow.patched(LOCAL_ACTIVITIES_PATCH):
        return await workflow.execute_local_activity(
            name,
            argument,
            result_type=result_type,
            start_to_close_timeout=start_to_close_timeout,
            retry_policy=retry_policy,
        )
    return await workflow.execute_activity(
        name,
        argument,
        result_type=result_type,
        start_to_close_timeout=start_to_close_timeout,
        retry_policy=retry_policy,
    )

"""Typed calls of every activity a workflow runs: one function per activity, taking and
returning its payload models, with its timeout and retry policy in one place.

Workflow code calls these and never an activity by name; the names live here and in
the worker's registrations (models.case.ActivityName, models.complaint.ComplaintActivityName).

Short work (calendar arithmetic, read-model writes) runs as a *local* activity in a case:
its result is one marker in history instead of three activity events and a workflow
task. Cases started before that existed replay their regular activities, so the choice
is guarded by a patch. Complaints keep regular activities (``short=False``): their
histories were recorded that way.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any, TypeVar

from temporalio import workflow

from workflows.kit.retry import (
    CALENDAR_TIMEOUT,
    DATA_SHARING_RETRY,
    LOCAL_SERVICE_RETRY,
    SMS_DELIVERY_RETRY,
    WRITE_TIMEOUT,
)

with workflow.unsafe.imports_passed_through():
    from models.case import (
        ActivityName,
        ArchiveCaseInput,
        ArchiveResult,
        CaseChanges,
        ComputeDeadlinesInput,
        ComputeDeadlinesResult,
        DeadlineRequest,
        DeadlineResult,
        EscalationInput,
        FetchSharedMaterialsInput,
        FetchSharedMaterialsResult,
        NextEscalationInput,
        NextEscalationResult,
        NotificationInput,
        ProjectCaseInput,
        RemainingTimeInput,
        RemainingTimeResult,
        SupervisionNoticeInput,
        WriteResult,
    )
    from models.complaint import (
        ComplaintActivityName,
        ComplaintChanges,
        ComplaintEscalationInput,
        ProjectComplaintInput,
    )
    from models.notices import DeliverNoticesInput, DeliverNoticesResult, NoticeActivityName

LOCAL_ACTIVITIES_PATCH = "local-short-activities"

# Workflows started with this patch write each workflow task's changes at once (state, events,
# notifications, 督办 and audit rows in one local activity that records only the revision);
# those started before it replay their separate activities (docs/deployment.md).
ONE_WRITE_PATCH = "one-write-per-change"
# Workflows started with this patch make that write a regular activity. A local activity runs
# before its workflow task completes: a worker that dies in between leaves a write its history
# never recorded, and the task's retry, later and perhaps with more in it, carries the same
# revision and is dropped. A regular activity is scheduled only by a completed task, with its
# input in history, so what the read model holds is always what the history says.
WRITES_AFTER_TASK_PATCH = "writes-after-task"

Result = TypeVar("Result")


async def _short(
    name: str, argument: Any, result_type: type[Result] | None, timeout: timedelta, *, short: bool
) -> Result:
    """A local activity where the case's history allows it (see the module docstring)."""
    if short and workflow.patched(LOCAL_ACTIVITIES_PATCH):
        return await workflow.execute_local_activity(  # type: ignore[no-any-return]
            name, argument, result_type=result_type, start_to_close_timeout=timeout, retry_policy=LOCAL_SERVICE_RETRY
        )
    return await workflow.execute_activity(  # type: ignore[no-any-return]
        name, argument, result_type=result_type, start_to_close_timeout=timeout, retry_policy=LOCAL_SERVICE_RETRY
    )


class CalendarCalls:
    """The working-day calendar, asked through activities so every answer is in history
    and a later calendar update never changes what a running case replays."""

    def __init__(self, *, short: bool) -> None:
        self._short = short
        self.in_flight = 0  # questions asked and not yet answered

    async def _ask(self, name: str, argument: Any, result_type: type[Result]) -> Result:
        self.in_flight += 1
        try:
            return await _short(name, argument, result_type, CALENDAR_TIMEOUT, short=self._short)
        finally:
            self.in_flight -= 1

    async def deadlines(self, requests: list[DeadlineRequest]) -> list[DeadlineResult]:
        computed = await self._ask(
            ActivityName.COMPUTE_DEADLINES, ComputeDeadlinesInput(requests=requests), ComputeDeadlinesResult
        )
        return computed.deadlines

    async def deadline(self, request: DeadlineRequest) -> DeadlineResult:
        (deadline,) = await self.deadlines([request])
        return deadline

    async def remaining_seconds(self, paused_at: datetime, due_at: datetime) -> float:
        remaining = await self._ask(
            ActivityName.COMPUTE_REMAINING_TIME,
            RemainingTimeInput(paused_at=paused_at, due_at=due_at),
            RemainingTimeResult,
        )
        return remaining.remaining_seconds

    async def next_escalation(self, after: datetime) -> datetime:
        result = await self._ask(
            ActivityName.COMPUTE_NEXT_ESCALATION, NextEscalationInput(after=after), NextEscalationResult
        )
        return result.at


# --- the case's writes --------------------------------------------------------------


async def write_case_changes(changes: CaseChanges, *, after_task: bool) -> WriteResult:
    """The one write of a workflow task: state, events, notices and audit rows at once;
    ``after_task``: once the task is in history (WRITES_AFTER_TASK_PATCH)."""
    return await _write(ActivityName.WRITE_CASE_CHANGES, changes, after_task=after_task)


async def _write(name: str, changes: Any, *, after_task: bool) -> WriteResult:
    run = workflow.execute_activity if after_task else workflow.execute_local_activity
    return await run(  # type: ignore[no-any-return]
        name, changes, result_type=WriteResult, start_to_close_timeout=WRITE_TIMEOUT, retry_policy=LOCAL_SERVICE_RETRY
    )


async def project_case(projection: ProjectCaseInput) -> None:
    await _short(ActivityName.PROJECT_CASE, projection, None, WRITE_TIMEOUT, short=True)


async def send_notification(notification: NotificationInput) -> None:
    await _short(ActivityName.SEND_NOTIFICATION, notification, None, WRITE_TIMEOUT, short=True)


async def escalate_overdue_step(escalation: EscalationInput) -> None:
    await workflow.execute_activity(
        ActivityName.ESCALATE_OVERDUE_STEP,
        escalation,
        start_to_close_timeout=WRITE_TIMEOUT,
        retry_policy=LOCAL_SERVICE_RETRY,
    )


async def record_supervision_notice(notice: SupervisionNoticeInput) -> None:
    await workflow.execute_activity(
        ActivityName.RECORD_SUPERVISION_NOTICE,
        notice,
        start_to_close_timeout=WRITE_TIMEOUT,
        retry_policy=LOCAL_SERVICE_RETRY,
    )


async def archive_case(archive: ArchiveCaseInput) -> ArchiveResult:
    return await workflow.execute_activity(  # type: ignore[no-any-return]
        ActivityName.ARCHIVE_CASE,
        archive,
        result_type=ArchiveResult,
        start_to_close_timeout=timedelta(minutes=2),
        retry_policy=LOCAL_SERVICE_RETRY,
    )


async def fetch_shared_materials(request: FetchSharedMaterialsInput, *, local: bool) -> FetchSharedMaterialsResult:
    """Someone else's platform: bounded retries, then the caller asks the applicant instead.
    Run locally by cases that write once per change, so acceptance needs no extra round trip."""
    if local:
        return await workflow.execute_local_activity(  # type: ignore[no-any-return]
            ActivityName.FETCH_SHARED_MATERIALS,
            request,
            result_type=FetchSharedMaterialsResult,
            start_to_close_timeout=timedelta(seconds=30),
            retry_policy=DATA_SHARING_RETRY,
            # Back off on durable timers, not in the worker's memory: a platform outage
            # outlives a worker restart, and the wait is in history like any other.
            local_retry_threshold=timedelta(seconds=1),
        )
    return await workflow.execute_activity(  # type: ignore[no-any-return]
        ActivityName.FETCH_SHARED_MATERIALS,
        request,
        result_type=FetchSharedMaterialsResult,
        start_to_close_timeout=timedelta(seconds=30),
        retry_policy=DATA_SHARING_RETRY,
    )


# --- the complaint's writes -----------------------------------------------------------


async def write_complaint_changes(changes: ComplaintChanges, *, after_task: bool) -> WriteResult:
    """The one write of a complaint's workflow task: state, events and 督办 at once."""
    return await _write(ComplaintActivityName.WRITE_COMPLAINT_CHANGES, changes, after_task=after_task)


async def project_complaint(projection: ProjectComplaintInput) -> None:
    await workflow.execute_activity(
        ComplaintActivityName.PROJECT_COMPLAINT,
        projection,
        start_to_close_timeout=WRITE_TIMEOUT,
        retry_policy=LOCAL_SERVICE_RETRY,
    )


async def escalate_overdue_complaint(escalation: ComplaintEscalationInput) -> None:
    await workflow.execute_activity(
        ComplaintActivityName.ESCALATE_OVERDUE_COMPLAINT,
        escalation,
        start_to_close_timeout=WRITE_TIMEOUT,
        retry_policy=LOCAL_SERVICE_RETRY,
    )


# --- the SMS outbox -------------------------------------------------------------------


async def deliver_pending_sms(request: DeliverNoticesInput) -> DeliverNoticesResult:
    """One round of sending the outbox's due messages (a regular activity: it talks to a gateway)."""
    return await workflow.execute_activity(  # type: ignore[no-any-return]
        NoticeActivityName.DELIVER_PENDING_SMS,
        request,
        result_type=DeliverNoticesResult,
        # The budget bounds new sends; a minute more covers the last one and the bookkeeping.
        start_to_close_timeout=timedelta(seconds=request.time_budget_seconds + 60),
        retry_policy=SMS_DELIVERY_RETRY,
    )

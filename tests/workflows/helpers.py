"""Helpers for the case-workflow tests: building cases, acting as officers, and
reading outcomes from the snapshot, the read model and the raw history."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Awaitable
from contextlib import asynccontextmanager
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import Engine, select
from sqlmodel import Session, col
from temporalio.api.enums.v1 import EventType as HistoryEventType
from temporalio.client import Client, WorkflowHandle, WorkflowUpdateFailedError
from temporalio.exceptions import ApplicationError
from temporalio.testing import WorkflowEnvironment

from domain.catalogue import resolve_for_case, shipped_definitions
from domain.samples import sample_birth_form, sample_result
from domain.workcalendar import SHANGHAI, WorkingCalendar, default_calendar_file
from models.case import (
    Actor,
    CaseInput,
    CaseSnapshot,
    ClaimInput,
    CompleteStepInput,
    StepView,
)
from models.catalogue import ThingDefinition
from models.tables import CaseEventRecord, CaseRecord, NotificationRecord, SupervisionNotice, TaskRecord
from workflows.case.workflow import CaseWorkflow
from workflows.starter import new_case_id, start_case

CaseHandle = WorkflowHandle[CaseWorkflow, CaseSnapshot]

BIRTH: ThingDefinition = shipped_definitions()["birth"]
# The calendar the worker builds by default (test settings name no calendar file).
CALENDAR = WorkingCalendar.load(default_calendar_file())

# The birth steps in an order that respects every dependency.
ONLINE_ORDER = [
    "birth_certificate",
    "vaccination_certificate",
    "hukou_registration",
    "medical_insurance_enrollment",
    "maternity_benefit_review",
    "social_security_card",
]
HOSPITAL_ORDER = [*ONLINE_ORDER, "delivery"]


def officer(department: str, number: int = 1, role: str = "officer") -> Actor:
    return Actor(username=f"{department}_{role}{number}", role=role, unit=department)


def officer_for(step: str, channel: str = "online", number: int = 1) -> Actor:
    return officer(BIRTH.step(step).department_for(channel), number)


def applicant(username: str = "applicant1") -> Actor:
    return Actor(username=username, role="applicant")


def new_case(
    channel: str = "online",
    form: dict[str, Any] | None = None,
    owner: str = "applicant1",
    submitted_by: Actor | None = None,
) -> CaseInput:
    form = form if form is not None else sample_birth_form()
    return CaseInput(
        case_id=new_case_id(owner, None),
        definition=resolve_for_case(BIRTH, form),
        channel=channel,
        form=form,
        owner=owner,
        submitted_by=submitted_by or applicant(owner),
    )


@asynccontextmanager
async def started_case(client: Client, task_queue: str, case: CaseInput) -> AsyncIterator[CaseHandle]:
    """Start the case; terminate it on the way out if it is still running, so no
    abandoned timers of this test fire while later tests skip time."""
    handle, created = await start_case(client, task_queue, case)
    assert created
    try:
        yield handle
    finally:
        description = await handle.describe()
        if description.status is not None and description.status.name == "RUNNING":
            await handle.terminate(reason="test finished")


def view(snapshot: CaseSnapshot, step: str) -> StepView:
    matches = [s for s in snapshot.steps if s.step == step]
    assert matches, f"no step {step!r} in the case"
    return matches[0]


def statuses(snapshot: CaseSnapshot) -> dict[str, str]:
    return {s.step: s.status.value for s in snapshot.steps}


# A workflow task that keeps failing leaves Update callers waiting forever: every
# wait on the workflow is bounded so a regression fails instead of hanging the suite.
WAIT_LIMIT = 20.0


async def update(handle: CaseHandle, method: Any, argument: Any, **options: Any) -> Any:
    """Send an Update and wait (bounded) for its result."""
    return await asyncio.wait_for(handle.execute_update(method, argument, **options), WAIT_LIMIT)


async def wait_accepted(handle: CaseHandle) -> CaseSnapshot:
    """The snapshot once the case is accepted and its notice is in the read model."""
    return await asyncio.wait_for(handle.execute_update(CaseWorkflow.wait_accepted), WAIT_LIMIT)


async def finished(handle: CaseHandle) -> CaseSnapshot:
    """The case once it is completed or refused (bounded wait).

    A delivered case's workflow stays open for its 5-working-day rating period, so
    this reads the case's state rather than waiting for the workflow's result,
    which would make the shared time-skipping server jump days ahead."""

    deadline = time.monotonic() + WAIT_LIMIT
    while True:
        snapshot: CaseSnapshot = await handle.query(CaseWorkflow.snapshot)
        if snapshot.status == "refused":  # a refused case is not rated: its workflow ends at once
            result: CaseSnapshot = await asyncio.wait_for(handle.result(), WAIT_LIMIT)
            return result
        if snapshot.status == "completed":
            return snapshot
        if time.monotonic() > deadline:
            raise AssertionError(f"case still {snapshot.status} after {WAIT_LIMIT} s")
        await asyncio.sleep(0.05)


async def claim(handle: CaseHandle, step: str, actor: Actor, **options: Any) -> StepView:
    answer: StepView = await update(handle, CaseWorkflow.claim, ClaimInput(actor=actor, step=step), **options)
    return answer


async def complete(
    handle: CaseHandle,
    step: str,
    actor: Actor,
    form: dict[str, Any],
    result: dict[str, Any] | None = None,
    **options: Any,
) -> StepView:
    payload = result if result is not None else sample_result(BIRTH.step(step), form)
    answer: StepView = await update(
        handle, CaseWorkflow.complete, CompleteStepInput(actor=actor, step=step, result=payload), **options
    )
    return answer


async def claim_and_complete(
    handle: CaseHandle, step: str, form: dict[str, Any], channel: str = "online", actor: Actor | None = None
) -> StepView:
    actor = actor or officer_for(step, channel)
    claimed = await claim(handle, step, actor)
    assert claimed.status == "claimed" and claimed.assignee == actor.username
    done = await complete(handle, step, actor, form)
    assert done.status == "done"
    return done


async def rejection(call: Awaitable[Any]) -> ApplicationError:
    """The ApplicationError an Update was rejected with (fails if it was accepted)."""
    try:
        # A handler that raises anything but ApplicationError fails the workflow
        # task and leaves the caller waiting: bound the wait.
        outcome = await asyncio.wait_for(call, timeout=WAIT_LIMIT)
    except WorkflowUpdateFailedError as failure:
        cause = failure.cause
        assert isinstance(cause, ApplicationError), f"unexpected cause {cause!r}"
        return cause
    raise AssertionError(f"the update was accepted: {outcome!r}")


def rejected_fields(error: ApplicationError) -> dict[str, str]:
    assert error.details, "the rejection carries no details"
    fields = error.details[0]["fields"]
    assert isinstance(fields, dict)
    return fields


async def settled(handle: CaseHandle, engine: Engine, timeout: float = 10.0) -> CaseSnapshot:
    """The snapshot once the read model holds its revision (the projection runs in an activity)."""
    deadline = time.monotonic() + timeout
    while True:
        snapshot = await handle.query(CaseWorkflow.snapshot)
        with Session(engine) as session:
            record = session.get(CaseRecord, snapshot.case_id)
            if record is not None and record.revision >= snapshot.revision:
                return snapshot
        if time.monotonic() > deadline:
            raise AssertionError(f"read model stuck below revision {snapshot.revision}")
        await asyncio.sleep(0.05)


async def eventually(check: Any, timeout: float = 10.0) -> Any:
    """Poll ``check`` (a sync callable) until it returns a truthy value."""
    deadline = time.monotonic() + timeout
    while True:
        value = check()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"condition not met within {timeout} s (last value {value!r})")
        await asyncio.sleep(0.05)


def case_events(
    engine: Engine, case_id: str, step: str | None = None, type: str | None = None
) -> list[CaseEventRecord]:
    with Session(engine) as session:
        query = select(CaseEventRecord).where(col(CaseEventRecord.case_id) == case_id)
        if step is not None:
            query = query.where(col(CaseEventRecord.step) == step)
        if type is not None:
            query = query.where(col(CaseEventRecord.type) == type)
        return list(session.execute(query.order_by(col(CaseEventRecord.seq))).scalars())


def tasks(engine: Engine, case_id: str) -> dict[str, TaskRecord]:
    with Session(engine) as session:
        rows = session.execute(select(TaskRecord).where(col(TaskRecord.case_id) == case_id)).scalars()
        return {row.step: row for row in rows}


def case_record(engine: Engine, case_id: str) -> CaseRecord:
    with Session(engine) as session:
        record = session.get(CaseRecord, case_id)
    assert record is not None, f"case {case_id} is not in the read model"
    return record


def notifications(engine: Engine, case_id: str, kind: str | None = None) -> list[NotificationRecord]:
    with Session(engine) as session:
        query = select(NotificationRecord).where(col(NotificationRecord.case_id) == case_id)
        if kind is not None:
            query = query.where(col(NotificationRecord.kind) == kind)
        return list(session.execute(query).scalars())


def supervision_notices(engine: Engine, case_id: str, step: str | None = None) -> list[SupervisionNotice]:
    with Session(engine) as session:
        query = select(SupervisionNotice).where(col(SupervisionNotice.case_id) == case_id)
        if step is not None:
            query = query.where(col(SupervisionNotice.step) == step)
        return sorted(session.execute(query).scalars(), key=lambda notice: (notice.step, notice.sequence))


def issued(notices: list[SupervisionNotice]) -> list[datetime]:
    return [notice.issued_at for notice in notices]


async def sleep_until(env: WorkflowEnvironment, moment: datetime) -> None:
    """Skip the test server's clock forward to ``moment``."""
    delta = moment - await env.get_current_time()
    assert delta > timedelta(0), f"the clock is already past {moment.isoformat()}"
    await asyncio.wait_for(env.sleep(delta), WAIT_LIMIT)


def shanghai(year: int, month: int, day: int, hour: int = 0, minute: int = 0) -> datetime:
    return datetime(year, month, day, hour, minute, tzinfo=SHANGHAI)


async def quiet_history_length(handle: CaseHandle, timeout: float = 10.0) -> int:
    """The number of history events once no activity or workflow task is pending."""
    deadline = time.monotonic() + timeout
    while True:
        description = (await handle.describe()).raw_description
        if not description.pending_activities and not description.HasField("pending_workflow_task"):
            return len((await handle.fetch_history()).events)
        if time.monotonic() > deadline:
            raise AssertionError("the workflow did not go quiet")
        await asyncio.sleep(0.05)


EMPTY_WORKFLOW_TASK = {
    HistoryEventType.EVENT_TYPE_WORKFLOW_TASK_SCHEDULED,
    HistoryEventType.EVENT_TYPE_WORKFLOW_TASK_STARTED,
    HistoryEventType.EVENT_TYPE_WORKFLOW_TASK_COMPLETED,
}


async def rejected_without_history(handle: CaseHandle, call: Awaitable[Any]) -> ApplicationError:
    """Send an Update that must be rejected; check its rejection wrote no history event."""
    before = await quiet_history_length(handle)
    error = await rejection(call)
    added = [event.event_type for event in (await handle.fetch_history()).events[before:]]
    # The rejection writes no event of its own. The server may still keep the empty workflow
    # task that carried it (it does once after a case accepted within its first task).
    assert set(added) <= EMPTY_WORKFLOW_TASK, f"a rejected update wrote history: {added}"
    return error

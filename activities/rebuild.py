"""Rebuild the read model from Temporal after its database is lost.

Temporal holds the truth. Every row the worker writes into the read model is
written by an activity, and each activity's input is recorded in its workflow's
history (the ActivityTaskScheduled event). A rebuild lists the case and complaint
workflows through visibility, reads each history, decodes those inputs with the
client's data converter (so encrypted payloads work as the worker's do) and applies
them again, in the order they completed, through the same ``apply_*`` functions the
activities call, with the same keys. The rows come out as the worker wrote them, and
a second rebuild, or a rebuild over a database that still holds some rows, adds
nothing twice: every write is an idempotent, revision-gated upsert.

Only writes whose activity completed are replayed. One still in flight (scheduled,
no outcome yet) is left to the worker, which runs or retries it with the same keys;
writing it now would put into the database something the worker may not have written
yet, and skipping it loses nothing.

What Temporal never saw cannot come back from it: user accounts (dev's demo accounts
are recreated by the API at start; real ones come from a backup), catalogue versions
published through the API or CLI (the shipped ones are recorded again at start), the
acknowledgements of 督办 notices (they come back unacknowledged) and the audit rows of
actions outside cases and complaints. A case's or complaint's staff actions travel in the
inputs of its writes and come back with it; rows the API wrote itself (actions taken
before their workflows carried them) do not.
Workflows closed longer ago than the namespace's retention period are gone from
Temporal too. Timeliness figures are computed with the calendar given here, which
must be the worker's.
"""

from __future__ import annotations

import asyncio
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import Engine, func, select
from sqlalchemy.exc import IntegrityError
from sqlmodel import Session, SQLModel, col
from temporalio.api.enums.v1 import EventType as HistoryEventType
from temporalio.api.history.v1 import HistoryEvent
from temporalio.client import Client, WorkflowExecution, WorkflowHistory
from temporalio.service import RPCError

from activities.case_changes import apply_case_changes
from activities.complaints import apply_complaint_changes, apply_complaint_escalation, apply_complaint_projection
from activities.read_model import (
    apply_escalation,
    apply_notification,
    apply_projection,
    apply_supervision_notice,
    notification_key,
)
from domain.workcalendar import WorkingCalendar
from infra.case_registry import restore_registrations
from infra.timeliness_rollup import recompute_timeliness_rollup
from models.case import (
    ActivityName,
    CaseChanges,
    EscalationInput,
    NotificationInput,
    ProjectCaseInput,
    SupervisionNoticeInput,
    WriteResult,
)
from models.complaint import ComplaintActivityName, ComplaintChanges, ComplaintEscalationInput, ProjectComplaintInput
from models.tables import (
    CaseEventRecord,
    CaseNumberSequence,
    CaseRecord,
    CaseRegistration,
    ComplaintRecord,
    NotificationRecord,
    RatingRecord,
    SupervisionNotice,
    TaskRecord,
    TimelinessRollup,
)
from workflows.case.workflow import CaseWorkflow
from workflows.complaint.workflow import ComplaintWorkflow
from workflows.history import local_activity_outcome, replayed_local_writes

# The workflows that write the read model (a workflow's type is its class name).
REBUILD_QUERY = " OR ".join(f'WorkflowType="{workflow.__name__}"' for workflow in (CaseWorkflow, ComplaintWorkflow))

# Activities that write a whole change and record only its revision (WriteResult).
ONE_WRITE_ACTIVITIES = frozenset({ActivityName.WRITE_CASE_CHANGES, ComplaintActivityName.WRITE_COMPLAINT_CHANGES})

# Every read-model activity and the type of its one argument (a one-write activity: its result).
REPLAYED_ACTIVITIES: dict[str, type[Any]] = {
    ActivityName.WRITE_CASE_CHANGES: WriteResult,
    ComplaintActivityName.WRITE_COMPLAINT_CHANGES: WriteResult,
    ActivityName.PROJECT_CASE: ProjectCaseInput,
    ActivityName.SEND_NOTIFICATION: NotificationInput,
    ActivityName.ESCALATE_OVERDUE_STEP: EscalationInput,
    ActivityName.RECORD_SUPERVISION_NOTICE: SupervisionNoticeInput,
    ComplaintActivityName.PROJECT_COMPLAINT: ProjectComplaintInput,
    ComplaintActivityName.ESCALATE_OVERDUE_COMPLAINT: ComplaintEscalationInput,
}
# The argument of a scheduled (regular) activity: a one-write activity scheduled after its
# workflow task (WRITES_AFTER_TASK_PATCH) has the whole change as its input.
SCHEDULED_INPUTS: dict[str, type[Any]] = {
    **REPLAYED_ACTIVITIES,
    ActivityName.WRITE_CASE_CHANGES: CaseChanges,
    ComplaintActivityName.WRITE_COMPLAINT_CHANGES: ComplaintChanges,
}

# The tables these activities write, i.e. what a rebuild restores.
REBUILT_TABLES: tuple[type[SQLModel], ...] = (
    CaseRecord,
    TaskRecord,
    CaseEventRecord,
    RatingRecord,
    NotificationRecord,
    SupervisionNotice,
    ComplaintRecord,
    TimelinessRollup,
    CaseRegistration,
    CaseNumberSequence,
)

# What only the API writes, so only a backup can restore (said in every report).
NOT_IN_TEMPORAL_ZH = "用户账号、经接口发布的事项版本、督办签收记录、案件和投诉以外操作的审计日志"
NOT_IN_TEMPORAL = (
    "user accounts, catalogue versions published via the API/CLI, notice acknowledgements, "
    "the audit log of actions outside cases and complaints (their own actions are rebuilt with them)"
)

Progress = Callable[[int, int | None], None]
"""Called with (workflows done, workflows in all or None if unknown)."""

# Histories fetched at once; the writes themselves go one workflow at a time.
FETCH_CONCURRENCY = 8


@dataclass(frozen=True)
class RecordedWrite:
    """One completed read-model activity, as its workflow's history recorded it."""

    activity_type: str
    activity_id: str
    argument: Any
    started_at: datetime
    local: bool = False  # a local activity: its write is the result in a marker


@dataclass
class RecordedWorkflow:
    workflow_id: str
    run_id: str
    writes: list[RecordedWrite]
    in_flight: int


@dataclass(frozen=True)
class RebuildFailure:
    workflow_id: str
    run_id: str
    reason: str


@dataclass
class RebuildReport:
    workflows_seen: int = 0
    workflows_rebuilt: int = 0
    writes_replayed: Counter[str] = field(default_factory=Counter)
    # Scheduled but not completed: the worker writes them when it runs them.
    writes_in_flight: int = 0
    table_counts: dict[str, int] = field(default_factory=dict)
    failures: list[RebuildFailure] = field(default_factory=list)

    def summary(self) -> str:
        lines = [
            f"读模型已重建 read model rebuilt: {self.workflows_rebuilt}/{self.workflows_seen} workflows, "
            f"{len(self.failures)} failed",
            "  重放写入 writes replayed: "
            + (", ".join(f"{name} {count}" for name, count in sorted(self.writes_replayed.items())) or "none"),
            f"  进行中未重放 in flight, left to the worker: {self.writes_in_flight}",
            "  行数 rows: " + ", ".join(f"{table} {count}" for table, count in self.table_counts.items()),
            f"  无法从 Temporal 恢复 not in Temporal: {NOT_IN_TEMPORAL_ZH} ({NOT_IN_TEMPORAL})",
        ]
        lines += [f"  失败 failed: {f.workflow_id} (run {f.run_id}): {f.reason}" for f in self.failures]
        return "\n".join(lines)


async def rebuild_read_model(
    client: Client,
    engine: Engine,
    calendar: WorkingCalendar,
    progress: Progress | None = None,
    *,
    query: str = REBUILD_QUERY,
) -> RebuildReport:
    """Replay every case's and complaint's completed read-model writes into ``engine``.

    A workflow whose history cannot be read or decoded (a missing payload key, say)
    is reported and skipped; the others are rebuilt all the same.
    """
    report = RebuildReport()
    total = await _count(client, query)
    if progress is not None:
        progress(0, total)
    batch: list[WorkflowExecution] = []
    async for execution in client.list_workflows(query):
        batch.append(execution)
        if len(batch) == FETCH_CONCURRENCY:
            await _rebuild_batch(client, engine, calendar, batch, report, progress, total)
            batch = []
    if batch:
        await _rebuild_batch(client, engine, calendar, batch, report, progress, total)
    await asyncio.to_thread(recompute_rollup, engine)
    await asyncio.to_thread(restore_case_registrations, engine)
    report.table_counts = await asyncio.to_thread(count_rows, engine)
    return report


def recompute_rollup(engine: Engine) -> None:
    """The timeliness rollup from the rebuilt tasks, in one transaction. The replayed
    projections kept it already; recomputing it also mends one that drifted from the tasks."""
    with engine.begin() as connection:
        recompute_timeliness_rollup(connection)


def restore_case_registrations(engine: Engine) -> None:
    """Case numbers and subjects from the rebuilt cases, so numbering goes on where it was
    and a rebuilt case still stops a second application for its subject."""
    with Session(engine) as session:
        restore_registrations(session)
        session.commit()


def count_rows(engine: Engine) -> dict[str, int]:
    with Session(engine) as session:
        return {
            str(table.__tablename__): int(session.execute(select(func.count()).select_from(table)).scalar_one())
            for table in REBUILT_TABLES
        }


def holds_cases(engine: Engine) -> bool:
    with Session(engine) as session:
        return session.execute(select(col(CaseRecord.case_id)).limit(1)).first() is not None


async def _count(client: Client, query: str) -> int | None:
    try:
        return (await client.count_workflows(query)).count
    except RPCError:  # a server that cannot count still lists: the bar just has no end
        return None


async def _rebuild_batch(
    client: Client,
    engine: Engine,
    calendar: WorkingCalendar,
    batch: list[WorkflowExecution],
    report: RebuildReport,
    progress: Progress | None,
    total: int | None,
) -> None:
    recorded = await asyncio.gather(*(read_recorded_writes(client, e) for e in batch), return_exceptions=True)
    for execution, result in zip(batch, recorded, strict=True):
        report.workflows_seen += 1
        if isinstance(result, BaseException):
            report.failures.append(RebuildFailure(execution.id, execution.run_id or "", _reason(result)))
        else:
            failure = await asyncio.to_thread(_replay_workflow, engine, calendar, result, report)
            if failure is None:
                report.workflows_rebuilt += 1
            else:
                report.failures.append(failure)
        if progress is not None:
            progress(report.workflows_seen, total)


async def read_recorded_writes(client: Client, execution: WorkflowExecution) -> RecordedWorkflow:
    """The completed read-model writes of one workflow run, in the order they completed.

    A regular activity's write is its input (ActivityTaskScheduled); a local activity's
    is its result, which the read-model activities return for this purpose, in the
    marker that records it (workflows/kit/calls.py).
    """
    run_id = execution.run_id or ""
    handle = client.get_workflow_handle(execution.id, run_id=run_id)
    scheduled: dict[int, HistoryEvent] = {}
    started_at: dict[int, datetime] = {}
    ended: set[int] = set()
    writes: list[RecordedWrite] = []
    history = await handle.fetch_history()
    changes = iter(await _replayed_changes(client, history))
    for event in history.events:
        kind = event.event_type
        if kind == HistoryEventType.EVENT_TYPE_ACTIVITY_TASK_SCHEDULED:
            if event.activity_task_scheduled_event_attributes.activity_type.name in REPLAYED_ACTIVITIES:
                scheduled[event.event_id] = event
        elif kind == HistoryEventType.EVENT_TYPE_ACTIVITY_TASK_STARTED:
            started_at[event.activity_task_started_event_attributes.scheduled_event_id] = _time(event)
        elif kind == HistoryEventType.EVENT_TYPE_ACTIVITY_TASK_COMPLETED:
            scheduled_id = event.activity_task_completed_event_attributes.scheduled_event_id
            ended.add(scheduled_id)
            scheduled_event = scheduled.get(scheduled_id)
            if scheduled_event is None:
                continue  # not a read-model activity
            attributes = scheduled_event.activity_task_scheduled_event_attributes
            name = attributes.activity_type.name
            (argument,) = await client.data_converter.decode(attributes.input.payloads, [SCHEDULED_INPUTS[name]])
            writes.append(
                RecordedWrite(
                    activity_type=name,
                    activity_id=attributes.activity_id,
                    argument=argument,
                    started_at=started_at.get(scheduled_id, _time(event)),
                )
            )
        elif kind == HistoryEventType.EVENT_TYPE_ACTIVITY_TASK_FAILED:
            ended.add(event.activity_task_failed_event_attributes.scheduled_event_id)
        elif kind == HistoryEventType.EVENT_TYPE_ACTIVITY_TASK_TIMED_OUT:
            ended.add(event.activity_task_timed_out_event_attributes.scheduled_event_id)
        elif kind == HistoryEventType.EVENT_TYPE_ACTIVITY_TASK_CANCELED:
            ended.add(event.activity_task_canceled_event_attributes.scheduled_event_id)
        elif kind == HistoryEventType.EVENT_TYPE_MARKER_RECORDED:
            local_write = await _local_activity_write(client, event)
            if local_write is not None and local_write.activity_type in ONE_WRITE_ACTIVITIES:
                # The marker holds the revision; the change itself comes from the replay.
                local_write = replace(local_write, argument=next(changes)[1])
            if local_write is not None:
                writes.append(local_write)
    # Scheduled with no outcome yet: left to the worker.
    in_flight = len(set(scheduled) - ended)
    return RecordedWorkflow(execution.id, run_id, writes, in_flight)


async def _replayed_changes(client: Client, history: WorkflowHistory) -> list[tuple[str, Any]]:
    """What a workflow's one-write-per-change activities wrote, in order (none for older runs)."""
    for event in history.events:
        if event.event_type == HistoryEventType.EVENT_TYPE_MARKER_RECORDED:
            outcome = await local_activity_outcome(client, event, REPLAYED_ACTIVITIES)
            if outcome is not None and outcome.activity_type in ONE_WRITE_ACTIVITIES:
                return await replayed_local_writes(history, client.data_converter, ONE_WRITE_ACTIVITIES)
    return []


async def _local_activity_write(client: Client, event: HistoryEvent) -> RecordedWrite | None:
    outcome = await local_activity_outcome(client, event, REPLAYED_ACTIVITIES)
    if outcome is None:
        return None
    return RecordedWrite(
        activity_type=outcome.activity_type,
        activity_id=outcome.activity_id,
        argument=outcome.result,
        started_at=_time(event),
        local=True,
    )


def _replay_workflow(
    engine: Engine, calendar: WorkingCalendar, recorded: RecordedWorkflow, report: RebuildReport
) -> RebuildFailure | None:
    """Apply one workflow's writes in order; stop at the first that cannot be applied,
    since a later projection may rely on an earlier one."""
    replayed: Counter[str] = Counter()
    for write in recorded.writes:
        try:
            _apply_with_retry(engine, calendar, recorded.run_id, write)
        except Exception as error:
            report.writes_replayed.update(replayed)
            return RebuildFailure(recorded.workflow_id, recorded.run_id, f"{write.activity_type}: {_reason(error)}")
        replayed[write.activity_type] += 1
    report.writes_replayed.update(replayed)
    report.writes_in_flight += recorded.in_flight
    return None


def _apply_with_retry(engine: Engine, calendar: WorkingCalendar, run_id: str, write: RecordedWrite) -> None:
    try:
        apply_write(engine, calendar, run_id, write)
    except IntegrityError:
        # A worker still running wrote the same row first; the write is now a no-op.
        apply_write(engine, calendar, run_id, write)


def apply_write(engine: Engine, calendar: WorkingCalendar, run_id: str, write: RecordedWrite) -> None:
    """One write, in a transaction of its own as the activity made it."""
    argument = write.argument
    with Session(engine) as session:
        match write.activity_type:
            case ActivityName.WRITE_CASE_CHANGES:
                apply_case_changes(session, argument, calendar)
            case ActivityName.PROJECT_CASE:
                apply_projection(session, argument, calendar)
            case ActivityName.SEND_NOTIFICATION:
                key = notification_key(run_id, write.activity_id, local=write.local)
                apply_notification(session, argument, key, write.started_at)
            case ActivityName.ESCALATE_OVERDUE_STEP:
                apply_escalation(session, argument)
            case ActivityName.RECORD_SUPERVISION_NOTICE:
                apply_supervision_notice(session, argument)
            case ComplaintActivityName.WRITE_COMPLAINT_CHANGES:
                apply_complaint_changes(session, argument)
            case ComplaintActivityName.PROJECT_COMPLAINT:
                apply_complaint_projection(session, argument)
            case ComplaintActivityName.ESCALATE_OVERDUE_COMPLAINT:
                apply_complaint_escalation(session, argument)
            case _:
                raise ValueError(f"not a read-model activity: {write.activity_type}")
        session.commit()


def _time(event: HistoryEvent) -> datetime:
    return event.event_time.ToDatetime(tzinfo=UTC)


def _reason(error: BaseException) -> str:
    return f"{type(error).__name__}: {error}"[:500]

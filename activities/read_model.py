"""Activities that write the read model: the case projection, notifications and 督办.

Each write is idempotent (revision-gated upserts, keys derived from the activity
or the event), so a retried activity never duplicates a task, event or notice.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import Engine, inspect, select
from sqlmodel import Session, col
from temporalio import activity

from activities.notice_delivery import IssuedNotice, queue_unit_sms_from_case_row
from domain.redaction import mask_personal_data
from domain.timeliness import StepTimeliness, step_timeliness
from domain.workcalendar import SHANGHAI, WorkingCalendar
from infra.db import insert_new, prepared_statement, write_session
from infra.timeliness_rollup import count_newly_finished, finished_steps
from models.case import (
    ActivityName,
    AuditEntry,
    CaseEvent,
    CaseSnapshot,
    EscalationInput,
    EventType,
    NotificationInput,
    ProjectCaseInput,
    StepStatus,
    SupervisionNoticeInput,
)
from models.tables import (
    AuditRecord,
    CaseEventRecord,
    CaseRecord,
    InboxVersion,
    NotificationRecord,
    RatingRecord,
    SupervisionNotice,
    TaskRecord,
)

logger = logging.getLogger(__name__)


def apply_projection(session: Session, projection: ProjectCaseInput, calendar: WorkingCalendar) -> None:
    """Write one case's events and, unless a newer state is stored, its state."""
    snapshot = projection.snapshot
    known = set(
        session.execute(
            select(col(CaseEventRecord.seq)).where(col(CaseEventRecord.case_id) == snapshot.case_id)
        ).scalars()
    )
    for event in projection.events:
        if event.seq in known:
            continue
        session.add(
            CaseEventRecord(
                case_id=snapshot.case_id,
                seq=event.seq,
                at=event.at,
                type=event.type.value,
                step=event.step,
                department=event.department,
                actor=event.actor,
                due_at=event.due_at,
                detail=event.detail,
            )
        )
    record = session.get(CaseRecord, snapshot.case_id)
    if record is not None and record.revision >= snapshot.revision:
        return
    if record is None:
        record = CaseRecord(
            case_id=snapshot.case_id,
            thing=snapshot.thing,
            catalogue_version=snapshot.catalogue_version,
            channel=snapshot.channel,
            status=snapshot.status.value,
            owner=snapshot.owner,
            submitted_by=snapshot.submitted_by,
            accepting_unit=snapshot.accepting_unit,
            submitted_at=snapshot.submitted_at,
        )
    record.status = snapshot.status.value
    record.revision = snapshot.revision
    record.rating_closes_at = snapshot.rating_closes_at
    record.rating_open = snapshot.rating_open
    for rating in snapshot.ratings:
        if session.get(RatingRecord, (snapshot.case_id, rating.step or "")) is None:
            session.add(
                RatingRecord(
                    case_id=snapshot.case_id,
                    step=rating.step or "",
                    thing=snapshot.thing,
                    department=rating.department,
                    score=rating.score,
                    comment=rating.comment,
                    rated_at=rating.rated_at,
                )
            )
    record.snapshot = snapshot.model_dump(mode="json")
    session.add(record)
    session.flush()
    insert_new(session, AuditRecord, [audit_row(entry, snapshot.case_id) for entry in projection.audit])
    # Inbox change feed: the departments whose tasks this write changes get their version bumped.
    with inbox_versions_bumped(session, snapshot.case_id):
        _project_tasks(session, snapshot, calendar)


def _case_events(session: Session, case_id: str) -> list[CaseEvent]:
    rows = session.execute(
        select(CaseEventRecord).where(col(CaseEventRecord.case_id) == case_id).order_by(col(CaseEventRecord.seq))
    ).scalars()
    return [
        CaseEvent(
            seq=row.seq,
            at=row.at,
            type=EventType(row.type),
            step=row.step,
            department=row.department,
            actor=row.actor,
            due_at=row.due_at,
            detail=row.detail,
        )
        for row in rows
    ]


def _project_tasks(session: Session, snapshot: CaseSnapshot, calendar: WorkingCalendar) -> None:
    events = _case_events(session, snapshot.case_id)
    now = events[-1].at if events else snapshot.submitted_at
    # Timeliness rollup (infra/timeliness_rollup.py): the case's done steps before this write,
    # its task rows locked, so that the steps it finishes are counted once, at the end.
    done_before = finished_steps(session, snapshot.case_id, lock=True)
    for step in snapshot.steps:
        if step.status == StepStatus.PENDING:
            continue
        task_id = task_id_for(snapshot.case_id, step.step)
        task = session.get(TaskRecord, task_id) or TaskRecord(
            task_id=task_id,
            case_id=snapshot.case_id,
            thing=snapshot.thing,
            step=step.step,
            department=step.department,
            status=step.status.value,
        )
        task.status = step.status.value
        task.unit_code = step.unit.code if step.unit else None  # moved by a 转办
        task.extension_days = step.extension_request.working_days if step.extension_request else None
        task.assignee = step.assignee
        task.opened_at = step.opened_at
        task.due_at = step.due_at
        task.completed_at = step.completed_at
        task.provisional = step.provisional
        task.overdue = step.overdue
        task.escalations = step.escalations
        task.roles = ",".join(step.actors)
        task.warning_at = step.warning_at
        _apply_timeliness(task, step_timeliness(step.step, events, calendar, now))
        session.add(task)
    count_newly_finished(session, snapshot.case_id, done_before)  # timeliness rollup, same transaction


def _apply_timeliness(task: TaskRecord, timeliness: StepTimeliness) -> None:
    """Figures for finished steps only: an open step's are measured against "now" by queries."""
    if timeliness.completed_at is None:
        return
    task.working_hours_used = timeliness.working_hours_used
    task.paused_working_hours = timeliness.paused_working_hours
    task.on_time = timeliness.on_time
    task.hours_bucket = round((timeliness.working_hours_used or 0.0) * 10)
    task.completed_on = timeliness.completed_at.astimezone(SHANGHAI).date().isoformat()


# --- inbox change feed -----------------------------------------------------------------------
# Each department's InboxVersion row counts the changes to its tasks. It is bumped in the
# transaction that writes them, so a reader that sees the new version also sees the new
# tasks; GET /tasks derives its ETag from it and GET /tasks/events watches it.


@contextmanager
def inbox_versions_bumped(session: Session, case_id: str) -> Iterator[None]:
    """Around a write of ``case_id``'s tasks: bump the versions of the departments whose
    tasks it inserted, changed (any column) or removed, and of no other."""
    before = _case_task_rows(session, case_id)
    yield
    session.flush()
    after = _case_task_rows(session, case_id)
    changed = {row[0] for task, row in after.items() if before.get(task) != row}
    changed |= {row[0] for task, row in before.items() if after.get(task) != row}
    bump_inbox_versions(session, changed)


def _case_task_rows(session: Session, case_id: str) -> dict[str, tuple[Any, ...]]:
    """Every column of the case's task rows, the department first, by task id."""
    columns = inspect(TaskRecord).columns
    ordered = [columns["department"], *(column for column in columns if column.key != "department")]
    rows = session.execute(select(*ordered).where(columns["case_id"] == case_id))
    return {row.task_id: tuple(row) for row in rows}


def bump_inbox_versions(session: Session, departments: set[str]) -> None:
    """Add one to each department's inbox version (a new department starts at 1), in one
    INSERT … ON CONFLICT DO UPDATE statement for all of them.

    Rows are written in department order, so two transactions bumping the same
    departments lock them in the same order and cannot deadlock (PostgreSQL).
    """
    if not departments:
        return
    now = datetime.now(UTC)
    session.connection().execute(
        prepared_statement(session, _inbox_version_bump),
        [{"department": department, "version": 1, "changed_at": now} for department in sorted(departments)],
    )


def _inbox_version_bump(insert: Any) -> Any:
    statement = insert(InboxVersion)
    return statement.on_conflict_do_update(
        index_elements=[col(InboxVersion.department)],
        set_={"version": col(InboxVersion.version) + 1, "changed_at": statement.excluded.changed_at},
    )


def task_id_for(case_id: str, step: str) -> str:
    return f"{case_id}:{step}"


def notification_key(workflow_run_id: str | None, activity_id: str, *, local: bool = False) -> str:
    """One row per scheduled activity: a retry, or a rebuild, finds its own row and stops.
    Local and regular activities number their ids separately, hence the prefix."""
    return f"{workflow_run_id}:{'local-' if local else ''}{activity_id}"


def apply_notification(
    session: Session, notification: NotificationInput, notification_id: str, fallback_at: datetime
) -> bool:
    """Queue a notification unless its row exists; True if it was written.

    ``fallback_at`` dates inputs recorded before notifications carried workflow time.
    """
    if session.get(NotificationRecord, notification_id) is not None:
        return False
    session.add(
        NotificationRecord(
            notification_id=notification_id,
            case_id=notification.case_id,
            kind=notification.kind,
            recipient=notification.recipient,
            step=notification.step,
            message_zh=notification.message_zh,
            created_at=notification.at or fallback_at,
        )
    )
    return True


def escalation_notice_id(escalation: EscalationInput) -> str:
    """The key of an automatic 督办: one row (and one SMS to the unit) per escalation."""
    return f"{escalation.case_id}:{escalation.step}:auto:{escalation.sequence}"


def manual_notice_id(notice: SupervisionNoticeInput) -> str:
    """The key of a supervisor's 督办 or 催办."""
    return f"{notice.case_id}:{notice.step}:{notice.kind}:{notice.sequence}"


def apply_supervision_notice(session: Session, notice: SupervisionNoticeInput) -> bool:
    """A manual 督办 goes to the department's notices; a 催办 goes to the assignee. True if a
    督办 was written now."""
    notice_id = manual_notice_id(notice)
    if notice.kind == "notice":
        if session.get(SupervisionNotice, notice_id) is None:
            session.add(
                SupervisionNotice(
                    notice_id=notice_id,
                    case_id=notice.case_id,
                    step=notice.step,
                    department=notice.department,
                    sequence=notice.sequence,
                    origin="manual",
                    message_zh=notice.message_zh,
                    due_at=notice.due_at,
                    issued_at=notice.at,
                    issued_by=notice.issued_by,
                )
            )
            return True
    elif session.get(NotificationRecord, notice_id) is None:
        session.add(
            NotificationRecord(
                notification_id=notice_id,
                case_id=notice.case_id,
                kind="urge",
                recipient=notice.assignee,
                step=notice.step,
                message_zh=f"催办：{notice.message_zh}",
                created_at=notice.at,
            )
        )
    return False


def apply_escalation(session: Session, escalation: EscalationInput) -> bool:
    """The automatic 督办 of an overdue step and word to the supervisor; True if written."""
    notice_id = escalation_notice_id(escalation)
    if session.get(SupervisionNotice, notice_id) is not None:
        return False
    session.add(
        SupervisionNotice(
            notice_id=notice_id,
            case_id=escalation.case_id,
            step=escalation.step,
            department=escalation.department,
            sequence=escalation.sequence,
            origin="automatic",
            message_zh=f"督办通知：案件{escalation.case_id}的环节{escalation.step}已超过办理时限，请立即办理。",
            due_at=escalation.due_at,
            issued_at=escalation.at,
        )
    )
    session.add(
        NotificationRecord(
            notification_id=f"{notice_id}:supervisor",
            case_id=escalation.case_id,
            kind="overdue_escalation",
            recipient="supervisor",
            step=escalation.step,
            message_zh=f"案件{escalation.case_id}环节{escalation.step}超期（第{escalation.sequence}次督办）。",
            created_at=escalation.at,
        )
    )
    return True


class ReadModelActivities:
    """The activities the worker registers; each writes through one ``apply_*`` function
    above, which activities/rebuild.py also calls to rebuild the read model."""

    def __init__(self, engine: Engine, calendar: WorkingCalendar) -> None:
        self._engine = engine
        self._calendar = calendar

    @activity.defn(name=ActivityName.PROJECT_CASE)
    def project_case(self, projection: ProjectCaseInput) -> ProjectCaseInput:
        with write_session(self._engine) as session:
            apply_projection(session, projection, self._calendar)
        # Returned so that, run as a local activity, the write is recorded in history
        # (a local activity's marker holds its result, not its input): `rebuild` reads it.
        return projection

    @activity.defn(name=ActivityName.SEND_NOTIFICATION)
    def send_notification(self, notification: NotificationInput) -> NotificationInput:
        info = activity.info()
        notification_id = notification_key(info.workflow_run_id, info.activity_id, local=info.is_local)
        with write_session(self._engine) as session:
            written = apply_notification(session, notification, notification_id, datetime.now(UTC))
        if written:
            logger.info("notification %s queued for case %s", notification.kind, notification.case_id)
        return notification  # recorded in history when run locally, as project_case's is

    # The 督办 of these two is texted to its step's unit here, in the same transaction, and not in
    # apply_*: a rebuild replays those and must not text old 督办 again.

    @activity.defn(name=ActivityName.RECORD_SUPERVISION_NOTICE)
    def record_supervision_notice(self, notice: SupervisionNoticeInput) -> None:
        with write_session(self._engine) as session:
            if apply_supervision_notice(session, notice):
                issued = IssuedNotice(manual_notice_id(notice), notice.case_id, notice.step, manual=True)
                queue_unit_sms_from_case_row(session, issued, datetime.now(UTC))

    @activity.defn(name=ActivityName.ESCALATE_OVERDUE_STEP)
    def escalate_overdue_step(self, escalation: EscalationInput) -> None:
        with write_session(self._engine) as session:
            written = apply_escalation(session, escalation)
            if written:
                issued = IssuedNotice(escalation_notice_id(escalation), escalation.case_id, escalation.step)
                queue_unit_sms_from_case_row(session, issued, datetime.now(UTC))
        if written:
            logger.warning(
                "step overdue: case %s step %s escalation %d", escalation.case_id, escalation.step, escalation.sequence
            )


# --- rows (activities/case_changes.py writes with these too) ----------------------------------


def audit_row(entry: AuditEntry, case_id: str | None) -> dict[str, Any]:
    """The audit-log row of a staff action (``case_id`` None: a complaint about a department)."""
    return {
        "at": entry.at,
        "actor": entry.actor.username,
        "role": entry.actor.role,
        "unit": entry.actor.unit,
        "unit_code": entry.actor.unit_code,
        "action": entry.action,
        "case_id": case_id,
        "target": entry.target,
        "detail": mask_personal_data(entry.detail),
        "request_key": entry.request_key,
    }

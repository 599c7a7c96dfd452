"""Activities that write the read model: the case projection, notifications and 督办.

Each write is idempotent (revision-gated upserts, keys derived from the activity
or the event), so a retried activity never duplicates a task, event or notice.
"""

from __future__ import annotations

import logging
from datetime import UTC, datetime

from sqlalchemy import Engine, select
from sqlmodel import Session, col
from temporalio import activity

from models.case import (
    ActivityName,
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
    CaseEventRecord,
    CaseRecord,
    NotificationRecord,
    RatingRecord,
    SupervisionNotice,
    TaskRecord,
)
from models.timeliness import StepTimeliness, step_timeliness
from models.workcalendar import SHANGHAI, WorkingCalendar

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


def _apply_timeliness(task: TaskRecord, timeliness: StepTimeliness) -> None:
    """Figures for finished steps only: an open step's are measured against "now" by queries."""
    if timeliness.completed_at is None:
        return
    task.working_hours_used = timeliness.working_hours_used
    task.paused_working_hours = timeliness.paused_working_hours
    task.on_time = timeliness.on_time
    task.hours_bucket = round((timeliness.working_hours_used or 0.0) * 10)
    task.completed_on = timeliness.completed_at.astimezone(SHANGHAI).date().isoformat()


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


def apply_supervision_notice(session: Session, notice: SupervisionNoticeInput) -> None:
    """A manual 督办 goes to the department's notices; a 催办 goes to the assignee."""
    notice_id = f"{notice.case_id}:{notice.step}:{notice.kind}:{notice.sequence}"
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


def apply_escalation(session: Session, escalation: EscalationInput) -> bool:
    """The automatic 督办 of an overdue step and word to the supervisor; True if written."""
    notice_id = f"{escalation.case_id}:{escalation.step}:auto:{escalation.sequence}"
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
        with Session(self._engine) as session:
            apply_projection(session, projection, self._calendar)
            session.commit()
        # Returned so that, run as a local activity, the write is recorded in history
        # (a local activity's marker holds its result, not its input): `rebuild` reads it.
        return projection

    @activity.defn(name=ActivityName.SEND_NOTIFICATION)
    def send_notification(self, notification: NotificationInput) -> NotificationInput:
        info = activity.info()
        notification_id = notification_key(info.workflow_run_id, info.activity_id, local=info.is_local)
        with Session(self._engine) as session:
            written = apply_notification(session, notification, notification_id, datetime.now(UTC))
            session.commit()
        if written:
            logger.info("notification %s queued for case %s", notification.kind, notification.case_id)
        return notification  # recorded in history when run locally, as project_case's is

    @activity.defn(name=ActivityName.RECORD_SUPERVISION_NOTICE)
    def record_supervision_notice(self, notice: SupervisionNoticeInput) -> None:
        with Session(self._engine) as session:
            apply_supervision_notice(session, notice)
            session.commit()

    @activity.defn(name=ActivityName.ESCALATE_OVERDUE_STEP)
    def escalate_overdue_step(self, escalation: EscalationInput) -> None:
        with Session(self._engine) as session:
            written = apply_escalation(session, escalation)
            session.commit()
        if written:
            logger.warning(
                "step overdue: case %s step %s escalation %d", escalation.case_id, escalation.step, escalation.sequence
            )

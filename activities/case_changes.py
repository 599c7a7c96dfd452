"""One write per change: everything a workflow task of a case changed, in one transaction.

The case row (guarded by its revision), the new events, the task rows, new ratings, the
notifications and 督办 the change causes, and the audit rows of the staff actions that
caused it: set-based statements (INSERT … ON CONFLICT), no re-reading of the case's events
and no per-row lookups. The audit row is therefore written exactly when the change it
records is. A retried or replayed write finds its revision already stored and changes
nothing; ``onething rebuild`` applies the same changes again in order (activities/rebuild.py).
"""

from __future__ import annotations

import logging
from datetime import UTC, datetime
from functools import partial
from typing import Any

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from sqlalchemy import Engine, select
from sqlmodel import Session, col
from temporalio import activity

from activities.licences import issue_licences
from activities.notice_delivery import FollowLink, IssuedNotice, queue_applicant_sms, queue_unit_sms
from activities.read_model import (
    audit_row,
    bump_inbox_versions,
    escalation_notice_id,
    manual_notice_id,
    task_id_for,
)
from domain.timeliness import step_timeliness
from domain.workcalendar import SHANGHAI, WorkingCalendar
from infra.db import insert_new, prepared_statement, write_session
from infra.timeliness_rollup import FinishedStep, add_to_timeliness_rollup
from models.case import (
    ActivityName,
    CaseChanges,
    CaseSnapshot,
    EscalationInput,
    NotificationInput,
    StepStatus,
    SupervisionNoticeInput,
    WriteResult,
)
from models.tables import (
    AuditRecord,
    CaseEventRecord,
    CaseRecord,
    NotificationRecord,
    RatingRecord,
    SupervisionNotice,
    TaskRecord,
)

logger = logging.getLogger(__name__)


def apply_case_changes(session: Session, changes: CaseChanges, calendar: WorkingCalendar) -> bool:
    """Write one change of a case; False (and nothing written) when its revision is stored already."""
    snapshot = changes.snapshot
    if not _upsert_case(session, snapshot, changes.form, changes.applicant_key):
        return False
    insert_new(
        session,
        CaseEventRecord,
        [
            {
                "case_id": snapshot.case_id,
                "seq": event.seq,
                "at": event.at,
                "type": event.type.value,
                "step": event.step,
                "department": event.department,
                "actor": event.actor,
                "due_at": event.due_at,
                "detail": event.detail,
            }
            for event in changes.events
        ],
    )
    departments = _upsert_tasks(session, snapshot, changes, calendar)
    insert_new(
        session,
        RatingRecord,
        [
            {
                "case_id": snapshot.case_id,
                "step": rating.step or "",
                "thing": snapshot.thing,
                "department": rating.department,
                "score": rating.score,
                "comment": rating.comment,
                "rated_at": rating.rated_at,
            }
            for rating in snapshot.ratings
        ],
    )
    notifications = [notification_row(n) for n in changes.notifications]
    notices: list[dict[str, Any]] = []
    for escalation in changes.escalations:
        notice, word_to_supervisor = escalation_rows(escalation)
        notices.append(notice)
        notifications.append(word_to_supervisor)
    for manual in changes.supervision_notices:
        if manual.kind == "notice":
            notices.append(manual_notice_row(manual))
        else:
            notifications.append(urge_row(manual))
    insert_new(session, NotificationRecord, notifications)
    insert_new(session, SupervisionNotice, notices)
    insert_new(session, AuditRecord, [audit_row(entry, snapshot.case_id) for entry in changes.audit])
    # A new 督办 shows as a badge in its department's inbox: that inbox changed too.
    bump_inbox_versions(session, departments | {notice["department"] for notice in notices})
    return True


def _upsert_case(
    session: Session, snapshot: CaseSnapshot, form: dict[str, Any] | None, applicant_key: str | None
) -> bool:
    """Insert or update the case row unless it holds this revision or a newer one. The
    application (``form``) comes with the first write only, so later ones leave it be."""
    applicant = (form or {}).get("applicant")
    values = {
        "case_id": snapshot.case_id,
        "thing": snapshot.thing,
        "catalogue_version": snapshot.catalogue_version,
        "channel": snapshot.channel,
        "status": snapshot.status.value,
        "owner": snapshot.owner,
        "submitted_by": snapshot.submitted_by,
        "accepting_unit": snapshot.accepting_unit,
        "accepting_unit_code": snapshot.accepting_unit_code,
        "submitted_at": snapshot.submitted_at,
        "revision": snapshot.revision,
        "snapshot": snapshot.model_dump(mode="json"),
        "rating_closes_at": snapshot.rating_closes_at,
        "rating_open": snapshot.rating_open,
        "case_no": snapshot.case_no,
        "applicant_name": applicant.get("name") if isinstance(applicant, dict) else None,
        "form": form,
        "applicant_key": applicant_key,
    }
    result = session.connection().execute(prepared_statement(session, _case_upsert), values)
    # A row comes back only if one was inserted or updated (rowcount is unknown on psycopg).
    return result.first() is not None


def _upsert_tasks(
    session: Session, snapshot: CaseSnapshot, changes: CaseChanges, calendar: WorkingCalendar
) -> set[str]:
    """Every opened step's task row, the steps finished now with their timeliness figures,
    and those steps' place in the supervision rollup. Returns the departments whose inbox changed."""
    figures = _timeliness_of_steps_finished_now(snapshot, changes, calendar)
    rows: list[dict[str, Any]] = []
    finished_rows: list[dict[str, Any]] = []
    for step in snapshot.steps:
        if step.status == StepStatus.PENDING:
            continue
        row = {
            "task_id": task_id_for(snapshot.case_id, step.step),
            "case_id": snapshot.case_id,
            "thing": snapshot.thing,
            "step": step.step,
            "department": step.department,
            "unit_code": step.unit.code if step.unit else None,
            "status": step.status.value,
            "extension_days": step.extension_request.working_days if step.extension_request else None,
            "assignee": step.assignee,
            "opened_at": step.opened_at,
            "due_at": step.due_at,
            "completed_at": step.completed_at,
            "provisional": step.provisional,
            "overdue": step.overdue,
            "escalations": step.escalations,
            "roles": ",".join(step.actors),
            "warning_at": step.warning_at,
        }
        if step.step in figures:
            finished_rows.append(row | figures[step.step])
        else:
            rows.append(row)
    if rows:
        session.connection().execute(prepared_statement(session, _task_upsert), rows)
    if finished_rows:
        session.connection().execute(prepared_statement(session, _finished_task_upsert), finished_rows)
    add_to_timeliness_rollup(
        session,
        [
            FinishedStep(
                snapshot.thing,
                step.step,
                step.department,
                figures[step.step]["completed_on"],
                figures[step.step]["hours_bucket"],
                figures[step.step]["on_time"],
                step.unit.division_code if step.unit else None,
            )
            for step in snapshot.steps
            if step.step in figures and step.status == StepStatus.DONE
        ],
    )
    touched = {event.step for event in changes.events if event.step}
    return {step.department for step in snapshot.steps if step.step in touched}


def _timeliness_of_steps_finished_now(
    snapshot: CaseSnapshot, changes: CaseChanges, calendar: WorkingCalendar
) -> dict[str, dict[str, Any]]:
    """The timeliness columns of each step this change finished, by step."""
    finished_now = {event.step for event in changes.finished_step_events if event.step}
    if not finished_now:
        return {}
    now = changes.events[-1].at if changes.events else snapshot.submitted_at
    columns: dict[str, dict[str, Any]] = {}
    for step in finished_now:
        figures = step_timeliness(step, changes.finished_step_events, calendar, now)
        if figures.completed_at is None:
            continue
        hours = figures.working_hours_used or 0.0
        columns[step] = {
            "working_hours_used": figures.working_hours_used,
            "paused_working_hours": figures.paused_working_hours,
            "on_time": figures.on_time,
            "hours_bucket": round(hours * 10),
            "completed_on": figures.completed_at.astimezone(SHANGHAI).date().isoformat(),
        }
    return columns


# --- statements, built once per dialect (building one costs more than running it) ---------------

_TASK_COLUMNS_SET = (
    "department",
    "unit_code",
    "status",
    "extension_days",
    "assignee",
    "opened_at",
    "due_at",
    "completed_at",
    "provisional",
    "overdue",
    "escalations",
    "roles",
    "warning_at",
)


def _case_upsert(insert: Any) -> Any:
    """The case row unless the stored one holds this revision or a newer one; RETURNING
    tells whether it was written."""
    statement = insert(CaseRecord)
    changing = ("status", "revision", "snapshot", "rating_closes_at", "rating_open", "owner")
    return statement.on_conflict_do_update(
        index_elements=["case_id"],
        set_={name: statement.excluded[name] for name in changing},
        where=col(CaseRecord.revision) < statement.excluded.revision,
    ).returning(col(CaseRecord.revision))


_TIMELINESS_COLUMNS = ("working_hours_used", "paused_working_hours", "on_time", "hours_bucket", "completed_on")


def _task_upsert(insert: Any, changing: tuple[str, ...] = _TASK_COLUMNS_SET) -> Any:
    statement = insert(TaskRecord)
    return statement.on_conflict_do_update(
        index_elements=["task_id"], set_={name: statement.excluded[name] for name in changing}
    )


# A task finished by this change, with its timeliness figures.
_finished_task_upsert = partial(_task_upsert, changing=_TASK_COLUMNS_SET + _TIMELINESS_COLUMNS)


# --- rows -------------------------------------------------------------------------------------


def notification_row(notification: NotificationInput) -> dict[str, Any]:
    return {
        "notification_id": notification.notification_id,
        "case_id": notification.case_id,
        "kind": notification.kind,
        "recipient": notification.recipient,
        "step": notification.step,
        "message_zh": notification.message_zh,
        "created_at": notification.at,
    }


def escalation_rows(escalation: EscalationInput) -> tuple[dict[str, Any], dict[str, Any]]:
    """The automatic 督办 of an overdue step, and word of it to the supervisors."""
    notice_id = escalation_notice_id(escalation)
    notice = {
        "notice_id": notice_id,
        "case_id": escalation.case_id,
        "step": escalation.step,
        "department": escalation.department,
        "sequence": escalation.sequence,
        "origin": "automatic",
        "message_zh": f"督办通知：案件{escalation.case_id}的环节{escalation.step}已超过办理时限，请立即办理。",
        "due_at": escalation.due_at,
        "issued_at": escalation.at,
        "issued_by": "system",
    }
    word = {
        "notification_id": f"{notice_id}:supervisor",
        "case_id": escalation.case_id,
        "kind": "overdue_escalation",
        "recipient": "supervisor",
        "step": escalation.step,
        "message_zh": f"案件{escalation.case_id}环节{escalation.step}超期（第{escalation.sequence}次督办）。",
        "created_at": escalation.at,
    }
    return notice, word


def manual_notice_row(notice: SupervisionNoticeInput) -> dict[str, Any]:
    """A supervisor's 督办 to the step's department."""
    return {
        "notice_id": manual_notice_id(notice),
        "case_id": notice.case_id,
        "step": notice.step,
        "department": notice.department,
        "sequence": notice.sequence,
        "origin": "manual",
        "message_zh": notice.message_zh,
        "due_at": notice.due_at,
        "issued_at": notice.at,
        "issued_by": notice.issued_by,
    }


def urge_row(notice: SupervisionNoticeInput) -> dict[str, Any]:
    """A supervisor's 催办 goes to the assignee."""
    return {
        "notification_id": manual_notice_id(notice),
        "case_id": notice.case_id,
        "kind": "urge",
        "recipient": notice.assignee,
        "step": notice.step,
        "message_zh": f"催办：{notice.message_zh}",
        "created_at": notice.at,
    }


class CaseChangeActivities:
    """The one write a case makes per workflow task (run as a local activity)."""

    def __init__(
        self,
        engine: Engine,
        calendar: WorkingCalendar,
        licence_key: Ed25519PrivateKey | None = None,
        follow_link: FollowLink | None = None,
    ) -> None:
        self._engine = engine
        self._calendar = calendar
        self._licence_key = licence_key  # signs the electronic licences steps issue; None: none issued
        self._follow_link = follow_link  # the signed link a walk-in without an account is texted

    @activity.defn(name=ActivityName.WRITE_CASE_CHANGES)
    def write_case_changes(self, changes: CaseChanges) -> WriteResult:
        with write_session(self._engine) as session:
            written = apply_case_changes(session, changes, self._calendar)
            if written:
                # The applicant's SMS, the 督办 texted to their steps' units and the licences of
                # the steps just completed, in the change's transaction. Here and not in
                # apply_case_changes: a rebuild replays that, and must neither text old notices
                # again nor issue licences again.
                now = datetime.now(UTC)
                queue_applicant_sms(session, changes, now, self._follow_link)
                queue_unit_sms(session, changes.snapshot, issued_notices(changes), now)
                if self._licence_key is not None:
                    issue_licences(session, changes, _case_form(session, changes), self._licence_key, now)
        for escalation in changes.escalations if written else []:
            logger.warning(
                "step overdue: case %s step %s escalation %d", escalation.case_id, escalation.step, escalation.sequence
            )
        return WriteResult(revision=changes.snapshot.revision)


def issued_notices(changes: CaseChanges) -> list[IssuedNotice]:
    """The change's 督办 of steps, automatic and a supervisor's (a 催办 goes to a person, not a unit)."""
    issued = [IssuedNotice(escalation_notice_id(e), e.case_id, e.step) for e in changes.escalations]
    issued += [
        IssuedNotice(manual_notice_id(notice), notice.case_id, notice.step, manual=True)
        for notice in changes.supervision_notices
        if notice.kind == "notice"
    ]
    return issued


def _case_form(session: Session, changes: CaseChanges) -> dict[str, Any] | None:
    """The application: with the case's first write, else from its row."""
    if changes.form is not None:
        return changes.form
    form: dict[str, Any] | None = session.execute(
        select(col(CaseRecord.form)).where(col(CaseRecord.case_id) == changes.snapshot.case_id)
    ).scalar_one_or_none()
    return form

"""Activities that write the complaints' read model: the projection, the 督办 and the
audit rows of the staff actions on a complaint.

Each write is idempotent (a revision-gated upsert; notice keys derived from the
complaint and the escalation's sequence), so a retried activity never duplicates
a row. A staff action's audit row travels with the write of the revision that records
the action and is inserted only if that revision is newly written, in its transaction:
the log holds the row exactly when the change happened, once.
"""

from __future__ import annotations

import logging

from sqlalchemy import Engine
from sqlmodel import Session
from temporalio import activity

from activities.read_model import audit_row
from domain.workcalendar import SHANGHAI
from infra.db import insert_new, write_session
from models.case import WriteResult
from models.complaint import (
    ANSWER_CLOCK,
    SUPERVISION_ORIGIN,
    ComplaintActivityName,
    ComplaintChanges,
    ComplaintEscalationInput,
    ProjectComplaintInput,
)
from models.tables import AuditRecord, ComplaintRecord, NotificationRecord, SupervisionNotice

logger = logging.getLogger(__name__)


def apply_complaint_projection(session: Session, projection: ProjectComplaintInput) -> bool:
    """Write the complaint's state, and the audit rows of the actions it records; False
    (nothing written) when this revision or a newer one is stored."""
    snapshot = projection.snapshot
    # Locked, so that a concurrent write of the same revision waits, then finds it stored.
    record = session.get(ComplaintRecord, snapshot.complaint_id, with_for_update=True)
    if record is not None and record.revision >= snapshot.revision:
        return False
    if record is None:
        record = ComplaintRecord(
            complaint_id=snapshot.complaint_id,
            case_id=snapshot.case_id,
            step=snapshot.step,
            status=snapshot.status.value,
            complainant=snapshot.complainant,
            filed_by=snapshot.filed_by,
            filed_at=snapshot.filed_at,
        )
    record.department = snapshot.department
    record.assigned_department = snapshot.assigned_department
    record.status = snapshot.status.value
    record.due_at = snapshot.due_at
    record.answered_at = snapshot.answered_at
    record.closed_at = snapshot.closed_at
    record.overdue = snapshot.overdue
    record.satisfied = snapshot.satisfied
    record.revision = snapshot.revision
    record.snapshot = snapshot.model_dump(mode="json")
    session.add(record)
    insert_new(session, AuditRecord, [audit_row(entry, snapshot.case_id) for entry in projection.audit])
    return True


def supervision_notice_id(complaint_id: str, sequence: int) -> str:
    return f"{complaint_id}:{ANSWER_CLOCK}:{SUPERVISION_ORIGIN}:{sequence}"


def apply_complaint_escalation(session: Session, escalation: ComplaintEscalationInput) -> bool:
    """督办 to the department that owes the answer, and word to the supervisors; True if written.

    A complaint nobody has been named for or assigned to yet has no department
    to send a notice to: the supervisors, who have to assign it, hear of it.
    """
    notice_id = supervision_notice_id(escalation.complaint_id, escalation.sequence)
    if session.get(NotificationRecord, f"{notice_id}:supervisor") is not None:
        return False
    due = escalation.due_at.astimezone(SHANGHAI).strftime("%Y-%m-%d %H:%M")
    if escalation.department is not None:
        session.add(
            SupervisionNotice(
                notice_id=notice_id,
                case_id=escalation.complaint_id,
                step=ANSWER_CLOCK,
                department=escalation.department,
                sequence=escalation.sequence,
                origin=SUPERVISION_ORIGIN,
                message_zh=f"督办通知：投诉{escalation.complaint_id}已超过答复期限（{due}），请立即答复。",
                due_at=escalation.due_at,
                issued_at=escalation.at,
            )
        )
    waiting = "未答复" if escalation.department is not None else "未分派"
    session.add(
        NotificationRecord(
            notification_id=f"{notice_id}:supervisor",
            case_id=escalation.complaint_id,
            kind="complaint_overdue",
            recipient="supervisor",
            step=ANSWER_CLOCK,
            message_zh=f"投诉{escalation.complaint_id}超期{waiting}（第{escalation.sequence}次督办）。",
            created_at=escalation.at,
        )
    )
    return True


def apply_complaint_changes(session: Session, changes: ComplaintChanges) -> bool:
    """One change of a complaint in one transaction; False (nothing written) when its
    revision is stored already, so a retried or replayed write changes nothing."""
    projection = ProjectComplaintInput(snapshot=changes.snapshot, events=changes.events, audit=changes.audit)
    if not apply_complaint_projection(session, projection):
        return False
    for escalation in changes.escalations:
        apply_complaint_escalation(session, escalation)
    return True


class ComplaintActivities:
    """The activities the worker registers; each writes through one ``apply_*`` function
    above, which activities/rebuild.py also calls to rebuild the read model."""

    def __init__(self, engine: Engine) -> None:
        self._engine = engine

    @activity.defn(name=ComplaintActivityName.PROJECT_COMPLAINT)
    def project_complaint(self, projection: ProjectComplaintInput) -> None:
        with write_session(self._engine) as session:
            apply_complaint_projection(session, projection)

    @activity.defn(name=ComplaintActivityName.WRITE_COMPLAINT_CHANGES)
    def write_complaint_changes(self, changes: ComplaintChanges) -> WriteResult:
        with write_session(self._engine) as session:
            written = apply_complaint_changes(session, changes)
        for escalation in changes.escalations if written else []:
            logger.warning("complaint overdue: %s escalation %d", escalation.complaint_id, escalation.sequence)
        return WriteResult(revision=changes.snapshot.revision)

    @activity.defn(name=ComplaintActivityName.ESCALATE_OVERDUE_COMPLAINT)
    def escalate_overdue_complaint(self, escalation: ComplaintEscalationInput) -> None:
        with write_session(self._engine) as session:
            written = apply_complaint_escalation(session, escalation)
        if written:
            logger.warning("complaint overdue: %s escalation %d", escalation.complaint_id, escalation.sequence)

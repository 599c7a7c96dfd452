"""Payloads of the complaint workflow (投诉, DB33/T 2304-2021 §8.1.2).

A complaint is about one of the complainant's cases (optionally one step or
department of it) or about a department in general. A supervisor assigns it to a
department, an officer of that department answers within five working days of
acceptance, and the supervisor closes it recording whether the complainant was
satisfied. Like models/case.py these models are pure (no I/O) and pass through the
workflow sandbox; the workflow checks every Update's input in its validators, so
none of these models constrains its fields.
"""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum
from typing import Any

from pydantic import BaseModel, ConfigDict

from models.case import Actor, AuditEntry

# The answer is due within this many working days of acceptance.
ANSWER_WORKING_DAYS = 5
CONTENT_MIN_CHARS = 5
CONTENT_MAX_CHARS = 2000
ANSWER_MAX_CHARS = 2000
NOTE_MAX_CHARS = 500

# The clock's name in the calendar activity's request, and the "step" of a
# complaint's 督办 rows in the SupervisionNotice table.
ANSWER_CLOCK = "answer"
SUPERVISION_ORIGIN = "complaint"


class ComplaintStatus(StrEnum):
    ACCEPTED = "accepted"
    ASSIGNED = "assigned"
    ANSWERED = "answered"
    CLOSED = "closed"


COMPLAINT_STATUS_ZH = {
    ComplaintStatus.ACCEPTED: "已受理",
    ComplaintStatus.ASSIGNED: "已分派",
    ComplaintStatus.ANSWERED: "已答复",
    ComplaintStatus.CLOSED: "已办结",
}


class ComplaintEventType(StrEnum):
    ACCEPTED = "accepted"
    ASSIGNED = "assigned"
    WARNING = "warning"
    OVERDUE = "overdue"
    SUPERVISION_NOTICE = "supervision_notice"
    ANSWERED = "answered"
    CLOSED = "closed"


COMPLAINT_EVENT_TYPE_ZH = {
    ComplaintEventType.ACCEPTED: "受理",
    ComplaintEventType.ASSIGNED: "分派",
    ComplaintEventType.WARNING: "预警",
    ComplaintEventType.OVERDUE: "超期",
    ComplaintEventType.SUPERVISION_NOTICE: "督办",
    ComplaintEventType.ANSWERED: "答复",
    ComplaintEventType.CLOSED: "办结",
}


class _Model(BaseModel):
    model_config = ConfigDict(extra="ignore")


class ComplaintInput(_Model):
    """What the workflow starts with; the catalogue's departments travel with it so
    the validators decide deterministically, whatever the catalogue says later."""

    complaint_id: str
    content: str
    filed_by: Actor
    complainant: str | None = None  # the applicant account that may follow the complaint
    case_id: str | None = None
    step: str | None = None
    department: str | None = None  # the department complained about, if named or derived
    department_names: dict[str, str] = {}  # code -> name_zh of every known department
    assignable: list[str] = []  # departments with officers, to which a complaint may be assigned
    answer_working_days: int = ANSWER_WORKING_DAYS
    # Hash of the filed request, so a reused Idempotency-Key with another body is caught.
    request_fingerprint: str = ""
    # Unique per filing request: the request whose id the complaint carries created it.
    submission_id: str = ""
    # A clerk's filing (代为投诉), written with the complaint's first write; None for applicants.
    audit: AuditEntry | None = None


class ComplaintEvent(_Model):
    """One business event of a complaint, as recorded in its workflow history."""

    seq: int
    at: datetime
    type: ComplaintEventType
    actor: str | None = None
    department: str | None = None
    due_at: datetime | None = None
    detail: dict[str, Any] = {}


class ComplaintSnapshot(_Model):
    complaint_id: str
    case_id: str | None
    step: str | None
    # The department complained about (None: not named), and the one handling it:
    # the assigned one once assigned, else the one complained about.
    named_department: str | None
    department: str | None
    department_zh: str | None
    assigned_department: str | None = None
    status: ComplaintStatus
    status_zh: str
    complainant: str | None
    filed_by: str
    content: str
    filed_at: datetime
    due_at: datetime | None = None
    warning_at: datetime | None = None
    provisional: bool = False
    assigned_at: datetime | None = None
    assign_note: str | None = None
    answer: str | None = None
    answered_at: datetime | None = None
    answered_by: str | None = None
    closed_at: datetime | None = None
    satisfied: bool | None = None
    close_note: str | None = None
    overdue: bool = False
    escalations: int = 0
    revision: int = 0
    request_fingerprint: str = ""
    submission_id: str = ""


class ProjectComplaintInput(_Model):
    snapshot: ComplaintSnapshot
    events: list[ComplaintEvent]
    audit: list[AuditEntry] = []  # staff actions since the previous write (first edition)


# --- Supervisor and officer actions (workflow Updates) ---------------------------


class AssignComplaintInput(_Model):
    actor: Actor
    department: str
    note: str | None = None
    audit: AuditEntry | None = None


class AnswerComplaintInput(_Model):
    actor: Actor
    answer: str
    audit: AuditEntry | None = None


class CloseComplaintInput(_Model):
    actor: Actor
    satisfied: bool
    note: str | None = None
    audit: AuditEntry | None = None


# --- Activities ---------------------------------------------------------------------


class ComplaintEscalationInput(_Model):
    complaint_id: str
    department: str | None  # the department that owes the answer (None: not yet known)
    sequence: int
    due_at: datetime
    at: datetime


class ComplaintChanges(_Model):
    """Everything one workflow task of a complaint changed, written in one transaction:
    its newest state, its new events, the 督办 they cause and the audit rows of the staff
    actions that caused them (activities/complaints.py)."""

    snapshot: ComplaintSnapshot
    events: list[ComplaintEvent]
    escalations: list[ComplaintEscalationInput] = []
    audit: list[AuditEntry] = []  # staff actions since the previous write


class ComplaintActivityName(StrEnum):
    """Activity type names of the complaint workflow (the calendar ones are shared
    with cases and named in models.case.ActivityName)."""

    PROJECT_COMPLAINT = "project_complaint"
    WRITE_COMPLAINT_CHANGES = "write_complaint_changes"
    ESCALATE_OVERDUE_COMPLAINT = "escalate_overdue_complaint"

"""The read model: tables the workflow projects into, for inboxes, lists and statistics.

Temporal holds the truth (each case's history); these tables answer queries
fast and can be rebuilt from it. Nothing here is imported by workflow code.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from sqlalchemy import JSON, Column, DateTime, Dialect, ForeignKey, Index, String, UniqueConstraint, event
from sqlalchemy.types import TypeDecorator
from sqlmodel import Field, SQLModel

from models.catalogue import CHANNEL_CODE_MAX_LENGTH, CODE_MAX_LENGTH


class UTCDateTime(TypeDecorator[datetime]):
    """Aware datetimes stored as UTC on every database (SQLite keeps no offset)."""

    impl = DateTime
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError("naive datetime given to the read model")
        return value.astimezone(UTC).replace(tzinfo=None)

    def process_result_value(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        return None if value is None else value.replace(tzinfo=UTC)


def _when(index: bool = False, nullable: bool = True) -> Any:
    return Field(default=None, sa_column=Column(UTCDateTime(), index=index, nullable=nullable))


class CaseRecord(SQLModel, table=True):
    __tablename__ = "cases"
    __table_args__ = (Index("ix_cases_status_submitted", "status", "submitted_at"),)

    case_id: str = Field(primary_key=True, max_length=64)
    thing: str = Field(index=True, max_length=CODE_MAX_LENGTH)
    catalogue_version: int
    channel: str = Field(max_length=CHANNEL_CODE_MAX_LENGTH)
    status: str = Field(index=True, max_length=32)
    owner: str | None = Field(default=None, index=True, max_length=64)
    submitted_by: str = Field(max_length=64)
    accepting_unit: str | None = Field(default=None, index=True, max_length=64)
    # The window's unit (services/routing.py); None online and for cases from before routing.
    accepting_unit_code: str | None = Field(default=None, index=True, max_length=64)
    submitted_at: datetime = _when(index=True, nullable=False)
    revision: int = 0
    snapshot: dict[str, Any] = Field(default_factory=dict, sa_column=Column(JSON, nullable=False))
    # 好差评: the rating period's end; after it an unrated case counts as not rated.
    rating_closes_at: datetime | None = _when()
    rating_open: bool = False
    # Readable case number (受理编号, e.g. 2026-330000-000123), read out on the phone and
    # searched by staff; case_id stays the technical id. None for cases filed before numbering.
    case_no: str | None = Field(default=None, max_length=32, unique=True, index=True)
    # The application as filed (written once, with the case's first write) and the name
    # staff search by; None for cases filed before the read model kept them.
    applicant_name: str | None = Field(default=None, index=True, max_length=64)
    form: dict[str, Any] | None = Field(default=None, sa_column=Column(JSON, nullable=True))
    # The keyed hash of the applicant's ID number (domain/identity.person_key): a walk-in case
    # becomes its person's when they sign in. None for cases filed before identities.
    applicant_key: str | None = Field(default=None, index=True, max_length=64)


class CaseRegistration(SQLModel, table=True):
    """A case's number and subject, taken by the API before its workflow starts: the one
    place where two applications for the same subject (domain/subjects.py) meet, so the
    second is refused however close together they come. A refused case gives its subject up."""

    __tablename__ = "case_registrations"
    __table_args__ = (UniqueConstraint("thing", "subject_key", name="uq_case_registrations_subject"),)

    case_id: str = Field(primary_key=True, max_length=64)
    case_no: str = Field(max_length=32, unique=True)
    thing: str = Field(max_length=64)
    subject_key: str | None = Field(default=None, max_length=64)
    registered_at: datetime = _when(nullable=False)


class CaseNumberSequence(SQLModel, table=True):
    """The last number given per year and division (the prefix of a case number)."""

    __tablename__ = "case_number_sequences"

    prefix: str = Field(primary_key=True, max_length=16)
    last_number: int = 0


class TaskRecord(SQLModel, table=True):
    """One step of one case, from the moment it opens: the officers' inbox."""

    __tablename__ = "tasks"
    __table_args__ = (
        Index("ix_tasks_department_status_due", "department", "status", "due_at"),
        Index("ix_tasks_unit_status_due", "unit_code", "status", "due_at"),
        Index("ix_tasks_status_due", "status", "due_at"),
        # Timeliness statistics read finished steps of a period from this index alone.
        Index(
            "ix_tasks_status_completed_on",
            "status",
            "completed_on",
            "department",
            "thing",
            "step",
            "hours_bucket",
            "on_time",
        ),
    )

    task_id: str = Field(primary_key=True, max_length=128)
    case_id: str = Field(index=True, max_length=64)
    thing: str = Field(max_length=CODE_MAX_LENGTH)
    step: str = Field(max_length=CODE_MAX_LENGTH)
    department: str = Field(max_length=64)
    # The unit the step was routed to (services/routing.py); None for cases from before routing.
    unit_code: str | None = Field(default=None, max_length=64)
    status: str = Field(max_length=32)
    # Working days of a pending extension request (延期申请) a supervisor has still to decide.
    extension_days: int | None = Field(default=None, index=True)
    assignee: str | None = Field(default=None, index=True, max_length=64)
    opened_at: datetime | None = _when()
    due_at: datetime | None = _when()
    completed_at: datetime | None = _when()
    provisional: bool = False
    overdue: bool = False
    escalations: int = 0
    # Roles of the unit that may act on the task, e.g. "officer" or "officer,clerk".
    roles: str = Field(default="officer", max_length=64)
    warning_at: datetime | None = _when()
    # Timeliness, from the case's events and the working-day calendar: working
    # hours used (补正 pauses excluded), on time or not, and the completion day.
    working_hours_used: float | None = None
    paused_working_hours: float = 0.0
    on_time: bool | None = None
    hours_bucket: int | None = None  # working hours in tenths, for percentiles in SQL
    completed_on: str | None = Field(default=None, index=True, max_length=10)  # YYYY-MM-DD, Asia/Shanghai


class CaseEventRecord(SQLModel, table=True):
    __tablename__ = "case_events"
    __table_args__ = (UniqueConstraint("case_id", "seq"),)

    id: int | None = Field(default=None, primary_key=True)
    case_id: str = Field(index=True, max_length=64)
    seq: int
    at: datetime = _when(index=True, nullable=False)
    type: str = Field(max_length=32)
    step: str | None = Field(default=None, max_length=64)
    department: str | None = Field(default=None, index=True, max_length=64)
    actor: str | None = Field(default=None, max_length=64)
    due_at: datetime | None = _when()
    detail: dict[str, Any] = Field(default_factory=dict, sa_column=Column(JSON, nullable=False))


class SupervisionNotice(SQLModel, table=True):
    """督办: a notice to a department about an overdue (or watched) step."""

    __tablename__ = "supervision_notices"

    notice_id: str = Field(primary_key=True, max_length=160)
    case_id: str = Field(index=True, max_length=64)
    step: str = Field(max_length=64)
    department: str = Field(index=True, max_length=64)
    sequence: int
    origin: str = Field(default="automatic", max_length=16)
    message_zh: str
    due_at: datetime | None = _when()
    issued_at: datetime = _when(index=True, nullable=False)
    acknowledged_at: datetime | None = _when()
    acknowledged_by: str | None = Field(default=None, max_length=64)
    reply: str | None = None
    issued_by: str = Field(default="system", max_length=64)


class NotificationRecord(SQLModel, table=True):
    """Messages to applicants and supervisors; an SMS or mail gateway sends from here."""

    __tablename__ = "notifications"

    notification_id: str = Field(primary_key=True, max_length=200)
    case_id: str = Field(index=True, max_length=64)
    kind: str = Field(max_length=64)
    recipient: str | None = Field(default=None, index=True, max_length=64)
    step: str | None = Field(default=None, max_length=64)
    message_zh: str
    created_at: datetime = _when(nullable=False)


class Unit(SQLModel, table=True):
    """单位: a department in a division (杭州市上城区公安分局 = police @ 330102) or an institution
    with its own code (a hospital, in its division). Units are data an admin manages (API and CLI,
    services/units.py); a unit is disabled, never deleted: accounts and cases keep pointing at it."""

    __tablename__ = "units"
    __table_args__ = (Index("ix_units_department_division", "department", "division_code"),)

    code: str = Field(primary_key=True, max_length=64)  # police_330102; an institution's own: hospital_330102_zjfy
    department: str = Field(max_length=64)  # a department code of domain/data/departments.yaml
    division_code: str = Field(max_length=6)  # GB/T 2260, a city or county of the province
    kind: str = Field(max_length=16)  # department | institution
    name_zh: str = Field(max_length=128)
    window_zh: str | None = Field(default=None, max_length=128)  # where applicants go: 上城区市民之家 3 号窗口
    # The unit's duty mobile (值班手机, domain/identity.MOBILE_PHONE): texted a 督办 of its steps.
    duty_phone: str | None = Field(default=None, max_length=20)
    active: bool = True
    created_at: datetime = _when(nullable=False)


class UserAccount(SQLModel, table=True):
    __tablename__ = "user_accounts"

    username: str = Field(primary_key=True, max_length=64)
    password_hash: str
    role: str = Field(max_length=16)
    # The department code every inbox and access rule reads today ("police"); with unit_code,
    # the department of that unit.
    unit: str | None = Field(default=None, max_length=64)
    display_name_zh: str = Field(default="", max_length=64)
    # The unit an officer or clerk belongs to; None for accounts made before units existed.
    unit_code: str | None = Field(
        default=None,
        sa_column=Column(String(64), ForeignKey("units.code", name="fk_user_accounts_unit_code_units"), index=True),
    )
    # A supervisor's division (GB/T 2260); None is the whole province.
    division_code: str | None = Field(default=None, max_length=6)
    # An applicant's verified identity (实名): the name, the number masked for display, and a
    # keyed hash of the number (domain/identity.person_key) that finds their walk-in cases.
    # The full number is not kept here. None for staff.
    person_name: str | None = Field(default=None, max_length=64)
    id_number_masked: str | None = Field(default=None, max_length=18)
    person_key: str | None = Field(default=None, index=True, max_length=64)
    phone: str | None = Field(default=None, max_length=20)
    # Removal disables (ops/accounts.py): the row stays, so the username is never another person's.
    disabled_at: datetime | None = _when()


class CatalogueVersion(SQLModel, table=True):
    """A published version of a "one thing" definition (§5.1.4 dynamic management).

    New cases start on the newest active version; a running case keeps the
    definition it started with, which travels in its workflow input.
    """

    __tablename__ = "catalogue_versions"

    thing: str = Field(primary_key=True, max_length=64)
    version: int = Field(primary_key=True)
    name_zh: str = Field(max_length=128)
    status: str = Field(default="active", max_length=16)  # active | retired
    origin: str = Field(default="shipped", max_length=16)  # shipped | published
    fingerprint: str = Field(max_length=64)
    definition: dict[str, Any] = Field(default_factory=dict, sa_column=Column(JSON, nullable=False))
    published_at: datetime = _when(nullable=False)
    published_by: str = Field(max_length=64)
    retired_at: datetime | None = _when()


class ComplaintRecord(SQLModel, table=True):
    """投诉 (§8.1.2): one complaint's state, projected by its workflow."""

    __tablename__ = "complaints"
    __table_args__ = (Index("ix_complaints_status_due", "status", "due_at"),)

    complaint_id: str = Field(primary_key=True, max_length=64)
    case_id: str | None = Field(default=None, index=True, max_length=64)
    step: str | None = Field(default=None, max_length=64)
    # The department handling it: the assigned one once assigned, else the one complained about.
    department: str | None = Field(default=None, index=True, max_length=64)
    assigned_department: str | None = Field(default=None, index=True, max_length=64)
    status: str = Field(index=True, max_length=32)
    complainant: str | None = Field(default=None, index=True, max_length=64)  # an account name
    filed_by: str = Field(index=True, max_length=64)
    filed_at: datetime = _when(index=True, nullable=False)
    due_at: datetime | None = _when(index=True)
    answered_at: datetime | None = _when()
    closed_at: datetime | None = _when()
    overdue: bool = False
    satisfied: bool | None = None
    revision: int = 0
    snapshot: dict[str, Any] = Field(default_factory=dict, sa_column=Column(JSON, nullable=False))


class RatingRecord(SQLModel, table=True):
    """好差评 (§8.1.2): one rating of a case (step "") or of one of its steps."""

    __tablename__ = "ratings"

    case_id: str = Field(primary_key=True, max_length=64)
    step: str = Field(default="", primary_key=True, max_length=64)
    thing: str = Field(index=True, max_length=64)
    department: str | None = Field(default=None, index=True, max_length=64)
    score: int
    comment: str | None = None
    rated_at: datetime = _when(nullable=False)


class AuditRecord(SQLModel, table=True):
    """审计日志: one staff action that succeeded — who, when, on which case, what.

    Append-only: rows are written by services/audit.py and never updated or deleted (the
    mapper refuses both, below). A request retried with the same Idempotency-Key
    finds its row by (action, request_key) instead of adding a second one.
    """

    __tablename__ = "audit_log"
    __table_args__ = (
        UniqueConstraint("action", "request_key", name="uq_audit_log_action_request_key"),
        Index("ix_audit_log_case_at", "case_id", "at"),
        Index("ix_audit_log_actor_at", "actor", "at"),
    )

    id: int | None = Field(default=None, primary_key=True)
    at: datetime = _when(index=True, nullable=False)
    actor: str = Field(max_length=64)
    role: str = Field(max_length=16)
    unit: str | None = Field(default=None, max_length=64)  # the department ("police")
    # The staff member's unit (units.code): for a task action, the unit the task was routed to.
    unit_code: str | None = Field(default=None, max_length=64, index=True)
    action: str = Field(index=True, max_length=32)
    case_id: str | None = Field(default=None, max_length=64)
    target: str | None = Field(default=None, max_length=200)  # task id, complaint id, thing@version …
    detail: dict[str, Any] = Field(default_factory=dict, sa_column=Column(JSON, nullable=False))
    request_key: str | None = Field(default=None, max_length=400)  # target + Idempotency-Key, when one was sent


@event.listens_for(AuditRecord, "before_update")
@event.listens_for(AuditRecord, "before_delete")
def _audit_log_is_append_only(_mapper: Any, _connection: Any, target: AuditRecord) -> None:
    raise PermissionError(f"the audit log is append-only: record {target.id} cannot be changed or deleted")


class LoginAttempt(SQLModel, table=True):
    """One login attempt, kept for the rate-limit windows (api/login_limits.py); old rows are purged."""

    __tablename__ = "login_attempts"
    __table_args__ = (
        Index("ix_login_attempts_username_at", "username", "at"),
        Index("ix_login_attempts_address_at", "address", "at"),
    )

    id: int | None = Field(default=None, primary_key=True)
    at: datetime = _when(index=True, nullable=False)
    username: str = Field(max_length=64)
    address: str = Field(max_length=64)
    succeeded: bool = False


class InboxVersion(SQLModel, table=True):
    """The inbox change feed: one counter per department, bumped in the same transaction as
    any projection that changes a task of that department (activities/read_model.py).

    ``GET /tasks`` derives its ETag from these rows and ``GET /tasks/events`` watches them,
    so neither runs the inbox query to learn whether the inbox changed.
    """

    __tablename__ = "inbox_versions"

    department: str = Field(primary_key=True, max_length=64)
    version: int = 0
    changed_at: datetime = _when(nullable=False)


class TimelinessRollup(SQLModel, table=True):
    """Finished steps counted per period, thing, step, department and working hours used:
    the timeliness statistics read these rows instead of the tasks (infra/timeliness_rollup.py).

    A cell is one ``span`` of completion, Beijing time ("day", "dekad", "month" or "year";
    ``period`` "2026-11-02", "2026-11-1" for days 1-10, "2026-11" or "2026"), one ``scope``
    ("step" keeps thing, step and department; "department", "thing" and "all" keep only those,
    "" in the others) and one bucket of working hours: a tenth of an hour (``bucket_width`` 1)
    or a whole hour (10), so that percentiles are found among hours first, then among the tenths
    of one hour. Each step is counted once per ``division_code`` it lies within (its unit's
    county, its city, the province), so one division's figures are its cells alone. The
    projection adds each step in the transaction that marks it done; rebuild
    and the synthetic seeder recompute the table from the tasks. A step done without figures
    has period "" and ``hours_bucket`` -1.
    """

    __tablename__ = "timeliness_rollup"
    __table_args__ = {"sqlite_with_rowid": False}  # the primary key is the table: range reads stay in it

    span: str = Field(primary_key=True, max_length=8)
    scope: str = Field(primary_key=True, max_length=16)
    bucket_width: int = Field(primary_key=True)  # tenths of an hour per bucket: 1, or 10 (whole hours)
    # The division counted (GB/T 2260): each step under its unit's division (the default county
    # 330102 without a unit) and under each division above it, up to the province 330000.
    division_code: str = Field(primary_key=True, max_length=6)
    period: str = Field(primary_key=True, max_length=10)
    thing: str = Field(primary_key=True, max_length=64)
    step: str = Field(primary_key=True, max_length=64)
    department: str = Field(primary_key=True, max_length=64)
    hours_bucket: int = Field(primary_key=True)  # the bucket's first tenth of an hour (TaskRecord.hours_bucket)
    count: int = 0
    on_time_count: int = 0


class SmsOutboxRecord(SQLModel, table=True):
    """短信外发箱: one SMS to a case's applicant, or a 督办 to the duty phone of its step's unit,
    queued in the transaction that writes its notification or 督办 (activities/case_changes.py)
    and sent by NoticeDeliveryWorkflow (activities/notice_delivery.py). A row that failed for
    good stays, ``failed``, to be looked at."""

    __tablename__ = "sms_outbox"
    # Delivery reads the due rows of a status in next_attempt_at order from this index alone.
    __table_args__ = (Index("ix_sms_outbox_status_next_attempt", "status", "next_attempt_at"),)

    # The notification's (or the 督办's) id: queueing twice adds nothing.
    id: str = Field(primary_key=True, max_length=200)
    case_id: str = Field(index=True, max_length=64)
    phone: str = Field(max_length=20)
    text: str  # already masked: never a full ID number
    kind: str = Field(max_length=64)  # the notification's kind
    status: str = Field(default="pending", max_length=16)  # pending | sent | failed
    attempts: int = 0
    last_error: str | None = Field(default=None, max_length=500)
    next_attempt_at: datetime = _when(nullable=False)
    created_at: datetime = _when(nullable=False)
    sent_at: datetime | None = _when()


class DevSmsMessage(SQLModel, table=True):
    """What the dev SMS sink (api/routes/dev_sms.py) received: a phone's inbox, in dev only."""

    __tablename__ = "dev_sms_messages"
    __table_args__ = (Index("ix_dev_sms_messages_phone_at", "phone", "at"),)

    id: int | None = Field(default=None, primary_key=True)
    phone: str = Field(max_length=20)
    text: str
    at: datetime = _when(index=True, nullable=False)


class CaseFileRecord(SQLModel, table=True):
    """An uploaded material of a case (材料附件): which material, which file (by content hash in
    the file store, infra/file_store.py), who uploaded it and when. Written by the API when the
    file is stored; the workflow's history holds only the reference (``sha256:<hash>``)."""

    __tablename__ = "case_files"

    case_id: str = Field(primary_key=True, max_length=64)
    material: str = Field(primary_key=True, max_length=CODE_MAX_LENGTH)
    sha256: str = Field(primary_key=True, max_length=64)
    size: int
    content_type: str = Field(max_length=64)
    pages: int = 1
    uploaded_by: str = Field(max_length=64)
    uploaded_at: datetime = _when(nullable=False)


class LicenceRecord(SQLModel, table=True):
    """电子证照: a licence a step issued, its canonical content (domain/licences.canonical) and the
    platform's detached Ed25519 signature of it. Written by the worker when the step completes;
    not a projection: a rebuild of the read model leaves it as it is."""

    __tablename__ = "licences"

    number: str = Field(primary_key=True, max_length=32)
    case_id: str = Field(index=True, max_length=64)
    thing: str = Field(max_length=64)
    step: str = Field(max_length=64)
    title_zh: str = Field(max_length=64)
    issuer_zh: str = Field(max_length=128)
    issued_at: datetime = _when(nullable=False)
    status: str = Field(default="valid", max_length=16)  # valid | revoked
    content: dict[str, Any] = Field(default_factory=dict, sa_column=Column(JSON, nullable=False))
    signature: str = Field(max_length=128)  # base64 of the 64-byte Ed25519 signature


class ActionKey(SQLModel, table=True):
    """An Idempotency-Key a staff member or applicant sent with an action (a workflow Update),
    bound to what it asked for (services/idempotency.py): ``scope`` is the SHA-256 of (user,
    action, target, key) and ``fingerprint`` the SHA-256 of the request's body. The same key
    with the same body is a retry and gets the first answer; with another body it is refused."""

    __tablename__ = "action_keys"

    scope: str = Field(primary_key=True, max_length=64)
    fingerprint: str = Field(max_length=64)
    created_at: datetime = _when(nullable=False)


class AuthSession(SQLModel, table=True):
    """A sign-in session (登录会话): every access token names one (its ``sid`` claim), and a token
    is honoured only while its session is live (services/sessions.py). Logout, a new password, a
    change of role or unit, the account's removal or an admin's revoke end it: ``ended_at`` and
    why (``end_reason``). A token whose session is ended or unknown is refused."""

    __tablename__ = "auth_sessions"

    session_id: str = Field(primary_key=True, max_length=32)  # 32 random hex digits
    username: str = Field(index=True, max_length=64)
    created_at: datetime = _when(nullable=False)
    expires_at: datetime = _when(nullable=False)
    ended_at: datetime | None = _when()
    end_reason: str | None = Field(default=None, max_length=32)

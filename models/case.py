"""Payloads of the case workflow: its input, its Updates, its state as others see it.

Every payload is one pydantic model so a field can be added without breaking a
running case; these models are pure (no I/O) and pass through the workflow
sandbox.
"""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from models.catalogue import ThingDefinition

Role = Literal["applicant", "clerk", "officer", "supervisor", "admin"]


class CaseStatus(StrEnum):
    ACCEPTED = "accepted"
    IN_PROGRESS = "in_progress"
    AWAITING_SUPPLEMENT = "awaiting_supplement"
    COMPLETED = "completed"
    REFUSED = "refused"
    WITHDRAWN = "withdrawn"  # 撤回: by the applicant or the accepting clerk before it was done
    DECLINED = "declined"  # 不予受理: the accepting clerk's, before any department took it up


class StepStatus(StrEnum):
    PENDING = "pending"
    OPEN = "open"
    CLAIMED = "claimed"
    AWAITING_SUPPLEMENT = "awaiting_supplement"
    SUSPENDED = "suspended"  # 中止: a statutory special procedure; its clock stands still
    DONE = "done"
    REFUSED = "refused"
    CANCELLED = "cancelled"


FINISHED_STEP_STATUSES = frozenset({StepStatus.DONE, StepStatus.REFUSED, StepStatus.CANCELLED})

CASE_STATUS_ZH = {
    CaseStatus.ACCEPTED: "已受理",
    CaseStatus.IN_PROGRESS: "办理中",
    CaseStatus.AWAITING_SUPPLEMENT: "待补正",
    CaseStatus.COMPLETED: "已办结",
    CaseStatus.REFUSED: "已退件",
    CaseStatus.WITHDRAWN: "已撤回",
    CaseStatus.DECLINED: "不予受理",
}
# A case in one of these has ended before it was done: no ratings, nothing left to work.
ENDED_CASE_STATUSES = frozenset({CaseStatus.REFUSED, CaseStatus.WITHDRAWN, CaseStatus.DECLINED})

STEP_STATUS_ZH = {
    StepStatus.PENDING: "待启动",
    StepStatus.OPEN: "待签收",
    StepStatus.CLAIMED: "办理中",
    StepStatus.AWAITING_SUPPLEMENT: "待补正",
    StepStatus.SUSPENDED: "中止办理",
    StepStatus.DONE: "已办结",
    StepStatus.REFUSED: "不予办理",
    StepStatus.CANCELLED: "已取消",
}


class EventType(StrEnum):
    ACCEPTED = "accepted"
    OPENED = "opened"
    CLAIMED = "claimed"
    WARNING = "warning"
    OVERDUE = "overdue"
    SUPERVISION_NOTICE = "supervision_notice"
    URGED = "urged"
    RETURNED = "returned"
    SUPPLEMENTED = "supplemented"
    COMPLETED = "completed"
    DELIVERED = "delivered"
    REFUSED = "refused"
    CANCELLED = "cancelled"
    CASE_COMPLETED = "case_completed"
    RATED = "rated"
    UNCLAIMED = "unclaimed"
    REASSIGNED = "reassigned"
    TRANSFERRED = "transferred"
    SUSPENDED = "suspended"
    RESUMED = "resumed"
    EXTENSION_REQUESTED = "extension_requested"
    EXTENDED = "extended"
    EXTENSION_REJECTED = "extension_rejected"
    WITHDRAWN = "withdrawn"
    DECLINED = "declined"
    ADOPTED = "adopted"


EVENT_TYPE_ZH = {
    EventType.ACCEPTED: "受理",
    EventType.OPENED: "启动",
    EventType.CLAIMED: "签收",
    EventType.WARNING: "预警",
    EventType.OVERDUE: "超期",
    EventType.SUPERVISION_NOTICE: "督办",
    EventType.URGED: "催办",
    EventType.RETURNED: "退回补正",
    EventType.SUPPLEMENTED: "补齐补正",
    EventType.COMPLETED: "办结",
    EventType.DELIVERED: "出件",
    EventType.REFUSED: "不予办理",
    EventType.CANCELLED: "取消",
    EventType.CASE_COMPLETED: "全案办结",
    EventType.RATED: "评价",
    EventType.UNCLAIMED: "退回待办",
    EventType.REASSIGNED: "改派",
    EventType.TRANSFERRED: "转办",
    EventType.SUSPENDED: "中止办理",
    EventType.RESUMED: "恢复办理",
    EventType.EXTENSION_REQUESTED: "申请延期",
    EventType.EXTENDED: "批准延期",
    EventType.EXTENSION_REJECTED: "不批准延期",
    EventType.WITHDRAWN: "撤回申请",
    EventType.DECLINED: "不予受理",
    EventType.ADOPTED: "申请人实名认领",
}


class _Model(BaseModel):
    model_config = ConfigDict(extra="ignore")


class Actor(_Model):
    """Who acts: a user name (never a person's real name), role and unit."""

    username: str
    role: Role
    unit: str | None = None  # the department code ("police") every inbox and access rule reads
    # The unit an officer or clerk belongs to (units.code), and where the actor works: the unit's
    # division for staff, the overseen division for a supervisor (GB/T 2260; None = the whole
    # province). Defaults, because actors recorded before units existed travel in running cases'
    # histories without them.
    unit_code: str | None = None
    division_code: str | None = None


class AuditEntry(_Model):
    """A staff action's audit-log row (审计日志). It travels with the action's Update and is
    written in the same transaction as the change it records (activities/case_changes.py),
    so the log holds a row exactly when the change happened. ``detail`` is already masked."""

    action: str
    actor: Actor
    target: str | None = None
    detail: dict[str, Any] = {}
    # Unique per request: a retried request with the same Idempotency-Key adds no second row.
    request_key: str | None = None
    at: datetime | None = None  # when the staff member acted (the API's clock; else workflow time)


class StepUnit(_Model):
    """The unit a step was routed to at acceptance (an institution or a department in a division)."""

    code: str
    name_zh: str
    division_code: str
    window_zh: str | None = None


class ProxyFiling(_Model):
    """代办: an account filing for another person (the form's applicant, the principal), with
    the authorization material (授权委托书) that allows it."""

    agent_username: str
    agent_name: str
    authorization_material: str


class CaseInput(_Model):
    case_id: str
    definition: ThingDefinition
    channel: str
    form: dict[str, Any]
    owner: str | None = None  # the applicant account that may follow the case
    submitted_by: Actor
    supervision_phone: str = "12345"
    # Hash of the submitted request, so a reused Idempotency-Key with another body is caught.
    request_fingerprint: str = ""
    answers: dict[str, str] = {}
    audit: AuditEntry | None = None  # the clerk's acceptance (窗口受理); None for applicants
    # Unique per submitting request: the request whose id the case carries created it.
    submission_id: str = ""
    case_no: str | None = None  # readable case number (受理编号), given by the API
    subject_key: str | None = None  # hash naming the case's subject (domain/subjects.py)
    # Each step's competent unit, chosen at acceptance (services/routing.py); empty for cases
    # accepted before routing, whose steps belong to their department in the default county.
    units: dict[str, StepUnit] = {}
    accepting_window: StepUnit | None = None  # the clerk's unit, for a case accepted at a window
    # The keyed hash of the applicant's ID number (domain/identity.person_key): a walk-in case
    # becomes its person's account's when they sign in. None for cases from before identities.
    applicant_key: str | None = None
    proxy: ProxyFiling | None = None  # 代办: who filed for the applicant, and their authorization


class ExtensionRequest(_Model):
    """A unit's pending request to extend a step's time limit (行政许可法 第42条)."""

    working_days: int
    reason: str
    requested_by: str
    requested_at: datetime


class Suspension(_Model):
    """Why a step stands still (中止), and what the special procedure must produce."""

    reason: str
    materials: list[str] = []
    suspended_by: str
    suspended_at: datetime


class StepView(_Model):
    step: str
    name_zh: str
    department: str
    department_zh: str
    status: StepStatus
    status_zh: str
    time_limit_working_days: int
    opened_at: datetime | None = None
    due_at: datetime | None = None
    warning_at: datetime | None = None
    provisional: bool = False
    completed_at: datetime | None = None
    overdue: bool = False
    assignee: str | None = None
    result: dict[str, Any] | None = None
    unit: StepUnit | None = None
    missing: list[str] = []
    escalations: int = 0
    actors: list[str] = ["officer"]  # roles of the step's unit that may act on its task
    suspension: Suspension | None = None
    extension_request: ExtensionRequest | None = None
    extended_working_days: int = 0  # approved extensions, in working days


class MaterialEntry(_Model):
    code: str
    name_zh: str
    reference: str | None = None


class MaterialStatus(StrEnum):
    RECEIVED = "received"
    SHARED = "shared"
    TO_SUPPLY = "to_supply"


MATERIAL_STATUS_ZH = {
    MaterialStatus.RECEIVED: "已收取",
    MaterialStatus.SHARED: "已共享",
    MaterialStatus.TO_SUPPLY: "需补正",
}


class MaterialView(_Model):
    """A material of the case and where it stands now: received, fetched by data sharing, or
    still owed (with the reason and, when a step asked for it, that step)."""

    code: str
    name_zh: str
    status: MaterialStatus
    status_zh: str
    reason: str | None = None
    step: str | None = None
    reference: str | None = None


class AcceptanceNotice(_Model):
    """受理通知: what was received, what the platform fetched, what is still owed, and when."""

    title_zh: str = "受理通知书"
    case_id: str
    thing: str
    thing_zh: str
    channel: str
    channel_zh: str
    accepting_unit: str | None
    accepting_unit_zh: str
    accepting_unit_code: str | None = None
    accepting_window_zh: str | None = None  # where the applicant goes: 上城区市民之家 3 号窗口
    accepting_staff: str | None
    accepted_at: datetime
    materials_received: list[MaterialEntry]
    materials_shared: list[MaterialEntry]
    materials_to_supply: list[MaterialEntry]
    steps: list[StepView]
    delivery_method: str
    delivery_method_zh: str
    supervision_phone: str


class CaseEvent(_Model):
    """One business event of a case, as recorded in its workflow history."""

    seq: int
    at: datetime
    type: EventType
    step: str | None = None
    department: str | None = None
    actor: str | None = None
    due_at: datetime | None = None
    detail: dict[str, Any] = {}


class RatingView(_Model):
    """好差评: 5 非常满意 … 1 非常不满意; ``step`` None rates the whole case."""

    step: str | None = None
    department: str | None = None
    score: int
    comment: str | None = None
    rated_at: datetime


class RateInput(_Model):
    actor: Actor
    score: int
    comment: str | None = Field(default=None, max_length=500)
    step: str | None = None


class CaseSnapshot(_Model):
    case_id: str
    thing: str
    thing_zh: str
    catalogue_version: int
    situation: str | None = None
    channel: str
    status: CaseStatus
    status_zh: str
    submitted_at: datetime
    owner: str | None
    submitted_by: str
    accepting_unit: str | None
    accepting_unit_code: str | None = None  # the window's unit (routing); None online and before routing
    missing_materials: list[str] = []
    steps: list[StepView]
    acceptance_notice: AcceptanceNotice | None = None
    revision: int = 0
    request_fingerprint: str = ""
    submission_id: str = ""
    ratings: list[RatingView] = []
    rating_open: bool = False
    rating_closes_at: datetime | None = None
    case_no: str | None = None
    subject_key: str | None = None
    materials: list[MaterialView] = []
    # Why a case was withdrawn (撤回) or declined (不予受理), in the words of who ended it.
    ended_reason: str | None = None
    proxy: ProxyFiling | None = None  # 代办: filed by another account for the applicant


class ProjectCaseInput(_Model):
    snapshot: CaseSnapshot
    events: list[CaseEvent]
    audit: list[AuditEntry] = []  # staff actions since the previous write


# --- Officer and applicant actions (workflow Updates) -------------------------


class ClaimInput(_Model):
    actor: Actor
    step: str
    audit: AuditEntry | None = None


class CompleteStepInput(_Model):
    actor: Actor
    step: str
    result: dict[str, Any]
    comment: str | None = Field(default=None, max_length=500)
    audit: AuditEntry | None = None


class ReturnStepInput(_Model):
    actor: Actor
    step: str
    missing: list[str]
    reason: str
    audit: AuditEntry | None = None


class RefuseStepInput(_Model):
    actor: Actor
    step: str
    reason: str
    audit: AuditEntry | None = None


class UnclaimInput(_Model):
    """退回待办: the assignee (or a supervisor) puts a claimed task back in its unit's inbox."""

    actor: Actor
    step: str
    audit: AuditEntry | None = None


class Colleague(_Model):
    """The officer a task is reassigned to, as the API found their account."""

    username: str
    role: Role
    unit: str | None = None
    unit_code: str | None = None
    division_code: str | None = None


class ReassignInput(_Model):
    """改派: the task goes to a colleague of the same unit, claimed in their name."""

    actor: Actor
    step: str
    to: Colleague
    audit: AuditEntry | None = None


class TransferInput(_Model):
    """转办: a wrongly routed task goes to another unit of its department; its clock runs on."""

    actor: Actor
    step: str
    unit: StepUnit
    unit_department: str
    reason: str
    audit: AuditEntry | None = None


class SuspendInput(_Model):
    """中止: a statutory special procedure (a DNA test before 户口登记); the clock stops."""

    actor: Actor
    step: str
    reason: str
    materials: list[str] = []
    audit: AuditEntry | None = None


class ResumeInput(_Model):
    actor: Actor
    step: str
    audit: AuditEntry | None = None


class ExtensionInput(_Model):
    """The unit asks a supervisor of its division for ``working_days`` more (延期)."""

    actor: Actor
    step: str
    working_days: int
    reason: str
    audit: AuditEntry | None = None


class ExtensionDecisionInput(_Model):
    """The supervisor's answer to a pending extension request; a refusal needs a reason."""

    actor: Actor
    step: str
    approve: bool
    reason: str | None = None
    audit: AuditEntry | None = None


class EndCaseInput(_Model):
    """撤回 (withdraw) or 不予受理 (decline): the case ends with the reason given."""

    actor: Actor
    reason: str
    audit: AuditEntry | None = None


class AdoptCaseInput(_Model):
    """A walk-in case becomes the account of its applicant, who signed in with the identity the
    window checked (the API matched it): from now on they follow, supplement and rate it."""

    actor: Actor


class SupplementInput(_Model):
    actor: Actor
    materials: dict[str, str]
    audit: AuditEntry | None = None


# --- Activities -----------------------------------------------------------------


class DeadlineRequest(_Model):
    step: str
    opened_at: datetime
    working_days: int | None = None
    # Set when a paused clock resumes: the working time it still had.
    remaining_seconds: float | None = None


class DeadlineResult(_Model):
    step: str
    due_at: datetime
    warning_at: datetime | None
    provisional: bool


class ComputeDeadlinesInput(_Model):
    requests: list[DeadlineRequest]


class ComputeDeadlinesResult(_Model):
    deadlines: list[DeadlineResult]


class RemainingTimeInput(_Model):
    paused_at: datetime
    due_at: datetime


class RemainingTimeResult(_Model):
    remaining_seconds: float


class NextEscalationInput(_Model):
    after: datetime


class NextEscalationResult(_Model):
    at: datetime


class MaterialRequest(_Model):
    material: str
    document: str
    subject_id_number: str


class FetchSharedMaterialsInput(_Model):
    case_id: str
    requests: list[MaterialRequest]


class SharedMaterial(_Model):
    material: str
    reference: str


class FetchSharedMaterialsResult(_Model):
    found: list[SharedMaterial]
    missing: list[str]


class NotificationInput(_Model):
    case_id: str
    kind: str
    recipient: str | None  # an account name; the applicant's contact details stay in the form
    message_zh: str
    step: str | None = None
    at: datetime | None = None  # workflow time of the event that caused it
    # Set by a case that writes its changes at once: the row's key, unique in the case.
    notification_id: str | None = None


class EscalationInput(_Model):
    case_id: str
    step: str
    department: str
    sequence: int
    due_at: datetime
    at: datetime
    assignee: str | None = None


class SuperviseInput(_Model):
    """A supervisor's manual 督办 (to the department) or 催办 (to the assignee) on a step."""

    actor: Actor
    step: str
    kind: Literal["notice", "urge"]
    message: str = Field(min_length=1, max_length=500)
    audit: AuditEntry | None = None


class SupervisionNoticeInput(_Model):
    case_id: str
    step: str
    department: str
    kind: Literal["notice", "urge"]
    sequence: int
    message_zh: str
    issued_by: str
    assignee: str | None
    due_at: datetime | None
    at: datetime


class ArchiveCaseInput(_Model):
    """Everything the electronic archive (§7.1.3) keeps of a closed case."""

    case: CaseInput
    snapshot: CaseSnapshot
    events: list[CaseEvent]
    ratings: list[dict[str, Any]] = []


class ArchiveResult(_Model):
    case_id: str
    manifest_sha256: str
    files: int


class CaseChanges(_Model):
    """Everything one workflow task changed, written in one transaction: the case's newest
    state, its new events, the notifications and 督办 they cause and the audit rows of the
    actions that caused them (activities/case_changes.py)."""

    snapshot: CaseSnapshot
    events: list[CaseEvent]
    notifications: list[NotificationInput] = []
    escalations: list[EscalationInput] = []
    supervision_notices: list[SupervisionNoticeInput] = []
    audit: list[AuditEntry] = []
    # Every event of the steps that finished in this change, for their timeliness figures.
    finished_step_events: list[CaseEvent] = []
    # The application as filed: in the case's first write only (it never changes).
    form: dict[str, Any] | None = None
    applicant_key: str | None = None  # with the form: CaseInput.applicant_key


class WriteResult(_Model):
    """What a one-write-per-change activity records in history: the revision it wrote.
    The change itself is rebuilt by replaying the history (workflows/history.py)."""

    revision: int


class ActivityName(StrEnum):
    """Activity type names, shared by the workflow (which calls them by name so it
    never imports database code) and the worker (which registers them)."""

    COMPUTE_DEADLINES = "compute_deadlines"
    COMPUTE_REMAINING_TIME = "compute_remaining_time"
    COMPUTE_NEXT_ESCALATION = "compute_next_escalation"
    FETCH_SHARED_MATERIALS = "fetch_shared_materials"
    PROJECT_CASE = "project_case"
    WRITE_CASE_CHANGES = "write_case_changes"
    SEND_NOTIFICATION = "send_notification"
    ESCALATE_OVERDUE_STEP = "escalate_overdue_step"
    RECORD_SUPERVISION_NOTICE = "record_supervision_notice"
    ARCHIVE_CASE = "archive_case"


# Custom search attributes (Keyword): register them on the server before workers start.
SEARCH_ATTRIBUTE_THING = "CaseThing"
SEARCH_ATTRIBUTE_STATUS = "CaseStatus"
CUSTOM_SEARCH_ATTRIBUTES = (SEARCH_ATTRIBUTE_THING, SEARCH_ATTRIBUTE_STATUS)

"""Request and response bodies of the REST API (one pydantic model per payload)."""

from __future__ import annotations

import json
import re
from datetime import date, datetime
from typing import Annotated, Any, Literal

from fastapi import Query
from pydantic import AfterValidator, BaseModel, BeforeValidator, ConfigDict, Field, StringConstraints

from models.case import AcceptanceNotice, CaseEvent, MaterialView, ProxyFiling, StepUnit, StepView
from models.catalogue import CODE_MAX_LENGTH, QUESTIONS_MAX, RESULT_FIELDS_MAX, RESULT_VALUE_MAX_LENGTH

# A page offset beyond this is invalid input: anything larger would overflow a
# database integer (a 500) instead of simply returning an empty page.
MAX_OFFSET = 2**31 - 1
OffsetQuery = Annotated[int, Query(ge=0, le=MAX_OFFSET)]


_BARE_NUMBER = re.compile(r"[+-]?(\d+\.?\d*|\.\d+)([eE][+-]?\d+)?")


def not_a_timestamp(value: Any) -> Any:
    # pydantic would read a bare number as a Unix timestamp (?to=0 as 1970-01-01);
    # whoever typed it meant something else, so it is refused like any other typo.
    if isinstance(value, str) and _BARE_NUMBER.fullmatch(value.strip()):
        raise ValueError("须为 ISO 8601 日期或时间，如 2026-11-01 (expected an ISO 8601 date or time, not a number)")
    return value


# Dates and times in query strings: ISO 8601 only.
IsoDate = Annotated[date, BeforeValidator(not_a_timestamp)]
IsoDateTime = Annotated[datetime, BeforeValidator(not_a_timestamp)]


# --- input bounds ------------------------------------------------------------------------------
# Every string, list and object a request carries has a bound, declared here and shown in the
# OpenAPI document, so an oversized one is a 422 naming it before it reaches a query, a hash or a
# workflow (tests/api/test_input_bounds.py walks the document for any without one).

# Ids and codes, as long as the read model's columns that hold them (models/tables.py).
CASE_ID_MAX_LENGTH = 64
TASK_ID_MAX_LENGTH = 128
NOTICE_ID_MAX_LENGTH = 160
CaseId = Annotated[str, StringConstraints(max_length=CASE_ID_MAX_LENGTH)]  # ot-<20 hex digits>
TaskId = Annotated[str, StringConstraints(max_length=TASK_ID_MAX_LENGTH)]  # <case_id>:<step>
ComplaintId = Annotated[str, StringConstraints(max_length=64)]  # cp-<20 hex digits>
NoticeId = Annotated[str, StringConstraints(max_length=NOTICE_ID_MAX_LENGTH)]  # <case_id>:<step>:<kind>:<sequence>
LicenceNumber = Annotated[str, StringConstraints(max_length=32)]  # DZZZ-2026-3F9A0C21D7E4
# A thing, step, material, department, situation question or answer: catalogue codes.
Code = Annotated[str, StringConstraints(max_length=CODE_MAX_LENGTH)]
CaseStatusFilter = Annotated[str, StringConstraints(max_length=32)]
Sha256 = Annotated[str, StringConstraints(pattern=r"^[0-9a-f]{64}$")]

# The application form's top-level fields: the largest shipped form has 8 (domain/forms.py).
FORM_FIELDS_MAX = 32
# Its largest field is ``materials``: 50 references of at most 200 characters under their codes,
# under 27 000 characters as JSON even were every character escaped; the others a few thousand.
FORM_FIELD_MAX_CHARS = 65_536


def json_chars_at_most(limit: int) -> AfterValidator:
    """Refuses a value longer than ``limit`` characters: a string by itself, anything else as JSON."""

    def check(value: Any) -> Any:
        text = value if isinstance(value, str) else json.dumps(value, ensure_ascii=False, default=str)
        if len(text) > limit:
            raise ValueError(f"最多 {limit} 个字符 (longer than {limit} characters)")
        return value

    return AfterValidator(check)


FormField = Annotated[Any, json_chars_at_most(FORM_FIELD_MAX_CHARS)]
ResultValue = Annotated[Any, json_chars_at_most(RESULT_VALUE_MAX_LENGTH)]


def also_as(*media_types: str) -> dict[int | str, dict[str, Any]]:
    """OpenAPI ``responses=`` for a 200 that also comes as these media types (by Accept or ``?format=``)."""
    return {200: {"content": {media_type: {"schema": {"type": "string"}} for media_type in media_types}}}


class _Body(BaseModel):
    model_config = ConfigDict(extra="forbid")


class TokenResponse(BaseModel):
    access_token: str
    token_type: Literal["bearer"] = "bearer"


class MeResponse(BaseModel):
    username: str
    role: str
    name: str | None = Field(default=None, description="an applicant's verified name (实名); null for staff")
    id_number_masked: str | None = Field(
        default=None, description="an applicant's verified ID number, masked: 330102********0027"
    )
    unit: str | None = Field(description="the department code every inbox and access rule reads (police)")
    unit_code: str | None = Field(default=None, description="the unit an officer or clerk belongs to")
    division_code: str | None = Field(
        default=None,
        description=(
            "where the account works: its unit's division for staff, the overseen division for a "
            "supervisor (null: the whole province)"
        ),
    )


class ProxyRequest(_Body):
    """代办: the signed-in person files for the form's applicant (the principal)."""

    authorization_material: str = Field(
        min_length=1, max_length=200, description="the 授权委托书 (power of attorney) handed in: its reference"
    )


class SubmitCaseRequest(_Body):
    thing: str = Field(min_length=1, max_length=64)
    channel: str = Field(min_length=1, max_length=32)
    form: dict[Code, FormField] = Field(
        max_length=FORM_FIELDS_MAX,
        description=f"the thing's application form; each top-level field at most {FORM_FIELD_MAX_CHARS} "
        "characters as JSON",
    )
    # Answers to the thing's situation questions; omitted ones are read from the form.
    answers: dict[Code, Code] | None = Field(default=None, max_length=QUESTIONS_MAX)
    proxy: ProxyRequest | None = Field(
        default=None, description="代办: filing for the form's applicant, who is not the signed-in person"
    )


class CaseResponse(BaseModel):
    case_id: str
    thing: str
    thing_zh: str
    catalogue_version: int
    situation: str | None
    channel: str
    status: str
    status_zh: str
    submitted_at: datetime
    missing_materials: list[str]
    steps: list[StepView]
    acceptance_notice: AcceptanceNotice | None
    case_no: str | None = Field(default=None, description="受理编号: year-division-sequence, read out on the phone")
    materials: list[MaterialView] = Field(default=[], description="each material and where it stands now")
    ended_reason: str | None = Field(default=None, description="撤回 or 不予受理: the reason given")
    proxy: ProxyFiling | None = Field(
        default=None, description="代办: who filed for the applicant, with what authorization"
    )
    form: dict[str, Any] | None = Field(
        default=None,
        description="the application as filed: for the applicant, the accepting clerk and departments whose "
        "step has opened; masked for supervisors; absent from action answers and for cases filed before it was kept",
    )


class CaseSummary(BaseModel):
    case_id: str
    case_no: str | None = None
    thing: str
    channel: str
    status: str
    submitted_at: datetime
    accepting_unit: str | None
    applicant_name: str | None = None


class CaseList(BaseModel):
    items: list[CaseSummary]
    total: int
    limit: int
    offset: int


MaterialCode = Annotated[str, Field(min_length=1, max_length=CODE_MAX_LENGTH)]
# A material's reference: a document number, a note, or sha256:<hash> of an upload.
MaterialValue = Annotated[str, Field(min_length=1, max_length=500)]


class SupplementRequest(_Body):
    materials: dict[MaterialCode, MaterialValue] = Field(min_length=1, max_length=50)


class TaskResponse(BaseModel):
    task_id: str
    case_id: str
    thing: str
    step: str
    department: str
    status: str
    due_at: datetime | None
    provisional: bool
    overdue: bool
    assignee: str | None
    opened_at: datetime | None
    completed_at: datetime | None


class TaskList(BaseModel):
    items: list[TaskResponse]
    total: int
    limit: int
    offset: int


class CompleteTaskRequest(_Body):
    result: dict[Code, ResultValue] = Field(
        max_length=RESULT_FIELDS_MAX,
        description=f"the step's result fields (GET /catalogue/{{thing}}); a text at most {RESULT_VALUE_MAX_LENGTH} "
        "characters",
    )
    comment: str | None = Field(default=None, max_length=500)


class ReturnTaskRequest(_Body):
    missing: list[MaterialCode] = Field(min_length=1, max_length=20)
    reason: str = Field(min_length=1, max_length=500)


class RefuseTaskRequest(_Body):
    reason: str = Field(min_length=1, max_length=500)


Reason = Annotated[str, Field(min_length=1, max_length=500)]


class ReassignTaskRequest(_Body):
    to: str = Field(min_length=1, max_length=64, description="改派给本单位的工作人员（用户名）")


class TransferTaskRequest(_Body):
    unit: str = Field(min_length=1, max_length=64, description="转至同一部门的另一单位（单位代码）")
    reason: Reason


class SuspendTaskRequest(_Body):
    reason: Reason
    materials: list[Annotated[str, Field(min_length=1, max_length=100)]] = Field(default=[], max_length=20)


class ExtensionTaskRequest(_Body):
    working_days: int = Field(ge=1, le=30, description="延长的工作日数")
    reason: Reason


class RejectExtensionRequest(_Body):
    reason: Reason


class EndCaseRequest(_Body):
    reason: Reason


class TimelineEvent(BaseModel):
    seq: int
    at: datetime
    type: str
    type_zh: str
    step: str | None
    department: str | None
    actor: str | None
    due_at: datetime | None
    detail: dict[str, Any]
    unit: StepUnit | None = Field(default=None, description="the step's unit at the time (承办单位)")


class TimelineStep(BaseModel):
    step: str
    name_zh: str
    department: str
    opened_at: datetime | None
    due_at: datetime | None
    completed_at: datetime | None
    working_hours_used: float | None
    on_time: bool | None
    overdue_working_hours: float


class TimelineResponse(BaseModel):
    case_id: str
    thing: str
    catalogue_version: int
    events: list[TimelineEvent]
    steps: list[TimelineStep]


class HealthResponse(BaseModel):
    """200 when the read-model database and Temporal both answer, else 503 naming what is down."""

    status: Literal["ok", "degraded"]
    database: Literal["ok", "unavailable"]
    temporal: Literal["ok", "unavailable"]
    # A warning that leaves the service up: next year's holiday notice not loaded (from 1 December).
    calendar: Literal["ok", "warning"] = "ok"
    calendar_warning_zh: str | None = None


class NotificationResponse(BaseModel):
    notification_id: str
    case_id: str
    kind: str
    step: str | None
    message_zh: str
    created_at: datetime


def event_to_timeline(event: CaseEvent, type_zh: str, unit: StepUnit | None = None) -> TimelineEvent:
    return TimelineEvent(type_zh=type_zh, **event.model_dump(exclude={"type"}), type=event.type.value, unit=unit)


# No control characters in names (PostgreSQL text cannot hold NUL): 422, not a failed write.
PLAIN_TEXT = r"^[^\x00-\x1f\x7f]*$"


DUTY_PHONE_DESCRIPTION = "值班手机: a mainland mobile number, texted each 督办 of a step routed to the unit"


class UnitInput(_Body):
    """A unit to register. A department unit's code and name follow from its department and
    division (police @ 330102 → police_330102, 杭州市上城区公安分局); an institution gives both."""

    department: str = Field(min_length=1, max_length=64, description="a department code, e.g. police")
    division_code: str = Field(min_length=1, max_length=16, description="GB/T 2260: a city or county of the province")
    kind: Literal["department", "institution"] = "department"
    code: str | None = Field(
        default=None,
        max_length=64,
        description="an institution's own code (hospital_330102_zjfy); "
        "a department unit's is <department>_<division_code>",
    )
    name_zh: str | None = Field(
        default=None, max_length=128, pattern=PLAIN_TEXT, description="default for a department unit"
    )
    window_zh: str | None = Field(default=None, max_length=128, pattern=PLAIN_TEXT, description="where applicants go")
    duty_phone: str | None = Field(default=None, max_length=20, description=DUTY_PHONE_DESCRIPTION)


class UnitPatch(_Body):
    """What an admin may change; an omitted field is kept, ``window_zh: null`` clears the window
    and ``duty_phone: null`` the duty phone."""

    name_zh: str | None = Field(default=None, min_length=1, max_length=128, pattern=PLAIN_TEXT)
    window_zh: str | None = Field(default=None, max_length=128, pattern=PLAIN_TEXT)
    duty_phone: str | None = Field(default=None, max_length=20, description=DUTY_PHONE_DESCRIPTION)
    active: bool | None = None


class UnitView(BaseModel):
    code: str
    department: str
    department_zh: str
    division_code: str
    division_name_zh: str = Field(description="the division's full name, 浙江省杭州市上城区")
    kind: str
    name_zh: str
    window_zh: str | None
    duty_phone: str | None = Field(description=DUTY_PHONE_DESCRIPTION)
    active: bool
    created_at: datetime


class UnitList(BaseModel):
    items: list[UnitView]
    total: int

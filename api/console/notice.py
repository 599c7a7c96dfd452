"""The 受理通知书 as it stands now: who applied, who accepted it, which materials the case has
and which it still owes (and why), each step's time limit and when the whole case is due.

The acceptance notice (``CaseSnapshot.acceptance_notice``) is written once, at acceptance; the
printed notice reads the case as it is now — the materials from ``CaseSnapshot.materials``
(kept current by the workflow, so a 补正 shows as received), the steps' due times, and the
applicant's name from the application as filed (``CaseRecord.form``). The whole case's due date
follows the steps' order on the working-day calendar: each step not yet open starts, at the
latest, on the last day of the steps it waits for and takes its full time limit.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime, timedelta

from sqlmodel import Session

from api.console.messages import has_chinese
from domain.catalogue import FOLLOW_UP
from domain.workcalendar import WorkingCalendar
from models.case import (
    FINISHED_STEP_STATUSES,
    AcceptanceNotice,
    CaseSnapshot,
    CaseStatus,
    MaterialStatus,
    StepStatus,
    StepView,
)
from models.catalogue import ThingDefinition
from models.tables import CaseRecord, UserAccount

OTHER_MATERIAL_ZH = "补正材料"
STAFF_UNNAMED_ZH = "窗口工作人员"


def time_limit_zh(days: int) -> str:
    return "即办" if days == 0 else f"{days}个工作日"


def material_name_zh(name: str) -> str:
    """A material's Chinese name; an item a step asked for by a code only is named generically."""
    return name if has_chinese(name) else OTHER_MATERIAL_ZH


def applicant_name_of(record: CaseRecord) -> str:
    """The applicant's name as filed (``form.applicant.name``); empty for cases filed before
    the read model kept the application."""
    applicant = (record.form or {}).get("applicant")
    name = applicant.get("name") if isinstance(applicant, dict) else None
    return str(name or record.applicant_name or "")


def staff_display_names(session: Session, usernames: set[str]) -> dict[str, str]:
    """Staff accounts' display names (display_name_zh) by login name; accounts without one are left out."""
    names: dict[str, str] = {}
    for username in usernames:
        account = session.get(UserAccount, username)
        if account is not None and account.display_name_zh:
            names[username] = account.display_name_zh
    return names


@dataclass
class NoticeMaterial:
    """One material as the notice lists it."""

    code: str
    name_zh: str
    status: str
    status_zh: str
    source_zh: str
    reference: str | None = None
    reason: str | None = None
    asked_by_zh: str | None = None  # the step that asked for it (补正), when one did


@dataclass
class NoticeStep:
    code: str
    name_zh: str
    department_zh: str
    time_limit_zh: str
    status: str
    status_zh: str
    due_at: datetime | None = None
    provisional: bool = False  # the due date touches a year whose holiday notice is not loaded (暂定)
    completed_at: datetime | None = None
    waits: bool = False  # not open yet: its clock starts when the steps before it are done


@dataclass
class Completion:
    """When the whole case is (or was) done: a completion time, a latest due time, or — while
    the clock waits for materials — the working days it takes once they are supplied."""

    completed_at: datetime | None = None
    due_at: datetime | None = None
    days_after_supplement: int | None = None
    refused: bool = False


@dataclass
class NoticeSheet:
    number: str  # the case number (受理编号); the technical id for cases filed before numbering
    case_id: str
    applicant_name: str
    staff_name: str
    status: str
    status_zh: str
    received: list[NoticeMaterial] = field(default_factory=list)
    shared: list[NoticeMaterial] = field(default_factory=list)
    owed: list[NoticeMaterial] = field(default_factory=list)
    steps: list[NoticeStep] = field(default_factory=list)
    completion: Completion = field(default_factory=Completion)

    @property
    def owes_materials(self) -> bool:
        return bool(self.owed)


def _case_steps(snapshot: CaseSnapshot) -> list[StepView]:
    """The case's own steps (a 差评回访 added after delivery is not one of them)."""
    return [step for step in snapshot.steps if not step.step.startswith(FOLLOW_UP.code)]


def _depends_on(definition: ThingDefinition | None, code: str, present: set[str]) -> list[str]:
    if definition is None:
        return []
    try:
        return [d for d in definition.step(code).depends_on if d in present]
    except KeyError:
        return []


class _WaitsForMaterials(Exception):
    """A step's clock is stopped until materials are supplied: no date can be given."""


def expected_completion(
    snapshot: CaseSnapshot, definition: ThingDefinition | None, calendar: WorkingCalendar
) -> Completion:
    """When the case is due as a whole, on the working-day calendar.

    A finished step counts at its completion time and an open one at its due time; a step not
    yet open starts on the last day of the steps it waits for (or now, if they are all done) and
    takes its full time limit. While a step's clock is stopped for 补正 (or the case still owes
    materials from intake), there is no date: the case then takes, once the materials are in, at
    most the longest chain of the time limits still to run."""
    if snapshot.status == CaseStatus.REFUSED:
        return Completion(refused=True)
    steps = _case_steps(snapshot)
    if snapshot.status == CaseStatus.COMPLETED:
        done = [step.completed_at for step in steps if step.completed_at is not None]
        return Completion(completed_at=max(done) if done else None)
    by_code = {step.step: step for step in steps}
    present = set(by_code)
    finish: dict[str, datetime | None] = {}

    def finish_of(code: str) -> datetime | None:
        if code in finish:
            return finish[code]
        step = by_code[code]
        moment: datetime | None
        if step.status in FINISHED_STEP_STATUSES:
            moment = step.completed_at
        elif step.status == StepStatus.AWAITING_SUPPLEMENT:
            raise _WaitsForMaterials()
        elif step.due_at is not None:
            moment = step.due_at
        else:
            before = [finish_of(d) for d in _depends_on(definition, code, present)]
            known = [moment for moment in before if moment is not None]
            if not known and snapshot.status == CaseStatus.AWAITING_SUPPLEMENT:
                raise _WaitsForMaterials()  # the first steps open once intake's materials are in
            # The latest moment the step can open: the last instant of the latest step before it.
            start = max(known) - timedelta(microseconds=1) if known else snapshot.submitted_at
            moment = calendar.add_working_days(start, step.time_limit_working_days).due_at
        finish[code] = moment
        return moment

    try:
        moments = [finish_of(code) for code in by_code]
    except _WaitsForMaterials:
        return Completion(days_after_supplement=_days_still_to_run(steps, definition))
    known = [moment for moment in moments if moment is not None]
    return Completion(due_at=max(known) if known else None)


def _days_still_to_run(steps: list[StepView], definition: ThingDefinition | None) -> int:
    """The longest chain of time limits (working days) among the steps not finished yet."""
    by_code = {step.step: step for step in steps}
    present = set(by_code)
    days: dict[str, int] = {}

    def chain(code: str) -> int:
        if code not in days:
            step = by_code[code]
            if step.status in FINISHED_STEP_STATUSES:
                days[code] = 0
            else:
                before = [chain(d) for d in _depends_on(definition, code, present)]
                days[code] = step.time_limit_working_days + max(before, default=0)
        return days[code]

    return max((chain(code) for code in by_code), default=0)


def _materials(snapshot: CaseSnapshot, notice: AcceptanceNotice) -> list[NoticeMaterial]:
    """The case's materials now; for a case filed before materials were kept current, the
    acceptance notice's lists."""
    steps = {step.step: step.name_zh for step in snapshot.steps}
    owed_at_intake = {item.code for item in notice.materials_to_supply}
    if not snapshot.materials:
        rows = [
            NoticeMaterial(m.code, material_name_zh(m.name_zh), "received", "已收取", "窗口收取", m.reference)
            for m in notice.materials_received
        ]
        rows += [
            NoticeMaterial(m.code, material_name_zh(m.name_zh), "shared", "已共享", "数据共享自动获取", m.reference)
            for m in notice.materials_shared
        ]
        owed = set(snapshot.missing_materials)
        rows += [
            NoticeMaterial(m.code, material_name_zh(m.name_zh), "to_supply", "需补正", "需补正")
            if m.code in owed
            else NoticeMaterial(m.code, material_name_zh(m.name_zh), "received", "已收取", "补正收取")
            for m in notice.materials_to_supply
        ]
        return rows
    rows = []
    for material in snapshot.materials:
        supplied = material.code in owed_at_intake or material.step is not None
        source = {
            MaterialStatus.RECEIVED: "补正收取" if supplied else "窗口收取",
            MaterialStatus.SHARED: "数据共享自动获取",
            MaterialStatus.TO_SUPPLY: "需补正",
        }[material.status]
        rows.append(
            NoticeMaterial(
                code=material.code,
                name_zh=material_name_zh(material.name_zh),
                status=material.status.value,
                status_zh=material.status_zh,
                source_zh=source,
                reference=material.reference,
                reason=material.reason if material.status == MaterialStatus.TO_SUPPLY else None,
                asked_by_zh=steps.get(material.step) if material.step else None,
            )
        )
    return rows


def notice_sheet(
    record: CaseRecord,
    snapshot: CaseSnapshot,
    definition: ThingDefinition | None,
    calendar: WorkingCalendar,
    staff_names: dict[str, str],
) -> NoticeSheet:
    """The notice of a case with an acceptance notice, as the case stands now."""
    notice = snapshot.acceptance_notice
    assert notice is not None
    staff = notice.accepting_staff
    sheet = NoticeSheet(
        number=snapshot.case_no or record.case_no or snapshot.case_id,
        case_id=snapshot.case_id,
        applicant_name=applicant_name_of(record),
        staff_name=staff_names.get(staff, STAFF_UNNAMED_ZH) if staff else "",
        status=snapshot.status.value,
        status_zh=snapshot.status_zh,
    )
    for material in _materials(snapshot, notice):
        {"received": sheet.received, "shared": sheet.shared}.get(material.status, sheet.owed).append(material)
    for step in _case_steps(snapshot):
        sheet.steps.append(
            NoticeStep(
                code=step.step,
                name_zh=step.name_zh,
                # The competent unit (杭州市上城区公安分局) where the step was routed, else the department.
                department_zh=step.unit.name_zh if step.unit else step.department_zh,
                time_limit_zh=time_limit_zh(step.time_limit_working_days),
                status=step.status.value,
                status_zh=step.status_zh,
                due_at=step.due_at if step.status not in FINISHED_STEP_STATUSES else None,
                provisional=step.provisional,
                completed_at=step.completed_at if step.status == StepStatus.DONE else None,
                waits=step.status == StepStatus.PENDING,
            )
        )
    sheet.completion = expected_completion(snapshot, definition, calendar)
    return sheet


def load_notice_parts(session: Session, record: CaseRecord) -> tuple[CaseSnapshot, dict[str, str]]:
    """The case's snapshot and the display name of the staff member who accepted it."""
    snapshot = CaseSnapshot.model_validate(record.snapshot)
    staff = snapshot.acceptance_notice.accepting_staff if snapshot.acceptance_notice else None
    return snapshot, staff_display_names(session, {staff} if staff else set())

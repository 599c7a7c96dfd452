"""What a task page shows of its case beside the work: the application as filed, in labelled
Chinese sections (the same labels as the application form, choices by their Chinese names), the
situation answers, the materials as they stand now (with the reason of those still owed), the
results of the steps already done, hints for the result form that the application gives away
(the birth date and sex a new ID number must carry), and, on a 回访, the rating that opened it
and how to reach the applicant.

Personal data follows the access rule of ``GET /cases/{case_id}`` (domain/redaction.py): in full
for the departments whose step has opened, masked for everyone else. The one exception is the
applicant's name and phone on a 回访 task: the supervisor holding it has to call them.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import date, datetime
from typing import Any

from sqlalchemy import select
from sqlmodel import Session, col

from api.console.applicant import OPTION_LABELS, SCORE_LABELS, form_groups, label_for
from domain.catalogue import FOLLOW_UP
from domain.display import date_zh, datetime_zh
from domain.redaction import mask_personal_data, sees_case_personal_data
from domain.workcalendar import SHANGHAI
from models.case import MATERIAL_STATUS_ZH, Actor, CaseSnapshot, EventType, MaterialStatus, StepStatus
from models.catalogue import ResultField, StepDefinition, ThingDefinition, read_path
from models.tables import CaseEventRecord, CaseRecord

MATERIAL_TONE = {MaterialStatus.RECEIVED: "ok", MaterialStatus.SHARED: "info", MaterialStatus.TO_SUPPLY: "warn"}
NO_FORM_ZH = "该案件受理较早，系统未保存申请表内容，请查阅受理材料或联系受理单位。"
WHOLE_CASE_ZH = "整体评价"


@dataclass
class Row:
    label: str
    value: str
    path: str = ""


@dataclass
class Section:
    label: str
    rows: list[Row]


@dataclass
class MaterialRow:
    code: str
    name_zh: str
    status: str
    status_zh: str
    tone: str
    reason: str = ""
    step_zh: str = ""
    reference: str = ""


@dataclass
class StepResult:
    step: str
    name_zh: str
    department_zh: str
    completed_at: datetime | None
    rows: list[Row]


@dataclass
class FollowUp:
    """The low rating a 回访 answers, and how to reach the applicant."""

    score: int | None
    score_zh: str
    comment: str
    rated_step_zh: str
    rated_department_zh: str
    rated_at: datetime | None
    contact_name: str
    contact_phone: str


@dataclass
class ApplicationView:
    has_form: bool
    masked: bool
    sections: list[Section] = field(default_factory=list)
    answers: list[Row] = field(default_factory=list)
    materials: list[MaterialRow] = field(default_factory=list)
    earlier_results: list[StepResult] = field(default_factory=list)
    result_hints: dict[str, str] = field(default_factory=dict)
    follow_up: FollowUp | None = None
    no_form_zh: str = NO_FORM_ZH


# --- values as people read them ---------------------------------------------------------------


def value_zh(value: Any) -> str:
    if value is True:
        return "是"
    if value is False:
        return "否"
    if value is None:
        return ""
    return str(value)


def _form_day(value: Any) -> date | None:
    """The Beijing date of a form's date-time (an ISO string), as domain/results.py reads it."""
    if not isinstance(value, str):
        return None
    try:
        moment = datetime.fromisoformat(value)
    except ValueError:
        return None
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=SHANGHAI)
    return moment.astimezone(SHANGHAI).date()


def situation_answers(definition: ThingDefinition, snapshot: CaseSnapshot, form: Mapping[str, Any]) -> dict[str, str]:
    """The answers that chose the case's situation: the situation's own, else those the form gives."""
    answers = definition.answers_from_form(form)
    situation = next((item for item in definition.situations if item.code == snapshot.situation), None)
    if situation is not None:
        answers.update(situation.when)
    return answers


def form_sections(definition: ThingDefinition, form: Mapping[str, Any], answers: Mapping[str, str]) -> list[Section]:
    """The application's fields, grouped and labelled as on the application form; empty fields left out."""
    sections: list[Section] = []
    for group in form_groups(definition, answers):
        rows: list[Row] = []
        for spec in group.fields:
            value = read_path(form, spec.path)
            if value is None or value == "":
                continue
            if spec.kind == "choice":
                text = dict(spec.options).get(str(value)) or OPTION_LABELS.get(str(value), str(value))
            elif spec.kind == "datetime":
                text = datetime_zh(value) if isinstance(value, str) else value_zh(value)
            else:
                text = value_zh(value)
            rows.append(Row(spec.label, text, spec.path))
        if rows:
            sections.append(Section(group.label, rows))
    return sections


def answer_rows(definition: ThingDefinition, answers: Mapping[str, str]) -> list[Row]:
    return [
        Row(question.label_zh, question.options.get(answers[question.code], answers[question.code]), question.code)
        for question in definition.questions
        if question.code in answers
    ]


def material_rows(snapshot: CaseSnapshot, step_names: Mapping[str, str]) -> list[MaterialRow]:
    """The case's materials as they stand now; for a case without that list, as accepted."""
    if snapshot.materials:
        return [
            MaterialRow(
                code=item.code,
                name_zh=item.name_zh,
                status=item.status.value,
                status_zh=item.status_zh or MATERIAL_STATUS_ZH[item.status],
                tone=MATERIAL_TONE[item.status],
                reason=(item.reason or "") if item.status == MaterialStatus.TO_SUPPLY else "",
                step_zh=step_names.get(item.step or "", ""),
                reference=item.reference or "",
            )
            for item in snapshot.materials
        ]
    notice = snapshot.acceptance_notice
    if notice is None:
        return []
    kinds = [
        (MaterialStatus.RECEIVED, notice.materials_received),
        (MaterialStatus.SHARED, notice.materials_shared),
        (MaterialStatus.TO_SUPPLY, notice.materials_to_supply),
    ]
    return [
        MaterialRow(
            code=entry.code,
            name_zh=entry.name_zh,
            status=status.value,
            status_zh=MATERIAL_STATUS_ZH[status],
            tone=MATERIAL_TONE[status],
            reference=entry.reference or "",
        )
        for status, entries in kinds
        for entry in entries
    ]


def result_labels(definition: ThingDefinition) -> dict[str, dict[str, str]]:
    labels = {step.code: {name: spec.label_zh for name, spec in step.result.items()} for step in definition.steps}
    labels[FOLLOW_UP.code] = {name: spec.label_zh for name, spec in FOLLOW_UP.result.items()}
    return labels


def earlier_results(definition: ThingDefinition, snapshot: CaseSnapshot, current: str) -> list[StepResult]:
    """The results of the case's steps done before this one, in the case's order."""
    labels = result_labels(definition)
    done: list[StepResult] = []
    for step in snapshot.steps:
        if step.step == current or step.status != StepStatus.DONE or not step.result:
            continue
        names = labels.get(FOLLOW_UP.code if step.step.startswith(FOLLOW_UP.code) else step.step, {})
        rows = [
            Row(names.get(name, "理由" if name == "reason" else "办理结果"), value_zh(value), name)
            for name, value in step.result.items()
        ]
        done.append(StepResult(step.step, step.name_zh, step.department_zh, step.completed_at, rows))
    return done


def _hint_for(spec: ResultField, form: Mapping[str, Any]) -> str:
    """What the application tells about a result field the workflow checks against it
    (domain/results.py): the birth date (and sex) an ID number must carry."""
    if spec.type != "citizen_id" or not spec.birth_date_of:
        return ""
    born = _form_day(read_path(form, spec.birth_date_of))
    if born is None:
        return ""
    parent = spec.birth_date_of.rpartition(".")[0]
    who = label_for(parent).removesuffix("信息") if parent else ""
    parts = [f"{who}出生日期 {date_zh(born)}（号码第7至14位为 {born:%Y%m%d}）"]
    sex = read_path(form, f"{parent}.sex" if parent else "sex")
    if sex in {"male", "female"}:
        parity = "奇数" if sex == "male" else "偶数"
        parts.append(f"性别 {OPTION_LABELS[sex]}（第17位为{parity}）")
    return "18位公民身份号码；" + "，".join(parts)


def result_hints(step: StepDefinition, form: Mapping[str, Any] | None) -> dict[str, str]:
    if not form:
        return {}
    hints = {name: _hint_for(spec, form) for name, spec in step.result.items()}
    return {name: hint for name, hint in hints.items() if hint}


def _follow_up(
    session: Session,
    snapshot: CaseSnapshot,
    step: str,
    form: Mapping[str, Any] | None,
    step_names: Mapping[str, str],
) -> FollowUp:
    opened = session.execute(
        select(col(CaseEventRecord.detail))
        .where(
            col(CaseEventRecord.case_id) == snapshot.case_id,
            col(CaseEventRecord.step) == step,
            col(CaseEventRecord.type) == EventType.OPENED.value,
        )
        .order_by(col(CaseEventRecord.seq))
        .limit(1)
    ).scalar_one_or_none()
    detail = opened or {}
    rated_step = detail.get("rated_step")
    score = detail.get("rating_score")
    rating = next((item for item in snapshot.ratings if item.step == rated_step), None)
    if rating is None and score is not None:
        rating = next((item for item in snapshot.ratings if item.score == score), None)
    if rating is not None:
        score = rating.score
        rated_step = rating.step
    applicant = (form or {}).get("applicant") or {}
    score_value = score if isinstance(score, int) else None
    departments = {view.step: view.department_zh for view in snapshot.steps}
    return FollowUp(
        score=score_value,
        score_zh=SCORE_LABELS.get(score_value or 0, ""),
        comment=(rating.comment or "") if rating else "",
        rated_step_zh=step_names.get(rated_step, rated_step) if rated_step else WHOLE_CASE_ZH,
        rated_department_zh=departments.get(rated_step, "") if rated_step else "",
        rated_at=rating.rated_at if rating else None,
        contact_name=str(applicant.get("name") or ""),
        contact_phone=str(applicant.get("phone") or ""),
    )


def application_view(
    session: Session,
    actor: Actor,
    record: CaseRecord,
    snapshot: CaseSnapshot,
    definition: ThingDefinition,
    step: StepDefinition,
    task_step: str,
) -> ApplicationView:
    """Everything the task page shows of the case beside the task, as ``actor`` may read it."""
    full = sees_case_personal_data(actor, snapshot)
    form = record.form
    shown: Mapping[str, Any] | None = form if full or form is None else mask_personal_data(form)
    step_names = {view.step: view.name_zh for view in snapshot.steps}
    view = ApplicationView(has_form=form is not None, masked=not full)
    if shown is not None:
        answers = situation_answers(definition, snapshot, shown)
        view.sections = form_sections(definition, shown, answers)
        view.answers = answer_rows(definition, answers)
        view.result_hints = result_hints(step, shown)
    view.materials = material_rows(snapshot, step_names)
    view.earlier_results = earlier_results(definition, snapshot, task_step)
    if task_step.startswith(FOLLOW_UP.code):
        # The supervisor holding the 回访 calls the applicant: the contact is shown in full.
        view.follow_up = _follow_up(session, snapshot, task_step, form, step_names)
    return view

"""Applicant pages: the things the catalogue offers, the application form generated from a
thing's definition, my cases with their progress, 补正 and 好差评.

The application form is built from the catalogue: the sub-item's situation questions first,
then — for the situation the answers select — the fields of its form model (``domain/forms.py``)
and the materials that situation needs. The window clerk's intake (``clerk.py``) uses the same
form builder. Submissions, supplements and ratings go through the same functions as the JSON API.
"""

from __future__ import annotations

import types
from collections.abc import Awaitable, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Literal, Union, get_args, get_origin

from fastapi import Request, Response
from pydantic import AwareDatetime, BaseModel, ValidationError
from sqlalchemy import select
from sqlmodel import Session, col
from starlette.concurrency import run_in_threadpool
from starlette.datastructures import FormData
from starlette.datastructures import UploadFile as StarletteUploadFile
from temporalio.client import WorkflowUpdateFailedError

from api.console.base import (
    ApplicantActor,
    checked_form,
    console_router,
    flash_redirect,
    form_text,
    idempotency_key_of,
    render,
)
from api.console.messages import INPUT_LABELS, field_reason, input_label, pydantic_reason, zh_text
from api.console.notice import NoticeMaterial, NoticeSheet, notice_sheet
from api.errors import STATUS_BY_CODE, from_update_failure
from api.routes.cases import RatingRequest
from api.routes.materials import file_store
from api.schemas import SubmitCaseRequest
from domain.catalogue import FOLLOW_UP, load_life_stages
from domain.forms import FORMS
from domain.uploads import FILE_REFERENCE
from models.case import Actor, CaseSnapshot, EventType, StepStatus
from models.catalogue import Material, ThingDefinition
from models.errors import DomainError, ErrorCode
from models.tables import CaseEventRecord, CaseRecord
from services.access import visible_case, visible_cases_filter
from services.case_files import case_files, store_material_file
from services.cases import accept_submission, end_case, rate_case_as, supply_case_materials
from services.catalogue import current_definitions, definition_for

router = console_router()

# --- labels ------------------------------------------------------------------------------

# Chinese labels of form fields: by full dotted path first, then by the field's own name.
LABELS_BY_PATH: dict[str, str] = {
    "newborn": "新生儿信息",
    "mother": "母亲信息",
    "father": "父亲信息",
    "hukou": "落户信息",
    "hukou.address": "落户地址",
    "hukou.division_code": "落户地行政区划代码",
    "applicant": "申请人信息",
    "delivery": "结果送达",
    "delivery.address": "邮寄地址",
    "company": "企业信息",
    "company.name": "企业名称",
    "company.address": "住所（经营场所）",
    "legal_representative": "法定代表人",
    "employees": "用工信息",
    "tax": "税务信息",
    "tax.agent": "办税人员",
    "bank": "银行开户预约",
    "deceased": "逝者信息",
    "payout_account": "收款账户",
    "retiree": "退休人员",
    "employer": "用人单位",
    "employer.name": "单位名称",
    "retirement": "退休信息",
    "retirement.special_work": "特殊工种",
    "housing_fund": "住房公积金",
    "bank_account": "养老金收款账户",
    "applicant.role": "申请人身份",
    "applicant.relation": "与办理对象的关系",
}
LABELS_BY_NAME: dict[str, str] = {
    "name": "姓名",
    "sex": "性别",
    "born_at": "出生时间",
    "birthplace_division_code": "出生地行政区划代码",
    "id_number": "公民身份号码",
    "follow": "落户方式",
    "address": "地址",
    "phone": "联系电话",
    "relation": "关系",
    "method": "送达方式",
    "registered_capital": "注册资本（元）",
    "business_scope": "经营范围",
    "headcount": "招用人数",
    "bank_name": "开户银行",
    "role": "身份",
    "died_at": "死亡时间",
    "place_of_death": "死亡地点",
    "holder": "账户持有人",
    "account_no": "银行账号",
    "credit_code": "统一社会信用代码",
    "job_title": "特殊工种岗位",
    "years": "从事年限（年）",
}
OPTION_LABELS: dict[str, str] = {
    "male": "男",
    "female": "女",
    "father": "父亲",
    "mother": "母亲",
    "grandparent": "祖父母/外祖父母",
    "guardian": "监护人",
    "other": "其他",
    "spouse": "配偶",
    "child": "子女",
    "parent": "父母",
    "sibling": "兄弟姐妹",
    "other_relative": "其他亲属",
    "pickup": "窗口领取",
    "mail": "邮寄送达",
    "legal_representative": "法定代表人本人",
    "agent": "委托代理人",
    "retiree": "退休人员本人",
    "employer_agent": "用人单位经办人",
}
HINTS: dict[str, str] = {
    "born_at": "北京时间",
    "died_at": "北京时间",
    "birthplace_division_code": "6位数字，如 330102",
    "division_code": "落户地所在区、县的6位代码，如 330102（杭州市上城区）；不填按330102受理",
    "id_number": "18位居民身份证号码，末位可为X",
    "phone": "手机号码或固定电话（区号-号码）",
    "registered_capital": "以元为单位，保留两位小数，如 1000000.00",
    "credit_code": "18位统一社会信用代码",
    "account_no": "12至30位数字",
    "delivery.address": "选择邮寄送达时必填",
}
# How each kind of value is typed on a phone's keyboard (by field name): the input's type, its
# inputmode and what the browser may fill in or correct. An ID number (公民身份号码) is 17 digits and
# a check character that may be X (ISO 7064 MOD 11-2): inputmode="numeric" brings up a digits-only
# keypad on which the X cannot be typed, so ID numbers (and credit codes, which have letters) keep
# the text keyboard, with capitals on so the X comes out upper case, and no autofill, autocorrect
# or spell check. Numbers made of digits only get the numeric keypad, money the decimal one, and
# phone numbers type="tel" (the phone keypad, and the browser's own number to fill in).
_CODE_INPUT = {
    "inputmode": "text",
    "autocapitalize": "characters",
    "autocomplete": "off",
    "autocorrect": "off",
    "spellcheck": "false",
}
INPUT_ATTRIBUTES: dict[str, dict[str, str]] = {
    "id_number": _CODE_INPUT,
    "credit_code": _CODE_INPUT,
    "phone": {"type": "tel", "inputmode": "tel", "autocomplete": "tel"},
    "birthplace_division_code": {"inputmode": "numeric", "autocomplete": "off"},
    "division_code": {"inputmode": "numeric", "autocomplete": "off"},
    "account_no": {"inputmode": "numeric", "autocomplete": "off"},
    "registered_capital": {"inputmode": "decimal", "autocomplete": "off"},
}
NUMBER_ATTRIBUTES: dict[str, str] = {"inputmode": "numeric"}
# Fields the situation decides: shown only when the answer to the question is the value given.
SHOWN_WHEN: dict[str, dict[str, tuple[str, str]]] = {
    "company_opening": {"employees.headcount": ("hires_employees", "yes"), "tax.agent": ("needs_invoices", "yes")},
    "retirement": {"retirement.special_work": ("retirement_type", "special_work")},
}
# Optional sections the situation makes required (the form model's own rule, said before submitting).
REQUIRED_WHEN: dict[str, dict[str, dict[str, set[str]]]] = {
    "birth": {"father": {"marital_status": {"married"}, "hukou_follow": {"father"}}},
}
SOURCE_LABELS: dict[str, str] = {
    "form": "在线填写",
    "data_sharing": "自动获取",
    "submit": "需提交",
    "commitment": "告知承诺",
}
SCORE_LABELS: dict[int, str] = {5: "非常满意", 4: "满意", 3: "基本满意", 2: "不满意", 1: "非常不满意"}


def label_for(path: str) -> str:
    return LABELS_BY_PATH.get(path) or LABELS_BY_NAME.get(path.rsplit(".", 1)[-1], path)


def error_label(intake: IntakeForm, key: str) -> str:
    """The Chinese name of an input a refusal names, also for inputs the page has none for
    (a material, a situation answer): people never read a field path."""
    kind, _, code = key.partition(".")
    if kind in {"materials", "commit"}:
        names = {material.code: material.name_zh for material in intake.definition.materials}
        return names.get(code, "申请材料")
    if kind == "answers":
        return next((q.label_zh for q in intake.definition.questions if q.code == code), "办理情形")
    label = label_for(key)
    return input_label(key) if label == key else label


def time_limit_zh(days: int) -> str:
    return "即办" if days == 0 else f"{days}个工作日"


# --- the form, generated from the definition ---------------------------------------------


@dataclass
class FieldSpec:
    """One input of the application form, named by its dotted path in the submitted form."""

    path: str
    label: str
    kind: Literal["text", "choice", "datetime", "number"]
    required: bool
    options: list[tuple[str, str]] = field(default_factory=list)
    hint: str = ""
    attributes: dict[str, str] = field(default_factory=dict)  # type, inputmode, autocomplete…

    @property
    def input_type(self) -> str:
        return self.attributes.get("type", "text")

    @property
    def input_attributes(self) -> list[tuple[str, str]]:
        """The input's attributes besides its type, in a stable order."""
        return sorted((name, value) for name, value in self.attributes.items() if name != "type")

    @property
    def input_id(self) -> str:
        return "f-" + self.path.replace(".", "-")


@dataclass
class FieldGroup:
    """A fieldset: one nested model of the form (新生儿信息, 母亲信息…)."""

    path: str
    label: str
    required: bool
    fields: list[FieldSpec] = field(default_factory=list)


@dataclass
class MaterialSpec:
    code: str
    name_zh: str
    source: str
    source_zh: str
    provider_zh: str = ""
    legal_basis: str = ""


@dataclass
class IntakeForm:
    """Everything an application page needs: the questions, and once answered the form."""

    definition: ThingDefinition
    channel: str
    answers: dict[str, str]
    answer_errors: dict[str, str]
    situation_zh: str | None = None
    groups: list[FieldGroup] = field(default_factory=list)
    materials: list[MaterialSpec] = field(default_factory=list)
    steps: list[dict[str, Any]] = field(default_factory=list)

    @property
    def ready(self) -> bool:
        """True once the answers select a situation: the form itself can be shown."""
        return self.situation_zh is not None


def _without_none(annotation: Any) -> tuple[Any, bool]:
    """The annotation without ``None``, and whether None was allowed."""
    if get_origin(annotation) in (Union, types.UnionType):
        members = [arg for arg in get_args(annotation) if arg is not type(None)]
        optional = len(members) < len(get_args(annotation))
        return (members[0] if len(members) == 1 else annotation), optional
    return annotation, False


def _is_model(annotation: Any) -> bool:
    return isinstance(annotation, type) and issubclass(annotation, BaseModel)


def _field_spec(path: str, annotation: Any, required: bool, allowed: Mapping[str, list[str]]) -> FieldSpec:
    name = path.rsplit(".", 1)[-1]
    hint = HINTS.get(path) or HINTS.get(name, "")
    if get_origin(annotation) is Literal:
        values = [str(value) for value in get_args(annotation)]
        values = [value for value in values if value in allowed.get(path, values)]
        options = [(value, OPTION_LABELS.get(value, value)) for value in values]
        return FieldSpec(path, label_for(path), "choice", required, options, hint)
    if annotation in (AwareDatetime, datetime):
        return FieldSpec(path, label_for(path), "datetime", required, hint=hint)
    if annotation is int:
        return FieldSpec(path, label_for(path), "number", required, hint=hint, attributes=dict(NUMBER_ATTRIBUTES))
    attributes = dict(INPUT_ATTRIBUTES.get(name, {}))
    return FieldSpec(path, label_for(path), "text", required, hint=hint, attributes=attributes)


def _shown(form_name: str, path: str, answers: Mapping[str, str]) -> bool:
    rule = SHOWN_WHEN.get(form_name, {}).get(path)
    return rule is None or answers.get(rule[0]) == rule[1]


def _required_by_situation(form_name: str, path: str, answers: Mapping[str, str]) -> bool:
    rules = REQUIRED_WHEN.get(form_name, {}).get(path)
    return rules is not None and any(answers.get(code) in values for code, values in rules.items())


def form_groups(definition: ThingDefinition, answers: Mapping[str, str]) -> list[FieldGroup]:
    """The fieldsets of the thing's form model for these answers. Fields the answers already
    give (a question's ``from_form``) are not asked again; materials are listed separately."""
    form_name = definition.form
    from_answers = {question.from_form for question in definition.questions if question.from_form}
    allowed: dict[str, list[str]] = {"delivery.method": [str(method) for method in definition.delivery_methods]}
    top = FieldGroup(path="", label="基本信息", required=True)
    groups: list[FieldGroup] = [top]

    def walk(model: type[BaseModel], prefix: str, group: FieldGroup, group_required: bool) -> None:
        for name, info in model.model_fields.items():
            path = f"{prefix}{name}"
            if path == "materials" or path in from_answers or not _shown(form_name, path, answers):
                continue
            annotation, optional = _without_none(info.annotation)
            required = info.is_required() and not optional
            if _is_model(annotation):
                nested_required = (required and group_required) or (
                    _required_by_situation(form_name, path, answers)
                    or SHOWN_WHEN.get(form_name, {}).get(path) is not None
                )
                nested = FieldGroup(path=path, label=label_for(path), required=bool(nested_required))
                groups.append(nested)
                walk(annotation, f"{path}.", nested, bool(nested_required))
            else:
                group.fields.append(_field_spec(path, annotation, required and group_required, allowed))

    walk(FORMS[form_name], "", top, True)
    # A nested model whose fields are all asked elsewhere (e.g. housing_fund) leaves an empty fieldset.
    return [group for group in groups if group.fields]


def _material_spec(definition: ThingDefinition, material: Material) -> MaterialSpec:
    provider = ""
    if material.source == "data_sharing" and material.sharing is not None:
        provider = definition.department_name(material.sharing.provider)
    return MaterialSpec(
        code=material.code,
        name_zh=material.name_zh,
        source=material.source,
        source_zh=SOURCE_LABELS.get(material.source, material.source),
        provider_zh=provider,
        legal_basis=material.legal_basis or "",
    )


def intake_form(definition: ThingDefinition, channel: str, answers: Mapping[str, str]) -> IntakeForm:
    """The application page for these answers: the questions until they select a situation,
    then that situation's fields, materials and steps (with their time limits on ``channel``)."""
    known = {question.code: question for question in definition.questions}
    given = {code: value for code, value in answers.items() if code in known and value}
    intake = IntakeForm(definition=definition, channel=channel, answers=given, answer_errors={})
    if len(given) < len(known):
        return intake
    try:
        situation = definition.situation_for(given)
    except DomainError as error:
        intake.answer_errors = {
            key.removeprefix("answers."): "没有与此选择对应的办理情形，请重新选择" for key in error.fields
        }
        return intake
    view = definition.for_situation(situation.code) if situation else definition
    intake.situation_zh = situation.name_zh if situation else definition.name_zh
    intake.groups = form_groups(definition, given)
    intake.materials = [_material_spec(view, material) for material in view.materials]
    intake.steps = [
        {
            "name_zh": step.name_zh,
            "department_zh": view.department_name(step.department_for(channel)),
            "time_limit_zh": time_limit_zh(step.time_limit_for(channel)),
        }
        for step in view.steps_for(channel)
    ]
    return intake


def _set_path(target: dict[str, Any], path: str, value: Any) -> None:
    parts = path.split(".")
    for part in parts[:-1]:
        target = target.setdefault(part, {})
    target[parts[-1]] = value


def _datetime_value(raw: str) -> str:
    # <input type="datetime-local"> sends "2026-11-20T08:30" with no offset: the applicant means Beijing time.
    if len(raw) == 16 and raw[10] == "T":
        return f"{raw}:00+08:00"
    return raw


def posted_values(intake: IntakeForm, form: FormData) -> dict[str, str]:
    """The form's inputs as posted (for re-rendering after an error)."""
    values = {spec.path: form_text(form, spec.path) for group in intake.groups for spec in group.fields}
    for material in intake.materials:
        if material.source == "submit":
            values[f"materials.{material.code}"] = form_text(form, f"materials.{material.code}")
        if material.source == "commitment":
            values[f"commit.{material.code}"] = form_text(form, f"commit.{material.code}")
    return values


def submission_form(intake: IntakeForm, values: Mapping[str, str]) -> dict[str, Any]:
    """The JSON form of a submission from the posted values: empty inputs are left out, the
    situation answers fill the fields they come from, handed-in materials go under ``materials``."""
    kinds = {spec.path: spec.kind for group in intake.groups for spec in group.fields}
    form: dict[str, Any] = {}
    # A required section left blank is sent empty, so that each of its fields is named as missing.
    for group in intake.groups:
        if group.path and group.required:
            _set_path(form, group.path, {})
    for path, kind in kinds.items():
        value = values.get(path, "")
        if value:
            _set_path(form, path, _datetime_value(value) if kind == "datetime" else value)
    for question in intake.definition.questions:
        if question.from_form and question.code in intake.answers:
            _set_path(form, question.from_form, intake.answers[question.code])
    materials = {
        material.code: values[f"materials.{material.code}"]
        for material in intake.materials
        if material.source == "submit" and values.get(f"materials.{material.code}")
    }
    if materials:
        form["materials"] = materials
    return form


# Model rules (domain/forms.py) explained in Chinese, beside the field they concern.
RULE_MESSAGES: list[tuple[str, str, str]] = [
    ("address is required when the method is mail", "delivery.address", "选择邮寄送达时须填写邮寄地址"),
    ("father is required", "father.name", "父母已登记结婚或随父落户的，须填写父亲信息"),
    ("headcount is required", "employees.headcount", "招用员工的，须填写招用人数"),
    ("agent (办税人员) is required", "tax.agent.name", "申领发票的，须填写办税人员信息"),
    ("acting as legal representative", "applicant.id_number", "以法定代表人身份申请的，申请人须为法定代表人本人"),
    ("must be a family member", "applicant.id_number", "申请人须为逝者亲属，不能是逝者本人"),
    ("died_at cannot be in the future", "deceased.died_at", "死亡时间不能晚于当前时间"),
    ("died_at is before the birth date", "deceased.died_at", "死亡时间早于身份证号码中的出生日期"),
    ("special_work is required", "retirement.special_work.job_title", "特殊工种提前退休的，须填写特殊工种信息"),
    ("acting as the retiree must be the retiree", "applicant.id_number", "以本人身份申请的，申请人须为退休人员本人"),
    ("holder must be the retiree", "bank_account.holder", "待遇发放至退休人员本人账户，持有人须为退休人员"),
    ("cannot be in the future", "", "不能晚于当前时间"),
]


def field_errors_zh(exc: ValidationError) -> tuple[dict[str, str], list[str]]:
    """Each refused field with its reason in Chinese, and the errors that belong to no field."""
    fields: dict[str, str] = {}
    general: list[str] = []
    for error in exc.errors():
        path = ".".join(str(part) for part in error["loc"])
        message = str(error.get("msg", ""))
        rule = next((r for r in RULE_MESSAGES if r[0] in message), None)
        if rule is not None:
            target = rule[1] or path
            if target:
                fields.setdefault(target, rule[2])
            else:
                general.append(rule[2])
        elif path:
            fields.setdefault(path, pydantic_reason(error, path))
        else:
            general.append(pydantic_reason(error))
    return fields, general


def domain_field_errors(error: DomainError) -> dict[str, str]:
    """A DomainError's fields, keyed like the page's inputs (``form.newborn.born_at`` → ``newborn.born_at``)."""
    fields: dict[str, str] = {}
    for key, reason in error.fields.items():
        rule = next((r for r in RULE_MESSAGES if r[0] in reason), None)
        fields[key.removeprefix("form.")] = rule[2] if rule else field_reason(reason)
    return fields


@dataclass
class SubmissionOutcome:
    """A submitted application form: the accepted case, or what to show beside the fields."""

    snapshot: CaseSnapshot | None = None
    status_code: int = 200
    message: str = ""
    field_errors: dict[str, str] = field(default_factory=dict)
    general_errors: list[str] = field(default_factory=list)
    values: dict[str, str] = field(default_factory=dict)
    existing_case_url: str | None = None  # the same subject's case, when this one is a duplicate


async def submit_intake(request: Request, actor: Actor, intake: IntakeForm, form: FormData) -> SubmissionOutcome:
    """Check the posted application and, when it is complete, submit it like POST /cases."""
    values = posted_values(intake, form)
    outcome = SubmissionOutcome(values=values)
    missing_commitments = {
        f"commit.{material.code}": "请阅读并勾选承诺"
        for material in intake.materials
        if material.source == "commitment" and values.get(f"commit.{material.code}") != "yes"
    }
    form_data = submission_form(intake, values)
    try:
        FORMS[intake.definition.form].model_validate(form_data)
    except ValidationError as exc:
        outcome.field_errors, outcome.general_errors = field_errors_zh(exc)
    outcome.field_errors.update(missing_commitments)
    if outcome.field_errors or outcome.general_errors:
        outcome.status_code = 422
        outcome.message = "申请表填写有误，请按提示修改"
        return outcome
    body = SubmitCaseRequest(
        thing=intake.definition.code, channel=intake.channel, form=form_data, answers=intake.answers or None
    )
    app = request.app
    try:
        snapshot, _ = await accept_submission(
            thing=body.thing,
            channel=body.channel,
            form=body.form,
            answers=body.answers,
            actor=actor,
            client=app.state.temporal_client,
            engine=app.state.engine,
            settings=app.state.settings,
            idempotency_key=idempotency_key_of(form),
        )
    except DomainError as error:
        if error.code in {ErrorCode.UNAUTHORIZED, ErrorCode.FORBIDDEN, ErrorCode.NOT_FOUND}:
            raise
        if error.code == ErrorCode.DUPLICATE_CASE:
            # Back and submit again, or a second filing: point at the case that exists.
            existing = error.fields["existing_case_id"]
            outcome.status_code = STATUS_BY_CODE[error.code]
            outcome.message = "已提交过相同申请，不会重复受理。"
            outcome.existing_case_url = (
                f"/window/cases/{existing}/notice" if actor.role == "clerk" else f"/my/cases/{existing}"
            )
            return outcome
        outcome.status_code = STATUS_BY_CODE[error.code]
        outcome.message = zh_text(error.message, "申请未能受理，请按提示修改")
        outcome.field_errors = domain_field_errors(error)
        return outcome
    outcome.snapshot = snapshot
    return outcome


def answers_from_query(definition: ThingDefinition, request: Request) -> dict[str, str]:
    return {q.code: request.query_params.get(q.code, "") for q in definition.questions}


def answers_from_form(definition: ThingDefinition, form: FormData) -> dict[str, str]:
    return {q.code: form_text(form, f"answer.{q.code}") for q in definition.questions}


def active_definition(request: Request, thing: str) -> ThingDefinition:
    with Session(request.app.state.engine) as session:
        return definition_for(session, thing)


def online_channel(definition: ThingDefinition) -> str:
    """The channel an applicant uses from home: the one without an accepting window."""
    for channel in definition.channels:
        if channel.accepting_unit is None:
            return channel.code
    raise DomainError(ErrorCode.NOT_FOUND, "该事项暂不支持网上申办，请到窗口办理")


def intake_page(
    request: Request,
    actor: Actor,
    intake: IntakeForm,
    *,
    action: str,
    page_title: str,
    outcome: SubmissionOutcome | None = None,
    idempotency_key: str | None = None,
    template: str = "applicant_apply.html",
    extra: Mapping[str, Any] | None = None,
) -> Response:
    """The application page (applicant or window): questions, then the generated form."""
    outcome = outcome or SubmissionOutcome()
    shown = {spec.path for group in intake.groups for spec in group.fields}
    shown |= {f"materials.{m.code}" for m in intake.materials} | {f"commit.{m.code}" for m in intake.materials}
    return render(
        request,
        template,
        {
            "intake": intake,
            "definition": intake.definition,
            "action": action,
            "page_title": page_title,
            "values": outcome.values,
            "errors": outcome.field_errors,
            # Errors about no input on the page (e.g. a whole section) are listed above the form.
            "general_errors": outcome.general_errors
            + [f"{error_label(intake, key)}：{why}" for key, why in outcome.field_errors.items() if key not in shown],
            "error_message": outcome.message,
            "existing_case_url": outcome.existing_case_url,
            # Kept across a re-render, so that correcting and resubmitting is the same submission.
            "idempotency_key": idempotency_key,
            **(extra or {}),
        },
        status_code=outcome.status_code,
        actor=actor,
    )


# --- the catalogue -----------------------------------------------------------------------


def catalogue_by_stage(request: Request) -> list[dict[str, Any]]:
    """主项 → 子项, as the catalogue lists them (only stages with a thing)."""
    with Session(request.app.state.engine) as session:
        definitions = current_definitions(session)
    stages = []
    for stage in load_life_stages().values():
        things = [d for d in definitions.values() if d.life_stage == stage.code]
        if things:
            stages.append({"name_zh": stage.name_zh, "audience": stage.audience, "things": things})
    return stages


@router.get("/apply")
def apply_index(request: Request, actor: ApplicantActor) -> Response:
    return render(request, "applicant_things.html", {"stages": catalogue_by_stage(request)}, actor=actor)


@router.get("/apply/{thing}")
async def apply_form(request: Request, thing: str, actor: ApplicantActor) -> Response:
    definition = await run_in_threadpool(active_definition, request, thing)
    intake = intake_form(definition, online_channel(definition), answers_from_query(definition, request))
    return intake_page(request, actor, intake, action=f"/apply/{thing}", page_title=f"网上申办：{definition.name_zh}")


@router.post("/apply/{thing}")
async def apply_submit(request: Request, thing: str, actor: ApplicantActor) -> Response:
    form = await checked_form(request)
    definition = await run_in_threadpool(active_definition, request, thing)
    intake = intake_form(definition, online_channel(definition), answers_from_form(definition, form))
    if not intake.ready:
        return intake_page(request, actor, intake, action=f"/apply/{thing}", page_title=definition.name_zh)
    outcome = await submit_intake(request, actor, intake, form)
    if outcome.snapshot is None:
        return intake_page(
            request,
            actor,
            intake,
            action=f"/apply/{thing}",
            page_title=f"网上申办：{definition.name_zh}",
            outcome=outcome,
            idempotency_key=idempotency_key_of(form),
        )
    case_id = outcome.snapshot.case_id
    number = outcome.snapshot.case_no or case_id
    return flash_redirect(request, f"/my/cases/{case_id}", f"申请已受理，受理编号 {number}")


# --- my cases ----------------------------------------------------------------------------


def _my_cases(request: Request, actor: Actor) -> list[CaseRecord]:
    with Session(request.app.state.engine) as session:
        return list(
            session.execute(
                select(CaseRecord)
                .where(visible_cases_filter(actor))
                .order_by(col(CaseRecord.submitted_at).desc())
                .limit(200)
            ).scalars()
        )


@router.get("/my/cases")
async def my_cases(request: Request, actor: ApplicantActor) -> Response:
    rows = await run_in_threadpool(_my_cases, request, actor)
    cases = [CaseSnapshot.model_validate(row.snapshot) for row in rows]
    return render(request, "applicant_cases.html", {"cases": cases}, actor=actor)


@dataclass
class CaseView:
    """A case as its detail page shows it."""

    snapshot: CaseSnapshot
    definition: ThingDefinition | None
    return_reasons: dict[str, str]
    # The case as its 受理通知书 stands now (api/console/notice.py): the number, the materials as
    # they are now — a 补正 shows as received — and when the whole case is due. None until accepted.
    sheet: NoticeSheet | None = None

    @property
    def number(self) -> str:
        """The case number (受理编号) people quote; the technical id for cases filed before numbering."""
        return self.sheet.number if self.sheet is not None else self.snapshot.case_no or self.snapshot.case_id

    @property
    def materials(self) -> list[NoticeMaterial]:
        """The case's materials now: received, fetched by data sharing, then those still owed (with why)."""
        if self.sheet is None:
            return []
        return [*self.sheet.received, *self.sheet.shared, *self.sheet.owed]

    def pending_returns(self) -> list[tuple[str, str]]:
        """(step name, reason) of each step now waiting for the applicant's 补正."""
        return [
            (step.name_zh, self.return_reasons.get(step.step, ""))
            for step in self.snapshot.steps
            if step.status == StepStatus.AWAITING_SUPPLEMENT
        ]

    def step_name(self, code: str | None) -> str:
        for step in self.snapshot.steps:
            if step.step == code:
                return step.name_zh
        return code or "整个事项"

    def material_name(self, code: str) -> str:
        if self.definition is not None:
            for material in self.definition.materials:
                if material.code == code:
                    return material.name_zh
        return code

    def result_rows(self, step_code: str, result: Mapping[str, Any] | None) -> list[tuple[str, str]]:
        """A step's result as (label, value) rows, labelled from the step's definition."""
        if not result:
            return []
        labels: dict[str, str] = {}
        step = FOLLOW_UP if step_code == FOLLOW_UP.code else None
        if step is None and self.definition is not None:
            try:
                step = self.definition.step(step_code)
            except KeyError:
                step = None
        if step is not None:
            labels = {key: spec.label_zh for key, spec in step.result.items()}
        rows = []
        for key, value in result.items():
            shown = ("是" if value else "否") if isinstance(value, bool) else str(value)
            rows.append((labels.get(key) or INPUT_LABELS.get(key, "办理结果"), shown))
        return rows


def load_case_view(request: Request, actor: Actor, case_id: str) -> CaseView:
    """The case if this actor may see it (404 otherwise, like GET /cases/{case_id})."""
    with Session(request.app.state.engine) as session:
        record = visible_case(session, actor, case_id)
        snapshot = CaseSnapshot.model_validate(record.snapshot)
        try:
            definition: ThingDefinition | None = definition_for(session, snapshot.thing, snapshot.catalogue_version)
        except DomainError:
            definition = None
        sheet = None
        if snapshot.acceptance_notice is not None:
            # The applicant's page names no staff member: no display names needed.
            sheet = notice_sheet(record, snapshot, definition, request.app.state.calendar, {})
        returned = session.execute(
            select(CaseEventRecord)
            .where(col(CaseEventRecord.case_id) == case_id, col(CaseEventRecord.type) == EventType.RETURNED.value)
            .order_by(col(CaseEventRecord.seq))
        ).scalars()
        reasons = {row.step or "": str(row.detail.get("reason", "")) for row in returned}
    return CaseView(snapshot=snapshot, definition=definition, return_reasons=reasons, sheet=sheet)


@router.get("/my/cases/{case_id}")
async def my_case(request: Request, case_id: str, actor: ApplicantActor) -> Response:
    view = await run_in_threadpool(load_case_view, request, actor, case_id)
    files = await run_in_threadpool(case_files, request.app.state.engine, actor, case_id)
    # The latest upload of each material: the 补正 form offers it as that material's reference.
    uploads = {row.material: f"{FILE_REFERENCE}{row.sha256}" for row in files}
    return render(
        request,
        "applicant_case.html",
        {"view": view, "case": view.snapshot, "score_labels": SCORE_LABELS, "uploads": uploads},
        actor=actor,
    )


@router.post("/my/cases/{case_id}/materials/{material}")
async def my_case_upload(request: Request, case_id: str, material: str, actor: ApplicantActor) -> Response:
    """Upload a scan or photo of a material the case owes; the 补正 form then offers it."""
    form = await checked_form(request)
    upload = form.get("file")
    page = f"/my/cases/{case_id}"
    if not isinstance(upload, StarletteUploadFile):
        return flash_redirect(request, page, "请选择要上传的文件", kind="error")
    limit = request.app.state.settings.max_upload_bytes
    data = await upload.read(limit + 1)
    if len(data) > limit:
        return flash_redirect(request, page, f"文件超过 {limit // 1_048_576} MB，请压缩后再上传", kind="error")
    app = request.app
    try:
        await run_in_threadpool(
            store_material_file, app.state.engine, file_store(request), actor, case_id, material, data
        )
    except DomainError as error:
        if error.code in {ErrorCode.NOT_FOUND, ErrorCode.FORBIDDEN}:
            raise
        reason = next(iter(error.fields.values()), error.message) if error.fields else error.message
        return flash_redirect(request, page, f"未上传：{zh_text(reason, '文件不符合要求')}", kind="error")
    return flash_redirect(request, page, "已上传，请核对后提交补正材料")


async def refusal_of(action: Awaitable[Any]) -> DomainError | None:
    """Run an action; a refusal the page explains (invalid, conflicting, busy) is returned, not raised.
    Not found, forbidden and not logged in still raise: the route answers them with their own page."""
    try:
        await action
    except WorkflowUpdateFailedError as exc:
        error = from_update_failure(exc)
    except DomainError as exc:
        error = exc
    else:
        return None
    if error.code in {ErrorCode.NOT_FOUND, ErrorCode.FORBIDDEN, ErrorCode.UNAUTHORIZED}:
        raise error
    return error


@router.post("/my/cases/{case_id}/supplement")
async def my_case_supplement(request: Request, case_id: str, actor: ApplicantActor) -> Response:
    form = await checked_form(request)
    view = await run_in_threadpool(load_case_view, request, actor, case_id)
    materials = {code: form_text(form, f"materials.{code}") for code in view.snapshot.missing_materials}
    missing = [view.material_name(code) for code, value in materials.items() if not value]
    if missing or not materials:
        text = "请填写全部补正材料：" + "、".join(missing) if missing else "案件当前无需补正"
        return flash_redirect(request, f"/my/cases/{case_id}", text, kind="error")
    app = request.app
    error = await refusal_of(
        supply_case_materials(
            case_id, materials, actor, app.state.temporal_client, app.state.engine, idempotency_key_of(form)
        )
    )
    if error is not None:
        return flash_redirect(request, f"/my/cases/{case_id}", f"补正未提交：{error.message}", kind="error")
    return flash_redirect(request, f"/my/cases/{case_id}", "补正材料已提交，案件继续办理")


@router.post("/my/cases/{case_id}/withdraw")
async def my_case_withdraw(request: Request, case_id: str, actor: ApplicantActor) -> Response:
    """撤回: the applicant ends the case before it is done; open steps are cancelled."""
    form = await checked_form(request)
    reason = form_text(form, "reason")
    if not 1 <= len(reason) <= 500:
        return flash_redirect(request, f"/my/cases/{case_id}", "请填写撤回原因（1至500字）", kind="error")
    app = request.app
    error = await refusal_of(
        end_case(
            case_id, "withdraw", reason, actor, app.state.temporal_client, app.state.engine, idempotency_key_of(form)
        )
    )
    if error is not None:
        return flash_redirect(request, f"/my/cases/{case_id}", f"撤回未成功：{error.message}", kind="error")
    return flash_redirect(request, f"/my/cases/{case_id}", "申请已撤回，各部门已停止办理")


@router.post("/my/cases/{case_id}/rating")
async def my_case_rating(request: Request, case_id: str, actor: ApplicantActor) -> Response:
    form = await checked_form(request)
    try:
        body = RatingRequest(
            score=int(form_text(form, "score") or 0),
            comment=form_text(form, "comment") or None,
            step=form_text(form, "step") or None,
        )
    except (ValueError, ValidationError):
        return flash_redirect(request, f"/my/cases/{case_id}", "请选择 1 至 5 分的评价（评价意见不超过500字）", "error")
    app = request.app
    error = await refusal_of(
        rate_case_as(
            case_id,
            score=body.score,
            comment=body.comment,
            step=body.step,
            actor=actor,
            client=app.state.temporal_client,
            engine=app.state.engine,
            idempotency_key=idempotency_key_of(form),
        )
    )
    if error is not None:
        return flash_redirect(request, f"/my/cases/{case_id}", f"评价未提交：{error.message}", kind="error")
    return flash_redirect(request, f"/my/cases/{case_id}", "感谢您的评价！")

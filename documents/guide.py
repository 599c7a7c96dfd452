"""The catalogue's generated documents: 办事指南 (§5.3), its QR code (§5.3.2), the
数据共享需求清单 (§5.4.1) and the materials reduction a "one thing" brings (§5.2.3).

Everything here is a pure function of a ThingDefinition (plus the guide template
read from api/templates), so a changed definition changes every document with it.
"""

from __future__ import annotations

import csv
import io
import xml.etree.ElementTree as ET
from functools import cache
from pathlib import Path
from typing import Literal
from urllib.parse import urlsplit

import segno
from jinja2 import Environment, FileSystemLoader, StrictUndefined, select_autoescape
from markupsafe import Markup
from pydantic import BaseModel, ConfigDict

from documents.flowchart import longest_path, step_graph, time_limit_zh
from documents.spreadsheet import neutralise_formula
from domain.licences import licence_type, reused_licences
from models.catalogue import Material, StepDefinition, ThingDefinition
from models.errors import DomainError, ErrorCode

TEMPLATES_DIR = Path(__file__).resolve().parent.parent / "api" / "templates"
STANDARD = "DB33/T 2304-2021"

SOURCE_ZH: dict[str, str] = {
    "data_sharing": "数据共享自动获取",
    "commitment": "告知承诺",
    "submit": "申请人提交",
    "form": "申请表",
}
DELIVERY_ZH: dict[str, str] = {"pickup": "窗口领取", "mail": "邮寄送达"}


class _Frozen(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


# --- the guide -------------------------------------------------------------------


class GuideUnit(_Frozen):
    code: str
    name_zh: str


class GuideChannel(_Frozen):
    code: str
    name_zh: str
    accepting_unit: GuideUnit | None = None


class GuideTimeLimit(_Frozen):
    """A time limit on one channel, in working days; 0 reads 即办."""

    channel: str
    channel_zh: str
    days: int
    label_zh: str


class GuideTotalTimeLimit(GuideTimeLimit):
    """The whole thing's limit on a channel: the longest dependency path, not the sum."""

    critical_path: list[str]
    critical_path_zh: list[str]


class GuideAnswer(_Frozen):
    question: str
    question_zh: str
    answer: str
    answer_zh: str


class GuideSituation(_Frozen):
    code: str
    name_zh: str
    answers: list[GuideAnswer]
    steps: list[str]
    materials: list[str]
    total_time_limits: list[GuideTotalTimeLimit]


class GuideMaterial(_Frozen):
    code: str
    name_zh: str
    source: Literal["form", "data_sharing", "submit", "commitment"]
    source_zh: str
    by_data_sharing: bool
    provider: GuideUnit | None = None  # for data sharing: the department holding the data
    legal_basis: str | None = None
    condition_zh: str | None = None  # only needed when this holds
    situations_zh: list[str]  # the situations that need it (empty: the thing has none)


class GuideStepUnit(_Frozen):
    channel: str
    channel_zh: str
    department: GuideUnit


class GuideStep(_Frozen):
    code: str
    name_zh: str
    department_zh: str  # the unit, or the units by channel joined with ／
    departments: list[GuideStepUnit]  # the unit on each channel the step exists on
    channels: list[str]
    depends_on: list[str]
    depends_on_zh: list[str]
    time_limits: list[GuideTimeLimit]  # one per channel the step exists on
    delivers_case: bool
    legal_basis: str | None = None
    situations_zh: list[str]
    # 电子证照 an earlier step issued that this one takes from the platform (no paper asked for).
    reuses_licences_zh: list[str] = []
    issues_licence_zh: str | None = None

    def time_limit_on(self, channel: str) -> GuideTimeLimit | None:
        return next((limit for limit in self.time_limits if limit.channel == channel), None)


class GuideDelivery(_Frozen):
    code: Literal["pickup", "mail"]
    name_zh: str


class GuideFaq(_Frozen):
    question_zh: str
    answer_zh: str


class ServiceGuide(_Frozen):
    """办事指南 of a sub-item (子项), or of one of its situations (情形项)."""

    code: str
    version: int
    name_zh: str
    life_stage: str
    life_stage_zh: str
    summary_zh: str
    lead_unit: GuideUnit
    collaborating_units: list[GuideUnit]
    situation: str | None
    situation_zh: str | None
    situations: list[GuideSituation]
    materials: list[GuideMaterial]
    data_sharing_materials: list[str]  # codes of the materials fetched by data sharing
    steps: list[GuideStep]  # in dependency order
    total_time_limits: list[GuideTotalTimeLimit]
    channels: list[GuideChannel]
    delivery: list[GuideDelivery]
    faq: list[GuideFaq]
    common_mistakes_zh: list[str]
    guide_url: str | None
    standard: str = STANDARD


def _situation_view(definition: ThingDefinition, situation: str) -> ThingDefinition:
    if definition.situation == situation:
        return definition
    try:
        if definition.situation is not None:  # a view of another situation lacks this one's steps
            raise KeyError(situation)
        return definition.for_situation(situation)
    except KeyError:
        codes = definition.situation or ", ".join(item.code for item in definition.situations) or "(none)"
        raise DomainError(
            ErrorCode.INVALID,
            "没有该办理情形 (no such situation)",
            {"situation": f"must be one of {codes}"},
        ) from None


def _check_guide_url(url: str | None) -> None:
    if url is None:
        return
    parts = urlsplit(url)
    if parts.scheme not in {"http", "https"} or not parts.netloc or any(c.isspace() for c in url):
        raise DomainError(
            ErrorCode.INVALID,
            "在线指南地址无效 (invalid guide URL)",
            {"guide_url": "must be an absolute http(s) URL"},
        )


def _unit(definition: ThingDefinition, code: str) -> GuideUnit:
    return GuideUnit(code=code, name_zh=definition.department_name(code))


def _total_time_limits(definition: ThingDefinition) -> list[GuideTotalTimeLimit]:
    totals = []
    for channel in definition.channels:
        days, path = longest_path(definition, channel.code)
        totals.append(
            GuideTotalTimeLimit(
                channel=channel.code,
                channel_zh=channel.name_zh,
                days=days,
                label_zh=time_limit_zh(days),
                critical_path=path,
                critical_path_zh=[definition.step(code).name_zh for code in path],
            )
        )
    return totals


def _situations_using(
    definition: ThingDefinition, *, step: str | None = None, material: str | None = None
) -> list[str]:
    names = []
    for situation in definition.situations:
        if definition.situation is not None and situation.code != definition.situation:
            continue
        chosen = situation.steps if step is not None else situation.materials
        if chosen is None or (step or material) in chosen:
            names.append(situation.name_zh)
    return names


def _condition_zh(definition: ThingDefinition, material: Material) -> str | None:
    if material.when is None:
        return None
    for question in definition.questions:
        if question.from_form == material.when.field:
            return f"{question.label_zh}：{question.options.get(material.when.equals, material.when.equals)}"
    return f"{material.when.field} = {material.when.equals}"


def _guide_material(definition: ThingDefinition, material: Material) -> GuideMaterial:
    provider = material.sharing.provider if material.source == "data_sharing" and material.sharing else None
    return GuideMaterial(
        code=material.code,
        name_zh=material.name_zh,
        source=material.source,
        source_zh=SOURCE_ZH[material.source],
        by_data_sharing=material.source == "data_sharing",
        provider=_unit(definition, provider) if provider else None,
        legal_basis=material.legal_basis,
        condition_zh=_condition_zh(definition, material),
        situations_zh=_situations_using(definition, material=material.code),
    )


def _guide_step(definition: ThingDefinition, step: StepDefinition, depends_on: list[str]) -> GuideStep:
    channels = [channel for channel in definition.channels if step.applies_to(channel.code)]
    units = [
        GuideStepUnit(
            channel=channel.code,
            channel_zh=channel.name_zh,
            department=_unit(definition, step.department_for(channel.code)),
        )
        for channel in channels
    ]
    if step.department is not None:
        department_zh = definition.department_name(step.department)
    else:
        department_zh = "／".join(dict.fromkeys(unit.department.name_zh for unit in units))
    return GuideStep(
        code=step.code,
        name_zh=step.name_zh,
        department_zh=department_zh,
        departments=units,
        channels=[channel.code for channel in channels],
        depends_on=depends_on,
        depends_on_zh=[definition.step(code).name_zh for code in depends_on],
        time_limits=[
            GuideTimeLimit(
                channel=channel.code,
                channel_zh=channel.name_zh,
                days=step.time_limit_for(channel.code),
                label_zh=time_limit_zh(step.time_limit_for(channel.code)),
            )
            for channel in channels
        ],
        delivers_case=step.delivers_case,
        legal_basis=step.legal_basis,
        situations_zh=_situations_using(definition, step=step.code),
        reuses_licences_zh=[kind.title_zh for _, kind in reused_licences(definition.code, step.code)],
        issues_licence_zh=issued.title_zh if (issued := licence_type(definition.code, step.code)) else None,
    )


def service_guide(
    definition: ThingDefinition, situation: str | None = None, guide_url: str | None = None
) -> ServiceGuide:
    """The 办事指南 (§5.3) of a sub-item, or of one situation of it.

    With a situation (or given a ``for_situation`` view), only that situation's
    steps and materials appear. Steps come in dependency order with each channel's
    time limit; the total per channel is the longest dependency path in working
    days. Raises DomainError (INVALID) for an unknown situation or a guide URL
    that is not an absolute http(s) URL.
    """
    _check_guide_url(guide_url)
    view = _situation_view(definition, situation) if situation is not None else definition
    graph = step_graph(view)
    situations = [item for item in view.situations if view.situation is None or item.code == view.situation]
    questions = {question.code: question for question in view.questions}
    materials = [_guide_material(view, material) for material in view.materials]
    return ServiceGuide(
        code=view.code,
        version=view.version,
        name_zh=view.name_zh,
        life_stage=view.life_stage,
        life_stage_zh=view.life_stage_zh or view.life_stage,
        summary_zh=view.summary_zh,
        lead_unit=_unit(view, view.lead_department),
        collaborating_units=[_unit(view, code) for code in view.collaborating_departments],
        situation=view.situation,
        situation_zh=view.situation_named(view.situation).name_zh if view.situation is not None else None,
        situations=[
            GuideSituation(
                code=item.code,
                name_zh=item.name_zh,
                answers=[
                    GuideAnswer(
                        question=code,
                        question_zh=questions[code].label_zh if code in questions else code,
                        answer=value,
                        answer_zh=questions[code].options.get(value, value) if code in questions else value,
                    )
                    for code, value in item.when.items()
                ],
                steps=[step.code for step in view.for_situation(item.code).steps],
                materials=[material.code for material in view.for_situation(item.code).materials],
                total_time_limits=_total_time_limits(view.for_situation(item.code)),
            )
            for item in situations
        ],
        materials=materials,
        data_sharing_materials=[material.code for material in materials if material.by_data_sharing],
        steps=[_guide_step(view, step, list(graph.depends_on[step.code])) for step in graph.steps],
        total_time_limits=_total_time_limits(view),
        channels=[
            GuideChannel(
                code=channel.code,
                name_zh=channel.name_zh,
                accepting_unit=_unit(view, channel.accepting_unit) if channel.accepting_unit else None,
            )
            for channel in view.channels
        ],
        delivery=[GuideDelivery(code=method, name_zh=DELIVERY_ZH[method]) for method in view.delivery_methods],
        faq=[GuideFaq(question_zh=entry.question_zh, answer_zh=entry.answer_zh) for entry in view.faq],
        common_mistakes_zh=list(view.common_mistakes_zh),
        guide_url=guide_url,
    )


def guide_qr_svg(url: str) -> str:
    """The QR code (§5.3.2) of the online guide as an inline SVG element (no XML
    declaration), to embed in the printed guide. Raises DomainError for a URL that
    is not an absolute http(s) URL."""
    _check_guide_url(url)
    code = segno.make(url, error="m", micro=False)
    buffer = io.BytesIO()
    code.save(
        buffer,
        kind="svg",
        scale=4,
        border=4,
        dark="#000000",
        light="#ffffff",
        xmldecl=False,
        svgns=True,
        title="扫码查看在线办事指南",
        svgclass="guide-qr",
        nl=False,
    )
    return buffer.getvalue().decode("utf-8")


_SVG_NS = "{http://www.w3.org/2000/svg}"
_UNSAFE_SVG_ELEMENTS = {"script", "foreignObject", "iframe", "object", "embed", "image", "use", "a"}


def _check_inline_svg(svg: str) -> Markup:
    """The SVG as markup to embed, after checking it is one inert SVG element:
    well-formed, no scripts, no event handlers, no links or external references."""
    try:
        root = ET.fromstring(svg)
    except ET.ParseError as exc:
        raise ValueError(f"the QR code is not well-formed SVG: {exc}") from exc
    if root.tag not in {"svg", f"{_SVG_NS}svg"}:
        raise ValueError("the QR code must be one <svg> element")
    for element in root.iter():
        name = element.tag.rsplit("}", 1)[-1]
        if name in _UNSAFE_SVG_ELEMENTS:
            raise ValueError(f"the QR code SVG may not contain <{name}>")
        for attribute in element.attrib:
            local = attribute.rsplit("}", 1)[-1].lower()
            if local.startswith("on") or local in {"href", "style"}:
                raise ValueError(f"the QR code SVG may not carry {local!r} attributes")
    return Markup(svg.strip())


@cache
def _environment() -> Environment:
    return Environment(
        loader=FileSystemLoader(TEMPLATES_DIR),
        autoescape=select_autoescape(["html"]),
        undefined=StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
    )


def render_guide_html(guide: ServiceGuide, qr_svg: str) -> str:
    """The printable Chinese guide page (api/templates/guide.html): every value is
    escaped; the QR code (from guide_qr_svg) is embedded inline and links to the
    online guide. No external assets, no scripts. Raises ValueError when ``qr_svg``
    is not one inert SVG element."""
    template = _environment().get_template("guide.html")
    return template.render(guide=guide, qr_svg=_check_inline_svg(qr_svg))


# --- §5.4.1 数据共享需求清单 ------------------------------------------------------


class DataSharingNeed(_Frozen):
    """One row of the data-sharing needs list: a material fetched by data sharing."""

    material: str
    material_zh: str
    provider: str
    provider_zh: str
    fields_zh: list[str]
    data_type_zh: str
    method_zh: str
    update_period_zh: str
    document: str | None = None
    subject: str | None = None
    situations: list[str]  # codes of the situations needing it
    situations_zh: list[str]
    all_situations: bool  # every situation needs it (or the thing has no situations)


def data_sharing_needs(definition: ThingDefinition) -> list[DataSharingNeed]:
    """§5.4.1: for each material fetched by data sharing, its provider, data fields,
    data type, sharing method, update period and the situations that use it."""
    rows = []
    for material in definition.materials:
        if material.source != "data_sharing":
            continue
        sharing = material.sharing
        using = [
            situation
            for situation in definition.situations
            if situation.materials is None or material.code in situation.materials
        ]
        rows.append(
            DataSharingNeed(
                material=material.code,
                material_zh=material.name_zh,
                provider=sharing.provider if sharing else "",
                provider_zh=definition.department_name(sharing.provider) if sharing else "未登记",
                fields_zh=list(sharing.fields_zh) if sharing else [],
                data_type_zh=sharing.data_type_zh if sharing else "",
                method_zh=sharing.method_zh if sharing else "",
                update_period_zh=sharing.update_period_zh if sharing else "",
                document=material.document,
                subject=material.subject,
                situations=[situation.code for situation in using],
                situations_zh=[situation.name_zh for situation in using],
                all_situations=len(using) == len(definition.situations),
            )
        )
    return rows


DATA_SHARING_CSV_HEADERS = [
    "材料",
    "提供部门",
    "数据字段",
    "数据类型",
    "共享方式",
    "更新周期",
    "适用情形",
    "材料编码",
    "提供部门编码",
]


def data_sharing_csv(rows: list[DataSharingNeed]) -> str:
    """The needs list as CSV with Chinese headers: RFC 4180 (CRLF line ends, fields
    quoted when needed), starting with a byte order mark so Excel reads the text as
    UTF-8. Encode the result with ``utf-8`` (not ``utf-8-sig``, the mark is already
    there). Lists inside a cell are joined with 、."""
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\r\n", quoting=csv.QUOTE_MINIMAL)
    writer.writerow(DATA_SHARING_CSV_HEADERS)
    for row in rows:
        cells = [
            row.material_zh,
            row.provider_zh,
            "、".join(row.fields_zh),
            row.data_type_zh,
            row.method_zh,
            row.update_period_zh,
            "全部" if row.all_situations else ("、".join(row.situations_zh) or "无"),
            row.material,
            row.provider,
        ]
        writer.writerow([neutralise_formula(cell) for cell in cells])
    return "\ufeff" + buffer.getvalue()


# --- materials reduction ---------------------------------------------------------


class MaterialsCount(_Frozen):
    situation: str | None
    situation_zh: str | None
    without_count: int
    with_count: int
    reduced_count: int
    reduction_percent: float  # one decimal; 0.0 when nothing would be handed in anyway
    without_zh: list[str]  # what an applicant hands in without the one thing
    with_zh: list[str]  # what an applicant hands in with it
    by_data_sharing_zh: list[str]
    by_commitment_zh: list[str]
    separate_forms_zh: list[str]
    joint_form_zh: str


class MaterialsReduction(_Frozen):
    code: str
    name_zh: str
    sub_item: MaterialsCount  # every material and step of the sub-item
    situations: list[MaterialsCount]


def _count(definition: ThingDefinition) -> MaterialsCount:
    forms = [m for m in definition.materials if m.source == "form"]
    others = [m for m in definition.materials if m.source != "form"]
    joint_form = forms[0].name_zh if forms else f"{definition.name_zh}联办申请表"
    separate_forms = [f"{step.name_zh}申请表" for step in definition.steps if not step.delivers_case]
    without = [m.name_zh for m in others] + separate_forms
    with_ = [m.name_zh for m in others if m.source == "submit"] + [joint_form]
    reduced = len(without) - len(with_)
    percent = round(reduced * 100 / len(without), 1) if without else 0.0
    situation = definition.situation
    return MaterialsCount(
        situation=situation,
        situation_zh=definition.situation_named(situation).name_zh if situation is not None else None,
        without_count=len(without),
        with_count=len(with_),
        reduced_count=reduced,
        reduction_percent=percent,
        without_zh=without,
        with_zh=with_,
        by_data_sharing_zh=[m.name_zh for m in others if m.source == "data_sharing"],
        by_commitment_zh=[m.name_zh for m in others if m.source == "commitment"],
        separate_forms_zh=separate_forms,
        joint_form_zh=joint_form,
    )


def materials_reduction(definition: ThingDefinition) -> MaterialsReduction:
    """How many papers an applicant hands in without and with the one thing, for
    the sub-item and for each situation.

    Counting rule:

    - Without the one thing, the applicant applies for each single matter on its
      own: every material of the (sub-item's or situation's) list that is not the
      joint form is handed in, whatever its source now is (data sharing and
      告知承诺 are what the one thing brought), plus one application form per step.
      The step that only hands all results over (``delivers_case``) exists because
      of the one thing, so it has no form of its own. A material is counted once,
      though several matters may have asked for it, and a conditional material
      (``when``) is counted as needed.
    - With the one thing: the materials the applicant still submits
      (source ``submit``) plus the one joint application form (the ``form``
      material, counted once). Data-sharing and commitment materials are not
      handed in.
    - Reduction: (without − with) / without, in percent with one decimal.

    The sub-item counts every material and step of the definition (every channel);
    a situation counts only its own. Given a ``for_situation`` view, both count
    that situation.
    """
    situations = [item for item in definition.situations if definition.situation in (None, item.code)]
    return MaterialsReduction(
        code=definition.code,
        name_zh=definition.name_zh,
        sub_item=_count(definition),
        situations=[_count(definition.for_situation(item.code)) for item in situations],
    )

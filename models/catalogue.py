"""The "one thing" catalogue: definitions the case workflow interprets.

A definition (one YAML file under ``models/things/``) lists a "one thing"'s
channels, materials and steps: which department acts, after which steps, within
how many working days, and what result it must record. The workflow reads only
these models, so a new "one thing" or a changed time limit is a data change.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from functools import cache
from pathlib import Path
from typing import Any, Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from models.errors import DomainError, ErrorCode

DATA_DIR = Path(__file__).parent / "data"
THINGS_DIR = Path(__file__).parent / "things"

CODE_PATTERN = r"^[a-z][a-z0-9_]*$"


class CatalogueError(ValueError):
    """A definition file is invalid; the message names the file, the path and the reason."""

    def __init__(self, file: str, path: str, reason: str) -> None:
        super().__init__(f"{file}: {path}: {reason}")
        self.file = file
        self.path = path
        self.reason = reason


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class Department(_Strict):
    code: str = Field(pattern=CODE_PATTERN)
    name_zh: str
    tasks: bool = True
    accepts_cases: bool = False


class Condition(_Strict):
    """True when the form value at the dotted ``field`` equals ``equals``."""

    field: str
    equals: str

    def holds(self, form: Mapping[str, Any]) -> bool:
        return str(read_path(form, self.field)) == self.equals


class Channel(_Strict):
    code: str = Field(pattern=CODE_PATTERN)
    name_zh: str
    accepting_unit: str | None = None


class DataSharing(_Strict):
    """Where a shared material comes from (§5.4.1 数据共享需求清单)."""

    provider: str  # department code of the data owner
    fields_zh: list[str]  # data fields used
    data_type_zh: str = "电子证照"
    method_zh: str = "接口调用"
    update_period_zh: str = "实时"


class Material(_Strict):
    code: str = Field(pattern=CODE_PATTERN)
    name_zh: str
    # "form": the application form itself, received with the submission.
    source: Literal["form", "data_sharing", "submit", "commitment"]
    # For data sharing: the document type the platform holds (居民身份证, 户口簿…)
    # and the dotted form path of the ID number whose document is asked for.
    document: str | None = Field(default=None, pattern=CODE_PATTERN)
    subject: str | None = None
    sharing: DataSharing | None = None
    when: Condition | None = None
    legal_basis: str | None = None
    # §5.2.3 clean-up facts: a material so marked must not be asked of applicants.
    shareable: bool = False  # obtainable by data sharing or checks between departments
    commitment_allowed: bool = False  # replaceable by a written commitment (告知承诺)
    covered_by: str | None = None  # covered or replaced by another material
    issued_by_this_thing: bool = False  # a licence or approval this "one thing" itself issues

    def applies(self, form: Mapping[str, Any]) -> bool:
        return self.when is None or self.when.holds(form)


class ResultField(_Strict):
    type: Literal["string", "citizen_id", "money", "boolean"]
    label_zh: str
    pattern: str | None = None
    max_length: int = Field(default=200, ge=1, le=10_000)
    required: bool = True
    # For citizen_id: the form path of the birth date the number must carry.
    birth_date_of: str | None = None
    # A valid value, shown in guides and used by the demo (citizen IDs are built
    # from the form's birth date instead).
    example: str | bool | None = None


class Question(_Strict):
    """A question whose answer selects the situation (情形)."""

    code: str = Field(pattern=CODE_PATTERN)
    label_zh: str
    options: dict[str, str]  # answer value -> Chinese label
    # Form path the answer can be read from when the applicant gives no answers.
    from_form: str | None = None


class Situation(_Strict):
    """情形项: one combination of answers, and the steps and materials it involves."""

    code: str = Field(pattern=CODE_PATTERN)
    name_zh: str
    when: dict[str, str]
    steps: list[str] | None = None  # None: every step
    materials: list[str] | None = None  # None: every material


class FaqEntry(_Strict):
    question_zh: str
    answer_zh: str


class Notification(_Strict):
    kind: str = Field(pattern=CODE_PATTERN)
    message_zh: str


class StepDefinition(_Strict):
    code: str = Field(pattern=CODE_PATTERN)
    name_zh: str
    department: str | None = None
    department_by_channel: dict[str, str] | None = None
    # Channels the step exists on; None means every channel of the thing.
    channels: list[str] | None = None
    # Roles that may act on the step's task, besides belonging to its unit.
    actors: list[Literal["officer", "clerk", "supervisor"]] = ["officer"]
    depends_on: list[str] = []
    # Working days per channel; "default" covers the channels not named.
    time_limit: dict[str, int]
    result: dict[str, ResultField]
    notify_on_complete: Notification | None = None
    # The step that hands every result to the applicant at once.
    delivers_case: bool = False
    legal_basis: str | None = None

    @model_validator(mode="after")
    def _one_department_rule(self) -> StepDefinition:
        if (self.department is None) == (self.department_by_channel is None):
            raise ValueError("give exactly one of department or department_by_channel")
        if "default" not in self.time_limit and not self.time_limit:
            raise ValueError("time_limit needs at least one entry")
        if any(days < 0 for days in self.time_limit.values()):
            raise ValueError("time limits are whole working days, never negative")
        return self

    def applies_to(self, channel: str) -> bool:
        return self.channels is None or channel in self.channels

    def department_for(self, channel: str) -> str:
        if self.department is not None:
            return self.department
        assert self.department_by_channel is not None
        return self.department_by_channel[channel]

    def time_limit_for(self, channel: str) -> int:
        return self.time_limit.get(channel, self.time_limit.get("default", 0))


class LifeStage(_Strict):
    """主项: a stage of a person's or an enterprise's life cycle."""

    code: str = Field(pattern=CODE_PATTERN)
    name_zh: str
    audience: Literal["person", "enterprise"]


class ThingDefinition(_Strict):
    """子项: one "one thing", with its situations (情形项), materials and steps."""

    code: str = Field(pattern=CODE_PATTERN)
    version: int = Field(ge=1)
    name_zh: str
    life_stage: str
    summary_zh: str = ""
    lead_department: str
    form: str
    channels: list[Channel]
    delivery_methods: list[Literal["pickup", "mail"]] = ["pickup", "mail"]
    questions: list[Question] = []
    situations: list[Situation] = []
    materials: list[Material]
    steps: list[StepDefinition]
    faq: list[FaqEntry] = []
    common_mistakes_zh: list[str] = []
    # Filled in when the definition is loaded, so a running case can label its
    # steps without reading files from workflow code.
    life_stage_zh: str = ""
    department_names_zh: dict[str, str] = {}
    # Set on the view of one situation (for_situation); None on the whole sub-item.
    situation: str | None = None

    @property
    def collaborating_departments(self) -> list[str]:
        units: list[str] = []
        for step in self.steps:
            for unit in [step.department] if step.department else list((step.department_by_channel or {}).values()):
                if unit and unit != self.lead_department and unit not in units:
                    units.append(unit)
        return units

    def answers_from_form(self, form: Mapping[str, Any]) -> dict[str, str]:
        answers: dict[str, str] = {}
        for question in self.questions:
            if question.from_form:
                value = read_path(form, question.from_form)
                if value is not None:
                    answers[question.code] = str(value)
        return answers

    def situation_for(self, answers: Mapping[str, str]) -> Situation | None:
        """The situation the answers select; None for a sub-item without situations.

        Raises DomainError naming each missing or invalid answer (``answers.<code>``).
        """
        problems: dict[str, str] = {}
        for question in self.questions:
            value = answers.get(question.code)
            if value is None:
                problems[f"answers.{question.code}"] = f"required: {question.label_zh}"
            elif value not in question.options:
                problems[f"answers.{question.code}"] = f"must be one of {', '.join(question.options)}"
        known = {question.code for question in self.questions}
        for code in answers:
            if code not in known:
                problems[f"answers.{code}"] = "no such question for this thing"
        if problems:
            raise DomainError(ErrorCode.INVALID, "情形选择有误 (invalid answers)", problems)
        if not self.situations:
            return None
        for situation in self.situations:
            if all(answers.get(code) == value for code, value in situation.when.items()):
                return situation
        raise DomainError(
            ErrorCode.INVALID,
            "没有与所选答案对应的办理情形 (no situation matches these answers)",
            {"answers": "no situation matches this combination"},
        )

    def situation_named(self, code: str) -> Situation:
        for situation in self.situations:
            if situation.code == code:
                return situation
        raise KeyError(code)

    def for_situation(self, code: str) -> ThingDefinition:
        """The definition as it applies to one situation: only its steps and materials."""
        situation = self.situation_named(code)
        kept = set(situation.steps) if situation.steps is not None else {step.code for step in self.steps}
        steps = [
            step.model_copy(update={"depends_on": [d for d in step.depends_on if d in kept]})
            for step in self.steps
            if step.code in kept
        ]
        materials = [
            material
            for material in self.materials
            if situation.materials is None or material.code in situation.materials
        ]
        return self.model_copy(update={"steps": steps, "materials": materials, "situation": code})

    def channel(self, code: str) -> Channel:
        for channel in self.channels:
            if channel.code == code:
                return channel
        raise KeyError(code)

    def step(self, code: str) -> StepDefinition:
        for step in self.steps:
            if step.code == code:
                return step
        raise KeyError(code)

    def steps_for(self, channel: str) -> list[StepDefinition]:
        return [step for step in self.steps if step.applies_to(channel)]

    def department_name(self, code: str) -> str:
        return self.department_names_zh.get(code, code)


def resolve_for_case(
    definition: ThingDefinition, form: Mapping[str, Any], answers: Mapping[str, str] | None = None
) -> ThingDefinition:
    """The definition a new case runs: the situation its answers select (answers the
    applicant did not give are read from the form). Raises DomainError naming bad answers."""
    from_form = definition.answers_from_form(form)
    contradictions = {
        f"answers.{code}": f"contradicts the form ({from_form[code]!r})"
        for code, value in (answers or {}).items()
        if code in from_form and from_form[code] != value
    }
    if contradictions:
        raise DomainError(ErrorCode.INVALID, "情形选择与表单不一致 (answers contradict the form)", contradictions)
    situation = definition.situation_for({**from_form, **(answers or {})})
    return definition if situation is None else definition.for_situation(situation.code)


def read_path(data: Mapping[str, Any], dotted: str) -> Any:
    """The value at a dotted path such as ``newborn.born_at``, or None."""
    value: Any = data
    for part in dotted.split("."):
        if not isinstance(value, Mapping) or part not in value:
            return None
        value = value[part]
    return value


def _format_location(loc: Iterable[int | str]) -> str:
    text = ""
    for part in loc:
        text += f"[{part}]" if isinstance(part, int) else (f".{part}" if text else part)
    return text or "(top)"


def _load_yaml(file: Path) -> Any:
    try:
        return yaml.safe_load(file.read_text(encoding="utf-8"))
    except yaml.YAMLError as exc:
        raise CatalogueError(file.name, "(file)", f"not valid YAML: {exc}") from exc


def load_departments(file: Path = DATA_DIR / "departments.yaml") -> dict[str, Department]:
    raw = _load_yaml(file)
    departments: dict[str, Department] = {}
    for index, entry in enumerate((raw or {}).get("departments", [])):
        try:
            department = Department.model_validate(entry)
        except ValidationError as exc:
            error = exc.errors()[0]
            path = _format_location(["departments", index, *error["loc"]])
            raise CatalogueError(file.name, path, error["msg"]) from exc
        if department.code in departments:
            raise CatalogueError(file.name, f"departments[{index}].code", f"duplicate code {department.code!r}")
        departments[department.code] = department
    return departments


def load_life_stages(file: Path = DATA_DIR / "life_stages.yaml") -> dict[str, LifeStage]:
    raw = _load_yaml(file)
    stages: dict[str, LifeStage] = {}
    for index, entry in enumerate((raw or {}).get("life_stages", [])):
        try:
            stage = LifeStage.model_validate(entry)
        except ValidationError as exc:
            error = exc.errors()[0]
            raise CatalogueError(
                file.name, _format_location(["life_stages", index, *error["loc"]]), error["msg"]
            ) from exc
        if stage.code in stages:
            raise CatalogueError(file.name, f"life_stages[{index}].code", f"duplicate code {stage.code!r}")
        stages[stage.code] = stage
    return stages


def parse_definition(
    raw: Any,
    file_name: str,
    departments: Mapping[str, Department],
    life_stages: Mapping[str, LifeStage] | None = None,
) -> ThingDefinition:
    """Validate one definition document against the schema and the catalogue's rules."""
    stages = life_stages if life_stages is not None else load_life_stages()
    try:
        definition = ThingDefinition.model_validate(raw)
    except ValidationError as exc:
        error = exc.errors()[0]
        raise CatalogueError(file_name, _format_location(error["loc"]), error["msg"]) from exc
    if definition.life_stage not in stages:
        raise CatalogueError(file_name, "life_stage", f"unknown life stage {definition.life_stage!r}")
    _check_rules(definition, file_name, departments)
    _check_materials(definition, file_name, departments)
    _check_situations(definition, file_name)
    names = {code: department.name_zh for code, department in departments.items()}
    return definition.model_copy(
        update={"department_names_zh": names, "life_stage_zh": stages[definition.life_stage].name_zh}
    )


# §5.2.3: vague material names that must be replaced by what is really needed.
VAGUE_MATERIAL_NAMES = ("其他材料", "相关证明", "相关材料", "等材料", "其他证明")


def _check_materials(definition: ThingDefinition, file_name: str, departments: Mapping[str, Department]) -> None:
    """The §5.2.3 clean-up: materials an applicant must no longer be asked for."""
    codes = {material.code for material in definition.materials}
    for index, material in enumerate(definition.materials):
        path = f"materials[{index}]"

        def fail(field: str, reason: str, path: str = path) -> None:
            raise CatalogueError(file_name, f"{path}.{field}", reason)

        if any(word in material.name_zh for word in VAGUE_MATERIAL_NAMES):
            fail("name_zh", f"vague material name {material.name_zh!r}: name the document (§5.2.3)")
        if material.covered_by is not None:
            reason = "is not a material of this thing" if material.covered_by not in codes else "drop it (§5.2.3)"
            fail("covered_by", f"covered by {material.covered_by!r}: {reason}")
        if material.issued_by_this_thing:
            fail("issued_by_this_thing", "a licence this thing issues itself is not an application material (§5.2.3)")
        if material.source == "submit":
            if not material.legal_basis:
                fail("legal_basis", "a material the applicant submits needs its legal basis (§5.2.3)")
            if material.shareable:
                fail("source", "obtainable by data sharing: use source data_sharing (§5.2.3)")
            if material.commitment_allowed:
                fail("source", "replaceable by a written commitment: use source commitment (§5.2.3)")
        if material.source == "data_sharing":
            if not (material.subject and material.document):
                fail("subject", "a data-sharing material needs its document type and subject path")
            if material.sharing is None:
                fail("sharing", "a data-sharing material needs its provider, fields and method (§5.4.1)")
            elif material.sharing.provider not in departments:
                fail("sharing.provider", f"unknown department {material.sharing.provider!r}")


def _check_situations(definition: ThingDefinition, file_name: str) -> None:
    questions = {question.code: question for question in definition.questions}
    for index, question in enumerate(definition.questions):
        if list(questions).index(question.code) != index:
            raise CatalogueError(file_name, f"questions[{index}].code", f"duplicate code {question.code!r}")
        if not question.options:
            raise CatalogueError(file_name, f"questions[{index}].options", "a question needs options")
    step_codes = {step.code for step in definition.steps}
    material_codes = {material.code for material in definition.materials}
    seen_codes: set[str] = set()
    seen_answers: dict[tuple[tuple[str, str], ...], str] = {}
    for index, situation in enumerate(definition.situations):
        path = f"situations[{index}]"
        if situation.code in seen_codes:
            raise CatalogueError(file_name, f"{path}.code", f"duplicate code {situation.code!r}")
        seen_codes.add(situation.code)
        for code, value in situation.when.items():
            if code not in questions:
                raise CatalogueError(file_name, f"{path}.when.{code}", "no such question")
            if value not in questions[code].options:
                raise CatalogueError(file_name, f"{path}.when.{code}", f"{value!r} is not an option")
        key = tuple(sorted(situation.when.items()))
        if key in seen_answers:
            raise CatalogueError(file_name, f"{path}.when", f"same answers as situation {seen_answers[key]!r}")
        seen_answers[key] = situation.code
        if situation.steps is not None:
            if not situation.steps:
                raise CatalogueError(file_name, f"{path}.steps", "the situation selects no steps")
            for step in situation.steps:
                if step not in step_codes:
                    raise CatalogueError(file_name, f"{path}.steps", f"unknown step {step!r}")
        for material in situation.materials or []:
            if material not in material_codes:
                raise CatalogueError(file_name, f"{path}.materials", f"unknown material {material!r}")


def _check_rules(definition: ThingDefinition, file_name: str, departments: Mapping[str, Department]) -> None:
    def fail(path: str, reason: str) -> None:
        raise CatalogueError(file_name, path, reason)

    channel_codes = [channel.code for channel in definition.channels]
    for index, code in enumerate(channel_codes):
        if channel_codes.index(code) != index:
            fail(f"channels[{index}].code", f"duplicate code {code!r}")
    for index, channel in enumerate(definition.channels):
        if channel.accepting_unit is not None and channel.accepting_unit not in departments:
            fail(f"channels[{index}].accepting_unit", f"unknown department {channel.accepting_unit!r}")

    if definition.lead_department not in departments:
        fail("lead_department", f"unknown department {definition.lead_department!r}")

    material_codes = [material.code for material in definition.materials]
    for index, code in enumerate(material_codes):
        if material_codes.index(code) != index:
            fail(f"materials[{index}].code", f"duplicate code {code!r}")

    step_codes = [step.code for step in definition.steps]
    for index, code in enumerate(step_codes):
        if step_codes.index(code) != index:
            fail(f"steps[{index}].code", f"duplicate code {code!r}")
    for index, step in enumerate(definition.steps):
        units = [step.department] if step.department is not None else list((step.department_by_channel or {}).values())
        for unit in units:
            if unit not in departments:
                fail(f"steps[{index}]", f"unknown department {unit!r}")
            elif not departments[unit].tasks:
                fail(f"steps[{index}]", f"department {unit!r} takes no tasks")
        for code in step.channels or []:
            if code not in channel_codes:
                fail(f"steps[{index}].channels", f"unknown channel {code!r}")
        if step.department_by_channel is not None:
            for code in step.channels or channel_codes:
                if code not in step.department_by_channel:
                    fail(f"steps[{index}].department_by_channel", f"no unit for channel {code!r}")
        for dependency in step.depends_on:
            if dependency not in step_codes:
                fail(f"steps[{index}].depends_on", f"unknown step {dependency!r}")
        for code in channel_codes:
            if step.applies_to(code) and code not in step.time_limit and "default" not in step.time_limit:
                fail(f"steps[{index}].time_limit", f"no time limit for channel {code!r}")
    _check_acyclic(definition, file_name)


def _check_acyclic(definition: ThingDefinition, file_name: str) -> None:
    graph = {step.code: step.depends_on for step in definition.steps}
    state: dict[str, str] = {}

    def visit(code: str, trail: list[str]) -> None:
        if state.get(code) == "done":
            return
        if state.get(code) == "visiting":
            cycle = " → ".join([*trail[trail.index(code) :], code])
            index = next(i for i, step in enumerate(definition.steps) if step.code == code)
            raise CatalogueError(file_name, f"steps[{index}].depends_on", f"dependency cycle {cycle}")
        state[code] = "visiting"
        for dependency in graph[code]:
            visit(dependency, [*trail, code])
        state[code] = "done"

    for code in graph:
        visit(code, [])


def load_definition_file(file: Path, departments: Mapping[str, Department]) -> ThingDefinition:
    return parse_definition(_load_yaml(file), file.name, departments)


@cache
def shipped_definitions() -> dict[str, ThingDefinition]:
    """Every definition shipped under models/things, by code (validated)."""
    departments = load_departments()
    definitions: dict[str, ThingDefinition] = {}
    for file in sorted(THINGS_DIR.glob("*.yaml")):
        definition = load_definition_file(file, departments)
        if definition.code in definitions:
            raise CatalogueError(file.name, "code", f"duplicate thing code {definition.code!r}")
        definitions[definition.code] = definition
    return definitions


# 回访: the follow-up a low rating opens for the supervisors (§8.1.2), on the same
# statutory clock as any step. It is part of no definition: every thing has it.
FOLLOW_UP = StepDefinition(
    code="follow_up",
    name_zh="差评回访",
    department="supervision",
    actors=["supervisor"],
    time_limit={"default": 1},
    result={
        "outcome_zh": ResultField(
            type="string", label_zh="回访结果", max_length=1000, example="已电话回访申请人，问题已解决"
        )
    },
)

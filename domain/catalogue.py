"""The "one thing" catalogue's rules: loading the shipped definitions (``things/*.yaml``)
and the departments and life stages they name (``data/``), checking each definition
against the schema (``models/catalogue.py``) and the catalogue's rules, and choosing
the situation a new case runs.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Mapping
from functools import cache
from pathlib import Path
from typing import Any

import yaml
from pydantic import ValidationError

from domain.forms import FORMS, form_has_field
from models.catalogue import (
    CHANNEL_CODE_MAX_LENGTH,
    CODE_MAX_LENGTH,
    Department,
    LifeStage,
    ResultField,
    StepDefinition,
    ThingDefinition,
)
from models.errors import DomainError, ErrorCode

DATA_DIR = Path(__file__).parent / "data"
THINGS_DIR = Path(__file__).parent / "things"


class CatalogueError(ValueError):
    """A definition file is invalid; the message names the file, the path and the reason."""

    def __init__(self, file: str, path: str, reason: str) -> None:
        super().__init__(f"{file}: {path}: {reason}")
        self.file = file
        self.path = path
        self.reason = reason


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

    if definition.form not in FORMS:
        fail("form", f"unknown form {definition.form!r}; known: {', '.join(sorted(FORMS))}")
    for path, code, longest in _codes(definition):
        if len(code) > longest:
            fail(path, f"longer than {longest} characters, the most the case records and requests hold")

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
        if step.route is not None:
            form = FORMS.get(definition.form)
            if form is None or not form_has_field(form, step.route.division_field):
                fail(f"steps[{index}].route.division_field", f"{step.route.division_field!r} is not a form field")
        for dependency in step.depends_on:
            if dependency not in step_codes:
                fail(f"steps[{index}].depends_on", f"unknown step {dependency!r}")
        for code in channel_codes:
            if step.applies_to(code) and code not in step.time_limit and "default" not in step.time_limit:
                fail(f"steps[{index}].time_limit", f"no time limit for channel {code!r}")
    _check_acyclic(definition, file_name)


def _codes(definition: ThingDefinition) -> Iterator[tuple[str, str, int]]:
    """Every code of a definition that lands in a column, or in a request's code (answers and
    results, api/schemas.py): its path, value and the most the column or request holds."""
    yield "code", definition.code, CODE_MAX_LENGTH
    for index, channel in enumerate(definition.channels):
        yield f"channels[{index}].code", channel.code, CHANNEL_CODE_MAX_LENGTH
    for index, question in enumerate(definition.questions):
        yield f"questions[{index}].code", question.code, CODE_MAX_LENGTH
        for option in question.options:
            yield f"questions[{index}].options", option, CODE_MAX_LENGTH
    for index, material in enumerate(definition.materials):
        yield f"materials[{index}].code", material.code, CODE_MAX_LENGTH
    for index, step in enumerate(definition.steps):
        yield f"steps[{index}].code", step.code, CODE_MAX_LENGTH
        for name in step.result:
            yield f"steps[{index}].result", name, CODE_MAX_LENGTH
    for index, situation in enumerate(definition.situations):
        yield f"situations[{index}].code", situation.code, CODE_MAX_LENGTH


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
    """Every definition shipped under domain/things, by code (validated)."""
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

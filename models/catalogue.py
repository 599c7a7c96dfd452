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


class Material(_Strict):
    code: str = Field(pattern=CODE_PATTERN)
    name_zh: str
    # "form": the application form itself, received with the submission.
    source: Literal["form", "data_sharing", "submit", "commitment"]
    # For data sharing: the document type the platform holds (居民身份证, 户口簿…)
    # and the dotted form path of the ID number whose document is asked for.
    document: Literal["id_card", "hukou_booklet", "marriage_certificate"] | None = None
    subject: str | None = None
    when: Condition | None = None
    legal_basis: str | None = None

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
    actors: list[Literal["officer", "clerk"]] = ["officer"]
    depends_on: list[str] = []
    # Working days per channel; "default" covers the channels not named.
    time_limit: dict[str, int]
    result: dict[str, ResultField]
    notify_on_complete: Notification | None = None
    # The step that hands every result to the applicant at once.
    delivers_case: bool = False

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


class ThingDefinition(_Strict):
    code: str = Field(pattern=CODE_PATTERN)
    version: int = Field(ge=1)
    name_zh: str
    life_stage_zh: str
    lead_department: str
    form: str
    channels: list[Channel]
    materials: list[Material]
    steps: list[StepDefinition]
    # Department names travel with the definition so a running case can label
    # its steps without reading files from workflow code.
    department_names_zh: dict[str, str] = {}

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


def parse_definition(raw: Any, file_name: str, departments: Mapping[str, Department]) -> ThingDefinition:
    """Validate one definition document against the schema and the catalogue's rules."""
    try:
        definition = ThingDefinition.model_validate(raw)
    except ValidationError as exc:
        error = exc.errors()[0]
        raise CatalogueError(file_name, _format_location(error["loc"]), error["msg"]) from exc
    _check_rules(definition, file_name, departments)
    names = {code: department.name_zh for code, department in departments.items()}
    return definition.model_copy(update={"department_names_zh": names})


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
    for index, material in enumerate(definition.materials):
        if material.source == "data_sharing" and not (material.subject and material.document):
            fail(f"materials[{index}]", "a data-sharing material needs its document type and subject path")

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

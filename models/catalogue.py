"""The "one thing" catalogue's shapes: the definitions the case workflow interprets.

A definition (one YAML file under ``domain/things/``) lists a "one thing"'s
channels, materials and steps: which department acts, after which steps, within
how many working days, and what result it must record. The workflow reads only
these models, so a new "one thing" or a changed time limit is a data change.
Loading and checking the files is a domain rule: ``domain/catalogue.py``.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

from models.errors import DomainError, ErrorCode

CODE_PATTERN = r"^[a-z][a-z0-9_]*$"
# The read model's columns hold these codes (models/tables.py): a longer one would be refused by
# PostgreSQL at every write of a case of that thing, so publication refuses it first.
CODE_MAX_LENGTH = 64
CHANNEL_CODE_MAX_LENGTH = 32
# What a request may carry (api/schemas.py): a thing's situation answers and a step's result.
# Shipped things ask 2 questions and their steps record at most 3 result fields.
QUESTIONS_MAX = 20
RESULT_FIELDS_MAX = 50
RESULT_VALUE_MAX_LENGTH = 10_000


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


class NegativeOutcome(_Strict):
    """A result value that is the department's refusal (核验不通过, 不符合条件).

    Completing the step with it refuses the case at that step for this reason: the steps
    that depend on it are cancelled, never opened. The step's other result fields become
    optional then, since a refused review has nothing more to record."""

    value: bool | str
    outcome: Literal["refuse_case"] = "refuse_case"
    reason_zh: str = Field(min_length=2, max_length=500)


class ResultField(_Strict):
    type: Literal["string", "citizen_id", "money", "boolean"]
    label_zh: str
    pattern: str | None = None
    max_length: int = Field(default=200, ge=1, le=RESULT_VALUE_MAX_LENGTH)
    required: bool = True
    # For citizen_id: the form path of the birth date the number must carry.
    birth_date_of: str | None = None
    # A valid value, shown in guides and used by the demo (citizen IDs are built
    # from the form's birth date instead).
    example: str | bool | None = None
    # Left out of dumps when unset, so definitions without one keep their published fingerprint.
    negative: NegativeOutcome | None = Field(default=None, exclude_if=lambda value: value is None)

    @model_validator(mode="after")
    def _negative_value_fits_the_type(self) -> ResultField:
        if self.negative is not None and isinstance(self.negative.value, bool) != (self.type == "boolean"):
            raise ValueError(f"negative.value must be a {'boolean' if self.type == 'boolean' else 'string'}")
        return self


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


class StepRoute(_Strict):
    """How the competent unit of a step is chosen (§7.1): the step's department in the division
    a form field names (户口登记 → the police of the hukou address's county). Without a route, or
    when the step is done by the accepting window's own department, the window's unit takes it;
    an online case without a route goes to the province's default county."""

    division_field: str = Field(min_length=1, max_length=200)


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
    result: dict[str, ResultField] = Field(max_length=RESULT_FIELDS_MAX)
    notify_on_complete: Notification | None = None
    # The step that hands every result to the applicant at once.
    delivers_case: bool = False
    legal_basis: str | None = None
    # Left out of dumps when unset, so definitions without one keep their published fingerprint.
    route: StepRoute | None = Field(default=None, exclude_if=lambda value: value is None)

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
    questions: list[Question] = Field(default=[], max_length=QUESTIONS_MAX)
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


def read_path(data: Mapping[str, Any], dotted: str) -> Any:
    """The value at a dotted path such as ``newborn.born_at``, or None.

    Kept with the shapes: ``Condition.holds`` and ``ThingDefinition.answers_from_form``
    read forms with it, and a shape never imports a rule."""
    value: Any = data
    for part in dotted.split("."):
        if not isinstance(value, Mapping) or part not in value:
            return None
        value = value[part]
    return value

"""Checks an officer's step result against the step's result fields in the catalogue."""

from __future__ import annotations

import re
from collections.abc import Mapping
from datetime import datetime
from typing import Any

from domain.identity import SEX_ZH, InvalidIdNumber, id_number_birth_date, id_number_sex, validate_id_number
from domain.workcalendar import SHANGHAI
from models.catalogue import NegativeOutcome, ResultField, StepDefinition, read_path
from models.errors import DomainError, ErrorCode

MONEY_PATTERN = re.compile(r"^(0|[1-9]\d{0,11})\.\d{2}$")


def validate_result(step: StepDefinition, result: Mapping[str, Any], form: Mapping[str, Any]) -> dict[str, Any]:
    """The normalised result, or a DomainError naming every bad field."""
    problems: dict[str, str] = {}
    clean: dict[str, Any] = {}
    for name in result:
        if name not in step.result:
            problems[f"result.{name}"] = "本环节没有此项 (unknown field for this step)"
    # A refused review (核验不通过) has nothing more to record: its other fields become optional.
    refused = negative_result(step, result) is not None
    for name, spec in step.result.items():
        value = result.get(name)
        if value is None or value == "":
            if spec.required and not refused:
                problems[f"result.{name}"] = f"{spec.label_zh}为必填项 (required)"
            continue
        try:
            clean[name] = _check_field(spec, value, form)
        except ValueError as exc:
            problems[f"result.{name}"] = str(exc)
    if problems:
        raise DomainError(ErrorCode.INVALID, "办理结果不符合要求 (invalid step result)", problems)
    return clean


def check_result_identities(step: StepDefinition, result: Mapping[str, Any], form: Mapping[str, Any]) -> None:
    """A number issued to a person the form describes (the newborn's at 户口登记: ``birth_date_of``
    names ``newborn.born_at``) must also give that person's stated sex (``newborn.sex``) by its
    17th digit. Checked when the officer acts (the Update's validator), not when a recorded
    history replays, so cases completed before the check replay unchanged."""
    problems: dict[str, str] = {}
    for name, spec in step.result.items():
        value = result.get(name)
        if spec.type != "citizen_id" or not spec.birth_date_of or not isinstance(value, str):
            continue
        person = spec.birth_date_of.rpartition(".")[0]
        stated = read_path(form, f"{person}.sex") if person else None
        try:
            issued = id_number_sex(value)
        except InvalidIdNumber:
            continue  # validate_result names the bad number
        if stated in SEX_ZH and issued != stated:
            problems[f"result.{name}"] = (
                f"号码第17位表示{SEX_ZH[issued]}性，与申请表所填性别（{SEX_ZH[stated]}）不符 "
                f"(the 17th digit gives {issued}, the form says {stated})"
            )
    if problems:
        raise DomainError(ErrorCode.INVALID, "办理结果不符合要求 (invalid step result)", problems)


def negative_result(step: StepDefinition, result: Mapping[str, Any]) -> tuple[str, NegativeOutcome] | None:
    """The field whose value is the department's refusal, with what the catalogue says follows;
    None for a positive (or neutral) result."""
    for name, spec in step.result.items():
        value = result.get(name)
        if spec.negative is None or value is None:
            continue
        given = value.strip() if isinstance(value, str) else value
        # ``is`` for booleans: 0 is not False here, and a string never equals a boolean.
        if type(given) is type(spec.negative.value) and given == spec.negative.value:
            return name, spec.negative
    return None


def _check_field(spec: ResultField, value: Any, form: Mapping[str, Any]) -> Any:
    if spec.type == "boolean":
        if not isinstance(value, bool):
            raise ValueError("请选择是或否 (must be true or false)")
        return value
    if not isinstance(value, str):
        raise ValueError("应为文字 (must be a string)")
    value = value.strip()
    if len(value) > spec.max_length:
        raise ValueError(f"最多{spec.max_length}个字符 (longer than {spec.max_length} characters)")
    if spec.type == "money":
        if not MONEY_PATTERN.match(value):
            example = spec.example if isinstance(spec.example, str) else "1234.50"
            raise ValueError(
                f"金额应保留两位小数，示例：{example} (decimal yuan with two places as a string, e.g. {example!r})"
            )
        return value
    if spec.type == "citizen_id":
        try:
            number = validate_id_number(value)
        except InvalidIdNumber as exc:
            raise ValueError(str(exc)) from exc
        if spec.birth_date_of:
            expected = _form_date(read_path(form, spec.birth_date_of))
            if expected is not None and id_number_birth_date(number) != expected:
                raise ValueError(
                    f"号码中的出生日期应为{expected.year}年{expected.month}月{expected.day}日，与申请表一致 "
                    f"(birth date in the number must be {expected.isoformat()})"
                )
        return number
    if spec.pattern and not re.fullmatch(spec.pattern, value):
        # The example, never the pattern: the reason is read by officers (and, through them, citizens).
        example = f"，示例：{spec.example}" if isinstance(spec.example, str) else ""
        shown = f", e.g. {spec.example}" if isinstance(spec.example, str) else ""
        raise ValueError(f"格式不正确{example} (not in the required format{shown})")
    return value


def _form_date(value: Any) -> Any:
    if isinstance(value, datetime):
        moment = value
    elif isinstance(value, str):
        try:
            moment = datetime.fromisoformat(value)
        except ValueError:
            return None
    else:
        return None
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=SHANGHAI)
    return moment.astimezone(SHANGHAI).date()


CITIZEN_ID_PATTERN = r"^\d{17}[\dXx]$"


def result_json_schema(step: StepDefinition) -> dict[str, Any]:
    """JSON Schema of a step's result, for forms and for API clients.

    The schema covers shapes; the checks it cannot express (ID checksums, birth
    dates matching the form) still run when the result is submitted.
    """
    properties: dict[str, Any] = {}
    for name, spec in step.result.items():
        field: dict[str, Any] = {"title": spec.label_zh}
        if spec.type == "boolean":
            field["type"] = "boolean"
        else:
            field["type"] = "string"
            field["maxLength"] = spec.max_length
            if spec.type == "money":
                field["pattern"] = MONEY_PATTERN.pattern
                field["description"] = "金额（元），两位小数的字符串"
            elif spec.type == "citizen_id":
                field["pattern"] = CITIZEN_ID_PATTERN
                field["description"] = "公民身份号码（GB 11643）"
            elif spec.pattern:
                field["pattern"] = spec.pattern
        properties[name] = field
    return {
        "type": "object",
        "title": step.name_zh,
        "properties": properties,
        "required": [name for name, spec in step.result.items() if spec.required],
        "additionalProperties": False,
    }

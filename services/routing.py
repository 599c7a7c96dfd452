"""Routing (§7.1): which unit is competent for each step of a case, chosen once at acceptance.

The rule is catalogue data (``route.division_field`` on a step, models/catalogue.py): the step's
department in the division the application names (户口登记 → the police of the hukou address's
county). A step of the accepting window's own department (the hospital's steps at the hospital's
window, delivery at the service centre) stays with that window's unit; a step with no route goes to
the window's division, or for an online case to the province's default county. A step for which no
active unit exists means the case cannot be accepted: 422 naming the field, nothing started.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from sqlmodel import Session

from domain.divisions import DEFAULT_COUNTY, division
from models.case import Actor, StepUnit
from models.catalogue import ThingDefinition, read_path
from models.errors import DomainError, ErrorCode
from models.tables import Unit
from services.units import unit_for


def _unit_view(unit: Unit) -> StepUnit:
    return StepUnit(code=unit.code, name_zh=unit.name_zh, division_code=unit.division_code, window_zh=unit.window_zh)


def _no_unit(field: str, department_zh: str, division_code: str) -> DomainError:
    place = division(division_code)
    where = place.full_name_zh if place is not None else division_code
    return DomainError(
        ErrorCode.INVALID,
        "没有可承办的单位，无法受理 (no competent unit)",
        {field: f"{where}没有{department_zh}的承办单位，请核对填写的行政区划 (no such unit in {division_code})"},
    )


def accepting_window(session: Session, actor: Actor) -> StepUnit | None:
    """The clerk's unit, which accepts a window case (None for applicants and clerks in no unit)."""
    if actor.role != "clerk" or actor.unit_code is None:
        return None
    unit = session.get(Unit, actor.unit_code)
    return _unit_view(unit) if unit is not None else None


def route_steps(
    session: Session, definition: ThingDefinition, channel: str, form: Mapping[str, Any], actor: Actor
) -> dict[str, StepUnit]:
    """Each step's competent unit; DomainError (422) naming the field when one has none."""
    window: Unit | None = None
    if actor.role == "clerk" and actor.unit_code is not None:
        window = session.get(Unit, actor.unit_code)
    units: dict[str, StepUnit] = {}
    for step in definition.steps_for(channel):
        department = step.department_for(channel)
        if window is not None and window.department == department:
            units[step.code] = _unit_view(window)
            continue
        named = read_path(form, step.route.division_field) if step.route is not None else None
        if isinstance(named, str) and named:
            division_code, field = named, f"form.{step.route.division_field}" if step.route else "form"
        else:
            division_code = window.division_code if window is not None else DEFAULT_COUNTY
            field = "channel"
        found = unit_for(session, department, division_code)
        if found is None:
            raise _no_unit(field, definition.department_name(department), division_code)
        units[step.code] = _unit_view(found)
    return units

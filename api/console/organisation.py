"""组织机构: the organisation model as staff read it in the console — the administrative
divisions (行政区划), the units in each (单位: a department there, or an institution such as a
hospital), where the reader belongs, how a case's steps find their unit and who oversees what."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Annotated

from fastapi import Depends, Request, Response
from sqlalchemy import Engine
from sqlmodel import Session
from starlette.concurrency import run_in_threadpool

from api.console.base import console_router, render, require_console_role
from api.console.officer import department_names
from api.deps import EngineDep
from domain.divisions import PROVINCE, division
from models.case import Actor
from models.tables import Unit
from services.units import division_name, list_units

router = console_router()

StaffActor = Annotated[Actor, Depends(require_console_role("clerk", "officer", "supervisor", "admin"))]
KIND_ZH = {"department": "部门", "institution": "机构"}


@dataclass
class DivisionUnits:
    code: str
    name_zh: str
    level: str
    units: list[dict[str, str | bool]] = field(default_factory=list)


def _directory(engine: Engine, actor: Actor) -> tuple[list[DivisionUnits], str | None, str]:
    names = department_names()
    with Session(engine) as session:
        units = list_units(session)
        own = session.get(Unit, actor.unit_code) if actor.unit_code else None
    by_division: dict[str, DivisionUnits] = {}
    for unit in units:
        place = division(unit.division_code)
        group = by_division.setdefault(
            unit.division_code,
            DivisionUnits(unit.division_code, division_name(unit.division_code), place.level if place else "county"),
        )
        group.units.append(
            {
                "code": unit.code,
                "name_zh": unit.name_zh,
                "department_zh": names.get(unit.department, unit.department),
                "kind_zh": KIND_ZH.get(unit.kind, unit.kind),
                "window_zh": unit.window_zh or "",
                "active": unit.active,
                "own": own is not None and unit.code == own.code,
            }
        )
    oversees = actor.division_code or PROVINCE if actor.role in {"supervisor", "admin"} else None
    where = own.name_zh if own is not None else (division_name(oversees) if oversees else "")
    return [by_division[code] for code in sorted(by_division)], oversees, where


@router.get("/organisation")
async def organisation(request: Request, actor: StaffActor, engine: EngineDep) -> Response:
    """The divisions and their units, the reader's own place, and how routing and supervision follow them."""
    divisions, oversees, where = await run_in_threadpool(_directory, engine, actor)
    context = {
        "divisions": divisions,
        "oversees_zh": division_name(oversees) if oversees else None,
        "where_zh": where,
        "active_nav": "/organisation",
    }
    return render(request, "organisation.html", context, actor=actor)

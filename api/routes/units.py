"""Units (单位) for admins: register, rename, disable; staff read them.

Units are data, not code: an admin registers each department unit of a division and each
institution (hospital). Reading is for every staff role (an officer looks up a colleague
unit); changes are admins' and are audited. Nothing is deleted (services/units.py).
"""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Path, Query

from api.deps import ActorDep, EngineDep, SessionDep, require_role
from api.errors import error_responses
from api.schemas import UnitInput, UnitList, UnitPatch, UnitView
from domain.units import check_new_unit, departments
from models.errors import DomainError, ErrorCode
from models.tables import Unit
from services.audit import AuditAction, record_staff_action
from services.units import UnitChanges, create_unit, division_name, get_unit, list_units, update_unit

router = APIRouter(prefix="/units", tags=["units"], responses=error_responses(401, 403, 422))

CodePath = Annotated[str, Path(max_length=64)]


def unit_view(unit: Unit) -> UnitView:
    department = departments().get(unit.department)
    return UnitView(
        code=unit.code,
        department=unit.department,
        department_zh=department.name_zh if department else unit.department,
        division_code=unit.division_code,
        division_name_zh=division_name(unit.division_code),
        kind=unit.kind,
        name_zh=unit.name_zh,
        window_zh=unit.window_zh,
        duty_phone=unit.duty_phone,
        active=unit.active,
        created_at=unit.created_at,
    )


@router.get("", response_model=UnitList)
def read_units(
    actor: ActorDep,
    session: SessionDep,
    department: Annotated[str | None, Query(max_length=64, description="a department code")] = None,
    division: Annotated[
        str | None, Query(max_length=16, description="a division code: units within it (杭州市 330100: its counties')")
    ] = None,
    active: Annotated[bool | None, Query(description="only active (true) or disabled (false) units")] = None,
) -> UnitList:
    require_role(actor, "clerk", "officer", "supervisor", "admin")
    items = [unit_view(unit) for unit in list_units(session, department=department, division=division, active=active)]
    return UnitList(items=items, total=len(items))


@router.get("/{code}", response_model=UnitView, responses=error_responses(404))
def read_unit(code: CodePath, actor: ActorDep, session: SessionDep) -> UnitView:
    require_role(actor, "clerk", "officer", "supervisor", "admin")
    return unit_view(get_unit(session, code))


@router.post("", status_code=201, response_model=UnitView, responses=error_responses(409))
def register_unit(body: UnitInput, actor: ActorDep, session: SessionDep, engine: EngineDep) -> UnitView:
    """A department unit (code and name default from department and division) or an institution."""
    require_role(actor, "admin")
    draft = check_new_unit(
        department=body.department,
        division_code=body.division_code,
        kind=body.kind,
        code=body.code,
        name_zh=body.name_zh,
        window_zh=body.window_zh,
        duty_phone=body.duty_phone,
    )
    view = unit_view(create_unit(session, draft))
    detail = {"department": view.department, "division_code": view.division_code, "kind": view.kind}
    record_staff_action(engine, actor, AuditAction.UNIT_CREATE, case_id=None, target=view.code, detail=detail)
    return view


@router.patch("/{code}", response_model=UnitView, responses=error_responses(404))
def change_unit(code: CodePath, body: UnitPatch, actor: ActorDep, session: SessionDep, engine: EngineDep) -> UnitView:
    """Rename, set or clear the window or the duty phone, disable (``active: false``) or enable;
    nothing is deleted."""
    require_role(actor, "admin")
    given = body.model_fields_set
    if "name_zh" in given and body.name_zh is None:
        raise DomainError(
            ErrorCode.INVALID, "输入有误 (invalid input)", {"name_zh": "名称不能为空 (a name is required)"}
        )
    changes = UnitChanges(
        name_zh=body.name_zh,
        window_zh=body.window_zh,
        clear_window="window_zh" in given and body.window_zh is None,
        duty_phone=body.duty_phone,
        clear_duty_phone="duty_phone" in given and body.duty_phone is None,
        active=body.active,
    )
    unit, changed = update_unit(session, code, changes)
    if changed:
        record_staff_action(engine, actor, AuditAction.UNIT_UPDATE, case_id=None, target=unit.code, detail=changed)
    return unit_view(unit)

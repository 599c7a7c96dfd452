"""Units (单位) in the read-model database: register, list, read, rename, disable; and the one
rule that ties a staff account to its unit or division.

The rules of a unit are domain/units.py; this module stores them. A unit is never deleted:
accounts (``user_accounts.unit_code``) and, once cases are routed, cases keep pointing at it,
so "disable" sets ``active`` false and later routing passes it by. The API
(api/routes/units.py) and the CLI (``onething units``, ops/units.py) both come here.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import ColumnElement
from sqlalchemy import case as sql_case
from sqlalchemy.exc import IntegrityError
from sqlmodel import Session, col, select

from domain.divisions import check_division, division, subtree_codes
from domain.units import (
    NAME_MAX,
    UNIT_CODE,
    WINDOW_MAX,
    UnitDraft,
    check_duty_phone,
    check_supervisor_division,
    check_unit_department,
    departments,
    text_problem,
)
from models.errors import DomainError, ErrorCode
from models.tables import Unit

STAFF_ROLES_WITH_UNIT = frozenset({"officer", "clerk"})


def _invalid(field: str, reason: str) -> DomainError:
    return DomainError(ErrorCode.INVALID, "输入有误 (invalid input)", {field: reason})


def unit_row(draft: UnitDraft, now: datetime | None = None) -> Unit:
    """The row of a unit checked by domain.units.check_new_unit, active from now."""
    return Unit(
        code=draft.code,
        department=draft.department,
        division_code=draft.division_code,
        kind=draft.kind,
        name_zh=draft.name_zh,
        window_zh=draft.window_zh,
        duty_phone=draft.duty_phone,
        active=True,
        created_at=now or datetime.now(UTC),
    )


def create_unit(session: Session, draft: UnitDraft, now: datetime | None = None) -> Unit:
    """Store a unit checked by domain.units.check_new_unit; 409 when its code is taken."""
    if session.get(Unit, draft.code) is not None:
        raise _taken(draft.code)
    unit = unit_row(draft, now)
    session.add(unit)
    try:
        session.commit()
    except IntegrityError as error:
        # Two admins registering the same code at once: the second finds it taken.
        session.rollback()
        raise _taken(draft.code) from error
    session.refresh(unit)
    return unit


def _taken(code: str) -> DomainError:
    return DomainError(ErrorCode.CONFLICT, f"单位代码已存在 (unit code {code!r} exists)", {"code": "已存在 (taken)"})


def list_units(
    session: Session, *, department: str | None = None, division: str | None = None, active: bool | None = None
) -> list[Unit]:
    """Units by code; ``division`` keeps those within it (杭州市 lists 上城区's and 西湖区's units
    and its own). An unknown department or division is refused (422), not an empty list: it is a typo."""
    conditions: list[ColumnElement[bool]] = []
    if department is not None:
        try:
            check_unit_department(department)
        except ValueError as error:
            raise _invalid("department", str(error)) from error
        conditions.append(col(Unit.department) == department)
    if division is not None:
        try:
            check_division(division)
        except ValueError as error:
            raise _invalid("division", str(error)) from error
        conditions.append(col(Unit.division_code).in_(sorted(subtree_codes(division))))
    if active is not None:
        conditions.append(col(Unit.active) == active)
    return list(session.exec(select(Unit).where(*conditions).order_by(col(Unit.code))).all())


def get_unit(session: Session, code: str) -> Unit:
    # A code no unit can have is not looked up (nor sent to the database, NUL and all).
    unit = session.get(Unit, code) if UNIT_CODE.fullmatch(code) else None
    if unit is None:
        raise DomainError(ErrorCode.NOT_FOUND, f"没有该单位 (no unit {code!r})")
    return unit


@dataclass(frozen=True)
class UnitChanges:
    """What a patch sets; a field left None is kept (``window_zh`` is cleared with ``clear_window``,
    ``duty_phone`` with ``clear_duty_phone``)."""

    name_zh: str | None = None
    window_zh: str | None = None
    clear_window: bool = False
    duty_phone: str | None = None
    clear_duty_phone: bool = False
    active: bool | None = None


def update_unit(session: Session, code: str, changes: UnitChanges) -> tuple[Unit, dict[str, Any]]:
    """Rename, re-window, set or clear the duty phone, disable or enable a unit; the unit and what
    changed (old, new) per field. Its code, department, division and kind never change: accounts
    and cases rely on them."""
    unit = get_unit(session, code)
    changed: dict[str, Any] = {}
    if changes.name_zh is not None:
        name = changes.name_zh.strip()
        if not name:
            raise _invalid("name_zh", "名称不能为空 (a name is required)")
        if reason := text_problem(name, NAME_MAX):
            raise _invalid("name_zh", reason)
        if name != unit.name_zh:
            changed["name_zh"] = [unit.name_zh, name]
            unit.name_zh = name
    if changes.window_zh is not None or changes.clear_window:
        window = (changes.window_zh or "").strip() or None
        if window is not None and (reason := text_problem(window, WINDOW_MAX)):
            raise _invalid("window_zh", reason)
        if window != unit.window_zh:
            changed["window_zh"] = [unit.window_zh, window]
            unit.window_zh = window
    if changes.duty_phone is not None or changes.clear_duty_phone:
        try:
            phone = check_duty_phone(changes.duty_phone)
        except ValueError as error:
            raise _invalid("duty_phone", str(error)) from error
        if phone != unit.duty_phone:
            changed["duty_phone"] = [unit.duty_phone, phone]
            unit.duty_phone = phone
    if changes.active is not None and changes.active != unit.active:
        changed["active"] = [unit.active, changes.active]
        unit.active = changes.active
    if changed:
        session.add(unit)
        session.commit()
        session.refresh(unit)
    return unit, changed


def set_active(session: Session, code: str, active: bool) -> Unit:
    """Disable (停用) or enable a unit; disabling keeps the row and everything pointing at it."""
    unit, _ = update_unit(session, code, UnitChanges(active=active))
    return unit


def unit_for(session: Session, department: str, division_code: str) -> Unit | None:
    """The active unit of ``department`` in exactly this division, as routing picks it
    (services/routing.py): its department unit if there is one (police @ 330102 → 杭州市上城区公安分局),
    else its first institution by code (a county's hospital); None if neither. A city's unit is
    never taken for one of its counties."""
    return session.exec(
        select(Unit)
        .where(
            col(Unit.department) == department,
            col(Unit.division_code) == division_code,
            col(Unit.active).is_(True),
        )
        .order_by(sql_case((col(Unit.kind) == "department", 0), else_=1), col(Unit.code))
    ).first()


def division_name(code: str) -> str:
    """A division's full name (浙江省杭州市上城区), or the code when it is no longer current."""
    found = division(code)
    return found.full_name_zh if found is not None else code


def check_staff_membership(
    session: Session,
    *,
    role: str,
    unit: str | None,
    unit_code: str | None = None,
    division_code: str | None = None,
) -> str | None:
    """The department (``unit``) a new account stores, after checking its unit and division:
    only officers and clerks belong to a unit, which must exist, be active and be of the account's
    department (taken from the unit when none is given); only supervisors have a division, one of
    this province. DomainError (validation_error) naming the field otherwise."""
    if unit_code is not None:
        if role not in STAFF_ROLES_WITH_UNIT:
            raise _invalid(
                "unit_code", f"只有经办人和窗口人员属于单位 (only officers and clerks belong to a unit, not {role})"
            )
        member_of = session.get(Unit, unit_code)
        if member_of is None:
            raise _invalid("unit_code", f"没有该单位 (no unit {unit_code!r})")
        if not member_of.active:
            raise _invalid("unit_code", f"{member_of.name_zh}已停用 (unit {unit_code} is disabled)")
        if unit is not None and unit != member_of.department:
            raise _invalid(
                "unit",
                f"部门{unit}与单位{member_of.name_zh}的部门{member_of.department}不一致 "
                f"(the account's department must be its unit's: {member_of.department})",
            )
        unit = member_of.department
    if division_code is not None:
        if role != "supervisor":
            raise _invalid("division_code", f"只有监督人员按区划监督 (only supervisors have a division, not {role})")
        try:
            check_supervisor_division(division_code)
        except ValueError as error:
            raise _invalid("division_code", str(error)) from error
    if unit is not None and role in STAFF_ROLES_WITH_UNIT and unit not in departments():
        raise _invalid("unit", f"未知部门 (unknown department) {unit}")
    return unit

"""`onething units add|list|update|disable|enable`: the units (单位) staff belong to, from the command line.

The same rules as the admin API (domain/units.py, services/units.py). Exit status 2 for input
the rules refuse (an unknown department, a retired division code, a malformed code), 1 when
the database's state refuses it (the code is taken, no such unit), 0 otherwise.
"""

from __future__ import annotations

import sys
from typing import TYPE_CHECKING

from settings import get_settings

if TYPE_CHECKING:
    from models.errors import DomainError

BAD_INPUT = 2
REFUSED = 1


def refusal(error: DomainError) -> int:
    """Print a refusal as `message: field: reason; …` on stderr; its exit status."""
    from models.errors import ErrorCode

    details = "; ".join(f"{path}: {reason}" for path, reason in error.fields.items())
    print(f"{error.message}{': ' + details if details else ''}", file=sys.stderr)
    return BAD_INPUT if error.code == ErrorCode.INVALID else REFUSED


def manage_units(
    action: str,
    code: str | None = None,
    *,
    department: str | None = None,
    division: str | None = None,
    kind: str = "department",
    name: str | None = None,
    window: str | None = None,
    duty_phone: str | None = None,
    active: bool | None = None,
) -> int:
    """add | list | update | disable | enable; the exit status of the command. ``update`` sets
    the duty phone (an empty one clears it)."""
    from sqlmodel import Session

    from domain.units import check_new_unit
    from infra.db import init_db, make_engine
    from models.errors import DomainError
    from services.units import UnitChanges, create_unit, division_name, list_units, set_active, update_unit

    engine = make_engine(get_settings().database_url)
    init_db(engine)
    with Session(engine) as session:
        try:
            if action == "list":
                for unit in list_units(session, department=department, division=division, active=active):
                    state = "active" if unit.active else "disabled"
                    place = f"{unit.division_code} {division_name(unit.division_code)}"
                    print(f"{unit.code:<32} {unit.kind:<11} {state:<8} {place:<24} {unit.name_zh}")
                return 0
            if action == "add":
                assert department is not None and division is not None, "add needs a department and a division"
                draft = check_new_unit(
                    department=department,
                    division_code=division,
                    kind=kind,
                    code=code,
                    name_zh=name,
                    window_zh=window,
                    duty_phone=duty_phone,
                )
                unit = create_unit(session, draft)
                print(f"added {unit.code} ({unit.name_zh}, {unit.division_code} {division_name(unit.division_code)})")
                return 0
            assert code is not None, "update, disable and enable name a unit"
            if action == "update":
                assert duty_phone is not None, "update needs --duty-phone"
                unit, changed = update_unit(session, code, UnitChanges(duty_phone=duty_phone))  # "" clears
                phone = unit.duty_phone or "none"
                print(f"{'updated' if changed else 'unchanged'} {unit.code} ({unit.name_zh}): duty phone {phone}")
                return 0
            unit = set_active(session, code, action == "enable")
            print(f"{'enabled' if unit.active else 'disabled'} {unit.code} ({unit.name_zh})")
            return 0
        except DomainError as error:
            return refusal(error)

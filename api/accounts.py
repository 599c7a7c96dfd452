"""User accounts: login checks, and the demo accounts that exist when ONETHING_ENV=dev."""

from __future__ import annotations

import secrets

from sqlalchemy import Engine
from sqlmodel import Session

from api.security import hash_password, verify_password
from models.case import Actor, Role
from models.catalogue import ThingDefinition
from models.tables import UserAccount

DEMO_PASSWORD = "demo"


def demo_accounts(definitions: list[ThingDefinition]) -> list[tuple[str, Role, str | None, str]]:
    """(username, role, unit, display name) for every demo account the catalogue implies."""
    accounts: list[tuple[str, Role, str | None, str]] = [
        ("applicant1", "applicant", None, "申请人一"),
        ("applicant2", "applicant", None, "申请人二"),
        ("supervisor", "supervisor", "supervision", "效能监督员"),
        ("admin", "admin", None, "系统管理员"),
    ]
    names: dict[str, str] = {}
    departments: list[str] = []
    units: list[str] = []
    for definition in definitions:
        names.update(definition.department_names_zh)
        for step in definition.steps:
            for channel in definition.channels:
                if step.applies_to(channel.code) and "officer" in step.actors:
                    department = step.department_for(channel.code)
                    if department not in departments:
                        departments.append(department)
        for channel in definition.channels:
            if channel.accepting_unit and channel.accepting_unit not in units:
                units.append(channel.accepting_unit)
    accounts += [(f"{code}_officer", "officer", code, f"{names.get(code, code)}工作人员") for code in departments]
    accounts += [(f"{code}_clerk", "clerk", code, f"{names.get(code, code)}窗口人员") for code in units]
    return accounts


def ensure_demo_accounts(engine: Engine, definitions: list[ThingDefinition]) -> None:
    # One argon2 hash serves every demo account: hashing is deliberately slow.
    password_hash = hash_password(DEMO_PASSWORD)
    with Session(engine) as session:
        for username, role, unit, display in demo_accounts(definitions):
            if session.get(UserAccount, username) is None:
                session.add(
                    UserAccount(
                        username=username, password_hash=password_hash, role=role, unit=unit, display_name_zh=display
                    )
                )
        session.commit()


# Made once at import, so that even the first unknown username costs one verification, no more.
_UNKNOWN_ACCOUNT_HASH = hash_password(secrets.token_urlsafe(16))


def authenticate(session: Session, username: str, password: str) -> Actor | None:
    account = session.get(UserAccount, username)
    if account is None:
        # Check the password against a throwaway hash anyway, so that an unknown
        # username takes as long as a wrong password and timing reveals nothing.
        verify_password(_UNKNOWN_ACCOUNT_HASH, password)
        return None
    if not verify_password(account.password_hash, password):
        return None
    role: Role = account.role  # type: ignore[assignment]
    return Actor(username=account.username, role=role, unit=account.unit)

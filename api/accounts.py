"""User accounts: login checks, and the demo accounts and units that exist when ONETHING_ENV=dev."""

from __future__ import annotations

import hashlib
import secrets
from typing import NamedTuple

from sqlalchemy import Engine
from sqlmodel import Session, col, select

from api.security import hash_password, verify_password
from domain.divisions import DEFAULT_COUNTY, division
from domain.identity import MOBILE_PHONE, InvalidIdNumber, mask_id_number, person_key, validate_id_number
from domain.samples import FATHER_ID, MOTHER_ID
from domain.units import UnitDraft, check_new_unit, default_unit_code, default_unit_name
from models.case import Actor, Role
from models.catalogue import ThingDefinition
from models.tables import Unit, UserAccount
from services.sessions import EndReason, end_sessions
from services.units import check_staff_membership, unit_row
from settings import Settings

DEMO_PASSWORD = "demo"
# Seeded counties: two cities, so that a city supervisor's subtree holds two counties and
# excludes the other city's. The first is where the accounts without a county in their name work.
DEMO_COUNTIES = (DEFAULT_COUNTY, "330106", "330203")  # 杭州市上城区, 杭州市西湖区, 宁波市海曙区
DEMO_SUPERVISORS = (("supervisor_3301", "330100"), ("supervisor_3302", "330200"))  # 杭州市, 宁波市
# Departments whose units are institutions (data/unit_names.yaml has no default name for them):
# one per seeded county, with a code and name of its own.
DEMO_INSTITUTIONS: dict[str, dict[str, tuple[str, str]]] = {
    "hospital": {
        "330102": ("hospital_330102_fybj", "杭州市上城区妇幼保健院"),
        "330106": ("hospital_330106_fybj", "杭州市西湖区妇幼保健院"),
        "330203": ("hospital_330203_fybj", "宁波市海曙区妇幼保健院"),
    },
}


class VerifiedIdentity(NamedTuple):
    """Who an applicant account was verified as (实名): set at creation in dev, taken from the
    identity provider's claims in production."""

    name: str
    id_number: str
    phone: str


class DemoAccount(NamedTuple):
    username: str
    role: Role
    unit: str | None  # the department code, as every account has had
    display_name_zh: str
    unit_code: str | None = None
    division_code: str | None = None
    identity: VerifiedIdentity | None = None


# The demo applicants are the sample birth form's mother and father (domain/samples.py).
DEMO_IDENTITIES = {
    "applicant1": VerifiedIdentity("李芳", MOTHER_ID, "13800000000"),
    "applicant2": VerifiedIdentity("王强", FATHER_ID, "13900000000"),
}


def set_identity(account: UserAccount, identity: VerifiedIdentity, secret: str) -> None:
    """Record a verified identity on an account: the number only masked and as its keyed hash."""
    account.person_name = identity.name
    account.id_number_masked = mask_id_number(identity.id_number)
    account.person_key = person_key(identity.id_number, secret)
    account.phone = identity.phone or None


def _staff_departments(definitions: list[ThingDefinition]) -> tuple[list[str], list[str], dict[str, str]]:
    """Departments with officers, accepting units with clerks (catalogue order), and department names."""
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
    return departments, units, names


def _window(department: str, county: str, accepting: bool) -> str | None:
    if not accepting:
        return None
    place = division(county)
    short = place.name_zh if place is not None else county
    return "门诊楼一楼 出生一件事联办窗口" if department == "hospital" else f"{short}市民之家 一件事综合受理窗口"


def _demo_duty_phone(number: int) -> str:
    """The n-th demo unit's duty phone (13700000001 …): where its 督办 are texted in dev."""
    return f"1370000{number:04d}"


def demo_units(definitions: list[ThingDefinition]) -> list[UnitDraft]:
    """The unit of every department with officers or clerks in each seeded county: a department
    unit where the department has one, else the county's institution (a hospital); each with a
    duty phone of its own."""
    departments, accepting, _ = _staff_departments(definitions)
    drafts: list[UnitDraft] = []
    for county in DEMO_COUNTIES:
        for department in dict.fromkeys([*departments, *accepting]):
            window = _window(department, county, department in accepting)
            phone = _demo_duty_phone(len(drafts) + 1)
            if default_unit_name(department, county) is not None:
                drafts.append(
                    check_new_unit(department=department, division_code=county, window_zh=window, duty_phone=phone)
                )
            elif county in DEMO_INSTITUTIONS.get(department, {}):
                code, name = DEMO_INSTITUTIONS[department][county]
                drafts.append(
                    check_new_unit(
                        department=department,
                        division_code=county,
                        kind="institution",
                        code=code,
                        name_zh=name,
                        window_zh=window,
                        duty_phone=phone,
                    )
                )
    return drafts


def _demo_unit_code(department: str, county: str) -> str | None:
    if default_unit_name(department, county) is not None:
        return default_unit_code(department, county)
    institution = DEMO_INSTITUTIONS.get(department, {}).get(county)
    return institution[0] if institution else None


def demo_accounts(definitions: list[ThingDefinition]) -> list[DemoAccount]:
    """Every demo account the catalogue implies: the first ones (``police_officer`` …, members of
    their department's 330102 unit), a city supervisor per seeded city, and per seeded county
    ``<department>_<county>_officer`` for every officer department and ``<department>_<county>_clerk``
    for every accepting unit."""
    accounts: list[DemoAccount] = [
        DemoAccount("applicant1", "applicant", None, "申请人一", identity=DEMO_IDENTITIES["applicant1"]),
        DemoAccount("applicant2", "applicant", None, "申请人二", identity=DEMO_IDENTITIES["applicant2"]),
        DemoAccount("supervisor", "supervisor", "supervision", "效能监督员"),
        DemoAccount("admin", "admin", None, "系统管理员"),
    ]
    departments, accepting, names = _staff_departments(definitions)
    accounts += [
        DemoAccount(
            f"{code}_officer",
            "officer",
            code,
            f"{names.get(code, code)}工作人员",
            _demo_unit_code(code, DEFAULT_COUNTY),
        )
        for code in departments
    ]
    accounts += [
        DemoAccount(
            f"{code}_clerk", "clerk", code, f"{names.get(code, code)}窗口人员", _demo_unit_code(code, DEFAULT_COUNTY)
        )
        for code in accepting
    ]
    for username, city in DEMO_SUPERVISORS:
        place = division(city)
        city_name = place.name_zh if place is not None else city
        accounts.append(DemoAccount(username, "supervisor", "supervision", f"{city_name}效能监督员", None, city))
    unit_names = {draft.code: draft.name_zh for draft in demo_units(definitions)}
    staff: tuple[tuple[Role, list[str], str], ...] = (
        ("officer", departments, "工作人员"),
        ("clerk", accepting, "窗口人员"),
    )
    for county in DEMO_COUNTIES:
        for role, members, title in staff:
            for code in members:
                unit_code = _demo_unit_code(code, county)
                if unit_code is not None:
                    display = f"{unit_names[unit_code]}{title}"
                    accounts.append(DemoAccount(f"{code}_{county}_{role}", role, code, display, unit_code))
    return accounts


def ensure_demo_accounts(engine: Engine, definitions: list[ThingDefinition], *, secret: str) -> None:
    """Create the demo units and accounts that are missing (it runs at every start in dev):
    nothing an admin changed is overwritten, demo accounts made before units existed join
    their unit, and demo applicants made before identities get theirs (``secret`` keys the
    hash of their ID numbers, domain/identity.person_key)."""
    with Session(engine) as session:
        known_units = set(session.exec(select(col(Unit.code))).all())
        session.add_all(unit_row(draft) for draft in demo_units(definitions) if draft.code not in known_units)
        session.flush()  # the units first: accounts point at them
        stored = {account.username: account for account in session.exec(select(UserAccount)).all()}
        password_hash: str | None = None
        moved: list[str] = []
        for demo in demo_accounts(definitions):
            account = stored.get(demo.username)
            if account is None:
                check_staff_membership(
                    session, role=demo.role, unit=demo.unit, unit_code=demo.unit_code, division_code=demo.division_code
                )
                # One argon2 hash serves every demo account: hashing is deliberately slow.
                password_hash = password_hash or hash_password(DEMO_PASSWORD)
                account = UserAccount(
                    username=demo.username,
                    password_hash=password_hash,
                    role=demo.role,
                    unit=demo.unit,
                    display_name_zh=demo.display_name_zh,
                    unit_code=demo.unit_code,
                    division_code=demo.division_code,
                )
                if demo.identity is not None:
                    set_identity(account, demo.identity, secret)
                session.add(account)
                continue
            if demo.identity is not None and account.person_key is None:
                set_identity(account, demo.identity, secret)
                session.add(account)
            if (
                account.unit_code is None
                and account.division_code is None
                and (account.role, account.unit) == (demo.role, demo.unit)
                and (demo.unit_code, demo.division_code) != (None, None)
            ):
                account.unit_code, account.division_code = demo.unit_code, demo.division_code
                session.add(account)
                moved.append(account.username)
        # A token names the unit it was issued in: the sessions of those who joined one end.
        for username in moved:
            end_sessions(session, username, EndReason.MEMBERSHIP_CHANGED)
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
    # Staff work where their unit is: its division scopes what they see (services/access.py).
    member_of = session.get(Unit, account.unit_code) if account.unit_code else None
    return Actor(
        username=account.username,
        role=role,
        unit=account.unit,
        unit_code=account.unit_code,
        division_code=member_of.division_code if member_of is not None else account.division_code,
    )


# An account made at an identity provider's sign-in has no password: this is no argon2 hash,
# so every password login to it fails (verify_password answers False for an invalid hash).
NO_PASSWORD = "!signed-in-through-oidc"


class UnverifiedClaims(ValueError):
    """The provider's ID token lacks the verified ID number, the name or a usable phone."""


def account_for_verified_person(session: Session, claims: dict[str, object], settings: Settings, issuer: str) -> Actor:
    """The applicant account of the person an identity provider verified (made at their first
    sign-in; an account with the same identity, made at a window or by an admin, is theirs)."""
    raw_number, name, phone = (
        claims.get(settings.oidc_id_number_claim),
        claims.get(settings.oidc_name_claim),
        claims.get(settings.oidc_phone_claim),
    )
    if not (isinstance(raw_number, str) and isinstance(name, str) and name.strip()):
        raise UnverifiedClaims("the ID token carries no verified ID number and name")
    try:
        number = validate_id_number(raw_number)
    except InvalidIdNumber as error:
        raise UnverifiedClaims(f"the verified ID number is not valid: {error}") from None
    key = person_key(number, settings.secret_key)
    account = session.exec(
        select(UserAccount).where(col(UserAccount.person_key) == key, col(UserAccount.role) == "applicant")
    ).first()
    if account is not None and account.disabled_at is not None:
        raise UnverifiedClaims("this person's account is disabled")
    if account is None:
        subject = hashlib.sha256(f"{issuer}:{claims.get('sub')}".encode()).hexdigest()[:20]
        account = UserAccount(
            username=f"oidc-{subject}", password_hash=NO_PASSWORD, role="applicant", display_name_zh=name.strip()
        )
    local = phone.removeprefix("+86") if isinstance(phone, str) else ""
    usable_phone = local if MOBILE_PHONE.fullmatch(local) else account.phone
    identity = VerifiedIdentity(name.strip(), number, usable_phone or "")
    set_identity(account, identity, settings.secret_key)
    session.add(account)
    session.commit()
    return Actor(username=account.username, role="applicant")

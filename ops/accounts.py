"""`onething accounts add|list|passwd|remove|revoke`: staff and applicant accounts in the read-model database.

Production has no demo accounts; this is how an administrator creates the real ones. An officer
or clerk may be put in a unit (``--unit-code``; its department is the account's), a supervisor
in a division (``--division``); bad input there exits 2, like `onething units`.
Passwords are read without echo (or one line from stdin with ``password_stdin``) and
stored only as argon2 hashes; nothing here prints or logs them.

A new password and a removal end every sign-in session of the account (services/sessions.py),
so a token issued before is refused; ``revoke`` ends them alone (强制下线), the account kept.
"""

from __future__ import annotations

import getpass
import sys
from datetime import UTC, datetime

from settings import get_settings

STAFF_ROLES_WITH_UNIT = {"officer", "clerk"}
ROLES = ["applicant", "clerk", "officer", "supervisor", "admin"]
MIN_PASSWORD_LENGTH = 12
# No argon2 hash: every password login to a disabled account fails (verify_password answers False).
DISABLED_PASSWORD = "!disabled"


def read_password(password_stdin: bool) -> str | None:
    """A new password, asked twice without echo or read from one line of stdin; None if refused."""
    if password_stdin:
        password = sys.stdin.readline().rstrip("\n")
    else:
        password = getpass.getpass("密码 (password): ")
        if getpass.getpass("再次输入 (again): ") != password:
            print("两次输入的密码不一致 (the passwords differ)", file=sys.stderr)
            return None
    if len(password) < MIN_PASSWORD_LENGTH:
        print("密码至少 12 个字符 (a password needs at least 12 characters)", file=sys.stderr)
        return None
    return password


def manage_accounts(
    action: str,
    username: str | None = None,
    *,
    role: str | None = None,
    unit: str | None = None,
    unit_code: str | None = None,
    division: str | None = None,
    name: str | None = None,
    id_number: str | None = None,
    phone: str | None = None,
    password_stdin: bool = False,
) -> int:
    """add | list | passwd | remove | revoke; the exit status of the command."""
    from sqlmodel import Session, col, select

    from api.accounts import VerifiedIdentity, set_identity
    from api.security import hash_password
    from domain.catalogue import load_departments
    from domain.identity import MOBILE_PHONE, InvalidIdNumber, validate_id_number
    from infra.db import init_db, make_engine
    from models.errors import DomainError
    from models.tables import UserAccount
    from ops.units import refusal
    from services.sessions import EndReason, end_sessions
    from services.units import check_staff_membership

    engine = make_engine(get_settings().database_url)
    init_db(engine)
    with Session(engine) as session:
        if action == "list":
            for row in session.exec(select(UserAccount).order_by(col(UserAccount.username))):
                member_of = row.unit_code or row.division_code or "-"
                disabled = " （已停用 disabled）" if row.disabled_at else ""
                print(
                    f"{row.username:<32} {row.role:<11} {row.unit or '-':<20} {member_of:<28} "
                    f"{row.display_name_zh}{disabled}"
                )
            return 0
        assert username is not None, "every action but list names an account"
        account = session.get(UserAccount, username)
        if action == "add":
            if account is not None:
                state = "已停用，用户名不再使用 (disabled; a username is never reused)" if account.disabled_at else ""
                print(f"账号已存在 (account exists): {username} {state}".rstrip(), file=sys.stderr)
                return 1
            assert role is not None, "add needs a role"
            if unit_code is not None or division is not None:
                # The unit's department is the account's (given or taken from the unit).
                try:
                    unit = check_staff_membership(
                        session, role=role, unit=unit, unit_code=unit_code, division_code=division
                    )
                except DomainError as error:
                    return refusal(error)
            departments = load_departments()
            if role in STAFF_ROLES_WITH_UNIT and unit not in departments:
                known = ", ".join(sorted(departments))
                print(f"--unit: {role} 须属于一个部门 (must name a department: {known})", file=sys.stderr)
                return 1
            if unit is not None and unit not in departments:
                print(f"--unit: 未知部门 (unknown department) {unit}", file=sys.stderr)
                return 1
            identity = None
            if role == "applicant":
                # An applicant account is a person (实名): the identity checked when it was made.
                if not (name and id_number and phone):
                    print(
                        "--name, --id-number, --phone: 申请人账号须实名 (an applicant needs all three)", file=sys.stderr
                    )
                    return 1
                try:
                    id_number = validate_id_number(id_number)
                except InvalidIdNumber as error:
                    print(f"--id-number: {error}", file=sys.stderr)
                    return 1
                if not MOBILE_PHONE.fullmatch(phone):
                    print("--phone: 须为11位手机号码 (an 11-digit mobile number)", file=sys.stderr)
                    return 1
                identity = VerifiedIdentity(name, id_number, phone)
            password = read_password(password_stdin)
            if password is None:
                return 1
            account = UserAccount(
                username=username,
                password_hash=hash_password(password),
                role=role,
                unit=unit,
                display_name_zh=name or "",
                unit_code=unit_code,
                division_code=division,
            )
            if identity is not None:
                set_identity(account, identity, get_settings().secret_key)
            session.add(account)
            session.commit()
            member_of = "".join(f", {item}" for item in (unit, unit_code or division) if item)
            print(f"added {username} ({role}{member_of})")
            return 0
        if account is None:
            print(f"没有该账号 (no such account): {username}", file=sys.stderr)
            return 1
        if account.disabled_at is not None:
            print(f"账号已停用 (account disabled): {username}", file=sys.stderr)
            return 1
        if action == "passwd":
            password = read_password(password_stdin)
            if password is None:
                return 1
            account.password_hash = hash_password(password)
            session.add(account)
            ended = end_sessions(session, username, EndReason.PASSWORD_CHANGED)  # commits the new hash too
            print(f"password changed for {username}; {len(ended)} sign-in session(s) ended")
            return 0
        if action == "revoke":
            ended = end_sessions(session, username, EndReason.REVOKED)
            print(f"{len(ended)} sign-in session(s) of {username} ended")
            return 0
        # Disabled, never deleted: the name stays taken, so nobody new inherits its cases or trail.
        account.disabled_at = datetime.now(UTC)
        account.password_hash = DISABLED_PASSWORD
        session.add(account)
        ended = end_sessions(session, username, EndReason.ACCOUNT_REMOVED)  # commits the removal too
        print(f"removed {username} (disabled; the username stays taken); {len(ended)} sign-in session(s) ended")
        return 0

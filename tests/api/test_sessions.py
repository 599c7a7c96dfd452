"""Sign-in sessions: a token holds while its session is live, and logout, a new password, a
change of unit, the account's removal and an admin's revoke end it — in every API process."""

from __future__ import annotations

import asyncio
import io
import secrets
import time
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager
from datetime import UTC, datetime, timedelta

import httpx
import jwt
import pytest
from fastapi import FastAPI
from sqlalchemy import Engine
from sqlmodel import Session, col, select
from temporalio.testing import WorkflowEnvironment

import cli
from api.accounts import ensure_demo_accounts
from api.console.base import SESSION_COOKIE
from api.main import create_app
from api.security import ALGORITHM
from domain.catalogue import shipped_definitions
from models.tables import AuthSession, CaseRecord, UserAccount
from ops.accounts import manage_accounts
from services.sessions import EndReason, LiveSessions
from settings import Settings, get_settings
from tests.api.console_access_rows import session_csrf
from tests.api.console_client import console_users
from tests.api.helpers import assert_error

NEW_PASSWORD = "a brand new secret"


async def _token(api: httpx.AsyncClient, username: str, password: str = "demo") -> str:
    """A fresh login: a session of its own (the ``login`` fixture reuses one per account)."""
    response = await api.post("/auth/token", data={"username": username, "password": password})
    assert response.status_code == 200, response.text
    token: str = response.json()["access_token"]
    return token


def _bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


def _session_id(token: str) -> str:
    sid: str = jwt.decode(token, options={"verify_signature": False})["sid"]
    return sid


def _rows(engine: Engine, username: str) -> list[AuthSession]:
    with Session(engine) as session:
        query = select(AuthSession).where(col(AuthSession.username) == username)
        return list(session.exec(query.order_by(col(AuthSession.created_at))).all())


def _ended(error: dict[str, object]) -> bool:
    return "session ended" in str(error["message"]) and "登录已失效" in str(error["message"])


def _a_ttl_later(sessions: LiveSessions) -> None:
    """This process's clock moved on by the cache's lifetime (as ``session_check_seconds`` pass)."""
    ttl, clock = sessions.ttl_seconds, sessions.clock
    sessions.clock = lambda: clock() + ttl


def _stopped_clock(sessions: LiveSessions) -> None:
    """This process's clock stands still until ``_a_ttl_later``: however slow the test runs, the
    answers it remembers stay within ``session_check_seconds``."""
    stopped = time.monotonic()
    sessions.clock = lambda: stopped


@asynccontextmanager
async def _another_process(
    env: WorkflowEnvironment, settings: Settings, engine: Engine
) -> AsyncIterator[tuple[FastAPI, httpx.AsyncClient]]:
    """A second API instance on the same database, with its own memory of sessions: another process."""
    app = create_app(settings, temporal_client=env.client, engine=engine)
    async with app.router.lifespan_context(app):
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://onething.test") as client:
            yield app, client


@pytest.fixture
def cli_database(api_settings: Settings, monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """``onething accounts`` run against the test's database, as an administrator runs it on a server."""
    monkeypatch.setenv("ONETHING_ENV", "dev")
    monkeypatch.setenv("DATABASE_URL", api_settings.database_url)
    get_settings.cache_clear()
    yield
    get_settings.cache_clear()


async def test_a_login_starts_a_session_that_its_token_names(api, engine) -> None:
    token = await _token(api, "police_officer")

    (row,) = _rows(engine, "police_officer")
    assert _session_id(token) == row.session_id and len(row.session_id) == 32
    int(row.session_id, 16)  # 32 hex digits
    assert row.ended_at is None and row.end_reason is None
    assert row.expires_at - row.created_at == timedelta(minutes=480)


async def test_a_token_works_until_its_holder_logs_out(api, engine) -> None:
    token = await _token(api, "police_officer")
    other_device = await _token(api, "police_officer")
    assert (await api.get("/auth/me", headers=_bearer(token))).status_code == 200

    response = await api.post("/auth/logout", headers=_bearer(token))

    assert response.status_code == 204 and response.content == b""
    error = assert_error(await api.get("/auth/me", headers=_bearer(token)), 401, "unauthorized")
    assert _ended(error)
    assert_error(await api.get("/tasks", headers=_bearer(token)), 401, "unauthorized")
    assert_error(await api.post("/auth/logout", headers=_bearer(token)), 401, "unauthorized")
    # Only that session ended: the account's login on another device goes on.
    assert (await api.get("/auth/me", headers=_bearer(other_device))).status_code == 200
    reasons = {row.session_id: row.end_reason for row in _rows(engine, "police_officer")}
    assert reasons == {_session_id(token): EndReason.LOGOUT, _session_id(other_device): None}


async def test_logout_without_a_token_is_401(api) -> None:
    assert_error(await api.post("/auth/logout"), 401, "unauthorized")


async def test_an_admins_revoke_holds_in_another_api_process_within_the_cache_window(
    api, api_app, env, api_settings, engine
) -> None:
    officer = await _token(api, "police_officer")
    admin = await _token(api, "admin")
    sessions: LiveSessions = api_app.state.live_sessions
    _stopped_clock(sessions)
    # This process reads the token once: it now remembers the session live.
    assert (await api.get("/auth/me", headers=_bearer(officer))).status_code == 200

    async with _another_process(env, api_settings, engine) as (other_app, other):
        assert (await other.get("/auth/me", headers=_bearer(officer))).status_code == 200

        revoked = await other.post("/accounts/police_officer/sessions/revoke", headers=_bearer(admin))

        assert revoked.status_code == 204 and revoked.content == b""
        # The process that revoked refuses the token at once, on every route that names the caller.
        assert _ended(assert_error(await other.get("/auth/me", headers=_bearer(officer)), 401, "unauthorized"))
        assert_error(await other.get("/tasks", headers=_bearer(officer)), 401, "unauthorized")
        # The first process still remembers the session live, for at most session_check_seconds …
        assert sessions.ttl_seconds == api_settings.session_check_seconds == 2
        assert (await api.get("/auth/me", headers=_bearer(officer))).status_code == 200
        _a_ttl_later(sessions)
        # … and then reads the database again: refused there too.
        assert _ended(assert_error(await api.get("/auth/me", headers=_bearer(officer)), 401, "unauthorized"))
        assert_error(await api.get("/tasks", headers=_bearer(officer)), 401, "unauthorized")
        # The admin's own session was not touched, and a new login of the officer works anywhere.
        assert (await api.get("/auth/me", headers=_bearer(admin))).status_code == 200
        again = await _token(other, "police_officer")
        assert (await api.get("/auth/me", headers=_bearer(again))).status_code == 200
        assert other_app.state.live_sessions is not sessions

    audit = (await api.get("/audit", params={"action": "sessions_revoke"}, headers=_bearer(admin))).json()
    (entry,) = audit["items"]
    assert (entry["actor"], entry["target"], entry["action_zh"]) == ("admin", "police_officer", "强制下线")
    assert entry["detail"] == {"sessions": 1}
    assert {row.end_reason for row in _rows(engine, "police_officer")} == {EndReason.REVOKED, None}


async def test_only_an_admin_revokes_and_only_an_existing_account(api) -> None:
    supervisor = await _token(api, "supervisor")
    admin = await _token(api, "admin")

    assert_error(
        await api.post("/accounts/police_officer/sessions/revoke", headers=_bearer(supervisor)), 403, "forbidden"
    )
    assert_error(await api.post("/accounts/police_officer/sessions/revoke"), 401, "unauthorized")
    assert_error(await api.post("/accounts/nobody/sessions/revoke", headers=_bearer(admin)), 404, "not_found")
    assert (await api.get("/auth/me", headers=_bearer(supervisor))).status_code == 200


async def test_the_codec_server_refuses_a_revoked_token_and_cookie(api, api_app) -> None:
    officer = await _token(api, "police_officer")
    admin = await _token(api, "admin")
    body: dict[str, list[object]] = {"payloads": []}
    assert (await api.post("/codec/decode", json=body, headers=_bearer(officer))).status_code == 200

    assert (await api.post("/accounts/police_officer/sessions/revoke", headers=_bearer(admin))).status_code == 204

    assert_error(await api.post("/codec/decode", json=body, headers=_bearer(officer)), 401, "unauthorized")
    api.cookies.set(SESSION_COOKIE, officer)
    try:
        assert_error(await api.post("/codec/decode", json=body), 401, "unauthorized")
        # The inbox's event stream reads the cookie too (let in, it would stream on and on).
        assert_error(await asyncio.wait_for(api.get("/tasks/events"), timeout=10), 401, "unauthorized")
    finally:
        api.cookies.clear()


async def test_a_new_password_ends_every_session_of_the_account(
    api, api_app, engine, cli_database, monkeypatch
) -> None:
    phone = await _token(api, "police_officer")
    desk = await _token(api, "police_officer")
    assert (await api.get("/auth/me", headers=_bearer(phone))).status_code == 200
    monkeypatch.setattr("sys.stdin", io.StringIO(NEW_PASSWORD + "\n"))

    assert manage_accounts("passwd", "police_officer", password_stdin=True) == 0

    _a_ttl_later(api_app.state.live_sessions)  # the CLI is another process
    for token in (phone, desk):
        assert _ended(assert_error(await api.get("/auth/me", headers=_bearer(token)), 401, "unauthorized"))
    assert {row.end_reason for row in _rows(engine, "police_officer")} == {EndReason.PASSWORD_CHANGED}
    assert (await api.get("/auth/me", headers=_bearer(await _token(api, "police_officer", NEW_PASSWORD)))).is_success


async def test_removing_an_account_ends_its_sessions(api, api_app, engine, cli_database) -> None:
    token = await _token(api, "applicant2")
    assert (await api.get("/auth/me", headers=_bearer(token))).status_code == 200

    assert manage_accounts("remove", "applicant2") == 0

    _a_ttl_later(api_app.state.live_sessions)
    assert_error(await api.get("/auth/me", headers=_bearer(token)), 401, "unauthorized")
    assert [row.end_reason for row in _rows(engine, "applicant2")] == [EndReason.ACCOUNT_REMOVED]


async def test_a_removed_applicants_cases_never_reach_a_new_account_of_that_name(
    api, api_app, login, cases, engine, cli_database
) -> None:
    mine = await cases.submit()  # applicant1's own case
    assert manage_accounts("remove", "applicant1") == 0

    recreated = manage_accounts(
        "add",
        "applicant1",
        role="applicant",
        name="张伟",
        id_number="330106199208150114",
        phone="13700000009",
        password_stdin=True,
    )

    assert recreated == 1  # the name stays the removed person's
    assert_error(
        await api.post("/auth/token", data={"username": "applicant1", "password": "demo"}), 401, "unauthorized"
    )
    with Session(engine) as session:
        record = session.get(CaseRecord, mine["case_id"])
        assert record is not None and record.owner == "applicant1"


async def test_the_cli_revoke_ends_the_sessions_and_keeps_the_account(
    api, api_app, engine, cli_database, capsys
) -> None:
    token = await _token(api, "hospital_clerk")
    assert (await api.get("/auth/me", headers=_bearer(token))).status_code == 200

    assert cli.main(["accounts", "revoke", "hospital_clerk"]) == 0
    assert "1 sign-in session(s) of hospital_clerk ended" in capsys.readouterr().out
    assert cli.main(["accounts", "revoke", "nobody"]) == 1

    _a_ttl_later(api_app.state.live_sessions)
    assert_error(await api.get("/auth/me", headers=_bearer(token)), 401, "unauthorized")
    assert (await api.get("/auth/me", headers=_bearer(await _token(api, "hospital_clerk")))).status_code == 200


async def test_joining_a_unit_ends_the_sessions_issued_without_it(api, api_app, api_settings, engine) -> None:
    # An officer account made before units existed: its token names no unit.
    with Session(engine) as session:
        account = session.get(UserAccount, "police_officer")
        assert account is not None
        account.unit_code = None
        session.add(account)
        session.commit()
    token = await _token(api, "police_officer")
    assert (await api.get("/auth/me", headers=_bearer(token))).json()["unit_code"] is None

    # The next start puts the demo account in its unit: the token's unit is no longer the account's.
    ensure_demo_accounts(engine, list(shipped_definitions().values()), secret=api_settings.secret_key)

    _a_ttl_later(api_app.state.live_sessions)
    assert_error(await api.get("/auth/me", headers=_bearer(token)), 401, "unauthorized")
    assert [row.end_reason for row in _rows(engine, "police_officer")] == [EndReason.MEMBERSHIP_CHANGED]
    fresh = await api.get("/auth/me", headers=_bearer(await _token(api, "police_officer")))
    assert fresh.json()["unit_code"] == "police_330102"


async def test_a_correctly_signed_token_without_a_session_or_with_an_unknown_one_is_401(api, api_settings) -> None:
    claims = {
        "sub": "supervisor",
        "role": "supervisor",
        "unit": "supervision",
        "exp": int((datetime.now(UTC) + timedelta(hours=1)).timestamp()),
    }
    without = jwt.encode(claims, api_settings.secret_key, algorithm=ALGORITHM)
    unknown = jwt.encode({**claims, "sid": secrets.token_hex(16)}, api_settings.secret_key, algorithm=ALGORITHM)

    error = assert_error(await api.get("/auth/me", headers=_bearer(without)), 401, "unauthorized")
    assert "token names no session" in error["message"]
    assert _ended(assert_error(await api.get("/auth/me", headers=_bearer(unknown)), 401, "unauthorized"))
    for token in (without, unknown):
        response = await api.post("/codec/decode", json={"payloads": []}, headers=_bearer(token))
        assert_error(response, 401, "unauthorized")


async def test_the_console_logout_ends_the_session_the_cookie_held(api, engine) -> None:
    async with console_users(api) as users:
        user = await users("applicant1")
        token = user.client.cookies[SESSION_COOKIE]
        assert (await api.get("/auth/me", headers=_bearer(token))).status_code == 200

        response = await user.client.post("/logout", data={"csrf_token": await session_csrf(user.client)})

        assert response.status_code == 303 and response.headers["location"] == "/login"
        assert _ended(assert_error(await api.get("/auth/me", headers=_bearer(token)), 401, "unauthorized"))
        # Whoever kept a copy of the cookie is not let in either.
        stolen = await users(None)
        stolen.client.cookies.set(SESSION_COOKIE, token, domain="onething.test")
        page = await stolen.client.get("/my/cases")
        assert page.status_code == 303 and page.headers["location"].startswith("/login")
    assert [row.end_reason for row in _rows(engine, "applicant1")] == [EndReason.LOGOUT]


def test_the_memory_of_live_sessions_lasts_its_ttl_and_yields_to_an_end_made_here() -> None:
    now = [100.0]
    sessions = LiveSessions(2.0, clock=lambda: now[0])
    assert sessions.cached("a") is None

    sessions._keep("a", now[0], True)
    now[0] += 1.9
    assert sessions.cached("a") is True
    now[0] += 0.1
    assert sessions.cached("a") is None  # read again after the TTL

    sessions.ended(["b"])
    sessions._keep("b", now[0] - 0.5, True)  # a read begun before the end, finished after it
    assert sessions.cached("b") is False

    no_memory = LiveSessions(0)
    no_memory._keep("c", 0.0, True)
    no_memory.ended(["c"])
    assert no_memory.cached("c") is None

"""Who may open which console page: every console route × every role (anonymous, applicant,
window clerk, department officer, supervisor, admin), from the rows in console_access_rows.py.

Anonymous visitors are sent to the login page; a role the page is not for gets the 403 page;
the roles it is for get the page (200) or, for a form, the redirect after it (303). A new
console route without a row fails ``test_every_console_route_has_an_access_row``."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest

from api.console import console_routes
from api.console.base import SESSION_COOKIE
from tests.api.console_access_rows import (
    CONSOLE_ROLES,
    CONSOLE_ROUTES_A1,
    CONSOLE_ROUTES_A2,
    CONSOLE_USERS,
    ConsoleRow,
    session_csrf,
)
from tests.api.console_client import ConsoleUsers, console_users
from tests.api.helpers import task_id

ROWS: list[ConsoleRow] = CONSOLE_ROUTES_A1 + CONSOLE_ROUTES_A2


def test_every_console_route_has_an_access_row():
    rows = [(row.method, row.path) for row in ROWS]
    assert len(rows) == len(set(rows)), "a route has two rows"
    missing = sorted(set(console_routes()) - set(rows))
    stale = sorted(set(rows) - set(console_routes()))
    assert missing == [], f"console routes without an access row: {missing}"
    assert stale == [], f"access rows for routes that do not exist: {stale}"


def test_console_routes_stay_out_of_the_openapi_document(api_settings):
    from api.main import create_app

    paths = set(create_app(api_settings).openapi()["paths"])
    assert paths.isdisjoint({path for _, path in console_routes()})


@pytest.fixture
async def browser(api) -> AsyncIterator[ConsoleUsers]:
    async with console_users(api) as make:
        yield make


async def test_each_role_gets_what_its_row_says_on_every_console_route(api, cases, login, browser):
    case = await cases.submit(channel="hospital")
    issued = await api.post(
        "/supervision/notices",
        json={"case_id": case["case_id"], "step": "birth_certificate", "message": "请加快办理"},
        headers=await login("supervisor"),
    )
    assert issued.status_code == 201, issued.text
    notices = await api.get("/notices", headers=await login("hospital_officer"))
    (notice,) = notices.json()["items"]
    placeholders = {
        "case_id": case["case_id"],
        "thing": "birth",
        "task_id": task_id(case["case_id"], "birth_certificate"),
        "notice_id": notice["notice_id"],
    }

    async def signed_in(username: str) -> tuple[str, str]:
        user = await browser(username)
        return user.client.cookies[SESSION_COOKIE], await session_csrf(user.client)

    # One browser per role; its session is put back before each request (a logout row clears it).
    sessions = {role: await signed_in(username) for role, username in CONSOLE_USERS.items()}
    anonymous = await browser(None)

    failures: list[str] = []
    for row in ROWS:
        url = row.url.format(**placeholders)
        for role in CONSOLE_ROLES:
            client = anonymous.client
            client.cookies.clear()
            form = dict(row.form)
            if role != "anonymous":
                # Logging out ends the session: that row ends one of its own.
                token, csrf = await signed_in(CONSOLE_USERS[role]) if row.path == "/logout" else sessions[role]
                client.cookies.set(SESSION_COOKIE, token)
                form["csrf_token"] = csrf
            if row.method == "GET":
                response = await client.get(url)
            else:
                response = await client.post(url, data=form)
            expected = row.status_for(role)
            where = f"{row.method} {row.path} as {role}"
            if response.status_code != expected:
                failures.append(f"{where}: {response.status_code}, expected {expected}")
                continue
            location = response.headers.get("location", "")
            if role == "anonymous" and expected == 303 and not location.startswith("/login"):
                failures.append(f"{where}: redirected to {location!r}, not to the login page")
            logged_in = role != "anonymous" and row.path not in {"/logout", "/"}
            if logged_in and expected == 303 and location.startswith("/login"):
                failures.append(f"{where}: sent to the login page although logged in")
            if expected in {403, 404} and not response.headers["content-type"].startswith("text/html"):
                failures.append(f"{where}: the {expected} is not an HTML page")
    assert failures == [], "\n".join(failures)

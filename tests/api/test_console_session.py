"""Web console sessions: the login page, the session cookie, role start pages, CSRF and logout."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import httpx
import pytest
from starlette.responses import Response

from api.console.base import SESSION_COOKIE, due, set_session_cookie
from models.case import Actor
from settings import Settings
from tests.api.console_access_rows import console_login, csrf_of, session_csrf
from tests.api.helpers import issued_token


def _session_cookie_header(response: httpx.Response) -> str:
    headers = [value for value in response.headers.get_list("set-cookie") if value.startswith(f"{SESSION_COOKIE}=")]
    assert len(headers) == 1, response.headers
    return headers[0]


@pytest.mark.parametrize(
    ("username", "home"),
    [
        ("applicant1", "/my/cases"),
        ("hospital_clerk", "/window"),
        ("police_officer", "/inbox"),
        ("supervisor", "/dashboard"),
        ("admin", "/dashboard"),
    ],
)
async def test_login_sets_the_session_cookie_and_each_role_lands_on_its_start_page(
    api, api_settings: Settings, username, home
):
    response = await console_login(api, username)

    assert response.headers["location"] == home
    cookie = _session_cookie_header(response).lower()
    assert "httponly" in cookie and "samesite=strict" in cookie
    assert f"max-age={api_settings.token_ttl_minutes * 60}" in cookie
    assert "secure" not in cookie  # only in prod: the test client speaks plain HTTP
    assert (await api.get("/", follow_redirects=False)).headers["location"] == home


async def test_the_session_cookie_is_the_same_jwt_the_json_api_accepts(api):
    await console_login(api, "hospital_officer")
    token = api.cookies[SESSION_COOKIE]

    me = await api.get("/auth/me", headers={"Authorization": f"Bearer {token}"})

    assert me.json() == {
        "username": "hospital_officer",
        "role": "officer",
        "unit": "hospital",
        "unit_code": "hospital_330102_fybj",
        "division_code": "330102",  # where the unit is
        "name": None,
        "id_number_masked": None,
    }


def test_the_session_cookie_is_secure_in_production(api_settings: Settings):
    response = Response()
    set_session_cookie(response, "token", api_settings.model_copy(update={"env": "prod"}))

    assert "secure" in response.headers["set-cookie"].lower()


async def test_anonymous_visitors_are_sent_to_the_login_page_with_the_page_they_wanted(api):
    api.cookies.clear()
    assert (await api.get("/")).headers["location"] == "/login"

    response = await api.get("/my/cases/ot-123?tab=x")

    assert response.status_code == 303
    assert response.headers["location"] == "/login?next=%2Fmy%2Fcases%2Fot-123%3Ftab%3Dx"
    page = await api.get(response.headers["location"])
    assert page.status_code == 200
    assert '<html lang="zh-CN">' in page.text and "登录" in page.text
    assert 'name="next" value="/my/cases/ot-123?tab=x"' in page.text


async def test_after_login_the_visitor_goes_back_to_a_local_next_page_only(api):
    api.cookies.clear()
    page = await api.get("/login?next=/apply/birth")
    local = await api.post(
        "/login",
        data={"username": "applicant1", "password": "demo", "csrf_token": csrf_of(page.text), "next": "/apply/birth"},
    )
    assert local.headers["location"] == "/apply/birth"

    api.cookies.clear()
    page = await api.get("/login")
    elsewhere = await api.post(
        "/login",
        data={"username": "applicant1", "password": "demo", "csrf_token": csrf_of(page.text), "next": "//evil.test/x"},
    )
    assert elsewhere.headers["location"] == "/my/cases"


async def test_a_wrong_password_shows_a_chinese_error_and_sets_no_session(api):
    response = await console_login(api, "applicant1", password="wrong", expected_status=401)

    assert "用户名或密码错误" in response.text
    assert 'data-testid="login-error"' in response.text
    assert SESSION_COOKIE not in api.cookies


async def test_a_login_without_the_login_pages_token_is_refused(api):
    api.cookies.clear()
    await api.get("/login")

    response = await api.post("/login", data={"username": "applicant1", "password": "demo", "csrf_token": "forged"})

    assert response.status_code == 403
    assert SESSION_COOKIE not in api.cookies


async def test_console_logins_share_the_json_logins_limits(api):
    for _ in range(5):
        failed = await api.post("/auth/token", data={"username": "applicant2", "password": "wrong"})
        assert failed.status_code == 401

    response = await console_login(api, "applicant2", expected_status=429)

    assert int(response.headers["retry-after"]) > 0
    assert "登录失败次数过多" in response.text
    assert SESSION_COOKIE not in api.cookies


async def test_a_tampered_or_expired_cookie_is_anonymous(api, api_settings: Settings, engine):
    api.cookies.clear()
    api.cookies.set(SESSION_COOKIE, "not-a-jwt", domain="onething.test")
    assert (await api.get("/my/cases")).headers["location"].startswith("/login")

    expired = issued_token(
        engine, Actor(username="applicant1", role="applicant"), api_settings, now=datetime.now(UTC) - timedelta(days=2)
    )
    api.cookies.set(SESSION_COOKIE, expired, domain="onething.test")
    assert (await api.get("/my/cases")).headers["location"].startswith("/login")

    forged = issued_token(
        engine, Actor(username="applicant1", role="applicant"), api_settings.model_copy(update={"secret_key": "x" * 40})
    )
    api.cookies.set(SESSION_COOKIE, forged, domain="onething.test")
    assert (await api.get("/my/cases")).headers["location"].startswith("/login")


async def test_a_page_of_another_role_is_a_chinese_403_page(api):
    await console_login(api, "hospital_officer")

    response = await api.get("/my/cases")

    assert response.status_code == 403
    assert response.headers["content-type"].startswith("text/html")
    assert "无权访问" in response.text and '<html lang="zh-CN">' in response.text


async def test_logout_needs_the_sessions_csrf_token_and_then_ends_the_session(api):
    await console_login(api, "applicant1")

    refused = await api.post("/logout", data={"csrf_token": "forged"})
    assert refused.status_code == 403
    assert (await api.get("/my/cases")).status_code == 200

    response = await api.post("/logout", data={"csrf_token": await session_csrf(api)})

    assert response.status_code == 303 and response.headers["location"] == "/login"
    assert "max-age=0" in _session_cookie_header(response).lower()
    assert (await api.get("/my/cases")).headers["location"].startswith("/login")


async def test_pages_use_the_local_stylesheet_only(api):
    await console_login(api, "applicant1")

    page = await api.get("/apply")
    stylesheet = await api.get("/static/console.css")

    assert '<link rel="stylesheet" href="/static/console.css">' in page.text
    assert "http://" not in page.text.replace("http://onething.test", "") and "https://" not in page.text
    assert stylesheet.status_code == 200 and stylesheet.headers["content-type"].startswith("text/css")


async def test_console_pages_are_not_in_the_openapi_document(api):
    paths = (await api.get("/openapi.json")).json()["paths"]

    assert not {"/", "/login", "/logout", "/apply", "/my/cases", "/window"} & set(paths)


def test_a_due_time_at_midnight_reads_as_the_day_before():
    # 00:00 on the 27th in Beijing is 24:00 of the 26th, the last day: pages write "2026年11月26日前".
    assert due(datetime(2026, 11, 26, 16, 0, tzinfo=UTC)) == "2026年11月26日"
    assert due(datetime(2026, 11, 26, 9, 30, tzinfo=UTC)) == "2026年11月26日 17:30"
    assert due(None) == ""


@pytest.mark.parametrize("path", ["/login", "/apply", "/my/cases"])
async def test_pages_link_the_site_icon_and_it_is_served(api, path):
    if path != "/login":
        await console_login(api, "applicant1")

    page = await api.get(path)
    icon = await api.get("/static/favicon.svg")
    legacy = await api.get("/favicon.ico")

    assert '<link rel="icon" href="/static/favicon.svg" type="image/svg+xml">' in page.text
    assert icon.status_code == 200 and icon.headers["content-type"].startswith("image/svg+xml")
    assert icon.text.lstrip().startswith("<svg") and "<script" not in icon.text
    # Pages without the link (the guide, a JSON response in a tab) ask for /favicon.ico: sent to the SVG.
    assert legacy.status_code == 301 and legacy.headers["location"] == "/static/favicon.svg"

"""Login rate limits (per account and client address, and per address, shared by every API
process through the database, checked and counted in one step), a login's timing for unknown
accounts, and no password in logs."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from datetime import UTC, datetime, timedelta

import httpx
import pytest
from sqlalchemy import Engine
from sqlmodel import Session
from temporalio.testing import WorkflowEnvironment

import api.accounts
from api.accounts import authenticate
from api.login_limits import login_succeeded, reserve_login_attempt
from api.main import create_app
from api.security import hash_password, verify_password
from models.errors import RateLimited
from models.tables import UserAccount
from settings import Settings
from tests.api.helpers import assert_error

Attempt = Callable[..., Awaitable[httpx.Response]]


@asynccontextmanager
async def another_api(
    env: WorkflowEnvironment, settings: Settings, engine: Engine, address: str
) -> AsyncIterator[httpx.AsyncClient]:
    """A second API process on the same read-model database, reached from ``address``."""
    app = create_app(settings, temporal_client=env.client, engine=engine)
    async with app.router.lifespan_context(app):
        transport = httpx.ASGITransport(app=app, client=(address, 40000))
        async with httpx.AsyncClient(transport=transport, base_url="http://onething.test") as client:
            yield client


async def log_in(client: httpx.AsyncClient, username: str, password: str = "demo") -> httpx.Response:
    return await client.post("/auth/token", data={"username": username, "password": password})


async def test_after_five_failed_logins_the_account_is_refused_429_even_with_the_right_password(api):
    for _ in range(5):
        assert_error(await log_in(api, "applicant1", "wrong"), 401, "unauthorized")

    refused = await log_in(api, "applicant1", "demo")

    assert_error(refused, 429, "rate_limited", ["username"])
    assert 0 < int(refused.headers["Retry-After"]) <= 15 * 60
    assert "access_token" not in refused.text


async def test_failed_logins_of_one_account_do_not_lock_another(api):
    for _ in range(5):
        await log_in(api, "applicant1", "wrong")

    assert (await log_in(api, "applicant2")).status_code == 200


async def test_a_successful_login_clears_the_accounts_failures(api):
    for _ in range(4):
        assert_error(await log_in(api, "applicant1", "wrong"), 401, "unauthorized")
    assert (await log_in(api, "applicant1")).status_code == 200

    for _ in range(4):
        assert_error(await log_in(api, "applicant1", "wrong"), 401, "unauthorized")
    assert (await log_in(api, "applicant1")).status_code == 200


async def test_more_than_twenty_attempts_from_one_address_in_a_minute_are_429_and_successes_count_too(
    api, env, api_settings, engine
):
    async with another_api(env, api_settings, engine, "10.0.0.7") as busy:
        for number in range(20):
            # Successes as well as failures fill the window; no account reaches its own limit.
            response = await log_in(busy, "applicant1" if number % 2 else f"nobody{number}", "demo")
            assert response.status_code in (200, 401), response.text

        refused = await log_in(busy, "applicant2")

    assert_error(refused, 429, "rate_limited")
    assert 0 < int(refused.headers["Retry-After"]) <= 60
    # Another address is not affected.
    assert (await log_in(api, "applicant2")).status_code == 200


async def test_the_limits_hold_across_api_processes_sharing_the_database(api, env, api_settings, engine):
    # Both processes see the caller at the same address (behind one load balancer).
    async with another_api(env, api_settings, engine, "127.0.0.1") as second:
        for _ in range(3):
            assert_error(await log_in(api, "hospital_officer", "wrong"), 401, "unauthorized")
        for _ in range(2):
            assert_error(await log_in(second, "hospital_officer", "wrong"), 401, "unauthorized")

        assert_error(await log_in(second, "hospital_officer"), 429, "rate_limited")
    assert_error(await log_in(api, "hospital_officer"), 429, "rate_limited")


async def test_guessing_from_another_address_does_not_lock_the_staff_member_out(api, env, api_settings, engine):
    async with another_api(env, api_settings, engine, "10.0.0.9") as attacker:
        for _ in range(5):
            assert_error(await log_in(attacker, "police_officer", "guess"), 401, "unauthorized")
        assert_error(await log_in(attacker, "police_officer"), 429, "rate_limited", ["username"])

    assert (await log_in(api, "police_officer")).status_code == 200  # the officer's own address


async def test_thirty_parallel_wrong_passwords_get_at_most_five_password_checks(api, env, api_settings, engine):
    async with another_api(env, api_settings, engine, "10.0.0.10") as attacker:
        answers = await asyncio.gather(*(log_in(attacker, "hospital_officer", f"guess{n}") for n in range(30)))

    statuses = [answer.status_code for answer in answers]
    assert statuses.count(401) <= 5 and statuses.count(200) == 0, statuses
    assert statuses.count(401) + statuses.count(429) == 30, statuses


def test_the_pair_is_let_in_again_once_its_failures_leave_the_window(engine, api_settings):
    start = datetime(2026, 11, 20, 9, 0, tzinfo=UTC)
    for minute in range(5):
        reserve_login_attempt(engine, api_settings, "applicant1", "10.0.1.1", now=start + timedelta(minutes=minute))

    with pytest.raises(RateLimited) as refused:
        reserve_login_attempt(engine, api_settings, "applicant1", "10.0.1.1", now=start + timedelta(minutes=5))
    # The oldest failure leaves the 15-minute window at 09:15, ten minutes later.
    assert refused.value.retry_after_seconds == 10 * 60
    # The same account from another address, and the pair once the window has moved on.
    reserve_login_attempt(engine, api_settings, "applicant1", "10.0.2.1", now=start + timedelta(minutes=5))
    reserve_login_attempt(engine, api_settings, "applicant1", "10.0.1.1", now=start + timedelta(minutes=15, seconds=1))


def test_a_success_ends_the_pairs_run_of_failures(engine, api_settings):
    start = datetime(2026, 11, 20, 9, 0, tzinfo=UTC)
    for second in range(4):
        reserve_login_attempt(engine, api_settings, "applicant1", "10.0.3.1", now=start + timedelta(seconds=second))
    login_succeeded(
        engine, reserve_login_attempt(engine, api_settings, "applicant1", "10.0.3.1", now=start + timedelta(seconds=4))
    )

    for second in range(5, 10):  # five more failures are allowed after the success
        reserve_login_attempt(engine, api_settings, "applicant1", "10.0.3.1", now=start + timedelta(seconds=second))
    with pytest.raises(RateLimited):
        reserve_login_attempt(engine, api_settings, "applicant1", "10.0.3.1", now=start + timedelta(seconds=10))


def test_an_unknown_username_costs_a_password_check_like_a_wrong_password(engine, monkeypatch):
    checked: list[str] = []
    real_verify = verify_password

    def counting_verify(password_hash: str, password: str) -> bool:
        checked.append(password)
        return real_verify(password_hash, password)

    monkeypatch.setattr(api.accounts, "verify_password", counting_verify)
    with Session(engine) as session:
        session.add(UserAccount(username="someone", password_hash=hash_password("right"), role="applicant"))
        session.commit()

        assert authenticate(session, "someone", "wrong") is None
        assert authenticate(session, "no-such-account", "guess") is None

    assert checked == ["wrong", "guess"]


async def test_passwords_are_never_logged_on_a_login_or_a_failed_login(api, engine, caplog):
    right, wrong = "Zq7-correct-horse-battery", "Zq7-wrong-horse-battery"
    with Session(engine) as session:
        session.add(UserAccount(username="logged_user", password_hash=hash_password(right), role="applicant"))
        session.commit()

    with caplog.at_level(logging.DEBUG):
        assert (await log_in(api, "logged_user", right)).status_code == 200
        assert_error(await log_in(api, "logged_user", wrong), 401, "unauthorized")

    assert any("logged_user" in record.getMessage() for record in caplog.records), "the failed login was not logged"
    for record in caplog.records:
        text = f"{record.getMessage()} {record.args!r} {record.exc_text or ''}"
        assert right not in text and wrong not in text, record

"""Login rate limits: too many failed logins to one account from one client address, or too
many attempts from one address, and the next attempt is refused with 429 and Retry-After.

The counters are rows in the read-model database (LoginAttempt), not process memory, so they
hold across every API process. The check and the count are one step: an attempt is reserved
(recorded as a failure) in the same transaction that checks the windows, under a lock per
client address (SQLite's write lock; a PostgreSQL advisory lock), before the password is
verified; a correct password then turns it into a success. So thirty parallel guesses get at
most five password checks, and waiting out Retry-After always works (refused attempts are not
recorded).

Failures count per (account, address) since that pair's last success: someone guessing from
another address cannot lock a staff member out. The address is the ASGI client's: behind the
load balancer, uvicorn's proxy headers (ONETHING_FORWARDED_ALLOW_IPS) make it the caller's.
"""

from __future__ import annotations

import hashlib
import logging
from datetime import UTC, datetime, timedelta

from sqlalchemy import Engine, delete, func, select, text, update
from sqlmodel import Session, col

from infra.db import write_session
from models.errors import RateLimited
from models.tables import LoginAttempt
from settings import Settings

logger = logging.getLogger(__name__)

# The column widths of LoginAttempt.username and .address.
USERNAME_LENGTH = 64
ADDRESS_LENGTH = 64


def _account(username: str) -> str:
    return username[:USERNAME_LENGTH]


def _address(address: str | None) -> str:
    return (address or "unknown")[:ADDRESS_LENGTH]


def _retry_after(oldest: datetime, window_seconds: int, now: datetime) -> int:
    """Whole seconds until the oldest attempt in the window leaves it (at least 1)."""
    remaining = oldest + timedelta(seconds=window_seconds) - now
    return max(1, int(remaining.total_seconds() + 0.999))


def reserve_login_attempt(
    engine: Engine, settings: Settings, username: str, address: str | None, now: datetime | None = None
) -> int:
    """Check both windows and record this attempt as a failure, at once; its id, for
    ``login_succeeded``. Raises RateLimited (nothing recorded) when a window is used up."""
    now = now or datetime.now(UTC)
    with write_session(engine) as session:
        if engine.dialect.name == "postgresql":
            # Attempts from one address queue here; SQLite's write lock already serialises them.
            key = int.from_bytes(hashlib.sha256(_address(address).encode()).digest()[:8], "big", signed=True)
            session.execute(text("SELECT pg_advisory_xact_lock(:key)"), {"key": key})
        _check_windows(session, settings, username, address, now)
        longest = max(settings.login_account_window_seconds, settings.login_address_window_seconds)
        session.execute(delete(LoginAttempt).where(col(LoginAttempt.at) < now - timedelta(seconds=longest)))
        attempt = LoginAttempt(at=now, username=_account(username), address=_address(address), succeeded=False)
        session.add(attempt)
        session.flush()
        assert attempt.id is not None
        return attempt.id


def login_succeeded(engine: Engine, attempt_id: int) -> None:
    """The reserved attempt had the right password: it ends the pair's run of failures."""
    with write_session(engine) as session:
        session.execute(update(LoginAttempt).where(col(LoginAttempt.id) == attempt_id).values(succeeded=True))


def _check_windows(session: Session, settings: Settings, username: str, address: str | None, now: datetime) -> None:
    by_address = now - timedelta(seconds=settings.login_address_window_seconds)
    count, oldest = session.execute(
        select(func.count(), func.min(col(LoginAttempt.at))).where(
            col(LoginAttempt.address) == _address(address), col(LoginAttempt.at) > by_address
        )
    ).one()
    if count >= settings.login_max_attempts_per_address:
        logger.warning("login attempts from address %s rate-limited", _address(address))
        raise RateLimited(
            "登录尝试过于频繁，请稍后再试 (too many login attempts from this address)",
            _retry_after(_as_utc(oldest), settings.login_address_window_seconds, now),
        )
    # Failures of this account from this address, since the pair's last success, within the window.
    pair = (col(LoginAttempt.username) == _account(username), col(LoginAttempt.address) == _address(address))
    since = now - timedelta(seconds=settings.login_account_window_seconds)
    last_success = session.execute(
        select(func.max(col(LoginAttempt.at))).where(*pair, col(LoginAttempt.succeeded).is_(True))
    ).scalar_one_or_none()
    if last_success is not None:
        since = max(since, _as_utc(last_success))
    failures, oldest_failure = session.execute(
        select(func.count(), func.min(col(LoginAttempt.at))).where(
            *pair, col(LoginAttempt.succeeded).is_(False), col(LoginAttempt.at) > since
        )
    ).one()
    if failures >= settings.login_max_failures_per_account:
        logger.warning(
            "logins to account %s from %s rate-limited after %d failures",
            _account(username),
            _address(address),
            failures,
        )
        raise RateLimited(
            "该账号登录失败次数过多，请稍后再试 (too many failed logins for this account)",
            _retry_after(_as_utc(oldest_failure), settings.login_account_window_seconds, now),
            {"username": "too many failed logins; try again after Retry-After seconds"},
        )


def _as_utc(moment: datetime) -> datetime:
    # func.min() returns the column's raw value, which SQLite keeps without an offset.
    return moment if moment.tzinfo is not None else moment.replace(tzinfo=UTC)

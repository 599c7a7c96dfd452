"""Login rate limits: too many failed logins for one account, or too many attempts from
one client address, and the next attempt is refused with 429 and Retry-After.

The counters are rows in the read-model database (LoginAttempt), not process
memory, so they hold across every API process behind a load balancer. Two
processes checking at the same instant may both let one more attempt through;
the limit is a brake on guessing, not an exact quota. A successful login clears
the account's failures but not the address's window. Refused attempts are not
recorded, so waiting out Retry-After always works. The address is the ASGI client's:
behind a reverse proxy, uvicorn's proxy headers (on by default for a proxy on
127.0.0.1, see --forwarded-allow-ips) make it the caller's and not the proxy's.
"""

from __future__ import annotations

import logging
from datetime import UTC, datetime, timedelta

from sqlalchemy import delete, func, select
from sqlmodel import Session, col

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


def check_login_allowed(
    session: Session, settings: Settings, username: str, address: str | None, now: datetime | None = None
) -> None:
    """Raise RateLimited when the address or the account has used up its window."""
    now = now or datetime.now(UTC)
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
    # Failures count from the account's last successful login, within the window.
    since = now - timedelta(seconds=settings.login_account_window_seconds)
    last_success = session.execute(
        select(func.max(col(LoginAttempt.at))).where(
            col(LoginAttempt.username) == _account(username), col(LoginAttempt.succeeded).is_(True)
        )
    ).scalar_one_or_none()
    if last_success is not None:
        since = max(since, _as_utc(last_success))
    failures, oldest_failure = session.execute(
        select(func.count(), func.min(col(LoginAttempt.at))).where(
            col(LoginAttempt.username) == _account(username),
            col(LoginAttempt.succeeded).is_(False),
            col(LoginAttempt.at) > since,
        )
    ).one()
    if failures >= settings.login_max_failures_per_account:
        logger.warning("logins to account %s rate-limited after %d failures", _account(username), failures)
        raise RateLimited(
            "该账号登录失败次数过多，请稍后再试 (too many failed logins for this account)",
            _retry_after(_as_utc(oldest_failure), settings.login_account_window_seconds, now),
            {"username": "too many failed logins; try again after Retry-After seconds"},
        )


def record_login_attempt(
    session: Session,
    settings: Settings,
    username: str,
    address: str | None,
    succeeded: bool,
    now: datetime | None = None,
) -> None:
    """Count an attempt (a success ends the account's run of failures); rows older than both windows go."""
    now = now or datetime.now(UTC)
    longest = max(settings.login_account_window_seconds, settings.login_address_window_seconds)
    session.execute(delete(LoginAttempt).where(col(LoginAttempt.at) < now - timedelta(seconds=longest)))
    session.add(LoginAttempt(at=now, username=_account(username), address=_address(address), succeeded=succeeded))
    session.commit()


def _as_utc(moment: datetime) -> datetime:
    # func.min() returns the column's raw value, which SQLite keeps without an offset.
    return moment if moment.tzinfo is not None else moment.replace(tzinfo=UTC)

"""Sign-in sessions (登录会话): every access token names one, and is honoured only while it is live.

Signing in (``POST /auth/token``, the console's login, an identity provider's sign-in) starts a
session (``start_session``); its id travels in the token as the ``sid`` claim (api/security.py).
A session ends, and every token naming it is refused from then on, when:

- its holder logs out (``POST /auth/logout``, the console's 退出登录): that one session;
- the account's password is changed (``onething accounts passwd``), its role or unit changes,
  or the account is removed: all of the account's sessions;
- an admin revokes them (``POST /accounts/{username}/sessions/revoke``, ``onething accounts
  revoke``): all of the account's sessions.

The rows are in the read-model database, so every API process sees an end. Each process keeps
what it read for a few seconds (``LiveSessions``, ``settings.session_check_seconds``): a session
ended elsewhere is refused there within that time; ended in this process, at once.
"""

from __future__ import annotations

import secrets
import threading
import time
from collections.abc import Callable, Iterable
from datetime import UTC, datetime
from enum import StrEnum

from sqlalchemy import Engine, delete, update
from sqlmodel import Session, col, select

from models.tables import AuthSession

SESSION_ID_BYTES = 16  # 32 hex digits


class EndReason(StrEnum):
    LOGOUT = "logout"
    PASSWORD_CHANGED = "password_changed"
    MEMBERSHIP_CHANGED = "role_or_unit_changed"
    ACCOUNT_REMOVED = "account_removed"
    REVOKED = "revoked"


def start_session(session: Session, username: str, expires_at: datetime, now: datetime | None = None) -> str:
    """A new live session of ``username`` until ``expires_at`` (the token's expiry); its id.

    Commits. The account's sessions that have expired are deleted on the way: no token naming
    them can be used any more."""
    now = now or datetime.now(UTC)
    session.execute(delete(AuthSession).where(col(AuthSession.username) == username, col(AuthSession.expires_at) < now))
    row = AuthSession(
        session_id=secrets.token_hex(SESSION_ID_BYTES), username=username, created_at=now, expires_at=expires_at
    )
    session.add(row)
    session.commit()
    return row.session_id


def end_session(session: Session, session_id: str, reason: EndReason, now: datetime | None = None) -> bool:
    """End one session (a logout); False when it was already ended or is unknown. Commits."""
    ended = session.execute(
        update(AuthSession)
        .where(col(AuthSession.session_id) == session_id, col(AuthSession.ended_at).is_(None))
        .values(ended_at=now or datetime.now(UTC), end_reason=reason.value)
    )
    session.commit()
    return bool(getattr(ended, "rowcount", 0))


def end_sessions(session: Session, username: str, reason: EndReason, now: datetime | None = None) -> list[str]:
    """End every live session of ``username``; the ids of those ended.

    Commits the caller's session: a change made in it (a new password hash, a removal) and the
    end of the sessions are one transaction."""
    now = now or datetime.now(UTC)
    live = list(
        session.exec(
            select(AuthSession.session_id).where(
                col(AuthSession.username) == username, col(AuthSession.ended_at).is_(None)
            )
        ).all()
    )
    if live:
        session.execute(
            update(AuthSession)
            .where(col(AuthSession.session_id).in_(live), col(AuthSession.ended_at).is_(None))
            .values(ended_at=now, end_reason=reason.value)
        )
    session.commit()
    return live


def session_is_live(session: Session, session_id: str, now: datetime | None = None) -> bool:
    """Whether the session exists, has not ended and has not expired (read from the database)."""
    row = session.get(AuthSession, session_id)
    return row is not None and row.ended_at is None and row.expires_at > (now or datetime.now(UTC))


class LiveSessions:
    """One API process's memory of which sessions were live, each answer kept ``ttl_seconds``
    (0: none kept). ``cached`` never touches the database, so async code asks it first and
    calls the blocking ``check`` from a thread only when it has no answer."""

    MAX_ENTRIES = 50_000

    def __init__(self, ttl_seconds: float, clock: Callable[[], float] = time.monotonic) -> None:
        self.ttl_seconds = ttl_seconds
        self.clock = clock
        self._answers: dict[str, tuple[float, bool]] = {}
        self._lock = threading.Lock()

    def cached(self, session_id: str) -> bool | None:
        """The answer read less than ``ttl_seconds`` ago, or None."""
        with self._lock:
            answer = self._answers.get(session_id)
            if answer is None:
                return None
            if self.clock() - answer[0] >= self.ttl_seconds:
                del self._answers[session_id]
                return None
            return answer[1]

    def check(self, engine: Engine, session_id: str) -> bool:
        """Whether the session is live: the kept answer, else read from the database (blocking)."""
        answer = self.cached(session_id)
        if answer is not None:
            return answer
        read_at = self.clock()
        with Session(engine) as session:
            live = session_is_live(session, session_id)
        if self.ttl_seconds > 0:
            self._keep(session_id, read_at, live)
        return live

    def ended(self, session_ids: Iterable[str]) -> None:
        """Sessions just ended by this process: refused here at once (an ended session never
        comes back, so a check that read it live just before is not kept over this)."""
        with self._lock:
            now = self.clock()
            for session_id in session_ids:
                self._answers[session_id] = (now, False)

    def _keep(self, session_id: str, read_at: float, live: bool) -> None:
        with self._lock:
            if len(self._answers) >= self.MAX_ENTRIES:
                now = self.clock()
                self._answers = {
                    key: answer for key, answer in self._answers.items() if now - answer[0] < self.ttl_seconds
                }
                if len(self._answers) >= self.MAX_ENTRIES:
                    self._answers.clear()
            kept = self._answers.get(session_id)
            if live and kept is not None and not kept[1]:
                return  # ended here while this read was under way
            self._answers[session_id] = (read_at, live)

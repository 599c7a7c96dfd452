"""Passwords (argon2) and access tokens: signed JWTs that expire, each naming a sign-in session
(its ``sid`` claim) that may be ended before then (services/sessions.py)."""

from __future__ import annotations

import threading
from datetime import UTC, datetime, timedelta
from typing import NamedTuple

import jwt
from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError
from pydantic import ValidationError
from sqlmodel import Session

from models.case import Actor
from models.errors import DomainError, ErrorCode
from services.sessions import start_session
from settings import Settings

_hasher = PasswordHasher()
ALGORITHM = "HS256"


def hash_password(password: str) -> str:
    return _hasher.hash(password)


# argon2 takes ~50 ms of CPU and 64 MiB per check: a burst of logins waits for a slot rather
# than taking every thread of the pool (and the memory) from the requests behind it.
PASSWORD_CHECKS_AT_ONCE = 4
_password_checks = threading.BoundedSemaphore(PASSWORD_CHECKS_AT_ONCE)


def verify_password(password_hash: str, password: str) -> bool:
    """Blocking (argon2): call it from a thread, never on the event loop."""
    with _password_checks:
        try:
            return _hasher.verify(password_hash, password)
        except (VerificationError, InvalidHashError):
            return False


class SignedIn(NamedTuple):
    """What a valid token says: who, and the sign-in session it belongs to."""

    actor: Actor
    session_id: str


def issue_token(actor: Actor, settings: Settings, session: Session, now: datetime | None = None) -> str:
    """A new access token for ``actor``: starts a sign-in session (committed in ``session``) that it names."""
    issued = now or datetime.now(UTC)
    expires = issued + timedelta(minutes=settings.token_ttl_minutes)
    claims = {
        "sub": actor.username,
        "sid": start_session(session, actor.username, expires, now=issued),
        "role": actor.role,
        "unit": actor.unit,
        "unit_code": actor.unit_code,
        "division_code": actor.division_code,
        "iat": int(issued.timestamp()),
        "exp": int(expires.timestamp()),
    }
    return jwt.encode(claims, settings.secret_key, algorithm=ALGORITHM)


def read_signed_in(token: str, settings: Settings) -> SignedIn:
    """The actor and session a token names, checking its signature and expiry only: whether the
    session is still live is api/deps.signed_in's (it reads the database)."""
    try:
        claims = jwt.decode(token, settings.secret_key, algorithms=[ALGORITHM], options={"require": ["exp", "sub"]})
    except jwt.ExpiredSignatureError as exc:
        raise DomainError(ErrorCode.UNAUTHORIZED, "登录已过期，请重新登录 (token expired)") from exc
    except jwt.PyJWTError as exc:
        raise DomainError(ErrorCode.UNAUTHORIZED, "登录凭证无效 (invalid token)") from exc
    session_id = claims.get("sid")
    if not isinstance(session_id, str) or not session_id:
        # Signed here, but before sessions existed (or by hand): it cannot be ended, so it is not honoured.
        raise DomainError(ErrorCode.UNAUTHORIZED, "登录已失效，请重新登录 (token names no session)")
    try:
        # Tokens issued before units existed carry neither unit_code nor division_code.
        actor = Actor(
            username=claims["sub"],
            role=claims["role"],
            unit=claims.get("unit"),
            unit_code=claims.get("unit_code"),
            division_code=claims.get("division_code"),
        )
    except (KeyError, ValidationError) as exc:
        raise DomainError(ErrorCode.UNAUTHORIZED, "登录凭证无效 (invalid token)") from exc
    return SignedIn(actor, session_id)


def read_token(token: str, settings: Settings) -> Actor:
    """The actor of a token just issued here (signature and expiry checked, the session not):
    routes learn the caller through api/deps, which also checks the session is live."""
    return read_signed_in(token, settings).actor

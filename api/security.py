"""Passwords (argon2) and access tokens (signed JWTs that expire)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import jwt
from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError
from pydantic import ValidationError

from models.case import Actor
from models.errors import DomainError, ErrorCode
from settings import Settings

_hasher = PasswordHasher()
ALGORITHM = "HS256"


def hash_password(password: str) -> str:
    return _hasher.hash(password)


def verify_password(password_hash: str, password: str) -> bool:
    try:
        return _hasher.verify(password_hash, password)
    except (VerificationError, InvalidHashError):
        return False


def issue_token(actor: Actor, settings: Settings, now: datetime | None = None) -> str:
    issued = now or datetime.now(UTC)
    claims = {
        "sub": actor.username,
        "role": actor.role,
        "unit": actor.unit,
        "unit_code": actor.unit_code,
        "division_code": actor.division_code,
        "iat": int(issued.timestamp()),
        "exp": int((issued + timedelta(minutes=settings.token_ttl_minutes)).timestamp()),
    }
    return jwt.encode(claims, settings.secret_key, algorithm=ALGORITHM)


def read_token(token: str, settings: Settings) -> Actor:
    try:
        claims = jwt.decode(token, settings.secret_key, algorithms=[ALGORITHM], options={"require": ["exp", "sub"]})
    except jwt.ExpiredSignatureError as exc:
        raise DomainError(ErrorCode.UNAUTHORIZED, "登录已过期，请重新登录 (token expired)") from exc
    except jwt.PyJWTError as exc:
        raise DomainError(ErrorCode.UNAUTHORIZED, "登录凭证无效 (invalid token)") from exc
    try:
        # Tokens issued before units existed carry neither unit_code nor division_code.
        return Actor(
            username=claims["sub"],
            role=claims["role"],
            unit=claims.get("unit"),
            unit_code=claims.get("unit_code"),
            division_code=claims.get("division_code"),
        )
    except (KeyError, ValidationError) as exc:
        raise DomainError(ErrorCode.UNAUTHORIZED, "登录凭证无效 (invalid token)") from exc

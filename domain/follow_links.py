"""A walk-in applicant without an account follows and rates their case through a link sent by
SMS: the case id and an expiry, signed with the platform's secret (HMAC-SHA256), so it cannot be
made up or stretched, and it names no person. Pure: the caller passes the secret and the time."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
from datetime import datetime, timedelta

# Long enough to follow a case to its end and rate it (five working days after delivery).
FOLLOW_LINK_LIFETIME = timedelta(days=60)
WALK_IN_RATER_PREFIX = "sms-link:"


def walk_in_rater(case_id: str) -> str:
    """The actor name a rating through the case's link carries (not an account: none can have it)."""
    return f"{WALK_IN_RATER_PREFIX}{case_id}"


def _mac(payload: bytes, secret: str) -> str:
    digest = hmac.new(secret.encode(), b"follow-link:" + payload, hashlib.sha256).digest()
    return base64.urlsafe_b64encode(digest).decode().rstrip("=")


def follow_token(case_id: str, secret: str, expires_at: datetime) -> str:
    body = json.dumps({"c": case_id, "e": int(expires_at.timestamp())}, separators=(",", ":")).encode()
    payload = base64.urlsafe_b64encode(body).decode().rstrip("=")
    return f"{payload}.{_mac(payload.encode(), secret)}"


def read_follow_token(token: str, secret: str, now: datetime) -> str | None:
    """The case the token names, or None if it is forged, altered or expired."""
    payload, _, mac = token.partition(".")
    if not payload or not hmac.compare_digest(mac, _mac(payload.encode(), secret)):
        return None
    try:
        body = json.loads(base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4)))
        case_id, expires = str(body["c"]), int(body["e"])
    except (ValueError, KeyError, TypeError):
        return None
    return case_id if now.timestamp() < expires else None

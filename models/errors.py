"""Business error kinds shared by the workflow (as ApplicationError types) and the API.

The API maps these codes to HTTP statuses in one place (api/errors.py); nothing
matches on message text.
"""

from collections.abc import Sequence
from enum import StrEnum
from typing import Any

from pydantic import ValidationError


class ErrorCode(StrEnum):
    UNAUTHORIZED = "unauthorized"
    FORBIDDEN = "forbidden"
    NOT_FOUND = "not_found"
    CONFLICT = "conflict"
    DUPLICATE_CASE = "duplicate_case"  # the same subject's case exists (fields.existing_case_id)
    INVALID = "validation_error"
    PAYLOAD_TOO_LARGE = "payload_too_large"
    UNSUPPORTED_MEDIA_TYPE = "unsupported_media_type"  # an upload that is no allowed type by its content
    UNAVAILABLE = "service_unavailable"
    RATE_LIMITED = "rate_limited"


class DomainError(Exception):
    """A business rule refused a request; ``fields`` maps input paths to reasons."""

    def __init__(self, code: ErrorCode, message: str, fields: dict[str, str] | None = None) -> None:
        super().__init__(message)
        self.code = code
        self.message = message
        self.fields = fields or {}


class RateLimited(DomainError):
    """Too many attempts: the next one may succeed after ``retry_after_seconds`` (HTTP Retry-After)."""

    def __init__(self, message: str, retry_after_seconds: int, fields: dict[str, str] | None = None) -> None:
        super().__init__(ErrorCode.RATE_LIMITED, message, fields)
        self.retry_after_seconds = retry_after_seconds


def fields_from_pydantic(errors: Sequence[Any], prefix: str = "") -> dict[str, str]:
    fields: dict[str, str] = {}
    for error in errors:
        if error["type"] == "json_invalid":
            # FastAPI puts the character offset in the location; the field is the body itself.
            reason = error.get("ctx", {}).get("error", "")
            fields.setdefault("body", f"不是有效的 JSON (invalid JSON at character {error['loc'][-1]}: {reason})")
            continue
        location = [str(part) for part in error["loc"] if part != "body"]
        if location[-1:] == ["[key]"]:
            # A refused key is named by where it is, not repeated: it may be the oversized part.
            location = [*location[:-2], "[key]"]
        path = ".".join([prefix, *location] if prefix else location) or prefix or "body"
        fields.setdefault(path, error["msg"])
    return fields


def invalid_input(error: ValidationError, prefix: str) -> DomainError:
    return DomainError(ErrorCode.INVALID, "输入有误 (invalid input)", fields_from_pydantic(error.errors(), prefix))

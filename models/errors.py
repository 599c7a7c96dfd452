"""Business error kinds shared by the workflow (as ApplicationError types) and the API.

The API maps these codes to HTTP statuses in one place (api/errors.py); nothing
matches on message text.
"""

from enum import StrEnum


class ErrorCode(StrEnum):
    UNAUTHORIZED = "unauthorized"
    FORBIDDEN = "forbidden"
    NOT_FOUND = "not_found"
    CONFLICT = "conflict"
    INVALID = "validation_error"
    PAYLOAD_TOO_LARGE = "payload_too_large"
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

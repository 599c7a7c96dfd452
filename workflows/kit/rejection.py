"""How a validator refuses an Update: a non-retryable ApplicationError whose type is the
error code (api/errors.py maps it to an HTTP status) and whose details name the fields."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from temporalio.exceptions import ApplicationError

from models.errors import DomainError, ErrorCode


def rejection(code: ErrorCode, message: str, fields: dict[str, str] | None = None) -> ApplicationError:
    return ApplicationError(message, {"fields": fields or {}}, type=code.value, non_retryable=True)


def rejection_from(error: DomainError) -> ApplicationError:
    """The Update rejection for a pure rule's refusal (workflows/*/state.py raise DomainError)."""
    return rejection(error.code, error.message, error.fields)


def checked(rule: Callable[..., Any], *arguments: Any) -> None:
    """Run a pure rule in an Update's validator: its refusal becomes the Update's rejection."""
    try:
        rule(*arguments)
    except DomainError as error:
        raise rejection_from(error) from None

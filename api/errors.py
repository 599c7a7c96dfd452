"""Every error the API returns, in one JSON shape, with its HTTP status decided here.

``{"error": {"code": ..., "message": ..., "fields": {path: reason}}}``. Business
errors arrive as DomainError (API side) or as a workflow Update's ApplicationError
whose ``type`` is an ErrorCode; statuses come from the code, never from message text.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from pydantic import ValidationError
from starlette.exceptions import HTTPException as StarletteHTTPException
from temporalio.client import WorkflowUpdateFailedError
from temporalio.exceptions import ApplicationError
from temporalio.service import RPCError, RPCStatusCode

from models.errors import DomainError, ErrorCode

logger = logging.getLogger(__name__)

STATUS_BY_CODE: dict[ErrorCode, int] = {
    ErrorCode.UNAUTHORIZED: 401,
    ErrorCode.FORBIDDEN: 403,
    ErrorCode.NOT_FOUND: 404,
    ErrorCode.CONFLICT: 409,
    ErrorCode.PAYLOAD_TOO_LARGE: 413,
    ErrorCode.INVALID: 422,
    ErrorCode.UNAVAILABLE: 503,
}

CODE_BY_HTTP_STATUS = {status: code for code, status in STATUS_BY_CODE.items()}


def error_body(code: ErrorCode, message: str, fields: dict[str, str] | None = None) -> dict[str, Any]:
    body: dict[str, Any] = {"code": code.value, "message": message}
    if fields:
        body["fields"] = fields
    return {"error": body}


def error_response(error: DomainError) -> JSONResponse:
    headers = {"WWW-Authenticate": "Bearer"} if error.code == ErrorCode.UNAUTHORIZED else None
    return JSONResponse(
        error_body(error.code, error.message, error.fields), status_code=STATUS_BY_CODE[error.code], headers=headers
    )


def fields_from_pydantic(errors: Sequence[Any], prefix: str = "") -> dict[str, str]:
    fields: dict[str, str] = {}
    for error in errors:
        location = [str(part) for part in error["loc"] if part != "body"]
        path = ".".join([prefix, *location] if prefix else location) or prefix or "body"
        fields.setdefault(path, error["msg"])
    return fields


def invalid_input(error: ValidationError, prefix: str) -> DomainError:
    return DomainError(ErrorCode.INVALID, "输入有误 (invalid input)", fields_from_pydantic(error.errors(), prefix))


def from_update_failure(error: WorkflowUpdateFailedError) -> DomainError:
    cause = error.cause
    if isinstance(cause, ApplicationError) and cause.type is not None and cause.type in set(ErrorCode):
        fields: dict[str, str] = {}
        if cause.details and isinstance(cause.details[0], dict):
            fields = dict(cause.details[0].get("fields") or {})
        return DomainError(ErrorCode(cause.type), cause.message, fields)
    raise error


def install_error_handlers(app: FastAPI) -> None:
    @app.exception_handler(DomainError)
    async def _domain(_: Request, error: DomainError) -> JSONResponse:
        return error_response(error)

    @app.exception_handler(WorkflowUpdateFailedError)
    async def _update_failed(_: Request, error: WorkflowUpdateFailedError) -> JSONResponse:
        return error_response(from_update_failure(error))

    @app.exception_handler(RequestValidationError)
    async def _validation(_: Request, error: RequestValidationError) -> JSONResponse:
        return error_response(
            DomainError(ErrorCode.INVALID, "输入有误 (invalid input)", fields_from_pydantic(error.errors()))
        )

    @app.exception_handler(StarletteHTTPException)
    async def _http(_: Request, error: StarletteHTTPException) -> JSONResponse:
        code = CODE_BY_HTTP_STATUS.get(error.status_code)
        if code is None:
            return JSONResponse(
                {"error": {"code": f"http_{error.status_code}", "message": str(error.detail)}},
                status_code=error.status_code,
            )
        return error_response(DomainError(code, str(error.detail)))

    @app.exception_handler(RPCError)
    async def _rpc(_: Request, error: RPCError) -> JSONResponse:
        if error.status == RPCStatusCode.NOT_FOUND:
            return error_response(DomainError(ErrorCode.NOT_FOUND, "案件不存在 (no such case)"))
        logger.error("Temporal call failed: %s", error.status)
        return error_response(
            DomainError(ErrorCode.UNAVAILABLE, "流程服务暂不可用，请稍后重试 (workflow service unavailable)")
        )

"""Every error the API returns, in one JSON shape, with its HTTP status decided here.

``{"error": {"code": ..., "message": ..., "fields": {path: reason}}}``. Business
errors arrive as DomainError (API side) or as a workflow Update's ApplicationError
whose ``type`` is an ErrorCode; statuses come from the code, never from message text.
"""

from __future__ import annotations

import logging
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from pydantic import BaseModel, Field
from starlette.exceptions import HTTPException as StarletteHTTPException
from temporalio.client import WorkflowUpdateFailedError
from temporalio.exceptions import ApplicationError
from temporalio.service import RPCError, RPCStatusCode

from models.errors import DomainError, ErrorCode, RateLimited, fields_from_pydantic, invalid_input  # noqa: F401

logger = logging.getLogger(__name__)

STATUS_BY_CODE: dict[ErrorCode, int] = {
    ErrorCode.UNAUTHORIZED: 401,
    ErrorCode.FORBIDDEN: 403,
    ErrorCode.NOT_FOUND: 404,
    ErrorCode.CONFLICT: 409,
    ErrorCode.DUPLICATE_CASE: 409,
    ErrorCode.PAYLOAD_TOO_LARGE: 413,
    ErrorCode.UNSUPPORTED_MEDIA_TYPE: 415,
    ErrorCode.INVALID: 422,
    ErrorCode.UNAVAILABLE: 503,
    ErrorCode.RATE_LIMITED: 429,
}

# The general code of each status (the first listed), for HTTP errors raised outside our code.
CODE_BY_HTTP_STATUS: dict[int, ErrorCode] = {}
for _code, _status in STATUS_BY_CODE.items():
    CODE_BY_HTTP_STATUS.setdefault(_status, _code)


class ErrorDetail(BaseModel):
    code: str = Field(description="an ErrorCode value, or http_<status> for other HTTP errors")
    message: str = Field(description="中文 (english)")
    fields: dict[str, str] | None = Field(default=None, description="input path → reason, when input was refused")


class ErrorResponse(BaseModel):
    """The one error shape: ``{"error": {"code", "message", "fields"?}}``."""

    error: ErrorDetail


ERROR_DESCRIPTIONS: dict[int, str] = {
    401: "未登录或令牌无效 (not logged in, or the token is invalid or expired)",
    403: "当前角色无权操作 (not allowed for your role)",
    404: "不存在或无权查看 (no such resource, or not yours to see)",
    409: "与当前状态冲突 (conflicts with the current state)",
    413: "请求体过大 (request body too large)",
    415: "文件类型不被接受：仅 PDF、JPEG、PNG，按内容判断 (unsupported file type, judged by content)",
    422: "输入有误，fields 指明字段和原因 (invalid input; fields names each field and why)",
    429: "尝试过于频繁，请按 Retry-After 稍后再试 (too many attempts; retry after Retry-After seconds)",
    503: "流程服务暂不可用 (workflow service unavailable)",
}


def error_responses(*statuses: int) -> dict[int | str, dict[str, Any]]:
    """OpenAPI ``responses=`` declaring these error statuses, each in the one error shape."""
    return {status: {"model": ErrorResponse, "description": ERROR_DESCRIPTIONS[status]} for status in statuses}


def error_body(code: ErrorCode, message: str, fields: dict[str, str] | None = None) -> dict[str, Any]:
    body: dict[str, Any] = {"code": code.value, "message": message}
    if fields:
        body["fields"] = fields
    return {"error": body}


def error_response(error: DomainError) -> JSONResponse:
    headers = {"WWW-Authenticate": "Bearer"} if error.code == ErrorCode.UNAUTHORIZED else None
    if isinstance(error, RateLimited):
        headers = {"Retry-After": str(error.retry_after_seconds)}
    return JSONResponse(
        error_body(error.code, error.message, error.fields), status_code=STATUS_BY_CODE[error.code], headers=headers
    )


def from_update_failure(error: WorkflowUpdateFailedError) -> DomainError:
    cause = error.cause
    if isinstance(cause, ApplicationError) and cause.type is not None and cause.type in set(ErrorCode):
        fields: dict[str, str] = {}
        if cause.details and isinstance(cause.details[0], dict):
            fields = dict(cause.details[0].get("fields") or {})
        return DomainError(ErrorCode(cause.type), cause.message, fields)
    raise error


def _unparsable(error: StarletteHTTPException) -> str:
    cause = error.__cause__
    if isinstance(cause, UnicodeDecodeError):
        return f"不是有效的 UTF-8 (not valid UTF-8 at byte {cause.start})"
    if isinstance(cause, RecursionError):
        return "嵌套过深 (nested too deeply)"
    return f"无法解析 (cannot be parsed: {error.detail})"


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
        if error.status_code == 400:
            # FastAPI's answer to a body it could not parse at all: invalid input, named by its cause.
            message = "无法解析请求体 (the body cannot be parsed)"
            return error_response(DomainError(ErrorCode.INVALID, message, {"body": _unparsable(error)}))
        code = CODE_BY_HTTP_STATUS.get(error.status_code)
        if code is None:
            # Keep the exception's headers: a 405 must say which methods are allowed (Allow).
            return JSONResponse(
                {"error": {"code": f"http_{error.status_code}", "message": str(error.detail)}},
                status_code=error.status_code,
                headers=error.headers,
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

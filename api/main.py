"""The OneThing REST API: the FastAPI app, its lifespan and its request-body guards (size, media type, depth)."""

from __future__ import annotations

import logging
import re
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import datetime
from typing import Any

from fastapi import Depends, FastAPI, Request
from fastapi.responses import JSONResponse
from fastapi.staticfiles import StaticFiles
from sqlalchemy import Engine, text
from sqlmodel import Session
from starlette.concurrency import run_in_threadpool
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.types import ASGIApp, Message, Receive, Scope, Send
from temporalio.client import Client

from api import console
from api.accounts import ensure_demo_accounts
from api.deps import ClientDep, EngineDep
from api.errors import error_body, install_error_handlers
from api.inbox_feed import InboxWatcher
from api.metrics import ApiMetrics, metrics_endpoint
from api.routes import (
    accounts,
    auth,
    cases,
    catalogue,
    complaints,
    dev_sms,
    licences,
    materials,
    notices,
    report,
    supervision,
    tasks,
    units,
)
from api.routes import audit as audit_routes
from api.routes import codec as codec_routes
from api.schemas import HealthResponse
from api.security_headers import CodecCors, SecurityHeaders
from api.telemetry import NATIVE_TELEMETRY_OFF, RequestTelemetry, bind_request_log_fields, request_tracer
from domain.catalogue import shipped_definitions
from domain.redaction import install_log_redaction
from domain.workcalendar import SHANGHAI, make_calendar, missing_notice_warning_zh
from infra.db import init_db, make_engine, migration_lock
from infra.temporal import connect_temporal
from models.errors import DomainError, ErrorCode
from services.catalogue import record_shipped_definitions
from services.sessions import LiveSessions
from settings import Settings, get_settings

logger = logging.getLogger(__name__)


UPLOAD_PATH = re.compile(materials.UPLOAD_PATH)


class BodySizeLimit:
    """Refuses bodies over the limit with 413, whether or not Content-Length is sent."""

    def __init__(self, app: ASGIApp, max_bytes: int, upload_max_bytes: int | None = None) -> None:
        self.app = app
        self.max_bytes = max_bytes
        # An upload of a material (api/routes/materials.py) may be larger than any JSON body.
        self.upload_max_bytes = upload_max_bytes or max_bytes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        upload = scope.get("method") == "POST" and UPLOAD_PATH.match(scope.get("path", "")) is not None
        limit = self.upload_max_bytes if upload else self.max_bytes
        declared = dict(scope.get("headers", [])).get(b"content-length")
        if declared is not None and declared.isdigit() and int(declared) > limit:
            await self._too_large(send, limit)
            return
        received = 0
        response_started = False

        async def limited_receive() -> Message:
            nonlocal received
            message = await receive()
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                if received > limit:
                    raise _BodyTooLarge(limit)
            return message

        async def tracking_send(message: Message) -> None:
            nonlocal response_started
            response_started = response_started or message["type"] == "http.response.start"
            await send(message)

        try:
            await self.app(scope, limited_receive, tracking_send)
        except _BodyTooLarge:
            if not response_started:
                await self._too_large(send, limit)

    async def _too_large(self, send: Send, limit: int) -> None:
        response = JSONResponse(
            error_body(ErrorCode.PAYLOAD_TOO_LARGE, f"请求体超过 {limit} 字节 (request body too large)"),
            status_code=413,
        )
        await response({"type": "http"}, _no_receive, send)


class _BodyTooLarge(StarletteHTTPException):
    # An HTTPException so FastAPI lets it through while reading a chunked body
    # (any other exception there becomes a 400) and the error handlers answer 413.
    def __init__(self, max_bytes: int) -> None:
        super().__init__(413, f"请求体超过 {max_bytes} 字节 (request body too large)")


async def _no_receive() -> Message:
    return {"type": "http.disconnect"}


# Forms are 3 levels deep and catalogue definitions 5: a body nested far deeper is
# refused before pydantic, the payload converter or json.dumps recurse through it.
MAX_JSON_DEPTH = 32
FORM_MEDIA_TYPES = {"application/x-www-form-urlencoded", "multipart/form-data"}


async def check_request_body(request: Request) -> None:
    """Refuses, as 422 naming the problem, a body in another media type than the route
    reads (JSON, or a form for login) and JSON nested deeper than MAX_JSON_DEPTH.

    An app-wide dependency: FastAPI has read the body (a malformed one is already
    refused) and runs this before validating it against the route's model.
    """
    body_field = getattr(request.scope.get("route"), "body_field", None)
    if body_field is None:
        return
    expected = getattr(body_field.field_info, "media_type", "application/json")
    sent = request.headers.get("content-type", "").split(";")[0].strip().lower()
    if expected in FORM_MEDIA_TYPES:
        # Starlette consumed the stream only for a form; any other body is still unread.
        if sent not in FORM_MEDIA_TYPES and await request.body():
            raise _unsupported_media_type(expected, sent)
        return
    if not await request.body():
        return
    if not (sent == "application/json" or (sent.startswith("application/") and sent.endswith("+json"))):
        raise _unsupported_media_type(expected, sent)
    if _json_depth(await request.json()) > MAX_JSON_DEPTH:
        raise DomainError(
            ErrorCode.INVALID,
            "输入有误 (invalid input)",
            {"body": f"嵌套超过 {MAX_JSON_DEPTH} 层 (nested deeper than {MAX_JSON_DEPTH} levels)"},
        )


def _unsupported_media_type(expected: str, sent: str) -> DomainError:
    return DomainError(
        ErrorCode.INVALID,
        "请求体类型不支持 (unsupported Content-Type)",
        {"Content-Type": f"须为 {expected} (expected {expected}, got {sent or 'none'})"},
    )


def _json_depth(value: Any) -> int:
    """How deeply parsed JSON nests objects and arrays; iterative, so any depth is safe."""
    deepest, pending = 0, [(value, 1)]
    while pending:
        item, depth = pending.pop()
        if isinstance(item, dict | list):
            deepest = max(deepest, depth)
            children = item.values() if isinstance(item, dict) else item
            pending.extend((child, depth + 1) for child in children)
    return deepest


def create_app(
    settings: Settings | None = None, *, temporal_client: Client | None = None, engine: Engine | None = None
) -> FastAPI:
    """Build the app; tests pass their own client and engine, production lets the lifespan make them."""
    settings = settings or get_settings()

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        # Logging is configured by now (uvicorn's included): mask personal data in every record.
        install_log_redaction()
        app.state.settings = settings
        app.state.engine = engine or make_engine(settings.database_url)
        # This process's memory of which sign-in sessions are live (api/deps.signed_in).
        app.state.live_sessions = LiveSessions(settings.session_check_seconds)
        init_db(app.state.engine)
        # Replicas starting together would insert the same rows and all but one fail on a
        # duplicate key: one at a time, under the lock the migrations take.
        with migration_lock(app.state.engine):
            with Session(app.state.engine) as session:
                record_shipped_definitions(session)
            if settings.env == "dev":
                ensure_demo_accounts(app.state.engine, list(shipped_definitions().values()), secret=settings.secret_key)
        app.state.calendar = make_calendar(settings.calendar_file, settings.working_day_seconds)
        app.state.temporal_client = temporal_client or await connect_temporal(settings)
        app.state.inbox_watcher = InboxWatcher(app.state.engine, settings.inbox_watch_interval_seconds)
        await app.state.inbox_watcher.start()  # GET /tasks/events; stopping it ends the open streams
        yield
        await app.state.inbox_watcher.stop()
        if engine is None:
            app.state.engine.dispose()

    app = FastAPI(
        title="OneThing 一件事",
        description="一件事集成服务：受理、部门协同办理、时限监督 (one application, many departments, time limits)",
        version="0.1.0",
        lifespan=lifespan,
        dependencies=[Depends(check_request_body), Depends(bind_request_log_fields)],
        telemetry=NATIVE_TELEMETRY_OFF,
    )
    install_error_handlers(app)
    app.add_middleware(
        BodySizeLimit,
        max_bytes=settings.max_body_bytes,
        upload_max_bytes=settings.max_upload_bytes + materials.MULTIPART_OVERHEAD,
    )
    # The Temporal UI calls the codec server from its own origin, with the staff cookie.
    app.add_middleware(CodecCors, allow_origins=settings.codec_cors_origins)
    app.add_middleware(SecurityHeaders, hsts=settings.env == "prod")
    # Outermost: request latency, log context and (with an OTLP endpoint) server spans cover every request.
    app.state.metrics = ApiMetrics(settings, lambda: getattr(app.state, "engine", None))
    app.add_middleware(
        RequestTelemetry, request_duration=app.state.metrics.request_duration, tracer=request_tracer(settings)
    )
    app.add_api_route("/metrics", metrics_endpoint, methods=["GET"], include_in_schema=False)
    app.include_router(auth.router)
    app.include_router(auth.me_router)
    app.include_router(cases.router)
    app.include_router(materials.router)
    app.include_router(licences.router)
    app.include_router(tasks.router)
    app.include_router(catalogue.router)
    app.include_router(complaints.router)
    app.include_router(supervision.router)
    app.include_router(report.router)
    app.include_router(notices.router)
    app.include_router(codec_routes.router)
    app.include_router(audit_routes.router)
    app.include_router(units.router)
    app.include_router(accounts.router)
    if settings.env == "dev":
        app.include_router(dev_sms.router)  # the SMS gateway's sink in dev (settings.sms_gateway_url)
    app.include_router(console.router)  # the web console's HTML pages (not in the OpenAPI document)
    app.mount("/static", StaticFiles(directory=console.base.STATIC_DIR), name="static")

    @app.get(
        "/health",
        tags=["health"],
        response_model=HealthResponse,
        responses={503: {"model": HealthResponse, "description": "数据库或流程服务不可用 (degraded)"}},
    )
    async def health(client: ClientDep, engine: EngineDep) -> JSONResponse:
        checks: dict[str, Any] = {}
        try:
            await run_in_threadpool(_ping_database, engine)
            checks["database"] = "ok"
        except Exception:  # health reports; it never raises
            logger.exception("read-model database check failed")
            checks["database"] = "unavailable"
        try:
            checks["temporal"] = "ok" if await client.service_client.check_health() else "unavailable"
        except Exception:
            checks["temporal"] = "unavailable"
        healthy = all(value == "ok" for value in checks.values())
        body: dict[str, Any] = {"status": "ok" if healthy else "degraded", **checks, "calendar": "ok"}
        missing = app.state.calendar.missing_next_year(datetime.now(SHANGHAI).date())
        if missing is not None:
            body |= {"calendar": "warning", "calendar_warning_zh": missing_notice_warning_zh(missing)}
        return JSONResponse(body, status_code=200 if healthy else 503)

    return app


def _ping_database(engine: Engine) -> None:
    with Session(engine) as session:
        session.execute(text("SELECT 1"))

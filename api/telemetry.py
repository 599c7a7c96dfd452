"""What the API records about each request: its latency for Prometheus, the case and
step its log records are about, and (when tracing) its server span.

Labels and span attributes name the route template (``/tasks/{task_id}/complete``),
the method and the status, never the raw path or query, which carry ids and may
carry personal data. FastAPI's built-in OpenTelemetry instrumentation records both,
so the app turns it off (``NATIVE_TELEMETRY_OFF``) and this middleware traces instead.
"""

from __future__ import annotations

from collections.abc import Callable
from time import perf_counter
from typing import TYPE_CHECKING

from fastapi import Request
from prometheus_client import Histogram
from starlette.datastructures import Headers
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from api.schemas import CASE_ID_MAX_LENGTH, NOTICE_ID_MAX_LENGTH, TASK_ID_MAX_LENGTH
from infra.logs import current_log_fields, log_fields
from infra.tracing import configure_tracing
from settings import Settings

if TYPE_CHECKING:
    from fastapi.telemetry import TelemetryConfig
    from opentelemetry.trace import Tracer

# FastAPI would trace every request with url.path and url.query once a tracer provider exists.
NATIVE_TELEMETRY_OFF: TelemetryConfig = {"tracing": False, "metrics": False, "logs": False}

KNOWN_METHODS = frozenset({"GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"})
UNMATCHED_ROUTE = "unmatched"  # refused before routing (413) or no such route (404)
# The path parameters a request's log context is read from, and the longest each may be.
LONGEST_ID = {"case_id": CASE_ID_MAX_LENGTH, "task_id": TASK_ID_MAX_LENGTH, "notice_id": NOTICE_ID_MAX_LENGTH}


class RequestTelemetry:
    """ASGI middleware, outermost: times every request and gives it a log context;
    with a tracer, wraps it in a server span continuing the caller's trace (traceparent)."""

    def __init__(self, app: ASGIApp, request_duration: Histogram, tracer: Tracer | None = None) -> None:
        self.app = app
        self.request_duration = request_duration
        self.tracer = tracer

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        method = scope["method"] if scope["method"] in KNOWN_METHODS else "OTHER"
        root_path = scope.get("root_path", "")
        status = 500  # unless a response starts: an exception escaped every handler

        async def recording_send(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = int(message["status"])
            await send(message)

        started = perf_counter()
        try:
            with log_fields():
                if self.tracer is None:
                    await self.app(scope, receive, recording_send)
                else:
                    await self._traced(scope, receive, recording_send, method, root_path, lambda: status)
        finally:
            route = _route_template(scope, root_path)
            self.request_duration.labels(method, route, str(status)).observe(perf_counter() - started)

    async def _traced(
        self, scope: Scope, receive: Receive, send: Send, method: str, root_path: str, status: Callable[[], int]
    ) -> None:
        from opentelemetry import propagate
        from opentelemetry.trace import SpanKind, Status, StatusCode

        assert self.tracer is not None
        parent = propagate.extract(dict(Headers(scope=scope).items()))
        # No exception event: its message could quote a form; the status and error.type say enough.
        with self.tracer.start_as_current_span(
            method,
            context=parent,
            kind=SpanKind.SERVER,
            attributes={"http.request.method": method},
            record_exception=False,
            set_status_on_exception=False,
        ) as span:
            try:
                await self.app(scope, receive, send)
            except Exception as error:
                span.set_attribute("error.type", type(error).__qualname__)
                raise
            finally:
                route = _route_template(scope, root_path)
                span.update_name(f"{method} {route}")
                span.set_attribute("http.route", route)
                span.set_attribute("http.response.status_code", status())
                if status() >= 500:
                    span.set_status(Status(StatusCode.ERROR))


def _route_template(scope: Scope, root_path: str) -> str:
    """The matched route's path template. Routing writes into the scope the middleware
    holds: FastAPI the route, a mount (/static) the root path it added."""
    template = getattr(scope.get("route"), "path_format", None)
    if isinstance(template, str):
        return template
    mounted = scope.get("root_path", "")
    if isinstance(mounted, str) and mounted.startswith(root_path) and len(mounted) > len(root_path):
        return mounted[len(root_path) :] + "/{path}"
    return UNMATCHED_ROUTE


async def bind_request_log_fields(request: Request) -> None:
    """An app-wide dependency: once routing found them, the request's case and step go
    into its log context (a task id is ``<case_id>:<step>``, a notice id starts so)."""
    fields = current_log_fields()
    if fields is None:
        return
    # Not yet validated: an id longer than any real one (refused with 422 next) is not logged.
    params = {
        key: value
        for key, value in request.path_params.items()
        if key in LONGEST_ID and isinstance(value, str) and len(value) <= LONGEST_ID[key]
    }
    for key in ("task_id", "notice_id"):
        if isinstance(params.get(key), str) and ":" in params[key]:
            case_id, step, *_ = params[key].split(":")
            fields.case_id, fields.step = case_id, step
    if isinstance(params.get("case_id"), str):
        fields.case_id = params["case_id"]


def request_tracer(settings: Settings) -> Tracer | None:
    """The API's tracer when an OTLP endpoint is set (tracing configured for the process); else None."""
    if configure_tracing(settings, "onething-api") is None:
        return None
    from opentelemetry import trace

    return trace.get_tracer("onething.api")

"""OpenTelemetry tracing: off without an endpoint; with one, a submission is one trace
from the API request through the workflow to its activities, exported over OTLP/HTTP,
and no span carries personal data."""

from __future__ import annotations

import gzip
import threading
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, HTTPServer
from pathlib import Path
from typing import Any, ClassVar, cast

import httpx
import pytest
from opentelemetry import trace
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest
from opentelemetry.sdk.trace import ReadableSpan, TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.trace import SpanKind, Status, StatusCode
from temporalio.client import Client
from temporalio.contrib.opentelemetry import TracingInterceptor
from temporalio.testing import WorkflowEnvironment

from api.accounts import ensure_demo_accounts
from api.main import create_app
from api.telemetry import request_tracer
from domain.catalogue import shipped_definitions
from infra.temporal import client_interceptors, with_observability
from infra.trace_export import MaskingSpanExporter
from infra.tracing import build_tracer_provider, configure_tracing
from tests.api.helpers import Cases, birth_form
from tests.conftest import make_test_engine, running_worker, terminate_cases
from tests.conftest import test_settings as settings_for

ID_NUMBER = "330102199003070027"
PHONE = "13800001234"
COLLECTOR = "http://127.0.0.1:4318"  # never contacted: the tests' spans stay in memory


def test_without_an_endpoint_nothing_is_traced(tmp_path):
    settings = settings_for(tmp_path)

    assert configure_tracing(settings, "onething-test") is None
    assert request_tracer(settings) is None
    assert not any(isinstance(item, TracingInterceptor) for item in client_interceptors(settings))
    assert not any(isinstance(item, TracingInterceptor) for item in client_interceptors(settings, worker=True))


def test_an_endpoint_puts_temporals_tracing_interceptor_on_every_client(tmp_path):
    settings = settings_for(tmp_path, otlp_endpoint=COLLECTOR)

    for worker in (False, True):
        assert any(isinstance(item, TracingInterceptor) for item in client_interceptors(settings, worker=worker))


class _Collector(BaseHTTPRequestHandler):
    received: ClassVar[list[tuple[str, str, bytes]]] = []

    def do_POST(self) -> None:
        body = self.rfile.read(int(self.headers["Content-Length"]))
        if self.headers.get("Content-Encoding") == "gzip":
            body = gzip.decompress(body)
        self.received.append((self.path, self.headers.get("Content-Type", ""), body))
        self.send_response(200)
        self.send_header("Content-Type", "application/x-protobuf")
        self.send_header("Content-Length", "0")
        self.end_headers()

    def log_message(self, *args: Any) -> None:
        pass


@pytest.fixture
def collector() -> Iterator[str]:
    """A stand-in OTLP/HTTP collector on a free port; yields its base URL."""
    _Collector.received = []
    server = HTTPServer(("127.0.0.1", 0), _Collector)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_port}"
    server.shutdown()
    server.server_close()


def test_spans_are_exported_over_otlp_http_to_the_endpoint(tmp_path, collector):
    provider = build_tracer_provider(settings_for(tmp_path, otlp_endpoint=collector + "/"), "onething-api")
    with provider.get_tracer("onething.test").start_as_current_span("POST /cases") as span:
        span.set_attribute("detail", f"instrumentation quoting a form: {ID_NUMBER}")
    assert provider.force_flush(10_000)
    provider.shutdown()

    ((path, content_type, body),) = _Collector.received
    assert path == "/v1/traces" and content_type == "application/x-protobuf"
    request = ExportTraceServiceRequest.FromString(body)
    (resource_spans,) = request.resource_spans
    service = {a.key: a.value.string_value for a in resource_spans.resource.attributes}["service.name"]
    assert service == "onething-api"
    assert [span.name for scope in resource_spans.scope_spans for span in scope.spans] == ["POST /cases"]
    # Masked on the way out.
    assert ID_NUMBER.encode() not in body and b"330102********0027" in body


def test_exceptions_and_statuses_are_masked_before_export():
    exported = InMemorySpanExporter()
    provider = TracerProvider()
    provider.add_span_processor(SimpleSpanProcessor(MaskingSpanExporter(exported)))
    tracer = provider.get_tracer("onething.test")

    with pytest.raises(ValueError), tracer.start_as_current_span(f"lookup {PHONE}") as live:
        live.set_attribute("ids", [ID_NUMBER, "ot-0123"])
        live.set_status(Status(StatusCode.ERROR, f"ValueError: bad id {ID_NUMBER}"))
        raise ValueError(f"bad id {ID_NUMBER}, phone {PHONE}")

    (span,) = exported.get_finished_spans()
    text = repr((span.name, dict(span.attributes or {}), [dict(e.attributes or {}) for e in span.events]))
    text += repr(span.status.description)
    assert ID_NUMBER not in text and PHONE not in text
    assert span.name == "lookup 138****1234"
    assert dict(span.attributes or {})["ids"] == ("330102********0027", "ot-0123")
    (event,) = span.events
    assert event.name == "exception"
    assert dict(event.attributes or {})["exception.message"] == "bad id 330102********0027, phone 138****1234"
    assert (span.status.description or "").startswith("ValueError: bad id 330102********0027")


# --- one trace, API request → workflow → activities ---------------------------------------


@pytest.fixture(scope="module")
def exported_spans() -> Iterator[InMemorySpanExporter]:
    """The process's tracer provider, with an in-memory exporter: OpenTelemetry allows one
    global provider a process, so configure_tracing keeps this one."""
    provider = trace.get_tracer_provider()
    if not isinstance(provider, TracerProvider):
        provider = TracerProvider()
        trace.set_tracer_provider(provider)
    exporter = InMemorySpanExporter()
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    yield exporter
    exporter.shutdown()  # the provider stays; this exporter takes no more spans


def _wait_for_spans(exporter: InMemorySpanExporter, trace_id: int, prefix: str, seconds: float = 10) -> None:
    deadline = time.monotonic() + seconds
    while not any(
        s.context is not None and s.context.trace_id == trace_id and s.name.startswith(prefix)
        for s in exporter.get_finished_spans()
    ):
        assert time.monotonic() < deadline, f"no {prefix} span in the trace"
        time.sleep(0.1)


async def test_a_submission_is_one_trace_from_the_request_to_the_workflows_activities(
    env: WorkflowEnvironment, tmp_path: Path, task_queue: str, exported_spans: InMemorySpanExporter
):
    settings = settings_for(tmp_path, task_queue=task_queue, otlp_endpoint=COLLECTOR)
    assert configure_tracing(settings, "onething-api") is trace.get_tracer_provider()
    # As connect_temporal(settings) makes the API's and the worker's clients.
    client = with_observability(env.client, settings)
    engine = make_test_engine(settings.database_url)
    ensure_demo_accounts(engine, list(shipped_definitions().values()), secret=settings.secret_key)
    app = create_app(settings, temporal_client=client, engine=engine)
    form = birth_form()
    try:
        async with (
            running_worker(client, settings, engine, task_queue),
            app.router.lifespan_context(app),
            httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://onething.test") as api,
        ):
            token = (await api.post("/auth/token", data={"username": "applicant1", "password": "demo"})).json()
            exported_spans.clear()
            cases = Cases(api, _fixed_login(token["access_token"]))
            case = await cases.submit(channel="online", form=form)

            (request_span,) = [s for s in exported_spans.get_finished_spans() if s.name == "POST /cases"]
            assert request_span.kind == SpanKind.SERVER
            trace_id = _context(request_span).trace_id
            for prefix in ("StartUpdateWithStartWorkflow:CaseWorkflow", "RunWorkflow:CaseWorkflow", "RunActivity:"):
                _wait_for_spans(exported_spans, trace_id, prefix)
    finally:
        await terminate_cases(env.client, engine)
        engine.dispose()

    in_trace = [s for s in exported_spans.get_finished_spans() if _context(s).trace_id == trace_id]
    names = {s.name for s in in_trace}
    # The submission starts the case and waits for its acceptance in one call (Update-with-start).
    assert {"StartUpdateWithStartWorkflow:CaseWorkflow", "RunWorkflow:CaseWorkflow"} <= names
    assert "RunActivity:fetch_shared_materials" in names or "RunActivity:compute_deadlines" in names
    assert dict(request_span.attributes or {}) == {
        "http.request.method": "POST",
        "http.route": "/cases",
        "http.response.status_code": 201,
    }
    # Every span hangs off the request's span; none names a person.
    by_id = {_context(s).span_id: s for s in in_trace}
    for span in in_trace:
        if span is not request_span:
            assert _root(span, by_id) is request_span, span.name
    attributes = repr([dict(s.attributes or {}) for s in in_trace]) + repr(sorted(names))
    personal = [
        form["mother"]["id_number"],
        form["applicant"]["phone"],
        form["mother"]["name"],
        form["newborn"]["name"],
    ]
    assert not [value for value in personal if value in attributes]
    assert case["case_id"] in attributes  # workflow ids are hashes, and they are there


def _fixed_login(access_token: str) -> Any:
    async def login(_username: str) -> dict[str, str]:
        return {"Authorization": f"Bearer {access_token}"}

    return login


def _context(span: ReadableSpan) -> Any:
    assert span.context is not None
    return span.context


def _root(span: ReadableSpan, by_id: dict[int, ReadableSpan]) -> ReadableSpan:
    while span.parent is not None and span.parent.span_id in by_id:
        span = by_id[span.parent.span_id]
    return span


async def test_the_request_span_never_records_the_path_or_query(tmp_path, exported_spans, engine):
    settings = settings_for(tmp_path, otlp_endpoint=COLLECTOR)
    app = create_app(settings, temporal_client=cast(Client, object()), engine=engine)
    async with (
        app.router.lifespan_context(app),
        httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://onething.test") as api,
    ):
        exported_spans.clear()
        response = await api.get("/cases/ot-0123456789abcdef0123?name=王小明&phone=13800001234")
    assert response.status_code == 401

    (span,) = [s for s in exported_spans.get_finished_spans() if s.kind == SpanKind.SERVER]
    assert span.name == "GET /cases/{case_id}"
    assert dict(span.attributes or {}) == {
        "http.request.method": "GET",
        "http.route": "/cases/{case_id}",
        "http.response.status_code": 401,
    }


async def test_a_callers_trace_context_is_continued(tmp_path, exported_spans, engine):
    """A request arriving with W3C trace context (from a gateway or a client) joins that trace."""
    settings = settings_for(tmp_path, otlp_endpoint=COLLECTOR)
    app = create_app(settings, temporal_client=cast(Client, object()), engine=engine)
    trace_id, parent_id = "4bf92f3577b34da6a3ce929d0e0e4736", "00f067aa0ba902b7"
    async with (
        app.router.lifespan_context(app),
        httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://onething.test") as api,
    ):
        exported_spans.clear()
        await api.get("/health", headers={"traceparent": f"00-{trace_id}-{parent_id}-01"})

    (span,) = [s for s in exported_spans.get_finished_spans() if s.kind == SpanKind.SERVER]
    assert span.name == "GET /health"
    assert f"{_context(span).trace_id:032x}" == trace_id
    assert span.parent is not None and f"{span.parent.span_id:016x}" == parent_id

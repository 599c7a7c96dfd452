"""OpenTelemetry tracing, on only when ``settings.otlp_endpoint`` is set.

One trace follows a case's action end to end: the API request's server span
(api/telemetry.py), the client's StartWorkflow/Update span, and the worker's
RunWorkflow and RunActivity spans (temporalio's TracingInterceptor on both
clients, infra/temporal.py), exported over OTLP/HTTP to the collector.

Span attributes carry no personal data: the API's spans name the route template
and status, never the path or query; Temporal's carry workflow ids (hashes,
workflows/starter.py) and activity and workflow type names. What instrumentation
adds beyond that (an exception's message) is masked on export.

Unset, nothing here is imported by the processes and nothing is traced.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from settings import Settings

if TYPE_CHECKING:
    from opentelemetry.sdk.trace import TracerProvider

__all__ = ["build_tracer_provider", "configure_tracing", "traces_url"]


def traces_url(settings: Settings) -> str:
    """Where spans are POSTed: the collector's base URL + /v1/traces (the OTLP/HTTP convention)."""
    assert settings.otlp_endpoint is not None
    return settings.otlp_endpoint.rstrip("/") + "/v1/traces"


def build_tracer_provider(settings: Settings, service_name: str) -> TracerProvider:
    """A provider exporting batches of spans, masked (infra/trace_export.py), to the OTLP
    endpoint, as ``service_name``."""
    from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter
    from opentelemetry.sdk.resources import Resource
    from opentelemetry.sdk.trace import TracerProvider
    from opentelemetry.sdk.trace.export import BatchSpanProcessor

    from infra.trace_export import MaskingSpanExporter

    provider = TracerProvider(resource=Resource.create({"service.name": service_name}))
    exporter = MaskingSpanExporter(OTLPSpanExporter(endpoint=traces_url(settings)))
    provider.add_span_processor(BatchSpanProcessor(exporter))
    return provider


def configure_tracing(settings: Settings, service_name: str) -> TracerProvider | None:
    """Make this process's global tracer provider export to ``settings.otlp_endpoint``.

    None when no endpoint is set. OpenTelemetry allows one global provider per process:
    if one is installed already (a second call, or a test's in-memory one), it is kept
    and returned. The provider flushes its spans when the process exits.
    """
    if settings.otlp_endpoint is None:
        return None
    from opentelemetry import trace
    from opentelemetry.sdk.trace import TracerProvider

    current = trace.get_tracer_provider()
    if isinstance(current, TracerProvider):
        return current
    provider = build_tracer_provider(settings, service_name)
    trace.set_tracer_provider(provider)
    return provider

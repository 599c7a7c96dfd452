"""Span export with personal data masked: the last guard before spans leave the process.

Our own spans carry route templates and statuses only, but instrumentation we do not
write may add text: Temporal's TracingInterceptor records a failed call's exception
(message and stack trace) and puts its message in the span status, and a workflow
error may quote a form. Every text value of a span (name, attributes, event
attributes, status description) is masked here as in the logs (domain/redaction.py).

Imported only when tracing is on (infra/tracing.py).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from opentelemetry.sdk.trace import Event, ReadableSpan
from opentelemetry.sdk.trace.export import SpanExporter, SpanExportResult
from opentelemetry.trace import Status

from domain.redaction import mask_text

__all__ = ["MaskingSpanExporter", "masked_span"]


class MaskingSpanExporter(SpanExporter):
    """Hands ``inner`` masked copies of the spans it is given."""

    def __init__(self, inner: SpanExporter) -> None:
        self._inner = inner

    def export(self, spans: Sequence[ReadableSpan]) -> SpanExportResult:
        return self._inner.export([masked_span(span) for span in spans])

    def shutdown(self) -> None:
        self._inner.shutdown()

    def force_flush(self, timeout_millis: int = 30000) -> bool:
        return self._inner.force_flush(timeout_millis)


def masked_span(span: ReadableSpan) -> ReadableSpan:
    status = span.status
    if status.description:
        status = Status(status.status_code, mask_text(status.description))
    return ReadableSpan(
        name=mask_text(span.name),
        context=span.context,
        parent=span.parent,
        resource=span.resource,
        attributes=_masked_attributes(span.attributes),
        events=[Event(event.name, _masked_attributes(event.attributes), event.timestamp) for event in span.events],
        links=span.links,
        kind=span.kind,
        status=status,
        start_time=span.start_time,
        end_time=span.end_time,
        instrumentation_scope=span.instrumentation_scope,
    )


def _masked_attributes(attributes: Mapping[str, Any] | None) -> dict[str, Any] | None:
    if attributes is None:
        return None
    return {key: _masked_value(value) for key, value in attributes.items()}


def _masked_value(value: Any) -> Any:
    if isinstance(value, str):
        return mask_text(value)
    if isinstance(value, tuple | list):
        return tuple(mask_text(item) if isinstance(item, str) else item for item in value)
    return value

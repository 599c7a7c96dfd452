"""Process logging: text for people or one JSON object a line for a log collector,
masked either way, with the case, step and department a record is about.

``configure_logging(settings)`` is called once where a process starts (the worker's
``main``, the CLI for the API). A record names its case by ``extra={"case_id": …}``
or, more often, by the context it is logged in: the worker's activities
(infra/worker_telemetry.py) and the API's requests (api/telemetry.py) set
``log_fields`` for everything logged while they run, including by library code.
"""

from __future__ import annotations

import json
import logging
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, TextIO

from domain.redaction import install_log_redaction, mask_text
from settings import Settings

__all__ = ["LOG_FIELDS", "JsonFormatter", "LogFields", "configure_logging", "current_log_fields", "log_fields"]

LOG_FIELDS = ("case_id", "step", "department")
TEXT_FORMAT = "%(asctime)s %(levelname)s %(name)s %(message)s"


@dataclass
class LogFields:
    """What the code running now is about. Mutable so that a request's fields can be
    filled in once routing has found them (api/telemetry.py)."""

    case_id: str | None = None
    step: str | None = None
    department: str | None = None


_current: ContextVar[LogFields | None] = ContextVar("onething_log_fields", default=None)


def current_log_fields() -> LogFields | None:
    return _current.get()


@contextmanager
def log_fields(
    case_id: str | None = None, step: str | None = None, department: str | None = None
) -> Iterator[LogFields]:
    """Every record logged inside (in this task, or a thread it hands work to) carries these
    fields; a field left out keeps the enclosing context's value."""
    outer = _current.get() or LogFields()
    fields = LogFields(case_id or outer.case_id, step or outer.step, department or outer.department)
    token = _current.set(fields)
    try:
        yield fields
    finally:
        _current.reset(token)


class JsonFormatter(logging.Formatter):
    """One JSON object a line: time (UTC, ISO 8601), level, logger, message, and when
    known case_id, step, department, trace_id/span_id, exception and stack.

    Every text value is masked here again, so the JSON output is masked even for a
    record that did not go through the redaction filter (domain/redaction.py).
    """

    def format(self, record: logging.LogRecord) -> str:
        entry: dict[str, Any] = {
            "time": datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds"),
            "level": record.levelname,
            "logger": record.name,
            "message": mask_text(record.getMessage()),
        }
        context = _current.get()
        for name in LOG_FIELDS:
            value = getattr(record, name, None) or (getattr(context, name) if context is not None else None)
            if value is not None:
                entry[name] = mask_text(str(value))
        entry.update(_trace_ids())
        if record.exc_info and not record.exc_text:
            record.exc_text = self.formatException(record.exc_info)
        if record.exc_text:
            entry["exception"] = mask_text(record.exc_text)
        if record.stack_info:
            entry["stack"] = mask_text(self.formatStack(record.stack_info))
        return json.dumps(entry, ensure_ascii=False)


def _trace_ids() -> dict[str, str]:
    """The current span's ids, so a log line leads to its trace; nothing when not tracing."""
    # opentelemetry-api comes with FastAPI; without a tracer provider the span is invalid.
    from opentelemetry import trace

    span_context = trace.get_current_span().get_span_context()
    if not span_context.is_valid:
        return {}
    return {"trace_id": f"{span_context.trace_id:032x}", "span_id": f"{span_context.span_id:016x}"}


class _OurHandler(logging.StreamHandler[TextIO]):
    """The handler configure_logging installs, so a second call replaces it instead of adding one."""


def configure_logging(settings: Settings, *, stream: TextIO | None = None, level: int = logging.INFO) -> None:
    """Logs of this process to stderr (or ``stream``) in ``settings.log_format``, masked.

    Replaces the root logger's plain stream handlers (``logging.basicConfig``'s, or an
    earlier call's); other handlers, such as a test runner's capture, stay.
    """
    root = logging.getLogger()
    for handler in list(root.handlers):
        if type(handler) in (logging.StreamHandler, _OurHandler):
            root.removeHandler(handler)
    handler = _OurHandler(stream or sys.stderr)
    handler.setFormatter(JsonFormatter() if settings.log_format == "json" else logging.Formatter(TEXT_FORMAT))
    root.addHandler(handler)
    root.setLevel(level)
    install_log_redaction()

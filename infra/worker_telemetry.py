"""The worker's own Prometheus series and the interceptor that feeds them.

Every activity the worker runs (regular or local) is timed by activity type and
outcome; the read-model writes (projections, notifications, 督办) have a series of
their own. While an activity runs, its log records carry the case, step and
department it is about (infra/logs.py). Labels are activity names and outcomes
only: never an id or anything from a form.

The series live in prometheus_client's process-wide registry, which
``start_metrics_server`` serves with the process's own (CPU, memory, GC) on
``settings.worker_metrics_port``. The Temporal SDK's series (``temporal_…``) are
served by its own runtime on another port (infra/temporal.py).
"""

from __future__ import annotations

import asyncio
import logging
import threading
from time import perf_counter
from typing import Any
from wsgiref.simple_server import WSGIServer

from prometheus_client import Gauge, Histogram, start_http_server
from temporalio import activity, client, worker

from infra.logs import log_fields
from models.case import ActivityName
from models.complaint import ComplaintActivityName
from settings import Settings

logger = logging.getLogger(__name__)

# Activities that write the read model (activities/read_model.py, activities/complaints.py).
READ_MODEL_ACTIVITIES = frozenset(
    {
        ActivityName.PROJECT_CASE,
        ActivityName.WRITE_CASE_CHANGES,
        ActivityName.SEND_NOTIFICATION,
        ActivityName.RECORD_SUPERVISION_NOTICE,
        ActivityName.ESCALATE_OVERDUE_STEP,
        ComplaintActivityName.PROJECT_COMPLAINT,
        ComplaintActivityName.WRITE_COMPLAINT_CHANGES,
        ComplaintActivityName.ESCALATE_OVERDUE_COMPLAINT,
    }
)

# From a local read-model write (milliseconds) to a data-sharing lookup retried for seconds.
DURATION_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0)

ACTIVITY_DURATION = Histogram(
    "onething_worker_activity_duration_seconds",
    "活动执行耗时 (activity execution time, one attempt), by activity type, kind (local/regular) and outcome",
    ["activity", "kind", "outcome"],
    buckets=DURATION_BUCKETS,
)
READ_MODEL_WRITE_DURATION = Histogram(
    "onething_read_model_write_duration_seconds",
    "读模型写入耗时 (read-model write time: projection, notification, 督办), by activity and outcome",
    ["activity", "outcome"],
    buckets=DURATION_BUCKETS,
)
ACTIVITIES_IN_FLIGHT = Gauge(
    "onething_worker_activities_in_flight",
    "正在执行的活动数 (activities running now), by activity type",
    ["activity"],
)


class WorkerTelemetryInterceptor(client.Interceptor, worker.Interceptor):
    """Times activities and names their case in the logs. A client interceptor as well,
    so that a worker built on the client (worker.build_worker) picks it up by itself."""

    def intercept_activity(self, next: worker.ActivityInboundInterceptor) -> worker.ActivityInboundInterceptor:
        return _ActivityTelemetry(next)


class _ActivityTelemetry(worker.ActivityInboundInterceptor):
    async def execute_activity(self, input: worker.ExecuteActivityInput) -> Any:
        info = activity.info()
        name = info.activity_type
        outcome = "failed"
        in_flight = ACTIVITIES_IN_FLIGHT.labels(name)
        in_flight.inc()
        started = perf_counter()
        try:
            # The context is copied into the thread a synchronous activity runs in.
            with log_fields(**_fields_of(info, input.args)):
                result = await super().execute_activity(input)
            outcome = "completed"
            return result
        except asyncio.CancelledError:
            outcome = "cancelled"
            raise
        finally:
            elapsed = perf_counter() - started
            in_flight.dec()
            ACTIVITY_DURATION.labels(name, "local" if info.is_local else "regular", outcome).observe(elapsed)
            if name in READ_MODEL_ACTIVITIES:
                READ_MODEL_WRITE_DURATION.labels(name, outcome).observe(elapsed)


def _fields_of(info: activity.Info, args: Any) -> dict[str, str | None]:
    """case_id, step and department from the activity's input where it has them
    (a projection has them in its snapshot); a case workflow's id is its case id."""
    subject = args[0] if args else None
    subject = getattr(subject, "snapshot", subject)
    fields = {name: _text(getattr(subject, name, None)) for name in ("case_id", "step", "department")}
    if fields["case_id"] is None and info.workflow_type == "CaseWorkflow":
        fields["case_id"] = info.workflow_id
    return fields


def _text(value: Any) -> str | None:
    return value if isinstance(value, str) else None


class MetricsServer:
    """The worker's /metrics endpoint, running in a daemon thread until ``stop``."""

    def __init__(self, server: WSGIServer, thread: threading.Thread) -> None:
        self._server = server
        self._thread = thread

    @property
    def port(self) -> int:
        return int(self._server.server_port)

    def stop(self) -> None:
        self._server.shutdown()
        self._server.server_close()
        self._thread.join(timeout=5)


def start_metrics_server(settings: Settings) -> MetricsServer | None:
    """Serve the process registry on ``settings.worker_metrics_port``; None when it is 0 (off)."""
    if not settings.worker_metrics_port:
        return None
    server, thread = start_http_server(settings.worker_metrics_port, addr=settings.metrics_host)
    logger.info("worker metrics on http://%s:%d/metrics", settings.metrics_host, settings.worker_metrics_port)
    return MetricsServer(server, thread)

"""Prometheus metrics of the API process: ``GET /metrics`` in the text exposition format.

Two kinds of series, all prefixed ``onething_``:

- Business series, counted in the read model when scraped (``ReadModelCollector``):
  cases by status and thing, steps opened / completed / overdue by department and
  step, a histogram of the working hours finished steps took by department, and
  督办 notices by department. Being read from the tables, they agree across any
  number of API processes and survive restarts. A scrape's answer is kept for
  ``settings.metrics_cache_seconds`` so scrapers cannot load the database, and every
  query reads an index (a covering one for the finished steps and the totals).
- Request latency of this process (``onething_api_request_duration_seconds``),
  recorded by api/telemetry.py and labelled with the route template, never the path.

With ``settings.metrics_token`` set the endpoint needs ``Authorization: Bearer <token>``.
"""

from __future__ import annotations

import contextlib
import hmac
import logging
import threading
import time
from collections import defaultdict
from collections.abc import Callable, Iterable
from typing import Annotated

from fastapi import Header, Request
from fastapi.responses import Response
from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, Histogram, generate_latest
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, HistogramMetricFamily, Metric
from prometheus_client.gc_collector import GCCollector
from prometheus_client.platform_collector import PlatformCollector
from prometheus_client.process_collector import ProcessCollector
from prometheus_client.registry import Collector
from sqlalchemy import Engine, func, select
from sqlalchemy.exc import SQLAlchemyError
from sqlmodel import Session, col

from infra.db import DB_TRANSACTIONS
from models.case import CaseStatus, StepStatus
from models.errors import DomainError, ErrorCode
from models.tables import CaseRecord, SupervisionNotice, TaskRecord
from settings import Settings

__all__ = ["ApiMetrics", "ReadModelCollector", "metrics_endpoint"]

logger = logging.getLogger(__name__)

# Step working hours: an hour, a working day (24 h), up to the longest statutory limits.
WORKING_HOURS_BUCKETS: tuple[float, ...] = (1, 4, 8, 24, 48, 72, 120, 168, 240, 360, 480)
# From a read of the inbox to a submission waiting (up to 30 s) for its acceptance.
REQUEST_SECONDS_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0)

DONE = StepStatus.DONE.value
# Every status a projected step can have besides "done" (a pending step has no task row).
NOT_DONE = sorted(status.value for status in StepStatus if status not in (StepStatus.DONE, StepStatus.PENDING))
# Nearly every case ends completed: that count is derived (all cases minus the others), so
# no query reads the rows of finished cases.
BULK_CASE_STATUS = CaseStatus.COMPLETED.value


class ReadModelCollector(Collector):
    """The business series, counted in the read model at scrape time and cached."""

    def __init__(
        self,
        engine: Callable[[], Engine | None],
        cache_seconds: float,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._engine = engine
        self._cache_seconds = cache_seconds
        self._clock = clock
        self._lock = threading.Lock()
        self._families: list[Metric] = []
        self._counted_at: float | None = None

    def describe(self) -> Iterable[Metric]:
        # Registering must not query the database (the default would call collect()).
        return []

    def collect(self) -> Iterable[Metric]:
        engine = self._engine()
        if engine is None:  # before the app's lifespan made it
            return []
        # One scrape at a time counts; concurrent ones wait and get its answer.
        with self._lock:
            now = self._clock()
            if self._counted_at is None or now - self._counted_at >= self._cache_seconds:
                try:
                    self._families = count_read_model(engine)
                except SQLAlchemyError:
                    # The scrape still answers (latency, process); absent business series tell.
                    logger.exception("read-model metrics could not be counted")
                    return []
                self._counted_at = now
            return list(self._families)


def count_read_model(engine: Engine) -> list[Metric]:
    with Session(engine) as session:
        return [*_case_families(session), *_step_families(session), _notice_family(session)]


def _case_families(session: Session) -> list[Metric]:
    status, thing = col(CaseRecord.status), col(CaseRecord.thing)
    # Totals by status and by thing each read one index only.
    by_status = {row[0]: int(row[1]) for row in session.execute(select(status, func.count()).group_by(status))}
    by_thing = {row[0]: int(row[1]) for row in session.execute(select(thing, func.count()).group_by(thing))}
    # Cases in any other status (in flight, refused) are few: their thing is looked up.
    others = [name for name in by_status if name != BULK_CASE_STATUS]
    counts: dict[tuple[str, str], int] = {}
    if others:
        query = select(status, thing, func.count()).where(status.in_(others)).group_by(status, thing)
        counts = {(row[0], row[1]): int(row[2]) for row in session.execute(query)}
    for name, total in by_thing.items():
        bulk = total - sum(count for (_, other_thing), count in counts.items() if other_thing == name)
        if bulk > 0:
            counts[(BULK_CASE_STATUS, name)] = bulk
    family = GaugeMetricFamily("onething_cases", "案件数 (cases), by status and thing", labels=["status", "thing"])
    for (status_name, thing_name), count in sorted(counts.items()):
        family.add_metric([status_name, thing_name], count)
    return [family]


def _step_families(session: Session) -> list[Metric]:
    department, step = col(TaskRecord.department), col(TaskRecord.step)
    opened: dict[tuple[str, str], int] = defaultdict(int)
    completed: dict[tuple[str, str], int] = defaultdict(int)
    overdue: dict[tuple[str, str], int] = defaultdict(int)
    hours: dict[str, dict[int, int]] = defaultdict(lambda: defaultdict(int))

    # Finished steps, the bulk of the table: read from the covering index
    # ix_tasks_status_completed_on (status, …, department, thing, step, hours_bucket, on_time).
    done = (
        select(department, step, col(TaskRecord.hours_bucket), col(TaskRecord.on_time), func.count())
        .where(col(TaskRecord.status) == DONE)
        .group_by(department, step, col(TaskRecord.hours_bucket), col(TaskRecord.on_time))
    )
    for department_name, step_name, bucket, on_time, count in session.execute(done):
        key = (department_name, step_name)
        opened[key] += count
        completed[key] += count
        if on_time is not None and not on_time:  # finished after its due time
            overdue[key] += count
        if bucket is not None:
            hours[department_name][int(bucket)] += count

    # Open, claimed, paused, refused and cancelled steps (far fewer): found through the
    # status index. A cancelled step may never have opened; the workflow marks an
    # overdue one and the mark stays.
    rest = (
        select(
            department,
            step,
            col(TaskRecord.opened_at).is_not(None),
            col(TaskRecord.overdue),
            func.count(),
        )
        .where(col(TaskRecord.status).in_(NOT_DONE))
        .group_by(department, step, col(TaskRecord.opened_at).is_not(None), col(TaskRecord.overdue))
    )
    for department_name, step_name, was_opened, was_overdue, count in session.execute(rest):
        key = (department_name, step_name)
        if was_opened:
            opened[key] += count
        if was_overdue:
            overdue[key] += count

    labels = ["department", "step"]
    opened_family = CounterMetricFamily(
        "onething_steps_opened", "已开始办理的环节 (steps opened), by department and step", labels=labels
    )
    completed_family = CounterMetricFamily(
        "onething_steps_completed", "已办结的环节 (steps completed), by department and step", labels=labels
    )
    overdue_family = CounterMetricFamily(
        "onething_steps_overdue",
        "超过法定时限的环节 (steps past their time limit: finished late or marked overdue), by department and step",
        labels=labels,
    )
    for family, counts in ((opened_family, opened), (completed_family, completed), (overdue_family, overdue)):
        for key, count in sorted(counts.items()):
            if count:
                family.add_metric(list(key), count)
    return [opened_family, completed_family, overdue_family, _hours_family(hours)]


def _hours_family(hours: dict[str, dict[int, int]]) -> Metric:
    """Working hours from opening to completion (补正 pauses left out), from the read
    model's per-step figure in tenths of an hour, so the sum is exact to 0.1 h."""
    family = HistogramMetricFamily(
        "onething_step_working_hours",
        "环节办理用时（工作小时）(working hours a step took from opening to completion), by department",
        labels=["department"],
    )
    for department_name, histogram in sorted(hours.items()):
        buckets: list[tuple[str, float]] = []
        for bound in WORKING_HOURS_BUCKETS:
            within = sum(count for tenths, count in histogram.items() if tenths <= bound * 10)
            buckets.append((str(float(bound)), within))  # as prometheus_client writes le
        buckets.append(("+Inf", sum(histogram.values())))
        total_hours = sum(tenths * count for tenths, count in histogram.items()) / 10
        family.add_metric([department_name], buckets, sum_value=total_hours)
    return family


def _notice_family(session: Session) -> Metric:
    department = col(SupervisionNotice.department)
    family = CounterMetricFamily(
        "onething_supervision_notices", "督办通知 (supervision notices issued), by department", labels=["department"]
    )
    for department_name, count in session.execute(select(department, func.count()).group_by(department)):
        family.add_metric([department_name], int(count))
    return family


class ApiMetrics:
    """The registry one API app serves: its own, so that apps in one process (tests)
    never share series."""

    def __init__(self, settings: Settings, engine: Callable[[], Engine | None]) -> None:
        self.token = settings.metrics_token
        self.registry = CollectorRegistry()
        self.request_duration = Histogram(
            "onething_api_request_duration_seconds",
            "API 请求耗时 (API request latency), by method, route template and status",
            ["method", "route", "status"],
            buckets=REQUEST_SECONDS_BUCKETS,
            registry=self.registry,
        )
        self.registry.register(ReadModelCollector(engine, settings.metrics_cache_seconds))
        # This process's committed read-model transactions (infra/db.py), for the benchmark.
        with contextlib.suppress(ValueError):  # registered once per registry
            self.registry.register(DB_TRANSACTIONS)
        ProcessCollector(registry=self.registry)
        PlatformCollector(registry=self.registry)
        GCCollector(registry=self.registry)

    def check_token(self, authorization: str | None) -> None:
        if self.token is None:
            return
        expected = f"Bearer {self.token.get_secret_value()}".encode()
        if authorization is None or not hmac.compare_digest(authorization.encode(), expected):
            raise DomainError(ErrorCode.UNAUTHORIZED, "需要监控令牌 (a valid metrics token is required)")


def metrics_endpoint(request: Request, authorization: Annotated[str | None, Header()] = None) -> Response:
    """Prometheus scrape target; a plain def, so FastAPI runs the counting off the event loop."""
    metrics: ApiMetrics = request.app.state.metrics
    metrics.check_token(authorization)
    return Response(generate_latest(metrics.registry), media_type=CONTENT_TYPE_LATEST)

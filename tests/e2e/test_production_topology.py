"""The production topology, run: one Temporal server, two workers and two API processes on one
PostgreSQL read model, the APIs behind a round-robin reverse proxy that sets X-Forwarded-For
(tests/e2e/proxy.py), as docs/deployment.md's scaled compose deployment runs them.

Thirty cases are driven through the proxy while a worker and an API are SIGKILLed mid-flight;
on an accelerated calendar some steps run late and are 督办'd meanwhile. Every case ends, each
step is applied once, each 督办 and each notice to the applicant is issued once; the login
limits are one budget across both APIs; and `onething rebuild` restores the same rows.

PostgreSQL only (the read model is the one thing the processes share): `make test` runs this
module in its PostgreSQL stage, with ONETHING_TEST_POSTGRES_URL set.
"""

from __future__ import annotations

import asyncio
import json
import os
import signal
import subprocess
import sys
import uuid
from collections import Counter, defaultdict
from collections.abc import AsyncIterator, Callable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import psycopg
import pytest
from sqlalchemy import Engine, make_url, text

from activities.rebuild import REBUILT_TABLES
from domain.samples import another_newborn, sample_birth_form
from infra.db import make_engine
from infra.temporal import connect_temporal
from ops.processes import Stack, dev_server_command, free_port, wait_for_api, wait_for_port
from settings import ROOT, Settings
from tests.conftest import TEST_DATABASE_PREFIX, TEST_POSTGRES_URL
from tests.e2e.proxy import RoundRobinProxy
from tests.e2e.test_faults import BIRTH_STEPS, Desk, case_workflow_ids, completions_in_history, eventually
from tests.e2e.test_rebuild import SURROGATE_KEYS

pytestmark = [
    pytest.mark.e2e,
    pytest.mark.skipif(
        not TEST_POSTGRES_URL,
        reason="needs PostgreSQL: the two workers and two APIs share one read model, which must be "
        "PostgreSQL; `make test` runs this in its PostgreSQL stage (ONETHING_TEST_POSTGRES_URL)",
    ),
]

CASES = 30
DAY_SECONDS = 6.0  # accelerated calendar: a birth step's 1-working-day limit ends 6-12 s after it opens
# Every fifth case leaves its 户口登记 step until it has been 督办'd twice, so 督办 are issued
# while the topology runs (and a worker dies), not only when a step happens to run late.
HELD_STEP = "hukou_registration"
HELD_EVERY = 5
HELD_ESCALATIONS = 2
WORKERS = ("worker-1", "worker-2")
APIS = ("api-1", "api-2")
KILLED_WORKER, KILLED_API = "worker-1", "api-2"
APPLICANT = "applicant1"
LOCKED_ACCOUNT = "admin"
GUESSES = 30
# Loopback addresses the test's clients connect from: the proxy forwards them as X-Forwarded-For.
GUESSER_ADDRESS, NEIGHBOUR_ADDRESS = "127.0.0.2", "127.0.0.3"


# --- the topology ------------------------------------------------------------------------


def _on_postgres_server(statement: str) -> None:
    assert TEST_POSTGRES_URL
    with psycopg.connect(TEST_POSTGRES_URL, autocommit=True) as connection:
        connection.execute(statement.encode())


def fresh_database() -> str:
    """The URL of a new, empty database on the test PostgreSQL server."""
    assert TEST_POSTGRES_URL
    name = f"{TEST_DATABASE_PREFIX}topology_{uuid.uuid4().hex[:12]}"
    _on_postgres_server(f'CREATE DATABASE "{name}"')
    return make_url(TEST_POSTGRES_URL).set(database=name).render_as_string(False)


def drop_database(url: str) -> None:
    _on_postgres_server(f'DROP DATABASE IF EXISTS "{make_url(url).database}" WITH (FORCE)')


class Topology:
    """The dev server, two workers and two APIs as child processes, and the proxy in front."""

    def __init__(self, workdir: Path, database_url: str) -> None:
        self.workdir = workdir
        self.database_url = database_url
        temporal_port, self.ui_port = free_port(), free_port()
        self.api_ports = {name: free_port() for name in APIS}
        self.api_urls = {name: f"http://127.0.0.1:{port}" for name, port in self.api_ports.items()}
        self.proxy = RoundRobinProxy(list(self.api_urls.values()))
        self.upstream_names = {url: name for name, url in self.api_urls.items()}
        self.env = {
            **os.environ,
            "PYTHONUNBUFFERED": "1",
            "ONETHING_ENV": "dev",
            "ONETHING_TEMPORAL_ADDRESS": f"127.0.0.1:{temporal_port}",
            "ONETHING_TASK_QUEUE": "topology-cases",
            "DATABASE_URL": database_url,
            "ONETHING_ARCHIVE_DIR": str(workdir / "archive"),
            "ONETHING_FILE_STORE_DIR": str(workdir / "files"),
            "ONETHING_WORKING_DAY_SECONDS": str(DAY_SECONDS),
            # The APIs believe the proxy's X-Forwarded-For, and only the proxy's.
            "ONETHING_FORWARDED_ALLOW_IPS": "127.0.0.1",
            # Links in SMS and the dev SMS sink are reached through the proxy, as in production.
            "ONETHING_PUBLIC_BASE_URL": self.proxy.base_url,
            "ONETHING_SMS_GATEWAY_URL": f"{self.proxy.base_url}/dev/sms",
        }
        self.settings = Settings(
            env="dev", temporal_address=self.env["ONETHING_TEMPORAL_ADDRESS"], api_port=self.api_ports["api-1"]
        )
        self._stack = Stack()
        self.processes: dict[str, subprocess.Popen[bytes]] = {}

    def start(self) -> None:
        self.proxy.__enter__()
        command = dev_server_command(self.settings, self.workdir / "temporal.db", self.ui_port)
        server = self._start("temporal", command)
        wait_for_port(self.settings.temporal_address, 60, server)
        # All four at once, as `docker compose up` starts replicas: migrations, demo accounts
        # and the delivery schedule are made by whichever gets there first.
        for name in (*WORKERS, *APIS):
            self.start_process(name, wait=False)
        for name in APIS:
            self._wait_for_api(name)

    def start_process(self, name: str, wait: bool = True) -> None:
        role = "api" if name in APIS else "worker"
        environment = {"ONETHING_API_PORT": str(self.api_ports[name])} if role == "api" else {}
        self._start(name, [sys.executable, str(ROOT / "cli.py"), role], environment)
        if wait and role == "api":
            self._wait_for_api(name)
            self.proxy.back_up(self.api_urls[name])

    def _wait_for_api(self, name: str) -> None:
        wait_for_port(f"127.0.0.1:{self.api_ports[name]}", 90, self.processes[name])
        wait_for_api(self.api_urls[name], 90)

    def kill(self, name: str) -> None:
        """SIGKILL: the process gets no chance to finish what it was doing."""
        process = self.processes.pop(name)
        process.send_signal(signal.SIGKILL)
        process.wait(timeout=30)

    def restart_killed(self) -> None:
        for name in (*WORKERS, *APIS):
            if name not in self.processes or self.processes[name].poll() is not None:
                self.start_process(name)

    def stop(self) -> None:
        self._stack.stop()
        self.processes.clear()
        self.proxy.__exit__(None, None, None)

    def _start(
        self, name: str, command: list[str], environment: dict[str, str] | None = None
    ) -> subprocess.Popen[bytes]:
        env = {**self.env, **(environment or {})}
        process = self._stack.start(name, command, env, self.workdir / f"{name}.log")
        self.processes[name] = process
        return process

    def answered_by(self, since: int = 0, client: str | None = None, path: str | None = None) -> Counter[str]:
        """How many of the proxy's requests (from the ``since``-th) each API answered itself."""
        return Counter(
            self.upstream_names[relayed.upstream or ""]
            for relayed in self.proxy.relayed[since:]
            if relayed.answered
            and (client is None or relayed.client == client)
            and (path is None or relayed.path == path)
        )

    def cli(self, *arguments: str, database_url: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [sys.executable, str(ROOT / "cli.py"), *arguments],
            env={**self.env, "DATABASE_URL": database_url},
            cwd=ROOT,
            capture_output=True,
            text=True,
            timeout=180,
        )

    def dump_logs(self) -> None:
        for log in sorted(self.workdir.glob("*.log")):
            tail = log.read_text(errors="replace")[-3000:]
            sys.stderr.write(f"\n--- {log.name} ---\n{tail}\n")


@pytest.fixture(scope="module")
def topology(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Topology]:
    database_url = fresh_database()
    topology = Topology(tmp_path_factory.mktemp("topology"), database_url)
    try:
        topology.start()
        yield topology
    finally:
        topology.stop()
        topology.dump_logs()
        drop_database(database_url)


@pytest.fixture(scope="module")
def read_model(topology: Topology) -> Iterator[Engine]:
    engine = make_engine(topology.database_url)
    yield engine
    engine.dispose()


def rows(engine: Engine, query: str, **parameters: Any) -> list[dict[str, Any]]:
    """The rows of a plain query; its timestamps, stored in UTC without a zone, made aware."""
    with engine.connect() as connection:
        return [
            {key: _aware(value) for key, value in row._mapping.items()}
            for row in connection.execute(text(query), parameters)
        ]


def _aware(value: Any) -> Any:
    return value.replace(tzinfo=UTC) if isinstance(value, datetime) and value.tzinfo is None else value


# --- thirty cases through the proxy, a worker and an API killed ------------------------------


@dataclass
class Flight:
    case_ids: list[str]
    held: set[str]
    killed_at: datetime
    running_at_kill: int
    served_before_kill: Counter[str]
    served_after_kill: Counter[str]


async def officers_work(
    desk: Desk, case_id: str, form: dict[str, Any], held: bool, killed: asyncio.Event, step_done: Callable[[], None]
) -> None:
    """Officers claim and complete whatever the case has open until it is completed. A held
    case's 户口登记 waits for the kills, then until it has been 督办'd ``HELD_ESCALATIONS``
    times and once more after the kills (by the surviving worker)."""
    escalations_at_kill: int | None = None

    def waits(step: dict[str, Any]) -> bool:
        nonlocal escalations_at_kill
        if not held or step["step"] != HELD_STEP:
            return False
        if not killed.is_set():
            return True
        if escalations_at_kill is None:
            escalations_at_kill = step["escalations"]
        return bool(step["escalations"] < max(HELD_ESCALATIONS, escalations_at_kill + 1))

    while True:
        case = await desk.case(case_id)
        if case["status"] == "completed":
            return
        open_steps = [step for step in case["steps"] if step["status"] in {"open", "claimed"}]
        ready = [step for step in open_steps if not waits(step)]
        for step in ready:
            await desk.complete_step(case_id, step, form)
            step_done()
        if not ready:  # the next steps are about to show, or a held step waits for its 督办
            await asyncio.sleep(0.5 if open_steps else 0.2)


@pytest.fixture(scope="module")
async def flight(topology: Topology) -> AsyncIterator[Flight]:
    form = sample_birth_form(delivery="mail")
    forms = [another_newborn(form, n) for n in range(CASES)]
    async with httpx.AsyncClient(base_url=topology.proxy.base_url, timeout=60) as http:
        desk = Desk(http)
        submitted = await asyncio.gather(*(desk.submit(forms[n], f"topology-{n}") for n in range(CASES)))
        assert Counter(response.status_code for response in submitted) == {201: CASES}
        case_ids = [response.json()["case_id"] for response in submitted]
        held = {case_id for n, case_id in enumerate(case_ids) if n % HELD_EVERY == 0}

        steps_done = 0

        def step_done() -> None:
            nonlocal steps_done
            steps_done += 1

        killed = asyncio.Event()
        officers = [
            asyncio.create_task(officers_work(desk, case_id, forms[n], case_id in held, killed, step_done))
            for n, case_id in enumerate(case_ids)
        ]
        all_steps = CASES * len(BIRTH_STEPS)
        await eventually(lambda: steps_done >= all_steps // 4, 180, "a quarter of the steps done")

        # Mid-flight: requests are on their way through the killed API (the proxy answers 502,
        # the officers retry with their keys) and workflow tasks on the killed worker (they
        # time out and the other worker takes them).
        served_before_kill = topology.answered_by()
        topology.kill(KILLED_API)
        topology.kill(KILLED_WORKER)
        relayed_at_kill = len(topology.proxy.relayed)
        killed_at = datetime.now().astimezone()
        killed.set()
        running_at_kill = sum(not officer.done() for officer in officers)
        await asyncio.wait_for(asyncio.gather(*officers), timeout=300)
        assert steps_done == all_steps
        served_after_kill = topology.answered_by(relayed_at_kill)

    # Every case runs on to its end (the rating period, the archive): then nothing more is
    # written, and the read model can be compared with what a rebuild makes of the histories.
    client = await connect_temporal(topology.settings)

    async def all_closed() -> bool:
        running = [
            e async for e in client.list_workflows("WorkflowType = 'CaseWorkflow' AND ExecutionStatus = 'Running'")
        ]
        return not running

    await eventually(all_closed, 120, "every case workflow closed")
    yield Flight(case_ids, held, killed_at, running_at_kill, served_before_kill, served_after_kill)


async def test_two_workers_and_two_apis_behind_a_proxy_on_postgres_complete_every_case_once_through_kills(
    topology: Topology, flight: Flight, read_model: Engine
) -> None:
    case_ids = flight.case_ids
    assert flight.running_at_kill == CASES, "the kills came with every case still running"
    assert set(flight.served_before_kill) == set(APIS), flight.served_before_kill
    # After the kills the surviving API answered everything.
    assert set(flight.served_after_kill) == {"api-1"}, flight.served_after_kill

    cases = rows(read_model, "SELECT case_id, status FROM cases")
    assert sorted(case["case_id"] for case in cases) == sorted(case_ids)
    assert {case["status"] for case in cases} == {"completed"}
    every_task = {f"{case_id}:{step}" for case_id in case_ids for step in BIRTH_STEPS}
    tasks = rows(read_model, "SELECT task_id, status FROM tasks")
    assert sorted(task["task_id"] for task in tasks) == sorted(every_task)
    assert {task["status"] for task in tasks} == {"done"}

    # Each step applied once: in the history (one accepted and completed Update per step),
    # among the case's events, and in the audit log (one claim and one completion per task).
    client = await connect_temporal(topology.settings)
    for case_id in case_ids:
        accepted, completed = await completions_in_history(client, case_id)
        assert accepted == completed == Counter(BIRTH_STEPS), case_id
    completions = rows(read_model, "SELECT case_id, step FROM case_events WHERE type = 'completed'")
    assert Counter(f"{row['case_id']}:{row['step']}" for row in completions) == Counter(every_task)
    audited = rows(
        read_model,
        "SELECT action, target FROM audit_log WHERE action IN ('task_claim', 'task_complete')",
    )
    for action in ("task_claim", "task_complete"):
        counted = Counter(row["target"] for row in audited if row["action"] == action)
        miscounted = {task: n - 1 for task, n in (counted + Counter(every_task)).items() if n != 2}
        assert miscounted == {}, f"{action}: {miscounted}"
    assert await case_workflow_ids(client) == sorted(case_ids)


async def test_each_overdue_instant_is_escalated_once_and_each_applicant_notice_issued_once_across_two_workers(
    flight: Flight, read_model: Engine
) -> None:
    day = timedelta(seconds=DAY_SECONDS)
    tasks = {
        row["task_id"]: row
        for row in rows(read_model, "SELECT task_id, case_id, step, due_at, completed_at, escalations FROM tasks")
    }
    notices = rows(
        read_model,
        "SELECT case_id, step, sequence, due_at, issued_at FROM supervision_notices WHERE origin = 'automatic'",
    )
    by_step: dict[str, list[dict[str, Any]]] = defaultdict(list)
    for notice in notices:
        by_step[f"{notice['case_id']}:{notice['step']}"].append(notice)
    escalation_words = Counter(
        f"{row['case_id']}:{row['step']}"
        for row in rows(read_model, "SELECT case_id, step FROM notifications WHERE kind = 'overdue_escalation'")
    )
    events = Counter(
        f"{row['case_id']}:{row['step']}"
        for row in rows(read_model, "SELECT case_id, step FROM case_events WHERE type = 'supervision_notice'")
    )
    for task_id, mine in by_step.items():
        task = tasks[task_id]
        mine.sort(key=lambda notice: notice["sequence"])
        issued = [notice["issued_at"] for notice in mine]
        # One 督办 per due instant: at the deadline, then at the end of each further working
        # day it stayed open, none twice, none after the step was done.
        assert [notice["sequence"] for notice in mine] == list(range(1, len(mine) + 1)), task_id
        assert issued == [task["due_at"] + k * day for k in range(len(mine))], task_id
        assert issued[-1] < task["completed_at"], task_id
        assert task["escalations"] == len(mine), task_id
        assert escalation_words[task_id] == len(mine), task_id
        assert events[task_id] == len(mine), task_id
    assert set(escalation_words) == set(events) == set(by_step)
    for case_id in flight.held:
        assert len(by_step[f"{case_id}:{HELD_STEP}"]) >= HELD_ESCALATIONS, case_id
    # The surviving worker went on escalating after the other one died.
    for case_id in flight.held:
        assert by_step[f"{case_id}:{HELD_STEP}"][-1]["issued_at"] > flight.killed_at, case_id

    # Notices to the applicant: each kind about each step once per case, the same for every
    # case (they all took the same path); each queued once as an SMS to the applicant's phone.
    to_applicant = rows(
        read_model, "SELECT case_id, kind, step FROM notifications WHERE recipient = :who", who=APPLICANT
    )
    per_case: dict[str, Counter[tuple[str, str | None]]] = defaultdict(Counter)
    for row in to_applicant:
        per_case[row["case_id"]][(row["kind"], row["step"])] += 1
    assert sorted(per_case) == sorted(flight.case_ids)
    expected = per_case[flight.case_ids[0]]
    assert expected and set(expected.values()) == {1}, expected
    for case_id in flight.case_ids:
        assert per_case[case_id] == expected, case_id
    sms = rows(
        read_model,
        "SELECT case_id, kind FROM sms_outbox WHERE kind NOT IN ('supervision_notice', 'supervision_notice_manual')",
    )
    sms_kinds: dict[str, Counter[str]] = defaultdict(Counter)
    for row in sms:
        sms_kinds[row["case_id"]][row["kind"]] += 1
    expected_sms = Counter(kind for kind, _ in expected) + Counter(["case_accepted", "rating_invitation"])
    for case_id in flight.case_ids:
        assert sms_kinds[case_id] == expected_sms, case_id


# --- login limits: one budget across both APIs ------------------------------------------------


async def test_thirty_parallel_wrong_passwords_over_both_apis_get_five_password_checks_and_lock_both(
    topology: Topology, read_model: Engine
) -> None:
    topology.restart_killed()  # a replica that died is back behind the proxy
    guesser = httpx.AsyncHTTPTransport(local_address=GUESSER_ADDRESS)
    neighbour = httpx.AsyncHTTPTransport(local_address=NEIGHBOUR_ADDRESS)
    first_relayed = len(topology.proxy.relayed)
    limit = topology.settings.login_max_failures_per_account
    async with httpx.AsyncClient(base_url=topology.proxy.base_url, transport=guesser, timeout=60) as http:
        wrong = {"username": LOCKED_ACCOUNT, "password": "not-the-password"}
        guesses = await asyncio.gather(*(http.post("/auth/token", data=wrong) for _ in range(GUESSES)))
        statuses = Counter(response.status_code for response in guesses)
        # Each attempt is reserved before its password is checked, in the shared database:
        # the account's five failures from one address are all the password checks thirty get.
        assert statuses == {401: limit, 429: GUESSES - limit}, statuses
        assert set(topology.answered_by(first_relayed, client=GUESSER_ADDRESS, path="/auth/token")) == set(APIS)

        # The lockout holds on each API process, even with the right password, through the proxy ...
        right = {"username": LOCKED_ACCOUNT, "password": "demo"}
        for _ in APIS:
            refused = await http.post("/auth/token", data=right)
            assert refused.status_code == 429, refused.text
            assert "username" in refused.json()["error"]["fields"], refused.text
            assert int(refused.headers["Retry-After"]) > 0

    # ... and from the same address straight to each API.
    for name in APIS:
        async with httpx.AsyncClient(base_url=topology.api_urls[name], transport=guesser, timeout=60) as direct:
            refused = await direct.post("/auth/token", data=right)
            assert refused.status_code == 429, (name, refused.text)

    # The APIs count the client's address from X-Forwarded-For, not the proxy's: someone at
    # another address still signs in to the same account.
    async with httpx.AsyncClient(base_url=topology.proxy.base_url, transport=neighbour, timeout=60) as http:
        signed_in = await http.post("/auth/token", data=right)
        assert signed_in.status_code == 200, signed_in.text

    recorded = rows(
        read_model,
        "SELECT address, succeeded FROM login_attempts WHERE username = :who",
        who=LOCKED_ACCOUNT,
    )
    assert Counter((row["address"], row["succeeded"]) for row in recorded) == {
        (GUESSER_ADDRESS, False): limit,
        (NEIGHBOUR_ADDRESS, True): 1,
    }


# --- rebuild on PostgreSQL ---------------------------------------------------------------------


Rows = dict[str, list[str]]


def dump(engine: Engine) -> Rows:
    """Every table `onething rebuild` restores, as sorted JSON rows without surrogate keys."""
    tables: Rows = {}
    for table in REBUILT_TABLES:
        name = str(table.__tablename__)
        skipped = SURROGATE_KEYS.get(name, set())
        tables[name] = sorted(
            json.dumps({key: value for key, value in row.items() if key not in skipped}, sort_keys=True, default=str)
            for row in rows(engine, f"SELECT * FROM {name}")
        )
    return tables


def test_rebuild_on_postgres_restores_the_same_rows_the_two_workers_wrote(
    topology: Topology, flight: Flight, read_model: Engine
) -> None:
    before = dump(read_model)
    assert len(before["cases"]) == CASES and before["supervision_notices"] and before["notifications"]
    rebuilt_url = fresh_database()
    try:
        rebuilt = topology.cli("rebuild", database_url=rebuilt_url)
        assert rebuilt.returncode == 0, rebuilt.stderr
        assert "0 failed" in rebuilt.stdout and "left to the worker: 0" in rebuilt.stdout, rebuilt.stdout
        engine = make_engine(rebuilt_url)
        try:
            after = dump(engine)
        finally:
            engine.dispose()
    finally:
        drop_database(rebuilt_url)
    for table, table_rows in before.items():
        lost, added = set(table_rows) - set(after[table]), set(after[table]) - set(table_rows)
        assert not lost and not added, f"{table}: only before {sorted(lost)[:4]}, only after {sorted(added)[:4]}"
        assert after[table] == table_rows, table
    assert dump(read_model) == before, "the live read model changed while it was compared"

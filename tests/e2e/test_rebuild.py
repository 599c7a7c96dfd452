"""The read model, lost, comes back from Temporal: `onething rebuild` replays every
case's and complaint's recorded writes and the tables equal the lost ones.

The stack runs on an accelerated calendar (a working day lasts a few seconds) so that
warnings, overdue steps, automatic 督办 and an overdue complaint happen during the test.
"""

from __future__ import annotations

import asyncio
import json
import shutil
import sqlite3
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest

from activities.rebuild import REBUILD_QUERY, REBUILT_TABLES, REPLAYED_ACTIVITIES, rebuild_read_model
from domain.samples import sample_birth_form
from domain.workcalendar import AcceleratedCalendar
from infra.db import init_db, make_engine
from infra.temporal import connect_temporal
from models.case import ActivityName
from models.complaint import ComplaintActivityName
from ops.demo import play_officers
from settings import ROOT
from tests.e2e.conftest import LiveStack

DAY_SECONDS = 4.0
# Columns that are the database's own numbering, not data; and the API's clock when it
# registered a case's number, which a rebuild restores as the case's acceptance time.
SURROGATE_KEYS = {"case_events": {"id"}, "case_registrations": {"registered_at"}}

Rows = dict[str, list[dict[str, Any]]]


def dump(database: Path) -> Rows:
    """Every table rebuild restores, as sorted plain rows."""
    with sqlite3.connect(f"file:{database}?mode=ro", uri=True) as connection:
        connection.row_factory = sqlite3.Row
        tables: Rows = {}
        for table in REBUILT_TABLES:
            name = str(table.__tablename__)
            rows = [
                {key: row[key] for key in row.keys() if key not in SURROGATE_KEYS.get(name, set())}  # noqa: SIM118
                for row in connection.execute(f"SELECT * FROM {name}")
            ]
            tables[name] = sorted(rows, key=lambda row: json.dumps(row, sort_keys=True, default=str))
    return tables


def delete_database(database: Path) -> None:
    for path in (database, Path(f"{database}-wal"), Path(f"{database}-shm")):
        path.unlink(missing_ok=True)


def run_cli(stack: LiveStack, *arguments: str, database: Path | None = None) -> subprocess.CompletedProcess[str]:
    env = dict(stack.env)
    if database is not None:
        env["DATABASE_URL"] = f"sqlite:///{database}"
    return subprocess.run(
        [sys.executable, str(ROOT / "cli.py"), *arguments],
        env=env,
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=180,
    )


# --- the scenario, played over HTTP -------------------------------------------------


class Driver:
    def __init__(self, stack: LiveStack, client: httpx.Client) -> None:
        self.stack = stack
        self.client = client
        self._headers: dict[str, dict[str, str]] = {}

    def as_user(self, username: str) -> dict[str, str]:
        if username not in self._headers:
            self._headers[username] = self.stack.login(self.client, username)
        return self._headers[username]

    def post(self, path: str, username: str, body: dict[str, Any], status: int = 200) -> dict[str, Any]:
        response = self.client.post(path, json=body, headers=self.as_user(username))
        assert response.status_code == status, response.text
        result: dict[str, Any] = response.json()
        return result

    def get(self, path: str, username: str = "supervisor") -> dict[str, Any]:
        response = self.client.get(path, headers=self.as_user(username))
        assert response.status_code == 200, response.text
        result: dict[str, Any] = response.json()
        return result

    def submit(self) -> tuple[str, dict[str, Any]]:
        form = sample_birth_form(born_at=datetime.now(UTC) - timedelta(days=2), delivery="mail")
        case = self.post("/cases", "applicant1", {"thing": "birth", "channel": "online", "form": form}, status=201)
        return case["case_id"], form

    def step(self, case_id: str, step: str) -> dict[str, Any]:
        return next(item for item in self.get(f"/cases/{case_id}")["steps"] if item["step"] == step)

    def wait_for(self, what: str, condition: Any, timeout: float = 90) -> None:
        deadline = time.monotonic() + timeout
        while not condition():
            assert time.monotonic() < deadline, f"timed out waiting for {what}"
            time.sleep(0.5)


def play_scenario(driver: Driver) -> dict[str, str]:
    """Cases in every state the read model knows, with 督办, 催办, ratings and complaints."""
    completed, completed_form = driver.submit()
    in_progress, in_progress_form = driver.submit()
    supplement, _ = driver.submit()
    refused, _ = driver.submit()
    overdue, overdue_form = driver.submit()

    assert play_officers(driver.client, completed, completed_form) == 6
    # 好差评: a low rating of the case opens a 回访 for the supervisors; a step is rated too.
    driver.post(f"/cases/{completed}/rating", "applicant1", {"score": 2, "comment": "等待太久"}, status=201)
    driver.post(f"/cases/{completed}/rating", "applicant1", {"score": 5, "step": "hukou_registration"}, status=201)

    assert play_officers(driver.client, in_progress, in_progress_form, stop_after=2) == 2
    open_step = next(s for s in driver.get(f"/cases/{in_progress}")["steps"] if s["status"] == "open")
    officer = f"{open_step['department']}_officer"
    driver.post(f"/tasks/{in_progress}:{open_step['step']}/claim", officer, {})
    supervision = {"case_id": in_progress, "step": open_step["step"], "message": "请加快办理"}
    driver.post("/supervision/notices", "supervisor", supervision, status=201)
    driver.post("/supervision/urges", "supervisor", supervision, status=201)

    driver.post(f"/tasks/{supplement}:birth_certificate/claim", "hospital_officer", {})
    body = {"missing": ["delivery_record"], "reason": "分娩记录不清晰"}
    driver.post(f"/tasks/{supplement}:birth_certificate/return", "hospital_officer", body)

    driver.post(f"/tasks/{refused}:birth_certificate/claim", "hospital_officer", {})
    driver.post(f"/tasks/{refused}:birth_certificate/refuse", "hospital_officer", {"reason": "非本院出生"})

    # 投诉: one answered and closed, one left unanswered until it is overdue.
    closed_complaint = driver.post(
        "/complaints",
        "applicant1",
        {"case_id": completed, "step": "hukou_registration", "content": "户籍窗口答复不清。"},
        201,
    )["complaint_id"]
    driver.post(f"/complaints/{closed_complaint}/assign", "supervisor", {"department": "police"})
    driver.post(f"/complaints/{closed_complaint}/answer", "police_officer", {"answer": "已联系申请人并说明。"})
    driver.post(f"/complaints/{closed_complaint}/close", "supervisor", {"satisfied": True})
    open_complaint = driver.post(
        "/complaints", "applicant1", {"case_id": in_progress, "content": "办理进度太慢，无人答复。"}, 201
    )["complaint_id"]
    driver.post(f"/complaints/{open_complaint}/assign", "supervisor", {"department": "police"})

    # A step left open past its limit is 督办'd at due and again a working day later,
    # then completed late.
    driver.wait_for(
        "two 督办 of the overdue case", lambda: driver.step(overdue, "birth_certificate")["escalations"] >= 2
    )
    assert play_officers(driver.client, overdue, overdue_form, stop_after=1) == 1
    driver.wait_for(
        "the unanswered complaint's 督办", lambda: driver.get(f"/complaints/{open_complaint}")["overdue"], timeout=120
    )
    return {
        "completed": completed,
        "in_progress": in_progress,
        "supplement": supplement,
        "refused": refused,
        "overdue": overdue,
        "open_complaint": open_complaint,
    }


async def _activities_in_flight(stack: LiveStack) -> int:
    client = await connect_temporal(stack.settings)
    pending = 0
    async for execution in client.list_workflows(f"({REBUILD_QUERY}) AND ExecutionStatus='Running'"):
        description = await client.get_workflow_handle(execution.id, run_id=execution.run_id).describe()
        pending += len(description.raw_description.pending_activities)
    return pending


def stop_when_quiet(stack: LiveStack) -> None:
    """Stop the worker and the API halfway through a working day with nothing in flight.

    On the accelerated calendar every timer (warning, due, next 督办, end of the rating
    period) falls on a day boundary, so mid-day nothing new starts; what the worker
    had begun is over once no workflow has an activity pending.
    """
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        phase = time.time() % DAY_SECONDS
        if not 0.4 * DAY_SECONDS <= phase <= 0.6 * DAY_SECONDS:
            time.sleep(((0.45 * DAY_SECONDS - phase) % DAY_SECONDS) or 0.05)
            continue
        if asyncio.run(_activities_in_flight(stack)) == 0 and time.time() % DAY_SECONDS <= 0.7 * DAY_SECONDS:
            stack.stop("worker")
            stack.stop("api")
            return
        time.sleep(DAY_SECONDS * 0.5)
    raise AssertionError("the worker never fell quiet")


@dataclass
class Scenario:
    stack: LiveStack
    database: Path
    original_copy: Path
    before: Rows
    ids: dict[str, str]


@pytest.fixture(scope="module")
def scenario(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Scenario]:
    workdir = tmp_path_factory.mktemp("rebuild")
    # play_officers logs in for every step: more logins than a person makes a minute.
    stack = LiveStack(
        workdir, ONETHING_WORKING_DAY_SECONDS=str(DAY_SECONDS), ONETHING_LOGIN_MAX_ATTEMPTS_PER_ADDRESS="100000"
    )
    try:
        stack.start_all()
        with stack.client() as client:
            ids = play_scenario(Driver(stack, client))
        stop_when_quiet(stack)
        database = workdir / "read-model.db"
        original_copy = workdir / "original.db"
        with sqlite3.connect(database) as source, sqlite3.connect(original_copy) as target:
            source.backup(target)
        yield Scenario(stack, database, original_copy, dump(database), ids)
    finally:
        stack.stop_all()
        stack.dump_logs()


# --- the tests ------------------------------------------------------------------------


def test_every_read_model_activity_is_replayed_by_rebuild() -> None:
    """A new activity must be either replayed or declared as writing nothing to the read model."""
    writes_nothing = {
        ActivityName.COMPUTE_DEADLINES,
        ActivityName.COMPUTE_REMAINING_TIME,
        ActivityName.COMPUTE_NEXT_ESCALATION,
        ActivityName.FETCH_SHARED_MATERIALS,
        ActivityName.ARCHIVE_CASE,  # files under the archive directory, not tables
    }
    every_activity = set(ActivityName) | set(ComplaintActivityName)
    assert set(REPLAYED_ACTIVITIES) == every_activity - writes_nothing


@pytest.mark.e2e
def test_the_scenario_reaches_every_table_and_state(scenario: Scenario) -> None:
    before = scenario.before
    statuses = {row["case_id"]: row["status"] for row in before["cases"]}
    ids = scenario.ids
    assert [statuses[ids[name]] for name in ("completed", "in_progress", "supplement", "refused", "overdue")] == [
        "completed",
        "in_progress",
        "awaiting_supplement",
        "refused",
        "in_progress",
    ]
    late = [t for t in before["tasks"] if t["case_id"] == ids["overdue"] and t["step"] == "birth_certificate"]
    assert late[0]["completed_at"] is not None and late[0]["on_time"] == 0 and late[0]["escalations"] >= 2
    origins = {row["origin"] for row in before["supervision_notices"]}
    assert {"automatic", "manual"} <= origins and len(origins) == 3  # and the complaint's
    kinds = {row["kind"] for row in before["notifications"]}
    assert {"overdue_escalation", "urge", "complaint_overdue"} <= kinds and len(kinds) > 3
    assert {(row["step"], row["score"]) for row in before["ratings"]} == {("", 2), ("hukou_registration", 5)}
    assert {row["status"] for row in before["complaints"]} == {"closed", "assigned"}
    assert all(before.values())


@pytest.mark.e2e
def test_rebuild_of_a_lost_read_model_equals_it(scenario: Scenario) -> None:
    delete_database(scenario.database)

    rebuilt = run_cli(scenario.stack, "rebuild")

    assert rebuilt.returncode == 0, rebuilt.stderr
    assert "读模型已重建" in rebuilt.stdout and "0 failed" in rebuilt.stdout, rebuilt.stdout
    assert "left to the worker: 0" in rebuilt.stdout, rebuilt.stdout
    after = dump(scenario.database)
    for table, rows in scenario.before.items():
        assert after[table] == rows, table


@pytest.mark.e2e
def test_rebuild_refuses_a_database_holding_cases_unless_forced_and_then_changes_nothing(
    scenario: Scenario, tmp_path: Path
) -> None:
    live = tmp_path / "live.db"
    shutil.copy(scenario.original_copy, live)

    refused = run_cli(scenario.stack, "rebuild", database=live)
    forced = run_cli(scenario.stack, "rebuild", "--force", database=live)

    assert refused.returncode == 1 and "--force" in refused.stderr, refused.stderr
    assert forced.returncode == 0, forced.stderr
    assert dump(live) == scenario.before


@pytest.mark.e2e
async def test_rebuilding_twice_changes_nothing(scenario: Scenario, tmp_path: Path) -> None:
    database = tmp_path / "twice.db"
    engine = make_engine(f"sqlite:///{database}")
    init_db(engine)
    client = await connect_temporal(scenario.stack.settings)
    calendar = AcceleratedCalendar(DAY_SECONDS)
    seen: list[tuple[int, int | None]] = []

    first = await rebuild_read_model(client, engine, calendar, progress=lambda done, total: seen.append((done, total)))
    rows_after_first = dump(database)
    second = await rebuild_read_model(client, engine, calendar)

    assert first.failures == [] and first.writes_in_flight == 0
    assert first.workflows_seen == first.workflows_rebuilt == len(scenario.ids) + 1  # and the closed complaint
    assert second.table_counts == first.table_counts
    assert first.table_counts == {table: len(rows) for table, rows in scenario.before.items()}
    assert second.writes_replayed == first.writes_replayed
    assert dump(database) == rows_after_first == scenario.before
    assert seen[0] == (0, first.workflows_seen) and seen[-1] == (first.workflows_seen, first.workflows_seen)

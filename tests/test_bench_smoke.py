"""The benchmark harness keeps working: a ~40-second smoke run of `onething bench --smoke`
(bench/harness.py) against its own dev server, with both raw baselines and the full path
completing cases; and the simulated officers follow an inbox change feed (Server-Sent
Events) when the server offers one, and poll when it does not."""

from __future__ import annotations

import asyncio
import json
import subprocess
import sys
import time
from collections.abc import AsyncIterator
from pathlib import Path

import httpx
import pytest
from fastapi import FastAPI, Request, Response
from fastapi.responses import JSONResponse, StreamingResponse

from bench.drivers import FEED_RESYNC_SECONDS, OFFICERS, FullPathDriver, RequestCounter
from bench.harness import birth_shape
from domain.catalogue import shipped_definitions
from ops.processes import free_port
from settings import ROOT

pytestmark = pytest.mark.e2e


def test_bench_smoke_run_completes_cases_on_both_paths(tmp_path: Path) -> None:
    output = tmp_path / "smoke.json"
    finished = subprocess.run(
        [sys.executable, str(ROOT / "cli.py"), "bench", "--smoke", "--output", str(output)],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert finished.returncode == 0, finished.stdout[-3000:] + finished.stderr[-3000:]
    report = json.loads(output.read_text(encoding="utf-8"))
    assert {"machine", "scenarios", "ratio_full_vs_raw", "ratio_full_vs_raw_same_interaction"} <= set(report)
    scenarios = {scenario["name"]: scenario for scenario in report["scenarios"]}
    for name in ("raw closed 5", "raw same-interaction closed 5", "onething closed 5"):
        scenario = scenarios[name]
        assert scenario["cases_completed"] == 10, scenario
        assert scenario["errors"] == 0, scenario
        assert scenario["cases_per_s"] > 0 and scenario["e2e_p50_s"] > 0
        for key in ("submit_p50_ms", "submit_p99_ms", "complete_p99_ms", "timer_lateness_p99_s"):
            assert key in scenario
        assert scenario["cpu_ms_per_case"]["server"] > 0 and scenario["cpu_ms_per_case"]["driver"] > 0
        assert scenario["history_events_per_case"] > 0 and scenario["history_events_by_type_per_case"]
    raw, same = scenarios["raw closed 5"], scenarios["raw same-interaction closed 5"]
    full = scenarios["onething closed 5"]
    # Two Updates per step on the same-interaction baseline, one on the ceiling.
    assert same["history_events_by_type_per_case"]["WORKFLOW_EXECUTION_UPDATE_COMPLETED"] == 12
    assert raw["history_events_by_type_per_case"]["WORKFLOW_EXECUTION_UPDATE_COMPLETED"] == 6
    assert same["claim_p50_ms"] > 0 and raw["claim_p50_ms"] is None and raw["http_requests_per_case"] == 0
    assert {"server", "worker", "api", "driver"} <= set(full["cpu_ms_per_case"])
    assert full["http_requests_by_route_per_case"]["POST /tasks/{task_id}/claim"] == 6
    assert full["db_transactions_per_case"]["worker"] > 0  # the API's too once its /metrics serves the counter
    assert full["inbox_feed"] == report["inbox_feed"] in {"sse", "poll"}
    assert report["ratio_full_vs_raw"] > 0 and report["ratio_full_vs_raw_same_interaction"] > 0
    assert report["closed_loop_comparison"]["cases_per_s"]["raw_same_interaction"] == same["cases_per_s"]
    assert report["memory"]["open_cases"] == 20 and report["memory"]["worker_rss_mb_after"] > 0
    assert output.with_suffix(".png").stat().st_size > 10_000
    assert "| raw closed 5 |" in finished.stdout and "| raw same-interaction closed 5 |" in finished.stdout


def test_supervision_benchmark_smoke_times_every_query_and_shows_index_plans(tmp_path: Path) -> None:
    output = tmp_path / "supervision.json"
    finished = subprocess.run(
        [sys.executable, "-m", "bench.supervision", "--cases", "300", "--repeat", "3", "--output", str(output)],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert finished.returncode == 0, finished.stdout[-3000:] + finished.stderr[-3000:]
    report = json.loads(output.read_text(encoding="utf-8"))
    (sqlite,) = report["runs"]
    assert sqlite["database"] == "sqlite" and sqlite["cases"] == 300
    assert all(query["p95_ms"] > 0 for query in sqlite["queries"])
    plans = " ".join(line for lines in sqlite["plans"].values() for line in lines)
    for index in ("timeliness_rollup USING PRIMARY KEY", "ix_tasks_status_due", "ix_tasks_department_status_due"):
        assert index in plans


# -- the officers' inbox: change feed or polling, against a stand-in server ---------------


class InboxServer:
    """A stand-in for the API's case and task routes, birth cases only, with ETags on
    GET /tasks and (``with_feed``) the change feed GET /tasks/events."""

    def __init__(self, with_feed: bool) -> None:
        _, steps = birth_shape()
        definition = shipped_definitions()["birth"]
        self.depends_on = {step.code: set(step.depends_on) for step in steps}
        self.department = {step.code: str(definition.step(step.code).department) for step in steps}
        self.cases: dict[str, dict[str, str]] = {}  # case id -> step -> pending|open|claimed|done
        self.versions: dict[str, int] = dict.fromkeys(self.department.values(), 0)
        self.changed = asyncio.Condition()
        self.streams = 0
        app = FastAPI()

        def department_of(request: Request) -> str:
            return request.headers["authorization"].removeprefix("Bearer ").removesuffix("_officer")

        def etag(department: str) -> str:
            return f'"{department}-{self.versions[department]}"'

        @app.post("/auth/token")
        async def token(request: Request) -> dict[str, str]:
            return {"access_token": str((await request.form())["username"])}

        @app.post("/cases", status_code=201)
        async def submit() -> dict[str, str]:
            case_id = f"C{len(self.cases) + 1}"
            self.cases[case_id] = dict.fromkeys(self.depends_on, "pending")
            await self.open_ready(case_id)
            return {"case_id": case_id}

        @app.get("/cases/{case_id}")
        async def case(case_id: str) -> dict[str, str]:
            done = all(status == "done" for status in self.cases[case_id].values())
            return {"case_id": case_id, "status": "completed" if done else "in_progress"}

        @app.get("/tasks")
        async def inbox(request: Request) -> Response:
            department = department_of(request)
            if request.headers.get("if-none-match") == etag(department):
                return Response(status_code=304, headers={"ETag": etag(department)})
            items = [
                {"task_id": f"{case_id}:{step}", "case_id": case_id, "step": step}
                for case_id, statuses in self.cases.items()
                for step, status in statuses.items()
                if status in {"open", "claimed"} and self.department[step] == department
            ]
            return JSONResponse({"items": items}, headers={"ETag": etag(department)})

        if with_feed:

            @app.get("/tasks/events")
            async def events(request: Request) -> StreamingResponse:
                department = department_of(request)

                async def stream() -> AsyncIterator[str]:
                    self.streams += 1
                    sent = None
                    while True:
                        if etag(department) != sent:
                            sent = etag(department)
                            yield f"event: inbox\ndata: {json.dumps({'etag': sent})}\n\n"
                        async with self.changed:
                            await self.changed.wait()

                return StreamingResponse(stream(), media_type="text/event-stream")

        @app.post("/tasks/{task_id}/{action}")
        async def act(task_id: str, action: str) -> dict[str, str]:
            case_id, _, step = task_id.rpartition(":")
            self.cases[case_id][step] = "claimed" if action == "claim" else "done"
            await self.bump(self.department[step])
            if action == "complete":
                await self.open_ready(case_id)
            return {"step": step}

        self.app = app

    async def bump(self, department: str) -> None:
        self.versions[department] += 1
        async with self.changed:
            self.changed.notify_all()

    async def open_ready(self, case_id: str) -> None:
        statuses = self.cases[case_id]
        done = {step for step, status in statuses.items() if status == "done"}
        for step, status in statuses.items():
            if status == "pending" and self.depends_on[step] <= done:
                statuses[step] = "open"
                await self.bump(self.department[step])


@pytest.mark.parametrize(("with_feed", "feed"), [(True, "sse"), (False, "poll")])
async def test_officers_follow_the_inbox_change_feed_when_offered_and_poll_otherwise(
    with_feed: bool, feed: str
) -> None:
    import uvicorn

    server = InboxServer(with_feed)
    port = free_port()
    config = uvicorn.Config(server.app, port=port, log_level="warning", timeout_graceful_shutdown=1)
    serving = uvicorn.Server(config)
    task = asyncio.create_task(serving.serve())
    try:
        while not serving.started:
            await asyncio.sleep(0.05)
        form, steps = birth_shape()
        requests = RequestCounter()
        async with httpx.AsyncClient(
            base_url=f"http://127.0.0.1:{port}", timeout=10, event_hooks={"request": [requests]}
        ) as http:
            driver = FullPathDriver(http, form, len(steps))
            await driver.login_all()
            assert await driver.choose_feed() == feed
            desks = [asyncio.create_task(driver.officer_desk(department, 8)) for department in OFFICERS]
            begun = time.perf_counter()
            try:
                await asyncio.wait_for(asyncio.gather(*(driver.run_case(driver.samples) for _ in range(6))), 60)
            finally:
                driver.stop()
                await asyncio.wait_for(asyncio.gather(*desks), 10)
            elapsed = time.perf_counter() - begun
        samples = driver.samples
        assert samples.cases_completed == 6 and samples.errors == 0, samples.error_kinds
        assert samples.steps_completed == 6 * len(steps)
        sent = requests.by_route
        # One claim and one completion per step (plus any sent again on a closing connection).
        assert sent["POST /tasks/{task_id}/claim"] - samples.resent.get("claim", 0) == 6 * len(steps)
        assert sent["POST /tasks/{task_id}/complete"] - samples.resent.get("complete", 0) == 6 * len(steps)
        if with_feed:
            assert server.streams >= len(OFFICERS)
            # Woken by events, not by a clock: about one inbox read per change, never a poll every 50 ms.
            changes = sum(server.versions.values())
            assert sent["GET /tasks"] <= changes + len(OFFICERS) * (elapsed / FEED_RESYNC_SECONDS + 2)
        else:
            assert server.streams == 0 and sent["GET /tasks/events"] == 1  # the one look that found none
    finally:
        serving.should_exit = True
        await asyncio.wait_for(task, 10)

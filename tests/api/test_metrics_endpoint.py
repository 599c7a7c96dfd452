"""GET /metrics after a birth case runs through the API, its token, and the worker's and
the Temporal SDK's own metric endpoints."""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import Awaitable, Callable
from pathlib import Path

import httpx
import pytest
from prometheus_client.parser import text_string_to_metric_families
from sqlalchemy import Engine
from temporalio.testing import WorkflowEnvironment

from api.accounts import ensure_demo_accounts
from api.main import create_app
from domain.catalogue import shipped_definitions
from ops.processes import free_port
from settings import Settings
from tests.api.helpers import Cases, assert_error, token_login
from tests.conftest import make_test_engine, terminate_cases
from tests.conftest import test_settings as settings_for
from worker import run_worker

BIRTH_DEPARTMENTS = {"hospital", "police", "medical_security", "hr_social_security"}

Samples = dict[tuple[str, frozenset[tuple[str, str]]], float]


def parse(exposition: str) -> Samples:
    return {
        (sample.name, frozenset(sample.labels.items())): sample.value
        for family in text_string_to_metric_families(exposition)
        for sample in family.samples
    }


def value(samples: Samples, name: str, **labels: str) -> float | None:
    return samples.get((name, frozenset(labels.items())))


def business(samples: Samples) -> Samples:
    """The series counted in the read model (not this process's own)."""
    return {
        key: count
        for key, count in samples.items()
        if key[0].startswith("onething_")
        and not key[0].startswith("onething_api_")
        and key[0] != "onething_db_transactions_total"  # this process's own transactions
    }


async def eventually(check: Callable[[], Awaitable[bool]], seconds: float = 20) -> None:
    deadline = time.monotonic() + seconds
    while not await check():
        assert time.monotonic() < deadline, "condition not reached in time"
        await asyncio.sleep(0.2)


@pytest.fixture
def api_settings(tmp_path: Path, task_queue: str) -> Settings:
    # No cache, so each scrape shows the read model as it is now.
    return settings_for(tmp_path, task_queue=task_queue, max_body_bytes=64 * 1024, metrics_cache_seconds=0)


async def test_metrics_count_a_birth_case_from_submission_to_completion(api, cases, login, env, api_settings, engine):
    case = await cases.submit(channel="online")
    first_open = next(step for step in case["steps"] if step["status"] == "open")
    issued = await api.post(
        "/supervision/notices",
        json={"case_id": case["case_id"], "step": first_open["step"], "message": "请加快办理"},
        headers=await login("supervisor"),
    )
    assert issued.status_code == 201, issued.text
    await cases.finish(case)

    scraped: dict[str, str] = {}

    async def completed() -> bool:
        response = await api.get("/metrics")
        assert response.status_code == 200, response.text
        scraped["text"] = response.text
        scraped["type"] = response.headers["content-type"]
        return value(parse(response.text), "onething_cases", status="completed", thing="birth") == 1

    await eventually(completed)
    samples = parse(scraped["text"])
    assert scraped["type"].startswith("text/plain")

    assert [key for key in samples if key[0] == "onething_cases"] == [
        ("onething_cases", frozenset({("status", "completed"), ("thing", "birth")}))
    ]
    steps_by_department: dict[str, int] = {}
    for step in case["steps"]:
        labels = {"department": step["department"], "step": step["step"]}
        assert value(samples, "onething_steps_opened_total", **labels) == 1, labels
        assert value(samples, "onething_steps_completed_total", **labels) == 1, labels
        steps_by_department[step["department"]] = steps_by_department.get(step["department"], 0) + 1
    assert set(steps_by_department) == BIRTH_DEPARTMENTS
    assert not [key for key in samples if key[0] == "onething_steps_overdue_total"]
    for department, count in steps_by_department.items():
        assert value(samples, "onething_step_working_hours_count", department=department) == count
        assert value(samples, "onething_step_working_hours_bucket", department=department, le="+Inf") == count
    assert value(samples, "onething_supervision_notices_total", department=first_open["department"]) == 1

    submitted = value(
        samples, "onething_api_request_duration_seconds_count", method="POST", route="/cases", status="201"
    )
    assert submitted == 1
    completions = value(
        samples,
        "onething_api_request_duration_seconds_count",
        method="POST",
        route="/tasks/{task_id}/complete",
        status="200",
    )
    assert completions == len(case["steps"])
    # Labels name route templates: no case id (nor any other id) appears anywhere.
    assert case["case_id"] not in scraped["text"]

    # Another API process on the same read model (or this one restarted) reports the
    # same business series, having served no request itself.
    other = create_app(api_settings, temporal_client=env.client, engine=engine)
    async with (
        other.router.lifespan_context(other),
        httpx.AsyncClient(transport=httpx.ASGITransport(app=other), base_url="http://other.test") as other_api,
    ):
        other_samples = parse((await other_api.get("/metrics")).text)
    assert business(other_samples) == business(samples)
    assert (
        value(other_samples, "onething_api_request_duration_seconds_count", method="POST", route="/cases", status="201")
        is None
    )


async def test_an_unknown_path_is_labelled_unmatched_not_by_its_path(api):
    assert (await api.get("/no/such/ot-secret-path")).status_code == 404

    text = (await api.get("/metrics")).text

    assert (
        value(parse(text), "onething_api_request_duration_seconds_count", method="GET", route="unmatched", status="404")
        == 1
    )
    assert "ot-secret-path" not in text


async def test_metrics_need_the_token_when_one_is_set(env, tmp_path, engine):
    settings = settings_for(tmp_path, metrics_token="scrape-token-0123456789")
    app = create_app(settings, temporal_client=env.client, engine=engine)
    async with (
        app.router.lifespan_context(app),
        httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://onething.test") as client,
    ):
        missing = await client.get("/metrics")
        wrong = await client.get("/metrics", headers={"Authorization": "Bearer scrape-token-0123456788"})
        user_token = await client.get("/metrics", headers={"Authorization": "scrape-token-0123456789"})
        right = await client.get("/metrics", headers={"Authorization": "Bearer scrape-token-0123456789"})

    for refused in (missing, wrong, user_token):
        assert_error(refused, 401, "unauthorized")
        assert refused.headers["WWW-Authenticate"] == "Bearer"
    assert right.status_code == 200, right.text
    assert "onething_api_request_duration_seconds" in right.text


async def test_metrics_are_not_in_the_openapi_document(api):
    assert "/metrics" not in (await api.get("/openapi.json")).json()["paths"]


# --- the worker process's endpoints -------------------------------------------------------


async def test_the_worker_and_the_sdk_serve_their_metrics_after_a_case(
    env: WorkflowEnvironment, tmp_path: Path, task_queue: str
):
    settings = settings_for(
        tmp_path,
        task_queue=task_queue,
        temporal_address=env.client.service_client.config.target_host,
        worker_metrics_port=free_port(),
        temporal_metrics_port=free_port(),
    )
    engine: Engine = make_test_engine(settings.database_url)
    ensure_demo_accounts(engine, list(shipped_definitions().values()), secret=settings.secret_key)
    app = create_app(settings, temporal_client=env.client, engine=engine)
    # The worker as its process runs it: its own client, metrics server and SDK runtime.
    worker = asyncio.create_task(run_worker(settings))
    worker_url = f"http://127.0.0.1:{settings.worker_metrics_port}/metrics"
    sdk_url = f"http://127.0.0.1:{settings.temporal_metrics_port}/metrics"
    try:
        async with (
            app.router.lifespan_context(app),
            httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://onething.test") as api,
        ):
            cases = Cases(api, token_login(api))
            case = await cases.submit(channel="online")
            await cases.finish(case)
        async with httpx.AsyncClient(timeout=10) as scraper:
            worker_samples = parse((await scraper.get(worker_url)).text)
            sdk_text = (await scraper.get(sdk_url)).text
    finally:
        await terminate_cases(env.client, engine)
        worker.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await worker
        engine.dispose()

    def total(name: str, **labels: str) -> float:
        return sum(
            count
            for (sample_name, sample_labels), count in worker_samples.items()
            if sample_name == name and set(labels.items()) <= sample_labels
        )

    completed = {"outcome": "completed"}
    # A case writes the read model once per workflow task (write_case_changes, a local activity).
    assert total("onething_worker_activity_duration_seconds_count", activity="write_case_changes", **completed) > 0
    assert total("onething_worker_activity_duration_seconds_count", activity="fetch_shared_materials", **completed) > 0
    assert total("onething_read_model_write_duration_seconds_count", activity="write_case_changes", **completed) > 0
    assert total("onething_read_model_write_duration_seconds_count", activity="fetch_shared_materials") == 0
    assert total("onething_worker_activities_in_flight", activity="write_case_changes") == 0
    assert total("process_resident_memory_bytes") > 0
    # The SDK's own series, for this worker's task queue.
    sdk_series = [line for line in sdk_text.splitlines() if line.startswith("temporal_")]
    assert sdk_series
    assert any(f'task_queue="{task_queue}"' in line for line in sdk_series)
    # The worker's metrics server stops with it.
    with pytest.raises(httpx.ConnectError):
        async with httpx.AsyncClient(timeout=2) as scraper:
            await scraper.get(worker_url)

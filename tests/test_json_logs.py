"""Structured logs: one JSON object a line, naming the case, step and department the
record is about (in the API's requests and the worker's activities), masked."""

from __future__ import annotations

import io
import json
import logging
import uuid
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path
from typing import Any, cast

import httpx
import pytest
from temporalio import activity, workflow
from temporalio.client import Client
from temporalio.testing import WorkflowEnvironment
from temporalio.worker import UnsandboxedWorkflowRunner, Worker

from api.main import create_app
from infra.logs import configure_logging, log_fields
from infra.temporal import with_observability
from infra.worker_telemetry import ACTIVITY_DURATION
from tests.conftest import test_settings as settings_for

ID_NUMBER = "330102199003070027"
PHONE = "13800001234"


def lines(stream: io.StringIO) -> list[dict[str, Any]]:
    return [json.loads(line) for line in stream.getvalue().splitlines() if line.strip()]


@pytest.fixture
def restore_logging() -> Iterator[None]:
    root = logging.getLogger()
    handlers, level, factory = list(root.handlers), root.level, logging.getLogRecordFactory()
    yield
    root.handlers[:] = handlers
    root.setLevel(level)
    logging.setLogRecordFactory(factory)


@pytest.fixture
def json_stream(tmp_path: Path, restore_logging: None) -> io.StringIO:
    stream = io.StringIO()
    configure_logging(settings_for(tmp_path, log_format="json"), stream=stream)
    return stream


def test_a_json_line_has_time_level_logger_message_and_the_case_and_step_of_its_context(json_stream):
    with log_fields(case_id="ot-0123456789abcdef0123", step="hukou_registration", department="police"):
        logging.getLogger("onething.test.json").warning("户口登记 for case started")
    logging.getLogger("onething.test.json").info("outside any case")

    inside, outside = lines(json_stream)
    assert inside["level"] == "WARNING" and inside["logger"] == "onething.test.json"
    assert inside["message"] == "户口登记 for case started"
    assert inside["time"].endswith("+00:00") and "T" in inside["time"]
    assert (inside["case_id"], inside["step"], inside["department"]) == (
        "ot-0123456789abcdef0123",
        "hukou_registration",
        "police",
    )
    assert "case_id" not in outside and "step" not in outside and outside["level"] == "INFO"


def test_extra_fields_name_the_case_of_one_record(json_stream):
    with log_fields(case_id="ot-outer"):
        logging.getLogger("onething.test.json").info("one step", extra={"case_id": "ot-inner", "step": "delivery"})

    (line,) = lines(json_stream)
    assert (line["case_id"], line["step"]) == ("ot-inner", "delivery")


def test_id_numbers_and_phones_in_a_message_or_an_exception_are_masked(json_stream):
    logger = logging.getLogger("onething.test.json")
    logger.warning("applicant %s phone %s", ID_NUMBER, PHONE)
    try:
        raise ValueError(f"bad id {ID_NUMBER}")
    except ValueError:
        logger.exception("lookup failed for %s", PHONE)

    output = json_stream.getvalue()
    assert ID_NUMBER not in output and PHONE not in output
    message, failure = lines(json_stream)
    assert message["message"] == "applicant 330102********0027 phone 138****1234"
    assert failure["message"] == "lookup failed for 138****1234"
    assert "bad id 330102********0027" in failure["exception"]


def test_text_stays_the_default_format_and_is_masked_too(tmp_path, restore_logging):
    stream = io.StringIO()
    configure_logging(settings_for(tmp_path), stream=stream)

    logging.getLogger("onething.test.text").warning("phone %s", PHONE)

    output = stream.getvalue()
    assert output.rstrip().endswith("WARNING onething.test.text phone 138****1234")
    with pytest.raises(json.JSONDecodeError):
        json.loads(output)


def test_configuring_again_replaces_the_handler_instead_of_adding_one(tmp_path, restore_logging):
    first, second = io.StringIO(), io.StringIO()
    configure_logging(settings_for(tmp_path, log_format="json"), stream=first)
    configure_logging(settings_for(tmp_path, log_format="json"), stream=second)

    logging.getLogger("onething.test.json").warning("once")

    assert first.getvalue() == "" and [line["message"] for line in lines(second)] == ["once"]


async def test_the_api_names_the_case_and_step_of_a_request_in_its_logs(json_stream, settings, engine):
    app = create_app(settings, temporal_client=cast(Client, object()), engine=engine)

    # A route like /tasks/{task_id}/complete: whatever it logs is about that task's case and step.
    def probe(task_id: str) -> dict[str, str]:
        logging.getLogger("onething.test.api").warning("probe reached, phone %s", PHONE)
        return {"task_id": task_id}

    app.add_api_route("/tasks/{task_id}/probe", probe, methods=["GET"])
    async with (
        app.router.lifespan_context(app),
        httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://onething.test") as client,
    ):
        response = await client.get("/tasks/ot-0123456789abcdef0123:police_registration/probe")
        assert response.status_code == 200, response.text
    logging.getLogger("onething.test.api").warning("after the request")

    probed = [line for line in lines(json_stream) if line["logger"] == "onething.test.api"]
    assert probed[0]["message"] == "probe reached, phone 138****1234"
    assert (probed[0]["case_id"], probed[0]["step"]) == ("ot-0123456789abcdef0123", "police_registration")
    assert "case_id" not in probed[1], "a request's context ends with it"


# --- the worker's activities -------------------------------------------------------------


@dataclass
class ProbeInput:
    case_id: str
    step: str
    department: str


@activity.defn(name="probe_log")
def probe_log(subject: ProbeInput) -> None:
    # A synchronous activity runs in the worker's thread pool.
    logging.getLogger("onething.test.activity").warning("probing, applicant %s", ID_NUMBER)


@workflow.defn(name="ProbeLogWorkflow")
class ProbeLogWorkflow:
    @workflow.run
    async def run(self, subject: ProbeInput) -> None:
        await workflow.execute_activity(probe_log, subject, start_to_close_timeout=timedelta(seconds=30))


async def test_an_activity_logs_its_case_step_and_department_and_is_timed(
    env: WorkflowEnvironment, json_stream, settings
):
    # A worker's client, as connect_temporal(settings, worker=True) makes it.
    client = with_observability(env.client, settings, worker=True)
    task_queue = f"probe-{uuid.uuid4().hex[:8]}"
    timed = ACTIVITY_DURATION.labels("probe_log", "regular", "completed")
    before = _count(timed)

    async with Worker(
        client,
        task_queue=task_queue,
        workflows=[ProbeLogWorkflow],
        activities=[probe_log],
        activity_executor=ThreadPoolExecutor(max_workers=2),
        workflow_runner=UnsandboxedWorkflowRunner(),
    ):
        await client.execute_workflow(
            ProbeLogWorkflow.run,
            ProbeInput("ot-fedcba9876543210fedc", "medical_insurance_enrollment", "medical_security"),
            id=f"probe-{uuid.uuid4().hex}",
            task_queue=task_queue,
        )

    (line,) = [line for line in lines(json_stream) if line["logger"] == "onething.test.activity"]
    assert line["message"] == "probing, applicant 330102********0027"
    assert (line["case_id"], line["step"], line["department"]) == (
        "ot-fedcba9876543210fedc",
        "medical_insurance_enrollment",
        "medical_security",
    )
    assert _count(timed) == before + 1


def _count(histogram: Any) -> float:
    return next(
        sample.value for metric in histogram.collect() for sample in metric.samples if sample.name.endswith("_count")
    )

"""NoticeDeliveryWorkflow end to end: a worker's round takes the outbox's due SMS to a real
HTTP sink (the API's dev sink, served by uvicorn on a free port) and marks it sent; a gateway
that cannot be reached leaves the row waiting without failing the round."""

from __future__ import annotations

import asyncio
import socket
import uuid
from collections.abc import AsyncIterator
from datetime import UTC, datetime
from pathlib import Path

import httpx
import pytest
import uvicorn
from sqlalchemy import Engine, select
from sqlmodel import Session
from temporalio.testing import WorkflowEnvironment

from activities.notice_delivery import sms_text
from api.main import create_app
from infra.sms import HttpSmsGateway
from models.notices import DeliverNoticesInput, DeliverNoticesResult
from models.tables import SmsOutboxRecord
from settings import Settings
from tests.conftest import running_worker
from tests.conftest import test_settings as settings_in
from workflows.notice_delivery import NoticeDeliveryWorkflow

PHONE = "13800000000"
CASE_NO = "2026-330000-000777"


@pytest.fixture
async def sink(tmp_path: Path, engine: Engine) -> AsyncIterator[str]:
    """The dev app's /dev/sms on 127.0.0.1 at a free port; yields the base URL."""
    settings = settings_in(tmp_path, env="dev")
    app = create_app(settings, engine=engine)
    app.state.settings, app.state.engine = settings, engine  # lifespan off: no Temporal, no demo accounts
    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=0, lifespan="off", log_level="warning"))
    serving = asyncio.create_task(server.serve())
    while not server.started:
        assert not serving.done(), "the sink did not start"
        await asyncio.sleep(0.02)
    port = server.servers[0].sockets[0].getsockname()[1]
    yield f"http://127.0.0.1:{port}"
    server.should_exit = True
    await serving


def _queue_sms(engine: Engine) -> SmsOutboxRecord:
    now = datetime.now(UTC)
    row = SmsOutboxRecord(
        id="ot-delivery-1:n1",
        case_id="ot-delivery-1",
        phone=PHONE,
        text=sms_text("case_completed", CASE_NO),
        kind="case_completed",
        next_attempt_at=now,
        created_at=now,
    )
    with Session(engine) as session:
        session.add(row)
        session.commit()
        session.refresh(row)
    return row


def _stored(engine: Engine) -> SmsOutboxRecord:
    with Session(engine) as session:
        return session.execute(select(SmsOutboxRecord)).scalar_one()


async def _round(env: WorkflowEnvironment, task_queue: str) -> DeliverNoticesResult:
    return await env.client.execute_workflow(
        NoticeDeliveryWorkflow.run,
        DeliverNoticesInput(),
        id=f"sms-delivery-test-{uuid.uuid4().hex[:8]}",
        task_queue=task_queue,
    )


async def test_a_round_sends_the_due_sms_to_the_sink_and_marks_it_sent(
    env: WorkflowEnvironment, settings: Settings, engine: Engine, task_queue: str, sink: str
) -> None:
    queued = _queue_sms(engine)
    gateway = HttpSmsGateway(f"{sink}/dev/sms", timeout_seconds=5)
    async with running_worker(env.client, settings, engine, task_queue, sms_gateway=gateway):
        result = await _round(env, task_queue)

    assert (result.sent, result.retrying, result.failed) == (1, 0, 0)
    assert result.ran_at is not None
    async with httpx.AsyncClient() as client:
        received = (await client.get(f"{sink}/dev/sms", params={"phone": PHONE})).json()
    assert [(m["phone"], m["text"]) for m in received] == [(PHONE, queued.text)]
    assert CASE_NO in received[0]["text"]
    row = _stored(engine)
    assert (row.status, row.attempts) == ("sent", 1)
    assert row.sent_at is not None


async def test_an_unreachable_gateway_leaves_the_sms_waiting_and_the_round_succeeds(
    env: WorkflowEnvironment, settings: Settings, engine: Engine, task_queue: str
) -> None:
    _queue_sms(engine)
    with socket.socket() as probe:  # a port nobody listens on
        probe.bind(("127.0.0.1", 0))
        closed_port = probe.getsockname()[1]
    gateway = HttpSmsGateway(f"http://127.0.0.1:{closed_port}/dev/sms", timeout_seconds=2)
    async with running_worker(env.client, settings, engine, task_queue, sms_gateway=gateway):
        result = await _round(env, task_queue)

    assert (result.sent, result.retrying, result.failed) == (0, 1, 0)
    row = _stored(engine)
    assert (row.status, row.attempts) == ("pending", 1)
    assert row.last_error is not None and "unreachable" in row.last_error
    assert row.next_attempt_at > datetime.now(UTC)

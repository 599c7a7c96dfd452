"""Shared fixtures: Temporal test servers, a worker per test on its own task queue,
a throwaway read-model database, and valid birth forms."""

from __future__ import annotations

import contextlib
import hashlib
import os
import stat
import uuid
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager
from datetime import datetime
from pathlib import Path
from typing import Any

import psycopg
import pytest
from sqlalchemy import Engine, make_url, select
from sqlmodel import Session, col
from temporalio.api.enums.v1 import IndexedValueType
from temporalio.api.operatorservice.v1 import AddSearchAttributesRequest
from temporalio.client import Client
from temporalio.service import RPCError
from temporalio.testing import WorkflowEnvironment
from temporalio.worker import Worker

from infra.actor_seal import ActorSealSigner, SealKeys
from infra.db import init_db, make_engine
from infra.temporal import build_data_converter
from models.case import CUSTOM_SEARCH_ATTRIBUTES
from models.tables import CaseRecord, ComplaintRecord
from settings import Settings, installed_binary
from worker import build_worker

# Debian's libfaketime (installed by `make test`), wherever the architecture puts it.
LIBFAKETIME = next(iter(sorted(Path("/usr/lib").glob("*/faketime/libfaketime.so.1"))), Path("/nonexistent"))


# The admin URL of a PostgreSQL server (`bash .ci/postgres.sh start` prints one). When set,
# each test's read model is a database of its own there, created by make_test_engine and
# dropped after the test; when unset, a SQLite file in the test's tmp_path.
TEST_POSTGRES_URL = os.environ.get("ONETHING_TEST_POSTGRES_URL")
TEST_DATABASE_PREFIX = "onething_test_"
_databases_of_this_test: set[str] = set()


def read_model_url(tmp_path: Path) -> str:
    """The read model of the test that owns ``tmp_path``: the same path gives the same database."""
    if not TEST_POSTGRES_URL:
        return f"sqlite:///{tmp_path / 'read-model.db'}"
    digest = hashlib.sha256(f"{os.getpid()}:{tmp_path}".encode()).hexdigest()[:24]
    return make_url(TEST_POSTGRES_URL).set(database=TEST_DATABASE_PREFIX + digest).render_as_string(False)


def _on_postgres_server(*statements: str) -> None:
    assert TEST_POSTGRES_URL
    with psycopg.connect(TEST_POSTGRES_URL, autocommit=True) as connection:
        for statement in statements:
            connection.execute(statement.encode())


def make_test_engine(database_url: str, migrate: bool = True) -> Engine:
    """An engine on a read model migrated to the newest revision; a test's PostgreSQL database is created first."""
    name = make_url(database_url).database or ""
    if TEST_POSTGRES_URL and name.startswith(TEST_DATABASE_PREFIX) and name not in _databases_of_this_test:
        _on_postgres_server(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)', f'CREATE DATABASE "{name}"')
        _databases_of_this_test.add(name)
    engine = make_engine(database_url)
    if migrate:
        init_db(engine)
    return engine


@pytest.fixture(autouse=True)
def _drop_test_databases() -> Iterator[None]:
    """Autouse, so set up before and torn down after every fixture that holds an engine."""
    yield
    names = sorted(_databases_of_this_test)
    _databases_of_this_test.clear()
    if names:
        # FORCE ends connections a test left open (an engine it did not dispose).
        _on_postgres_server(*(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)' for name in names))


def test_settings(tmp_path: Path, **overrides: Any) -> Settings:
    values: dict[str, Any] = {
        "env": "test",
        "database_url": read_model_url(tmp_path),
        "archive_dir": tmp_path / "archive",
        "file_store_dir": tmp_path / "files",
        "secret_key": "test-secret-key-that-is-long-enough-0123456789",
    }
    values.update(overrides)
    return Settings(**values)


# What every test client speaks: pydantic payloads, encrypted with the test settings' key.
TEST_DATA_CONVERTER = build_data_converter(test_settings(Path()))
# ...and seals each Update as the API does, so workers built from test settings accept them.
TEST_CLIENT_INTERCEPTORS = [ActorSealSigner(SealKeys.from_settings(test_settings(Path())))]


async def register_search_attributes(client: Client) -> None:
    await client.operator_service.add_search_attributes(
        AddSearchAttributesRequest(
            namespace=client.namespace,
            search_attributes={name: IndexedValueType.INDEXED_VALUE_TYPE_KEYWORD for name in CUSTOM_SEARCH_ATTRIBUTES},
        )
    )


@asynccontextmanager
async def time_skipping_env(
    starting_at: datetime | None = None, workdir: Path | None = None
) -> AsyncIterator[WorkflowEnvironment]:
    """A time-skipping test server; ``starting_at`` starts its clock on a chosen date
    (through libfaketime) so tests can cross real holidays of the 2026 calendar."""
    server = installed_binary("temporal-test-server")
    if starting_at is not None:
        if not LIBFAKETIME.exists():
            raise RuntimeError("libfaketime is missing: `make test` installs Debian's libfaketime")
        assert workdir is not None
        wrapper = workdir / f"test-server-{uuid.uuid4().hex[:8]}.sh"
        stamp = starting_at.astimezone(tz=None).strftime("%Y-%m-%d %H:%M:%S")
        wrapper.write_text(
            f'#!/bin/sh\nexport LD_PRELOAD={LIBFAKETIME}\nexport FAKETIME="@{stamp}"\nexec "{server}" "$@"\n'
        )
        wrapper.chmod(wrapper.stat().st_mode | stat.S_IEXEC)
        server = str(wrapper)
    env = await WorkflowEnvironment.start_time_skipping(
        test_server_existing_path=server, data_converter=TEST_DATA_CONVERTER, interceptors=TEST_CLIENT_INTERCEPTORS
    )
    try:
        await register_search_attributes(env.client)
        yield env
    finally:
        await env.shutdown()


@pytest.fixture(scope="session")
async def env() -> AsyncIterator[WorkflowEnvironment]:
    async with time_skipping_env() as environment:
        yield environment


@pytest.fixture(scope="module")
async def module_env() -> AsyncIterator[WorkflowEnvironment]:
    """A test server for one module alone, for modules that skip the clock by days: on the
    session's shared server that would fire the timers of every case earlier tests started."""
    async with time_skipping_env() as environment:
        yield environment


@pytest.fixture
def settings(tmp_path: Path) -> Settings:
    return test_settings(tmp_path)


@pytest.fixture
def engine(settings: Settings) -> Iterator[Engine]:
    engine = make_test_engine(settings.database_url)
    yield engine
    engine.dispose()


@pytest.fixture
def task_queue() -> str:
    return f"cases-{uuid.uuid4().hex[:12]}"


async def terminate_cases(client: Client, engine: Engine) -> None:
    """End the cases and complaints a test left running: on the shared time-skipping
    server a forgotten workflow's timers would otherwise hold the clock for later tests."""
    with Session(engine) as session:
        workflow_ids = list(session.execute(select(col(CaseRecord.case_id))).scalars())
        workflow_ids += list(session.execute(select(col(ComplaintRecord.complaint_id))).scalars())
    for workflow_id in workflow_ids:
        with contextlib.suppress(RPCError):  # already closed
            await client.get_workflow_handle(workflow_id).terminate(reason="test finished")


@asynccontextmanager
async def running_worker(
    client: Client, settings: Settings, engine: Engine, task_queue: str, **options: Any
) -> AsyncIterator[Worker]:
    worker = build_worker(client, settings, engine, task_queue=task_queue, **options)
    async with worker:
        yield worker


@pytest.fixture
def tmp_workdir(tmp_path: Path) -> Path:
    os.makedirs(tmp_path, exist_ok=True)
    return tmp_path

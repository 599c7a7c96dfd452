"""API test fixtures: the app on ASGITransport, a worker on its own task queue, logins."""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from pathlib import Path

import httpx
import pytest
from fastapi import FastAPI
from sqlalchemy import Engine
from temporalio.testing import WorkflowEnvironment

from api.accounts import ensure_demo_accounts
from api.main import create_app
from domain.catalogue import shipped_definitions
from settings import Settings
from tests.api.helpers import Cases, token_login
from tests.conftest import make_test_engine, running_worker, terminate_cases, test_settings

Login = Callable[[str], Awaitable[dict[str, str]]]


@pytest.fixture
def api_settings(tmp_path: Path, task_queue: str) -> Settings:
    return test_settings(tmp_path, task_queue=task_queue, max_body_bytes=64 * 1024)


@pytest.fixture
async def api_app(
    env: WorkflowEnvironment, api_settings: Settings, engine: Engine, task_queue: str
) -> AsyncIterator[FastAPI]:
    """The app, its lifespan entered, with a worker on the test's own task queue."""
    ensure_demo_accounts(engine, list(shipped_definitions().values()), secret=api_settings.secret_key)
    app = create_app(api_settings, temporal_client=env.client, engine=engine)
    async with running_worker(env.client, api_settings, engine, task_queue), app.router.lifespan_context(app):
        yield app
        await terminate_cases(env.client, engine)


@pytest.fixture
async def api(api_app: FastAPI) -> AsyncIterator[httpx.AsyncClient]:
    transport = httpx.ASGITransport(app=api_app)
    async with httpx.AsyncClient(transport=transport, base_url="http://onething.test") as client:
        yield client


@pytest.fixture
def engine(api_settings: Settings) -> Iterator[Engine]:
    engine = make_test_engine(api_settings.database_url)
    yield engine
    engine.dispose()


@pytest.fixture
def login(api: httpx.AsyncClient) -> Login:
    return token_login(api)


@pytest.fixture
def cases(api: httpx.AsyncClient, login: Login) -> Cases:
    return Cases(api, login)

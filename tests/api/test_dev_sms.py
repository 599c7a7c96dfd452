"""The dev SMS sink: what the worker's gateway posts in dev, read back by phone; absent elsewhere."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import httpx
import pytest
from sqlalchemy import Engine

from api.main import create_app
from tests.conftest import test_settings as settings_in

PHONE = "13800000000"


def _client(tmp_path: Path, engine: Engine, env: str) -> httpx.AsyncClient:
    settings = settings_in(tmp_path, env=env)
    app = create_app(settings, engine=engine)
    # The sink needs the engine alone: set it as the lifespan would, without starting Temporal
    # or (in dev) making the demo accounts.
    app.state.settings, app.state.engine = settings, engine
    return httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://onething.test")


@pytest.fixture
async def dev_api(tmp_path: Path, engine: Engine) -> AsyncIterator[httpx.AsyncClient]:
    async with _client(tmp_path, engine, "dev") as client:
        yield client


async def test_a_posted_sms_is_read_back_by_its_phone_newest_first(dev_api: httpx.AsyncClient) -> None:
    for phone, text in [(PHONE, "【一件事】第一条"), ("13900000001", "【一件事】别人的"), (PHONE, "【一件事】第二条")]:
        answer = await dev_api.post("/dev/sms", json={"phone": phone, "text": text})
        assert answer.status_code == 201, answer.text
        assert answer.json()["text"] == text

    answer = await dev_api.get("/dev/sms", params={"phone": PHONE})

    assert answer.status_code == 200
    messages = answer.json()
    assert [(m["phone"], m["text"]) for m in messages] == [(PHONE, "【一件事】第二条"), (PHONE, "【一件事】第一条")]
    assert all(m["at"] for m in messages)
    everyone = (await dev_api.get("/dev/sms")).json()
    assert len(everyone) == 3


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"phone": "12345", "text": "短信"}, "phone"),
        ({"phone": "1380000000a", "text": "短信"}, "phone"),
        ({"phone": PHONE, "text": ""}, "text"),
        ({"phone": PHONE, "text": "长" * 501}, "text"),
    ],
)
async def test_bad_input_is_refused_naming_the_field(
    dev_api: httpx.AsyncClient, body: dict[str, str], field: str
) -> None:
    answer = await dev_api.post("/dev/sms", json=body)
    assert answer.status_code == 422
    error = answer.json()["error"]
    assert error["code"] == "validation_error" and field in error["fields"]
    assert (await dev_api.get("/dev/sms")).json() == []


async def test_outside_dev_there_is_no_sink(tmp_path: Path, engine: Engine) -> None:
    async with _client(tmp_path, engine, "test") as api:
        assert (await api.post("/dev/sms", json={"phone": PHONE, "text": "短信"})).status_code == 404
        assert (await api.get("/dev/sms", params={"phone": PHONE})).status_code == 404

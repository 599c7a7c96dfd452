"""The inbox change feed: GET /tasks answers an ETag (304 on If-None-Match) derived from the
departments' inbox versions, which the projection bumps in the transaction that changes their
tasks; GET /tasks/events streams that ETag as it changes, from one watcher per API process.

Cases are projected straight into the read model (no workflow), as the worker's activity would.
The streams are read from the ASGI app as they arrive: httpx's ASGITransport waits for the
whole body, and a stream has none.
"""

from __future__ import annotations

import asyncio
import json
import re
import signal
from collections.abc import AsyncIterator, MutableMapping
from datetime import UTC, datetime
from typing import Any

import httpx
import pytest
from fastapi import FastAPI
from sqlalchemy import event
from sqlmodel import Session, select

from activities.read_model import apply_projection, bump_inbox_versions
from api import inbox_feed
from api.accounts import ensure_demo_accounts
from api.console.base import SESSION_COOKIE
from api.main import create_app
from domain.catalogue import shipped_definitions
from models.case import CaseSnapshot, EventType, ProjectCaseInput, StepStatus
from models.tables import CaseRecord, InboxVersion
from tests.api.console_client import console_users
from tests.api.helpers import CALENDAR, assert_error, project_single_step_case, token_login
from tests.conftest import test_settings as settings_for

WATCH_INTERVAL = 0.05
QUIET = 0.5  # ten watcher reads: long enough for a change to have been announced
ETAG = re.compile(r'^"[0-9a-f]{32}"$')


@pytest.fixture
def api_settings(tmp_path, task_queue):
    return settings_for(
        tmp_path, task_queue=task_queue, max_body_bytes=64 * 1024, inbox_watch_interval_seconds=WATCH_INTERVAL
    )


@pytest.fixture
async def app(env, api_settings, engine) -> AsyncIterator[FastAPI]:
    """The app with its lifespan running (so its inbox watcher runs); no worker: cases are projected directly."""
    ensure_demo_accounts(engine, list(shipped_definitions().values()), secret=api_settings.secret_key)
    app = create_app(api_settings, temporal_client=env.client, engine=engine)
    async with app.router.lifespan_context(app):
        yield app


@pytest.fixture
async def api(app) -> AsyncIterator[httpx.AsyncClient]:
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://onething.test") as client:
        yield client


@pytest.fixture
def login(api):
    return token_login(api)


# --- helpers -----------------------------------------------------------------------------------

_opened = 0


def open_task(engine, department: str, step: str = "step") -> str:
    """Project a new single-step case whose task is open in ``department``; its case id."""
    global _opened
    _opened += 1
    case_id = f"ot-feed-{department}-{_opened}"
    project_single_step_case(
        engine,
        case_id,
        step,
        department,
        [(EventType.OPENED, "2026-11-23T09:00", "2026-11-24T00:00")],
    )
    return case_id


def reproject(engine, case_id: str, **step_changes: Any) -> None:
    """Project the case again at the next revision, its one step changed as given (or not at all)."""
    with Session(engine) as session:
        record = session.get(CaseRecord, case_id)
        assert record is not None
        snapshot = CaseSnapshot.model_validate(record.snapshot)
    step = snapshot.steps[0].model_copy(update=step_changes)
    snapshot = snapshot.model_copy(update={"revision": snapshot.revision + 1, "steps": [step]})
    with Session(engine) as session:
        apply_projection(session, ProjectCaseInput(snapshot=snapshot, events=[]), CALENDAR)
        session.commit()


def versions(engine) -> dict[str, int]:
    with Session(engine) as session:
        return {row.department: row.version for row in session.exec(select(InboxVersion))}


async def etag_of(api, login, user: str, **params: str) -> str:
    response = await api.get("/tasks", params=params, headers=await login(user))
    assert response.status_code == 200, response.text
    etag: str = response.headers["etag"]
    return etag


class EventStream:
    """A GET answered with Server-Sent Events, read from the ASGI app as it arrives."""

    def __init__(self, app: FastAPI, url: str, headers: dict[str, str] | None = None) -> None:
        path, _, query = url.partition("?")
        self.scope = {
            "type": "http",
            "asgi": {"version": "3.0", "spec_version": "2.3"},  # as uvicorn's: the app listens for the disconnect
            "http_version": "1.1",
            "method": "GET",
            "scheme": "http",
            "path": path,
            "raw_path": path.encode(),
            "query_string": query.encode(),
            "root_path": "",
            "headers": [(b"host", b"onething.test")]
            + [(name.lower().encode(), value.encode()) for name, value in (headers or {}).items()],
            "client": ("127.0.0.1", 50000),
            "server": ("onething.test", 80),
        }
        self.app = app
        self.messages: asyncio.Queue[MutableMapping[str, Any]] = asyncio.Queue()
        self.disconnected = asyncio.Event()
        self.status = 0
        self.headers: dict[str, str] = {}
        self.ended = False
        self._buffer = ""
        self._requested = False

    async def _receive(self) -> dict[str, Any]:
        if not self._requested:
            self._requested = True
            return {"type": "http.request", "body": b"", "more_body": False}
        await self.disconnected.wait()
        return {"type": "http.disconnect"}

    async def _send(self, message: MutableMapping[str, Any]) -> None:
        await self.messages.put(message)

    async def __aenter__(self) -> EventStream:
        self.task = asyncio.create_task(self.app(self.scope, self._receive, self._send))
        # Bounded generously: on a loaded machine two streams opened back to back wait for the
        # session check and the watcher's first read before their response starts.
        start = await asyncio.wait_for(self.messages.get(), 15)
        assert start["type"] == "http.response.start"
        self.status = start["status"]
        self.headers = {name.decode().lower(): value.decode() for name, value in start["headers"]}
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        self.disconnected.set()
        await asyncio.wait_for(self.task, 5)

    async def body(self) -> str:
        """The whole body of a response that ends (an error answered instead of a stream)."""
        while not self.ended:
            await self._read(5)
        return self._buffer

    async def _read(self, timeout: float) -> None:
        message = await asyncio.wait_for(self.messages.get(), timeout)
        assert message["type"] == "http.response.body"
        self._buffer += message.get("body", b"").decode()
        self.ended = not message.get("more_body", False)

    async def next_block(self, timeout: float = 5.0) -> str | None:
        """The next event or comment, as its raw lines; None when the stream has ended."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        while "\n\n" not in self._buffer:
            if self.ended:
                return None
            await self._read(max(0.0, deadline - loop.time()))
        block, self._buffer = self._buffer.split("\n\n", 1)
        return block

    async def next_event(self, timeout: float = 5.0) -> dict[str, Any]:
        """The next event (comments skipped) as {"event": ..., "data": parsed JSON}."""
        while True:
            block = await self.next_block(timeout)
            assert block is not None, "the stream ended"
            if not block.startswith(":"):
                fields = dict(line.split(": ", 1) for line in block.split("\n"))
                return {"event": fields.get("event"), "data": json.loads(fields["data"])}

    async def assert_quiet(self, seconds: float = QUIET) -> None:
        """No event (a comment would be a heartbeat, not news) within ``seconds``."""
        try:
            got = await self.next_event(seconds)
        except TimeoutError:
            return
        raise AssertionError(f"unexpected event {got}")


async def stream(app, login, user: str, url: str = "/tasks/events") -> EventStream:
    return EventStream(app, url, await login(user))


# --- the ETag of GET /tasks --------------------------------------------------------------------


async def test_inbox_answers_a_strong_etag_and_asks_private_caches_to_revalidate(api, login):
    response = await api.get("/tasks", headers=await login("police_officer"))

    assert response.status_code == 200
    assert ETAG.match(response.headers["etag"]), response.headers["etag"]
    assert response.headers["cache-control"] == "private, no-cache"
    assert "authorization" in response.headers["vary"].lower()


async def test_a_repeat_with_if_none_match_is_304_without_a_body(api, login, engine):
    open_task(engine, "police")
    headers = await login("police_officer")
    first = await api.get("/tasks", headers=headers)

    again = await api.get("/tasks", headers={**headers, "If-None-Match": first.headers["etag"]})
    listed = await api.get("/tasks", headers={**headers, "If-None-Match": f'"other", W/{first.headers["etag"]}'})
    anything = await api.get("/tasks", headers={**headers, "If-None-Match": "*"})

    assert again.status_code == 304
    assert again.content == b""
    assert again.headers["etag"] == first.headers["etag"]
    assert again.headers["cache-control"] == "private, no-cache"
    assert listed.status_code == 304  # one of a list, weakly compared (RFC 9110)
    assert anything.status_code == 304


async def test_a_stale_if_none_match_gets_the_list_and_the_new_etag(api, login, engine):
    headers = await login("police_officer")
    before = await api.get("/tasks", headers=headers)
    case_id = open_task(engine, "police")

    response = await api.get("/tasks", headers={**headers, "If-None-Match": before.headers["etag"]})

    assert response.status_code == 200
    assert response.headers["etag"] != before.headers["etag"]
    assert [item["case_id"] for item in response.json()["items"]] == [case_id]


async def test_police_inbox_etag_changes_when_a_police_task_changes(api, login, engine):
    police, hospital = await etag_of(api, login, "police_officer"), await etag_of(api, login, "hospital_officer")

    open_task(engine, "police")

    assert await etag_of(api, login, "police_officer") != police
    assert await etag_of(api, login, "hospital_officer") == hospital


async def test_police_inbox_etag_changes_when_a_police_task_is_claimed_or_its_due_time_moves(api, login, engine):
    case_id = open_task(engine, "police")
    opened = await etag_of(api, login, "police_officer")

    reproject(engine, case_id, status=StepStatus.CLAIMED, assignee="police_officer")
    claimed = await etag_of(api, login, "police_officer")
    reproject(engine, case_id, due_at=datetime(2026, 11, 25, tzinfo=UTC))
    moved = await etag_of(api, login, "police_officer")

    assert len({opened, claimed, moved}) == 3


async def test_reprojecting_a_case_whose_tasks_did_not_change_leaves_the_inbox_versions_alone(api, login, engine):
    case_id = open_task(engine, "police")
    before, etag = versions(engine), await etag_of(api, login, "police_officer")

    reproject(engine, case_id)  # a newer revision (e.g. a rating), the same task

    assert versions(engine) == before == {"police": 1}
    assert await etag_of(api, login, "police_officer") == etag


async def test_different_filters_and_callers_answer_different_etags(api, login, engine):
    open_task(engine, "police")
    open_task(engine, "hospital")

    etags = {
        "officer, default": await etag_of(api, login, "police_officer"),
        "officer, open only": await etag_of(api, login, "police_officer", status="open"),
        "officer, 10 a page": await etag_of(api, login, "police_officer", limit="10"),
        "officer, second page": await etag_of(api, login, "police_officer", offset="50"),
        "another department's officer": await etag_of(api, login, "hospital_officer"),
        "the clerk of a unit": await etag_of(api, login, "hospital_clerk"),
        "supervisor, every department": await etag_of(api, login, "supervisor"),
        "supervisor, police": await etag_of(api, login, "supervisor", department="police"),
        "admin, every department": await etag_of(api, login, "admin"),
    }

    assert len(set(etags.values())) == len(etags), etags
    # Naming one's own department is the same listing as the default, so the same ETag.
    assert await etag_of(api, login, "police_officer", department="police") == etags["officer, default"]


async def test_another_departments_inbox_is_still_403_whatever_if_none_match_says(api, login):
    response = await api.get(
        "/tasks", params={"department": "hospital"}, headers={**await login("police_officer"), "If-None-Match": "*"}
    )

    assert_error(response, 403, "forbidden")


async def test_one_statement_bumps_every_department_a_write_changes(engine):
    statements: list[str] = []

    def record(_connection, _cursor, statement, *_args) -> None:
        if "inbox_versions" in statement:
            statements.append(statement)

    event.listen(engine, "before_cursor_execute", record)
    try:
        with Session(engine) as session:
            bump_inbox_versions(session, {"police", "hospital", "medical_security"})
            session.commit()
        with Session(engine) as session:
            bump_inbox_versions(session, {"police", "hospital"})
            bump_inbox_versions(session, set())  # nothing changed: no statement
            session.commit()
    finally:
        event.remove(engine, "before_cursor_execute", record)

    assert versions(engine) == {"police": 2, "hospital": 2, "medical_security": 1}
    assert len(statements) == 2
    assert all(statement.lstrip().upper().startswith("INSERT") for statement in statements)


# --- GET /tasks/events -------------------------------------------------------------------------


async def test_events_stream_sends_the_inbox_etag_on_connect(app, api, login):
    etag = await etag_of(api, login, "police_officer")

    async with await stream(app, login, "police_officer") as events:
        assert events.status == 200
        assert events.headers["content-type"].startswith("text/event-stream")
        assert events.headers["cache-control"] == "no-cache"
        first = await events.next_event()

    assert first == {"event": "inbox", "data": {"etag": etag}}


async def test_events_stream_sends_a_new_etag_when_a_police_task_changes(app, api, login, engine):
    async with await stream(app, login, "police_officer") as events:
        first = await events.next_event()
        case_id = open_task(engine, "police")
        second = await events.next_event()
        reproject(engine, case_id, status=StepStatus.CLAIMED, assignee="police_officer")
        third = await events.next_event()

    assert second["event"] == "inbox"
    assert len({first["data"]["etag"], second["data"]["etag"], third["data"]["etag"]}) == 3
    assert third["data"]["etag"] == await etag_of(api, login, "police_officer")


async def test_another_departments_change_sends_nothing_to_the_police_stream(app, login, engine):
    async with await stream(app, login, "police_officer") as events:
        await events.next_event()
        open_task(engine, "hospital")
        await events.assert_quiet()
        open_task(engine, "police")  # still listening
        assert (await events.next_event())["event"] == "inbox"


async def test_a_supervisors_stream_covers_every_department_unless_filtered(app, login, engine):
    async with (
        await stream(app, login, "supervisor") as everything,
        await stream(app, login, "supervisor", "/tasks/events?department=police") as police,
    ):
        await everything.next_event()
        await police.next_event()

        open_task(engine, "hospital")

        assert (await everything.next_event())["event"] == "inbox"
        await police.assert_quiet()


async def test_events_stream_follows_the_query_it_is_given(app, api, login):
    etag = await etag_of(api, login, "police_officer", status="claimed", limit="10")

    async with await stream(app, login, "police_officer", "/tasks/events?status=claimed&limit=10") as events:
        first = await events.next_event()

    assert first["data"]["etag"] == etag


async def test_events_stream_without_login_is_401_in_the_error_shape(api):
    response = await api.get("/tasks/events")

    assert_error(response, 401, "unauthorized")


async def test_events_stream_keeps_the_inbox_rules(api, login):
    applicant = await api.get("/tasks/events", headers=await login("applicant1"))
    other_department = await api.get(
        "/tasks/events", params={"department": "hospital"}, headers=await login("police_officer")
    )

    assert_error(applicant, 403, "forbidden")
    assert_error(other_department, 403, "forbidden")


async def test_events_stream_accepts_the_console_session_cookie(app, api, login):
    async with console_users(api) as browser:
        officer = await browser("police_officer")
        cookie = officer.client.cookies[SESSION_COOKIE]
    etag = await etag_of(api, login, "police_officer")

    async with EventStream(app, "/tasks/events", {"Cookie": f"{SESSION_COOKIE}={cookie}"}) as events:
        first = await events.next_event()

    assert first["data"]["etag"] == etag


async def test_an_idle_stream_sends_keep_alive_comments(app, login, monkeypatch):
    monkeypatch.setattr(inbox_feed, "HEARTBEAT_SECONDS", 0.1)

    async with await stream(app, login, "police_officer") as events:
        await events.next_event()
        comment = await events.next_block(2)

    assert comment == ": keep-alive"


async def test_an_open_stream_ends_when_its_session_is_revoked(app, api, login, monkeypatch):
    monkeypatch.setattr(inbox_feed, "HEARTBEAT_SECONDS", 0.1)
    headers = await login("police_officer")
    admin = await login("admin")

    async with EventStream(app, "/tasks/events", headers) as events:
        await events.next_event()
        assert await events.next_block(2) == ": keep-alive"  # the session is live: it streams on
        revoked = await api.post("/accounts/police_officer/sessions/revoke", headers=admin)
        assert revoked.status_code == 204, revoked.text
        # This process learns of the end at once; the stream stops at its next heartbeat at the latest.
        blocks = [await events.next_block(2) for _ in range(2)]

    assert None in blocks and events.ended


async def test_a_disconnected_client_leaves_no_subscription_behind(app, login):
    watcher = app.state.inbox_watcher
    async with await stream(app, login, "police_officer") as events:
        await events.next_event()
        assert watcher.subscriptions == 1

    assert watcher.subscriptions == 0


async def test_many_streams_share_the_watchers_one_query(app, login, engine):
    reads: list[str] = []

    def record(_connection, _cursor, statement, *_args) -> None:
        if "FROM inbox_versions" in statement:
            reads.append(statement)

    opened = [await stream(app, login, user) for user in ["police_officer", "hospital_officer", "supervisor"] * 5]
    for events in opened:
        await events.__aenter__()
        await events.next_event()
    event.listen(engine, "before_cursor_execute", record)
    try:
        await asyncio.sleep(QUIET)
    finally:
        event.remove(engine, "before_cursor_execute", record)
        for events in opened:
            await events.__aexit__(None, None, None)

    # One read per interval for the process: 15 streams polling would read 15 times as often.
    assert 1 <= len(reads) <= QUIET / WATCH_INTERVAL + 2, len(reads)


async def _police_headers(app: FastAPI) -> dict[str, str]:
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://onething.test") as api:
        return await token_login(api)("police_officer")


async def test_streams_end_when_the_app_shuts_down(env, api_settings, engine):
    ensure_demo_accounts(engine, list(shipped_definitions().values()), secret=api_settings.secret_key)
    app = create_app(api_settings, temporal_client=env.client, engine=engine)
    async with app.router.lifespan_context(app):
        events = EventStream(app, "/tasks/events", await _police_headers(app))
        await events.__aenter__()
        await events.next_event()

    assert await events.next_block(5) is None  # the body ended
    await events.__aexit__(None, None, None)


async def test_an_exit_signal_ends_the_streams_then_reaches_the_servers_own_handler(env, api_settings, engine):
    """uvicorn waits for open responses before it shuts the app down: SIGTERM must end the streams first."""
    received: list[int] = []

    def server_handler(number: int, _frame: object) -> None:
        received.append(number)

    original = signal.signal(signal.SIGTERM, server_handler)
    try:
        ensure_demo_accounts(engine, list(shipped_definitions().values()), secret=api_settings.secret_key)
        app = create_app(api_settings, temporal_client=env.client, engine=engine)
        async with (
            app.router.lifespan_context(app),
            EventStream(app, "/tasks/events", await _police_headers(app)) as events,
        ):
            await events.next_event()

            handler = signal.getsignal(signal.SIGTERM)
            assert callable(handler) and handler is not server_handler
            handler(signal.SIGTERM, None)  # as the signal would

            assert await events.next_block(5) is None  # the body ended
            assert received == [signal.SIGTERM]
        assert signal.getsignal(signal.SIGTERM) is server_handler  # put back when the app stopped
    finally:
        signal.signal(signal.SIGTERM, original)


# --- the console -------------------------------------------------------------------------------


async def test_console_inbox_page_carries_its_listing_etag_feed_and_script(api, login, engine):
    open_task(engine, "police")
    async with console_users(api) as browser:
        officer = await browser("police_officer")
        page = await officer.get("/inbox")
        script = await officer.client.get("/static/inbox-live.js")

    live = re.search(r'id="inbox-live" data-inbox-etag="([^"]*)" data-inbox-events="([^"]*)"', page.html)
    assert live is not None, page.html
    assert live.group(1).replace("&#34;", '"') == await etag_of(api, login, "police_officer")
    assert live.group(2).replace("&amp;", "&") == "/tasks/events?limit=50&offset=0"
    assert '<script src="/static/inbox-live.js" defer></script>' in page.html
    assert "<script>" not in page.html  # nothing inline: the page works under a strict CSP
    assert page.one("inbox-live-notice").text.strip() == "待办有更新"
    assert script.status_code == 200
    assert "javascript" in script.headers["content-type"]
    assert "EventSource" in script.text


async def test_a_supervisors_console_inbox_follows_its_units_follow_up_tasks(api, login):
    async with console_users(api) as browser:
        supervisor = await browser("supervisor")
        page = await supervisor.get("/inbox", status="open")

    live = re.search(r'data-inbox-etag="([^"]*)" data-inbox-events="([^"]*)"', page.html)
    assert live is not None
    assert live.group(2).replace("&amp;", "&") == "/tasks/events?limit=50&offset=0&status=open&department=supervision"
    etag = await etag_of(api, login, "supervisor", status="open", department="supervision", limit="50")
    assert live.group(1).replace("&#34;", '"') == etag

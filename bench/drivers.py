"""The benchmark's load: who submits the cases and who works their steps.

- ``RawDriver``: the bare Temporal client drives bench/raw_case.py's workflows: it
  starts one and, step by step in dependency order, sends a ``complete`` Update
  (``RawBirthCase``), or a ``claim`` and then a ``complete`` Update
  (``RawSameInteractionCase``, the same interaction as OneThing's officers).
- ``FullPathDriver``: applicants submit birth cases over HTTP to the real API; one
  simulated officer desk per department works its inbox (claim, complete). A desk
  learns of new tasks from the server's inbox change feed when it offers one
  (``GET /tasks/events``, Server-Sent Events) and polls ``GET /tasks`` otherwise;
  either way ``GET /tasks`` is asked with ``If-None-Match`` and a 304 means unchanged.

Every HTTP request the driver sends is counted by route (``RequestCounter``).
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import json
import re
import time
import uuid
from collections import Counter
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from typing import Any, Literal

import httpx
from temporalio.client import Client, WorkflowHandle

from bench.raw_case import RawBirthCase, RawCaseInput, RawSameInteractionCase, RawStep
from domain.catalogue import shipped_definitions
from domain.samples import another_newborn, sample_result

CASE_BOUND_SECONDS = 300.0  # a case not completed by then counts as an error
OFFICERS = {
    "hospital": "hospital_officer",
    "police": "police_officer",
    "medical_security": "medical_security_officer",
    "hr_social_security": "hr_social_security_officer",
}
POLL_PAUSE_SECONDS = 0.05  # a polling desk's pause when its inbox held nothing new
# An SSE desk reads its inbox on every change event, and at least this often besides
# (a task whose claim failed is picked up again, a lost event costs a second at most).
FEED_RESYNC_SECONDS = 1.0

# A desk's inbox listing, and its change feed's (the feed's ETags are the listing's).
INBOX_QUERY = {"limit": 200}
# A desk's connections: its claims and completions in hand (the harness allows 32), its
# change-feed stream and its inbox reads.
DESK_CONNECTIONS = 40
# A desk drops an idle connection before the server would (uvicorn closes after 5 s), so it
# rarely sends on a connection the server is closing; when it does, the keyed request is
# sent once more (browsers retry the same way; the Idempotency-Key makes it safe).
KEEPALIVE_EXPIRY_SECONDS = 3.0
CONNECT_RETRIES = 2
STALE_CONNECTION_ERRORS = (httpx.RemoteProtocolError, httpx.ReadError)

InboxFeed = Literal["sse", "poll"]


@dataclass
class Samples:
    """What one scenario measured, in seconds."""

    submit: list[float] = field(default_factory=list)
    claim: list[float] = field(default_factory=list)
    complete: list[float] = field(default_factory=list)
    e2e: list[float] = field(default_factory=list)
    errors: int = 0
    cases_completed: int = 0
    steps_completed: int = 0
    case_ids: list[str] = field(default_factory=list)
    error_kinds: dict[str, int] = field(default_factory=dict)
    # Requests sent once more because the kept-alive connection they went out on was closing.
    resent: dict[str, int] = field(default_factory=dict)

    def error(self, kind: str) -> None:
        self.errors += 1
        self.error_kinds[kind] = self.error_kinds.get(kind, 0) + 1

    def resend(self, action: str) -> None:
        self.resent[action] = self.resent.get(action, 0) + 1


# -- raw baselines --------------------------------------------------------------------


class RawDriver:
    """Starts raw workflows and completes their steps with Updates, in dependency order;
    with ``claim`` each step is claimed by one Update and completed by another."""

    def __init__(
        self, client: Client, task_queue: str, steps: list[RawStep], timer_seconds: float, claim: bool = False
    ) -> None:
        self.client = client
        self.task_queue = task_queue
        self.steps = steps
        self.timer_seconds = timer_seconds
        self.claim = claim

    async def run_case(self, samples: Samples) -> None:
        workflow_id = f"{'raw-same' if self.claim else 'raw'}-{uuid.uuid4().hex[:16]}"
        case = RawCaseInput(steps=self.steps, timer_seconds=self.timer_seconds)
        begun = time.perf_counter()
        try:
            handle: WorkflowHandle[Any, Any]
            if self.claim:
                handle = await self.client.start_workflow(
                    RawSameInteractionCase.run, case, id=workflow_id, task_queue=self.task_queue
                )
            else:
                handle = await self.client.start_workflow(
                    RawBirthCase.run, case, id=workflow_id, task_queue=self.task_queue
                )
            samples.submit.append(time.perf_counter() - begun)
            done: set[str] = set()
            while len(done) < len(self.steps):
                ready = [s.code for s in self.steps if s.code not in done and set(s.depends_on) <= done]
                await asyncio.gather(*(self._work(handle, code, samples) for code in ready))
                done.update(ready)
            await handle.result()
        except Exception as exc:  # a benchmark counts failures; it doesn't stop on them
            samples.error(type(exc).__name__)
            return
        samples.e2e.append(time.perf_counter() - begun)
        samples.cases_completed += 1
        samples.case_ids.append(workflow_id)

    async def _work(self, handle: WorkflowHandle[Any, Any], step: str, samples: Samples) -> None:
        if self.claim:
            begun = time.perf_counter()
            await handle.execute_update(RawSameInteractionCase.claim, step)
            samples.claim.append(time.perf_counter() - begun)
            begun = time.perf_counter()
            await handle.execute_update(RawSameInteractionCase.complete, step)
        else:
            begun = time.perf_counter()
            await handle.execute_update(RawBirthCase.complete, step)
        samples.complete.append(time.perf_counter() - begun)
        samples.steps_completed += 1


# -- the full path over HTTP -----------------------------------------------------------


_ROUTE_PATTERNS = [
    (re.compile(r"^/tasks/[^/]+/(claim|complete|return|refuse)$"), r"/tasks/{task_id}/\1"),
    (re.compile(r"^/cases/[^/]+$"), "/cases/{case_id}"),
]


def route_of(request: httpx.Request) -> str:
    """'GET /cases/{case_id}' for 'GET /cases/B-123': a request's method and route template."""
    path = request.url.path
    for pattern, template in _ROUTE_PATTERNS:
        if pattern.match(path):
            path = pattern.sub(template, path)
            break
    return f"{request.method} {path}"


class RequestCounter:
    """Every request an httpx client sends, by route (install as its request event hook)."""

    def __init__(self) -> None:
        self.by_route: Counter[str] = Counter()

    async def __call__(self, request: httpx.Request) -> None:
        self.by_route[route_of(request)] += 1

    def snapshot(self) -> Counter[str]:
        return Counter(self.by_route)

    def since(self, before: Counter[str]) -> dict[str, int]:
        """Requests by route sent since ``before`` (a snapshot)."""
        return {route: count for route, count in sorted((self.by_route - before).items()) if count}


def _bare_etag(value: str | None) -> str | None:
    """'W/"abc"' and '"abc"' are the same version of the inbox as 'abc'."""
    if value is None:
        return None
    return value.removeprefix("W/").strip('"')


async def server_sent_events(lines: AsyncIterator[str]) -> AsyncIterator[tuple[str, str]]:
    """(event, data) for each event of a text/event-stream (comments and ids skipped)."""
    event, data = "message", list[str]()
    async for line in lines:
        if not line:
            if data:
                yield event, "\n".join(data)
            event, data = "message", []
        elif line.startswith(":"):
            continue
        else:
            name, _, value = line.partition(":")
            value = value.removeprefix(" ")
            if name == "event":
                event = value
            elif name == "data":
                data.append(value)


class Inbox:
    """One officer's inbox, read with If-None-Match so an unchanged one costs a 304."""

    def __init__(self, http: httpx.AsyncClient, headers: dict[str, str]) -> None:
        self.http = http
        self.headers = headers
        self.etag: str | None = None
        self.items: list[dict[str, Any]] = []

    async def read(self) -> list[dict[str, Any]]:
        """The inbox's tasks now (the last read's when unchanged or unreadable)."""
        headers = dict(self.headers)
        if self.etag is not None:
            headers["If-None-Match"] = f'"{self.etag}"'
        try:
            response = await self.http.get("/tasks", params=INBOX_QUERY, headers=headers)
        except httpx.HTTPError:
            return self.items
        if response.status_code == 200:
            self.items = response.json()["items"]
            self.etag = _bare_etag(response.headers.get("etag"))
        return self.items


async def detect_inbox_feed(http: httpx.AsyncClient, headers: dict[str, str]) -> InboxFeed:
    """'sse' when the server offers the inbox change feed (``GET /tasks/events`` answers
    with an event stream), 'poll' when it does not (404, or anything but a stream)."""
    try:
        async with http.stream("GET", "/tasks/events", params=INBOX_QUERY, headers=headers) as response:
            streams = response.headers.get("content-type", "").startswith("text/event-stream")
            return "sse" if response.status_code == 200 and streams else "poll"
    except httpx.HTTPError:
        return "poll"


# Every case a run files is a newborn of its own (one case per subject), across its scenarios.
NEWBORNS = itertools.count()


class FullPathDriver:
    """Applicants submit over HTTP; one simulated officer desk per department works the
    inbox (claim, complete) until each case is completed."""

    def __init__(self, http: httpx.AsyncClient, form: dict[str, Any], step_count: int) -> None:
        self.http = http
        self.form = form
        self.step_count = step_count
        self.definition = shipped_definitions()["birth"]
        self.headers: dict[str, dict[str, str]] = {}
        self.feed: InboxFeed = "poll"
        self._waiting: dict[str, asyncio.Event] = {}
        self._done_steps: dict[str, int] = {}
        self._in_hand: set[str] = set()
        self._stopping = False
        self._wake: set[asyncio.Event] = set()
        self.samples = Samples()

    async def login_all(self) -> None:
        for username in ["applicant1", *OFFICERS.values(), "supervisor"]:
            response = await self.http.post("/auth/token", data={"username": username, "password": "demo"})
            response.raise_for_status()
            self.headers[username] = {"Authorization": f"Bearer {response.json()['access_token']}"}

    async def choose_feed(self, prefer: InboxFeed | None = None) -> InboxFeed:
        """The change feed when the server offers it (or ``prefer`` when given); polling otherwise."""
        offered = await detect_inbox_feed(self.http, self.headers[next(iter(OFFICERS.values()))])
        self.feed = prefer if prefer == "poll" else offered
        return self.feed

    async def run_case(self, samples: Samples) -> None:
        begun = time.perf_counter()
        try:
            response = await self.http.post(
                "/cases",
                json={"thing": "birth", "channel": "online", "form": another_newborn(self.form, next(NEWBORNS))},
                headers={**self.headers["applicant1"], "Idempotency-Key": uuid.uuid4().hex},
            )
        except httpx.HTTPError as exc:
            samples.error(type(exc).__name__)
            return
        if response.status_code != 201:
            samples.error(f"submit {response.status_code}")
            return
        samples.submit.append(time.perf_counter() - begun)
        case_id = response.json()["case_id"]
        finished = self._waiting.setdefault(case_id, asyncio.Event())
        try:
            await asyncio.wait_for(finished.wait(), CASE_BOUND_SECONDS)
        except TimeoutError:
            samples.error("case not completed within the bound")
            return
        # The last step is done; the case is completed once the workflow has said so.
        while True:
            try:
                case = await self.http.get(f"/cases/{case_id}", headers=self.headers["supervisor"])
            except httpx.HTTPError:  # a kept-alive connection the server closed meanwhile: ask again
                await asyncio.sleep(0.02)
                continue
            if case.status_code == 200 and case.json()["status"] == "completed":
                break
            await asyncio.sleep(0.02)
        samples.e2e.append(time.perf_counter() - begun)
        samples.cases_completed += 1
        samples.case_ids.append(case_id)
        self._waiting.pop(case_id, None)

    async def officer_desk(self, department: str, concurrency: int) -> None:
        """Work one department's inbox until stop(): on the change feed or by polling."""
        headers = self.headers[OFFICERS[department]]
        async with self._desk_client() as http:
            await self._run_desk(http, headers, concurrency)

    def _desk_client(self) -> httpx.AsyncClient:
        """Each desk has a connection pool of its own, as each officer has a browser of their
        own; one pool shared by every desk scans all its connections on every request (httpcore)
        and that scan, not the requests, became most of the driver's CPU."""
        limits = httpx.Limits(
            max_connections=DESK_CONNECTIONS,
            max_keepalive_connections=DESK_CONNECTIONS,
            keepalive_expiry=KEEPALIVE_EXPIRY_SECONDS,
        )
        return httpx.AsyncClient(
            base_url=self.http.base_url,
            timeout=self.http.timeout,
            event_hooks=self.http.event_hooks,
            # A connection that could not be opened is opened again, as a browser would.
            transport=httpx.AsyncHTTPTransport(limits=limits, retries=CONNECT_RETRIES),
        )

    async def _run_desk(self, http: httpx.AsyncClient, headers: dict[str, str], concurrency: int) -> None:
        inbox = Inbox(http, headers)
        slots = asyncio.Semaphore(concurrency)
        working: set[asyncio.Task[None]] = set()
        changed = asyncio.Event()
        self._wake.add(changed)
        listener = asyncio.create_task(self._listen(http, inbox, changed)) if self.feed == "sse" else None
        try:
            while not self._stopping:
                if listener is not None:
                    with contextlib.suppress(TimeoutError):
                        await asyncio.wait_for(changed.wait(), FEED_RESYNC_SECONDS)
                    changed.clear()
                    if self._stopping:
                        break
                # Open and claimed: a claim whose completion failed is picked up again.
                items = await inbox.read()
                fresh = [task for task in items if task["task_id"] not in self._in_hand]
                for task in fresh:
                    self._in_hand.add(task["task_id"])
                    await slots.acquire()
                    job = asyncio.create_task(self._work(http, task, headers, slots))
                    working.add(job)
                    job.add_done_callback(working.discard)
                if not fresh and listener is None:
                    await asyncio.sleep(POLL_PAUSE_SECONDS)
        finally:
            if listener is not None:
                listener.cancel()
                await asyncio.gather(listener, return_exceptions=True)
            if working:
                await asyncio.gather(*working, return_exceptions=True)

    async def _listen(self, http: httpx.AsyncClient, inbox: Inbox, changed: asyncio.Event) -> None:
        """Read the inbox change feed; each `inbox` event naming a version other than the
        one last read wakes the desk. Reconnects when the stream ends or fails."""
        while not self._stopping:
            try:
                timeout = httpx.Timeout(10.0, read=None)
                feed = http.stream("GET", "/tasks/events", params=INBOX_QUERY, headers=inbox.headers, timeout=timeout)
                async with feed as stream:
                    if stream.status_code != 200:
                        await asyncio.sleep(FEED_RESYNC_SECONDS)
                        continue
                    async for event, data in server_sent_events(stream.aiter_lines()):
                        if event != "inbox":
                            continue
                        try:
                            etag = _bare_etag(json.loads(data).get("etag"))
                        except (ValueError, AttributeError):
                            etag = None
                        if etag is None or etag != inbox.etag:
                            changed.set()
            except httpx.HTTPError:
                await asyncio.sleep(0.2)

    async def _work(
        self, http: httpx.AsyncClient, task: dict[str, Any], headers: dict[str, str], slots: asyncio.Semaphore
    ) -> None:
        samples = self.samples
        task_id = task["task_id"]
        # Idempotency keys make a retried claim or completion answer as the first did.
        keyed = {**headers, "Idempotency-Key": f"bench-{task_id}"}
        try:
            begun = time.perf_counter()
            claim = await self._post_keyed(http, "claim", f"/tasks/{task_id}/claim", keyed)
            if claim.status_code != 200:
                samples.error(f"claim {claim.status_code}")
                self._in_hand.discard(task_id)  # the desk tries again on its next look
                return
            samples.claim.append(time.perf_counter() - begun)
            result = sample_result(self.definition.step(task["step"]), self.form)
            begun = time.perf_counter()
            done = await self._post_keyed(
                http, "complete", f"/tasks/{task_id}/complete", keyed, json={"result": result}
            )
            if done.status_code != 200:
                samples.error(f"complete {done.status_code}")
                self._in_hand.discard(task_id)
                return
            samples.complete.append(time.perf_counter() - begun)
            samples.steps_completed += 1
            case_id = task["case_id"]
            self._done_steps[case_id] = self._done_steps.get(case_id, 0) + 1
            if self._done_steps[case_id] == self.step_count:
                self._waiting.setdefault(case_id, asyncio.Event()).set()
        except Exception as exc:  # counted, and the task is tried again
            samples.error(type(exc).__name__)
            self._in_hand.discard(task_id)
        finally:
            slots.release()

    async def _post_keyed(
        self, http: httpx.AsyncClient, action: str, url: str, headers: dict[str, str], json: Any = None
    ) -> httpx.Response:
        try:
            return await http.post(url, headers=headers, json=json)
        except STALE_CONNECTION_ERRORS:
            self.samples.resend(action)
            return await http.post(url, headers=headers, json=json)

    def stop(self) -> None:
        self._stopping = True
        for changed in self._wake:
            changed.set()

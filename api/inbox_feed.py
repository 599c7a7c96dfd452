"""The inbox change feed: the ETag of ``GET /tasks`` and the stream of ``GET /tasks/events``.

The read-model projection bumps a department's row in ``inbox_versions`` in the same
transaction as any change to that department's tasks (activities/read_model.py). An
inbox listing's ETag is a hash of who may read it (role, department, the role filter),
its query (status, limit, offset) and the versions of the departments it covers, so it
changes whenever the listed tasks could have, and computing it is one primary-key read,
never the inbox query itself.

Each API process runs one ``InboxWatcher``: a task that reads the version rows (one small
query every ``inbox_watch_interval_seconds``) and wakes the streams whose departments
changed; however many consoles are open, the database sees one query per interval per
process. The database is the source of truth, so a change written by any worker reaches
the streams of every API process.
"""

from __future__ import annotations

import asyncio
import json
import logging
import re
import signal
import threading
from collections.abc import AsyncGenerator, AsyncIterator, Callable
from contextlib import asynccontextmanager, suppress
from dataclasses import dataclass, field
from types import FrameType
from typing import Any

from sqlalchemy import Engine
from sqlmodel import Session
from starlette.concurrency import run_in_threadpool

from services.inbox import InboxQuery, Versions, read_versions

logger = logging.getLogger(__name__)

# A comment line every so often keeps proxies and load balancers from closing an idle stream.
HEARTBEAT_SECONDS = 15.0
KEEP_ALIVE = b": keep-alive\n\n"
_ENTITY_TAG = re.compile(r'\*|(?:W/)?"[^"]*"')


def matches_if_none_match(header: str | None, etag: str) -> bool:
    """True when an If-None-Match header names ``etag`` (or is ``*``); weak comparison, as RFC 9110 asks."""
    return any(tag == "*" or tag.removeprefix("W/") == etag for tag in _ENTITY_TAG.findall(header or ""))


def inbox_event(etag: str) -> bytes:
    return b"event: inbox\ndata: " + json.dumps({"etag": etag}).encode() + b"\n\n"


@dataclass(eq=False)
class Subscription:
    """One open stream: woken when a department it covers changes, or when streams must end."""

    query: InboxQuery
    woken: asyncio.Event = field(default_factory=asyncio.Event)
    ended: bool = False

    async def wait(self, timeout: float) -> bool:
        """True if woken within ``timeout`` seconds, False if the time ran out."""
        try:
            await asyncio.wait_for(self.woken.wait(), timeout)
        except TimeoutError:
            return False
        self.woken.clear()
        return True

    def end(self) -> None:
        self.ended = True
        self.woken.set()


class InboxWatcher:
    """One per API process: reads the version rows and wakes the subscriptions they concern."""

    def __init__(self, engine: Engine, interval_seconds: float) -> None:
        self._engine = engine
        self._interval = interval_seconds
        self._versions: Versions = {}
        self._subscriptions: set[Subscription] = set()
        self._lock = asyncio.Lock()
        self._reads_begun = 0  # reads run one at a time, under the lock, numbered from 1
        self._last_good_read = 0
        self._failing = False
        self._task: asyncio.Task[None] | None = None
        self._closed = False
        self._chained_signals: dict[int, tuple[Any, Callable[[int, FrameType | None], None]]] = {}

    @property
    def versions(self) -> Versions:
        return self._versions

    @property
    def subscriptions(self) -> int:
        return len(self._subscriptions)

    async def start(self) -> None:
        self._task = asyncio.create_task(self._watch(), name="inbox-watcher")
        self._end_streams_on_exit_signals()

    async def stop(self) -> None:
        """Ends every stream and the watching task (the app's lifespan, on shutdown)."""
        self._closed = True
        self._restore_signals()
        self._end_streams()
        if self._task is not None:
            self._task.cancel()
            with suppress(asyncio.CancelledError):
                await self._task
            self._task = None

    async def refresh(self) -> None:
        """Read the versions now, unless a read begun after this call has succeeded meanwhile:
        many streams opening at once share one read."""
        called_at = self._reads_begun
        async with self._lock:
            if self._last_good_read > called_at:
                return
            await self._read_versions()

    @asynccontextmanager
    async def subscribe(self, query: InboxQuery) -> AsyncIterator[Subscription]:
        subscription = Subscription(query)
        if self._closed:
            subscription.end()
        self._subscriptions.add(subscription)
        try:
            yield subscription
        finally:
            self._subscriptions.discard(subscription)

    async def stream(self, query: InboxQuery) -> AsyncGenerator[bytes]:
        """The SSE body: the listing's ETag now, a new one each time it changes, a heartbeat
        comment when idle; it ends when the watcher stops (or the client goes, which cancels it)."""
        async with self.subscribe(query) as subscription:
            sent = query.etag(self._versions)
            yield inbox_event(sent)
            while not subscription.ended:
                if not await subscription.wait(HEARTBEAT_SECONDS):
                    yield KEEP_ALIVE
                    continue
                if subscription.ended:
                    break
                etag = query.etag(self._versions)
                if etag != sent:
                    sent = etag
                    yield inbox_event(etag)

    # --- reading the versions ---------------------------------------------------------------

    async def _watch(self) -> None:
        while True:
            try:
                await self.refresh()
            except Exception:
                if not self._failing:
                    logger.warning("inbox watcher: reading the inbox versions failed; retrying", exc_info=True)
                self._failing = True
            else:
                if self._failing:
                    logger.info("inbox watcher: reading the inbox versions again")
                self._failing = False
            await asyncio.sleep(self._interval)

    async def _read_versions(self) -> None:
        self._reads_begun += 1
        number = self._reads_begun
        versions = await run_in_threadpool(self._read)
        self._last_good_read = number
        changed = {
            name for name in versions.keys() | self._versions.keys() if versions.get(name) != self._versions.get(name)
        }
        self._versions = versions
        if changed:
            for subscription in self._subscriptions:
                if subscription.query.covers(changed):
                    subscription.woken.set()

    def _read(self) -> Versions:
        with Session(self._engine) as session:
            return read_versions(session, None)

    # --- shutting down ----------------------------------------------------------------------

    def _end_streams(self) -> None:
        for subscription in list(self._subscriptions):
            subscription.end()

    def _end_streams_on_exit_signals(self) -> None:
        """uvicorn waits for open responses to finish before it shuts the app down, and a stream
        never finishes by itself: on SIGINT or SIGTERM the streams end first, then the server's
        own handler runs as before."""
        if threading.current_thread() is not threading.main_thread():
            return
        loop = asyncio.get_running_loop()
        for number in (signal.SIGINT, signal.SIGTERM):
            previous = signal.getsignal(number)
            if not callable(previous):
                continue  # no Python handler: the process is not shutting down gracefully anyway

            def chained(signum: int, frame: FrameType | None, previous: Callable[..., Any] = previous) -> None:
                loop.call_soon_threadsafe(self._end_streams)
                previous(signum, frame)

            signal.signal(number, chained)
            self._chained_signals[number] = (previous, chained)

    def _restore_signals(self) -> None:
        if threading.current_thread() is not threading.main_thread():
            return
        for number, (previous, chained) in self._chained_signals.items():
            if signal.getsignal(number) is chained:
                signal.signal(number, previous)
        self._chained_signals.clear()

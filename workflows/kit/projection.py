"""Workflow-side bookkeeping for projecting a workflow's state into the read model.

One coroutine per workflow writes: each write carries the newest state and the
events recorded since the previous write, so writes never overtake one another;
``flush`` lets an Update answer only once its change is readable.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Generic, TypeVar

from temporalio import workflow

Event = TypeVar("Event")


class Projection(Generic[Event]):
    def __init__(self) -> None:
        self.revision = 0
        self.projected = 0
        self.events: list[Event] = []  # every event recorded, for the archive
        self._pending: list[Event] = []

    @property
    def next_seq(self) -> int:
        return len(self.events) + 1

    def record(self, event: Event) -> None:
        self.events.append(event)
        self._pending.append(event)

    def changed(self) -> None:
        self.revision += 1

    @property
    def settled(self) -> bool:
        return self.projected == self.revision

    async def flush(self) -> None:
        """Wait until the read model holds every change made so far."""
        revision = self.revision
        await workflow.wait_condition(lambda: self.projected >= revision)

    async def run(
        self,
        ready: Callable[[], bool],
        write: Callable[[list[Event]], Awaitable[None]],
        settled: Callable[[], bool] | None = None,
    ) -> None:
        """The one writer: forever, once ``ready()``, write the newest state with the new events.

        With ``settled``, one write per workflow task: the writer first lets every coroutine
        woken with it run, then waits while ``settled()`` is False (a deadline still being
        computed will change the state again), so a task's changes go out together.
        """
        while True:
            await workflow.wait_condition(lambda: self.revision > self.projected and ready())
            if settled is not None:
                await workflow.wait_condition(lambda: True)  # after the others woken now
                await workflow.wait_condition(lambda: settled() and self.revision > self.projected and ready())
            revision = self.revision
            events, self._pending = self._pending, []
            await write(events)
            self.projected = revision

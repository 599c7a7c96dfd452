"""The statutory clock (法定时限) every OneThing workflow keeps: 预警 at 00:00 of the last
working day, 超期 at the deadline, then a 督办 each further working day until the work
is done; paused while the applicant owes materials (补正) and resumed with the working
time that was left. Case steps, 回访 and complaints all run this one clock.

``ClockState`` is plain data with pure rules (tests/test_statutory_clock.py);
``StatutoryClock`` is the workflow coroutine that sleeps until the next event. Every
instant comes from the calendar activities, so it is in history and replays unchanged.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import datetime

from temporalio import workflow

with workflow.unsafe.imports_passed_through():
    from models.case import DeadlineResult


@dataclass
class ClockState:
    due_at: datetime | None = None
    warning_at: datetime | None = None
    provisional: bool = False
    warned: bool = False
    overdue: bool = False
    escalations: int = 0
    next_escalation_at: datetime | None = None
    # Working time left when the clock paused for 补正.
    remaining_seconds: float = 0.0
    # Bumped whenever the deadline moves, so a sleeping clock re-reads it.
    generation: int = 0

    def start(self, deadline: DeadlineResult) -> None:
        self.due_at = deadline.due_at
        self.warning_at = deadline.warning_at
        self.provisional = deadline.provisional

    def pause(self, remaining_seconds: float) -> None:
        self.remaining_seconds = remaining_seconds

    def extend(self, deadline: DeadlineResult) -> None:
        """Back from 补正 with time left: the new deadline the remaining time gives."""
        self.due_at = deadline.due_at
        self.warning_at = deadline.warning_at
        self.provisional = self.provisional or deadline.provisional

    def move(self, deadline: DeadlineResult, now: datetime) -> None:
        """An approved extension (延期): the deadline moves; a warning not yet due will come
        again for the new last day, and the sleeping clock re-reads it."""
        self.due_at = deadline.due_at
        self.warning_at = deadline.warning_at
        self.provisional = self.provisional or deadline.provisional
        if self.warning_at is not None and self.warning_at > now:
            self.warned = False
        self.generation += 1

    def resume(self, next_escalation_at: datetime | None) -> None:
        """Running again after 补正; an overdue clock's next 督办 is counted from now."""
        if self.overdue:
            self.next_escalation_at = next_escalation_at
        self.generation += 1

    def next_event(self, *, warns: bool) -> tuple[datetime, bool]:
        """When the clock next fires, and whether that is the warning (else overdue/督办)."""
        assert self.due_at is not None
        if self.overdue:
            assert self.next_escalation_at is not None
            return self.next_escalation_at, False
        if warns and not self.warned and self.warning_at is not None and self.warning_at < self.due_at:
            return self.warning_at, True
        return self.due_at, False


@dataclass
class ClockHooks:
    """What the clock's owner does at each event; ``running`` is False once the work is
    done (or the case closed), ``paused`` while materials are owed."""

    running: Callable[[], bool]
    paused: Callable[[], bool]
    warned: Callable[[], None]
    overdue: Callable[[], None]
    # Sends the 督办 numbered ``sequence`` (a read-model write) for the instant it fell due.
    send_escalation: Callable[[int, datetime], Awaitable[None]]
    escalated: Callable[[int], None]
    next_escalation: Callable[[datetime], Awaitable[datetime]]
    changed: Callable[[], None]


class StatutoryClock:
    def __init__(self, state: ClockState, hooks: ClockHooks, *, warns: bool = True) -> None:
        self.state = state
        self._hooks = hooks
        self._warns = warns

    async def keep(self) -> None:
        """Run until the work is done: sleep to the next event, fire it, repeat."""
        hooks = self._hooks
        while hooks.running():
            if hooks.paused():
                await workflow.wait_condition(lambda: not hooks.paused() or not hooks.running())
                continue
            target, is_warning = self.state.next_event(warns=self._warns)
            delay = (target - workflow.now()).total_seconds()
            if delay > 0:
                try:
                    await workflow.wait_condition(self._interrupted(), timeout=delay)
                    continue
                except TimeoutError:
                    pass
            if is_warning:
                self.state.warned = True
                hooks.warned()
                hooks.changed()
            else:
                await self._escalate(target)

    def _interrupted(self) -> Callable[[], bool]:
        """True once the work ends, pauses, or its deadline moves after this call."""
        generation = self.state.generation
        hooks = self._hooks
        return lambda: not hooks.running() or hooks.paused() or self.state.generation != generation

    async def _escalate(self, at: datetime) -> None:
        state, hooks = self.state, self._hooks
        if not state.overdue:
            state.overdue = True
            hooks.overdue()
        state.escalations += 1
        await hooks.send_escalation(state.escalations, at)
        hooks.escalated(state.escalations)
        state.next_escalation_at = await hooks.next_escalation(at)
        hooks.changed()

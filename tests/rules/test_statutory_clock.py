"""The statutory clock's rules on their own: what fires next, pause and resume."""

from __future__ import annotations

from datetime import datetime, timedelta

from domain.workcalendar import SHANGHAI
from models.case import DeadlineResult
from workflows.kit.clock import ClockState

DUE = datetime(2026, 11, 25, 17, 0, tzinfo=SHANGHAI)
WARNING = datetime(2026, 11, 25, 0, 0, tzinfo=SHANGHAI)


def started() -> ClockState:
    clock = ClockState()
    clock.start(DeadlineResult(step="s", due_at=DUE, warning_at=WARNING, provisional=False))
    return clock


def test_the_warning_comes_first_then_the_deadline() -> None:
    clock = started()
    assert clock.next_event(warns=True) == (WARNING, True)
    clock.warned = True
    assert clock.next_event(warns=True) == (DUE, False)


def test_a_clock_that_does_not_warn_goes_straight_to_the_deadline() -> None:
    assert started().next_event(warns=False) == (DUE, False)


def test_an_overdue_clock_fires_at_its_next_escalation() -> None:
    clock = started()
    clock.overdue = True
    clock.next_escalation_at = DUE + timedelta(days=1)
    assert clock.next_event(warns=True) == (DUE + timedelta(days=1), False)


def test_resuming_with_time_left_moves_the_deadline_and_wakes_the_sleeping_clock() -> None:
    clock = started()
    clock.pause(remaining_seconds=3600)
    later = DUE + timedelta(days=3)
    clock.extend(DeadlineResult(step="s", due_at=later, warning_at=None, provisional=True))
    clock.resume(next_escalation_at=None)
    assert clock.due_at == later
    assert clock.provisional is True
    assert clock.generation == 1
    assert clock.remaining_seconds == 3600


def test_resuming_an_overdue_clock_counts_the_next_escalation_from_now() -> None:
    clock = started()
    clock.overdue = True
    clock.next_escalation_at = DUE
    resumed_at = DUE + timedelta(days=5)
    clock.resume(next_escalation_at=resumed_at)
    assert clock.next_event(warns=True) == (resumed_at, False)

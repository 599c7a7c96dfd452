"""The accelerated clock used by real-server tests, demos and benchmarks: the same
statutory shapes (deadline at the end of the last day, warning at its start, 督办 at
the end of each further day) with days of a few seconds."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from pydantic import ValidationError

from domain.workcalendar import AcceleratedCalendar, WorkingCalendar, make_calendar
from settings import Settings

DAY = 10.0  # seconds per working day
SAT_NATIONAL_DAY = datetime(2026, 10, 3, 12, 0, 5, tzinfo=UTC)  # a holiday on the statutory calendar


def at(seconds: float) -> datetime:
    return datetime.fromtimestamp(seconds, tz=UTC)


@pytest.fixture
def clock() -> AcceleratedCalendar:
    return AcceleratedCalendar(DAY)


def test_a_one_day_limit_ends_at_the_end_of_the_next_slot(clock: AcceleratedCalendar) -> None:
    deadline = clock.add_working_days(at(1_000_003), 1)
    assert deadline.due_at == at(1_000_020)
    assert deadline.warning_at == at(1_000_010)
    assert deadline.provisional is False


def test_an_immediate_limit_ends_with_the_opening_slot_and_has_no_warning(clock: AcceleratedCalendar) -> None:
    deadline = clock.add_working_days(at(1_000_003), 0)
    assert deadline.due_at == at(1_000_010)
    assert deadline.warning_at is None


def test_escalations_follow_at_the_end_of_each_slot(clock: AcceleratedCalendar) -> None:
    assert clock.next_escalation_at(at(1_000_020)) == at(1_000_030)
    assert clock.next_escalation_at(at(1_000_029.5)) == at(1_000_030)


def test_holidays_do_not_stop_the_accelerated_clock(clock: AcceleratedCalendar) -> None:
    statutory = WorkingCalendar()
    assert statutory.working_seconds_between(SAT_NATIONAL_DAY, SAT_NATIONAL_DAY + timedelta(seconds=30)) == 0
    assert clock.working_seconds_between(SAT_NATIONAL_DAY, SAT_NATIONAL_DAY + timedelta(seconds=30)) == 30
    assert clock.is_working_day(SAT_NATIONAL_DAY.date())


def test_paused_time_resumes_exactly(clock: AcceleratedCalendar) -> None:
    start = at(1_000_003)
    remaining = clock.working_seconds_between(start, at(1_000_020))
    resumed = clock.add_working_seconds(at(2_000_000), remaining)
    assert resumed.due_at == at(2_000_017)
    assert resumed.warning_at == at(2_000_010)


def test_make_calendar_picks_the_statutory_calendar_unless_accelerated() -> None:
    assert type(make_calendar(None)) is WorkingCalendar
    accelerated = make_calendar(None, 2.5)
    assert isinstance(accelerated, AcceleratedCalendar) and accelerated.day_seconds == 2.5


def test_a_non_positive_day_length_is_refused() -> None:
    with pytest.raises(ValueError, match="day_seconds"):
        AcceleratedCalendar(0)


def test_production_refuses_an_accelerated_clock() -> None:
    with pytest.raises(ValidationError, match="WORKING_DAY_SECONDS"):
        Settings(env="prod", secret_key="x" * 40, working_day_seconds=5)
    assert Settings(env="test", secret_key="x" * 40, working_day_seconds=5).working_day_seconds == 5

"""Dates, times and time left as pages show them (domain/display.py): Chinese dates in Beijing
time, a due time at 24:00 shown as its last day, and the time left counted in working days on the
statutory calendar — weekends, the 2026 National Day holiday and its make-up working days.

2026 (State Council notice, as in chinesecalendar): Thu Oct 1 - Wed Oct 7 off, Sat Oct 10 a
make-up working day. Mon Nov 30, Thu Dec 3, Fri Dec 4 2026.
"""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta

import pytest

from domain.display import (
    date_zh,
    datetime_zh,
    due_day,
    due_zh,
    overdue_working_days,
    overdue_zh,
    time_left_zh,
    working_days_left,
)
from domain.workcalendar import SHANGHAI, AcceleratedCalendar, WorkingCalendar


def sh(year: int, month: int, day: int, hour: int = 0, minute: int = 0) -> datetime:
    return datetime(year, month, day, hour, minute, tzinfo=SHANGHAI)


def end_of(year: int, month: int, day: int) -> datetime:
    """24:00 of the day: how the calendar stores a due time (00:00 of the next day)."""
    return sh(year, month, day) + timedelta(days=1)


@pytest.fixture(scope="module")
def calendar() -> WorkingCalendar:
    return WorkingCalendar()


# --- dates and times ---------------------------------------------------------------------


def test_dates_and_times_read_in_chinese_in_beijing_time():
    afternoon = datetime(2026, 12, 3, 6, 30, tzinfo=UTC)  # 14:30 in Beijing
    assert datetime_zh(afternoon) == "2026年12月3日 14:30"
    assert date_zh(afternoon) == "2026年12月3日"
    # 20:00 UTC is already the next day in Beijing.
    assert datetime_zh(datetime(2026, 12, 2, 20, 0, tzinfo=UTC)) == "2026年12月3日 04:00"
    assert date_zh(datetime(2026, 12, 2, 20, 0, tzinfo=UTC)) == "2026年12月3日"
    # No zero padding in the date; the time keeps two digits.
    assert datetime_zh(sh(2027, 1, 5, 8, 5)) == "2027年1月5日 08:05"


def test_strings_dates_naive_times_and_nothing():
    assert datetime_zh("2026-12-03T06:30:00+00:00") == "2026年12月3日 14:30"
    assert date_zh("2026-11-01") == "2026年11月1日"
    assert date_zh(date(2026, 11, 30)) == "2026年11月30日"
    assert datetime_zh(date(2026, 11, 30)) == "2026年11月30日"  # a date has no time to show
    assert datetime_zh(datetime(2026, 12, 3, 14, 30)) == "2026年12月3日 14:30"  # naive: taken as Beijing time
    for nothing in (None, ""):
        assert date_zh(nothing) == datetime_zh(nothing) == due_zh(nothing) == ""


def test_a_due_time_at_24_00_reads_as_its_last_day():
    assert due_zh(end_of(2026, 12, 3)) == "2026年12月3日"  # stored as 00:00 on Dec 4
    assert due_zh(datetime(2026, 12, 3, 16, 0, tzinfo=UTC)) == "2026年12月3日"  # the same instant in UTC
    assert due_zh(end_of(2026, 12, 31)) == "2026年12月31日"  # not 2027年1月1日
    assert due_zh(end_of(2026, 11, 30)) == "2026年11月30日"
    assert due_day(end_of(2026, 12, 3)) == date(2026, 12, 3)
    # A clock resumed after 补正 can fall due during a day: then the time is shown.
    assert due_zh(sh(2026, 12, 3, 14, 30)) == "2026年12月3日 14:30"
    assert due_day(sh(2026, 12, 3, 14, 30)) == date(2026, 12, 3)
    assert due_zh("2026-12-03T16:00:00+00:00") == "2026年12月3日"


def test_a_deadline_from_the_calendar_reads_as_its_last_working_day(calendar):
    # Opened Wed Sep 30 with 1 working day: Oct 1-7 are off, so the last day is Thu Oct 8.
    deadline = calendar.add_working_days(sh(2026, 9, 30, 10), 1)
    assert due_zh(deadline.due_at) == "2026年10月8日"


# --- time left ----------------------------------------------------------------------------


def test_due_today_tomorrow_and_later(calendar):
    now = sh(2026, 12, 3, 10)  # Thursday
    assert time_left_zh(calendar, end_of(2026, 12, 3), now) == "今日到期"
    assert time_left_zh(calendar, end_of(2026, 12, 4), now) == "剩余 1 个工作日"
    # The weekend does not count: Friday and Monday are left.
    assert time_left_zh(calendar, end_of(2026, 12, 7), now) == "剩余 2 个工作日"
    assert working_days_left(calendar, end_of(2026, 12, 10), now) == 5
    # Late in the evening the same day is still today.
    assert time_left_zh(calendar, end_of(2026, 12, 3), sh(2026, 12, 3, 23, 59)) == "今日到期"


def test_on_a_weekend_the_next_working_day_is_a_day_left(calendar):
    saturday = sh(2026, 12, 5, 10)
    assert time_left_zh(calendar, end_of(2026, 12, 7), saturday) == "剩余 1 个工作日"  # Monday
    assert time_left_zh(calendar, end_of(2026, 12, 8), saturday) == "剩余 2 个工作日"


def test_holidays_are_skipped_and_make_up_days_count(calendar):
    before_national_day = sh(2026, 9, 30, 10)  # Wednesday; Oct 1-7 off
    assert time_left_zh(calendar, end_of(2026, 10, 8), before_national_day) == "剩余 1 个工作日"
    # Thu Oct 8, Fri Oct 9 and Sat Oct 10 (a make-up working day).
    assert time_left_zh(calendar, end_of(2026, 10, 10), before_national_day) == "剩余 3 个工作日"
    during = sh(2026, 10, 3, 12)
    assert time_left_zh(calendar, end_of(2026, 10, 8), during) == "剩余 1 个工作日"
    # On the make-up Saturday itself a deadline that day is due today.
    assert time_left_zh(calendar, end_of(2026, 10, 10), sh(2026, 10, 10, 9)) == "今日到期"


def test_a_due_time_during_the_day(calendar):
    due = sh(2026, 12, 3, 14, 30)
    assert time_left_zh(calendar, due, sh(2026, 12, 3, 9)) == "今日到期"
    assert time_left_zh(calendar, due, sh(2026, 12, 2, 9)) == "剩余 1 个工作日"
    assert time_left_zh(calendar, due, sh(2026, 12, 3, 15)) == "已超期 1 个工作日"


@pytest.mark.parametrize("limit", [0, 1, 3, 5, 10, 20])
@pytest.mark.parametrize(
    "opened",
    [sh(2026, 9, 28, 9), sh(2026, 9, 30, 16), sh(2026, 10, 9, 11), sh(2026, 10, 10, 8), sh(2026, 12, 3, 15)],
)
def test_a_limit_of_n_working_days_has_n_left_when_it_opens(calendar, opened, limit):
    """On a working day, a limit just opened has its whole count left (the opening day is not counted)."""
    assert calendar.is_working_day(opened.date())
    deadline = calendar.add_working_days(opened, limit)
    assert working_days_left(calendar, deadline.due_at, opened) == limit
    # From its warning time (00:00 of the last day) it is due today.
    if deadline.warning_at is not None:
        assert time_left_zh(calendar, deadline.due_at, deadline.warning_at) == "今日到期"


# --- overdue --------------------------------------------------------------------------------


def test_overdue_counts_the_working_days_begun_since_the_due_time(calendar):
    due = end_of(2026, 11, 30)  # 24:00 Monday
    assert time_left_zh(calendar, due, sh(2026, 12, 1, 10)) == "已超期 1 个工作日"
    assert time_left_zh(calendar, due, sh(2026, 12, 2, 0, 30)) == "已超期 2 个工作日"
    assert time_left_zh(calendar, due, sh(2026, 12, 3, 16)) == "已超期 3 个工作日"
    assert overdue_working_days(calendar, due, due) == 0
    assert overdue_working_days(calendar, due, due - timedelta(hours=1)) == 0


def test_overdue_over_a_weekend(calendar):
    due = end_of(2026, 12, 4)  # 24:00 Friday
    # Saturday and Sunday are rest days: overdue, but not yet by a working day.
    assert time_left_zh(calendar, due, sh(2026, 12, 5, 10)) == "已超期"
    assert time_left_zh(calendar, due, sh(2026, 12, 6, 23)) == "已超期"
    assert time_left_zh(calendar, due, sh(2026, 12, 7, 9)) == "已超期 1 个工作日"
    assert time_left_zh(calendar, due, sh(2026, 12, 8, 9)) == "已超期 2 个工作日"


def test_overdue_over_national_day(calendar):
    due = end_of(2026, 9, 30)
    assert overdue_zh(calendar, due, sh(2026, 10, 5, 10)) == "已超期"
    assert overdue_zh(calendar, due, sh(2026, 10, 8, 10)) == "已超期 1 个工作日"
    # Oct 8, Oct 9 and the make-up Saturday Oct 10.
    assert overdue_zh(calendar, due, sh(2026, 10, 10, 10)) == "已超期 3 个工作日"
    assert overdue_zh(calendar, due, sh(2026, 10, 11, 10)) == "已超期 3 个工作日"  # Sunday: rest


def test_a_step_completed_late_is_late_by_working_days(calendar):
    due = end_of(2026, 12, 3)
    assert overdue_zh(calendar, due, sh(2026, 12, 4, 9)) == "已超期 1 个工作日"
    assert overdue_zh(calendar, due, sh(2026, 12, 7, 9)) == "已超期 2 个工作日"


# --- an accelerated clock ---------------------------------------------------------------------


def test_an_accelerated_clock_counts_its_own_days():
    """Tests and demos on a fast clock (every working day lasts seconds) read the same way."""
    fast = AcceleratedCalendar(day_seconds=10)
    now = datetime(2026, 12, 3, 2, 0, 3, tzinfo=UTC)
    deadline = fast.add_working_days(now, 3)
    assert time_left_zh(fast, deadline.due_at, now) == "剩余 3 个工作日"
    assert deadline.warning_at is not None
    assert time_left_zh(fast, deadline.due_at, deadline.warning_at) == "今日到期"
    assert time_left_zh(fast, deadline.due_at, deadline.due_at + timedelta(seconds=25)) == "已超期 3 个工作日"

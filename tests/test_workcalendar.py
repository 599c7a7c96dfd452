"""The statutory clock: working days, deadlines and paused-clock arithmetic.

2026 facts (State Council notice of 2025-11-04, as in chinesecalendar 1.11.0):
Mid-Autumn Fri-Sun Sep 25-27 off, National Day Thu Oct 1 - Wed Oct 7 off,
Sun Sep 20 and Sat Oct 10 are make-up working days.
"""

from __future__ import annotations

import logging
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

import pytest

from domain.workcalendar import (
    SHANGHAI,
    CalendarDataError,
    Deadline,
    HolidayNotice,
    WorkingCalendar,
    default_calendar_file,
)

WORKCALENDAR_LOGGER = "domain.workcalendar"


def sh(year: int, month: int, day: int, hour: int = 0, minute: int = 0) -> datetime:
    return datetime(year, month, day, hour, minute, tzinfo=SHANGHAI)


@pytest.fixture
def calendar() -> WorkingCalendar:
    return WorkingCalendar()


def write_notices(tmp_path: Path, text: str) -> Path:
    data_file = tmp_path / "holiday_notices.yaml"
    data_file.write_text(text, encoding="utf-8")
    return data_file


# A made-up notice for a year the package does not know (NOT real data).
FICTIONAL_2031 = """
notices:
  - year: 2031
    source: "fictional notice for 2031 (test data)"
    holidays: [{from: "2031-10-01", to: "2031-10-07"}]
    workdays: ["2031-09-28", "2031-10-11"]
"""


# -- the 2026 calendar as the package knows it -----------------------------------


@pytest.mark.parametrize(
    ("day", "working"),
    [
        (date(2026, 9, 19), False),  # Saturday
        (date(2026, 9, 20), True),  # Sunday, make-up day
        (date(2026, 9, 25), False),  # Friday, Mid-Autumn
        (date(2026, 9, 30), True),
        (date(2026, 10, 1), False),
        (date(2026, 10, 7), False),
        (date(2026, 10, 8), True),
        (date(2026, 10, 10), True),  # Saturday, make-up day
        (date(2026, 10, 11), False),
    ],
)
def test_working_days_follow_the_2026_notice(calendar: WorkingCalendar, day: date, working: bool) -> None:
    assert calendar.is_working_day(day) is working
    assert calendar.is_provisional(day) is False


# -- add_working_days -----------------------------------------------------------------


def test_opened_before_national_day_is_due_after_the_holiday(
    calendar: WorkingCalendar,
) -> None:
    deadline = calendar.add_working_days(sh(2026, 9, 30, 15), 1)
    # 24:00 of Thu Oct 8, the first working day after the holiday.
    assert deadline == Deadline(
        due_at=sh(2026, 10, 9),
        warning_at=sh(2026, 10, 8),
        provisional=False,
    )


def test_make_up_saturday_counts_as_a_working_day(calendar: WorkingCalendar) -> None:
    deadline = calendar.add_working_days(sh(2026, 10, 9, 10), 1)
    assert deadline.due_at == sh(2026, 10, 11)  # end of Sat Oct 10
    assert deadline.warning_at == sh(2026, 10, 10)


def test_opened_on_a_rest_day_counts_from_the_next_working_day(
    calendar: WorkingCalendar,
) -> None:
    # Sat Sep 19 is a rest day; Sun Sep 20 is a make-up working day, so counting
    # starts from it and the first counted day is Mon Sep 21.
    deadline = calendar.add_working_days(sh(2026, 9, 19, 11), 1)
    assert deadline.due_at == sh(2026, 9, 22)
    assert deadline.warning_at == sh(2026, 9, 21)


def test_opening_day_itself_is_not_counted(calendar: WorkingCalendar) -> None:
    # Mon Oct 12, 08:00: five working days are Tue 13 ... Mon 19.
    deadline = calendar.add_working_days(sh(2026, 10, 12, 8), 5)
    assert deadline.due_at == sh(2026, 10, 20)
    assert deadline.warning_at == sh(2026, 10, 19)


def test_limit_spanning_mid_autumn_and_national_day(calendar: WorkingCalendar) -> None:
    # From Thu Sep 24: Mon 28, Tue 29, Wed 30, Thu Oct 8, Fri Oct 9, Sat Oct 10.
    deadline = calendar.add_working_days(sh(2026, 9, 24, 9), 6)
    assert deadline.due_at == sh(2026, 10, 11)


def test_zero_day_limit_ends_at_the_end_of_the_same_working_day(
    calendar: WorkingCalendar,
) -> None:
    deadline = calendar.add_working_days(sh(2026, 10, 8, 9), 0)
    assert deadline == Deadline(due_at=sh(2026, 10, 9), warning_at=None, provisional=False)


def test_zero_day_limit_opened_on_a_rest_day_rolls_to_the_next_working_day(
    calendar: WorkingCalendar,
) -> None:
    deadline = calendar.add_working_days(sh(2026, 10, 1, 9), 0)
    assert deadline == Deadline(due_at=sh(2026, 10, 9), warning_at=None, provisional=False)


def test_negative_limit_is_rejected(calendar: WorkingCalendar) -> None:
    with pytest.raises(ValueError, match="working_days"):
        calendar.add_working_days(sh(2026, 10, 8), -1)


def test_naive_datetimes_are_rejected(calendar: WorkingCalendar) -> None:
    naive = datetime(2026, 10, 8, 9)
    with pytest.raises(ValueError, match="timezone-aware"):
        calendar.add_working_days(naive, 1)
    with pytest.raises(ValueError, match="timezone-aware"):
        calendar.next_escalation_at(naive)
    with pytest.raises(ValueError, match="timezone-aware"):
        calendar.working_seconds_between(naive, sh(2026, 10, 9))
    with pytest.raises(ValueError, match="timezone-aware"):
        calendar.add_working_seconds(naive, 60)


def test_days_must_be_dates_not_datetimes(calendar: WorkingCalendar) -> None:
    # A datetime's calendar day depends on its zone; the caller has to choose it.
    with pytest.raises(TypeError, match="datetime"):
        calendar.is_working_day(sh(2026, 10, 8, 9))


def test_amounts_below_a_microsecond_round_to_nothing(
    calendar: WorkingCalendar,
) -> None:
    deadline = calendar.add_working_seconds(sh(2026, 10, 8), 1e-7)
    assert deadline == Deadline(due_at=sh(2026, 10, 8), warning_at=None, provisional=False)


# -- time zones --------------------------------------------------------------------


def test_utc_late_evening_is_already_the_next_day_in_shanghai(
    calendar: WorkingCalendar,
) -> None:
    # 2026-09-29 17:00 UTC is Wed Sep 30, 01:00 in Shanghai: opened on Sep 30.
    deadline = calendar.add_working_days(datetime(2026, 9, 29, 17, tzinfo=UTC), 1)
    assert deadline.due_at == sh(2026, 10, 9)
    assert deadline.due_at.tzinfo == SHANGHAI
    # A minute before Shanghai midnight it is still Tue Sep 29: due end of Sep 30.
    earlier = calendar.add_working_days(datetime(2026, 9, 29, 15, 59, tzinfo=UTC), 1)
    assert earlier.due_at == sh(2026, 10, 1)


# -- years the package does not know ----------------------------------------------


def test_unknown_year_falls_back_to_weekends_and_is_provisional(
    calendar: WorkingCalendar, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.WARNING, logger=WORKCALENDAR_LOGGER)
    # Fri 2031-01-03 -> Mon 2031-01-06.
    deadline = calendar.add_working_days(sh(2031, 1, 3, 10), 1)
    assert deadline == Deadline(due_at=sh(2031, 1, 7), warning_at=sh(2031, 1, 6), provisional=True)
    assert calendar.is_provisional(date(2031, 1, 3))
    assert calendar.is_working_day(date(2031, 1, 1))  # no New Year's Day known


def test_fallback_warning_is_logged_once_per_year(calendar: WorkingCalendar, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.WARNING, logger=WORKCALENDAR_LOGGER)
    calendar.add_working_days(sh(2031, 1, 3, 10), 1)
    calendar.add_working_days(sh(2031, 6, 3, 10), 10)
    calendar.next_escalation_at(sh(2031, 7, 1))
    calendar.add_working_days(sh(2032, 3, 1, 10), 1)
    warnings = [r for r in caplog.records if r.name == WORKCALENDAR_LOGGER]
    assert len(warnings) == 2
    assert "2031" in warnings[0].getMessage()
    assert "2032" in warnings[1].getMessage()
    assert all(r.levelno == logging.WARNING for r in warnings)


def test_each_calendar_instance_warns_for_itself(
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.WARNING, logger=WORKCALENDAR_LOGGER)
    WorkingCalendar().is_working_day(date(2031, 1, 3))
    WorkingCalendar().is_working_day(date(2031, 1, 3))
    assert len([r for r in caplog.records if "2031" in r.getMessage()]) == 2


def test_limit_crossing_into_an_unknown_year_is_provisional(
    calendar: WorkingCalendar,
) -> None:
    # Thu 2026-12-31 -> Fri 2027-01-01, which only the fallback can judge.
    deadline = calendar.add_working_days(sh(2026, 12, 31, 10), 1)
    assert deadline.due_at == sh(2027, 1, 2)
    assert deadline.provisional is True


def test_limit_staying_in_a_known_year_is_not_provisional(
    calendar: WorkingCalendar,
) -> None:
    deadline = calendar.add_working_days(sh(2026, 12, 30, 10), 1)
    assert deadline.due_at == sh(2027, 1, 1)  # 24:00 of Thu Dec 31
    assert deadline.provisional is False


def test_without_the_package_every_year_is_provisional() -> None:
    calendar = WorkingCalendar(use_package=False)
    # The package would say Oct 1 is a holiday; the fallback only sees a Thursday.
    assert calendar.is_working_day(date(2026, 10, 1))
    assert calendar.is_provisional(date(2026, 10, 1))
    assert calendar.years_known() == frozenset()


def test_years_known_covers_the_package_and_loaded_notices(tmp_path: Path) -> None:
    calendar = WorkingCalendar.load(write_notices(tmp_path, FICTIONAL_2031))
    years = calendar.years_known()
    assert {2004, 2025, 2026, 2031} <= years
    assert 2027 not in years


# -- project holiday notices --------------------------------------------------------


def test_data_file_notice_makes_an_unknown_year_official(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.WARNING, logger=WORKCALENDAR_LOGGER)
    calendar = WorkingCalendar.load(write_notices(tmp_path, FICTIONAL_2031))
    # Tue 2031-09-30 -> holiday Oct 1-7 -> Wed Oct 8.
    deadline = calendar.add_working_days(sh(2031, 9, 30, 15), 1)
    assert deadline == Deadline(due_at=sh(2031, 10, 9), warning_at=sh(2031, 10, 8), provisional=False)
    # Make-up Saturday from the notice.
    assert calendar.add_working_days(sh(2031, 10, 10, 9), 1).due_at == sh(2031, 10, 12)
    assert calendar.is_working_day(date(2031, 9, 28))  # Sunday, make-up day
    assert not calendar.is_provisional(date(2031, 9, 28))
    assert caplog.records == []


def test_data_file_notice_overrides_the_package(tmp_path: Path) -> None:
    # Pretend a corrected notice added Oct 8 to the holiday.
    data_file = write_notices(
        tmp_path,
        """
notices:
  - year: 2026
    source: "corrected notice (test data)"
    holidays: [{from: "2026-10-01", to: "2026-10-08"}]
    workdays: ["2026-09-20", "2026-10-10"]
""",
    )
    calendar = WorkingCalendar.load(data_file)
    assert not calendar.is_working_day(date(2026, 10, 8))
    deadline = calendar.add_working_days(sh(2026, 9, 30, 15), 1)
    assert deadline.due_at == sh(2026, 10, 10)  # 24:00 of Fri Oct 9
    assert deadline.provisional is False


def test_unquoted_yaml_dates_are_accepted(tmp_path: Path) -> None:
    data_file = write_notices(
        tmp_path,
        """
notices:
  - year: 2031
    source: "fictional"
    holidays: [2031-10-01, {from: 2031-10-02, to: 2031-10-03}]
""",
    )
    calendar = WorkingCalendar.load(data_file)
    assert not calendar.is_working_day(date(2031, 10, 3))
    assert calendar.is_working_day(date(2031, 10, 6))


def test_notices_can_be_given_in_code() -> None:
    notice = HolidayNotice(
        year=2031,
        holidays=frozenset({date(2031, 1, 1)}),
        workdays=frozenset(),
        source="fictional",
    )
    calendar = WorkingCalendar({2031: notice})
    assert not calendar.is_working_day(date(2031, 1, 1))
    assert not calendar.is_provisional(date(2031, 1, 1))


def test_notice_in_code_must_be_consistent() -> None:
    with pytest.raises(ValueError, match="not in 2031"):
        HolidayNotice(
            year=2031,
            holidays=frozenset({date(2030, 12, 31)}),
            workdays=frozenset(),
            source="fictional",
        )
    notice = HolidayNotice(year=2031, holidays=frozenset(), workdays=frozenset(), source="x")
    with pytest.raises(ValueError, match="filed under 2030"):
        WorkingCalendar({2030: notice})


def test_shipped_data_file_loads_and_holds_no_invented_notices() -> None:
    data_file = default_calendar_file()
    assert data_file.is_file()
    calendar = WorkingCalendar.load(data_file)
    assert calendar.years_known() == WorkingCalendar().years_known()


def test_no_data_file_or_a_missing_one_means_no_notices(tmp_path: Path) -> None:
    for calendar in (
        WorkingCalendar.load(None),
        WorkingCalendar.load(tmp_path / "absent.yaml"),
    ):
        assert calendar.add_working_days(sh(2026, 9, 30, 15), 1).due_at == sh(2026, 10, 9)


@pytest.mark.parametrize(
    ("body", "path", "reason"),
    [
        pytest.param(
            """
notices:
  - year: 2031
    source: "x"
    holidays: ["2031-01-01", "2032-01-01"]
""",
            "notices[0].holidays[1]",
            "not in the notice's year 2031",
            id="date-outside-the-year",
        ),
        pytest.param(
            """
notices:
  - year: 2031
    source: "x"
    holidays: [{from: "2031-12-30", to: "2032-01-02"}]
""",
            "notices[0].holidays[0].to",
            "not in the notice's year 2031",
            id="range-outside-the-year",
        ),
        pytest.param(
            """
notices:
  - year: 2031
    source: "x"
    holidays: [{from: "2031-09-27", to: "2031-10-07"}]
    workdays: ["2031-09-28"]
""",
            "notices[0].workdays[0]",
            "both a workday and a holiday (at notices[0].holidays[0])",
            id="holiday-and-workday",
        ),
        pytest.param(
            """
notices:
  - year: 2031
    source: "x"
    holidays: []
  - year: 2031
    source: "y"
    holidays: []
""",
            "notices[1].year",
            "duplicate year 2031 (already in notices[0])",
            id="duplicate-year",
        ),
        pytest.param(
            """
notices:
  - year: 2031
    source: "x"
    holidays: ["2031-02-30"]
""",
            "notices[0].holidays[0]",
            "not a valid date '2031-02-30'",
            id="impossible-date",
        ),
        pytest.param(
            """
notices:
  - year: 2031
    source: "x"
    holidays: ["2031-01-01", "2031/10/01"]
""",
            "notices[0].holidays[1]",
            "expected a date as 'YYYY-MM-DD'",
            id="malformed-date",
        ),
        pytest.param(
            """
notices:
  - year: "2031"
    source: "x"
    holidays: []
""",
            "notices[0].year",
            "expected a year as an integer",
            id="year-not-an-integer",
        ),
        pytest.param(
            """
notices:
  - year: 2031
    source: "x"
    holidays: []
    workdays: ["2031-10-08"]
""",
            "notices[0].workdays[0]",
            "make-up working days fall on weekends",
            id="make-up-day-on-a-weekday",
        ),
        pytest.param(
            """
notices:
  - year: 2031
    source: "x"
    holiday: []
""",
            "notices[0]",
            "unknown key(s): holiday",
            id="misspelt-key",
        ),
    ],
)
def test_data_file_errors_name_the_file_and_the_path(tmp_path: Path, body: str, path: str, reason: str) -> None:
    data_file = write_notices(tmp_path, body)
    with pytest.raises(CalendarDataError) as caught:
        WorkingCalendar.load(data_file)
    error = caught.value
    assert error.file == data_file
    assert error.path == path
    assert reason in error.reason
    assert str(data_file) in str(error)
    assert path in str(error)


def test_data_file_that_is_not_yaml_is_reported(tmp_path: Path) -> None:
    data_file = write_notices(tmp_path, "notices: [\n")
    with pytest.raises(CalendarDataError, match="not valid YAML") as caught:
        WorkingCalendar.load(data_file)
    assert str(data_file) in str(caught.value)


# -- escalation ----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("after", "expected"),
    [
        # Overdue from Sat 00:00: the next 督办 is at the end of Monday.
        (sh(2026, 10, 17), sh(2026, 10, 20)),
        # Sunday afternoon, likewise.
        (sh(2026, 10, 18, 15), sh(2026, 10, 20)),
        # Overdue from Tue 00:00 (end of Monday): next at the end of Tuesday.
        (sh(2026, 10, 20), sh(2026, 10, 21)),
        (sh(2026, 10, 20, 23, 59), sh(2026, 10, 21)),
        # End of Wed Sep 30 -> the whole National Day holiday -> end of Thu Oct 8.
        (sh(2026, 10, 1), sh(2026, 10, 9)),
        (sh(2026, 10, 5, 12), sh(2026, 10, 9)),
        # Then daily again, including the make-up Saturday.
        (sh(2026, 10, 9), sh(2026, 10, 10)),
        (sh(2026, 10, 10), sh(2026, 10, 11)),
        (sh(2026, 10, 11), sh(2026, 10, 13)),
    ],
)
def test_next_escalation_is_at_the_end_of_the_next_working_day(
    calendar: WorkingCalendar, after: datetime, expected: datetime
) -> None:
    assert calendar.next_escalation_at(after) == expected
    assert calendar.next_escalation_at(after) == (calendar.add_working_days(after, 0).due_at)


# -- working seconds (paused clocks) ------------------------------------------------

HOUR = 3600.0
DAY = 24 * HOUR


@pytest.mark.parametrize(
    ("start", "end", "expected"),
    [
        (sh(2026, 10, 8, 9), sh(2026, 10, 8, 17), 8 * HOUR),
        # Fri noon to Mon noon: the weekend does not count.
        (sh(2026, 10, 16, 12), sh(2026, 10, 19, 12), DAY),
        # Wed Sep 30 noon to Thu Oct 8 noon: the holiday does not count.
        (sh(2026, 9, 30, 12), sh(2026, 10, 8, 12), DAY),
        # Fri Oct 9 to Mon Oct 12: Friday and the make-up Saturday count.
        (sh(2026, 10, 9), sh(2026, 10, 12), 2 * DAY),
        # Entirely within a rest day.
        (sh(2026, 10, 3, 1), sh(2026, 10, 3, 23), 0.0),
        # Empty and reversed spans.
        (sh(2026, 10, 8, 9), sh(2026, 10, 8, 9), 0.0),
        (sh(2026, 10, 8, 17), sh(2026, 10, 8, 9), 0.0),
    ],
)
def test_working_seconds_between_skips_rest_days(
    calendar: WorkingCalendar, start: datetime, end: datetime, expected: float
) -> None:
    assert calendar.working_seconds_between(start, end) == expected


def test_working_seconds_between_mixed_time_zones(calendar: WorkingCalendar) -> None:
    start = datetime(2026, 10, 8, 1, tzinfo=UTC)  # Oct 8, 09:00 in Shanghai
    end = sh(2026, 10, 8, 17)
    assert calendar.working_seconds_between(start, end) == 8 * HOUR


def test_working_seconds_between_long_span(calendar: WorkingCalendar) -> None:
    # The whole of 2025 and 2026, counted a day at a time from the package.
    start, end = sh(2025, 1, 1), sh(2027, 1, 1)
    working_days = sum(
        calendar.is_working_day(date(2025, 1, 1) + timedelta(days=n))
        for n in range((date(2027, 1, 1) - date(2025, 1, 1)).days)
    )
    assert calendar.working_seconds_between(start, end) == working_days * DAY


def test_add_working_seconds_resumes_a_paused_clock(calendar: WorkingCalendar) -> None:
    # 1.5 working days left, resumed on Wed Sep 30 at 12:00: the rest of Sep 30
    # (12 h) and all of Thu Oct 8 (24 h) -> 24:00 of Oct 8.
    deadline = calendar.add_working_seconds(sh(2026, 9, 30, 12), 1.5 * DAY)
    assert deadline == Deadline(due_at=sh(2026, 10, 9), warning_at=sh(2026, 10, 8), provisional=False)


def test_add_working_seconds_ending_mid_day_warns_from_that_day(
    calendar: WorkingCalendar,
) -> None:
    deadline = calendar.add_working_seconds(sh(2026, 9, 30, 12), 13 * HOUR)
    assert deadline.due_at == sh(2026, 10, 8, 1)
    assert deadline.warning_at == sh(2026, 10, 8)


def test_add_working_seconds_resumed_on_a_rest_day_starts_at_the_next_working_day(
    calendar: WorkingCalendar,
) -> None:
    deadline = calendar.add_working_seconds(sh(2026, 10, 3, 15), 2 * HOUR)
    assert deadline.due_at == sh(2026, 10, 8, 2)


def test_add_zero_working_seconds(calendar: WorkingCalendar) -> None:
    on_a_working_day = calendar.add_working_seconds(sh(2026, 10, 8, 9), 0)
    assert on_a_working_day == Deadline(due_at=sh(2026, 10, 8, 9), warning_at=None, provisional=False)
    on_a_rest_day = calendar.add_working_seconds(sh(2026, 10, 3, 9), 0)
    assert on_a_rest_day.due_at == sh(2026, 10, 8)


def test_add_working_seconds_rejects_negative_or_non_finite_amounts(
    calendar: WorkingCalendar,
) -> None:
    for bad in (-1.0, float("nan"), float("inf")):
        with pytest.raises(ValueError, match="seconds"):
            calendar.add_working_seconds(sh(2026, 10, 8), bad)


def test_add_working_seconds_into_an_unknown_year_is_provisional(
    calendar: WorkingCalendar,
) -> None:
    deadline = calendar.add_working_seconds(sh(2026, 12, 31, 12), DAY)
    assert deadline.due_at == sh(2027, 1, 1, 12)
    assert deadline.provisional is True


STARTS = [
    sh(2026, 9, 18, 17, 30),  # Friday before the make-up Sunday
    sh(2026, 9, 24, 23, 59),  # just before Mid-Autumn
    sh(2026, 9, 30, 12),  # just before National Day
    sh(2026, 10, 3, 8),  # inside National Day
    sh(2026, 10, 10, 0),  # make-up Saturday, at midnight
    sh(2026, 10, 11, 6),  # Sunday
    datetime(2026, 12, 30, 20, tzinfo=UTC),  # near the end of the known years
]
AMOUNTS = [0.0, 1.0, 0.5, 59.0, HOUR, 11.5 * HOUR, DAY, DAY + 1, 3.25 * DAY, 20 * DAY]


@pytest.mark.parametrize("start", STARTS)
def test_add_working_seconds_is_the_inverse_of_working_seconds_between(
    calendar: WorkingCalendar, start: datetime
) -> None:
    for seconds in AMOUNTS:
        deadline = calendar.add_working_seconds(start, seconds)
        due_at = deadline.due_at
        assert due_at >= start
        assert calendar.working_seconds_between(start, due_at) == seconds
        # Earliest such instant: a microsecond earlier is not enough.
        if seconds:
            before = due_at - timedelta(microseconds=1)
            assert calendar.working_seconds_between(start, before) < seconds
            assert deadline.warning_at is not None
            assert deadline.warning_at <= before < deadline.warning_at + timedelta(days=1)
            assert calendar.is_working_day(deadline.warning_at.date())


@pytest.mark.parametrize("working_days", [1, 2, 5, 20])
def test_full_working_days_left_give_the_same_deadline_from_a_day_start(
    calendar: WorkingCalendar, working_days: int
) -> None:
    # Resumed at 00:00 of a working day with N whole days left, the clock ends at
    # the end of the (N-1)th working day after it, like a limit opened the day before.
    resumed_at = sh(2026, 9, 30)
    by_seconds = calendar.add_working_seconds(resumed_at, working_days * DAY)
    by_days = calendar.add_working_days(sh(2026, 9, 29, 12), working_days)
    assert by_seconds.due_at == by_days.due_at
    assert by_seconds.warning_at == by_days.warning_at


def test_from_1_december_next_years_missing_notice_is_named(calendar: WorkingCalendar) -> None:
    # The package covers 2026 but not 2027: the warning starts on 1 December 2026.
    assert calendar.missing_next_year(date(2026, 11, 30)) is None
    assert calendar.missing_next_year(date(2026, 12, 1)) == 2027
    assert calendar.missing_next_year(date(2025, 12, 31)) is None  # 2026 is known


def test_a_loaded_notice_for_next_year_ends_the_warning(tmp_path: Path) -> None:
    calendar = WorkingCalendar.load(write_notices(tmp_path, FICTIONAL_2031))
    assert calendar.missing_next_year(date(2030, 12, 2)) is None
    assert calendar.missing_next_year(date(2031, 12, 2)) == 2032

"""Dates, times and time limits as people read them, in Chinese and in Beijing time.

Pages never show ISO strings or working hours left: a date is ``2026年12月3日``, a moment
``2026年12月3日 14:30`` (Asia/Shanghai), and a due time at 24:00 of its last day — stored as
00:00 of the next calendar day (see :class:`domain.workcalendar.Deadline`) — is shown as
that last day, ``2026年12月3日``, which a page follows with 前. The time a step has left is
counted in working days on the statutory calendar: ``剩余 2 个工作日``, ``今日到期``,
``已超期 1 个工作日``.

Pure functions: no clock (callers pass ``now``) and no I/O.
"""

from __future__ import annotations

from datetime import date, datetime, time, timedelta

from domain.workcalendar import SHANGHAI, WorkingCalendar

__all__ = [
    "date_zh",
    "datetime_zh",
    "due_day",
    "due_zh",
    "overdue_working_days",
    "overdue_zh",
    "time_left_zh",
    "working_days_left",
]

Moment = datetime | date | str | None

# Far more working days than any time limit has: stops a loop over a calendar gone wrong.
_MAX_DAYS = 100_000


def _parse(moment: Moment) -> datetime | date | None:
    """A datetime (in Shanghai when it has a zone; naive ones are taken as Beijing time), a
    date, or None for None and empty strings. ISO strings are parsed."""
    if moment is None or moment == "":
        return None
    if isinstance(moment, str):
        moment = datetime.fromisoformat(moment) if "T" in moment or " " in moment else date.fromisoformat(moment)
    if isinstance(moment, datetime) and moment.tzinfo is not None:
        return moment.astimezone(SHANGHAI)
    return moment


def _day(value: date) -> str:
    return f"{value.year}年{value.month}月{value.day}日"


def date_zh(moment: Moment) -> str:
    """``2026年12月3日``: the Beijing date of a moment, or a date; empty for None."""
    value = _parse(moment)
    if value is None:
        return ""
    return _day(value.date() if isinstance(value, datetime) else value)


def datetime_zh(moment: Moment) -> str:
    """``2026年12月3日 14:30`` in Beijing time; a date alone is written as a date; empty for None."""
    value = _parse(moment)
    if value is None:
        return ""
    if not isinstance(value, datetime):
        return _day(value)
    return f"{_day(value.date())} {value:%H:%M}"


def _is_midnight(value: datetime) -> bool:
    return value.time() == time(0)


def due_day(moment: datetime) -> date:
    """The last day of a due time (in Beijing): the day before when it falls at 00:00
    (期限届满日的二十四时), its own day otherwise."""
    value = moment.astimezone(SHANGHAI) if moment.tzinfo is not None else moment
    return value.date() - timedelta(days=1) if _is_midnight(value) else value.date()


def due_zh(moment: Moment) -> str:
    """A due time as people read it: its last day, ``2026年12月3日``, when it falls at 24:00 (stored
    as 00:00 of the next day); ``2026年12月3日 14:30`` otherwise (a clock resumed after 补正, an
    accelerated test clock). Pages write 前 after it. Empty for None."""
    value = _parse(moment)
    if value is None:
        return ""
    if not isinstance(value, datetime):
        return _day(value)
    return _day(due_day(value)) if _is_midnight(value) else datetime_zh(value)


# --- time left, in working days ------------------------------------------------------------


def _end_of_working_day(calendar: WorkingCalendar, after: datetime) -> datetime:
    """The end (24:00) of the first working day on or after ``after``'s date."""
    return calendar.add_working_days(after, 0).due_at


def working_days_left(calendar: WorkingCalendar, due_at: datetime, now: datetime) -> int:
    """The working days after today up to the last day of ``due_at`` (a due time still ahead
    of ``now``): 0 when it falls due today, 1 when tomorrow is a working day and the last one.
    Rest days and holidays are skipped, make-up working days (调休补班) count. On a rest day,
    the next working day is still to come and counts."""
    end = _end_of_working_day(calendar, now)
    days = 0
    while end < due_at and days < _MAX_DAYS:
        days += 1
        end = _end_of_working_day(calendar, end)
    # On a rest day the next working day is still to come: it counts as a day left.
    if not calendar.is_working_day(now.astimezone(SHANGHAI).date()):
        days += 1
    return days


def overdue_working_days(calendar: WorkingCalendar, due_at: datetime, at: datetime) -> int:
    """Working days overlapping the time from ``due_at`` to ``at``: 1 from the first moment
    of the first working day after the due time, 2 once that day is over and another has
    begun. 0 while ``at`` is not past ``due_at``, and on the rest days right after it."""
    if at <= due_at:
        return 0
    days = 0
    end = _end_of_working_day(calendar, due_at)
    while end <= at and days < _MAX_DAYS:
        days += 1  # a working day after the due time, already over
        end = _end_of_working_day(calendar, end)
    # The working day ``at`` falls in, begun and not over (its end is still ahead).
    if calendar.is_working_day(at.astimezone(SHANGHAI).date()):
        days += 1
    return days


def overdue_zh(calendar: WorkingCalendar, due_at: datetime, at: datetime) -> str:
    """``已超期 2 个工作日``; ``已超期`` alone on the rest days right after the due time."""
    days = overdue_working_days(calendar, due_at, at)
    return f"已超期 {days} 个工作日" if days else "已超期"


def time_left_zh(calendar: WorkingCalendar, due_at: datetime, now: datetime) -> str:
    """How a due time stands at ``now``: ``剩余 2 个工作日``, ``今日到期`` or ``已超期 1 个工作日``."""
    if due_at <= now:
        return overdue_zh(calendar, due_at, now)
    days = working_days_left(calendar, due_at, now)
    return f"剩余 {days} 个工作日" if days else "今日到期"

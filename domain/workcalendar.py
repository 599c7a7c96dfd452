"""The working-day calendar behind every statutory time limit in OneThing.

Licensing time limits are counted in working days with statutory holidays excluded
(行政许可法 第82条). A period counted in days starts the day after it is opened
(民法典 第201条), and ends at 24:00 of its last day, a rest day moving it to the next
working day (第203条). This module turns those rules into instants.

Whether a day is a working day is decided, in order of preference, by:

1. a State Council holiday notice loaded from the project's data file for the day's
   year (lets operators add a newly published notice before the package has it;
   it also overrides the package);
2. the ``chinesecalendar`` package, for the years it knows;
3. a fallback of weekends off, Monday to Friday working. Such a day is
   *provisional*: a deadline that consulted one is marked so, and a warning is
   logged once per year.

The module is pure: no clock, and no I/O except reading the data file in
:meth:`WorkingCalendar.load`.
"""

from __future__ import annotations

import logging
import math
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import chinese_calendar
import yaml

__all__ = [
    "SHANGHAI",
    "AcceleratedCalendar",
    "CalendarDataError",
    "Deadline",
    "HolidayNotice",
    "WorkingCalendar",
    "default_calendar_file",
    "load_holiday_notices",
    "make_calendar",
]

SHANGHAI = ZoneInfo("Asia/Shanghai")

logger = logging.getLogger(__name__)

_ONE_DAY = timedelta(days=1)
_EPSILON = timedelta(microseconds=1)  # datetime's resolution
_SATURDAY = 5
_ISO_DATE = re.compile(r"\d{4}-\d{2}-\d{2}")


def default_calendar_file() -> Path:
    """The holiday-notice data file shipped with the project."""
    return Path(__file__).resolve().parent / "data" / "holiday_notices.yaml"


@dataclass(frozen=True)
class Deadline:
    """When a time limit runs out.

    ``due_at`` is 24:00 of the last day, written as 00:00 of the next calendar day.
    ``warning_at`` is the start of the last day (None for a limit of 0 working days,
    which has no day of its own to warn on). ``provisional`` is True when any day
    consulted came from the weekends-only fallback, so the instant may move once
    the year's holiday notice is known.
    """

    due_at: datetime
    warning_at: datetime | None
    provisional: bool


@dataclass(frozen=True)
class HolidayNotice:
    """One year's holiday arrangement, as published by the State Council."""

    year: int
    holidays: frozenset[date]  # days off, weekdays or not
    workdays: frozenset[date]  # make-up working days on a weekend (调休补班)
    source: str  # the notice's title

    def __post_init__(self) -> None:
        # Checked here too so that notices built in code obey the file's rules.
        for day in self.holidays | self.workdays:
            if day.year != self.year:
                raise ValueError(f"{day.isoformat()} is not in {self.year} ({self.source})")
        overlap = self.holidays & self.workdays
        if overlap:
            days = ", ".join(sorted(d.isoformat() for d in overlap))
            raise ValueError(f"both holiday and workday: {days} ({self.source})")


class CalendarDataError(ValueError):
    """The holiday-notice data file is malformed.

    The message names the file, the place inside it (e.g. ``notices[0].holidays[1]``)
    and what is wrong, so an operator can fix it without reading code.
    """

    def __init__(self, file: Path, path: str, reason: str) -> None:
        self.file = file
        self.path = path
        self.reason = reason
        where = f"{file}: {path}" if path else str(file)
        super().__init__(f"{where}: {reason}")


class WorkingCalendar:
    """Working days and statutory deadlines in Asia/Shanghai."""

    def __init__(
        self,
        notices: Mapping[int, HolidayNotice] | None = None,
        *,
        use_package: bool = True,
    ) -> None:
        self._notices: dict[int, HolidayNotice] = dict(notices or {})
        for year, notice in self._notices.items():
            if notice.year != year:
                raise ValueError(f"notice for {notice.year} filed under {year}")
        self._use_package = use_package
        # The package recomputes its year range on every call; days are cached.
        self._status_cache: dict[date, tuple[bool, bool]] = {}
        self._fallback_years_warned: set[int] = set()

    @classmethod
    def load(cls, data_file: Path | None) -> WorkingCalendar:
        """A calendar using the notices in ``data_file`` (None or missing: none)."""
        if data_file is None:
            return cls()
        if not data_file.exists():
            # Allowed (the package may be enough), but a mistyped path would
            # otherwise silently drop the operator's notices.
            logger.warning("holiday notice file %s not found; using no notices", data_file)
            return cls()
        return cls(load_holiday_notices(data_file))

    # -- days ---------------------------------------------------------------

    def is_working_day(self, day: date) -> bool:
        """True if ``day`` (a Shanghai calendar date) is a working day."""
        return self._status(day)[0]

    def is_provisional(self, day: date) -> bool:
        """True if the day's status comes only from the weekends-only fallback."""
        return self._status(day)[1]

    def years_known(self) -> frozenset[int]:
        """Years with official data (a loaded notice or the package)."""
        years = set(self._notices)
        if self._use_package:
            package_days: Iterable[date] = chinese_calendar.holidays
            package_years = [d.year for d in package_days]
            if package_years:
                years.update(range(min(package_years), max(package_years) + 1))
        return frozenset(years)

    def missing_next_year(self, today: date) -> int | None:
        """From 1 December, next year while its State Council holiday notice is not loaded
        (deadlines reaching into it are then provisional, 暂定); None otherwise."""
        if today.month == 12 and today.year + 1 not in self.years_known():
            return today.year + 1
        return None

    def _status(self, day: date) -> tuple[bool, bool]:
        """(is a working day, is provisional)."""
        if isinstance(day, datetime):
            # A datetime's date depends on its zone; callers must pick the day.
            raise TypeError("expected a date, got a datetime")
        cached = self._status_cache.get(day)
        if cached is None:
            cached = self._compute_status(day)
            self._status_cache[day] = cached
        return cached

    def _compute_status(self, day: date) -> tuple[bool, bool]:
        is_weekday = day.weekday() < _SATURDAY
        notice = self._notices.get(day.year)
        if notice is not None:
            if day in notice.holidays:
                return False, False
            if day in notice.workdays:
                return True, False
            return is_weekday, False
        if self._use_package:
            try:
                return bool(chinese_calendar.is_workday(day)), False
            except NotImplementedError:
                pass  # year unknown to the package
        if day.year not in self._fallback_years_warned:
            self._fallback_years_warned.add(day.year)
            logger.warning(
                "no holiday notice for %d: counting only weekends as rest days; "
                "deadlines touching %d are provisional until its notice is loaded",
                day.year,
                day.year,
            )
        return is_weekday, True

    # -- deadlines ------------------------------------------------------------

    def add_working_days(self, opened_at: datetime, working_days: int) -> Deadline:
        """The deadline of a limit of ``working_days`` working days opened then.

        Counting starts from the opening day, or the next working day if the opening
        day is a rest day; that day is not counted (民法典 第201条). A limit of 0 ends
        at the end of that day.
        """
        if working_days < 0:
            raise ValueError(f"working_days must be >= 0, got {working_days}")
        day = _shanghai(opened_at, "opened_at").date()
        provisional = False
        while True:
            is_working, day_provisional = self._status(day)
            provisional |= day_provisional
            if is_working:
                break
            day += _ONE_DAY
        remaining = working_days
        while remaining:
            day += _ONE_DAY
            is_working, day_provisional = self._status(day)
            provisional |= day_provisional
            if is_working:
                remaining -= 1
        return Deadline(
            due_at=_midnight(day + _ONE_DAY),
            warning_at=_midnight(day) if working_days else None,
            provisional=provisional,
        )

    def next_escalation_at(self, after: datetime) -> datetime:
        """When the next 督办 is due for a step still overdue at ``after``.

        One follows at the end of each working day the step stays overdue: the end of
        the first working day on or after ``after``'s date.
        """
        return self.add_working_days(after, 0).due_at

    def working_seconds_between(self, start: datetime, end: datetime) -> float:
        """Seconds of ``[start, end)`` that fall on working days (whole days count)."""
        start_at = _as_utc(start, "start")
        end_at = _as_utc(end, "end")
        if end_at <= start_at:
            return 0.0
        total = timedelta(0)
        # Only days overlapping the span are consulted: an end at midnight does not
        # look at the following day.
        day = start_at.astimezone(SHANGHAI).date()
        last_day = (end_at - _EPSILON).astimezone(SHANGHAI).date()
        while day <= last_day:
            if self._status(day)[0]:
                overlap_start = max(start_at, _day_start(day))
                overlap_end = min(end_at, _day_start(day + _ONE_DAY))
                total += overlap_end - overlap_start
            day += _ONE_DAY
        return total.total_seconds()

    def add_working_seconds(self, start: datetime, seconds: float) -> Deadline:
        """The earliest instant with ``seconds`` of working time since ``start``.

        The inverse of :meth:`working_seconds_between` (to the microsecond); used to
        resume a step's clock with its remaining time after a 补正 pause.
        ``warning_at`` is the start of the day holding the last working second
        (None when ``seconds`` is 0: there is no such second).
        """
        if not math.isfinite(seconds) or seconds < 0:
            raise ValueError(f"seconds must be finite and >= 0, got {seconds}")
        cursor = _as_utc(start, "start")
        requested = timedelta(seconds=seconds)  # rounds to whole microseconds
        remaining = requested
        day = cursor.astimezone(SHANGHAI).date()
        provisional = False
        while True:
            is_working, day_provisional = self._status(day)
            provisional |= day_provisional
            if is_working:
                counted_from = max(cursor, _day_start(day))
                available = _day_start(day + _ONE_DAY) - counted_from
                if remaining <= available:
                    due_at = counted_from + remaining
                    break
                remaining -= available
            day += _ONE_DAY
        warning_at: datetime | None = None
        if requested:
            last_second_day = (due_at - _EPSILON).astimezone(SHANGHAI).date()
            warning_at = _midnight(last_second_day)
        return Deadline(
            due_at=due_at.astimezone(SHANGHAI),
            warning_at=warning_at,
            provisional=provisional,
        )


class AcceleratedCalendar(WorkingCalendar):
    """A clock on which every "working day" lasts ``day_seconds`` real seconds.

    For fault-injection tests, demos and benchmarks on a real Temporal server, where
    SLA timers must fall due within seconds. Days are consecutive slots of
    ``day_seconds`` counted from the Unix epoch, all of them working days, and the
    statutory rules keep their shape: a limit of N days ends at the end of the N-th
    slot after the opening one, the warning comes at the start of the last slot and
    督办 at the end of each further slot. The workflow cannot tell the difference:
    every deadline reaches it through the calendar activities.
    """

    def __init__(self, day_seconds: float) -> None:
        if not math.isfinite(day_seconds) or day_seconds <= 0:
            raise ValueError(f"day_seconds must be > 0, got {day_seconds}")
        super().__init__(use_package=False)
        self.day_seconds = day_seconds

    def _slot(self, moment: datetime) -> int:
        return math.floor(_as_utc(moment, "moment").timestamp() / self.day_seconds)

    def _slot_start(self, slot: int) -> datetime:
        return datetime.fromtimestamp(slot * self.day_seconds, tz=SHANGHAI)

    def missing_next_year(self, today: date) -> int | None:
        return None  # its "days" are seconds long and never provisional

    def _compute_status(self, day: date) -> tuple[bool, bool]:
        return True, False

    def add_working_days(self, opened_at: datetime, working_days: int) -> Deadline:
        if working_days < 0:
            raise ValueError(f"working_days must be >= 0, got {working_days}")
        last = self._slot(opened_at) + working_days
        return Deadline(
            due_at=self._slot_start(last + 1),
            warning_at=self._slot_start(last) if working_days else None,
            provisional=False,
        )

    def next_escalation_at(self, after: datetime) -> datetime:
        return self._slot_start(self._slot(after) + 1)

    def working_seconds_between(self, start: datetime, end: datetime) -> float:
        return max(0.0, (_as_utc(end, "end") - _as_utc(start, "start")).total_seconds())

    def add_working_seconds(self, start: datetime, seconds: float) -> Deadline:
        if not math.isfinite(seconds) or seconds < 0:
            raise ValueError(f"seconds must be finite and >= 0, got {seconds}")
        due_at = _as_utc(start, "start") + timedelta(seconds=seconds)
        warning_at = self._slot_start(self._slot(due_at - _EPSILON)) if seconds else None
        return Deadline(due_at=due_at.astimezone(SHANGHAI), warning_at=warning_at, provisional=False)


def make_calendar(calendar_file: Path | None, working_day_seconds: float | None = None) -> WorkingCalendar:
    """The calendar a process runs on: the statutory one, or an accelerated clock when
    ``working_day_seconds`` is set (never in production; settings refuse it there)."""
    if working_day_seconds is not None:
        return AcceleratedCalendar(working_day_seconds)
    return WorkingCalendar.load(calendar_file or default_calendar_file())


# -- time helpers -----------------------------------------------------------------


def _shanghai(moment: datetime, name: str) -> datetime:
    if moment.tzinfo is None or moment.utcoffset() is None:
        raise ValueError(f"{name} must be timezone-aware, got naive {moment.isoformat()}")
    return moment.astimezone(SHANGHAI)


def _as_utc(moment: datetime, name: str) -> datetime:
    # Arithmetic happens in UTC: aware datetimes sharing a tzinfo subtract and compare
    # as wall-clock times, which is wrong across DST (Shanghai had it in 1986-1991).
    return _shanghai(moment, name).astimezone(UTC)


def _midnight(day: date) -> datetime:
    """00:00 of ``day`` in Shanghai."""
    return datetime.combine(day, time(0), tzinfo=SHANGHAI)


def _day_start(day: date) -> datetime:
    """00:00 of ``day`` in Shanghai, as a UTC instant."""
    return _midnight(day).astimezone(UTC)


# -- data file ----------------------------------------------------------------------


def load_holiday_notices(data_file: Path) -> dict[int, HolidayNotice]:
    """Read and validate a holiday-notice file (format: see the shipped file's header).

    Raises CalendarDataError naming the file, the place in it and the reason.
    """
    try:
        text = data_file.read_text(encoding="utf-8")
    except OSError as exc:
        raise CalendarDataError(data_file, "", f"cannot read: {exc}") from exc
    try:
        document: Any = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        raise CalendarDataError(data_file, "", f"not valid YAML: {exc}") from exc
    return _NoticeParser(data_file).parse(document)


class _NoticeParser:
    def __init__(self, data_file: Path) -> None:
        self._file = data_file

    def _error(self, path: str, reason: str) -> CalendarDataError:
        return CalendarDataError(self._file, path, reason)

    def parse(self, document: Any) -> dict[int, HolidayNotice]:
        if not isinstance(document, dict) or set(document) != {"notices"}:
            raise self._error("", "expected a mapping with exactly one key, 'notices'")
        entries = document["notices"]
        if not isinstance(entries, list):
            raise self._error("notices", "expected a list of notices")
        notices: dict[int, HolidayNotice] = {}
        first_index_of_year: dict[int, int] = {}
        for index, entry in enumerate(entries):
            notice = self._parse_notice(entry, f"notices[{index}]")
            earlier = first_index_of_year.get(notice.year)
            if earlier is not None:
                raise self._error(
                    f"notices[{index}].year",
                    f"duplicate year {notice.year} (already in notices[{earlier}])",
                )
            first_index_of_year[notice.year] = index
            notices[notice.year] = notice
        return notices

    def _parse_notice(self, entry: Any, path: str) -> HolidayNotice:
        if not isinstance(entry, dict):
            raise self._error(path, "expected a mapping with year, source, holidays, workdays")
        allowed = {"year", "source", "holidays", "workdays"}
        unknown = sorted(str(key) for key in entry if key not in allowed)
        if unknown:
            raise self._error(path, f"unknown key(s): {', '.join(unknown)}")
        for key in ("year", "source", "holidays"):
            if key not in entry:
                raise self._error(path, f"missing key '{key}'")

        year = entry["year"]
        # bool is an int subclass; `year: true` is a typo, not a year.
        if not isinstance(year, int) or isinstance(year, bool) or not 1900 <= year <= 9999:
            raise self._error(f"{path}.year", f"expected a year as an integer, got {year!r}")
        source = entry["source"]
        if not isinstance(source, str) or not source.strip():
            raise self._error(f"{path}.source", "expected the notice's title as a non-empty string")

        holiday_origin = self._parse_holidays(entry["holidays"], year, f"{path}.holidays")
        workdays = self._parse_workdays(entry.get("workdays", []), year, f"{path}.workdays", holiday_origin)
        return HolidayNotice(
            year=year,
            holidays=frozenset(holiday_origin),
            workdays=frozenset(workdays),
            source=source.strip(),
        )

    def _parse_holidays(self, items: Any, year: int, path: str) -> dict[date, str]:
        """Holiday dates, each with the path it came from (for later error messages)."""
        if not isinstance(items, list):
            raise self._error(path, "expected a list of dates or {from, to} ranges")
        origin: dict[date, str] = {}
        for index, item in enumerate(items):
            item_path = f"{path}[{index}]"
            if isinstance(item, dict):
                if set(item) != {"from", "to"}:
                    raise self._error(item_path, "a range needs exactly the keys 'from' and 'to'")
                first = self._parse_date(item["from"], year, f"{item_path}.from")
                last = self._parse_date(item["to"], year, f"{item_path}.to")
                if last < first:
                    raise self._error(item_path, f"range ends ({last}) before it starts ({first})")
                day = first
                while day <= last:
                    origin.setdefault(day, item_path)
                    day += _ONE_DAY
            else:
                origin.setdefault(self._parse_date(item, year, item_path), item_path)
        return origin

    def _parse_workdays(self, items: Any, year: int, path: str, holiday_origin: Mapping[date, str]) -> set[date]:
        if not isinstance(items, list):
            raise self._error(path, "expected a list of dates")
        workdays: set[date] = set()
        for index, item in enumerate(items):
            item_path = f"{path}[{index}]"
            day = self._parse_date(item, year, item_path)
            if day in holiday_origin:
                raise self._error(
                    item_path,
                    f"{day} is both a workday and a holiday (at {holiday_origin[day]})",
                )
            if day.weekday() < _SATURDAY:
                # A make-up day on a weekday changes nothing: almost surely a typo.
                raise self._error(
                    item_path,
                    f"{day} is a {day:%A}; make-up working days fall on weekends",
                )
            workdays.add(day)
        return workdays

    def _parse_date(self, value: Any, year: int, path: str) -> date:
        # YAML turns an unquoted 2027-01-01 into a date; accept that and ISO strings,
        # but not timestamps (datetime is a date subclass).
        if isinstance(value, datetime):
            raise self._error(path, f"expected a date, got a timestamp {value!r}")
        if isinstance(value, date):
            day = value
        elif isinstance(value, str) and _ISO_DATE.fullmatch(value.strip()):
            try:
                day = date.fromisoformat(value.strip())
            except ValueError as exc:
                raise self._error(path, f"not a valid date {value!r}: {exc}") from exc
        else:
            raise self._error(path, f"expected a date as 'YYYY-MM-DD', got {value!r}")
        if day.year != year:
            raise self._error(path, f"{day} is not in the notice's year {year}")
        return day


def missing_notice_warning_zh(year: int) -> str:
    """What supervisors read while next year's holiday notice is not loaded."""
    return (
        f"{year}年节假日安排（国务院办公厅通知）尚未载入：涉及{year}年的办理期限按周末推算，标为“暂定”。"
        f"国务院办公厅通知发布后，请系统管理员补录{year}年安排。"
    )

"""`onething calendar show|load`: the working-day calendar the workers compute deadlines with."""

from __future__ import annotations

import sys
from datetime import date, timedelta
from pathlib import Path
from typing import Any

from settings import get_settings


def show_year(year: int) -> int:
    from domain.workcalendar import make_calendar

    print(describe_year(make_calendar(get_settings().calendar_file), year))
    return 0


def load_notice(file: Path, replace: bool) -> int:
    """Add a State Council holiday notice (YAML) to the calendar file the workers read."""
    from domain.workcalendar import CalendarDataError, default_calendar_file, load_holiday_notices

    target = get_settings().calendar_file or default_calendar_file()
    try:
        incoming = load_holiday_notices(file)
    except (CalendarDataError, OSError) as error:
        print(f"通知文件有误 (invalid notice file): {error}", file=sys.stderr)
        return 1
    current = load_holiday_notices(target) if target.exists() else {}
    clashes = sorted(set(incoming) & set(current))
    if clashes and not replace:
        years = ", ".join(map(str, clashes))
        print(f"日历文件已有 {years} 年的通知，未修改 (already in {target}; --replace to replace)", file=sys.stderr)
        return 1
    merged = {**current, **incoming}
    write_holiday_notices(target, merged)
    for year in sorted(incoming):
        print(f"loaded {year}: {incoming[year].source}")
    print(f"written: {target}. 重启 worker 后生效 (restart the workers: they read the calendar at start)")
    return 0


def describe_year(calendar: Any, year: int) -> str:
    """A year's rest days that fall on weekdays and working days on weekends, with the totals."""
    day, end = date(year, 1, 1), date(year + 1, 1, 1)
    weekday_rest: list[date] = []
    weekend_work: list[date] = []
    working = 0
    provisional = False
    while day < end:
        is_working = calendar.is_working_day(day)
        provisional = provisional or calendar.is_provisional(day)
        working += is_working
        if day.weekday() < 5 and not is_working:
            weekday_rest.append(day)
        elif day.weekday() >= 5 and is_working:
            weekend_work.append(day)
        day += timedelta(days=1)
    lines = [f"{year} 年: {working} 个工作日 (working days)"]
    if provisional:
        lines.append("  尚无该年节假日通知，仅按周末计算，时限为暂定 (no notice yet: weekends only, provisional)")
    lines.append("  工作日放假 (weekday holidays): " + (", ".join(d.isoformat() for d in weekday_rest) or "无"))
    lines.append("  周末调休上班 (make-up working days): " + (", ".join(d.isoformat() for d in weekend_work) or "无"))
    return "\n".join(lines)


def write_holiday_notices(target: Path, notices: dict[int, Any]) -> None:
    """Rewrite the notice file with ``notices``, keeping its explanatory header."""
    import yaml

    header = []
    if target.exists():
        for line in target.read_text(encoding="utf-8").splitlines():
            if not line.startswith("#"):
                break
            header.append(line)
    document = {
        "notices": [
            {
                "year": year,
                "source": notice.source,
                "holidays": sorted(day.isoformat() for day in notice.holidays),
                "workdays": sorted(day.isoformat() for day in notice.workdays),
            }
            for year, notice in sorted(notices.items())
        ]
    }
    body = yaml.safe_dump(document, allow_unicode=True, sort_keys=False)
    target.parent.mkdir(parents=True, exist_ok=True)
    staged = target.with_suffix(".tmp")
    staged.write_text("\n".join([*header, body]), encoding="utf-8")
    staged.replace(target)  # atomic: a worker starting now reads the old file or the new one

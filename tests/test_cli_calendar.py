"""`onething calendar show YEAR | load FILE`: the working-day calendar from the command line."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import date
from pathlib import Path

import pytest

import cli
from domain.workcalendar import default_calendar_file, load_holiday_notices, make_calendar
from settings import get_settings

NOTICE_2099 = """\
notices:
  - year: 2099
    source: "国务院办公厅关于2099年部分节假日安排的通知"
    holidays: ["2099-01-01", {from: "2099-10-01", to: "2099-10-07"}]
    workdays: ["2099-10-10"]
"""


@pytest.fixture
def calendar_file(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    """A copy of the shipped notice file, as an operator's ONETHING_CALENDAR_FILE."""
    target = tmp_path / "holiday_notices.yaml"
    target.write_text(default_calendar_file().read_text(encoding="utf-8"), encoding="utf-8")
    monkeypatch.setenv("ONETHING_ENV", "dev")
    monkeypatch.setenv("ONETHING_CALENDAR_FILE", str(target))
    get_settings.cache_clear()
    yield target
    get_settings.cache_clear()


def test_show_lists_the_national_day_holiday_and_its_make_up_saturday(calendar_file, capsys) -> None:
    assert cli.main(["calendar", "show", "2026"]) == 0
    out = capsys.readouterr().out
    assert "2026 年: 248 个工作日" in out
    holidays, make_up = out.split("周末调休上班")
    assert "2026-10-07" in holidays and "2026-10-08" not in holidays  # the 8th is a working Thursday
    assert "2026-10-10" in make_up  # the Saturday worked for the National Day holiday


def test_show_marks_a_year_without_a_notice_as_provisional(calendar_file, capsys) -> None:
    assert cli.main(["calendar", "show", "2099"]) == 0
    assert "暂定" in capsys.readouterr().out


def test_load_adds_a_new_notice_that_the_calendar_then_uses(calendar_file, tmp_path, capsys) -> None:
    notice = tmp_path / "notice-2099.yaml"
    notice.write_text(NOTICE_2099, encoding="utf-8")

    assert cli.main(["calendar", "load", str(notice)]) == 0

    assert "loaded 2099" in capsys.readouterr().out
    calendar = make_calendar(calendar_file)
    assert not calendar.is_working_day(date(2099, 10, 5))  # a Monday inside the holiday
    assert calendar.is_working_day(date(2099, 10, 10))  # a make-up Saturday
    assert not calendar.is_provisional(date(2099, 10, 5))
    # The file keeps its explanatory header and stays loadable.
    assert calendar_file.read_text(encoding="utf-8").startswith("# Holiday notices of the State Council")
    assert set(load_holiday_notices(calendar_file)) == {2099}
    assert cli.main(["calendar", "show", "2099"]) == 0
    assert "暂定" not in capsys.readouterr().out


def test_load_refuses_a_year_already_loaded_unless_replacing(calendar_file, tmp_path, capsys) -> None:
    notice = tmp_path / "notice-2099.yaml"
    notice.write_text(NOTICE_2099, encoding="utf-8")
    assert cli.main(["calendar", "load", str(notice)]) == 0
    corrected = tmp_path / "corrected-2099.yaml"
    corrected.write_text(NOTICE_2099.replace('"2099-01-01", ', ""), encoding="utf-8")

    assert cli.main(["calendar", "load", str(corrected)]) == 1
    assert "2099" in capsys.readouterr().err
    assert not make_calendar(calendar_file).is_working_day(date(2099, 1, 1))  # unchanged

    assert cli.main(["calendar", "load", "--replace", str(corrected)]) == 0
    assert make_calendar(calendar_file).is_working_day(date(2099, 1, 1))


def test_load_of_a_malformed_notice_names_the_place_and_changes_nothing(calendar_file, tmp_path, capsys) -> None:
    before = calendar_file.read_text(encoding="utf-8")
    broken = tmp_path / "broken.yaml"
    broken.write_text(NOTICE_2099.replace('"2099-10-10"', '"2099-13-10"'), encoding="utf-8")

    assert cli.main(["calendar", "load", str(broken)]) == 1

    error = capsys.readouterr().err
    assert "notices[0].workdays[0]" in error
    assert calendar_file.read_text(encoding="utf-8") == before

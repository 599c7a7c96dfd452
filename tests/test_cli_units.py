"""`onething units add|list|disable|enable` and `onething accounts add --unit-code/--division`:
the organisation model from the command line, with the API's rules (domain/units.py)."""

from __future__ import annotations

import io
from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlmodel import Session

import cli
from api.accounts import authenticate
from infra.db import make_engine
from models.case import Actor
from models.tables import Unit, UserAccount
from settings import get_settings

PASSWORD = "correct horse battery"


@pytest.fixture
def database(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[str]:
    url = f"sqlite:///{tmp_path / 'units.db'}"
    monkeypatch.setenv("ONETHING_ENV", "dev")
    monkeypatch.setenv("DATABASE_URL", url)
    get_settings.cache_clear()
    yield url
    get_settings.cache_clear()


def units(*arguments: str) -> int:
    return cli.main(["units", *arguments])


def add_account(monkeypatch: pytest.MonkeyPatch, *arguments: str) -> int:
    monkeypatch.setattr("sys.stdin", io.StringIO(PASSWORD + "\n"))
    return cli.main(["accounts", "add", *arguments, "--password-stdin"])


def stored_unit(url: str, code: str) -> Unit | None:
    with Session(make_engine(url)) as session:
        return session.get(Unit, code)


def login(url: str, username: str) -> Actor | None:
    with Session(make_engine(url)) as session:
        return authenticate(session, username, PASSWORD)


def test_units_are_added_listed_by_division_disabled_and_enabled(database, capsys):
    assert units("add", "--department", "police", "--division", "330102") == 0
    assert "police_330102" in capsys.readouterr().out
    assert (
        units("add", "--department", "police", "--division", "330203", "--window", "海曙区行政服务中心 5 号窗口") == 0
    )
    hospital = ["--kind", "institution", "--code", "hospital_330106_zjfy", "--name", "浙江大学医学院附属妇产科医院"]
    assert units("add", "--department", "hospital", "--division", "330106", *hospital) == 0
    capsys.readouterr()

    assert units("list", "--division", "330100") == 0  # 杭州市: 上城 and 西湖, not 宁波's 海曙
    listing = capsys.readouterr().out
    assert "杭州市上城区公安分局" in listing and "浙江大学医学院附属妇产科医院" in listing
    assert "police_330203" not in listing

    assert units("disable", "police_330102") == 0
    assert (unit := stored_unit(database, "police_330102")) is not None and unit.active is False  # kept, not deleted
    capsys.readouterr()
    assert units("list", "--disabled") == 0
    assert [line.split()[0] for line in capsys.readouterr().out.splitlines()] == ["police_330102"]
    assert units("enable", "police_330102") == 0
    assert (unit := stored_unit(database, "police_330102")) is not None and unit.active is True
    window = stored_unit(database, "police_330203")
    assert window is not None and window.window_zh == "海曙区行政服务中心 5 号窗口"


def test_bad_input_is_refused_with_exit_status_2_and_the_reason(database, capsys):
    assert units("add", "--department", "police", "--division", "330103") == 2
    error = capsys.readouterr().err
    assert "division_code" in error and "330105" in error  # retired: its successor named
    assert units("add", "--department", "mars", "--division", "330102") == 2
    assert "department" in capsys.readouterr().err
    assert units("add", "--department", "hospital", "--division", "330102", "--kind", "institution") == 2
    error = capsys.readouterr().err
    assert "code" in error and "name_zh" in error
    assert units("list", "--division", "99") == 2
    assert stored_unit(database, "police_330103") is None


def test_a_units_duty_phone_is_given_at_add_and_changed_or_cleared_by_update(database, capsys):
    assert units("add", "--department", "police", "--division", "330102", "--duty-phone", "13700001234") == 0
    assert (unit := stored_unit(database, "police_330102")) is not None and unit.duty_phone == "13700001234"

    assert units("update", "police_330102", "--duty-phone", "13700005678") == 0
    assert "13700005678" in capsys.readouterr().out
    assert (unit := stored_unit(database, "police_330102")) is not None and unit.duty_phone == "13700005678"
    assert units("update", "police_330102", "--duty-phone", "") == 0
    assert (unit := stored_unit(database, "police_330102")) is not None and unit.duty_phone is None


def test_a_bad_duty_phone_is_refused_with_exit_status_2_naming_the_field(database, capsys):
    assert units("add", "--department", "police", "--division", "330102", "--duty-phone", "12345") == 2
    assert "duty_phone" in capsys.readouterr().err
    assert stored_unit(database, "police_330102") is None

    assert units("add", "--department", "police", "--division", "330102") == 0
    assert units("update", "police_330102", "--duty-phone", "0571-8888") == 2
    assert "duty_phone" in capsys.readouterr().err
    assert (unit := stored_unit(database, "police_330102")) is not None and unit.duty_phone is None
    assert units("update", "police_999999", "--duty-phone", "13700001234") == 1


def test_a_taken_code_or_an_unknown_unit_is_refused_with_exit_status_1(database, capsys):
    assert units("add", "--department", "police", "--division", "330102") == 0
    assert units("add", "--department", "police", "--division", "330102") == 1
    assert "police_330102" in capsys.readouterr().err
    assert units("disable", "police_999999") == 1


def test_an_officer_added_to_a_unit_logs_in_as_its_member(database, monkeypatch):
    units("add", "--department", "police", "--division", "330203")

    # The department comes from the unit when --unit is not given.
    assert add_account(monkeypatch, "haishu_wang", "--role", "officer", "--unit-code", "police_330203") == 0

    actor = login(database, "haishu_wang")
    assert actor is not None
    assert (actor.unit, actor.unit_code, actor.division_code) == ("police", "police_330203", "330203")


def test_a_supervisor_added_to_a_division_logs_in_with_it(database, monkeypatch):
    assert add_account(monkeypatch, "sup_hz", "--role", "supervisor", "--division", "330100") == 0

    actor = login(database, "sup_hz")
    assert actor is not None and (actor.role, actor.division_code, actor.unit_code) == ("supervisor", "330100", None)


def test_membership_that_breaks_the_rules_is_refused_with_exit_status_2(database, monkeypatch, capsys):
    units("add", "--department", "police", "--division", "330102")
    capsys.readouterr()

    # A unit's members are of its department.
    mismatched = ["--role", "clerk", "--unit", "hospital", "--unit-code", "police_330102"]
    assert add_account(monkeypatch, "x1", *mismatched) == 2
    assert "police" in capsys.readouterr().err
    assert add_account(monkeypatch, "x2", "--role", "officer", "--unit-code", "police_999999") == 2
    assert add_account(monkeypatch, "x3", "--role", "supervisor", "--unit-code", "police_330102") == 2
    assert add_account(monkeypatch, "x4", "--role", "officer", "--unit", "police", "--division", "330100") == 2
    assert add_account(monkeypatch, "x5", "--role", "supervisor", "--division", "330103") == 2
    assert "330105" in capsys.readouterr().err
    units("disable", "police_330102")
    assert add_account(monkeypatch, "x6", "--role", "officer", "--unit-code", "police_330102") == 2

    with Session(make_engine(database)) as session:
        assert all(session.get(UserAccount, name) is None for name in ("x1", "x2", "x3", "x4", "x5", "x6"))

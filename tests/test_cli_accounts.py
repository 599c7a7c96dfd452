"""`onething accounts add|list|passwd|remove`: how an administrator manages real accounts
(production has no demo accounts). Passwords are hashed and never printed."""

from __future__ import annotations

import io
from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlmodel import Session

import cli
from api.accounts import authenticate
from domain.identity import person_key
from infra.db import make_engine
from models.tables import UserAccount
from settings import get_settings

PASSWORD = "correct horse battery"


@pytest.fixture
def database(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[str]:
    url = f"sqlite:///{tmp_path / 'accounts.db'}"
    monkeypatch.setenv("ONETHING_ENV", "dev")
    monkeypatch.setenv("DATABASE_URL", url)
    get_settings.cache_clear()
    yield url
    get_settings.cache_clear()


def run(monkeypatch: pytest.MonkeyPatch, *arguments: str, stdin: str = "") -> int:
    monkeypatch.setattr("sys.stdin", io.StringIO(stdin))
    return cli.main(["accounts", *arguments])


def login(url: str, username: str, password: str) -> object:
    with Session(make_engine(url)) as session:
        return authenticate(session, username, password)


def test_an_added_officer_can_log_in_with_the_role_and_department_given(database, monkeypatch, capsys) -> None:
    code = run(
        monkeypatch,
        "add", "police_wang", "--role", "officer", "--unit", "police", "--name", "王警官", "--password-stdin",
        stdin=PASSWORD + "\n",
    )  # fmt: skip

    assert code == 0
    actor = login(database, "police_wang", PASSWORD)
    assert actor is not None and actor.role == "officer" and actor.unit == "police"  # type: ignore[attr-defined]
    assert login(database, "police_wang", "wrong password!") is None
    with Session(make_engine(database)) as session:
        stored = session.get(UserAccount, "police_wang")
        assert stored is not None and PASSWORD not in stored.password_hash and stored.display_name_zh == "王警官"
    assert PASSWORD not in capsys.readouterr().out
    assert run(monkeypatch, "list") == 0
    listing = capsys.readouterr().out
    assert "police_wang" in listing and "officer" in listing and PASSWORD not in listing


def test_officers_and_clerks_must_belong_to_a_known_department(database, monkeypatch, capsys) -> None:
    assert run(monkeypatch, "add", "nobody", "--role", "officer", "--password-stdin", stdin=PASSWORD + "\n") == 1
    assert "--unit" in capsys.readouterr().err
    assert (
        run(monkeypatch, "add", "x", "--role", "clerk", "--unit", "mars", "--password-stdin", stdin=PASSWORD + "\n")
        == 1
    )
    assert login(database, "nobody", PASSWORD) is None and login(database, "x", PASSWORD) is None


def test_short_passwords_and_existing_usernames_are_refused(database, monkeypatch, capsys) -> None:
    assert run(monkeypatch, "add", "admin2", "--role", "admin", "--password-stdin", stdin="short\n") == 1
    assert "12" in capsys.readouterr().err
    assert run(monkeypatch, "add", "admin2", "--role", "admin", "--password-stdin", stdin=PASSWORD + "\n") == 0
    assert run(monkeypatch, "add", "admin2", "--role", "admin", "--password-stdin", stdin="another password!\n") == 1
    assert login(database, "admin2", PASSWORD) is not None  # the first one stands


def test_passwd_replaces_the_password_and_remove_ends_the_account(database, monkeypatch) -> None:
    run(monkeypatch, "add", "sup1", "--role", "supervisor", "--password-stdin", stdin=PASSWORD + "\n")

    assert run(monkeypatch, "passwd", "sup1", "--password-stdin", stdin="a brand new secret\n") == 0
    assert login(database, "sup1", PASSWORD) is None
    assert login(database, "sup1", "a brand new secret") is not None

    assert run(monkeypatch, "remove", "sup1") == 0
    assert login(database, "sup1", "a brand new secret") is None
    assert run(monkeypatch, "remove", "sup1") == 1
    assert run(monkeypatch, "passwd", "sup1", "--password-stdin", stdin=PASSWORD + "\n") == 1


def test_a_removed_account_is_disabled_and_its_username_is_never_given_to_someone_else(
    database, monkeypatch, capsys
) -> None:
    run(
        monkeypatch, "add", "clerk9", "--role", "clerk", "--unit", "hospital", "--password-stdin", stdin=PASSWORD + "\n"
    )
    assert run(monkeypatch, "remove", "clerk9") == 0

    again = run(monkeypatch, "add", "clerk9", "--role", "supervisor", "--password-stdin", stdin=PASSWORD + "\n")

    assert again == 1
    assert "disabled; a username is never reused" in capsys.readouterr().err
    with Session(make_engine(database)) as session:
        kept = session.get(UserAccount, "clerk9")
        assert kept is not None and kept.disabled_at is not None and kept.role == "clerk"
    assert login(database, "clerk9", PASSWORD) is None
    assert run(monkeypatch, "list") == 0
    assert "clerk9" in capsys.readouterr().out  # listed, marked disabled


def test_an_applicant_account_is_added_with_a_verified_identity_kept_masked_and_hashed(
    database, monkeypatch, capsys
) -> None:
    identity = ["--name", "赵敏", "--id-number", "330102199003070027", "--phone", "13812345678"]
    code = run(
        monkeypatch, "add", "zhaomin", "--role", "applicant", *identity, "--password-stdin", stdin=PASSWORD + "\n"
    )

    assert code == 0
    with Session(make_engine(database)) as session:
        stored = session.get(UserAccount, "zhaomin")
        assert stored is not None
        assert (stored.person_name, stored.id_number_masked, stored.phone) == (
            "赵敏",
            "330102********0027",
            "13812345678",
        )
        assert stored.person_key == person_key("330102199003070027", get_settings().secret_key)
        assert "330102199003070027" not in repr(stored.model_dump())  # the full number is kept nowhere


@pytest.mark.parametrize(
    ("identity", "named"),
    [
        (["--name", "赵敏", "--phone", "13812345678"], "--id-number"),  # missing
        (["--name", "赵敏", "--id-number", "330102199003070028", "--phone", "13812345678"], "--id-number"),  # checksum
        (["--name", "赵敏", "--id-number", "330102199003070027", "--phone", "12345"], "--phone"),
    ],
)
def test_an_applicant_without_a_valid_identity_is_refused(database, monkeypatch, capsys, identity, named) -> None:
    code = run(
        monkeypatch, "add", "zhaomin", "--role", "applicant", *identity, "--password-stdin", stdin=PASSWORD + "\n"
    )

    assert code == 1
    assert named in capsys.readouterr().err
    with Session(make_engine(database)) as session:
        assert session.get(UserAccount, "zhaomin") is None

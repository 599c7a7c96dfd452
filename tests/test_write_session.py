"""One read-model write transaction (infra/db.py ``write_session``): committed when its block
ends, rolled back when it raises; on SQLite a process's writers take turns instead of
sleeping in SQLite's busy handler, on PostgreSQL they run side by side.

Runs on SQLite, and on PostgreSQL when ONETHING_TEST_POSTGRES_URL is set (`make pytest`).
"""

from __future__ import annotations

import threading
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime
from pathlib import Path

import pytest
from sqlalchemy import event
from sqlmodel import Session, select

from infra.db import write_session
from models.tables import InboxVersion
from tests.conftest import TEST_POSTGRES_URL, make_test_engine, read_model_url

NOW = datetime(2026, 12, 2, 9, 0, tzinfo=UTC)


def _versions(engine: object) -> dict[str, int]:
    with Session(engine) as session:  # type: ignore[arg-type]
        return {row.department: row.version for row in session.exec(select(InboxVersion))}


def test_a_write_is_committed_when_its_block_ends(tmp_path: Path) -> None:
    engine = make_test_engine(read_model_url(tmp_path))
    with write_session(engine) as session:
        session.add(InboxVersion(department="police", version=1, changed_at=NOW))
    assert _versions(engine) == {"police": 1}


def test_a_write_that_raises_leaves_nothing_behind(tmp_path: Path) -> None:
    engine = make_test_engine(read_model_url(tmp_path))
    with pytest.raises(RuntimeError), write_session(engine) as session:
        session.add(InboxVersion(department="police", version=1, changed_at=NOW))
        session.flush()
        raise RuntimeError("the change failed half-way")
    assert _versions(engine) == {}


@pytest.mark.skipif(bool(TEST_POSTGRES_URL), reason="SQLite's single writer; PostgreSQL writers run side by side")
def test_sqlite_writers_of_one_process_take_turns(tmp_path: Path) -> None:
    engine = make_test_engine(read_model_url(tmp_path))
    first_inside = threading.Event()
    release_first = threading.Event()
    order: list[str] = []

    @event.listens_for(engine, "before_cursor_execute")
    def _begins(_conn: object, _cursor: object, statement: str, *_args: object) -> None:
        if statement.startswith("BEGIN"):
            order.append(f"{threading.current_thread().name} begins")

    def first() -> None:
        with write_session(engine) as session:
            order.append("first in")
            first_inside.set()
            release_first.wait(timeout=10)
            session.add(InboxVersion(department="hospital", version=1, changed_at=NOW))
            order.append("first out")

    def second() -> None:
        first_inside.wait(timeout=10)
        with write_session(engine) as session:
            order.append("second in")
            session.add(InboxVersion(department="police", version=1, changed_at=NOW))

    with ThreadPoolExecutor(2, thread_name_prefix="writer") as pool:
        done = [pool.submit(first), pool.submit(second)]
        first_inside.wait(timeout=10)
        # The second writer is queued on the process's lock, not inside a transaction.
        assert not done[1].done()
        release_first.set()
        for future in done:
            future.result(timeout=10)
    # The second did not even begin a transaction (to wait in SQLite's busy handler) until
    # the first had committed.
    assert order == ["writer_0 begins", "first in", "first out", "writer_1 begins", "second in"]
    assert _versions(engine) == {"hospital": 1, "police": 1}


@pytest.mark.skipif(bool(TEST_POSTGRES_URL), reason="SQLite's single writer")
def test_many_sqlite_writers_at_once_all_commit(tmp_path: Path) -> None:
    """Sixteen threads (the worker's activity threads) writing at once: every write lands
    and none fails with "database is locked"."""
    engine = make_test_engine(read_model_url(tmp_path))

    def write(index: int) -> None:
        with write_session(engine) as session:
            session.add(InboxVersion(department=f"unit-{index:02d}", version=index, changed_at=NOW))

    with ThreadPoolExecutor(16) as pool:
        for future in [pool.submit(write, index) for index in range(64)]:
            future.result(timeout=60)
    assert _versions(engine) == {f"unit-{index:02d}": index for index in range(64)}

"""The synthetic read-model generator, and the indexes supervision queries rely on."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

from sqlalchemy import text

from bench.seed_read_model import seed
from infra.db import make_engine
from tests.conftest import make_test_engine, read_model_url

NOW = datetime(2026, 11, 26, 12, tzinfo=UTC)


def _plan(engine, sql: str) -> str:
    with engine.connect() as connection:
        return " | ".join(str(row[-1]) for row in connection.execute(text(f"EXPLAIN QUERY PLAN {sql}")))


def test_seeded_cases_are_consistent(tmp_path: Path) -> None:
    """On the test database: SQLite, or PostgreSQL when ONETHING_TEST_POSTGRES_URL is set."""
    engine = make_test_engine(read_model_url(tmp_path))
    try:
        cases, tasks = seed(engine, 300, now=NOW)
        assert cases == 300 and tasks > cases
        _assert_consistent(engine)
    finally:
        engine.dispose()


def _assert_consistent(engine) -> None:
    with engine.connect() as connection:
        things = {row[0] for row in connection.execute(text("SELECT DISTINCT thing FROM cases"))}
        orphan = connection.execute(
            text("SELECT count(*) FROM tasks WHERE case_id NOT IN (SELECT case_id FROM cases)")
        ).scalar_one()
        wrong = connection.execute(
            text("SELECT count(*) FROM tasks WHERE status = 'done' AND (completed_on IS NULL OR hours_bucket IS NULL)")
        ).scalar_one()
    assert things == {"birth", "company_opening", "death", "retirement"}
    assert orphan == 0 and wrong == 0


def test_supervision_queries_use_indexes_on_sqlite(tmp_path: Path) -> None:
    engine = make_engine(f"sqlite:///{tmp_path / 'seed.db'}")
    seed(engine, 300, now=NOW)
    timeliness = _plan(
        engine,
        "SELECT department, count(*) FROM tasks WHERE status = 'done' "
        "AND completed_on >= '2026-10-01' AND completed_on <= '2026-10-31' GROUP BY department",
    )
    assert "ix_tasks_status_completed_on" in timeliness
    overdue = _plan(
        engine, "SELECT * FROM tasks WHERE status IN ('open', 'claimed') AND due_at < '2026-11-26' ORDER BY due_at"
    )
    assert "ix_tasks_status_due" in overdue
    inbox = _plan(
        engine,
        "SELECT * FROM tasks WHERE department = 'police' AND status IN ('open', 'claimed') ORDER BY due_at LIMIT 50",
    )
    assert "ix_tasks_department_status_due" in inbox
    cases_list = _plan(engine, "SELECT * FROM cases WHERE status = 'completed' ORDER BY submitted_at DESC LIMIT 50")
    assert "ix_cases_status_submitted" in cases_list

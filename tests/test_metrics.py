"""The business series of GET /metrics, counted in the read model: their values, their
cache, and that the queries behind them read indexes only."""

from __future__ import annotations

import os
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from prometheus_client import CollectorRegistry, generate_latest
from prometheus_client.parser import text_string_to_metric_families
from sqlalchemy import Engine, event, text
from sqlmodel import Session

from api.metrics import ReadModelCollector
from bench.seed_read_model import seed
from infra.db import make_engine
from models.tables import CaseRecord, SupervisionNotice, TaskRecord

NOW = datetime(2026, 11, 26, 12, tzinfo=UTC)

Samples = dict[tuple[str, frozenset[tuple[str, str]]], float]


def scrape(engine: Engine, collector: ReadModelCollector | None = None) -> Samples:
    registry = CollectorRegistry()
    registry.register(collector or ReadModelCollector(lambda: engine, cache_seconds=0))
    return parse(generate_latest(registry).decode())


def parse(exposition: str) -> Samples:
    return {
        (sample.name, frozenset(sample.labels.items())): sample.value
        for family in text_string_to_metric_families(exposition)
        for sample in family.samples
    }


def value(samples: Samples, name: str, **labels: str) -> float | None:
    return samples.get((name, frozenset(labels.items())))


def series(samples: Samples, name: str) -> dict[frozenset[tuple[str, str]], float]:
    return {labels: count for (sample_name, labels), count in samples.items() if sample_name == name}


def _case(case_id: str, thing: str, status: str) -> CaseRecord:
    return CaseRecord(
        case_id=case_id,
        thing=thing,
        catalogue_version=1,
        channel="online",
        status=status,
        submitted_by="applicant1",
        submitted_at=NOW - timedelta(days=3),
    )


def _task(case_id: str, step: str, department: str, status: str, **values: Any) -> TaskRecord:
    values.setdefault("opened_at", NOW - timedelta(days=2))
    return TaskRecord(
        task_id=f"{case_id}:{step}",
        case_id=case_id,
        thing="birth",
        step=step,
        department=department,
        status=status,
        **values,
    )


@pytest.fixture
def read_model(engine: Engine) -> Engine:
    """Cases, steps in every state and 督办 notices, written as the worker would."""
    with Session(engine) as session:
        session.add_all(
            [
                _case("ot-b1", "birth", "completed"),
                _case("ot-b2", "birth", "completed"),
                _case("ot-b3", "birth", "in_progress"),
                _case("ot-d1", "death", "completed"),
                _case("ot-d2", "death", "refused"),
                # done in half an hour, on time
                _task("ot-b1", "birth_certificate", "hospital", "done", on_time=True, hours_bucket=5),
                # done after 30 working hours, late
                _task("ot-b2", "birth_certificate", "hospital", "done", on_time=False, hours_bucket=300),
                # done in 2 working hours
                _task("ot-b1", "hukou_registration", "police", "done", on_time=True, hours_bucket=20),
                # open and past due (the workflow marked it), claimed and not yet due
                _task("ot-b3", "hukou_registration", "police", "open", overdue=True),
                _task("ot-b2", "hukou_registration", "police", "claimed"),
                # cancelled by a refusal: one never opened, one had
                _task("ot-d2", "medical_insurance_enrollment", "medical_security", "cancelled", opened_at=None),
                _task("ot-d1", "medical_insurance_enrollment", "medical_security", "cancelled"),
                # refused after it went overdue
                _task("ot-d2", "social_security_card", "hr_social_security", "refused", overdue=True),
                _notice("ot-b2:birth_certificate:auto:1", "hospital"),
                _notice("ot-b2:birth_certificate:auto:2", "hospital"),
                _notice("ot-b3:hukou_registration:auto:1", "police"),
            ]
        )
        session.commit()
    return engine


def _notice(notice_id: str, department: str) -> SupervisionNotice:
    case_id, step, _, sequence = notice_id.split(":")
    return SupervisionNotice(
        notice_id=notice_id,
        case_id=case_id,
        step=step,
        department=department,
        sequence=int(sequence),
        message_zh="请加快办理",
        issued_at=NOW,
    )


def test_cases_are_counted_by_status_and_thing(read_model):
    samples = scrape(read_model)

    assert series(samples, "onething_cases") == {
        frozenset({("status", "completed"), ("thing", "birth")}): 2,
        frozenset({("status", "in_progress"), ("thing", "birth")}): 1,
        frozenset({("status", "completed"), ("thing", "death")}): 1,
        frozenset({("status", "refused"), ("thing", "death")}): 1,
    }


def test_steps_opened_completed_and_overdue_are_counted_by_department_and_step(read_model):
    samples = scrape(read_model)

    def by_step(name: str) -> dict[tuple[str, str], float]:
        return {
            (dict(labels)["department"], dict(labels)["step"]): count for labels, count in series(samples, name).items()
        }

    assert by_step("onething_steps_opened_total") == {
        ("hospital", "birth_certificate"): 2,
        ("police", "hukou_registration"): 3,
        ("medical_security", "medical_insurance_enrollment"): 1,  # the one cancelled before it opened is not
        ("hr_social_security", "social_security_card"): 1,
    }
    assert by_step("onething_steps_completed_total") == {
        ("hospital", "birth_certificate"): 2,
        ("police", "hukou_registration"): 1,
    }
    assert by_step("onething_steps_overdue_total") == {
        ("hospital", "birth_certificate"): 1,  # finished late
        ("police", "hukou_registration"): 1,  # open, marked overdue
        ("hr_social_security", "social_security_card"): 1,  # refused after going overdue
    }


def test_working_hours_of_completed_steps_are_a_histogram_by_department(read_model):
    samples = scrape(read_model)

    hospital = {"department": "hospital"}
    assert value(samples, "onething_step_working_hours_count", **hospital) == 2
    assert value(samples, "onething_step_working_hours_sum", **hospital) == pytest.approx(30.5)
    assert value(samples, "onething_step_working_hours_bucket", le="1.0", **hospital) == 1
    assert value(samples, "onething_step_working_hours_bucket", le="24.0", **hospital) == 1
    assert value(samples, "onething_step_working_hours_bucket", le="48.0", **hospital) == 2
    assert value(samples, "onething_step_working_hours_bucket", le="+Inf", **hospital) == 2
    police = {"department": "police"}
    assert value(samples, "onething_step_working_hours_bucket", le="1.0", **police) == 0
    assert value(samples, "onething_step_working_hours_bucket", le="4.0", **police) == 1
    assert value(samples, "onething_step_working_hours_sum", **police) == pytest.approx(2.0)
    # Only finished steps have a working-hours figure.
    assert value(samples, "onething_step_working_hours_count", department="hr_social_security") is None


def test_supervision_notices_are_counted_by_department(read_model):
    samples = scrape(read_model)

    assert series(samples, "onething_supervision_notices_total") == {
        frozenset({("department", "hospital")}): 2,
        frozenset({("department", "police")}): 1,
    }


def test_an_empty_read_model_reports_no_business_series_and_no_error(engine):
    samples = scrape(engine)

    assert not [name for name, _ in samples if name.startswith("onething_cases")]
    assert not series(samples, "onething_steps_completed_total")


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def statements(read_model: Engine) -> Iterator[list[str]]:
    """Every SQL statement the engine runs while the test does."""
    executed: list[str] = []

    def record(_connection: Any, _cursor: Any, statement: str, *_: Any) -> None:
        executed.append(statement)

    event.listen(read_model, "before_cursor_execute", record)
    yield executed
    event.remove(read_model, "before_cursor_execute", record)


def test_scrapes_within_the_cache_period_do_not_touch_the_database(read_model, statements):
    clock = Clock()
    collector = ReadModelCollector(lambda: read_model, cache_seconds=15, clock=clock)
    first = scrape(read_model, collector)
    assert statements, "the first scrape counts in the read model"
    with Session(read_model) as session:
        session.add(_case("ot-b4", "birth", "in_progress"))
        session.commit()
    statements.clear()

    clock.now += 14.9
    assert scrape(read_model, collector) == first
    assert statements == []

    clock.now += 0.1
    fresh = scrape(read_model, collector)
    assert statements
    assert value(fresh, "onething_cases", status="in_progress", thing="birth") == 2


def test_a_read_model_that_cannot_be_read_leaves_the_business_series_out(tmp_path, caplog):
    unreadable = make_engine(f"sqlite:///{tmp_path / 'no-such-directory' / 'read-model.db'}")
    try:
        samples = scrape(unreadable)
    finally:
        unreadable.dispose()

    assert samples == {}
    assert "read-model metrics could not be counted" in caplog.text


def test_a_collector_before_the_database_exists_reports_nothing():
    collector = ReadModelCollector(lambda: None, cache_seconds=0)

    assert list(collector.collect()) == []


def test_derived_counts_agree_with_counting_every_row(tmp_path: Path):
    """The cases and steps series avoid reading finished rows; on 300 synthetic cases they
    must equal plain GROUP BY counts over the whole tables."""
    engine = make_engine(f"sqlite:///{tmp_path / 'seed.db'}")
    try:
        seed(engine, 300, now=NOW)
        samples = scrape(engine)
        with engine.connect() as connection:
            cases = connection.execute(text("SELECT status, thing, count(*) FROM cases GROUP BY status, thing"))
            expected_cases = {frozenset({("status", s), ("thing", t)}): n for s, t, n in cases}
            opened = connection.execute(
                text(
                    "SELECT department, step, count(*) FROM tasks WHERE opened_at IS NOT NULL GROUP BY department, step"
                )
            )
            expected_opened = {frozenset({("department", d), ("step", s)}): n for d, s, n in opened}
            late = connection.execute(
                text(
                    "SELECT department, step, count(*) FROM tasks "
                    "WHERE (status = 'done' AND on_time = 0) OR (status != 'done' AND overdue = 1) "
                    "GROUP BY department, step"
                )
            )
            expected_overdue = {frozenset({("department", d), ("step", s)}): n for d, s, n in late}
        assert series(samples, "onething_cases") == expected_cases
        assert series(samples, "onething_steps_opened_total") == expected_opened
        assert series(samples, "onething_steps_overdue_total") == expected_overdue
        assert len(expected_cases) > 4 and len(expected_overdue) > 0  # the sample covers several statuses
    finally:
        engine.dispose()


@pytest.mark.skipif(bool(os.environ.get("ONETHING_TEST_POSTGRES_URL")), reason="SQLite query plans")
def test_business_queries_read_indexes_not_tables(tmp_path: Path):
    engine = make_engine(f"sqlite:///{tmp_path / 'seed.db'}")
    executed: list[tuple[str, Any]] = []

    def record(_connection: Any, _cursor: Any, statement: str, parameters: Any, *_: Any) -> None:
        executed.append((statement, parameters))

    try:
        seed(engine, 300, now=NOW)
        event.listen(engine, "before_cursor_execute", record)
        scrape(engine)
        event.remove(engine, "before_cursor_execute", record)
        assert len(executed) >= 5
        with engine.connect() as connection:
            for statement, parameters in executed:
                plan = [
                    str(row[-1]) for row in connection.exec_driver_sql(f"EXPLAIN QUERY PLAN {statement}", parameters)
                ]
                reads = [step for step in plan if step.startswith(("SCAN", "SEARCH"))]
                assert reads, plan
                for step in reads:
                    # A SEARCH goes through an index; a SCAN must read a covering index, not the table.
                    assert step.startswith("SEARCH") or "COVERING INDEX" in step, (statement, plan)
    finally:
        engine.dispose()

"""The timeliness rollup (infra/timeliness_rollup.py): the statistics it answers are the ones
the tasks table gives, for every grouping, period and filter; the projection keeps it, counting
each finished step once however often it is retried, replayed or raced; the migration fills it.

On the test database: SQLite, or PostgreSQL when ONETHING_TEST_POSTGRES_URL is set."""

from __future__ import annotations

import random
import threading
from collections import Counter, defaultdict
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any, get_args

import pytest
from sqlalchemy import Connection, Engine, case, func, insert, select, text
from sqlalchemy.exc import DBAPIError
from sqlmodel import Session, col

from activities.read_model import apply_projection
from api.routes.supervision import GROUP_COLUMNS, OPEN_STATUSES, TimelinessGroup, timeliness_rows
from bench.seed_read_model import seed, synthetic_rows
from domain.divisions import DEFAULT_COUNTY, PROVINCE, division
from domain.workcalendar import SHANGHAI, HolidayNotice, WorkingCalendar
from infra.db import upgrade
from infra.timeliness_rollup import division_levels, period_of, period_terms, recompute_timeliness_rollup
from models.case import CaseEvent, CaseSnapshot, CaseStatus, EventType, ProjectCaseInput, StepStatus, StepView
from models.tables import TaskRecord, TimelinessRollup, Unit
from tests.api.helpers import CALENDAR, shanghai_at
from tests.conftest import make_test_engine, read_model_url

# Seeded cases end here: their 180 days span two years, and every open step is long overdue.
SEEDED_UNTIL = datetime(2026, 3, 15, 12, tzinfo=UTC)


# --- the answers: rollup against tasks --------------------------------------------------------


def tasks_table_timeliness(
    session: Session,
    group_by: TimelinessGroup,
    from_: date | None,
    to: date | None,
    *,
    thing: str | None = None,
    department: str | None = None,
    step: str | None = None,
) -> list[dict[str, Any]]:
    """The timeliness statistics computed straight from the tasks table, as the endpoint did
    before the rollup: the reference the rollup's answers must equal. By division: each task
    under its unit's division (330102 without a unit) and every division above it."""
    keys = GROUP_COLUMNS[group_by]
    by_division = group_by == "division"
    own_division = func.coalesce(col(Unit.division_code), DEFAULT_COUNTY)
    key_columns: list[Any] = [own_division] if by_division else [getattr(TaskRecord, key) for key in keys]
    filters = [
        getattr(TaskRecord, key) == value
        for key, value in (("thing", thing), ("department", department), ("step", step))
        if value
    ]
    done = [*filters, col(TaskRecord.status) == "done"]
    if from_:
        done.append(col(TaskRecord.completed_on) >= from_.isoformat())
    if to:
        done.append(col(TaskRecord.completed_on) <= to.isoformat())
    rows: dict[tuple[Any, ...], dict[str, Any]] = {}

    def row_for(key: tuple[Any, ...]) -> dict[str, Any]:
        return rows.setdefault(
            key, {**dict(zip(keys, key, strict=True)), "completed": 0, "on_time": 0, "overdue": 0, "open_overdue": 0}
        )

    histograms: dict[tuple[Any, ...], list[tuple[int, int]]] = defaultdict(list)
    on_time_flag = case((col(TaskRecord.on_time).is_(True), 1), else_=0)

    def groups_of(key: list[Any]) -> list[tuple[Any, ...]]:
        return [(code,) for code in division_levels(key[0])] if by_division else [tuple(key)]

    for *key, bucket, count, on_time in session.execute(
        select(*key_columns, col(TaskRecord.hours_bucket), func.count(), func.sum(on_time_flag))
        .outerjoin(Unit, col(Unit.code) == col(TaskRecord.unit_code))
        .where(*done)
        .group_by(*key_columns, col(TaskRecord.hours_bucket))
    ).all():
        for group in groups_of(key):
            row = row_for(group)
            row["completed"] += int(count)
            row["on_time"] += int(on_time or 0)
            row["overdue"] = row["completed"] - row["on_time"]
            if bucket is not None:
                histograms[group].append((int(bucket), int(count)))
    now = datetime.now(UTC)
    open_key_columns = [col(TaskRecord.due_at)] if group_by == "day" else key_columns
    for *key, due_at in session.execute(
        select(*open_key_columns, col(TaskRecord.due_at))
        .outerjoin(Unit, col(Unit.code) == col(TaskRecord.unit_code))
        .where(*filters, col(TaskRecord.status).in_(OPEN_STATUSES), col(TaskRecord.due_at) < now)
    ).all():
        if group_by == "day":
            day = due_at.astimezone(SHANGHAI).date()
            if (from_ and day < from_) or (to and day > to):
                continue
            groups: list[tuple[Any, ...]] = [(day.isoformat(),)]
        else:
            groups = groups_of(key)
        for group in groups:
            row_for(group)["open_overdue"] += 1
    result = []
    for group in sorted(rows, key=lambda k: tuple(str(part) for part in k)):
        row = rows[group]
        row["on_time_rate"] = round(row["on_time"] / row["completed"], 4) if row["completed"] else None
        row["median_working_hours"] = _percentile(histograms.get(group, []), 0.5)
        row["p90_working_hours"] = _percentile(histograms.get(group, []), 0.9)
        if by_division:
            named = division(row["division_code"])
            assert named is not None
            row["division_name_zh"], row["level"] = named.name_zh, named.level
        result.append(row)
    return result


def _percentile(histogram: list[tuple[int, int]], fraction: float) -> float | None:
    total = sum(count for _, count in histogram)
    if total == 0:
        return None
    rank = max(1, -(-int(fraction * total * 1000) // 1000))
    seen = 0
    for bucket, count in sorted(histogram):
        seen += count
        if seen >= rank:
            return bucket / 10
    raise AssertionError("unreachable")


def _questions(seed_value: int, count: int) -> list[tuple[TimelinessGroup, date | None, date | None, dict[str, str]]]:
    """Groupings, periods (open, a day, whole months and years, ranges across both, empty,
    reversed) and filters, at random but repeatably."""
    rng = random.Random(seed_value)
    first_day = (SEEDED_UNTIL - timedelta(days=185)).date()
    days = [first_day + timedelta(days=n) for n in range(200)]
    fixed = [
        (None, None),
        (date(2026, 1, 1), date(2026, 1, 31)),
        (date(2025, 1, 1), date(2025, 12, 31)),
        (date(2025, 11, 16), None),
        (None, date(2025, 12, 15)),
        (date(2026, 2, 14), date(2026, 2, 14)),
        (date(2026, 3, 1), date(2026, 2, 1)),  # reversed: nothing
        ((SEEDED_UNTIL - timedelta(days=30)).date(), None),  # the benchmark's "last 30 days"
    ]
    periods: list[tuple[date | None, date | None]] = list(fixed)
    while len(periods) < count:
        low, high = sorted(rng.sample(days, 2))
        near = low + timedelta(days=rng.randint(0, 40))
        periods.append((rng.choice([low, None]), rng.choice([high, None, near])))
    filters = [{}, {"thing": "birth"}, {"department": "police"}, {"step": "hukou_registration"}]
    filters += [{"thing": "birth", "department": "hospital"}, {"department": "no_such_department"}]
    questions: list[tuple[TimelinessGroup, date | None, date | None, dict[str, str]]] = []
    for number, (first, last) in enumerate(periods):
        for group_by in get_args(TimelinessGroup):
            questions.append((group_by, first, last, filters[(number + len(questions)) % len(filters)]))
    return questions


@pytest.fixture
def seeded(engine: Engine) -> Engine:
    """1,500 synthetic closed cases over 180 days, steps done without figures, and a department
    with quotes, a percent sign and colons in its name; the police steps of a third of the cases
    routed to 杭州西湖 and of another third to 宁波海曙, the others' without a unit (330102)."""
    seed(engine, 1500, now=SEEDED_UNTIL)
    with engine.begin() as connection:
        units = {row[0] for row in connection.execute(select(col(Unit.code)))}
        for code, county in (("police_330106", "330106"), ("police_330203", "330203")):
            if code not in units:
                connection.execute(
                    insert(Unit).values(
                        code=code,
                        department="police",
                        division_code=county,
                        kind="department",
                        name_zh=code,
                        active=True,
                        created_at=SEEDED_UNTIL,
                    )
                )
        for code, last_digits in (("police_330106", ("1", "4", "7")), ("police_330203", ("2", "5", "8"))):
            connection.execute(
                TaskRecord.__table__.update()  # type: ignore[attr-defined]
                .where(
                    col(TaskRecord.department) == "police",
                    col(TaskRecord.case_id).like("ot-syn-%"),
                    func.substr(col(TaskRecord.case_id), 15, 1).in_(last_digits),
                )
                .values(unit_code=code)
            )
        connection.execute(
            insert(TaskRecord),
            [
                {
                    "task_id": f"ot-nofigures-{number}:hukou_registration",
                    "case_id": f"ot-nofigures-{number}",
                    "thing": "birth",
                    "step": "hukou_registration",
                    "department": "police",
                    "status": "done",
                    "on_time": on_time,
                    "completed_on": completed_on,
                    "hours_bucket": None,
                }
                for number, (on_time, completed_on) in enumerate([(None, None), (True, None), (False, "2026-01-05")])
            ]
            + [  # a department whose name needs escaping wherever it is written into SQL
                {
                    "task_id": f"ot-quoted-{number}:hukou_registration",
                    "case_id": f"ot-quoted-{number}",
                    "thing": "birth",
                    "step": "hukou_registration",
                    "department": "it's 100%: :police",
                    "status": "done",
                    "on_time": True,
                    "completed_on": f"2026-01-0{number + 1}",
                    "hours_bucket": 57 + number,
                }
                for number in range(3)
            ],
        )
        recompute_timeliness_rollup(connection)
    return engine


def test_timeliness_from_rollup_matches_tasks_table(seeded: Engine) -> None:
    answered = 0
    with Session(seeded) as session:
        for group_by, first, last, filters in _questions(7, 30):
            expected = tasks_table_timeliness(session, group_by, first, last, **filters)
            assert timeliness_rows(session, group_by, first, last, **filters) == expected, (
                group_by,
                first,
                last,
                filters,
            )
            answered += any(row["completed"] > 20 and row["median_working_hours"] for row in expected)
    assert answered > 60  # most questions had steps to count
    with Session(seeded) as session:
        quoted = [row for row in timeliness_rows(session, "department", None, None) if "'" in row["department"]]
    assert [(row["completed"], row["median_working_hours"], row["p90_working_hours"]) for row in quoted] == [
        (3, 5.8, 5.9)
    ]


def test_period_cover_counts_each_day_of_the_period_once() -> None:
    days = [date(2024, 12, 1) + timedelta(days=n) for n in range(900)]
    rng = random.Random(3)
    for _ in range(300):
        first, last = rng.choice([None, *days]), rng.choice([None, *days])
        today = rng.choice(days)
        covered: Counter[date] = Counter()
        for span, low, high, sign in period_terms(first, last, today):
            for day in days:
                period = period_of(day.isoformat(), span)
                if (low is None or period >= low) and (high is None or period <= high):
                    covered[day] += sign
        wanted = {day for day in days if (first is None or day >= first) and (last is None or day <= last)}
        assert {day for day, times in covered.items() if times} == wanted, (first, last, today)
        assert set(covered.values()) <= {0, 1}, (first, last, today)


# --- the write: kept by the projection, once --------------------------------------------------


ROLLUP = TimelinessRollup.__table__  # type: ignore[attr-defined]


def _rollup_rows(connection: Connection) -> list[tuple[Any, ...]]:
    return [tuple(row) for row in connection.execute(select(ROLLUP).order_by(*ROLLUP.primary_key))]


def _rollup(engine: Engine) -> list[tuple[Any, ...]]:
    with engine.connect() as connection:
        return _rollup_rows(connection)


def _recomputed(engine: Engine) -> list[tuple[Any, ...]]:
    """The rollup recomputed from the tasks, without keeping it."""
    with engine.connect() as connection:
        transaction = connection.begin()
        recompute_timeliness_rollup(connection)
        rows = _rollup_rows(connection)
        transaction.rollback()
    return rows


def _projection(case_id: str, revision: int, *, done: bool, events: int = 2) -> ProjectCaseInput:
    """A one-step birth case: opened Mon 16 Nov 2026 10:00, due Wed 00:00, completed Tue 10:00."""
    recorded = [
        CaseEvent(
            seq=1,
            at=shanghai_at("2026-11-16T10:00"),
            type=EventType.OPENED,
            step="birth_certificate",
            department="hospital",
            due_at=shanghai_at("2026-11-18T00:00"),
        ),
        CaseEvent(
            seq=2,
            at=shanghai_at("2026-11-17T10:00"),
            type=EventType.COMPLETED,
            step="birth_certificate",
            department="hospital",
        ),
    ][:events]
    view = StepView(
        step="birth_certificate",
        name_zh="出生医学证明",
        department="hospital",
        department_zh="医院",
        status=StepStatus.DONE if done else StepStatus.OPEN,
        status_zh="",
        time_limit_working_days=2,
        opened_at=recorded[0].at,
        due_at=recorded[0].due_at,
        warning_at=shanghai_at("2026-11-17T00:00"),
        completed_at=recorded[1].at if done else None,
    )
    snapshot = CaseSnapshot(
        case_id=case_id,
        thing="birth",
        thing_zh="出生一件事",
        catalogue_version=1,
        channel="online",
        status=CaseStatus.COMPLETED if done else CaseStatus.IN_PROGRESS,
        status_zh="",
        submitted_at=recorded[0].at,
        owner="applicant1",
        submitted_by="applicant1",
        accepting_unit=None,
        steps=[view],
        revision=revision,
    )
    return ProjectCaseInput(snapshot=snapshot, events=recorded)


def _apply(engine: Engine, projection: ProjectCaseInput, calendar: WorkingCalendar = CALENDAR) -> None:
    with Session(engine) as session:
        apply_projection(session, projection, calendar)
        session.commit()


def _counted(engine: Engine) -> dict[str, int]:
    """Steps counted per span: every step is in each span's cells once per scope and width (the
    province's cells: a step is counted again under its county and city)."""
    with engine.connect() as connection:
        rows = connection.execute(
            select(ROLLUP.c.span, func.sum(ROLLUP.c.count))
            .where(ROLLUP.c.division_code == PROVINCE)
            .group_by(ROLLUP.c.span)
        ).all()
    return {span: int(total) // (4 * 2) for span, total in rows}


def test_retried_projection_counts_a_finished_task_once(engine: Engine) -> None:
    _apply(engine, _projection("ot-r", 1, done=False, events=1))
    assert _rollup(engine) == []
    done = _projection("ot-r", 2, done=True)
    _apply(engine, done)
    _apply(engine, done)  # the activity retried after its commit
    _apply(engine, _projection("ot-r", 1, done=False, events=1))  # an older write replayed (rebuild)
    _apply(engine, _projection("ot-r", 3, done=True))  # a later write: the step is still done
    assert _counted(engine) == {"day": 1, "dekad": 1, "month": 1, "year": 1}
    assert _rollup(engine) == _recomputed(engine)
    with Session(engine) as session:
        (row,) = timeliness_rows(session, "step", date(2026, 11, 17), date(2026, 11, 17))
    assert (row["completed"], row["on_time"], row["median_working_hours"]) == (1, 1, 24.0)


def test_concurrent_attempts_at_one_projection_count_a_finished_task_once(engine: Engine) -> None:
    """An activity retried while its first attempt still runs: two transactions write the same
    projection at once; the second waits for the first, or fails and is retried, and adds nothing."""
    _apply(engine, _projection("ot-c", 1, done=False))  # both events known: only the state changes
    done = _projection("ot-c", 2, done=True)
    first = Session(engine)
    apply_projection(first, done, CALENDAR)  # written, not committed: its locks are held
    errors: list[BaseException] = []

    def second_attempt() -> None:
        for _ in range(5):
            try:
                _apply(engine, done)
                return
            except DBAPIError:  # SQLite: the database is locked, or the snapshot is stale
                threading.Event().wait(0.2)
        errors.append(AssertionError("the second attempt never went through"))

    second = threading.Thread(target=second_attempt)
    second.start()
    threading.Event().wait(0.5)
    first.commit()
    first.close()
    second.join(60)
    assert not second.is_alive() and errors == []
    assert _counted(engine) == {"day": 1, "dekad": 1, "month": 1, "year": 1}
    assert _rollup(engine) == _recomputed(engine)


def test_a_done_step_whose_figures_change_moves_between_cells(engine: Engine) -> None:
    _apply(engine, _projection("ot-m", 1, done=True))
    with Session(engine) as session:
        (before,) = timeliness_rows(session, "department", None, None)
    # Tuesday 17 November made a holiday by a newly published notice: the step took 14 h, not 24 h.
    notice = HolidayNotice(2026, frozenset({date(2026, 11, 17)}), frozenset(), "test notice")
    _apply(engine, _projection("ot-m", 2, done=True), WorkingCalendar({2026: notice}))
    with Session(engine) as session:
        (after,) = timeliness_rows(session, "department", None, None)
    assert (before["completed"], before["median_working_hours"]) == (1, 24.0)
    assert (after["completed"], after["median_working_hours"]) == (1, 14.0)
    assert _counted(engine) == {"day": 1, "dekad": 1, "month": 1, "year": 1}
    assert _rollup(engine) == _recomputed(engine)


# --- filled by the migration, the seeder and rebuild -------------------------------------------


def test_migration_fills_the_rollup_from_the_tasks_already_done(tmp_path: Path) -> None:
    engine = make_test_engine(read_model_url(tmp_path), migrate=False)
    try:
        with engine.begin() as connection:
            upgrade(connection, "0003")
            _, tasks = synthetic_rows(200, SEEDED_UNTIL)
            connection.execute(insert(TaskRecord), tasks)
        with engine.begin() as connection:
            upgrade(connection)
        filled = _rollup(engine)
        assert filled == _recomputed(engine)
        assert sum(row[-2] for row in filled if row[:4] == ("year", "all", 1, PROVINCE)) == sum(
            task["status"] == "done" for task in tasks
        )
    finally:
        engine.dispose()


def test_seeded_read_model_has_its_rollup(seeded: Engine) -> None:
    with seeded.connect() as connection:
        done = connection.execute(text("SELECT count(*) FROM tasks WHERE status = 'done'")).scalar_one()
    assert _rollup(seeded) == _recomputed(seeded)
    assert sum(row[-2] for row in _rollup(seeded) if row[:4] == ("year", "all", 10, PROVINCE)) == done

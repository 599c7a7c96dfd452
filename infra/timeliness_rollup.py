"""The timeliness rollup: finished steps counted per period and group, kept current by the
projection that finishes them, read by the timeliness statistics (api/routes/supervision.py).

What it holds (models.tables.TimelinessRollup): for every step whose task is "done", one count
in each of 32 cells: four spans of its completion day (the day, its dekad 旬, its month, its
year) times four scopes (thing, step and department; department alone; thing alone; none)
times two bucket widths of its working hours (its tenth of an hour, its whole hour). For every
span, scope and width, the cells sum exactly the done tasks as the tasks table holds them:
completions, completions on time, and the histogram percentiles are read from.

Why so many cells: at 0.1 h resolution the histograms are sparse (100,000 synthetic cases give
589,000 done steps and 403,000 cells of one day, step and tenth), so summing days of tenths
reads nearly as many rows as the tasks. A question reads instead:

- a cover of its range by whole years, months and dekads and the few days at its edges, a
  period less a day or two where that is shorter (``period_terms``), in the narrowest scope
  it needs;
- the whole-hour cells of that cover (a fifth as many): completions, on time, and in which
  hour each group's median and 90th percentile fall, and how far into it;
- the tenth cells of just those hours, by primary key: the exact tenth.

Per division (行政区划): every step is counted under the division of the unit it was routed to
(a task without a unit, from before routing, under the default county 330102) and again
under each division above it in the province, so each cell has a ``division_code`` and a
question for one division (a supervisor's: 杭州市, or the province 330000 for all) reads the
cells of that code alone, as many as before, and ``group_by=division`` reads the codes of a
subtree, each summing exactly its own steps (``division_levels``).

Kept exactly once: the projection reads the case's done tasks before its write (locking the
case's task rows on PostgreSQL, so a concurrent attempt at the same case waits and then sees
them) and again after it, in the same transaction, and moves only the difference
(``count_newly_finished``): a step that just became done is added; a retried, replayed or
older projection changes nothing or takes back exactly what it undoes; a done step whose
figures changed (a newly published calendar) moves between cells.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Collection, Iterable, Iterator
from dataclasses import dataclass
from datetime import date, timedelta
from itertools import pairwise
from typing import Any

from sqlalchemy import (
    ColumnElement,
    Connection,
    Select,
    and_,
    bindparam,
    case,
    delete,
    false,
    func,
    literal_column,
    or_,
    select,
    text,
    true,
)
from sqlalchemy import insert as sql_insert
from sqlmodel import Session, col

from domain.divisions import DEFAULT_COUNTY, PROVINCE
from infra.db import prepared_statement
from models.tables import TaskRecord, TimelinessRollup, Unit

# Span of a cell, finest first: the completion day, its dekad (旬: days 1-10, 11-20, 21-end of
# its month), its month or its year (period_of).
SPANS = ("day", "dekad", "month", "year")
# Scope of a cell: which of the step's keys it keeps; the others are "".
SCOPES: dict[str, tuple[str, ...]] = {
    "step": ("thing", "step", "department"),
    "department": ("department",),
    "thing": ("thing",),
    "all": (),
}
DIMENSIONS = SCOPES["step"]
# Bucket widths, in tenths of an hour: a cell's hours_bucket is its bucket's first tenth.
TENTH, HOUR = 1, 10
# A done step without figures (no completion event recorded): no day, no bucket.
UNKNOWN_PERIOD = ""
UNKNOWN_BUCKET = -1
KEY_COLUMNS = (
    "span",
    "scope",
    "bucket_width",
    "division_code",
    "period",
    "thing",
    "step",
    "department",
    "hours_bucket",
)
PERCENTILES = (0.5, 0.9)

CellKey = tuple[str, str, int, str, str, str, str, str, int]


def division_levels(code: str) -> list[str]:
    """The divisions a step of a unit in ``code`` is counted under: the division itself and those
    above it (330102 → 330102, 330100, 330000; a city's unit → the city, the province). GB/T 2260
    codes of one province nest by their digits; the SQL of the recomputation uses the same rule."""
    levels = [code, code[:4] + "00", code[:2] + "0000"]
    return list(dict.fromkeys(levels))


@dataclass(frozen=True)
class FinishedStep:
    """What the rollup counts of one done task."""

    thing: str
    step: str
    department: str
    completed_on: str | None
    hours_bucket: int | None
    on_time: bool | None
    # The division of the unit the step was routed to (StepUnit.division_code); a step without
    # a unit (None: a case from before routing) is the default county's.
    division_code: str | None = DEFAULT_COUNTY

    def __post_init__(self) -> None:
        if self.division_code is None:
            object.__setattr__(self, "division_code", DEFAULT_COUNTY)

    def cells(self) -> Iterator[CellKey]:
        keys = {"thing": self.thing, "step": self.step, "department": self.department}
        divisions = division_levels(self.division_code or DEFAULT_COUNTY)
        for span in SPANS:
            period = period_of(self.completed_on or UNKNOWN_PERIOD, span)
            for scope, kept in SCOPES.items():
                thing, step, department = (keys[key] if key in kept else "" for key in DIMENSIONS)
                for width in (TENTH, HOUR):
                    bucket = _bucket(self.hours_bucket, width)
                    for division in divisions:
                        yield span, scope, width, division, period, thing, step, department, bucket


def period_of(day: str, span: str) -> str:
    """The period of ``span`` that holds the day "YYYY-MM-DD" ("" stays ""): "2026-11-02",
    "2026-11-1" (its dekad), "2026-11", "2026". Within a span, periods sort as their days."""
    if not day or span == "day":
        return day
    if span == "dekad":
        return f"{day[:7]}-{(min(int(day[8:10]), 21) - 1) // 10 + 1}"
    return day[: 7 if span == "month" else 4]


def _bucket(tenths: int | None, width: int) -> int:
    return UNKNOWN_BUCKET if tenths is None or tenths < 0 else tenths // width * width


# --- the write ------------------------------------------------------------------------------


def finished_steps(session: Session, case_id: str, *, lock: bool = False) -> dict[str, FinishedStep]:
    """The case's done tasks as the database holds them, by task id. With ``lock``, every task
    row of the case is locked (FOR UPDATE; SQLite has one writer anyway) until the transaction
    ends, so a second transaction writing the same case waits here and then reads what the
    first committed."""
    statement = select(
        col(TaskRecord.task_id),
        col(TaskRecord.status),
        col(TaskRecord.thing),
        col(TaskRecord.step),
        col(TaskRecord.department),
        col(TaskRecord.completed_on),
        col(TaskRecord.hours_bucket),
        col(TaskRecord.on_time),
        col(TaskRecord.unit_code),
    ).where(col(TaskRecord.case_id) == case_id)
    if lock:
        statement = statement.with_for_update()
    rows = session.execute(statement).all()
    unit_codes = {row.unit_code for row in rows if row.status == "done" and row.unit_code is not None}
    divisions = unit_divisions(session, unit_codes)
    return {
        task_id: FinishedStep(
            thing, step, department, completed_on, hours_bucket, on_time, divisions.get(unit_code, DEFAULT_COUNTY)
        )
        for task_id, status, thing, step, department, completed_on, hours_bucket, on_time, unit_code in rows
        if status == "done"
    }


def unit_divisions(session: Session, unit_codes: Iterable[str | None]) -> dict[str | None, str]:
    """The division of each of these units, by code (a code of no unit is left out)."""
    codes = sorted({code for code in unit_codes if code is not None})
    if not codes:
        return {}
    found = session.execute(select(col(Unit.code), col(Unit.division_code)).where(col(Unit.code).in_(codes)))
    return {code: division for code, division in found}


def count_newly_finished(session: Session, case_id: str, before: dict[str, FinishedStep]) -> None:
    """After a write of the case's tasks: add the steps it finished to the rollup (and take
    back any it un-finished or changed), given ``finished_steps(..., lock=True)`` from before it."""
    session.flush()
    after = finished_steps(session, case_id)
    finished = [step for task_id, step in after.items() if before.get(task_id) != step]
    retracted = [step for task_id, step in before.items() if after.get(task_id) != step]
    add_to_timeliness_rollup(session, finished, retracted=retracted)


def _add_to_cells(insert: Any) -> Any:
    statement = insert(TimelinessRollup)
    return statement.on_conflict_do_update(
        index_elements=list(KEY_COLUMNS),
        set_={
            "count": col(TimelinessRollup.count) + statement.excluded.count,
            "on_time_count": col(TimelinessRollup.on_time_count) + statement.excluded.on_time_count,
        },
    )


def add_to_timeliness_rollup(
    session: Session, finished: Iterable[FinishedStep], *, retracted: Iterable[FinishedStep] = ()
) -> None:
    """Count ``finished`` steps into their cells (and take ``retracted`` ones out) with one
    INSERT … ON CONFLICT DO UPDATE SET count = count + excluded.count for all cells.

    Cells are written in key order, so two transactions adding to the same cells lock them in
    the same order and cannot deadlock (PostgreSQL). A cell that falls to zero is deleted.
    """
    deltas: dict[CellKey, list[int]] = {}
    for sign, steps in ((1, finished), (-1, retracted)):
        for finished_step in steps:
            on_time = sign if finished_step.on_time is True else 0
            for cell in finished_step.cells():
                delta = deltas.setdefault(cell, [0, 0])
                delta[0] += sign
                delta[1] += on_time
    changed = sorted((cell, delta) for cell, delta in deltas.items() if delta != [0, 0])
    if not changed:
        return
    session.connection().execute(
        prepared_statement(session, _add_to_cells),
        [{**dict(zip(KEY_COLUMNS, cell, strict=True)), "count": n, "on_time_count": o} for cell, (n, o) in changed],
    )
    emptied = [cell for cell, (n, _) in changed if n < 0]
    if emptied:
        columns = [getattr(TimelinessRollup, key) for key in KEY_COLUMNS]
        session.execute(
            delete(TimelinessRollup).where(
                col(TimelinessRollup.count) == 0,
                or_(*(and_(*(c == v for c, v in zip(columns, cell, strict=True))) for cell in emptied)),
            )
        )


# --- recomputing it (rebuild, the synthetic seeder) -----------------------------------------


def recompute_timeliness_rollup(connection: Connection | Session) -> None:
    """Replace the rollup by one computed from the tasks table (INSERT … SELECT … GROUP BY):
    the day-step-tenth cells from the tasks, every other cell from those.

    On PostgreSQL the table is locked first (until the transaction ends): a projection
    running meanwhile waits to add its steps, which the recomputation did not see."""
    if _dialect(connection) == "postgresql":
        connection.execute(text("LOCK TABLE timeliness_rollup IN EXCLUSIVE MODE"))
    connection.execute(delete(TimelinessRollup))
    on_time = case((col(TaskRecord.on_time).is_(True), 1), else_=0)
    # The division of the task's unit; without a unit (before routing), the default county.
    own = func.coalesce(col(Unit.division_code), literal_column(f"'{DEFAULT_COUNTY}'"))
    # division_levels in SQL: the division itself if a county, its city unless a province, the province.
    levels = [
        (own, func.substr(own, 5, 2) != "00"),
        (func.substr(own, 1, 4).op("||")(literal_column("'00'")), func.substr(own, 3, 4) != "0000"),
        (func.substr(own, 1, 2).op("||")(literal_column("'0000'")), true()),
    ]
    for division, counted in levels:
        base = [
            literal_column("'day'"),
            literal_column("'step'"),
            literal_column(str(TENTH)),
            division,
            func.coalesce(col(TaskRecord.completed_on), literal_column("''")),
            col(TaskRecord.thing),
            col(TaskRecord.step),
            col(TaskRecord.department),
            func.coalesce(col(TaskRecord.hours_bucket), literal_column(str(UNKNOWN_BUCKET))),
        ]
        connection.execute(
            sql_insert(TimelinessRollup).from_select(
                [*KEY_COLUMNS, "count", "on_time_count"],
                select(*base, func.count(), func.sum(on_time))
                .select_from(TaskRecord)
                .outerjoin(Unit, col(Unit.code) == col(TaskRecord.unit_code))
                .where(col(TaskRecord.status) == "done", counted)
                .group_by(*base[3:]),
            )
        )
    # Each cell from a finer one: whole hours from tenths, other scopes of a day from the
    # day's steps, a dekad from its days, a month from its dekads, a year from its months.
    _derive(connection, ("day", "step", HOUR), ("day", "step", TENTH))
    for width in (TENTH, HOUR):
        for scope in ("department", "thing", "all"):
            _derive(connection, ("day", scope, width), ("day", "step", width))
        for scope in SCOPES:
            for finer, span in pairwise(SPANS):
                _derive(connection, (span, scope, width), (finer, scope, width))


def _derive(connection: Connection | Session, cell: tuple[str, str, int], source: tuple[str, str, int]) -> None:
    (span, scope, width), (from_span, from_scope, from_width) = cell, source
    rollup = TimelinessRollup
    period: Any = col(rollup.period)
    if span != from_span:
        period = literal_column(_PERIOD_OF_FINER[span])
    bucket: Any = col(rollup.hours_bucket)
    if width != from_width:
        bucket = case(
            (bucket < 0, literal_column(str(UNKNOWN_BUCKET))),
            else_=bucket // literal_column(str(width)) * literal_column(str(width)),
        )
    kept = [col(getattr(rollup, key)) for key in SCOPES[scope]]
    dims = [col(getattr(rollup, key)) if key in SCOPES[scope] else literal_column("''") for key in DIMENSIONS]
    keys = [
        literal_column(f"'{span}'"),
        literal_column(f"'{scope}'"),
        literal_column(str(width)),
        col(rollup.division_code),
        period,
        *dims,
        bucket,
    ]
    connection.execute(
        sql_insert(rollup).from_select(
            [*KEY_COLUMNS, "count", "on_time_count"],
            select(*keys, func.sum(col(rollup.count)), func.sum(col(rollup.on_time_count)))
            .where(
                col(rollup.span) == from_span, col(rollup.scope) == from_scope, col(rollup.bucket_width) == from_width
            )
            .group_by(col(rollup.division_code), period, *kept, bucket),
        )
    )


# period_of in SQL, from the period of the span before (SQLite and PostgreSQL alike).
_PERIOD_OF_FINER = {
    "dekad": "CASE WHEN period = '' THEN '' ELSE substr(period, 1, 8) || CASE WHEN substr(period, 9, 2) <= '10' "
    "THEN '1' WHEN substr(period, 9, 2) <= '20' THEN '2' ELSE '3' END END",
    "month": "substr(period, 1, 7)",
    "year": "substr(period, 1, 4)",
}


def _dialect(connection: Connection | Session) -> str:
    bind = connection.get_bind() if isinstance(connection, Session) else connection
    return bind.dialect.name


# --- reading a period ----------------------------------------------------------------------

Term = tuple[str, str | None, str | None, int]
"""(span, first period, last period, sign): the cells of that span whose period lies in the
range (inclusive; None leaves that end open), added (1) or taken away (-1)."""

# Rough cost of reading a period, in days: its whole-hour cells and its probes for tenths (the
# synthetic 100,000 cases: ~950 whole-hour cells of steps a day, ~1,700 a dekad, ~2,300 a
# month, a little more a year, as most steps take under a day); a term costs a little itself.
_COST = {"dekad": 1.8, "month": 2.5, "year": 3.5}
_TERM_COST, _OPEN_PAST_COST = 0.5, 3.5
_FINER = {"year": "month", "month": "dekad", "dekad": "day"}


def period_terms(first: date | None, last: date | None, today: date) -> list[Term]:
    """The cheapest signed cover of the days ``first``..``last`` (None: open) by whole
    years, months and dekads, and days; ``today`` tells which periods can hold no cells yet.
    Its edges are a few days at most: a dekad less or plus up to five."""
    if first is not None and last is not None and first > last:
        return []
    if first is None and last is None:
        return [("year", None, None, 1)]
    return _cover(first, last, "year", today)[1]


def _cover(first: date | None, last: date | None, unit: str, today: date) -> tuple[float, list[Term]]:
    """Cover first..last, which lies within one ``unit`` of the level above (any span for years)."""
    if unit == "day":
        assert first is not None and last is not None
        return _days_cost(first, last, today) + _TERM_COST, [("day", first.isoformat(), last.isoformat(), 1)]
    finer = _FINER[unit]
    if first is not None and last is not None and _start(first, unit) == _start(last, unit):
        return _within_one(first, last, unit, finer, today)
    cost, terms = 0.0, list[Term]()
    whole_first, whole_last = first, last
    if first is not None and first != _start(first, unit):
        edge = _within_one(first, _end(first, unit), unit, finer, today)
        cost, terms = cost + edge[0], terms + edge[1]
        whole_first = _end(first, unit) + timedelta(days=1)
    if last is not None and last != _end(last, unit):
        edge = _within_one(_start(last, unit), last, unit, finer, today)
        cost, terms = cost + edge[0], terms + edge[1]
        whole_last = _start(last, unit) - timedelta(days=1)
    if whole_first is None or whole_last is None or whole_first <= whole_last:
        cost += _units_cost(whole_first, whole_last, unit, today) + _TERM_COST
        terms.append(
            (
                unit,
                None if whole_first is None else _period(whole_first, unit),
                None if whole_last is None else _period(whole_last, unit),
                1,
            )
        )
    return cost, terms


def _within_one(first: date, last: date, unit: str, finer: str, today: date) -> tuple[float, list[Term]]:
    """first..last inside one unit: its finer pieces, or the whole unit less the rest."""
    start, end = _start(first, unit), _end(first, unit)
    whole = _units_cost(start, start, unit, today) + _TERM_COST
    if (first, last) == (start, end):
        return whole, list[Term]([(unit, _period(start, unit), _period(start, unit), 1)])
    added = _cover(first, last, finer, today)
    cost, terms = whole, list[Term]([(unit, _period(start, unit), _period(start, unit), 1)])
    for rest_first, rest_last in ((start, first - timedelta(days=1)), (last + timedelta(days=1), end)):
        if rest_first <= rest_last:
            rest = _cover(rest_first, rest_last, finer, today)
            cost += rest[0]
            terms += [(span, low, high, -sign) for span, low, high, sign in rest[1]]
    return added if added[0] <= cost else (cost, terms)


def _start(day: date, unit: str) -> date:
    if unit == "year":
        return date(day.year, 1, 1)
    if unit == "month":
        return day.replace(day=1)
    if unit == "dekad":
        return day.replace(day=(min(day.day, 21) - 1) // 10 * 10 + 1)
    return day


def _end(day: date, unit: str) -> date:
    if unit == "year":
        return date(day.year, 12, 31)
    if unit == "dekad" and day.day <= 20:
        return day.replace(day=10 if day.day <= 10 else 20)
    if unit in ("dekad", "month"):
        return date(day.year + day.month // 12, day.month % 12 + 1, 1) - timedelta(days=1)
    return day


def _period(day: date, unit: str) -> str:
    return period_of(day.isoformat(), unit)


def _days_cost(first: date, last: date, today: date) -> float:
    return float(max(0, (min(last, today) - first).days + 1))


def _units_cost(first: date | None, last: date | None, unit: str, today: date) -> float:
    """Whole units from first's to last's (None: open), none of them after today's."""
    if first is None:
        return _OPEN_PAST_COST
    cost, start = 0.0, first
    end = today if last is None else min(_end(last, unit), today)
    while start <= end:
        cost += min(_COST[unit], _days_cost(start, min(_end(start, unit), end), today))
        start = _end(start, unit) + timedelta(days=1)
    return cost


def scope_for(keys: Iterable[str]) -> str:
    """The narrowest scope that keeps all these of thing, step and department."""
    needed = set(keys)
    return next(scope for scope in ("all", "department", "thing", "step") if needed <= set(SCOPES[scope]))


@dataclass
class GroupFigures:
    completed: int = 0
    on_time: int = 0
    median_tenths: int | None = None  # nearest rank among the steps with figures; None without any
    p90_tenths: int | None = None


def timeliness_figures(
    session: Session,
    keys: list[str],
    first: date | None,
    last: date | None,
    today: date,
    filters: dict[str, str] | None = None,
    divisions: Collection[str] = (PROVINCE,),
) -> dict[tuple[Any, ...], GroupFigures]:
    """Per group of ``keys`` (of thing, step, department, division_code, and period: the day),
    the steps done in first..last (None: open), how many on time, and the tenths of an hour of
    their median and 90th percentile, from the rollup; ``filters`` keep the steps with these
    values of thing, step or department. ``divisions``: the steps of that division (one code; by
    default the province's, every step), or, grouped by ``division_code``, a row for each of
    these codes. Groups without steps are left out."""
    filters = filters or {}
    divisions = sorted(set(divisions))
    if "division_code" not in keys and len(divisions) != 1:
        raise ValueError("the rollup counts a step under each division above it: read one division, or group by it")
    scope = scope_for([key for key in keys if key not in ("period", "division_code")] + list(filters))
    if "period" in keys:  # by day: the day cells themselves
        terms: list[Term] = [("day", first.isoformat() if first else None, last.isoformat() if last else None, 1)]
    else:
        terms = period_terms(first, last, today)
    reading = _Reading(keys, scope, filters, divisions, terms, bounded=first is not None or last is not None)
    connection = session.connection()  # Core rows: a few thousand of them, no ORM entities
    if connection.dialect.name == "postgresql":
        # A few thousand cells: parallel workers cost more to start than they save (20 ms of
        # Gather Merge for 2 ms of work, measured), so none for this transaction's queries.
        connection.execute(text("SET LOCAL max_parallel_workers_per_gather = 0"))
    figures: dict[tuple[Any, ...], GroupFigures] = {}
    hours: dict[tuple[Any, ...], dict[int, int]] = defaultdict(lambda: defaultdict(int))
    # Each group's cells within a period: its steps' (thing, step, department) as far as the
    # scope keeps them. Rows are read in batches and only these few things kept from them: a
    # request that keeps thousands of objects alive brings on the collector's full passes
    # (~90 ms with the API's objects), the p95 of the step questions before this.
    cells: dict[tuple[Any, ...], dict[tuple[Any, ...], None]] = defaultdict(dict)
    width = len(reading.columns)
    for batch in connection.execute(reading.hour_histograms()).partitions(1000):
        for row in batch:
            key, bucket, count = tuple(row[: len(keys)]), int(row[width]), int(row[width + 1])
            group = figures.get(key) or figures.setdefault(key, GroupFigures())
            group.completed += count
            group.on_time += int(row[width + 2] or 0)
            if bucket != UNKNOWN_BUCKET:
                hours[key][bucket] += count
                cells[key].setdefault(tuple(row[:width]))
    # Nearest rank p: the first tenth where ceil(p · steps with figures) steps are seen; its
    # hour is the first hour where they are, and the tenth is as far into that hour as remains.
    wanted: dict[tuple[tuple[Any, ...], int], list[tuple[float, int]]] = defaultdict(list)
    for key, by_hour in hours.items():
        histogram = sorted(by_hour.items())
        measured = sum(count for _, count in histogram)
        for fraction in PERCENTILES:
            rank = max(1, -(-int(fraction * measured * 1000) // 1000))  # ceil without float drift
            seen = 0
            for hour, count in histogram:
                if seen + count >= rank:
                    wanted[key, hour].append((fraction, rank - seen))
                    break
                seen += count
    open_years = any(span == "year" and None in (low, high) for span, low, high, _ in terms)
    years = _known_years(connection) if open_years else []
    tenths = reading.tenths_within(connection, {pair: list(cells[pair[0]]) for pair in wanted}, years)
    for (key, hour), ranks in wanted.items():
        histogram = sorted(tenths.get((key, hour), {}).items())
        for fraction, rank in ranks:
            seen = 0
            for tenth, count in histogram:  # noqa: B007  (the tenth where the loop stops)
                seen += count
                if seen >= rank:
                    break
            else:  # the hour's tenths fall short of its count: the rollup disagrees with itself
                raise RuntimeError(f"timeliness rollup: the tenths of hour {hour} of {key} do not add up")
            if fraction == PERCENTILES[0]:
                figures[key].median_tenths = tenth
            else:
                figures[key].p90_tenths = tenth
    return figures


def _known_years(connection: Connection) -> list[str]:
    """Every year period the rollup holds (with "" for steps done without a day)."""
    rollup = TimelinessRollup
    return list(
        connection.execute(
            select(col(rollup.period))
            .distinct()
            .where(
                col(rollup.span) == "year",
                col(rollup.scope) == "all",
                col(rollup.bucket_width) == HOUR,
                col(rollup.division_code) == PROVINCE,
            )
        ).scalars()
    )


@dataclass
class _Reading:
    """One question to the rollup: its groups, the scope read, filters and cover of the period."""

    keys: list[str]
    scope: str
    filters: dict[str, str]
    divisions: list[str]
    terms: list[Term]
    bounded: bool

    @property
    def columns(self) -> list[str]:
        """The groups' keys, then the division and the scope's other keys: a cell's full key
        within its period."""
        return self.keys + [key for key in ("division_code", *SCOPES[self.scope]) if key not in self.keys]

    def hour_histograms(self) -> Select[Any]:
        """Per cell key and whole hour: steps done and on time, summed over the cover's terms."""
        rollup = TimelinessRollup
        parts = []
        for span, low, high, sign in self.terms or [("day", None, None, 1)]:
            conditions: list[ColumnElement[bool]] = [
                col(rollup.span) == span,
                col(rollup.scope) == self.scope,
                col(rollup.bucket_width) == HOUR,
                col(rollup.division_code).in_(self.divisions)
                if len(self.divisions) > 1
                else col(rollup.division_code) == self.divisions[0],
                *(col(getattr(rollup, key)) == value for key, value in self.filters.items()),
            ]
            if not self.terms:  # an empty range
                conditions.append(false())
            if low is not None:
                conditions.append(col(rollup.period) >= low)
            if high is not None:
                conditions.append(col(rollup.period) <= high)
            if self.bounded:  # a step done without a day is in no period
                conditions.append(col(rollup.period) != UNKNOWN_PERIOD)
            count, on_time = col(rollup.count), col(rollup.on_time_count)
            parts.append(
                select(
                    *(col(getattr(rollup, key)) for key in self.columns),
                    col(rollup.hours_bucket),
                    (count if sign > 0 else -count).label("n"),
                    (on_time if sign > 0 else -on_time).label("o"),
                ).where(*conditions)
            )
        cells = parts[0].union_all(*parts[1:]).subquery() if len(parts) > 1 else parts[0].subquery()
        grouped = [cells.c[key] for key in self.columns] + [cells.c.hours_bucket]
        total = func.sum(cells.c.n)
        return select(*grouped, total, func.sum(cells.c.o)).group_by(*grouped).having(total != 0)

    def tenths_within(
        self, connection: Connection, wanted: dict[tuple[tuple[Any, ...], int], list[tuple[Any, ...]]], years: list[str]
    ) -> dict[tuple[tuple[Any, ...], int], dict[int, int]]:
        """For each (group, hour) and the cells with steps in that hour: steps per tenth of the
        hour over the cover, read through the primary key, one probe per cell and period."""
        pairs = list(wanted)
        probes: list[tuple[Any, ...]] = []  # (pair, span, division, period, *cell key, hour, sign)
        for index, ((_, hour), keys) in enumerate(wanted.items()):
            for cell in keys:
                values = dict(zip(self.columns, cell, strict=True))
                for span, low, high, sign in self.terms:
                    periods = [values["period"]] if "period" in values else _periods(span, low, high, years)
                    for period in periods:
                        if not (self.bounded and period == UNKNOWN_PERIOD):
                            dims = (values[key] for key in SCOPES[self.scope])
                            probes.append((index, span, values["division_code"], period, *dims, hour, sign))
        found: dict[tuple[tuple[Any, ...], int], dict[int, int]] = defaultdict(lambda: defaultdict(int))
        for start in range(0, len(probes), _PROBES_PER_STATEMENT):
            chunk = probes[start : start + _PROBES_PER_STATEMENT]
            for index, tenth, count in connection.execute(self._probe(chunk)).all():
                found[pairs[index]][int(tenth)] += int(count)
        return found

    def _probe(self, probes: list[tuple[Any, ...]]) -> Any:
        """One statement: the cells wanted as a VALUES list, each joined to the rollup's primary
        key down to its hour. Numbers and spans are written in as they are, strings escaped."""
        kept = list(SCOPES[self.scope])
        strings: dict[str, str] = {}

        def literal(value: Any) -> str:
            if isinstance(value, int):
                return str(value)
            return ":" + strings.setdefault(str(value), f"s{len(strings)}")

        rows = ", ".join(
            f"({index}, '{span}', {', '.join(literal(value) for value in (division, period, *dims))}, {hour}, {sign})"
            for index, span, division, period, *dims, hour, sign in probes
        )
        on = [
            "r.span = w.span",
            f"r.scope = '{self.scope}'",
            f"r.bucket_width = {TENTH}",
            "r.division_code = w.division_code",
            "r.period = w.period",
            *(f"r.{key} = w.{key}" if key in kept else f"r.{key} = ''" for key in DIMENSIONS),
            "r.hours_bucket >= w.low",
            f"r.hours_bucket < w.low + {HOUR}",
        ]
        columns = ", ".join(["g", "span", "division_code", "period", *kept, "low", "sign"])
        sql = (
            f"WITH w ({columns}) AS (VALUES {rows}) SELECT w.g, r.hours_bucket, sum(r.count * w.sign) "
            f"FROM w JOIN timeliness_rollup r ON {' AND '.join(on)} GROUP BY w.g, r.hours_bucket"
        )
        # Written into the statement by SQLAlchemy (escaped for the dialect): PostgreSQL plans a
        # VALUES list of literals two to three times faster than one of parameters (measured).
        return text(sql).bindparams(*(bindparam(name, value, literal_execute=True) for value, name in strings.items()))


_PROBES_PER_STATEMENT = 500


def _periods(span: str, low: str | None, high: str | None, years: list[str]) -> list[str]:
    """Every period of a term: its days, dekads or months (a term of those lies within a month
    or a year) or years; for a term open at an end, the years the rollup holds."""
    if span == "year":
        if low is not None and high is not None:
            return [f"{year:04d}" for year in range(int(low), int(high) + 1)]
        return [year for year in years if (low is None or year >= low) and (high is None or year <= high)]
    assert low is not None and high is not None
    periods, day = [], _first_day(low, span)
    while (period := _period(day, span)) <= high:
        periods.append(period)
        day = _end(day, span) + timedelta(days=1)
    return periods


def _first_day(period: str, span: str) -> date:
    if span == "dekad":
        return date(int(period[:4]), int(period[5:7]), (int(period[8:]) - 1) * 10 + 1)
    return date.fromisoformat(period if span == "day" else f"{period}-01")

"""Supervision (效能监督, DB33/T 2304-2021 §8): timeliness statistics, overdue and
warning lists, manual 督办 and 催办, and a check that the statistics agree with
the workflow history.

Statistics come from the read model with indexed queries; timeliness from its
rollup (infra/timeliness_rollup.py), where percentiles are read from per-group
histograms (tenths of a working hour) in the database, so no query scans the
finished tasks, a history, or ships every row to Python.
"""

from __future__ import annotations

from datetime import UTC, date, datetime, time, timedelta
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Header, Query, Request, Response
from pydantic import BaseModel, Field
from sqlalchemy import ColumnElement, and_, exists, func, select, true
from sqlalchemy import case as sql_case
from sqlmodel import Session, col
from starlette.concurrency import run_in_threadpool

from api.deps import ActorDep, CalendarDep, ClientDep, EngineDep, SessionDep, require_role
from api.errors import error_responses
from api.exports import csv_response, wants_csv
from api.schemas import CaseId, Code, IsoDate, OffsetQuery, also_as
from api.timeline import read_case_history
from domain.divisions import PROVINCE, subtree_codes
from domain.divisions import division as division_named
from domain.redaction import mask_personal_data
from domain.timeliness import step_timeliness
from domain.workcalendar import SHANGHAI, WorkingCalendar
from infra.timeliness_rollup import UNKNOWN_PERIOD, division_levels, timeliness_figures
from models.case import Actor, StepView
from models.tables import CaseRecord, RatingRecord, SupervisionNotice, TaskRecord, Unit
from services.access import (
    supervised_cases_filter,
    supervised_division,
    supervised_divisions,
    supervised_tasks_filter,
    task_division,
    tasks_within,
    visible_case,
)
from services.supervision import pending_extensions, supervise

router = APIRouter(
    prefix="/supervision", tags=["supervision"], responses=error_responses(401, 403, 404, 409, 413, 422, 503)
)

OPEN_STATUSES = ["open", "claimed"]
GROUP_COLUMNS: dict[str, list[str]] = {
    "department": ["department"],
    "step": ["thing", "step"],
    "thing": ["thing"],
    "day": ["completed_on"],
    "division": ["division_code"],
}
TimelinessGroup = Literal["department", "step", "thing", "day", "division"]
GROUP_HEADERS_ZH = {
    "department": "部门",
    "thing": "事项",
    "step": "环节",
    "completed_on": "日期",
    "division_code": "行政区划代码",
}
# A division row's name and level (county, city or province), after its code.
DIVISION_COLUMNS = [("division_name_zh", "行政区划"), ("level", "层级")]


def _supervisor(actor: Actor) -> None:
    require_role(actor, "supervisor", "admin")


@router.get("/timeliness", response_model=None, responses=also_as("text/csv"))
def timeliness(
    request: Request,
    actor: ActorDep,
    session: SessionDep,
    group_by: TimelinessGroup = "department",
    from_: Annotated[IsoDate | None, Query(alias="from")] = None,
    to: IsoDate | None = None,
    thing: Code | None = None,
    department: Code | None = None,
    step: Code | None = None,
) -> Response | dict[str, Any]:
    """Steps completed in the period, on time and overdue, working hours used, open steps now overdue:
    of the steps in the supervisor's division and the divisions within it. ``group_by=division``:
    a row per county, and one per city (and the province) above them, summing theirs."""
    _supervisor(actor)
    result = timeliness_rows(
        session,
        group_by,
        from_,
        to,
        thing=thing,
        department=department,
        step=step,
        division=supervised_division(actor),
    )
    if wants_csv(request):
        return csv_response(result, timeliness_csv_columns(group_by), f"timeliness-{group_by}")
    return {"group_by": group_by, "rows": result}


def timeliness_csv_columns(group_by: TimelinessGroup) -> list[tuple[str, str]]:
    """The timeliness CSV's columns: the group's keys, then the figures, with Chinese headers."""
    keys = [(key, GROUP_HEADERS_ZH[key]) for key in GROUP_COLUMNS[group_by]]
    return (
        keys
        + (DIVISION_COLUMNS if group_by == "division" else [])
        + [
            ("completed", "办结数"),
            ("on_time", "按时办结数"),
            ("overdue", "超期办结数"),
            ("on_time_rate", "按时办结率"),
            ("median_working_hours", "用时中位数（工作小时）"),
            ("p90_working_hours", "用时P90（工作小时）"),
            ("open_overdue", "在办超期数"),
        ]
    )


def timeliness_rows(
    session: Session,
    group_by: TimelinessGroup,
    from_: date | None,
    to: date | None,
    *,
    thing: str | None = None,
    department: str | None = None,
    step: str | None = None,
    division: str = PROVINCE,
) -> list[dict[str, Any]]:
    """Timeliness per group (the JSON statistics, their CSV and the console's dashboard): steps
    completed in the period, on time and overdue, median and p90 working hours, open steps now
    overdue; of the steps in ``division`` (GB/T 2260, by default the province: all of them) and
    the divisions within it. By division: a row per division within it that has steps, each
    summing the steps of its own subtree (a city's row holds its counties').

    Completed steps come from the timeliness rollup (infra/timeliness_rollup.py), never from
    the tasks: per group and tenth of an hour, how many and how many on time; counts and
    percentiles both come from it. Open steps now overdue depend on "now", so they are counted
    from the tasks (the few open ones, by index)."""
    keys = GROUP_COLUMNS[group_by]
    filters = {key: value for key, value in (("thing", thing), ("department", department), ("step", step)) if value}
    rows: dict[tuple[Any, ...], dict[str, Any]] = {}

    def row_for(key: tuple[Any, ...]) -> dict[str, Any]:
        return rows.setdefault(
            key,
            {**dict(zip(keys, key, strict=True)), "completed": 0, "on_time": 0, "overdue": 0, "open_overdue": 0},
        )

    rollup_keys = [ROLLUP_COLUMN.get(key, key) for key in keys]
    today = datetime.now(SHANGHAI).date()
    within = subtree_codes(division)
    divisions = within if group_by == "division" else {division}
    figures = timeliness_figures(session, rollup_keys, from_, to, today, filters, divisions)
    percentiles: dict[tuple[Any, ...], tuple[float | None, float | None]] = {}
    for rollup_group, figure in figures.items():
        group = (None,) if group_by == "day" and rollup_group == (UNKNOWN_PERIOD,) else rollup_group  # no day
        row = row_for(group)
        row["completed"], row["on_time"] = figure.completed, figure.on_time
        row["overdue"] = figure.completed - figure.on_time
        # Nearest-rank percentiles of the tenths of an hour, in hours.
        percentiles[group] = (_hours(figure.median_tenths), _hours(figure.p90_tenths))

    now = datetime.now(UTC)
    task_filters = [col(getattr(TaskRecord, key)) == value for key, value in filters.items()]
    open_overdue = [*task_filters, col(TaskRecord.status).in_(OPEN_STATUSES), col(TaskRecord.due_at) < now]
    open_overdue.append(tasks_within(None if division == PROVINCE else within))
    if group_by == "division":
        # Each step under its unit's division and each division above it, within ``division``.
        unit_division = col(Unit.division_code)
        for own, count in session.execute(
            select(unit_division, func.count())
            .select_from(TaskRecord)
            .outerjoin(Unit, col(Unit.code) == col(TaskRecord.unit_code))
            .where(*open_overdue)
            .group_by(unit_division)
        ).all():
            for code in division_levels(task_division(own)):
                if code in within:
                    row_for((code,))["open_overdue"] += int(count)
    elif group_by == "day":
        # Grouped by the Beijing day the step fell due: the period's days only.
        if from_:
            open_overdue.append(col(TaskRecord.due_at) >= _beijing_midnight(from_))
        if to:
            open_overdue.append(col(TaskRecord.due_at) < _beijing_midnight(to + timedelta(days=1)))
        for (due_at,) in session.execute(select(col(TaskRecord.due_at)).where(*open_overdue)).all():
            day = due_at.astimezone(SHANGHAI).date()
            if (from_ and day < from_) or (to and day > to):
                continue
            row_for((day.isoformat(),))["open_overdue"] += 1
    else:
        key_columns = [col(getattr(TaskRecord, key)) for key in keys]
        for *key, count in session.execute(
            select(*key_columns, func.count()).where(*open_overdue).group_by(*key_columns)
        ).all():
            row_for(tuple(key))["open_overdue"] += int(count)

    result = []
    for group in sorted(rows, key=lambda k: tuple(str(part) for part in k)):
        row = rows[group]
        row["on_time_rate"] = round(row["on_time"] / row["completed"], 4) if row["completed"] else None
        row["median_working_hours"], row["p90_working_hours"] = percentiles.get(group, (None, None))
        if group_by == "division":
            named = division_named(row["division_code"])
            row["division_name_zh"] = named.name_zh if named else row["division_code"]
            row["level"] = named.level if named else None
        result.append(row)
    return result


# The rollup's name for a timeliness group's key.
ROLLUP_COLUMN = {"completed_on": "period"}


def _hours(tenths: int | None) -> float | None:
    return None if tenths is None else tenths / 10


def _beijing_midnight(day: date) -> datetime:
    return datetime.combine(day, time(), SHANGHAI)


OPEN_TASK_COLUMNS = [
    ("task_id", "任务编号"),
    ("case_id", "案件编号"),
    ("thing", "事项"),
    ("step", "环节"),
    ("department", "部门"),
    ("assignee", "经办人"),
    ("due_at", "办理期限"),
    ("provisional", "期限暂定"),  # next year's holiday notice not loaded yet
    ("overdue_working_hours", "超期（工作小时）"),
]


def _open_tasks(
    session: Session, calendar: WorkingCalendar, condition: ColumnElement[bool], limit: int, offset: int
) -> tuple[list[dict[str, Any]], int]:
    now = datetime.now(UTC)
    where = [col(TaskRecord.status).in_(OPEN_STATUSES), condition]
    total = session.execute(select(func.count()).select_from(TaskRecord).where(*where)).scalar_one()
    tasks = session.execute(
        select(TaskRecord)
        .where(*where)
        .order_by(col(TaskRecord.due_at), col(TaskRecord.task_id))
        .limit(limit)
        .offset(offset)
    ).scalars()
    items = []
    for task in tasks:
        late = calendar.working_seconds_between(task.due_at, now) if task.due_at and task.due_at < now else 0.0
        items.append(
            {
                "task_id": task.task_id,
                "case_id": task.case_id,
                "thing": task.thing,
                "step": task.step,
                "department": task.department,
                "assignee": task.assignee,
                "status": task.status,
                "due_at": task.due_at,
                "warning_at": task.warning_at,
                "overdue_working_hours": round(late / 3600, 2),
                "escalations": task.escalations,
                "provisional": task.provisional,
            }
        )
    return items, int(total)


def overdue_tasks(
    session: Session, calendar: WorkingCalendar, limit: int, offset: int, *, actor: Actor
) -> tuple[list[dict[str, Any]], int]:
    """One page of the open steps past their due time that the supervisor sees (their division's
    and those within it), oldest first, and their total."""
    condition = and_(col(TaskRecord.due_at) < datetime.now(UTC), supervised_tasks_filter(actor))
    return _open_tasks(session, calendar, condition, limit, offset)


def warning_tasks(
    session: Session, calendar: WorkingCalendar, limit: int, offset: int, *, actor: Actor
) -> tuple[list[dict[str, Any]], int]:
    """One page of the open steps in their last working day (预警) that the supervisor sees,
    oldest due first, and their total."""
    now = datetime.now(UTC)
    condition = and_(col(TaskRecord.warning_at) <= now, col(TaskRecord.due_at) > now, supervised_tasks_filter(actor))
    return _open_tasks(session, calendar, condition, limit, offset)


@router.get("/overdue", response_model=None, responses=also_as("text/csv"))
def overdue_steps(
    request: Request,
    actor: ActorDep,
    session: SessionDep,
    calendar: CalendarDep,
    limit: Annotated[int, Query(ge=1, le=500)] = 100,
    offset: OffsetQuery = 0,
) -> Response | dict[str, Any]:
    """Open steps past their due time, oldest first."""
    _supervisor(actor)
    items, total = overdue_tasks(session, calendar, limit, offset, actor=actor)
    if wants_csv(request):
        return csv_response(items, OPEN_TASK_COLUMNS, "overdue")
    return {"items": items, "total": total, "limit": limit, "offset": offset}


@router.get("/warnings", response_model=None, responses=also_as("text/csv"))
def warning_steps(
    request: Request,
    actor: ActorDep,
    session: SessionDep,
    calendar: CalendarDep,
    limit: Annotated[int, Query(ge=1, le=500)] = 100,
    offset: OffsetQuery = 0,
) -> Response | dict[str, Any]:
    """Open steps in their last working day (预警), oldest due first."""
    _supervisor(actor)
    items, total = warning_tasks(session, calendar, limit, offset, actor=actor)
    if wants_csv(request):
        return csv_response(items, OPEN_TASK_COLUMNS[:-1], "warnings")
    return {"items": items, "total": total, "limit": limit, "offset": offset}


@router.get("/extensions")
def extension_requests(
    actor: ActorDep,
    session: SessionDep,
    limit: Annotated[int, Query(ge=1, le=200)] = 50,
    offset: OffsetQuery = 0,
) -> dict[str, Any]:
    """Extension requests (延期申请) awaiting a decision in the supervisor's division, soonest due
    first; each is decided with ``POST /tasks/{task_id}/extension/approve`` or ``/reject``."""
    _supervisor(actor)
    items, total = pending_extensions(session, actor, limit, offset)
    return {"items": items, "total": total, "limit": limit, "offset": offset}


@router.get("/verify")
async def verify_case(
    case_id: CaseId, actor: ActorDep, client: ClientDep, engine: EngineDep, calendar: CalendarDep
) -> dict[str, Any]:
    """Recompute one case's step figures from its workflow history and compare them with the read model."""
    _supervisor(actor)
    # The read model first: an unknown id is a 404 before any id reaches Temporal.
    tasks = await run_in_threadpool(_case_tasks, engine, actor, case_id)
    case, events = await read_case_history(client, case_id)
    differences: list[dict[str, Any]] = []
    now = datetime.now(UTC)
    for step in case.definition.steps_for(case.channel):
        truth = step_timeliness(step.code, events, calendar, now)
        stored = tasks.get(step.code)
        if truth.opened_at is None:
            if stored is not None:
                differences.append({"step": step.code, "field": "task", "history": None, "read_model": "present"})
            continue
        if stored is None:
            differences.append({"step": step.code, "field": "task", "history": "opened", "read_model": None})
            continue
        expected: dict[str, Any] = {"due_at": truth.due_at, "completed_at": truth.completed_at}
        if truth.completed_at is not None:
            expected |= {"working_hours_used": truth.working_hours_used, "on_time": truth.on_time}
        for field, value in expected.items():
            if getattr(stored, field) != value:
                differences.append(
                    {"step": step.code, "field": field, "history": value, "read_model": getattr(stored, field)}
                )
    return {"case_id": case_id, "agrees": not differences, "differences": differences}


def _case_tasks(engine: Any, actor: Actor, case_id: str) -> dict[str, TaskRecord]:
    with Session(engine) as session:
        visible_case(session, actor, case_id)
        rows = session.execute(select(TaskRecord).where(col(TaskRecord.case_id) == case_id)).scalars()
        return {row.step: row for row in rows}


async def _supervised_case(engine: Any, actor: Actor, case_id: str) -> None:
    """A supervisor acts only on a case of their division or one within it; another is 404."""
    if actor.role == "supervisor" and supervised_divisions(actor) is not None:
        await run_in_threadpool(_visible_case_id, engine, actor, case_id)


def _visible_case_id(engine: Any, actor: Actor, case_id: str) -> None:
    with Session(engine) as session:
        visible_case(session, actor, case_id)


class SupervisionRequest(BaseModel):
    case_id: str = Field(min_length=1, max_length=64)
    step: str = Field(min_length=1, max_length=64)
    message: str = Field(min_length=1, max_length=500)


@router.post("/notices", status_code=201)
async def issue_notice(
    body: SupervisionRequest,
    actor: ActorDep,
    client: ClientDep,
    engine: EngineDep,
    idempotency_key: Annotated[str | None, Header(alias="Idempotency-Key", max_length=128)] = None,
) -> StepView:
    """督办: a notice to the step's department, listed until an officer there acknowledges it."""
    await _supervised_case(engine, actor, body.case_id)
    return await supervise(
        client, actor, body.case_id, body.step, body.message, "notice", idempotency_key, engine=engine
    )


@router.post("/urges", status_code=201)
async def urge_assignee(
    body: SupervisionRequest,
    actor: ActorDep,
    client: ClientDep,
    engine: EngineDep,
    idempotency_key: Annotated[str | None, Header(alias="Idempotency-Key", max_length=128)] = None,
) -> StepView:
    """催办: a reminder to the officer who claimed the step."""
    await _supervised_case(engine, actor, body.case_id)
    return await supervise(client, actor, body.case_id, body.step, body.message, "urge", idempotency_key, engine=engine)


NOTICE_COLUMNS = [
    ("notice_id", "督办编号"),
    ("case_id", "案件编号"),
    ("step", "环节"),
    ("department", "部门"),
    ("origin", "来源"),
    ("message_zh", "督办内容"),
    ("issued_at", "督办时间"),
    ("acknowledged_at", "签收时间"),
    ("reply", "回复"),
]


def notice_rows(notices: Any) -> list[dict[str, Any]]:
    return [notice.model_dump() for notice in notices]


def supervised_notices_filter(actor: Actor) -> ColumnElement[bool]:
    """督办 a supervisor sees: those on a step (task) of their division's or one within it."""
    return exists(
        select(col(TaskRecord.task_id))
        .where(
            col(TaskRecord.case_id) == col(SupervisionNotice.case_id),
            col(TaskRecord.step) == col(SupervisionNotice.step),
            supervised_tasks_filter(actor),
        )
        .correlate_except(TaskRecord)
    )


@router.get("/notices", response_model=None, responses=also_as("text/csv"))
def list_notices(
    request: Request,
    actor: ActorDep,
    session: SessionDep,
    acknowledged: bool | None = None,
    department: Code | None = None,
    limit: Annotated[int, Query(ge=1, le=500)] = 100,
    offset: OffsetQuery = 0,
) -> Response | dict[str, Any]:
    """Every 督办 on the steps of the supervisor's division and those within it, automatic and
    manual; ``acknowledged=false`` lists those still unanswered."""
    _supervisor(actor)
    where: list[ColumnElement[bool]] = [] if supervised_divisions(actor) is None else [supervised_notices_filter(actor)]
    if acknowledged is not None:
        where.append(
            col(SupervisionNotice.acknowledged_at).is_not(None)
            if acknowledged
            else col(SupervisionNotice.acknowledged_at).is_(None)
        )
    if department:
        where.append(col(SupervisionNotice.department) == department)
    total = session.execute(select(func.count()).select_from(SupervisionNotice).where(*where)).scalar_one()
    rows = notice_rows(
        session.execute(
            select(SupervisionNotice)
            .where(*where)
            .order_by(col(SupervisionNotice.issued_at), col(SupervisionNotice.notice_id))
            .limit(limit)
            .offset(offset)
        ).scalars()
    )
    # Messages and replies are free text: supervisors and admins read them masked.
    rows = mask_personal_data(rows)
    if wants_csv(request):
        return csv_response(rows, NOTICE_COLUMNS, "notices")
    return {"items": rows, "total": int(total), "limit": limit, "offset": offset}


SCORE_LABELS_ZH = {5: "非常满意", 4: "满意", 3: "基本满意", 2: "不满意", 1: "非常不满意"}


@router.get("/ratings", response_model=None, responses=also_as("text/csv"))
def ratings(
    request: Request,
    actor: ActorDep,
    session: SessionDep,
    group_by: Literal["department", "thing"] = "thing",
) -> Response | dict[str, Any]:
    """好差评 by thing (case ratings) or department (step ratings); cases whose rating period
    ended without a rating count as not rated, never as satisfied."""
    _supervisor(actor)
    result = rating_rows(session, group_by, actor=actor)
    if wants_csv(request):
        columns = [(group_by, GROUP_HEADERS_ZH[group_by]), ("rated", "评价数"), ("average_score", "平均分")]
        columns += [(f"score_{s}", SCORE_LABELS_ZH[s]) for s in range(5, 0, -1)]
        columns += [("low", "差评数"), ("not_rated", "未评价数")]
        return csv_response(result, columns, f"ratings-{group_by}")
    return {"group_by": group_by, "rows": result}


def supervised_ratings_filter(actor: Actor) -> ColumnElement[bool]:
    """Ratings a supervisor sees: of a case they see (its overall rating) or of a step of their
    division's or one within it."""
    if supervised_divisions(actor) is None:
        return true()
    of_case = exists(
        select(col(CaseRecord.case_id))
        .where(col(CaseRecord.case_id) == col(RatingRecord.case_id), supervised_cases_filter(actor))
        .correlate_except(CaseRecord)
    )
    of_step = exists(
        select(col(TaskRecord.task_id))
        .where(
            col(TaskRecord.case_id) == col(RatingRecord.case_id),
            col(TaskRecord.step) == col(RatingRecord.step),
            supervised_tasks_filter(actor),
        )
        .correlate_except(TaskRecord)
    )
    return sql_case((col(RatingRecord.step) == "", of_case), else_=of_step)


def rating_rows(session: Session, group_by: Literal["department", "thing"], *, actor: Actor) -> list[dict[str, Any]]:
    """好差评 per thing or department: ratings, average, count per score, low ones, cases not rated
    in time; of the cases and steps the supervisor sees."""
    key = col(RatingRecord.thing) if group_by == "thing" else col(RatingRecord.department)
    scope = and_(
        col(RatingRecord.step) == "" if group_by == "thing" else col(RatingRecord.step) != "",
        supervised_ratings_filter(actor),
    )
    rows: dict[str, dict[str, Any]] = {}

    def row_for(group: str) -> dict[str, Any]:
        return rows.setdefault(
            group,
            {group_by: group, "rated": 0, "average_score": None, "low": 0, "not_rated": 0}
            | {f"score_{score}": 0 for score in range(1, 6)},
        )

    for group, score, count in session.execute(
        select(key, col(RatingRecord.score), func.count()).where(scope).group_by(key, col(RatingRecord.score))
    ).all():
        row = row_for(str(group))
        row[f"score_{score}"] = int(count)
        row["rated"] += int(count)
        row["low"] += int(count) if score <= 2 else 0
    if group_by == "thing":
        now = datetime.now(UTC)
        rated = select(col(RatingRecord.case_id)).where(col(RatingRecord.step) == "")
        for group, count in session.execute(
            select(col(CaseRecord.thing), func.count())
            .where(
                col(CaseRecord.status) == "completed",
                col(CaseRecord.rating_closes_at) <= now,
                col(CaseRecord.case_id).not_in(rated),
                supervised_cases_filter(actor),
            )
            .group_by(col(CaseRecord.thing))
        ).all():
            row_for(str(group))["not_rated"] = int(count)
    for row in rows.values():
        total = sum(row[f"score_{score}"] * score for score in range(1, 6))
        row["average_score"] = round(total / row["rated"], 2) if row["rated"] else None
    return [rows[group] for group in sorted(rows)]

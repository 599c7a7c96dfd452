"""The console's supervisor area (效能监督): the timeliness dashboard with its charts, the
overdue and warning lists, a case's timeline with 督办 and 催办, ratings (好差评), the
check-items report and the CSV export of the timeliness figures.

The figures come from the same queries as ``/supervision/*`` (api/routes/supervision.py,
api/routes/report.py); the timeline is read from the case's workflow history
(api/timeline.py). Supervisors and admins read personal data masked, here as there.
"""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from typing import Annotated, Any, Literal
from urllib.parse import quote, urlencode

from fastapi import Depends, Query, Request, Response
from pydantic import ValidationError
from sqlalchemy import Engine, func, select
from sqlmodel import Session, col
from starlette.concurrency import run_in_threadpool
from temporalio.client import WorkflowUpdateFailedError

from api.console.base import (
    checked_form,
    console_router,
    flash_redirect,
    form_text,
    idempotency_key_of,
    render,
    require_console_role,
)
from api.console.charts import Bar, Point, bar_chart, line_chart, percent, rate_tone
from api.console.officer import Labels, department_names, zh_reason
from api.deps import ClientDep, EngineDep, SettingsDep
from api.errors import from_update_failure
from api.exports import csv_response
from api.routes.report import EARLIEST_DAY, LATEST_DAY, check_items
from api.routes.supervision import (
    GROUP_COLUMNS,
    SCORE_LABELS_ZH,
    SupervisionRequest,
    TimelinessGroup,
    overdue_tasks,
    rating_rows,
    timeliness_csv_columns,
    timeliness_rows,
    warning_tasks,
)
from api.schemas import IsoDate
from api.timeline import build_timeline, read_case_history
from domain.redaction import mask_personal_data, masked, sees_case_personal_data
from domain.workcalendar import SHANGHAI, WorkingCalendar
from models.case import EVENT_TYPE_ZH, Actor, CaseSnapshot, EventType, StepStatus
from models.errors import DomainError, ErrorCode
from models.tables import SupervisionNotice
from services.access import visible_case
from services.supervision import supervise

router = console_router()

DashboardActor = Annotated[Actor, Depends(require_console_role("supervisor", "admin"))]
FromDay = Annotated[IsoDate | None, Query(alias="from")]

DEFAULT_PERIOD_DAYS = 30
MAX_PERIOD_DAYS = 366
LIST_PAGE_SIZE = 50
Page = Annotated[int, Query(ge=1, le=10_000)]


def _today() -> date:
    return datetime.now(UTC).astimezone(SHANGHAI).date()


def _period(from_: date | None, to: date | None) -> tuple[date, date]:
    """The period asked for, by default the last 30 days up to today (Beijing time)."""
    last = to or _today()
    first = from_ or last - timedelta(days=DEFAULT_PERIOD_DAYS - 1)
    fields: dict[str, str] = {}
    for name, day in (("from", first), ("to", last)):
        if not EARLIEST_DAY <= day <= LATEST_DAY:
            fields[name] = f"日期须在 {EARLIEST_DAY} 至 {LATEST_DAY} 之间 (out of range)"
    if not fields and first > last:
        fields["from"] = "开始日期不能晚于结束日期 (from is after to)"
    elif not fields and (last - first).days >= MAX_PERIOD_DAYS:
        fields["from"] = f"统计期间不超过 {MAX_PERIOD_DAYS} 天 (at most {MAX_PERIOD_DAYS} days)"
    if fields:
        raise DomainError(ErrorCode.INVALID, "统计期间有误 (invalid period)", fields)
    return first, last


def _period_query(first: date, last: date, thing: str | None) -> str:
    return urlencode({"from": first.isoformat(), "to": last.isoformat(), **({"thing": thing} if thing else {})})


# --- the dashboard --------------------------------------------------------------------------


def _detail(row: dict[str, Any]) -> str:
    detail = f"办结 {row['completed']} 件，按时 {row['on_time']} 件，超期 {row['overdue']} 件"
    return detail + (f"，在办超期 {row['open_overdue']} 件" if row["open_overdue"] else "")


def _dashboard_context(
    engine: Engine, calendar: WorkingCalendar, first: date, last: date, thing: str | None
) -> dict[str, Any]:
    with Session(engine) as session:
        by_department = timeliness_rows(session, "department", first, last, thing=thing)
        by_step = timeliness_rows(session, "step", first, last, thing=thing)
        by_day = {row["completed_on"]: row for row in timeliness_rows(session, "day", first, last, thing=thing)}
        _, overdue_now = overdue_tasks(session, calendar, 1, 0)
        _, warnings_now = warning_tasks(session, calendar, 1, 0)
        unanswered = session.execute(
            select(func.count()).select_from(SupervisionNotice).where(col(SupervisionNotice.acknowledged_at).is_(None))
        ).scalar_one()
        labels = Labels(session)
    for row in by_department:
        row["label"] = labels.department(row["department"])
    several_things = len({row["thing"] for row in by_step}) > 1
    for row in by_step:
        step_zh = labels.step(row["thing"], row["step"])
        row["label"] = f"{step_zh}（{labels.thing(row['thing'])}）" if several_things else step_zh
        row["thing_zh"] = labels.thing(row["thing"])
        row["step_zh"] = step_zh
    completed = sum(row["completed"] for row in by_department)
    on_time = sum(row["on_time"] for row in by_department)
    rate = round(on_time / completed, 4) if completed else None
    days = [first + timedelta(days=offset) for offset in range((last - first).days + 1)]
    trend = []
    for day in days:
        figures = by_day.get(day.isoformat())
        day_rate = figures["on_time_rate"] if figures and figures["completed"] else None
        trend.append(Point(day.strftime("%m-%d"), day_rate, _detail(figures) if figures else "无办结"))
    return {
        "by_department": by_department,
        "by_step": by_step,
        "completed": completed,
        "on_time": on_time,
        "overdue_completed": completed - on_time,
        "rate": rate,
        "rate_text": percent(rate),
        "rate_tone": rate_tone(rate),
        "overdue_now": overdue_now,
        "warnings_now": warnings_now,
        "unanswered_notices": int(unanswered),
        "department_chart": bar_chart(
            [Bar(row["label"], row["on_time_rate"], _detail(row)) for row in by_department],
            title="各部门按时办结率",
            testid="chart-department",
        ),
        "step_chart": bar_chart(
            [Bar(row["label"], row["on_time_rate"], _detail(row)) for row in by_step],
            title="各环节按时办结率",
            testid="chart-step",
        ),
        "trend_chart": line_chart(trend, title="每日按时办结率趋势", testid="chart-trend"),
        "things": sorted((code, definition.name_zh) for code, definition in labels.definitions.items()),
    }


@router.get("/dashboard")
def dashboard(
    request: Request,
    actor: DashboardActor,
    engine: EngineDep,
    from_: FromDay = None,
    to: IsoDate | None = None,
    thing: Annotated[str | None, Query(max_length=64)] = None,
) -> Response:
    """Timeliness of the period: on-time rate overall, by department, by step and by day, with charts."""
    first, last = _period(from_, to)
    thing = thing or None
    calendar: WorkingCalendar = request.app.state.calendar
    context = _dashboard_context(engine, calendar, first, last, thing)
    query = _period_query(first, last, thing)
    context |= {
        "active_nav": "/dashboard",
        "first": first,
        "last": last,
        "thing": thing or "",
        "export_department": f"/dashboard/export.csv?group_by=department&{query}",
        "export_step": f"/dashboard/export.csv?group_by=step&{query}",
        "export_day": f"/dashboard/export.csv?group_by=day&{query}",
    }
    return render(request, "supervisor_dashboard.html", context, actor=actor)


CSV_NAME_COLUMNS: dict[str, list[tuple[str, str]]] = {
    "department": [("department_zh", "部门名称")],
    "step": [("thing_zh", "事项名称"), ("step_zh", "环节名称")],
    "thing": [("thing_zh", "事项名称")],
    "day": [],
}


@router.get("/dashboard/export.csv")
def export_csv(
    actor: DashboardActor,
    engine: EngineDep,
    group_by: TimelinessGroup = "department",
    from_: FromDay = None,
    to: IsoDate | None = None,
    thing: Annotated[str | None, Query(max_length=64)] = None,
) -> Response:
    """The dashboard's figures as CSV (UTF-8 with BOM, Chinese headers and names) for the monthly report."""
    first, last = _period(from_, to)
    with Session(engine) as session:
        rows = timeliness_rows(session, group_by, first, last, thing=thing or None)
        labels = Labels(session)
    for row in rows:
        if "department" in row:
            row["department_zh"] = labels.department(row["department"])
        if "thing" in row:
            row["thing_zh"] = labels.thing(row["thing"])
        if "step" in row:
            row["step_zh"] = labels.step(row["thing"], row["step"])
    # The group's codes first, then their Chinese names, then the figures.
    columns = timeliness_csv_columns(group_by)
    keys = len(GROUP_COLUMNS[group_by])
    columns = columns[:keys] + CSV_NAME_COLUMNS[group_by] + columns[keys:]
    return csv_response(rows, columns, f"timeliness-{group_by}-{first.isoformat()}-{last.isoformat()}")


# --- overdue and warning lists ----------------------------------------------------------------


def _open_list_context(
    engine: Engine, calendar: WorkingCalendar, kind: Literal["overdue", "warnings"], page: int
) -> dict[str, Any]:
    query = overdue_tasks if kind == "overdue" else warning_tasks
    with Session(engine) as session:
        items, total = query(session, calendar, LIST_PAGE_SIZE, (page - 1) * LIST_PAGE_SIZE)
        labels = Labels(session)
    for item in items:
        item["thing_zh"] = labels.thing(item["thing"])
        item["step_zh"] = labels.step(item["thing"], item["step"])
        item["department_zh"] = labels.department(item["department"])
    return {"items": items, "total": total, "page": page, "pages": max(1, -(-total // LIST_PAGE_SIZE))}


@router.get("/dashboard/overdue")
def overdue(request: Request, actor: DashboardActor, engine: EngineDep, page: Page = 1) -> Response:
    """Open steps past their due time, oldest first, with the working hours they are late."""
    context = _open_list_context(engine, request.app.state.calendar, "overdue", page)
    context |= {"active_nav": "/dashboard/overdue", "kind": "overdue", "title": "超期办件"}
    return render(request, "supervisor_open_steps.html", context, actor=actor)


@router.get("/dashboard/warnings")
def warnings(request: Request, actor: DashboardActor, engine: EngineDep, page: Page = 1) -> Response:
    """Open steps in their last working day (预警), soonest due first."""
    context = _open_list_context(engine, request.app.state.calendar, "warnings", page)
    context |= {"active_nav": "/dashboard/warnings", "kind": "warnings", "title": "临期预警"}
    return render(request, "supervisor_open_steps.html", context, actor=actor)


# --- one case's timeline ----------------------------------------------------------------------

SUPERVISABLE = {StepStatus.OPEN, StepStatus.CLAIMED, StepStatus.AWAITING_SUPPLEMENT}


def _case_summary(engine: Engine, actor: Actor, case_id: str) -> tuple[CaseSnapshot, bool]:
    with Session(engine) as session:
        record = visible_case(session, actor, case_id)
    snapshot = CaseSnapshot.model_validate(record.snapshot)
    sees = sees_case_personal_data(actor, snapshot)
    return (snapshot if sees else masked(snapshot)), sees


async def _case_page(
    request: Request,
    actor: Actor,
    engine: Engine,
    client: Any,
    case_id: str,
    *,
    errors: dict[str, str] | None = None,
    values: dict[str, str] | None = None,
    status_code: int = 200,
) -> Response:
    snapshot, sees = await run_in_threadpool(_case_summary, engine, actor, case_id)
    case, events = await read_case_history(client, case_id)
    calendar: WorkingCalendar = request.app.state.calendar
    timeline = build_timeline(case, events, calendar)
    if not sees:
        timeline = masked(timeline)
    names = {step.code: step.name_zh for step in case.definition.steps}
    context = {
        "active_nav": "",
        "case": snapshot,
        "timeline": timeline,
        "step_names": names,
        "department_names": department_names(),
        "event_tones": {
            EventType.OVERDUE.value: "bad",
            EventType.SUPERVISION_NOTICE.value: "bad",
            EventType.WARNING.value: "warn",
            EventType.URGED.value: "warn",
            EventType.RETURNED.value: "warn",
            EventType.REFUSED.value: "bad",
            EventType.COMPLETED.value: "ok",
            EventType.CASE_COMPLETED.value: "ok",
            EventType.DELIVERED.value: "ok",
        },
        "event_type_zh": {kind.value: label for kind, label in EVENT_TYPE_ZH.items()},
        "supervisable": [step for step in snapshot.steps if step.status in SUPERVISABLE],
        "errors": errors or {},
        "values": values or {},
    }
    return render(request, "supervisor_case.html", context, status_code=status_code, actor=actor)


@router.get("/dashboard/cases/{case_id}")
async def case_timeline(
    request: Request, case_id: str, actor: DashboardActor, client: ClientDep, engine: EngineDep
) -> Response:
    """A case's timeline from its workflow history: each step's clock, and every event in order."""
    return await _case_page(request, actor, engine, client, case_id)


@router.post("/dashboard/cases/{case_id}/supervise")
async def supervise_step(
    request: Request, case_id: str, actor: DashboardActor, client: ClientDep, engine: EngineDep
) -> Response:
    """督办 (a notice to the step's department) or 催办 (a reminder to its assignee), from the case page."""
    form = await checked_form(request)
    kind = form_text(form, "kind")
    values = {name: form_text(form, name) for name in ("step", "kind", "message")}
    await run_in_threadpool(_case_summary, engine, actor, case_id)  # 404 before anything reaches Temporal
    errors: dict[str, str] = {}
    if kind not in {"notice", "urge"}:
        errors["kind"] = "请选择督办或催办 (choose notice or urge)"
    try:
        body = SupervisionRequest(case_id=case_id, step=values["step"], message=values["message"])
    except ValidationError as error:
        for problem in error.errors():
            field = str(problem["loc"][0])
            errors[field] = (
                "请选择环节 (choose a step)" if field == "step" else "请填写督办内容（1至500字）(1 to 500 characters)"
            )
    if errors:
        return await _case_page(request, actor, engine, client, case_id, errors=errors, values=values, status_code=422)
    action: Literal["notice", "urge"] = "notice" if kind == "notice" else "urge"
    try:
        await supervise(client, actor, body.case_id, body.step, body.message, action, idempotency_key_of(form))
    except (DomainError, WorkflowUpdateFailedError) as error:
        domain = from_update_failure(error) if isinstance(error, WorkflowUpdateFailedError) else error
        if domain.code == ErrorCode.INVALID:
            fields = {field: zh_reason(reason) for field, reason in (domain.fields or {}).items()}
            return await _case_page(
                request, actor, engine, client, case_id, errors=fields, values=values, status_code=422
            )
        if domain.code in {ErrorCode.CONFLICT, ErrorCode.UNAVAILABLE}:
            return flash_redirect(request, _case_url(case_id), domain.message, "error")
        raise domain from error
    done = "已发出督办通知 (notice issued)" if action == "notice" else "已催办经办人 (assignee urged)"
    return flash_redirect(request, _case_url(case_id), done)


def _case_url(case_id: str) -> str:
    return "/dashboard/cases/" + quote(case_id, safe="")


# --- ratings and the check-items report -----------------------------------------------------


@router.get("/dashboard/ratings")
def ratings(request: Request, actor: DashboardActor, engine: EngineDep) -> Response:
    """好差评 by thing (case ratings, with the cases not rated in time) and by department (step ratings)."""
    with Session(engine) as session:
        by_thing = rating_rows(session, "thing")
        by_department = rating_rows(session, "department")
        labels = Labels(session)
    for row in by_thing:
        row["label"] = labels.thing(row["thing"])
    for row in by_department:
        row["label"] = labels.department(row["department"])
    context = {
        "active_nav": "/dashboard/ratings",
        "by_thing": by_thing,
        "by_department": by_department,
        "score_labels": [(score, SCORE_LABELS_ZH[score]) for score in range(5, 0, -1)],
    }
    return render(request, "supervisor_ratings.html", context, actor=actor)


@router.get("/dashboard/report")
def report(
    request: Request,
    actor: DashboardActor,
    engine: EngineDep,
    settings: SettingsDep,
    from_: FromDay = None,
    to: IsoDate | None = None,
) -> Response:
    """The check-items report (§8.1.3) of a period, by default this month so far."""
    today = _today()
    first, last = _period(from_ or today.replace(day=1), to or today)
    with Session(engine) as session:
        items = check_items(session, settings.archive_dir, first, last)
    context = {"active_nav": "/dashboard/report", "report": mask_personal_data(items), "first": first, "last": last}
    return render(request, "supervisor_report.html", context, actor=actor)

"""The console's supervisor area (效能监督): the timeliness dashboard with its charts, the
overdue and warning lists, a case's timeline with 督办 and 催办, ratings (好差评), the
check-items report and the CSV export of the timeliness figures.

The figures come from the same queries as ``/supervision/*`` (api/routes/supervision.py,
api/routes/report.py); the timeline is read from the case's workflow history
(api/timeline.py). Supervisors and admins read personal data masked, here as there.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from typing import Annotated, Any, Literal
from urllib.parse import quote, urlencode

from fastapi import Depends, Query, Request, Response
from pydantic import ValidationError
from sqlalchemy import ColumnElement, Engine, false, func, or_, select
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
from api.console.messages import INPUT_LABELS, field_reason, has_chinese, input_label
from api.console.officer import NOTICE_ORIGIN_ZH, Labels, department_names
from api.deps import ClientDep, EngineDep, SettingsDep
from api.errors import from_update_failure
from api.exports import csv_response
from api.routes.report import EARLIEST_DAY, LATEST_DAY, check_items
from api.routes.supervision import (
    DIVISION_COLUMNS,
    GROUP_COLUMNS,
    SCORE_LABELS_ZH,
    SupervisionRequest,
    TimelinessGroup,
    overdue_tasks,
    rating_rows,
    supervised_notices_filter,
    supervised_ratings_filter,
    timeliness_csv_columns,
    timeliness_rows,
    warning_tasks,
)
from api.schemas import IsoDate
from api.timeline import build_timeline, read_case_history
from domain.catalogue import FOLLOW_UP
from domain.redaction import mask_name, mask_personal_data, mask_text, masked, sees_case_personal_data
from domain.workcalendar import SHANGHAI, WorkingCalendar, missing_notice_warning_zh
from infra.signing import archive_keys
from models.case import CASE_STATUS_ZH, EVENT_TYPE_ZH, Actor, CaseSnapshot, EventType, StepStatus
from models.catalogue import ThingDefinition
from models.errors import DomainError, ErrorCode
from models.tables import CaseRecord, RatingRecord, SupervisionNotice, TaskRecord
from services.access import (
    form_id_numbers,
    id_number_search,
    supervised_division,
    supervised_divisions,
    visible_case,
    visible_cases_filter,
)
from services.supervision import supervise

router = console_router()

DashboardActor = Annotated[Actor, Depends(require_console_role("supervisor", "admin"))]
FromDay = Annotated[IsoDate | None, Query(alias="from")]
# The pages' period filters take the dates as typed and check them here, so that a typo or a
# reversed period is told beside the filter on the page itself, not by an error page instead of it.
FromText = Annotated[str | None, Query(alias="from", max_length=32)]
ToText = Annotated[str | None, Query(max_length=32)]
_ISO_DAY = re.compile(r"\d{4}-\d{2}-\d{2}")

DEFAULT_PERIOD_DAYS = 30
MAX_PERIOD_DAYS = 366
LIST_PAGE_SIZE = 50
Page = Annotated[int, Query(ge=1, le=10_000)]


def _today() -> date:
    return datetime.now(UTC).astimezone(SHANGHAI).date()


def _default_period(from_: date | None, to: date | None) -> tuple[date, date]:
    """The dashboard's period: by default the last 30 days up to today (Beijing time)."""
    last = to or _today()
    return from_ or last - timedelta(days=DEFAULT_PERIOD_DAYS - 1), last


def _period_problems(first: date, last: date) -> dict[str, str]:
    fields: dict[str, str] = {}
    for name, day in (("from", first), ("to", last)):
        if not EARLIEST_DAY <= day <= LATEST_DAY:
            fields[name] = f"须在 {EARLIEST_DAY} 至 {LATEST_DAY} 之间"
    if not fields and first > last:
        fields["from"] = "不能晚于结束日期"
    elif not fields and (last - first).days >= MAX_PERIOD_DAYS:
        fields["from"] = f"与结束日期相隔不超过 {MAX_PERIOD_DAYS} 天"
    return fields


def _period(from_: date | None, to: date | None) -> tuple[date, date]:
    """The period asked for (the dashboard's default), or a DomainError naming what is wrong."""
    first, last = _default_period(from_, to)
    fields = _period_problems(first, last)
    if fields:
        raise DomainError(ErrorCode.INVALID, "统计期间有误", fields)
    return first, last


@dataclass
class AskedPeriod:
    """A page's period filter: the period shown, the dates the filter shows again and, when the
    period asked for cannot be used, why (the page then shows its default period)."""

    first: date
    last: date
    from_value: str
    to_value: str
    problems: list[str]


def _asked_period(
    from_text: str | None, to_text: str | None, default: Callable[[date | None, date | None], tuple[date, date]]
) -> AskedPeriod:
    days: dict[str, date | None] = {}
    fields: dict[str, str] = {}
    for name, text in (("from", from_text), ("to", to_text)):
        typed = (text or "").strip()
        try:
            days[name] = date.fromisoformat(typed) if _ISO_DAY.fullmatch(typed) else None
        except ValueError:
            days[name] = None
        if typed and days[name] is None:
            fields[name] = "不是有效的日期（如 2026-11-01）"
    if not fields:
        first, last = default(days["from"], days["to"])
        fields = _period_problems(first, last)
        if not fields:
            return AskedPeriod(first, last, first.isoformat(), last.isoformat(), [])
    first, last = default(None, None)
    problems = [f"{INPUT_LABELS[name]}{reason}" for name, reason in fields.items()]
    return AskedPeriod(first, last, (from_text or "").strip(), (to_text or "").strip(), problems)


def _period_query(first: date, last: date, thing: str | None) -> str:
    return urlencode({"from": first.isoformat(), "to": last.isoformat(), **({"thing": thing} if thing else {})})


# --- the dashboard --------------------------------------------------------------------------


def _detail(row: dict[str, Any]) -> str:
    detail = f"办结 {row['completed']} 件，按时 {row['on_time']} 件，超期 {row['overdue']} 件"
    return detail + (f"，在办超期 {row['open_overdue']} 件" if row["open_overdue"] else "")


def _dashboard_context(
    engine: Engine, calendar: WorkingCalendar, first: date, last: date, thing: str | None, actor: Actor
) -> dict[str, Any]:
    # The supervisor's division and those within it (services/access.py).
    division = supervised_division(actor)
    with Session(engine) as session:
        by_department = timeliness_rows(session, "department", first, last, thing=thing, division=division)
        by_step = timeliness_rows(session, "step", first, last, thing=thing, division=division)
        by_day = {
            row["completed_on"]: row
            for row in timeliness_rows(session, "day", first, last, thing=thing, division=division)
        }
        _, overdue_now = overdue_tasks(session, calendar, 1, 0, actor=actor)
        _, warnings_now = warning_tasks(session, calendar, 1, 0, actor=actor)
        unanswered_where: list[ColumnElement[bool]] = [col(SupervisionNotice.acknowledged_at).is_(None)]
        if supervised_divisions(actor) is not None:
            unanswered_where.append(supervised_notices_filter(actor))
        unanswered = session.execute(
            select(func.count()).select_from(SupervisionNotice).where(*unanswered_where)
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
    from_: FromText = None,
    to: ToText = None,
    thing: Annotated[str | None, Query(max_length=64)] = None,
) -> Response:
    """Timeliness of the period: on-time rate overall, by department, by step and by day, with charts.
    A period that cannot be used is told above the figures, which are then the last 30 days' (400)."""
    period = _asked_period(from_, to, _default_period)
    first, last = period.first, period.last
    thing = thing or None
    calendar: WorkingCalendar = request.app.state.calendar
    context = _dashboard_context(engine, calendar, first, last, thing, actor)
    query = _period_query(first, last, thing)
    context |= {
        "active_nav": "/dashboard",
        "first": first,
        "last": last,
        "period": period,
        "thing": thing or "",
        "export_department": f"/dashboard/export.csv?group_by=department&{query}",
        "export_step": f"/dashboard/export.csv?group_by=step&{query}",
        "export_day": f"/dashboard/export.csv?group_by=day&{query}",
        "calendar_warning_zh": _calendar_warning_zh(calendar),
    }
    status_code = 400 if period.problems else 200
    return render(request, "supervisor_dashboard.html", context, status_code=status_code, actor=actor)


CSV_NAME_COLUMNS: dict[str, list[tuple[str, str]]] = {
    "department": [("department_zh", "部门名称")],
    "step": [("thing_zh", "事项名称"), ("step_zh", "环节名称")],
    "thing": [("thing_zh", "事项名称")],
    "day": [],
    "division": [],
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
        rows = timeliness_rows(session, group_by, first, last, thing=thing or None, division=supervised_division(actor))
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
    keys = len(GROUP_COLUMNS[group_by]) + (len(DIVISION_COLUMNS) if group_by == "division" else 0)
    columns = columns[:keys] + CSV_NAME_COLUMNS[group_by] + columns[keys:]
    return csv_response(rows, columns, f"timeliness-{group_by}-{first.isoformat()}-{last.isoformat()}")


# --- overdue and warning lists ----------------------------------------------------------------


def _open_list_context(
    engine: Engine, calendar: WorkingCalendar, kind: Literal["overdue", "warnings"], page: int, actor: Actor
) -> dict[str, Any]:
    query = overdue_tasks if kind == "overdue" else warning_tasks
    with Session(engine) as session:
        items, total = query(session, calendar, LIST_PAGE_SIZE, (page - 1) * LIST_PAGE_SIZE, actor=actor)
        labels = Labels(session)
        numbers = case_numbers(session, (item["case_id"] for item in items))
    for item in items:
        item["thing_zh"] = labels.thing(item["thing"])
        item["step_zh"] = labels.step(item["thing"], item["step"])
        item["department_zh"] = labels.department(item["department"])
        item["case_no"] = numbers.get(item["case_id"], item["case_id"])
    return {"items": items, "total": total, "page": page, "pages": max(1, -(-total // LIST_PAGE_SIZE))}


@router.get("/dashboard/overdue")
def overdue(request: Request, actor: DashboardActor, engine: EngineDep, page: Page = 1) -> Response:
    """Open steps past their due time, oldest first, with the working hours they are late."""
    context = _open_list_context(engine, request.app.state.calendar, "overdue", page, actor)
    context |= {"active_nav": "/dashboard/overdue", "kind": "overdue", "title": "超期办件"}
    return render(request, "supervisor_open_steps.html", context, actor=actor)


@router.get("/dashboard/warnings")
def warnings(request: Request, actor: DashboardActor, engine: EngineDep, page: Page = 1) -> Response:
    """Open steps in their last working day (预警), soonest due first."""
    context = _open_list_context(engine, request.app.state.calendar, "warnings", page, actor)
    context |= {"active_nav": "/dashboard/warnings", "kind": "warnings", "title": "临期预警"}
    return render(request, "supervisor_open_steps.html", context, actor=actor)


# --- one case's timeline ----------------------------------------------------------------------

SUPERVISABLE = {StepStatus.OPEN, StepStatus.CLAIMED, StepStatus.AWAITING_SUPPLEMENT}
# The details an event records (CaseEvent.detail), by their Chinese names, in the order shown.
DETAIL_LABELS: dict[str, str] = {
    "reason": "理由",
    "missing": "需补正的材料",
    "materials": "补正的材料",
    "message": "内容",
    "origin": "方式",
    "sequence": "次序",
    "score": "评分",
    "rating_score": "评分",
    "rated_step": "评价对象",
    "comment": "意见",
    "comment_zh": "意见",
    "recipient": "领取人",
    "from": "原经办人",
    "to": "新经办人",
    "from_unit_zh": "原承办单位",
    "to_unit_zh": "转至单位",
    "required_materials": "需取得的材料",
    "working_days": "延长工作日",
    "requested_by": "申请人",
}


def event_details(detail: Mapping[str, Any], definition: ThingDefinition) -> list[tuple[str, str]]:
    """An event's details as people read them: materials and steps by name, scores and origins in
    words. A detail without a Chinese name here is an internal one and is not shown."""
    materials = {material.code: material.name_zh for material in definition.materials}
    steps = {step.code: step.name_zh for step in definition.steps}

    def shown(key: str, value: Any) -> str:
        if isinstance(value, bool):
            return "是" if value else "否"
        if key in {"score", "rating_score"} and isinstance(value, int):
            return f"{value}分（{SCORE_LABELS_ZH.get(value, '')}）"
        if key == "origin":
            return NOTICE_ORIGIN_ZH.get(str(value), "督办")
        if key == "sequence":
            return f"第{value}次"
        if key == "rated_step":
            step = str(value or "")
            return steps.get(step) or (FOLLOW_UP.name_zh if step.startswith(FOLLOW_UP.code) else "整个事项")
        if isinstance(value, list | tuple):
            return "、".join(materials.get(str(item), str(item)) for item in value)
        if isinstance(value, dict):
            return "，".join(f"{materials.get(str(code), str(code))}：{item}" for code, item in value.items())
        return str(value)

    return [
        (label, shown(key, detail[key]))
        for key, label in DETAIL_LABELS.items()
        if key in detail and detail[key] not in (None, "", [])
    ]


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
        "details": {event.seq: event_details(event.detail, case.definition) for event in timeline.events},
        "supervisable": [step for step in snapshot.steps if step.status in SUPERVISABLE],
        # Inputs the form has no place for are listed by their Chinese names.
        "errors": {
            name if name in {"step", "kind", "message"} or has_chinese(name) else input_label(name): reason
            for name, reason in (errors or {}).items()
        },
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
        errors["kind"] = "请选择督办或催办"
    try:
        body = SupervisionRequest(case_id=case_id, step=values["step"], message=values["message"])
    except ValidationError as error:
        for problem in error.errors():
            field = str(problem["loc"][0])
            errors[field] = "请选择环节" if field == "step" else "请填写督办内容（1至500字）"
    if errors:
        return await _case_page(request, actor, engine, client, case_id, errors=errors, values=values, status_code=422)
    action: Literal["notice", "urge"] = "notice" if kind == "notice" else "urge"
    try:
        await supervise(
            client, actor, body.case_id, body.step, body.message, action, idempotency_key_of(form), engine=engine
        )
    except (DomainError, WorkflowUpdateFailedError) as error:
        domain = from_update_failure(error) if isinstance(error, WorkflowUpdateFailedError) else error
        if domain.code == ErrorCode.INVALID:
            fields = {field: field_reason(reason) for field, reason in (domain.fields or {}).items()}
            return await _case_page(
                request, actor, engine, client, case_id, errors=fields, values=values, status_code=422
            )
        if domain.code in {ErrorCode.CONFLICT, ErrorCode.UNAVAILABLE}:
            return flash_redirect(request, _case_url(case_id), domain.message, "error")
        raise domain from error
    done = "已发出督办通知" if action == "notice" else "已催办经办人"
    return flash_redirect(request, _case_url(case_id), done)


def _case_url(case_id: str) -> str:
    return "/dashboard/cases/" + quote(case_id, safe="")


# --- ratings and the check-items report -----------------------------------------------------


@router.get("/dashboard/ratings")
def ratings(request: Request, actor: DashboardActor, engine: EngineDep) -> Response:
    """好差评 by thing (case ratings, with the cases not rated in time) and by department (step ratings)."""
    with Session(engine) as session:
        by_thing = rating_rows(session, "thing", actor=actor)
        by_department = rating_rows(session, "department", actor=actor)
        labels = Labels(session)
        low = _low_ratings(session, labels, actor)
    for row in by_thing:
        row["label"] = labels.thing(row["thing"])
    for row in by_department:
        row["label"] = labels.department(row["department"])
    context = {
        "active_nav": "/dashboard/ratings",
        "by_thing": by_thing,
        "by_department": by_department,
        "low_ratings": low,
        "score_labels": [(score, SCORE_LABELS_ZH[score]) for score in range(5, 0, -1)],
    }
    return render(request, "supervisor_ratings.html", context, actor=actor)


@router.get("/dashboard/report")
def report(
    request: Request,
    actor: DashboardActor,
    engine: EngineDep,
    settings: SettingsDep,
    from_: FromText = None,
    to: ToText = None,
) -> Response:
    """The check-items report (§8.1.3) of a period, by default this month so far; a period that
    cannot be used is told above the report, which is then this month's (400)."""
    today = _today()
    period = _asked_period(from_, to, lambda first, last: (first or today.replace(day=1), last or today))
    first, last = period.first, period.last
    with Session(engine) as session:
        items = check_items(session, settings.archive_dir, first, last, actor=actor, keys=archive_keys(settings))
        failing = (case_id for sub in items["sub_items"] for item in sub["items"] for case_id in item.get("cases", []))
        numbers = case_numbers(session, failing)
    context = {
        "active_nav": "/dashboard/report",
        "report": mask_personal_data(items),
        "case_numbers": numbers,
        "first": first,
        "last": last,
        "period": period,
    }
    status_code = 400 if period.problems else 200
    return render(request, "supervisor_report.html", context, status_code=status_code, actor=actor)


LOW_SCORE = 2  # 1 and 2 points are 差评


def _low_ratings(session: Session, labels: Labels, actor: Actor) -> list[dict[str, Any]]:
    """The latest 差评 (1 or 2 points) the supervisor sees, each with its case, what was rated and
    the comment (masked)."""
    rows = list(
        session.execute(
            select(RatingRecord)
            .where(col(RatingRecord.score) <= LOW_SCORE, supervised_ratings_filter(actor))
            .order_by(col(RatingRecord.rated_at).desc(), col(RatingRecord.case_id))
            .limit(LIST_PAGE_SIZE)
        ).scalars()
    )
    numbers = case_numbers(session, (row.case_id for row in rows))
    return [
        {
            "case_id": row.case_id,
            "case_no": numbers.get(row.case_id, row.case_id),
            "thing_zh": labels.thing(row.thing),
            "rated_zh": labels.step(row.thing, row.step) if row.step else "整体评价",
            "department_zh": labels.department(row.department) if row.department else "",
            "score": row.score,
            "score_zh": SCORE_LABELS_ZH.get(row.score, ""),
            "comment": mask_text(row.comment) if row.comment else "",
            "rated_at": row.rated_at,
        }
        for row in rows
    ]


# --- case search ------------------------------------------------------------------------------


def case_numbers(session: Session, case_ids: Iterable[str]) -> dict[str, str]:
    """The case number (受理编号) of each of these cases that has one, by case id: report lines name
    their case by it (cases filed before numbering keep their id)."""
    ids = sorted(set(case_ids))
    if not ids:
        return {}
    rows = session.execute(
        select(col(CaseRecord.case_id), col(CaseRecord.case_no)).where(col(CaseRecord.case_id).in_(ids))
    ).all()
    return {case_id: case_no for case_id, case_no in rows if case_no}


SEARCH_LIMIT = 50
STATUS_ZH: dict[str, str] = {status.value: label for status, label in CASE_STATUS_ZH.items()}
# The application's JSON is read for the ID number among this many candidates at most.
ID_SEARCH_CANDIDATES = 1000
SearchText = Annotated[str | None, Query(max_length=64)]
_ID_NUMBER_SHAPE = re.compile(r"[0-9]{17}[0-9Xx]|[0-9]{15}")
SEARCH_LABELS = {
    "no": "受理编号",
    "name": "申请人姓名",
    "id_number": "身份证号码",
    "status": "办件状态",
    "department": "办理部门",
    "from": "受理日期自",
    "to": "受理日期至",
}


@dataclass
class CaseSearch:
    """The search form as typed, what is wrong with it, and the conditions it makes."""

    values: dict[str, str]
    errors: dict[str, str]
    conditions: list[ColumnElement[bool]]
    id_number: str = ""

    @property
    def filled(self) -> bool:
        return any(self.values.values())


def _typed_day(text: str) -> date | None:
    try:
        return date.fromisoformat(text) if _ISO_DAY.fullmatch(text) else None
    except ValueError:
        return None


def _case_search(values: dict[str, str], departments: Mapping[str, str]) -> CaseSearch:
    search = CaseSearch(values=values, errors={}, conditions=[])
    number, name, id_number = values["no"], values["name"], values["id_number"]
    if number:
        trailing = number.isdigit() and len(number) >= 3
        search.conditions.append(
            or_(
                col(CaseRecord.case_no) == number,
                col(CaseRecord.case_no).like(f"%{number}") if trailing else false(),
                col(CaseRecord.case_id) == number,
            )
        )
    if name:
        pattern = name.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
        search.conditions.append(col(CaseRecord.applicant_name).like(f"%{pattern}%", escape="\\"))
    if id_number:
        if _ID_NUMBER_SHAPE.fullmatch(id_number):
            search.id_number = id_number.upper()
            search.conditions.append(id_number_search(search.id_number))
        else:
            search.errors["id_number"] = "应为18位身份证号码（末位可为X）"
    if values["status"]:
        if values["status"] in STATUS_ZH:
            search.conditions.append(col(CaseRecord.status) == values["status"])
        else:
            search.errors["status"] = "请从列表中选择"
    department = values["department"]
    if department:
        if department in departments:
            has_step = (
                select(col(TaskRecord.task_id))
                .where(col(TaskRecord.case_id) == col(CaseRecord.case_id), col(TaskRecord.department) == department)
                .exists()
            )
            search.conditions.append(or_(col(CaseRecord.accepting_unit) == department, has_step))
        else:
            search.errors["department"] = "请从列表中选择"
    days: dict[str, date | None] = {}
    for field in ("from", "to"):
        days[field] = _typed_day(values[field]) if values[field] else None
        if values[field] and days[field] is None:
            search.errors[field] = "不是有效的日期（如 2026-11-01）"
    first, last = days["from"], days["to"]
    if first is not None and last is not None and first > last:
        search.errors["from"] = "不能晚于受理日期至（结束日期）"
    if first is not None:
        search.conditions.append(col(CaseRecord.submitted_at) >= datetime.combine(first, time.min, SHANGHAI))
    if last is not None:
        end = datetime.combine(last + timedelta(days=1), time.min, SHANGHAI)
        search.conditions.append(col(CaseRecord.submitted_at) < end)
    return search


def _search_rows(engine: Engine, search: CaseSearch) -> tuple[list[dict[str, Any]], int]:
    """The cases found (the newest first, at most SEARCH_LIMIT) and how many there are."""
    newest_first = (col(CaseRecord.submitted_at).desc(), col(CaseRecord.case_id))
    with Session(engine) as session:
        if search.id_number:
            # The SQL cut finds the value anywhere in the application; only an ID number counts.
            candidates = session.execute(
                select(CaseRecord).where(*search.conditions).order_by(*newest_first).limit(ID_SEARCH_CANDIDATES)
            ).scalars()
            found = [row for row in candidates if search.id_number in form_id_numbers(row.form)]
            total, rows = len(found), found[:SEARCH_LIMIT]
        else:
            total = session.execute(select(func.count()).select_from(CaseRecord).where(*search.conditions)).scalar_one()
            rows = list(
                session.execute(
                    select(CaseRecord).where(*search.conditions).order_by(*newest_first).limit(SEARCH_LIMIT)
                ).scalars()
            )
        labels = Labels(session)
    return [
        {
            "case_id": row.case_id,
            "case_no": row.case_no or row.case_id,
            "applicant_name": mask_name(row.applicant_name or ""),  # supervisors read names masked
            "thing_zh": labels.thing(row.thing),
            "status": row.status,
            "status_zh": STATUS_ZH.get(row.status, row.status),
            "submitted_at": row.submitted_at,
            "unit_zh": labels.department(row.accepting_unit) if row.accepting_unit else "网上申办",
        }
        for row in rows
    ], int(total)


@router.get("/dashboard/cases")
def case_search_page(
    request: Request,
    actor: DashboardActor,
    engine: EngineDep,
    no: SearchText = None,
    name: SearchText = None,
    id_number: SearchText = None,
    status: SearchText = None,
    department: SearchText = None,
    from_: FromText = None,
    to: ToText = None,
) -> Response:
    """Find a case by its number, the applicant's name or an ID number on its application, its
    status, a department handling it and when it was submitted; each found case links to its page.
    Problems with the search are told beside its fields (400), and nothing is searched."""
    typed = {"no": no, "name": name, "id_number": id_number, "status": status, "department": department}
    values = {key: (value or "").strip() for key, value in {**typed, "from": from_, "to": to}.items()}
    departments = department_names()
    search = _case_search(values, departments)
    search.conditions.append(visible_cases_filter(actor))  # the supervisor's division and those within it
    rows: list[dict[str, Any]] = []
    total = 0
    if not search.errors:
        rows, total = _search_rows(engine, search)
    context = {
        "active_nav": "/dashboard/cases",
        "search": search,
        "labels": SEARCH_LABELS,
        "rows": rows,
        "total": total,
        "limit": SEARCH_LIMIT,
        "statuses": list(STATUS_ZH.items()),
        "departments": sorted(departments.items(), key=lambda item: item[0]),
    }
    status_code = 400 if search.errors else 200
    return render(request, "supervisor_search.html", context, status_code=status_code, actor=actor)


def _calendar_warning_zh(calendar: WorkingCalendar) -> str | None:
    """From 1 December, while next year's holiday notice is not loaded: say so (deadlines are 暂定)."""
    missing = calendar.missing_next_year(datetime.now(SHANGHAI).date())
    return missing_notice_warning_zh(missing) if missing is not None else None

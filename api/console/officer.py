"""The console's officer area (部门工作台): the department's inbox, one task with its case,
the actions on it (签收, 办结, 退回补正, 不予办理) and the department's 督办 notices.

Every action goes through the same code as the JSON API (api/routes/tasks.py,
api/routes/notices.py): the same workflow Update, the same validation, the same
audit row, and the page's idempotency key in place of the ``Idempotency-Key``
header, so a form sent twice acts once. Window clerks (出件) and supervisors (差评回访)
have tasks of their own and use the same pages for them.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from functools import cache
from typing import Annotated, Any
from urllib.parse import quote, urlencode

from fastapi import Depends, Query, Request, Response
from pydantic import BaseModel, ValidationError
from sqlalchemy import Engine, select
from sqlmodel import Session, col
from starlette.concurrency import run_in_threadpool
from starlette.datastructures import FormData
from temporalio.client import Client, WorkflowUpdateFailedError

from api.console.application import application_view
from api.console.base import (
    checked_form,
    console_router,
    flash_redirect,
    form_text,
    idempotency_key_of,
    render,
    require_console_role,
    safe_next,
)
from api.console.messages import field_reason, input_label, zh_text
from api.console.task_choices import operations_context
from api.deps import ClientDep, EngineDep
from api.errors import from_update_failure
from api.routes.notices import AcknowledgeRequest, acknowledge, department_notice_page
from domain.catalogue import FOLLOW_UP, load_departments
from domain.display import overdue_zh, time_left_zh
from domain.licences import reused_licences
from domain.redaction import masked, sees_case_personal_data
from domain.results import negative_result
from domain.workcalendar import WorkingCalendar
from models.case import (
    Actor,
    CaseSnapshot,
    ClaimInput,
    CompleteStepInput,
    RefuseStepInput,
    ReturnStepInput,
    StepStatus,
)
from models.catalogue import ResultField, StepDefinition, ThingDefinition
from models.complaint import SUPERVISION_ORIGIN
from models.errors import DomainError, ErrorCode
from models.tables import CaseRecord, LicenceRecord, SupervisionNotice, TaskRecord, Unit
from services.access import in_unit_scope, visible_case
from services.catalogue import current_definitions, definition_for
from services.inbox import DueFilter, InboxFilters, inbox_etag, inbox_steps, inbox_tasks
from services.tasks import act_on_task, parse_task_id
from workflows.case.workflow import CaseWorkflow

router = console_router()

# Officers work their department's tasks; window clerks deliver results (出件); supervisors
# hold the 回访 tasks a low rating opens. The workflow holds each role to its own steps.
TaskActor = Annotated[Actor, Depends(require_console_role("officer", "clerk", "supervisor"))]
NoticeActor = Annotated[Actor, Depends(require_console_role("officer"))]

INBOX_PAGE_SIZE = 50
ANSWERED_SHOWN = 50
NOTICE_ORIGIN_ZH = {"automatic": "超期自动督办", "manual": "人工督办", SUPERVISION_ORIGIN: "投诉超期督办"}
MAX_REASON_LENGTH = 500
MAX_COMMENT_LENGTH = 500
MAX_MISSING_ITEMS = 20
MAX_MISSING_ITEM_LENGTH = 100
# Items typed by hand in the return form are separated by commas, 、 or new lines.
_ITEM_SEPARATORS = re.compile(r"[,，、;；\n]+")


# --- Chinese labels -------------------------------------------------------------------------


@cache
def department_names() -> dict[str, str]:
    return {code: department.name_zh for code, department in load_departments().items()}


class Labels:
    """Chinese names of the catalogue's things, steps and departments, read once per page."""

    def __init__(self, session: Session) -> None:
        self.definitions = current_definitions(session)

    def thing(self, code: str) -> str:
        definition = self.definitions.get(code)
        return definition.name_zh if definition else code

    def step(self, thing: str, code: str) -> str:
        if code.startswith(FOLLOW_UP.code):
            return FOLLOW_UP.name_zh
        definition = self.definitions.get(thing)
        if definition is None:
            return code
        try:
            return definition.step(code).name_zh
        except KeyError:
            return code

    def department(self, code: str | None) -> str:
        return department_names().get(code or "", code or "")


# --- due dates ------------------------------------------------------------------------------


@dataclass(frozen=True)
class DueBadge:
    """How a task stands against its time limit: a tone for the badge, a word and a hint."""

    tone: str  # ok | warn | bad | muted
    label: str
    hint: str
    code: str  # on_time | warning | overdue | paused | done | done_late | none


def due_badge(task: TaskRecord, calendar: WorkingCalendar, now: datetime) -> DueBadge:
    """超期 once past due, 预警 from the warning time (00:00 of the due day), else 正常; the hint
    counts working days: 已超期 2 个工作日, 今日到期, 剩余 3 个工作日 (domain/display.py)."""
    if task.status == StepStatus.DONE:
        if task.on_time is False:
            return DueBadge("bad", "超期办结", "", "done_late")
        return DueBadge("ok", "按时办结", "", "done")
    if task.status in {StepStatus.REFUSED, StepStatus.CANCELLED}:
        return DueBadge("muted", "已结束", "", "done")
    if task.status == StepStatus.AWAITING_SUPPLEMENT:
        return DueBadge("muted", "暂停计时", "等待申请人补正，时限暂停", "paused")
    if task.due_at is None:
        return DueBadge("muted", "无时限", "", "none")
    if task.overdue or task.due_at <= now:
        return DueBadge("bad", "超期", overdue_zh(calendar, task.due_at, max(now, task.due_at)), "overdue")
    hint = time_left_zh(calendar, task.due_at, now)
    if task.warning_at is not None and task.warning_at <= now:
        return DueBadge("warn", "预警", hint, "warning")
    return DueBadge("ok", "正常", hint, "on_time")


# --- the inbox ------------------------------------------------------------------------------


DUE_CHOICES = [("", "全部期限"), ("overdue", "已超期"), ("today", "今日到期"), ("week", "本周内到期")]
_DUE_FILTERS: dict[str, DueFilter] = {"overdue": "overdue", "today": "today", "week": "week"}
_CODE = re.compile(r"^[a-z][a-z0-9_]{0,63}$")


def _inbox_filters(step: str, due: str, supervised: str, q: str) -> InboxFilters:
    """The filters of the inbox's form, read leniently: a choice the form does not offer is no filter."""
    return InboxFilters(
        step=step if _CODE.match(step) else None,
        due=_DUE_FILTERS.get(due),
        supervised=supervised in {"1", "true", "on"},
        search=q,
    )


def _step_choices(labels: Labels, pairs: list[tuple[str, str]], chosen: str | None) -> list[tuple[str, str]]:
    """The step filter's choices: each step of the inbox's tasks once (every 回访 as one)."""
    choices: dict[str, str] = {}
    for thing, step in pairs:
        code = FOLLOW_UP.code if step.startswith(f"{FOLLOW_UP.code}_") else step
        choices.setdefault(code, labels.step(thing, step))
    if chosen and chosen not in choices:
        choices[chosen] = FOLLOW_UP.name_zh if chosen == FOLLOW_UP.code else "所选环节"
    return [("", "全部环节"), *choices.items()]


def _supervised_tasks(session: Session, tasks: list[TaskRecord]) -> set[str]:
    """The tasks of the page under 督办: escalated, or with a 督办 notice not yet answered."""
    flagged = {task.task_id for task in tasks if task.escalations > 0}
    case_ids = {task.case_id for task in tasks}
    if case_ids:
        pending = session.execute(
            select(
                col(SupervisionNotice.case_id), col(SupervisionNotice.step), col(SupervisionNotice.department)
            ).where(col(SupervisionNotice.case_id).in_(case_ids), col(SupervisionNotice.acknowledged_at).is_(None))
        ).all()
        keys = {tuple(row) for row in pending}
        flagged |= {task.task_id for task in tasks if (task.case_id, task.step, task.department) in keys}
    return flagged


@router.get("/inbox")
def inbox(
    request: Request,
    actor: TaskActor,
    engine: EngineDep,
    status: Annotated[str, Query(max_length=32)] = "",
    step: Annotated[str, Query(max_length=64)] = "",
    due: Annotated[str, Query(max_length=16)] = "",
    supervised: Annotated[str, Query(max_length=8)] = "",
    q: Annotated[str, Query(max_length=200)] = "",
    task: Annotated[str, Query(max_length=200)] = "",
    page: Annotated[int, Query(ge=1, le=10_000)] = 1,
) -> Response:
    """The department's tasks, oldest due first, with 预警 and 超期 badges and a 督办 mark; narrowed by
    status, step, due date, 督办 and a case number or applicant name; beside the list (on wide
    screens) the summary of the task chosen, with 签收 right there."""
    calendar: WorkingCalendar = request.app.state.calendar
    now = datetime.now(UTC)
    status_filter = next((item for item in StepStatus if item.value == status), None)
    filters = _inbox_filters(step, due, supervised, q)
    with Session(engine) as session:
        # Supervisors' own tasks are the 回访 of their unit; officers and clerks see their unit's.
        department = actor.unit if actor.role == "supervisor" else None
        offset = (page - 1) * INBOX_PAGE_SIZE
        # Read before the tasks (as GET /tasks does): the page's script reloads it once
        # GET /tasks/events streams another ETag for the same listing.
        etag = inbox_etag(session, actor, status_filter, department, INBOX_PAGE_SIZE, offset, filters)
        tasks, total = inbox_tasks(session, actor, status_filter, department, INBOX_PAGE_SIZE, offset, filters)
        labels = Labels(session)
        step_choices = _step_choices(labels, inbox_steps(session, actor, department), filters.step)
        cases = {
            case_id: (case_no, name)
            for case_id, case_no, name in session.execute(
                select(col(CaseRecord.case_id), col(CaseRecord.case_no), col(CaseRecord.applicant_name)).where(
                    col(CaseRecord.case_id).in_({item.case_id for item in tasks})
                )
            ).all()
        }
        supervised_ids = _supervised_tasks(session, tasks)
        own_unit = session.get(Unit, actor.unit_code) if actor.unit_code else None
        dues = [due_badge(item, calendar, now) for item in tasks]
        rows = [
            {
                "task": item,
                "thing_zh": labels.thing(item.thing),
                "step_zh": labels.step(item.thing, item.step),
                "department_zh": labels.department(item.department),
                "due": due_now,
                "mine": item.assignee == actor.username,
                "case_no": cases.get(item.case_id, (None, None))[0],
                "applicant_name": cases.get(item.case_id, (None, None))[1],
                "supervised": item.task_id in supervised_ids,
                "can_claim": item.status == StepStatus.OPEN,
            }
            for item, due_now in zip(tasks, dues, strict=True)
        ]
    counts = {code: sum(1 for due_now in dues if due_now.code == code) for code in ("overdue", "warning")}
    filter_query = {
        name: value
        for name, value in {
            "status": status_filter.value if status_filter else "",
            "step": filters.step or "",
            "due": filters.due or "",
            "supervised": "1" if filters.supervised else "",
            "q": filters.search or "",
        }.items()
        if value
    }
    selected = next((row for row in rows if row["task"].task_id == task), rows[0] if rows else None)
    return render(
        request,
        "officer_inbox.html",
        {
            "active_nav": "/inbox",
            "rows": rows,
            "selected": selected,
            "total": total,
            "page": page,
            "pages": max(1, -(-total // INBOX_PAGE_SIZE)),
            "status": status_filter.value if status_filter else "",
            "status_choices": [
                ("", "全部待办"),
                (StepStatus.OPEN.value, "待签收"),
                (StepStatus.CLAIMED.value, "办理中"),
                (StepStatus.AWAITING_SUPPLEMENT.value, "待补正"),
            ],
            "filters": filters,
            "filtered": filters.active or status_filter is not None,
            "step_choices": step_choices,
            "due_choices": DUE_CHOICES,
            "filter_query": filter_query,
            "page_url": request.url.path + (f"?{request.url.query}" if request.url.query else ""),
            "counts": counts,
            # Whose inbox this is: the unit (杭州市上城区公安分局), else the department.
            "department_zh": own_unit.name_zh
            if own_unit
            else department_names().get(actor.unit or "", actor.unit or ""),
            "inbox_etag": etag,
            "inbox_events_url": inbox_events_url(status_filter, department, offset, filters),
        },
        actor=actor,
    )


def inbox_events_url(
    status: StepStatus | None, department: str | None, offset: int, filters: InboxFilters | None = None
) -> str:
    """The change feed of the listing an inbox page shows (the same query as its GET /tasks)."""
    query: dict[str, str | int] = {"limit": INBOX_PAGE_SIZE, "offset": offset}
    if status is not None:
        query["status"] = status.value
    if department is not None:
        query["department"] = department
    if filters is not None:
        if filters.step:
            query["step"] = filters.step
        if filters.due:
            query["due"] = filters.due
        if filters.supervised:
            query["supervised"] = "true"
        if filters.search:
            query["q"] = filters.search
    return f"/tasks/events?{urlencode(query)}"


# --- 督办 notices -----------------------------------------------------------------------------
# Registered before /inbox/{task_id}, which would otherwise take "notices" for a task id.


@router.get("/inbox/notices")
def notices(request: Request, actor: NoticeActor, engine: EngineDep) -> Response:
    """The department's 督办 notices: unanswered first, each with a reply form; then the answered."""
    return _notices_page(request, actor, engine, {}, {})


def _notices_page(
    request: Request,
    actor: Actor,
    engine: Engine,
    errors: dict[str, str],
    replies: dict[str, str],
    status_code: int = 200,
) -> Response:
    with Session(engine) as session:
        pending, pending_total = department_notice_page(session, actor, False, 200, 0)
        # The latest answered ones, newest first (the list runs oldest first).
        _, answered_total = department_notice_page(session, actor, True, 1, 0)
        answered, _ = department_notice_page(
            session, actor, True, ANSWERED_SHOWN, max(0, answered_total - ANSWERED_SHOWN)
        )
        answered.reverse()
        task_ids = [f"{row['case_id']}:{row['step']}" for row in pending + answered]
        things = dict(
            session.execute(
                select(col(TaskRecord.task_id), col(TaskRecord.thing)).where(col(TaskRecord.task_id).in_(task_ids))
            ).all()
        )
        labels = Labels(session)

        def view(row: dict[str, Any]) -> dict[str, Any]:
            task_id = f"{row['case_id']}:{row['step']}"
            thing = things.get(task_id)
            complaint = row["origin"] == SUPERVISION_ORIGIN
            return {
                **row,
                # A complaint's notice concerns its answer, not a task of the inbox.
                "task_id": task_id if thing else None,
                "step_zh": "投诉答复" if complaint else labels.step(thing or "", row["step"]),
                "thing_zh": labels.thing(thing) if thing else "",
                "origin_zh": NOTICE_ORIGIN_ZH.get(row["origin"], row["origin"]),
            }

        context = {
            "active_nav": "/inbox/notices",
            "pending": [view(row) for row in pending],
            "pending_total": pending_total,
            "answered": [view(row) for row in answered],
            "errors": errors,
            "replies": replies,
        }
    return render(request, "officer_notices.html", context, status_code=status_code, actor=actor)


@router.post("/inbox/notices/{notice_id}/ack")
async def acknowledge_notice(request: Request, notice_id: str, actor: NoticeActor, engine: EngineDep) -> Response:
    """签收 a 督办 notice with a reply (the same code as ``POST /notices/{notice_id}/ack``)."""
    form = await checked_form(request)
    reply = form_text(form, "reply")
    try:
        AcknowledgeRequest(reply=reply)
    except ValidationError:
        message = "请填写回复（1至1000字）"
        return await run_in_threadpool(
            _notices_page, request, actor, engine, {notice_id: message}, {notice_id: reply}, 422
        )

    def acknowledge_in_session() -> None:
        with Session(engine) as session:
            acknowledge(session, engine, actor, notice_id, reply)

    try:
        await run_in_threadpool(acknowledge_in_session)
    except DomainError as error:
        if error.code != ErrorCode.CONFLICT:
            raise
        # A form sent twice: the first acknowledged it, the second finds it done.
        return flash_redirect(request, "/inbox/notices", error.message, "error")
    return flash_redirect(request, "/inbox/notices", "已签收督办通知并回复")


# --- one task -------------------------------------------------------------------------------


def _own_task(session: Session, actor: Actor, task_id: str) -> TaskRecord:
    """The task if it is one the actor's unit and role work on; otherwise 404, as for a stranger's case."""
    parse_task_id(task_id)
    task = session.get(TaskRecord, task_id)
    if (
        task is None
        or not in_unit_scope(actor, task.department, task.unit_code)
        or actor.role not in task.roles.split(",")
    ):
        raise DomainError(ErrorCode.NOT_FOUND, "任务不存在或不属于本单位")
    return task


def _step_definition(definition: ThingDefinition, step: str) -> StepDefinition:
    if step.startswith(FOLLOW_UP.code):
        return FOLLOW_UP
    return definition.step(step)


def _case_definition(session: Session, record: CaseRecord, situation: str | None) -> ThingDefinition:
    definition = definition_for(session, record.thing, record.catalogue_version)
    if situation and any(item.code == situation for item in definition.situations):
        return definition.for_situation(situation)
    return definition


@dataclass
class FormState:
    """What a re-rendered task page shows again: the form that failed, its values and the errors."""

    open_form: str | None = None
    values: dict[str, str] | None = None
    missing: list[str] | None = None
    errors: dict[str, str] | None = None
    message: str | None = None
    # The step's result fields, so that a refused value is explained by the field's example.
    result_fields: Mapping[str, ResultField] | None = None


def _task_context(engine: Engine, calendar: WorkingCalendar, actor: Actor, task_id: str) -> dict[str, Any]:
    with Session(engine) as session:
        task = _own_task(session, actor, task_id)
        record = visible_case(session, actor, task.case_id)
        snapshot = CaseSnapshot.model_validate(record.snapshot)
        if not sees_case_personal_data(actor, snapshot):
            snapshot = masked(snapshot)
        definition = _case_definition(session, record, snapshot.situation)
        labels = Labels(session)
        step_definition = _step_definition(definition, task.step)
        application = application_view(session, actor, record, snapshot, definition, step_definition, task.step)
        case_no = record.case_no or snapshot.case_no
        step_view = next((item for item in snapshot.steps if item.step == task.step), None)
        operations = operations_context(session, actor, task, step_view)
        reused = _reused_licences(session, task.case_id, task.thing, task.step)
    materials = {material.code: material for material in definition.materials}
    status = step_view.status if step_view else StepStatus(task.status)
    assignee = step_view.assignee if step_view else task.assignee
    return {
        "task": task,
        "task_id": task_id,
        "case": snapshot,
        "step": step_view,
        "status": status,
        "assignee": assignee,
        "thing_zh": labels.thing(task.thing),
        "step_zh": step_definition.name_zh,
        "department_zh": labels.department(task.department),
        "unit_zh": step_view.unit.name_zh if step_view is not None and step_view.unit else None,
        "due": due_badge(task, calendar, datetime.now(UTC)),
        "can_claim": status == StepStatus.OPEN,
        "can_act": status == StepStatus.CLAIMED and assignee == actor.username,
        "result_fields": [
            {"name": name, "spec": spec, "testid": f"result-{name}"} for name, spec in step_definition.result.items()
        ],
        "materials": list(materials.values()),
        "material_names": {code: material.name_zh for code, material in materials.items()},
        "result_labels": _result_labels(definition),
        "channel_zh": _channel_name(definition, snapshot.channel),
        "situation_zh": next((s.name_zh for s in definition.situations if s.code == snapshot.situation), ""),
        "application": application,
        "case_no": case_no,
        "reused_licences": reused,
        **operations,
    }


def _reused_licences(session: Session, case_id: str, thing: str, step: str) -> list[dict[str, str]]:
    """The 电子证照 earlier steps of the case issued that this step takes instead of the paper."""
    shown = []
    for issuing, kind in reused_licences(thing, step):
        licence = session.execute(
            select(LicenceRecord).where(col(LicenceRecord.case_id) == case_id, col(LicenceRecord.step) == issuing)
        ).scalar_one_or_none()
        shown.append(
            {
                "title_zh": kind.title_zh,
                "number": licence.number if licence else "",
                "state_zh": ("有效" if licence.status == "valid" else "已撤销") if licence else "待签发",
            }
        )
    return shown


def _result_labels(definition: ThingDefinition) -> dict[str, dict[str, str]]:
    """Per step, the Chinese label of each result field (回访 included), for the case's step table."""
    labels = {step.code: {name: spec.label_zh for name, spec in step.result.items()} for step in definition.steps}
    labels[FOLLOW_UP.code] = {name: spec.label_zh for name, spec in FOLLOW_UP.result.items()}
    return labels


def _channel_name(definition: ThingDefinition, channel: str) -> str:
    try:
        return definition.channel(channel).name_zh
    except KeyError:
        return channel


async def _task_page(
    request: Request, actor: Actor, engine: Engine, task_id: str, state: FormState, status_code: int = 200
) -> Response:
    calendar: WorkingCalendar = request.app.state.calendar
    context = await run_in_threadpool(_task_context, engine, calendar, actor, task_id)
    context.update(
        {
            "active_nav": "/inbox",
            "open_form": state.open_form,
            "values": state.values or {},
            "checked_missing": state.missing or [],
            "errors": state.errors or {},
            "form_message": state.message,
        }
    )
    return render(request, "officer_task.html", context, status_code=status_code, actor=actor)


@router.get("/inbox/{task_id}")
async def task_page(request: Request, task_id: str, actor: TaskActor, engine: EngineDep) -> Response:
    """One task: its case as this officer may see it, its time limit, and the actions open to the officer."""
    return await _task_page(request, actor, engine, task_id, FormState())


def _task_url(task_id: str) -> str:
    return "/inbox/" + quote(task_id, safe=":")


def refusal_errors(fields: Mapping[str, str], state: FormState) -> tuple[dict[str, str], list[str]]:
    """A refusal's field reasons in Chinese, keyed like the task page's inputs; the reasons of inputs
    the page has no place for come back as lines for the form's message, with their Chinese names."""
    specs = state.result_fields or {}
    placed = {f"result.{name}" for name in specs} | {"comment", "missing", "reason"}
    errors: dict[str, str] = {}
    others: list[str] = []
    for field, reason in fields.items():
        key = "missing" if field.startswith("missing[") else field
        text = field_reason(reason)
        if key in placed:
            errors.setdefault(key, text)
        else:
            others.append(f"{input_label(key)}：{text}")
    return errors, others


async def _after_refusal(
    request: Request,
    actor: Actor,
    engine: Engine,
    task_id: str,
    error: DomainError | WorkflowUpdateFailedError,
    state: FormState,
) -> Response:
    """A refused action: invalid input comes back on the form; a conflict (already claimed, not yet
    open, case closed) or a busy service is a message on the task page; anything else an error page."""
    domain = from_update_failure(error) if isinstance(error, WorkflowUpdateFailedError) else error
    if domain.code == ErrorCode.INVALID:
        state.errors, others = refusal_errors(domain.fields or {}, state)
        state.message = "；".join([zh_text(domain.message, "输入有误，请按提示修改"), *others])
        return await _task_page(request, actor, engine, task_id, state, status_code=422)
    if domain.code in {ErrorCode.CONFLICT, ErrorCode.UNAVAILABLE}:
        return flash_redirect(request, _task_url(task_id), domain.message, "error")
    raise domain


async def _act(
    request: Request,
    actor: Actor,
    client: Client,
    engine: Engine,
    task_id: str,
    form: FormData,
    action: str,
    update: Any,
    make_input: Callable[[str], BaseModel],
    state: FormState,
    done_message: str,
    done_url: str | None = None,
) -> Response:
    # The task must be the actor's before anything reaches the workflow (404 otherwise).
    await run_in_threadpool(_load_own_task, engine, actor, task_id)
    try:
        await act_on_task(task_id, actor, client, action, update, make_input, idempotency_key_of(form), engine=engine)
    except (DomainError, WorkflowUpdateFailedError) as error:
        return await _after_refusal(request, actor, engine, task_id, error, state)
    return flash_redirect(request, done_url or _task_url(task_id), done_message)


def _load_own_task(engine: Engine, actor: Actor, task_id: str) -> TaskRecord:
    with Session(engine) as session:
        return _own_task(session, actor, task_id)


@router.post("/inbox/{task_id}/claim")
async def claim(request: Request, task_id: str, actor: TaskActor, client: ClientDep, engine: EngineDep) -> Response:
    """签收: the task becomes the officer's; its clock was already running. Claimed from the inbox's
    list (its form sends the list's address as ``next``), the officer comes back to the list."""
    form = await checked_form(request)
    back = safe_next(form_text(form, "next"))
    from_list = back is not None and (back == "/inbox" or back.startswith("/inbox?"))
    return await _act(
        request,
        actor,
        client,
        engine,
        task_id,
        form,
        "claim",
        CaseWorkflow.claim,
        lambda step: ClaimInput(actor=actor, step=step),
        FormState(),
        "已签收，任务已转为本人办理" if from_list else "已签收，请办理",
        back if from_list else None,
    )


def _result_from_form(step: StepDefinition, form: FormData) -> tuple[dict[str, Any], dict[str, str], dict[str, str]]:
    """The step result typed into the form (empty fields left out), the values to show again, and
    the fields the form itself already shows to be wrong."""
    result: dict[str, Any] = {}
    values: dict[str, str] = {}
    errors: dict[str, str] = {}
    for name, spec in step.result.items():
        text = form_text(form, f"result.{name}")
        values[f"result.{name}"] = text
        if not text:
            continue
        if spec.type == "boolean":
            if text not in {"true", "false"}:
                errors[f"result.{name}"] = "请选择是或否"
                continue
            result[name] = text == "true"
        else:
            result[name] = text
    return result, values, errors


@router.post("/inbox/{task_id}/complete")
async def complete(request: Request, task_id: str, actor: TaskActor, client: ClientDep, engine: EngineDep) -> Response:
    """办结: the step's result, checked against the step's result fields in the catalogue."""
    form = await checked_form(request)
    task = await run_in_threadpool(_load_own_task, engine, actor, task_id)
    step = await run_in_threadpool(_task_step_definition, engine, task)
    result, values, errors = _result_from_form(step, form)
    comment = form_text(form, "comment")
    values["comment"] = comment
    if len(comment) > MAX_COMMENT_LENGTH:
        errors["comment"] = f"办理意见不超过{MAX_COMMENT_LENGTH}字"
    state = FormState(open_form="complete", values=values, errors=errors, result_fields=step.result)
    if errors:
        state.message = "办理结果不符合要求"
        return await _task_page(request, actor, engine, task_id, state, status_code=422)

    def make_input(code: str) -> CompleteStepInput:
        return CompleteStepInput(actor=actor, step=code, result=result, comment=comment or None)

    return await _act(
        request,
        actor,
        client,
        engine,
        task_id,
        form,
        "complete",
        CaseWorkflow.complete,
        make_input,
        state,
        # A refusing finding (核验不通过) ends the case: the officer is told so, not just "done".
        "已办结，核验结论为不予办理，本件已终止" if negative_result(step, result) else "已办结",
    )


def _task_step_definition(engine: Engine, task: TaskRecord) -> StepDefinition:
    with Session(engine) as session:
        record = session.get(CaseRecord, task.case_id)
        if record is None:
            raise DomainError(ErrorCode.NOT_FOUND, "案件不存在")
        return _step_definition(definition_for(session, record.thing, record.catalogue_version), task.step)


def _reason(form: FormData, errors: dict[str, str]) -> str:
    reason = form_text(form, "reason")
    if not reason or len(reason) > MAX_REASON_LENGTH:
        errors["reason"] = f"请填写理由（1至{MAX_REASON_LENGTH}字）"
    return reason


@router.post("/inbox/{task_id}/return")
async def return_for_supplement(
    request: Request, task_id: str, actor: TaskActor, client: ClientDep, engine: EngineDep
) -> Response:
    """退回补正: the materials the applicant must supply and why; the step's clock stops until they do."""
    form = await checked_form(request)
    chosen = [item.strip() for item in form.getlist("missing") if isinstance(item, str) and item.strip()]
    typed = [item.strip() for item in _ITEM_SEPARATORS.split(form_text(form, "missing_other")) if item.strip()]
    missing = list(dict.fromkeys(chosen + typed))
    errors: dict[str, str] = {}
    reason = _reason(form, errors)
    if not missing:
        errors["missing"] = "请至少选择或填写一项需补正的材料"
    elif len(missing) > MAX_MISSING_ITEMS:
        errors["missing"] = f"最多{MAX_MISSING_ITEMS}项"
    elif any(len(item) > MAX_MISSING_ITEM_LENGTH for item in missing):
        errors["missing"] = f"每项不超过{MAX_MISSING_ITEM_LENGTH}字"
    state = FormState(
        open_form="return",
        values={"reason": reason, "missing_other": form_text(form, "missing_other")},
        missing=chosen,
        errors=errors,
    )
    if errors:
        state.message = "补正要求不完整"
        return await _task_page(request, actor, engine, task_id, state, status_code=422)
    return await _act(
        request,
        actor,
        client,
        engine,
        task_id,
        form,
        "return",
        CaseWorkflow.return_for_supplement,
        lambda step: ReturnStepInput(actor=actor, step=step, missing=missing, reason=reason),
        state,
        "已退回补正，已通知申请人补交材料",
    )


@router.post("/inbox/{task_id}/refuse")
async def refuse(request: Request, task_id: str, actor: TaskActor, client: ClientDep, engine: EngineDep) -> Response:
    """不予办理: the case ends refused, with the reason given to the applicant."""
    form = await checked_form(request)
    errors: dict[str, str] = {}
    reason = _reason(form, errors)
    state = FormState(open_form="refuse", values={"reason": reason}, errors=errors)
    if errors:
        state.message = "不予办理须说明理由"
        return await _task_page(request, actor, engine, task_id, state, status_code=422)
    return await _act(
        request,
        actor,
        client,
        engine,
        task_id,
        form,
        "refuse",
        CaseWorkflow.refuse,
        lambda step: RefuseStepInput(actor=actor, step=step, reason=reason),
        state,
        "已作出不予办理决定，案件结束",
    )

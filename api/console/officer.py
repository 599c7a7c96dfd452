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
from collections.abc import Callable
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

from api.console.base import (
    checked_form,
    console_router,
    flash_redirect,
    form_text,
    idempotency_key_of,
    render,
    require_console_role,
)
from api.deps import ClientDep, EngineDep
from api.errors import from_update_failure
from api.routes.notices import AcknowledgeRequest, acknowledge, department_notice_page
from domain.catalogue import FOLLOW_UP, load_departments
from domain.redaction import masked, sees_case_personal_data
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
from models.catalogue import StepDefinition, ThingDefinition
from models.complaint import SUPERVISION_ORIGIN
from models.errors import DomainError, ErrorCode
from models.tables import CaseRecord, TaskRecord
from services.access import visible_case
from services.catalogue import current_definitions, definition_for
from services.inbox import inbox_etag, inbox_tasks
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
_CJK = re.compile(r"[\u3400-\u9fff]")


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


def _hours(seconds: float) -> str:
    return f"{seconds / 3600:.1f}"


def due_badge(task: TaskRecord, calendar: WorkingCalendar, now: datetime) -> DueBadge:
    """超期 once past due, 预警 from the warning time (00:00 of the due day), else the working time left."""
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
        late = calendar.working_seconds_between(task.due_at, now)
        return DueBadge("bad", "超期", f"已超期 {_hours(late)} 个工作小时", "overdue")
    left = calendar.working_seconds_between(now, task.due_at)
    if task.warning_at is not None and task.warning_at <= now:
        return DueBadge("warn", "预警", f"剩余 {_hours(left)} 个工作小时", "warning")
    return DueBadge("ok", "正常", f"剩余 {_hours(left)} 个工作小时", "on_time")


# --- the inbox ------------------------------------------------------------------------------


@router.get("/inbox")
def inbox(
    request: Request,
    actor: TaskActor,
    engine: EngineDep,
    status: StepStatus | None = None,
    page: Annotated[int, Query(ge=1, le=10_000)] = 1,
) -> Response:
    """The department's tasks, oldest due first, with 预警 and 超期 badges."""
    calendar: WorkingCalendar = request.app.state.calendar
    now = datetime.now(UTC)
    with Session(engine) as session:
        # Supervisors' own tasks are the 回访 of their unit; officers and clerks see their unit's.
        department = actor.unit if actor.role == "supervisor" else None
        offset = (page - 1) * INBOX_PAGE_SIZE
        # Read before the tasks (as GET /tasks does): the page's script reloads it once
        # GET /tasks/events streams another ETag for the same listing.
        etag = inbox_etag(session, actor, status, department, INBOX_PAGE_SIZE, offset)
        tasks, total = inbox_tasks(session, actor, status, department, INBOX_PAGE_SIZE, offset)
        labels = Labels(session)
        dues = [due_badge(task, calendar, now) for task in tasks]
        rows = [
            {
                "task": task,
                "thing_zh": labels.thing(task.thing),
                "step_zh": labels.step(task.thing, task.step),
                "department_zh": labels.department(task.department),
                "due": due,
                "mine": task.assignee == actor.username,
            }
            for task, due in zip(tasks, dues, strict=True)
        ]
    counts = {code: sum(1 for due in dues if due.code == code) for code in ("overdue", "warning")}
    return render(
        request,
        "officer_inbox.html",
        {
            "active_nav": "/inbox",
            "rows": rows,
            "total": total,
            "page": page,
            "pages": max(1, -(-total // INBOX_PAGE_SIZE)),
            "status": status.value if status else "",
            "status_choices": [
                ("", "全部待办"),
                (StepStatus.OPEN.value, "待签收"),
                (StepStatus.CLAIMED.value, "办理中"),
                (StepStatus.AWAITING_SUPPLEMENT.value, "待补正"),
            ],
            "counts": counts,
            "department_zh": department_names().get(actor.unit or "", actor.unit or ""),
            "inbox_etag": etag,
            "inbox_events_url": inbox_events_url(status, department, offset),
        },
        actor=actor,
    )


def inbox_events_url(status: StepStatus | None, department: str | None, offset: int) -> str:
    """The change feed of the listing an inbox page shows (the same query as its GET /tasks)."""
    query: dict[str, str | int] = {"limit": INBOX_PAGE_SIZE, "offset": offset}
    if status is not None:
        query["status"] = status.value
    if department is not None:
        query["department"] = department
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
        message = "请填写回复（1至1000字）(a reply of 1 to 1000 characters is required)"
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
    return flash_redirect(request, "/inbox/notices", "已签收督办通知并回复 (notice acknowledged)")


# --- one task -------------------------------------------------------------------------------


def _own_task(session: Session, actor: Actor, task_id: str) -> TaskRecord:
    """The task if it is one the actor's unit and role work on; otherwise 404, as for a stranger's case."""
    parse_task_id(task_id)
    task = session.get(TaskRecord, task_id)
    if task is None or task.department != actor.unit or actor.role not in task.roles.split(","):
        raise DomainError(ErrorCode.NOT_FOUND, "任务不存在或不属于本部门 (no such task in your department)")
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
    step_view = next((item for item in snapshot.steps if item.step == task.step), None)
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
    }


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


def zh_reason(reason: str) -> str:
    """A validation reason in Chinese first: the domain's English reasons get a Chinese lead."""
    if _CJK.search(reason):
        return reason
    known = [
        ("unknown field", "本环节没有此项"),
        ("does not match", "格式不正确"),
        ("must be true or false", "请选择是或否"),
        ("longer than", "内容过长"),
        ("birth date in the number", "号码中的出生日期与出生时间不符"),
        ("decimal yuan", "金额须为两位小数，如 1234.50"),
        ("list 1 to 20", "请列出1至20项需补正的材料"),
        ("each item is 1 to 100", "每项材料名称为1至100字"),
        ("give a reason", "请填写理由（1至500字）"),
    ]
    for english, chinese in known:
        if english in reason:
            return f"{chinese} ({reason})"
    return f"输入有误 ({reason})"


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
        state.errors = {field: zh_reason(reason) for field, reason in (domain.fields or {}).items()}
        state.message = domain.message
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
) -> Response:
    # The task must be the actor's before anything reaches the workflow (404 otherwise).
    await run_in_threadpool(_load_own_task, engine, actor, task_id)
    try:
        await act_on_task(task_id, actor, client, action, update, make_input, idempotency_key_of(form))
    except (DomainError, WorkflowUpdateFailedError) as error:
        return await _after_refusal(request, actor, engine, task_id, error, state)
    return flash_redirect(request, _task_url(task_id), done_message)


def _load_own_task(engine: Engine, actor: Actor, task_id: str) -> TaskRecord:
    with Session(engine) as session:
        return _own_task(session, actor, task_id)


@router.post("/inbox/{task_id}/claim")
async def claim(request: Request, task_id: str, actor: TaskActor, client: ClientDep, engine: EngineDep) -> Response:
    """签收: the task becomes the officer's; its clock was already running."""
    form = await checked_form(request)
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
        "已签收，请办理 (task claimed)",
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
                errors[f"result.{name}"] = "请选择是或否 (choose yes or no)"
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
        errors["comment"] = f"备注不超过{MAX_COMMENT_LENGTH}字 (at most {MAX_COMMENT_LENGTH} characters)"
    state = FormState(open_form="complete", values=values, errors=errors)
    if errors:
        state.message = "办理结果不符合要求 (invalid step result)"
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
        "已办结 (step completed)",
    )


def _task_step_definition(engine: Engine, task: TaskRecord) -> StepDefinition:
    with Session(engine) as session:
        record = session.get(CaseRecord, task.case_id)
        if record is None:
            raise DomainError(ErrorCode.NOT_FOUND, "案件不存在 (no such case)")
        return _step_definition(definition_for(session, record.thing, record.catalogue_version), task.step)


def _reason(form: FormData, errors: dict[str, str]) -> str:
    reason = form_text(form, "reason")
    if not reason or len(reason) > MAX_REASON_LENGTH:
        errors["reason"] = (
            f"请填写理由（1至{MAX_REASON_LENGTH}字）(give a reason of 1 to {MAX_REASON_LENGTH} characters)"
        )
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
        errors["missing"] = "请至少选择或填写一项需补正的材料 (name at least one missing material)"
    elif len(missing) > MAX_MISSING_ITEMS:
        errors["missing"] = f"最多{MAX_MISSING_ITEMS}项 (at most {MAX_MISSING_ITEMS} items)"
    elif any(len(item) > MAX_MISSING_ITEM_LENGTH for item in missing):
        errors["missing"] = (
            f"每项不超过{MAX_MISSING_ITEM_LENGTH}字 (each item at most {MAX_MISSING_ITEM_LENGTH} characters)"
        )
    state = FormState(
        open_form="return",
        values={"reason": reason, "missing_other": form_text(form, "missing_other")},
        missing=chosen,
        errors=errors,
    )
    if errors:
        state.message = "补正要求不完整 (invalid return)"
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
        "已退回补正，已通知申请人补交材料 (returned for supplement)",
    )


@router.post("/inbox/{task_id}/refuse")
async def refuse(request: Request, task_id: str, actor: TaskActor, client: ClientDep, engine: EngineDep) -> Response:
    """不予办理: the case ends refused, with the reason given to the applicant."""
    form = await checked_form(request)
    errors: dict[str, str] = {}
    reason = _reason(form, errors)
    state = FormState(open_form="refuse", values={"reason": reason}, errors=errors)
    if errors:
        state.message = "不予办理须说明理由 (a refusal needs a reason)"
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
        "已作出不予办理决定，案件结束 (case refused)",
    )

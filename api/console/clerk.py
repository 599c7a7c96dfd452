"""Window clerk pages (一窗受理): intake for a walk-in applicant at the clerk's own window,
the unit's recent acceptances, the printable 受理通知书 (as the case stands now: api/console/notice.py)
and 补正 at the window (the materials a walk-in brings, through ``supply_case_materials``).

The intake form is the applicant's (built from the catalogue by ``applicant.intake_form``);
the channel is the window of the clerk's unit, and the submission goes through the same
``accept_submission`` as ``POST /cases`` (a clerk accepts for its own unit only).
"""

from __future__ import annotations

from contextlib import suppress
from dataclasses import dataclass
from urllib.parse import quote

from fastapi import Request, Response
from sqlalchemy import select
from sqlmodel import Session, col
from starlette.concurrency import run_in_threadpool

from api.console.applicant import (
    active_definition,
    answers_from_form,
    answers_from_query,
    intake_form,
    intake_page,
    refusal_of,
    submit_intake,
)
from api.console.base import (
    ClerkActor,
    checked_form,
    console_router,
    flash_redirect,
    form_text,
    idempotency_key_of,
    render,
)
from api.console.messages import zh_text
from api.console.notice import (
    NoticeSheet,
    load_notice_parts,
    material_name_zh,
    notice_sheet,
    staff_display_names,
)
from api.errors import STATUS_BY_CODE
from domain.workcalendar import WorkingCalendar
from models.case import AcceptanceNotice, Actor, CaseSnapshot
from models.catalogue import ThingDefinition
from models.errors import DomainError, ErrorCode
from models.tables import CaseRecord
from services.access import accepted_by_actors_window, accepted_by_actors_window_filter, visible_case
from services.cases import end_case, supply_case_materials
from services.catalogue import current_definitions, definition_for

router = console_router()

RECENT_CASES = 50


@dataclass
class WindowThing:
    """A thing this clerk's window accepts, on that window's channel."""

    definition: ThingDefinition
    channel: str
    channel_zh: str


def window_channel(definition: ThingDefinition, actor: Actor) -> tuple[str, str] | None:
    """The channel (code, name) whose accepting unit is the clerk's unit, if the thing has one."""
    for channel in definition.channels:
        if channel.accepting_unit is not None and channel.accepting_unit == actor.unit:
            return channel.code, channel.name_zh
    return None


def _window_overview(request: Request, actor: Actor) -> tuple[list[WindowThing], list[CaseSnapshot], dict[str, str]]:
    with Session(request.app.state.engine) as session:
        definitions = current_definitions(session)
        rows = session.execute(
            select(CaseRecord)
            .where(accepted_by_actors_window_filter(actor))
            .order_by(col(CaseRecord.submitted_at).desc())
            .limit(RECENT_CASES)
        ).scalars()
        recent = [CaseSnapshot.model_validate(row.snapshot) for row in rows]
        staff = {case.acceptance_notice.accepting_staff for case in recent if case.acceptance_notice}
        staff_names = staff_display_names(session, {name for name in staff if name})
    things = []
    for definition in definitions.values():
        channel = window_channel(definition, actor)
        if channel is not None:
            things.append(WindowThing(definition=definition, channel=channel[0], channel_zh=channel[1]))
    return things, recent, staff_names


@router.get("/window")
async def window(request: Request, actor: ClerkActor) -> Response:
    things, recent, staff_names = await run_in_threadpool(_window_overview, request, actor)
    unit_zh = things[0].definition.department_name(actor.unit or "") if things else (actor.unit or "")
    context = {"things": things, "recent": recent, "unit_zh": unit_zh, "staff_names": staff_names}
    return render(request, "clerk_window.html", context, actor=actor)


def _window_definition(request: Request, actor: Actor, thing: str) -> tuple[ThingDefinition, str]:
    definition = active_definition(request, thing)
    channel = window_channel(definition, actor)
    if channel is None:
        raise DomainError(ErrorCode.FORBIDDEN, "本窗口不受理该事项")
    return definition, channel[0]


@router.get("/window/apply/{thing}")
async def window_apply_form(request: Request, thing: str, actor: ClerkActor) -> Response:
    definition, channel = await run_in_threadpool(_window_definition, request, actor, thing)
    intake = intake_form(definition, channel, answers_from_query(definition, request))
    return intake_page(
        request,
        actor,
        intake,
        action=f"/window/apply/{thing}",
        page_title=f"窗口受理：{definition.name_zh}",
        template="clerk_apply.html",
    )


@router.post("/window/apply/{thing}")
async def window_apply_submit(request: Request, thing: str, actor: ClerkActor) -> Response:
    form = await checked_form(request)
    definition, channel = await run_in_threadpool(_window_definition, request, actor, thing)
    intake = intake_form(definition, channel, answers_from_form(definition, form))
    title = f"窗口受理：{definition.name_zh}"
    if not intake.ready:
        return intake_page(
            request, actor, intake, action=f"/window/apply/{thing}", page_title=title, template="clerk_apply.html"
        )
    outcome = await submit_intake(request, actor, intake, form)
    if outcome.snapshot is None:
        return intake_page(
            request,
            actor,
            intake,
            action=f"/window/apply/{thing}",
            page_title=title,
            outcome=outcome,
            idempotency_key=idempotency_key_of(form),
            template="clerk_apply.html",
        )
    case_id = outcome.snapshot.case_id
    number = outcome.snapshot.case_no or case_id
    return flash_redirect(request, f"/window/cases/{case_id}/notice", f"已受理，受理编号 {number}，请打印受理通知书")


@dataclass
class WindowCase:
    """A case this clerk's unit accepted, with its notice as it stands now."""

    snapshot: CaseSnapshot
    definition: ThingDefinition | None
    notice: AcceptanceNotice
    sheet: NoticeSheet


def _window_case(request: Request, actor: Actor, case_id: str) -> WindowCase:
    """A case accepted at this clerk's window (404 for any other, like GET /cases/{case_id})."""
    calendar: WorkingCalendar = request.app.state.calendar
    with Session(request.app.state.engine) as session:
        record = visible_case(session, actor, case_id)
        if not accepted_by_actors_window(actor, record):
            # Another unit's case (seen only because one of its steps is ours): not ours to notify.
            raise DomainError(ErrorCode.NOT_FOUND, "案件不存在或非本窗口受理")
        snapshot, staff_names = load_notice_parts(session, record)
        if snapshot.acceptance_notice is None:
            raise DomainError(ErrorCode.CONFLICT, "案件尚在受理中，请稍后刷新")
        try:
            definition: ThingDefinition | None = definition_for(session, snapshot.thing, snapshot.catalogue_version)
        except DomainError:
            definition = None
    sheet = notice_sheet(record, snapshot, definition, calendar, staff_names)
    return WindowCase(snapshot=snapshot, definition=definition, notice=snapshot.acceptance_notice, sheet=sheet)


@router.get("/window/cases/{case_id}/notice")
async def window_notice(request: Request, case_id: str, actor: ClerkActor) -> Response:
    """The printable 受理通知书 of a case this clerk's unit accepted, as the case stands now."""
    case = await run_in_threadpool(_window_case, request, actor, case_id)
    situation_zh = case.notice.thing_zh
    if case.definition is not None and case.snapshot.situation:
        with suppress(KeyError):
            situation_zh = case.definition.situation_named(case.snapshot.situation).name_zh
    context = {
        "case": case.snapshot,
        "notice": case.notice,
        "sheet": case.sheet,
        "situation_zh": situation_zh,
    }
    return render(request, "notice_print.html", context, actor=actor)


# --- 补正 at the window: the materials a walk-in brings -----------------------------------

MAX_REFERENCE_CHARS = 100  # a receipt or archive number, not a document


@dataclass
class OwedInput:
    """One owed material on the 补正 page: its name, why it is owed, and the input for it."""

    code: str
    name_zh: str
    reason: str
    asked_by_zh: str

    @property
    def input_id(self) -> str:
        return f"supply-{self.code}"


def _owed_inputs(case: WindowCase) -> list[OwedInput]:
    """The materials the case owes now (those the workflow will ask for), named in Chinese."""
    owed = {material.code: material for material in case.sheet.owed}
    names = {material.code: material.name_zh for material in case.definition.materials} if case.definition else {}
    inputs = []
    for code in case.snapshot.missing_materials:
        material = owed.get(code)
        inputs.append(
            OwedInput(
                code=code,
                name_zh=material.name_zh if material else material_name_zh(names.get(code, "")),
                reason=(material.reason if material else None) or "",
                asked_by_zh=(material.asked_by_zh if material else None) or "",
            )
        )
    return inputs


def _supplement_page(
    request: Request,
    actor: Actor,
    case: WindowCase,
    *,
    values: dict[str, str] | None = None,
    errors: dict[str, str] | None = None,
    message: str = "",
    idempotency_key: str | None = None,
    status_code: int = 200,
) -> Response:
    context = {
        "case": case.snapshot,
        "sheet": case.sheet,
        "owed": _owed_inputs(case),
        "values": values or {},
        "errors": errors or {},
        "error_message": message,
        "idempotency_key": idempotency_key,
        "max_reference_chars": MAX_REFERENCE_CHARS,
    }
    return render(request, "clerk_supplement.html", context, status_code=status_code, actor=actor)


def _notice_url(case_id: str) -> str:
    return f"/window/cases/{quote(case_id, safe='')}/notice"


@router.get("/window/cases/{case_id}/supplement")
async def window_supplement_form(request: Request, case_id: str, actor: ClerkActor) -> Response:
    """补正 at the window: the materials the case owes, each with an input for what the applicant brought."""
    case = await run_in_threadpool(_window_case, request, actor, case_id)
    if not case.snapshot.missing_materials:
        return flash_redirect(request, _notice_url(case_id), "该案件当前没有需要补正的材料", kind="info")
    return _supplement_page(request, actor, case)


@router.post("/window/cases/{case_id}/supplement")
async def window_supplement_submit(request: Request, case_id: str, actor: ClerkActor) -> Response:
    """Record the materials a walk-in brought, through the same 补正 as POST /cases/{id}/supplements."""
    form = await checked_form(request)
    case = await run_in_threadpool(_window_case, request, actor, case_id)
    if not case.snapshot.missing_materials:
        # Sent twice, or someone else recorded them first: the materials are in either way.
        return flash_redirect(request, _notice_url(case_id), "该案件的补正材料已收齐，无需再次录入", kind="info")
    owed = _owed_inputs(case)
    values = {item.code: form_text(form, f"materials.{item.code}") for item in owed}
    errors: dict[str, str] = {}
    for item in owed:
        if not values[item.code]:
            errors[item.code] = "请填写收取的材料编号（如纸质材料的收件编号或扫描件存档号）"
        elif len(values[item.code]) > MAX_REFERENCE_CHARS:
            errors[item.code] = f"不超过{MAX_REFERENCE_CHARS}个字符"
    key = idempotency_key_of(form)
    if errors:
        message = "补正材料未收齐，请按提示填写"
        return _supplement_page(
            request, actor, case, values=values, errors=errors, message=message, idempotency_key=key, status_code=422
        )
    app = request.app
    error = await refusal_of(
        supply_case_materials(case_id, values, actor, app.state.temporal_client, app.state.engine, key)
    )
    if error is not None:
        fields = {
            name.removeprefix("materials."): "请填写收取的材料编号"
            for name in error.fields
            if name.removeprefix("materials.") in values
        }
        return _supplement_page(
            request,
            actor,
            case,
            values=values,
            errors=fields,
            message=f"补正未能登记：{zh_text(error.message, '请刷新页面后重试')}",
            idempotency_key=key,
            status_code=STATUS_BY_CODE[error.code],
        )
    names = "、".join(item.name_zh for item in owed)
    return flash_redirect(request, _notice_url(case_id), f"已收取补正材料：{names}，案件继续办理")


# --- 撤回 and 不予受理 at the window ------------------------------------------------------------

OPEN_CASE_STATUSES = {"accepted", "in_progress", "awaiting_supplement"}


def _end_page(request: Request, actor: Actor, case: WindowCase, error: str = "", status_code: int = 200) -> Response:
    snapshot = case.snapshot
    taken_up = any(step.assignee or step.status not in {"pending", "open"} for step in snapshot.steps)
    context = {
        "case": snapshot,
        "can_end": snapshot.status in OPEN_CASE_STATUSES,
        "can_decline": snapshot.status in OPEN_CASE_STATUSES and not taken_up,
        "error_message": error,
    }
    return render(request, "clerk_end.html", context, status_code=status_code, actor=actor)


@router.get("/window/cases/{case_id}/end")
async def window_end_form(request: Request, case_id: str, actor: ClerkActor) -> Response:
    """不予受理 (while no department has taken the case up) or 撤回 (at the applicant's request)."""
    case = await run_in_threadpool(_window_case, request, actor, case_id)
    return _end_page(request, actor, case)


@router.post("/window/cases/{case_id}/{how}")
async def window_end(request: Request, case_id: str, how: str, actor: ClerkActor) -> Response:
    """The case ends as the clerk decides, with the reason the applicant is told."""
    if how not in {"decline", "withdraw"}:
        raise DomainError(ErrorCode.NOT_FOUND, "页面不存在")
    form = await checked_form(request)
    case = await run_in_threadpool(_window_case, request, actor, case_id)
    reason = form_text(form, "reason")
    if not 1 <= len(reason) <= 500:
        return _end_page(request, actor, case, "请填写理由（1至500字），理由将告知申请人", status_code=422)
    app = request.app
    error = await refusal_of(
        end_case(case_id, how, reason, actor, app.state.temporal_client, app.state.engine, idempotency_key_of(form))
    )
    if error is not None:
        return _end_page(
            request, actor, case, zh_text(error.message, "操作未成功，请刷新页面后重试"), STATUS_BY_CODE[error.code]
        )
    done = "已作出不予受理决定，已告知申请人理由" if how == "decline" else "申请已撤回，各部门已停止办理"
    return flash_redirect(request, "/window", done)

"""Window clerk pages (一窗受理): intake for a walk-in applicant at the clerk's own window,
the unit's recent acceptances, and the printable 受理通知书.

The intake form is the applicant's (built from the catalogue by ``applicant.intake_form``);
the channel is the window of the clerk's unit, and the submission goes through the same
``accept_submission`` as ``POST /cases`` (a clerk accepts for its own unit only).
"""

from __future__ import annotations

from dataclasses import dataclass

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
    load_case_view,
    submit_intake,
)
from api.console.base import ClerkActor, checked_form, console_router, flash_redirect, idempotency_key_of, render
from models.case import Actor, CaseSnapshot
from models.catalogue import ThingDefinition
from models.errors import DomainError, ErrorCode
from models.tables import CaseRecord
from services.catalogue import current_definitions

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


def _window_overview(request: Request, actor: Actor) -> tuple[list[WindowThing], list[CaseSnapshot]]:
    with Session(request.app.state.engine) as session:
        definitions = current_definitions(session)
        rows = session.execute(
            select(CaseRecord)
            .where(col(CaseRecord.accepting_unit) == actor.unit)
            .order_by(col(CaseRecord.submitted_at).desc())
            .limit(RECENT_CASES)
        ).scalars()
        recent = [CaseSnapshot.model_validate(row.snapshot) for row in rows]
    things = []
    for definition in definitions.values():
        channel = window_channel(definition, actor)
        if channel is not None:
            things.append(WindowThing(definition=definition, channel=channel[0], channel_zh=channel[1]))
    return things, recent


@router.get("/window")
async def window(request: Request, actor: ClerkActor) -> Response:
    things, recent = await run_in_threadpool(_window_overview, request, actor)
    unit_zh = things[0].definition.department_name(actor.unit or "") if things else (actor.unit or "")
    return render(request, "clerk_window.html", {"things": things, "recent": recent, "unit_zh": unit_zh}, actor=actor)


def _window_definition(request: Request, actor: Actor, thing: str) -> tuple[ThingDefinition, str]:
    definition = active_definition(request, thing)
    channel = window_channel(definition, actor)
    if channel is None:
        raise DomainError(ErrorCode.FORBIDDEN, "本窗口不受理该事项 (this window does not accept this thing)")
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
    return flash_redirect(request, f"/window/cases/{case_id}/notice", f"已受理，受理编号 {case_id}，请打印受理通知书")


@router.get("/window/cases/{case_id}/notice")
async def window_notice(request: Request, case_id: str, actor: ClerkActor) -> Response:
    """The printable 受理通知书 of a case this clerk's unit accepted."""
    view = await run_in_threadpool(load_case_view, request, actor, case_id)
    if view.snapshot.accepting_unit != actor.unit:
        # Another unit's case (seen only because one of its steps is ours): not ours to notify.
        raise DomainError(ErrorCode.NOT_FOUND, "案件不存在或非本窗口受理 (not accepted at this window)")
    if view.snapshot.acceptance_notice is None:
        raise DomainError(ErrorCode.CONFLICT, "案件尚在受理中，请稍后刷新 (not accepted yet)")
    return render(request, "notice_print.html", {"view": view, "notice": view.snapshot.acceptance_notice}, actor=actor)

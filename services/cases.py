"""Cases: submission (受理), supplements (补正) and ratings (好差评); the JSON routes
(api/routes/cases.py) and the web console (api/console/applicant.py, clerk.py) both call these.

Each staff action carries its audit-log row into the workflow, which writes it in the same
transaction as the change it records (activities/case_changes.py); nothing here writes the
read model.
"""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta
from functools import partial
from typing import Any

from pydantic import ValidationError
from sqlalchemy import Engine
from sqlmodel import Session
from starlette.concurrency import run_in_threadpool
from temporalio.client import Client
from temporalio.common import SearchAttributePair, TypedSearchAttributes
from temporalio.service import RPCError, RPCStatusCode

from domain.catalogue import resolve_for_case
from domain.follow_links import walk_in_rater
from domain.forms import FORMS, identity_problems
from domain.redaction import mask_personal_data
from domain.subjects import subject_key
from infra.case_registry import (
    Registration,
    UnconfirmedHolder,
    duplicate_case,
    register_case,
    release_registration,
)
from models.case import (
    Actor,
    AuditEntry,
    CaseInput,
    CaseSnapshot,
    CaseStatus,
    EndCaseInput,
    RateInput,
    RatingView,
    StepUnit,
    SupplementInput,
)
from models.catalogue import ThingDefinition
from models.errors import DomainError, ErrorCode, invalid_input
from models.tables import UserAccount
from services.access import require_role, visible_case
from services.audit import AuditAction
from services.case_files import check_file_references
from services.catalogue import definition_for
from services.faults import crash_if_injected
from services.gateway import refuse_reused_key, request_fingerprint, send_update, start_with_update, update_id
from services.idempotency import send_action
from services.identity import applicant_key_of, check_filer, verified_account
from services.routing import accepting_window, route_steps
from settings import Settings
from workflows.case.workflow import CaseWorkflow
from workflows.starter import STATUS_KEY, THING_KEY, new_case_id


def staff_audit(
    actor: Actor, action: AuditAction, target: str, detail: dict[str, Any], idempotency_key: str | None
) -> AuditEntry | None:
    """The audit row of a staff action (applicants' own actions are in their case's history only)."""
    if actor.role == "applicant":
        return None
    return AuditEntry(
        action=action.value,
        actor=actor,
        target=target,
        detail=mask_personal_data(detail),
        # Per user: another user's action with the same key is an action of its own (services/idempotency.py).
        request_key=f"{target}/{actor.username}/{idempotency_key}" if idempotency_key else None,
        at=datetime.now(UTC),  # when the staff member acted
    )


def _current_definition(engine: Engine, thing: str) -> ThingDefinition:
    with Session(engine) as session:
        try:
            return definition_for(session, thing)
        except DomainError:
            raise DomainError(
                ErrorCode.INVALID, "未知的事项 (unknown thing)", {"thing": f"no active thing {thing!r}"}
            ) from None


def _validated_form(definition: ThingDefinition, form: dict[str, Any]) -> dict[str, Any]:
    try:
        model = FORMS[definition.form].model_validate(form)
    except ValidationError as exc:
        raise invalid_input(exc, "form") from exc
    problems = identity_problems(model)
    if problems:
        fields = {f"form.{path}": reason for path, reason in problems.items()}
        raise DomainError(ErrorCode.INVALID, "申请表中的人员信息有误 (the people on the form do not add up)", fields)
    clean = model.model_dump(mode="json", exclude_none=True)
    born_at = clean.get("newborn", {}).get("born_at")
    if born_at and datetime.fromisoformat(born_at) > datetime.now(UTC) + timedelta(minutes=5):
        raise DomainError(
            ErrorCode.INVALID, "输入有误 (invalid input)", {"form.newborn.born_at": "cannot be in the future"}
        )
    return clean


async def accept_submission(
    *,
    thing: str,
    channel: str,
    form: dict[str, Any],
    answers: dict[str, str] | None,
    actor: Actor,
    client: Client,
    engine: Engine,
    settings: Settings,
    idempotency_key: str | None,
    proxy_authorization: str | None = None,
) -> tuple[CaseSnapshot, bool]:
    """受理: validate a submission, start its case (once per Idempotency-Key) and answer once it
    is accepted, in one round trip; returns the case and whether this request created it. An
    applicant files for themself or, with ``proxy_authorization`` (授权委托书), as 代办."""
    require_role(actor, "applicant", "clerk")
    account = await run_in_threadpool(_verified_filer, engine, actor)
    definition = await run_in_threadpool(_current_definition, engine, thing)
    channels = {offered.code: offered for offered in definition.channels}
    if channel not in channels:
        raise DomainError(ErrorCode.INVALID, "输入有误 (invalid input)", {"channel": "not offered for this thing"})
    if actor.role == "clerk" and channels[channel].accepting_unit != actor.unit:
        raise DomainError(ErrorCode.FORBIDDEN, "只能受理本单位窗口的申请 (clerks accept for their own unit)")
    clean_form = _validated_form(definition, form)
    applicant_key = applicant_key_of(clean_form, settings.secret_key)
    proxy = check_filer(account, clean_form, proxy_authorization, applicant_key) if account is not None else None
    resolved = resolve_for_case(definition, clean_form, answers)
    units, window = await run_in_threadpool(_routed, engine, resolved, channel, clean_form, actor)
    case_id = new_case_id(actor.username, idempotency_key)
    subject = subject_key(thing, clean_form, settings.division_code)
    registration = await _register(client, engine, case_id, thing, subject, settings.division_code)
    case = CaseInput(
        case_id=case_id,
        definition=resolved,
        answers=answers or {},
        channel=channel,
        form=clean_form,
        owner=actor.username if actor.role == "applicant" else None,
        submitted_by=actor,
        supervision_phone=settings.supervision_phone,
        request_fingerprint=request_fingerprint(
            {"thing": thing, "channel": channel, "form": clean_form, "answers": answers or {}}
            | ({"proxy": proxy_authorization} if proxy_authorization is not None else {})
        ),
        submission_id=uuid.uuid4().hex,
        audit=staff_audit(
            actor, AuditAction.CASE_ACCEPT, case_id, {"thing": thing, "channel": channel}, idempotency_key
        ),
        case_no=registration.case_no,
        subject_key=subject,
        units=units,
        accepting_window=window,
        applicant_key=applicant_key,
        proxy=proxy,
    )
    crash_if_injected(settings, "before_case_start")
    try:
        snapshot = await _start(client, case, settings)
    except DomainError as error:
        # 503: the start may yet happen (a retry with the same key finds the registration).
        if registration.created and error.code != ErrorCode.UNAVAILABLE:
            await run_in_threadpool(release_registration, engine, case_id)
        raise
    crash_if_injected(settings, "after_case_start")
    created = snapshot.submission_id == case.submission_id
    if not created:
        refuse_reused_key(snapshot.request_fingerprint, case.request_fingerprint)
    return snapshot, created


def _verified_filer(engine: Engine, actor: Actor) -> UserAccount | None:
    """An applicant's account with its verified identity (403 without one); None for a clerk."""
    if actor.role != "applicant":
        return None
    with Session(engine) as session:
        return verified_account(session, actor)


def _routed(
    engine: Engine, definition: ThingDefinition, channel: str, form: dict[str, Any], actor: Actor
) -> tuple[dict[str, StepUnit], StepUnit | None]:
    """Each step's unit and the accepting window's (services/routing.py)."""
    with Session(engine) as session:
        return route_steps(session, definition, channel, form, actor), accepting_window(session, actor)


async def _register(
    client: Client, engine: Engine, case_id: str, thing: str, subject: str | None, division: str
) -> Registration:
    """The case's number, once its subject is known to be free (409 duplicate_case if not)."""
    register = partial(register_case, engine, case_id=case_id, thing=thing, subject_key=subject, division=division)
    try:
        return await run_in_threadpool(register, now=datetime.now(UTC))
    except UnconfirmedHolder as holder:
        try:
            await client.get_workflow_handle(holder.case_id).describe()
        except RPCError as exc:
            if exc.status != RPCStatusCode.NOT_FOUND:
                raise
            # Registered long ago and never started (the API stopped in between): free it.
            await run_in_threadpool(release_registration, engine, holder.case_id)
            return await run_in_threadpool(register, now=datetime.now(UTC))
        raise duplicate_case(holder.case_id) from None


async def _start(client: Client, case: CaseInput, settings: Settings) -> CaseSnapshot:
    return await start_with_update(
        client,
        CaseWorkflow.run,
        case,
        workflow_id=case.case_id,
        task_queue=settings.task_queue,
        update=CaseWorkflow.wait_accepted,
        query=CaseWorkflow.snapshot,
        result_type=CaseSnapshot,
        noun_zh="案件",
        search_attributes=TypedSearchAttributes(
            [
                SearchAttributePair(THING_KEY, case.definition.code),
                SearchAttributePair(STATUS_KEY, CaseStatus.ACCEPTED.value),
            ]
        ),
    )


def _load_visible(engine: Engine, actor: Actor, case_id: str) -> None:
    with Session(engine) as session:
        visible_case(session, actor, case_id)


async def supply_case_materials(
    case_id: str,
    materials: dict[str, str],
    actor: Actor,
    client: Client,
    engine: Engine,
    idempotency_key: str | None,
) -> CaseSnapshot:
    """补正: the applicant (or the accepting clerk) supplies missing materials."""
    require_role(actor, "applicant", "clerk")
    await run_in_threadpool(_load_visible, engine, actor, case_id)
    await run_in_threadpool(check_file_references, engine, case_id, materials)
    audit = staff_audit(actor, AuditAction.CASE_SUPPLEMENT, case_id, {"materials": sorted(materials)}, idempotency_key)
    return await send_action(
        client,
        engine,
        case_id,
        CaseWorkflow.supplement,
        SupplementInput(actor=actor, materials=materials, audit=audit),
        actor=actor,
        action="supplement",
        target=case_id,
        idempotency_key=idempotency_key,
        body={"materials": materials},
        result_type=CaseSnapshot,
    )


async def rate_case_as(
    case_id: str,
    *,
    score: int,
    comment: str | None,
    step: str | None,
    actor: Actor,
    client: Client,
    engine: Engine,
    idempotency_key: str | None,
) -> RatingView:
    """The applicant's 好差评, once per Idempotency-Key."""
    require_role(actor, "applicant")
    await run_in_threadpool(_load_visible, engine, actor, case_id)
    return await send_action(
        client,
        engine,
        case_id,
        CaseWorkflow.rate,
        RateInput(actor=actor, score=score, comment=comment, step=step),
        actor=actor,
        action="rate",
        target=f"{case_id}:{step or ''}",
        idempotency_key=idempotency_key,
        body={"score": score, "comment": comment},
        result_type=RatingView,
    )


END_CASE_ACTIONS = {
    "withdraw": AuditAction.CASE_WITHDRAW,
    "decline": AuditAction.CASE_DECLINE,
}


async def end_case(
    case_id: str,
    how: str,
    reason: str,
    actor: Actor,
    client: Client,
    engine: Engine,
    idempotency_key: str | None,
) -> CaseSnapshot:
    """撤回 (the applicant or the accepting clerk, before the case is done) or 不予受理 (the
    accepting clerk, before any department has taken it up): open steps are cancelled."""
    require_role(actor, "applicant", "clerk")
    await run_in_threadpool(_load_visible, engine, actor, case_id)
    audit = staff_audit(actor, END_CASE_ACTIONS[how], case_id, {"reason": reason}, idempotency_key)
    update = CaseWorkflow.withdraw if how == "withdraw" else CaseWorkflow.decline
    return await send_action(
        client,
        engine,
        case_id,
        update,
        EndCaseInput(actor=actor, reason=reason, audit=audit),
        actor=actor,
        action=how,
        target=case_id,
        idempotency_key=idempotency_key,
        body={"reason": reason},
        result_type=CaseSnapshot,
    )


async def rate_walk_in(case_id: str, *, score: int, comment: str | None, client: Client) -> RatingView:
    """好差评 through the SMS link of a walk-in case nobody owns: the caller checked the link's
    signature (domain/follow_links.py); the workflow takes it from the link's rater alone."""
    actor = Actor(username=walk_in_rater(case_id), role="applicant")
    return await send_update(
        client,
        case_id,
        CaseWorkflow.rate,
        RateInput(actor=actor, score=score, comment=comment),
        result_type=RatingView,
        # One whole-case rating: a second press of the button answers the first one's result.
        update_id=update_id("rate", f"{case_id}:", "sms-link"),
    )

"""What a case shows others: the snapshot (read model, queries, Update answers), each
step's view and the acceptance notice (受理通知书). Pure functions of the case's state."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime

from temporalio import workflow

from workflows.case.state import CaseState, StepState

with workflow.unsafe.imports_passed_through():
    from domain.redaction import masked, sees_personal_data_of
    from models.case import (
        CASE_STATUS_ZH,
        STEP_STATUS_ZH,
        AcceptanceNotice,
        Actor,
        ArchiveCaseInput,
        CaseEvent,
        CaseSnapshot,
        MaterialEntry,
        StepView,
    )
    from models.catalogue import read_path

DELIVERY_METHOD_ZH = {"pickup": "窗口领取", "mail": "邮寄送达"}


def delivery_method(state: CaseState) -> str:
    return str(read_path(state.case.form, "delivery.method") or "pickup")


def step_view(state: CaseState, step: StepState) -> StepView:
    clock = step.clock
    return StepView(
        step=step.code,
        name_zh=step.definition.name_zh,
        department=step.department,
        department_zh=state.case.definition.department_name(step.department),
        status=step.status,
        status_zh=STEP_STATUS_ZH[step.status],
        time_limit_working_days=step.time_limit,
        opened_at=step.opened_at,
        due_at=clock.due_at,
        warning_at=clock.warning_at,
        provisional=clock.provisional,
        completed_at=step.completed_at,
        overdue=clock.overdue,
        assignee=step.assignee,
        result=step.result,
        unit=state.units.get(step.code),
        missing=list(step.missing),
        escalations=clock.escalations,
        actors=list(step.definition.actors),
        suspension=step.suspension,
        extension_request=step.extension_request,
        extended_working_days=step.extended_working_days,
    )


def snapshot(
    state: CaseState,
    *,
    submitted_at: datetime,
    notice: AcceptanceNotice | None,
    revision: int,
) -> CaseSnapshot:
    case = state.case
    definition = case.definition
    status = state.status()
    return CaseSnapshot(
        case_id=case.case_id,
        thing=definition.code,
        thing_zh=definition.name_zh,
        catalogue_version=definition.version,
        situation=definition.situation,
        channel=case.channel,
        status=status,
        status_zh=CASE_STATUS_ZH[status],
        submitted_at=submitted_at,
        owner=case.owner,
        submitted_by=case.submitted_by.username,
        accepting_unit=definition.channel(case.channel).accepting_unit,
        accepting_unit_code=case.accepting_window.code if case.accepting_window else None,
        missing_materials=state.owed_materials(),
        steps=[step_view(state, step) for step in [*state.steps.values(), *state.follow_ups.values()]],
        acceptance_notice=notice,
        revision=revision,
        request_fingerprint=case.request_fingerprint,
        submission_id=case.submission_id,
        ratings=list(state.ratings),
        rating_open=state.rating_open,
        rating_closes_at=state.rating_closes_at,
        case_no=case.case_no,
        subject_key=case.subject_key,
        materials=list(state.materials.values()),
        ended_reason=state.ended_reason,
        proxy=case.proxy,
    )


def acceptance_notice(
    state: CaseState,
    *,
    accepted_at: datetime,
    received: list[MaterialEntry],
    shared: list[MaterialEntry],
    to_supply: list[MaterialEntry],
) -> AcceptanceNotice:
    case = state.case
    definition = case.definition
    channel = definition.channel(case.channel)
    method = delivery_method(state)
    unit = channel.accepting_unit
    window = case.accepting_window
    submitter = case.submitted_by
    return AcceptanceNotice(
        case_id=case.case_id,
        thing=definition.code,
        thing_zh=definition.name_zh,
        channel=channel.code,
        channel_zh=channel.name_zh,
        accepting_unit=unit,
        accepting_unit_zh=window.name_zh if window else definition.department_name(unit) if unit else "网上办事大厅",
        accepting_unit_code=window.code if window else None,
        accepting_window_zh=window.window_zh if window else None,
        accepting_staff=submitter.username if submitter.role == "clerk" else None,
        accepted_at=accepted_at,
        materials_received=received,
        materials_shared=shared,
        materials_to_supply=to_supply,
        steps=[step_view(state, step) for step in state.steps.values()],
        delivery_method=method,
        delivery_method_zh=DELIVERY_METHOD_ZH.get(method, method),
        supervision_phone=case.supervision_phone,
    )


def step_view_for(state: CaseState, step: StepState, actor: Actor) -> StepView:
    """The step as the acting user may read it, so the API answers without reloading the case."""
    case = state.case
    opened = {s.department for s in [*state.steps.values(), *state.follow_ups.values()] if s.opened_at is not None}
    unit = case.definition.channel(case.channel).accepting_unit
    view = step_view(state, step)
    return view if sees_personal_data_of(actor, case.owner, case.submitted_by.username, unit, opened) else masked(view)


def archive_input(state: CaseState, snapshot: CaseSnapshot, events: Sequence[CaseEvent]) -> ArchiveCaseInput:
    """What the electronic archive files of a closed case (§7.1.3)."""
    return ArchiveCaseInput(
        case=state.case,
        snapshot=snapshot,
        events=list(events),
        ratings=[rating.model_dump(mode="json") for rating in state.ratings],
    )

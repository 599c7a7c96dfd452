"""A case's timeline, read from its Temporal event history (the authoritative record).

The workflow started with a CaseInput (the definition version included) and
recorded every business event in its projection activity's input (or, run as a
local activity, its result); both are decoded here from the history itself, not
from the read model.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Protocol, TypeVar

from temporalio.api.enums.v1 import EventType as HistoryEventType
from temporalio.client import Client, WorkflowHistory

from api.schemas import TimelineEvent, TimelineResponse, TimelineStep, event_to_timeline
from domain.timeliness import step_timeliness
from domain.workcalendar import WorkingCalendar
from models.case import (
    EVENT_TYPE_ZH,
    ActivityName,
    CaseChanges,
    CaseEvent,
    CaseInput,
    EventType,
    ProjectCaseInput,
    StepUnit,
    WriteResult,
)
from models.errors import DomainError, ErrorCode
from workflows.history import local_activity_outcome, replayed_local_writes

Input = TypeVar("Input")


class _Sequenced(Protocol):
    seq: int


Event = TypeVar("Event", bound=_Sequenced)


class _Projected(Protocol[Event]):
    events: list[Event]


async def read_projected_history(
    client: Client,
    workflow_id: str,
    input_type: type[Input],
    projection_activity: str,
    projection_type: type[_Projected[Event]],
    changes_activity: str | None = None,
    changes_type: type[_Projected[Event]] | None = None,
) -> tuple[Input | None, list[Event]]:
    """A workflow's input and the business events it recorded through its projection
    activity, in order, decoded from its history. A workflow that writes each change at
    once (``changes_activity``) in a local activity records only revisions: its events come from
    a replay; one whose writes run after their task has each change (``changes_type``) as input."""
    handle = client.get_workflow_handle(workflow_id)
    started: Input | None = None
    events: dict[int, Event] = {}
    history = await handle.fetch_history()
    if changes_activity is not None and await _writes_changes(client, history, changes_activity):
        for _, changes in await replayed_local_writes(history, client.data_converter, {changes_activity}):
            for recorded in changes.events:
                events[recorded.seq] = recorded
    for event in history.events:
        if event.event_type == HistoryEventType.EVENT_TYPE_WORKFLOW_EXECUTION_STARTED:
            payloads = event.workflow_execution_started_event_attributes.input.payloads
            (started,) = await client.data_converter.decode(payloads, [input_type])
        elif event.event_type == HistoryEventType.EVENT_TYPE_ACTIVITY_TASK_SCHEDULED:
            attributes = event.activity_task_scheduled_event_attributes
            name = attributes.activity_type.name
            written_type = {projection_activity: projection_type, changes_activity: changes_type}.get(name)
            if written_type is not None:
                (projection,) = await client.data_converter.decode(attributes.input.payloads, [written_type])
                for recorded in projection.events:
                    events[recorded.seq] = recorded
        elif event.event_type == HistoryEventType.EVENT_TYPE_MARKER_RECORDED:
            outcome = await local_activity_outcome(client, event, {projection_activity: projection_type})
            if outcome is not None:
                for recorded in outcome.result.events:
                    events[recorded.seq] = recorded
    return started, [events[seq] for seq in sorted(events)]


async def _writes_changes(client: Client, history: WorkflowHistory, changes_activity: str) -> bool:
    for event in history.events:
        if event.event_type == HistoryEventType.EVENT_TYPE_MARKER_RECORDED:
            outcome = await local_activity_outcome(client, event, {changes_activity: WriteResult})
            if outcome is not None:
                return True
    return False


async def read_case_history(client: Client, case_id: str) -> tuple[CaseInput, list[CaseEvent]]:
    case, events = await read_projected_history(
        client,
        case_id,
        CaseInput,
        ActivityName.PROJECT_CASE,
        ProjectCaseInput,
        ActivityName.WRITE_CASE_CHANGES,
        CaseChanges,
    )
    if case is None:
        raise DomainError(ErrorCode.NOT_FOUND, "案件不存在 (no such case)")
    return case, events


def build_timeline(
    case: CaseInput, events: list[CaseEvent], calendar: WorkingCalendar, now: datetime | None = None
) -> TimelineResponse:
    moment = now or datetime.now(UTC)
    definition = case.definition
    steps = []
    for step in definition.steps_for(case.channel):
        summary = step_timeliness(step.code, events, calendar, moment)
        steps.append(
            TimelineStep(
                step=step.code,
                name_zh=step.name_zh,
                department=step.department_for(case.channel),
                opened_at=summary.opened_at,
                due_at=summary.due_at,
                completed_at=summary.completed_at,
                working_hours_used=summary.working_hours_used,
                on_time=summary.on_time,
                overdue_working_hours=summary.overdue_working_hours,
            )
        )
    return TimelineResponse(
        case_id=case.case_id,
        thing=definition.code,
        catalogue_version=definition.version,
        events=_with_units(case, events),
        steps=steps,
    )


def _with_units(case: CaseInput, events: list[CaseEvent]) -> list[TimelineEvent]:
    """Each event with its step's unit at the time: as routed at acceptance, until a 转办
    (whose own event is the unit that passed it on) moves it."""
    units: dict[str, StepUnit] = dict(case.units)
    timeline = []
    for event in events:
        unit = units.get(event.step) if event.step else None
        timeline.append(event_to_timeline(event, EVENT_TYPE_ZH[event.type], unit))
        if event.type == EventType.TRANSFERRED and event.step and event.detail.get("to_unit"):
            units[event.step] = StepUnit(
                code=event.detail["to_unit"],
                name_zh=event.detail.get("to_unit_zh") or event.detail["to_unit"],
                division_code=event.detail.get("to_division_code") or "",
            )
    return timeline

"""Reading what a workflow's history recorded, client-side (the timeline, `rebuild`).

Read-model writes are recorded two ways: a regular activity's input is in its
ActivityTaskScheduled event; a local activity's result is in the marker that records
its completion (workflows/kit/calls.py), and the read-model activities return
what they wrote for exactly this reason.
"""

from __future__ import annotations

from collections.abc import Collection, Mapping
from dataclasses import dataclass
from typing import Any

from temporalio.api.history.v1 import HistoryEvent
from temporalio.client import Client, WorkflowHistory
from temporalio.converter import DataConverter
from temporalio.worker import (
    Interceptor,
    Replayer,
    StartLocalActivityInput,
    UnsandboxedWorkflowRunner,
    WorkflowInboundInterceptor,
    WorkflowInterceptorClassInput,
    WorkflowOutboundInterceptor,
)
from temporalio.workflow import ActivityHandle

# The marker a local activity's outcome is recorded in (Temporal's SDK core names it).
LOCAL_ACTIVITY_MARKER = "core_local_activity"


@dataclass(frozen=True)
class LocalActivityOutcome:
    activity_type: str
    activity_id: str
    result: Any


async def local_activity_outcome(
    client: Client, event: HistoryEvent, result_types: Mapping[str, type[Any]]
) -> LocalActivityOutcome | None:
    """The decoded result of a completed local activity named in ``result_types``,
    if ``event`` records one; None for any other marker or a failed local activity."""
    attributes = event.marker_recorded_event_attributes
    if attributes.marker_name != LOCAL_ACTIVITY_MARKER or "result" not in attributes.details:
        return None
    (data,) = await client.data_converter.decode(attributes.details["data"].payloads, [dict])
    name = data.get("activity_type")
    if name not in result_types:
        return None
    (result,) = await client.data_converter.decode(attributes.details["result"].payloads, [result_types[name]])
    return LocalActivityOutcome(activity_type=name, activity_id=str(data["activity_id"]), result=result)


async def replayed_local_writes(
    history: WorkflowHistory, data_converter: DataConverter, activity_types: Collection[str]
) -> list[tuple[str, Any]]:
    """The arguments of every local activity named in ``activity_types`` that the history
    completed, in order, found by replaying the history against today's workflows.

    A one-write-per-change activity records only the revision it wrote (its result); what
    it wrote is what the workflow handed it, and a replay hands the same again, since
    replay is deterministic. Writes started after the history's last marker are not included.
    """
    from workflows.registry import WORKFLOWS  # imported late: loading the workflows is not free

    captured: list[tuple[str, Any]] = []
    interceptor = _LocalWriteCapture(frozenset(activity_types), captured)
    replayer = Replayer(
        workflows=WORKFLOWS,
        data_converter=data_converter,
        interceptors=[interceptor],
        workflow_runner=UnsandboxedWorkflowRunner(),
    )
    await replayer.replay_workflow(history, raise_on_replay_failure=True)
    completed = await _completed_local_activities(history, data_converter, activity_types)
    return captured[:completed]


async def _completed_local_activities(
    history: WorkflowHistory, data_converter: DataConverter, activity_types: Collection[str]
) -> int:
    count = 0
    for event in history.events:
        attributes = event.marker_recorded_event_attributes
        if attributes.marker_name != LOCAL_ACTIVITY_MARKER or "result" not in attributes.details:
            continue
        (data,) = await data_converter.decode(attributes.details["data"].payloads, [dict])
        count += data.get("activity_type") in activity_types
    return count


class _LocalWriteCapture(Interceptor):
    def __init__(self, activity_types: frozenset[str], captured: list[tuple[str, Any]]) -> None:
        self._activity_types = activity_types
        self._captured = captured

    def workflow_interceptor_class(
        self, input: WorkflowInterceptorClassInput
    ) -> type[WorkflowInboundInterceptor] | None:
        activity_types, captured = self._activity_types, self._captured

        class Outbound(WorkflowOutboundInterceptor):
            def start_local_activity(self, input: StartLocalActivityInput) -> ActivityHandle[Any]:
                if input.activity in activity_types:
                    captured.append((input.activity, input.args[0]))
                return super().start_local_activity(input)

        class Inbound(WorkflowInboundInterceptor):
            def init(self, outbound: WorkflowOutboundInterceptor) -> None:
                super().init(Outbound(outbound))

        return Inbound

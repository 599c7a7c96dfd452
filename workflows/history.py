"""Reading what a workflow's history recorded, client-side (the timeline, `rebuild`).

Read-model writes are recorded two ways: a regular activity's input is in its
ActivityTaskScheduled event; a local activity's result is in the marker that records
its completion (workflows/kit/calls.py), and the read-model activities return
what they wrote for exactly this reason.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from temporalio.api.history.v1 import HistoryEvent
from temporalio.client import Client

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

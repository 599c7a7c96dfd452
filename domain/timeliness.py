"""Timeliness of a case's steps, worked out from its recorded events.

Working hours count only time on working days (the statutory calendar) and leave
out the time a step waited for the applicant's supplementary materials (补正).
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime

from domain.workcalendar import WorkingCalendar
from models.case import CaseEvent, EventType


@dataclass(frozen=True)
class StepTimeliness:
    step: str
    department: str | None
    opened_at: datetime | None
    due_at: datetime | None
    completed_at: datetime | None
    working_hours_used: float | None
    on_time: bool | None  # None while open and not yet late
    overdue_working_hours: float
    paused_working_hours: float = 0.0


def step_timeliness(step: str, events: Iterable[CaseEvent], calendar: WorkingCalendar, now: datetime) -> StepTimeliness:
    opened_at = due_at = completed_at = paused_at = None
    department = None
    paused_seconds = 0.0
    for event in sorted((e for e in events if e.step == step), key=lambda e: e.seq):
        department = department or event.department
        if event.type == EventType.OPENED:
            opened_at, due_at = event.at, event.due_at
        elif event.type == EventType.RETURNED:
            paused_at = event.at
        elif event.type == EventType.SUPPLEMENTED:
            if paused_at is not None:
                paused_seconds += calendar.working_seconds_between(paused_at, event.at)
                paused_at = None
            due_at = event.due_at or due_at
        elif event.type in {EventType.COMPLETED, EventType.REFUSED, EventType.CANCELLED}:
            completed_at = event.at
    if opened_at is None:
        return StepTimeliness(step, department, None, None, None, None, None, 0.0)
    end = completed_at or paused_at or now
    used = calendar.working_seconds_between(opened_at, end) - paused_seconds
    on_time: bool | None
    if completed_at is not None:
        on_time = due_at is None or completed_at <= due_at
    else:
        on_time = False if due_at is not None and end > due_at else None
    late = calendar.working_seconds_between(due_at, end) if due_at is not None else 0.0
    return StepTimeliness(
        step=step,
        department=department,
        opened_at=opened_at,
        due_at=due_at,
        completed_at=completed_at,
        working_hours_used=round(max(used, 0.0) / 3600, 2),
        on_time=on_time,
        overdue_working_hours=round(late / 3600, 2),
        paused_working_hours=round(paused_seconds / 3600, 2),
    )

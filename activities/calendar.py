"""Calendar activities: every deadline is computed here so that it is recorded in
history, and a later calendar update can never change what a running case replays.

They are ``async``: each is microseconds of arithmetic on the loaded calendar, so it runs
on the worker's event loop instead of queueing for an activity thread behind read-model
writes (a submission asks the calendar before its first answer)."""

from __future__ import annotations

from temporalio import activity

from domain.workcalendar import WorkingCalendar
from models.case import (
    ActivityName,
    ComputeDeadlinesInput,
    ComputeDeadlinesResult,
    DeadlineResult,
    NextEscalationInput,
    NextEscalationResult,
    RemainingTimeInput,
    RemainingTimeResult,
)


class CalendarActivities:
    def __init__(self, calendar: WorkingCalendar) -> None:
        self._calendar = calendar

    @activity.defn(name=ActivityName.COMPUTE_DEADLINES)
    async def compute_deadlines(self, request: ComputeDeadlinesInput) -> ComputeDeadlinesResult:
        deadlines = []
        for item in request.requests:
            if item.remaining_seconds is not None:
                deadline = self._calendar.add_working_seconds(item.opened_at, item.remaining_seconds)
            else:
                deadline = self._calendar.add_working_days(item.opened_at, item.working_days or 0)
            deadlines.append(
                DeadlineResult(
                    step=item.step,
                    due_at=deadline.due_at,
                    warning_at=deadline.warning_at,
                    provisional=deadline.provisional,
                )
            )
        return ComputeDeadlinesResult(deadlines=deadlines)

    @activity.defn(name=ActivityName.COMPUTE_REMAINING_TIME)
    async def compute_remaining_time(self, request: RemainingTimeInput) -> RemainingTimeResult:
        seconds = self._calendar.working_seconds_between(request.paused_at, request.due_at)
        return RemainingTimeResult(remaining_seconds=seconds)

    @activity.defn(name=ActivityName.COMPUTE_NEXT_ESCALATION)
    async def compute_next_escalation(self, request: NextEscalationInput) -> NextEscalationResult:
        return NextEscalationResult(at=self._calendar.next_escalation_at(request.after))

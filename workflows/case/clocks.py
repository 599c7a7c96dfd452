"""The statutory clock of one open step (or 回访): the shared clock (workflows/kit/clock.py)
with what a case does at each of its events."""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime

from temporalio import workflow

from workflows.case import notices
from workflows.case.state import CaseState, StepState
from workflows.case.writes import CaseWrites
from workflows.kit.calls import CalendarCalls
from workflows.kit.clock import ClockHooks, StatutoryClock

with workflow.unsafe.imports_passed_through():
    from models.case import DeadlineRequest, EventType, StepStatus

# The clock stands still while the applicant owes materials (补正) or a special procedure runs (中止).
PAUSED_STATUSES = frozenset({StepStatus.AWAITING_SUPPLEMENT, StepStatus.SUSPENDED})


def step_clock(
    state: CaseState,
    step: StepState,
    record: Callable[..., None],
    writes: CaseWrites,
    calendar: CalendarCalls,
    changed: Callable[[], None],
) -> StatutoryClock:
    async def send_escalation(sequence: int, at: datetime) -> None:
        await writes.escalate(notices.escalation(state, step, sequence, at))

    def escalated(sequence: int) -> None:
        record(EventType.SUPERVISION_NOTICE, step=step, due_at=step.clock.due_at, detail={"sequence": sequence})

    hooks = ClockHooks(
        running=lambda: state.clock_running(step),
        paused=lambda: step.status in PAUSED_STATUSES,
        warned=lambda: record(EventType.WARNING, step=step, due_at=step.clock.due_at),
        overdue=lambda: record(EventType.OVERDUE, step=step, due_at=step.clock.due_at),
        send_escalation=send_escalation,
        escalated=escalated,
        next_escalation=calendar.next_escalation,
        changed=changed,
    )
    return StatutoryClock(step.clock, hooks, warns=step.warns)


async def resume_after_supplement(
    state: CaseState, calendar: CalendarCalls, now: datetime, resumed_step: Callable[[StepState], None]
) -> None:
    """补正 received: each step that waited for it gets its clock back and resumes
    (``resumed_step`` records it)."""

    def resumed(step: StepState) -> None:
        state.resume(step)
        resumed_step(step)

    await restart_clocks(state.awaiting_supplement(), calendar, now, resumed)


async def restart_clocks(
    steps: list[StepState], calendar: CalendarCalls, now: datetime, restarted: Callable[[StepState], None]
) -> None:
    """Paused clocks run again (after 补正 or 中止): each gets the working time it had left, or
    the next 督办 if it was already overdue; ``restarted`` follows each step's restart."""
    with_time_left = [step for step in steps if not step.clock.overdue]
    if with_time_left:
        computed = await calendar.deadlines(
            [
                DeadlineRequest(step=s.code, opened_at=now, remaining_seconds=s.clock.remaining_seconds)
                for s in with_time_left
            ]
        )
        by_code = {step.code: step for step in with_time_left}
        for deadline in computed:
            by_code[deadline.step].clock.extend(deadline)
    for step in steps:
        step.clock.resume(await calendar.next_escalation(now) if step.clock.overdue else None)
        restarted(step)

"""The statutory clock of a step: warning, overdue and a 督办 for each further working
day, counted on the real 2026 calendar (test servers started on chosen dates)."""

from __future__ import annotations

from datetime import datetime

from domain.samples import sample_birth_form
from domain.workcalendar import SHANGHAI
from models.case import EventType, StepStatus
from tests.conftest import running_worker, time_skipping_env
from tests.workflows.helpers import (
    CALENDAR,
    case_events,
    claim_and_complete,
    issued,
    new_case,
    notifications,
    settled,
    shanghai,
    sleep_until,
    started_case,
    supervision_notices,
    tasks,
    view,
    wait_accepted,
)

CLOCK_EVENTS = (EventType.WARNING, EventType.OVERDUE, EventType.SUPERVISION_NOTICE)


def clock_events(engine, case_id: str, step: str) -> list[tuple[str, datetime]]:
    """The step's clock events with their minute (timers fire a few milliseconds late)."""
    return [
        (e.type, e.at.astimezone(SHANGHAI).replace(second=0, microsecond=0))
        for e in case_events(engine, case_id, step=step)
        if e.type in CLOCK_EVENTS
    ]


async def test_overdue_step_is_escalated_each_working_day_but_not_over_the_weekend_until_completed(
    settings, engine, task_queue, tmp_path
):
    # Thursday afternoon; one working day means the end of Friday.
    async with time_skipping_env(starting_at=shanghai(2026, 11, 26, 15), workdir=tmp_path) as env:
        form = sample_birth_form()
        case = new_case(channel="online", form=form)
        async with (
            running_worker(env.client, settings, engine, task_queue),
            started_case(env.client, task_queue, case) as handle,
        ):
            accepted = await wait_accepted(handle)
            step = view(accepted, "birth_certificate")
            assert step.due_at == shanghai(2026, 11, 28)
            assert step.warning_at == shanghai(2026, 11, 27)

            await sleep_until(env, shanghai(2026, 11, 26, 23, 59))
            await settled(handle, engine)
            assert clock_events(engine, case.case_id, "birth_certificate") == []

            # 00:00 of the last day: a warning, nothing more.
            await sleep_until(env, shanghai(2026, 11, 27, 0, 1))
            await settled(handle, engine)
            assert clock_events(engine, case.case_id, "birth_certificate") == [
                (EventType.WARNING, shanghai(2026, 11, 27))
            ]
            assert supervision_notices(engine, case.case_id) == []

            # 24:00 of Friday: overdue, and the first 督办 to the hospital.
            await sleep_until(env, shanghai(2026, 11, 28, 0, 1))
            snapshot = await settled(handle, engine)
            assert clock_events(engine, case.case_id, "birth_certificate") == [
                (EventType.WARNING, shanghai(2026, 11, 27)),
                (EventType.OVERDUE, shanghai(2026, 11, 28)),
                (EventType.SUPERVISION_NOTICE, shanghai(2026, 11, 28)),
            ]
            [notice] = supervision_notices(engine, case.case_id, "birth_certificate")
            assert (notice.sequence, notice.origin, notice.department) == (1, "automatic", "hospital")
            assert notice.issued_at == notice.due_at == shanghai(2026, 11, 28)
            assert view(snapshot, "birth_certificate").overdue
            assert tasks(engine, case.case_id)["birth_certificate"].overdue
            to_supervisor = notifications(engine, case.case_id, kind="overdue_escalation")
            assert {(n.step, n.recipient) for n in to_supervisor} == {
                ("birth_certificate", "supervisor"),
                ("vaccination_certificate", "supervisor"),
            }

            # Saturday and Sunday are rest days: no 督办 at their end.
            await sleep_until(env, shanghai(2026, 11, 30, 23, 59))
            snapshot = await settled(handle, engine)
            assert issued(supervision_notices(engine, case.case_id, "birth_certificate")) == [shanghai(2026, 11, 28)]
            # Overdue is not cancelled: the step stays with the department.
            assert view(snapshot, "birth_certificate").status == StepStatus.OPEN
            assert tasks(engine, case.case_id)["birth_certificate"].status == "open"

            # The end of Monday brings the second.
            await sleep_until(env, shanghai(2026, 12, 1, 0, 1))
            await settled(handle, engine)
            assert issued(supervision_notices(engine, case.case_id, "birth_certificate")) == [
                shanghai(2026, 11, 28),
                shanghai(2026, 12, 1),
            ]

            # Completing the step stops its 督办; the step left open keeps getting them.
            await claim_and_complete(handle, "birth_certificate", form)
            await sleep_until(env, shanghai(2026, 12, 3, 0, 1))
            snapshot = await settled(handle, engine)
            assert issued(supervision_notices(engine, case.case_id, "birth_certificate")) == [
                shanghai(2026, 11, 28),
                shanghai(2026, 12, 1),
            ]
            assert view(snapshot, "birth_certificate").escalations == 2
            assert issued(supervision_notices(engine, case.case_id, "vaccination_certificate")) == [
                shanghai(2026, 11, 28),
                shanghai(2026, 12, 1),
                shanghai(2026, 12, 2),
                shanghai(2026, 12, 3),
            ]


async def test_national_day_holidays_do_not_count_and_the_make_up_saturday_does(settings, engine, task_queue, tmp_path):
    async with time_skipping_env(starting_at=shanghai(2026, 9, 30, 15), workdir=tmp_path) as env:
        case = new_case(channel="online")
        async with (
            running_worker(env.client, settings, engine, task_queue),
            started_case(env.client, task_queue, case) as handle,
        ):
            accepted = await wait_accepted(handle)
            step = view(accepted, "birth_certificate")
            # Oct 1-7 are off: the single working day is Thursday Oct 8.
            assert step.due_at == shanghai(2026, 10, 9)
            assert step.warning_at == shanghai(2026, 10, 8)
            assert not step.provisional

            await sleep_until(env, shanghai(2026, 10, 7, 23, 59))
            await settled(handle, engine)
            assert [e for e in case_events(engine, case.case_id) if e.type in CLOCK_EVENTS] == []
            assert supervision_notices(engine, case.case_id) == []

            await sleep_until(env, shanghai(2026, 10, 8, 0, 1))
            await settled(handle, engine)
            assert clock_events(engine, case.case_id, "birth_certificate") == [
                (EventType.WARNING, shanghai(2026, 10, 8))
            ]

            # 督办 at the end of Oct 8, Fri Oct 9, the make-up Sat Oct 10, then not
            # Sunday but Monday Oct 12.
            await sleep_until(env, shanghai(2026, 10, 12, 23, 59))
            await settled(handle, engine)
            assert issued(supervision_notices(engine, case.case_id, "birth_certificate")) == [
                shanghai(2026, 10, 9),
                shanghai(2026, 10, 10),
                shanghai(2026, 10, 11),
            ]
            await sleep_until(env, shanghai(2026, 10, 13, 0, 1))
            await settled(handle, engine)
            notices = supervision_notices(engine, case.case_id, "birth_certificate")
            assert issued(notices) == [
                shanghai(2026, 10, 9),
                shanghai(2026, 10, 10),
                shanghai(2026, 10, 11),
                shanghai(2026, 10, 13),
            ]
            assert [n.sequence for n in notices] == [1, 2, 3, 4]
            assert clock_events(engine, case.case_id, "birth_certificate")[:2] == [
                (EventType.WARNING, shanghai(2026, 10, 8)),
                (EventType.OVERDUE, shanghai(2026, 10, 9)),
            ]


async def test_deadlines_in_a_year_without_a_holiday_notice_are_provisional(settings, engine, task_queue, tmp_path):
    # chinesecalendar knows up to 2026 and the shipped notice file is empty.
    async with time_skipping_env(starting_at=shanghai(2031, 3, 3, 10), workdir=tmp_path) as env:
        case = new_case(channel="online")
        async with (
            running_worker(env.client, settings, engine, task_queue),
            started_case(env.client, task_queue, case) as handle,
        ):
            accepted = await wait_accepted(handle)
            await settled(handle, engine)

    for code in ("birth_certificate", "vaccination_certificate"):
        step = view(accepted, code)
        assert step.provisional is True
        assert step.opened_at is not None and step.opened_at.year == 2031
        # Weekends-only fallback: Monday opened, Tuesday is the working day.
        assert step.due_at == shanghai(2031, 3, 5)
        assert step.due_at == CALENDAR.add_working_days(step.opened_at, 1).due_at
        assert tasks(engine, case.case_id)[code].provisional is True
    assert accepted.acceptance_notice is not None
    assert all(s.provisional for s in accepted.acceptance_notice.steps if s.status == StepStatus.OPEN)

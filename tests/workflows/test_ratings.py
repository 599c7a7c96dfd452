"""好差评 on the time-skipping server: the applicant rates a delivered case within 5 working
days; a low rating opens a 回访 for the supervisors on the same statutory clock (it goes
overdue and is escalated like any step); the archive is written with the ratings."""

from __future__ import annotations

import asyncio
from datetime import timedelta
from pathlib import Path

from documents.archive import check_package, read_part
from domain.samples import sample_birth_form
from domain.workcalendar import WorkingCalendar, default_calendar_file
from infra.signing import archive_keys
from models.case import Actor, ClaimInput, RateInput
from tests.conftest import running_worker, time_skipping_env
from tests.workflows.helpers import (
    applicant,
    claim,
    claim_and_complete,
    complete,
    new_case,
    rejection,
    shanghai,
    sleep_until,
    started_case,
    supervision_notices,
    tasks,
    update,
    wait_accepted,
)
from workflows.case.workflow import CaseWorkflow

ONLINE_ORDER = [
    "birth_certificate",
    "vaccination_certificate",
    "hukou_registration",
    "medical_insurance_enrollment",
    "maternity_benefit_review",
    "social_security_card",
]
SUPERVISOR = Actor(username="supervisor", role="supervisor", unit="supervision")
CALENDAR = WorkingCalendar.load(default_calendar_file())


async def test_low_rating_opens_a_follow_up_that_goes_overdue_and_the_archive_keeps_the_ratings(
    settings, engine, task_queue, tmp_path: Path
) -> None:
    # Thu 2026-11-26 10:00: the case is delivered the same day.
    async with time_skipping_env(starting_at=shanghai(2026, 11, 26, 10), workdir=tmp_path) as env:
        form = sample_birth_form()
        async with (
            running_worker(env.client, settings, engine, task_queue),
            started_case(env.client, task_queue, new_case(form=form)) as handle,
        ):
            await wait_accepted(handle)
            early = await rejection(update(handle, CaseWorkflow.rate, RateInput(actor=applicant(), score=5)))
            assert early.type == "conflict"  # not delivered yet
            for step in ONLINE_ORDER:
                await claim_and_complete(handle, step, form)

            stranger = await rejection(
                update(handle, CaseWorkflow.rate, RateInput(actor=applicant("applicant2"), score=1))
            )
            assert stranger.type == "forbidden"
            not_done = await rejection(
                update(handle, CaseWorkflow.rate, RateInput(actor=applicant(), score=3, step="delivery"))
            )
            assert not_done.type == "validation_error"

            rating = await update(handle, CaseWorkflow.rate, RateInput(actor=applicant(), score=2, comment="等待太久"))
            assert rating.score == 2 and rating.step is None
            again = await rejection(update(handle, CaseWorkflow.rate, RateInput(actor=applicant(), score=4)))
            assert again.type == "conflict"
            step_rating = await update(
                handle, CaseWorkflow.rate, RateInput(actor=applicant(), score=5, step="hukou_registration")
            )
            assert step_rating.department == "police"

            snapshot = await handle.query(CaseWorkflow.snapshot)
            follow_up = next(s for s in snapshot.steps if s.step == "follow_up_1")
            assert (follow_up.department, follow_up.status, follow_up.time_limit_working_days) == (
                "supervision",
                "open",
                1,
            )
            assert follow_up.opened_at is not None
            assert follow_up.due_at == CALENDAR.add_working_days(follow_up.opened_at, 1).due_at
            assert tasks(engine, snapshot.case_id)["follow_up_1"].department == "supervision"

            # Nobody follows up: it goes overdue at 24:00 Fri and is escalated to 督办.
            await sleep_until(env, shanghai(2026, 11, 28, 0, 5))
            notices = supervision_notices(engine, snapshot.case_id, "follow_up_1")
            assert [(n.department, n.sequence) for n in notices] == [("supervision", 1)]

            officer = Actor(username="police_officer", role="officer", unit="police")
            forbidden = await rejection(
                update(handle, CaseWorkflow.claim, ClaimInput(actor=officer, step="follow_up_1"))
            )
            assert forbidden.type == "forbidden"
            await claim(handle, "follow_up_1", SUPERVISOR)
            done = await complete(
                handle, "follow_up_1", SUPERVISOR, form, result={"outcome_zh": "已电话回访，致歉并说明原因"}
            )
            assert done.status == "done" and done.overdue

            # The rating period ends 5 working days after delivery; then the case closes
            # and its archive holds both ratings.
            await env.sleep(timedelta(days=8))
            result = await asyncio.wait_for(handle.result(), 30)
            assert not result.rating_open
            assert [(r.step, r.score) for r in result.ratings] == [(None, 2), ("hukou_registration", 5)]
            keys = archive_keys(settings)
            check = check_package(settings.archive_dir, snapshot.case_id, keys)
            assert check.complete and check.manifest is not None
            (ratings,) = [part for part in check.manifest.parts if part.name == "ratings.json"]
            folder = settings.archive_dir / snapshot.case_id
            assert b'"score": 2' in read_part(folder, check.manifest, ratings, keys)

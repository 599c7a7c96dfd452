"""A case runs through its steps in dependency order, on each channel."""

from __future__ import annotations

from datetime import datetime, time, timedelta

from domain.samples import sample_birth_form
from domain.workcalendar import SHANGHAI
from models.case import CaseStatus, EventType, StepStatus, StepView
from tests.conftest import running_worker
from tests.workflows.helpers import (
    BIRTH,
    CALENDAR,
    HOSPITAL_ORDER,
    ONLINE_ORDER,
    case_events,
    case_record,
    claim,
    claim_and_complete,
    complete,
    eventually,
    finished,
    new_case,
    notifications,
    officer,
    settled,
    started_case,
    statuses,
    tasks,
    view,
    wait_accepted,
)
from workflows.case.workflow import CaseWorkflow

HOSPITAL_STEPS = ("birth_certificate", "vaccination_certificate")


def assert_statutory_deadline(step: StepView, working_days: int) -> None:
    """The step's clock runs ``working_days`` from its opening, per the working-day calendar."""
    assert step.opened_at is not None
    assert step.time_limit_working_days == working_days
    expected = CALENDAR.add_working_days(step.opened_at, working_days)
    assert step.due_at == expected.due_at
    assert step.warning_at == expected.warning_at
    assert step.provisional == expected.provisional


async def test_hospital_channel_case_completes_when_every_department_and_then_delivery_finish(
    env, settings, engine, task_queue
):
    form = sample_birth_form()
    hospital_clerk = officer("hospital", role="clerk")
    case = new_case(channel="hospital", form=form, submitted_by=hospital_clerk)
    async with (
        running_worker(env.client, settings, engine, task_queue),
        started_case(env.client, task_queue, case) as handle,
    ):
        accepted = await wait_accepted(handle)
        assert accepted.status == CaseStatus.ACCEPTED
        assert [s.step for s in accepted.steps] == HOSPITAL_ORDER
        assert accepted.acceptance_notice is not None
        assert accepted.acceptance_notice.accepting_unit == "hospital"
        assert accepted.acceptance_notice.accepting_staff == hospital_clerk.username

        # On the hospital channel the hospital's own steps are due the same working day.
        for code in HOSPITAL_STEPS:
            step = view(accepted, code)
            assert step.status == StepStatus.OPEN
            assert_statutory_deadline(step, 0)
            assert step.warning_at is None
            assert step.opened_at is not None
            opened_day = step.opened_at.astimezone(SHANGHAI).date()
            if CALENDAR.is_working_day(opened_day):
                # 24:00 of the opening day, written as 00:00 of the next one.
                assert step.due_at == datetime.combine(opened_day + timedelta(days=1), time(0), tzinfo=SHANGHAI)

        for code in HOSPITAL_ORDER[:-1]:
            await claim_and_complete(handle, code, form, channel="hospital")
            snapshot = await handle.query(CaseWorkflow.snapshot)
            if code != "social_security_card":
                assert view(snapshot, "delivery").status == StepStatus.PENDING
        for code in HOSPITAL_ORDER[2:]:
            assert_statutory_deadline(view(snapshot, code), 1)

        # Delivery belongs to the accepting unit, and its clerks may act on it.
        delivery = view(snapshot, "delivery")
        assert delivery.status == StepStatus.OPEN
        assert delivery.department == "hospital"
        await claim(handle, "delivery", hospital_clerk)
        done = await complete(handle, "delivery", hospital_clerk, form)
        assert done.status == StepStatus.DONE

        result = await finished(handle)

    assert result.status == CaseStatus.COMPLETED
    assert all(step.status == StepStatus.DONE for step in result.steps)
    assert {step.step: step.assignee for step in result.steps} == {
        **{code: officer(BIRTH.step(code).department_for("hospital")).username for code in HOSPITAL_ORDER[:-1]},
        "delivery": hospital_clerk.username,
    }

    assert case_record(engine, case.case_id).status == CaseStatus.COMPLETED
    rows = tasks(engine, case.case_id)
    assert sorted(rows) == sorted(HOSPITAL_ORDER)
    assert {code: row.status for code, row in rows.items()} == dict.fromkeys(HOSPITAL_ORDER, "done")
    assert [e.step for e in case_events(engine, case.case_id, type=EventType.COMPLETED)] == HOSPITAL_ORDER
    assert [e.step for e in case_events(engine, case.case_id, type=EventType.DELIVERED)] == ["delivery"]
    assert len(case_events(engine, case.case_id, type=EventType.CASE_COMPLETED)) == 1
    # The window hands everything over at once: no per-step delivery notices.
    assert notifications(engine, case.case_id, kind="result_delivery") == []
    assert len(notifications(engine, case.case_id, kind="case_completed")) == 1


async def test_online_channel_has_no_delivery_step_and_notifies_each_result_and_the_premium(
    env, settings, engine, task_queue
):
    form = sample_birth_form(delivery="mail")
    case = new_case(channel="online", form=form)
    async with (
        running_worker(env.client, settings, engine, task_queue),
        started_case(env.client, task_queue, case) as handle,
    ):
        accepted = await wait_accepted(handle)
        assert [s.step for s in accepted.steps] == ONLINE_ORDER
        # Online, the hospital's steps get the default single working day.
        for code in ("birth_certificate", "vaccination_certificate"):
            assert_statutory_deadline(view(accepted, code), 1)

        for code in ONLINE_ORDER[:3]:
            await claim_and_complete(handle, code, form)
        await settled(handle, engine)
        await eventually(lambda: len(notifications(engine, case.case_id, kind="result_delivery")) == 3)
        assert notifications(engine, case.case_id, kind="premium_payment") == []

        for code in ONLINE_ORDER[3:]:
            await claim_and_complete(handle, code, form)
        result = await finished(handle)

    assert result.status == CaseStatus.COMPLETED
    delivered = notifications(engine, case.case_id, kind="result_delivery")
    assert sorted(str(n.step) for n in delivered) == sorted(ONLINE_ORDER)
    assert all("邮寄送达" in n.message_zh and n.recipient == "applicant1" for n in delivered)
    premium = notifications(engine, case.case_id, kind="premium_payment")
    assert [(n.step, n.recipient) for n in premium] == [("medical_insurance_enrollment", "applicant1")]
    assert len(notifications(engine, case.case_id, kind="case_completed")) == 1
    assert sorted(tasks(engine, case.case_id)) == sorted(ONLINE_ORDER)
    assert case_events(engine, case.case_id, type=EventType.DELIVERED) == []


async def test_independent_steps_open_together_and_each_waits_only_for_its_own_dependencies(
    env, settings, engine, task_queue
):
    form = sample_birth_form()
    case = new_case(channel="online", form=form)
    async with (
        running_worker(env.client, settings, engine, task_queue),
        started_case(env.client, task_queue, case) as handle,
    ):
        accepted = await wait_accepted(handle)
        assert statuses(accepted) == {
            "birth_certificate": "open",
            "vaccination_certificate": "open",
            "hukou_registration": "pending",
            "medical_insurance_enrollment": "pending",
            "maternity_benefit_review": "pending",
            "social_security_card": "pending",
        }
        assert view(accepted, "birth_certificate").opened_at == view(accepted, "vaccination_certificate").opened_at

        # Hukou waits for the birth certificate only, not the vaccination certificate.
        await claim_and_complete(handle, "birth_certificate", form)
        snapshot = await handle.query(CaseWorkflow.snapshot)
        assert view(snapshot, "hukou_registration").status == StepStatus.OPEN
        assert view(snapshot, "vaccination_certificate").status == StepStatus.OPEN

        await claim_and_complete(handle, "hukou_registration", form)
        snapshot = await handle.query(CaseWorkflow.snapshot)
        enrollment = view(snapshot, "medical_insurance_enrollment")
        review = view(snapshot, "maternity_benefit_review")
        assert enrollment.status == review.status == StepStatus.OPEN
        assert enrollment.opened_at == review.opened_at is not None
        assert view(snapshot, "social_security_card").status == StepStatus.PENDING

        # The review stays open; the card needs only the enrolment.
        await claim(handle, "maternity_benefit_review", officer("medical_security", 2))
        await claim_and_complete(handle, "medical_insurance_enrollment", form)
        snapshot = await handle.query(CaseWorkflow.snapshot)
        assert view(snapshot, "maternity_benefit_review").status == StepStatus.CLAIMED
        assert view(snapshot, "social_security_card").status == StepStatus.OPEN
        assert snapshot.status == CaseStatus.IN_PROGRESS

        opened = [e.step for e in case_events(engine, case.case_id, type=EventType.OPENED)]
        assert opened == [
            "birth_certificate",
            "vaccination_certificate",
            "hukou_registration",
            "medical_insurance_enrollment",
            "maternity_benefit_review",
            "social_security_card",
        ]

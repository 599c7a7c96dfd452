"""Materials: what data sharing fetches, what the applicant still owes, and 补正
(returning a step for supplementary materials), which stops its clock."""

from __future__ import annotations

import asyncio
import threading
from datetime import date, timedelta

from domain.samples import MOTHER_WITHOUT_MARRIAGE_RECORD_ID, sample_birth_form
from domain.workcalendar import SHANGHAI
from models.case import CaseStatus, EventType, ReturnStepInput, StepStatus, SupplementInput
from tests.conftest import running_worker, time_skipping_env
from tests.workflows.helpers import (
    CALENDAR,
    ONLINE_ORDER,
    applicant,
    case_events,
    case_record,
    claim,
    eventually,
    new_case,
    notifications,
    officer,
    rejected_fields,
    rejection,
    settled,
    shanghai,
    sleep_until,
    started_case,
    statuses,
    supervision_notices,
    tasks,
    update,
    view,
    wait_accepted,
)
from workflows.case.workflow import CaseWorkflow
from workflows.kit.retry import DATA_SHARING_RETRY

DATA_SHARING_MATERIALS = ["mother_id_card", "father_id_card", "father_hukou_booklet", "marriage_certificate"]


async def test_return_for_supplement_stops_the_clock_and_supplement_resumes_it_with_the_remaining_time(
    settings, engine, task_queue, tmp_path
):
    hospital = officer("hospital")
    case = new_case(channel="online")
    # Thursday 10:00: the single working day runs out at 24:00 on Friday.
    async with (
        time_skipping_env(starting_at=shanghai(2026, 11, 26, 10), workdir=tmp_path) as env,
        running_worker(env.client, settings, engine, task_queue),
        started_case(env.client, task_queue, case) as handle,
    ):
        await wait_accepted(handle)
        claimed = await claim(handle, "birth_certificate", hospital)
        old_due = claimed.due_at
        assert old_due == shanghai(2026, 11, 28)

        returned = await update(
            handle,
            CaseWorkflow.return_for_supplement,
            ReturnStepInput(
                actor=hospital,
                step="birth_certificate",
                missing=["father_id_card_copy"],
                reason="父亲身份证复印件不清晰",
            ),
        )
        assert returned.status == StepStatus.AWAITING_SUPPLEMENT
        assert returned.missing == ["father_id_card_copy"]
        snapshot = await handle.query(CaseWorkflow.snapshot)
        assert snapshot.status == CaseStatus.AWAITING_SUPPLEMENT
        assert snapshot.missing_materials == ["father_id_card_copy"]
        assert case_record(engine, case.case_id).status == CaseStatus.AWAITING_SUPPLEMENT
        [requested] = await eventually(lambda: notifications(engine, case.case_id, kind="supplement_requested"))
        assert "father_id_card_copy" in requested.message_zh and requested.step == "birth_certificate"
        [returned_event] = case_events(engine, case.case_id, step="birth_certificate", type=EventType.RETURNED)
        paused_at = returned_event.at

        # A week goes by, far past the old deadline: the paused step is never warned,
        # overdue or escalated, while the step left open is.
        await sleep_until(env, shanghai(2026, 12, 4, 9))
        snapshot = await settled(handle, engine)
        paused = view(snapshot, "birth_certificate")
        assert paused.status == StepStatus.AWAITING_SUPPLEMENT
        assert (paused.overdue, paused.escalations, paused.due_at) == (False, 0, old_due)
        clock_types = {EventType.WARNING, EventType.OVERDUE, EventType.SUPERVISION_NOTICE}
        assert [e for e in case_events(engine, case.case_id, step="birth_certificate") if e.type in clock_types] == []
        assert supervision_notices(engine, case.case_id, "birth_certificate") == []
        assert view(snapshot, "vaccination_certificate").overdue
        assert supervision_notices(engine, case.case_id, "vaccination_certificate")

        incomplete = await rejection(
            update(
                handle,
                CaseWorkflow.supplement,
                SupplementInput(actor=applicant(), materials={"something_else": "UPLOAD-1"}),
            )
        )
        assert incomplete.type == "validation_error"
        assert set(rejected_fields(incomplete)) == {"materials.father_id_card_copy"}

        # Friday 09:00: the clock resumes with what was left (14 h of Thursday and
        # all of Friday): 15 h on Friday, then the weekend, then 23 h of Monday.
        resumed = await update(
            handle,
            CaseWorkflow.supplement,
            SupplementInput(actor=applicant(), materials={"father_id_card_copy": "UPLOAD-IDC-0002"}),
        )
        step = view(resumed, "birth_certificate")
        assert step.status == StepStatus.CLAIMED
        assert step.assignee == hospital.username
        assert step.missing == []
        assert resumed.missing_materials == []
        assert resumed.status == CaseStatus.IN_PROGRESS
        [resumed_event] = [e for e in case_events(engine, case.case_id, type=EventType.SUPPLEMENTED) if e.step is None]
        remaining = CALENDAR.working_seconds_between(paused_at, old_due)
        expected = CALENDAR.add_working_seconds(resumed_event.at, remaining)
        assert step.due_at == expected.due_at
        assert step.warning_at == expected.warning_at == shanghai(2026, 12, 7)
        assert shanghai(2026, 12, 7, 22, 59) < step.due_at <= shanghai(2026, 12, 7, 23)
        assert tasks(engine, case.case_id)["birth_certificate"].due_at == expected.due_at

        nothing_owed = await rejection(
            update(
                handle,
                CaseWorkflow.supplement,
                SupplementInput(actor=applicant(), materials={"father_id_card_copy": "UPLOAD-IDC-0002"}),
            )
        )
        assert nothing_owed.type == "conflict"

        # The clock runs again towards the new deadline.
        await sleep_until(env, shanghai(2026, 12, 7, 22, 58))
        snapshot = await settled(handle, engine)
        assert not view(snapshot, "birth_certificate").overdue
        clock = [e for e in case_events(engine, case.case_id, step="birth_certificate") if e.type in clock_types]
        # Warned at the start of the new last day, Monday.
        assert [(e.type, e.at.astimezone(SHANGHAI).date()) for e in clock] == [(EventType.WARNING, date(2026, 12, 7))]
        await sleep_until(env, shanghai(2026, 12, 7, 23, 1))
        snapshot = await settled(handle, engine)
        assert view(snapshot, "birth_certificate").overdue
        [first_notice] = supervision_notices(engine, case.case_id, "birth_certificate")
        assert first_notice.due_at == first_notice.issued_at == expected.due_at


async def test_data_sharing_supplies_the_id_cards_hukou_booklet_and_marriage_certificate(
    env, settings, engine, task_queue
):
    case = new_case(channel="online", form=sample_birth_form())
    async with (
        running_worker(env.client, settings, engine, task_queue),
        started_case(env.client, task_queue, case) as handle,
    ):
        accepted = await wait_accepted(handle)

    notice = accepted.acceptance_notice
    assert notice is not None
    assert {(m.code, m.reference) for m in notice.materials_shared} == {
        ("mother_id_card", "DS-IDC-0001"),
        ("father_id_card", "DS-IDC-0002"),
        ("father_hukou_booklet", "DS-HKB-0002"),
        ("marriage_certificate", "DS-MAR-0001"),
    }
    assert [m.code for m in notice.materials_received] == ["registration_form"]
    assert notice.materials_to_supply == []
    assert accepted.status == CaseStatus.ACCEPTED
    assert accepted.missing_materials == []
    record = case_record(engine, case.case_id)
    assert record.snapshot["acceptance_notice"]["materials_to_supply"] == []


async def test_a_marriage_record_missing_from_data_sharing_is_asked_for_before_any_step_opens(
    env, settings, engine, task_queue
):
    form = sample_birth_form(mother_id=MOTHER_WITHOUT_MARRIAGE_RECORD_ID)
    case = new_case(channel="online", form=form)
    async with (
        running_worker(env.client, settings, engine, task_queue),
        started_case(env.client, task_queue, case) as handle,
    ):
        accepted = await wait_accepted(handle)
        assert accepted.status == CaseStatus.AWAITING_SUPPLEMENT
        notice = accepted.acceptance_notice
        assert notice is not None
        assert [m.code for m in notice.materials_to_supply] == ["marriage_certificate"]
        assert "marriage_certificate" not in {m.code for m in notice.materials_shared}
        assert accepted.missing_materials == ["marriage_certificate"]
        assert set(statuses(accepted).values()) == {"pending"}
        assert tasks(engine, case.case_id) == {}
        assert case_record(engine, case.case_id).status == CaseStatus.AWAITING_SUPPLEMENT

        # Nothing can be acted on before the material arrives.
        blocked = await rejection(claim(handle, "birth_certificate", officer("hospital")))
        assert blocked.type == "conflict"

        supplied = await update(
            handle,
            CaseWorkflow.supplement,
            SupplementInput(actor=applicant(), materials={"marriage_certificate": "UPLOAD-MAR-0009"}),
        )
        assert supplied.status == CaseStatus.ACCEPTED
        assert supplied.missing_materials == []
        assert statuses(supplied) == {
            "birth_certificate": "open",
            "vaccination_certificate": "open",
            **dict.fromkeys(ONLINE_ORDER[2:], "pending"),
        }
        opened = view(supplied, "birth_certificate").opened_at
        assert opened is not None and opened >= accepted.submitted_at
        assert sorted(tasks(engine, case.case_id)) == ["birth_certificate", "vaccination_certificate"]


class UnavailableGateway:
    """A data-sharing platform that never answers; counts the attempts."""

    def __init__(self) -> None:
        self.calls = 0
        self._lock = threading.Lock()

    def lookup(self, document: str, id_number: str) -> str | None:
        with self._lock:
            self.calls += 1
        raise ConnectionError("data-sharing platform unreachable")


async def test_an_unavailable_data_sharing_platform_is_retried_then_the_materials_are_asked_for(
    settings, engine, task_queue
):
    gateway = UnavailableGateway()
    case = new_case(channel="online")
    # Its own server: skipping the backoff must not wait on other tests' cases.
    async with (
        time_skipping_env() as env,
        running_worker(env.client, settings, engine, task_queue, gateway=gateway),
        started_case(env.client, task_queue, case) as handle,
    ):
        accepting = asyncio.create_task(wait_accepted(handle))
        # Skip the retry backoff (1+2+4+8+16 s) instead of waiting it out.
        for _ in range(20):
            if accepting.done():
                break
            await env.sleep(timedelta(seconds=30))
            await asyncio.wait([accepting], timeout=0.2)
        accepted = await asyncio.wait_for(accepting, timeout=10)

        assert gateway.calls >= 2
        assert gateway.calls == DATA_SHARING_RETRY.maximum_attempts
        assert accepted.status == CaseStatus.AWAITING_SUPPLEMENT
        notice = accepted.acceptance_notice
        assert notice is not None
        assert [m.code for m in notice.materials_to_supply] == DATA_SHARING_MATERIALS
        assert notice.materials_shared == []
        assert set(statuses(accepted).values()) == {"pending"}

        # The case goes on once the applicant uploads them.
        supplied = await update(
            handle,
            CaseWorkflow.supplement,
            SupplementInput(actor=applicant(), materials={code: f"UPLOAD-{code}" for code in DATA_SHARING_MATERIALS}),
        )
        assert view(supplied, "birth_certificate").status == StepStatus.OPEN
        assert view(supplied, "vaccination_certificate").status == StepStatus.OPEN

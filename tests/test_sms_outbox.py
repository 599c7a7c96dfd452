"""SMS notices: a case change queues one outbox row per notice to the applicant, in its own
transaction, and delivery sends each row once, retrying a refused one after its backoff."""

from __future__ import annotations

import asyncio
import re
from collections import Counter
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from sqlalchemy import Engine, delete, select, update
from sqlmodel import Session, col
from temporalio.client import ScheduleAlreadyRunningError

from activities.case_changes import CaseChangeActivities
from activities.notice_delivery import (
    BACKOFF_CAP,
    MAX_ATTEMPTS,
    NoticeDeliveryActivities,
    backoff,
    ensure_delivery_schedule,
    queue_applicant_sms,
    sms_text,
)
from domain.samples import MOTHER_ID, sample_birth_form
from domain.workcalendar import WorkingCalendar, default_calendar_file
from infra.sms import SmsNotSent
from models.case import CaseChanges, CaseSnapshot, CaseStatus, EscalationInput, NotificationInput
from models.notices import DeliverNoticesInput
from models.tables import NotificationRecord, SmsOutboxRecord
from workflows.notice_delivery import DELIVERY_SCHEDULE_ID

CALENDAR = WorkingCalendar.load(default_calendar_file())
AT = datetime(2026, 12, 3, 9, 0, tzinfo=UTC)
CASE_NO = "2026-330000-000123"
FULL_ID_NUMBER = re.compile(r"(?<![0-9])[0-9]{17}[0-9Xx](?![0-9])")


def _snapshot(revision: int, case_id: str = "ot-sms-1", case_no: str = CASE_NO) -> CaseSnapshot:
    return CaseSnapshot(
        case_id=case_id,
        thing="birth",
        thing_zh="出生一件事",
        catalogue_version=1,
        channel="online",
        status=CaseStatus.AWAITING_SUPPLEMENT,
        status_zh="待补正",
        submitted_at=AT,
        owner="applicant1",
        submitted_by="applicant1",
        accepting_unit=None,
        steps=[],
        revision=revision,
        case_no=case_no,
    )


def _notice(case_id: str, number: int, kind: str, recipient: str | None = "applicant1") -> NotificationInput:
    return NotificationInput(
        case_id=case_id,
        kind=kind,
        recipient=recipient,
        # An officer's reason may quote a person's number: it must not reach the SMS.
        message_zh=f"补齐补正通知：请补交出生医学证明。原因：身份证号{MOTHER_ID}与证明不符",
        at=AT,
        notification_id=f"{case_id}:n{number}",
    )


def _first_change(form: dict[str, Any] | None, case_id: str = "ot-sms-1", case_no: str = CASE_NO) -> CaseChanges:
    """The case's first write (with its form): a supplement notice to the applicant and a
    word to the supervisors about an overdue step, which is no SMS."""
    return CaseChanges(
        snapshot=_snapshot(1, case_id, case_no),
        events=[],
        notifications=[_notice(case_id, 1, "supplement_requested")],
        escalations=[
            EscalationInput(
                case_id=case_id, step="birth_certificate", department="hospital", sequence=1, due_at=AT, at=AT
            )
        ],
        form=form,
    )


def _outbox(engine: Engine) -> list[SmsOutboxRecord]:
    with Session(engine) as session:
        return list(session.execute(select(SmsOutboxRecord).order_by(col(SmsOutboxRecord.id))).scalars())


def test_a_notice_to_the_applicant_queues_one_sms_to_the_forms_phone_with_the_case_number(engine: Engine) -> None:
    writer = CaseChangeActivities(engine, CALENDAR)
    changes = _first_change(sample_birth_form())
    writer.write_case_changes(changes)
    writer.write_case_changes(changes)  # the local activity's retry (its revision is stored)
    for _ in range(2):  # queued again regardless: the notification's id keeps it one row
        with Session(engine) as session:
            queue_applicant_sms(session, changes, datetime.now(UTC))
            session.commit()

    accepted, row = _outbox(engine)
    # The first write is the acceptance: its SMS comes with it.
    assert (accepted.id, accepted.kind, accepted.phone) == ("ot-sms-1:accepted", "case_accepted", "13800000000")
    assert "已受理" in accepted.text and CASE_NO in accepted.text
    assert (row.id, row.case_id, row.phone, row.kind) == (
        "ot-sms-1:n1",
        "ot-sms-1",
        "13800000000",
        "supplement_requested",
    )
    assert CASE_NO in row.text and "补正" in row.text
    assert MOTHER_ID not in row.text and not FULL_ID_NUMBER.search(row.text)
    assert (row.status, row.attempts, row.last_error, row.sent_at) == ("pending", 0, None, None)
    assert row.next_attempt_at <= datetime.now(UTC)
    with Session(engine) as session:  # the supervisors' word was written, in the same change
        assert session.execute(select(col(NotificationRecord.recipient))).scalars().all().count("supervisor") == 1


def test_a_later_change_finds_the_phone_on_the_case_row_and_only_applicant_notices_are_texted(engine: Engine) -> None:
    writer = CaseChangeActivities(engine, CALENDAR)
    writer.write_case_changes(_first_change(sample_birth_form()))
    later = CaseChanges(
        snapshot=_snapshot(2).model_copy(update={"status": CaseStatus.COMPLETED}),
        events=[],
        notifications=[
            _notice("ot-sms-1", 2, "case_completed"),
            _notice("ot-sms-1", 3, "urge", recipient="police_officer1"),
        ],
    )  # no form: only the first write carries it
    writer.write_case_changes(later)

    rows = _outbox(engine)
    assert [(row.id, row.phone) for row in rows] == [
        ("ot-sms-1:accepted", "13800000000"),
        ("ot-sms-1:n1", "13800000000"),
        ("ot-sms-1:n2", "13800000000"),
    ]
    assert "已全部办结" in rows[2].text and CASE_NO in rows[2].text


def test_a_case_without_a_phone_on_its_form_gets_no_sms(engine: Engine) -> None:
    form = sample_birth_form()
    del form["applicant"]["phone"]
    CaseChangeActivities(engine, CALENDAR).write_case_changes(_first_change(form))
    assert _outbox(engine) == []


# --- delivery ------------------------------------------------------------------------------------


class Gateway:
    """Refuses the first ``refusals`` sends, then takes every one; optionally slow."""

    def __init__(self, refusals: int = 0, delay: float = 0.0) -> None:
        self.refusals = refusals
        self.delay = delay
        self.sent: list[tuple[str, str]] = []

    async def send(self, phone: str, text: str) -> None:
        await asyncio.sleep(self.delay)
        if self.refusals > 0:
            self.refusals -= 1
            raise SmsNotSent("SMS gateway answered 503")
        self.sent.append((phone, text))


class Clock:
    def __init__(self, now: datetime) -> None:
        self.now = now

    def __call__(self) -> datetime:
        return self.now


def _queue(engine: Engine, cases: int) -> None:
    writer = CaseChangeActivities(engine, CALENDAR)
    for number in range(cases):
        form = sample_birth_form()
        form["applicant"]["phone"] = f"1390000{number:04d}"
        writer.write_case_changes(_first_change(form, f"ot-sms-{number}", f"2026-330000-{number:06d}"))
    # The acceptance SMS has gone: each case has its supplement notice left to send.
    with Session(engine) as session:
        session.execute(delete(SmsOutboxRecord).where(col(SmsOutboxRecord.kind) == "case_accepted"))
        session.commit()


async def test_a_refused_sms_waits_its_backoff_and_is_sent_by_a_later_round(engine: Engine) -> None:
    _queue(engine, 1)
    clock = Clock(datetime.now(UTC))
    gateway = Gateway(refusals=1)
    delivery = NoticeDeliveryActivities(engine, gateway, clock)

    first = await delivery.deliver_pending_sms(DeliverNoticesInput())
    assert (first.sent, first.retrying, first.failed) == (0, 1, 0)
    [row] = _outbox(engine)
    assert (row.status, row.attempts) == ("pending", 1)
    assert row.last_error is not None and "503" in row.last_error
    assert row.next_attempt_at == clock.now + backoff(1)

    # Before the backoff ends nothing is due; after it the row goes.
    assert (await delivery.deliver_pending_sms(DeliverNoticesInput())).sent == 0
    clock.now += backoff(1) + timedelta(seconds=1)
    second = await delivery.deliver_pending_sms(DeliverNoticesInput())
    assert (second.sent, second.retrying) == (1, 0)
    [row] = _outbox(engine)
    assert (row.status, row.attempts, row.last_error, row.sent_at) == ("sent", 2, None, clock.now)
    assert gateway.sent == [("13900000000", row.text)]
    assert (await delivery.deliver_pending_sms(DeliverNoticesInput())).sent == 0  # sent once


async def test_two_rounds_at_once_send_each_sms_once(engine: Engine) -> None:
    _queue(engine, 6)
    gateway = Gateway(delay=0.1)  # slow enough that the rounds overlap
    rounds = [NoticeDeliveryActivities(engine, gateway) for _ in range(2)]

    results = await asyncio.gather(*(r.deliver_pending_sms(DeliverNoticesInput()) for r in rounds))

    assert sum(result.sent for result in results) == 6
    assert all(result.sent > 0 for result in results)  # both rounds really ran side by side
    assert Counter(phone for phone, _ in gateway.sent) == {f"1390000{n:04d}": 1 for n in range(6)}
    assert {row.status for row in _outbox(engine)} == {"sent"}


async def test_after_the_last_attempt_an_sms_is_failed_and_kept(engine: Engine) -> None:
    _queue(engine, 1)
    with Session(engine) as session:
        session.execute(update(SmsOutboxRecord).values(attempts=MAX_ATTEMPTS - 1))
        session.commit()
    clock = Clock(datetime.now(UTC))
    delivery = NoticeDeliveryActivities(engine, Gateway(refusals=1), clock)

    result = await delivery.deliver_pending_sms(DeliverNoticesInput())

    assert (result.sent, result.retrying, result.failed) == (0, 0, 1)
    [row] = _outbox(engine)
    assert (row.status, row.attempts) == ("failed", MAX_ATTEMPTS)
    clock.now += BACKOFF_CAP * 2
    assert (await delivery.deliver_pending_sms(DeliverNoticesInput())).sent == 0
    assert len(_outbox(engine)) == 1


def test_backoff_grows_from_thirty_seconds_to_at_most_thirty_minutes() -> None:
    assert [backoff(n) for n in (1, 2, 3)] == [timedelta(seconds=30), timedelta(seconds=60), timedelta(seconds=120)]
    assert backoff(7) == backoff(MAX_ATTEMPTS) == BACKOFF_CAP == timedelta(minutes=30)


async def test_without_a_gateway_nothing_is_taken_from_the_outbox(engine: Engine) -> None:
    _queue(engine, 1)
    result = await NoticeDeliveryActivities(engine, None).deliver_pending_sms(DeliverNoticesInput())
    assert (result.sent, result.retrying, result.failed) == (0, 0, 0)
    [row] = _outbox(engine)
    assert (row.status, row.attempts) == ("pending", 0)


class ScheduleClient:
    """Answers create_schedule as Temporal does: the second time, the schedule exists."""

    def __init__(self) -> None:
        self.created: dict[str, Any] = {}

    async def create_schedule(self, schedule_id: str, schedule: Any) -> None:
        if schedule_id in self.created:
            raise ScheduleAlreadyRunningError()
        self.created[schedule_id] = schedule


async def test_the_worker_creates_the_minutely_schedule_once() -> None:
    client = ScheduleClient()
    assert await ensure_delivery_schedule(client, "onething-cases") is True  # type: ignore[arg-type]
    assert await ensure_delivery_schedule(client, "onething-cases") is False  # type: ignore[arg-type]
    schedule = client.created[DELIVERY_SCHEDULE_ID]
    assert schedule.action.workflow == "NoticeDeliveryWorkflow"
    assert schedule.action.task_queue == "onething-cases"
    assert [interval.every for interval in schedule.spec.intervals] == [timedelta(minutes=1)]


@pytest.mark.parametrize("kind", ["supplement_requested", "case_completed", "result_delivery", "a_new_kind"])
def test_every_kind_has_a_chinese_text_with_the_case_number(kind: str) -> None:
    text = sms_text(kind, CASE_NO)
    assert text.startswith("【一件事】") and CASE_NO in text

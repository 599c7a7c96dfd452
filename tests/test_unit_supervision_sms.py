"""督办 by SMS: each 督办 of a step (automatic when it is overdue, or a supervisor's) queues one
outbox row to the duty phone of the unit the step is routed to, in the transaction that writes
the 督办, keyed by its id; a unit without a duty phone gets none; a rebuild texts nothing again."""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta
from typing import Literal

from sqlalchemy import Engine, select
from sqlmodel import Session, col

from activities.case_changes import CaseChangeActivities, issued_notices
from activities.notice_delivery import MANUAL_SUPERVISION_KIND, SUPERVISION_KIND, queue_unit_sms
from activities.read_model import ReadModelActivities
from activities.rebuild import RecordedWrite, apply_write
from domain.samples import FATHER_ID, MOTHER_ID, sample_birth_form
from domain.units import check_new_unit
from domain.workcalendar import WorkingCalendar, default_calendar_file
from models.case import (
    ActivityName,
    CaseChanges,
    CaseSnapshot,
    CaseStatus,
    EscalationInput,
    StepStatus,
    StepUnit,
    StepView,
    SupervisionNoticeInput,
)
from models.tables import SmsOutboxRecord, SupervisionNotice
from services.units import unit_row

CALENDAR = WorkingCalendar.load(default_calendar_file())
AT = datetime(2026, 12, 3, 9, 0, tzinfo=UTC)
DUE = AT - timedelta(days=1)
CASE_ID = "ot-duban-1"
CASE_NO = "2026-330000-000456"
POLICE_PHONE = "13700000001"
FULL_ID_NUMBER = re.compile(r"(?<![0-9])[0-9]{17}[0-9Xx](?![0-9])")
# 户口登记 is routed to a unit with a duty phone, 出生医学证明办理 to one without.
HUKOU, CERTIFICATE = "hukou_registration", "birth_certificate"


def _units(engine: Engine) -> None:
    with Session(engine) as session:
        session.add(unit_row(check_new_unit(department="police", division_code="330102", duty_phone=POLICE_PHONE)))
        hospital = check_new_unit(
            department="hospital",
            division_code="330102",
            kind="institution",
            code="hospital_330102_fybj",
            name_zh="杭州市上城区妇幼保健院",
        )
        session.add(unit_row(hospital))  # no duty phone
        session.commit()


def _step(code: str, name_zh: str, department: str, unit_code: str) -> StepView:
    return StepView(
        step=code,
        name_zh=name_zh,
        department=department,
        department_zh=department,
        status=StepStatus.OPEN,
        status_zh="待办理",
        time_limit_working_days=3,
        opened_at=AT - timedelta(days=5),
        due_at=DUE,
        overdue=True,
        unit=StepUnit(code=unit_code, name_zh=unit_code, division_code="330102"),
    )


def _snapshot(revision: int) -> CaseSnapshot:
    return CaseSnapshot(
        case_id=CASE_ID,
        thing="birth",
        thing_zh="出生一件事",
        catalogue_version=1,
        channel="online",
        status=CaseStatus.IN_PROGRESS,
        status_zh="办理中",
        submitted_at=AT - timedelta(days=5),
        owner="applicant1",
        submitted_by="applicant1",
        accepting_unit=None,
        steps=[
            _step(HUKOU, "户口登记", "police", "police_330102"),
            _step(CERTIFICATE, "出生医学证明办理", "hospital", "hospital_330102_fybj"),
        ],
        revision=revision,
        case_no=CASE_NO,
    )


def _escalation(step: str = HUKOU, department: str = "police", sequence: int = 1) -> EscalationInput:
    return EscalationInput(
        case_id=CASE_ID,
        step=step,
        department=department,
        sequence=sequence,
        due_at=DUE,
        at=AT + timedelta(days=sequence),
    )


def _manual(kind: Literal["notice", "urge"] = "notice", sequence: int = 1) -> SupervisionNoticeInput:
    return SupervisionNoticeInput(
        case_id=CASE_ID,
        step=HUKOU,
        department="police",
        kind=kind,
        sequence=sequence,
        # A supervisor's words may quote a person's number: they stay off the SMS.
        message_zh=f"请尽快办理，申请人父亲身份证号{FATHER_ID}",
        issued_by="supervisor",
        assignee="police_officer",
        due_at=DUE,
        at=AT,
    )


def _accepted(engine: Engine, writer: CaseChangeActivities) -> None:
    """The case's first write: accepted, its steps routed to their units."""
    _units(engine)
    writer.write_case_changes(CaseChanges(snapshot=_snapshot(1), events=[], form=sample_birth_form()))


def _unit_sms(engine: Engine) -> list[SmsOutboxRecord]:
    """The outbox's 督办 rows (the applicant's acceptance SMS left aside)."""
    with Session(engine) as session:
        rows = session.execute(
            select(SmsOutboxRecord)
            .where(col(SmsOutboxRecord.kind).in_([SUPERVISION_KIND, MANUAL_SUPERVISION_KIND]))
            .order_by(col(SmsOutboxRecord.id))
        )
        return list(rows.scalars())


def _notices(engine: Engine) -> list[str]:
    with Session(engine) as session:
        return list(session.execute(select(col(SupervisionNotice.notice_id)).order_by("notice_id")).scalars())


def test_an_overdue_steps_automatic_supervision_texts_its_units_duty_phone_with_the_case_number(
    engine: Engine,
) -> None:
    writer = CaseChangeActivities(engine, CALENDAR)
    _accepted(engine, writer)

    writer.write_case_changes(CaseChanges(snapshot=_snapshot(2), events=[], escalations=[_escalation()]))

    [row] = _unit_sms(engine)
    assert (row.id, row.case_id, row.phone, row.kind) == (
        f"{CASE_ID}:{HUKOU}:auto:1:unit",
        CASE_ID,
        POLICE_PHONE,
        SUPERVISION_KIND,
    )
    assert row.text == f"【一件事】督办：受理编号{CASE_NO}的户口登记已超过办理时限，请立即办理。"
    assert not FULL_ID_NUMBER.search(row.text) and MOTHER_ID not in row.text and FATHER_ID not in row.text
    assert (row.status, row.attempts, row.sent_at) == ("pending", 0, None)
    assert _notices(engine) == [f"{CASE_ID}:{HUKOU}:auto:1"]

    # One more for each further working day the step stays overdue.
    writer.write_case_changes(CaseChanges(snapshot=_snapshot(3), events=[], escalations=[_escalation(sequence=2)]))
    assert [row.id for row in _unit_sms(engine)] == [f"{CASE_ID}:{HUKOU}:auto:{n}:unit" for n in (1, 2)]


def test_the_same_supervision_written_twice_queues_one_sms(engine: Engine) -> None:
    writer = CaseChangeActivities(engine, CALENDAR)
    _accepted(engine, writer)
    change = CaseChanges(snapshot=_snapshot(2), events=[], escalations=[_escalation()])

    writer.write_case_changes(change)
    writer.write_case_changes(change)  # the local activity's retry: its revision is stored
    with Session(engine) as session:  # queued again regardless: the 督办's id keeps it one row
        queue_unit_sms(session, change.snapshot, issued_notices(change), datetime.now(UTC))
        session.commit()
    # A case started before one write per change records its 督办 by an activity of its own.
    legacy = ReadModelActivities(engine, CALENDAR)
    for _ in range(2):  # retried
        legacy.escalate_overdue_step(_escalation(sequence=2))

    assert [(row.id, row.phone) for row in _unit_sms(engine)] == [
        (f"{CASE_ID}:{HUKOU}:auto:1:unit", POLICE_PHONE),
        (f"{CASE_ID}:{HUKOU}:auto:2:unit", POLICE_PHONE),
    ]
    assert "户口登记" in _unit_sms(engine)[1].text and CASE_NO in _unit_sms(engine)[1].text


def test_a_supervisors_manual_supervision_queues_one_sms_and_an_urge_none(engine: Engine) -> None:
    writer = CaseChangeActivities(engine, CALENDAR)
    _accepted(engine, writer)

    change = CaseChanges(snapshot=_snapshot(2), events=[], supervision_notices=[_manual(), _manual("urge", 2)])
    writer.write_case_changes(change)
    writer.write_case_changes(change)
    # The first edition's activity: a second 督办 of the supervisor's, retried.
    legacy = ReadModelActivities(engine, CALENDAR)
    legacy.record_supervision_notice(_manual(sequence=3))
    legacy.record_supervision_notice(_manual(sequence=3))

    rows = _unit_sms(engine)
    assert [(row.id, row.phone, row.kind) for row in rows] == [
        (f"{CASE_ID}:{HUKOU}:notice:1:unit", POLICE_PHONE, MANUAL_SUPERVISION_KIND),
        (f"{CASE_ID}:{HUKOU}:notice:3:unit", POLICE_PHONE, MANUAL_SUPERVISION_KIND),
    ]
    for row in rows:
        assert CASE_NO in row.text and "户口登记" in row.text and "督办" in row.text
        assert FATHER_ID not in row.text and not FULL_ID_NUMBER.search(row.text)
    assert _notices(engine) == [f"{CASE_ID}:{HUKOU}:notice:1", f"{CASE_ID}:{HUKOU}:notice:3"]


def test_a_unit_without_a_duty_phone_gets_no_sms_and_the_supervision_is_still_recorded(engine: Engine) -> None:
    writer = CaseChangeActivities(engine, CALENDAR)
    _accepted(engine, writer)

    writer.write_case_changes(
        CaseChanges(snapshot=_snapshot(2), events=[], escalations=[_escalation(CERTIFICATE, "hospital")])
    )
    ReadModelActivities(engine, CALENDAR).escalate_overdue_step(_escalation(CERTIFICATE, "hospital", 2))

    assert _unit_sms(engine) == []
    assert _notices(engine) == [f"{CASE_ID}:{CERTIFICATE}:auto:1", f"{CASE_ID}:{CERTIFICATE}:auto:2"]


def test_a_rebuild_writes_the_supervision_again_but_texts_nobody(engine: Engine) -> None:
    _units(engine)
    writes = [
        (ActivityName.WRITE_CASE_CHANGES, CaseChanges(snapshot=_snapshot(1), events=[], form=sample_birth_form())),
        (
            ActivityName.WRITE_CASE_CHANGES,
            CaseChanges(snapshot=_snapshot(2), events=[], escalations=[_escalation()], supervision_notices=[_manual()]),
        ),
        (ActivityName.ESCALATE_OVERDUE_STEP, _escalation(sequence=2)),
        (ActivityName.RECORD_SUPERVISION_NOTICE, _manual(sequence=3)),
    ]
    for number, (activity_type, argument) in enumerate(writes, 1):
        apply_write(engine, CALENDAR, "run-1", RecordedWrite(activity_type, str(number), argument, AT, local=True))

    assert len(_notices(engine)) == 4
    with Session(engine) as session:
        assert session.execute(select(SmsOutboxRecord)).first() is None  # not even the applicant's

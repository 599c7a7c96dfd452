"""Case numbers and subjects, taken before a case's workflow starts (table case_registrations).

A submission registers its case id here first: the id gets its readable number (受理编号,
year - division - sequence) and, when its sub-item names a subject (domain/subjects.py),
the subject. The subject is unique per sub-item, so of two applications for one newborn the
second finds the first however close together they come, on SQLite and PostgreSQL alike.
A retried request (same case id) finds its own registration and number again.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import Engine, select, update
from sqlalchemy.exc import IntegrityError
from sqlmodel import Session, col

from domain.workcalendar import SHANGHAI
from infra.db import prepared_statement, write_session
from models.case import CaseStatus
from models.errors import DomainError, ErrorCode
from models.tables import CaseNumberSequence, CaseRecord, CaseRegistration

# A registration whose case is not in the read model yet is taken for one being accepted
# right now for this long (a submission waits at most 30 s for its workflow); after it, the
# caller asks Temporal whether that case ever started.
STARTING_GRACE = timedelta(minutes=2)
# Cases that give their subject up: it may be applied for again.
SUBJECT_RELEASING_STATUSES = frozenset(
    {CaseStatus.REFUSED.value, CaseStatus.WITHDRAWN.value, CaseStatus.DECLINED.value}
)


@dataclass(frozen=True)
class Registration:
    case_no: str
    created: bool  # False: a retried request found its own registration


class UnconfirmedHolder(Exception):
    """The subject is registered to a case that never reached the read model; whether its
    workflow exists decides (services/cases.py asks Temporal)."""

    def __init__(self, case_id: str) -> None:
        super().__init__(case_id)
        self.case_id = case_id


def duplicate_case(existing_case_id: str) -> DomainError:
    return DomainError(
        ErrorCode.DUPLICATE_CASE,
        "已提交过相同申请，请查看已有案件 (a case for the same subject exists)",
        {"existing_case_id": existing_case_id},
    )


def case_number_prefix(at: datetime, division: str) -> str:
    return f"{at.astimezone(SHANGHAI).year}-{division}"


def _take_number(session: Session, prefix: str) -> str:
    """The prefix's next number, atomically (an upsert that returns the new value)."""
    number = session.connection().execute(prepared_statement(session, _increment), {"prefix": prefix}).scalar_one()
    return f"{prefix}-{number:06d}"


def _increment(insert: Any) -> Any:
    statement = insert(CaseNumberSequence).values(last_number=1)
    return statement.on_conflict_do_update(
        index_elements=["prefix"], set_={"last_number": col(CaseNumberSequence.last_number) + 1}
    ).returning(col(CaseNumberSequence.last_number))


def _holder(session: Session, thing: str, subject_key: str) -> CaseRegistration | None:
    return session.execute(
        select(CaseRegistration).where(
            col(CaseRegistration.thing) == thing, col(CaseRegistration.subject_key) == subject_key
        )
    ).scalar_one_or_none()


def _free_or_refuse(session: Session, holder: CaseRegistration, now: datetime) -> None:
    """Give up a refused, withdrawn or declined case's subject; refuse the request for an open or completed one."""
    record = session.get(CaseRecord, holder.case_id)
    if record is None:
        if now - holder.registered_at < STARTING_GRACE:
            raise duplicate_case(holder.case_id)
        raise UnconfirmedHolder(holder.case_id)
    if record.status not in SUBJECT_RELEASING_STATUSES:
        raise duplicate_case(holder.case_id)
    session.execute(
        update(CaseRegistration).where(col(CaseRegistration.case_id) == holder.case_id).values(subject_key=None)
    )


def register_case(
    engine: Engine, *, case_id: str, thing: str, subject_key: str | None, division: str, now: datetime
) -> Registration:
    """Register a new case (number, subject); DomainError duplicate_case when the subject is
    another open or completed case's, UnconfirmedHolder when that case's fate is unknown."""
    for attempt in range(2):
        try:
            with write_session(engine) as session:
                own = session.get(CaseRegistration, case_id)
                if own is not None:
                    return Registration(case_no=own.case_no, created=False)
                if subject_key is not None:
                    holder = _holder(session, thing, subject_key)
                    if holder is not None:
                        _free_or_refuse(session, holder, now)
                case_no = _take_number(session, case_number_prefix(now, division))
                session.add(
                    CaseRegistration(
                        case_id=case_id, case_no=case_no, thing=thing, subject_key=subject_key, registered_at=now
                    )
                )
                session.flush()
                return Registration(case_no=case_no, created=True)
        except IntegrityError:
            # Another request registered the same subject (or case id) in between: look again.
            if attempt:
                raise
    raise AssertionError("unreachable")


def release_registration(engine: Engine, case_id: str) -> None:
    """Forget a registration whose case never started, so its subject is free again."""
    with write_session(engine) as session:
        registration = session.get(CaseRegistration, case_id)
        if registration is not None:
            session.delete(registration)


def restore_registrations(session: Session) -> int:
    """After a rebuild: every numbered case's registration, and each prefix's last number.
    A subject applied for again after a refusal belongs to the newer case, as it did when
    that case was registered. Returns how many registrations were added."""
    have = set(session.execute(select(col(CaseRegistration.case_id))).scalars())
    restored: dict[tuple[str, str], CaseRegistration] = {}
    added = 0
    last: dict[str, int] = {}
    records = session.execute(
        select(CaseRecord).where(col(CaseRecord.case_no).is_not(None)).order_by(col(CaseRecord.submitted_at))
    ).scalars()
    for record in records:
        assert record.case_no is not None
        prefix, _, number = record.case_no.rpartition("-")
        last[prefix] = max(last.get(prefix, 0), int(number))
        if record.case_id in have:
            continue
        subject = record.snapshot.get("subject_key")
        registration = CaseRegistration(
            case_id=record.case_id,
            case_no=record.case_no,
            thing=record.thing,
            subject_key=subject,
            registered_at=record.submitted_at,
        )
        if subject is not None:
            earlier = restored.get((record.thing, subject))
            if earlier is not None:
                earlier.subject_key = None  # refused, then applied for again
            restored[(record.thing, subject)] = registration
        session.add(registration)
        added += 1
    for prefix, number in last.items():
        sequence = session.get(CaseNumberSequence, prefix)
        if sequence is None:
            session.add(CaseNumberSequence(prefix=prefix, last_number=number))
        elif sequence.last_number < number:
            sequence.last_number = number
    session.flush()
    return added

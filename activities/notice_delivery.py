"""SMS notices to applicants and 督办 to units: the outbox rows a case change queues, and their delivery.

Queueing: ``queue_applicant_sms`` runs in the transaction of the case change that writes the
notifications (activities/case_changes.py): one ``sms_outbox`` row per notice to the
applicant, to the phone on the application, keyed by the notification's id so a retried
write adds nothing. The text comes from a template per kind and holds the case number, never
the notice's free text (a reason typed by an officer may quote a person's numbers).
``queue_unit_sms`` does the same for each 督办 of a step (automatic when it is overdue, or a
supervisor's), in the transaction that writes the 督办: one row to the duty phone of the unit
the step is routed to, keyed by the 督办's id; none for a step without a unit or a unit
without a duty phone. Neither runs when ``onething rebuild`` writes the same rows again.

Delivery: NoticeDeliveryWorkflow, started every minute by a Temporal Schedule, runs
``deliver_pending_sms``. It claims one due row at a time: one UPDATE that checks the row is
still pending and due, counts the attempt and moves ``next_attempt_at`` past a lease, so two
rounds running at once never take the same row. A refused send waits a growing backoff; after
MAX_ATTEMPTS the row is ``failed`` and stays. A round that dies mid-send leaves its row to come
due again when the lease ends: a message may then go twice, but none is lost.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy import Engine, select, update
from sqlmodel import Session, col
from temporalio import activity
from temporalio.client import (
    Client,
    Schedule,
    ScheduleActionStartWorkflow,
    ScheduleAlreadyRunningError,
    ScheduleIntervalSpec,
    ScheduleOverlapPolicy,
    SchedulePolicy,
    ScheduleSpec,
)

from domain.follow_links import FOLLOW_LINK_LIFETIME, follow_token
from domain.redaction import mask_text
from infra.db import insert_new, write_session
from infra.sms import SmsGateway
from models.case import CaseChanges, CaseSnapshot
from models.notices import DeliverNoticesInput, DeliverNoticesResult, NoticeActivityName
from models.tables import CaseRecord, SmsOutboxRecord, Unit
from settings import Settings
from workflows.notice_delivery import DELIVERY_SCHEDULE_ID, NoticeDeliveryWorkflow

logger = logging.getLogger(__name__)

SMS_SIGNATURE = "【一件事】"
ACCEPTED_KIND = "case_accepted"
RATING_INVITATION_KIND = "rating_invitation"
SUPERVISION_KIND = "supervision_notice"  # an automatic 督办, to the step's unit
MANUAL_SUPERVISION_KIND = "supervision_notice_manual"  # a supervisor's 督办, to the step's unit
# One template per notification kind the case workflow sends its applicant (workflows/case/
# notices.py and the catalogue's notify_on_complete); {case_no} is the 受理编号.
SMS_TEMPLATES: dict[str, str] = {
    # Not a notification of the workflow's: the case's first write (its acceptance) queues it.
    ACCEPTED_KIND: "您的申请（受理编号{case_no}）已受理，可登录一件事平台查看办理进度和需补交的材料。",
    # Nor this: the write that opens the rating period (办结出件) queues it.
    RATING_INVITATION_KIND: "您的申请（受理编号{case_no}）已办结出件，欢迎在评价期内对本次服务作出好差评。",
    "supplement_requested": "您的申请（受理编号{case_no}）需补正材料，请登录一件事平台查看补正通知，并在期限内补交。",
    "case_completed": "您的申请（受理编号{case_no}）已全部办结。",
    "result_delivery": "您的申请（受理编号{case_no}）有办理结果已出件，送达方式请登录一件事平台查看。",
    "case_refused": "您的申请（受理编号{case_no}）经审查不予办理，理由请登录一件事平台查看。",
    "case_declined": "您的申请（受理编号{case_no}）不予受理，理由请登录一件事平台查看。",
    "case_withdrawn": "您的申请（受理编号{case_no}）已撤回，各部门已停止办理。",
    "premium_payment": "您的申请（受理编号{case_no}）中新生儿已完成医保参保登记，请按时缴纳城乡居民医疗保险费。",
    "pension_payment": "您的申请（受理编号{case_no}）中基本养老金待遇已核定，将按月发放至登记的银行账户。",
    "employee_enrollment": "您的申请（受理编号{case_no}）中单位社会保险登记已完成，请在用工之日起三十日内为职工参保。",
    # Not to the applicant: a step's 督办, to its unit's duty phone; {step_zh} is the step's name
    # in the catalogue. A supervisor's own words stay on the platform (they may quote a person).
    SUPERVISION_KIND: "督办：受理编号{case_no}的{step_zh}已超过办理时限，请立即办理。",
    MANUAL_SUPERVISION_KIND: "督办：受理编号{case_no}的{step_zh}收到监督督办，请登录一件事平台查看督办意见并及时办理。",
}
# A kind a newer catalogue adds before it has a template of its own.
DEFAULT_TEMPLATE = "您的申请（受理编号{case_no}）有新的办理进展，请登录一件事平台查看。"

MAX_ATTEMPTS = 20
BACKOFF_FIRST = timedelta(seconds=30)
BACKOFF_CAP = timedelta(minutes=30)
# Longer than a send may take (settings.sms_timeout_seconds is at most 20 s): a row being
# sent is not due for another round meanwhile.
CLAIM_LEASE = timedelta(minutes=2)
PENDING, SENT, FAILED = "pending", "sent", "failed"


def sms_text(kind: str, case_no: str, step_zh: str = "") -> str:
    """The message for a notice of ``kind``; masked all the same, should a template ever quote more."""
    template = SMS_TEMPLATES.get(kind, DEFAULT_TEMPLATE)
    return mask_text(SMS_SIGNATURE + template.format(case_no=case_no, step_zh=step_zh))


def applicant_phone(form: dict[str, Any] | None) -> str | None:
    """The applicant's phone on the application (every form has ``applicant.phone``)."""
    applicant = (form or {}).get("applicant")
    phone = applicant.get("phone") if isinstance(applicant, dict) else None
    return phone if isinstance(phone, str) and phone else None


FollowLink = Callable[[str], str]


def follow_link_maker(settings: Settings) -> FollowLink | None:
    """The signed address a walk-in without an account follows and rates their case at (None
    without ONETHING_PUBLIC_BASE_URL): valid for FOLLOW_LINK_LIFETIME from when it is sent."""
    base = settings.public_base_url
    if base is None:
        return None
    secret = settings.secret_key

    def link(case_id: str) -> str:
        token = follow_token(case_id, secret, datetime.now(UTC) + FOLLOW_LINK_LIFETIME)
        return f"{base.rstrip('/')}/follow/{token}"

    return link


def queue_applicant_sms(
    session: Session, changes: CaseChanges, now: datetime, follow_link: FollowLink | None = None
) -> None:
    """Queue an SMS for each of the change's notices to the applicant; none without a phone. A
    walk-in case nobody owns is told, at acceptance, the link to follow and rate it at."""
    snapshot = changes.snapshot
    # (id, kind) of each message: the notices to the applicant (a walk-in's too: no owner, no
    # recipient), and the acceptance, with the case's first write (the one carrying the form).
    messages = [
        (notice.notification_id, notice.kind)
        for notice in changes.notifications
        if notice.notification_id and notice.recipient == snapshot.owner
    ]
    if changes.form is not None:
        messages.insert(0, (f"{snapshot.case_id}:accepted", ACCEPTED_KIND))
    if snapshot.rating_open and not snapshot.ratings:
        # Written once (its id is the case's): every later change of the rating period finds it.
        messages.append((f"{snapshot.case_id}:rating-invitation", RATING_INVITATION_KIND))
    if not messages:
        return
    form = changes.form
    if form is None:  # only the case's first write carries it; its row has it since then
        form = session.execute(
            select(col(CaseRecord.form)).where(col(CaseRecord.case_id) == snapshot.case_id)
        ).scalar_one_or_none()
    phone = applicant_phone(form)
    if phone is None:
        return
    case_no = snapshot.case_no or snapshot.case_id  # cases filed before numbering
    texts = {kind: sms_text(kind, case_no) for _, kind in messages}
    if snapshot.owner is None and follow_link is not None:
        # After masking: the link's signature must reach the phone as it was made.
        if ACCEPTED_KIND in texts:
            texts[ACCEPTED_KIND] += f"无账号也可查看进度、办结后评价：{follow_link(snapshot.case_id)}"
        if RATING_INVITATION_KIND in texts:
            texts[RATING_INVITATION_KIND] += f"评价请访问：{follow_link(snapshot.case_id)}"
    insert_new(
        session,
        SmsOutboxRecord,
        [_outbox_row(message_id, snapshot.case_id, phone, texts[kind], kind, now) for message_id, kind in messages],
    )


def _outbox_row(message_id: str, case_id: str, phone: str, text: str, kind: str, now: datetime) -> dict[str, Any]:
    """A new row of the outbox, due now."""
    return {
        "id": message_id,
        "case_id": case_id,
        "phone": phone,
        "text": text,
        "kind": kind,
        "status": PENDING,
        "attempts": 0,
        "last_error": None,
        "next_attempt_at": now,
        "created_at": now,
        "sent_at": None,
    }


@dataclass(frozen=True)
class IssuedNotice:
    """A 督办 of a step written just now, to be texted to the unit the step is routed to."""

    notice_id: str  # the SupervisionNotice's: its SMS's id follows from it
    case_id: str
    step: str
    manual: bool = False  # a supervisor's, not the automatic one of an overdue step

    @property
    def kind(self) -> str:
        return MANUAL_SUPERVISION_KIND if self.manual else SUPERVISION_KIND

    @property
    def sms_id(self) -> str:
        return f"{self.notice_id}:unit"


def queue_unit_sms(session: Session, snapshot: CaseSnapshot, issued: Sequence[IssuedNotice], now: datetime) -> None:
    """Queue an SMS for each 督办 to the duty phone of the unit its step is routed to, as the
    change's ``snapshot`` shows it (after a 转办, the new unit); none for a step without a unit
    or a unit without a duty phone."""
    steps = {step.step: step for step in snapshot.steps}
    targets = [
        (notice, step.unit.code, step.name_zh)
        for notice in issued
        if (step := steps.get(notice.step)) is not None and step.unit is not None
    ]
    _queue_to_units(session, snapshot.case_no or snapshot.case_id, targets, now)


def queue_unit_sms_from_case_row(session: Session, notice: IssuedNotice, now: datetime) -> None:
    """The same for a 督办 written by an activity of its own (cases started before one write per
    change): the step's unit and name come from the case row's stored snapshot."""
    row = session.execute(
        select(col(CaseRecord.case_no), col(CaseRecord.snapshot)).where(col(CaseRecord.case_id) == notice.case_id)
    ).first()
    if row is None:
        return
    stored: dict[str, Any] = row.snapshot or {}
    step = next((item for item in stored.get("steps") or [] if item.get("step") == notice.step), None)
    unit = (step or {}).get("unit")
    if step is None or not isinstance(unit, dict) or not unit.get("code"):
        return
    case_no = row.case_no or stored.get("case_no") or notice.case_id
    _queue_to_units(session, case_no, [(notice, unit["code"], step.get("name_zh") or notice.step)], now)


def _queue_to_units(
    session: Session, case_no: str, targets: Sequence[tuple[IssuedNotice, str, str]], now: datetime
) -> None:
    """One row per (督办, unit code, step name) whose unit has a duty phone."""
    if not targets:
        return
    codes = sorted({code for _, code, _ in targets})
    phones: dict[str, str] = {
        code: phone
        for code, phone in session.execute(
            select(col(Unit.code), col(Unit.duty_phone)).where(
                col(Unit.code).in_(codes), col(Unit.duty_phone).is_not(None)
            )
        )
        if phone
    }
    insert_new(
        session,
        SmsOutboxRecord,
        [
            _outbox_row(
                notice.sms_id, notice.case_id, phones[code], sms_text(notice.kind, case_no, step_zh), notice.kind, now
            )
            for notice, code, step_zh in targets
            if code in phones
        ],
    )


def backoff(attempts: int) -> timedelta:
    """The wait after the ``attempts``-th failed attempt: 30 s, doubling, at most 30 min."""
    return min(BACKOFF_FIRST * (1 << min(attempts - 1, 16)), BACKOFF_CAP)


@dataclass(frozen=True)
class ClaimedSms:
    id: str
    phone: str
    text: str
    attempts: int  # counting this one


def claim_due_sms(engine: Engine, now: datetime) -> ClaimedSms | None:
    """Take the longest-waiting due row for one attempt, or None when none is due.

    The row is chosen and taken in one statement that checks again that it is pending and
    due: a concurrent claim of the same row finds it moved past its lease and takes nothing
    (PostgreSQL re-checks the WHERE after waiting for the row; SKIP LOCKED lets it take
    another row instead of waiting; SQLite writes one transaction at a time).
    """
    due = (col(SmsOutboxRecord.status) == PENDING) & (col(SmsOutboxRecord.next_attempt_at) <= now)
    oldest_due = (
        select(col(SmsOutboxRecord.id))
        .where(due)
        .order_by(col(SmsOutboxRecord.next_attempt_at))
        .limit(1)
        .with_for_update(skip_locked=True)
        .scalar_subquery()
    )
    claim = (
        update(SmsOutboxRecord)
        .where(col(SmsOutboxRecord.id) == oldest_due, due)
        .values(next_attempt_at=now + CLAIM_LEASE, attempts=col(SmsOutboxRecord.attempts) + 1)
        .returning(
            col(SmsOutboxRecord.id),
            col(SmsOutboxRecord.phone),
            col(SmsOutboxRecord.text),
            col(SmsOutboxRecord.attempts),
        )
    )
    with write_session(engine) as session:
        row = session.connection().execute(claim).first()
    return None if row is None else ClaimedSms(row.id, row.phone, row.text, row.attempts)


def _of_this_claim(claimed: ClaimedSms) -> Any:
    # A claim whose lease ran out and was taken again must not overwrite the newer attempt.
    return (
        (col(SmsOutboxRecord.id) == claimed.id)
        & (col(SmsOutboxRecord.status) == PENDING)
        & (col(SmsOutboxRecord.attempts) == claimed.attempts)
    )


def record_sent(engine: Engine, claimed: ClaimedSms, now: datetime) -> None:
    with write_session(engine) as session:
        session.connection().execute(
            update(SmsOutboxRecord).where(_of_this_claim(claimed)).values(status=SENT, sent_at=now, last_error=None)
        )


def record_failure(engine: Engine, claimed: ClaimedSms, error: str, now: datetime) -> str:
    """Note a refused attempt: the row waits its backoff, or is failed after the last attempt."""
    status = FAILED if claimed.attempts >= MAX_ATTEMPTS else PENDING
    with write_session(engine) as session:
        session.connection().execute(
            update(SmsOutboxRecord)
            .where(_of_this_claim(claimed))
            .values(status=status, last_error=error[:500], next_attempt_at=now + backoff(claimed.attempts))
        )
    return status


def _utc_now() -> datetime:
    return datetime.now(UTC)


class NoticeDeliveryActivities:
    """Sends the outbox through ``gateway``; without one (none configured) nothing is sent."""

    def __init__(self, engine: Engine, gateway: SmsGateway | None, clock: Callable[[], datetime] = _utc_now) -> None:
        self._engine = engine
        self._gateway = gateway
        self._clock = clock  # tests move it past a backoff

    @activity.defn(name=NoticeActivityName.DELIVER_PENDING_SMS)
    async def deliver_pending_sms(self, request: DeliverNoticesInput) -> DeliverNoticesResult:
        result = DeliverNoticesResult()
        if self._gateway is None:
            logger.warning("no SMS gateway configured (ONETHING_SMS_GATEWAY_URL): the outbox waits")
            return result
        started = time.monotonic()
        while result.sent + result.retrying + result.failed < request.batch_limit:
            if time.monotonic() - started > request.time_budget_seconds:
                break
            # Database work in a thread: the activity runs on the worker's event loop.
            claimed = await asyncio.to_thread(claim_due_sms, self._engine, self._clock())
            if claimed is None:
                break
            try:
                await self._gateway.send(claimed.phone, claimed.text)
            except Exception as error:  # any refusal: recorded on the row, tried again later
                reason = mask_text(f"{type(error).__name__}: {error}")
                status = await asyncio.to_thread(record_failure, self._engine, claimed, reason, self._clock())
                if status == FAILED:
                    result.failed += 1
                    logger.error("SMS %s given up after %d attempts: %s", claimed.id, claimed.attempts, reason)
                else:
                    result.retrying += 1
                    logger.warning("SMS %s not sent (attempt %d): %s", claimed.id, claimed.attempts, reason)
            else:
                await asyncio.to_thread(record_sent, self._engine, claimed, self._clock())
                result.sent += 1
        return result


async def ensure_delivery_schedule(client: Client, task_queue: str, every: timedelta = timedelta(minutes=1)) -> bool:
    """Create the Schedule that starts NoticeDeliveryWorkflow every ``every``; True if created,
    False if it exists already (every worker calls this at start)."""
    schedule = Schedule(
        action=ScheduleActionStartWorkflow(
            NoticeDeliveryWorkflow.run,
            DeliverNoticesInput(),
            id=f"{DELIVERY_SCHEDULE_ID}-round",
            task_queue=task_queue,
            execution_timeout=timedelta(minutes=5),
        ),
        spec=ScheduleSpec(intervals=[ScheduleIntervalSpec(every=every)]),
        # A round still running (a slow gateway) is not joined by the next one.
        policy=SchedulePolicy(overlap=ScheduleOverlapPolicy.SKIP),
    )
    try:
        await client.create_schedule(DELIVERY_SCHEDULE_ID, schedule)
    except ScheduleAlreadyRunningError:
        return False
    return True

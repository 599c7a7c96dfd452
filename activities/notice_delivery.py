"""SMS notices to applicants: the outbox rows a case change queues, and their delivery.

Queueing: ``queue_applicant_sms`` runs in the transaction of the case change that writes the
notifications (activities/case_changes.py): one ``sms_outbox`` row per notice to the
applicant, to the phone on the application, keyed by the notification's id so a retried
write adds nothing. The text comes from a template per kind and holds the case number, never
the notice's free text (a reason typed by an officer may quote a person's numbers).

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
from collections.abc import Callable
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

from activities.read_model import insert_new
from domain.follow_links import FOLLOW_LINK_LIFETIME, follow_token
from domain.redaction import mask_text
from infra.db import write_session
from infra.sms import SmsGateway
from models.case import CaseChanges
from models.notices import DeliverNoticesInput, DeliverNoticesResult, NoticeActivityName
from models.tables import CaseRecord, SmsOutboxRecord
from settings import Settings
from workflows.notice_delivery import DELIVERY_SCHEDULE_ID, NoticeDeliveryWorkflow

logger = logging.getLogger(__name__)

SMS_SIGNATURE = "【一件事】"
ACCEPTED_KIND = "case_accepted"
RATING_INVITATION_KIND = "rating_invitation"
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


def sms_text(kind: str, case_no: str) -> str:
    """The message for a notice of ``kind``; masked all the same, should a template ever quote more."""
    return mask_text(SMS_SIGNATURE + SMS_TEMPLATES.get(kind, DEFAULT_TEMPLATE).format(case_no=case_no))


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
        [
            {
                "id": message_id,
                "case_id": snapshot.case_id,
                "phone": phone,
                "text": texts[kind],
                "kind": kind,
                "status": PENDING,
                "attempts": 0,
                "last_error": None,
                "next_attempt_at": now,
                "created_at": now,
                "sent_at": None,
            }
            for message_id, kind in messages
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

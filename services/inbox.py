"""Officers' inboxes: which tasks a caller may list, the listing itself, and the ETag that tells a
client whether its inbox changed without running the listing (GET /tasks, the console's inbox,
and the change feed GET /tasks/events in api/inbox_feed.py).

Each department's ``InboxVersion`` row counts the changes to its tasks; it is bumped in the
same transaction as the task rows (activities/read_model.py, activities/case_changes.py), so a
reader that sees the new version also sees the new tasks.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass, field
from datetime import UTC, datetime, time, timedelta
from typing import Any, Literal

from sqlalchemy import ColumnElement, and_, exists, func, or_, select
from sqlmodel import Session, col

from domain.catalogue import FOLLOW_UP
from domain.workcalendar import SHANGHAI
from models.case import Actor, StepStatus
from models.errors import DomainError, ErrorCode
from models.tables import CaseRecord, InboxVersion, SupervisionNotice, TaskRecord
from services.access import require_role, task_unit_scope

Versions = dict[str, tuple[int, datetime]]
"""Each department's inbox version and when it last changed."""

# Part of every ETag: changing what GET /tasks answers (its fields) means changing this.
ETAG_FORMAT = "inbox-1"
INBOX_STATUSES = [
    StepStatus.OPEN.value,
    StepStatus.CLAIMED.value,
    StepStatus.AWAITING_SUPPLEMENT.value,
    StepStatus.SUSPENDED.value,
]
# Tasks whose clock runs: a task awaiting 补正 has its clock stopped and is never due or late.
RUNNING_STATUSES = [StepStatus.OPEN.value, StepStatus.CLAIMED.value]
DueFilter = Literal["overdue", "today", "week"]
MAX_SEARCH_LENGTH = 64


@dataclass(frozen=True)
class InboxFilters:
    """What narrows an inbox listing besides its status: one step (``follow_up`` covers every
    回访, follow_up_1, follow_up_2 …), the due date (past due; due by the end of today or of this
    week, Beijing time, not yet past), tasks under 督办 (escalated, or with a notice still
    unanswered), and a case number, technical case id or applicant name (part of one)."""

    step: str | None = None
    due: DueFilter | None = None
    supervised: bool = False
    search: str | None = None

    def __post_init__(self) -> None:
        search = (self.search or "").strip()[:MAX_SEARCH_LENGTH]
        object.__setattr__(self, "search", search or None)
        object.__setattr__(self, "step", self.step or None)

    @property
    def active(self) -> bool:
        return bool(self.step or self.due or self.supervised or self.search)

    def key(self) -> list[Any]:
        return [self.step, self.due, self.supervised, self.search]


@dataclass(frozen=True)
class InboxQuery:
    """One inbox listing as its caller may read it (``inbox_query`` decides)."""

    role: str
    department: str | None  # None: every department (supervisors and admins)
    role_filter: str | None  # officers and clerks list only the tasks their role acts on
    status: StepStatus | None
    limit: int
    offset: int
    filters: InboxFilters = field(default_factory=InboxFilters)
    # Officers and clerks: whose unit's tasks (services/access.py); None for supervisors and admins.
    member: Actor | None = None

    def covers(self, departments: set[str]) -> bool:
        return self.department is None or self.department in departments

    def etag(self, versions: Versions) -> str:
        """A strong validator: equal for equal listings, different once a covered department changes."""
        if self.department is not None:
            covered = {self.department: versions[self.department]} if self.department in versions else {}
        else:
            covered = versions
        key = [
            ETAG_FORMAT,
            self.role,
            self.department,
            self.role_filter,
            self.status.value if self.status else None,
            self.limit,
            self.offset,
            self.filters.key(),
            [self.member.unit_code, self.member.division_code] if self.member else None,
            [[name, version, changed_at.isoformat()] for name, (version, changed_at) in sorted(covered.items())],
        ]
        digest = hashlib.sha256(json.dumps(key, separators=(",", ":")).encode()).hexdigest()
        return f'"{digest[:32]}"'


def read_versions(session: Session, department: str | None) -> Versions:
    """One department's version row (a primary-key read), or every department's."""
    statement = select(col(InboxVersion.department), col(InboxVersion.version), col(InboxVersion.changed_at))
    if department is not None:
        statement = statement.where(col(InboxVersion.department) == department)
    return {name: (version, changed_at) for name, version, changed_at in session.execute(statement)}


def inbox_query(
    actor: Actor,
    status: StepStatus | None,
    department: str | None,
    limit: int,
    offset: int,
    filters: InboxFilters | None = None,
) -> InboxQuery:
    """The inbox listing ``actor`` may read: officers and clerks their own unit's only."""
    require_role(actor, "officer", "clerk", "supervisor", "admin")
    role_filter = None
    if actor.role in {"officer", "clerk"}:
        if department not in (None, actor.unit):
            raise DomainError(ErrorCode.FORBIDDEN, "只能查看本部门的任务 (own department only)")
        department = actor.unit
        # A clerk's inbox holds only the tasks clerks may act on (e.g. 出件).
        role_filter = actor.role
    member = actor if actor.role in {"officer", "clerk"} else None
    return InboxQuery(
        actor.role, department or None, role_filter, status, limit, offset, filters or InboxFilters(), member
    )


def inbox_tasks(
    session: Session,
    actor: Actor,
    status: StepStatus | None,
    department: str | None,
    limit: int,
    offset: int,
    filters: InboxFilters | None = None,
) -> tuple[list[TaskRecord], int]:
    """One page of the inbox ``actor`` may read, oldest due first, and its total (the JSON inbox and the console's)."""
    return listing(session, inbox_query(actor, status, department, limit, offset, filters))


def inbox_etag(
    session: Session,
    actor: Actor,
    status: StepStatus | None,
    department: str | None,
    limit: int,
    offset: int,
    filters: InboxFilters | None = None,
) -> str:
    """The ETag ``GET /tasks`` answers now for this listing (the console renders it into its inbox page)."""
    query = inbox_query(actor, status, department, limit, offset, filters)
    return query.etag(read_versions(session, query.department))


def inbox_steps(session: Session, actor: Actor, department: str | None) -> list[tuple[str, str]]:
    """The (thing, step) pairs of the tasks in the inbox ``actor`` may read, whatever their filters:
    the choices of a step filter."""
    query = inbox_query(actor, None, department, 1, 0)
    rows = session.execute(
        select(col(TaskRecord.thing), col(TaskRecord.step))
        .where(*_scope(query), col(TaskRecord.status).in_(INBOX_STATUSES))
        .distinct()
        .order_by(col(TaskRecord.thing), col(TaskRecord.step))
    ).all()
    return [(thing, step) for thing, step in rows]


def pending_notice_exists() -> ColumnElement[bool]:
    """A 督办 notice about the task (its case, step and department) not yet answered."""
    return exists().where(
        col(SupervisionNotice.case_id) == col(TaskRecord.case_id),
        col(SupervisionNotice.step) == col(TaskRecord.step),
        col(SupervisionNotice.department) == col(TaskRecord.department),
        col(SupervisionNotice.acknowledged_at).is_(None),
    )


def _scope(query: InboxQuery) -> list[ColumnElement[bool]]:
    conditions: list[ColumnElement[bool]] = []
    if query.department:
        conditions.append(col(TaskRecord.department) == query.department)
    if query.member is not None:
        conditions.append(task_unit_scope(query.member))
    if query.role_filter:
        conditions.append(col(TaskRecord.roles).contains(query.role_filter))
    return conditions


def _filter_conditions(filters: InboxFilters, now: datetime) -> list[ColumnElement[bool]]:
    conditions: list[ColumnElement[bool]] = []
    if filters.step == FOLLOW_UP.code:
        conditions.append(col(TaskRecord.step).startswith(f"{FOLLOW_UP.code}_", autoescape=True))
    elif filters.step:
        conditions.append(col(TaskRecord.step) == filters.step)
    if filters.due is not None:
        running = col(TaskRecord.status).in_(RUNNING_STATUSES)
        late = or_(col(TaskRecord.overdue).is_(True), col(TaskRecord.due_at) <= now)
        if filters.due == "overdue":
            conditions.append(and_(running, late))
        else:
            today = now.astimezone(SHANGHAI).date()
            # A due time at 24:00 of its last day is stored as 00:00 of the next.
            days = 1 if filters.due == "today" else 7 - today.weekday()
            until = datetime.combine(today + timedelta(days=days), time(0), SHANGHAI)
            conditions.append(and_(running, ~late, col(TaskRecord.due_at) <= until))
    if filters.supervised:
        conditions.append(or_(col(TaskRecord.escalations) > 0, pending_notice_exists()))
    if filters.search:
        text = filters.search
        # Per listed task, one look-up of its case by primary key: never a scan of every case.
        conditions.append(
            exists().where(
                col(CaseRecord.case_id) == col(TaskRecord.case_id),
                or_(
                    col(CaseRecord.case_id) == text,
                    col(CaseRecord.case_no).contains(text, autoescape=True),
                    col(CaseRecord.applicant_name).contains(text, autoescape=True),
                ),
            )
        )
    return conditions


def listing(session: Session, query: InboxQuery, now: datetime | None = None) -> tuple[list[TaskRecord], int]:
    status = query.status
    conditions: list[ColumnElement[bool]] = [col(TaskRecord.status).in_([status.value] if status else INBOX_STATUSES)]
    conditions += _scope(query)
    conditions += _filter_conditions(query.filters, now or datetime.now(UTC))
    total = session.execute(select(func.count()).select_from(TaskRecord).where(*conditions)).scalar_one()
    rows = session.execute(
        select(TaskRecord)
        .where(*conditions)
        .order_by(col(TaskRecord.due_at).asc(), col(TaskRecord.task_id))
        .limit(query.limit)
        .offset(query.offset)
    ).scalars()
    return list(rows), int(total)

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
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import ColumnElement, func, select
from sqlmodel import Session, col

from models.case import Actor, StepStatus
from models.errors import DomainError, ErrorCode
from models.tables import InboxVersion, TaskRecord
from services.access import require_role

Versions = dict[str, tuple[int, datetime]]
"""Each department's inbox version and when it last changed."""

# Part of every ETag: changing what GET /tasks answers (its fields) means changing this.
ETAG_FORMAT = "inbox-1"
INBOX_STATUSES = [StepStatus.OPEN.value, StepStatus.CLAIMED.value, StepStatus.AWAITING_SUPPLEMENT.value]


@dataclass(frozen=True)
class InboxQuery:
    """One inbox listing as its caller may read it (``inbox_query`` decides)."""

    role: str
    department: str | None  # None: every department (supervisors and admins)
    role_filter: str | None  # officers and clerks list only the tasks their role acts on
    status: StepStatus | None
    limit: int
    offset: int

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


def inbox_query(actor: Actor, status: StepStatus | None, department: str | None, limit: int, offset: int) -> InboxQuery:
    """The inbox listing ``actor`` may read: officers and clerks their own department only."""
    require_role(actor, "officer", "clerk", "supervisor", "admin")
    role_filter = None
    if actor.role in {"officer", "clerk"}:
        if department not in (None, actor.unit):
            raise DomainError(ErrorCode.FORBIDDEN, "只能查看本部门的任务 (own department only)")
        department = actor.unit
        # A clerk's inbox holds only the tasks clerks may act on (e.g. 出件).
        role_filter = actor.role
    return InboxQuery(actor.role, department or None, role_filter, status, limit, offset)


def inbox_tasks(
    session: Session, actor: Actor, status: StepStatus | None, department: str | None, limit: int, offset: int
) -> tuple[list[TaskRecord], int]:
    """One page of the inbox ``actor`` may read, oldest due first, and its total (the JSON inbox and the console's)."""
    return listing(session, inbox_query(actor, status, department, limit, offset))


def inbox_etag(
    session: Session, actor: Actor, status: StepStatus | None, department: str | None, limit: int, offset: int
) -> str:
    """The ETag ``GET /tasks`` answers now for this listing (the console renders it into its inbox page)."""
    query = inbox_query(actor, status, department, limit, offset)
    return query.etag(read_versions(session, query.department))


def listing(session: Session, query: InboxQuery) -> tuple[list[TaskRecord], int]:
    status = query.status
    conditions: list[ColumnElement[bool]] = [col(TaskRecord.status).in_([status.value] if status else INBOX_STATUSES)]
    if query.department:
        conditions.append(col(TaskRecord.department) == query.department)
    if query.role_filter:
        conditions.append(col(TaskRecord.roles).contains(query.role_filter))
    total = session.execute(select(func.count()).select_from(TaskRecord).where(*conditions)).scalar_one()
    rows = session.execute(
        select(TaskRecord)
        .where(*conditions)
        .order_by(col(TaskRecord.due_at).asc(), col(TaskRecord.task_id))
        .limit(query.limit)
        .offset(query.offset)
    ).scalars()
    return list(rows), int(total)

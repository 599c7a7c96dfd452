"""Who may see which case: the one rule set every route applies."""

from __future__ import annotations

from sqlalchemy import ColumnElement, exists, false, or_, select, true
from sqlmodel import Session, col

from models.case import Actor, Role
from models.errors import DomainError, ErrorCode
from models.tables import CaseRecord, TaskRecord


def case_departments(record: CaseRecord) -> set[str]:
    # Departments whose step has opened (has an opening time): a step a refusal
    # cancelled before it opened gives its department no sight of the case. The
    # same rule as visible_cases_filter (lists, inboxes).
    return {step["department"] for step in record.snapshot.get("steps", []) if step.get("opened_at")}


def can_see_case(actor: Actor, record: CaseRecord) -> bool:
    if actor.role in {"supervisor", "admin"}:
        return True
    if actor.role == "applicant":
        return record.owner == actor.username
    if actor.role == "clerk":
        return record.accepting_unit == actor.unit or actor.unit in case_departments(record)
    return actor.role == "officer" and actor.unit in case_departments(record)


def is_case_staff(actor: Actor, record: CaseRecord) -> bool:
    return actor.role != "applicant" and can_see_case(actor, record)


def visible_case(session: Session, actor: Actor, case_id: str) -> CaseRecord:
    """The case if the actor may see it; otherwise 404, so strangers learn nothing."""
    record = session.get(CaseRecord, case_id)
    if record is None or not can_see_case(actor, record):
        raise DomainError(ErrorCode.NOT_FOUND, "案件不存在或无权查看 (no such case)")
    return record


def visible_cases_filter(actor: Actor) -> ColumnElement[bool]:
    """The SQL condition equivalent to can_see_case, for lists."""
    if actor.role in {"supervisor", "admin"}:
        return true()
    if actor.role == "applicant":
        return col(CaseRecord.owner) == actor.username
    has_task = exists(
        select(col(TaskRecord.task_id)).where(
            col(TaskRecord.case_id) == col(CaseRecord.case_id),
            col(TaskRecord.department) == actor.unit,
            col(TaskRecord.opened_at).is_not(None),
        )
    )
    if actor.role == "clerk":
        return or_(col(CaseRecord.accepting_unit) == actor.unit, has_task)
    if actor.role == "officer":
        return has_task
    return false()


def require_role(actor: Actor, *roles: Role) -> None:
    if actor.role not in roles:
        raise DomainError(ErrorCode.FORBIDDEN, "当前角色无权进行此操作 (not allowed for your role)")

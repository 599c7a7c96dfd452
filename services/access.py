"""Who may see which case: the one rule set every route applies."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from sqlalchemy import ColumnElement, String, and_, cast, exists, false, or_, select, true
from sqlmodel import Session, col

from domain.divisions import DEFAULT_COUNTY
from models.case import Actor, Role
from models.errors import DomainError, ErrorCode
from models.tables import CaseRecord, TaskRecord


def works_on_unrouted_tasks(actor: Actor) -> bool:
    """Tasks of cases accepted before routing have no unit: they stay with their department in
    the default county (where every account worked before units), or with an account in no unit."""
    return actor.unit_code is None or actor.division_code == DEFAULT_COUNTY


def in_unit_scope(actor: Actor, department: str, unit_code: str | None) -> bool:
    """Whether a task of ``department`` routed to ``unit_code`` is the officer's or clerk's unit's."""
    if department != actor.unit:
        return False
    if unit_code is None:
        return works_on_unrouted_tasks(actor)
    return unit_code == actor.unit_code


def task_unit_scope(actor: Actor) -> ColumnElement[bool]:
    """The SQL form of :func:`in_unit_scope` for task rows: the actor's unit's tasks."""
    unrouted = col(TaskRecord.unit_code).is_(None) if works_on_unrouted_tasks(actor) else false()
    routed = col(TaskRecord.unit_code) == actor.unit_code if actor.unit_code is not None else false()
    return and_(col(TaskRecord.department) == actor.unit, or_(routed, unrouted))


def case_in_unit_scope(actor: Actor, record: CaseRecord) -> bool:
    # Steps that have opened (have an opening time): a step a refusal cancelled before it opened
    # gives its unit no sight of the case. The same rule as visible_cases_filter (lists, inboxes).
    return any(
        in_unit_scope(actor, step["department"], (step.get("unit") or {}).get("code"))
        for step in record.snapshot.get("steps", [])
        if step.get("opened_at")
    )


def accepted_by_actors_window(actor: Actor, record: CaseRecord) -> bool:
    if record.accepting_unit != actor.unit:
        return False
    if record.accepting_unit_code is None:
        return works_on_unrouted_tasks(actor)
    return record.accepting_unit_code == actor.unit_code


def accepted_by_actors_window_filter(actor: Actor) -> ColumnElement[bool]:
    """The SQL form of :func:`accepted_by_actors_window`."""
    unrouted = col(CaseRecord.accepting_unit_code).is_(None) if works_on_unrouted_tasks(actor) else false()
    routed = col(CaseRecord.accepting_unit_code) == actor.unit_code if actor.unit_code is not None else false()
    return and_(col(CaseRecord.accepting_unit) == actor.unit, or_(routed, unrouted))


def can_see_case(actor: Actor, record: CaseRecord) -> bool:
    if actor.role in {"supervisor", "admin"}:
        return True
    if actor.role == "applicant":
        return record.owner == actor.username
    if actor.role == "clerk":
        return accepted_by_actors_window(actor, record) or case_in_unit_scope(actor, record)
    return actor.role == "officer" and case_in_unit_scope(actor, record)


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
            task_unit_scope(actor),
            col(TaskRecord.opened_at).is_not(None),
        )
    )
    if actor.role == "clerk":
        return or_(accepted_by_actors_window_filter(actor), has_task)
    if actor.role == "officer":
        return has_task
    return false()


def require_role(actor: Actor, *roles: Role) -> None:
    if actor.role not in roles:
        raise DomainError(ErrorCode.FORBIDDEN, "当前角色无权进行此操作 (not allowed for your role)")


def _like_escaped(text: str) -> str:
    return text.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")


def case_search(query: str) -> ColumnElement[bool]:
    """Cases a staff search names: the case number (whole, or its last digits as read out on
    the phone), the technical case id, or part of the applicant's name. Combined with
    visible_cases_filter, so a search never reaches beyond the caller's cases."""
    text = query.strip()
    pattern = _like_escaped(text)
    return or_(
        col(CaseRecord.case_no) == text,
        col(CaseRecord.case_no).like(f"%{pattern}", escape="\\") if text.isdigit() and len(text) >= 3 else false(),
        col(CaseRecord.case_id) == text,
        col(CaseRecord.applicant_name).like(f"%{pattern}%", escape="\\"),
    )


def form_id_numbers(form: Mapping[str, Any] | None) -> set[str]:
    """Every ID number (公民身份号码) an application holds — the applicant's, the mother's and
    father's, the deceased's, the retiree's, the legal representative's… — in capitals."""
    found: set[str] = set()

    def walk(value: Any) -> None:
        if isinstance(value, Mapping):
            for key, item in value.items():
                if key == "id_number" and isinstance(item, str):
                    found.add(item.strip().upper())
                else:
                    walk(item)
        elif isinstance(value, list):
            for item in value:
                walk(item)

    walk(form)
    return found


def id_number_search(id_number: str) -> ColumnElement[bool]:
    """Cases whose application (as filed) holds this value somewhere: a first cut in SQL on the
    stored JSON's text, which callers confirm with :func:`form_id_numbers` (the value must be an
    ``id_number``). Cases filed before the read model kept the application are not found."""
    text = _like_escaped(id_number.strip().upper())
    return cast(col(CaseRecord.form), String).like(f'%"{text}"%', escape="\\")

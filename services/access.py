"""Who may see which case: the one rule set every route applies."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from sqlalchemy import ColumnElement, Select, String, and_, cast, exists, false, or_, select, true
from sqlmodel import Session, col

from domain.divisions import DEFAULT_COUNTY, PROVINCE, subtree_codes
from models.case import Actor, Role
from models.errors import DomainError, ErrorCode
from models.tables import CaseRecord, TaskRecord, Unit


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


# --- supervisors: a division and its subtree -----------------------------------------------


def supervised_division(actor: Actor) -> str:
    """The division a supervisor oversees (GB/T 2260): theirs, or the province (330000) for a
    province supervisor (no division) and an admin."""
    if actor.role == "supervisor" and actor.division_code:
        return actor.division_code
    return PROVINCE


def supervised_divisions(actor: Actor) -> set[str] | None:
    """Every division a supervisor sees (their division and those within it: 杭州市 sees its
    counties, 上城区 only itself); None is everything (a province supervisor, an admin)."""
    division = supervised_division(actor)
    return None if division == PROVINCE else subtree_codes(division)


def task_division(unit_division: str | None) -> str:
    """The division a task counts in: its unit's, or the default county for a task without a
    unit (a case from before routing), as works_on_unrouted_tasks has it."""
    return unit_division or DEFAULT_COUNTY


def _units_within(divisions: set[str]) -> Select[Any]:
    return select(col(Unit.code)).where(col(Unit.division_code).in_(sorted(divisions))).correlate(None)


def tasks_within(divisions: set[str] | None) -> ColumnElement[bool]:
    """Task rows routed to a unit in these divisions (None: all), and those without a unit when
    the default county 330102 is one of them."""
    if divisions is None:
        return true()
    unrouted = col(TaskRecord.unit_code).is_(None) if DEFAULT_COUNTY in divisions else false()
    return or_(unrouted, col(TaskRecord.unit_code).in_(_units_within(divisions)))


def supervised_tasks_filter(actor: Actor) -> ColumnElement[bool]:
    """Task rows a supervisor sees: those of their subtree (tasks_within)."""
    return tasks_within(supervised_divisions(actor))


def supervised_cases_filter(actor: Actor) -> ColumnElement[bool]:
    """Cases a supervisor sees: one with an opened step in their subtree (supervised_tasks_filter),
    or accepted at a window of a unit in it."""
    divisions = supervised_divisions(actor)
    if divisions is None:
        return true()
    has_task = exists(
        select(col(TaskRecord.task_id))
        .where(
            col(TaskRecord.case_id) == col(CaseRecord.case_id),
            col(TaskRecord.opened_at).is_not(None),
            supervised_tasks_filter(actor),
        )
        .correlate_except(TaskRecord)  # the case's own tasks, also in a query that joins tasks
    )
    return or_(has_task, col(CaseRecord.accepting_unit_code).in_(_units_within(divisions)))


def case_in_supervised_divisions(actor: Actor, record: CaseRecord) -> bool:
    """The Python form of :func:`supervised_cases_filter`, for one case: its opened steps' units
    as routed (the snapshot), then its window's unit."""
    divisions = supervised_divisions(actor)
    if divisions is None:
        return True
    for step in record.snapshot.get("steps", []):
        if step.get("opened_at") and task_division((step.get("unit") or {}).get("division_code")) in divisions:
            return True
    if record.accepting_unit_code is None:
        return False
    session = Session.object_session(record)
    unit = session.get(Unit, record.accepting_unit_code) if session is not None else None
    return unit is not None and unit.division_code in divisions


# --- every role ------------------------------------------------------------------------------


def can_see_case(actor: Actor, record: CaseRecord) -> bool:
    if actor.role == "supervisor":
        return case_in_supervised_divisions(actor, record)
    if actor.role == "admin":
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
    if actor.role == "supervisor":
        return supervised_cases_filter(actor)
    if actor.role == "admin":
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

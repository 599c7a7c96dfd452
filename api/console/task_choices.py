"""What the officer's task page offers beside 办结: which task operations are open to the
officer now, the units a task may be transferred to (转办) and the colleagues it may be
reassigned to (改派). Read from the read model; the workflow's validators still decide."""

from __future__ import annotations

from typing import Any

from sqlalchemy import select
from sqlmodel import Session, col

from models.case import Actor, StepStatus, StepView
from models.tables import TaskRecord, Unit, UserAccount


def operations_context(session: Session, actor: Actor, task: TaskRecord, step: StepView | None) -> dict[str, Any]:
    status = step.status if step else StepStatus(task.status)
    assignee = step.assignee if step else task.assignee
    mine = assignee == actor.username
    # An officer manages an unclaimed task or their own; 回访 tasks are the supervisors' and stay as they are.
    manages = actor.role == "officer" and status in {StepStatus.OPEN, StepStatus.CLAIMED} and (assignee is None or mine)
    current_unit = step.unit.code if step and step.unit else task.unit_code
    units: list[tuple[str, str]] = []
    colleagues: list[tuple[str, str]] = []
    if manages:
        unit_rows = session.execute(
            select(col(Unit.code), col(Unit.name_zh))
            .where(col(Unit.department) == task.department, col(Unit.active).is_(True))
            .order_by(col(Unit.division_code), col(Unit.code))
        ).all()
        units = [(code, name) for code, name in unit_rows if code != current_unit]
        if actor.unit_code is not None:
            people = session.execute(
                select(col(UserAccount.username), col(UserAccount.display_name_zh))
                .where(
                    col(UserAccount.unit_code) == actor.unit_code,
                    col(UserAccount.role) == "officer",
                    col(UserAccount.username) != actor.username,
                )
                .order_by(col(UserAccount.username))
            ).all()
            colleagues = [(username, name or username) for username, name in people]
    return {
        "can_unclaim": actor.role == "officer" and status == StepStatus.CLAIMED and mine,
        "can_transfer": manages and bool(units),
        "can_reassign": manages and bool(colleagues),
        "can_suspend": actor.role == "officer" and status == StepStatus.CLAIMED and mine,
        "can_ask_extension": (
            actor.role == "officer"
            and status == StepStatus.CLAIMED
            and mine
            and step is not None
            and step.extension_request is None
            and not step.overdue
        ),
        "can_resume": actor.role == "officer" and status == StepStatus.SUSPENDED and mine,
        "transfer_units": units,
        "colleagues": colleagues,
    }

"""How a case's changes reach the read model.

A case started with the ``one-write-per-change`` patch writes everything one workflow task
changed at once (``CaseWrites.write``): state, events, and what those changes caused —
notifications, 督办, audit rows — collected in ``PendingWrites`` meanwhile. A case started
before the patch replays its first-edition activities: a notification, 督办 or manual
notice each of its own (the same commands its history holds).
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, field
from typing import Any

from temporalio import workflow

from workflows.kit import calls
from workflows.kit.calls import ONE_WRITE_PATCH, WRITES_AFTER_TASK_PATCH

with workflow.unsafe.imports_passed_through():
    from models.case import (
        AuditEntry,
        CaseChanges,
        CaseEvent,
        CaseSnapshot,
        EscalationInput,
        NotificationInput,
        ProjectCaseInput,
        SupervisionNoticeInput,
    )


@dataclass
class PendingWrites:
    notifications: list[NotificationInput] = field(default_factory=list)
    escalations: list[EscalationInput] = field(default_factory=list)
    supervision_notices: list[SupervisionNoticeInput] = field(default_factory=list)
    audit: list[AuditEntry] = field(default_factory=list)
    finished_steps: set[str] = field(default_factory=set)
    notifications_sent: int = 0
    form: dict[str, Any] | None = None  # the application, until the first write takes it
    applicant_key: str | None = None  # taken with the form

    def notify(self, notification: NotificationInput) -> None:
        # Numbered in the case, so a retried or rebuilt write finds its own row.
        self.notifications_sent += 1
        key = f"{notification.case_id}:n{self.notifications_sent}"
        self.notifications.append(notification.model_copy(update={"notification_id": key}))

    def finished(self, step: str) -> None:
        self.finished_steps.add(step)

    def take(self, snapshot: CaseSnapshot, events: list[CaseEvent], history: list[CaseEvent]) -> CaseChanges:
        """The next write, emptying what is pending."""
        changes = CaseChanges(
            snapshot=snapshot,
            events=events,
            notifications=self.notifications,
            escalations=self.escalations,
            supervision_notices=self.supervision_notices,
            audit=self.audit,
            finished_step_events=[event for event in history if event.step in self.finished_steps],
            form=self.form,
            applicant_key=self.applicant_key if self.form is not None else None,
        )
        self.notifications, self.escalations, self.supervision_notices, self.audit = [], [], [], []
        self.finished_steps = set()
        self.form = None
        return changes


class CaseWrites:
    """The case's writes, by the edition its history was started with."""

    def __init__(self) -> None:
        self.one_write = workflow.patched(ONE_WRITE_PATCH)
        self.after_task = self.one_write and workflow.patched(WRITES_AFTER_TASK_PATCH)
        self.pending = PendingWrites()
        self._sent: list[asyncio.Task[None]] = []  # first edition: notifications in flight

    def notify(self, notification: NotificationInput) -> None:
        if self.one_write:
            self.pending.notify(notification)
        else:
            self._sent.append(asyncio.create_task(calls.send_notification(notification)))

    def audit(self, entry: AuditEntry | None) -> None:
        """The staff action's audit row goes with the write that records its change."""
        if entry is not None:
            self.pending.audit.append(entry if entry.at else entry.model_copy(update={"at": workflow.now()}))

    async def escalate(self, escalation: EscalationInput) -> None:
        if self.one_write:
            self.pending.escalations.append(escalation)
        else:
            await calls.escalate_overdue_step(escalation)

    async def supervision_notice(self, notice: SupervisionNoticeInput) -> None:
        if self.one_write:
            self.pending.supervision_notices.append(notice)
        else:
            await calls.record_supervision_notice(notice)

    async def write(self, snapshot: CaseSnapshot, events: list[CaseEvent], history: list[CaseEvent]) -> None:
        if self.one_write:
            await calls.write_case_changes(self.pending.take(snapshot, events, history), after_task=self.after_task)
        else:
            audit, self.pending.audit = self.pending.audit, []
            await calls.project_case(ProjectCaseInput(snapshot=snapshot, events=events, audit=audit))

    async def sent(self) -> None:
        """Every first-edition notification delivered."""
        await asyncio.gather(*self._sent)

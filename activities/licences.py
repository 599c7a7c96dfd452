"""Issuing electronic licences (电子证照): when a step whose result is a certificate completes
(domain/data/licences.yaml), the worker writes its licence, signed, in the transaction that
writes the step's completion. A retried write issues nothing twice (the number is the case's
and the step's); a rebuild of the read model issues nothing again (it does not come here)."""

from __future__ import annotations

import base64
from datetime import datetime
from typing import Any

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from sqlmodel import Session

from domain.licences import canonical, licence_number, licence_type
from domain.workcalendar import SHANGHAI
from infra.db import insert_new
from models.case import CaseChanges, EventType, StepStatus, StepView
from models.tables import LicenceRecord


def licence_content(
    number: str, title_zh: str, changes: CaseChanges, step: StepView, issued_at: datetime, form: dict[str, Any]
) -> dict[str, Any]:
    """What the licence says, and what is signed: the issuing step's result and the holder."""
    snapshot = changes.snapshot
    applicant = form.get("applicant") or {}
    return {
        "number": number,
        "title_zh": title_zh,
        "thing_zh": snapshot.thing_zh,
        "case_no": snapshot.case_no or snapshot.case_id,
        "issuer_zh": issuer_of(step),
        "issued_at": issued_at.astimezone(SHANGHAI).isoformat(),
        "holder_name": applicant.get("name"),
        "holder_id_number": applicant.get("id_number"),
        "result": step.result or {},
    }


def issuer_of(step: StepView) -> str:
    return step.unit.name_zh if step.unit is not None else step.department_zh


def issue_licences(
    session: Session, changes: CaseChanges, form: dict[str, Any] | None, key: Ed25519PrivateKey, now: datetime
) -> list[str]:
    """The licences of the steps this change completed; their numbers."""
    completed = {event.step for event in changes.finished_step_events if event.type == EventType.COMPLETED}
    rows: list[dict[str, Any]] = []
    for step in changes.snapshot.steps:
        kind = licence_type(changes.snapshot.thing, step.step)
        if kind is None or step.step not in completed or step.status != StepStatus.DONE:
            continue
        issued_at = step.completed_at or now
        number = licence_number(changes.snapshot.case_id, step.step, issued_at.astimezone(SHANGHAI).year)
        content = licence_content(number, kind.title_zh, changes, step, issued_at, form or {})
        rows.append(
            {
                "number": number,
                "case_id": changes.snapshot.case_id,
                "thing": changes.snapshot.thing,
                "step": step.step,
                "title_zh": kind.title_zh,
                "issuer_zh": issuer_of(step),
                "issued_at": issued_at,
                "status": "valid",
                "content": content,
                "signature": base64.b64encode(key.sign(canonical(content))).decode(),
            }
        )
    insert_new(session, LicenceRecord, rows)
    return [str(row["number"]) for row in rows]

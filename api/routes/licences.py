"""Electronic licences (电子证照): a case's licences, a licence's PDF for its holder and the case's
staff, and the public check of a licence by its number (no personal data in the answer)."""

from __future__ import annotations

from datetime import datetime
from typing import Literal

from fastapi import APIRouter, Request, Response
from pydantic import BaseModel, ConfigDict, Field
from sqlmodel import Session, col, select
from starlette.concurrency import run_in_threadpool

from api.deps import ActorDep, EngineDep, SettingsDep, require_role
from api.errors import error_responses
from api.schemas import CaseId, LicenceNumber
from documents.licence_pdf import render_licence_pdf
from domain.catalogue import shipped_definitions
from domain.licences import licence_type, signature_holds
from infra.signing import verify_keys
from models.case import Actor
from models.errors import DomainError, ErrorCode
from models.tables import LicenceRecord
from services.access import visible_case
from services.audit import AuditAction, record_staff_action
from services.case_files import may_read_files

router = APIRouter(tags=["licences"], responses=error_responses(401, 403, 404))


class LicenceSummary(BaseModel):
    number: str
    step: str
    title_zh: str
    issued_at: datetime
    reused_by: list[str] = Field(default=[], description="later steps that take this licence instead of the paper")


class LicenceCheck(BaseModel):
    status: Literal["valid", "revoked", "unknown"]
    title_zh: str | None = None
    issued_at: datetime | None = None
    issuer: str | None = None


@router.get("/cases/{case_id}/licences", response_model=list[LicenceSummary])
def case_licences(case_id: CaseId, actor: ActorDep, engine: EngineDep) -> list[LicenceSummary]:
    with Session(engine) as session:
        visible_case(session, actor, case_id)
        rows = session.execute(
            select(LicenceRecord).where(col(LicenceRecord.case_id) == case_id).order_by(col(LicenceRecord.issued_at))
        ).scalars()
        return [
            LicenceSummary(
                number=row.number,
                step=row.step,
                title_zh=row.title_zh,
                issued_at=row.issued_at,
                reused_by=kind.reused_by if (kind := licence_type(row.thing, row.step)) is not None else [],
            )
            for row in rows
        ]


def _licence_for(engine: object, actor: Actor, number: str) -> LicenceRecord:
    with Session(engine) as session:  # type: ignore[arg-type]
        licence = session.get(LicenceRecord, number)
        if licence is None:
            raise DomainError(ErrorCode.NOT_FOUND, "电子证照不存在 (no such licence)")
        record = visible_case(session, actor, licence.case_id)
        # The holder and the staff who work on the case; the licence holds personal data in full.
        if not may_read_files(actor, record):
            raise DomainError(
                ErrorCode.FORBIDDEN, "仅持证人和经办人员可以下载证照 (the holder and the case's staff only)"
            )
        return licence


def _labels(thing: str, step: str) -> dict[str, str]:
    definition = shipped_definitions().get(thing)
    if definition is None:
        return {}
    return {name: spec.label_zh for name, spec in definition.step(step).result.items()}


@router.get(
    "/licences/{number}",
    response_class=Response,
    responses={200: {"content": {"application/pdf": {}}, "description": "the licence's PDF"}},
)
async def licence_pdf(number: LicenceNumber, actor: ActorDep, engine: EngineDep, request: Request) -> Response:
    licence = await run_in_threadpool(_licence_for, engine, actor, number)
    verify_url = str(request.url_for("verify_licence", number=number))
    content = await run_in_threadpool(
        render_licence_pdf, licence.content, licence.signature, verify_url, _labels(licence.thing, licence.step)
    )
    disposition = f'attachment; filename="{number}.pdf"'
    return Response(content, media_type="application/pdf", headers={"Content-Disposition": disposition})


@router.get("/licences/{number}/verify", response_model=LicenceCheck, name="verify_licence")
def verify_licence(number: LicenceNumber, engine: EngineDep, settings: SettingsDep) -> LicenceCheck:
    """Public (the address in the licence's QR code): valid, revoked or unknown; a licence whose
    stored content no longer matches its signature is not one the platform issued: unknown."""
    with Session(engine) as session:
        licence = session.get(LicenceRecord, number)
    # Any key the platform signed with holds: the current one and those retired by a rotation.
    keys = verify_keys(settings).values()
    if licence is None or not any(signature_holds(licence.content, licence.signature, key) for key in keys):
        return LicenceCheck(status="unknown")
    status: Literal["valid", "revoked"] = "revoked" if licence.status == "revoked" else "valid"
    return LicenceCheck(status=status, title_zh=licence.title_zh, issued_at=licence.issued_at, issuer=licence.issuer_zh)


class RevokeLicenceRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")

    reason: str = Field(min_length=2, max_length=500, description="why the licence no longer holds (依法撤销的理由)")


@router.post("/licences/{number}/revoke", response_model=LicenceCheck, responses=error_responses(409, 422))
def revoke_licence(
    number: LicenceNumber, body: RevokeLicenceRequest, actor: ActorDep, engine: EngineDep, settings: SettingsDep
) -> LicenceCheck:
    """撤销: an administrator revokes a licence (a court ruling, an error found later); its check
    answers revoked from then on, and the audit log keeps who did it and why."""
    require_role(actor, "admin")
    with Session(engine) as session:
        licence = session.get(LicenceRecord, number)
        if licence is None:
            raise DomainError(ErrorCode.NOT_FOUND, "电子证照不存在 (no such licence)")
        if licence.status == "revoked":
            raise DomainError(ErrorCode.CONFLICT, "该证照已撤销 (the licence is revoked already)")
        licence.status = "revoked"
        session.add(licence)
        session.commit()
        case_id = licence.case_id
    record_staff_action(
        engine, actor, AuditAction.LICENCE_REVOKE, case_id=case_id, target=number, detail={"reason": body.reason}
    )
    return verify_licence(number, engine, settings)

"""A walk-in applicant without an account follows and rates their case through the signed link
the acceptance SMS carried (domain/follow_links.py): no login, the link is the key. The page
shows the case as a stranger may see it (personal data masked) and, in the rating period, the
好差评 form (§8.1.2: ratings on every channel)."""

from __future__ import annotations

from datetime import UTC, datetime

from fastapi import Request, Response
from pydantic import ValidationError
from sqlmodel import Session

from api.console.applicant import SCORE_LABELS, refusal_of
from api.console.base import console_router, flash_redirect, form_text, render
from api.routes.cases import RatingRequest
from domain.follow_links import read_follow_token
from domain.redaction import masked
from models.case import CaseSnapshot
from models.errors import DomainError, ErrorCode
from models.tables import CaseRecord
from services.cases import rate_walk_in

router = console_router()

LINK_REFUSED = "链接无效或已过期，请凭受理通知书到窗口查询 (the link is invalid or has expired)"


def _linked_case(request: Request, token: str) -> CaseRecord:
    case_id = read_follow_token(token, request.app.state.settings.secret_key, datetime.now(UTC))
    with Session(request.app.state.engine) as session:
        record = session.get(CaseRecord, case_id) if case_id is not None else None
    # The link follows a walk-in case nobody owns; once its applicant signs in, their account does.
    if record is None or record.owner is not None:
        raise DomainError(ErrorCode.NOT_FOUND, LINK_REFUSED)
    return record


@router.get("/follow/{token}")
def follow_case(request: Request, token: str) -> Response:
    record = _linked_case(request, token)
    snapshot = masked(CaseSnapshot.model_validate(record.snapshot))
    context = {"case": snapshot, "token": token, "score_labels": SCORE_LABELS, "rated": bool(snapshot.ratings)}
    return render(request, "follow_case.html", context)


@router.post("/follow/{token}/rating")
async def follow_case_rating(request: Request, token: str) -> Response:
    record = _linked_case(request, token)
    form = await request.form()
    try:
        body = RatingRequest(score=int(form_text(form, "score") or 0), comment=form_text(form, "comment") or None)
    except (ValueError, ValidationError):
        return flash_redirect(request, f"/follow/{token}", "请选择 1 至 5 分的评价（评价意见不超过500字）", "error")
    error = await refusal_of(
        rate_walk_in(record.case_id, score=body.score, comment=body.comment, client=request.app.state.temporal_client)
    )
    if error is not None:
        return flash_redirect(request, f"/follow/{token}", f"评价未提交：{error.message}", kind="error")
    return flash_redirect(request, f"/follow/{token}", "感谢您的评价！")

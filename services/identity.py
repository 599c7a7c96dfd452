"""Applicants' verified identities (实名): who may file a case for whom, and walk-in cases that
become their applicant's account when that person signs in.

An applicant files for themself (the form's applicant is the signed-in person) or as 代办 for
another person (the form's applicant is the principal) with an authorization material. Staff
at a window check the person's ID card themselves; their filings are not checked here.
"""

from __future__ import annotations

import logging
from typing import Any

from sqlalchemy import Engine
from sqlmodel import Session, col, select
from starlette.concurrency import run_in_threadpool
from temporalio.client import Client, WorkflowUpdateFailedError
from temporalio.service import RPCError

from domain.identity import person_key
from models.case import Actor, AdoptCaseInput, CaseSnapshot, ProxyFiling
from models.errors import DomainError, ErrorCode
from models.tables import CaseRecord, UserAccount
from services.gateway import send_update
from workflows.case.workflow import CaseWorkflow

logger = logging.getLogger(__name__)

NOT_SELF = (
    "申请人须为登录本人；为他人申请请选择代办并附授权委托书 "
    "(the applicant must be the signed-in person, or file as 代办 with an authorization)"
)


def applicant_key_of(form: dict[str, Any], secret: str) -> str | None:
    """The keyed hash of the form's applicant's ID number (every form names an applicant)."""
    applicant = form.get("applicant")
    number = applicant.get("id_number") if isinstance(applicant, dict) else None
    return person_key(number, secret) if isinstance(number, str) else None


def verified_account(session: Session, actor: Actor) -> UserAccount:
    account = session.get(UserAccount, actor.username)
    if account is None or account.person_key is None or account.person_name is None:
        raise DomainError(
            ErrorCode.FORBIDDEN, "账号未完成实名核验，不能提交申请 (the account has no verified identity)"
        )
    return account


def check_filer(
    account: UserAccount, form: dict[str, Any], authorization: str | None, applicant_key: str | None
) -> ProxyFiling | None:
    """本人 or 代办: None when the signed-in person is the form's applicant, the 代办 record when
    they file for the principal with an authorization; a 422 naming the field otherwise."""
    applicant = form.get("applicant") or {}
    if applicant_key == account.person_key:
        if authorization is not None:
            raise DomainError(
                ErrorCode.INVALID,
                "输入有误 (invalid input)",
                {"proxy": "本人申请无需代办 (the applicant is the signed-in person: not a proxy filing)"},
            )
        if applicant.get("name") != account.person_name:
            raise DomainError(
                ErrorCode.INVALID,
                "输入有误 (invalid input)",
                {"form.applicant.name": "申请人姓名与实名登录信息不一致 (not the verified name of this ID number)"},
            )
        return None
    if authorization is None:
        raise DomainError(ErrorCode.INVALID, "输入有误 (invalid input)", {"form.applicant.id_number": NOT_SELF})
    assert account.person_name is not None  # verified_account
    return ProxyFiling(
        agent_username=account.username, agent_name=account.person_name, authorization_material=authorization
    )


def _walk_in_cases(engine: Engine, actor: Actor) -> list[str]:
    with Session(engine) as session:
        account = session.get(UserAccount, actor.username)
        if account is None or account.person_key is None:
            return []
        return list(
            session.execute(
                select(col(CaseRecord.case_id)).where(
                    col(CaseRecord.applicant_key) == account.person_key, col(CaseRecord.owner).is_(None)
                )
            ).scalars()
        )


async def adopt_walk_in_cases(actor: Actor, client: Client, engine: Engine) -> list[str]:
    """Make the signed-in applicant's walk-in cases theirs (实名认领); the ids adopted. A case
    whose run has closed stays as it was: there is nothing left to follow or rate."""
    if actor.role != "applicant":
        return []
    adopted = []
    for case_id in await run_in_threadpool(_walk_in_cases, engine, actor):
        try:
            await send_update(
                client,
                case_id,
                CaseWorkflow.adopt,
                AdoptCaseInput(actor=actor),
                result_type=CaseSnapshot,
                update_id=f"adopt/{case_id}",
            )
        except (DomainError, WorkflowUpdateFailedError, RPCError) as error:
            logger.info("walk-in case %s not adopted: %s", case_id, type(error).__name__)
            continue
        adopted.append(case_id)
    return adopted

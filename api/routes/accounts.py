"""Accounts, for admins: end every sign-in session of an account (强制下线).

A stolen token, a lost phone, someone who left: the admin revokes the account's sessions and
every token issued to it is refused, by every API process within ``session_check_seconds``
(services/sessions.py). The account itself is kept; the next login starts a new session.
Accounts are created, re-passworded and removed with ``onething accounts`` (ops/accounts.py).
"""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Path, Response

from api.deps import ActorDep, EngineDep, LiveSessionsDep, SessionDep, require_role
from api.errors import error_responses
from models.errors import DomainError, ErrorCode
from models.tables import UserAccount
from services.audit import AuditAction, record_staff_action
from services.sessions import EndReason, end_sessions

router = APIRouter(prefix="/accounts", tags=["accounts"], responses=error_responses(401, 403, 422))

UsernamePath = Annotated[str, Path(max_length=64)]


@router.post("/{username}/sessions/revoke", status_code=204, responses=error_responses(404))
def revoke_sessions(
    username: UsernamePath, actor: ActorDep, session: SessionDep, engine: EngineDep, sessions: LiveSessionsDep
) -> Response:
    """End every sign-in session of the account: its tokens (and console logins) are refused from now on."""
    require_role(actor, "admin")
    if session.get(UserAccount, username) is None:
        raise DomainError(ErrorCode.NOT_FOUND, f"没有该账号 (no account {username!r})")
    ended = end_sessions(session, username, EndReason.REVOKED)
    sessions.ended(ended)
    record_staff_action(
        engine, actor, AuditAction.SESSIONS_REVOKE, case_id=None, target=username, detail={"sessions": len(ended)}
    )
    return Response(status_code=204)

"""Login: OAuth2 password form in, bearer token out; rate-limited per account and per address.

The password is checked and dropped: it is never logged or stored in clear.
"""

from __future__ import annotations

import logging
from typing import Annotated

from fastapi import APIRouter, Depends, Request
from fastapi.security import OAuth2PasswordRequestForm

from api.accounts import authenticate
from api.deps import ActorDep, SessionDep, SettingsDep
from api.errors import error_responses
from api.login_limits import check_login_allowed, record_login_attempt
from api.schemas import MeResponse, TokenResponse
from api.security import issue_token
from models.errors import DomainError, ErrorCode

router = APIRouter(prefix="/auth", tags=["auth"])
logger = logging.getLogger(__name__)


@router.post("/token", responses=error_responses(401, 413, 422, 429))
def login(
    form: Annotated[OAuth2PasswordRequestForm, Depends()],
    request: Request,
    session: SessionDep,
    settings: SettingsDep,
) -> TokenResponse:
    address = request.client.host if request.client else None
    check_login_allowed(session, settings, form.username, address)
    actor = authenticate(session, form.username, form.password)
    record_login_attempt(session, settings, form.username, address, succeeded=actor is not None)
    if actor is None:
        logger.info("failed login for account %r from %s", form.username, address)
        raise DomainError(ErrorCode.UNAUTHORIZED, "用户名或密码错误 (wrong username or password)")
    return TokenResponse(access_token=issue_token(actor, settings))


@router.get("/me", responses=error_responses(401))
def me(actor: ActorDep) -> MeResponse:
    return MeResponse(username=actor.username, role=actor.role, unit=actor.unit)

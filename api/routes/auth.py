"""Login: OAuth2 password form in, bearer token out."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends
from fastapi.security import OAuth2PasswordRequestForm

from api.accounts import authenticate
from api.deps import ActorDep, SessionDep, SettingsDep
from api.schemas import MeResponse, TokenResponse
from api.security import issue_token
from models.errors import DomainError, ErrorCode

router = APIRouter(prefix="/auth", tags=["auth"])


@router.post("/token")
def login(
    form: Annotated[OAuth2PasswordRequestForm, Depends()], session: SessionDep, settings: SettingsDep
) -> TokenResponse:
    actor = authenticate(session, form.username, form.password)
    if actor is None:
        raise DomainError(ErrorCode.UNAUTHORIZED, "用户名或密码错误 (wrong username or password)")
    return TokenResponse(access_token=issue_token(actor, settings))


@router.get("/me")
def me(actor: ActorDep) -> MeResponse:
    return MeResponse(username=actor.username, role=actor.role, unit=actor.unit)

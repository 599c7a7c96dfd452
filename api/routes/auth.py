"""Login: OAuth2 password form in, bearer token out; rate-limited per account and per address.
Logout: the token's sign-in session ends (services/sessions.py), and the token with it.

The password is checked and dropped: it is never logged or stored in clear.
"""

from __future__ import annotations

import logging
from typing import Annotated

from fastapi import APIRouter, Depends, Form, Request, Response
from fastapi.security import OAuth2PasswordRequestForm
from sqlalchemy import Engine
from sqlmodel import Session
from starlette.concurrency import run_in_threadpool

from api.accounts import authenticate
from api.deps import ActorDep, ClientDep, EngineDep, LiveSessionsDep, SessionDep, SettingsDep, SignedInDep
from api.errors import error_responses
from api.login_limits import login_succeeded, reserve_login_attempt
from api.schemas import MeResponse, TokenResponse
from api.security import issue_token, read_token
from models.case import Actor
from models.errors import DomainError, ErrorCode
from models.tables import UserAccount
from services.identity import adopt_walk_in_cases
from services.sessions import EndReason, end_session
from settings import Settings

router = APIRouter(prefix="/auth", tags=["auth"])
me_router = APIRouter(tags=["auth"])
logger = logging.getLogger(__name__)

USERNAME_MAX_LENGTH = 64  # the accounts table's column
PASSWORD_MAX_LENGTH = 256  # far beyond any real password; argon2 hashes all of it
# Scopes and client credentials are not used; a client may send them, short.
OAUTH2_FIELD_MAX_LENGTH = 256


class LoginForm(OAuth2PasswordRequestForm):
    """OAuth2's password form with every field bounded, so an oversized one is a 422 naming it
    (before anything is counted or hashed) and the bounds are in the OpenAPI document."""

    def __init__(
        self,
        *,
        grant_type: Annotated[str | None, Form(pattern="^password$")] = None,
        username: Annotated[str, Form(max_length=USERNAME_MAX_LENGTH)],
        password: Annotated[str, Form(max_length=PASSWORD_MAX_LENGTH, json_schema_extra={"format": "password"})],
        scope: Annotated[str, Form(max_length=OAUTH2_FIELD_MAX_LENGTH)] = "",
        client_id: Annotated[str | None, Form(max_length=OAUTH2_FIELD_MAX_LENGTH)] = None,
        client_secret: Annotated[
            str | None, Form(max_length=OAUTH2_FIELD_MAX_LENGTH, json_schema_extra={"format": "password"})
        ] = None,
    ) -> None:
        super().__init__(
            grant_type=grant_type,
            username=username,
            password=password,
            scope=scope,
            client_id=client_id,
            client_secret=client_secret,
        )


@router.post("/token", responses=error_responses(401, 413, 422, 429))
async def login(
    form: Annotated[LoginForm, Depends()],
    request: Request,
    engine: EngineDep,
    client: ClientDep,
    settings: SettingsDep,
) -> TokenResponse:
    address = request.client.host if request.client else None

    def checked_login() -> str:
        with Session(engine) as session:
            return authenticate_login(session, settings, form.username, form.password, address)

    token = await run_in_threadpool(checked_login)
    # Signed in: the walk-in cases filed for this person at a window become theirs.
    await adopt_walk_in_cases(read_token(token, settings), client, engine)
    return TokenResponse(access_token=token)


def authenticate_login(session: Session, settings: Settings, username: str, password: str, address: str | None) -> str:
    """A new access token for a correct password, within the login limits; the JSON login
    and the web console's login both come here. Raises RateLimited (429) or UNAUTHORIZED."""
    check_login_fields(username, password)
    engine = session.get_bind()
    assert isinstance(engine, Engine)
    attempt = reserve_login_attempt(engine, settings, username, address)  # 429 before any password check
    actor = authenticate(session, username, password)
    if actor is not None:
        login_succeeded(engine, attempt)
    if actor is None:
        logger.info("failed login for account %r from %s", username, address)
        raise DomainError(ErrorCode.UNAUTHORIZED, "用户名或密码错误 (wrong username or password)")
    return issue_token(actor, settings, session)


def check_login_fields(username: str, password: str) -> None:
    """Bounded before anything is counted or hashed: an oversized field is 422 naming it (the JSON
    login's LoginForm bounds them already; the web console's login form comes here)."""
    problems = {}
    if len(username) > USERNAME_MAX_LENGTH:
        problems["username"] = f"at most {USERNAME_MAX_LENGTH} characters"
    if len(password) > PASSWORD_MAX_LENGTH:
        problems["password"] = f"at most {PASSWORD_MAX_LENGTH} characters"
    if problems:
        raise DomainError(ErrorCode.INVALID, "用户名或密码过长 (username or password too long)", problems)


@router.post("/logout", status_code=204, responses=error_responses(401))
def logout(caller: SignedInDep, session: SessionDep, sessions: LiveSessionsDep) -> Response:
    """End the caller's own sign-in session: this token is refused from now on (by every API
    process within ``session_check_seconds``). The account's other sessions go on."""
    end_session(session, caller.session_id, EndReason.LOGOUT)
    sessions.ended([caller.session_id])
    return Response(status_code=204)


def _me(actor: Actor, session: Session) -> MeResponse:
    account = session.get(UserAccount, actor.username)
    return MeResponse(
        username=actor.username,
        role=actor.role,
        name=account.person_name if account is not None else None,
        id_number_masked=account.id_number_masked if account is not None else None,
        unit=actor.unit,
        unit_code=actor.unit_code,
        division_code=actor.division_code,
    )


@router.get("/me", responses=error_responses(401))
def auth_me(actor: ActorDep, session: SessionDep) -> MeResponse:
    return _me(actor, session)


@me_router.get("/me", responses=error_responses(401))
def me(actor: ActorDep, session: SessionDep) -> MeResponse:
    """The signed-in account; an applicant's with the identity it was verified as (实名)."""
    return _me(actor, session)

"""Applicants sign in through the configured OpenID Connect provider (infra/oidc.py): the
provider verifies the person; their account is found or made by that identity
(api/accounts.account_for_verified_person) and their walk-in cases become theirs.

The state and nonce travel in a signed, short-lived cookie (SameSite=Lax: it must come back on
the provider's redirect, a navigation from another site). The callback answers with a page that
moves on by itself, so the strict session cookie it sets is sent on the next, same-site, request."""

from __future__ import annotations

from fastapi import Request, Response
from fastapi.responses import RedirectResponse
from sqlmodel import Session
from starlette.concurrency import run_in_threadpool

from api.accounts import UnverifiedClaims, account_for_verified_person
from api.console.base import _mac, console_router, render, safe_next, set_session_cookie
from api.security import issue_token, read_token
from infra.oidc import OidcClient, OidcError
from models.errors import DomainError, ErrorCode
from services.identity import adopt_walk_in_cases
from settings import Settings

router = console_router()

OIDC_COOKIE = "onething_oidc"
OIDC_COOKIE_SECONDS = 600
NOT_CONFIGURED = "未配置统一身份认证 (OIDC sign-in is not configured)"
REFUSED = "统一身份认证登录未成功，请重试 (the identity provider's sign-in did not succeed)"


def _client(request: Request) -> OidcClient:
    settings: Settings = request.app.state.settings
    if settings.oidc_issuer is None:
        raise DomainError(ErrorCode.NOT_FOUND, NOT_CONFIGURED)
    client: OidcClient | None = getattr(request.app.state, "oidc_client", None)
    if client is None:
        client = request.app.state.oidc_client = OidcClient(settings)
    return client


def _sealed(settings: Settings, state: str, nonce: str, next_path: str) -> str:
    value = f"{state}|{nonce}|{next_path}"
    return f"{value}|{_mac(settings, 'oidc', value)}"


def _opened(settings: Settings, cookie: str | None) -> tuple[str, str, str] | None:
    if not cookie or cookie.count("|") != 3:
        return None
    state, nonce, next_path, mac = cookie.split("|")
    if mac != _mac(settings, "oidc", f"{state}|{nonce}|{next_path}"):
        return None
    return state, nonce, next_path


@router.get("/login/oidc")
async def oidc_login(request: Request, next: str | None = None) -> Response:
    client = _client(request)
    try:
        authorization = await client.authorization(str(request.url_for("oidc_callback")))
    except OidcError as error:
        raise DomainError(ErrorCode.UNAVAILABLE, REFUSED) from error
    settings: Settings = request.app.state.settings
    response = RedirectResponse(authorization.url, status_code=303)
    response.set_cookie(
        OIDC_COOKIE,
        _sealed(settings, authorization.state, authorization.nonce, safe_next(next) or ""),
        max_age=OIDC_COOKIE_SECONDS,
        httponly=True,
        samesite="lax",
        secure=settings.env == "prod",
        path="/login/oidc",
    )
    return response


@router.get("/login/oidc/callback", name="oidc_callback")
async def oidc_callback(request: Request, code: str = "", state: str = "") -> Response:
    client = _client(request)
    settings: Settings = request.app.state.settings
    opened = _opened(settings, request.cookies.get(OIDC_COOKIE))
    if opened is None or not code or opened[0] != state:
        raise DomainError(ErrorCode.UNAUTHORIZED, REFUSED)
    _, nonce, next_path = opened
    try:
        claims = await client.verified_claims(code, str(request.url_for("oidc_callback")), nonce)
    except OidcError as error:
        raise DomainError(ErrorCode.UNAUTHORIZED, REFUSED) from error

    def signed_in() -> str:
        with Session(request.app.state.engine) as session:
            actor = account_for_verified_person(session, claims, settings, settings.oidc_issuer or "")
            return issue_token(actor, settings, session)

    try:
        token = await run_in_threadpool(signed_in)
    except UnverifiedClaims as error:
        raise DomainError(ErrorCode.UNAUTHORIZED, REFUSED) from error
    actor = read_token(token, settings)
    await adopt_walk_in_cases(actor, request.app.state.temporal_client, request.app.state.engine)
    target = next_path or "/my/cases"
    response = render(request, "oidc_done.html", {"target": target}, actor=actor)
    set_session_cookie(response, token, settings)
    response.delete_cookie(OIDC_COOKIE, path="/login/oidc")
    return response

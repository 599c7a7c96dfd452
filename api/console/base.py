"""The web console's foundation: the session cookie, CSRF tokens, flash messages, page
rendering and the Chinese HTML error page.

The console is served by the API process. A session is the same signed JWT that
``POST /auth/token`` issues, kept in the ``onething_session`` cookie (the codec server
reads the same cookie), and it holds while its sign-in session is live (services/sessions.py):
logging out ends it. Every console route belongs to a router made by ``console_router()``:
its route class turns a missing login into a redirect to ``/login`` and every error
(DomainError, a refused workflow Update, a bad query) into an HTML page, never JSON.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import logging
import secrets
import uuid
from collections.abc import Callable, Coroutine, Mapping
from datetime import UTC, date, datetime
from pathlib import Path
from typing import Annotated, Any
from urllib.parse import quote, urlsplit

from fastapi import APIRouter, Depends, Request, Response
from fastapi.exceptions import RequestValidationError
from fastapi.responses import HTMLResponse, RedirectResponse
from fastapi.routing import APIRoute
from fastapi.templating import Jinja2Templates
from jinja2 import pass_context
from jinja2.runtime import Context
from sqlmodel import Session
from starlette.concurrency import run_in_threadpool
from starlette.datastructures import FormData
from starlette.exceptions import HTTPException as StarletteHTTPException
from temporalio.client import WorkflowUpdateFailedError
from temporalio.service import RPCError, RPCStatusCode

from api.console.messages import field_reason, has_chinese, input_label, request_problems, zh_text
from api.deps import SESSION_COOKIE as SESSION_COOKIE  # the console's name for it
from api.deps import end_token_session, signed_in
from api.errors import STATUS_BY_CODE, from_update_failure
from api.routes.auth import authenticate_login
from api.security import read_token
from domain.display import date_zh, datetime_zh, due_zh, overdue_zh, time_left_zh
from domain.workcalendar import WorkingCalendar
from models.case import CASE_STATUS_ZH, STEP_STATUS_ZH, Actor, CaseStatus, Role, StepStatus
from models.errors import DomainError, ErrorCode, RateLimited
from services.identity import adopt_walk_in_cases
from settings import Settings

logger = logging.getLogger(__name__)

FLASH_COOKIE = "onething_flash"
# Login has no session yet: a random nonce in its own cookie keys the login form's CSRF token.
LOGIN_NONCE_COOKIE = "onething_login_nonce"
CSRF_FIELD = "csrf_token"
IDEMPOTENCY_FIELD = "idempotency_key"

TEMPLATES_DIR = Path(__file__).resolve().parent.parent / "templates"
STATIC_DIR = Path(__file__).resolve().parent.parent / "static"

HOME_BY_ROLE: dict[str, str] = {
    "applicant": "/my/cases",
    "clerk": "/window",
    "officer": "/inbox",
    "supervisor": "/dashboard",
    "admin": "/dashboard",
}
ROLE_ZH: dict[str, str] = {
    "applicant": "申请人",
    "clerk": "窗口人员",
    "officer": "部门经办人",
    "supervisor": "效能监督员",
    "admin": "系统管理员",
}
# The navigation bar: (path, label, data-testid) per role.
NAV_BY_ROLE: dict[str, list[tuple[str, str, str]]] = {
    "applicant": [("/apply", "我要办理", "nav-apply"), ("/my/cases", "我的办件", "nav-my-cases")],
    # Clerks also deliver (出件) and supervisors follow up low ratings (回访) from the task inbox.
    "clerk": [("/window", "窗口受理", "nav-window"), ("/inbox", "出件任务", "nav-inbox")],
    "officer": [("/inbox", "待办任务", "nav-inbox"), ("/inbox/notices", "督办通知", "nav-notices")],
    "supervisor": [
        ("/dashboard", "效能总览", "nav-dashboard"),
        ("/dashboard/overdue", "超期办件", "nav-overdue"),
        ("/dashboard/warnings", "临期预警", "nav-warnings"),
        ("/dashboard/cases", "案件查询", "nav-cases"),
        ("/dashboard/ratings", "好差评", "nav-ratings"),
        ("/dashboard/report", "检查报告", "nav-report"),
    ],
}
NAV_BY_ROLE["admin"] = list(NAV_BY_ROLE["supervisor"])
NAV_BY_ROLE["supervisor"].insert(3, ("/dashboard/extensions", "延期审批", "nav-extensions"))
NAV_BY_ROLE["supervisor"].append(("/inbox", "回访任务", "nav-inbox"))
for staff in ("clerk", "officer", "supervisor", "admin"):
    NAV_BY_ROLE[staff].append(("/organisation", "组织机构", "nav-organisation"))

# Badge colours by status, so every page shows a status the same way.
STATUS_TONE: dict[str, str] = {
    CaseStatus.ACCEPTED: "info",
    CaseStatus.IN_PROGRESS: "info",
    CaseStatus.AWAITING_SUPPLEMENT: "warn",
    CaseStatus.COMPLETED: "ok",
    CaseStatus.REFUSED: "bad",
    CaseStatus.WITHDRAWN: "muted",
    CaseStatus.DECLINED: "bad",
    StepStatus.PENDING: "muted",
    StepStatus.OPEN: "info",
    StepStatus.CLAIMED: "info",
    StepStatus.SUSPENDED: "warn",
    StepStatus.DONE: "ok",
    StepStatus.CANCELLED: "muted",
}


# --- time and labels, for the templates --------------------------------------------------


def beijing(moment: datetime | date | str | None, with_time: bool = True) -> str:
    """A moment as people read it in Beijing time, ``2026年11月20日 08:30`` (or the date only);
    empty for None. The formatting itself is domain/display.py's."""
    return datetime_zh(moment) if with_time else date_zh(moment)


def due(moment: datetime | str | None) -> str:
    """A due time: 00:00 (24:00 of the day before, 期限届满日的二十四时) as that day, ``2026年11月26日``;
    pages follow it with 前."""
    return due_zh(moment)


def _moment(value: datetime | str | None) -> datetime | None:
    return datetime.fromisoformat(value) if isinstance(value, str) and value else value or None


@pass_context
def time_left(context: Context, due_at: datetime | str | None) -> str:
    """``剩余 2 个工作日`` / ``今日到期`` / ``已超期 1 个工作日`` now, on the app's working calendar."""
    due_moment = _moment(due_at)
    if due_moment is None:
        return ""
    calendar: WorkingCalendar = context["request"].app.state.calendar
    return time_left_zh(calendar, due_moment, datetime.now(UTC))


@pass_context
def overdue_days(context: Context, due_at: datetime | str | None, at: datetime | str | None = None) -> str:
    """How late ``at`` (default: now) is past ``due_at``: ``已超期 2 个工作日``; empty when not late."""
    due_moment, moment = _moment(due_at), _moment(at) or datetime.now(UTC)
    if due_moment is None or moment <= due_moment:
        return ""
    calendar: WorkingCalendar = context["request"].app.state.calendar
    return overdue_zh(calendar, due_moment, moment)


def status_zh(status: str) -> str:
    for table in (CASE_STATUS_ZH, STEP_STATUS_ZH):
        if status in table:
            return str(table[status])  # type: ignore[index]
    return status


def _new_idempotency_key() -> str:
    return str(uuid.uuid4())


templates = Jinja2Templates(directory=str(TEMPLATES_DIR))
templates.env.filters["beijing"] = beijing
templates.env.filters["status_zh"] = status_zh
templates.env.filters["due"] = due
templates.env.filters["date_zh"] = date_zh
templates.env.filters["time_left"] = time_left
templates.env.filters["overdue_days"] = overdue_days
templates.env.globals["new_idempotency_key"] = _new_idempotency_key
templates.env.globals["status_tone"] = lambda status: STATUS_TONE.get(str(status), "muted")
templates.env.globals["role_zh"] = ROLE_ZH


# --- sessions ----------------------------------------------------------------------------


def _settings(request: Request) -> Settings:
    settings: Settings = request.app.state.settings
    return settings


def session_token(request: Request) -> str | None:
    return request.cookies.get(SESSION_COOKIE) or None


async def find_console_actor(request: Request) -> Actor | None:
    """The logged-in actor, or None: no cookie, an expired or a tampered one, or one whose session
    has ended are all anonymous. Found once per request, by ConsoleRoute before the page runs
    (reading the database, when it must, in a thread); ``console_actor`` answers from then on."""
    token = session_token(request)
    actor: Actor | None = None
    if token is not None:
        try:
            actor = (await signed_in(token, request)).actor
        except DomainError:
            actor = None
    request.state.console_actor = actor
    return actor


def console_actor(request: Request) -> Actor | None:
    """The logged-in actor found for this request (``find_console_actor``), or None."""
    # A route outside ConsoleRoute has found nobody: anonymous, never the cookie's unchecked word.
    actor: Actor | None = getattr(request.state, "console_actor", None)
    return actor


def set_session_cookie(response: Response, token: str, settings: Settings) -> None:
    response.set_cookie(
        SESSION_COOKIE,
        token,
        max_age=settings.token_ttl_minutes * 60,
        httponly=True,
        samesite="strict",
        secure=settings.env == "prod",
        path="/",
    )


def clear_session_cookie(response: Response, settings: Settings) -> None:
    response.delete_cookie(SESSION_COOKIE, path="/", httponly=True, samesite="strict", secure=settings.env == "prod")


class LoginRequired(Exception):
    """Raised by a console dependency when nobody is logged in: answered with a redirect to /login."""


class ConsoleForbidden(Exception):
    """The logged-in actor's role may not open this page: answered with a 403 page."""

    def __init__(self, message: str = "当前账号无权访问此页面") -> None:
        super().__init__(message)
        self.message = message


def require_console_role(*roles: Role) -> Callable[[Request], Actor]:
    """A dependency: the logged-in actor when its role is one of ``roles``."""

    def dependency(request: Request) -> Actor:
        actor = console_actor(request)
        if actor is None:
            raise LoginRequired()
        if actor.role not in roles:
            raise ConsoleForbidden()
        return actor

    return dependency


ApplicantActor = Annotated[Actor, Depends(require_console_role("applicant"))]
ClerkActor = Annotated[Actor, Depends(require_console_role("clerk"))]
OfficerActor = Annotated[Actor, Depends(require_console_role("officer"))]
SupervisorActor = Annotated[Actor, Depends(require_console_role("supervisor", "admin"))]


# --- CSRF --------------------------------------------------------------------------------


def _mac(settings: Settings, purpose: str, value: str) -> str:
    digest = hmac.new(settings.secret_key.encode(), f"{purpose}:{value}".encode(), hashlib.sha256).digest()
    return base64.urlsafe_b64encode(digest).decode().rstrip("=")


def csrf_token(request: Request) -> str:
    """The CSRF token of the current session (HMAC of the session JWT); empty when anonymous."""
    token = session_token(request)
    return _mac(_settings(request), "csrf", token) if token else ""


class CsrfRejected(Exception):
    """A POST without the right CSRF token: answered with a 403 page, nothing done."""


async def checked_form(request: Request) -> FormData:
    """The POSTed form once its CSRF token matches the session's; raises CsrfRejected otherwise."""
    form = await request.form()
    sent = form.get(CSRF_FIELD)
    expected = csrf_token(request)
    if not expected or not isinstance(sent, str) or not hmac.compare_digest(sent, expected):
        raise CsrfRejected()
    return form


def login_csrf_token(settings: Settings, nonce: str) -> str:
    return _mac(settings, "login", nonce)


def new_login_nonce() -> str:
    return secrets.token_urlsafe(24)


def form_text(form: FormData, name: str) -> str:
    """A text field of a form, stripped; empty when absent (file parts are ignored)."""
    value = form.get(name)
    return value.strip() if isinstance(value, str) else ""


def idempotency_key_of(form: FormData) -> str | None:
    """The page's idempotency key (made when the form was rendered), at most 128 characters."""
    key = form_text(form, IDEMPOTENCY_FIELD)
    return key[:128] or None


# --- flash messages ----------------------------------------------------------------------


def flash_redirect(request: Request, url: str, message: str, kind: str = "success") -> RedirectResponse:
    """A 303 redirect (POST → redirect → GET) carrying a one-time message for the next page.

    The message travels in a short-lived signed cookie, so a third party cannot plant one.
    Messages often carry a domain refusal's text: only its Chinese is shown.
    """
    message = zh_text(message, "操作未完成，请刷新页面后重试" if kind == "error" else "操作已完成")
    response = RedirectResponse(url, status_code=303)
    payload = base64.urlsafe_b64encode(json.dumps({"kind": kind, "text": message}).encode()).decode()
    response.set_cookie(
        FLASH_COOKIE,
        f"{payload}.{_mac(_settings(request), 'flash', payload)}",
        max_age=60,
        httponly=True,
        samesite="strict",
        secure=_settings(request).env == "prod",
        path="/",
    )
    return response


def _read_flash(request: Request) -> dict[str, str] | None:
    raw = request.cookies.get(FLASH_COOKIE)
    if not raw or "." not in raw:
        return None
    payload, mac = raw.rsplit(".", 1)
    if not hmac.compare_digest(mac, _mac(_settings(request), "flash", payload)):
        return None
    try:
        message = json.loads(base64.urlsafe_b64decode(payload.encode()))
    except ValueError:
        return None
    if not isinstance(message, dict):
        return None
    return {"kind": str(message.get("kind", "success")), "text": str(message.get("text", ""))}


# --- rendering ---------------------------------------------------------------------------


def render(
    request: Request,
    template: str,
    context: Mapping[str, Any] | None = None,
    *,
    status_code: int = 200,
    actor: Actor | None = None,
) -> HTMLResponse:
    """A console page: ``template`` (under templates/console/) with the layout's variables:
    the actor, its navigation, the CSRF token, and the flash message left by the last redirect."""
    actor = actor if actor is not None else console_actor(request)
    flash = _read_flash(request)
    nav = NAV_BY_ROLE.get(actor.role, []) if actor else []
    path = request.url.path
    # The entry whose path is the longest prefix of this page's path is the one highlighted.
    matching = [href for href, _, _ in nav if path == href or path.startswith(href.rstrip("/") + "/")]
    page: dict[str, Any] = {
        "actor": actor,
        "nav": nav,
        "active_nav": max(matching, key=len) if matching else None,
        "csrf_token": csrf_token(request),
        "flash": flash,
        "current_path": path,
        **(context or {}),
    }
    response = templates.TemplateResponse(request, f"console/{template}", page, status_code=status_code)
    response.headers["Cache-Control"] = "no-store"
    if flash is not None or FLASH_COOKIE in request.cookies:
        response.delete_cookie(FLASH_COOKIE, path="/")
    return response


def error_page(
    request: Request, status_code: int, message: str, fields: Mapping[str, str] | None = None
) -> HTMLResponse:
    """The Chinese error page: what went wrong, the fields concerned (by their Chinese names), and a
    way back. Messages and reasons written "中文 (english)" show their Chinese only."""
    titles = {
        403: "无权访问",
        404: "未找到",
        409: "操作与当前状态冲突",
        422: "输入有误",
        429: "操作过于频繁",
        503: "服务暂不可用",
    }
    return render(
        request,
        "error.html",
        {
            "status_code": status_code,
            "title": titles.get(status_code, "出错了"),
            "message": zh_text(message, titles.get(status_code, "出错了")),
            "fields": {
                name if has_chinese(name) else input_label(name): field_reason(reason)
                for name, reason in (fields or {}).items()
            },
        },
        status_code=status_code,
    )


def safe_next(path: str | None) -> str | None:
    """``path`` when it is a local path (an open redirect to another site is refused)."""
    if not path or not path.startswith("/") or path.startswith("//") or "\\" in path:
        return None
    parts = urlsplit(path)
    return path if not parts.scheme and not parts.netloc else None


def login_redirect(request: Request) -> RedirectResponse:
    target = request.url.path + (f"?{request.url.query}" if request.url.query else "")
    return RedirectResponse(f"/login?next={quote(target, safe='')}", status_code=303)


def domain_error_page(request: Request, error: DomainError) -> Response:
    if error.code == ErrorCode.UNAUTHORIZED:
        return login_redirect(request)
    response = error_page(request, STATUS_BY_CODE[error.code], error.message, error.fields)
    if isinstance(error, RateLimited):
        response.headers["Retry-After"] = str(error.retry_after_seconds)
    return response


class ConsoleRoute(APIRoute):
    """A console route: errors become Chinese HTML pages (or a redirect to the login page)."""

    def get_route_handler(self) -> Callable[[Request], Coroutine[Any, Any, Response]]:
        handler = super().get_route_handler()

        async def console_handler(request: Request) -> Response:
            try:
                await find_console_actor(request)
                return await handler(request)
            except LoginRequired:
                return login_redirect(request)
            except ConsoleForbidden as error:
                return error_page(request, 403, error.message)
            except CsrfRejected:
                return error_page(request, 403, "页面已过期或来源不明，请返回刷新后重新提交")
            except DomainError as error:
                return domain_error_page(request, error)
            except WorkflowUpdateFailedError as error:
                return domain_error_page(request, from_update_failure(error))
            except RequestValidationError as error:
                return error_page(request, 422, "页面地址中的查询条件有误", request_problems(list(error.errors())))
            except RPCError as error:
                if error.status == RPCStatusCode.NOT_FOUND:
                    return error_page(request, 404, "案件不存在")
                logger.error("Temporal call failed: %s", error.status)
                return error_page(request, 503, "流程服务暂不可用，请稍后重试")
            except StarletteHTTPException as error:
                return error_page(request, error.status_code, str(error.detail))

        return console_handler


def console_router() -> APIRouter:
    """A router for console pages: hidden from the OpenAPI document, errors as HTML pages."""
    return APIRouter(include_in_schema=False, route_class=ConsoleRoute, default_response_class=HTMLResponse)


# --- the session pages: /, /login, /logout -----------------------------------------------

session_router = console_router()


@session_router.get("/")
def home(request: Request) -> Response:
    """Each role's start page; anonymous visitors go to the login page."""
    actor = console_actor(request)
    if actor is None:
        return RedirectResponse("/login", status_code=303)
    return RedirectResponse(HOME_BY_ROLE.get(actor.role, "/login"), status_code=303)


@session_router.get("/favicon.ico")
def favicon() -> Response:
    """Browsers ask for /favicon.ico on pages without an icon link (the guide, JSON in a tab): the SVG."""
    return RedirectResponse("/static/favicon.svg", status_code=301)


def _login_page(
    request: Request, next_path: str | None, *, username: str = "", error: str | None = None, status_code: int = 200
) -> HTMLResponse:
    nonce = request.cookies.get(LOGIN_NONCE_COOKIE) or new_login_nonce()
    response = render(
        request,
        "login.html",
        {
            "next_path": next_path or "",
            "username": username,
            "error": error,
            "login_csrf": login_csrf_token(_settings(request), nonce),
            "oidc_enabled": _settings(request).oidc_issuer is not None,
        },
        status_code=status_code,
        actor=None,
    )
    settings = _settings(request)
    response.set_cookie(
        LOGIN_NONCE_COOKIE, nonce, httponly=True, samesite="strict", secure=settings.env == "prod", path="/login"
    )
    return response


@session_router.get("/login")
def login_form(request: Request, next: str | None = None) -> Response:
    actor = console_actor(request)
    if actor is not None:
        return RedirectResponse(safe_next(next) or HOME_BY_ROLE.get(actor.role, "/"), status_code=303)
    return _login_page(request, safe_next(next))


@session_router.post("/login")
async def login_submit(request: Request) -> Response:
    """The same account check and login limits as POST /auth/token; the session is the same JWT."""
    form = await request.form()
    username, password = form_text(form, "username"), form.get("password")
    next_path = safe_next(form_text(form, "next"))
    settings = _settings(request)
    nonce = request.cookies.get(LOGIN_NONCE_COOKIE)
    sent = form_text(form, CSRF_FIELD)
    if not nonce or not hmac.compare_digest(sent, login_csrf_token(settings, nonce)):
        return _login_page(request, next_path, username=username, error="登录页面已过期，请重新输入", status_code=403)
    if not username or not isinstance(password, str) or not password:
        return _login_page(
            request,
            next_path,
            username=username,
            error="请输入用户名和密码",
            status_code=422,
        )
    address = request.client.host if request.client else None

    def checked_login() -> str:
        with Session(request.app.state.engine) as session:
            return authenticate_login(session, settings, username, password, address)

    try:
        token = await run_in_threadpool(checked_login)
    except DomainError as error:
        response = _login_page(
            request,
            next_path,
            username=username,
            error=zh_text(error.message, "登录未成功，请重试"),
            status_code=STATUS_BY_CODE[error.code],
        )
        if isinstance(error, RateLimited):
            response.headers["Retry-After"] = str(error.retry_after_seconds)
        return response
    actor = read_token(token, settings)
    # Signed in: the walk-in cases filed for this person at a window become theirs.
    await adopt_walk_in_cases(actor, request.app.state.temporal_client, request.app.state.engine)
    redirect = RedirectResponse(next_path or HOME_BY_ROLE.get(actor.role, "/"), status_code=303)
    set_session_cookie(redirect, token, settings)
    redirect.delete_cookie(LOGIN_NONCE_COOKIE, path="/login")
    return redirect


@session_router.post("/logout")
async def logout(request: Request) -> Response:
    """Ends the session (its token is refused from now on, whoever holds it) and drops the cookie."""
    token = session_token(request)
    if token is not None:
        await checked_form(request)
        await end_token_session(token, request)
    response = RedirectResponse("/login", status_code=303)
    clear_session_cookie(response, _settings(request))
    return response

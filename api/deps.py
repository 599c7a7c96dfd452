"""FastAPI dependencies: settings, the read-model engine, the Temporal client, the caller.

The client, engine and calendar are made once in the app's lifespan (api/main.py)
and kept on ``app.state``; routes receive them through these dependencies. Those that do
no I/O are ``async`` so FastAPI calls them on the event loop instead of hopping to a
thread for each one.

The caller is the actor its token names while the token's sign-in session is live
(services/sessions.py): the process's ``LiveSessions`` answers from memory, and only when it
has no recent answer is the database read, in a thread.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Annotated

from fastapi import Depends, Request
from fastapi.security import OAuth2PasswordBearer
from sqlalchemy import Engine
from sqlmodel import Session
from starlette.concurrency import run_in_threadpool
from temporalio.client import Client

from api.security import SignedIn, read_signed_in
from domain.workcalendar import WorkingCalendar
from models.case import Actor
from models.errors import DomainError, ErrorCode
from services.access import require_role as require_role  # its home; routes take it from here
from services.sessions import EndReason, LiveSessions, end_session
from settings import Settings

oauth2_scheme = OAuth2PasswordBearer(tokenUrl="/auth/token", auto_error=False)
SESSION_COOKIE = "onething_session"  # the console's session cookie: the same token as a bearer one


async def get_settings(request: Request) -> Settings:
    settings: Settings = request.app.state.settings
    return settings


async def get_temporal_client(request: Request) -> Client:
    client: Client = request.app.state.temporal_client
    return client


async def get_engine(request: Request) -> Engine:
    engine: Engine = request.app.state.engine
    return engine


async def get_calendar(request: Request) -> WorkingCalendar:
    calendar: WorkingCalendar = request.app.state.calendar
    return calendar


def get_session(engine: Annotated[Engine, Depends(get_engine)]) -> Iterator[Session]:
    with Session(engine) as session:
        yield session


async def get_live_sessions(request: Request) -> LiveSessions:
    sessions: LiveSessions = request.app.state.live_sessions
    return sessions


async def signed_in(token: str | None, request: Request) -> SignedIn:
    """The actor and session a bearer token (or the console's session cookie) names, while
    that session is live; 401 otherwise."""
    if not token:
        raise DomainError(ErrorCode.UNAUTHORIZED, "请先登录 (not logged in)")
    found = read_signed_in(token, request.app.state.settings)
    sessions: LiveSessions = request.app.state.live_sessions
    live = sessions.cached(found.session_id)
    if live is None:
        live = await run_in_threadpool(sessions.check, request.app.state.engine, found.session_id)
    if not live:
        raise DomainError(ErrorCode.UNAUTHORIZED, "登录已失效，请重新登录 (session ended)")
    return found


async def end_token_session(token: str, request: Request) -> None:
    """End the session a token names (a logout): refused at once by this process, within
    ``session_check_seconds`` by the others. An invalid or expired token has nothing to end."""
    try:
        found = read_signed_in(token, request.app.state.settings)
    except DomainError:
        return

    def end() -> None:
        with Session(request.app.state.engine) as session:
            end_session(session, found.session_id, EndReason.LOGOUT)

    await run_in_threadpool(end)
    sessions: LiveSessions = request.app.state.live_sessions
    sessions.ended([found.session_id])


async def get_signed_in(request: Request, token: Annotated[str | None, Depends(oauth2_scheme)]) -> SignedIn:
    return await signed_in(token, request)


async def get_current_actor(caller: Annotated[SignedIn, Depends(get_signed_in)]) -> Actor:
    return caller.actor


SettingsDep = Annotated[Settings, Depends(get_settings)]
ClientDep = Annotated[Client, Depends(get_temporal_client)]
EngineDep = Annotated[Engine, Depends(get_engine)]
SessionDep = Annotated[Session, Depends(get_session)]
CalendarDep = Annotated[WorkingCalendar, Depends(get_calendar)]
ActorDep = Annotated[Actor, Depends(get_current_actor)]
SignedInDep = Annotated[SignedIn, Depends(get_signed_in)]
LiveSessionsDep = Annotated[LiveSessions, Depends(get_live_sessions)]

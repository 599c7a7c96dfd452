"""FastAPI dependencies: settings, the read-model engine, the Temporal client, the caller.

The client, engine and calendar are made once in the app's lifespan (api/main.py)
and kept on ``app.state``; routes receive them through these dependencies. Those that do
no I/O are ``async`` so FastAPI calls them on the event loop instead of hopping to a
thread for each one.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Annotated

from fastapi import Depends, Request
from fastapi.security import OAuth2PasswordBearer
from sqlalchemy import Engine
from sqlmodel import Session
from temporalio.client import Client

from api.security import read_token
from domain.workcalendar import WorkingCalendar
from models.case import Actor
from models.errors import DomainError, ErrorCode
from services.access import require_role as require_role  # its home; routes take it from here
from settings import Settings

oauth2_scheme = OAuth2PasswordBearer(tokenUrl="/auth/token", auto_error=False)


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


def actor_from_token(token: str | None, settings: Settings) -> Actor:
    """The signed-in actor a bearer token (or the console's session cookie) names."""
    if not token:
        raise DomainError(ErrorCode.UNAUTHORIZED, "请先登录 (not logged in)")
    return read_token(token, settings)


async def get_current_actor(
    token: Annotated[str | None, Depends(oauth2_scheme)], settings: Annotated[Settings, Depends(get_settings)]
) -> Actor:
    return actor_from_token(token, settings)


SettingsDep = Annotated[Settings, Depends(get_settings)]
ClientDep = Annotated[Client, Depends(get_temporal_client)]
EngineDep = Annotated[Engine, Depends(get_engine)]
SessionDep = Annotated[Session, Depends(get_session)]
CalendarDep = Annotated[WorkingCalendar, Depends(get_calendar)]
ActorDep = Annotated[Actor, Depends(get_current_actor)]

"""The web console (一件事 办事大厅 and 工作台): Chinese HTML pages served by the API process.

``router`` gathers every console page; ``api/main.py`` includes it with the ``/static`` mount.
The pages are hidden from the OpenAPI document; their access rules are tested in
tests/api/test_console_access.py, which checks every entry of ``console_routes()`` has a row.
"""

from __future__ import annotations

from fastapi import APIRouter
from fastapi.routing import APIRoute

from api.console import (
    applicant,
    clerk,
    extensions,
    files,
    follow,
    officer,
    oidc,
    organisation,
    supervisor,
    task_operations,
)
from api.console.base import console_router, session_router

AREA_ROUTERS: list[APIRouter] = [
    session_router,
    applicant.router,
    clerk.router,
    officer.router,
    task_operations.router,
    supervisor.router,
    extensions.router,
    organisation.router,
    files.router,
    follow.router,
    oidc.router,
]

router = console_router()
for area_router in AREA_ROUTERS:
    router.include_router(area_router)


def console_routes() -> list[tuple[str, str]]:
    """Every console page as (method, path template), e.g. ("GET", "/my/cases/{case_id}")."""
    return sorted(
        (method, route.path)
        for area_router in AREA_ROUTERS
        for route in area_router.routes
        if isinstance(route, APIRoute)
        for method in route.methods or ()
    )


__all__ = ["console_routes", "router"]

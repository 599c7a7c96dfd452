"""An uploaded material opened from a console page (the officer's task, the applicant's case):
the same rule as ``GET /cases/{case_id}/files/{sha256}`` (services/case_files.py), with the
console's session instead of a bearer token."""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends, Request, Response
from starlette.concurrency import run_in_threadpool

from api.console.base import console_router, require_console_role
from api.routes.materials import file_store
from models.case import Actor
from services.case_files import case_file

router = console_router()

FileReader = Annotated[Actor, Depends(require_console_role("applicant", "clerk", "officer", "supervisor", "admin"))]


@router.get("/files/{case_id}/{sha256}")
async def open_case_file(case_id: str, sha256: str, actor: FileReader, request: Request) -> Response:
    engine = request.app.state.engine
    row, data = await run_in_threadpool(case_file, engine, file_store(request), actor, case_id, sha256)
    disposition = f'inline; filename="{row.material}-{sha256[:12]}"'
    # A stored file is shown as what it is by content, never sniffed into something else.
    headers = {"Content-Disposition": disposition, "X-Content-Type-Options": "nosniff"}
    return Response(data, media_type=row.content_type, headers=headers)

"""Uploaded materials (材料附件): the applicant or the accepting window uploads a file for one of
the case's materials; the applicant and the case's officers and clerks read it back."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, File, Request, Response, UploadFile
from pydantic import BaseModel, Field
from starlette.concurrency import run_in_threadpool

from api.deps import ActorDep, EngineDep, SettingsDep
from api.errors import error_responses
from api.schemas import CaseId, Code, Sha256
from infra.file_store import FileStore, file_store_from_settings
from models.errors import DomainError, ErrorCode
from services.case_files import case_file, case_files, store_material_file

router = APIRouter(tags=["materials"], responses=error_responses(401, 403, 404, 409, 413, 415, 422))

# The multipart body of an upload may exceed the file by its boundaries and headers.
MULTIPART_OVERHEAD = 64 * 1024
# The JSON route and the applicant console's form (api/console/applicant.py).
UPLOAD_PATH = r"^(/my)?/cases/[^/]+/materials/[^/]+$"


class UploadedMaterial(BaseModel):
    material: str
    sha256: str = Field(description="SHA-256 of the file, hex: supply it as sha256:<hash> in 补正")
    size: int
    content_type: str = Field(description="by the file's content: application/pdf, image/jpeg or image/png")
    pages: int = 1
    uploaded_by: str | None = None


def file_store(request: Request) -> FileStore:
    store: FileStore | None = getattr(request.app.state, "file_store", None)
    if store is None:
        store = request.app.state.file_store = file_store_from_settings(request.app.state.settings)
    return store


@router.post("/cases/{case_id}/materials/{material}", status_code=201, response_model=UploadedMaterial)
async def upload_material(
    case_id: CaseId,
    material: Code,
    actor: ActorDep,
    engine: EngineDep,
    settings: SettingsDep,
    request: Request,
    file: Annotated[UploadFile, File(description="a PDF, JPEG or PNG")],
) -> UploadedMaterial:
    limit = settings.max_upload_bytes
    if file.size is not None and file.size > limit:
        raise DomainError(ErrorCode.PAYLOAD_TOO_LARGE, f"文件超过 {limit // 1_048_576} MB (the file is too large)")
    data = await file.read(limit + 1)
    if len(data) > limit:
        raise DomainError(ErrorCode.PAYLOAD_TOO_LARGE, f"文件超过 {limit // 1_048_576} MB (the file is too large)")
    row = await run_in_threadpool(store_material_file, engine, file_store(request), actor, case_id, material, data)
    return UploadedMaterial.model_validate(row, from_attributes=True)


@router.get("/cases/{case_id}/files", response_model=list[UploadedMaterial])
async def list_case_files(case_id: CaseId, actor: ActorDep, engine: EngineDep) -> list[UploadedMaterial]:
    rows = await run_in_threadpool(case_files, engine, actor, case_id)
    return [UploadedMaterial.model_validate(row, from_attributes=True) for row in rows]


@router.get(
    "/cases/{case_id}/files/{sha256}",
    response_class=Response,
    responses={200: {"content": {"application/pdf": {}, "image/jpeg": {}, "image/png": {}}}},
)
async def read_case_file(
    case_id: CaseId, sha256: Sha256, actor: ActorDep, engine: EngineDep, request: Request
) -> Response:
    row, data = await run_in_threadpool(case_file, engine, file_store(request), actor, case_id, sha256)
    disposition = f'inline; filename="{row.material}-{sha256[:12]}"'
    return Response(data, media_type=row.content_type, headers={"Content-Disposition": disposition})

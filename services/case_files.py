"""Uploaded materials (材料附件): who may upload a case's material, what it must be, and who
may read it back. The file goes to the file store (infra/file_store.py) and its row to the
read model only once every check has passed, so a refused upload stores nothing."""

from __future__ import annotations

from datetime import UTC, datetime

from sqlalchemy import Engine
from sqlalchemy.exc import IntegrityError
from sqlmodel import Session, col, select

from domain.uploads import FILE_REFERENCE, Refusal, UploadRefused, inspect_upload
from infra.file_store import FileStore
from models.case import ENDED_CASE_STATUSES, Actor, CaseSnapshot, CaseStatus
from models.errors import DomainError, ErrorCode
from models.tables import CaseFileRecord, CaseRecord
from services.access import accepted_by_actors_window, can_see_case, visible_case

# A case still open to new materials: not completed, refused or ended.
_CLOSED = {CaseStatus.COMPLETED, CaseStatus.REFUSED, *ENDED_CASE_STATUSES}


def may_upload(actor: Actor, record: CaseRecord) -> bool:
    """The applicant who owns the case, or the window that accepted it (for a walk-in)."""
    if actor.role == "applicant":
        return record.owner == actor.username
    return actor.role == "clerk" and accepted_by_actors_window(actor, record)


def may_read_files(actor: Actor, record: CaseRecord) -> bool:
    """The applicant and the staff who work on the case; not supervisors: the files hold
    personal data in full, which supervision reads only masked."""
    if actor.role == "applicant":
        return record.owner == actor.username
    return actor.role in {"clerk", "officer"} and can_see_case(actor, record)


def _checked_case(session: Session, actor: Actor, case_id: str, material: str) -> None:
    record = visible_case(session, actor, case_id)  # 404 for strangers
    if not may_upload(actor, record):
        raise DomainError(
            ErrorCode.FORBIDDEN, "仅申请人或受理窗口可以上传材料 (only the applicant or the accepting window uploads)"
        )
    snapshot = CaseSnapshot.model_validate(record.snapshot)
    if snapshot.status in _CLOSED:
        raise DomainError(ErrorCode.CONFLICT, "办件已结束，不能再上传材料 (the case is closed)")
    asked = {view.code: view.name_zh for view in snapshot.materials}
    if material not in asked:
        choices = "、".join(asked.values()) or "无"
        reason = f"本件无需该材料，可上传：{choices} (not a material of this case)"
        raise DomainError(ErrorCode.INVALID, "输入有误 (invalid input)", {"material": reason})


def store_material_file(
    engine: Engine, store: FileStore, actor: Actor, case_id: str, material: str, data: bytes
) -> CaseFileRecord:
    """Check, store and record one upload; the stored row (the same one for the same file again)."""
    with Session(engine) as session:
        _checked_case(session, actor, case_id, material)
    try:
        inspected = inspect_upload(data)
    except UploadRefused as refused:
        code = ErrorCode.UNSUPPORTED_MEDIA_TYPE if refused.refusal == Refusal.TYPE else ErrorCode.INVALID
        raise DomainError(code, refused.reason, {"file": refused.reason}) from None
    sha256 = store.put(data)
    row = CaseFileRecord(
        case_id=case_id,
        material=material,
        sha256=sha256,
        size=len(data),
        content_type=inspected.content_type,
        pages=inspected.pages,
        uploaded_by=actor.username,
        uploaded_at=datetime.now(UTC),
    )
    with Session(engine) as session:
        existing = session.get(CaseFileRecord, (case_id, material, sha256))
        if existing is not None:
            return existing
        session.add(row)
        try:
            session.commit()
        except IntegrityError:  # the same file of the same material, uploaded at the same moment
            session.rollback()
            stored = session.get(CaseFileRecord, (case_id, material, sha256))
            assert stored is not None
            return stored
        session.refresh(row)
    return row


def case_files(engine: Engine, actor: Actor, case_id: str) -> list[CaseFileRecord]:
    with Session(engine) as session:
        record = visible_case(session, actor, case_id)
        if not may_read_files(actor, record):
            raise DomainError(ErrorCode.FORBIDDEN, "无权查看材料附件 (not allowed to read the case's files)")
        return list(
            session.execute(
                select(CaseFileRecord)
                .where(col(CaseFileRecord.case_id) == case_id)
                .order_by(col(CaseFileRecord.uploaded_at))
            ).scalars()
        )


def case_file(
    engine: Engine, store: FileStore, actor: Actor, case_id: str, sha256: str
) -> tuple[CaseFileRecord, bytes]:
    """One uploaded file of the case, decrypted, for those who may read it (else 403/404)."""
    for row in case_files(engine, actor, case_id):
        if row.sha256 == sha256:
            return row, store.get(sha256)
    raise DomainError(ErrorCode.NOT_FOUND, "该文件不存在 (no such file in this case)")


def check_file_references(engine: Engine, case_id: str, materials: dict[str, str]) -> None:
    """A material supplied as an uploaded file (``sha256:<hash>``) must be that material's
    upload to this case: a 422 naming the material otherwise, before anything is sent."""
    referenced = {
        code: value.removeprefix(FILE_REFERENCE)
        for code, value in materials.items()
        if value.startswith(FILE_REFERENCE)
    }
    if not referenced:
        return
    with Session(engine) as session:
        missing = {
            f"materials.{code}": "未找到该材料已上传的文件，请先上传 (no such upload of this material in this case)"
            for code, sha256 in referenced.items()
            if session.get(CaseFileRecord, (case_id, code, sha256)) is None
        }
    if missing:
        raise DomainError(ErrorCode.INVALID, "输入有误 (invalid input)", missing)

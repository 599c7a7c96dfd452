"""The electronic archive of a closed case (DB33/T 2304-2021 §7.1.3 档案完整、规范).

A package is a folder of JSON parts plus ``manifest.json`` listing each part
with its SHA-256. ``check_package`` re-reads the folder and reports parts that
are missing or whose content no longer matches the manifest.

It lives with the documents rather than in infra: what a package holds is a document
format set by the same standard as the service guides; the folder is the document
itself, not a store the application reads back (only ``check_package`` audits it).
"""

from __future__ import annotations

import hashlib
import json
from datetime import datetime
from pathlib import Path
from typing import Any

from pydantic import BaseModel

from models.case import ArchiveCaseInput, EventType

# The parts every package must hold, with the Chinese names a supervisor reads.
REQUIRED_PARTS: dict[str, str] = {
    "form.json": "申请表单",
    "materials.json": "申请材料（含数据共享引用）",
    "results.json": "各环节办理结果",
    "notices.json": "受理、补正、退件、出件等通知",
    "timeline.json": "办理过程记录",
    "ratings.json": "好差评",
}
MANIFEST = "manifest.json"


class ArchivedPart(BaseModel):
    name: str
    title_zh: str
    sha256: str
    bytes: int


class ArchiveManifest(BaseModel):
    case_id: str
    thing: str
    catalogue_version: int
    situation: str | None
    status: str
    archived_at: datetime
    parts: list[ArchivedPart]


class ArchiveCheck(BaseModel):
    case_id: str
    complete: bool
    missing: list[str]
    corrupt: list[str]
    manifest: ArchiveManifest | None


def _encode(value: Any) -> bytes:
    return json.dumps(value, ensure_ascii=False, indent=2, sort_keys=True, default=str).encode()


def package_parts(archive: ArchiveCaseInput) -> dict[str, bytes]:
    """The package's parts as bytes, built only from what the workflow recorded."""
    snapshot = archive.snapshot
    notice = snapshot.acceptance_notice
    notices: list[dict[str, Any]] = []
    if notice is not None:
        notices.append({"kind": "acceptance", "title_zh": notice.title_zh, **notice.model_dump(mode="json")})
    for event in archive.events:
        kind = {
            EventType.RETURNED: ("supplement_request", "补齐补正通知书"),
            EventType.REFUSED: ("refusal", "退件通知书"),
            EventType.DELIVERED: ("delivery", "出件通知"),
            EventType.SUPERVISION_NOTICE: ("supervision", "督办通知"),
        }.get(event.type)
        if kind is not None:
            notices.append({"kind": kind[0], "title_zh": kind[1], **event.model_dump(mode="json")})
    materials = {
        "received": [m.model_dump(mode="json") for m in (notice.materials_received if notice else [])],
        "shared": [m.model_dump(mode="json") for m in (notice.materials_shared if notice else [])],
        "to_supply_at_intake": [m.model_dump(mode="json") for m in (notice.materials_to_supply if notice else [])],
        "supplemented": [e.detail for e in archive.events if e.type == EventType.SUPPLEMENTED and e.step is None],
    }
    results = [
        {"step": s.step, "name_zh": s.name_zh, "department": s.department, "status": s.status.value, "result": s.result}
        for s in snapshot.steps
    ]
    return {
        "form.json": _encode(archive.case.form),
        "materials.json": _encode(materials),
        "results.json": _encode(results),
        "notices.json": _encode(notices),
        "timeline.json": _encode([e.model_dump(mode="json") for e in archive.events]),
        "ratings.json": _encode(archive.ratings),
    }


def write_package(root: Path, archive: ArchiveCaseInput, archived_at: datetime) -> ArchiveManifest:
    """Write (or rewrite, identically) the case's package under ``root/<case_id>/``."""
    folder = root / archive.snapshot.case_id
    folder.mkdir(parents=True, exist_ok=True)
    parts = []
    for name, content in package_parts(archive).items():
        (folder / name).write_bytes(content)
        parts.append(
            ArchivedPart(
                name=name, title_zh=REQUIRED_PARTS[name], sha256=hashlib.sha256(content).hexdigest(), bytes=len(content)
            )
        )
    snapshot = archive.snapshot
    manifest = ArchiveManifest(
        case_id=snapshot.case_id,
        thing=snapshot.thing,
        catalogue_version=snapshot.catalogue_version,
        situation=snapshot.situation,
        status=snapshot.status.value,
        archived_at=archived_at,
        parts=parts,
    )
    (folder / MANIFEST).write_text(manifest.model_dump_json(indent=2), encoding="utf-8")
    return manifest


def check_package(root: Path, case_id: str) -> ArchiveCheck:
    """Is the package complete, and does every part still match its recorded hash?"""
    folder = root / case_id
    manifest_file = folder / MANIFEST
    if not manifest_file.is_file():
        return ArchiveCheck(case_id=case_id, complete=False, missing=[MANIFEST], corrupt=[], manifest=None)
    manifest = ArchiveManifest.model_validate_json(manifest_file.read_text(encoding="utf-8"))
    listed = {part.name: part for part in manifest.parts}
    missing = [name for name in REQUIRED_PARTS if name not in listed or not (folder / name).is_file()]
    corrupt = [
        name
        for name, part in listed.items()
        if (folder / name).is_file() and hashlib.sha256((folder / name).read_bytes()).hexdigest() != part.sha256
    ]
    return ArchiveCheck(
        case_id=case_id, complete=not missing and not corrupt, missing=missing, corrupt=corrupt, manifest=manifest
    )

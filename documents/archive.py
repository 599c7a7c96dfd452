"""The electronic archive of a closed case (DB33/T 2304-2021 §7.1.3 档案完整、规范).

A package is a folder of JSON parts (and the case's uploaded files under ``files/``) plus
``manifest.json`` listing each part with its SHA-256, and ``manifest.sig``, an Ed25519 signature
of the manifest's bytes: rewriting a part and its hash in the manifest breaks the signature.
``check_package`` re-reads the folder and reports parts that are missing or whose content no
longer matches the manifest, and whether the signature holds.

It lives with the documents rather than in infra: what a package holds is a document
format set by the same standard as the service guides; the folder is the document
itself, not a store the application reads back (only ``check_package`` audits it).
"""

from __future__ import annotations

import hashlib
import io
import json
import zipfile
from datetime import datetime
from pathlib import Path
from typing import Any, Literal

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey
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
SIGNATURE = "manifest.sig"
FILES_DIR = "files"
EXTENSIONS = {"application/pdf": ".pdf", "image/jpeg": ".jpg", "image/png": ".png"}


class ArchivedFile(BaseModel):
    """An uploaded material to file with the package: its content and what it is."""

    material: str
    name_zh: str
    sha256: str
    content_type: str
    content: bytes


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
    # valid / invalid (the manifest was altered, or signed by another key) / missing (unsigned);
    # None when not checked.
    signature: Literal["valid", "invalid", "missing"] | None = None


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


def file_part_name(file: ArchivedFile) -> str:
    return f"{FILES_DIR}/{file.material}-{file.sha256[:16]}{EXTENSIONS.get(file.content_type, '')}"


def write_package(
    root: Path,
    archive: ArchiveCaseInput,
    archived_at: datetime,
    *,
    files: list[ArchivedFile] | None = None,
    signing_key: Ed25519PrivateKey | None = None,
) -> ArchiveManifest:
    """Write (or rewrite, identically) the case's package under ``root/<case_id>/``, with its
    uploaded ``files``, and sign the manifest with ``signing_key``."""
    folder = root / archive.snapshot.case_id
    folder.mkdir(parents=True, exist_ok=True)
    contents: dict[str, tuple[str, bytes]] = {
        name: (REQUIRED_PARTS[name], content) for name, content in package_parts(archive).items()
    }
    for file in files or []:
        contents[file_part_name(file)] = (f"上传材料：{file.name_zh}", file.content)
    parts = []
    for name, (title_zh, content) in contents.items():
        (folder / name).parent.mkdir(parents=True, exist_ok=True)
        (folder / name).write_bytes(content)
        parts.append(
            ArchivedPart(name=name, title_zh=title_zh, sha256=hashlib.sha256(content).hexdigest(), bytes=len(content))
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
    manifest_bytes = manifest.model_dump_json(indent=2).encode()
    (folder / MANIFEST).write_bytes(manifest_bytes)
    if signing_key is not None:
        (folder / SIGNATURE).write_bytes(signing_key.sign(manifest_bytes))
    return manifest


def _signature(
    folder: Path, manifest_bytes: bytes, verify_key: Ed25519PublicKey
) -> Literal["valid", "invalid", "missing"]:
    signature_file = folder / SIGNATURE
    if not signature_file.is_file():
        return "missing"
    try:
        verify_key.verify(signature_file.read_bytes(), manifest_bytes)
    except InvalidSignature:
        return "invalid"
    return "valid"


def check_package(root: Path, case_id: str, verify_key: Ed25519PublicKey | None = None) -> ArchiveCheck:
    """Is the package complete, does every part still match its recorded hash, and (with
    ``verify_key``) is the manifest the one that was signed?"""
    folder = root / case_id
    manifest_file = folder / MANIFEST
    if not manifest_file.is_file():
        return ArchiveCheck(case_id=case_id, complete=False, missing=[MANIFEST], corrupt=[], manifest=None)
    manifest_bytes = manifest_file.read_bytes()
    manifest = ArchiveManifest.model_validate_json(manifest_bytes)
    signature = _signature(folder, manifest_bytes, verify_key) if verify_key is not None else None
    listed = {part.name: part for part in manifest.parts}
    missing = [name for name in REQUIRED_PARTS if name not in listed or not (folder / name).is_file()]
    corrupt = [
        name
        for name, part in listed.items()
        if (folder / name).is_file() and hashlib.sha256((folder / name).read_bytes()).hexdigest() != part.sha256
    ]
    intact = not missing and not corrupt and signature in {None, "valid"}
    return ArchiveCheck(
        case_id=case_id, complete=intact, missing=missing, corrupt=corrupt, manifest=manifest, signature=signature
    )


def package_zip(root: Path, case_id: str) -> bytes:
    """The package as one zip (manifest, signature and every part listed), for download."""
    folder = root / case_id
    manifest = ArchiveManifest.model_validate_json((folder / MANIFEST).read_bytes())
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", compression=zipfile.ZIP_DEFLATED) as package:
        for name in [MANIFEST, SIGNATURE, *(part.name for part in manifest.parts)]:
            if (folder / name).is_file():
                package.write(folder / name, arcname=f"{case_id}/{name}")
    return buffer.getvalue()

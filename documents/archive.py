"""The electronic archive of a closed case (DB33/T 2304-2021 §7.1.3 档案完整、规范).

A package is a folder of JSON parts (and the case's uploaded files under ``files/``) plus
``manifest.json`` listing each part with the SHA-256 of its content, and ``manifest.sig``, an
Ed25519 signature of the manifest's bytes by the key the manifest names (``signing_key_id``).

Each part is sealed at rest (``format`` 2): AES-256-GCM under the payload keys, in the file
store's format (the blob names the key that sealed it), with the case, the part's name and
its hash as associated data, so a part moved from another package, or between names, does not
decrypt. Rewriting a part breaks its seal or its hash; rewriting the manifest breaks the
signature; a part added, removed or taken from another package is named.

Packages written before sealing (``format`` 1: parts in clear, a manifest signed without a key
id or not at all) stay readable; ``check_package`` reports them as ``signed_legacy`` or
``unsigned_legacy`` rather than ``verified``.

It lives with the documents rather than in infra: what a package holds is a document
format set by the same standard as the service guides; the folder is the document itself.
The keys come from infra (``infra/signing.py``, ``archive_keys``).
"""

from __future__ import annotations

import hashlib
import io
import json
import re
import zipfile
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any, Literal, Protocol

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey
from pydantic import BaseModel, ValidationError

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
LEGACY_FORMAT = 1  # parts in clear, manifest signed without a key id (or not at all)
SEALED_FORMAT = 2  # parts sealed, manifest signed by the key it names
# A part's name as write_package makes it: never absolute, never climbing out of the folder.
PART_NAME = re.compile(r"^[A-Za-z0-9_.-]+(/[A-Za-z0-9_.-]+)?$")

Verdict = Literal["verified", "signed_legacy", "unsigned_legacy", "failed", "absent"]


class ArchiveError(ValueError):
    """A package's part is unreadable: missing, not sealed for its place, or not the content listed."""


class PartSeal(Protocol):
    """Seals a part's bytes bound to a name, and opens them only under that name (``FileSeal``)."""

    def seal(self, name: str, data: bytes, /) -> bytes: ...

    def unseal(self, name: str, blob: bytes, /) -> bytes: ...


@dataclass(frozen=True)
class ArchiveKeys:
    """What seals and signs new packages, and every signing key whose packages are accepted
    (the current one and those retired by a rotation), by key id."""

    seal: PartSeal
    signing_key: Ed25519PrivateKey
    signing_key_id: str
    verify_keys: Mapping[str, Ed25519PublicKey]


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
    sha256: str  # of the content, not of the sealed blob: the downloaded part verifies against it
    bytes: int


class ArchiveManifest(BaseModel):
    case_id: str
    thing: str
    catalogue_version: int
    situation: str | None
    status: str
    archived_at: datetime
    parts: list[ArchivedPart]
    # Absent from legacy manifests, so they read as format 1 with no key id.
    format: int = LEGACY_FORMAT
    signing_key_id: str | None = None


class ArchiveCheck(BaseModel):
    case_id: str
    complete: bool
    missing: list[str]
    corrupt: list[str]
    manifest: ArchiveManifest | None
    # valid / invalid (the manifest was altered, or signed by another key) / unknown_key (signed
    # by a key id this deployment does not list) / missing (unsigned); None when not checked.
    signature: Literal["valid", "invalid", "unknown_key", "missing"] | None = None
    # Files in the folder that the manifest does not list.
    unexpected: list[str] = []
    # verified: sealed, signed, intact. signed_legacy / unsigned_legacy: written before sealing,
    # intact (and signed or not). failed: anything else. absent: never archived.
    verdict: Verdict = "absent"


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


def _binding(case_id: str, name: str, sha256: str) -> str:
    """What a sealed part is bound to: its package, its place in it and its content."""
    return f"archive:{case_id}/{name}@{sha256}"


def write_package(
    root: Path,
    archive: ArchiveCaseInput,
    archived_at: datetime,
    keys: ArchiveKeys,
    *,
    files: list[ArchivedFile] | None = None,
) -> ArchiveManifest:
    """Write (or rewrite, with the same manifest) the case's package under ``root/<case_id>/``,
    with its uploaded ``files``: each part sealed, the manifest signed."""
    case_id = archive.snapshot.case_id
    folder = root / case_id
    folder.mkdir(parents=True, exist_ok=True)
    contents: dict[str, tuple[str, bytes]] = {
        name: (REQUIRED_PARTS[name], content) for name, content in package_parts(archive).items()
    }
    for file in files or []:
        contents[file_part_name(file)] = (f"上传材料：{file.name_zh}", file.content)
    parts = []
    for name, (title_zh, content) in contents.items():
        sha256 = hashlib.sha256(content).hexdigest()
        (folder / name).parent.mkdir(parents=True, exist_ok=True)
        (folder / name).write_bytes(keys.seal.seal(_binding(case_id, name, sha256), content))
        parts.append(ArchivedPart(name=name, title_zh=title_zh, sha256=sha256, bytes=len(content)))
    snapshot = archive.snapshot
    manifest = ArchiveManifest(
        case_id=case_id,
        thing=snapshot.thing,
        catalogue_version=snapshot.catalogue_version,
        situation=snapshot.situation,
        status=snapshot.status.value,
        archived_at=archived_at,
        parts=parts,
        format=SEALED_FORMAT,
        signing_key_id=keys.signing_key_id,
    )
    # The seals' nonces are fresh on a retry, but the manifest and its (deterministic Ed25519)
    # signature come out the same bytes.
    manifest_bytes = manifest.model_dump_json(indent=2).encode()
    (folder / MANIFEST).write_bytes(manifest_bytes)
    (folder / SIGNATURE).write_bytes(keys.signing_key.sign(manifest_bytes))
    return manifest


def _signature(
    folder: Path, manifest_bytes: bytes, manifest: ArchiveManifest, keys: ArchiveKeys
) -> Literal["valid", "invalid", "unknown_key", "missing"]:
    signature_file = folder / SIGNATURE
    if not signature_file.is_file():
        return "missing"
    if manifest.signing_key_id is not None:
        named = keys.verify_keys.get(manifest.signing_key_id)
        if named is None:
            return "unknown_key"
        candidates = [named]
    else:  # a legacy manifest names no key: any key this deployment has used may have signed it
        candidates = list(keys.verify_keys.values())
    signature = signature_file.read_bytes()
    for key in candidates:
        try:
            key.verify(signature, manifest_bytes)
        except InvalidSignature:
            continue
        return "valid"
    return "invalid"


def _safe_name(name: str) -> bool:
    return PART_NAME.match(name) is not None and not {".", ".."} & set(name.split("/"))


def read_part(folder: Path, manifest: ArchiveManifest, part: ArchivedPart, keys: ArchiveKeys) -> bytes:
    """A listed part's content, unsealed and checked against its hash (ArchiveError if not)."""
    if not _safe_name(part.name):
        raise ArchiveError(f"{part.name!r} is not a part's name")
    path = folder / part.name
    if not path.is_file():
        raise ArchiveError(f"{part.name} is missing")
    stored = path.read_bytes()
    if manifest.format == LEGACY_FORMAT:
        content = stored
    else:
        try:
            content = keys.seal.unseal(_binding(manifest.case_id, part.name, part.sha256), stored)
        except ValueError:  # the file store's StoredFileError: damaged, moved, or an unknown key
            raise ArchiveError(f"{part.name} is not the part sealed for this package") from None
    if hashlib.sha256(content).hexdigest() != part.sha256:
        raise ArchiveError(f"{part.name} does not match its hash in the manifest")
    return content


def _listed_files(folder: Path) -> list[str]:
    return sorted(path.relative_to(folder).as_posix() for path in folder.rglob("*") if path.is_file())


def check_package(root: Path, case_id: str, keys: ArchiveKeys) -> ArchiveCheck:
    """Is the package this case's, complete, is every part the content listed (unsealed), is
    nothing added, and is the manifest the one that was signed?"""
    folder = root / case_id
    manifest_file = folder / MANIFEST
    if not manifest_file.is_file():
        return ArchiveCheck(case_id=case_id, complete=False, missing=[MANIFEST], corrupt=[], manifest=None)
    manifest_bytes = manifest_file.read_bytes()
    try:
        manifest = ArchiveManifest.model_validate_json(manifest_bytes)
    except ValidationError:
        return ArchiveCheck(
            case_id=case_id, complete=False, missing=[], corrupt=[MANIFEST], manifest=None, verdict="failed"
        )
    signature = _signature(folder, manifest_bytes, manifest, keys)
    listed = {part.name: part for part in manifest.parts}
    missing = [name for name in REQUIRED_PARTS if name not in listed]
    corrupt = [] if manifest.case_id == case_id else [MANIFEST]  # a whole package moved from another case
    for part in manifest.parts:
        if _safe_name(part.name) and not (folder / part.name).is_file():
            missing.append(part.name)
            continue
        try:
            read_part(folder, manifest, part, keys)
        except ArchiveError:
            corrupt.append(part.name)
    unexpected = [name for name in _listed_files(folder) if name not in {MANIFEST, SIGNATURE, *listed}]
    intact = not missing and not corrupt and not unexpected and len(listed) == len(manifest.parts)
    verdict: Verdict = "failed"
    if intact and manifest.format == SEALED_FORMAT and signature == "valid":
        verdict = "verified"
    elif intact and manifest.format == LEGACY_FORMAT and signature in {"valid", "missing"}:
        verdict = "signed_legacy" if signature == "valid" else "unsigned_legacy"
    return ArchiveCheck(
        case_id=case_id,
        complete=verdict != "failed",
        missing=missing,
        corrupt=corrupt,
        manifest=manifest,
        signature=signature,
        unexpected=unexpected,
        verdict=verdict,
    )


def package_zip(root: Path, case_id: str, keys: ArchiveKeys) -> bytes:
    """The package as one zip for download: the manifest and its signature as stored, and every
    part listed, unsealed, so each matches its hash in the signed manifest."""
    folder = root / case_id
    manifest_bytes = (folder / MANIFEST).read_bytes()
    manifest = ArchiveManifest.model_validate_json(manifest_bytes)
    buffer = io.BytesIO()
    entries = {MANIFEST: manifest_bytes}
    if (folder / SIGNATURE).is_file():
        entries[SIGNATURE] = (folder / SIGNATURE).read_bytes()
    for part in manifest.parts:
        entries[part.name] = read_part(folder, manifest, part, keys)
    # Dated when archived rather than now, so every download of a package is the same bytes.
    at = manifest.archived_at
    stamp = (at.year, at.month, at.day, at.hour, at.minute, at.second)
    with zipfile.ZipFile(buffer, "w", compression=zipfile.ZIP_DEFLATED) as package:
        for name, content in entries.items():
            info = zipfile.ZipInfo(f"{case_id}/{name}", date_time=stamp)
            info.compress_type = zipfile.ZIP_DEFLATED
            package.writestr(info, content)
    return buffer.getvalue()

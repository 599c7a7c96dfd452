"""The archive activity: files a closed case's package in the archive directory, with the
case's uploaded materials (decrypted from the file store), each part sealed again for the
archive, and a signed manifest."""

from __future__ import annotations

import hashlib
from pathlib import Path

from temporalio import activity

from documents.archive import MANIFEST, ArchivedFile, ArchiveKeys, write_package
from domain.uploads import FILE_REFERENCE, sniff_type
from infra.file_store import FileStore
from models.case import ActivityName, ArchiveCaseInput, ArchiveResult


class ArchiveActivities:
    def __init__(self, archive_dir: Path, keys: ArchiveKeys, files: FileStore | None = None) -> None:
        self._root = archive_dir
        self._keys = keys
        self._files = files

    def _uploaded(self, archive: ArchiveCaseInput) -> list[ArchivedFile]:
        """The materials supplied as uploaded files (``sha256:<hash>`` references)."""
        if self._files is None:
            return []
        found = []
        for material in archive.snapshot.materials:
            reference = material.reference or ""
            if not reference.startswith(FILE_REFERENCE):
                continue
            sha256 = reference.removeprefix(FILE_REFERENCE)
            content = self._files.get(sha256)
            content_type = sniff_type(content) or "application/octet-stream"
            found.append(
                ArchivedFile(
                    material=material.code,
                    name_zh=material.name_zh,
                    sha256=sha256,
                    content_type=content_type,
                    content=content,
                )
            )
        return found

    @activity.defn(name=ActivityName.ARCHIVE_CASE)
    def archive_case(self, archive: ArchiveCaseInput) -> ArchiveResult:
        # Archived at the moment the case closed (its last event), so a retry
        # writes the very same package.
        closed_at = archive.events[-1].at if archive.events else archive.snapshot.submitted_at
        manifest = write_package(self._root, archive, closed_at, self._keys, files=self._uploaded(archive))
        manifest_bytes = (self._root / manifest.case_id / MANIFEST).read_bytes()
        return ArchiveResult(
            case_id=manifest.case_id,
            manifest_sha256=hashlib.sha256(manifest_bytes).hexdigest(),
            files=len(manifest.parts),
        )

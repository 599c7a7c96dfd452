"""The archive activity: files a closed case's package in the archive directory."""

from __future__ import annotations

import hashlib
from pathlib import Path

from temporalio import activity

from documents.archive import MANIFEST, write_package
from models.case import ActivityName, ArchiveCaseInput, ArchiveResult


class ArchiveActivities:
    def __init__(self, archive_dir: Path) -> None:
        self._root = archive_dir

    @activity.defn(name=ActivityName.ARCHIVE_CASE)
    def archive_case(self, archive: ArchiveCaseInput) -> ArchiveResult:
        # Archived at the moment the case closed (its last event), so a retry
        # writes the very same package.
        closed_at = archive.events[-1].at if archive.events else archive.snapshot.submitted_at
        manifest = write_package(self._root, archive, closed_at)
        manifest_bytes = (self._root / manifest.case_id / MANIFEST).read_bytes()
        return ArchiveResult(
            case_id=manifest.case_id,
            manifest_sha256=hashlib.sha256(manifest_bytes).hexdigest(),
            files=len(manifest.parts),
        )

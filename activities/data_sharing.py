"""Data sharing (数据共享, DB33/T 2304-2021 §5.4): documents fetched from the platform
instead of being uploaded by the applicant.

``DataSharingGateway`` is the seam: production plugs in the provincial platform's
client; dev and tests use ``FixtureDataSharingGateway`` backed by a JSON file.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Protocol

from temporalio import activity

from models.case import (
    ActivityName,
    FetchSharedMaterialsInput,
    FetchSharedMaterialsResult,
    SharedMaterial,
)


class DataSharingUnavailable(Exception):
    """The platform did not answer; the activity retries with backoff."""


class DataSharingGateway(Protocol):
    def lookup(self, document: str, id_number: str) -> str | None:
        """The platform's reference for a person's document, or None if it holds none."""
        ...


class FixtureDataSharingGateway:
    def __init__(self, fixture: Path) -> None:
        self._records: dict[str, dict[str, str]] = json.loads(fixture.read_text(encoding="utf-8"))["records"]

    def lookup(self, document: str, id_number: str) -> str | None:
        return self._records.get(id_number, {}).get(document)


class DataSharingActivities:
    def __init__(self, gateway: DataSharingGateway) -> None:
        self._gateway = gateway

    @activity.defn(name=ActivityName.FETCH_SHARED_MATERIALS)
    def fetch_shared_materials(self, request: FetchSharedMaterialsInput) -> FetchSharedMaterialsResult:
        found: list[SharedMaterial] = []
        missing: list[str] = []
        for item in request.requests:
            reference = self._gateway.lookup(item.document, item.subject_id_number)
            if reference:
                found.append(SharedMaterial(material=item.material, reference=reference))
            else:
                missing.append(item.material)
        return FetchSharedMaterialsResult(found=found, missing=missing)

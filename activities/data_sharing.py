"""Data sharing (数据共享, DB33/T 2304-2021 §5.4): documents fetched from the platform
instead of being uploaded by the applicant.

``DataSharingGateway`` is the seam: ``HttpDataSharingGateway`` asks the platform over
HTTP when ``ONETHING_DATA_SHARING_URL`` is set; otherwise tests' ``FixtureDataSharingGateway``
answers from a JSON file, and ``make run``'s ``PopulationRegisterGateway`` finds every
well-formed ID number except the documented set that demonstrates 补正. A platform that errs or is
slower than its timeout raises ``DataSharingUnavailable``; the workflow retries the
activity with backoff for a bounded time, then asks the applicant for the materials
(补正) instead of waiting (workflows/kit/retry.py ``DATA_SHARING_RETRY``).
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import logging
from pathlib import Path
from typing import Protocol

import httpx
from temporalio import activity

from domain.forms import validate_credit_code
from domain.identity import validate_id_number
from models.case import (
    ActivityName,
    FetchSharedMaterialsInput,
    FetchSharedMaterialsResult,
    SharedMaterial,
)
from settings import Settings

logger = logging.getLogger(__name__)


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


class PopulationRegisterGateway(FixtureDataSharingGateway):
    """What ``make run`` asks: a population register that knows everyone. A person in the
    fixture's records answers as recorded there, so the documents missing from their record
    are the documented set that demonstrates 补正 (README, "Data sharing in the demo");
    any other well-formed ID number (or credit code) is found, with a reference derived
    from it; a malformed one is not."""

    def lookup(self, document: str, id_number: str) -> str | None:
        if id_number in self._records:
            return super().lookup(document, id_number)
        if not _well_formed(id_number):
            return None
        digest = hashlib.sha256(f"{document}:{id_number}".encode()).hexdigest()[:8].upper()
        return f"DS-{document.upper()}-{digest}"


def _well_formed(number: str) -> bool:
    """A citizen's ID number or an enterprise's unified social credit code, checksum and all."""
    for validate in (validate_id_number, validate_credit_code):
        try:
            validate(number)
        except ValueError:
            continue
        return True
    return False


class HttpDataSharingGateway:
    """The platform's lookup service over HTTP.

    ``POST {base_url}/lookup`` with ``{"document", "id_number"}`` in the body (never in
    the URL, which access logs keep) answers 200 ``{"reference": "..."}`` when the
    platform holds the document and 404 when it does not. Anything else, a connection
    failure or no answer within ``timeout_seconds`` means the platform is unavailable.
    """

    def __init__(self, base_url: str, timeout_seconds: float, transport: httpx.BaseTransport | None = None) -> None:
        # One client (a connection pool, safe across threads) for the worker's activity threads.
        self._client = httpx.Client(
            base_url=base_url.rstrip("/"), timeout=httpx.Timeout(timeout_seconds), transport=transport
        )

    def lookup(self, document: str, id_number: str) -> str | None:
        try:
            response = self._client.post("/lookup", json={"document": document, "id_number": id_number})
        except httpx.HTTPError as exc:
            # The exception names the URL only; the ID number stays out of the logs.
            raise DataSharingUnavailable(f"data-sharing platform unreachable: {type(exc).__name__}") from None
        if response.status_code == httpx.codes.NOT_FOUND:
            return None
        if response.status_code != httpx.codes.OK:
            raise DataSharingUnavailable(f"data-sharing platform answered HTTP {response.status_code} for {document}")
        try:
            reference = response.json()["reference"]
        except (ValueError, KeyError, TypeError):
            raise DataSharingUnavailable(f"data-sharing platform answered an unreadable body for {document}") from None
        if reference is not None and not isinstance(reference, str):
            raise DataSharingUnavailable(f"data-sharing platform answered a non-text reference for {document}")
        return reference or None

    def close(self) -> None:
        self._client.close()


def gateway_from_settings(settings: Settings) -> DataSharingGateway:
    """The platform's HTTP service when ``ONETHING_DATA_SHARING_URL`` is set, else the fixture."""
    if settings.data_sharing_url:
        logger.info("data sharing through %s", settings.data_sharing_url)
        return HttpDataSharingGateway(settings.data_sharing_url, settings.data_sharing_timeout_seconds)
    if settings.env == "dev":  # make run: a register that knows every well-formed ID number
        return PopulationRegisterGateway(settings.data_sharing_fixture)
    return FixtureDataSharingGateway(settings.data_sharing_fixture)


class DataSharingActivities:
    def __init__(self, gateway: DataSharingGateway) -> None:
        self._gateway = gateway

    @activity.defn(name=ActivityName.FETCH_SHARED_MATERIALS)
    async def fetch_shared_materials(self, request: FetchSharedMaterialsInput) -> FetchSharedMaterialsResult:
        # The gateway blocks (HTTP); it runs on a thread of its own rather than on one of the
        # activity threads, where a submission would wait behind other cases' writes.
        return await asyncio.to_thread(self._fetch, request)

    def _fetch(self, request: FetchSharedMaterialsInput) -> FetchSharedMaterialsResult:
        found: list[SharedMaterial] = []
        missing: list[str] = []
        for item in request.requests:
            reference = self._gateway.lookup(item.document, item.subject_id_number)
            if reference:
                found.append(SharedMaterial(material=item.material, reference=reference))
            else:
                missing.append(item.material)
        return FetchSharedMaterialsResult(found=found, missing=missing)

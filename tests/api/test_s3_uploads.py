"""Uploads through the API with the S3-compatible file store configured: the upload lands in
the bucket (sealed, not in the local directory) and reads back through GET /cases/{id}/files/{sha256}."""

from __future__ import annotations

import hashlib
from collections.abc import Iterator
from pathlib import Path

import pytest

from settings import Settings
from tests.api.test_case_files import _owing_case, _stored_blobs, _upload, pdf, supply_upload
from tests.conftest import test_settings as settings_for
from tests.test_s3_file_store import new_bucket, s3_client, s3_endpoint, s3_overrides


@pytest.fixture(scope="module")
def s3() -> Iterator[str]:
    with s3_endpoint() as endpoint:
        yield endpoint


@pytest.fixture
def bucket(s3: str) -> str:
    return new_bucket(s3)


@pytest.fixture
def api_settings(tmp_path: Path, task_queue: str, s3: str, bucket: str) -> Settings:
    return settings_for(tmp_path, task_queue=task_queue, max_body_bytes=64 * 1024, **s3_overrides(s3, bucket))


async def test_an_upload_goes_to_the_bucket_encrypted_and_reads_back(api, login, cases, api_settings, s3, bucket):
    case = await _owing_case(cases)
    document = pdf(text="MARRIAGE-CERTIFICATE-SCAN-0042")

    response = await _upload(api, login, case["case_id"], document)

    assert response.status_code == 201, response.text
    sha256 = response.json()["sha256"]
    assert sha256 == hashlib.sha256(document).hexdigest()
    (stored,) = s3_client(s3).list_objects_v2(Bucket=bucket)["Contents"]
    assert stored["Key"] == f"files/{sha256}"
    blob = s3_client(s3).get_object(Bucket=bucket, Key=stored["Key"])["Body"].read()
    assert b"MARRIAGE-CERTIFICATE-SCAN-0042" not in blob and b"%PDF" not in blob  # encrypted at rest
    assert _stored_blobs(api_settings) == []  # nothing in the local directory

    mine = await api.get(f"/cases/{case['case_id']}/files/{sha256}", headers=await login("applicant1"))
    assert mine.status_code == 200, mine.text
    assert mine.content == document and mine.headers["content-type"] == "application/pdf"
    # Supplied in 补正, the case reaches the hospital, whose officer reads the same file from the bucket.
    supplied = await supply_upload(api, login, case["case_id"], sha256)
    assert supplied.status_code == 200, supplied.text
    read = await api.get(f"/cases/{case['case_id']}/files/{sha256}", headers=await login("hospital_officer"))
    assert read.status_code == 200 and read.content == document

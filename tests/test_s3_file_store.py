"""The S3-compatible file store (infra/file_store.py S3FileStore) against a real S3 HTTP
endpoint on this machine (moto's server on a free loopback port): files round-trip, are
stored once per hash, are encrypted at rest, and a missing or altered object is a
StoredFileError; the factory picks S3 when a bucket is configured, the local directory otherwise."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import boto3
import pytest
from moto.server import ThreadedMotoServer

from infra.file_store import LocalFileStore, S3FileStore, StoredFileError, file_store_from_settings
from tests.conftest import test_settings as settings_for

DOCUMENT = b"%PDF-1.7\n% MARRIAGE-CERTIFICATE-SCAN-0042\n" + bytes(range(256)) * 8


@contextmanager
def s3_endpoint() -> Iterator[str]:
    """An S3-compatible HTTP endpoint on a free loopback port, for the block's duration."""
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    try:
        host, port = server.get_host_and_port()
        yield f"http://{host}:{port}"
    finally:
        server.stop()


def s3_client(endpoint: str) -> Any:
    return boto3.session.Session().client(
        "s3", endpoint_url=endpoint, region_name="us-east-1", aws_access_key_id="test", aws_secret_access_key="test"
    )


def new_bucket(endpoint: str) -> str:
    bucket = f"onething-{uuid.uuid4().hex[:12]}"
    s3_client(endpoint).create_bucket(Bucket=bucket)
    return bucket


def s3_overrides(endpoint: str, bucket: str, prefix: str = "files/") -> dict[str, Any]:
    """The settings that point the file store at ``bucket`` of the endpoint."""
    return {
        "file_store_s3_bucket": bucket,
        "file_store_s3_prefix": prefix,
        "file_store_s3_endpoint_url": endpoint,
        "file_store_s3_region": "us-east-1",
        "file_store_s3_access_key_id": "test",
        "file_store_s3_secret_access_key": "test",
    }


@pytest.fixture(scope="module")
def endpoint() -> Iterator[str]:
    with s3_endpoint() as url:
        yield url


@pytest.fixture
def bucket(endpoint: str) -> str:
    return new_bucket(endpoint)


@pytest.fixture
def store(tmp_path: Path, endpoint: str, bucket: str) -> S3FileStore:
    return S3FileStore.from_settings(settings_for(tmp_path, **s3_overrides(endpoint, bucket)))


def _objects(endpoint: str, bucket: str) -> list[dict[str, Any]]:
    return list(s3_client(endpoint).list_objects_v2(Bucket=bucket).get("Contents", []))


def test_a_file_put_is_read_back(store: S3FileStore) -> None:
    sha256 = store.put(DOCUMENT)

    assert store.get(sha256) == DOCUMENT


def test_the_same_content_twice_is_one_object_written_once(store: S3FileStore, endpoint: str, bucket: str) -> None:
    sha256 = store.put(DOCUMENT)
    (first,) = _objects(endpoint, bucket)

    assert store.put(DOCUMENT) == sha256

    (again,) = _objects(endpoint, bucket)
    assert again["Key"] == first["Key"] == f"files/{sha256}"
    # Not rewritten either: a second seal (a new nonce) would be other bytes, another ETag.
    assert again["ETag"] == first["ETag"]


def test_the_stored_object_is_encrypted(store: S3FileStore, endpoint: str, bucket: str) -> None:
    sha256 = store.put(DOCUMENT)

    stored = s3_client(endpoint).get_object(Bucket=bucket, Key=store.key(sha256))["Body"].read()

    assert stored.startswith(b"OTF1")
    assert DOCUMENT not in stored and b"MARRIAGE-CERTIFICATE" not in stored and b"%PDF" not in stored


def test_a_hash_never_stored_is_a_stored_file_error(store: S3FileStore) -> None:
    with pytest.raises(StoredFileError, match="no stored file"):
        store.get("0" * 64)


def test_an_object_rewritten_in_the_bucket_is_a_stored_file_error(
    store: S3FileStore, endpoint: str, bucket: str
) -> None:
    sha256 = store.put(DOCUMENT)
    client, key = s3_client(endpoint), store.key(sha256)
    stored = bytearray(client.get_object(Bucket=bucket, Key=key)["Body"].read())
    stored[-1] ^= 0x01
    client.put_object(Bucket=bucket, Key=key, Body=bytes(stored))

    with pytest.raises(StoredFileError, match="damaged"):
        store.get(sha256)


def test_an_object_moved_under_another_hash_does_not_decrypt(store: S3FileStore, endpoint: str, bucket: str) -> None:
    sha256, other = store.put(DOCUMENT), store.put(b"another file")
    client = s3_client(endpoint)
    client.copy_object(Bucket=bucket, Key=store.key(other), CopySource={"Bucket": bucket, "Key": store.key(sha256)})

    with pytest.raises(StoredFileError):
        store.get(other)


def test_the_factory_picks_s3_when_a_bucket_is_set_and_the_directory_otherwise(
    tmp_path: Path, endpoint: str, bucket: str
) -> None:
    s3 = file_store_from_settings(settings_for(tmp_path, **s3_overrides(endpoint, bucket)))
    local = file_store_from_settings(settings_for(tmp_path))

    assert isinstance(s3, S3FileStore) and isinstance(local, LocalFileStore)
    sha256 = s3.put(DOCUMENT)
    assert [item["Key"] for item in _objects(endpoint, bucket)] == [f"files/{sha256}"]
    assert not (tmp_path / "files").exists()  # nothing went to the directory
    assert local.put(DOCUMENT) == sha256 and local.get(sha256) == DOCUMENT


def test_local_and_s3_stores_write_the_same_format(
    tmp_path: Path, store: S3FileStore, endpoint: str, bucket: str
) -> None:
    """One sealing format: a blob copied from the directory into the bucket reads back."""
    local = LocalFileStore.from_settings(settings_for(tmp_path))
    sha256 = local.put(DOCUMENT)
    blob = (tmp_path / "files" / sha256[:2] / sha256).read_bytes()
    s3_client(endpoint).put_object(Bucket=bucket, Key=store.key(sha256), Body=blob)

    assert store.get(sha256) == DOCUMENT

"""The file store of uploaded materials: each file once, named by the SHA-256 of its content,
encrypted at rest (AES-256-GCM under the payload keys of settings, so keys rotate the same
way: a file names the key that sealed it) and bound to its name, so a blob moved under
another hash does not decrypt. ``FileSeal`` is that format, the one both stores write.

Two stores, chosen by settings (``file_store_from_settings``):

- a local directory by default (``ONETHING_FILE_STORE_DIR``); a write goes to a temporary
  file first and is renamed into place, so an interrupted one leaves nothing under a hash;
- an S3-compatible bucket (AWS S3, MinIO, a cloud's object storage) when
  ``ONETHING_FILE_STORE_S3_BUCKET`` is set; a write is one PUT of the whole sealed blob,
  which S3 makes visible all at once or not at all, so an interrupted one leaves nothing either.
"""

from __future__ import annotations

import hashlib
import os
import tempfile
from pathlib import Path
from typing import Any, Protocol

from botocore.exceptions import ClientError
from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from settings import Settings

MAGIC = b"OTF1"
NONCE_BYTES = 12
# What S3 and its look-alikes answer for an object that is not there (GetObject, HeadObject).
S3_MISSING = frozenset({"NoSuchKey", "404", "NotFound"})


class StoredFileError(ValueError):
    """A stored file is missing, or does not decrypt to its hash (damaged or moved)."""


class FileStore(Protocol):
    def put(self, data: bytes) -> str:
        """Store ``data`` (once) and return its SHA-256 in hex."""
        ...

    def get(self, sha256: str) -> bytes: ...


class FileSeal:
    """The stored form of a file, whatever holds it: MAGIC, the key id's length (one byte),
    the key id, the nonce, then the AES-256-GCM ciphertext with the file's SHA-256 (hex) as
    associated data, so a blob decrypts only under the name it was stored as."""

    def __init__(self, keys: dict[str, bytes], current_key_id: str) -> None:
        self._ciphers = {key_id: AESGCM(key) for key_id, key in keys.items()}
        self._key_id = current_key_id

    @classmethod
    def from_settings(cls, settings: Settings) -> FileSeal:
        return cls(settings.payload_key_bytes(), settings.payload_key_id)

    def seal(self, sha256: str, data: bytes) -> bytes:
        nonce = os.urandom(NONCE_BYTES)
        key_id = self._key_id.encode()
        sealed = self._ciphers[self._key_id].encrypt(nonce, data, sha256.encode())
        return MAGIC + bytes([len(key_id)]) + key_id + nonce + sealed

    def unseal(self, sha256: str, blob: bytes) -> bytes:
        if not blob.startswith(MAGIC) or len(blob) <= len(MAGIC):
            raise StoredFileError(f"stored file {sha256} is not one of ours")
        length = blob[len(MAGIC)]
        start = len(MAGIC) + 1
        try:
            key_id = blob[start : start + length].decode()
        except UnicodeDecodeError:
            raise StoredFileError(f"stored file {sha256} is damaged (its key id)") from None
        nonce = blob[start + length : start + length + NONCE_BYTES]
        cipher = self._ciphers.get(key_id)
        if cipher is None:
            raise StoredFileError(f"stored file {sha256} is sealed with an unknown key {key_id!r}")
        try:
            return cipher.decrypt(nonce, blob[start + length + NONCE_BYTES :], sha256.encode())
        except (InvalidTag, ValueError):  # ValueError: a nonce cut short
            raise StoredFileError(f"stored file {sha256} is damaged or not the file of that hash") from None


class LocalFileStore:
    def __init__(self, root: Path, keys: dict[str, bytes], current_key_id: str) -> None:
        self._root = root
        self._seal = FileSeal(keys, current_key_id)

    @classmethod
    def from_settings(cls, settings: Settings) -> LocalFileStore:
        return cls(settings.file_store_dir, settings.payload_key_bytes(), settings.payload_key_id)

    def _path(self, sha256: str) -> Path:
        return self._root / sha256[:2] / sha256

    def put(self, data: bytes) -> str:
        sha256 = hashlib.sha256(data).hexdigest()
        path = self._path(sha256)
        if path.exists():  # stored once: the same content uploaded again is the same file
            return sha256
        path.parent.mkdir(parents=True, exist_ok=True)
        blob = self._seal.seal(sha256, data)
        handle, temporary = tempfile.mkstemp(dir=path.parent, prefix=".upload-")
        try:
            with os.fdopen(handle, "wb") as file:
                file.write(blob)
                file.flush()
                os.fsync(file.fileno())
            os.replace(temporary, path)
        except BaseException:
            Path(temporary).unlink(missing_ok=True)
            raise
        return sha256

    def get(self, sha256: str) -> bytes:
        try:
            blob = self._path(sha256).read_bytes()
        except FileNotFoundError:
            raise StoredFileError(f"no stored file {sha256}") from None
        return self._seal.unseal(sha256, blob)


class S3FileStore:
    """Files as objects ``<prefix><sha256>`` of one bucket of an S3-compatible service.

    ``client`` is a boto3 S3 client (thread-safe, so one serves every request);
    ``from_settings`` builds it from the ``file_store_s3_*`` settings.
    """

    def __init__(self, client: Any, bucket: str, prefix: str, keys: dict[str, bytes], current_key_id: str) -> None:
        self._client = client
        self._bucket = bucket
        self._prefix = f"{prefix.strip('/')}/" if prefix.strip("/") else ""
        self._seal = FileSeal(keys, current_key_id)

    @classmethod
    def from_settings(cls, settings: Settings) -> S3FileStore:
        import boto3  # only where the S3 store is configured: a third of a second to import
        from botocore.config import Config

        if not settings.file_store_s3_bucket:
            raise ValueError("ONETHING_FILE_STORE_S3_BUCKET is not set")
        secret = settings.file_store_s3_secret_access_key
        client = boto3.session.Session().client(
            "s3",
            endpoint_url=settings.file_store_s3_endpoint_url,
            region_name=settings.file_store_s3_region,
            # Unset: boto3's own chain (AWS_ACCESS_KEY_ID…, a profile, the instance's role).
            aws_access_key_id=settings.file_store_s3_access_key_id,
            aws_secret_access_key=secret.get_secret_value() if secret is not None else None,
            config=Config(
                s3={"addressing_style": settings.file_store_s3_addressing_style},
                connect_timeout=5,
                read_timeout=30,
                retries={"mode": "standard", "max_attempts": 3},
            ),
        )
        return cls(
            client,
            settings.file_store_s3_bucket,
            settings.file_store_s3_prefix,
            settings.payload_key_bytes(),
            settings.payload_key_id,
        )

    def key(self, sha256: str) -> str:
        """The object key a file of this hash is stored under."""
        return self._prefix + sha256

    def _exists(self, key: str) -> bool:
        try:
            self._client.head_object(Bucket=self._bucket, Key=key)
        except ClientError as exc:
            if _error_code(exc) in S3_MISSING:
                return False
            raise
        return True

    def put(self, data: bytes) -> str:
        sha256 = hashlib.sha256(data).hexdigest()
        key = self.key(sha256)
        if self._exists(key):  # stored once: the same content uploaded again is the same file
            return sha256
        # One PUT of the whole blob: S3 shows an object only once all of it arrived, so an
        # interrupted upload leaves nothing under the hash (no multipart upload, whatever the size).
        self._client.put_object(
            Bucket=self._bucket, Key=key, Body=self._seal.seal(sha256, data), ContentType="application/octet-stream"
        )
        return sha256

    def get(self, sha256: str) -> bytes:
        try:
            response = self._client.get_object(Bucket=self._bucket, Key=self.key(sha256))
        except ClientError as exc:
            if _error_code(exc) in S3_MISSING:
                raise StoredFileError(f"no stored file {sha256}") from None
            raise
        blob: bytes = response["Body"].read()
        return self._seal.unseal(sha256, blob)


def _error_code(exc: ClientError) -> str:
    return str(exc.response.get("Error", {}).get("Code", ""))


def file_store_from_settings(settings: Settings) -> FileStore:
    """The S3-compatible store when ``ONETHING_FILE_STORE_S3_BUCKET`` is set, else the local directory."""
    if settings.file_store_s3_bucket:
        return S3FileStore.from_settings(settings)
    return LocalFileStore.from_settings(settings)

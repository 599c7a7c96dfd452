"""The file store of uploaded materials: each file once, named by the SHA-256 of its content,
encrypted at rest (AES-256-GCM under the payload keys of settings, so keys rotate the same
way: a file names the key that sealed it) and bound to its name, so a blob moved under
another hash does not decrypt.

Local directory by default (``ONETHING_FILE_STORE_DIR``); a write goes to a temporary file
first and is renamed into place, so an interrupted one leaves nothing under a hash.
"""

from __future__ import annotations

import hashlib
import os
import tempfile
from pathlib import Path
from typing import Protocol

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from settings import Settings

MAGIC = b"OTF1"
NONCE_BYTES = 12


class StoredFileError(ValueError):
    """A stored file is missing, or does not decrypt to its hash (damaged or moved)."""


class FileStore(Protocol):
    def put(self, data: bytes) -> str:
        """Store ``data`` (once) and return its SHA-256 in hex."""
        ...

    def get(self, sha256: str) -> bytes: ...


class LocalFileStore:
    def __init__(self, root: Path, keys: dict[str, bytes], current_key_id: str) -> None:
        self._root = root
        self._ciphers = {key_id: AESGCM(key) for key_id, key in keys.items()}
        self._key_id = current_key_id

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
        nonce = os.urandom(NONCE_BYTES)
        key_id = self._key_id.encode()
        sealed = self._ciphers[self._key_id].encrypt(nonce, data, sha256.encode())
        blob = MAGIC + bytes([len(key_id)]) + key_id + nonce + sealed
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
        if not blob.startswith(MAGIC):
            raise StoredFileError(f"stored file {sha256} is not one of ours")
        length = blob[len(MAGIC)]
        start = len(MAGIC) + 1
        key_id = blob[start : start + length].decode()
        nonce = blob[start + length : start + length + NONCE_BYTES]
        cipher = self._ciphers.get(key_id)
        if cipher is None:
            raise StoredFileError(f"stored file {sha256} is sealed with an unknown key {key_id!r}")
        try:
            data = cipher.decrypt(nonce, blob[start + length + NONCE_BYTES :], sha256.encode())
        except InvalidTag:
            raise StoredFileError(f"stored file {sha256} is damaged or not the file of that hash") from None
        return data

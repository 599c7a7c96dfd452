"""The platform's Ed25519 signing key (archive manifests, licences): from ONETHING_SIGNING_KEY
(base64 of a 32-byte seed) in production, else derived from the secret key, so dev and tests
need no key of their own. The public half verifies what the private half signed.

A key is named by its id, the start of the SHA-256 of its public half, so a signature can say
which key made it; after a rotation the old public halves (ONETHING_SIGNING_RETIRED_PUBLIC_KEYS)
still verify what they signed."""

from __future__ import annotations

import base64
import hashlib

from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey
from cryptography.hazmat.primitives.kdf.hkdf import HKDF
from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat

from documents.archive import ArchiveKeys
from infra.file_store import FileSeal
from settings import Settings


def signing_key(settings: Settings) -> Ed25519PrivateKey:
    if settings.signing_key is not None:
        return Ed25519PrivateKey.from_private_bytes(base64.b64decode(settings.signing_key))
    seed = HKDF(algorithm=hashes.SHA256(), length=32, salt=None, info=b"onething-signing-key").derive(
        settings.secret_key.encode()
    )
    return Ed25519PrivateKey.from_private_bytes(seed)


def verify_key(settings: Settings) -> Ed25519PublicKey:
    return signing_key(settings).public_key()


def public_key_text(key: Ed25519PublicKey) -> str:
    """The public half as base64 of its 32 raw bytes (how ONETHING_SIGNING_RETIRED_PUBLIC_KEYS lists it)."""
    return base64.b64encode(key.public_bytes(Encoding.Raw, PublicFormat.Raw)).decode()


def key_id(key: Ed25519PublicKey) -> str:
    return hashlib.sha256(key.public_bytes(Encoding.Raw, PublicFormat.Raw)).hexdigest()[:16]


def verify_keys(settings: Settings) -> dict[str, Ed25519PublicKey]:
    """Every key whose signatures hold, by id: the current one and the retired ones."""
    keys = [verify_key(settings)]
    keys += [Ed25519PublicKey.from_public_bytes(base64.b64decode(k)) for k in settings.signing_retired_public_keys]
    return {key_id(key): key for key in keys}


def archive_keys(settings: Settings) -> ArchiveKeys:
    """Archive parts are sealed like uploaded files (the payload keys, by id) and manifests
    signed by the signing key."""
    private = signing_key(settings)
    return ArchiveKeys(
        seal=FileSeal.from_settings(settings),
        signing_key=private,
        signing_key_id=key_id(private.public_key()),
        verify_keys=verify_keys(settings),
    )

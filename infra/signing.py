"""The platform's Ed25519 signing key (archive manifests): from ONETHING_SIGNING_KEY (base64
of a 32-byte seed) in production, else derived from the secret key, so dev and tests need no
key of their own. The public half verifies what the private half signed."""

from __future__ import annotations

import base64

from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey
from cryptography.hazmat.primitives.kdf.hkdf import HKDF

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

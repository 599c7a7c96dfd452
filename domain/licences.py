"""电子证照 (A.5.2.1.2): which steps issue a licence (data: domain/data/licences.yaml), its
number, its canonical content (what the platform signs), and the check of a signature.

Pure: the signing key is the caller's (infra/signing.py); the same content always gives the
same bytes, so a signature made at issuance verifies at any later reading."""

from __future__ import annotations

import base64
import hashlib
import json
from functools import cache
from pathlib import Path
from typing import Any

import yaml
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey
from pydantic import BaseModel

LICENCES_FILE = Path(__file__).resolve().parent / "data" / "licences.yaml"


class LicenceType(BaseModel):
    title_zh: str
    reused_by: list[str] = []


@cache
def licence_types() -> dict[str, dict[str, LicenceType]]:
    raw = yaml.safe_load(LICENCES_FILE.read_text(encoding="utf-8"))
    return {
        thing: {step: LicenceType.model_validate(spec) for step, spec in steps.items()} for thing, steps in raw.items()
    }


def licence_type(thing: str, step: str) -> LicenceType | None:
    return licence_types().get(thing, {}).get(step)


def reused_licences(thing: str, step: str) -> list[tuple[str, LicenceType]]:
    """The licences (by issuing step) that ``step`` takes from the licence store."""
    return [(issuing, kind) for issuing, kind in licence_types().get(thing, {}).items() if step in kind.reused_by]


def licence_number(case_id: str, step: str, issued_year: int) -> str:
    """Deterministic, so an issuance written twice is one licence: ``DZZZ-2026-3F9A0C21D7E4``."""
    digest = hashlib.sha256(f"{case_id}:{step}".encode()).hexdigest()[:12].upper()
    return f"DZZZ-{issued_year}-{digest}"


def canonical(content: dict[str, Any]) -> bytes:
    """The signed bytes: sorted keys, no spaces, UTF-8."""
    return json.dumps(content, ensure_ascii=False, sort_keys=True, separators=(",", ":"), default=str).encode()


def signature_holds(content: dict[str, Any], signature_b64: str, key: Ed25519PublicKey) -> bool:
    try:
        key.verify(base64.b64decode(signature_b64), canonical(content))
    except (InvalidSignature, ValueError):
        return False
    return True

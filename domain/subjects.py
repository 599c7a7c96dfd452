"""One case per subject (一案一主体): which form fields name a case's subject, and the key
that identifies it.

The key is a hash: it is stored beside the case in the read model and compared there, and
it is never put in workflow ids or search attributes (it derives from ID numbers).
"""

from __future__ import annotations

import hashlib
import json
import unicodedata
from collections.abc import Mapping
from datetime import UTC, datetime
from functools import cache
from pathlib import Path
from typing import Any

import yaml

from domain.forms import FORMS, form_has_field
from models.catalogue import read_path

SUBJECTS_FILE = Path(__file__).parent / "data" / "case_subjects.yaml"


@cache
def subject_fields() -> dict[str, tuple[str, ...]]:
    """Each sub-item's subject fields, by sub-item code."""
    raw = yaml.safe_load(SUBJECTS_FILE.read_text(encoding="utf-8")) or {}
    return {str(thing): tuple(str(path) for path in paths) for thing, paths in raw.items()}


def check_subject_fields(form_of_thing: Mapping[str, str]) -> list[str]:
    """Problems with the subject file: unknown sub-items, paths not in the form; [] when fine."""
    problems: list[str] = []
    for thing, paths in subject_fields().items():
        form = form_of_thing.get(thing)
        if form is None:
            problems.append(f"{SUBJECTS_FILE.name}: {thing}: no such sub-item")
            continue
        if not paths:
            problems.append(f"{SUBJECTS_FILE.name}: {thing}: name at least one field")
        for path in paths:
            if not form_has_field(FORMS[form], path):
                problems.append(f"{SUBJECTS_FILE.name}: {thing}: {path!r} is not a field of form {form!r}")
    return problems


def _canonical(value: Any) -> str:
    text = unicodedata.normalize("NFC", str(value)).strip()
    try:
        moment = datetime.fromisoformat(text)
    except ValueError:
        return text.upper()  # ID numbers end in X or x alike; names have no case in Chinese
    if moment.tzinfo is None:
        return text
    # The same instant however the offset was written.
    return moment.astimezone(UTC).isoformat()


def subject_key(thing: str, form: Mapping[str, Any], division: str) -> str | None:
    """The key of the case's subject, or None for a sub-item that names none (or a form
    missing one of its fields)."""
    paths = subject_fields().get(thing)
    if not paths:
        return None
    values = [read_path(form, path) for path in paths]
    if any(value is None or str(value).strip() == "" for value in values):
        return None
    canonical = json.dumps([thing, division, [_canonical(value) for value in values]], ensure_ascii=False)
    return hashlib.sha256(canonical.encode()).hexdigest()

"""Personal data out of sight: masking ID numbers and phone numbers in text, in API
payloads and in every log record, and the rule of who reads them in full.

Masking is by shape, wherever the value sits (a form field, a step result, a reason
typed by an officer, a log message): an 18-character identity number keeps its
division code and last 4 characters (``330102********1234``), a mobile number its
first 3 and last 4 digits (``138****0000``), a landline its area code and last 4.
Digits are read the way a person types them: full-width digits count (``３３０１…``), and an
ID number may be split by a space or hyphen after its division code and its birth date
(``330102 19900307 0027``). A phone counts only when no ASCII letter or digit touches it; an
ID number may follow letters (``id330102…``), since no ordinary word ends in 18 digits. Our
own machine identifiers, case ids (``ot-`` + hex) and file hashes, are left alone whole.

Names: a person's name (the ``name`` beside an ``id_number``, a newborn's, an account
``holder``) is masked to its first character for the same readers (``李*``), in payloads;
free text cannot tell a name from any other word.

Who reads personal data in full: the parties who need it to do the case — the
applicant who owns it, the clerk (and unit) that accepted it at the window, and the
officers and clerks of a department whose step on it has opened. Supervisors,
admins and anyone else who may see the case read it masked.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Callable
from typing import Any, TypeVar

from pydantic import BaseModel

from domain.identity import mask_id_number
from models.case import Actor, CaseSnapshot
from models.complaint import ComplaintSnapshot

__all__ = [
    "OVERSIGHT_ROLES",
    "PersonalDataFilter",
    "install_log_redaction",
    "mask_name",
    "mask_personal_data",
    "mask_text",
    "masked",
    "sees_case_personal_data",
    "sees_complaint_personal_data",
]

# Roles that oversee every case and need none of its personal data in full.
OVERSIGHT_ROLES = frozenset({"supervisor", "admin"})

# Full-width digits and letters (U+FF10…) as typed by Chinese input methods read as ASCII.
_FULL_WIDTH = str.maketrans({chr(0xFF10 + n): str(n) for n in range(10)} | {"Ｘ": "X", "ｘ": "x", "－": "-"})
_APART = r"(?<![0-9A-Za-z])"  # nothing alphanumeric right before …
_END = r"(?![0-9A-Za-z])"  # … or right after the shape
_SPLIT = r"[ \-]?"  # a space or hyphen after the division code and after the birth date
_ID_NUMBER = re.compile(r"(?<![0-9])[0-9]{6}" + _SPLIT + r"[0-9]{8}" + _SPLIT + r"[0-9]{3}[0-9Xx]" + _END)
_MOBILE = re.compile(_APART + r"(?P<prefix>\+?86[- ]?)?(?P<head>1[0-9]{2})[- ]?[0-9]{4}[- ]?(?P<tail>[0-9]{4})" + _END)
_LANDLINE = re.compile(_APART + r"(?P<area>0[0-9]{2,3})(?P<dash>-?)[0-9]{3,4}(?P<tail>[0-9]{4})" + _END)
# Our own identifiers, never personal data, kept whole: a case id, a file's SHA-256.
_OWN_IDENTIFIER = re.compile(r"ot-[0-9a-f]{20}(?![0-9a-f])|(?<![0-9a-f])[0-9a-f]{64}(?![0-9a-f])")
_PERSON_NAME_KEYS = frozenset({"holder"})  # beside "name" in any mapping that has an "id_number"
_PEOPLE_WITHOUT_NUMBERS = frozenset({"newborn"})  # a person before 户口登记 gives them a number


def mask_text(text: str) -> str:
    """``text`` with every ID-number- and phone-shaped part masked; idempotent."""
    if not any(character.isdigit() for character in text):
        return text
    text = text.translate(_FULL_WIDTH)
    kept = _OWN_IDENTIFIER.split(text)
    if len(kept) == 1:
        return _mask_shapes(text)
    identifiers = _OWN_IDENTIFIER.findall(text)
    return "".join(_mask_shapes(part) + (identifiers[n] if n < len(identifiers) else "") for n, part in enumerate(kept))


def _mask_shapes(text: str) -> str:
    text = _ID_NUMBER.sub(lambda match: mask_id_number(re.sub(r"[ \-]", "", match.group(0))), text)
    text = _MOBILE.sub(lambda m: f"{m['prefix'] or ''}{m['head']}****{m['tail']}", text)
    return _LANDLINE.sub(lambda m: f"{m['area']}{m['dash']}****{m['tail']}", text)


def mask_name(name: str) -> str:
    """A person's name to its first character: 李芳 → 李*, 欧阳小明 → 欧***."""
    return name[:1] + "*" * (len(name) - 1) if len(name) > 1 else name


def mask_personal_data(value: Any) -> Any:
    """A copy of a JSON-like value (dicts, lists, strings, …) with every string masked; keys are kept."""
    if isinstance(value, str):
        return mask_text(value)
    if isinstance(value, dict):
        return {key: _masked_item(key, item, value) for key, item in value.items()}
    if isinstance(value, list | tuple):
        return type(value)(mask_personal_data(item) for item in value)
    return value


def _masked_item(key: str, item: Any, mapping: dict[str, Any]) -> Any:
    if isinstance(item, str) and (key in _PERSON_NAME_KEYS or (key == "name" and "id_number" in mapping)):
        return mask_name(item)
    if key in _PEOPLE_WITHOUT_NUMBERS and isinstance(item, dict) and isinstance(item.get("name"), str):
        return {**mask_personal_data(item), "name": mask_name(item["name"])}
    return mask_personal_data(item)


Model = TypeVar("Model", bound=BaseModel)


def masked(model: Model) -> Model:
    """The same response model with its personal data masked."""
    return type(model).model_validate(mask_personal_data(model.model_dump()))


# --- who reads personal data in full --------------------------------------------------------


def sees_case_personal_data(actor: Actor, case: CaseSnapshot) -> bool:
    """The owning applicant, the accepting clerk or unit, and the departments whose step has opened."""
    # Opened, not merely "not pending": a refusal cancels steps that never opened.
    opened = {step.department for step in case.steps if step.opened_at is not None}
    return sees_personal_data_of(actor, case.owner, case.submitted_by, case.accepting_unit, opened)


def sees_personal_data_of(
    actor: Actor, owner: str | None, submitted_by: str, accepting_unit: str | None, opened_departments: set[str]
) -> bool:
    """``sees_case_personal_data`` from a case's parts (the case workflow answers Updates with it)."""
    if actor.role == "applicant":
        return owner is not None and owner == actor.username
    if actor.role not in {"clerk", "officer"}:
        return False
    if actor.username == submitted_by:
        return True
    if actor.unit is None:
        return False
    return actor.unit in opened_departments or (actor.role == "clerk" and actor.unit == accepting_unit)


def sees_complaint_personal_data(actor: Actor, complaint: ComplaintSnapshot) -> bool:
    """The complainant, the clerk who filed it and the officers of the department answering it."""
    if actor.role == "applicant":
        return complaint.complainant is not None and complaint.complainant == actor.username
    if actor.role == "clerk":
        return complaint.filed_by == actor.username
    if actor.role == "officer":
        return actor.unit is not None and actor.unit == complaint.assigned_department
    return False


# --- logs ---------------------------------------------------------------------------------------


class PersonalDataFilter(logging.Filter):
    """Masks ID numbers and phones in a log record's message, arguments, exception and stack text.

    The record is rewritten in place (message formatted, arguments dropped) only when
    something had to be masked; it is never dropped.
    """

    def filter(self, record: logging.LogRecord) -> bool:
        try:
            message = record.getMessage()
        except Exception:  # a broken format string: let the handler report it as usual
            return True
        safe = mask_text(message)
        if safe != message:
            record.msg, record.args = safe, None
        if record.exc_info and not record.exc_text:
            record.exc_text = logging.Formatter().formatException(record.exc_info)
        if record.exc_text:
            record.exc_text = mask_text(record.exc_text)
        if record.stack_info:
            record.stack_info = mask_text(record.stack_info)
        return True


_FILTER = PersonalDataFilter()


def install_log_redaction() -> None:
    """Mask personal data in every log record of this process; call it where logging is configured.

    The filter goes on every handler present (the root's and, e.g., uvicorn's own)
    and into the record factory, so that handlers added later mask as well. Calling
    it again changes nothing.
    """
    loggers = [logging.getLogger(), *(item for item in logging.root.manager.loggerDict.values())]
    for logger in loggers:
        if isinstance(logger, logging.Logger):
            for handler in logger.handlers:
                if not any(isinstance(existing, PersonalDataFilter) for existing in handler.filters):
                    handler.addFilter(_FILTER)
    factory = logging.getLogRecordFactory()
    if not getattr(factory, "masks_personal_data", False):
        logging.setLogRecordFactory(_masking_factory(factory))


def _masking_factory(factory: Callable[..., logging.LogRecord]) -> Callable[..., logging.LogRecord]:
    def make_record(*args: Any, **kwargs: Any) -> logging.LogRecord:
        record = factory(*args, **kwargs)
        _FILTER.filter(record)
        return record

    make_record.masks_personal_data = True  # type: ignore[attr-defined]
    return make_record

"""Citizen identity numbers (公民身份号码, GB 11643-1999).

An identity number has 18 characters: a 6-digit administrative division code
(GB/T 2260), the birth date as YYYYMMDD, a 3-digit sequence number (odd for men,
even for women) and a check character computed from the first 17 digits
(ISO 7064 MOD 11-2; ``X`` stands for 10).

Pure functions: validation, the birth date, masking for display and logs, and
building valid numbers for fixtures and demo data.
"""

from __future__ import annotations

import hashlib
import hmac
import re
from datetime import date
from typing import Literal

__all__ = [
    "InvalidIdNumber",
    "id_number_birth_date",
    "id_number_sex",
    "make_id_number",
    "mask_id_number",
    "normalize_id_number",
    "person_key",
    "validate_id_number",
]

ID_NUMBER_LENGTH = 18
# A mainland mobile number (手机号): where the platform texts a person.
MOBILE_PHONE = re.compile(r"1[3-9][0-9]{9}")  # ASCII digits: \d would take full-width ones, which no gateway sends to
_WEIGHTS = (7, 9, 10, 5, 8, 4, 2, 1, 6, 3, 7, 9, 10, 5, 8, 4, 2)
_CHECK_CHARACTERS = "10X98765432"  # indexed by the weighted sum mod 11
# The standard's own example 440524188001010014 is born in 1880, so the cut-off
# cannot be 1900; anything earlier than 1800 is a typo.
_EARLIEST_BIRTH = date(1800, 1, 1)
# ASCII only: str.isdigit() would also accept full-width and other Unicode digits.
_BODY = re.compile(r"[0-9]{17}")
_CHECK = re.compile(r"[0-9X]")
_DIVISION_CODE = re.compile(r"[0-9]{6}")


class InvalidIdNumber(ValueError):
    """Not a valid identity number; the message says why (Chinese and English)."""


def normalize_id_number(value: str) -> str:
    """Strip surrounding whitespace and upper-case a trailing ``x``."""
    number = value.strip()
    # Only the check character may be a letter; upper-casing the whole string could
    # change its length (e.g. "ß" -> "SS") and hide a wrong character.
    if number.endswith("x"):
        number = number[:-1] + "X"
    return number


def check_character(first_17_digits: str) -> str:
    """The check character for the first 17 digits of an identity number."""
    if not _BODY.fullmatch(first_17_digits):
        raise InvalidIdNumber("前17位须为数字 / non-digits: the first 17 characters must be digits")
    total = sum(int(digit) * weight for digit, weight in zip(first_17_digits, _WEIGHTS, strict=True))
    return _CHECK_CHARACTERS[total % 11]


def validate_id_number(value: str, *, today: date | None = None) -> str:
    """Return the normalised number, or raise InvalidIdNumber saying what is wrong.

    Birth dates before 1800-01-01 are rejected. A birth date in the future is
    rejected only when ``today`` is given (the module does not read the clock).
    """
    number = normalize_id_number(value)
    if len(number) != ID_NUMBER_LENGTH:
        # The value stays out of messages: it may be a real number mistyped.
        raise InvalidIdNumber(f"长度应为18位 / wrong length: expected 18 characters, got {len(number)}")
    body, check = number[:17], number[17]
    if not _BODY.fullmatch(body):
        raise InvalidIdNumber("前17位须为数字 / non-digits: the first 17 characters must be digits")
    if not _CHECK.fullmatch(check):
        raise InvalidIdNumber("校验码须为数字或X / the last character must be a digit or X")
    birth = _birth_date(body[6:14])
    if today is not None and birth > today:
        raise InvalidIdNumber(f"出生日期在未来 / birth date {birth} is in the future")
    if check_character(body) != check:
        raise InvalidIdNumber("校验码错误 / checksum mismatch")
    return number


def id_number_birth_date(value: str) -> date:
    """The birth date encoded in a valid identity number."""
    number = validate_id_number(value)
    return _birth_date(number[6:14])


def id_number_sex(value: str) -> Literal["male", "female"]:
    """The sex the seventeenth digit gives (GB 11643: odd for men, even for women)."""
    number = validate_id_number(value)
    return "male" if int(number[16]) % 2 else "female"


SEX_ZH = {"male": "男", "female": "女"}


def mask_id_number(value: str) -> str:
    """Keep the division code and the last 4 characters: ``330102********1234``.

    Only the length is checked (not the checksum), so stored records that fail
    validation can still be shown without exposing them.
    """
    number = normalize_id_number(value)
    if len(number) != ID_NUMBER_LENGTH:
        raise InvalidIdNumber(f"长度应为18位 / wrong length: expected 18 characters, got {len(number)}")
    return number[:6] + "*" * 8 + number[-4:]


def person_key(id_number: str, secret: str) -> str:
    """A keyed hash (HMAC-SHA256) of an ID number: finds one person's cases and account
    without keeping or indexing the number itself; without the secret it cannot be reversed
    by trying the numbers of a division and a birth year."""
    digest = hmac.new(secret.encode(), normalize_id_number(id_number).encode(), hashlib.sha256)
    return digest.hexdigest()


def make_id_number(division_code: str, birth: date, sequence: int) -> str:
    """Build a valid identity number (for test fixtures and demo data).

    ``sequence`` is 0-999; its parity gives the sex (odd: male, even: female).
    """
    if not _DIVISION_CODE.fullmatch(division_code):
        raise ValueError(f"division code must be 6 digits, got {division_code!r}")
    if birth < _EARLIEST_BIRTH:
        raise ValueError(f"birth date must be on or after {_EARLIEST_BIRTH}, got {birth}")
    if not 0 <= sequence <= 999:
        raise ValueError(f"sequence must be 0-999, got {sequence}")
    body = f"{division_code}{birth:%Y%m%d}{sequence:03d}"
    return body + check_character(body)


def _birth_date(yyyymmdd: str) -> date:
    try:
        birth = date(int(yyyymmdd[:4]), int(yyyymmdd[4:6]), int(yyyymmdd[6:8]))
    except ValueError as exc:
        raise InvalidIdNumber(f"出生日期无效 / impossible birth date {yyyymmdd}: {exc}") from exc
    if birth < _EARLIEST_BIRTH:
        raise InvalidIdNumber(f"出生日期早于1800年 / birth date {birth} is before {_EARLIEST_BIRTH}")
    return birth

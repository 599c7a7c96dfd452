"""Citizen identity numbers (GB 11643-1999)."""

from __future__ import annotations

from datetime import date

import pytest

from domain.identity import (
    InvalidIdNumber,
    id_number_birth_date,
    make_id_number,
    mask_id_number,
    normalize_id_number,
    validate_id_number,
)

# Examples from the standard.
STANDARD_EXAMPLES = ["11010519491231002X", "440524188001010014"]


@pytest.mark.parametrize("number", STANDARD_EXAMPLES)
def test_standard_examples_are_valid(number: str) -> None:
    assert validate_id_number(number) == number


def test_birth_date_is_read_from_the_number() -> None:
    assert id_number_birth_date("11010519491231002X") == date(1949, 12, 31)
    assert id_number_birth_date("440524188001010014") == date(1880, 1, 1)


def test_lowercase_x_and_surrounding_space_are_normalised() -> None:
    assert normalize_id_number(" 11010519491231002x\n") == "11010519491231002X"
    assert validate_id_number("11010519491231002x") == "11010519491231002X"


def test_wrong_checksum_is_rejected() -> None:
    with pytest.raises(InvalidIdNumber, match="checksum mismatch"):
        validate_id_number("110105194912310021")
    with pytest.raises(InvalidIdNumber, match="checksum mismatch"):
        validate_id_number("440524188001010015")


@pytest.mark.parametrize(
    "number",
    [
        "",
        "11010519491231002",  # 17
        "11010519491231002XX",  # 19
        "110105491231002",  # the old 15-digit form
    ],
)
def test_wrong_length_is_rejected(number: str) -> None:
    with pytest.raises(InvalidIdNumber, match="wrong length"):
        validate_id_number(number)


@pytest.mark.parametrize(
    "number",
    [
        "1101051949123100AX",
        "X1010519491231002X",
        "11010519491231002Y",
        "\uff11\uff11\uff10\uff11\uff10\uff1519491231002X",  # full-width digits
    ],
)
def test_non_digits_are_rejected(number: str) -> None:
    with pytest.raises(InvalidIdNumber):
        validate_id_number(number)


def test_impossible_birth_date_is_rejected() -> None:
    # Feb 30 with a correct check character, so only the date is wrong.
    body = "33010220260230123"
    number = body + _check_character(body)
    with pytest.raises(InvalidIdNumber, match="impossible birth date"):
        validate_id_number(number)


def test_birth_date_before_1800_is_rejected() -> None:
    # Not 1900: the standard's own example 440524188001010014 is born in 1880.
    body = "33010217991231123"
    with pytest.raises(InvalidIdNumber, match="before 1800"):
        validate_id_number(body + _check_character(body))


def test_future_birth_date_is_rejected_only_when_today_is_given() -> None:
    number = make_id_number("330102", date(2030, 1, 1), 123)
    assert validate_id_number(number) == number
    with pytest.raises(InvalidIdNumber, match="future"):
        validate_id_number(number, today=date(2026, 11, 1))


def test_mask_keeps_the_division_code_and_the_last_four() -> None:
    assert mask_id_number("11010519491231002x") == "110105********002X"
    number = make_id_number("330102", date(1990, 5, 17), 123)
    masked = mask_id_number(number)
    assert masked == "330102********" + number[-4:]
    assert len(masked) == 18
    assert "19900517" not in masked


def test_mask_refuses_a_value_that_is_not_18_characters() -> None:
    with pytest.raises(InvalidIdNumber, match="wrong length"):
        mask_id_number("12345")


@pytest.mark.parametrize(
    ("division_code", "birth", "sequence"),
    [
        ("330102", date(1990, 5, 17), 123),
        ("330102", date(1990, 5, 17), 124),
        ("110105", date(1949, 12, 31), 2),
        ("440524", date(1900, 1, 1), 1),
        ("320101", date(2024, 2, 29), 999),
        ("320101", date(2024, 2, 29), 0),
    ],
)
def test_make_id_number_round_trips(division_code: str, birth: date, sequence: int) -> None:
    number = make_id_number(division_code, birth, sequence)
    assert validate_id_number(number) == number
    assert number.startswith(division_code)
    assert id_number_birth_date(number) == birth
    assert int(number[14:17]) == sequence
    assert int(number[16]) % 2 == sequence % 2  # odd: male, even: female


def test_make_id_number_reproduces_the_standard_examples() -> None:
    assert make_id_number("110105", date(1949, 12, 31), 2) == "11010519491231002X"
    assert make_id_number("440524", date(1880, 1, 1), 1) == "440524188001010014"


@pytest.mark.parametrize(
    ("division_code", "birth", "sequence"),
    [
        ("33010", date(1990, 1, 1), 1),
        ("33010a", date(1990, 1, 1), 1),
        ("330102", date(1799, 12, 31), 1),
        ("330102", date(1990, 1, 1), 1000),
        ("330102", date(1990, 1, 1), -1),
    ],
)
def test_make_id_number_rejects_bad_parts(division_code: str, birth: date, sequence: int) -> None:
    with pytest.raises(ValueError, match="must be"):
        make_id_number(division_code, birth, sequence)


def _check_character(body: str) -> str:
    weights = (7, 9, 10, 5, 8, 4, 2, 1, 6, 3, 7, 9, 10, 5, 8, 4, 2)
    total = sum(int(d) * w for d, w in zip(body, weights, strict=True))
    return "10X98765432"[total % 11]

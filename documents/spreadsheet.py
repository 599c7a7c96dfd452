"""Cells of the CSV files people open in a spreadsheet program (exports, the data-sharing list).

A text cell a spreadsheet would read as a formula (starting with = + - @, a tab or a carriage
return: a notice reply typed as ``=HYPERLINK(...)``) is prefixed with an apostrophe, so it
opens as the text it is (OWASP's advice on CSV injection).
"""

from __future__ import annotations

FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r")


def neutralise_formula(text: str) -> str:
    """Text a spreadsheet would run as a formula, made plain text by a leading apostrophe."""
    return "'" + text if text.startswith(FORMULA_STARTS) else text

"""Lists as CSV for the monthly report: ``Accept: text/csv`` on any supervision list.

Chinese column headers, UTF-8 with a byte-order mark so spreadsheet programs
open it correctly, RFC 4180 quoting; text that a spreadsheet would run as a formula is
neutralised (documents/spreadsheet.py).
"""

from __future__ import annotations

import csv
import io
from collections.abc import Iterable, Mapping, Sequence
from datetime import datetime
from decimal import Decimal
from typing import Any

from fastapi import Request, Response

from documents.spreadsheet import neutralise_formula
from domain.workcalendar import SHANGHAI


def wants_csv(request: Request) -> bool:
    return "text/csv" in request.headers.get("accept", "")


def csv_response(rows: Iterable[Mapping[str, Any]], columns: Sequence[tuple[str, str]], filename: str) -> Response:
    """``columns`` pairs each row key with its Chinese header."""
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\r\n")
    writer.writerow([header for _, header in columns])
    for row in rows:
        writer.writerow([_cell(row.get(key)) for key, _ in columns])
    return Response(
        "\ufeff" + buffer.getvalue(),
        media_type="text/csv; charset=utf-8",
        headers={"Content-Disposition": f'attachment; filename="{filename}.csv"'},
    )


def _cell(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, bool):
        return "是" if value else "否"
    if isinstance(value, datetime):
        # Readers of the monthly report work in Beijing time.
        return value.astimezone(SHANGHAI).strftime("%Y-%m-%d %H:%M")
    if isinstance(value, int | float | Decimal):
        return str(value)  # a number, even a negative one, is data, never a formula
    return neutralise_formula(str(value))

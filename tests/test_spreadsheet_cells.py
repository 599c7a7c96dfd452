"""CSV exports open in a spreadsheet program: text that would run as a formula opens as text."""

from __future__ import annotations

import csv
import io
from decimal import Decimal

import pytest

from api.exports import csv_response
from documents.guide import DataSharingNeed, data_sharing_csv
from documents.spreadsheet import neutralise_formula


@pytest.mark.parametrize(
    "typed",
    ['=HYPERLINK("http://evil.example","点击查看")', "+1+1", "-2+3", "@SUM(A1:A9)", "\t=1", "\r=1"],
)
def test_a_cell_a_spreadsheet_would_run_opens_as_text(typed):
    assert neutralise_formula(typed) == "'" + typed


@pytest.mark.parametrize("plain", ["已签收，马上办理", "", "1+1=2", "ot-0123456789abcdef0123", "'=already"])
def test_ordinary_text_is_left_alone(plain):
    assert neutralise_formula(plain) == plain


def _rows_of(body: bytes) -> list[list[str]]:
    return list(csv.reader(io.StringIO(body.decode("utf-8-sig"))))


def test_an_export_neutralises_a_typed_formula_and_keeps_negative_numbers():
    response = csv_response(
        [{"reply": '=HYPERLINK("http://evil.example","点击")', "days": -2, "amount": Decimal("-15.50"), "note": "好"}],
        [("reply", "回复"), ("days", "剩余工作日"), ("amount", "金额"), ("note", "备注")],
        "notices",
    )

    header, row = _rows_of(bytes(response.body))

    assert header == ["回复", "剩余工作日", "金额", "备注"]
    assert row == ['\'=HYPERLINK("http://evil.example","点击")', "-2", "-15.50", "好"]


def test_the_data_sharing_list_neutralises_its_cells_too():
    need = DataSharingNeed(
        material="birth_record",
        material_zh="=cmd|' /C calc'!A0",
        provider="hospital",
        provider_zh="医院",
        fields_zh=["出生日期"],
        data_type_zh="结构化数据",
        method_zh="接口",
        update_period_zh="实时",
        all_situations=True,
        situations=[],
        situations_zh=[],
    )

    rows = _rows_of(data_sharing_csv([need]).encode())

    assert rows[1][0] == "'=cmd|' /C calc'!A0"

"""The electronic licence as a PDF (电子证照版式文件): the document's Chinese layout, its number,
the fields it certifies, the issuing unit and date, a QR code of its public verification
address and the platform's signature, in a CJK font from the system (Debian's
fonts-wqy-microhei, which `make` installs)."""

from __future__ import annotations

import io
import tempfile
from datetime import datetime
from functools import cache
from pathlib import Path
from typing import Any

import segno
from fontTools.ttLib import TTCollection
from fpdf import FPDF

from domain.display import datetime_zh

CJK_FONT = Path("/usr/share/fonts/truetype/wqy/wqy-microhei.ttc")
BOOLEAN_ZH = {True: "是", False: "否"}


@cache
def _font_file(collection: Path) -> str:
    """fpdf2 embeds TrueType fonts, not collections: the collection's first face, extracted once."""
    if collection.suffix.lower() != ".ttc":
        return str(collection)
    extracted = Path(tempfile.mkdtemp(prefix="onething-font-")) / f"{collection.stem}.ttf"
    TTCollection(str(collection)).fonts[0].save(str(extracted))
    return str(extracted)


def _value_zh(value: Any) -> str:
    if isinstance(value, bool):
        return BOOLEAN_ZH[value]
    return "" if value is None else str(value)


def render_licence_pdf(
    content: dict[str, Any],
    signature_b64: str,
    verify_url: str,
    labels: dict[str, str],
    font: Path = CJK_FONT,
) -> bytes:
    """The licence's PDF from its signed ``content``; ``labels`` names its result fields in Chinese."""
    pdf = FPDF(format="A4")
    pdf.set_title(f"{content['title_zh']} {content['number']}")
    pdf.set_creator("一件事 电子证照")
    # Dated at issuance, not at rendering: the same licence renders to the same bytes.
    pdf.set_creation_date(datetime.fromisoformat(content["issued_at"]))
    pdf.add_page()
    pdf.add_font("cjk", fname=_font_file(font))
    pdf.set_font("cjk", size=22)
    pdf.cell(0, 16, content["title_zh"], align="C", new_x="LMARGIN", new_y="NEXT")
    pdf.set_font("cjk", size=10)
    pdf.cell(0, 7, f"电子证照编号：{content['number']}", align="C", new_x="LMARGIN", new_y="NEXT")
    pdf.ln(6)
    rows = [
        ("持证人", _value_zh(content.get("holder_name"))),
        ("事项", _value_zh(content.get("thing_zh"))),
        ("受理编号", _value_zh(content.get("case_no"))),
        *((labels.get(name, name), _value_zh(value)) for name, value in (content.get("result") or {}).items()),
        ("签发单位", _value_zh(content.get("issuer_zh"))),
        ("签发时间", datetime_zh(content["issued_at"]) if content.get("issued_at") else ""),
    ]
    pdf.set_font("cjk", size=12)
    for label, value in rows:
        pdf.cell(45, 10, label, border=1)
        pdf.multi_cell(0, 10, value, border=1, new_x="LMARGIN", new_y="NEXT")
    pdf.ln(8)
    qr = io.BytesIO()
    segno.make(verify_url, error="m").save(qr, kind="png", scale=4, border=2)
    qr.seek(0)
    top = pdf.get_y()
    pdf.image(qr, x=pdf.l_margin, y=top, w=40)
    pdf.set_xy(pdf.l_margin + 45, top)
    pdf.set_font("cjk", size=9)
    pdf.multi_cell(0, 6, f"扫码或访问以下地址核验真伪：\n{verify_url}", new_x="LMARGIN", new_y="NEXT")
    pdf.set_xy(pdf.l_margin + 45, top + 20)
    pdf.multi_cell(0, 5, f"平台签名（Ed25519）：\n{signature_b64}", new_x="LMARGIN", new_y="NEXT")
    return bytes(pdf.output())

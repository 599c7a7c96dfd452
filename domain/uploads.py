"""What an uploaded material may be: its type read from its bytes (never the name or the
header the client sent), and the checks a document or a photo must pass to be of use to an
officer. Pure: the API calls ``inspect_upload`` before anything is stored."""

from __future__ import annotations

import io
import re
from dataclasses import dataclass
from enum import StrEnum

from PIL import Image, UnidentifiedImageError

# How a material supplied as an uploaded file is referenced (in 补正 and the workflow's history).
FILE_REFERENCE = "sha256:"
PDF, JPEG, PNG = "application/pdf", "image/jpeg", "image/png"
ALLOWED_TYPES_ZH = "PDF、JPEG 或 PNG"
# A scan or photo smaller than this cannot be read; larger than this is not a photo of a paper.
MIN_IMAGE_SIDE = 200
MAX_IMAGE_SIDE = 12_000
MAX_PDF_PAGES = 100
_PAGE = re.compile(rb"/Type\s*/Page(?![a-zA-Z])")


class Refusal(StrEnum):
    EMPTY = "empty"
    TYPE = "type"  # not PDF, JPEG or PNG by its content: 415
    CORRUPT = "corrupt"


@dataclass(frozen=True)
class UploadRefused(Exception):
    refusal: Refusal
    reason: str


@dataclass(frozen=True)
class InspectedUpload:
    content_type: str
    pages: int  # a PDF's pages; 1 for an image


def sniff_type(data: bytes) -> str | None:
    """The type by the file's first bytes (its magic number), or None for anything else."""
    if data.startswith(b"%PDF-"):
        return PDF
    if data.startswith(b"\xff\xd8\xff"):
        return JPEG
    if data.startswith(b"\x89PNG\r\n\x1a\n"):
        return PNG
    return None


def inspect_upload(data: bytes) -> InspectedUpload:
    """The upload's type and page count; UploadRefused for an empty file, another type, or a
    file of the right type that is cut short or broken."""
    if not data:
        raise UploadRefused(Refusal.EMPTY, "文件为空 (the file is empty)")
    content_type = sniff_type(data)
    if content_type is None:
        raise UploadRefused(
            Refusal.TYPE, f"仅接受{ALLOWED_TYPES_ZH}文件，按文件内容判断 (by its content it is none of PDF, JPEG, PNG)"
        )
    if content_type == PDF:
        return InspectedUpload(PDF, _pdf_pages(data))
    _check_image(data)
    return InspectedUpload(content_type, 1)


def _pdf_pages(data: bytes) -> int:
    # A complete PDF ends with %%EOF (a few bytes of whitespace may follow); a cut one does not.
    if b"%%EOF" not in data[-1024:]:
        raise UploadRefused(Refusal.CORRUPT, "PDF 文件不完整，请重新上传 (the PDF is cut short)")
    pages = len(_PAGE.findall(data))
    if pages == 0:
        raise UploadRefused(Refusal.CORRUPT, "PDF 文件没有页面 (the PDF has no pages)")
    if pages > MAX_PDF_PAGES:
        raise UploadRefused(Refusal.CORRUPT, f"PDF 超过 {MAX_PDF_PAGES} 页 (too many pages)")
    return pages


def _check_image(data: bytes) -> None:
    try:
        with Image.open(io.BytesIO(data)) as image:
            width, height = image.size
            image.verify()  # decodes the structure: a truncated or altered file fails here
        with Image.open(io.BytesIO(data)) as image:
            image.load()  # and the pixels themselves
    except (UnidentifiedImageError, OSError, SyntaxError, ValueError) as error:
        raise UploadRefused(Refusal.CORRUPT, "图片已损坏，请重新拍摄或扫描 (the image is broken)") from error
    if min(width, height) < MIN_IMAGE_SIDE or max(width, height) > MAX_IMAGE_SIDE:
        raise UploadRefused(
            Refusal.CORRUPT,
            f"图片尺寸 {width}×{height} 无法辨认，短边须不小于 {MIN_IMAGE_SIDE} 像素 (the image is too small to read)",
        )

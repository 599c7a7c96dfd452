"""Messages for people: validation problems and refusals worded in plain Chinese.

The console shows every reason it did not accept an input through here, so that no regular
expression, type name, English sentence or code reaches the person at the page. Pydantic's
errors are worded from their ``type`` (never from their English ``msg``); the domain's
bilingual messages ("中文 (english)", "中文 / english") keep their Chinese; the catalogue's
step result fields are explained by their example value, never by their pattern.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

_CJK = re.compile(r"[\u3400-\u9fff\uf900-\ufaff]")
# An aside in brackets, e.g. "(no such case)" after the Chinese of a domain message.
_ASIDE = re.compile(r"\s*[(（]([^()（）]*)[)）]")
_ENGLISH_RUN = re.compile(r"[A-Za-z]+(?:[ ,;:'\"-]+[A-Za-z]+){2,}")
# The domain names a refused character by its code point ("第2个字符 U+0032"); people see the character.
_CODE_POINT = re.compile(r"\s*U\+([0-9A-F]{4,6})\s*")
_PYDANTIC_PREFIXES = ("Value error, ", "Assertion failed, ")

# How a field with a pattern is written, by the field's own name (domain/forms.py).
FORMAT_BY_NAME: dict[str, str] = {
    "birthplace_division_code": "6位数字的行政区划代码，如 330102",
    "division_code": "6位数字的区、县行政区划代码，如 330102",
    "phone": "11位手机号码或带区号的固定电话",
    "registered_capital": "以元为单位、保留两位小数的金额，如 1000000.00",
    "account_no": "12至30位数字",
}

# Names of the inputs of console pages that are not application form fields: query
# parameters and the officer's and supervisor's forms, for error pages and lists of problems.
INPUT_LABELS: dict[str, str] = {
    "from": "开始日期",
    "to": "结束日期",
    "page": "页码",
    "status": "状态",
    "thing": "事项",
    "group_by": "分组方式",
    "step": "环节",
    "kind": "方式",
    "message": "内容",
    "reason": "理由",
    "missing": "需补正的材料",
    "reply": "回复",
    "comment": "意见",
    "score": "评分",
    "result": "办理结果",
    "materials": "材料",
    "answers": "办理情形",
    "form": "申请表",
}
_REQUEST_PARTS = {"query", "path", "body", "form", "header", "cookie"}


def has_chinese(text: str) -> bool:
    return _CJK.search(text) is not None


def _is_english(text: str) -> bool:
    """Words in Latin letters and no Chinese: the English half of a bilingual message."""
    return not has_chinese(text) and re.search(r"[A-Za-z]{2,}", text) is not None


def _shown_character(match: re.Match[str]) -> str:
    character = chr(int(match.group(1), 16))
    return f"「{character}」" if character.isprintable() and not character.isspace() else "（不可见字符）"


def zh_text(message: str, fallback: str = "填写有误") -> str:
    """The Chinese of a message written "中文 (english)" or "中文 / english"; ``fallback`` when it has none."""
    text = message
    for prefix in _PYDANTIC_PREFIXES:
        text = text.removeprefix(prefix)
    text = _ASIDE.sub(lambda aside: "" if _is_english(aside.group(1)) else aside.group(0), text)
    parts = text.split(" / ")
    if len(parts) > 1:
        text = " / ".join(part for part in parts if has_chinese(part))
    text = _CODE_POINT.sub(_shown_character, text)
    text = re.sub(r"\s*:\s+", "：", text).strip(" :：,，")
    if not has_chinese(text) or _ENGLISH_RUN.search(text):
        return fallback
    return text


def pydantic_reason(error: Mapping[str, Any], path: str | None = None) -> str:
    """One pydantic validation error in Chinese, worded from its type (and the field, for formats)."""
    kind = str(error.get("type", ""))
    context = error.get("ctx") or {}
    if kind == "missing":
        return "必填"
    if kind == "string_too_short":
        return f"至少{context.get('min_length')}个字符"
    if kind == "string_too_long":
        return f"最多{context.get('max_length')}个字符"
    if kind == "string_pattern_mismatch":
        name = (path or ".".join(str(part) for part in error.get("loc", ()))).rsplit(".", 1)[-1]
        written = FORMAT_BY_NAME.get(name)
        return f"格式不正确，应为{written}" if written else "格式不正确"
    if kind in {"string_type", "string_unicode"}:
        return "请填写文字"
    if kind in {"literal_error", "enum"}:
        return "请选择有效的选项"
    if kind.startswith("datetime") or kind in {"timezone_aware", "timezone_naive"}:
        return "请填写有效的日期和时间"
    if kind.startswith("date"):
        return "请填写有效的日期，如 2026-11-01"
    if kind in {"int_parsing", "int_type", "int_from_float", "int_parsing_size"}:
        return "请填写整数"
    if kind.startswith("float") or kind.startswith("decimal"):
        return "请填写数字"
    if kind.startswith("bool"):
        return "请选择是或否"
    for bound, wording in (
        ("greater_than_equal", "不能小于{ge}"),
        ("greater_than", "须大于{gt}"),
        ("less_than_equal", "不能大于{le}"),
        ("less_than", "须小于{lt}"),
    ):
        if kind == bound:
            return wording.format(**{key: context.get(key) for key in ("ge", "gt", "le", "lt")})
    if kind == "too_long":
        return f"最多{context.get('max_length')}项"
    if kind == "too_short":
        return f"至少{context.get('min_length')}项"
    if kind == "extra_forbidden":
        return "不应填写此项"
    if kind == "json_invalid":
        return "内容无法识别"
    if kind in {"value_error", "assertion_error"}:
        return zh_text(str(error.get("msg", "")))
    return "填写有误"


# The domain's English reasons (domain/results.py, the task inputs' checks), said in Chinese.
_KNOWN_REASONS: list[tuple[str, str]] = [
    ("unknown field", "本环节没有此项"),
    ("must be true or false", "请选择是或否"),
    ("must be a string", "请填写文字"),
    ("longer than", "内容过长"),
    ("birth date in the number", "号码中的出生日期与出生时间不符"),
    ("decimal yuan", "金额应保留两位小数，如 1234.50"),
    ("does not match", "格式不正确"),
    ("list 1 to 20", "请列出1至20项需补正的材料"),
    ("each item is 1 to 100", "每项材料名称为1至100字"),
    ("give a reason", "请填写理由（1至500字）"),
]


def field_reason(reason: str) -> str:
    """A field's reason from a refusal (a DomainError's ``fields``), in Chinese."""
    if has_chinese(reason):
        return zh_text(reason)
    return next((chinese for english, chinese in _KNOWN_REASONS if english in reason), "填写有误")


def input_label(path: str, labels: Mapping[str, str] | None = None) -> str:
    """The Chinese name of an input, from its path (``query.from``, ``form.newborn.name``)."""
    # "missing[0]" is the first item of the list input "missing".
    parts = [part for part in re.sub(r"\[\d+\]", "", path).split(".") if part]
    if len(parts) > 1 and parts[0] in _REQUEST_PARTS:
        parts = parts[1:]
    known = {**INPUT_LABELS, **(labels or {})}
    for size in range(len(parts), 0, -1):
        for candidate in (".".join(parts[:size]), parts[size - 1]):
            if candidate in known:
                return known[candidate]
    return "输入项"


def request_problems(errors: list[Any]) -> dict[str, str]:
    """A request's validation errors (FastAPI's RequestValidationError) as Chinese label → reason."""
    problems: dict[str, str] = {}
    for error in errors:
        path = ".".join(str(part) for part in error.get("loc", ()))
        problems.setdefault(input_label(path), pydantic_reason(error, path))
    return problems

"""SVG charts for the supervisor's dashboard, drawn on the server (no script, no CDN).

Two shapes: horizontal bars of a rate per label (on-time rate by department or by step)
and a line of a rate per day (the daily trend). Both take rates in 0..1, or None where
nothing was completed, and return markup safe to embed in a page: every label is
escaped, and each bar or point carries a ``<title>`` with its exact figures, which
browsers show on hover and screen readers read out.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from markupsafe import Markup, escape

# Thresholds of the colour a rate is drawn in; the same on every chart and in the legend.
GOOD_RATE = 0.95
FAIR_RATE = 0.8
COLOURS = {"good": "#2e7d32", "fair": "#e09100", "poor": "#c62828", "none": "#b0b7c0"}

BAR_ROW_HEIGHT = 30
BAR_LABEL_WIDTH = 200
BAR_AREA_WIDTH = 380
BAR_VALUE_WIDTH = 120
# Labels are cut to what fits beside the bars (CJK characters are about one em wide).
MAX_LABEL_CHARACTERS = 13


@dataclass(frozen=True)
class Bar:
    """One bar: its label, its rate (None when nothing was completed) and the figures behind it."""

    label: str
    rate: float | None
    detail: str = ""


@dataclass(frozen=True)
class Point:
    """One day of a trend: its label (``MM-DD``), its rate (None when nothing was completed), figures."""

    label: str
    rate: float | None
    detail: str = ""


def rate_tone(rate: float | None) -> str:
    """good, fair, poor or none: how a rate is coloured."""
    if rate is None:
        return "none"
    if rate >= GOOD_RATE:
        return "good"
    return "fair" if rate >= FAIR_RATE else "poor"


def percent(rate: float | None) -> str:
    """A rate as ``97.5%``; a dash when there is none."""
    return "—" if rate is None else f"{rate * 100:.1f}%"


def _short(label: str) -> str:
    return label if len(label) <= MAX_LABEL_CHARACTERS else label[: MAX_LABEL_CHARACTERS - 1] + "…"


def bar_chart(bars: Sequence[Bar], *, title: str, testid: str) -> Markup:
    """Horizontal bars of rates, one row per label, with a 0–100 % scale and the rate written beside each bar."""
    width = BAR_LABEL_WIDTH + BAR_AREA_WIDTH + BAR_VALUE_WIDTH
    top = 24
    height = top + max(len(bars), 1) * BAR_ROW_HEIGHT + 8
    parts = [
        f'<svg class="chart chart-bars" data-testid="{escape(testid)}" role="img" aria-label="{escape(title)}" '
        f'viewBox="0 0 {width} {height}" width="100%" style="max-width:{width}px" xmlns="http://www.w3.org/2000/svg">',
        f"<title>{escape(title)}</title>",
    ]
    for tick in (0, 25, 50, 75, 100):
        x = BAR_LABEL_WIDTH + BAR_AREA_WIDTH * tick / 100
        parts.append(
            f'<line x1="{x:.1f}" y1="{top - 4}" x2="{x:.1f}" y2="{height - 8}" stroke="#e3e7ec" stroke-width="1"/>'
            f'<text x="{x:.1f}" y="{top - 9}" font-size="11" fill="#6b7785" text-anchor="middle">{tick}%</text>'
        )
    if not bars:
        parts.append(
            f'<text x="{BAR_LABEL_WIDTH + BAR_AREA_WIDTH / 2:.1f}" y="{top + 19}" font-size="13" fill="#6b7785" '
            'text-anchor="middle">统计期内无办结环节</text>'
        )
    for index, bar in enumerate(bars):
        y = top + index * BAR_ROW_HEIGHT
        tone = rate_tone(bar.rate)
        length = BAR_AREA_WIDTH * (bar.rate or 0.0)
        figures = f"{bar.label}：按时办结率 {percent(bar.rate)}" + (f"（{bar.detail}）" if bar.detail else "")
        parts.append(
            f'<g class="bar bar-{tone}" data-testid="chart-bar" data-label="{escape(bar.label)}" '
            f'data-rate="{"" if bar.rate is None else f"{bar.rate:.4f}"}">'
            f"<title>{escape(figures)}</title>"
            f'<text x="{BAR_LABEL_WIDTH - 10}" y="{y + 19}" font-size="13" fill="#1f2d3d" '
            f'text-anchor="end">{escape(_short(bar.label))}</text>'
            f'<rect x="{BAR_LABEL_WIDTH}" y="{y + 6}" width="{BAR_AREA_WIDTH}" height="18" rx="3" fill="#f1f4f7"/>'
            f'<rect x="{BAR_LABEL_WIDTH}" y="{y + 6}" width="{length:.1f}" height="18" rx="3" fill="{COLOURS[tone]}"/>'
            f'<text x="{BAR_LABEL_WIDTH + BAR_AREA_WIDTH + 8}" y="{y + 19}" font-size="13" font-weight="600" '
            f'fill="{COLOURS[tone]}">'
            f"{escape(percent(bar.rate))}</text>"
            "</g>"
        )
    parts.append("</svg>")
    return Markup("".join(parts))


LINE_WIDTH = 700
LINE_HEIGHT = 240
LINE_LEFT = 48
LINE_RIGHT = 16
LINE_TOP = 16
LINE_BOTTOM = 40
MAX_X_LABELS = 10


def line_chart(points: Sequence[Point], *, title: str, testid: str) -> Markup:
    """A rate per day as a line on a 0–100 % scale; days without completions break the line."""
    plot_width = LINE_WIDTH - LINE_LEFT - LINE_RIGHT
    plot_height = LINE_HEIGHT - LINE_TOP - LINE_BOTTOM
    parts = [
        f'<svg class="chart chart-line" data-testid="{escape(testid)}" role="img" aria-label="{escape(title)}" '
        f'viewBox="0 0 {LINE_WIDTH} {LINE_HEIGHT}" width="100%" style="max-width:{LINE_WIDTH}px" '
        'xmlns="http://www.w3.org/2000/svg">',
        f"<title>{escape(title)}</title>",
    ]
    for tick in (0, 25, 50, 75, 100):
        y = LINE_TOP + plot_height * (1 - tick / 100)
        parts.append(
            f'<line x1="{LINE_LEFT}" y1="{y:.1f}" x2="{LINE_WIDTH - LINE_RIGHT}" y2="{y:.1f}" stroke="#e3e7ec"/>'
            f'<text x="{LINE_LEFT - 6}" y="{y + 4:.1f}" font-size="11" fill="#6b7785" text-anchor="end">{tick}%</text>'
        )
    if not points:
        parts.append(
            f'<text x="{LINE_LEFT + plot_width / 2:.1f}" y="{LINE_TOP + plot_height / 2:.1f}" font-size="13" '
            'fill="#6b7785" text-anchor="middle">统计期内无数据</text></svg>'
        )
        return Markup("".join(parts))
    step = plot_width / max(len(points) - 1, 1)

    def x_of(index: int) -> float:
        return LINE_LEFT + (index * step if len(points) > 1 else plot_width / 2)

    def y_of(rate: float) -> float:
        return LINE_TOP + plot_height * (1 - rate)

    # One polyline per run of days with a rate, so a day without completions shows as a gap, not as 0 %.
    runs: list[list[str]] = [[]]
    for index, point in enumerate(points):
        if point.rate is None:
            runs.append([])
        else:
            runs[-1].append(f"{x_of(index):.1f},{y_of(point.rate):.1f}")
    for run in runs:
        if len(run) > 1:
            parts.append(f'<polyline points="{" ".join(run)}" fill="none" stroke="#2b5d8a" stroke-width="2"/>')
    label_every = max(1, -(-len(points) // MAX_X_LABELS))
    for index, point in enumerate(points):
        x = x_of(index)
        if index % label_every == 0 or index == len(points) - 1:
            parts.append(
                f'<text x="{x:.1f}" y="{LINE_HEIGHT - LINE_BOTTOM + 18}" font-size="11" fill="#6b7785" '
                f'text-anchor="middle">{escape(point.label)}</text>'
            )
        if point.rate is None:
            continue
        figures = f"{point.label}：按时办结率 {percent(point.rate)}" + (f"（{point.detail}）" if point.detail else "")
        parts.append(
            f'<circle data-testid="chart-point" data-label="{escape(point.label)}" data-rate="{point.rate:.4f}" '
            f'cx="{x:.1f}" cy="{y_of(point.rate):.1f}" r="3.5" fill="{COLOURS[rate_tone(point.rate)]}">'
            f"<title>{escape(figures)}</title></circle>"
        )
    parts.append("</svg>")
    return Markup("".join(parts))

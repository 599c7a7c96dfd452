"""Flow charts of a "one thing" (§5.2.2 办理流程图), and the step graph they share with the guide.

Both charts are pure functions of a ThingDefinition: one lane per department,
one node per step, one arrow per dependency, from 受理 to 办结. The Mermaid text
is for documentation; the SVG is drawn here (no browser, no Graphviz) so a
printable chart can be produced anywhere.

A channel narrows the chart to the steps that exist on it, with that channel's
departments and time limits. A dependency on a step the channel does not have is
dropped, as the case workflow drops it. Pass ``definition.for_situation(code)``
to chart one situation (情形).
"""

from __future__ import annotations

import re
import xml.etree.ElementTree as ET
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from models.catalogue import StepDefinition, ThingDefinition
from models.errors import DomainError, ErrorCode

CJK_FONT_FAMILY = (
    "'PingFang SC', 'Hiragino Sans GB', 'Microsoft YaHei', 'Noto Sans CJK SC', 'Noto Sans SC', "
    "'Source Han Sans SC', 'WenQuanYi Micro Hei', 'SimHei', 'SimSun', sans-serif"
)

START_ZH = "受理"
END_ZH = "办结"


def time_limit_zh(days: int) -> str:
    """A time limit as a guide states it: 0 working days is 即办 (handled on the spot)."""
    return "即办" if days == 0 else f"{days}个工作日"


def check_channel(definition: ThingDefinition, channel: str | None) -> None:
    """Raise DomainError (INVALID, field ``channel``) when the thing has no such channel."""
    if channel is None:
        return
    codes = [item.code for item in definition.channels]
    if channel not in codes:
        raise DomainError(
            ErrorCode.INVALID,
            "没有该办理渠道 (no such channel)",
            {"channel": f"must be one of {', '.join(codes)}"},
        )


@dataclass(frozen=True)
class Lane:
    """A swim lane: one department, or (on a chart of every channel) the units a
    channel-dependent step may fall to."""

    key: str
    name_zh: str


@dataclass(frozen=True)
class StepGraph:
    """The steps of one channel (or of every channel), in dependency order.

    ``depends_on`` keeps only dependencies on steps in the graph, without repeats.
    """

    channel: str | None
    steps: tuple[StepDefinition, ...]
    depends_on: Mapping[str, tuple[str, ...]]

    @property
    def codes(self) -> list[str]:
        return [step.code for step in self.steps]

    def edges(self) -> list[tuple[str, str]]:
        """(dependency, step) pairs, one per dependency."""
        return [(dependency, step.code) for step in self.steps for dependency in self.depends_on[step.code]]

    def roots(self) -> list[str]:
        return [step.code for step in self.steps if not self.depends_on[step.code]]

    def sinks(self) -> list[str]:
        needed = {dependency for dependencies in self.depends_on.values() for dependency in dependencies}
        return [step.code for step in self.steps if step.code not in needed]

    def depths(self) -> dict[str, int]:
        """Column of each step: 0 without dependencies, else one more than its deepest dependency."""
        depth: dict[str, int] = {}
        for step in self.steps:
            depth[step.code] = 1 + max((depth[d] for d in self.depends_on[step.code]), default=-1)
        return depth


def step_graph(definition: ThingDefinition, channel: str | None = None) -> StepGraph:
    """The step graph of a channel (None: every step of every channel).

    Steps come in dependency order; among steps ready at the same time, the
    definition's order is kept.
    """
    check_channel(definition, channel)
    steps = list(definition.steps) if channel is None else definition.steps_for(channel)
    present = {step.code for step in steps}
    depends_on = {
        step.code: tuple(dict.fromkeys(d for d in step.depends_on if d in present and d != step.code)) for step in steps
    }
    ordered: list[StepDefinition] = []
    placed: set[str] = set()
    while len(ordered) < len(steps):
        ready = next(
            (s for s in steps if s.code not in placed and all(d in placed for d in depends_on[s.code])),
            None,
        )
        if ready is None:  # a cycle; parse_definition refuses these
            raise ValueError(f"{definition.code}: dependency cycle among steps")
        ordered.append(ready)
        placed.add(ready.code)
    return StepGraph(channel=channel, steps=tuple(ordered), depends_on=depends_on)


def longest_path(definition: ThingDefinition, channel: str) -> tuple[int, list[str]]:
    """The total time limit of a channel: working days along the longest dependency
    path (steps run in parallel once their dependencies are done), with that path.

    Not the sum of the steps' limits. A thing without steps on the channel takes 0 days.
    """
    graph = step_graph(definition, channel)
    finish: dict[str, int] = {}
    previous: dict[str, str | None] = {}
    for step in graph.steps:
        before = max(graph.depends_on[step.code], key=lambda code: finish[code], default=None)
        finish[step.code] = step.time_limit_for(channel) + (finish[before] if before is not None else 0)
        previous[step.code] = before
    if not finish:
        return 0, []
    last: str | None = max(graph.codes, key=lambda code: finish[code])
    total = finish[last] if last is not None else 0
    path: list[str] = []
    while last is not None:
        path.append(last)
        last = previous[last]
    return total, path[::-1]


def step_time_limit_zh(definition: ThingDefinition, step: StepDefinition, channel: str | None) -> str:
    """A step's time limit on a channel; without a channel, each distinct limit with its channels."""
    if channel is not None:
        return time_limit_zh(step.time_limit_for(channel))
    channels = [item for item in definition.channels if step.applies_to(item.code)]
    groups: dict[int, list[str]] = {}
    for item in channels:
        groups.setdefault(step.time_limit_for(item.code), []).append(item.name_zh)
    if len(groups) == 1 and len(channels) == len(definition.channels):
        return time_limit_zh(next(iter(groups)))
    return "；".join(f"{'、'.join(names)}：{time_limit_zh(days)}" for days, names in groups.items())


def step_lane(definition: ThingDefinition, step: StepDefinition, channel: str | None) -> Lane:
    """The lane of a step: its department on the channel. On a chart of every
    channel, a step whose unit depends on the channel gets a lane naming those units."""
    if channel is not None:
        code = step.department_for(channel)
        return Lane(code, definition.department_name(code))
    if step.department is not None:
        return Lane(step.department, definition.department_name(step.department))
    units = list(
        dict.fromkeys(
            step.department_for(item.code)
            for item in definition.channels
            if step.applies_to(item.code) and item.code in (step.department_by_channel or {})
        )
    )
    if len(units) == 1:
        return Lane(units[0], definition.department_name(units[0]))
    names = "／".join(definition.department_name(unit) for unit in units)
    return Lane("by_channel_" + "_".join(units), f"{names}（按受理渠道）")


def lanes(definition: ThingDefinition, graph: StepGraph) -> tuple[list[Lane], dict[str, Lane]]:
    """The lanes in chart order (the lead unit first, then by first step) and each step's lane."""
    by_step = {step.code: step_lane(definition, step, graph.channel) for step in graph.steps}
    ordered = list(dict.fromkeys(by_step.values()))
    ordered.sort(key=lambda lane: lane.key != definition.lead_department)
    return ordered, by_step


def chart_title_zh(definition: ThingDefinition, channel: str | None) -> str:
    title = definition.name_zh
    if definition.situation is not None:
        try:
            title += f"（{definition.situation_named(definition.situation).name_zh}）"
        except KeyError:
            title += f"（{definition.situation}）"
    title += "办理流程图"
    if channel is not None:
        title += f" · {definition.channel(channel).name_zh}"
    return title


# --- Mermaid ---------------------------------------------------------------------

_MERMAID_ENTITIES = {"#": "#35;", '"': "#quot;", "<": "#lt;", ">": "#gt;", "&": "#amp;"}


def _mermaid_text(text: str) -> str:
    """Text safe inside a quoted Mermaid label: entity codes for the characters
    Mermaid or its HTML labels would read, and no line breaks."""
    flat = " ".join(text.split())
    return "".join(_MERMAID_ENTITIES.get(char, char) for char in flat)


def mermaid_flowchart(definition: ThingDefinition, channel: str | None = None) -> str:
    """A Mermaid ``flowchart LR``: one subgraph per department (its Chinese name),
    a node per step with its time limit, an arrow per dependency, 受理 → … → 办结."""
    graph = step_graph(definition, channel)
    ordered_lanes, lane_of = lanes(definition, graph)
    lines = ["flowchart LR", f"    %% {_mermaid_text(chart_title_zh(definition, channel))}"]
    lines.append(f'    n_start(["{START_ZH}"])')
    for lane in ordered_lanes:
        lines.append(f'    subgraph lane_{lane.key}["{_mermaid_text(lane.name_zh)}"]')
        for step in graph.steps:
            if lane_of[step.code] == lane:
                name = _mermaid_text(step.name_zh)
                limit = _mermaid_text(step_time_limit_zh(definition, step, channel))
                lines.append(f'        s_{step.code}["{name}<br/>{limit}"]')
        lines.append("    end")
    lines.append(f'    n_end(["{END_ZH}"])')
    lines.extend(f"    n_start --> s_{code}" for code in graph.roots())
    lines.extend(f"    s_{dependency} --> s_{code}" for dependency, code in graph.edges())
    lines.extend(f"    s_{code} --> n_end" for code in graph.sinks())
    if not graph.steps:
        lines.append("    n_start --> n_end")
    return "\n".join(lines) + "\n"


# --- SVG -------------------------------------------------------------------------

MARGIN = 20
TITLE_H = 44
LABEL_W = 132
TERMINAL_W = 64
TERMINAL_H = 34
TERMINAL_COL_W = 104
COL_W = 200
BOX_W = 156
BOX_PAD = 10
NAME_SIZE = 14
NAME_LINE_H = 18
LIMIT_SIZE = 12
LIMIT_LINE_H = 16
ROW_GAP = 18
LANE_PAD = 10

_INVALID_XML = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\ud800-\udfff\ufffe\uffff]")


def _xml_text(text: str) -> str:
    """Text without the characters XML 1.0 cannot carry (ElementTree escapes the rest)."""
    return _INVALID_XML.sub("", text)


def _text_width(text: str, size: float) -> float:
    """Rough rendered width: CJK and full-width characters one em, others about 0.6 em."""
    return sum(size if ord(char) > 0x2E7F else size * 0.6 for char in text)


def wrap_text(text: str, size: float, width: float) -> list[str]:
    """Break text into lines no wider than ``width`` (by the rough measure above)."""
    lines: list[str] = []
    current = ""
    for char in " ".join(text.split()):
        if current and _text_width(current + char, size) > width:
            lines.append(current.rstrip())
            current = char.lstrip()
        else:
            current += char
    if current or not lines:
        lines.append(current)
    return lines


@dataclass(frozen=True)
class _Box:
    x: float
    y: float
    w: float
    h: float

    @property
    def right(self) -> float:
        return self.x + self.w

    @property
    def mid_y(self) -> float:
        return self.y + self.h / 2


def _crosses(y: float, x_from: float, x_to: float, boxes: Sequence[_Box]) -> bool:
    low, high = sorted((x_from, x_to))
    return any(box.y - 2 <= y <= box.y + box.h + 2 and box.x < high and box.right > low for box in boxes)


def _turn(source: _Box, target: _Box, obstacles: Sequence[_Box]) -> float | None:
    """Where an orthogonal arrow from the source's right side to the target's left
    side turns (None: a straight line).

    It turns in the gap before the target unless the source's row is blocked on
    the way, then in the gap after the source (a gap holds no boxes)."""
    x1, y1, x2, y2 = source.right, source.mid_y, target.x, target.mid_y
    gap = COL_W - BOX_W
    if abs(y1 - y2) < 0.5 and not _crosses(y1, x1, x2, obstacles):
        return None
    turn = x2 - gap / 2
    if _crosses(y1, x1, turn, obstacles) and not _crosses(y2, x1 + gap / 2, x2, obstacles):
        turn = x1 + gap / 2
    return turn


def _spread(turns: list[tuple[float | None, _Box]]) -> list[float | None]:
    """Separate the arrows turning in one gap: each source gets its own vertical
    (arrows from one source share it), so a reader can follow them."""
    gap = COL_W - BOX_W
    sources: dict[float, list[_Box]] = {}
    for turn, source in turns:
        if turn is not None and source not in sources.setdefault(turn, []):
            sources[turn].append(source)
    spread: list[float | None] = []
    for turn, source in turns:
        if turn is None:
            spread.append(None)
            continue
        order = sorted(sources[turn], key=lambda box: (box.mid_y, box.x))
        if len(order) == 1:
            spread.append(turn)
            continue
        width = min(gap - 20, 8 * (len(order) - 1))
        middle = turn - 4  # keep room for the arrowhead after the turn
        spread.append(middle - width / 2 + width * order.index(source) / (len(order) - 1))
    return spread


def _path(source: _Box, target: _Box, turn: float | None) -> str:
    x1, y1, x2, y2 = source.right, source.mid_y, target.x, target.mid_y
    if turn is None:
        return f"M{x1:g},{y1:g} H{x2:g}"
    return f"M{x1:g},{y1:g} H{turn:g} V{y2:g} H{x2:g}"


def svg_flowchart(definition: ThingDefinition, channel: str | None = None) -> str:
    """A standalone SVG flow chart: horizontal swim lanes per department (label on
    the left), steps as rounded boxes in columns by dependency depth, an arrow per
    dependency, 受理 on the left and 办结 on the right.

    Elements carry classes for tools and tests: ``g.lane`` (``data-lane``),
    ``g.step`` (``data-step``), ``path.dependency`` (``data-from``/``data-to``),
    ``path.connector`` for the arrows from 受理 and into 办结.
    """
    graph = step_graph(definition, channel)
    ordered_lanes, lane_of = lanes(definition, graph)
    depth = graph.depths()
    columns = max(depth.values(), default=-1) + 1

    inner_w = BOX_W - 2 * BOX_PAD
    name_lines = {s.code: wrap_text(_xml_text(s.name_zh), NAME_SIZE, inner_w) for s in graph.steps}
    limit_lines = {
        s.code: wrap_text(_xml_text(step_time_limit_zh(definition, s, channel)), LIMIT_SIZE, inner_w)
        for s in graph.steps
    }
    box_h = 2 * BOX_PAD + max(
        (len(name_lines[c]) * NAME_LINE_H + len(limit_lines[c]) * LIMIT_LINE_H for c in graph.codes),
        default=NAME_LINE_H + LIMIT_LINE_H,
    )
    row_h = box_h + ROW_GAP

    # Slots: the position of each step within its lane's cell (lane, column).
    slot: dict[str, int] = {}
    cell_count: dict[tuple[str, int], int] = {}
    for step in graph.steps:
        cell = (lane_of[step.code].key, depth[step.code])
        slot[step.code] = cell_count.get(cell, 0)
        cell_count[cell] = slot[step.code] + 1
    lane_rows = {
        lane.key: max((n for (key, _), n in cell_count.items() if key == lane.key), default=1) for lane in ordered_lanes
    }

    lanes_x = MARGIN
    steps_x = MARGIN + LABEL_W + TERMINAL_COL_W
    end_x = steps_x + columns * COL_W + (COL_W - BOX_W) / 2
    width = end_x + TERMINAL_W + MARGIN + (COL_W - BOX_W) / 2
    lanes_top = MARGIN + TITLE_H
    lane_top: dict[str, float] = {}
    y = float(lanes_top)
    for lane in ordered_lanes:
        lane_top[lane.key] = y
        y += lane_rows[lane.key] * row_h + 2 * LANE_PAD
    lanes_bottom = max(y, lanes_top + row_h + 2 * LANE_PAD)
    height = lanes_bottom + MARGIN

    boxes = {
        code: _Box(
            steps_x + depth[code] * COL_W + (COL_W - BOX_W) / 2,
            lane_top[lane_of[code].key] + LANE_PAD + slot[code] * row_h + ROW_GAP / 2,
            BOX_W,
            box_h,
        )
        for code in graph.codes
    }
    middle = (lanes_top + lanes_bottom) / 2
    start = _Box(MARGIN + LABEL_W + (TERMINAL_COL_W - TERMINAL_W) / 2, middle - TERMINAL_H / 2, TERMINAL_W, TERMINAL_H)
    end = _Box(end_x, middle - TERMINAL_H / 2, TERMINAL_W, TERMINAL_H)

    title = _xml_text(chart_title_zh(definition, channel))
    marker_id = f"arrow-{definition.code}"
    svg = ET.Element(
        "svg",
        {
            "xmlns": "http://www.w3.org/2000/svg",
            "version": "1.1",
            "width": f"{width:g}",
            "height": f"{height:g}",
            "viewBox": f"0 0 {width:g} {height:g}",
            "font-family": CJK_FONT_FAMILY,
            "role": "img",
            "aria-label": title,
        },
    )
    ET.SubElement(svg, "title").text = title
    defs = ET.SubElement(svg, "defs")
    marker = ET.SubElement(
        defs,
        "marker",
        {
            "id": marker_id,
            "viewBox": "0 0 10 10",
            "refX": "10",
            "refY": "5",
            "markerWidth": "7",
            "markerHeight": "7",
            "orient": "auto",
            "markerUnits": "strokeWidth",
        },
    )
    ET.SubElement(marker, "path", {"d": "M0,0 L10,5 L0,10 z", "fill": "#4a4a4a"})
    ET.SubElement(svg, "rect", {"width": f"{width:g}", "height": f"{height:g}", "fill": "#ffffff"})
    heading = ET.SubElement(
        svg, "text", {"x": f"{MARGIN}", "y": f"{MARGIN + 22}", "font-size": "18", "font-weight": "bold"}
    )
    heading.text = title

    for index, lane in enumerate(ordered_lanes):
        top = lane_top[lane.key]
        lane_h = lane_rows[lane.key] * row_h + 2 * LANE_PAD
        group = ET.SubElement(svg, "g", {"class": "lane", "data-lane": lane.key})
        ET.SubElement(
            group,
            "rect",
            {
                "x": f"{lanes_x}",
                "y": f"{top:g}",
                "width": f"{width - 2 * MARGIN:g}",
                "height": f"{lane_h:g}",
                "fill": "#f4f7fb" if index % 2 == 0 else "#ffffff",
                "stroke": "#9aa5b1",
            },
        )
        ET.SubElement(
            group,
            "rect",
            {
                "x": f"{lanes_x}",
                "y": f"{top:g}",
                "width": f"{LABEL_W}",
                "height": f"{lane_h:g}",
                "fill": "#e3e9f1",
                "stroke": "#9aa5b1",
            },
        )
        label_lines = wrap_text(_xml_text(lane.name_zh), NAME_SIZE, LABEL_W - 2 * BOX_PAD)
        label_top = top + lane_h / 2 - len(label_lines) * NAME_LINE_H / 2
        label = ET.SubElement(
            group,
            "text",
            {"class": "lane-label", "text-anchor": "middle", "font-size": f"{NAME_SIZE}", "font-weight": "bold"},
        )
        for number, line in enumerate(label_lines):
            span = ET.SubElement(
                label,
                "tspan",
                {"x": f"{lanes_x + LABEL_W / 2:g}", "y": f"{label_top + (number + 0.75) * NAME_LINE_H:g}"},
            )
            span.text = line

    obstacles = list(boxes.values())
    arrows = ET.SubElement(svg, "g", {"class": "arrows", "fill": "none", "stroke": "#4a4a4a", "stroke-width": "1.5"})

    planned: list[tuple[str, _Box, _Box, str, str]] = [
        ("connector", start, boxes[code], "start", code) for code in graph.roots()
    ]
    planned += [("dependency", boxes[d], boxes[code], d, code) for d, code in graph.edges()]
    planned += [("connector", boxes[code], end, code, "end") for code in graph.sinks()]
    if not graph.steps:
        planned.append(("connector", start, end, "start", "end"))
    turns = [
        (_turn(source, target, [box for box in obstacles if box is not source and box is not target]), source)
        for _, source, target, _, _ in planned
    ]
    for (css_class, source, target, source_code, target_code), turn in zip(planned, _spread(turns), strict=True):
        ET.SubElement(
            arrows,
            "path",
            {
                "class": css_class,
                "d": _path(source, target, turn),
                "marker-end": f"url(#{marker_id})",
                "data-from": source_code,
                "data-to": target_code,
            },
        )

    for css_class, box, text in (("terminal start", start, START_ZH), ("terminal end", end, END_ZH)):
        group = ET.SubElement(svg, "g", {"class": css_class})
        ET.SubElement(
            group,
            "rect",
            {
                "x": f"{box.x:g}",
                "y": f"{box.y:g}",
                "width": f"{box.w:g}",
                "height": f"{box.h:g}",
                "rx": f"{box.h / 2:g}",
                "fill": "#2f6f4f",
            },
        )
        label = ET.SubElement(
            group,
            "text",
            {
                "x": f"{box.x + box.w / 2:g}",
                "y": f"{box.mid_y + NAME_SIZE * 0.35:g}",
                "text-anchor": "middle",
                "font-size": f"{NAME_SIZE}",
                "fill": "#ffffff",
                "font-weight": "bold",
            },
        )
        label.text = text

    for step in graph.steps:
        box = boxes[step.code]
        group = ET.SubElement(svg, "g", {"class": "step", "data-step": step.code})
        ET.SubElement(group, "title").text = _xml_text(f"{step.name_zh}（{lane_of[step.code].name_zh}）")
        ET.SubElement(
            group,
            "rect",
            {
                "x": f"{box.x:g}",
                "y": f"{box.y:g}",
                "width": f"{box.w:g}",
                "height": f"{box.h:g}",
                "rx": "8",
                "ry": "8",
                "fill": "#ffffff",
                "stroke": "#1f4e79",
                "stroke-width": "1.5",
            },
        )
        caption = ET.SubElement(group, "text", {"text-anchor": "middle"})
        lines = [(line, NAME_SIZE, NAME_LINE_H, "#1a1a1a") for line in name_lines[step.code]]
        lines += [(line, LIMIT_SIZE, LIMIT_LINE_H, "#8a3b12") for line in limit_lines[step.code]]
        used = sum(line_h for _, _, line_h, _ in lines)
        baseline = box.mid_y - used / 2
        for line, size, line_h, colour in lines:
            span = ET.SubElement(
                caption,
                "tspan",
                {
                    "x": f"{box.x + box.w / 2:g}",
                    "y": f"{baseline + line_h * 0.78:g}",
                    "font-size": f"{size}",
                    "fill": colour,
                },
            )
            span.text = line
            baseline += line_h

    return '<?xml version="1.0" encoding="UTF-8"?>\n' + ET.tostring(svg, encoding="unicode") + "\n"

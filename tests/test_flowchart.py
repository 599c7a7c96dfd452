"""Flow charts (§5.2.2): Mermaid and a self-drawn SVG, one lane per department, one node
per step, one arrow per dependency, narrowed to a situation and a channel when given."""

from __future__ import annotations

import re
import xml.etree.ElementTree as ET

import pytest

from documents.flowchart import mermaid_flowchart, svg_flowchart
from domain.catalogue import shipped_definitions
from models.catalogue import StepDefinition, ThingDefinition
from models.errors import DomainError

SVG = "{http://www.w3.org/2000/svg}"
EDGE = re.compile(r"^\s*s_(\w+) --> s_(\w+)\s*$", re.MULTILINE)
SUBGRAPH = re.compile(r'^\s*subgraph lane_(\w+)\["([^"]*)"\]\s*$', re.MULTILINE)


def birth() -> ThingDefinition:
    return shipped_definitions()["birth"]


def cases() -> list[tuple[ThingDefinition, str]]:
    """Each shipped definition and each of its situations, on each of its channels."""
    result = []
    for definition in shipped_definitions().values():
        for view in [definition, *(definition.for_situation(s.code) for s in definition.situations)]:
            result += [(view, channel.code) for channel in view.channels]
    return result


CASES = cases()
CASE_IDS = [f"{view.code}:{view.situation or '*'}:{channel}" for view, channel in CASES]


def expected_steps(definition: ThingDefinition, channel: str) -> list[StepDefinition]:
    return [step for step in definition.steps if step.channels is None or channel in step.channels]


def expected_edges(definition: ThingDefinition, channel: str) -> set[tuple[str, str]]:
    present = {step.code for step in expected_steps(definition, channel)}
    return {(d, step.code) for step in expected_steps(definition, channel) for d in step.depends_on if d in present}


def expected_departments(definition: ThingDefinition, channel: str) -> dict[str, str]:
    return {
        step.department_for(channel): definition.department_name(step.department_for(channel))
        for step in expected_steps(definition, channel)
    }


def parse_svg(text: str) -> ET.Element:
    return ET.fromstring(text)


def by_class(root: ET.Element, tag: str, css_class: str) -> list[ET.Element]:
    return [el for el in root.iter(f"{SVG}{tag}") if css_class in (el.get("class") or "").split()]


def all_text(element: ET.Element) -> str:
    return "".join(element.itertext())


# --- Mermaid ------------------------------------------------------------------------


@pytest.mark.parametrize(("view", "channel"), CASES, ids=CASE_IDS)
def test_mermaid_has_a_subgraph_per_department_and_an_edge_per_dependency(view: ThingDefinition, channel: str) -> None:
    text = mermaid_flowchart(view, channel)
    assert text.startswith("flowchart LR\n")
    lanes = dict(SUBGRAPH.findall(text))
    assert lanes == expected_departments(view, channel)
    assert set(EDGE.findall(text)) == expected_edges(view, channel)
    assert len(EDGE.findall(text)) == len(expected_edges(view, channel)), "one edge per dependency"
    assert text.count("subgraph ") == text.count("\n    end\n")
    assert '(["受理"])' in text and '(["办结"])' in text
    steps = expected_steps(view, channel)
    roots = {s.code for s in steps if not any(d in {x.code for x in steps} for d in s.depends_on)}
    assert set(re.findall(r"n_start --> s_(\w+)", text)) == roots
    assert re.findall(r"s_(\w+) --> n_end", text), "something leads to 办结"


def test_mermaid_nodes_carry_the_chinese_name_and_the_channels_time_limit() -> None:
    view = birth().for_situation("married_mother")
    text = mermaid_flowchart(view, "hospital")
    assert 's_birth_certificate["出生医学证明办理<br/>即办"]' in text
    assert 's_hukou_registration["户口登记<br/>1个工作日"]' in text
    assert 'subgraph lane_police["公安部门"]' in text
    online = mermaid_flowchart(view, "online")
    assert 's_birth_certificate["出生医学证明办理<br/>1个工作日"]' in online
    assert "s_delivery" not in online, "出件 is a window step"
    assert "unmarried_declaration_review" not in text, "not a step of a 婚生 situation"


def test_mermaid_of_every_channel_puts_a_channel_dependent_unit_in_its_own_lane() -> None:
    text = mermaid_flowchart(birth())
    lanes = dict(SUBGRAPH.findall(text))
    assert lanes["by_channel_hospital_service_center"] == "助产机构／行政服务中心（按受理渠道）"
    assert "s_delivery" in text and "s_unmarried_declaration_review" in text
    assert "助产机构窗口：即办" in text
    expected = {(d, s.code) for s in birth().steps for d in s.depends_on}
    assert set(EDGE.findall(text)) == expected


def test_mermaid_labels_cannot_break_out_of_their_quotes() -> None:
    definition = birth()
    step = definition.steps[0].model_copy(update={"name_zh": '出生"证明"<b>#1</b>\nend'})
    text = mermaid_flowchart(definition.model_copy(update={"steps": [step, *definition.steps[1:]]}), "online")
    line = next(line for line in text.splitlines() if line.strip().startswith("s_birth_certificate["))
    assert line.count('"') == 2
    assert "#quot;证明#quot;#lt;b#gt;#35;1#lt;/b#gt; end" in line
    assert "\nend\n" not in text.replace("    end\n", "")


def test_unknown_channel_is_refused() -> None:
    with pytest.raises(DomainError) as error:
        mermaid_flowchart(birth(), "fax")
    assert "channel" in error.value.fields
    with pytest.raises(DomainError):
        svg_flowchart(birth(), "fax")


# --- SVG ----------------------------------------------------------------------------


@pytest.mark.parametrize(("view", "channel"), CASES, ids=CASE_IDS)
def test_svg_has_a_lane_per_department_a_box_per_step_and_an_arrow_per_dependency(
    view: ThingDefinition, channel: str
) -> None:
    root = parse_svg(svg_flowchart(view, channel))
    assert root.tag == f"{SVG}svg"

    lanes = by_class(root, "g", "lane")
    assert {lane.get("data-lane"): all_text(lane) for lane in lanes} == expected_departments(view, channel)
    assert len(lanes) == len(expected_departments(view, channel)), "one lane per department"

    steps = by_class(root, "g", "step")
    assert [step.get("data-step") for step in steps] != []
    assert sorted(step.get("data-step") or "" for step in steps) == sorted(
        s.code for s in expected_steps(view, channel)
    )
    for step in steps:
        (box,) = step.iter(f"{SVG}rect")
        assert float(box.get("rx") or 0) > 0, "rounded boxes"

    arrows = by_class(root, "path", "dependency")
    assert len(arrows) == len(expected_edges(view, channel)), "one arrow per dependency"
    assert {(a.get("data-from"), a.get("data-to")) for a in arrows} == expected_edges(view, channel)
    markers = {marker.get("id") for marker in root.iter(f"{SVG}marker")}
    assert markers and all(a.get("marker-end") == f"url(#{next(iter(markers))})" for a in arrows)
    assert {el.get("class") for el in root.iter(f"{SVG}g") if "terminal" in (el.get("class") or "")} == {
        "terminal start",
        "terminal end",
    }


@pytest.mark.parametrize(("view", "channel"), CASES, ids=CASE_IDS)
def test_svg_places_each_step_right_of_its_dependencies_and_inside_its_lane(
    view: ThingDefinition, channel: str
) -> None:
    root = parse_svg(svg_flowchart(view, channel))
    lane_span = {}
    for lane in by_class(root, "g", "lane"):
        outer = next(lane.iter(f"{SVG}rect"))
        top = float(outer.get("y") or 0)
        lane_span[lane.get("data-lane")] = (top, top + float(outer.get("height") or 0))
    boxes = {}
    for group in by_class(root, "g", "step"):
        rect = next(group.iter(f"{SVG}rect"))
        x, y, w, h = (float(rect.get(k) or 0) for k in ("x", "y", "width", "height"))
        boxes[group.get("data-step")] = (x, y, w, h)
    for step in expected_steps(view, channel):
        x, y, w, h = boxes[step.code]
        top, bottom = lane_span[step.department_for(channel)]
        assert top <= y and y + h <= bottom, f"{step.code} sits in its department's lane"
    for dependency, code in expected_edges(view, channel):
        assert boxes[dependency][0] + boxes[dependency][2] < boxes[code][0], f"{dependency} left of {code}"
    for a in boxes.values():
        for b in boxes.values():
            if a is not b:
                assert a[0] + a[2] <= b[0] or b[0] + b[2] <= a[0] or a[1] + a[3] <= b[1] or b[1] + b[3] <= a[1]


def test_svg_for_a_situation_and_channel_shows_only_their_steps() -> None:
    def steps(definition: ThingDefinition, channel: str | None) -> set[str]:
        root = parse_svg(svg_flowchart(definition, channel))
        return {step.get("data-step") or "" for step in by_class(root, "g", "step")}

    married = birth().for_situation("married_father")
    unmarried = birth().for_situation("unmarried_father")
    assert "unmarried_declaration_review" not in steps(married, "hospital")
    assert "unmarried_declaration_review" in steps(unmarried, "hospital")
    assert "delivery" in steps(married, "service_center")
    assert "delivery" not in steps(married, "online")
    assert steps(birth(), None) == {step.code for step in birth().steps}


def test_svg_labels_lanes_in_chinese_shows_time_limits_and_names_cjk_fonts() -> None:
    root = parse_svg(svg_flowchart(birth().for_situation("married_father"), "hospital"))
    fonts = root.get("font-family") or ""
    assert "Noto Sans CJK SC" in fonts and "Microsoft YaHei" in fonts and fonts.endswith("sans-serif")
    labels = [all_text(lane) for lane in by_class(root, "g", "lane")]
    assert labels[0] == "助产机构", "the lead unit's lane comes first"
    assert set(labels) == {"助产机构", "公安部门", "医疗保障部门", "人力社保部门"}
    step_text = {step.get("data-step"): all_text(step) for step in by_class(root, "g", "step")}
    assert "出生医学证明办理" in step_text["birth_certificate"] and "即办" in step_text["birth_certificate"]
    assert "1个工作日" in step_text["hukou_registration"]
    title = root.find(f"{SVG}title")
    assert title is not None and title.text == "出生一件事（婚生·随父落户）办理流程图 · 助产机构窗口"


def test_svg_escapes_names_and_drops_characters_xml_cannot_hold() -> None:
    definition = birth()
    step = definition.steps[0].model_copy(update={"name_zh": '<script>&"出生"</script>\x01证明'})
    text = svg_flowchart(definition.model_copy(update={"steps": [step, *definition.steps[1:]]}), "online")
    assert "<script>" not in text
    root = parse_svg(text)
    (box,) = [s for s in by_class(root, "g", "step") if s.get("data-step") == "birth_certificate"]
    assert "<script>&" in all_text(box) and "\x01" not in all_text(box)
    assert not list(root.iter(f"{SVG}script"))


def test_a_dependency_on_a_step_the_channel_lacks_is_dropped_as_the_workflow_drops_it() -> None:
    definition = birth()
    notify = StepDefinition(
        code="notify_guardian",
        name_zh="办结告知",
        department="hospital",
        depends_on=["delivery"],  # 出件 exists on the window channels only
        time_limit={"default": 1},
        result={},
    )
    changed = definition.for_situation("married_father")
    changed = changed.model_copy(update={"steps": [*changed.steps, notify]})

    online = mermaid_flowchart(changed, "online")
    assert "n_start --> s_notify_guardian" in online, "online it waits for nothing"
    assert "s_delivery" not in online
    window = mermaid_flowchart(changed, "hospital")
    assert "s_delivery --> s_notify_guardian" in window
    assert "n_start --> s_notify_guardian" not in window

    arrows = by_class(parse_svg(svg_flowchart(changed, "online")), "path", "dependency")
    assert all(a.get("data-to") != "notify_guardian" for a in arrows)

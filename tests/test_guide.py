"""Generated documents: the 办事指南 (§5.3) and its QR code, the data-sharing needs list
(§5.4.1) and the materials reduction, each derived from the definition it describes."""

from __future__ import annotations

import csv
import io
import re
from functools import cache
from html.parser import HTMLParser

import pytest

from documents.guide import (
    DATA_SHARING_CSV_HEADERS,
    data_sharing_csv,
    data_sharing_needs,
    guide_qr_svg,
    materials_reduction,
    render_guide_html,
    service_guide,
)
from domain.catalogue import shipped_definitions
from models.catalogue import DataSharing, FaqEntry, StepDefinition, ThingDefinition
from models.errors import DomainError

URL = "https://zwfw.example.gov.cn/guides/birth"


def birth() -> ThingDefinition:
    return shipped_definitions()["birth"]


def views(definition: ThingDefinition) -> list[ThingDefinition]:
    """The sub-item itself and each of its situations."""
    return [definition, *(definition.for_situation(item.code) for item in definition.situations)]


def view_ids(definition: ThingDefinition) -> list[str]:
    return [f"{definition.code}:{view.situation or '*'}" for view in views(definition)]


ALL_VIEWS = [view for definition in shipped_definitions().values() for view in views(definition)]
ALL_VIEW_IDS = [name for definition in shipped_definitions().values() for name in view_ids(definition)]


def longest_days(definition: ThingDefinition, channel: str) -> int:
    """Written independently of documents.flowchart: the latest finish over the channel's
    steps, where a step finishes its limit after its latest dependency on the channel."""
    steps = {step.code: step for step in definition.steps if step.applies_to(channel)}

    @cache
    def finish(code: str) -> int:
        step = steps[code]
        return step.time_limit_for(channel) + max((finish(d) for d in step.depends_on if d in steps), default=0)

    return max((finish(code) for code in steps), default=0)


def label(days: int) -> str:
    return "即办" if days == 0 else f"{days}个工作日"


class _Collector(HTMLParser):
    """Text of each element carrying an id, every src/href, and the tags seen."""

    def __init__(self) -> None:
        super().__init__()
        self.text_by_id: dict[str, str] = {}
        self.links: list[str] = []
        self.tags: set[str] = set()
        self._open: list[tuple[str, str | None]] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.tags.add(tag)
        values = dict(attrs)
        self.links += [value for name, value in attrs if name in {"src", "href", "xlink:href"} and value]
        if tag in {"br", "meta", "img", "link", "input"}:
            return
        self._open.append((tag, values.get("id")))
        if values.get("id"):
            self.text_by_id[values["id"] or ""] = ""

    def handle_endtag(self, tag: str) -> None:
        while self._open:
            name, _ = self._open.pop()
            if name == tag:
                break

    def handle_data(self, data: str) -> None:
        for _, element_id in self._open:
            if element_id:
                self.text_by_id[element_id] += data


def parse_html(html: str) -> _Collector:
    collector = _Collector()
    collector.feed(html)
    return collector


# --- the guide follows its definition ---------------------------------------------


@pytest.mark.parametrize("situation", [s.code for s in birth().situations])
def test_situation_guide_lists_each_of_its_steps_with_department_and_time_limit_per_channel(situation: str) -> None:
    view = birth().for_situation(situation)
    guide = service_guide(birth(), situation, URL)

    assert guide.situation == situation
    assert {step.code for step in guide.steps} == {step.code for step in view.steps}
    position = {step.code: index for index, step in enumerate(guide.steps)}
    for step in view.steps:
        shown = next(item for item in guide.steps if item.code == step.code)
        assert shown.name_zh == step.name_zh
        assert shown.depends_on == [d for d in step.depends_on if d in position]
        assert all(position[d] < position[step.code] for d in shown.depends_on), "dependency order"
        for channel in view.channels:
            limit = shown.time_limit_on(channel.code)
            if not step.applies_to(channel.code):
                assert limit is None
                continue
            assert limit is not None
            assert (limit.days, limit.label_zh) == (
                step.time_limit_for(channel.code),
                label(step.time_limit_for(channel.code)),
            )
            assert view.department_name(step.department_for(channel.code)) in shown.department_zh


def test_steps_outside_the_situation_are_left_out_of_its_guide() -> None:
    married = service_guide(birth(), "married_father")
    unmarried = service_guide(birth(), "unmarried_father")
    assert "unmarried_declaration_review" not in [step.code for step in married.steps]
    assert "unmarried_declaration_review" in [step.code for step in unmarried.steps]
    assert [m.code for m in married.materials] == birth().situation_named("married_father").materials
    # The dependency on a step the situation lacks falls away, as in the workflow.
    hukou = next(step for step in married.steps if step.code == "hukou_registration")
    assert hukou.depends_on == ["birth_certificate"]


def test_hospital_window_shows_即办_for_the_hospitals_own_zero_day_steps() -> None:
    view = birth().for_situation("married_father")
    on_the_spot = [
        step.code
        for step in view.steps
        if step.applies_to("hospital")
        and step.department_for("hospital") == "hospital"
        and step.time_limit_for("hospital") == 0
    ]
    assert on_the_spot, "birth.yaml gives the hospital's certificates 0 days at its own window"
    guide = service_guide(birth(), "married_father", URL)
    html = parse_html(render_guide_html(guide, guide_qr_svg(URL)))
    for code in on_the_spot:
        step = next(item for item in guide.steps if item.code == code)
        hospital = step.time_limit_on("hospital")
        assert hospital is not None and hospital.label_zh == "即办"
        online = step.time_limit_on("online")
        assert online is not None and online.label_zh != "即办", "only the hospital window is 即办"
        assert "即办" in html.text_by_id[f"step-{code}"]
        assert "助产机构" in html.text_by_id[f"step-{code}"]


@pytest.mark.parametrize("situation", [None, *(s.code for s in birth().situations)])
def test_total_time_limit_per_channel_is_the_longest_dependency_path_not_the_sum(situation: str | None) -> None:
    view = birth() if situation is None else birth().for_situation(situation)
    guide = service_guide(birth(), situation)
    totals = {total.channel: total for total in guide.total_time_limits}
    assert list(totals) == [channel.code for channel in view.channels]
    for channel in view.channels:
        expected = longest_days(view, channel.code)
        total = totals[channel.code]
        assert (total.days, total.label_zh) == (expected, label(expected))
        path_days = sum(view.step(code).time_limit_for(channel.code) for code in total.critical_path)
        assert path_days == expected, "the path shown is the one that sets the limit"
        summed = sum(step.time_limit_for(channel.code) for step in view.steps_for(channel.code))
        assert expected < summed, "parallel steps do not add up"
    if situation is not None:
        (shown,) = guide.situations
        assert [(t.channel, t.days) for t in shown.total_time_limits] == [
            (t.channel, t.days) for t in guide.total_time_limits
        ]


@pytest.mark.parametrize("situation", [None, *(s.code for s in birth().situations)])
def test_materials_obtained_by_data_sharing_are_exactly_the_definitions_data_sharing_materials(
    situation: str | None,
) -> None:
    view = birth() if situation is None else birth().for_situation(situation)
    guide = service_guide(birth(), situation)
    expected = [m.code for m in view.materials if m.source == "data_sharing"]
    assert expected
    assert guide.data_sharing_materials == expected
    assert [m.code for m in guide.materials if m.by_data_sharing] == expected
    for material in guide.materials:
        source = view.materials[[m.code for m in view.materials].index(material.code)].source
        assert (
            material.source_zh
            == {
                "data_sharing": "数据共享自动获取",
                "commitment": "告知承诺",
                "submit": "申请人提交",
                "form": "申请表",
            }[source]
        )
    providers = {m.code: m.provider.name_zh for m in guide.materials if m.provider}
    assert providers == {
        m.code: view.department_name(m.sharing.provider) for m in view.materials if m.sharing is not None
    }


def test_guide_names_lead_and_collaborating_units_situations_delivery_and_faq() -> None:
    definition = birth()
    guide = service_guide(definition, guide_url=URL)
    assert guide.lead_unit.name_zh == definition.department_name(definition.lead_department)
    assert [unit.name_zh for unit in guide.collaborating_units] == [
        definition.department_name(code) for code in definition.collaborating_departments
    ]
    assert [s.code for s in guide.situations] == [s.code for s in definition.situations]
    first = guide.situations[0]
    question = definition.questions[0]
    assert first.answers[0].question_zh == question.label_zh
    assert first.answers[0].answer_zh == question.options[definition.situations[0].when[question.code]]
    assert [d.name_zh for d in guide.delivery] == [
        {"pickup": "窗口领取", "mail": "邮寄送达"}[m] for m in definition.delivery_methods
    ]
    assert [c.code for c in guide.channels] == [c.code for c in definition.channels]
    assert [(f.question_zh, f.answer_zh) for f in guide.faq] == [(f.question_zh, f.answer_zh) for f in definition.faq]
    assert guide.common_mistakes_zh == definition.common_mistakes_zh
    assert guide.guide_url == URL
    assert guide.life_stage_zh == definition.life_stage_zh


def test_changing_a_time_limit_in_a_copy_changes_the_guide_and_its_total() -> None:
    view = birth().for_situation("married_father")
    before = {t.channel: t.days for t in service_guide(view).total_time_limits}
    hukou = view.step("hukou_registration")
    slower = hukou.model_copy(update={"time_limit": {"default": 3, "hospital": 2}})
    changed = view.model_copy(update={"steps": [slower if s.code == hukou.code else s for s in view.steps]})

    guide = service_guide(changed)
    shown = next(step for step in guide.steps if step.code == "hukou_registration")
    assert [(t.channel, t.label_zh) for t in shown.time_limits] == [
        ("online", "3个工作日"),
        ("hospital", "2个工作日"),
        ("service_center", "3个工作日"),
    ]
    after = {t.channel: t.days for t in guide.total_time_limits}
    # hukou_registration lies on every channel's longest path: its limit grew by 2, 1 and 2 days.
    assert after == {
        "online": before["online"] + 2,
        "hospital": before["hospital"] + 1,
        "service_center": before["service_center"] + 2,
    }
    assert after == {channel: longest_days(changed, channel) for channel in after}


def test_adding_a_step_in_a_copy_adds_it_to_the_guide_in_dependency_order() -> None:
    definition = birth()
    archive = StepDefinition(
        code="archive",
        name_zh="电子档案归档",
        department="civil_affairs",
        depends_on=["social_security_card"],
        time_limit={"default": 2},
        result={},
    )
    changed = definition.model_copy(update={"steps": [archive, *definition.steps]})
    guide = service_guide(changed)
    codes = [step.code for step in guide.steps]
    assert codes.index("archive") > codes.index("social_security_card"), "listed after what it waits for"
    shown = guide.steps[codes.index("archive")]
    assert (shown.department_zh, shown.depends_on_zh) == ("民政部门", ["社保卡办理"])
    assert "民政部门" in [unit.name_zh for unit in guide.collaborating_units]
    before = {t.channel: t.days for t in service_guide(definition).total_time_limits}
    after = {t.channel: t.days for t in guide.total_time_limits}
    assert after == {channel: longest_days(changed, channel) for channel in after}
    assert after["online"] == before["online"] + 2, "online, the new step ends the longest path"
    html = parse_html(render_guide_html(guide, guide_qr_svg(URL)))
    assert "电子档案归档" in html.text_by_id["step-archive"]


def test_unknown_situation_is_refused_naming_the_field() -> None:
    with pytest.raises(DomainError) as error:
        service_guide(birth(), "twins")
    assert "situation" in error.value.fields
    assert "married_father" in error.value.fields["situation"]


@pytest.mark.parametrize("url", ["javascript:alert(1)", "/guides/birth", "ftp://example.org/g", "https://"])
def test_guide_url_must_be_an_absolute_http_url(url: str) -> None:
    with pytest.raises(DomainError) as error:
        service_guide(birth(), guide_url=url)
    assert "guide_url" in error.value.fields
    with pytest.raises(DomainError):
        guide_qr_svg(url)


# --- the printable page -------------------------------------------------------------


def test_html_page_is_chinese_and_embeds_the_qr_code_linking_to_the_online_guide() -> None:
    guide = service_guide(birth(), "unmarried_father", URL)
    qr = guide_qr_svg(URL)
    html = render_guide_html(guide, qr)

    assert '<html lang="zh-CN">' in html
    assert '<meta charset="utf-8">' in html
    assert "出生一件事" in html and "办事指南" in html and "非婚生·随父落户" in html
    assert qr.startswith("<svg") and qr in html, "the QR code is inline SVG, not an image file"
    assert re.search(rf'<a href="{re.escape(URL)}"[^>]*>\s*<svg', html), "the QR code links to the online guide"
    assert guide_qr_svg(URL) != guide_qr_svg(URL + "?v=2"), "the code encodes the URL"
    assert "@media print" in html
    for step in birth().for_situation("unmarried_father").steps:
        assert step.name_zh in html
    for mistake in birth().common_mistakes_zh:
        assert mistake in html


def test_html_page_has_no_scripts_and_no_external_assets() -> None:
    guide = service_guide(birth(), guide_url=URL)
    html = render_guide_html(guide, guide_qr_svg(URL))
    page = parse_html(html)
    assert not page.tags & {"script", "link", "img", "iframe", "object", "embed"}
    external = [link for link in page.links if link.startswith(("http:", "https:", "//"))]
    assert external and set(external) == {URL}, "the only outside address is the guide link itself"
    assert not re.search(r"url\(|@import", html), "no fonts or images pulled in by CSS"
    assert "http://www.w3.org/2000/svg" in html  # the SVG namespace is a name, not a fetched asset


def test_html_page_escapes_names_and_texts_from_the_definition() -> None:
    definition = birth()
    hostile = definition.model_copy(
        update={
            "name_zh": "<script>alert(1)</script>出生",
            "steps": [
                definition.steps[0].model_copy(update={"name_zh": '出生证明<img src="x" onerror="alert(2)">'}),
                *definition.steps[1:],
            ],
            "faq": [FaqEntry(question_zh="<b>问</b>", answer_zh="a & b")],
        }
    )
    html = render_guide_html(service_guide(hostile, guide_url=URL), guide_qr_svg(URL))
    assert "<script>" not in html
    assert "&lt;script&gt;alert(1)&lt;/script&gt;出生" in html
    assert "<img" not in html and "&lt;img src=&#34;x&#34;" in html
    assert "&lt;b&gt;问&lt;/b&gt;" in html and "a &amp; b" in html
    assert "script" not in parse_html(html).tags


@pytest.mark.parametrize(
    "svg",
    [
        "<svg xmlns='http://www.w3.org/2000/svg'><script>alert(1)</script></svg>",
        "<svg xmlns='http://www.w3.org/2000/svg' onload='alert(1)'/>",
        "<svg xmlns='http://www.w3.org/2000/svg'><image href='https://cdn.example.org/x.png'/></svg>",
        "<div>not svg</div>",
        "<svg",
    ],
)
def test_render_refuses_a_qr_code_that_is_not_one_inert_svg(svg: str) -> None:
    with pytest.raises(ValueError):
        render_guide_html(service_guide(birth()), svg)


# --- §5.4.1 data-sharing needs ------------------------------------------------------


@pytest.mark.parametrize("definition", shipped_definitions().values(), ids=list(shipped_definitions()))
def test_one_data_sharing_need_per_data_sharing_material_with_the_providers_name(
    definition: ThingDefinition,
) -> None:
    rows = data_sharing_needs(definition)
    shared = [m for m in definition.materials if m.source == "data_sharing"]
    assert [row.material for row in rows] == [m.code for m in shared]
    for row, material in zip(rows, shared, strict=True):
        assert material.sharing is not None
        assert row.material_zh == material.name_zh
        assert (row.provider, row.provider_zh) == (
            material.sharing.provider,
            definition.department_name(material.sharing.provider),
        )
        assert row.provider_zh != row.provider, "a Chinese department name, not the code"
        assert (row.fields_zh, row.data_type_zh, row.method_zh, row.update_period_zh) == (
            material.sharing.fields_zh,
            material.sharing.data_type_zh,
            material.sharing.method_zh,
            material.sharing.update_period_zh,
        )
        using = [s.code for s in definition.situations if s.materials is None or material.code in s.materials]
        assert row.situations == using


def test_birth_data_sharing_needs_name_police_and_civil_affairs_and_their_situations() -> None:
    rows = {row.material: row for row in data_sharing_needs(birth())}
    assert rows["marriage_certificate"].provider_zh == "民政部门"
    assert rows["marriage_certificate"].update_period_zh == "每日"
    assert rows["mother_id_card"].provider_zh == "公安部门"
    assert rows["mother_id_card"].all_situations, "every birth situation needs the mother's ID card"
    assert rows["father_id_card"].situations == ["married_father", "married_mother", "unmarried_father"]
    assert not rows["father_id_card"].all_situations


def test_data_sharing_csv_round_trips_with_chinese_headers_and_a_byte_order_mark() -> None:
    definition = birth()
    tricky = definition.materials[1].model_copy(
        update={
            "name_zh": '母亲"居民"身份证, 电子证照',
            "sharing": DataSharing(provider="police", fields_zh=["姓名", "住址\n（含门牌）"]),
        }
    )
    changed = definition.model_copy(update={"materials": [definition.materials[0], tricky, *definition.materials[2:]]})
    rows = data_sharing_needs(changed)
    text = data_sharing_csv(rows)

    assert text.encode("utf-8").startswith(b"\xef\xbb\xbf"), "Excel needs the BOM to read UTF-8"
    assert text.startswith("\ufeff材料,提供部门,") and text.endswith("\r\n"), "RFC 4180 ends records with CRLF"
    assert text.count("\r\n") == 1 + len(rows)
    parsed = list(csv.reader(io.StringIO(text.removeprefix("\ufeff"), newline="")))
    assert parsed[0] == DATA_SHARING_CSV_HEADERS
    assert parsed[0][:6] == ["材料", "提供部门", "数据字段", "数据类型", "共享方式", "更新周期"]
    assert len(parsed) == 1 + len(rows)
    for line, row in zip(parsed[1:], rows, strict=True):
        record = dict(zip(parsed[0], line, strict=True))
        assert record["材料"] == row.material_zh
        assert record["提供部门"] == row.provider_zh
        assert record["数据字段"].split("、") == row.fields_zh
        assert (record["材料编码"], record["提供部门编码"]) == (row.material, row.provider)
    assert parsed[1][0] == '母亲"居民"身份证, 电子证照'
    assert parsed[1][2] == "姓名、住址\n（含门牌）"
    assert dict(zip(parsed[0], parsed[1], strict=True))["适用情形"] == "全部"


# --- materials reduction ------------------------------------------------------------


def test_birth_materials_reduction_matches_the_count_by_hand() -> None:
    """Counted by hand from birth.yaml.

    Without the one thing: every listed material except the joint registration form,
    plus one application form per step except 出件 (delivery, which only exists to
    hand results over together). With it: the submit materials plus the joint form.

    - Sub-item: 7 materials besides the form (5 data sharing: mother/father ID card,
      father/mother 户口簿, 结婚证; 2 submit: 非婚生育声明, 亲子鉴定证明) + 7 step forms
      (8 steps less 出件) = 14. With: 2 submit + 1 form = 3. (14 − 3) / 14 = 78.6 %.
    - 婚生 (either parent's hukou): 4 data-sharing materials + 6 step forms (no 非婚生育声明
      核验) = 10. With: the form alone = 1. 90.0 %.
    - 非婚生·随母落户: mother's ID card, mother's 户口簿, 非婚生育声明 = 3 + 7 step forms = 10.
      With: 声明 + form = 2. 80.0 %.
    - 非婚生·随父落户: mother's and father's ID card, father's 户口簿, 声明, 亲子鉴定证明 = 5
      + 7 step forms = 12. With: 声明, 鉴定 + form = 3. 75.0 %.
    """
    reduction = materials_reduction(birth())
    counts = {
        item.situation: (item.without_count, item.with_count, item.reduction_percent)
        for item in [reduction.sub_item, *reduction.situations]
    }
    assert counts == {
        None: (14, 3, 78.6),
        "married_father": (10, 1, 90.0),
        "married_mother": (10, 1, 90.0),
        "unmarried_mother": (10, 2, 80.0),
        "unmarried_father": (12, 3, 75.0),
    }
    father = reduction.situations[3]
    assert father.situation == "unmarried_father"
    assert father.with_zh == ["非婚生育声明", "亲子鉴定证明", '浙江省出生"一件事"办理登记表']
    assert father.by_data_sharing_zh == ["母亲居民身份证", "父亲居民身份证", "父亲居民户口簿"]
    assert "出件申请表" not in father.separate_forms_zh
    assert "户口登记申请表" in father.without_zh
    assert len(father.without_zh) == father.without_count and len(father.with_zh) == father.with_count


def test_a_material_turned_into_a_commitment_is_no_longer_handed_in() -> None:
    definition = birth()
    materials = [
        m.model_copy(update={"source": "commitment", "legal_basis": None})
        if m.code == "unmarried_birth_declaration"
        else m
        for m in definition.materials
    ]
    changed = definition.model_copy(update={"materials": materials})
    before = materials_reduction(definition).situations[2]
    after = materials_reduction(changed).situations[2]
    assert after.situation == before.situation == "unmarried_mother"
    assert after.without_count == before.without_count
    assert (before.with_count, after.with_count) == (2, 1)
    assert after.by_commitment_zh == ["非婚生育声明"]
    assert after.reduction_percent == 90.0


# --- every shipped definition -------------------------------------------------------


@pytest.mark.parametrize("view", ALL_VIEWS, ids=ALL_VIEW_IDS)
def test_every_shipped_definition_and_situation_gets_a_consistent_guide_page(view: ThingDefinition) -> None:
    url = f"https://zwfw.example.gov.cn/guides/{view.code}"
    guide = service_guide(view, guide_url=url)
    assert [step.code for step in guide.steps] and {s.code for s in guide.steps} == {s.code for s in view.steps}
    assert guide.data_sharing_materials == [m.code for m in view.materials if m.source == "data_sharing"]
    assert {t.channel: t.days for t in guide.total_time_limits} == {
        c.code: longest_days(view, c.code) for c in view.channels
    }
    html = render_guide_html(guide, guide_qr_svg(url))
    page = parse_html(html)
    assert view.name_zh in html and "script" not in page.tags
    assert {link for link in page.links if link.startswith(("http:", "https:", "//"))} == {url}
    for step in view.steps:
        assert step.name_zh in page.text_by_id[f"step-{step.code}"]


@pytest.mark.parametrize("view", ALL_VIEWS, ids=ALL_VIEW_IDS)
def test_every_shipped_definition_and_situation_counts_its_materials_by_the_rule(view: ThingDefinition) -> None:
    reduction = materials_reduction(view)
    count = reduction.sub_item
    others = [m for m in view.materials if m.source != "form"]
    forms = [s for s in view.steps if not s.delivers_case]
    assert count.without_count == len(others) + len(forms)
    assert count.with_count == len([m for m in others if m.source == "submit"]) + 1
    if count.without_count:
        expected = round((count.without_count - count.with_count) * 100 / count.without_count, 1)
        assert count.reduction_percent == expected
    csv_text = data_sharing_csv(data_sharing_needs(view))
    parsed = list(csv.reader(io.StringIO(csv_text.removeprefix("\ufeff"), newline="")))
    assert parsed[0] == DATA_SHARING_CSV_HEADERS
    assert len(parsed) == 1 + len([m for m in view.materials if m.source == "data_sharing"])


def test_a_situation_view_gives_its_own_guide_and_refuses_another_situation() -> None:
    view = birth().for_situation("unmarried_mother")
    assert service_guide(view) == service_guide(birth(), "unmarried_mother")
    assert service_guide(view, "unmarried_mother") == service_guide(view)
    with pytest.raises(DomainError):
        service_guide(view, "married_father")

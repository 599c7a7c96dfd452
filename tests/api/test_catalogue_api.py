"""The catalogue over HTTP: the public tree and sub-items, their generated documents,
and versions — publishing never changes a running case."""

from __future__ import annotations

import copy
import csv
import io
import xml.etree.ElementTree as ET

import pytest

from domain.catalogue import shipped_definitions
from tests.api.helpers import assert_error, birth_form, step_of


async def test_catalogue_tree_lists_life_stages_sub_items_and_situations_without_login(api):
    response = await api.get("/catalogue")
    assert response.status_code == 200
    stages = {stage["code"]: stage for stage in response.json()["life_stages"]}
    assert stages["birth"]["name_zh"] == "出生"
    assert stages["company_opening"]["audience"] == "enterprise"
    birth = next(item for item in stages["birth"]["sub_items"] if item["code"] == "birth")
    assert birth["name_zh"] == "出生一件事"
    assert {s["code"] for s in birth["situations"]} == {s.code for s in shipped_definitions()["birth"].situations}


async def test_sub_item_example_is_accepted_by_post_cases(api, login):
    detail = (await api.get("/catalogue/birth")).json()
    assert detail["form_schema"]["properties"]["thing"] == {"const": "birth"}
    assert set(detail["form_schema"]["properties"]["answers"]["properties"]) == {"marital_status", "hukou_follow"}
    example = detail["form_example"]
    response = await api.post("/cases", json=example, headers=await login("applicant1"))
    assert response.status_code == 201, response.text
    assert response.json()["situation"] is not None


async def test_every_step_example_result_is_accepted_by_its_step(api, login, cases):
    detail = (await api.get("/catalogue/birth")).json()
    examples = {step["code"]: step for step in detail["steps"]}
    assert examples["birth_certificate"]["result_schema"]["required"] == ["certificate_no"]
    assert examples["birth_certificate"]["result_schema"]["properties"]["certificate_no"]["pattern"] == r"^[A-Z]\d{9}$"
    case = await cases.submit()
    await cases.claim(case, "birth_certificate")
    response = await api.post(
        f"/tasks/{case['case_id']}:birth_certificate/complete",
        json={"result": examples["birth_certificate"]["result_example"]},
        headers=await login("hospital_officer"),
    )
    assert response.status_code == 200, response.text


async def test_unknown_sub_item_is_404(api):
    assert_error(await api.get("/catalogue/moon_landing"), 404, "not_found")


async def test_guide_is_json_by_default_and_printable_html_on_request(api):
    guide = await api.get("/catalogue/birth/guide")
    assert guide.status_code == 200
    assert guide.json()["name_zh"] == "出生一件事"
    page = await api.get("/catalogue/birth/guide", headers={"Accept": "text/html"})
    assert page.status_code == 200 and page.headers["content-type"].startswith("text/html")
    assert "出生一件事" in page.text and "<svg" in page.text


async def test_flowchart_is_mermaid_or_svg(api):
    mermaid = await api.get("/catalogue/birth/flowchart?situation=married_father")
    assert mermaid.headers["content-type"].startswith("text/vnd.mermaid")
    assert "flowchart" in mermaid.text and "户口登记" in mermaid.text
    svg = await api.get("/catalogue/birth/flowchart", headers={"Accept": "image/svg+xml"})
    assert svg.headers["content-type"] == "image/svg+xml"
    assert ET.fromstring(svg.text).tag.endswith("svg")
    assert_error(await api.get("/catalogue/birth/flowchart?situation=nope"), 422, "validation_error", ["situation"])


async def test_data_sharing_needs_are_json_or_csv_with_chinese_headers(api):
    rows = (await api.get("/catalogue/birth/data-sharing")).json()["rows"]
    shared = {m.code for m in shipped_definitions()["birth"].materials if m.source == "data_sharing"}
    assert len(rows) == len(shared)
    table = await api.get("/catalogue/birth/data-sharing", headers={"Accept": "text/csv"})
    assert table.headers["content-type"].startswith("text/csv")
    parsed = list(csv.reader(io.StringIO(table.text.lstrip("\ufeff"))))
    assert "材料" in parsed[0][0] or "材料" in "".join(parsed[0])
    assert len(parsed) == len(shared) + 1


async def test_materials_reduction_report_counts_fewer_materials_with_the_one_thing(api):
    report = (await api.get("/catalogue/birth/materials-reduction")).json()
    married = next(item for item in report["situations"] if item["situation"] == "married_father")
    assert (married["without_count"], married["with_count"]) == (10, 1)
    assert report["sub_item"]["with_count"] < report["sub_item"]["without_count"]


# --- versions ------------------------------------------------------------------------


def _birth_v2(hukou_days: int = 2) -> dict:
    raw = shipped_definitions()["birth"].model_dump(mode="json")
    raw = copy.deepcopy(raw)
    for step in raw["steps"]:
        if step["code"] == "hukou_registration":
            step["time_limit"] = {"default": hukou_days}
    return raw


async def test_publishing_a_version_leaves_running_cases_on_theirs(api, login, cases):
    shipped = shipped_definitions()["birth"].version
    running = await cases.submit(channel="online")
    assert running["catalogue_version"] == shipped

    published = await api.post("/catalogue/birth/versions", json=_birth_v2(), headers=await login("admin"))
    assert published.status_code == 201, published.text
    assert published.json()["version"] == shipped + 1

    await cases.complete(running, "birth_certificate")
    still_v1 = await cases.read(running["case_id"])
    assert still_v1["catalogue_version"] == shipped
    assert step_of(still_v1, "hukou_registration")["time_limit_working_days"] == 1

    fresh = await cases.submit(channel="online", form=birth_form())
    assert fresh["catalogue_version"] == shipped + 1
    await cases.complete(fresh, "birth_certificate")
    assert step_of(await cases.read(fresh["case_id"]), "hukou_registration")["time_limit_working_days"] == 2


async def test_an_invalid_version_is_refused_naming_the_path(api, login):
    raw = _birth_v2()
    raw["steps"][0]["department"] = "ministry_of_magic"
    response = await api.post("/catalogue/birth/versions", json=raw, headers=await login("admin"))
    assert_error(response, 422, "validation_error", ["steps[0]"])
    versions = await api.get("/catalogue/birth/versions", headers=await login("admin"))
    assert [v["version"] for v in versions.json()] == [shipped_definitions()["birth"].version]


@pytest.mark.parametrize(
    ("path", "spoil"),
    [
        ("steps[0].code", lambda raw: raw["steps"][0].update(code="s" * 65)),  # the case records' column holds 64
        ("channels[0].code", lambda raw: raw["channels"][0].update(code="c" * 33)),  # 32
        ("form", lambda raw: raw.update(form="no_such_form")),
    ],
)
async def test_a_version_whose_codes_do_not_fit_the_records_or_whose_form_is_unknown_is_refused(
    api, login, path, spoil
):
    raw = _birth_v2()
    spoil(raw)
    response = await api.post("/catalogue/birth/versions", json=raw, headers=await login("admin"))
    assert_error(response, 422, "validation_error", [path])
    versions = await api.get("/catalogue/birth/versions", headers=await login("admin"))
    assert [v["version"] for v in versions.json()] == [shipped_definitions()["birth"].version]


async def test_only_admins_publish_and_retire(api, login):
    for user in ("applicant1", "hospital_officer", "supervisor"):
        response = await api.post("/catalogue/birth/versions", json=_birth_v2(), headers=await login(user))
        assert_error(response, 403, "forbidden")
        assert_error(await api.post("/catalogue/birth/versions/1/retire", headers=await login(user)), 403, "forbidden")
    assert_error(await api.get("/catalogue/birth/versions", headers=await login("applicant1")), 403, "forbidden")


async def test_retiring_moves_new_cases_to_the_remaining_version_and_the_last_one_stays(api, login, cases):
    admin = await login("admin")
    shipped = shipped_definitions()["birth"].version
    second, third = shipped + 1, shipped + 2
    assert (await api.post("/catalogue/birth/versions", json=_birth_v2(3), headers=admin)).status_code == 201
    assert (await api.post("/catalogue/birth/versions", json=_birth_v2(4), headers=admin)).status_code == 201
    retired = await api.post(f"/catalogue/birth/versions/{third}/retire", headers=admin)
    assert retired.status_code == 200 and retired.json()["status"] == "retired"
    assert (await cases.submit(form=birth_form()))["catalogue_version"] == second
    assert_error(await api.post(f"/catalogue/birth/versions/{third}/retire", headers=admin), 409, "conflict")
    assert (await api.post(f"/catalogue/birth/versions/{shipped}/retire", headers=admin)).status_code == 200
    assert_error(await api.post(f"/catalogue/birth/versions/{second}/retire", headers=admin), 409, "conflict")
    assert (await api.get(f"/catalogue/birth?version={third}")).json()["version"] == third

"""The application where the work is done: ``GET /cases/{case_id}`` carries the form and each
material's current status to the applicant, the accepting clerk and the departments whose
step has opened; supervisors read the form masked; staff search cases by number or name."""

from __future__ import annotations

from datetime import datetime

from domain.identity import mask_id_number
from domain.samples import FATHER_ID, MOTHER_ID, MOTHER_WITHOUT_MARRIAGE_RECORD_ID
from tests.api.helpers import PROXY, birth_form, officer_of


def _instant(text: str) -> datetime:
    return datetime.fromisoformat(text)


def _materials(case: dict) -> dict[str, dict]:
    return {material["code"]: material for material in case["materials"]}


async def test_the_applicant_reads_the_form_they_filed_in_full(cases):
    case = await cases.submit()

    read = await cases.read(case["case_id"], as_user="applicant1")

    assert read["form"]["mother"]["id_number"] == MOTHER_ID
    assert _instant(read["form"]["newborn"]["born_at"]) == _instant(case["_form"]["newborn"]["born_at"])
    assert read["form"]["applicant"]["phone"] == "13800000000"


async def test_the_accepting_clerk_reads_the_form_of_a_window_case(cases):
    case = await cases.submit(as_user="hospital_clerk", channel="hospital")

    read = await cases.read(case["case_id"], as_user="hospital_clerk")

    assert read["form"]["father"]["id_number"] == FATHER_ID


async def test_an_officer_whose_step_has_opened_reads_the_birth_date_and_id_numbers(cases):
    case = await cases.submit()
    await cases.walk_to(case, "hukou_registration")

    read = await cases.read(case["case_id"], as_user=officer_of("hukou_registration"))

    assert _instant(read["form"]["newborn"]["born_at"]) == _instant(case["_form"]["newborn"]["born_at"])
    assert read["form"]["father"]["id_number"] == FATHER_ID


async def test_an_officer_whose_step_has_not_opened_cannot_read_the_case(cases):
    case = await cases.submit()

    response = await cases.api.get(
        f"/cases/{case['case_id']}", headers=await cases.login(officer_of("hukou_registration"))
    )

    assert response.status_code == 404


async def test_a_supervisor_reads_the_form_with_id_numbers_phones_and_names_masked(cases):
    case = await cases.submit()

    read = await cases.read(case["case_id"], as_user="supervisor")

    assert read["form"]["mother"]["id_number"] == mask_id_number(MOTHER_ID)
    assert read["form"]["mother"]["id_number"] != MOTHER_ID
    assert read["form"]["applicant"]["phone"] == "138****0000"
    assert read["form"]["mother"]["name"] == "李*"
    assert read["form"]["newborn"]["name"] == case["_form"]["newborn"]["name"][0] + "**"
    assert read["form"]["newborn"]["sex"] == case["_form"]["newborn"]["sex"]  # the rest as filed


async def test_materials_show_what_was_shared_and_what_is_owed_with_the_reason(cases):
    case = await cases.submit(form=birth_form(mother_id=MOTHER_WITHOUT_MARRIAGE_RECORD_ID), proxy=PROXY)

    materials = _materials(await cases.read(case["case_id"], as_user="applicant1"))

    assert materials["registration_form"]["status"] == "received"
    assert materials["registration_form"]["status_zh"] == "已收取"
    assert materials["father_id_card"]["status"] == "shared"
    assert materials["marriage_certificate"]["status"] == "to_supply"
    assert materials["marriage_certificate"]["status_zh"] == "需补正"
    assert materials["marriage_certificate"]["reason"]
    assert materials["marriage_certificate"]["name_zh"] == "结婚证"


async def test_a_supplement_turns_owed_materials_into_received_ones(cases):
    case = await cases.submit(form=birth_form(mother_id=MOTHER_WITHOUT_MARRIAGE_RECORD_ID), proxy=PROXY)
    headers = await cases.login("applicant1")

    response = await cases.api.post(
        f"/cases/{case['case_id']}/supplements",
        json={"materials": {"marriage_certificate": "UPLOAD-MARRIAGE-0001"}},
        headers=headers,
    )
    assert response.status_code == 200, response.text

    marriage = _materials(await cases.read(case["case_id"], as_user="applicant1"))["marriage_certificate"]
    assert marriage["status"] == "received"
    assert marriage.get("reason") is None
    assert marriage["reference"] == "UPLOAD-MARRIAGE-0001"


async def test_a_step_asking_for_a_material_again_marks_it_owed_with_the_officers_reason(cases):
    case = await cases.submit()
    officer = officer_of("birth_certificate")
    await cases.claim(case, "birth_certificate")
    response = await cases.act(
        "return",
        case["case_id"],
        "birth_certificate",
        as_user=officer,
        body={"missing": ["mother_id_card"], "reason": "身份证影像不清晰"},
    )
    assert response.status_code == 200, response.text

    owed = _materials(await cases.read(case["case_id"], as_user="applicant1"))["mother_id_card"]

    assert (owed["status"], owed["reason"], owed["step"]) == ("to_supply", "身份证影像不清晰", "birth_certificate")
    assert owed["name_zh"] == "母亲居民身份证"


async def _search(cases, as_user: str, q: str) -> list[dict]:
    response = await cases.api.get("/cases", params={"q": q}, headers=await cases.login(as_user))
    assert response.status_code == 200, response.text
    items: list[dict] = response.json()["items"]
    return items


async def test_a_supervisor_finds_a_case_by_the_applicants_name(cases):
    mine = await cases.submit()
    other_form = birth_form(mother_id=MOTHER_WITHOUT_MARRIAGE_RECORD_ID)  # another mother, filed as 代办
    other_form["applicant"]["name"] = "赵敏"
    other_form["mother"]["name"] = "赵敏"
    await cases.submit(form=other_form, proxy=PROXY)

    found = await _search(cases, "supervisor", "李芳")

    assert [item["case_id"] for item in found] == [mine["case_id"]]
    assert found[0]["applicant_name"] == "李*"  # found by the name, shown masked like the ID numbers
    assert found[0]["case_no"] == mine["case_no"]


async def test_staff_find_a_case_by_its_number_or_the_digits_read_out_on_the_phone(cases):
    case = await cases.submit()
    await cases.submit()

    by_number = await _search(cases, "supervisor", case["case_no"])
    by_digits = await _search(cases, "supervisor", case["case_no"][-6:])

    assert [item["case_id"] for item in by_number] == [case["case_id"]]
    assert [item["case_id"] for item in by_digits] == [case["case_id"]]


async def test_a_search_never_reaches_beyond_the_callers_cases(cases):
    case = await cases.submit()

    assert await _search(cases, officer_of("hukou_registration"), "李芳") == []
    assert [item["case_id"] for item in await _search(cases, officer_of("birth_certificate"), "李芳")] == [
        case["case_id"]
    ]


async def test_a_search_with_like_wildcards_matches_them_literally(cases):
    await cases.submit()

    assert await _search(cases, "supervisor", "%") == []
    assert await _search(cases, "supervisor", "_") == []


async def test_a_search_with_a_control_character_is_422_naming_q(cases):
    response = await cases.api.get("/cases", params={"q": "李\x00芳"}, headers=await cases.login("supervisor"))

    assert response.status_code == 422
    assert "query.q" in response.json()["error"]["fields"]

"""Who reads which case: GET /cases/{id}, GET /cases (staff lists) and GET /cases/{id}/timeline."""

from __future__ import annotations

import pytest

from tests.api.helpers import assert_error

STEP_FIELDS = {
    "step",
    "department",
    "status",
    "opened_at",
    "due_at",
    "provisional",
    "completed_at",
    "overdue",
    "result",
}


async def _get(api, login, path: str, user: str, **params):
    return await api.get(path, params=params, headers=await login(user))


async def _listed(api, login, user: str, **params) -> list[str]:
    response = await _get(api, login, "/cases", user, **params)
    assert response.status_code == 200, response.text
    return [item["case_id"] for item in response.json()["items"]]


# --- one case ----------------------------------------------------------------------------


async def test_applicant_reads_own_case_with_the_contract_fields(api, login, cases):
    case = await cases.submit(as_user="applicant1")

    response = await _get(api, login, f"/cases/{case['case_id']}", "applicant1")

    assert response.status_code == 200, response.text
    body = response.json()
    assert {"case_id", "thing", "channel", "status", "submitted_at", "steps"} <= set(body)
    assert (body["case_id"], body["thing"], body["channel"], body["status"]) == (
        case["case_id"],
        "birth",
        "hospital",
        "accepted",
    )
    for step in body["steps"]:
        assert set(step) >= STEP_FIELDS, step


async def test_another_applicant_gets_404_for_a_case_that_is_not_theirs(api, login, cases):
    case = await cases.submit(as_user="applicant1")

    theirs = await _get(api, login, f"/cases/{case['case_id']}", "applicant2")
    unknown = await _get(api, login, "/cases/ot-00000000000000000000", "applicant2")

    assert_error(theirs, 404, "not_found")
    assert theirs.json() == unknown.json()  # nothing tells a stranger the case exists


async def test_officer_of_a_department_with_an_open_step_sees_the_case(api, login, cases):
    case = await cases.submit()

    response = await _get(api, login, f"/cases/{case['case_id']}", "hospital_officer")

    assert response.status_code == 200, response.text
    assert response.json()["case_id"] == case["case_id"]


async def test_police_see_the_case_once_their_step_has_opened(api, login, cases):
    case = await cases.submit()
    path = f"/cases/{case['case_id']}"

    assert_error(await _get(api, login, path, "police_officer"), 404, "not_found")
    assert case["case_id"] not in await _listed(api, login, "police_officer")
    await cases.walk_to(case, "hukou_registration")

    assert (await _get(api, login, path, "police_officer")).status_code == 200
    assert case["case_id"] in await _listed(api, login, "police_officer")


async def test_officer_of_a_department_not_involved_gets_404(api, login, cases):
    case = await cases.submit(channel="hospital")

    response = await _get(api, login, f"/cases/{case['case_id']}", "service_center_officer")

    assert_error(response, 404, "not_found")


async def test_clerk_sees_the_cases_accepted_at_their_window_only(api, login, cases):
    case = await cases.submit(as_user="applicant1", channel="hospital")

    assert (await _get(api, login, f"/cases/{case['case_id']}", "hospital_clerk")).status_code == 200
    assert_error(await _get(api, login, f"/cases/{case['case_id']}", "service_center_clerk"), 404, "not_found")


async def test_supervisor_and_admin_see_every_case(api, login, cases):
    mine = await cases.submit(as_user="applicant1", channel="online")
    theirs = await cases.submit(as_user="applicant2", channel="hospital")

    for user in ("supervisor", "admin"):
        for case in (mine, theirs):
            assert (await _get(api, login, f"/cases/{case['case_id']}", user)).status_code == 200


# --- lists -------------------------------------------------------------------------------


async def test_an_applicant_lists_only_their_own_cases(api, login, cases):
    mine = await cases.submit(as_user="applicant1")
    await cases.submit(as_user="applicant2")

    assert await _listed(api, login, "applicant1") == [mine["case_id"]]


async def test_officers_list_only_cases_involving_their_department(api, login, cases):
    reached_police = await cases.submit()
    await cases.walk_to(reached_police, "hukou_registration")
    hospital_only = await cases.submit()

    assert await _listed(api, login, "police_officer") == [reached_police["case_id"]]
    assert set(await _listed(api, login, "hospital_officer")) == {reached_police["case_id"], hospital_only["case_id"]}
    assert await _listed(api, login, "service_center_officer") == []


async def test_supervisor_lists_every_case_newest_first(api, login, cases):
    first = await cases.submit(as_user="applicant1", channel="online")
    second = await cases.submit(as_user="applicant2", channel="hospital")
    third = await cases.submit(as_user="hospital_clerk", channel="hospital")

    response = await _get(api, login, "/cases", "supervisor")

    body = response.json()
    assert [item["case_id"] for item in body["items"]] == [third["case_id"], second["case_id"], first["case_id"]]
    assert body["total"] == 3
    assert body["items"][0]["accepting_unit"] == "hospital"
    assert body["items"][2]["accepting_unit"] is None


async def test_case_lists_filter_by_status(api, login, cases):
    done = await cases.submit(channel="online")
    await cases.finish(done)
    open_case = await cases.submit()

    assert await _listed(api, login, "supervisor", status="completed") == [done["case_id"]]
    assert await _listed(api, login, "supervisor", status="accepted") == [open_case["case_id"]]
    assert await _listed(api, login, "supervisor", status="refused") == []


async def test_case_lists_filter_by_thing(api, login, cases):
    case = await cases.submit()

    assert await _listed(api, login, "supervisor", thing="birth") == [case["case_id"]]
    assert await _listed(api, login, "supervisor", thing="death") == []


async def test_case_lists_filter_by_department(api, login, cases):
    reached_police = await cases.submit()
    await cases.walk_to(reached_police, "hukou_registration")
    await cases.submit()

    assert await _listed(api, login, "supervisor", department="police") == [reached_police["case_id"]]
    assert len(await _listed(api, login, "supervisor", department="hospital")) == 2


async def test_case_lists_are_paginated(api, login, cases):
    submitted = [(await cases.submit())["case_id"] for _ in range(3)]

    page_one = (await _get(api, login, "/cases", "supervisor", limit=2, offset=0)).json()
    page_two = (await _get(api, login, "/cases", "supervisor", limit=2, offset=2)).json()

    assert (page_one["total"], page_one["limit"], page_one["offset"]) == (3, 2, 0)
    assert (page_two["total"], page_two["limit"], page_two["offset"]) == (3, 2, 2)
    seen = [item["case_id"] for item in page_one["items"] + page_two["items"]]
    assert len(page_one["items"]) == 2 and len(page_two["items"]) == 1
    assert sorted(seen) == sorted(submitted)


@pytest.mark.parametrize("params", [{"limit": 0}, {"limit": 201}, {"offset": -1}])
async def test_out_of_range_pagination_is_422(api, login, params):
    response = await _get(api, login, "/cases", "supervisor", **params)

    assert_error(response, 422, "validation_error")


# --- the timeline's readers ----------------------------------------------------------------


async def test_applicant_cannot_read_the_timeline_of_their_own_case(api, login, cases):
    case = await cases.submit(as_user="applicant1")

    response = await _get(api, login, f"/cases/{case['case_id']}/timeline", "applicant1")

    assert_error(response, 403, "forbidden")


async def test_stranger_gets_404_for_a_timeline(api, login, cases):
    case = await cases.submit(as_user="applicant1")

    assert_error(await _get(api, login, f"/cases/{case['case_id']}/timeline", "applicant2"), 404, "not_found")
    assert_error(
        await _get(api, login, f"/cases/{case['case_id']}/timeline", "service_center_officer"), 404, "not_found"
    )


async def test_staff_of_the_case_read_its_timeline(api, login, cases):
    case = await cases.submit()

    for user in ("hospital_officer", "hospital_clerk", "supervisor"):
        response = await _get(api, login, f"/cases/{case['case_id']}/timeline", user)
        assert response.status_code == 200, (user, response.text)
        assert response.json()["case_id"] == case["case_id"]


async def test_timeline_of_an_unknown_case_is_404(api, login):
    response = await _get(api, login, "/cases/ot-00000000000000000000/timeline", "supervisor")

    assert_error(response, 404, "not_found")

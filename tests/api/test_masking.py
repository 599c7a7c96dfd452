"""ID numbers and phones in API responses: in full for the case's applicant, its accepting
clerk and the departments whose step has opened; masked for supervisors, admins and anyone
else — in case reads, timelines, task answers, complaints and CSV exports."""

from __future__ import annotations

import csv
import io

import httpx

from domain.identity import mask_id_number
from tests.api.helpers import Cases, Login, result_for, step_of

PHONE = "13912345678"
MASKED_PHONE = "139****5678"
FULL_READERS = ["applicant1", "hospital_clerk", "hospital_officer", "police_officer"]
MASKED_READERS = ["supervisor", "admin"]


async def get(api: httpx.AsyncClient, login: Login, path: str, user: str, **headers: str) -> httpx.Response:
    response = await api.get(path, headers={**await login(user), **headers})
    assert response.status_code == 200, f"{user}: {response.text}"
    return response


async def registered_case(cases: Cases) -> tuple[dict, str]:
    """A hospital-channel case whose hukou step is done: its result carries the newborn's ID number."""
    case = await cases.submit()
    await cases.walk_to(case, "hukou_registration")
    await cases.claim(case, "hukou_registration")
    result = result_for("hukou_registration", case["_form"])
    done = await cases.act(
        "complete", case["case_id"], "hukou_registration", as_user="police_officer", body={"result": result}
    )
    assert done.status_code == 200, done.text
    assert done.json()["result"]["citizen_id_number"] == result["citizen_id_number"]  # the acting officer
    return case, result["citizen_id_number"]


async def test_a_newborns_id_number_is_full_for_the_parties_and_masked_for_supervisors_and_admins(
    api, login, cases: Cases
):
    case, newborn_id = await registered_case(cases)
    path = f"/cases/{case['case_id']}"

    for user in FULL_READERS:
        body = (await get(api, login, path, user)).json()
        assert step_of(body, "hukou_registration")["result"]["citizen_id_number"] == newborn_id, user
    for user in MASKED_READERS:
        response = await get(api, login, path, user)
        assert step_of(response.json(), "hukou_registration")["result"]["citizen_id_number"] == mask_id_number(
            newborn_id
        ), user
        assert newborn_id not in response.text, user


async def test_a_department_whose_step_has_not_opened_cannot_read_the_case_at_all(api, login, cases: Cases):
    case, _ = await registered_case(cases)

    response = await api.get(f"/cases/{case['case_id']}", headers=await login("hr_social_security_officer"))

    assert response.status_code == 404


async def test_a_phone_typed_into_a_return_reason_is_masked_in_the_supervisors_timeline(api, login, cases: Cases):
    case = await cases.submit()
    await cases.claim(case, "birth_certificate")
    reason = f"出生证明信息需核对，请申请人回电{PHONE}"
    returned = await cases.act(
        "return",
        case["case_id"],
        "birth_certificate",
        as_user="hospital_officer",
        body={"missing": ["mother_id_card"], "reason": reason},
    )
    assert returned.status_code == 200, returned.text
    path = f"/cases/{case['case_id']}/timeline"

    def reasons(response: httpx.Response) -> list[str]:
        return [event["detail"]["reason"] for event in response.json()["events"] if event["type"] == "returned"]

    assert reasons(await get(api, login, path, "hospital_officer")) == [reason]
    assert reasons(await get(api, login, path, "hospital_clerk")) == [reason]
    for user in MASKED_READERS:
        response = await get(api, login, path, user)
        assert reasons(response) == [f"出生证明信息需核对，请申请人回电{MASKED_PHONE}"], user
        assert PHONE not in response.text


async def test_a_refusal_reason_in_the_case_is_masked_for_supervisors(api, login, cases: Cases):
    case = await cases.submit()
    await cases.claim(case, "birth_certificate")
    refused = await cases.act(
        "refuse",
        case["case_id"],
        "birth_certificate",
        as_user="hospital_officer",
        body={"reason": f"重复申请，联系电话{PHONE}"},
    )
    assert refused.status_code == 200, refused.text
    path = f"/cases/{case['case_id']}"

    owner = step_of((await get(api, login, path, "applicant1")).json(), "birth_certificate")
    supervisor = step_of((await get(api, login, path, "supervisor")).json(), "birth_certificate")

    assert owner["result"] == {"reason": f"重复申请，联系电话{PHONE}"}
    assert supervisor["result"] == {"reason": f"重复申请，联系电话{MASKED_PHONE}"}


async def test_a_complaints_contact_phone_is_full_for_complainant_and_answering_officer_only(api, login, cases: Cases):
    case = await cases.submit()
    content = f"出生医学证明迟迟未办，请尽快回电{PHONE}。"
    filed = await api.post(
        "/complaints",
        json={"case_id": case["case_id"], "step": "birth_certificate", "content": content},
        headers=await login("applicant1"),
    )
    assert filed.status_code == 201, filed.text
    assert filed.json()["content"] == content
    complaint_id = filed.json()["complaint_id"]
    assigned = await api.post(
        f"/complaints/{complaint_id}/assign", json={"department": "hospital"}, headers=await login("supervisor")
    )
    assert assigned.status_code == 200, assigned.text
    assert PHONE not in assigned.text  # the supervisor's own answer is masked too

    masked_content = f"出生医学证明迟迟未办，请尽快回电{MASKED_PHONE}。"
    for user, expected in [
        ("applicant1", content),
        ("hospital_officer", content),
        ("supervisor", masked_content),
        ("admin", masked_content),
    ]:
        read = (await get(api, login, f"/complaints/{complaint_id}", user)).json()
        listed = (await get(api, login, "/complaints", user)).json()["items"]
        assert read["content"] == expected, user
        assert [item["content"] for item in listed] == [expected], user


async def test_supervision_notices_are_masked_for_supervisors_in_json_and_csv(api, login, cases: Cases):
    case = await cases.submit()
    message = f"申请人来电{PHONE}催问进度，请加快办理"
    issued = await api.post(
        "/supervision/notices",
        json={"case_id": case["case_id"], "step": "birth_certificate", "message": message},
        headers=await login("supervisor"),
    )
    assert issued.status_code == 201, issued.text
    masked_message = f"申请人来电{MASKED_PHONE}催问进度，请加快办理"

    department = (await get(api, login, "/notices", "hospital_officer")).json()["items"]
    listed = (await get(api, login, "/supervision/notices", "supervisor")).json()["items"]
    exported = await get(api, login, "/supervision/notices", "admin", Accept="text/csv")

    assert [item["message_zh"] for item in department] == [message]
    assert [item["message_zh"] for item in listed] == [masked_message]
    rows = list(csv.DictReader(io.StringIO(exported.text.lstrip("\ufeff"))))
    assert [row["督办内容"] for row in rows] == [masked_message]
    assert PHONE not in exported.text

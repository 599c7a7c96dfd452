"""行政区划 routing (issue 14): each step of a case goes to the competent unit, chosen at acceptance
from the catalogue's route and the application (户口登记 → the police of the hukou county); officers
see and act on their own unit's tasks only, another unit's task or case being 404 (its existence is
not revealed); a step with no unit means the case is not accepted; the window's unit is on the
acceptance notice."""

from __future__ import annotations

from typing import Any

from sqlalchemy import func, select
from sqlmodel import Session

from models.tables import AuditRecord, CaseRecord
from tests.api.console_client import console_users
from tests.api.helpers import assert_error, birth_form, step_of, task_id

HANGZHOU_SHANGCHENG = "330102"
NINGBO_HAISHU = "330203"


def _form_with_hukou(division: str) -> dict[str, Any]:
    form = birth_form()
    form["hukou"]["division_code"] = division
    return form


async def _inbox_task_ids(api, login, user: str) -> set[str]:
    response = await api.get("/tasks", headers=await login(user))
    assert response.status_code == 200, response.text
    return {item["task_id"] for item in response.json()["items"]}


def _count(engine, table) -> int:
    with Session(engine) as session:
        return int(session.execute(select(func.count()).select_from(table)).scalar_one())


async def test_cases_of_two_hukou_divisions_land_in_two_police_inboxes_and_neither_officer_sees_the_other(
    api, login, cases, engine
):
    hangzhou = await cases.submit(form=_form_with_hukou(HANGZHOU_SHANGCHENG))
    ningbo = await cases.submit(form=_form_with_hukou(NINGBO_HAISHU))
    for case in (hangzhou, ningbo):
        await cases.walk_to(case, "hukou_registration")
    hangzhou_task = task_id(hangzhou["case_id"], "hukou_registration")
    ningbo_task = task_id(ningbo["case_id"], "hukou_registration")

    shangcheng_inbox = await _inbox_task_ids(api, login, "police_330102_officer")
    haishu_inbox = await _inbox_task_ids(api, login, "police_330203_officer")

    assert hangzhou_task in shangcheng_inbox and ningbo_task not in shangcheng_inbox
    assert ningbo_task in haishu_inbox and hangzhou_task not in haishu_inbox
    # The demo police_officer is the 上城区 unit's officer, as before units.
    assert await _inbox_task_ids(api, login, "police_officer") == shangcheng_inbox

    # Another unit's case and task are not found, as a stranger's would be.
    other_case = await api.get(f"/cases/{ningbo['case_id']}", headers=await login("police_330102_officer"))
    assert_error(other_case, 404, "not_found")
    audit_rows = _count(engine, AuditRecord)
    claim = await cases.act("claim", ningbo["case_id"], "hukou_registration", as_user="police_330102_officer")
    assert_error(claim, 404, "not_found")
    async with console_users(api) as browser:
        page = await (await browser("police_330102_officer")).get(f"/inbox/{ningbo_task}")
    assert page.status == 404

    # Nothing was written by the refused claim: still open, unassigned, no audit row.
    step = step_of(await cases.read(ningbo["case_id"]), "hukou_registration")
    assert (step["status"], step["assignee"]) == ("open", None)
    assert _count(engine, AuditRecord) == audit_rows

    # The competent officer works it, and the task page names the unit.
    own = await cases.act("claim", ningbo["case_id"], "hukou_registration", as_user="police_330203_officer")
    assert own.status_code == 200, own.text
    async with console_users(api) as browser:
        haishu = await browser("police_330203_officer")
        page = await haishu.get(f"/inbox/{ningbo_task}")
        inbox = await haishu.get("/inbox")
    assert page.status == 200 and page.text("task-unit") == "宁波市海曙区公安分局"
    assert inbox.text("inbox-unit") == "宁波市海曙区公安分局"
    listed = {row.attrs["data-task-id"] for row in inbox.all("task-row")}
    assert ningbo_task in listed and hangzhou_task not in listed
    seen = await api.get(f"/cases/{ningbo['case_id']}", headers=await login("police_330203_officer"))
    assert seen.status_code == 200


async def test_each_step_shows_the_unit_it_was_routed_to(api, login, cases):
    case = await cases.submit(form=_form_with_hukou(NINGBO_HAISHU))

    read = await cases.read(case["case_id"])

    police = step_of(read, "hukou_registration")["unit"]
    assert police == {
        "code": "police_330203",
        "name_zh": "宁波市海曙区公安分局",
        "division_code": NINGBO_HAISHU,
        "window_zh": police.get("window_zh"),
    }
    # The hospital steps follow the birthplace (杭州市上城区 in the sample form).
    hospital = step_of(read, "birth_certificate")["unit"]
    assert hospital["division_code"] == HANGZHOU_SHANGCHENG and hospital["code"].startswith("hospital_")
    # Medical security and HR follow the hukou county too.
    assert step_of(read, "medical_insurance_enrollment")["unit"]["code"] == "medical_security_330203"
    assert step_of(read, "social_security_card")["unit"]["code"] == "hr_social_security_330203"


async def test_a_county_without_a_police_unit_cannot_accept_the_case_and_nothing_starts(cases, engine):
    before = _count(engine, CaseRecord)
    # 桐庐县: a current county of the province, but no unit has been set up there.
    response = await cases.post(form=_form_with_hukou("330122"))

    error = assert_error(response, 422, "validation_error", ["form.hukou.division_code"])
    assert "桐庐县" in error["fields"]["form.hukou.division_code"]
    assert _count(engine, CaseRecord) == before


async def test_a_window_case_names_the_windows_unit_and_only_that_window_sees_it(api, login, cases):
    case = await cases.submit(
        form=_form_with_hukou(NINGBO_HAISHU), channel="service_center", as_user="service_center_330203_clerk"
    )

    notice = case["acceptance_notice"]
    assert notice["accepting_unit_code"] == "service_center_330203"
    assert notice["accepting_unit_zh"].startswith("宁波市海曙区")
    own = await api.get(f"/cases/{case['case_id']}", headers=await login("service_center_330203_clerk"))
    assert own.status_code == 200, own.text
    other_window = await api.get(f"/cases/{case['case_id']}", headers=await login("service_center_clerk"))
    assert_error(other_window, 404, "not_found")


async def test_the_printed_notice_names_each_steps_unit_and_marks_a_provisional_due_date(api, cases, engine):
    case = await cases.submit(
        form=_form_with_hukou(NINGBO_HAISHU), channel="service_center", as_user="service_center_330203_clerk"
    )
    # A due date reaching into a year whose holiday notice is not loaded is 暂定 (set on the stored case:
    # whether today's deadlines reach such a year depends on the date the suite runs).
    with Session(engine) as session:
        record = session.get(CaseRecord, case["case_id"])
        assert record is not None
        snapshot = dict(record.snapshot)
        snapshot["steps"] = [{**step, "provisional": step["step"] == "birth_certificate"} for step in snapshot["steps"]]
        record.snapshot = snapshot
        session.add(record)
        session.commit()

    async with console_users(api) as browser:
        clerk = await browser("service_center_330203_clerk")
        page = await clerk.get(f"/window/cases/{case['case_id']}/notice")

    assert page.status == 200, page.html
    rows = {row.attrs["data-step"]: " ".join(row.text.split()) for row in page.all("notice-step")}
    assert "（暂定）" in rows["birth_certificate"]
    assert "宁波市海曙区公安分局" in rows["hukou_registration"]
    assert "宁波市海曙区" in page.text("window")


async def test_a_notice_about_another_units_task_is_not_in_the_officers_list_and_cannot_be_acknowledged(
    api, login, cases
):
    ningbo = await cases.submit(form=_form_with_hukou(NINGBO_HAISHU))
    await cases.walk_to(ningbo, "hukou_registration")
    issued = await api.post(
        "/supervision/notices",
        json={"case_id": ningbo["case_id"], "step": "hukou_registration", "message": "请加快办理户口登记"},
        headers=await login("supervisor"),
    )
    assert issued.status_code == 201, issued.text

    async def notice_ids(user: str) -> set[str]:
        response = await api.get("/notices", headers=await login(user))
        assert response.status_code == 200, response.text
        return {item["notice_id"] for item in response.json()["items"] if item["case_id"] == ningbo["case_id"]}

    haishu = await notice_ids("police_330203_officer")
    assert len(haishu) == 1 and await notice_ids("police_330102_officer") == set()
    (notice_id,) = haishu
    elsewhere = await api.post(
        f"/notices/{notice_id}/ack", json={"reply": "已办"}, headers=await login("police_330102_officer")
    )
    assert_error(elsewhere, 404, "not_found")
    own = await api.post(
        f"/notices/{notice_id}/ack", json={"reply": "已加派人手"}, headers=await login("police_330203_officer")
    )
    assert own.status_code == 200, own.text

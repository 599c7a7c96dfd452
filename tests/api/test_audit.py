"""The audit log: every staff action that succeeded, once per request, readable by admins
at GET /audit (filtered, paginated), never changed afterwards."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import pytest
from sqlalchemy import select, text
from sqlalchemy.exc import DBAPIError
from sqlmodel import Session

from domain.catalogue import shipped_definitions
from models.tables import AuditRecord
from services.audit import AUDIT_ACTION_ZH, AuditAction
from tests.api.helpers import Cases, Login, assert_error, birth_form, result_for, task_id

MOTHER_ID = "330102199003070027"


async def audit(api: httpx.AsyncClient, login: Login, **params: Any) -> dict[str, Any]:
    response = await api.get("/audit", params=params, headers=await login("admin"))
    assert response.status_code == 200, response.text
    body: dict[str, Any] = response.json()
    return body


def summary(body: dict[str, Any]) -> list[tuple[str, str, str | None]]:
    return [(item["action"], item["actor"], item["target"]) for item in body["items"]]


async def test_each_task_action_is_audited_with_actor_role_unit_time_and_case(api, login, cases: Cases):
    before = datetime.now(UTC)
    case = await cases.submit()
    case_id = case["case_id"]
    await cases.complete(case, "birth_certificate")
    await cases.claim(case, "vaccination_certificate")
    returned = await cases.act(
        "return",
        case_id,
        "vaccination_certificate",
        as_user="hospital_officer",
        body={"missing": ["mother_id_card"], "reason": "证件模糊"},
    )
    assert returned.status_code == 200, returned.text

    body = await audit(api, login, case_id=case_id)

    assert summary(body) == [
        ("task_claim", "hospital_officer", task_id(case_id, "birth_certificate")),
        ("task_complete", "hospital_officer", task_id(case_id, "birth_certificate")),
        ("task_claim", "hospital_officer", task_id(case_id, "vaccination_certificate")),
        ("task_return", "hospital_officer", task_id(case_id, "vaccination_certificate")),
    ]
    first = body["items"][0]
    assert (first["role"], first["unit"], first["case_id"], first["action_zh"]) == (
        "officer",
        "hospital",
        case_id,
        "签收",
    )
    assert all(before <= datetime.fromisoformat(item["at"]) <= datetime.now(UTC) for item in body["items"])
    assert body["items"][3]["detail"] == {
        "step": "vaccination_certificate",
        "missing": ["mother_id_card"],
        "reason": "证件模糊",
    }
    assert body["total"] == 4


async def test_a_completion_is_audited_without_the_results_personal_values(api, login, cases: Cases):
    case = await cases.submit()
    await cases.walk_to(case, "hukou_registration")
    result = result_for("hukou_registration", case["_form"])
    await cases.claim(case, "hukou_registration")
    response = await cases.act(
        "complete", case["case_id"], "hukou_registration", as_user="police_officer", body={"result": result}
    )
    assert response.status_code == 200, response.text

    body = await audit(api, login, case_id=case["case_id"], action="task_complete", actor="police_officer")

    assert [item["detail"] for item in body["items"]] == [{"step": "hukou_registration"}]
    assert result["citizen_id_number"] not in str(body)


async def test_a_refusal_is_audited_with_its_reason_masked(api, login, cases: Cases):
    case = await cases.submit()
    await cases.claim(case, "birth_certificate")
    refused = await cases.act(
        "refuse",
        case["case_id"],
        "birth_certificate",
        as_user="hospital_officer",
        body={"reason": f"出生医学证明已由他院签发，母亲身份证{MOTHER_ID}"},
    )
    assert refused.status_code == 200, refused.text

    (entry,) = (await audit(api, login, case_id=case["case_id"], action="task_refuse"))["items"]

    assert entry["detail"]["reason"] == "出生医学证明已由他院签发，母亲身份证330102********0027"


async def test_a_request_retried_with_the_same_idempotency_key_is_audited_once(api, login, cases: Cases):
    case = await cases.submit()
    for _ in range(2):
        claimed = await cases.act("claim", case["case_id"], "birth_certificate", as_user="hospital_officer", key="k1")
        assert claimed.status_code == 200, claimed.text
    result = {"result": result_for("birth_certificate", case["_form"])}
    for _ in range(2):
        done = await cases.act(
            "complete", case["case_id"], "birth_certificate", as_user="hospital_officer", body=result, key="k1"
        )
        assert done.status_code == 200, done.text

    assert [action for action, _, _ in summary(await audit(api, login, case_id=case["case_id"]))] == [
        "task_claim",
        "task_complete",
    ]


async def test_applicants_own_actions_are_not_staff_actions_but_a_clerks_acceptance_is(api, login, cases: Cases):
    own = await cases.submit(as_user="applicant1")
    window = await cases.submit(as_user="hospital_clerk", key="window-1")
    again = await cases.post(as_user="hospital_clerk", key="window-1", form=window["_form"])
    assert again.status_code == 200, again.text

    assert (await audit(api, login, case_id=own["case_id"]))["items"] == []
    assert summary(await audit(api, login, case_id=window["case_id"])) == [
        ("case_accept", "hospital_clerk", window["case_id"])
    ]


async def test_a_clerk_supplying_materials_is_audited_and_the_applicant_supplying_is_not(api, login, cases: Cases):
    supplied: dict[str, str] = {}
    for user in ("hospital_clerk", "applicant1"):
        case = await cases.submit()
        await cases.claim(case, "birth_certificate")
        body = {"missing": ["mother_id_card"], "reason": "证件模糊"}
        returned = await cases.act(
            "return", case["case_id"], "birth_certificate", as_user="hospital_officer", body=body
        )
        assert returned.status_code == 200, returned.text
        response = await api.post(
            f"/cases/{case['case_id']}/supplements",
            json={"materials": {"mother_id_card": "身份证复印件"}},
            headers=await login(user),
        )
        assert response.status_code == 200, response.text
        supplied[user] = case["case_id"]

    by_clerk = await audit(api, login, case_id=supplied["hospital_clerk"], action="case_supplement")
    by_applicant = await audit(api, login, case_id=supplied["applicant1"], action="case_supplement")

    assert [(item["actor"], item["detail"]) for item in by_clerk["items"]] == [
        ("hospital_clerk", {"materials": ["mother_id_card"]})
    ]
    assert by_applicant["items"] == []


async def test_supervision_notice_urge_and_acknowledgement_are_audited(api, login, cases: Cases):
    case = await cases.submit()
    await cases.claim(case, "birth_certificate")
    supervisor = await login("supervisor")
    for path in ("/supervision/notices", "/supervision/urges"):
        response = await api.post(
            path,
            json={"case_id": case["case_id"], "step": "birth_certificate", "message": "请加快办理"},
            headers=supervisor,
        )
        assert response.status_code == 201, response.text
    hospital = await login("hospital_officer")
    (notice,) = (await api.get("/notices", headers=hospital)).json()["items"]
    acked = await api.post(f"/notices/{notice['notice_id']}/ack", json={"reply": "已加派人手"}, headers=hospital)
    assert acked.status_code == 200, acked.text

    body = await audit(api, login, case_id=case["case_id"])

    target = task_id(case["case_id"], "birth_certificate")
    assert summary(body)[1:] == [
        ("supervision_notice", "supervisor", target),
        ("supervision_urge", "supervisor", target),
        ("notice_acknowledge", "hospital_officer", notice["notice_id"]),
    ]
    assert [item["action_zh"] for item in body["items"][1:]] == ["督办", "催办", "督办签收"]


async def test_catalogue_publish_and_retire_are_audited_without_a_case(api, login):
    admin = await login("admin")
    raw = shipped_definitions()["death"].model_dump(mode="json")
    assert (await api.post("/catalogue/death/versions", json=raw, headers=admin)).status_code == 201
    assert (await api.post("/catalogue/death/versions/1/retire", headers=admin)).status_code == 200

    body = await audit(api, login, actor="admin")

    assert [(item["action"], item["case_id"], item["target"], item["detail"]) for item in body["items"]] == [
        ("catalogue_publish", None, "death@2", {"thing": "death", "version": 2}),
        ("catalogue_retire", None, "death@1", {"thing": "death", "version": 1}),
    ]


async def test_complaint_actions_by_staff_are_audited_and_the_applicants_filing_is_not(api, login, cases: Cases):
    case = await cases.submit()
    filed = await api.post(
        "/complaints",
        json={
            "case_id": case["case_id"],
            "step": "birth_certificate",
            "content": "出生医学证明办理超时，窗口答复不清。",
        },
        headers=await login("applicant1"),
    )
    assert filed.status_code == 201, filed.text
    complaint_id = filed.json()["complaint_id"]
    by_clerk = await api.post(
        "/complaints",
        json={"case_id": case["case_id"], "content": "窗口代群众投诉：办理进度无人告知。"},
        headers=await login("hospital_clerk"),
    )
    assert by_clerk.status_code == 201, by_clerk.text
    supervisor = await login("supervisor")
    steps = [
        ("assign", supervisor, {"department": "hospital", "note": "请医院核实"}),
        ("answer", await login("hospital_officer"), {"answer": "已核实并向申请人致歉，证明已签发。"}),
        ("close", supervisor, {"satisfied": True}),
    ]
    for action, headers, payload in steps:
        response = await api.post(f"/complaints/{complaint_id}/{action}", json=payload, headers=headers)
        assert response.status_code == 200, response.text

    body = await audit(api, login, case_id=case["case_id"])

    assert summary(body) == [
        ("complaint_file", "hospital_clerk", by_clerk.json()["complaint_id"]),
        ("complaint_assign", "supervisor", complaint_id),
        ("complaint_answer", "hospital_officer", complaint_id),
        ("complaint_close", "supervisor", complaint_id),
    ]
    assert body["items"][1]["detail"] == {"department": "hospital", "note": "请医院核实"}
    assert body["items"][3]["detail"] == {"satisfied": True}


async def test_the_log_is_filtered_by_actor_action_and_time_and_paginated(api, login, cases: Cases):
    first = await cases.submit()
    await cases.complete(first, "birth_certificate")
    middle = datetime.now(UTC)
    second = await cases.submit()
    await cases.complete(second, "birth_certificate")
    await cases.complete(second, "vaccination_certificate")

    everything = await audit(api, login)
    claims = await audit(api, login, action="task_claim")
    later = await audit(api, login, **{"from": middle.isoformat()})
    earlier = await audit(api, login, to=middle.isoformat())
    page = await audit(api, login, limit=2, offset=2)
    nobody = await audit(api, login, actor="police_officer")

    assert everything["total"] == 6
    assert [item["action"] for item in claims["items"]] == ["task_claim"] * 3
    assert {item["case_id"] for item in later["items"]} == {second["case_id"]}
    assert {item["case_id"] for item in earlier["items"]} == {first["case_id"]}
    assert (page["total"], page["limit"], page["offset"]) == (6, 2, 2)
    assert [item["id"] for item in page["items"]] == [item["id"] for item in everything["items"][2:4]]
    assert nobody["items"] == [] and nobody["total"] == 0


async def test_a_time_without_an_offset_is_beijing_time(api, login, cases: Cases):
    case = await cases.submit()
    await cases.claim(case, "birth_certificate")
    beijing_now = datetime.now(UTC) + timedelta(hours=8)
    an_hour_ago = (beijing_now - timedelta(hours=1)).replace(tzinfo=None).isoformat(timespec="seconds")
    in_an_hour = (beijing_now + timedelta(hours=1)).replace(tzinfo=None).isoformat(timespec="seconds")

    assert (await audit(api, login, **{"from": an_hour_ago, "to": in_an_hour}))["total"] == 1
    assert (await audit(api, login, to=an_hour_ago))["total"] == 0


async def test_only_admins_read_the_audit_log(api, login):
    assert_error(await api.get("/audit"), 401, "unauthorized")
    for user in ("applicant1", "hospital_clerk", "hospital_officer", "supervisor"):
        assert_error(await api.get("/audit", headers=await login(user)), 403, "forbidden")
    assert_error(
        await api.get("/audit?action=delete_everything", headers=await login("admin")), 422, "validation_error"
    )


def test_every_audited_action_has_a_chinese_label():
    assert set(AUDIT_ACTION_ZH) == set(AuditAction)


async def test_recorded_actions_can_be_neither_changed_nor_deleted(api, login, cases: Cases, engine):
    case = await cases.submit()
    await cases.claim(case, "birth_certificate")

    with Session(engine) as session:
        record = session.execute(select(AuditRecord)).scalars().one()
        record.actor = "someone_else"
        with pytest.raises(PermissionError):
            session.commit()
        session.rollback()
        with pytest.raises(PermissionError):
            session.delete(session.execute(select(AuditRecord)).scalars().one())
            session.commit()

    assert summary(await audit(api, login)) == [
        ("task_claim", "hospital_officer", task_id(case["case_id"], "birth_certificate"))
    ]


async def test_the_database_itself_refuses_to_change_or_delete_audit_rows(api, login, cases: Cases, engine):
    # Past the ORM too: a client writing plain SQL is refused by the table's triggers.
    case = await cases.submit()
    await cases.claim(case, "birth_certificate")

    for statement in ("UPDATE audit_log SET actor = 'someone_else'", "DELETE FROM audit_log"):
        with engine.connect() as connection, pytest.raises(DBAPIError, match="append-only"):
            connection.execute(text(statement))

    assert summary(await audit(api, login)) == [
        ("task_claim", "hospital_officer", task_id(case["case_id"], "birth_certificate"))
    ]


async def test_each_audit_row_names_the_staff_members_unit_and_is_found_by_it(api, login, cases: Cases):
    hangzhou = await cases.submit()
    ningbo = await cases.submit(form=birth_form_in("330203"))
    for case in (hangzhou, ningbo):
        await cases.walk_to(case, "hukou_registration")
    await cases.claim(hangzhou, "hukou_registration", "police_330102_officer")
    await cases.claim(ningbo, "hukou_registration", "police_330203_officer")

    haishu = await audit(api, login, unit_code="police_330203")

    assert summary(haishu) == [
        ("task_claim", "police_330203_officer", task_id(ningbo["case_id"], "hukou_registration"))
    ]
    (row,) = haishu["items"]
    assert (row["unit"], row["unit_code"], row["unit_zh"]) == ("police", "police_330203", "宁波市海曙区公安分局")
    shangcheng = await audit(api, login, case_id=hangzhou["case_id"], action="task_claim")
    police = [item for item in shangcheng["items"] if item["unit"] == "police"]
    assert [item["unit_code"] for item in police] == ["police_330102"]


def birth_form_in(county: str) -> dict[str, Any]:
    form = birth_form()
    form["hukou"]["division_code"] = county
    return form

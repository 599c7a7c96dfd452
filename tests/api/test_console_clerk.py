"""The window clerk's console pages (一窗受理): intake at the clerk's own window and the
printable 受理通知书."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
from sqlalchemy import Engine, select
from sqlmodel import Session, col

from domain.samples import sample_birth_form
from models.tables import AuditRecord, CaseRecord
from tests.api.console_access_rows import console_login, csrf_of, field_error, flat_form, idempotency_key_of
from tests.api.helpers import Cases, Login

MARRIED_FATHER = {"marital_status": "married", "hukou_follow": "father"}


def _birth_form() -> dict[str, Any]:
    return sample_birth_form(born_at=datetime.now(UTC) - timedelta(days=2))


async def _window_form_data(api: httpx.AsyncClient, form: dict[str, Any]) -> dict[str, str]:
    page = await api.get("/window/apply/birth", params=MARRIED_FATHER)
    assert page.status_code == 200, page.text
    return {
        **flat_form(form),
        **{f"answer.{code}": value for code, value in MARRIED_FATHER.items()},
        "csrf_token": csrf_of(page.text),
        "idempotency_key": idempotency_key_of(page.text),
    }


def _accepted_by(engine: Engine, unit: str) -> list[CaseRecord]:
    with Session(engine) as session:
        return list(session.execute(select(CaseRecord).where(col(CaseRecord.accepting_unit) == unit)).scalars())


def _acceptances(engine: Engine, case_id: str) -> list[AuditRecord]:
    with Session(engine) as session:
        return list(
            session.execute(
                select(AuditRecord).where(col(AuditRecord.case_id) == case_id, col(AuditRecord.action) == "case_accept")
            ).scalars()
        )


async def test_the_window_offers_the_things_its_unit_accepts(api):
    await console_login(api, "hospital_clerk")
    hospital = await api.get("/window")
    await console_login(api, "service_center_clerk")
    service_center = await api.get("/window")

    assert hospital.status_code == service_center.status_code == 200
    assert 'href="/window/apply/birth"' in hospital.text
    assert 'href="/window/apply/company_opening"' not in hospital.text
    for thing in ("birth", "company_opening", "death", "retirement"):
        assert f'href="/window/apply/{thing}"' in service_center.text


async def test_a_clerk_accepts_a_walk_in_application_and_prints_the_notice(api, login: Login, engine):
    await console_login(api, "hospital_clerk")

    response = await api.post("/window/apply/birth", data=await _window_form_data(api, _birth_form()))

    assert response.status_code == 303, response.text
    location = response.headers["location"]
    assert location.startswith("/window/cases/") and location.endswith("/notice")
    case_id = location.removeprefix("/window/cases/").removesuffix("/notice")
    notice = await api.get(location)
    assert notice.status_code == 200
    assert "已受理" in notice.text  # the flash message
    assert "受理通知书" in notice.text and case_id in notice.text
    assert "助产机构窗口" in notice.text  # the window: the hospital's channel
    assert 'data-testid="accepting-staff">hospital_clerk<' in notice.text
    assert "浙江省出生" in notice.text  # the registration form, received at the window
    assert "母亲居民身份证" in notice.text and "数据共享自动获取" in notice.text
    assert "即办" in notice.text  # the hospital's steps on its own channel
    assert "窗口领取" in notice.text  # the pickup method
    assert "@media print" in (await api.get("/static/console.css")).text
    # The same case as POST /cases would make: on the clerk's channel, logged as a window acceptance.
    case = (await api.get(f"/cases/{case_id}", headers=await login("hospital_clerk"))).json()
    assert (case["channel"], case["acceptance_notice"]["accepting_staff"]) == ("hospital", "hospital_clerk")
    assert [row.actor for row in _acceptances(engine, case_id)] == ["hospital_clerk"]
    assert f'data-case-id="{case_id}"' in (await api.get("/window")).text


async def test_a_double_submitted_window_form_accepts_once(api, engine):
    await console_login(api, "hospital_clerk")
    data = await _window_form_data(api, _birth_form())

    first = await api.post("/window/apply/birth", data=data)
    second = await api.post("/window/apply/birth", data=data)

    assert first.status_code == second.status_code == 303
    assert first.headers["location"] == second.headers["location"]
    assert len(_accepted_by(engine, "hospital")) == 1
    case_id = first.headers["location"].split("/")[3]
    assert len(_acceptances(engine, case_id)) == 1


async def test_window_form_errors_are_shown_beside_the_fields(api, engine):
    await console_login(api, "hospital_clerk")
    form = _birth_form()
    form["applicant"]["phone"] = "12345"

    response = await api.post("/window/apply/birth", data=await _window_form_data(api, form))

    assert response.status_code == 422
    assert field_error(response.text, "applicant.phone") == "格式不正确"
    assert 'data-testid="submit-case"' in response.text and "确认受理" in response.text
    assert _accepted_by(engine, "hospital") == []


async def test_a_window_submission_without_the_csrf_token_is_refused(api, engine):
    await console_login(api, "hospital_clerk")
    data = {**await _window_form_data(api, _birth_form()), "csrf_token": ""}

    response = await api.post("/window/apply/birth", data=data)

    assert response.status_code == 403
    assert _accepted_by(engine, "hospital") == []


async def test_a_clerk_cannot_take_a_thing_their_window_does_not_accept(api):
    await console_login(api, "hospital_clerk")

    response = await api.get("/window/apply/company_opening")

    assert response.status_code == 403
    assert "本窗口不受理该事项" in response.text


async def test_another_units_notice_is_not_found(api, cases: Cases):
    case = await cases.submit(as_user="hospital_clerk")
    await console_login(api, "service_center_clerk")

    response = await api.get(f"/window/cases/{case['case_id']}/notice")

    assert response.status_code == 404
    assert "案件不存在" in response.text

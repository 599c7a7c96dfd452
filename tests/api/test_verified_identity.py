"""Verified identity (实名, issue 15): an applicant account is a person; it files for that person
or, as 代办, for another with an authorization; a walk-in case filed at a window for a person
becomes theirs when they sign in, to follow and to rate."""

from __future__ import annotations

from sqlalchemy import func, select
from sqlmodel import Session

from api.accounts import DEMO_IDENTITIES
from api.security import hash_password
from domain.identity import person_key
from domain.samples import FATHER_ID, MOTHER_ID
from models.tables import CaseRecord, SmsOutboxRecord, UserAccount
from tests.api.helpers import PROXY, assert_error, birth_form, events_of, filed_by


def _case_count(engine) -> int:
    with Session(engine) as session:
        return int(session.execute(select(func.count()).select_from(CaseRecord)).scalar_one())


async def test_me_shows_the_applicants_verified_name_and_masked_number(api, login):
    me = await api.get("/me", headers=await login("applicant1"))

    assert me.status_code == 200, me.text
    assert me.json() | {"unit": None} == {
        "username": "applicant1",
        "role": "applicant",
        "name": "李芳",
        "id_number_masked": "330102********0027",
        "unit": None,
        "unit_code": None,
        "division_code": None,
    }
    other = (await api.get("/me", headers=await login("applicant2"))).json()
    assert (other["name"], other["id_number_masked"]) == ("王强", FATHER_ID[:6] + "********" + FATHER_ID[-4:])
    assert MOTHER_ID not in me.text  # the full number is never shown


async def test_filing_as_someone_else_without_proxy_is_422_and_starts_nothing(cases, engine):
    form = filed_by(birth_form(), "applicant2")  # 王强 is the applicant; 李芳 is signed in

    response = await cases.post(as_user="applicant1", form=form)

    assert_error(response, 422, "validation_error", ["form.applicant.id_number"])
    assert _case_count(engine) == 0


async def test_filing_as_proxy_with_an_authorization_is_accepted_and_recorded(cases):
    form = filed_by(birth_form(), "applicant2")

    case = await cases.submit(as_user="applicant1", form=form, proxy=PROXY)

    assert case["proxy"] == {
        "agent_username": "applicant1",
        "agent_name": "李芳",
        "authorization_material": PROXY["authorization_material"],
    }
    # The agent follows the case they filed.
    assert (await cases.read(case["case_id"], as_user="applicant1"))["case_id"] == case["case_id"]


async def test_a_proxy_without_its_authorization_names_the_field(cases, engine):
    response = await cases.post(as_user="applicant1", form=filed_by(birth_form(), "applicant2"), proxy={})

    assert_error(response, 422, "validation_error", ["proxy.authorization_material"])
    assert _case_count(engine) == 0


async def test_proxy_for_oneself_is_422(cases, engine):
    response = await cases.post(as_user="applicant1", form=birth_form(), proxy=PROXY)

    assert_error(response, 422, "validation_error", ["proxy"])
    assert _case_count(engine) == 0


async def test_ones_own_number_under_another_name_is_422(cases, engine):
    form = birth_form()
    form["applicant"]["name"] = "李芬"

    response = await cases.post(as_user="applicant1", form=form)

    assert_error(response, 422, "validation_error", ["form.applicant.name"])
    assert _case_count(engine) == 0


async def test_an_applicant_account_without_verified_identity_cannot_file(api, cases, engine):
    with Session(engine) as session:
        session.add(UserAccount(username="unverified", password_hash=hash_password("demo"), role="applicant"))
        session.commit()

    response = await cases.post(as_user="unverified")

    assert_error(response, 403, "forbidden")
    assert _case_count(engine) == 0


async def test_a_walk_in_case_becomes_its_applicants_at_sign_in_and_can_be_rated(
    api, login, cases, engine, api_settings
):
    # At the hospital's window the clerk files for 王强, who has an account (applicant2).
    case = await cases.submit(as_user="hospital_clerk", form=filed_by(birth_form(), "applicant2"))
    with Session(engine) as session:
        record = session.get(CaseRecord, case["case_id"])
        assert record is not None and record.owner is None
        assert record.applicant_key == person_key(FATHER_ID, api_settings.secret_key)
    # Not the mother's: her list stays empty.
    mine = await api.get("/cases", headers=await login("applicant1"))
    assert mine.json()["items"] == []

    # 王强 signs in: the case is his, on his list and readable.
    signed_in = await api.post("/auth/token", data={"username": "applicant2", "password": "demo"})
    assert signed_in.status_code == 200, signed_in.text
    headers = {"Authorization": f"Bearer {signed_in.json()['access_token']}"}
    listed = await api.get("/cases", headers=headers)
    assert [item["case_id"] for item in listed.json()["items"]] == [case["case_id"]]
    assert (await api.get(f"/cases/{case['case_id']}", headers=headers)).status_code == 200
    (adopted,) = events_of(engine, case["case_id"], "adopted")
    assert adopted.actor == "applicant2"

    await cases.finish(case)
    rated = await api.post(f"/cases/{case['case_id']}/rating", json={"score": 5}, headers=headers)
    assert rated.status_code == 201, rated.text
    # Signing in again adopts nothing twice.
    await api.post("/auth/token", data={"username": "applicant2", "password": "demo"})
    assert len(events_of(engine, case["case_id"], "adopted")) == 1


async def test_a_walk_in_applicant_is_texted_the_acceptance_at_the_forms_phone(cases, engine):
    case = await cases.submit(as_user="hospital_clerk", form=filed_by(birth_form(), "applicant2"))

    with Session(engine) as session:
        rows = session.execute(select(SmsOutboxRecord).where(SmsOutboxRecord.case_id == case["case_id"])).scalars()
        (accepted,) = [row for row in rows if row.kind == "case_accepted"]
    assert accepted.phone == DEMO_IDENTITIES["applicant2"].phone and accepted.status == "pending"
    assert case["case_no"] in accepted.text and FATHER_ID not in accepted.text

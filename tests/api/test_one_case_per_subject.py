"""One case per subject (一案一主体): a second application for the same newborn, deceased,
retiree or company while its case is open or completed is 409 ``duplicate_case`` naming
that case; a retried request (same Idempotency-Key and body) is still the same case; a
refusal frees the subject. Cases carry a readable number (受理编号)."""

from __future__ import annotations

import asyncio
import re
from datetime import UTC, datetime, timedelta

from sqlalchemy import func, select
from sqlmodel import Session, col

from domain.samples import sample_answers, sample_form
from domain.subjects import subject_key
from infra.case_registry import STARTING_GRACE
from models.tables import CaseRecord, CaseRegistration
from tests.api.helpers import assert_error, birth_form, filed_by, officer_of

CASE_NUMBER = re.compile(r"^\d{4}-330000-\d{6}$")


def _case_count(engine) -> int:
    with Session(engine) as session:
        return session.execute(select(func.count()).select_from(CaseRecord)).scalar_one()


async def test_a_second_application_for_the_same_newborn_with_another_key_is_409_naming_the_first(cases, engine):
    form = birth_form()
    first = await cases.submit(form=form, key="first-try")

    again = await cases.post(form=form, key="pressed-back-and-submitted-again")

    error = assert_error(again, 409, "duplicate_case", ["existing_case_id"])
    assert error["fields"]["existing_case_id"] == first["case_id"]
    assert _case_count(engine) == 1


async def test_the_same_key_and_body_still_answer_200_with_the_same_case(cases, engine):
    form = birth_form()
    first = await cases.post(form=form, key="k-1")
    retried = await cases.post(form=form, key="k-1")

    assert (first.status_code, retried.status_code) == (201, 200)
    assert retried.json()["case_id"] == first.json()["case_id"]
    assert retried.json()["case_no"] == first.json()["case_no"]
    assert _case_count(engine) == 1


async def test_the_same_newborn_submitted_twice_without_keys_is_one_case(cases, engine):
    form = birth_form()
    first = await cases.post(form=form)
    second = await cases.post(form=form)

    assert first.status_code == 201
    assert_error(second, 409, "duplicate_case")
    assert _case_count(engine) == 1


async def test_another_account_filing_the_same_newborn_is_refused_too(cases, engine):
    form = birth_form()
    mine = await cases.submit(form=form, as_user="applicant1")

    # The father files for the same newborn himself.
    theirs = await cases.post(form=filed_by(form, "applicant2"), as_user="applicant2", key="theirs")

    assert assert_error(theirs, 409, "duplicate_case")["fields"]["existing_case_id"] == mine["case_id"]


async def test_the_same_birth_written_with_another_utc_offset_is_the_same_newborn(cases):
    form = birth_form()
    await cases.submit(form=form)
    born = datetime.fromisoformat(form["newborn"]["born_at"])
    rewritten = {**form, "newborn": {**form["newborn"], "born_at": born.astimezone(UTC).isoformat()}}

    assert_error(await cases.post(form=rewritten, key="utc"), 409, "duplicate_case")


async def test_twins_with_their_own_names_are_two_cases(cases, engine):
    form = birth_form()
    twin = {**form, "newborn": {**form["newborn"], "name": "王小亮"}}

    await cases.submit(form=form)
    await cases.submit(form=twin)

    assert _case_count(engine) == 2


async def test_concurrent_applications_for_one_newborn_start_exactly_one_case(cases, engine):
    form = birth_form()

    responses = await asyncio.gather(*(cases.post(form=form, key=f"tab-{n}") for n in range(5)))

    statuses = sorted(response.status_code for response in responses)
    assert statuses == [201, 409, 409, 409, 409]
    created = next(response.json() for response in responses if response.status_code == 201)
    for response in responses:
        if response.status_code == 409:
            assert response.json()["error"]["fields"]["existing_case_id"] == created["case_id"]
    assert _case_count(engine) == 1


async def test_after_a_refusal_the_same_newborn_may_apply_again(cases, engine):
    form = birth_form()
    refused = await cases.submit(form=form, key="refused")
    officer = officer_of("birth_certificate")
    await cases.claim(refused, "birth_certificate")
    response = await cases.act(
        "refuse", refused["case_id"], "birth_certificate", as_user=officer, body={"reason": "出生信息与医院记录不符"}
    )
    assert response.status_code == 200, response.text

    again = await cases.post(form=form, key="after-refusal")

    assert again.status_code == 201, again.text
    assert again.json()["case_id"] != refused["case_id"]
    with Session(engine) as session:
        holders = session.execute(
            select(col(CaseRegistration.case_id)).where(col(CaseRegistration.subject_key).is_not(None))
        ).all()
    assert [row.case_id for row in holders] == [again.json()["case_id"]]


async def test_a_completed_case_still_blocks_a_second_application(cases):
    form = birth_form()
    case = await cases.submit(form=form)
    await cases.finish(case)
    assert (await cases.read(case["case_id"]))["status"] == "completed"

    assert_error(await cases.post(form=form, key="after-completion"), 409, "duplicate_case")


def _register_without_a_case(engine, case_id: str, form: dict, registered_at: datetime) -> None:
    """As if an API process had registered a case and stopped before starting it."""
    with Session(engine) as session:
        session.add(
            CaseRegistration(
                case_id=case_id,
                case_no=f"2000-330000-{len(case_id):06d}",
                thing="birth",
                subject_key=subject_key("birth", form, "330000"),
                registered_at=registered_at,
            )
        )
        session.commit()


async def test_a_registration_whose_case_never_started_frees_its_subject_after_the_grace_period(cases, engine):
    form = birth_form()
    _register_without_a_case(engine, "ot-neverstarted", form, datetime.now(UTC) - STARTING_GRACE - timedelta(seconds=1))

    # Temporal says that case never started, so its subject is free.
    submitted = await cases.post(form=form, key="after-the-api-restarted")

    assert submitted.status_code == 201, submitted.text
    with Session(engine) as session:
        assert session.get(CaseRegistration, "ot-neverstarted") is None


async def test_a_registration_still_within_its_grace_period_counts_as_a_case_being_accepted(cases, engine):
    form = birth_form()
    _register_without_a_case(engine, "ot-startingrightnow", form, datetime.now(UTC))

    submitted = await cases.post(form=form, key="meanwhile")

    assert assert_error(submitted, 409, "duplicate_case")["fields"]["existing_case_id"] == "ot-startingrightnow"
    assert _case_count(engine) == 0


async def test_each_thing_names_its_subject(cases, engine):
    for thing in ("death", "retirement", "company_opening"):
        form = sample_form(thing)
        body = {"thing": thing, "channel": "online", "form": form, "answers": sample_answers(thing)}
        headers = await cases.login("applicant1")
        first = await cases.api.post("/cases", json=body, headers={**headers, "Idempotency-Key": f"{thing}-1"})
        second = await cases.api.post("/cases", json=body, headers={**headers, "Idempotency-Key": f"{thing}-2"})

        assert first.status_code == 201, first.text
        assert assert_error(second, 409, "duplicate_case")["fields"]["existing_case_id"] == first.json()["case_id"]


async def test_a_key_reused_for_another_newborn_is_422_and_leaves_that_newborn_free(cases, engine):
    await cases.submit(form=birth_form(), key="reused")
    other = birth_form(born_at=datetime.now(UTC) - timedelta(days=3))

    reused = await cases.post(form=other, key="reused")
    assert_error(reused, 422, "validation_error", ["Idempotency-Key"])

    assert (await cases.post(form=other, key="fresh")).status_code == 201


async def test_cases_are_numbered_by_year_and_division_in_order(cases):
    first = await cases.submit()
    second = await cases.submit()

    assert CASE_NUMBER.match(first["case_no"]), first["case_no"]
    assert int(second["case_no"][-6:]) == int(first["case_no"][-6:]) + 1
    assert (await cases.read(first["case_id"]))["case_no"] == first["case_no"]

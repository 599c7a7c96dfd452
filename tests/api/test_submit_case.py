"""POST /cases: acceptance (受理), the acceptance notice, idempotency and ID-number normalisation."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from sqlalchemy import func, select
from sqlmodel import Session

from api.timeline import read_case_history
from domain.samples import MOTHER_WITHOUT_MARRIAGE_RECORD_ID, another_newborn
from models.tables import CaseRecord
from tests.api.helpers import PROXY, assert_error, birth_form, filed_by, step_of

HOSPITAL_STEPS = ("birth_certificate", "vaccination_certificate")


def _case_count(engine) -> int:
    with Session(engine) as session:
        return int(session.execute(select(func.count()).select_from(CaseRecord)).scalar_one())


async def test_applicant_submission_is_201_with_case_id_status_notice_and_steps(cases):
    response = await cases.post(as_user="applicant1", channel="hospital")

    assert response.status_code == 201, response.text
    body = response.json()
    assert body["case_id"].startswith("ot-")
    assert body["status"] == "accepted"
    assert body["thing"] == "birth"
    assert body["channel"] == "hospital"
    assert datetime.fromisoformat(body["submitted_at"]).tzinfo is not None
    assert [step["step"] for step in body["steps"]] == [
        "birth_certificate",
        "vaccination_certificate",
        "hukou_registration",
        "medical_insurance_enrollment",
        "maternity_benefit_review",
        "social_security_card",
        "delivery",
    ]
    for step in body["steps"]:
        expected = "open" if step["step"] in HOSPITAL_STEPS else "pending"
        assert step["status"] == expected, step
    notice = body["acceptance_notice"]
    assert notice["case_id"] == body["case_id"]
    assert notice["accepting_unit"] == "hospital"


async def test_acceptance_notice_lists_the_materials_obtained_by_data_sharing_for_a_married_couple(cases):
    notice = (await cases.submit())["acceptance_notice"]

    shared = {material["code"]: material for material in notice["materials_shared"]}
    assert set(shared) == {"mother_id_card", "father_id_card", "father_hukou_booklet", "marriage_certificate"}
    assert all(material["reference"] for material in shared.values())
    assert [material["code"] for material in notice["materials_received"]] == ["registration_form"]
    assert notice["materials_to_supply"] == []


async def test_acceptance_notice_gives_each_open_steps_time_limit_and_due_date(cases):
    case = await cases.submit(channel="hospital")
    notice = case["acceptance_notice"]

    for code in HOSPITAL_STEPS:
        step = step_of(notice, code)
        assert step["status"] == "open"
        assert step["department"] == "hospital"
        # On the hospital channel the certificates are issued the same working day.
        assert step["time_limit_working_days"] == 0
        assert datetime.fromisoformat(step["due_at"]) > datetime.fromisoformat(step["opened_at"])
    hukou = step_of(notice, "hukou_registration")
    assert hukou["time_limit_working_days"] == 1
    assert hukou["due_at"] is None


async def test_acceptance_notice_has_supervision_phone_and_delivery_method(cases, api_settings):
    notice = (await cases.submit(form=birth_form(delivery="mail")))["acceptance_notice"]

    assert notice["supervision_phone"] == api_settings.supervision_phone
    assert notice["delivery_method"] == "mail"


async def test_clerk_submission_on_the_hospital_channel_names_the_clerk_as_accepting_staff(cases):
    case = await cases.submit(as_user="hospital_clerk", channel="hospital")

    notice = case["acceptance_notice"]
    assert notice["accepting_staff"] == "hospital_clerk"
    assert notice["accepting_unit"] == "hospital"


async def test_applicant_submission_has_no_accepting_staff(cases):
    notice = (await cases.submit(as_user="applicant1", channel="hospital"))["acceptance_notice"]

    assert notice["accepting_staff"] is None


async def test_online_submission_has_no_accepting_unit_and_no_delivery_step(cases):
    case = await cases.submit(channel="online")

    assert case["acceptance_notice"]["accepting_unit"] is None
    assert "delivery" not in [step["step"] for step in case["steps"]]
    # Online, the certificates have one working day.
    assert step_of(case, "birth_certificate")["time_limit_working_days"] == 1


async def test_clerk_of_the_service_center_submits_on_its_own_channel(cases):
    case = await cases.submit(as_user="service_center_clerk", channel="service_center")

    assert case["acceptance_notice"]["accepting_staff"] == "service_center_clerk"
    assert step_of(case, "delivery")["department"] == "service_center"


async def test_same_idempotency_key_again_is_200_with_the_same_case_and_no_second_workflow(cases, engine):
    form = birth_form()
    first = await cases.post(key="birth-2026-001", form=form)
    again = await cases.post(key="birth-2026-001", form=form)

    assert first.status_code == 201, first.text
    assert again.status_code == 200, again.text
    assert again.json()["case_id"] == first.json()["case_id"]
    assert again.json()["acceptance_notice"] == first.json()["acceptance_notice"]
    assert _case_count(engine) == 1


async def test_same_idempotency_key_after_the_case_moved_on_returns_its_current_state(cases):
    first = await cases.submit(key="birth-2026-002")
    await cases.claim(first, "birth_certificate")

    again = await cases.post(key="birth-2026-002", form=first["_form"])

    assert again.status_code == 200, again.text
    assert again.json()["case_id"] == first["case_id"]
    assert step_of(again.json(), "birth_certificate")["status"] == "claimed"


async def test_a_different_idempotency_key_starts_a_different_case(cases, engine):
    first = await cases.post(key="birth-2026-003")
    second = await cases.post(key="birth-2026-004")

    assert (first.status_code, second.status_code) == (201, 201)
    assert first.json()["case_id"] != second.json()["case_id"]
    assert _case_count(engine) == 2


async def test_the_same_idempotency_key_from_another_account_is_another_case(cases, engine):
    mine = await cases.post(as_user="applicant1", key="shared-key")
    theirs = await cases.post(
        as_user="applicant2", form=filed_by(another_newborn(birth_form(), 1), "applicant2"), key="shared-key"
    )

    assert (mine.status_code, theirs.status_code) == (201, 201)
    assert mine.json()["case_id"] != theirs.json()["case_id"]
    assert _case_count(engine) == 2


async def test_submissions_without_a_key_are_separate_cases(cases, engine):
    first = await cases.post(form=birth_form())
    second = await cases.post(form=birth_form(born_at=datetime.now(UTC) - timedelta(days=3)))

    assert (first.status_code, second.status_code) == (201, 201)
    assert first.json()["case_id"] != second.json()["case_id"]
    assert _case_count(engine) == 2


async def test_an_id_number_ending_in_lowercase_x_is_accepted_and_normalised(cases, env):
    form = birth_form()
    form["applicant"]["id_number"] = "11010519491231002x"
    form["applicant"]["relation"] = "grandparent"  # not the mother: her number is the mother's

    case = await cases.submit(form=form, proxy=PROXY)  # the mother files for the grandparent

    started_with, _ = await read_case_history(env.client, case["case_id"])
    assert started_with.form["applicant"]["id_number"] == "11010519491231002X"


async def test_materials_the_platform_does_not_hold_are_owed_and_no_step_opens(cases):
    form = birth_form(mother_id=MOTHER_WITHOUT_MARRIAGE_RECORD_ID)

    case = await cases.submit(form=form, proxy=PROXY)

    assert case["status"] == "awaiting_supplement"
    assert case["missing_materials"] == ["marriage_certificate"]
    assert [m["code"] for m in case["acceptance_notice"]["materials_to_supply"]] == ["marriage_certificate"]
    assert all(step["status"] == "pending" for step in case["steps"])


async def test_clerk_of_the_hospital_cannot_submit_on_the_service_center_channel(cases, engine):
    response = await cases.post(as_user="hospital_clerk", channel="service_center")

    assert_error(response, 403, "forbidden")
    assert _case_count(engine) == 0


async def test_officers_and_supervisors_cannot_submit_cases(cases, engine):
    for user in ("police_officer", "supervisor", "admin"):
        assert_error(await cases.post(as_user=user), 403, "forbidden")
    assert _case_count(engine) == 0


async def test_an_idempotency_key_reused_with_a_different_form_is_422_and_starts_nothing(cases, engine):
    first = await cases.post(key="birth-2026-005")
    assert first.status_code == 201
    other_form = birth_form()
    other_form["newborn"]["name"] = "王小红"
    reused = await cases.post(key="birth-2026-005", form=other_form)
    assert_error(reused, 422, "validation_error", ["Idempotency-Key"])
    assert _case_count(engine) == 1

"""The people on a birth form through the API (issue 15): a number that contradicts the role is a
422 naming the field and starts nothing; the newborn's number at 户口登记 must give the stated sex."""

from __future__ import annotations

from datetime import date

from sqlalchemy import func
from sqlmodel import Session, select

from domain.identity import make_id_number
from models.tables import CaseRecord
from tests.api.helpers import assert_error, birth_form, result_for, step_of


def _cases(engine) -> int:
    with Session(engine) as session:
        return int(session.exec(select(func.count()).select_from(CaseRecord)).one())


async def test_a_mother_whose_number_is_a_mans_is_refused_naming_the_field_and_nothing_starts(cases, engine):
    form = birth_form()
    form["mother"]["id_number"] = form["applicant"]["id_number"] = make_id_number("330102", date(1990, 3, 7), 3)
    before = _cases(engine)
    response = await cases.post(form=form)
    error = assert_error(response, 422, "validation_error", ["form.mother.id_number"])
    assert "第17位" in error["fields"]["form.mother.id_number"]
    assert _cases(engine) == before


async def test_an_applicant_claiming_to_be_the_mother_with_another_number_is_refused(cases):
    form = birth_form()
    form["applicant"]["id_number"] = make_id_number("330106", date(1991, 4, 1), 8)
    assert_error(await cases.post(form=form), 422, "validation_error", ["form.applicant.id_number"])


async def test_a_girls_number_must_be_even_at_hukou_registration(cases):
    form = birth_form()
    form["newborn"]["sex"] = "female"
    case = await cases.submit(form=form)
    await cases.walk_to(case, "hukou_registration")
    await cases.claim(case, "hukou_registration")
    good = result_for("hukou_registration", case["_form"])
    number = good["citizen_id_number"]
    boys = make_id_number(number[:6], date(int(number[6:10]), int(number[10:12]), int(number[12:14])), 1)
    wrong = await cases.act(
        "complete",
        case["case_id"],
        "hukou_registration",
        as_user="police_officer",
        body={"result": {**good, "citizen_id_number": boys}},
    )
    assert_error(wrong, 422, "validation_error", ["result.citizen_id_number"])
    assert step_of(await cases.read(case["case_id"]), "hukou_registration")["status"] == "claimed"
    done = await cases.act(
        "complete", case["case_id"], "hukou_registration", as_user="police_officer", body={"result": good}
    )
    assert done.status_code == 200, done.text

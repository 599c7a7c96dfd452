"""Who the people on a birth form are, beyond each number's checksum (issue 15): the 17th digit's
parity against the sex the role implies, the birth dates plausible for the role, and the applicant's
stated relation against the form; the newborn's number at 户口登记 against ``newborn.sex``."""

from __future__ import annotations

from datetime import date

import pytest

from domain.catalogue import shipped_definitions
from domain.forms import BirthForm, identity_problems
from domain.identity import id_number_sex, make_id_number
from domain.results import check_result_identities
from domain.samples import FATHER_ID, MOTHER_ID, UNMARRIED_MOTHER_ID, sample_birth_form, sample_result
from models.errors import DomainError

A_MAN = make_id_number("330106", date(1990, 4, 1), 7)
A_WOMAN = make_id_number("330106", date(1991, 4, 1), 8)
A_CHILD = make_id_number("330106", date(2015, 4, 1), 8)


def problems(form: dict) -> dict[str, str]:
    return identity_problems(BirthForm.model_validate(form))


def test_the_sample_people_have_numbers_that_fit_their_roles():
    assert id_number_sex(FATHER_ID) == "male"
    assert id_number_sex(MOTHER_ID) == id_number_sex(UNMARRIED_MOTHER_ID) == "female"
    assert problems(sample_birth_form()) == {}
    assert problems(sample_birth_form(marital_status="unmarried", follow="mother")) == {}


def test_a_mother_with_a_mans_number_and_a_father_with_a_womans_are_named():
    form = sample_birth_form()
    form["mother"]["id_number"] = form["applicant"]["id_number"] = A_MAN
    form["father"]["id_number"] = A_WOMAN
    found = problems(form)
    assert set(found) == {"mother.id_number", "father.id_number"}
    assert "男性" in found["mother.id_number"] and "女性" in found["father.id_number"]


def test_a_parent_too_young_by_the_numbers_birth_date_is_named():
    form = sample_birth_form()
    form["mother"]["id_number"] = form["applicant"]["id_number"] = A_CHILD
    assert set(problems(form)) == {"mother.id_number"}


def test_an_applicant_who_says_mother_must_carry_the_mothers_number():
    form = sample_birth_form()
    form["applicant"]["id_number"] = A_WOMAN
    assert set(problems(form)) == {"applicant.id_number"}
    form["applicant"]["relation"] = "grandparent"  # another adult, filing for the family
    assert problems(form) == {}
    form["applicant"]["id_number"] = A_CHILD
    assert set(problems(form)) == {"applicant.id_number"}


@pytest.mark.parametrize("sex", ["male", "female"])
def test_the_newborns_number_at_hukou_registration_must_give_the_stated_sex(sex):
    form = sample_birth_form()
    form["newborn"]["sex"] = sex
    step = shipped_definitions()["birth"].step("hukou_registration")
    good = sample_result(step, form)
    check_result_identities(step, good, form)  # the sample fits
    number = good["citizen_id_number"]
    other = make_id_number(
        number[:6], date(int(number[6:10]), int(number[10:12]), int(number[12:14])), 1 if sex == "female" else 2
    )
    with pytest.raises(DomainError) as caught:
        check_result_identities(step, {**good, "citizen_id_number": other}, form)
    assert set(caught.value.fields or {}) == {"result.citizen_id_number"}

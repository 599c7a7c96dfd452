"""A result that is the department's refusal (核验不通过) ends the case as the catalogue says;
a positive or neutral one does not. Pure rules, no Temporal."""

from __future__ import annotations

import pytest
from pydantic import ValidationError

from domain.catalogue import shipped_definitions
from domain.results import negative_result, validate_result
from domain.samples import sample_birth_form, sample_result
from models.catalogue import ResultField
from models.errors import DomainError
from services.catalogue import definition_fingerprint

BIRTH = shipped_definitions()["birth"]
RETIREMENT = shipped_definitions()["retirement"]
DECLARATION = BIRTH.step("unmarried_declaration_review")
EARLY_RETIREMENT = RETIREMENT.step("early_retirement_review")


def test_a_false_declaration_check_is_negative_and_names_its_field_and_reason():
    field, outcome = negative_result(DECLARATION, {"declaration_verified": False}) or ("", None)
    assert field == "declaration_verified"
    assert outcome is not None and outcome.outcome == "refuse_case" and "不予办理户口登记" in outcome.reason_zh


def test_a_true_declaration_check_is_not_negative():
    assert negative_result(DECLARATION, {"declaration_verified": True}) is None


def test_zero_is_not_false():
    assert negative_result(DECLARATION, {"declaration_verified": 0}) is None


def test_unmet_early_retirement_conditions_are_negative():
    assert negative_result(EARLY_RETIREMENT, {"conditions_met": False}) is not None


def test_a_refused_review_needs_no_other_field_but_a_met_one_does():
    assert validate_result(EARLY_RETIREMENT, {"conditions_met": False}, {}) == {"conditions_met": False}
    with pytest.raises(DomainError) as missing:
        validate_result(EARLY_RETIREMENT, {"conditions_met": True}, {})
    assert set(missing.value.fields) == {"result.publicity_ended_on"}


def test_fields_given_beside_a_refusal_are_still_checked():
    with pytest.raises(DomainError) as bad:
        validate_result(EARLY_RETIREMENT, {"conditions_met": False, "publicity_ended_on": "yesterday"}, {})
    assert set(bad.value.fields) == {"result.publicity_ended_on"}


def test_results_without_a_negative_value_are_neutral():
    form = sample_birth_form()
    for step in BIRTH.steps:
        assert negative_result(step, sample_result(step, form)) is None


def test_a_negative_value_must_fit_its_fields_type():
    with pytest.raises(ValidationError):
        ResultField.model_validate(
            {"type": "boolean", "label_zh": "核验通过", "negative": {"value": "no", "reason_zh": "核验未通过"}}
        )
    with pytest.raises(ValidationError):
        ResultField.model_validate(
            {"type": "string", "label_zh": "结论", "negative": {"value": False, "reason_zh": "核验未通过"}}
        )


def test_definitions_without_a_negative_value_keep_their_published_fingerprint():
    # Deployments have these versions recorded; a schema change that altered their dump would
    # refuse start-up ("content differs from published version").
    shipped = shipped_definitions()
    assert definition_fingerprint(shipped["death"]) == (
        "377da8b8aee2efa83afbca90e70191371bb8ddab25fcdd569f07a2776c5f98e6"
    )
    assert definition_fingerprint(shipped["company_opening"]) == (
        "1535330ee2a1192ede89ac2a0e74266b0043eebc0382b17aa33a5b6e18585896"
    )


def test_things_whose_results_can_refuse_have_a_new_version():
    assert BIRTH.version >= 2 and RETIREMENT.version >= 2

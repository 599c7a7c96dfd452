"""The catalogue: shipped definitions validate, and each broken rule is named precisely."""

from __future__ import annotations

import copy
from typing import Any

import pytest
import yaml

from models.catalogue import THINGS_DIR, CatalogueError, load_departments, parse_definition, shipped_definitions
from models.errors import DomainError
from models.results import validate_result
from models.samples import sample_birth_form, sample_result

BIRTH_ORDER = [
    "birth_certificate",
    "vaccination_certificate",
    "hukou_registration",
    "medical_insurance_enrollment",
    "maternity_benefit_review",
    "social_security_card",
    "delivery",
]


@pytest.fixture
def birth_raw() -> dict[str, Any]:
    raw: dict[str, Any] = yaml.safe_load((THINGS_DIR / "birth.yaml").read_text(encoding="utf-8"))
    return raw


def _parse(raw: dict[str, Any]) -> Any:
    return parse_definition(raw, "birth.yaml", load_departments())


def test_every_shipped_definition_validates() -> None:
    definitions = shipped_definitions()
    assert "birth" in definitions
    for definition in definitions.values():
        assert definition.steps, definition.code


def test_birth_definition_matches_annex_a() -> None:
    birth = shipped_definitions()["birth"]
    assert [step.code for step in birth.steps] == BIRTH_ORDER
    assert birth.step("hukou_registration").depends_on == ["birth_certificate"]
    assert birth.step("social_security_card").depends_on == ["medical_insurance_enrollment"]
    assert birth.step("birth_certificate").time_limit_for("hospital") == 0
    assert birth.step("birth_certificate").time_limit_for("online") == 1
    assert all(step.time_limit_for("online") == 1 for step in birth.steps if step.code != "delivery")
    assert [step.code for step in birth.steps_for("online")] == BIRTH_ORDER[:-1]
    assert birth.step("delivery").department_for("service_center") == "service_center"
    assert birth.department_name("police") == "公安部门"


def test_unknown_department_is_named_with_its_path(birth_raw: dict[str, Any]) -> None:
    birth_raw["steps"][2]["department"] = "ministry_of_magic"
    with pytest.raises(CatalogueError) as error:
        _parse(birth_raw)
    assert (error.value.file, error.value.path) == ("birth.yaml", "steps[2]")
    assert "ministry_of_magic" in error.value.reason


def test_department_without_tasks_cannot_own_a_step(birth_raw: dict[str, Any]) -> None:
    birth_raw["steps"][0]["department"] = "big_data"
    with pytest.raises(CatalogueError, match="takes no tasks"):
        _parse(birth_raw)


def test_dependency_cycle_is_rejected(birth_raw: dict[str, Any]) -> None:
    birth_raw["steps"][0]["depends_on"] = ["hukou_registration"]
    with pytest.raises(CatalogueError) as error:
        _parse(birth_raw)
    assert "cycle" in error.value.reason
    assert error.value.path.endswith(".depends_on")


def test_unknown_dependency_is_rejected(birth_raw: dict[str, Any]) -> None:
    birth_raw["steps"][3]["depends_on"] = ["no_such_step"]
    with pytest.raises(CatalogueError) as error:
        _parse(birth_raw)
    assert error.value.path == "steps[3].depends_on"


def test_step_without_time_limit_is_rejected(birth_raw: dict[str, Any]) -> None:
    del birth_raw["steps"][1]["time_limit"]
    with pytest.raises(CatalogueError) as error:
        _parse(birth_raw)
    assert error.value.path == "steps[1].time_limit"


def test_duplicate_step_code_is_rejected(birth_raw: dict[str, Any]) -> None:
    birth_raw["steps"].append(copy.deepcopy(birth_raw["steps"][0]))
    with pytest.raises(CatalogueError, match="duplicate code"):
        _parse(birth_raw)


def test_negative_time_limit_is_rejected(birth_raw: dict[str, Any]) -> None:
    birth_raw["steps"][0]["time_limit"] = {"default": -1}
    with pytest.raises(CatalogueError, match="never negative"):
        _parse(birth_raw)


def test_sample_results_pass_their_own_step_checks() -> None:
    birth = shipped_definitions()["birth"]
    form = sample_birth_form()
    for step in birth.steps:
        assert validate_result(step, sample_result(step, form), form)


def test_result_check_names_every_bad_field() -> None:
    birth = shipped_definitions()["birth"]
    form = sample_birth_form()
    with pytest.raises(DomainError) as error:
        validate_result(
            birth.step("maternity_benefit_review"),
            {"medical_costs_settled": 3200.0, "allowance_amount": "12.5", "bonus": "1"},
            form,
        )
    assert set(error.value.fields) == {
        "result.medical_costs_settled",
        "result.allowance_amount",
        "result.bonus",
    }


def test_newborn_id_number_must_carry_the_birth_date() -> None:
    birth = shipped_definitions()["birth"]
    form = sample_birth_form()
    adult_id = "330102199003070027"  # valid checksum, wrong birth date
    with pytest.raises(DomainError) as error:
        validate_result(
            birth.step("hukou_registration"), {"citizen_id_number": adult_id, "booklet_page": "第1页"}, form
        )
    assert "2026-11-20" in error.value.fields["result.citizen_id_number"]

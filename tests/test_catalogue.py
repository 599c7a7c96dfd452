"""The catalogue: shipped definitions validate, and each broken rule is named precisely."""

from __future__ import annotations

import copy
from typing import Any

import pytest
import yaml

from domain.catalogue import (
    THINGS_DIR,
    CatalogueError,
    load_departments,
    parse_definition,
    resolve_for_case,
    shipped_definitions,
)
from domain.results import validate_result
from domain.samples import sample_birth_form, sample_result
from models.errors import DomainError

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
    birth = shipped_definitions()["birth"].for_situation("married_father")
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


def test_unmarried_situations_add_the_declaration_and_its_check() -> None:
    birth = shipped_definitions()["birth"]
    unmarried = birth.for_situation("unmarried_mother")
    assert "unmarried_birth_declaration" in [m.code for m in unmarried.materials]
    assert "marriage_certificate" not in [m.code for m in unmarried.materials]
    assert unmarried.step("unmarried_declaration_review").department == "police"
    assert unmarried.step("hukou_registration").depends_on == ["birth_certificate", "unmarried_declaration_review"]
    assert "paternity_test_report" in [m.code for m in birth.for_situation("unmarried_father").materials]


def test_birth_situation_is_derived_from_the_form_when_no_answers_are_given() -> None:
    birth = shipped_definitions()["birth"]
    resolved = resolve_for_case(birth, sample_birth_form(marital_status="unmarried", follow="mother"))
    assert resolved.situation == "unmarried_mother"


def test_answers_that_contradict_the_form_name_the_answer() -> None:
    birth = shipped_definitions()["birth"]
    with pytest.raises(DomainError) as error:
        resolve_for_case(birth, sample_birth_form(), {"marital_status": "unmarried"})
    assert set(error.value.fields) == {"answers.marital_status"}


def test_missing_and_invalid_answers_are_named() -> None:
    birth = shipped_definitions()["birth"]
    with pytest.raises(DomainError) as error:
        birth.situation_for({"marital_status": "divorced"})
    assert set(error.value.fields) == {"answers.marital_status", "answers.hukou_follow"}


@pytest.mark.parametrize(
    ("mutate", "path", "reason"),
    [
        (lambda raw: raw["materials"].append(_submit("other_docs", "其他材料")), "materials[8].name_zh", "vague"),
        (
            lambda raw: raw["materials"].append(_submit("copy", "身份证复印件", covered_by="mother_id_card")),
            "materials[8].covered_by",
            "covered",
        ),
        (
            lambda raw: raw["materials"].append(_submit("cert", "出生医学证明", issued_by_this_thing=True)),
            "materials[8].issued_by_this_thing",
            "issues itself",
        ),
        (
            lambda raw: raw["materials"].append(_submit("photo", "新生儿照片", legal_basis=None)),
            "materials[8].legal_basis",
            "legal basis",
        ),
        (
            lambda raw: raw["materials"].append(_submit("idc", "父亲身份证", shareable=True)),
            "materials[8].source",
            "data sharing",
        ),
        (
            lambda raw: raw["materials"].append(_submit("pledge", "居住证明", commitment_allowed=True)),
            "materials[8].source",
            "commitment",
        ),
        (lambda raw: raw["situations"][0].update(steps=[]), "situations[0].steps", "selects no steps"),
        (
            lambda raw: raw["situations"][1].update(when=dict(raw["situations"][0]["when"])),
            "situations[1].when",
            "same answers",
        ),
        (
            lambda raw: raw["situations"][0]["when"].update(marital_status="divorced"),
            "situations[0].when.marital_status",
            "not an option",
        ),
        (lambda raw: raw.update(life_stage="adolescence"), "life_stage", "unknown life stage"),
        (
            lambda raw: raw["materials"][1]["sharing"].update(provider="nobody"),
            "materials[1].sharing.provider",
            "unknown department",
        ),
    ],
)
def test_catalogue_rules_name_file_path_and_reason(birth_raw, mutate, path, reason) -> None:
    mutate(birth_raw)
    with pytest.raises(CatalogueError) as error:
        _parse(birth_raw)
    assert (error.value.file, error.value.path) == ("birth.yaml", path)
    assert reason in error.value.reason


def _submit(code: str, name: str, legal_basis: str | None = "某法规", **facts: Any) -> dict[str, Any]:
    material: dict[str, Any] = {"code": code, "name_zh": name, "source": "submit", **facts}
    if legal_basis:
        material["legal_basis"] = legal_basis
    return material

"""Which form fields name a case's subject, the key made from them, and the registrations a
rebuild restores from the cases (domain/subjects.py, infra/case_registry.py)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from sqlmodel import Session, select

from domain.catalogue import shipped_definitions
from domain.samples import sample_birth_form, sample_form
from domain.subjects import check_subject_fields, subject_fields, subject_key
from domain.workcalendar import SHANGHAI
from infra.case_registry import restore_registrations
from models.tables import CaseNumberSequence, CaseRecord, CaseRegistration
from tests.conftest import make_test_engine, read_model_url

BORN = datetime(2026, 11, 20, 8, 30, tzinfo=SHANGHAI)


def test_every_shipped_thing_names_a_subject_made_of_fields_of_its_form() -> None:
    shipped = shipped_definitions()
    assert set(subject_fields()) == set(shipped)
    assert check_subject_fields({code: d.form for code, d in shipped.items()}) == []


def test_a_subject_field_missing_from_the_form_is_reported(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr("domain.subjects.subject_fields", lambda: {"birth": ("newborn.birth_weight",)})

    assert check_subject_fields({"birth": "birth"}) == [
        "case_subjects.yaml: birth: 'newborn.birth_weight' is not a field of form 'birth'"
    ]


def test_the_same_birth_written_in_another_offset_is_the_same_subject() -> None:
    local = sample_birth_form(born_at=BORN)
    utc = sample_birth_form(born_at=BORN.astimezone(UTC))

    assert subject_key("birth", local, "330000") == subject_key("birth", utc, "330000")


def test_another_newborn_name_time_or_mother_is_another_subject() -> None:
    key = subject_key("birth", sample_birth_form(born_at=BORN), "330000")
    renamed = sample_birth_form(born_at=BORN)
    renamed["newborn"]["name"] = "王小亮"

    assert subject_key("birth", renamed, "330000") != key
    assert subject_key("birth", sample_birth_form(born_at=BORN + timedelta(minutes=1)), "330000") != key
    assert subject_key("birth", sample_birth_form(born_at=BORN, mother_id="330102198801010040"), "330000") != key


def test_a_company_is_one_subject_per_registration_division() -> None:
    form = sample_form("company_opening")

    assert subject_key("company_opening", form, "330000") != subject_key("company_opening", form, "330100")


def test_the_key_holds_no_id_number_in_clear() -> None:
    form = sample_form("death")
    key = subject_key("death", form, "330000")

    assert key is not None and len(key) == 64
    assert form["deceased"]["id_number"] not in key


def _case(case_id: str, case_no: str, subject: str | None, status: str, minutes: int) -> CaseRecord:
    return CaseRecord(
        case_id=case_id,
        thing="birth",
        catalogue_version=1,
        channel="online",
        status=status,
        submitted_by="applicant1",
        submitted_at=BORN + timedelta(minutes=minutes),
        snapshot={"subject_key": subject},
        case_no=case_no,
    )


def test_a_rebuild_restores_numbers_and_gives_a_reapplied_subject_to_the_newer_case(tmp_path: Path) -> None:
    engine = make_test_engine(read_model_url(tmp_path))
    try:
        with Session(engine) as session:
            session.add(_case("ot-refused", "2026-330000-000001", "k1", "refused", 0))
            session.add(_case("ot-again", "2026-330000-000003", "k1", "in_progress", 5))
            session.add(_case("ot-other", "2026-330000-000002", "k2", "completed", 1))
            session.add(_case("ot-refused-only", "2026-330000-000004", "k3", "refused", 6))
            session.commit()

            assert restore_registrations(session) == 4
            session.commit()

            subjects = {r.case_id: r.subject_key for r in session.exec(select(CaseRegistration))}
            assert subjects == {"ot-refused": None, "ot-again": "k1", "ot-other": "k2", "ot-refused-only": "k3"}
            sequence = session.get(CaseNumberSequence, "2026-330000")
            assert sequence is not None and sequence.last_number == 4
            # A second rebuild adds nothing.
            assert restore_registrations(session) == 0
    finally:
        engine.dispose()

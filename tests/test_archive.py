"""The electronic archive: a package's manifest verifies its parts and names what is missing or altered."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path

from documents.archive import REQUIRED_PARTS, check_package, write_package
from domain.catalogue import resolve_for_case, shipped_definitions
from domain.samples import sample_birth_form
from models.case import (
    Actor,
    ArchiveCaseInput,
    CaseEvent,
    CaseInput,
    CaseSnapshot,
    CaseStatus,
    EventType,
)

CLOSED_AT = datetime(2026, 11, 27, 10, 0, tzinfo=UTC)


def _archive_input() -> ArchiveCaseInput:
    form = sample_birth_form()
    definition = resolve_for_case(shipped_definitions()["birth"], form)
    case = CaseInput(
        case_id="ot-archive-test",
        definition=definition,
        channel="online",
        form=form,
        owner="applicant1",
        submitted_by=Actor(username="applicant1", role="applicant"),
    )
    snapshot = CaseSnapshot(
        case_id=case.case_id,
        thing="birth",
        thing_zh="出生一件事",
        catalogue_version=1,
        situation=definition.situation,
        channel="online",
        status=CaseStatus.COMPLETED,
        status_zh="已办结",
        submitted_at=CLOSED_AT,
        owner="applicant1",
        submitted_by="applicant1",
        accepting_unit=None,
        steps=[],
    )
    events = [
        CaseEvent(seq=1, at=CLOSED_AT, type=EventType.ACCEPTED, actor="applicant1"),
        CaseEvent(seq=2, at=CLOSED_AT, type=EventType.RETURNED, step="birth_certificate", actor="hospital_officer"),
        CaseEvent(seq=3, at=CLOSED_AT, type=EventType.CASE_COMPLETED),
    ]
    return ArchiveCaseInput(case=case, snapshot=snapshot, events=events)


def test_a_written_package_is_complete_and_its_hashes_verify(tmp_path: Path) -> None:
    manifest = write_package(tmp_path, _archive_input(), CLOSED_AT)
    assert {part.name for part in manifest.parts} == set(REQUIRED_PARTS)
    check = check_package(tmp_path, "ot-archive-test")
    assert check.complete and check.missing == [] and check.corrupt == []
    notices = json.loads((tmp_path / "ot-archive-test" / "notices.json").read_text(encoding="utf-8"))
    assert [n["kind"] for n in notices] == ["supplement_request"]


def test_a_deleted_part_is_reported_missing(tmp_path: Path) -> None:
    write_package(tmp_path, _archive_input(), CLOSED_AT)
    (tmp_path / "ot-archive-test" / "timeline.json").unlink()
    check = check_package(tmp_path, "ot-archive-test")
    assert not check.complete
    assert check.missing == ["timeline.json"]


def test_an_altered_part_is_reported_corrupt(tmp_path: Path) -> None:
    write_package(tmp_path, _archive_input(), CLOSED_AT)
    (tmp_path / "ot-archive-test" / "results.json").write_text('[{"step": "forged"}]', encoding="utf-8")
    check = check_package(tmp_path, "ot-archive-test")
    assert check.corrupt == ["results.json"] and not check.complete


def test_a_case_never_archived_has_no_manifest(tmp_path: Path) -> None:
    check = check_package(tmp_path, "ot-unknown")
    assert check.missing == ["manifest.json"] and check.manifest is None


def test_rewriting_a_package_for_a_retried_activity_gives_the_same_bytes(tmp_path: Path) -> None:
    archive = _archive_input()
    write_package(tmp_path, archive, CLOSED_AT)
    first = (tmp_path / "ot-archive-test" / "manifest.json").read_bytes()
    write_package(tmp_path, archive, CLOSED_AT)
    assert (tmp_path / "ot-archive-test" / "manifest.json").read_bytes() == first

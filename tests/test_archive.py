"""The electronic archive: a package's parts are sealed at rest, its manifest is signed by a key
it names, and verification names whatever was rewritten, removed, added, reordered or moved in
from another package; packages written before sealing stay readable, reported as legacy."""

from __future__ import annotations

import hashlib
import io
import json
import os
import shutil
import zipfile
from datetime import UTC, datetime
from pathlib import Path

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from documents.archive import (
    MANIFEST,
    REQUIRED_PARTS,
    SIGNATURE,
    ArchivedFile,
    ArchivedPart,
    ArchiveKeys,
    ArchiveManifest,
    check_package,
    package_parts,
    package_zip,
    read_part,
    write_package,
)
from domain.catalogue import resolve_for_case, shipped_definitions
from domain.samples import MOTHER_ID, sample_birth_form
from infra.file_store import FileSeal
from infra.signing import key_id
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
CASE = "ot-archive-test"
OTHER_CASE = "ot-archive-other"
MOTHER_NAME = "李芳"
NEWBORN_NAME = "王小明"
# An uploaded scan that names the mother, as a marriage certificate does.
SCAN = b"%PDF-1.4\n" + f"marriage certificate {MOTHER_NAME} {MOTHER_ID}".encode() + b"\n%%EOF"
PAYLOAD_KEY = os.urandom(32)
SIGNING = Ed25519PrivateKey.generate()


def _keys(
    signing: Ed25519PrivateKey = SIGNING,
    *,
    retired: tuple[Ed25519PrivateKey, ...] = (),
    payload_keys: dict[str, bytes] | None = None,
    current: str = "2026-11",
) -> ArchiveKeys:
    verify = {key_id(key.public_key()): key.public_key() for key in (signing, *retired)}
    return ArchiveKeys(
        seal=FileSeal(payload_keys or {"2026-11": PAYLOAD_KEY}, current),
        signing_key=signing,
        signing_key_id=key_id(signing.public_key()),
        verify_keys=verify,
    )


def _archive_input(case_id: str = CASE) -> ArchiveCaseInput:
    form = sample_birth_form()
    definition = resolve_for_case(shipped_definitions()["birth"], form)
    case = CaseInput(
        case_id=case_id,
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


def _scan() -> ArchivedFile:
    return ArchivedFile(
        material="marriage_certificate",
        name_zh="结婚证",
        sha256=hashlib.sha256(SCAN).hexdigest(),
        content_type="application/pdf",
        content=SCAN,
    )


def _write(root: Path, case_id: str = CASE, keys: ArchiveKeys | None = None) -> ArchiveManifest:
    return write_package(root, _archive_input(case_id), CLOSED_AT, keys or _keys(), files=[_scan()])


def _write_legacy(root: Path, *, signing: Ed25519PrivateKey | None = None) -> Path:
    """A package as written before sealing: parts in clear, a manifest without format or key id,
    signed (without naming the key) or, earlier still, not at all."""
    folder = root / CASE
    folder.mkdir(parents=True)
    parts = []
    for name, content in package_parts(_archive_input()).items():
        (folder / name).write_bytes(content)
        digest = hashlib.sha256(content).hexdigest()
        parts.append(ArchivedPart(name=name, title_zh=REQUIRED_PARTS[name], sha256=digest, bytes=len(content)))
    manifest = ArchiveManifest(
        case_id=CASE,
        thing="birth",
        catalogue_version=1,
        situation=None,
        status="completed",
        archived_at=CLOSED_AT,
        parts=parts,
    )
    manifest_bytes = manifest.model_dump_json(indent=2, exclude={"format", "signing_key_id"}).encode()
    assert b"format" not in manifest_bytes
    (folder / MANIFEST).write_bytes(manifest_bytes)
    if signing is not None:
        (folder / SIGNATURE).write_bytes(signing.sign(manifest_bytes))
    return folder


def _manifest(folder: Path) -> dict:
    return json.loads((folder / MANIFEST).read_text(encoding="utf-8"))


def _save_manifest(folder: Path, manifest: dict) -> None:
    (folder / MANIFEST).write_text(json.dumps(manifest, indent=2), encoding="utf-8")


def test_a_written_package_is_complete_signed_and_verified(tmp_path: Path) -> None:
    manifest = _write(tmp_path)
    assert {part.name for part in manifest.parts} >= set(REQUIRED_PARTS)
    assert manifest.signing_key_id == key_id(SIGNING.public_key())
    check = check_package(tmp_path, CASE, _keys())
    assert (check.verdict, check.complete, check.signature) == ("verified", True, "valid")
    assert check.missing == [] and check.corrupt == [] and check.unexpected == []
    notices = json.loads(read_part(tmp_path / CASE, manifest, manifest.parts[3], _keys()))
    assert manifest.parts[3].name == "notices.json"
    assert [n["kind"] for n in notices] == ["supplement_request"]


def test_archive_parts_hold_no_personal_data_in_clear(tmp_path: Path) -> None:
    manifest = _write(tmp_path)
    folder = tmp_path / CASE
    # What the case held: the mother's ID number and name, the newborn's name, the scan.
    form = read_part(folder, manifest, manifest.parts[0], _keys())
    assert MOTHER_ID.encode() in form and MOTHER_NAME.encode() in form and NEWBORN_NAME.encode() in form
    stored = {path: path.read_bytes() for path in folder.rglob("*") if path.is_file()}
    assert len(stored) == len(manifest.parts) + 2  # and the manifest and its signature
    for path, raw in stored.items():
        for personal in (MOTHER_ID.encode(), MOTHER_NAME.encode(), NEWBORN_NAME.encode(), b"marriage certificate"):
            assert personal not in raw, f"{path.relative_to(folder)} holds {personal!r} in clear"


def test_verification_fails_when_a_part_is_rewritten(tmp_path: Path) -> None:
    _write(tmp_path)
    folder = tmp_path / CASE
    sealed = bytearray((folder / "results.json").read_bytes())
    sealed[-1] ^= 1
    (folder / "results.json").write_bytes(bytes(sealed))
    check = check_package(tmp_path, CASE, _keys())
    assert (check.verdict, check.complete, check.corrupt) == ("failed", False, ["results.json"])

    # Even with the payload key, a part sealed afresh with its hash rewritten breaks the signature.
    forged = b'[{"step": "forged"}]'
    digest = hashlib.sha256(forged).hexdigest()
    (folder / "results.json").write_bytes(_keys().seal.seal(f"archive:{CASE}/results.json@{digest}", forged))
    manifest = _manifest(folder)
    for part in manifest["parts"]:
        if part["name"] == "results.json":
            part["sha256"], part["bytes"] = digest, len(forged)
    _save_manifest(folder, manifest)
    check = check_package(tmp_path, CASE, _keys())
    assert (check.verdict, check.signature, check.corrupt) == ("failed", "invalid", [])


def test_verification_fails_when_the_manifest_is_edited(tmp_path: Path) -> None:
    _write(tmp_path)
    folder = tmp_path / CASE
    manifest = _manifest(folder)
    manifest["status"] = "refused"
    _save_manifest(folder, manifest)
    check = check_package(tmp_path, CASE, _keys())
    assert (check.verdict, check.complete, check.signature) == ("failed", False, "invalid")

    # Dropping the signature does not pass a sealed package off as an unsigned legacy one.
    (folder / SIGNATURE).unlink()
    assert check_package(tmp_path, CASE, _keys()).verdict == "failed"
    # Nor does downgrading it to the legacy format: its parts are still sealed, not the listed content.
    del manifest["format"], manifest["signing_key_id"]
    _save_manifest(folder, manifest)
    downgraded = check_package(tmp_path, CASE, _keys())
    assert downgraded.verdict == "failed" and set(downgraded.corrupt) == {p["name"] for p in manifest["parts"]}


def test_verification_fails_when_a_manifest_is_not_json_of_one(tmp_path: Path) -> None:
    _write(tmp_path)
    (tmp_path / CASE / MANIFEST).write_text("{not a manifest", encoding="utf-8")
    check = check_package(tmp_path, CASE, _keys())
    assert (check.verdict, check.corrupt, check.manifest) == ("failed", [MANIFEST], None)


def test_verification_fails_when_a_part_is_swapped_from_another_archive(tmp_path: Path) -> None:
    _write(tmp_path, CASE)
    _write(tmp_path, OTHER_CASE)
    # The very same form (both cases hold the sample form), sealed for the other package.
    assert _manifest(tmp_path / CASE)["parts"][0] == _manifest(tmp_path / OTHER_CASE)["parts"][0]
    shutil.copy(tmp_path / OTHER_CASE / "form.json", tmp_path / CASE / "form.json")
    check = check_package(tmp_path, CASE, _keys())
    assert (check.verdict, check.corrupt) == ("failed", ["form.json"])

    # A whole package, validly signed, moved under another case.
    shutil.rmtree(tmp_path / CASE)
    shutil.copytree(tmp_path / OTHER_CASE, tmp_path / CASE)
    moved = check_package(tmp_path, CASE, _keys())
    assert moved.verdict == "failed" and moved.signature == "valid" and MANIFEST in moved.corrupt


def test_verification_fails_when_a_part_is_removed_or_added(tmp_path: Path) -> None:
    manifest = _write(tmp_path)
    folder = tmp_path / CASE
    (uploaded,) = [part.name for part in manifest.parts if part.name.startswith("files/")]
    (folder / uploaded).unlink()
    removed = check_package(tmp_path, CASE, _keys())
    assert (removed.verdict, removed.missing) == ("failed", [uploaded])

    _write(tmp_path)
    (folder / "files" / "extra.pdf").write_bytes(b"%PDF-1.4 slipped in")
    added = check_package(tmp_path, CASE, _keys())
    assert (added.verdict, added.unexpected, added.missing, added.corrupt) == ("failed", ["files/extra.pdf"], [], [])


def test_verification_fails_when_parts_are_reordered(tmp_path: Path) -> None:
    _write(tmp_path)
    folder = tmp_path / CASE
    form, results = (folder / "form.json").read_bytes(), (folder / "results.json").read_bytes()
    (folder / "form.json").write_bytes(results)
    (folder / "results.json").write_bytes(form)
    swapped = check_package(tmp_path, CASE, _keys())
    assert (swapped.verdict, sorted(swapped.corrupt)) == ("failed", ["form.json", "results.json"])

    _write(tmp_path)
    manifest = _manifest(folder)
    manifest["parts"].reverse()
    _save_manifest(folder, manifest)
    assert (check_package(tmp_path, CASE, _keys()).signature, check_package(tmp_path, CASE, _keys()).verdict) == (
        "invalid",
        "failed",
    )


def test_a_package_signed_by_an_unknown_key_fails_and_a_retired_key_still_verifies(tmp_path: Path) -> None:
    old = Ed25519PrivateKey.generate()
    _write(tmp_path, keys=_keys(old))
    new = Ed25519PrivateKey.generate()
    unknown = check_package(tmp_path, CASE, _keys(new))
    assert (unknown.verdict, unknown.signature) == ("failed", "unknown_key")
    # After a rotation: the old key's public half listed as retired, new payload key current.
    rotated = _keys(
        new, retired=(old,), payload_keys={"2026-11": PAYLOAD_KEY, "2027-05": os.urandom(32)}, current="2027-05"
    )
    assert check_package(tmp_path, CASE, rotated).verdict == "verified"


def test_rewriting_a_package_for_a_retried_activity_gives_the_same_manifest(tmp_path: Path) -> None:
    _write(tmp_path)
    first = (tmp_path / CASE / MANIFEST).read_bytes(), (tmp_path / CASE / SIGNATURE).read_bytes()
    _write(tmp_path)
    assert ((tmp_path / CASE / MANIFEST).read_bytes(), (tmp_path / CASE / SIGNATURE).read_bytes()) == first
    assert check_package(tmp_path, CASE, _keys()).verdict == "verified"


def test_a_case_never_archived_has_no_manifest(tmp_path: Path) -> None:
    check = check_package(tmp_path, "ot-unknown", _keys())
    assert check.missing == [MANIFEST] and check.manifest is None and check.verdict == "absent"


def test_the_downloaded_zip_holds_the_parts_decrypted_and_verifiable(tmp_path: Path) -> None:
    manifest = _write(tmp_path)
    content = package_zip(tmp_path, CASE, _keys())
    package = zipfile.ZipFile(io.BytesIO(content))
    manifest_bytes = package.read(f"{CASE}/{MANIFEST}")
    SIGNING.public_key().verify(package.read(f"{CASE}/{SIGNATURE}"), manifest_bytes)  # raises if not
    for part in manifest.parts:
        assert hashlib.sha256(package.read(f"{CASE}/{part.name}")).hexdigest() == part.sha256
    assert MOTHER_ID.encode() in package.read(f"{CASE}/form.json")
    assert SCAN in [package.read(f"{CASE}/{part.name}") for part in manifest.parts]
    assert package_zip(tmp_path, CASE, _keys()) == content  # the same bytes on every download


def test_a_legacy_unsigned_archive_is_still_readable_and_reported_unsigned(tmp_path: Path) -> None:
    folder = _write_legacy(tmp_path)
    check = check_package(tmp_path, CASE, _keys())
    assert (check.verdict, check.complete, check.signature) == ("unsigned_legacy", True, "missing")
    package = zipfile.ZipFile(io.BytesIO(package_zip(tmp_path, CASE, _keys())))
    assert package.read(f"{CASE}/form.json") == (folder / "form.json").read_bytes()
    assert MOTHER_ID.encode() in package.read(f"{CASE}/form.json")
    # Its hashes still hold it to account.
    (folder / "results.json").write_text('[{"step": "forged"}]', encoding="utf-8")
    altered = check_package(tmp_path, CASE, _keys())
    assert (altered.verdict, altered.corrupt) == ("failed", ["results.json"])


def test_a_legacy_archive_signed_without_a_key_id_is_reported_signed_legacy(tmp_path: Path) -> None:
    _write_legacy(tmp_path, signing=SIGNING)
    assert check_package(tmp_path, CASE, _keys()).verdict == "signed_legacy"
    # Signed by a key this deployment does not list: not accepted.
    assert check_package(tmp_path, CASE, _keys(Ed25519PrivateKey.generate())).verdict == "failed"


def test_a_part_named_outside_its_package_is_never_read(tmp_path: Path) -> None:
    folder = _write_legacy(tmp_path)
    (tmp_path / "outside.json").write_text("{}", encoding="utf-8")
    manifest = _manifest(folder)
    manifest["parts"].append(
        {"name": "../outside.json", "title_zh": "x", "sha256": hashlib.sha256(b"{}").hexdigest(), "bytes": 2}
    )
    _save_manifest(folder, manifest)
    check = check_package(tmp_path, CASE, _keys())
    assert (check.verdict, check.corrupt) == ("failed", ["../outside.json"])
    with pytest.raises(ValueError):
        package_zip(tmp_path, CASE, _keys())

"""`onething archive verify|export|key`: the archive's parts are sealed at rest, so the command
line verifies packages, exports one decrypted, and names the signing key for a rotation."""

from __future__ import annotations

import base64
import io
import json
import zipfile
from collections.abc import Iterator
from pathlib import Path

import pytest

import cli
from documents.archive import write_package
from domain.samples import MOTHER_ID
from infra.signing import archive_keys
from settings import Settings, get_settings
from tests.test_archive import CASE, CLOSED_AT, _archive_input


@pytest.fixture
def archive_dir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    monkeypatch.setenv("ONETHING_ENV", "dev")
    monkeypatch.setenv("ONETHING_ARCHIVE_DIR", str(tmp_path / "archive"))
    get_settings.cache_clear()
    write_package(tmp_path / "archive", _archive_input(), CLOSED_AT, archive_keys(get_settings()))
    yield tmp_path / "archive"
    get_settings.cache_clear()


def test_verify_passes_an_intact_package_and_fails_a_rewritten_one(
    archive_dir: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert cli.main(["archive", "verify"]) == 0
    assert capsys.readouterr().out.split() == [CASE, "verified"]

    (archive_dir / CASE / "timeline.json").write_bytes(b"[]")
    assert cli.main(["archive", "verify", CASE]) == 1
    assert capsys.readouterr().out.split() == [CASE, "failed", "corrupt=timeline.json"]


def test_export_writes_the_package_decrypted_and_refuses_a_failed_one(archive_dir: Path, tmp_path: Path) -> None:
    output = tmp_path / "package.zip"
    assert cli.main(["archive", "export", CASE, "--output", str(output)]) == 0
    package = zipfile.ZipFile(io.BytesIO(output.read_bytes()))
    assert MOTHER_ID.encode() in package.read(f"{CASE}/form.json")
    assert MOTHER_ID.encode() not in (archive_dir / CASE / "form.json").read_bytes()

    (archive_dir / CASE / "manifest.sig").unlink()
    assert cli.main(["archive", "export", CASE, "--output", str(tmp_path / "again.zip")]) == 1
    assert not (tmp_path / "again.zip").exists()


def test_key_names_the_key_that_signed_the_manifests(archive_dir: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert cli.main(["archive", "key"]) == 0
    lines = dict(line.split(": ", 1) for line in capsys.readouterr().out.splitlines())
    assert f'"signing_key_id": "{lines["key id"]}"' in (archive_dir / CASE / "manifest.json").read_text()
    # That public half, listed as retired, is what keeps the packages verifying after a rotation.
    assert len(lines["public key"]) == 44


def test_after_rotating_the_signing_key_packages_verify_once_the_old_key_is_listed_retired(
    archive_dir: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    assert cli.main(["archive", "key"]) == 0
    old_public = dict(line.split(": ", 1) for line in capsys.readouterr().out.splitlines())["public key"]
    monkeypatch.setenv("ONETHING_SIGNING_KEY", base64.b64encode(bytes(range(32))).decode())
    get_settings.cache_clear()
    assert cli.main(["archive", "verify"]) == 1
    assert capsys.readouterr().out.split() == [CASE, "failed", "signature=unknown_key"]

    monkeypatch.setenv("ONETHING_SIGNING_RETIRED_PUBLIC_KEYS", json.dumps([old_public]))
    get_settings.cache_clear()
    assert cli.main(["archive", "verify"]) == 0


def test_a_retired_public_key_that_is_not_one_is_refused_at_start() -> None:
    with pytest.raises(ValueError, match="ONETHING_SIGNING_RETIRED_PUBLIC_KEYS"):
        Settings(env="dev", signing_retired_public_keys=["bm90IGEga2V5"])

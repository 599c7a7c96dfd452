"""`onething catalogue validate|list|publish|retire` from the command line."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
import yaml

import cli
from domain.catalogue import THINGS_DIR, shipped_definitions
from settings import get_settings


@pytest.fixture
def database(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    monkeypatch.setenv("DATABASE_URL", f"sqlite:///{tmp_path / 'catalogue.db'}")
    monkeypatch.setenv("ONETHING_ENV", "dev")
    get_settings.cache_clear()
    yield tmp_path
    get_settings.cache_clear()


def test_validate_passes_every_shipped_definition(capsys: pytest.CaptureFixture[str]) -> None:
    assert cli.main(["catalogue", "validate"]) == 0
    assert f"ok  birth v{shipped_definitions()['birth'].version}" in capsys.readouterr().out


def test_validate_names_the_file_path_and_reason_of_a_broken_file(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    raw = yaml.safe_load((THINGS_DIR / "birth.yaml").read_text(encoding="utf-8"))
    raw["steps"][0]["depends_on"] = ["social_security_card"]
    broken = tmp_path / "broken.yaml"
    broken.write_text(yaml.safe_dump(raw, allow_unicode=True), encoding="utf-8")
    assert cli.main(["catalogue", "validate", str(broken)]) == 1
    assert "broken.yaml: steps[0].depends_on: dependency cycle" in capsys.readouterr().err


def test_publish_list_and_retire_versions(database: Path, capsys: pytest.CaptureFixture[str]) -> None:
    raw = yaml.safe_load((THINGS_DIR / "birth.yaml").read_text(encoding="utf-8"))
    raw["summary_zh"] = "第二版"
    new_version = database / "birth-v2.yaml"
    new_version.write_text(yaml.safe_dump(raw, allow_unicode=True), encoding="utf-8")

    shipped = shipped_definitions()["birth"].version
    assert cli.main(["catalogue", "publish", str(new_version)]) == 0
    assert f"published birth v{shipped + 1}" in capsys.readouterr().out
    assert cli.main(["catalogue", "retire", "birth", str(shipped)]) == 0
    assert cli.main(["catalogue", "list", "birth"]) == 0
    listing = capsys.readouterr().out.splitlines()
    assert [line.split()[:3] for line in listing if line.startswith("birth ")] == [
        ["birth", f"v{shipped}", "retired"],
        ["birth", f"v{shipped + 1}", "active"],
    ]
    assert cli.main(["catalogue", "retire", "birth", str(shipped + 1)]) == 1
    assert "last active version" in capsys.readouterr().err

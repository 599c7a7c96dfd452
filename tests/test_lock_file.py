"""The locks `make` and the image install from (requirements/*.txt, written by `make lock`).

Each must pin every package, with the hash of every file pip may pick, and agree with what
pyproject.toml pins: a pin changed in pyproject.toml without `make lock` fails here, not as a
different install on CI or in the image.
"""

from __future__ import annotations

import re
import tomllib
from dataclasses import dataclass
from pathlib import Path

import pytest
from packaging.requirements import Requirement
from packaging.utils import canonicalize_name

ROOT = Path(__file__).resolve().parent.parent
PYPROJECT = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))
RUNTIME_LOCK = ROOT / "requirements" / "runtime.txt"
DEV_LOCK = ROOT / "requirements" / "dev.txt"
BUILD_IN = ROOT / "requirements" / "build.in"
MAKEFILE = ROOT / "Makefile"
_HASH = re.compile(r"--hash=sha256:([0-9a-f]{64})")


@dataclass(frozen=True)
class Pin:
    version: str
    hashes: tuple[str, ...]
    marker: str | None


def read_lock(path: Path) -> dict[str, Pin]:
    """Each requirement of a hash-checked requirements file: name -> version, hashes, marker."""
    entries: list[str] = []
    pending = ""
    for line in path.read_text(encoding="utf-8").splitlines():
        if line.lstrip().startswith("#") or not line.strip():
            continue
        if line.rstrip().endswith("\\"):
            pending += line.rstrip()[:-1] + " "
            continue
        entries.append(pending + line)
        pending = ""
    assert not pending, f"{path.name} ends inside a continued line"
    pins: dict[str, Pin] = {}
    for entry in entries:
        specification = _HASH.sub("", entry).strip()
        assert not specification.startswith("-"), f"{path.name}: an option instead of a pinned package: {entry}"
        requirement = Requirement(specification)
        specifiers = list(requirement.specifier)
        assert len(specifiers) == 1 and specifiers[0].operator == "==", f"{path.name}: not pinned: {specification}"
        assert requirement.url is None, f"{path.name}: {requirement.name} from a URL"
        name = canonicalize_name(requirement.name)
        assert name not in pins, f"{path.name} pins {name} twice"
        pins[name] = Pin(specifiers[0].version, tuple(_HASH.findall(entry)), str(requirement.marker or "") or None)
    return pins


def pyproject_pins(*extras: str) -> dict[str, str]:
    """pyproject.toml's dependencies (and those of ``extras``) by name: their pinned versions."""
    requirements = list(PYPROJECT["project"]["dependencies"])
    for extra in extras:
        requirements += PYPROJECT["project"]["optional-dependencies"][extra]
    pins: dict[str, str] = {}
    for text in requirements:
        requirement = Requirement(text)
        specifiers = list(requirement.specifier)
        assert len(specifiers) == 1 and specifiers[0].operator == "==", f"pyproject.toml pins exactly: {text}"
        pins[canonicalize_name(requirement.name)] = specifiers[0].version
    return pins


LOCKS = {
    "runtime": (RUNTIME_LOCK, ()),
    "dev": (DEV_LOCK, tuple(PYPROJECT["project"]["optional-dependencies"])),
}


@pytest.mark.parametrize("lock", LOCKS)
def test_every_locked_package_is_pinned_with_its_hashes(lock: str) -> None:
    path, _ = LOCKS[lock]
    pins = read_lock(path)
    assert pins, f"{path.name} is empty"
    unhashed = sorted(name for name, pin in pins.items() if not pin.hashes)
    assert not unhashed, f"{path.name} has packages without hashes (pip --require-hashes refuses): {unhashed}"
    # `make lock`'s header: the file says how to regenerate it.
    assert "make lock" in path.read_text(encoding="utf-8").split("\n", 3)[1]


@pytest.mark.parametrize("lock", LOCKS)
def test_the_lock_holds_what_pyproject_pins(lock: str) -> None:
    path, extras = LOCKS[lock]
    locked = read_lock(path)
    wanted = pyproject_pins(*extras)
    missing = sorted(set(wanted) - set(locked))
    assert not missing, f"pyproject.toml asks for {missing}, {path.name} lacks them: run `make lock`"
    differing = {
        name: (version, locked[name].version) for name, version in wanted.items() if locked[name].version != version
    }
    assert not differing, f"pyproject.toml pins (version, locked version) {differing}: run `make lock`"


@pytest.mark.parametrize("lock", LOCKS)
def test_the_lock_holds_the_build_backend(lock: str) -> None:
    """The package is built with --no-build-isolation: its backend must come from the lock."""
    path, _ = LOCKS[lock]
    build_requires = [Requirement(text) for text in PYPROJECT["build-system"]["requires"]]
    listed = [
        Requirement(line) for line in BUILD_IN.read_text(encoding="utf-8").splitlines() if line and line[0] != "#"
    ]
    assert {str(requirement) for requirement in listed} == {str(requirement) for requirement in build_requires}
    locked = read_lock(path)
    for requirement in build_requires:
        name = canonicalize_name(requirement.name)
        assert name in locked, f"{path.name} lacks the build backend {name}"
        assert requirement.specifier.contains(locked[name].version), f"{name} {locked[name].version} ∉ {requirement}"


def test_make_tests_what_the_image_runs() -> None:
    """Every package of the image's lock is in make's, at the same version and with the same files."""
    runtime, dev = read_lock(RUNTIME_LOCK), read_lock(DEV_LOCK)
    assert set(runtime) <= set(dev), f"only in the image: {sorted(set(runtime) - set(dev))}"
    for name, pin in runtime.items():
        assert (dev[name].version, set(dev[name].hashes)) == (pin.version, set(pin.hashes)), name


def make_rule(target: str) -> tuple[str, list[str]]:
    """A Makefile rule: its prerequisites and its recipe lines (continuations joined)."""
    lines = MAKEFILE.read_text(encoding="utf-8").splitlines()
    start = next(index for index, line in enumerate(lines) if line.startswith(f"{target}:"))
    prerequisites = lines[start].split(":", 1)[1]
    recipe: list[str] = []
    for line in lines[start + 1 :]:
        if not line.startswith("\t"):
            break
        if recipe and recipe[-1].endswith("\\"):
            recipe[-1] = recipe[-1][:-1] + " " + line.strip()
        else:
            recipe.append(line.strip())
    return prerequisites, recipe


def test_make_installs_from_the_lock_with_hashes_only() -> None:
    prerequisites, recipe = make_rule("$(STAMP)")
    # The venv is reinstalled when either changes.
    assert "pyproject.toml" in prerequisites.split() and "$(DEV_LOCK)" in prerequisites.split()
    assert re.search(r"^DEV_LOCK\s*:=\s*requirements/dev\.txt$", MAKEFILE.read_text(encoding="utf-8"), re.MULTILINE)
    installs = [line for line in recipe if " install " in line]
    assert len(installs) == 2, installs
    assert "--require-hashes" in installs[0].split() and "-r $(DEV_LOCK)" in installs[0]
    # The project itself adds nothing: no dependency resolved, no build backend fetched.
    assert {"--no-deps", "--no-build-isolation", "-e", "."} <= set(installs[1].split()), installs[1]
    assert "[" not in installs[1], "no extras: they come from the lock"
    _, lock_recipe = make_rule("lock")
    assert any("$(RUNTIME_LOCK)" in line and "$(DEV_LOCK)" in line for line in lock_recipe), "`make lock` writes both"
    assert any("--generate-hashes" in line for line in MAKEFILE.read_text(encoding="utf-8").splitlines())

"""Import directions (the contracts in pyproject.toml, checked by `lint-imports` in `make test`),
and what import-linter cannot see: cli.py is an entry point nothing imports, and worker.py is
started only by the operations that run services (ops/services.py)."""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

from settings import ROOT

PACKAGES = ["api", "services", "activities", "infra", "workflows", "documents", "domain", "models", "ops", "bench"]
ENTRY_POINTS = {"cli", "worker"}
MAY_START = {"ops/services.py": {"worker"}}  # `onething worker` runs the worker in its own process


def imported_modules(path: Path) -> set[str]:
    tree = ast.parse(path.read_text(encoding="utf-8"))
    names: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names.update(alias.name.split(".")[0] for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names.add(node.module.split(".")[0])
    return names


def test_no_package_imports_an_entry_point():
    offenders: dict[str, list[str]] = {}
    for package in PACKAGES:
        for path in (ROOT / package).rglob("*.py"):
            name = str(path.relative_to(ROOT))
            forbidden = imported_modules(path) & (ENTRY_POINTS - MAY_START.get(name, set()))
            if forbidden:
                offenders[name] = sorted(forbidden)
    assert offenders == {}


def test_the_import_contracts_hold():
    linter = Path(sys.executable).with_name("lint-imports")
    finished = subprocess.run([str(linter)], cwd=ROOT, capture_output=True, text=True, timeout=300)
    assert finished.returncode == 0, finished.stdout[-3000:]
    assert "2 kept, 0 broken" in finished.stdout

"""`onething archive verify|export|key`: the electronic archive from the command line.

The parts are sealed at rest, so this is how an operator reads a package (``export``, the same
zip the download serves) and audits the archive (``verify``, the check the API runs). ``key``
prints the signing key's id and public half, to list in ONETHING_SIGNING_RETIRED_PUBLIC_KEYS
before rotating it. Exit status 1 when a package fails verification or is not there.
"""

from __future__ import annotations

import sys
from collections.abc import Sequence
from pathlib import Path

from settings import get_settings

FAILED = 1


def verify_archives(case_ids: Sequence[str]) -> int:
    """One line per package (every package when no case is named): its verdict and what is wrong."""
    from documents.archive import check_package
    from infra.signing import archive_keys

    settings = get_settings()
    keys = archive_keys(settings)
    root = settings.archive_dir
    names = list(case_ids)
    if not names and root.is_dir():
        names = sorted(path.name for path in root.iterdir() if path.is_dir())
    status = 0
    for case_id in names:
        check = check_package(root, case_id, keys)
        found = {"missing": check.missing, "corrupt": check.corrupt, "unexpected": check.unexpected}
        problems = [f"{label}={','.join(values)}" for label, values in found.items() if values]
        if check.signature not in {None, "valid"}:
            problems.append(f"signature={check.signature}")
        print(" ".join([case_id, check.verdict, *problems]))
        if not check.complete:
            status = FAILED
    return status


def export_archive(case_id: str, output: Path) -> int:
    """Write the package, unsealed, as a zip; refused for a package that fails verification."""
    from documents.archive import check_package, package_zip
    from infra.signing import archive_keys

    settings = get_settings()
    keys = archive_keys(settings)
    check = check_package(settings.archive_dir, case_id, keys)
    if not check.complete:
        print(f"{case_id}: {check.verdict}; `onething archive verify {case_id}` says why", file=sys.stderr)
        return FAILED
    output.write_bytes(package_zip(settings.archive_dir, case_id, keys))
    print(f"{case_id} ({check.verdict}) -> {output}")
    return 0


def show_signing_key() -> int:
    from infra.signing import key_id, public_key_text, verify_key

    public = verify_key(get_settings())
    print(f"key id: {key_id(public)}")
    print(f"public key: {public_key_text(public)}")
    return 0

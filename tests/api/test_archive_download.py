"""The electronic archive made readable: the package of a closed case downloads as a zip for its
applicant and the supervisors of its division, holds the uploaded files, and carries an Ed25519
signature of its manifest, so rewriting a part together with its hash is detected. On disk the
parts are sealed; the download unseals them."""

from __future__ import annotations

import asyncio
import hashlib
import io
import json
import zipfile
from typing import Any

from cryptography.exceptions import InvalidSignature

from domain.samples import MOTHER_WITHOUT_MARRIAGE_RECORD_ID
from infra.signing import verify_key
from tests.api.helpers import assert_error
from tests.api.test_case_files import _owing_case, _upload, pdf, supply_upload


async def _archived_with_a_file(api, login, cases, settings) -> tuple[dict[str, Any], bytes]:
    """A case whose marriage certificate was uploaded and supplied, then refused (archived at once)."""
    case = await _owing_case(cases)
    document = pdf(text="archived marriage certificate")
    sha256 = (await _upload(api, login, case["case_id"], document)).json()["sha256"]
    supplied = await supply_upload(api, login, case["case_id"], sha256)
    assert supplied.status_code == 200, supplied.text
    await cases.claim(case, "birth_certificate")
    refused = await cases.act(
        "refuse", case["case_id"], "birth_certificate", as_user="hospital_officer", body={"reason": "材料不符"}
    )
    assert refused.status_code == 200, refused.text
    # The archive activity runs after the refusal's answer: wait for its signed manifest.
    signature = settings.archive_dir / case["case_id"] / "manifest.sig"
    for _ in range(100):
        if signature.exists():
            break
        await asyncio.sleep(0.1)
    assert signature.exists(), "the refused case was not archived"
    return case, document


async def test_the_applicant_downloads_the_signed_package_with_the_uploaded_file(api, login, cases, api_settings):
    case, document = await _archived_with_a_file(api, login, cases, api_settings)

    response = await api.get(f"/cases/{case['case_id']}/archive/download", headers=await login("applicant1"))

    assert response.status_code == 200, response.text
    assert response.headers["content-type"] == "application/zip"
    package = zipfile.ZipFile(io.BytesIO(response.content))
    names = {name.removeprefix(f"{case['case_id']}/") for name in package.namelist()}
    assert {"manifest.json", "manifest.sig", "form.json", "timeline.json"} <= names
    (uploaded,) = [name for name in names if name.startswith("files/")]
    assert package.read(f"{case['case_id']}/{uploaded}") == document
    manifest = package.read(f"{case['case_id']}/manifest.json")
    verify_key(api_settings).verify(package.read(f"{case['case_id']}/manifest.sig"), manifest)  # raises if not
    listed = {part["name"]: part["sha256"] for part in json.loads(manifest)["parts"]}
    assert listed[uploaded] == hashlib.sha256(document).hexdigest()
    # A supervisor of the division downloads it too.
    supervised = await api.get(f"/cases/{case['case_id']}/archive/download", headers=await login("supervisor"))
    assert supervised.status_code == 200 and supervised.content == response.content


async def test_rewriting_a_part_and_its_hash_breaks_the_signature(api, login, cases, api_settings):
    case, _ = await _archived_with_a_file(api, login, cases, api_settings)
    folder = api_settings.archive_dir / case["case_id"]
    check = await api.get(f"/cases/{case['case_id']}/archive", headers=await login("supervisor"))
    assert check.json()["complete"] is True and check.json()["signature"] == "valid"

    forged = b'{"forged": true}'
    (folder / "results.json").write_bytes(forged)
    manifest = json.loads((folder / "manifest.json").read_text(encoding="utf-8"))
    for part in manifest["parts"]:
        if part["name"] == "results.json":
            part["sha256"], part["bytes"] = hashlib.sha256(forged).hexdigest(), len(forged)
    (folder / "manifest.json").write_text(json.dumps(manifest, indent=2), encoding="utf-8")

    again = (await api.get(f"/cases/{case['case_id']}/archive", headers=await login("supervisor"))).json()
    # The forged part is not sealed for the package either.
    assert (again["complete"], again["verdict"], again["signature"]) == (False, "failed", "invalid")
    assert again["corrupt"] == ["results.json"]
    # A package that fails verification is not handed out.
    download = await api.get(f"/cases/{case['case_id']}/archive/download", headers=await login("applicant1"))
    assert_error(download, 409, "conflict")
    try:
        verify_key(api_settings).verify((folder / "manifest.sig").read_bytes(), (folder / "manifest.json").read_bytes())
    except InvalidSignature:
        pass
    else:
        raise AssertionError("the forged manifest verified")


async def test_an_archive_reads_back_through_the_download_after_encryption(api, login, cases, api_settings):
    case, document = await _archived_with_a_file(api, login, cases, api_settings)
    folder = api_settings.archive_dir / case["case_id"]
    mother_id = MOTHER_WITHOUT_MARRIAGE_RECORD_ID  # the mother's, on the form _owing_case files
    on_disk = {path.relative_to(folder).as_posix(): path.read_bytes() for path in folder.rglob("*") if path.is_file()}
    (uploaded,) = [name for name in on_disk if name.startswith("files/")]
    assert document not in on_disk[uploaded] and mother_id.encode() not in on_disk["form.json"]
    check = (await api.get(f"/cases/{case['case_id']}/archive", headers=await login("supervisor"))).json()
    assert (check["verdict"], check["complete"]) == ("verified", True)

    response = await api.get(f"/cases/{case['case_id']}/archive/download", headers=await login("applicant1"))

    assert response.status_code == 200, response.text
    package = zipfile.ZipFile(io.BytesIO(response.content))
    assert package.read(f"{case['case_id']}/{uploaded}") == document
    assert mother_id.encode() in package.read(f"{case['case_id']}/form.json")
    for part in json.loads(package.read(f"{case['case_id']}/manifest.json"))["parts"]:
        assert hashlib.sha256(package.read(f"{case['case_id']}/{part['name']}")).hexdigest() == part["sha256"]


async def test_only_the_applicant_and_supervisors_download_and_an_open_case_has_nothing(
    api, login, cases, api_settings
):
    case, _ = await _archived_with_a_file(api, login, cases, api_settings)
    path = f"/cases/{case['case_id']}/archive/download"

    assert_error(await api.get(path, headers=await login("hospital_officer")), 403, "forbidden")
    assert_error(await api.get(path, headers=await login("applicant2")), 404, "not_found")
    open_case = await cases.submit()
    assert_error(
        await api.get(f"/cases/{open_case['case_id']}/archive/download", headers=await login("applicant1")),
        409,
        "conflict",
    )

"""Electronic licences (电子证照, issue 15): a certificate step issues a signed licence; its holder
downloads the PDF; anyone checks it by number without learning who holds it; a licence altered
by one byte no longer verifies; and the hukou step takes the birth licence from the platform."""

from __future__ import annotations

import base64
import json
from typing import Any

import pytest
from cryptography.exceptions import InvalidSignature
from sqlmodel import Session, col, select

from api.deps import get_settings
from domain.licences import canonical, signature_holds
from infra.signing import public_key_text, verify_key
from models.tables import AuditRecord, LicenceRecord
from tests.api.console_client import console_users
from tests.api.helpers import assert_error, dependencies_of, task_id

BIRTH_LICENCE = "birth_certificate"


async def _licensed(cases) -> tuple[dict[str, Any], dict[str, Any]]:
    """A case whose hospital step is done: its 出生医学证明 issued."""
    case = await cases.submit(channel="hospital")
    await cases.complete(case, BIRTH_LICENCE)
    return case, await _only_licence(cases, case)


async def _only_licence(cases, case: dict[str, Any]) -> dict[str, Any]:
    response = await cases.api.get(f"/cases/{case['case_id']}/licences", headers=await cases.login("applicant1"))
    assert response.status_code == 200, response.text
    (licence,) = response.json()
    return dict(licence)


async def test_the_birth_step_issues_a_licence_the_holder_downloads_as_a_pdf(api, login, cases):
    _, licence = await _licensed(cases)

    assert licence["step"] == BIRTH_LICENCE and licence["title_zh"] == "出生医学证明"
    assert licence["number"].startswith("DZZZ-") and "hukou_registration" in licence["reused_by"]
    response = await api.get(f"/licences/{licence['number']}", headers=await login("applicant1"))
    assert response.status_code == 200, response.text
    assert response.headers["content-type"] == "application/pdf"
    assert response.content.startswith(b"%PDF-") and b"%%EOF" in response.content[-64:]
    assert b"WenQuanYi" in response.content  # the Chinese layout is set in the embedded CJK font
    again = await api.get(f"/licences/{licence['number']}", headers=await login("hospital_officer"))
    assert again.status_code == 200 and again.content == response.content  # the same licence, the same file


async def test_anyone_verifies_a_licence_by_number_and_learns_no_personal_data(api, cases):
    case, licence = await _licensed(cases)

    response = await api.get(f"/licences/{licence['number']}/verify")  # no login: the QR code's address

    assert response.status_code == 200, response.text
    body = response.json()
    assert body["status"] == "valid" and body["title_zh"] == "出生医学证明"
    assert body["issuer"] and body["issued_at"]
    form = case["_form"]
    for personal in (form["applicant"]["name"], form["applicant"]["id_number"], form["newborn"]["name"]):
        assert personal not in response.text
    unknown = (await api.get("/licences/DZZZ-2026-000000000000/verify")).json()
    assert unknown == {"status": "unknown", "title_zh": None, "issued_at": None, "issuer": None}


async def test_a_licence_altered_by_one_byte_no_longer_verifies(api, cases, engine, api_settings):
    _, licence = await _licensed(cases)
    with Session(engine) as session:
        stored = session.get(LicenceRecord, licence["number"])
        assert stored is not None
        content, signature = dict(stored.content), stored.signature
    key = verify_key(api_settings)
    signed = canonical(content)
    key.verify(base64.b64decode(signature), signed)  # the licence as issued verifies
    for position in (0, len(signed) // 2, len(signed) - 1):
        flipped = bytearray(signed)
        flipped[position] ^= 0x01
        with pytest.raises(InvalidSignature):
            key.verify(base64.b64decode(signature), bytes(flipped))

    # Altered where it is kept, it is no longer a licence the platform issued.
    forged = {**content, "holder_name": content["holder_name"] + "乙"}
    assert not signature_holds(forged, signature, key)
    with Session(engine) as session:
        row = session.get(LicenceRecord, licence["number"])
        assert row is not None
        row.content = json.loads(json.dumps(forged))
        session.add(row)
        session.commit()
    assert (await api.get(f"/licences/{licence['number']}/verify")).json()["status"] == "unknown"


async def test_a_licence_issued_before_a_signing_key_rotation_verifies_while_the_old_key_is_listed(
    api, api_app, cases, api_settings
):
    _, licence = await _licensed(cases)
    old_public = public_key_text(verify_key(api_settings))
    rotated = api_settings.model_copy(update={"signing_key": base64.b64encode(b"n" * 32).decode()})
    path = f"/licences/{licence['number']}/verify"

    api_app.dependency_overrides[get_settings] = lambda: rotated
    assert (await api.get(path)).json()["status"] == "unknown"  # the new key alone did not sign it
    listed = rotated.model_copy(update={"signing_retired_public_keys": [old_public]})
    api_app.dependency_overrides[get_settings] = lambda: listed
    assert (await api.get(path)).json()["status"] == "valid"


async def test_only_the_holder_and_the_cases_staff_download_the_pdf(api, login, cases):
    _, licence = await _licensed(cases)
    path = f"/licences/{licence['number']}"

    assert_error(await api.get(path, headers=await login("applicant2")), 404, "not_found")
    assert_error(await api.get(path, headers=await login("supervisor")), 403, "forbidden")
    assert_error(await api.get(path), 401, "unauthorized")


async def test_the_hukou_step_takes_the_birth_licence_instead_of_the_paper(api, cases):
    case, licence = await _licensed(cases)
    present = [item["step"] for item in case["steps"]]
    for step in dependencies_of("hukou_registration", present):
        if step != BIRTH_LICENCE:  # done already: it issued the licence
            await cases.complete(case, step)

    async with console_users(api) as users:
        police = await users("police_officer")
        page = await police.get(f"/inbox/{task_id(case['case_id'], 'hukou_registration')}")
    assert page.status == 200, page.html
    (shown,) = page.all("reused-licence")
    assert shown.attrs["data-number"] == licence["number"] and "有效" in " ".join(shown.text.split())
    # The service guide says so.
    guide = await api.get("/catalogue/birth/guide", headers={"Accept": "text/html"})
    assert "直接调用电子证照：出生医学证明，无需提交纸质证明" in guide.text


async def test_an_administrator_revokes_a_licence_and_its_check_says_so(api, login, cases, engine):
    _, licence = await _licensed(cases)
    path = f"/licences/{licence['number']}/revoke"

    assert_error(
        await api.post(path, json={"reason": "法院判决撤销"}, headers=await login("hospital_officer")), 403, "forbidden"
    )
    assert_error(
        await api.post(path, json={"reason": ""}, headers=await login("admin")), 422, "validation_error", ["reason"]
    )
    assert (await api.get(f"/licences/{licence['number']}/verify")).json()["status"] == "valid"
    revoked = await api.post(path, json={"reason": "法院判决撤销"}, headers=await login("admin"))
    assert revoked.status_code == 200, revoked.text
    assert revoked.json()["status"] == "revoked"
    assert (await api.get(f"/licences/{licence['number']}/verify")).json()["status"] == "revoked"
    assert_error(await api.post(path, json={"reason": "再次撤销"}, headers=await login("admin")), 409, "conflict")
    with Session(engine) as session:
        (row,) = session.execute(select(AuditRecord).where(col(AuditRecord.action) == "licence_revoke")).scalars()
    assert (row.actor, row.target, row.detail["reason"]) == ("admin", licence["number"], "法院判决撤销")

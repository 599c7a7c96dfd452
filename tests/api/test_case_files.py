"""Materials as files (issue 15): the applicant uploads a material the case asks for; its type is
read from its content, it is stored once and encrypted, the officers of the case read it back,
补正 takes it by reference, and bad uploads are refused in the one error shape with nothing stored."""

from __future__ import annotations

import asyncio
import hashlib
import io
from pathlib import Path
from typing import Any

import httpx
import uvicorn
from PIL import Image
from sqlalchemy import func, select
from sqlmodel import Session

from domain.samples import MOTHER_WITHOUT_MARRIAGE_RECORD_ID
from models.tables import CaseFileRecord
from ops.processes import free_port
from tests.api.console_client import console_users
from tests.api.helpers import PROXY, assert_error, birth_form, task_id
from tests.api.test_payload_privacy import payloads_in

MATERIAL = "marriage_certificate"  # what a mother without a marriage record on file owes


def pdf(pages: int = 1, text: str = "结婚证") -> bytes:
    """A small, complete PDF of ``pages`` pages."""
    page_objects = "".join(f"{3 + n} 0 obj << /Type /Page /Parent 2 0 R >> endobj\n" for n in range(pages))
    kids = " ".join(f"{3 + n} 0 R" for n in range(pages))
    body = (
        "%PDF-1.7\n1 0 obj << /Type /Catalog /Pages 2 0 R >> endobj\n"
        f"2 0 obj << /Type /Pages /Kids [{kids}] /Count {pages} >> endobj\n{page_objects}"
        f"% {text}\ntrailer << /Root 1 0 R >>\n%%EOF\n"
    )
    return body.encode()


def png(width: int = 400, height: int = 300) -> bytes:
    buffer = io.BytesIO()
    Image.new("RGB", (width, height), (200, 30, 30)).save(buffer, format="PNG")
    return buffer.getvalue()


async def _owing_case(cases) -> dict[str, Any]:
    case = await cases.submit(form=birth_form(mother_id=MOTHER_WITHOUT_MARRIAGE_RECORD_ID), proxy=PROXY)
    assert case["status"] == "awaiting_supplement"
    return case


async def _upload(api, login, case_id: str, data: bytes, *, material: str = MATERIAL, **options: str):
    as_user = options.get("as_user", "applicant1")
    name, content_type = options.get("name", "结婚证.pdf"), options.get("content_type", "application/pdf")
    files = {"file": (name, data, content_type)}
    return await api.post(f"/cases/{case_id}/materials/{material}", files=files, headers=await login(as_user))


async def supply_upload(api, login, case_id: str, sha256: str):
    """补正 with the uploaded file of the owed material, by its hash."""
    return await api.post(
        f"/cases/{case_id}/supplements",
        json={"materials": {MATERIAL: f"sha256:{sha256}"}},
        headers=await login("applicant1"),
    )


def _stored_blobs(settings) -> list[Path]:
    root = Path(settings.file_store_dir)
    return [path for path in root.rglob("*") if path.is_file()] if root.exists() else []


def _rows(engine) -> int:
    with Session(engine) as session:
        return int(session.execute(select(func.count()).select_from(CaseFileRecord)).scalar_one())


async def test_an_uploaded_pdf_is_stored_encrypted_once_and_reaches_the_officer(
    api, login, cases, engine, api_settings
):
    case = await _owing_case(cases)
    document = pdf(pages=2)

    response = await _upload(api, login, case["case_id"], document)

    assert response.status_code == 201, response.text
    assert response.json() | {"uploaded_by": None} == {
        "material": MATERIAL,
        "sha256": hashlib.sha256(document).hexdigest(),
        "size": len(document),
        "content_type": "application/pdf",
        "pages": 2,
        "uploaded_by": None,
    }
    (blob,) = _stored_blobs(api_settings)
    assert document not in blob.read_bytes() and b"%PDF" not in blob.read_bytes()  # encrypted at rest
    # The same file again is the same file: one blob, one row.
    again = await _upload(api, login, case["case_id"], document)
    assert again.status_code == 201 and again.json()["sha256"] == response.json()["sha256"]
    assert len(_stored_blobs(api_settings)) == 1 and _rows(engine) == 1

    sha256 = response.json()["sha256"]
    # Supplied in 补正, the case reaches the hospital, whose officer reads the file.
    supplied = await supply_upload(api, login, case["case_id"], sha256)
    assert supplied.status_code == 200, supplied.text
    listed = await api.get(f"/cases/{case['case_id']}/files", headers=await login("hospital_officer"))
    assert [item["sha256"] for item in listed.json()] == [sha256]
    read = await api.get(f"/cases/{case['case_id']}/files/{sha256}", headers=await login("hospital_officer"))
    assert read.status_code == 200 and read.content == document
    assert read.headers["content-type"] == "application/pdf"
    # Supervisors read cases masked: never the files, which hold personal data in full.
    supervised = await api.get(f"/cases/{case['case_id']}/files/{sha256}", headers=await login("supervisor"))
    assert_error(supervised, 403, "forbidden")
    # The officer reads; uploading is the applicant's or the accepting window's.
    assert_error(await _upload(api, login, case["case_id"], pdf(), as_user="hospital_officer"), 403, "forbidden")


async def test_the_uploaded_file_is_supplied_in_buzheng_by_its_hash_and_the_case_goes_on(api, login, cases):
    case = await _owing_case(cases)
    sha256 = (await _upload(api, login, case["case_id"], png(), name="结婚证.png", content_type="image/png")).json()[
        "sha256"
    ]

    unknown = await api.post(
        f"/cases/{case['case_id']}/supplements",
        json={"materials": {MATERIAL: "sha256:" + "0" * 64}},
        headers=await login("applicant1"),
    )
    assert_error(unknown, 422, "validation_error", [f"materials.{MATERIAL}"])
    supplied = await supply_upload(api, login, case["case_id"], sha256)
    assert supplied.status_code == 200, supplied.text
    assert supplied.json()["missing_materials"] == []
    (view,) = [m for m in supplied.json()["materials"] if m["code"] == MATERIAL]
    assert view["reference"] == f"sha256:{sha256}"


async def test_a_renamed_executable_is_refused_by_its_content_and_nothing_is_stored(
    api, login, cases, engine, api_settings
):
    case = await _owing_case(cases)
    executable = b"\x7fELF\x02\x01\x01\x00" + b"\x00" * 2000

    response = await _upload(api, login, case["case_id"], executable, name="结婚证.pdf")

    assert_error(response, 415, "unsupported_media_type", ["file"])
    assert _stored_blobs(api_settings) == [] and _rows(engine) == 0


async def test_empty_cut_short_and_broken_files_are_422_naming_the_file(api, login, cases, engine, api_settings):
    case = await _owing_case(cases)
    broken_png = png()[:200]
    for data in (b"", pdf()[:-20], broken_png, png(50, 50)):
        assert_error(await _upload(api, login, case["case_id"], data), 422, "validation_error", ["file"])
    assert _stored_blobs(api_settings) == [] and _rows(engine) == 0


async def test_a_file_over_the_limit_is_413_and_nothing_is_stored(api, login, cases, engine, api_settings):
    case = await _owing_case(cases)
    too_large = b"%PDF-1.7\n" + b"0" * api_settings.max_upload_bytes

    assert_error(await _upload(api, login, case["case_id"], too_large), 413, "payload_too_large")
    assert _stored_blobs(api_settings) == [] and _rows(engine) == 0


async def test_a_material_the_case_does_not_ask_for_is_422_naming_it(api, login, cases, engine):
    case = await _owing_case(cases)

    response = await _upload(api, login, case["case_id"], pdf(), material="business_licence")

    assert_error(response, 422, "validation_error", ["material"])
    assert _rows(engine) == 0


async def test_a_stranger_learns_nothing_and_the_accepting_window_uploads_for_a_walk_in(api, login, cases, engine):
    case = await _owing_case(cases)

    assert_error(await _upload(api, login, case["case_id"], pdf(), as_user="applicant2"), 404, "not_found")
    walk_in = await cases.submit(as_user="hospital_clerk", form=birth_form(mother_id=MOTHER_WITHOUT_MARRIAGE_RECORD_ID))
    assert (await _upload(api, login, walk_in["case_id"], pdf(), as_user="hospital_clerk")).status_code == 201
    assert _rows(engine) == 1


async def test_the_workflow_history_holds_the_files_hash_never_its_bytes(api, login, cases, env):
    case = await _owing_case(cases)
    document = pdf(text="MARRIAGE-CERTIFICATE-SCAN-0042")
    sha256 = (await _upload(api, login, case["case_id"], document)).json()["sha256"]
    supplied = await supply_upload(api, login, case["case_id"], sha256)
    assert supplied.status_code == 200, supplied.text

    history = await env.client.get_workflow_handle(case["case_id"]).fetch_history()
    codec = env.client.data_converter.payload_codec
    assert codec is not None
    payloads = [payload for event in history.events for payload in payloads_in(event)]
    decrypted = b"".join(payload.data for payload in await codec.decode(payloads))
    assert f"sha256:{sha256}".encode() in decrypted  # the reference is there (the check can fail)
    assert b"MARRIAGE-CERTIFICATE-SCAN-0042" not in decrypted and b"%PDF" not in decrypted


async def test_the_officer_opens_the_uploaded_file_from_the_task_page(api, login, cases):
    case = await _owing_case(cases)
    document = pdf()
    sha256 = (await _upload(api, login, case["case_id"], document)).json()["sha256"]
    supplied = await supply_upload(api, login, case["case_id"], sha256)
    assert supplied.status_code == 200, supplied.text

    async with console_users(api) as users:
        officer = await users("hospital_officer")
        page = await officer.get(f"/inbox/{task_id(case['case_id'], 'birth_certificate')}")
        assert page.status == 200, page.html
        (link,) = page.all("material-file")
        assert link.attrs["href"] == f"/files/{case['case_id']}/{sha256}"
        opened = await officer.client.get(link.attrs["href"])
        assert opened.status_code == 200 and opened.content == document
        assert opened.headers["content-type"] == "application/pdf"


async def test_the_applicant_uploads_the_owed_file_in_the_console_and_supplies_it(api, login, cases):
    case = await _owing_case(cases)
    page_path = f"/my/cases/{case['case_id']}"
    upload_action = f"{page_path}/materials/{MATERIAL}"

    async with console_users(api) as users:
        applicant = await users("applicant1")
        page = await applicant.get(page_path)
        upload = page.form(upload_action)
        refused = await applicant.client.post(
            upload_action, data=upload.fields, files={"file": ("结婚证.pdf", b"MZ\x90\x00" * 300, "application/pdf")}
        )
        assert refused.status_code == 303
        assert "未上传" in (await applicant.follow(refused)).html
        document = pdf()
        uploaded = await applicant.client.post(
            upload_action, data=upload.fields, files={"file": ("结婚证.pdf", document, "application/pdf")}
        )
        assert uploaded.status_code == 303, uploaded.text
        page = await applicant.get(page_path)
        offered = page.one(f"supplement-{MATERIAL}").attrs["value"]
        assert offered == f"sha256:{hashlib.sha256(document).hexdigest()}"
        supplied = await applicant.submit(page_path, f"{page_path}/supplement", {f"materials.{MATERIAL}": offered})
        assert supplied.status_code == 303, supplied.text
    after = await cases.read(case["case_id"], as_user="applicant1")
    assert after["status"] != "awaiting_supplement" and after["missing_materials"] == []


async def test_an_upload_cut_off_mid_body_leaves_nothing_behind(api, api_app, login, cases, engine, api_settings):
    """The connection drops after half the multipart body: no blob, no temporary file, no row;
    the same applicant's complete upload of another file then goes through on its own."""
    case = await _owing_case(cases)
    port = free_port()
    server = uvicorn.Server(uvicorn.Config(api_app, host="127.0.0.1", port=port, lifespan="off", log_level="warning"))
    serving = asyncio.create_task(server.serve())
    while not server.started:
        assert not serving.done(), "the API did not start"
        await asyncio.sleep(0.02)
    try:
        interrupted = pdf(pages=40, text="半途断开的上传" * 2000)
        boundary = "onething-cut-off"
        body = (
            (
                f'--{boundary}\r\nContent-Disposition: form-data; name="file"; filename="结婚证.pdf"\r\n'
                "Content-Type: application/pdf\r\n\r\n"
            ).encode()
            + interrupted
            + f"\r\n--{boundary}--\r\n".encode()
        )
        authorization = (await login("applicant1"))["Authorization"]
        head = (
            f"POST /cases/{case['case_id']}/materials/{MATERIAL} HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\n"
            f"Authorization: {authorization}\r\nContent-Type: multipart/form-data; boundary={boundary}\r\n"
            f"Content-Length: {len(body)}\r\nConnection: close\r\n\r\n"
        )
        _reader, writer = await asyncio.open_connection("127.0.0.1", port)
        writer.write(head.encode() + body[: len(body) // 2])
        await writer.drain()
        await asyncio.sleep(0.3)  # the server is now reading the body, waiting for the rest
        writer.close()
        await writer.wait_closed()
        for _ in range(250):  # the request's task ends once the app has seen the disconnect
            if not server.server_state.tasks:
                break
            await asyncio.sleep(0.02)
        assert not server.server_state.tasks, "the interrupted request is still being handled"
        assert _stored_blobs(api_settings) == [] and _rows(engine) == 0

        complete = pdf(text="完整上传")
        async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{port}") as over_tcp:
            uploaded = await _upload(over_tcp, login, case["case_id"], complete)
    finally:
        server.should_exit = True
        await serving
    assert uploaded.status_code == 201, uploaded.text
    assert uploaded.json()["sha256"] == hashlib.sha256(complete).hexdigest()
    assert [blob.name for blob in _stored_blobs(api_settings)] == [hashlib.sha256(complete).hexdigest()]
    assert _rows(engine) == 1

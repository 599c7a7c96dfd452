"""The authorization matrix: every endpoint × every role → the status it answers.

Roles, for one birth case on the hospital channel owned by applicant1 whose hospital
steps are open: anonymous, the owning applicant, another applicant, the hospital's
clerk (the accepting unit), the hospital's officer (a department whose step has
opened), the HR & social security officer (whose step has not), a supervisor and an
admin. Each role sends a well-formed request (valid body, real ids), so a status here
is the access decision and not a validation error. State-changing rows act on
fixtures of their own, so the one role allowed to act succeeds without disturbing
the other rows.

A route without a row fails `test_every_route_has_a_row_and_every_row_a_route`.
"""

from __future__ import annotations

import base64
import hashlib
import json
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import pytest
from fastapi.routing import APIRoute, iter_route_contexts

from api.accounts import DEMO_IDENTITIES
from api.main import create_app
from domain.catalogue import shipped_definitions
from settings import Settings
from tests.api.helpers import Cases, Login, birth_form, filed_by, result_for, task_id
from tests.conftest import test_settings as settings_for

ROLES = (
    "anonymous",
    "owner",
    "other_applicant",
    "clerk",
    "involved_officer",
    "other_officer",
    "supervisor",
    "admin",
)
USERS = {
    "owner": "applicant1",
    "other_applicant": "applicant2",
    "clerk": "hospital_clerk",
    "involved_officer": "hospital_officer",
    "other_officer": "hr_social_security_officer",
    "supervisor": "supervisor",
    "admin": "admin",
}
COMPLAINT = "出生医学证明办理超时，窗口答复不清。"
UPLOADED_PDF = (
    b"%PDF-1.7\n1 0 obj << /Type /Catalog /Pages 2 0 R >> endobj\n"
    b"2 0 obj << /Type /Pages /Kids [3 0 R] /Count 1 >> endobj\n"
    b"3 0 obj << /Type /Page /Parent 2 0 R >> endobj\ntrailer << /Root 1 0 R >>\n%%EOF\n"
)


@dataclass
class Call:
    """One request, without its Authorization header (added per role)."""

    path: str
    json: Any = None
    data: dict[str, str] | None = None
    params: dict[str, str] | None = None
    headers: dict[str, str] = field(default_factory=dict)
    signed_in: bool = True
    files: dict[str, Any] | None = None


class World:
    """The fixtures the rows act on, each made the first time a row asks for it."""

    def __init__(self, api: httpx.AsyncClient, login: Login, cases: Cases) -> None:
        self.api = api
        self.login = login
        self.cases = cases
        self._made: dict[str, Any] = {}

    async def _once(self, name: str, make: Callable[[], Awaitable[Any]]) -> Any:
        if name not in self._made:
            self._made[name] = await make()
        return self._made[name]

    async def _post(self, path: str, user: str, body: Any, status: int = 200) -> dict[str, Any]:
        response = await self.api.post(path, json=body, headers=await self.login(user))
        assert response.status_code == status, response.text
        result: dict[str, Any] = response.json()
        return result

    async def case(self, name: str = "read") -> dict[str, Any]:
        """A case whose birth-certificate step the hospital officer has claimed (vaccination still open)."""

        async def make() -> dict[str, Any]:
            case = await self.cases.submit()
            await self.cases.claim(case, "birth_certificate")
            return case

        return dict(await self._once(f"case:{name}", make))

    async def case_id(self, name: str = "read") -> str:
        return str((await self.case(name))["case_id"])

    async def uploaded(self) -> str:
        """The read case, with the owner's upload of the mother's ID card."""

        async def make() -> str:
            case_id = await self.case_id()
            files = {"file": ("身份证.pdf", UPLOADED_PDF, "application/pdf")}
            headers = await self.login("applicant1")
            response = await self.api.post(f"/cases/{case_id}/materials/mother_id_card", files=files, headers=headers)
            assert response.status_code == 201, response.text
            return case_id

        return str(await self._once("uploaded", make))

    async def awaiting_supplement(self, name: str) -> str:
        async def make() -> str:
            case = await self.case(f"awaiting:{name}")
            body = {"missing": ["mother_id_card"], "reason": "证件模糊"}
            await self._post(f"/tasks/{task_id(case['case_id'], 'birth_certificate')}/return", "hospital_officer", body)
            return str(case["case_id"])

        return str(await self._once(f"awaiting:{name}", make))

    async def refused(self) -> str:
        async def make() -> str:
            case = await self.case("refused")
            body = {"reason": "重复申请"}
            await self._post(f"/tasks/{task_id(case['case_id'], 'birth_certificate')}/refuse", "hospital_officer", body)
            return str(case["case_id"])

        return str(await self._once("refused", make))

    async def operated(self, name: str, *steps: tuple[str, str, Any]) -> str:
        """A case of its own whose birth-certificate step the hospital officer has claimed,
        then taken through ``steps`` ((action, user, body), each answered 200)."""

        async def make() -> str:
            case = await self.case(f"operated:{name}")
            for action, user, body in steps:
                await self._post(f"/tasks/{task_id(case['case_id'], 'birth_certificate')}/{action}", user, body)
            return str(case["case_id"])

        return str(await self._once(f"operated:{name}", make))

    async def at_window(self, name: str) -> str:
        """A case the hospital's clerk accepted at the window, no step taken up yet."""

        async def make() -> str:
            return str((await self.cases.submit(as_user="hospital_clerk"))["case_id"])

        return str(await self._once(f"window:{name}", make))

    async def delivered(self) -> str:
        async def make() -> str:
            case = await self.cases.submit()
            await self.cases.finish(case)
            return str(case["case_id"])

        return str(await self._once("delivered", make))

    async def complaint(self, state: str) -> str:
        """The owner's complaint about the read case's hospital step: filed, assigned (to the hospital) or answered."""

        async def make() -> str:
            body = {"case_id": await self.case_id(), "step": "birth_certificate", "content": COMPLAINT}
            complaint_id = str((await self._post("/complaints", "applicant1", body, 201))["complaint_id"])
            if state in {"assigned", "answered"}:
                await self._post(f"/complaints/{complaint_id}/assign", "supervisor", {"department": "hospital"})
            if state == "answered":
                await self._post(f"/complaints/{complaint_id}/answer", "hospital_officer", {"answer": "已核实办理。"})
            return complaint_id

        return str(await self._once(f"complaint:{state}", make))

    async def hospital_notice(self) -> str:
        async def make() -> str:
            message = "请加快办理（督办签收用）"
            body = {"case_id": await self.case_id(), "step": "birth_certificate", "message": message}
            await self._post("/supervision/notices", "supervisor", body, 201)
            response = await self.api.get("/notices", headers=await self.login("hospital_officer"))
            return next(item["notice_id"] for item in response.json()["items"] if item["message_zh"] == message)

        return str(await self._once("notice", make))

    async def retirable_version(self) -> int:
        async def make() -> int:
            raw = shipped_definitions()["retirement"].model_dump(mode="json")
            return int((await self._post("/catalogue/retirement/versions", "admin", raw, 201))["version"])

        return int(await self._once("version", make))

    async def encrypted_payloads(self) -> dict[str, Any]:
        async def make() -> dict[str, Any]:
            return await self._post("/codec/encode", "admin", PLAIN_PAYLOADS)

        return dict(await self._once("encrypted", make))


NEW_UNIT = {"department": "police", "division_code": "330110"}  # 余杭区: not among the demo's counties


def _b64(text: str) -> str:
    return base64.b64encode(text.encode()).decode()


PLAIN_PAYLOADS = {"payloads": [{"metadata": {"encoding": _b64("json/plain")}, "data": _b64(json.dumps({"x": 1}))}]}

Builder = Callable[[World, str], Awaitable[Call]]


def fixed(path: str, **options: Any) -> Builder:
    async def build(world: World, role: str) -> Call:
        return Call(path, **options)

    return build


def on_case(template: str, case: str = "read", **options: Any) -> Builder:
    async def build(world: World, role: str) -> Call:
        return Call(template.format(case_id=await world.case_id(case)), **options)

    return build


def on_task(action: str, case: str, step: str, body: Callable[[dict[str, Any]], Any] | None = None) -> Builder:
    async def build(world: World, role: str) -> Call:
        target = await world.case(case)
        payload = body(target) if body else None
        return Call(f"/tasks/{task_id(target['case_id'], step)}/{action}", json=payload)

    return build


def on_complaint(state: str, suffix: str = "", body: Any = None) -> Builder:
    async def build(world: World, role: str) -> Call:
        return Call(f"/complaints/{await world.complaint(state)}{suffix}", json=body)

    return build


async def login_form(world: World, role: str) -> Call:
    # Logging in needs no token: every role, anonymous included, logs in as itself (anonymous as applicant1).
    return Call("/auth/token", data={"username": USERS.get(role, "applicant1"), "password": "demo"}, signed_in=False)


async def own_logout(world: World, role: str) -> Call:
    # Each role ends a session of its own: the token the other rows send stays live.
    if role == "anonymous":
        return Call("/auth/logout", signed_in=False)
    response = await world.api.post("/auth/token", data={"username": USERS[role], "password": "demo"})
    assert response.status_code == 200, response.text
    bearer = {"Authorization": f"Bearer {response.json()['access_token']}"}
    return Call("/auth/logout", headers=bearer, signed_in=False)


async def new_case(world: World, role: str) -> Call:
    # Each applicant files for themself (another's application needs 代办, test_verified_identity.py).
    username = USERS.get(role, "")
    form = filed_by(birth_form(), username) if username in DEMO_IDENTITIES else birth_form()
    return Call("/cases", json={"thing": "birth", "channel": "hospital", "form": form})


async def upload(world: World, role: str) -> Call:
    files = {"file": ("身份证.pdf", UPLOADED_PDF, "application/pdf")}
    return Call(f"/cases/{await world.case_id()}/materials/mother_id_card", files=files)


async def uploaded_file(world: World, role: str) -> Call:
    return Call(f"/cases/{await world.uploaded()}/files/{hashlib.sha256(UPLOADED_PDF).hexdigest()}")


async def supplement(world: World, role: str) -> Call:
    # The owner and the clerk may both supply materials: each gets a case of its own to supply.
    case_id = await world.awaiting_supplement(role if role in {"owner", "clerk"} else "others")
    return Call(f"/cases/{case_id}/supplements", json={"materials": {"mother_id_card": "身份证复印件（补交）"}})


async def rating(world: World, role: str) -> Call:
    return Call(f"/cases/{await world.delivered()}/rating", json={"score": 5})


async def archive(world: World, role: str) -> Call:
    return Call(f"/cases/{await world.refused()}/archive")


async def licence_of_delivered(world: World, role: str, suffix: str = "") -> Call:
    case_id = await world.delivered()
    listed = await world.api.get(f"/cases/{case_id}/licences", headers=await world.login("applicant1"))
    number = next(item["number"] for item in listed.json() if item["step"] == "birth_certificate")
    return Call(f"/licences/{number}{suffix}")


async def case_licences(world: World, role: str) -> Call:
    return Call(f"/cases/{await world.delivered()}/licences")


async def licence_revoke(world: World, role: str) -> Call:
    call = await licence_of_delivered(world, role, "/revoke")
    return Call(call.path, json={"reason": "发证信息有误"})


async def licence_check(world: World, role: str) -> Call:
    return await licence_of_delivered(world, role, "/verify")


async def archive_download(world: World, role: str) -> Call:
    return Call(f"/cases/{await world.refused()}/archive/download")


async def verify(world: World, role: str) -> Call:
    return Call("/supervision/verify", params={"case_id": await world.case_id()})


def supervise(path: str) -> Builder:
    async def build(world: World, role: str) -> Call:
        return Call(path, json={"case_id": await world.case_id(), "step": "birth_certificate", "message": "请加快办理"})

    return build


async def file_complaint(world: World, role: str) -> Call:
    return Call("/complaints", json={"case_id": await world.case_id(), "content": COMPLAINT})


async def acknowledge(world: World, role: str) -> Call:
    return Call(f"/notices/{await world.hospital_notice()}/ack", json={"reply": "已加派人手"})


async def publish(world: World, role: str) -> Call:
    return Call("/catalogue/death/versions", json=shipped_definitions()["death"].model_dump(mode="json"))


async def retire(world: World, role: str) -> Call:
    return Call(f"/catalogue/retirement/versions/{await world.retirable_version()}/retire")


async def decode(world: World, role: str) -> Call:
    return Call("/codec/decode", json=await world.encrypted_payloads())


@dataclass(frozen=True)
class Row:
    expected: tuple[int, int, int, int, int, int, int, int]  # in ROLES order
    build: Builder


def _complete(case: dict[str, Any]) -> dict[str, Any]:
    return {"result": result_for("birth_certificate", case["_form"])}


def _return(case: dict[str, Any]) -> dict[str, Any]:
    return {"missing": ["mother_id_card"], "reason": "证件模糊"}


def _refuse(case: dict[str, Any]) -> dict[str, Any]:
    return {"reason": "重复申请"}


SUSPENDED = ("suspend", "hospital_officer", {"reason": "需补充医学鉴定"})
EXTENSION_ASKED = ("extension", "hospital_officer", {"working_days": 2, "reason": "需外院会诊"})


def on_operated(action: str, *before: tuple[str, str, Any], body: Any = None) -> Builder:
    """The operation on a case of each role's own, so the roles allowed do not disturb one another."""

    async def build(world: World, role: str) -> Call:
        case_id = await world.operated(f"{action}:{role}", *before)
        return Call(f"/tasks/{task_id(case_id, 'birth_certificate')}/{action}", json=body)

    return build


def ending(how: str, at_window: bool) -> Builder:
    async def build(world: World, role: str) -> Call:
        case_id = await (world.at_window(f"{how}:{role}") if at_window else world.case_id(f"{how}:{role}"))
        return Call(f"/cases/{case_id}/{how}", json={"reason": "申请人要求撤回"})

    return build


# fmt: off
# The matrix. Columns: anonymous, owner, other applicant, clerk, involved officer,
# other officer, supervisor, admin. 404 means "not yours to see" (nothing tells a
# stranger a case or complaint exists); 403 means the role may not do this at all.
MATRIX: dict[tuple[str, str], Row] = {
    #                                             anon owner other clerk inv  oth  sup  admin
    ("POST", "/auth/token"):                 Row((200, 200, 200, 200, 200, 200, 200, 200), login_form),
    ("GET", "/auth/me"):                     Row((401, 200, 200, 200, 200, 200, 200, 200), fixed("/auth/me")),
    ("POST", "/auth/logout"):                Row((401, 204, 204, 204, 204, 204, 204, 204), own_logout),
    ("GET", "/me"):                          Row((401, 200, 200, 200, 200, 200, 200, 200), fixed("/me")),
    ("GET", "/health"):                      Row((200, 200, 200, 200, 200, 200, 200, 200), fixed("/health")),
    # cases
    ("POST", "/cases"):                      Row((401, 201, 201, 201, 403, 403, 403, 403), new_case),
    # an applicant lists their own cases
    ("GET", "/cases"):                       Row((401, 200, 200, 200, 200, 200, 200, 200), fixed("/cases")),
    # uploaded materials: the owner (or the accepting window) uploads; the case's staff read, supervision never
    ("POST", "/cases/{case_id}/materials/{material}"):
                                             Row((401, 201, 404, 201, 403, 404, 403, 403), upload),
    ("GET", "/cases/{case_id}/files"):       Row((401, 200, 404, 200, 200, 404, 403, 403),
                                                 on_case("/cases/{case_id}/files")),
    ("GET", "/cases/{case_id}/files/{sha256}"):
                                             Row((401, 200, 404, 200, 200, 404, 403, 403), uploaded_file),
    ("GET", "/cases/{case_id}"):             Row((401, 200, 404, 200, 200, 404, 200, 200), on_case("/cases/{case_id}")),
    ("GET", "/cases/{case_id}/timeline"):    Row((401, 403, 404, 200, 200, 404, 200, 200),
                                                 on_case("/cases/{case_id}/timeline")),
    ("POST", "/cases/{case_id}/supplements"): Row((401, 200, 404, 200, 403, 403, 403, 403), supplement),
    ("POST", "/cases/{case_id}/rating"):     Row((401, 201, 404, 403, 403, 403, 403, 403), rating),
    # A refused case is closed at once, so its archive can be checked.
    ("GET", "/cases/{case_id}/archive"):     Row((401, 403, 404, 200, 200, 404, 200, 200), archive),
    # 电子证照: the case's readers list them; the holder and the case's staff download; anyone verifies
    ("GET", "/cases/{case_id}/licences"):    Row((401, 200, 404, 200, 200, 200, 200, 200), case_licences),
    ("GET", "/licences/{number}"):           Row((401, 200, 404, 200, 200, 200, 403, 403), licence_of_delivered),
    ("GET", "/licences/{number}/verify"):    Row((200, 200, 200, 200, 200, 200, 200, 200), licence_check),
    # (revoked by the administrator's request: the check answers revoked afterwards, still 200)
    ("POST", "/licences/{number}/revoke"):   Row((401, 403, 403, 403, 403, 403, 403, 200), licence_revoke),
    # the archive as a zip: the applicant and the division's supervisors
    ("GET", "/cases/{case_id}/archive/download"):
                                             Row((401, 200, 404, 403, 403, 404, 200, 403), archive_download),
    ("GET", "/notifications"):               Row((401, 200, 200, 200, 200, 200, 200, 200), fixed("/notifications")),
    # tasks: the workflow holds each role to its own department's steps (403 from its validator)
    ("GET", "/tasks"):                       Row((401, 403, 403, 200, 200, 200, 200, 200), fixed("/tasks")),
    ("POST", "/tasks/{task_id}/claim"):      Row((401, 403, 403, 403, 200, 403, 403, 403),
                                                 on_task("claim", "read", "vaccination_certificate")),
    ("POST", "/tasks/{task_id}/complete"):   Row((401, 403, 403, 403, 200, 403, 403, 403),
                                                 on_task("complete", "complete", "birth_certificate", _complete)),
    ("POST", "/tasks/{task_id}/return"):     Row((401, 403, 403, 403, 200, 403, 403, 403),
                                                 on_task("return", "return", "birth_certificate", _return)),
    ("POST", "/tasks/{task_id}/refuse"):     Row((401, 403, 403, 403, 200, 403, 403, 403),
                                                 on_task("refuse", "refuse", "birth_certificate", _refuse)),
    # task operations: the assignee's unit, or a supervisor of its division; 延期 decided by a supervisor
    ("POST", "/tasks/{task_id}/unclaim"):    Row((401, 403, 403, 403, 200, 403, 200, 403), on_operated("unclaim")),
    ("POST", "/tasks/{task_id}/reassign"):   Row((401, 403, 403, 403, 200, 403, 200, 403),
                                                 on_operated("reassign", body={"to": "hospital_330102_officer"})),
    ("POST", "/tasks/{task_id}/transfer"):   Row((401, 403, 403, 403, 200, 403, 200, 403),
                                                 on_operated("transfer", body={"unit": "hospital_330106_fybj",
                                                                               "reason": "出生地属西湖区"})),
    ("POST", "/tasks/{task_id}/suspend"):    Row((401, 403, 403, 403, 200, 403, 403, 403),
                                                 on_operated("suspend", body=SUSPENDED[2])),
    ("POST", "/tasks/{task_id}/resume"):     Row((401, 403, 403, 403, 200, 403, 200, 403),
                                                 on_operated("resume", SUSPENDED)),
    ("POST", "/tasks/{task_id}/extension"):  Row((401, 403, 403, 403, 200, 403, 403, 403),
                                                 on_operated("extension", body=EXTENSION_ASKED[2])),
    ("POST", "/tasks/{task_id}/extension/approve"):
                                             Row((401, 403, 403, 403, 403, 403, 200, 403),
                                                 on_operated("extension/approve", EXTENSION_ASKED)),
    ("POST", "/tasks/{task_id}/extension/reject"):
                                             Row((401, 403, 403, 403, 403, 403, 200, 403),
                                                 on_operated("extension/reject", EXTENSION_ASKED,
                                                             body={"reason": "时限内可办结"})),
    ("GET", "/supervision/extensions"):     Row((401, 403, 403, 403, 403, 403, 200, 200),
                                                 fixed("/supervision/extensions")),
    # 撤回: the owner (or the accepting window); 不予受理: the accepting window only (its walk-in
    # case has no owner account, so applicant1 finds no such case)
    ("POST", "/cases/{case_id}/withdraw"):   Row((401, 200, 404, 200, 403, 403, 403, 403), ending("withdraw", False)),
    ("POST", "/cases/{case_id}/decline"):    Row((401, 404, 404, 200, 403, 403, 403, 403), ending("decline", True)),
    # catalogue: public reading; versions for supervisors and admins; changes by admins
    ("GET", "/catalogue"):                   Row((200, 200, 200, 200, 200, 200, 200, 200), fixed("/catalogue")),
    ("GET", "/catalogue/{sub_item}"):        Row((200, 200, 200, 200, 200, 200, 200, 200), fixed("/catalogue/birth")),
    ("GET", "/catalogue/{sub_item}/guide"):  Row((200, 200, 200, 200, 200, 200, 200, 200),
                                                 fixed("/catalogue/birth/guide")),
    ("GET", "/catalogue/{sub_item}/flowchart"):
                                             Row((200, 200, 200, 200, 200, 200, 200, 200),
                                                 fixed("/catalogue/birth/flowchart")),
    ("GET", "/catalogue/{sub_item}/data-sharing"):
                                             Row((200, 200, 200, 200, 200, 200, 200, 200),
                                                 fixed("/catalogue/birth/data-sharing")),
    ("GET", "/catalogue/{sub_item}/materials-reduction"):
                                             Row((200, 200, 200, 200, 200, 200, 200, 200),
                                                 fixed("/catalogue/birth/materials-reduction")),
    ("GET", "/catalogue/{sub_item}/versions"):
                                             Row((401, 403, 403, 403, 403, 403, 200, 200),
                                                 fixed("/catalogue/birth/versions")),
    ("POST", "/catalogue/{sub_item}/versions"):
                                             Row((401, 403, 403, 403, 403, 403, 403, 201), publish),
    ("POST", "/catalogue/{sub_item}/versions/{version}/retire"):
                                             Row((401, 403, 403, 403, 403, 403, 403, 200), retire),
    # complaints: filed by applicants (about their own case) and clerks; assigned and closed by
    # supervisors; answered by the assigned department. The clerk did not file this one.
    ("POST", "/complaints"):                 Row((401, 201, 404, 201, 403, 403, 403, 403), file_complaint),
    ("GET", "/complaints"):                  Row((401, 200, 200, 200, 200, 200, 200, 200), fixed("/complaints")),
    ("GET", "/complaints/{complaint_id}"):   Row((401, 200, 404, 404, 200, 404, 200, 200), on_complaint("assigned")),
    ("GET", "/complaints/{complaint_id}/timeline"):
                                             Row((401, 200, 404, 404, 200, 404, 200, 200),
                                                 on_complaint("assigned", "/timeline")),
    ("POST", "/complaints/{complaint_id}/assign"):
                                             Row((401, 403, 403, 403, 403, 403, 200, 403),
                                                 on_complaint("filed", "/assign", {"department": "hospital"})),
    ("POST", "/complaints/{complaint_id}/answer"):
                                             Row((401, 403, 403, 403, 200, 403, 403, 403),
                                                 on_complaint("assigned", "/answer", {"answer": "已核实办理。"})),
    ("POST", "/complaints/{complaint_id}/close"):
                                             Row((401, 403, 403, 403, 403, 403, 200, 403),
                                                 on_complaint("answered", "/close", {"satisfied": True})),
    # supervision: supervisors and admins read; only supervisors issue 督办 and 催办
    ("GET", "/supervision/timeliness"):      Row((401, 403, 403, 403, 403, 403, 200, 200),
                                                 fixed("/supervision/timeliness")),
    ("GET", "/supervision/overdue"):         Row((401, 403, 403, 403, 403, 403, 200, 200),
                                                 fixed("/supervision/overdue")),
    ("GET", "/supervision/warnings"):        Row((401, 403, 403, 403, 403, 403, 200, 200),
                                                 fixed("/supervision/warnings")),
    ("GET", "/supervision/verify"):          Row((401, 403, 403, 403, 403, 403, 200, 200), verify),
    ("GET", "/supervision/notices"):         Row((401, 403, 403, 403, 403, 403, 200, 200),
                                                 fixed("/supervision/notices")),
    ("GET", "/supervision/ratings"):         Row((401, 403, 403, 403, 403, 403, 200, 200),
                                                 fixed("/supervision/ratings")),
    ("GET", "/supervision/report"):          Row((401, 403, 403, 403, 403, 403, 200, 200),
                                                 fixed("/supervision/report")),
    ("POST", "/supervision/notices"):        Row((401, 403, 403, 403, 403, 403, 201, 403),
                                                 supervise("/supervision/notices")),
    ("POST", "/supervision/urges"):          Row((401, 403, 403, 403, 403, 403, 201, 403),
                                                 supervise("/supervision/urges")),
    # 督办 notices for departments: officers only, each their own department's
    ("GET", "/notices"):                     Row((401, 403, 403, 403, 200, 200, 403, 403), fixed("/notices")),
    ("POST", "/notices/{notice_id}/ack"):    Row((401, 403, 403, 403, 200, 403, 403, 403), acknowledge),
    # codec server for the Temporal UI: staff decode (histories hold every applicant's data), admins encode
    ("POST", "/codec/encode"):               Row((401, 403, 403, 403, 403, 403, 403, 200),
                                                 fixed("/codec/encode", json=PLAIN_PAYLOADS)),
    ("POST", "/codec/decode"):               Row((401, 403, 403, 200, 200, 200, 200, 200), decode),
    # audit log: admins only
    ("GET", "/audit"):                       Row((401, 403, 403, 403, 403, 403, 403, 200), fixed("/audit")),
    # units: staff read them; admins register and change them
    ("GET", "/units"):                       Row((401, 403, 403, 200, 200, 200, 200, 200), fixed("/units")),
    ("GET", "/units/{code}"):                Row((401, 403, 403, 200, 200, 200, 200, 200),
                                                 fixed("/units/police_330102")),
    ("POST", "/units"):                      Row((401, 403, 403, 403, 403, 403, 403, 201),
                                                 fixed("/units", json=NEW_UNIT)),
    ("PATCH", "/units/{code}"):              Row((401, 403, 403, 403, 403, 403, 403, 200),
                                                 fixed("/units/police_330102", json={"window_zh": "3 号窗口"})),
    # accounts: admins end an account's sign-in sessions (an account no other row signs in as)
    ("POST", "/accounts/{username}/sessions/revoke"): Row((401, 403, 403, 403, 403, 403, 403, 204),
                                                 fixed("/accounts/police_officer/sessions/revoke")),
}
# fmt: on


def registered_routes(settings: Settings) -> set[tuple[str, str]]:
    """The JSON API's routes. Pages outside the OpenAPI document (the web console,
    /metrics) have access tests of their own."""
    app = create_app(settings)
    routes: set[tuple[str, str]] = set()
    for context in iter_route_contexts(app.routes):
        if isinstance(context.original_route, APIRoute) and context.original_route.include_in_schema:
            routes.update((method, str(context.path)) for method in context.methods or ())
    return routes


def test_every_route_has_a_row_and_every_row_a_route(tmp_path: Path):
    routes = registered_routes(settings_for(tmp_path))

    assert sorted(routes - set(MATRIX)) == [], "routes without a row in the authorization matrix"
    assert sorted(set(MATRIX) - routes) == [], "matrix rows for routes that do not exist"


@pytest.fixture
def api_settings(tmp_path: Path, task_queue: str) -> Settings:
    # Every role logs in from one test address; this matrix is not about the per-address login limit.
    return settings_for(tmp_path, task_queue=task_queue, max_body_bytes=64 * 1024, login_max_attempts_per_address=1000)


async def send(world: World, method: str, path: str, role: str) -> httpx.Response:
    call = await MATRIX[(method, path)].build(world, role)
    headers = dict(call.headers)
    if role != "anonymous" and call.signed_in:
        headers.update(await world.login(USERS[role]))
    return await world.api.request(
        method, call.path, json=call.json, data=call.data, params=call.params, headers=headers, files=call.files
    )


async def test_each_role_gets_the_expected_status_from_every_endpoint(api, login, cases):
    world = World(api, login, cases)
    mismatches: list[str] = []
    for (method, path), row in MATRIX.items():
        cells = list(zip(ROLES, row.expected, strict=True))
        # Refused roles first: a role that succeeds may change the state (claim, refuse …),
        # and must not decide what the others are answered.
        for role, expected in sorted(cells, key=lambda cell: cell[1] < 300):
            response = await send(world, method, path, role)
            if response.status_code != expected:
                mismatches.append(
                    f"{method} {path} as {role}: expected {expected}, got {response.status_code} {response.text[:200]}"
                )

    assert mismatches == [], "\n".join(mismatches)


async def test_a_department_whose_step_never_opened_cannot_see_a_refused_case(api, login, cases):
    world = World(api, login, cases)

    # A refusal cancels the later steps before they open: their departments never saw the case.
    archive = await send(world, "GET", "/cases/{case_id}/archive", "other_officer")
    listed = await api.get("/cases", headers=await login("hr_social_security_officer"))

    assert archive.status_code == 404
    assert listed.status_code == 200
    assert await world.refused() not in {item["case_id"] for item in listed.json()["items"]}

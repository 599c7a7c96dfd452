"""Helpers for the API tests: submit a birth case, walk it to a step, check error bodies."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
from sqlalchemy import Engine
from sqlmodel import Session, col, select

from activities.read_model import apply_projection
from api.accounts import DEMO_IDENTITIES
from api.security import issue_token
from domain.catalogue import shipped_definitions
from domain.samples import sample_birth_form, sample_result
from domain.workcalendar import SHANGHAI, WorkingCalendar, default_calendar_file
from models.case import Actor, CaseEvent, CaseSnapshot, CaseStatus, EventType, ProjectCaseInput, StepStatus, StepView
from models.catalogue import ThingDefinition
from models.tables import CaseEventRecord
from settings import Settings

Login = Callable[[str], Awaitable[dict[str, str]]]


def token_login(api: httpx.AsyncClient) -> Login:
    """Demo accounts' auth headers, each logged in once (as a person stays logged in)."""
    tokens: dict[str, dict[str, str]] = {}

    async def login(username: str) -> dict[str, str]:
        if username not in tokens:
            response = await api.post("/auth/token", data={"username": username, "password": "demo"})
            assert response.status_code == 200, response.text
            tokens[username] = {"Authorization": f"Bearer {response.json()['access_token']}"}
        return tokens[username]

    return login


def issued_token(engine: Engine, actor: Actor, settings: Settings, now: datetime | None = None) -> str:
    """A token issued by hand, as a login would: with a sign-in session of its own in ``engine``."""
    with Session(engine) as session:
        return issue_token(actor, settings, session, now=now)


BIRTH: ThingDefinition = shipped_definitions()["birth"]
STEP_ORDER = [step.code for step in BIRTH.steps]
CALENDAR = WorkingCalendar.load(default_calendar_file())


def birth_form(**options: Any) -> dict[str, Any]:
    """A valid birth form for a child born two days ago (never in the future, whatever today is)."""
    options.setdefault("born_at", datetime.now(UTC) - timedelta(days=2))
    return sample_birth_form(**options)


def filed_by(form: dict[str, Any], username: str) -> dict[str, Any]:
    """``form`` as the demo applicant ``username`` files it for themself: they are its applicant
    (mother or father if the form names them so, else another relative)."""
    name, number, phone = DEMO_IDENTITIES[username]
    parents = {"mother": form.get("mother"), "father": form.get("father")}
    relation = next((role for role, parent in parents.items() if parent and parent["id_number"] == number), "other")
    return {**form, "applicant": {"name": name, "id_number": number, "phone": phone, "relation": relation}}


# 代办: a filing for the form's applicant by another account, with the authorization it needs.
PROXY = {"authorization_material": "授权委托书-0001"}


def officer_of(step: str, channel: str = "hospital") -> str:
    return f"{BIRTH.step(step).department_for(channel)}_officer"


def task_id(case_id: str, step: str) -> str:
    return f"{case_id}:{step}"


def result_for(step: str, form: dict[str, Any]) -> dict[str, Any]:
    return sample_result(BIRTH.step(step), form)


def step_of(case: dict[str, Any], step: str) -> dict[str, Any]:
    return next(item for item in case["steps"] if item["step"] == step)


def dependencies_of(step: str, present: list[str] | None = None) -> list[str]:
    """Every step that must be done before ``step`` opens, in catalogue order; with
    ``present``, only the steps the case's situation actually has."""
    kept = set(present) if present is not None else set(STEP_ORDER)
    needed: set[str] = set()
    stack = [code for code in BIRTH.step(step).depends_on if code in kept]
    while stack:
        code = stack.pop()
        if code not in needed:
            needed.add(code)
            stack.extend(code for code in BIRTH.step(code).depends_on if code in kept)
    return [code for code in STEP_ORDER if code in needed]


def assert_error(response: httpx.Response, status: int, code: str, fields: list[str] | None = None) -> dict[str, Any]:
    """The response is the contract's one error shape with this status and code (and names these fields)."""
    assert response.status_code == status, response.text
    body = response.json()
    assert set(body) == {"error"}, body
    error = body["error"]
    assert set(error) <= {"code", "message", "fields"}, error
    assert error["code"] == code, error
    assert isinstance(error["message"], str) and error["message"], error
    if fields is not None:
        assert set(fields) <= set(error.get("fields", {})), error
    return error


class Cases:
    """Drives cases through the HTTP API with the demo accounts."""

    def __init__(self, api: httpx.AsyncClient, login: Login) -> None:
        self.api = api
        self.login = login

    async def post(
        self,
        *,
        as_user: str = "applicant1",
        channel: str = "hospital",
        form: dict[str, Any] | None = None,
        key: str | None = None,
        thing: str = "birth",
        proxy: dict[str, Any] | None = None,
    ) -> httpx.Response:
        """Without a form, the birth form the account files for itself (filed_by)."""
        headers = dict(await self.login(as_user))
        if key is not None:
            headers["Idempotency-Key"] = key
        if form is None:
            form = filed_by(birth_form(), as_user) if as_user in DEMO_IDENTITIES else birth_form()
        body: dict[str, Any] = {"thing": thing, "channel": channel, "form": form}
        if proxy is not None:
            body["proxy"] = proxy
        return await self.api.post("/cases", json=body, headers=headers)

    async def submit(self, **options: Any) -> dict[str, Any]:
        """Submit a birth case (201) and return its body, with the form used under ``"_form"``."""
        as_user = options.get("as_user", "applicant1")
        form = options.pop("form", None) or (
            filed_by(birth_form(), as_user) if as_user in DEMO_IDENTITIES else birth_form()
        )
        response = await self.post(form=form, **options)
        assert response.status_code == 201, response.text
        return {**response.json(), "_form": form}

    async def read(self, case_id: str, as_user: str = "supervisor") -> dict[str, Any]:
        response = await self.api.get(f"/cases/{case_id}", headers=await self.login(as_user))
        assert response.status_code == 200, response.text
        body: dict[str, Any] = response.json()
        return body

    async def act(
        self,
        action: str,
        case_id: str,
        step: str,
        *,
        as_user: str,
        body: dict[str, Any] | None = None,
        key: str | None = None,
    ) -> httpx.Response:
        headers = dict(await self.login(as_user))
        if key is not None:
            headers["Idempotency-Key"] = key
        return await self.api.post(f"/tasks/{task_id(case_id, step)}/{action}", json=body, headers=headers)

    async def claim(self, case: dict[str, Any], step: str, as_user: str | None = None) -> dict[str, Any]:
        response = await self.act("claim", case["case_id"], step, as_user=as_user or officer_of(step, case["channel"]))
        assert response.status_code == 200, response.text
        body: dict[str, Any] = response.json()
        return body

    async def complete(self, case: dict[str, Any], step: str, as_user: str | None = None) -> dict[str, Any]:
        """Claim and complete one step with a valid result."""
        user = as_user or officer_of(step, case["channel"])
        await self.claim(case, step, user)
        result = result_for(step, case["_form"])
        response = await self.act("complete", case["case_id"], step, as_user=user, body={"result": result})
        assert response.status_code == 200, response.text
        body: dict[str, Any] = response.json()
        return body

    async def walk_to(self, case: dict[str, Any], step: str) -> None:
        """Complete every step ``step`` depends on, so that it is open."""
        for code in dependencies_of(step, [item["step"] for item in case["steps"]]):
            await self.complete(case, code)

    async def finish(self, case: dict[str, Any]) -> None:
        """Complete every step of the case, in catalogue order."""
        for code in [s["step"] for s in case["steps"]]:
            await self.complete(case, code)


def events_of(engine: Engine, case_id: str, event_type: str | None = None, step: str | None = None) -> list[Any]:
    """The read model's CaseEventRecord rows of a case, optionally of one type and step."""
    with Session(engine) as session:
        query = select(CaseEventRecord).where(CaseEventRecord.case_id == case_id)
        if event_type is not None:
            query = query.where(CaseEventRecord.type == event_type)
        if step is not None:
            query = query.where(CaseEventRecord.step == step)
        return list(session.exec(query.order_by(col(CaseEventRecord.seq))).all())


def shanghai_at(text: str) -> datetime:
    """'2026-10-08T10:00' as a Shanghai time."""
    return datetime.fromisoformat(text).replace(tzinfo=SHANGHAI)


def project_single_step_case(
    engine: Engine, case_id: str, step: str, department: str, events: list[tuple[EventType, str, str | None]]
) -> None:
    """Project one single-step case whose events happen at the given Shanghai times."""
    case_events = [
        CaseEvent(
            seq=i + 1,
            at=shanghai_at(at),
            type=kind,
            step=step,
            department=department,
            due_at=shanghai_at(due) if due else None,
        )
        for i, (kind, at, due) in enumerate(events)
    ]
    opened = case_events[0]
    finished = next((e for e in case_events if e.type == EventType.COMPLETED), None)
    due = next(e.due_at for e in reversed(case_events) if e.due_at is not None)
    view = StepView(
        step=step,
        name_zh=step,
        department=department,
        department_zh=department,
        status=StepStatus.DONE if finished else StepStatus.OPEN,
        status_zh="",
        time_limit_working_days=1,
        opened_at=opened.at,
        due_at=due,
        warning_at=due - timedelta(days=1),
        completed_at=finished.at if finished else None,
    )
    snapshot = CaseSnapshot(
        case_id=case_id,
        thing="birth",
        thing_zh="出生一件事",
        catalogue_version=1,
        channel="online",
        status=CaseStatus.COMPLETED if finished else CaseStatus.IN_PROGRESS,
        status_zh="",
        submitted_at=opened.at,
        owner="applicant1",
        submitted_by="applicant1",
        accepting_unit=None,
        steps=[view],
        revision=1,
    )
    with Session(engine) as session:
        apply_projection(session, ProjectCaseInput(snapshot=snapshot, events=case_events), CALENDAR)
        session.commit()

"""The engine's hot path: a case answers its submission in one round trip, each workflow task
writes the read model once (state, events, notices and the audit row of the action that
caused them, in one transaction), and an officer's action is answered from the Update's
result without the API touching the database."""

from __future__ import annotations

import inspect
from collections import Counter
from collections.abc import AsyncIterator, Iterator
from typing import Any

import httpx
import pytest
from sqlalchemy import Engine, event, func, select
from sqlmodel import Session, col
from temporalio.api.enums.v1 import EventType as HistoryEventType
from temporalio.client import Client, Interceptor, OutboundInterceptor
from temporalio.testing import WorkflowEnvironment

from activities.case_changes import apply_case_changes
from api import deps
from api.accounts import ensure_demo_accounts
from api.main import create_app
from domain.catalogue import shipped_definitions
from domain.workcalendar import WorkingCalendar, default_calendar_file
from models.case import AuditEntry, CaseChanges, CaseSnapshot, ClaimInput, NotificationInput
from models.tables import AuditRecord, CaseRecord, NotificationRecord, TaskRecord
from settings import Settings
from tests.api.helpers import Cases, task_id, token_login
from tests.conftest import make_test_engine, running_worker, terminate_cases
from workflows.history import local_activity_outcome

CALENDAR = WorkingCalendar.load(default_calendar_file())


class CallCounter(Interceptor):
    """Counts the client calls the API makes to Temporal, by kind."""

    def __init__(self) -> None:
        self.calls: Counter[str] = Counter()

    def intercept_client(self, next: OutboundInterceptor) -> OutboundInterceptor:
        counter = self.calls

        class Counting(OutboundInterceptor):
            async def start_workflow(self, input: Any) -> Any:
                counter["start_workflow"] += 1
                return await super().start_workflow(input)

            async def start_workflow_update(self, input: Any) -> Any:
                counter["start_workflow_update"] += 1
                return await super().start_workflow_update(input)

            async def start_update_with_start_workflow(self, input: Any) -> Any:
                counter["start_update_with_start_workflow"] += 1
                return await super().start_update_with_start_workflow(input)

        return Counting(next)


@pytest.fixture
def counter() -> CallCounter:
    return CallCounter()


@pytest.fixture
def api_engine(api_settings: Settings) -> Iterator[Engine]:
    """The API's own engine on the worker's database, so its statements can be counted apart."""
    engine = make_test_engine(api_settings.database_url, migrate=False)
    yield engine
    engine.dispose()


@pytest.fixture
async def counted_api(
    env: WorkflowEnvironment,
    api_settings: Settings,
    engine: Engine,
    api_engine: Engine,
    task_queue: str,
    counter: CallCounter,
) -> AsyncIterator[httpx.AsyncClient]:
    ensure_demo_accounts(engine, list(shipped_definitions().values()))
    config = env.client.config()
    config["interceptors"] = [*config["interceptors"], counter]
    client = Client(**config)
    app = create_app(api_settings, temporal_client=client, engine=api_engine)
    async with running_worker(env.client, api_settings, engine, task_queue), app.router.lifespan_context(app):
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://onething.test") as http:
            yield http
        await terminate_cases(env.client, engine)


def count_statements(engine: Engine) -> list[str]:
    """Statements the engine runs from now on, but the inbox watcher's (api/inbox_feed.py
    reads the inbox versions every half second, whatever the requests)."""
    statements: list[str] = []

    def record(*args: Any) -> None:
        if "FROM inbox_versions" not in str(args[2]):
            statements.append(str(args[2]))

    event.listen(engine, "before_cursor_execute", record)
    return statements


async def test_a_submission_is_answered_in_one_round_trip(counted_api, counter):
    cases = Cases(counted_api, token_login(counted_api))
    case = await cases.submit(key="one-trip")
    assert case["status"] == "accepted"
    assert counter.calls == Counter({"start_update_with_start_workflow": 1})


async def test_a_retried_submission_finds_its_case_without_starting_another(counted_api, counter):
    cases = Cases(counted_api, token_login(counted_api))
    form = (await cases.submit(key="retry-me"))["_form"]
    again = await cases.post(key="retry-me", form=form)
    assert again.status_code == 200
    assert counter.calls == Counter({"start_update_with_start_workflow": 2})


async def test_an_officers_claim_is_answered_without_the_api_touching_the_database(counted_api, api_engine, engine):
    login = token_login(counted_api)
    cases = Cases(counted_api, login)
    case = await cases.submit()
    await login("hospital_officer")  # logging in reads the accounts table; the claim must not
    statements = count_statements(api_engine)
    claimed = await cases.claim(case, "birth_certificate")
    assert claimed["assignee"] == "hospital_officer"
    assert statements == []
    # The audit row came with the workflow's write, not from the API.
    with Session(engine) as session:
        (row,) = session.execute(select(AuditRecord).where(col(AuditRecord.action) == "task_claim")).scalars()
    assert (row.actor, row.case_id, row.target) == (
        "hospital_officer",
        case["case_id"],
        task_id(case["case_id"], "birth_certificate"),
    )


async def test_each_workflow_task_writes_the_read_model_once(env, counted_api):
    cases = Cases(counted_api, token_login(counted_api))
    case = await cases.submit()
    await cases.complete(case, "birth_certificate")
    history = await env.client.get_workflow_handle(case["case_id"]).fetch_history()
    writes_per_task: list[int] = []
    for item in history.events:
        if item.event_type == HistoryEventType.EVENT_TYPE_WORKFLOW_TASK_COMPLETED:
            writes_per_task.append(0)
        elif item.event_type == HistoryEventType.EVENT_TYPE_MARKER_RECORDED and writes_per_task:
            outcome = await local_activity_outcome(env.client, item, {"write_case_changes": dict})
            writes_per_task[-1] += outcome is not None
    assert max(writes_per_task) == 1
    # Accepted, claimed and completed: each wrote once; no other read-model activity ran.
    assert sum(writes_per_task) >= 3
    names = {
        item.activity_task_scheduled_event_attributes.activity_type.name
        for item in history.events
        if item.event_type == HistoryEventType.EVENT_TYPE_ACTIVITY_TASK_SCHEDULED
    }
    assert names.isdisjoint({"project_case", "send_notification", "escalate_overdue_step", "fetch_shared_materials"})


def test_api_dependencies_that_do_no_io_run_on_the_event_loop():
    for dependency in (deps.get_settings, deps.get_temporal_client, deps.get_engine, deps.get_calendar):
        assert inspect.iscoroutinefunction(dependency), dependency.__name__
    assert inspect.iscoroutinefunction(deps.get_current_actor)


# --- the write itself, without Temporal ------------------------------------------------------


def _changes(engine: Engine, revision: int) -> CaseChanges:
    """A projected case's snapshot at ``revision``, with one notification and one audit row."""
    with Session(engine) as session:
        record = session.execute(select(CaseRecord)).scalars().first()
        assert record is not None
        snapshot = CaseSnapshot.model_validate(record.snapshot).model_copy(update={"revision": revision})
    officer = {"username": "hospital_officer", "role": "officer", "unit": "hospital"}
    return CaseChanges(
        snapshot=snapshot,
        events=[],
        notifications=[
            NotificationInput(
                case_id=snapshot.case_id,
                kind="test",
                recipient="applicant1",
                message_zh="测试",
                at=snapshot.submitted_at,
                notification_id=f"{snapshot.case_id}:n99",
            )
        ],
        audit=[
            AuditEntry(
                action="task_claim",
                actor=ClaimInput.model_validate({"actor": officer, "step": "x"}).actor,
                target=f"{snapshot.case_id}:x",
                request_key=f"{snapshot.case_id}:x/k{revision}",
                at=snapshot.submitted_at,
            )
        ],
    )


def _count(engine: Engine, table: Any) -> int:
    with Session(engine) as session:
        return int(session.execute(select(func.count()).select_from(table)).scalar_one())


async def test_a_retried_write_changes_nothing_and_an_older_one_is_ignored(counted_api, engine):
    await Cases(counted_api, token_login(counted_api)).submit()
    with Session(engine) as session:
        stored = session.execute(select(col(CaseRecord.revision))).scalar_one()
    audit_before, notices_before = _count(engine, AuditRecord), _count(engine, NotificationRecord)
    newer = _changes(engine, stored + 10)
    for _ in range(2):  # the second is the retry
        with Session(engine) as session:
            written = apply_case_changes(session, newer, CALENDAR)
            session.commit()
    assert written is False
    assert _count(engine, AuditRecord) == audit_before + 1
    assert _count(engine, NotificationRecord) == notices_before + 1
    with Session(engine) as session:
        assert apply_case_changes(session, _changes(engine, stored + 1), CALENDAR) is False
        session.commit()
        assert session.execute(select(col(CaseRecord.revision))).scalar_one() == stored + 10
    assert _count(engine, AuditRecord) == audit_before + 1
    assert _count(engine, TaskRecord) >= 1

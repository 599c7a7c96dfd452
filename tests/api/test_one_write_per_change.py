"""The engine's hot path: a case answers its submission in one round trip, each workflow task
writes the read model once (state, events, notices and the audit row of the action that
caused them, in one transaction), and an officer's action is answered from the Update's
result without the API touching the database. Complaints write their staff actions' audit
rows the same way."""

from __future__ import annotations

import inspect
from collections import Counter
from collections.abc import AsyncIterator, Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest
from sqlalchemy import Engine, delete, event, func, select
from sqlalchemy.exc import IntegrityError
from sqlmodel import Session, col
from temporalio.api.enums.v1 import EventType as HistoryEventType
from temporalio.client import Client, Interceptor, OutboundInterceptor
from temporalio.testing import WorkflowEnvironment

from activities.case_changes import apply_case_changes
from activities.complaints import ComplaintActivities, supervision_notice_id
from activities.rebuild import apply_write, read_recorded_writes
from api import deps
from api.accounts import ensure_demo_accounts
from api.main import create_app
from domain.catalogue import shipped_definitions
from domain.workcalendar import WorkingCalendar, default_calendar_file
from models.case import Actor, AuditEntry, CaseChanges, CaseSnapshot, ClaimInput, NotificationInput
from models.complaint import (
    COMPLAINT_STATUS_ZH,
    ComplaintActivityName,
    ComplaintChanges,
    ComplaintEscalationInput,
    ComplaintEventType,
    ComplaintSnapshot,
    ComplaintStatus,
    ProjectComplaintInput,
)
from models.tables import AuditRecord, CaseRecord, ComplaintRecord, NotificationRecord, SupervisionNotice, TaskRecord
from settings import Settings
from tests.api.helpers import Cases, task_id, token_login
from tests.conftest import make_test_engine, read_model_url, running_worker, terminate_cases
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
    ensure_demo_accounts(engine, list(shipped_definitions().values()), secret=api_settings.secret_key)
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
    # At most the check that the officer's session is live (a few seconds' memory per process).
    assert [statement for statement in statements if "FROM auth_sessions" not in statement] == []
    assert len(statements) <= 1
    # The audit row came with the workflow's write, not from the API.
    with Session(engine) as session:
        (row,) = session.execute(select(AuditRecord).where(col(AuditRecord.action) == "task_claim")).scalars()
    assert (row.actor, row.case_id, row.target) == (
        "hospital_officer",
        case["case_id"],
        task_id(case["case_id"], "birth_certificate"),
    )


async def test_each_workflow_task_writes_the_read_model_once_and_only_once_it_completed(env, counted_api):
    cases = Cases(counted_api, token_login(counted_api))
    case = await cases.submit()
    await cases.complete(case, "birth_certificate")
    history = await env.client.get_workflow_handle(case["case_id"]).fetch_history()
    writes_per_task: list[int] = []
    for item in history.events:
        if item.event_type == HistoryEventType.EVENT_TYPE_WORKFLOW_TASK_COMPLETED:
            writes_per_task.append(0)
        elif item.event_type == HistoryEventType.EVENT_TYPE_ACTIVITY_TASK_SCHEDULED:
            # Scheduled by the task that just completed: a task that never completes writes nothing.
            assert writes_per_task, "a write scheduled before any workflow task completed"
            writes_per_task[-1] += (
                item.activity_task_scheduled_event_attributes.activity_type.name == "write_case_changes"
            )
        elif item.event_type == HistoryEventType.EVENT_TYPE_MARKER_RECORDED:
            # No write runs as a local activity, before its task is in history.
            assert await local_activity_outcome(env.client, item, {"write_case_changes": dict}) is None
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


# --- complaints: the staff action's audit row goes with the write of its change -----------------


def _complaint_audit(engine: Engine, complaint_id: str) -> list[AuditRecord]:
    with Session(engine) as session:
        query = select(AuditRecord).where(col(AuditRecord.target) == complaint_id).order_by(col(AuditRecord.id))
        return list(session.execute(query).scalars())


async def test_a_complaint_action_is_audited_by_the_workflows_write_of_its_change_not_by_the_api(
    env, counted_api, api_engine, engine
):
    login = token_login(counted_api)
    filed = await counted_api.post(
        "/complaints",
        json={"department": "police", "content": "办理超时，无人答复。"},
        headers=await login("applicant1"),
    )
    assert filed.status_code == 201, filed.text
    complaint_id = filed.json()["complaint_id"]
    supervisor = await login("supervisor")
    await login("hospital_officer")  # logging in reads the accounts table; the actions must not

    # Refused actions change nothing, so they leave no audit row.
    refused = await counted_api.post(
        f"/complaints/{complaint_id}/assign", json={"department": "nowhere"}, headers=supervisor
    )
    assert refused.status_code == 422, refused.text
    not_yet = await counted_api.post(
        f"/complaints/{complaint_id}/answer", json={"answer": "已处理。"}, headers=await login("hospital_officer")
    )
    assert not_yet.status_code == 409, not_yet.text
    assert _complaint_audit(engine, complaint_id) == []  # an applicant's own filing is not audited either

    statements = count_statements(api_engine)
    assigned = await counted_api.post(
        f"/complaints/{complaint_id}/assign",
        json={"department": "police", "note": "请核实"},
        headers={**supervisor, "Idempotency-Key": "assign-1"},
    )
    assert assigned.status_code == 200, assigned.text
    # The API bound the Idempotency-Key (services/idempotency.py) and wrote no audit row of its own.
    assert [sql for sql in statements if "action_keys" not in sql and not sql.startswith("BEGIN")] == []

    # The row is in the write that records the assignment: the same revision, the same transaction.
    recorded = await read_recorded_writes(env.client, await env.client.get_workflow_handle(complaint_id).describe())
    writes: list[ComplaintChanges] = [
        write.argument
        for write in recorded.writes
        if write.activity_type == ComplaintActivityName.WRITE_COMPLAINT_CHANGES
    ]
    [audited] = [changes for changes in writes if changes.audit]
    assert audited.snapshot.status == ComplaintStatus.ASSIGNED
    assert [event.type for event in audited.events] == [ComplaintEventType.ASSIGNED]
    assert [(entry.action, entry.request_key) for entry in audited.audit] == [
        ("complaint_assign", f"{complaint_id}/supervisor/assign-1")
    ]
    [row] = _complaint_audit(engine, complaint_id)
    assert (row.action, row.actor, row.role, row.case_id, row.detail, row.request_key) == (
        "complaint_assign",
        "supervisor",
        "supervisor",
        None,
        {"department": "police", "note": "请核实"},
        f"{complaint_id}/supervisor/assign-1",
    )
    with Session(engine) as session:
        record = session.get(ComplaintRecord, complaint_id)
        assert record is not None
        assert (record.status, record.revision) == ("assigned", audited.snapshot.revision)


def _audit_columns(rows: list[AuditRecord]) -> list[dict[str, Any]]:
    return [row.model_dump(exclude={"id"}) for row in rows]


async def test_a_rebuilt_read_model_gets_a_complaints_audit_rows_back(env, counted_api, engine, tmp_path: Path):
    """`onething rebuild` restores a complaint's staff actions' audit rows, as it does a case's:
    they are in the writes its history records."""
    login = token_login(counted_api)
    filed = await counted_api.post(
        "/complaints",
        json={"department": "police", "content": "窗口代群众投诉：无人答复。"},
        headers={**await login("hospital_clerk"), "Idempotency-Key": "rebuilt-walk-in"},
    )
    assert filed.status_code == 201, filed.text
    complaint_id = filed.json()["complaint_id"]
    assigned = await counted_api.post(
        f"/complaints/{complaint_id}/assign", json={"department": "police"}, headers=await login("supervisor")
    )
    assert assigned.status_code == 200, assigned.text
    lost = _complaint_audit(engine, complaint_id)
    assert [row.action for row in lost] == ["complaint_file", "complaint_assign"]

    (tmp_path / "rebuilt").mkdir()
    rebuilt = make_test_engine(read_model_url(tmp_path / "rebuilt"))
    try:
        description = await env.client.get_workflow_handle(complaint_id).describe()
        recorded = await read_recorded_writes(env.client, description)
        for write in recorded.writes:
            apply_write(rebuilt, CALENDAR, recorded.run_id, write)
        assert _audit_columns(_complaint_audit(rebuilt, complaint_id)) == _audit_columns(lost)
    finally:
        rebuilt.dispose()


FILED_AT = datetime(2026, 11, 2, 1, 30, tzinfo=UTC)
COMPLAINT_ID = "cp-00000000000000000a01"
SUPERVISOR = Actor(username="supervisor", role="supervisor")


def _complaint_at(revision: int, status: ComplaintStatus) -> ComplaintSnapshot:
    return ComplaintSnapshot(
        complaint_id=COMPLAINT_ID,
        case_id=None,
        step=None,
        named_department="police",
        department="police",
        department_zh="公安局",
        assigned_department="police" if status != ComplaintStatus.ACCEPTED else None,
        status=status,
        status_zh=COMPLAINT_STATUS_ZH[status],
        complainant="applicant1",
        filed_by="applicant1",
        content="办理超时，无人答复。",
        filed_at=FILED_AT,
        due_at=FILED_AT + timedelta(days=7),
        revision=revision,
    )


def _assign_audit(note: str) -> AuditEntry:
    # No request key (the request had no Idempotency-Key): only the revision keeps a retry from logging twice.
    return AuditEntry(
        action="complaint_assign",
        actor=SUPERVISOR,
        target=COMPLAINT_ID,
        detail={"department": "police", "note": note},
        at=FILED_AT + timedelta(hours=1),
    )


def test_a_complaints_audit_row_commits_or_rolls_back_with_the_change_it_records(engine):
    activities = ComplaintActivities(engine)
    activities.write_complaint_changes(ComplaintChanges(snapshot=_complaint_at(1, ComplaintStatus.ACCEPTED), events=[]))
    escalation = ComplaintEscalationInput(
        complaint_id=COMPLAINT_ID,
        department="police",
        sequence=1,
        due_at=FILED_AT + timedelta(days=7),
        at=FILED_AT + timedelta(days=8),
    )
    assignment = ComplaintChanges(
        snapshot=_complaint_at(2, ComplaintStatus.ASSIGNED),
        events=[],
        escalations=[escalation],
        audit=[_assign_audit("请核实")],
    )
    # A stray 督办 row makes this write fail at its end, after its audit row was inserted.
    notice_id = supervision_notice_id(COMPLAINT_ID, 1)
    with Session(engine) as session:
        session.add(
            SupervisionNotice(
                notice_id=notice_id,
                case_id=COMPLAINT_ID,
                step="answer",
                department="police",
                sequence=1,
                message_zh="冲突",
                issued_at=FILED_AT,
            )
        )
        session.commit()

    with pytest.raises(IntegrityError):
        activities.write_complaint_changes(assignment)
    assert _complaint_audit(engine, COMPLAINT_ID) == []  # rolled back with the change
    with Session(engine) as session:
        assert session.execute(select(col(ComplaintRecord.revision))).scalar_one() == 1
        session.execute(delete(SupervisionNotice).where(col(SupervisionNotice.notice_id) == notice_id))
        session.commit()

    for _ in range(2):  # the activity's retry succeeds; a second retry finds the revision stored
        assert activities.write_complaint_changes(assignment).revision == 2
    [row] = _complaint_audit(engine, COMPLAINT_ID)
    assert (row.action, row.detail) == ("complaint_assign", {"department": "police", "note": "请核实"})
    # An older revision (a write overtaken by a newer one) writes neither state nor audit row.
    older = ComplaintChanges(
        snapshot=_complaint_at(1, ComplaintStatus.ACCEPTED), events=[], audit=[_assign_audit("旧的")]
    )
    activities.write_complaint_changes(older)
    assert len(_complaint_audit(engine, COMPLAINT_ID)) == 1
    with Session(engine) as session:
        assert session.execute(select(col(ComplaintRecord.status))).scalar_one() == "assigned"


def test_a_first_edition_complaint_writes_its_audit_rows_with_its_projection_once(engine):
    """Complaints started before the one-write patch write through project_complaint: the
    audit rows it carries are written with the revision that records their actions, once."""
    activities = ComplaintActivities(engine)
    activities.project_complaint(ProjectComplaintInput(snapshot=_complaint_at(1, ComplaintStatus.ACCEPTED), events=[]))
    assignment = ProjectComplaintInput(
        snapshot=_complaint_at(2, ComplaintStatus.ASSIGNED), events=[], audit=[_assign_audit("请核实")]
    )
    for _ in range(2):  # the second is a retry of a write that succeeded
        activities.project_complaint(assignment)
    activities.project_complaint(
        ProjectComplaintInput(
            snapshot=_complaint_at(1, ComplaintStatus.ACCEPTED), events=[], audit=[_assign_audit("旧的")]
        )
    )
    assert [(row.action, row.detail["note"]) for row in _complaint_audit(engine, COMPLAINT_ID)] == [
        ("complaint_assign", "请核实")
    ]

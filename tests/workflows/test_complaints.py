"""The complaint workflow (投诉, §8.1.2): accepted → assigned → answered → closed, the
answer due five working days after acceptance, the clock's warning, overdue and
daily 督办, and the validators that refuse wrong roles, departments, states and input."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Awaitable
from contextlib import asynccontextmanager
from datetime import datetime
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import Engine, select
from sqlmodel import Session, col
from temporalio.api.enums.v1 import EventType as HistoryEventType
from temporalio.client import Client, WorkflowHandle, WorkflowHistory
from temporalio.exceptions import ApplicationError
from temporalio.testing import WorkflowEnvironment
from temporalio.worker import (
    Interceptor,
    Replayer,
    StartActivityInput,
    UnsandboxedWorkflowRunner,
    WorkflowInboundInterceptor,
    WorkflowInterceptorClassInput,
    WorkflowOutboundInterceptor,
)
from temporalio.workflow import ActivityHandle

from api.routes.complaints import new_complaint_id, read_complaint_history
from domain.catalogue import load_departments
from domain.workcalendar import SHANGHAI
from models.case import Actor, AuditEntry, ComputeDeadlinesResult
from models.complaint import (
    AnswerComplaintInput,
    AssignComplaintInput,
    CloseComplaintInput,
    ComplaintActivityName,
    ComplaintEventType,
    ComplaintInput,
    ComplaintSnapshot,
    ComplaintStatus,
    ProjectComplaintInput,
)
from models.tables import ComplaintRecord, NotificationRecord, SupervisionNotice
from settings import installed_binary
from tests.conftest import (
    TEST_CLIENT_INTERCEPTORS,
    TEST_DATA_CONVERTER,
    register_search_attributes,
    running_worker,
    time_skipping_env,
)
from tests.workflows.helpers import (
    CALENDAR,
    WAIT_LIMIT,
    applicant,
    officer,
    rejected_fields,
    rejection,
    shanghai,
    sleep_until,
)
from tests.workflows.helpers import rejected_without_history as rejected_without_case_history
from workflows.complaint.workflow import ComplaintWorkflow
from workflows.history import local_activity_outcome
from workflows.starter import start_complaint

ComplaintHandle = WorkflowHandle[ComplaintWorkflow, ComplaintSnapshot]

DEPARTMENTS = load_departments()
SUPERVISOR = Actor(username="supervisor", role="supervisor")
CLOCK_EVENTS = (ComplaintEventType.WARNING, ComplaintEventType.OVERDUE, ComplaintEventType.SUPERVISION_NOTICE)


def complaint_input(department: str | None = "hospital", complainant: str = "applicant1") -> ComplaintInput:
    return ComplaintInput(
        complaint_id=new_complaint_id(complainant, None),
        content="出生医学证明办理拖延，窗口无人答复。",
        filed_by=applicant(complainant),
        complainant=complainant,
        department=department,
        department_names={code: item.name_zh for code, item in DEPARTMENTS.items()},
        assignable=[code for code, item in DEPARTMENTS.items() if item.tasks],
    )


@asynccontextmanager
async def started_complaint(
    client: Client, task_queue: str, complaint: ComplaintInput
) -> AsyncIterator[ComplaintHandle]:
    """Start the complaint; terminate it on the way out if it is still running, so its
    timers never hold the shared test server's clock."""
    handle, created = await start_complaint(client, task_queue, complaint)
    assert created
    try:
        yield handle
    finally:
        description = await handle.describe()
        if description.status is not None and description.status.name == "RUNNING":
            await handle.terminate(reason="test finished")


async def wait_accepted(handle: ComplaintHandle) -> ComplaintSnapshot:
    return await asyncio.wait_for(handle.execute_update(ComplaintWorkflow.wait_accepted), WAIT_LIMIT)


async def update(handle: ComplaintHandle, method: Any, argument: Any) -> ComplaintSnapshot:
    """Send an Update and wait (bounded) for the complaint it returns."""
    result: ComplaintSnapshot = await asyncio.wait_for(handle.execute_update(method, argument), WAIT_LIMIT)
    return result


async def rejected_without_history(handle: ComplaintHandle, call: Awaitable[Any]) -> ApplicationError:
    """The shared helper (typed for case handles): the Update is rejected and writes no history."""
    any_handle: Any = handle
    return await rejected_without_case_history(any_handle, call)


def record_of(engine: Engine, complaint_id: str) -> ComplaintRecord:
    with Session(engine) as session:
        record = session.get(ComplaintRecord, complaint_id)
    assert record is not None, f"complaint {complaint_id} is not in the read model"
    return record


async def settled(handle: ComplaintHandle, engine: Engine, timeout: float = 10.0) -> ComplaintSnapshot:
    """The snapshot once the read model holds its revision."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while True:
        snapshot = await handle.query(ComplaintWorkflow.snapshot)
        with Session(engine) as session:
            record = session.get(ComplaintRecord, snapshot.complaint_id)
            if record is not None and record.revision >= snapshot.revision:
                return snapshot
        assert loop.time() < deadline, f"read model stuck below revision {snapshot.revision}"
        await asyncio.sleep(0.05)


async def completed(client: Client, handle: ComplaintHandle, timeout: float = WAIT_LIMIT) -> ComplaintSnapshot:
    """The workflow's result, read from its history once it has completed: awaiting
    handle.result() would let the shared time-skipping server jump its clock ahead."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while True:
        last = (await handle.fetch_history()).events[-1]
        if last.event_type == HistoryEventType.EVENT_TYPE_WORKFLOW_EXECUTION_COMPLETED:
            payloads = last.workflow_execution_completed_event_attributes.result.payloads
            (snapshot,) = await client.data_converter.decode(payloads, [ComplaintSnapshot])
            assert isinstance(snapshot, ComplaintSnapshot)
            return snapshot
        assert loop.time() < deadline, "the complaint workflow did not complete"
        await asyncio.sleep(0.05)


def notices(engine: Engine, complaint_id: str) -> list[SupervisionNotice]:
    with Session(engine) as session:
        rows = session.execute(select(SupervisionNotice).where(col(SupervisionNotice.case_id) == complaint_id))
        return sorted(rows.scalars(), key=lambda notice: notice.sequence)


async def event_types(client: Client, complaint_id: str) -> list[str]:
    _, events = await read_complaint_history(client, complaint_id)
    return [event.type.value for event in events]


async def clock_events(client: Client, complaint_id: str) -> list[tuple[str, datetime]]:
    """The clock's events from history, to the minute (timers fire a few milliseconds late)."""
    _, events = await read_complaint_history(client, complaint_id)
    return [
        (event.type.value, event.at.astimezone(SHANGHAI).replace(second=0, microsecond=0))
        for event in events
        if event.type in CLOCK_EVENTS
    ]


async def test_complaint_is_assigned_answered_and_closed_with_the_answer_due_five_working_days_after_acceptance(
    env, settings, engine, task_queue
):
    complaint = complaint_input(department="hospital")
    async with (
        running_worker(env.client, settings, engine, task_queue),
        started_complaint(env.client, task_queue, complaint) as handle,
    ):
        accepted = await wait_accepted(handle)
        expected = CALENDAR.add_working_days(accepted.filed_at, 5)
        assert (accepted.status, accepted.status_zh) == ("accepted", "已受理")
        assert accepted.due_at == expected.due_at
        assert accepted.warning_at == expected.warning_at
        record = record_of(engine, complaint.complaint_id)
        assert (record.status, record.department, record.complainant) == ("accepted", "hospital", "applicant1")
        assert record.due_at == expected.due_at
        assert record.assigned_department is None

        # The deadline is the calendar activity's result, recorded in history (a local activity's marker).
        history = await handle.fetch_history()
        outcomes = [
            await local_activity_outcome(env.client, event, {"compute_deadlines": ComputeDeadlinesResult})
            for event in history.events
            if event.event_type == HistoryEventType.EVENT_TYPE_MARKER_RECORDED
        ]
        [computed] = [outcome.result for outcome in outcomes if outcome is not None]
        assert computed.deadlines[0].due_at == accepted.due_at

        # The supervisor routes it to the police; the hospital stays the department complained about.
        assigned = await update(
            handle,
            ComplaintWorkflow.assign,
            AssignComplaintInput(actor=SUPERVISOR, department="police", note="请公安部门核查"),
        )
        assert (assigned.status, assigned.status_zh) == ("assigned", "已分派")
        assert (assigned.named_department, assigned.assigned_department, assigned.department) == (
            "hospital",
            "police",
            "police",
        )
        assert assigned.department_zh == DEPARTMENTS["police"].name_zh
        assert assigned.assign_note == "请公安部门核查"
        record = record_of(engine, complaint.complaint_id)
        assert (record.status, record.assigned_department) == ("assigned", "police")

        answered = await update(
            handle,
            ComplaintWorkflow.answer,
            AnswerComplaintInput(actor=officer("police"), answer="  已核查，户籍窗口已整改。  "),
        )
        assert (answered.status, answered.status_zh) == ("answered", "已答复")
        assert answered.answer == "已核查，户籍窗口已整改。"
        assert answered.answered_by == "police_officer1"
        assert answered.answered_at is not None and answered.answered_at <= expected.due_at
        assert record_of(engine, complaint.complaint_id).answered_at == answered.answered_at

        await update(
            handle, ComplaintWorkflow.close, CloseComplaintInput(actor=SUPERVISOR, satisfied=True, note="电话回访满意")
        )
        final = await completed(env.client, handle)
        assert (final.status, final.status_zh) == ("closed", "已办结")
        assert (final.satisfied, final.close_note, final.overdue) == (True, "电话回访满意", False)
        record = record_of(engine, complaint.complaint_id)
        assert (record.status, record.satisfied, record.overdue) == ("closed", True, False)
        assert record.closed_at == final.closed_at and record.revision == final.revision

        assert await event_types(env.client, complaint.complaint_id) == ["accepted", "assigned", "answered", "closed"]
        _, events = await read_complaint_history(env.client, complaint.complaint_id)
        assert [event.actor for event in events] == ["applicant1", "supervisor", "police_officer1", "supervisor"]
        assert events[-1].detail == {"satisfied": True, "note": "电话回访满意"}
        assert notices(engine, complaint.complaint_id) == []

    # The finished history replays against the current workflow code.
    replayer = Replayer(workflows=[ComplaintWorkflow], data_converter=TEST_DATA_CONVERTER)
    replay = await replayer.replay_workflow(await handle.fetch_history(), raise_on_replay_failure=False)
    assert replay.replay_failure is None


async def test_unanswered_complaint_is_warned_goes_overdue_and_is_supervised_each_working_day_but_not_at_weekends(
    settings, engine, task_queue, tmp_path
):
    # Thursday afternoon: five working days are Fri 20, Mon 23 … Thu 26; due at 24:00 of Thursday.
    async with time_skipping_env(starting_at=shanghai(2026, 11, 19, 15), workdir=tmp_path) as env:
        complaint = complaint_input(department="hospital")
        async with (
            running_worker(env.client, settings, engine, task_queue),
            started_complaint(env.client, task_queue, complaint) as handle,
        ):
            accepted = await wait_accepted(handle)
            assert accepted.due_at == shanghai(2026, 11, 27)
            assert accepted.warning_at == shanghai(2026, 11, 26)
            assert accepted.due_at == CALENDAR.add_working_days(accepted.filed_at, 5).due_at
            assert not accepted.provisional
            await update(handle, ComplaintWorkflow.assign, AssignComplaintInput(actor=SUPERVISOR, department="police"))

            await sleep_until(env, shanghai(2026, 11, 25, 23, 59))
            await settled(handle, engine)
            assert await clock_events(env.client, complaint.complaint_id) == []

            # 00:00 of the last day: a warning, nothing more.
            await sleep_until(env, shanghai(2026, 11, 26, 0, 1))
            await settled(handle, engine)
            assert await clock_events(env.client, complaint.complaint_id) == [("warning", shanghai(2026, 11, 26))]
            assert notices(engine, complaint.complaint_id) == []
            assert not record_of(engine, complaint.complaint_id).overdue

            # 24:00 of Thursday: overdue, and the first 督办 to the assigned department.
            await sleep_until(env, shanghai(2026, 11, 27, 0, 1))
            snapshot = await settled(handle, engine)
            assert await clock_events(env.client, complaint.complaint_id) == [
                ("warning", shanghai(2026, 11, 26)),
                ("overdue", shanghai(2026, 11, 27)),
                ("supervision_notice", shanghai(2026, 11, 27)),
            ]
            [notice] = notices(engine, complaint.complaint_id)
            assert (notice.origin, notice.department, notice.sequence, notice.step) == (
                "complaint",
                "police",
                1,
                "answer",
            )
            assert notice.issued_at == notice.due_at == shanghai(2026, 11, 27)
            assert "投诉" in notice.message_zh
            assert snapshot.overdue and snapshot.status == "assigned"
            assert record_of(engine, complaint.complaint_id).overdue
            with Session(engine) as session:
                to_supervisor = session.execute(
                    select(NotificationRecord).where(col(NotificationRecord.case_id) == complaint.complaint_id)
                ).scalars()
                assert [(n.kind, n.recipient) for n in to_supervisor] == [("complaint_overdue", "supervisor")]

            # The end of Friday brings the second; Saturday and Sunday are rest days.
            await sleep_until(env, shanghai(2026, 11, 30, 23, 59))
            await settled(handle, engine)
            assert [n.issued_at for n in notices(engine, complaint.complaint_id)] == [
                shanghai(2026, 11, 27),
                shanghai(2026, 11, 28),
            ]

            # The end of Monday brings the third.
            await sleep_until(env, shanghai(2026, 12, 1, 0, 1))
            await settled(handle, engine)
            assert [n.issued_at for n in notices(engine, complaint.complaint_id)] == [
                shanghai(2026, 11, 27),
                shanghai(2026, 11, 28),
                shanghai(2026, 12, 1),
            ]
            assert [n.sequence for n in notices(engine, complaint.complaint_id)] == [1, 2, 3]

            # A late answer stops the 督办; the complaint stays marked overdue.
            answered = await update(
                handle, ComplaintWorkflow.answer, AnswerComplaintInput(actor=officer("police"), answer="已整改。")
            )
            assert answered.overdue and answered.escalations == 3
            await sleep_until(env, shanghai(2026, 12, 3, 0, 1))
            await settled(handle, engine)
            assert len(notices(engine, complaint.complaint_id)) == 3
            record = record_of(engine, complaint.complaint_id)
            assert (record.status, record.overdue) == ("answered", True)
            types = await event_types(env.client, complaint.complaint_id)
            assert types.count("supervision_notice") == 3 and types[-1] == "answered"


async def test_validators_refuse_wrong_roles_departments_states_and_input(env, settings, engine, task_queue):
    complaint = complaint_input(department=None)
    async with (
        running_worker(env.client, settings, engine, task_queue),
        started_complaint(env.client, task_queue, complaint) as handle,
    ):
        await wait_accepted(handle)
        police = officer("police")

        def answer(actor: Actor, text: str = "已处理。") -> Any:
            return handle.execute_update(ComplaintWorkflow.answer, AnswerComplaintInput(actor=actor, answer=text))

        def close(actor: Actor = SUPERVISOR) -> Any:
            return handle.execute_update(ComplaintWorkflow.close, CloseComplaintInput(actor=actor, satisfied=False))

        def assign(actor: Actor = SUPERVISOR, department: str = "police", note: str | None = None) -> Any:
            return handle.execute_update(
                ComplaintWorkflow.assign, AssignComplaintInput(actor=actor, department=department, note=note)
            )

        # Before assignment nobody can answer, and nothing can be closed.
        assert (await rejection(answer(police))).type == "conflict"
        assert (await rejection(close())).type == "conflict"
        # Only supervisors assign, only to a department that can answer.
        assert (await rejection(assign(actor=applicant()))).type == "forbidden"
        assert (await rejection(assign(actor=police))).type == "forbidden"
        unknown = await rejection(assign(department="nowhere"))
        assert unknown.type == "validation_error" and "department" in rejected_fields(unknown)
        no_inbox = await rejection(assign(department="big_data"))  # takes part, but has no officers
        assert no_inbox.type == "validation_error" and "department" in rejected_fields(no_inbox)
        long_note = await rejection(assign(note="x" * 501))
        assert long_note.type == "validation_error" and "note" in rejected_fields(long_note)

        await update(handle, ComplaintWorkflow.assign, AssignComplaintInput(actor=SUPERVISOR, department="police"))

        # An officer of another department, or anyone but an officer, cannot answer.
        assert (await rejection(answer(officer("hospital")))).type == "forbidden"
        assert (await rejection(answer(SUPERVISOR))).type == "forbidden"
        assert (await rejection(answer(applicant()))).type == "forbidden"
        for text in ("", "   ", "x" * 2001):
            empty = await rejection(answer(police, text))
            assert empty.type == "validation_error" and "answer" in rejected_fields(empty), text
        assert (await rejection(close())).type == "conflict"  # not answered yet

        await update(handle, ComplaintWorkflow.answer, AnswerComplaintInput(actor=police, answer="已处理。"))

        assert (await rejection(answer(police))).type == "conflict"  # answered once
        assert (await rejection(assign())).type == "conflict"  # too late to reroute
        assert (await rejection(close(actor=police))).type == "forbidden"
        snapshot = await settled(handle, engine)
        assert (snapshot.status, snapshot.answer) == ("answered", "已处理。")
        assert await event_types(env.client, complaint.complaint_id) == ["accepted", "assigned", "answered"]


@pytest.fixture(scope="module")
async def dev_env() -> AsyncIterator[WorkflowEnvironment]:
    """A real (in-memory) Temporal dev server: the time-skipping server records a
    workflow task for every Update, rejected or not; this one records none for a rejection."""
    async with await WorkflowEnvironment.start_local(
        dev_server_existing_path=installed_binary("temporal"),
        data_converter=TEST_DATA_CONVERTER,
        interceptors=TEST_CLIENT_INTERCEPTORS,
    ) as environment:
        await register_search_attributes(environment.client)
        yield environment


async def test_rejected_actions_write_nothing_to_history_and_accepted_ones_do(dev_env, settings, engine, task_queue):
    complaint = complaint_input()
    async with (
        running_worker(dev_env.client, settings, engine, task_queue),
        started_complaint(dev_env.client, task_queue, complaint) as handle,
    ):
        await wait_accepted(handle)
        police = AnswerComplaintInput(actor=officer("police"), answer="已处理。")
        assert (
            await rejected_without_history(handle, handle.execute_update(ComplaintWorkflow.answer, police))
        ).type == ("conflict")
        unknown = AssignComplaintInput(actor=SUPERVISOR, department="nowhere")
        assert (
            await rejected_without_history(handle, handle.execute_update(ComplaintWorkflow.assign, unknown))
        ).type == ("validation_error")
        before = len((await handle.fetch_history()).events)
        await update(handle, ComplaintWorkflow.assign, AssignComplaintInput(actor=SUPERVISOR, department="police"))
        assert len((await handle.fetch_history()).events) > before
        assert await event_types(dev_env.client, complaint.complaint_id) == ["accepted", "assigned"]


# --- first-edition complaints (started before the one-write patch) ------------------------------

FIRST_EDITION = Path(__file__).resolve().parent.parent / "histories" / "v1" / "complaint-answered-closed.json"


class ProjectionCapture(Interceptor):
    """Collects the inputs of the project_complaint activities a replay schedules."""

    def __init__(self) -> None:
        self.projections: list[ProjectComplaintInput] = []

    def workflow_interceptor_class(
        self, input: WorkflowInterceptorClassInput
    ) -> type[WorkflowInboundInterceptor] | None:
        projections = self.projections

        class Outbound(WorkflowOutboundInterceptor):
            def start_activity(self, input: StartActivityInput) -> ActivityHandle[Any]:
                if input.activity == ComplaintActivityName.PROJECT_COMPLAINT:
                    projections.append(input.args[0])
                return super().start_activity(input)

        class Inbound(WorkflowInboundInterceptor):
            def init(self, outbound: WorkflowOutboundInterceptor) -> None:
                super().init(Outbound(outbound))

        return Inbound


async def test_a_first_edition_complaint_writes_each_actions_audit_row_with_the_projection_of_its_change():
    """A complaint running since before the one-write patch replays its project_complaint
    activities unchanged; the audit row today's API puts into an action's input goes into the
    projection that records the action, once (so the API need not write it)."""
    history = WorkflowHistory.from_json(FIRST_EDITION.stem, FIRST_EDITION.read_text(encoding="utf-8"))
    for event in history.events:
        if event.event_type != HistoryEventType.EVENT_TYPE_WORKFLOW_EXECUTION_UPDATE_ACCEPTED:
            continue
        update_input = event.workflow_execution_update_accepted_event_attributes.accepted_request.input
        if update_input.name not in {"assign", "answer", "close"}:
            continue
        (argument,) = await TEST_DATA_CONVERTER.decode(update_input.args.payloads, [dict])
        argument["audit"] = AuditEntry(
            action=f"complaint_{update_input.name}",
            actor=Actor.model_validate(argument["actor"]),
            target=history.workflow_id,
            request_key=f"{history.workflow_id}/{update_input.name}-1",
        ).model_dump(mode="json")
        encoded = await TEST_DATA_CONVERTER.encode([argument])
        del update_input.args.payloads[:]
        update_input.args.payloads.extend(encoded)

    capture = ProjectionCapture()
    replayer = Replayer(
        workflows=[ComplaintWorkflow],
        data_converter=TEST_DATA_CONVERTER,
        interceptors=[capture],
        workflow_runner=UnsandboxedWorkflowRunner(),
    )
    replay = await replayer.replay_workflow(history, raise_on_replay_failure=False)
    assert replay.replay_failure is None  # the same commands as recorded

    audited = [
        (projection.snapshot.status, [event.type for event in projection.events], projection.audit)
        for projection in capture.projections
        if projection.audit
    ]
    assert [(status, types, [entry.action for entry in audit]) for status, types, audit in audited] == [
        (ComplaintStatus.ASSIGNED, [ComplaintEventType.ASSIGNED], ["complaint_assign"]),
        (ComplaintStatus.ANSWERED, [ComplaintEventType.ANSWERED], ["complaint_answer"]),
        (ComplaintStatus.CLOSED, [ComplaintEventType.CLOSED], ["complaint_close"]),
    ]
    # Entries sent without a time take the workflow's time of the action.
    assert all(entry.at is not None for _, _, audit in audited for entry in audit)

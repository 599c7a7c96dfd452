"""Record the workflow histories of the code this module runs against: one finished
workflow per path a running case or complaint can take, each written as
``DIR/<path-name>.json`` (``WorkflowHistory.to_json()``), for the replay test
(tests/workflows/test_recorded_histories.py) to prove that rewritten workflow code
still replays them, i.e. that cases running when it is deployed survive.

    python -m tests.histories.record --out tests/histories/v1 [--only NAME ...]

Each path runs on a time-skipping test server of its own, started on a fixed date
(through libfaketime) so a recording can be made again with the same calendar. It
uses only entry points that already existed in the first version of the workflows:
tests/conftest.py's servers, worker and settings, workflows.starter, domain.samples,
models.catalogue, and the workflows' own Updates, driven the way tests/workflows/
drives them. Payloads are encrypted with the test key and each workflow's ID is its
path's name (the file's name without ``.json``), so a recorded history holds no
personal data in clear.
"""

from __future__ import annotations

import argparse
import asyncio
import tempfile
import threading
import time
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any, TypeVar
from zoneinfo import ZoneInfo

from temporalio.api.enums.v1 import EventType as HistoryEventType
from temporalio.client import WorkflowHandle
from temporalio.testing import WorkflowEnvironment

from domain.catalogue import load_departments, resolve_for_case, shipped_definitions
from domain.follow_links import walk_in_rater
from domain.samples import (
    FATHER_ID,
    MOTHER_WITHOUT_MARRIAGE_RECORD_ID,
    sample_answers,
    sample_birth_form,
    sample_form,
    sample_result,
)
from models.case import (
    Actor,
    AdoptCaseInput,
    CaseInput,
    CaseSnapshot,
    ClaimInput,
    Colleague,
    CompleteStepInput,
    EndCaseInput,
    ExtensionDecisionInput,
    ExtensionInput,
    RateInput,
    RatingView,
    ReassignInput,
    RefuseStepInput,
    ResumeInput,
    ReturnStepInput,
    StepStatus,
    StepUnit,
    StepView,
    SuperviseInput,
    SupplementInput,
    SuspendInput,
    TransferInput,
    UnclaimInput,
)
from models.catalogue import ThingDefinition
from models.complaint import (
    AnswerComplaintInput,
    AssignComplaintInput,
    CloseComplaintInput,
    ComplaintInput,
    ComplaintSnapshot,
)
from models.notices import DeliverNoticesInput
from tests.conftest import make_test_engine, running_worker, test_settings, time_skipping_env
from workflows.starter import start_case

# Updates, queries and the complaint workflow are named as they are registered (not imported as
# classes), so that this module stays independent of where a version keeps its workflow code.
COMPLAINT_WORKFLOW = "ComplaintWorkflow"
Handle = WorkflowHandle[Any, Any]
Result = TypeVar("Result")

SHANGHAI = ZoneInfo("Asia/Shanghai")
DEFINITIONS = shipped_definitions()
BIRTH = DEFINITIONS["birth"]

# The account every recorded case belongs to.
OWNER = "applicant1"
SUPERVISOR = Actor(username="supervisor", role="supervisor", unit="supervision")

# Bounds, so that a regression fails the recording instead of hanging it.
UPDATE_LIMIT = 30.0
SLEEP_LIMIT = 120.0
RESULT_LIMIT = 120.0

# A Tuesday with no holiday near: paths that do not watch the clock start here, so no
# deadline and no rating window of theirs meets a weekend in an unusual way.
QUIET_TUESDAY = datetime(2026, 11, 24, 10, 0, tzinfo=SHANGHAI)


def shanghai(year: int, month: int, day: int, hour: int = 0, minute: int = 0) -> datetime:
    return datetime(year, month, day, hour, minute, tzinfo=SHANGHAI)


def officer(department: str, role: str = "officer") -> Actor:
    """The same accounts the workflow tests act as: ``<department>_<role>1``."""
    return Actor.model_validate({"username": f"{department}_{role}1", "role": role, "unit": department})


def applicant() -> Actor:
    return Actor(username=OWNER, role="applicant")


# --- a recording ------------------------------------------------------------------------


class UnavailableGateway:
    """A data-sharing platform that never answers (as in tests/workflows/test_materials.py)."""

    def __init__(self) -> None:
        self.calls = 0
        self._lock = threading.Lock()

    def lookup(self, document: str, id_number: str) -> str | None:
        with self._lock:
            self.calls += 1
        raise ConnectionError("data-sharing platform unreachable")


@dataclass
class Run:
    """What a path's driver gets: the server, the worker's task queue, the path's name."""

    env: WorkflowEnvironment
    task_queue: str
    name: str


def workflow_id(run: Run) -> str:
    """The path's name is its workflow's ID (no personal data), so the replay test can
    give each history its real workflow ID from the file's name alone."""
    return run.name


Driver = Callable[[Run], Awaitable[Handle]]


@dataclass
class Route:
    """One path: its name (the file's and the workflow's), the server's start, what drives it
    until only waiting is left, and options for its worker (a failing gateway)."""

    name: str
    starts_at: datetime
    drive: Driver
    description: str
    worker_options: Callable[[], dict[str, Any]] = field(default=dict)


async def record(route: Route, out: Path) -> int:
    """Run the path on its own server and write its finished history; returns its event count."""
    with tempfile.TemporaryDirectory(prefix=f"record-{route.name}-") as tmp:
        workdir = Path(tmp)
        settings = test_settings(workdir)
        engine = make_test_engine(settings.database_url)
        task_queue = f"record-{route.name}"
        try:
            async with (
                time_skipping_env(starting_at=route.starts_at, workdir=workdir) as env,
                running_worker(env.client, settings, engine, task_queue, **route.worker_options()),
            ):
                handle = await route.drive(Run(env=env, task_queue=task_queue, name=route.name))
                # Awaiting the result lets the server skip to the workflow's end (the rating window).
                await asyncio.wait_for(handle.result(), RESULT_LIMIT)
                history = await handle.fetch_history()
        finally:
            engine.dispose()
    last = history.events[-1].event_type
    if last != HistoryEventType.EVENT_TYPE_WORKFLOW_EXECUTION_COMPLETED:
        raise RuntimeError(f"{route.name}: the workflow ended with {HistoryEventType.Name(last)}, not completed")
    (out / f"{route.name}.json").write_text(history.to_json() + "\n", encoding="utf-8")
    return len(history.events)


# --- acting on a case -----------------------------------------------------------------------


async def update(handle: Handle, name: str, argument: Any, result_type: type[Result]) -> Result:
    """Send the Update ``name`` and wait (bounded) for its result."""
    result: Result = await asyncio.wait_for(
        handle.execute_update(name, argument, result_type=result_type), UPDATE_LIMIT
    )
    return result


async def wait_accepted(handle: Handle, result_type: type[Result]) -> Result:
    """The workflow's ``wait_accepted`` Update: answers once it is accepted and projected."""
    result: Result = await asyncio.wait_for(
        handle.execute_update("wait_accepted", result_type=result_type), UPDATE_LIMIT
    )
    return result


async def snapshot_of(handle: Handle) -> CaseSnapshot:
    snapshot: CaseSnapshot = await handle.query("snapshot", result_type=CaseSnapshot)
    return snapshot


async def start(run: Run, definition: ThingDefinition, channel: str, form: dict[str, Any], **case: Any) -> Handle:
    answers = case.pop("answers", None)
    values: dict[str, Any] = {"owner": OWNER, "submitted_by": applicant(), **case}
    handle, created = await start_case(
        run.env.client,
        run.task_queue,
        CaseInput(
            case_id=workflow_id(run),
            definition=resolve_for_case(definition, form, answers),
            channel=channel,
            form=form,
            answers=answers or {},
            **values,
        ),
    )
    if not created:
        raise RuntimeError(f"{run.name}: its workflow already existed")
    await wait_accepted(handle, CaseSnapshot)
    return handle


async def claim(handle: Handle, step: str, actor: Actor) -> StepView:
    return await update(handle, "claim", ClaimInput(actor=actor, step=step), StepView)


async def complete(
    handle: Handle, step: str, actor: Actor, result: dict[str, Any], expect: StepStatus = StepStatus.DONE
) -> StepView:
    view = await update(handle, "complete", CompleteStepInput(actor=actor, step=step, result=result), StepView)
    if view.status != expect:
        raise RuntimeError(f"{step} is {view.status} after completing it")
    return view


async def finish_steps(
    handle: Handle,
    definition: ThingDefinition,
    form: dict[str, Any],
    actors: Mapping[str, Actor] | None = None,
) -> list[str]:
    """Claim and complete every open (or claimed) step, each by an officer of its department
    (or the actor named for it), until none is left; returns them in the order done."""
    done: list[str] = []
    while True:
        snapshot = await snapshot_of(handle)
        ready = [
            view
            for view in snapshot.steps
            if view.status in {StepStatus.OPEN, StepStatus.CLAIMED} and not view.step.startswith("follow_up")
        ]
        if not ready:
            unfinished = [view.step for view in snapshot.steps if view.status != StepStatus.DONE]
            if unfinished:
                raise RuntimeError(f"steps left unfinished: {unfinished}")
            return done
        step = ready[0]
        actor = (actors or {}).get(step.step) or officer(step.department)
        await claim(handle, step.step, actor)
        await complete(handle, step.step, actor, sample_result(definition.step(step.step), form))
        done.append(step.step)


async def sleep_until(env: WorkflowEnvironment, moment: datetime) -> None:
    """Skip the server's clock to ``moment``; every timer due on the way fires."""
    delta = moment - await env.get_current_time()
    if delta <= timedelta(0):
        raise RuntimeError(f"the clock is already past {moment.isoformat()}")
    await asyncio.wait_for(env.sleep(delta), SLEEP_LIMIT)


async def wait_quiet(handle: WorkflowHandle[Any, Any], timeout: float = 20.0) -> None:
    """Until no activity and no workflow task of the workflow is pending."""
    deadline = time.monotonic() + timeout
    while True:
        description = (await handle.describe()).raw_description
        if not description.pending_activities and not description.HasField("pending_workflow_task"):
            return
        if time.monotonic() > deadline:
            raise RuntimeError("the workflow did not go quiet")
        await asyncio.sleep(0.05)


# --- the case paths -------------------------------------------------------------------------


async def birth_online_rated_good(run: Run) -> Handle:
    """Online, every department finishes, the applicant rates 5; the rating window ends, archived."""
    form = sample_birth_form(delivery="mail")
    handle = await start(run, BIRTH, "online", form)
    await finish_steps(handle, BIRTH, form)
    await update(handle, "rate", RateInput(actor=applicant(), score=5, comment="办事方便"), RatingView)
    return handle


async def birth_hospital(run: Run) -> Handle:
    """At the hospital's window, accepted by its clerk, who also hands the results over."""
    form = sample_birth_form()
    clerk = officer("hospital", role="clerk")
    handle = await start(run, BIRTH, "hospital", form, submitted_by=clerk)
    await finish_steps(handle, BIRTH, form, actors={"delivery": clerk})
    return handle


async def birth_window_intake_supplement(run: Run) -> Handle:
    """At the service centre's window for a walk-in applicant (no account): the marriage record is
    not in data sharing, so it is owed at intake; the clerk supplies it, then the case finishes."""
    form = sample_birth_form(mother_id=MOTHER_WITHOUT_MARRIAGE_RECORD_ID)
    clerk = officer("service_center", role="clerk")
    handle = await start(run, BIRTH, "service_center", form, owner=None, submitted_by=clerk)
    snapshot = await snapshot_of(handle)
    if snapshot.missing_materials != ["marriage_certificate"]:
        raise RuntimeError(f"expected the marriage certificate owed, got {snapshot.missing_materials}")
    await update(
        handle,
        "supplement",
        SupplementInput(actor=clerk, materials={"marriage_certificate": "UPLOAD-MAR-0009"}),
        CaseSnapshot,
    )
    await finish_steps(handle, BIRTH, form, actors={"delivery": clerk})
    return handle


async def birth_returned_for_supplement(run: Run) -> Handle:
    """The hospital returns the birth certificate step for 补正; the applicant supplies; it completes."""
    form = sample_birth_form()
    hospital = officer("hospital")
    handle = await start(run, BIRTH, "online", form)
    await claim(handle, "birth_certificate", hospital)
    await update(
        handle,
        "return_for_supplement",
        ReturnStepInput(
            actor=hospital, step="birth_certificate", missing=["father_id_card_copy"], reason="父亲身份证复印件不清晰"
        ),
        StepView,
    )
    await update(
        handle,
        "supplement",
        SupplementInput(actor=applicant(), materials={"father_id_card_copy": "UPLOAD-IDC-0002"}),
        CaseSnapshot,
    )
    await finish_steps(handle, BIRTH, form)
    return handle


async def birth_refused(run: Run) -> Handle:
    """The police refuse the hukou registration: open steps are cancelled, the case is refused."""
    form = sample_birth_form()
    police = officer("police")
    handle = await start(run, BIRTH, "online", form)
    await claim(handle, "birth_certificate", officer("hospital"))
    await complete(
        handle, "birth_certificate", officer("hospital"), sample_result(BIRTH.step("birth_certificate"), form)
    )
    await claim(handle, "hukou_registration", police)
    await update(
        handle,
        "refuse",
        RefuseStepInput(actor=police, step="hukou_registration", reason="出生医学证明与户籍信息不一致"),
        StepView,
    )
    return handle


async def birth_declaration_not_verified(run: Run) -> Handle:
    """Unmarried parents; the police find the declaration does not hold up (a refusing result):
    the case is refused there and 户口登记 never opens."""
    form = sample_birth_form(marital_status="unmarried", follow="mother")
    police = officer("police")
    handle = await start(run, BIRTH, "online", form)
    await claim(handle, "birth_certificate", officer("hospital"))
    await complete(
        handle, "birth_certificate", officer("hospital"), sample_result(BIRTH.step("birth_certificate"), form)
    )
    await claim(handle, "unmarried_declaration_review", police)
    await complete(handle, "unmarried_declaration_review", police, {"declaration_verified": False}, StepStatus.REFUSED)
    return handle


async def birth_routed_to_units(run: Run) -> Handle:
    """Online, hukou in 宁波市海曙区: each step routed to a unit at acceptance (the hospital of the
    birthplace, the 海曙 police, medical security and HR); each unit's officer finishes its step."""
    form = sample_birth_form()
    form["hukou"]["division_code"] = "330203"
    steps = BIRTH.steps_for("online")
    units = {
        step.code: {
            "code": f"{step.department_for('online')}_{'330102' if step.department == 'hospital' else '330203'}",
            "name_zh": f"{step.department_for('online')}单位",
            "division_code": "330102" if step.department == "hospital" else "330203",
        }
        for step in steps
    }
    actors = {
        code: Actor.model_validate(
            {
                "username": f"{unit['code']}_officer",
                "role": "officer",
                "unit": unit["code"].rsplit("_", 1)[0],
                "unit_code": unit["code"],
                "division_code": unit["division_code"],
            }
        )
        for code, unit in units.items()
    }
    handle = await start(run, BIRTH, "online", form, units=units)
    await finish_steps(handle, BIRTH, form, actors)
    return handle


async def birth_task_operations(run: Run) -> Handle:
    """The hospital's step worked with every task operation: claimed, put back (退回待办), claimed
    and reassigned (改派), transferred to the 西湖区 hospital (转办), suspended (中止) for two days
    and resumed, extended by 2 working days (asked, approved); then every step finished."""
    form = sample_birth_form()
    handle = await start(run, BIRTH, "online", form)
    step = "birth_certificate"
    first, second = (
        officer("hospital"),
        Actor.model_validate({**officer("hospital").model_dump(), "username": "hospital_officer2"}),
    )
    await claim(handle, step, first)
    await update(handle, "unclaim", UnclaimInput(actor=first, step=step), StepView)
    await claim(handle, step, first)
    colleague = Colleague(username=second.username, role="officer", unit="hospital")
    await update(handle, "reassign", ReassignInput(actor=first, step=step, to=colleague), StepView)
    xihu = StepUnit(code="hospital_330106_fybj", name_zh="杭州市西湖区妇幼保健院", division_code="330106")
    transfer = TransferInput(actor=second, step=step, unit=xihu, unit_department="hospital", reason="出生地属西湖区")
    await update(handle, "transfer", transfer, StepView)
    there = Actor(
        username="hospital_330106_officer", role="officer", unit="hospital", unit_code=xihu.code, division_code="330106"
    )
    await claim(handle, step, there)
    suspension = SuspendInput(actor=there, step=step, reason="需进行医学鉴定", materials=["医学鉴定报告"])
    await update(handle, "suspend", suspension, StepView)
    await sleep_until(run.env, shanghai(2026, 11, 26, 10))
    await update(handle, "resume", ResumeInput(actor=there, step=step), StepView)
    asked = ExtensionInput(actor=there, step=step, working_days=2, reason="需外院会诊")
    await update(handle, "request_extension", asked, StepView)
    supervisor = Actor(username="supervisor_3301", role="supervisor", unit="supervision", division_code="330100")
    await update(
        handle, "decide_extension", ExtensionDecisionInput(actor=supervisor, step=step, approve=True), StepView
    )
    await complete(handle, step, there, sample_result(BIRTH.step(step), form))
    await finish_steps(handle, BIRTH, form)
    return handle


async def birth_withdrawn(run: Run) -> Handle:
    """Online; after the birth certificate, the applicant withdraws (撤回): open steps are cancelled."""
    form = sample_birth_form()
    handle = await start(run, BIRTH, "online", form)
    hospital = officer("hospital")
    await claim(handle, "birth_certificate", hospital)
    await complete(handle, "birth_certificate", hospital, sample_result(BIRTH.step("birth_certificate"), form))
    await update(handle, "withdraw", EndCaseInput(actor=applicant(), reason="已在外省办理"), CaseSnapshot)
    return handle


async def birth_declined(run: Run) -> Handle:
    """At the hospital's window; its clerk declines (不予受理) before any department took it up."""
    form = sample_birth_form()
    clerk = officer("hospital", role="clerk")
    handle = await start(run, BIRTH, "hospital", form, submitted_by=clerk)
    await update(handle, "decline", EndCaseInput(actor=clerk, reason="出生医学证明信息与户籍不符"), CaseSnapshot)
    return handle


async def birth_walk_in_adopted(run: Run) -> Handle:
    """At the hospital's window for the father (no account then); he signs in later, the case
    becomes his (adopt), it finishes, and he rates it."""
    form = sample_birth_form()
    form["applicant"] = {**form["applicant"], "name": "王强", "id_number": FATHER_ID, "relation": "father"}
    clerk = officer("hospital", role="clerk")
    handle = await start(run, BIRTH, "hospital", form, owner=None, submitted_by=clerk, applicant_key="0" * 64)
    father = Actor(username="applicant2", role="applicant")
    await update(handle, "adopt", AdoptCaseInput(actor=father), CaseSnapshot)
    await finish_steps(handle, BIRTH, form, actors={"delivery": clerk})
    await update(handle, "rate", RateInput(actor=father, score=5, comment="窗口办理后网上评价"), RatingView)
    return handle


async def birth_walk_in_rated_by_link(run: Run) -> Handle:
    """At the hospital's window for a person without an account, who never signs in: finished,
    then rated through the signed link the acceptance SMS carried."""
    form = sample_birth_form()
    clerk = officer("hospital", role="clerk")
    handle = await start(run, BIRTH, "hospital", form, owner=None, submitted_by=clerk, applicant_key="1" * 64)
    await finish_steps(handle, BIRTH, form, actors={"delivery": clerk})
    link_holder = Actor(username=walk_in_rater(workflow_id(run)), role="applicant")
    await update(handle, "rate", RateInput(actor=link_holder, score=4, comment="短信链接评价"), RatingView)
    return handle


async def notice_delivery_round(run: Run) -> Handle:
    """One round of the SMS outbox's delivery (the worker of a recording has no gateway)."""
    handle: Handle = await run.env.client.start_workflow(
        "NoticeDeliveryWorkflow", DeliverNoticesInput(), id=workflow_id(run), task_queue=run.task_queue
    )
    return handle


async def retirement_conditions_not_met(run: Run) -> Handle:
    """Early retirement (special work): the review finds the conditions unmet; no pension step opens."""
    definition = DEFINITIONS["retirement"]
    form = sample_form("retirement", "special_work_with_fund")
    answers = sample_answers("retirement", "special_work_with_fund")
    handle = await start(run, definition, "online", form, answers=answers)
    reviewer = officer(definition.step("early_retirement_review").department_for("online"))
    await claim(handle, "early_retirement_review", reviewer)
    await complete(handle, "early_retirement_review", reviewer, {"conditions_met": False}, StepStatus.REFUSED)
    return handle


async def birth_rated_low_follow_up(run: Run) -> Handle:
    """The applicant rates the case 2 (and one step 5): a 回访 opens, a supervisor completes it."""
    form = sample_birth_form()
    handle = await start(run, BIRTH, "online", form)
    await finish_steps(handle, BIRTH, form)
    await update(handle, "rate", RateInput(actor=applicant(), score=2, comment="等待太久"), RatingView)
    await update(handle, "rate", RateInput(actor=applicant(), score=5, step="hukou_registration"), RatingView)
    await claim(handle, "follow_up_1", SUPERVISOR)
    await complete(handle, "follow_up_1", SUPERVISOR, {"outcome_zh": "已电话回访，致歉并说明原因"})
    return handle


async def birth_overdue_supervised(run: Run) -> Handle:
    """Thursday 15:00, online: the first steps are due at 24:00 Friday. Nobody acts: warning at
    00:00 Friday, overdue and the first 督办 at 24:00 Friday, none over the weekend, the next at the
    end of Monday and of Tuesday. A supervisor then sends a manual 督办 and, once it is claimed, a
    催办; then every step is finished."""
    form = sample_birth_form()
    handle = await start(run, BIRTH, "online", form)
    await sleep_until(run.env, shanghai(2026, 11, 28, 0, 1))
    await wait_quiet(handle)
    await sleep_until(run.env, shanghai(2026, 12, 2, 0, 1))
    await wait_quiet(handle)
    snapshot = await snapshot_of(handle)
    escalations = {view.step: view.escalations for view in snapshot.steps if view.overdue}
    if escalations.get("birth_certificate", 0) < 3:
        raise RuntimeError(f"expected three 督办 by now, got {escalations}")
    await update(
        handle,
        "supervise",
        SuperviseInput(actor=SUPERVISOR, step="vaccination_certificate", kind="notice", message="请尽快办理预防接种证"),
        StepView,
    )
    hospital = officer("hospital")
    await claim(handle, "birth_certificate", hospital)
    await update(
        handle,
        "supervise",
        SuperviseInput(actor=SUPERVISOR, step="birth_certificate", kind="urge", message="已超期，请今日办结"),
        StepView,
    )
    await finish_steps(handle, BIRTH, form)
    return handle


DATA_SHARING_MATERIALS = ["mother_id_card", "father_id_card", "father_hukou_booklet", "marriage_certificate"]


async def birth_data_sharing_unavailable(run: Run) -> Handle:
    """The data-sharing platform never answers: the fetch is retried with backoff, then the
    four documents are asked for; the applicant uploads them and the case finishes."""
    form = sample_birth_form()
    handle, created = await start_case(
        run.env.client,
        run.task_queue,
        CaseInput(
            case_id=workflow_id(run),
            definition=resolve_for_case(BIRTH, form),
            channel="online",
            form=form,
            owner=OWNER,
            submitted_by=applicant(),
        ),
    )
    if not created:
        raise RuntimeError(f"{run.name}: its workflow already existed")
    accepting = asyncio.create_task(handle.execute_update("wait_accepted", result_type=CaseSnapshot))
    # Skip the retry backoff (1+2+4+8+16 s) instead of waiting it out.
    for _ in range(20):
        if accepting.done():
            break
        await asyncio.wait_for(run.env.sleep(timedelta(seconds=30)), SLEEP_LIMIT)
        await asyncio.wait([accepting], timeout=0.2)
    accepted: CaseSnapshot = await asyncio.wait_for(accepting, UPDATE_LIMIT)
    if sorted(accepted.missing_materials) != sorted(DATA_SHARING_MATERIALS):
        raise RuntimeError(f"expected the shared documents owed, got {accepted.missing_materials}")
    await update(
        handle,
        "supplement",
        SupplementInput(actor=applicant(), materials={code: f"UPLOAD-{code}" for code in DATA_SHARING_MATERIALS}),
        CaseSnapshot,
    )
    await finish_steps(handle, BIRTH, form)
    return handle


def thing_online(thing: str) -> Driver:
    """Another catalogue thing, in its first situation, applied for online; every step finished."""

    async def drive(run: Run) -> Handle:
        definition = DEFINITIONS[thing]
        situation = definition.situations[0].code if definition.situations else None
        form = sample_form(thing, situation, delivery="mail")
        answers = sample_answers(thing, situation)
        handle = await start(run, definition, "online", form, answers=answers)
        await finish_steps(handle, resolve_for_case(definition, form, answers), form)
        return handle

    return drive


# --- the complaint paths --------------------------------------------------------------------


def complaint_input(run: Run, department: str) -> ComplaintInput:
    departments = load_departments()
    return ComplaintInput(
        complaint_id=workflow_id(run),
        content="出生医学证明办理拖延，窗口无人答复。",
        filed_by=applicant(),
        complainant=OWNER,
        department=department,
        department_names={code: item.name_zh for code, item in departments.items()},
        assignable=[code for code, item in departments.items() if item.tasks],
    )


async def start_complaint(run: Run, complaint: ComplaintInput) -> Handle:
    handle: Handle = await run.env.client.start_workflow(
        COMPLAINT_WORKFLOW,
        complaint,
        id=complaint.complaint_id,
        task_queue=run.task_queue,
        result_type=ComplaintSnapshot,
    )
    await wait_accepted(handle, ComplaintSnapshot)
    return handle


async def answer_and_close(handle: Handle) -> None:
    await update(
        handle, "answer", AnswerComplaintInput(actor=officer("police"), answer="已核查，已整改。"), ComplaintSnapshot
    )
    await update(
        handle,
        "close",
        CloseComplaintInput(actor=SUPERVISOR, satisfied=True, note="电话回访满意"),
        ComplaintSnapshot,
    )


async def complaint_answered_closed(run: Run) -> Handle:
    """About the hospital; the supervisor assigns it to the police, who answer; the supervisor closes it."""
    handle = await start_complaint(run, complaint_input(run, "hospital"))
    await update(
        handle,
        "assign",
        AssignComplaintInput(actor=SUPERVISOR, department="police", note="请公安部门核查"),
        ComplaintSnapshot,
    )
    await answer_and_close(handle)
    return handle


async def complaint_overdue_then_closed(run: Run) -> Handle:
    """Filed Thursday 15:00, due 24:00 the next Thursday, left unassigned and unanswered: warning,
    overdue and 督办 to the hospital at the end of Thursday, Friday and Monday; then assigned,
    answered late and closed."""
    handle = await start_complaint(run, complaint_input(run, "hospital"))
    await sleep_until(run.env, shanghai(2026, 12, 1, 0, 1))
    await wait_quiet(handle)
    snapshot: ComplaintSnapshot = await handle.query("snapshot", result_type=ComplaintSnapshot)
    if snapshot.escalations < 3:
        raise RuntimeError(f"expected three 督办 by now, got {snapshot.escalations}")
    await update(handle, "assign", AssignComplaintInput(actor=SUPERVISOR, department="police"), ComplaintSnapshot)
    await answer_and_close(handle)
    return handle


ROUTES: list[Route] = [
    Route("birth-online-rated-good", QUIET_TUESDAY, birth_online_rated_good, "online, rated 5, archived"),
    Route("birth-hospital", QUIET_TUESDAY, birth_hospital, "hospital window, delivery by its clerk"),
    Route(
        "birth-window-intake-supplement",
        QUIET_TUESDAY,
        birth_window_intake_supplement,
        "service-centre window, material owed at intake, supplied by the clerk",
    ),
    Route("birth-returned-for-supplement", QUIET_TUESDAY, birth_returned_for_supplement, "a step returned for 补正"),
    Route("birth-refused", QUIET_TUESDAY, birth_refused, "a step refused, the case refused"),
    Route("birth-rated-low-follow-up", QUIET_TUESDAY, birth_rated_low_follow_up, "rated 2, 回访 by a supervisor"),
    Route(
        "birth-declaration-not-verified",
        QUIET_TUESDAY,
        birth_declaration_not_verified,
        "a refusing result (declaration not verified): the case refused, hukou never opened",
    ),
    Route(
        "birth-routed-to-units",
        QUIET_TUESDAY,
        birth_routed_to_units,
        "online, each step routed to a unit (hukou in 宁波市海曙区), each unit's officer acts",
    ),
    Route(
        "birth-task-operations",
        QUIET_TUESDAY,
        birth_task_operations,
        "unclaim, reassign, transfer, two days suspended and resumed, extension approved; then finished",
    ),
    Route("birth-withdrawn", QUIET_TUESDAY, birth_withdrawn, "withdrawn by the applicant after the first step"),
    Route("birth-declined", QUIET_TUESDAY, birth_declined, "declined by the accepting clerk before any step"),
    Route(
        "birth-walk-in-adopted",
        QUIET_TUESDAY,
        birth_walk_in_adopted,
        "accepted at a window for a person without an account, adopted at their sign-in, finished, rated",
    ),
    Route(
        "birth-walk-in-rated-by-link",
        QUIET_TUESDAY,
        birth_walk_in_rated_by_link,
        "accepted at a window for a person without an account, finished, rated through the SMS link",
    ),
    Route("notice-delivery-round", QUIET_TUESDAY, notice_delivery_round, "one round of the SMS outbox"),
    Route(
        "retirement-conditions-not-met",
        QUIET_TUESDAY,
        retirement_conditions_not_met,
        "a refusing result (early-retirement conditions unmet): the case refused",
    ),
    Route(
        "birth-overdue-supervised",
        shanghai(2026, 11, 26, 15),
        birth_overdue_supervised,
        "warning, overdue, three automatic 督办, manual 督办 and 催办",
    ),
    Route(
        "birth-data-sharing-unavailable",
        QUIET_TUESDAY,
        birth_data_sharing_unavailable,
        "data sharing down, documents asked for and supplied",
        worker_options=lambda: {"gateway": UnavailableGateway()},
    ),
    *(
        Route(f"{thing.replace('_', '-')}-online", QUIET_TUESDAY, thing_online(thing), f"{thing}, first situation")
        for thing in DEFINITIONS
        if thing != "birth"
    ),
    Route("complaint-answered-closed", QUIET_TUESDAY, complaint_answered_closed, "assigned, answered, closed"),
    Route(
        "complaint-overdue-then-closed",
        shanghai(2026, 11, 19, 15),
        complaint_overdue_then_closed,
        "warning, overdue, three 督办, then assigned, answered, closed",
    ),
]


async def record_all(out: Path, only: Sequence[str]) -> None:
    unknown = sorted(set(only) - {route.name for route in ROUTES})
    if unknown:
        raise SystemExit(f"no such path: {', '.join(unknown)}")
    out.mkdir(parents=True, exist_ok=True)
    for route in ROUTES:
        if only and route.name not in only:
            continue
        started = time.monotonic()
        events = await record(route, out)
        print(f"{route.name}: {events} events ({route.description}) in {time.monotonic() - started:.1f} s", flush=True)


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--out", type=Path, required=True, help="directory for the <path-name>.json files")
    parser.add_argument("--only", nargs="*", default=[], help="record only these paths")
    arguments = parser.parse_args(argv)
    asyncio.run(record_all(arguments.out, arguments.only))


if __name__ == "__main__":
    main()

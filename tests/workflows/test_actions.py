"""Officers' actions as Updates: who may act on what, when, with which result;
rejections happen in validators (no history written), duplicates apply once, and a
refusal closes the case."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import date
from typing import Any

import pytest
from sqlmodel import Session
from temporalio import client as temporal_client
from temporalio.api.enums.v1 import EventType as HistoryEventType
from temporalio.client import Client, WorkflowFailureError
from temporalio.exceptions import ApplicationError
from temporalio.service import RPCError, RPCStatusCode
from temporalio.testing import WorkflowEnvironment

from domain.identity import make_id_number
from domain.samples import sample_birth_form, sample_result
from infra.actor_seal import ActorSealSigner, SealKeys
from models.case import (
    Actor,
    CaseStatus,
    ClaimInput,
    CompleteStepInput,
    EventType,
    RefuseStepInput,
    ReturnStepInput,
    StepStatus,
    StepView,
    SupplementInput,
)
from models.errors import DomainError, ErrorCode
from models.tables import CaseRecord
from services.gateway import send_update
from settings import installed_binary
from tests.conftest import TEST_CLIENT_INTERCEPTORS, TEST_DATA_CONVERTER, register_search_attributes, running_worker
from tests.workflows.helpers import (
    BIRTH,
    CaseHandle,
    applicant,
    case_events,
    case_record,
    claim,
    claim_and_complete,
    complete,
    finished,
    new_case,
    notifications,
    officer,
    quiet_history_length,
    rejected_fields,
    rejected_without_history,
    rejection,
    started_case,
    statuses,
    tasks,
    update,
    view,
    wait_accepted,
)
from workflows.case.workflow import CaseWorkflow
from workflows.starter import start_case


@pytest.fixture(scope="module")
async def dev_env() -> AsyncIterator[WorkflowEnvironment]:
    """A real (in-memory) Temporal dev server. Rejected Updates write no history there;
    the Java time-skipping server does not implement speculative workflow tasks and
    records a workflow task for every Update, accepted or not."""
    async with await WorkflowEnvironment.start_local(
        dev_server_existing_path=installed_binary("temporal"),
        data_converter=TEST_DATA_CONVERTER,
        interceptors=TEST_CLIENT_INTERCEPTORS,
    ) as environment:
        await register_search_attributes(environment.client)
        yield environment


async def test_an_accepted_update_writes_history_and_a_rejected_one_writes_none(dev_env, settings, engine, task_queue):
    case = new_case()
    async with (
        running_worker(dev_env.client, settings, engine, task_queue),
        started_case(dev_env.client, task_queue, case) as handle,
    ):
        await wait_accepted(handle)
        before = await quiet_history_length(handle)
        await claim(handle, "birth_certificate", officer("hospital"))
        after_claim = await quiet_history_length(handle)
        assert after_claim > before

        error = await rejected_without_history(handle, claim(handle, "birth_certificate", officer("hospital", 2)))
        assert error.type == "conflict"
        history = await handle.fetch_history()
        assert len(history.events) == after_claim
        update_events = [
            event
            for event in history.events
            if event.event_type == HistoryEventType.EVENT_TYPE_WORKFLOW_EXECUTION_UPDATE_ACCEPTED
        ]
        # wait_accepted and the one accepted claim; nothing for the rejected claim.
        assert len(update_events) == 2


class _SwapActor(temporal_client.Interceptor):
    """After the seal is made, swaps the Update's actor: a captured seal reused for another body."""

    def __init__(self, actor: Actor) -> None:
        self.actor = actor

    def intercept_client(self, next: temporal_client.OutboundInterceptor) -> temporal_client.OutboundInterceptor:
        actor = self.actor

        class Swapping(temporal_client.OutboundInterceptor):
            async def start_workflow_update(self, input: temporal_client.StartWorkflowUpdateInput) -> Any:
                input.args = [input.args[0].model_copy(update={"actor": actor})]
                return await super().start_workflow_update(input)

        return Swapping(next)


def client_with(client: Client, *interceptors: temporal_client.Interceptor) -> Client:
    """The same connection and codec as ``client``, with only ``interceptors``: a caller on the
    Temporal network that bypasses the API."""
    config = client.config()
    config["interceptors"] = list(interceptors)
    return Client(**config)


async def test_an_update_sent_straight_to_temporal_without_a_valid_seal_is_rejected_and_writes_nothing(
    dev_env, settings, engine, task_queue
):
    case = new_case()
    hospital, other_hospital_officer = officer("hospital"), officer("hospital", 2)
    forger = ActorSealSigner(SealKeys({"derived": b"f" * 32}, "derived", max_age_seconds=300))
    attackers = {
        "no seal": client_with(dev_env.client),
        "a seal under another key": client_with(dev_env.client, forger),
        "a valid seal for another actor": client_with(
            dev_env.client, *TEST_CLIENT_INTERCEPTORS, _SwapActor(other_hospital_officer)
        ),
    }
    async with (
        running_worker(dev_env.client, settings, engine, task_queue),
        started_case(dev_env.client, task_queue, case) as handle,
    ):
        await wait_accepted(handle)
        for attack, attacker in attackers.items():
            direct: CaseHandle = attacker.get_workflow_handle_for(CaseWorkflow.run, handle.id)
            error = await rejected_without_history(handle, claim(direct, "birth_certificate", hospital))
            assert (error.type, "unsealed" in error.message) == ("forbidden", True), attack
        snapshot = await handle.query(CaseWorkflow.snapshot)
        step = view(snapshot, "birth_certificate")
        assert (step.status, step.assignee) == (StepStatus.OPEN, None)

        # The same claim through a sealing client (the API's) is applied.
        assert (await claim(handle, "birth_certificate", hospital)).assignee == hospital.username


async def test_a_case_started_straight_on_temporal_without_a_seal_fails_before_it_does_anything(
    dev_env, settings, engine, task_queue
):
    case, forger = new_case(), client_with(dev_env.client)
    async with running_worker(dev_env.client, settings, engine, task_queue):
        handle, created = await start_case(forger, task_queue, case)
        assert created
        with pytest.raises(WorkflowFailureError) as failure:
            await asyncio.wait_for(handle.result(), 20)
    cause = failure.value.cause
    assert isinstance(cause, ApplicationError) and (cause.type, "unsealed" in cause.message) == ("forbidden", True)
    history = await handle.fetch_history()
    assert not any(event.HasField("activity_task_scheduled_event_attributes") for event in history.events)
    with Session(engine) as session:
        assert session.get(CaseRecord, case.case_id) is None


async def test_officers_cannot_act_on_another_departments_step(dev_env, settings, engine, task_queue):
    form = sample_birth_form()
    case = new_case(form=form)
    police, hospital = officer("police"), officer("hospital")
    async with (
        running_worker(dev_env.client, settings, engine, task_queue),
        started_case(dev_env.client, task_queue, case) as handle,
    ):
        await wait_accepted(handle)

        error = await rejected_without_history(handle, claim(handle, "birth_certificate", police))
        assert error.type == "forbidden"
        # Only officers act on the hospital's certificate steps, not its clerks.
        error = await rejected_without_history(
            handle, claim(handle, "birth_certificate", officer("hospital", role="clerk"))
        )
        assert error.type == "forbidden"

        await claim(handle, "birth_certificate", hospital)
        error = await rejected_without_history(handle, complete(handle, "birth_certificate", police, form))
        assert error.type == "forbidden"
        # Even under the assignee's user name, an actor of another unit is refused.
        impostor = police.model_copy(update={"username": hospital.username})
        error = await rejected_without_history(handle, complete(handle, "birth_certificate", impostor, form))
        assert error.type == "forbidden"

        snapshot = await handle.query(CaseWorkflow.snapshot)
        step = view(snapshot, "birth_certificate")
        assert (step.status, step.assignee) == (StepStatus.CLAIMED, hospital.username)


async def test_actions_out_of_turn_are_conflicts(dev_env, settings, engine, task_queue):
    form = sample_birth_form()
    case = new_case(form=form)
    hospital, colleague = officer("hospital", 1), officer("hospital", 2)
    async with (
        running_worker(dev_env.client, settings, engine, task_queue),
        started_case(dev_env.client, task_queue, case) as handle,
    ):
        await wait_accepted(handle)

        # Completing, returning or refusing an unclaimed task.
        error = await rejected_without_history(handle, complete(handle, "birth_certificate", hospital, form))
        assert error.type == "conflict"
        error = await rejected_without_history(
            handle,
            update(
                handle,
                CaseWorkflow.refuse,
                RefuseStepInput(actor=hospital, step="birth_certificate", reason="材料不符"),
            ),
        )
        assert error.type == "conflict"

        # A step whose dependencies are not done yet.
        error = await rejected_without_history(handle, claim(handle, "hukou_registration", officer("police")))
        assert error.type == "conflict"

        # A task claimed by a colleague.
        await claim(handle, "birth_certificate", hospital)
        error = await rejected_without_history(handle, claim(handle, "birth_certificate", colleague))
        assert error.type == "conflict"
        error = await rejected_without_history(handle, complete(handle, "birth_certificate", colleague, form))
        assert error.type == "conflict"
        error = await rejected_without_history(
            handle,
            update(
                handle,
                CaseWorkflow.return_for_supplement,
                ReturnStepInput(actor=colleague, step="birth_certificate", missing=["x"], reason="y"),
            ),
        )
        assert error.type == "conflict"
        # Claiming one's own task again is harmless.
        again = await claim(handle, "birth_certificate", hospital)
        assert (again.status, again.assignee) == (StepStatus.CLAIMED, hospital.username)

        # A finished step.
        await complete(handle, "birth_certificate", hospital, form)
        error = await rejected_without_history(handle, claim(handle, "birth_certificate", hospital))
        assert error.type == "conflict"
        error = await rejected_without_history(handle, complete(handle, "birth_certificate", hospital, form))
        assert error.type == "conflict"

        assert [e.actor for e in case_events(engine, case.case_id, step="birth_certificate", type="claimed")] == [
            hospital.username
        ]


async def test_an_unknown_step_is_not_found(dev_env, settings, engine, task_queue):
    form = sample_birth_form()
    case = new_case(form=form)
    async with (
        running_worker(dev_env.client, settings, engine, task_queue),
        started_case(dev_env.client, task_queue, case) as handle,
    ):
        await wait_accepted(handle)
        error = await rejected_without_history(handle, claim(handle, "passport_application", officer("police")))
        assert error.type == "not_found"
        # Online cases have no delivery step.
        error = await rejected_without_history(handle, claim(handle, "delivery", officer("hospital")))
        assert error.type == "not_found"


async def test_invalid_results_are_rejected_naming_the_result_field(dev_env, settings, engine, task_queue):
    form = sample_birth_form()
    case = new_case(form=form)
    hospital, police, medical = officer("hospital"), officer("police"), officer("medical_security")
    valid_number = sample_result(BIRTH.step("hukou_registration"), form)["citizen_id_number"]
    wrong_checksum = valid_number[:-1] + ("0" if valid_number[-1] != "0" else "1")
    other_birthday = make_id_number("330102", date(2026, 11, 21), 1)
    assert form["newborn"]["born_at"].startswith("2026-11-20")

    async def rejected_result(handle, step: str, actor, result: dict[str, object]) -> dict[str, str]:
        error = await rejected_without_history(handle, complete(handle, step, actor, form, result=result))
        assert error.type == "validation_error"
        return rejected_fields(error)

    async with (
        running_worker(dev_env.client, settings, engine, task_queue),
        started_case(dev_env.client, task_queue, case) as handle,
    ):
        await wait_accepted(handle)
        await claim(handle, "birth_certificate", hospital)
        assert set(await rejected_result(handle, "birth_certificate", hospital, {"certificate_no": "abc"})) == {
            "result.certificate_no"
        }
        assert set(await rejected_result(handle, "birth_certificate", hospital, {})) == {"result.certificate_no"}
        assert set(
            await rejected_result(
                handle, "birth_certificate", hospital, {"certificate_no": "X330102001", "colour": "red"}
            )
        ) == {"result.colour"}
        await complete(handle, "birth_certificate", hospital, form)

        await claim(handle, "hukou_registration", police)
        booklet = {"booklet_page": "户号330102012345第3页"}
        for number in (wrong_checksum, other_birthday, "12345"):
            fields = await rejected_result(
                handle, "hukou_registration", police, {**booklet, "citizen_id_number": number}
            )
            assert set(fields) == {"result.citizen_id_number"}
        fields = await rejected_result(
            handle, "hukou_registration", police, {**booklet, "citizen_id_number": other_birthday}
        )
        assert "2026-11-20" in fields["result.citizen_id_number"]
        await complete(handle, "hukou_registration", police, form)

        await claim(handle, "maternity_benefit_review", medical)
        # Money is decimal yuan as a string with two places: a float is refused even
        # when it would print as a valid amount.
        for bad in (15230.55, 12.5, "12.5", 1250, "1,250.00"):
            fields = await rejected_result(
                handle,
                "maternity_benefit_review",
                medical,
                {"medical_costs_settled": "3200.00", "allowance_amount": bad},
            )
            assert set(fields) == {"result.allowance_amount"}

        snapshot = await handle.query(CaseWorkflow.snapshot)
        assert view(snapshot, "maternity_benefit_review").status == StepStatus.CLAIMED
        done = await complete(
            handle,
            "maternity_benefit_review",
            medical,
            form,
            result={"medical_costs_settled": "3200.00", "allowance_amount": "15230.50"},
        )
        assert done.result == {"medical_costs_settled": "3200.00", "allowance_amount": "15230.50"}
        hukou = view(await handle.query(CaseWorkflow.snapshot), "hukou_registration")
        assert hukou.result is not None and hukou.result["citizen_id_number"] == valid_number


async def test_a_duplicate_update_id_is_applied_once(env, settings, engine, task_queue):
    form = sample_birth_form()
    case = new_case(form=form)
    hospital = officer("hospital")
    async with (
        running_worker(env.client, settings, engine, task_queue),
        started_case(env.client, task_queue, case) as handle,
    ):
        await wait_accepted(handle)
        await claim(handle, "birth_certificate", hospital)
        first = await complete(handle, "birth_certificate", hospital, form, id="complete/birth_certificate/key-1")
        # A client retry: same id, answered from the first run, not re-validated.
        second = await complete(handle, "birth_certificate", hospital, form, id="complete/birth_certificate/key-1")
        assert first == second
        assert first.status == StepStatus.DONE

        # Concurrent duplicates too.
        await claim(handle, "vaccination_certificate", hospital)
        answers = await asyncio.gather(
            *(
                complete(handle, "vaccination_certificate", hospital, form, id="complete/vaccination/key-2")
                for _ in range(3)
            )
        )
        assert all(isinstance(answer, StepView) and answer == answers[0] for answer in answers)

        history = await handle.fetch_history()
        accepted_ids = [
            event.workflow_execution_update_accepted_event_attributes.accepted_request.meta.update_id
            for event in history.events
            if event.event_type == HistoryEventType.EVENT_TYPE_WORKFLOW_EXECUTION_UPDATE_ACCEPTED
        ]
        assert accepted_ids.count("complete/birth_certificate/key-1") == 1
        assert accepted_ids.count("complete/vaccination/key-2") == 1
        for step in ("birth_certificate", "vaccination_certificate"):
            assert len(case_events(engine, case.case_id, step=step, type=EventType.COMPLETED)) == 1
        # One result notice per step once every activity has run.
        await quiet_history_length(handle)
        delivered = notifications(engine, case.case_id, kind="result_delivery")
        assert sorted(str(n.step) for n in delivered) == ["birth_certificate", "vaccination_certificate"]


async def test_a_refusal_closes_the_case_cancels_open_steps_and_notifies_the_applicant(
    env, settings, engine, task_queue
):
    form = sample_birth_form()
    case = new_case(form=form)
    police = officer("police")
    reason = "出生医学证明与户籍信息不一致"
    async with (
        running_worker(env.client, settings, engine, task_queue),
        started_case(env.client, task_queue, case) as handle,
    ):
        await wait_accepted(handle)
        await claim_and_complete(handle, "birth_certificate", form)
        await claim(handle, "hukou_registration", police)
        no_reason = await rejection(
            update(handle, CaseWorkflow.refuse, RefuseStepInput(actor=police, step="hukou_registration", reason=" "))
        )
        assert no_reason.type == "validation_error"
        assert set(rejected_fields(no_reason)) == {"reason"}

        refused = await update(
            handle, CaseWorkflow.refuse, RefuseStepInput(actor=police, step="hukou_registration", reason=reason)
        )
        assert refused.status == StepStatus.REFUSED
        assert refused.result == {"reason": reason}
        result = await finished(handle)

        assert result.status == CaseStatus.REFUSED
        assert statuses(result) == {
            "birth_certificate": "done",
            "vaccination_certificate": "cancelled",
            "hukou_registration": "refused",
            "medical_insurance_enrollment": "cancelled",
            "maternity_benefit_review": "cancelled",
            "social_security_card": "cancelled",
        }
        assert case_record(engine, case.case_id).status == CaseStatus.REFUSED
        assert {code: row.status for code, row in tasks(engine, case.case_id).items()} == {
            "birth_certificate": "done",
            "vaccination_certificate": "cancelled",
            "hukou_registration": "refused",
            "medical_insurance_enrollment": "cancelled",
            "maternity_benefit_review": "cancelled",
            "social_security_card": "cancelled",
        }
        [refusal] = case_events(engine, case.case_id, type=EventType.REFUSED)
        assert (refusal.step, refusal.actor, refusal.detail) == (
            "hukou_registration",
            police.username,
            {"reason": reason},
        )
        assert len(case_events(engine, case.case_id, type=EventType.CANCELLED)) == 4
        assert case_events(engine, case.case_id, type=EventType.CASE_COMPLETED) == []
        [notice] = notifications(engine, case.case_id, kind="case_refused")
        assert reason in notice.message_zh and notice.recipient == "applicant1"
        assert notifications(engine, case.case_id, kind="case_completed") == []

        # The case is closed: actions reach no handler, and the API reports a conflict.
        with pytest.raises(RPCError) as closed:
            await claim(handle, "vaccination_certificate", officer("hospital"))
        assert closed.value.status == RPCStatusCode.NOT_FOUND
        for method, argument in (
            (CaseWorkflow.claim, ClaimInput(actor=officer("hospital"), step="vaccination_certificate")),
            (CaseWorkflow.supplement, SupplementInput(actor=applicant(), materials={"x": "y"})),
        ):
            with pytest.raises(DomainError) as conflict:
                await send_update(env.client, case.case_id, method, argument, result_type=StepView, update_id=None)
            assert conflict.value.code == ErrorCode.CONFLICT


@asynccontextmanager
async def declaration_reviewed(
    env, settings, engine, task_queue, verified: bool
) -> AsyncIterator[tuple[CaseHandle, str, StepView]]:
    """An unmarried parents' case whose declaration the police have just reviewed: the handle,
    the case id and the review's answer."""
    form = sample_birth_form(marital_status="unmarried", follow="mother")
    case = new_case(form=form)
    police = officer("police")
    async with (
        running_worker(env.client, settings, engine, task_queue),
        started_case(env.client, task_queue, case) as handle,
    ):
        await wait_accepted(handle)
        await claim_and_complete(handle, "birth_certificate", form)
        await claim(handle, "unmarried_declaration_review", police)
        answer = await update(
            handle,
            CaseWorkflow.complete,
            CompleteStepInput(
                actor=police, step="unmarried_declaration_review", result={"declaration_verified": verified}
            ),
        )
        yield handle, case.case_id, answer


async def test_a_failed_declaration_check_refuses_the_case_and_never_opens_hukou_registration(
    env, settings, engine, task_queue
):
    negative = BIRTH.step("unmarried_declaration_review").result["declaration_verified"].negative
    assert negative is not None
    reason = negative.reason_zh
    # The department's finding is "no"; nothing else is asked of a refused review.
    async with declaration_reviewed(env, settings, engine, task_queue, verified=False) as (handle, case_id, answer):
        assert answer.status == StepStatus.REFUSED
        assert answer.result == {"declaration_verified": False, "reason": reason}
        result = await finished(handle)

        assert result.status == CaseStatus.REFUSED
        assert statuses(result)["hukou_registration"] == "cancelled"
        assert view(result, "hukou_registration").opened_at is None
        assert case_events(engine, case_id, type=EventType.OPENED, step="hukou_registration") == []
        [refusal] = case_events(engine, case_id, type=EventType.REFUSED)
        assert (refusal.step, refusal.detail) == (
            "unmarried_declaration_review",
            {"reason": reason, "field": "declaration_verified"},
        )
        [notice] = notifications(engine, case_id, kind="case_refused")
        assert reason in notice.message_zh


async def test_a_passed_declaration_check_opens_hukou_registration(env, settings, engine, task_queue):
    # A positive finding must still give every required field: only a refusal relaxes them.
    async with declaration_reviewed(env, settings, engine, task_queue, verified=True) as (handle, _, answer):
        assert answer.status == StepStatus.DONE
        snapshot = await handle.query(CaseWorkflow.snapshot)
        assert view(snapshot, "hukou_registration").status == StepStatus.OPEN
        assert snapshot.status != CaseStatus.REFUSED

"""Determinism: a finished case's history replays against the current workflow code.

Deadlines live in activity results, so replay never consults the calendar; a
history with a 补正 pause and overdue 督办 is the hardest one to replay.
"""

from __future__ import annotations

from datetime import datetime, timedelta

from temporalio.worker import Replayer

from domain.catalogue import resolve_for_case, shipped_definitions
from domain.samples import sample_birth_form, sample_result
from domain.workcalendar import SHANGHAI
from models.case import Actor, CaseInput, ClaimInput, CompleteStepInput, ReturnStepInput, SupplementInput
from tests.conftest import TEST_DATA_CONVERTER, running_worker, time_skipping_env
from workflows.case.workflow import CaseWorkflow
from workflows.starter import new_case_id, start_case


def _officer(department: str) -> Actor:
    return Actor(username=f"{department}_officer", role="officer", unit=department)


async def test_case_history_with_pause_and_escalations_replays(settings, engine, task_queue, tmp_path) -> None:
    # A server of its own: this test skips days, which the shared server's other
    # cases' timers must not interfere with.
    async with time_skipping_env(starting_at=datetime(2026, 11, 24, 10, 0, tzinfo=SHANGHAI), workdir=tmp_path) as env:
        await _run_and_replay(env, settings, engine, task_queue)


async def _run_and_replay(env, settings, engine, task_queue) -> None:
    birth = shipped_definitions()["birth"]
    form = sample_birth_form()
    applicant = Actor(username="applicant1", role="applicant")
    case = CaseInput(
        case_id=new_case_id("applicant1", None),
        definition=resolve_for_case(birth, form),
        channel="hospital",
        form=form,
        owner="applicant1",
        submitted_by=applicant,
    )
    async with running_worker(env.client, settings, engine, task_queue):
        handle, _ = await start_case(env.client, task_queue, case)
        await handle.execute_update(CaseWorkflow.wait_accepted)
        hospital = _officer("hospital")
        await handle.execute_update(CaseWorkflow.claim, ClaimInput(actor=hospital, step="birth_certificate"))
        await handle.execute_update(
            CaseWorkflow.return_for_supplement,
            ReturnStepInput(actor=hospital, step="birth_certificate", missing=["father_id_copy"], reason="不清晰"),
        )
        await handle.execute_update(
            CaseWorkflow.supplement, SupplementInput(actor=applicant, materials={"father_id_copy": "UP-1"})
        )
        await env.sleep(timedelta(days=4))  # past due: overdue and 督办 fire
        snapshot = await handle.query(CaseWorkflow.snapshot)
        assert any(step.escalations > 0 for step in snapshot.steps)
        for code in [s.code for s in case.definition.steps_for("hospital")]:
            step = birth.step(code)
            actor = _officer(step.department_for("hospital"))
            await handle.execute_update(CaseWorkflow.claim, ClaimInput(actor=actor, step=code))
            await handle.execute_update(
                CaseWorkflow.complete, CompleteStepInput(actor=actor, step=code, result=sample_result(step, form))
            )
        await handle.result()
        history = await handle.fetch_history()

    replayer = Replayer(workflows=[CaseWorkflow], data_converter=TEST_DATA_CONVERTER)
    result = await replayer.replay_workflow(history, raise_on_replay_failure=False)
    assert result.replay_failure is None

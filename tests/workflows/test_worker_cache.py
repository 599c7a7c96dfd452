"""The worker's bounded sticky cache: cases pushed out of it are replayed from
history when they next move, under the sandbox that shares our workflow modules."""

from __future__ import annotations

from temporalio.worker.workflow_sandbox import SandboxRestrictions

from models.case import CaseStatus
from tests.conftest import running_worker
from tests.conftest import test_settings as make_settings
from tests.workflows.helpers import ONLINE_ORDER, claim_and_complete, finished, new_case, started_case, wait_accepted
from worker import workflow_runner


async def test_cases_evicted_from_a_one_case_cache_still_complete(env, engine, task_queue, tmp_path) -> None:
    settings = make_settings(tmp_path, worker_max_cached_workflows=1)
    cases = [new_case() for _ in range(3)]
    async with running_worker(env.client, settings, engine, task_queue) as worker:
        assert worker.config()["max_cached_workflows"] == 1
        async with (
            started_case(env.client, task_queue, cases[0]) as first,
            started_case(env.client, task_queue, cases[1]) as second,
            started_case(env.client, task_queue, cases[2]) as third,
        ):
            handles = [first, second, third]
            for handle in handles:
                await wait_accepted(handle)
            # Interleaved, so each action finds its case evicted by the one before.
            for step in ONLINE_ORDER:
                for handle, case in zip(handles, cases, strict=True):
                    await claim_and_complete(handle, step, case.form)
            for handle in handles:
                snapshot = await finished(handle)
                assert snapshot.status == CaseStatus.COMPLETED


def test_the_sandbox_shares_our_workflow_modules_instead_of_reimporting_them_per_case() -> None:
    restrictions = workflow_runner().restrictions
    assert {"workflows", "models", "domain"} <= restrictions.passthrough_modules
    # Runtime restrictions still apply to the workflow code.
    assert restrictions.invalid_module_members == SandboxRestrictions.default.invalid_module_members

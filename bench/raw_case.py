"""The raw baselines: the birth case's shape written with the bare Temporal SDK.

``RawBirthCase`` (the raw ceiling): six steps in the birth case's dependency order,
each waiting for one client Update (``complete``) with a timer running beside it (as a
statutory clock would), and nothing else: no API, no read model, no calendar, no auth,
the SDK's default data converter.

``RawSameInteractionCase``: the same steps driven the way OneThing's officers drive a
case, a ``claim`` Update and then a ``complete`` Update per step, each step's timer
started when it opens, and still nothing else. Against it the full path's figures
measure what OneThing adds beyond the interaction itself.

The benchmark drives both with the bare client to measure what Temporal itself costs
for the same shape of work on the same server; one worker runs both.

    python -m bench.raw_case --address 127.0.0.1:7233 --task-queue raw-cases
"""

from __future__ import annotations

import argparse
import asyncio
from dataclasses import dataclass, field

from temporalio import workflow
from temporalio.client import Client
from temporalio.worker import Worker

WORKFLOW_NAME = "RawBirthCase"
SAME_INTERACTION_WORKFLOW_NAME = "RawSameInteractionCase"


@dataclass
class RawStep:
    code: str
    depends_on: list[str] = field(default_factory=list)


@dataclass
class RawCaseInput:
    steps: list[RawStep]
    timer_seconds: float  # each step's clock; firing is recorded, the step waits on


@dataclass
class RawCaseResult:
    steps_completed: int
    timers_fired: int


@workflow.defn(name=WORKFLOW_NAME)
class RawBirthCase:
    @workflow.init
    def __init__(self, case: RawCaseInput) -> None:
        # Known from the start, so an Update arriving with the first task is validated.
        self._depends_on = {step.code: set(step.depends_on) for step in case.steps}
        self._done: set[str] = set()
        self._timers_fired = 0

    @workflow.run
    async def run(self, case: RawCaseInput) -> RawCaseResult:
        await asyncio.gather(*(self._step(step, case.timer_seconds) for step in case.steps))
        return RawCaseResult(steps_completed=len(self._done), timers_fired=self._timers_fired)

    async def _step(self, step: RawStep, timer_seconds: float) -> None:
        await workflow.wait_condition(lambda: set(step.depends_on) <= self._done)
        try:
            await workflow.wait_condition(lambda: step.code in self._done, timeout=timer_seconds)
        except TimeoutError:
            self._timers_fired += 1
            await workflow.wait_condition(lambda: step.code in self._done)

    @workflow.update
    def complete(self, step: str) -> int:
        self._done.add(step)
        return len(self._done)

    @complete.validator
    def _validate_complete(self, step: str) -> None:
        ready = step in self._depends_on and self._depends_on[step] <= self._done
        if not ready or step in self._done:
            raise ValueError(f"step {step} is not open")


@workflow.defn(name=SAME_INTERACTION_WORKFLOW_NAME)
class RawSameInteractionCase:
    """Per step: opens once its dependencies are done, its timer starts, an officer's
    ``claim`` Update takes it and a ``complete`` Update finishes it."""

    @workflow.init
    def __init__(self, case: RawCaseInput) -> None:
        self._depends_on = {step.code: set(step.depends_on) for step in case.steps}
        self._claimed: set[str] = set()
        self._done: set[str] = set()
        self._timers_fired = 0

    @workflow.run
    async def run(self, case: RawCaseInput) -> RawCaseResult:
        await asyncio.gather(*(self._step(step, case.timer_seconds) for step in case.steps))
        return RawCaseResult(steps_completed=len(self._done), timers_fired=self._timers_fired)

    async def _step(self, step: RawStep, timer_seconds: float) -> None:
        await workflow.wait_condition(lambda: set(step.depends_on) <= self._done)
        try:
            await workflow.wait_condition(lambda: step.code in self._done, timeout=timer_seconds)
        except TimeoutError:
            self._timers_fired += 1
            await workflow.wait_condition(lambda: step.code in self._done)

    def _open(self, step: str) -> bool:
        return step in self._depends_on and self._depends_on[step] <= self._done and step not in self._done

    @workflow.update
    def claim(self, step: str) -> int:
        self._claimed.add(step)
        return len(self._claimed)

    @claim.validator
    def _validate_claim(self, step: str) -> None:
        if not self._open(step) or step in self._claimed:
            raise ValueError(f"step {step} is not open")

    @workflow.update
    def complete(self, step: str) -> int:
        self._done.add(step)
        return len(self._done)

    @complete.validator
    def _validate_complete(self, step: str) -> None:
        if not self._open(step) or step not in self._claimed:
            raise ValueError(f"step {step} is not claimed")


async def run_worker(address: str, task_queue: str) -> None:
    client = await Client.connect(address)
    await Worker(client, task_queue=task_queue, workflows=[RawBirthCase, RawSameInteractionCase]).run()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--address", required=True)
    parser.add_argument("--task-queue", required=True)
    arguments = parser.parse_args()
    asyncio.run(run_worker(arguments.address, arguments.task_queue))


if __name__ == "__main__":
    main()

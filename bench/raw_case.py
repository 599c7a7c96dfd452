"""The raw ceiling: the birth case's shape written with the bare Temporal SDK.

Six steps in the birth case's dependency order, each waiting for a client Update
with a timer running beside it (as a statutory clock would), and nothing else: no
API, no read model, no calendar, no auth, the SDK's default data converter. The
benchmark drives it with the bare client to measure what Temporal itself costs for
the same shape of work on the same server.

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


async def run_worker(address: str, task_queue: str) -> None:
    client = await Client.connect(address)
    await Worker(client, task_queue=task_queue, workflows=[RawBirthCase]).run()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--address", required=True)
    parser.add_argument("--task-queue", required=True)
    arguments = parser.parse_args()
    asyncio.run(run_worker(arguments.address, arguments.task_queue))


if __name__ == "__main__":
    main()

"""Every shipped "one thing", in every one of its situations, runs to completion: each
department's officer finishes its own steps in dependency order, and exactly the
situation's steps run. A new definition file is covered without touching this file."""

from __future__ import annotations

from typing import Any

import pytest

from domain.catalogue import resolve_for_case, shipped_definitions
from domain.samples import sample_answers, sample_form, sample_result
from models.case import Actor, CaseInput, CaseSnapshot, CaseStatus, StepStatus
from models.catalogue import ThingDefinition
from tests.conftest import running_worker
from tests.workflows.helpers import (
    CaseHandle,
    applicant,
    case_record,
    claim,
    complete,
    finished,
    officer,
    started_case,
    tasks,
    wait_accepted,
)
from workflows.case.workflow import CaseWorkflow
from workflows.starter import new_case_id

DEFINITIONS = shipped_definitions()


def _situations(definition: ThingDefinition) -> list[str | None]:
    """The situation codes; [None] for a thing without situations (one case runs it all)."""
    return [situation.code for situation in definition.situations] or [None]


def _runs() -> list[Any]:
    """(thing, situation, channel): every situation of every shipped thing, on every
    channel the thing offers."""
    return [
        pytest.param(definition.code, situation, channel.code, id=f"{definition.code}-{situation}-{channel.code}")
        for definition in DEFINITIONS.values()
        for situation in _situations(definition)
        for channel in definition.channels
    ]


def _situation_steps(definition: ThingDefinition, situation: str | None, channel: str) -> list[str]:
    """The steps the catalogue file lists for the situation, as offered on the channel."""
    listed = definition.situation_named(situation).steps if situation else None
    codes = listed if listed is not None else [step.code for step in definition.steps]
    return [code for code in codes if definition.step(code).applies_to(channel)]


def _submitter(definition: ThingDefinition, channel: str) -> Actor:
    unit = definition.channel(channel).accepting_unit
    return officer(unit, role="clerk") if unit else applicant()


def _check_only_ready_steps_are_open(snapshot: CaseSnapshot, definition: ThingDefinition) -> None:
    done = {view.step for view in snapshot.steps if view.status == StepStatus.DONE}
    present = {view.step for view in snapshot.steps}
    for view in snapshot.steps:
        waiting_for = [code for code in definition.step(view.step).depends_on if code in present and code not in done]
        if view.status == StepStatus.OPEN:
            assert waiting_for == [], f"{view.step} opened before {waiting_for}"
        if view.status == StepStatus.PENDING:
            assert waiting_for, f"{view.step} is pending although its dependencies are done"


async def _officers_finish_every_step(
    handle: CaseHandle, definition: ThingDefinition, form: dict[str, Any]
) -> list[str]:
    """Each open step is claimed and completed by an officer of its department until
    none is left; returns the steps in the order they were completed."""
    completed: list[str] = []
    while True:
        snapshot = await handle.query(CaseWorkflow.snapshot)
        _check_only_ready_steps_are_open(snapshot, definition)
        ready = [view for view in snapshot.steps if view.status == StepStatus.OPEN]
        if not ready:
            return completed
        step = ready[0]
        actor = officer(step.department)
        await claim(handle, step.step, actor)
        done = await complete(handle, step.step, actor, form, sample_result(definition.step(step.step), form))
        assert done.status == StepStatus.DONE
        completed.append(step.step)


@pytest.mark.parametrize(("thing", "situation", "channel"), _runs())
async def test_every_situation_runs_exactly_its_steps_each_finished_by_its_own_department(
    env, settings, engine, task_queue, thing, situation, channel
):
    shipped = DEFINITIONS[thing]
    form = sample_form(thing, situation, delivery="mail" if channel == "online" else "pickup")
    answers = sample_answers(thing, situation)
    definition = resolve_for_case(shipped, form, answers)
    assert definition.situation == situation
    expected = _situation_steps(shipped, situation, channel)
    case = CaseInput(
        case_id=new_case_id("applicant1", None),
        definition=definition,
        channel=channel,
        form=form,
        answers=answers,
        owner="applicant1",
        submitted_by=_submitter(shipped, channel),
    )
    async with (
        running_worker(env.client, settings, engine, task_queue),
        started_case(env.client, task_queue, case) as handle,
    ):
        accepted = await wait_accepted(handle)
        # Every material the situation needs came with the form or by data sharing.
        notice = accepted.acceptance_notice
        assert notice is not None
        assert notice.materials_to_supply == []
        obtained = {entry.code for entry in notice.materials_received + notice.materials_shared}
        needed = {m.code for m in definition.materials if m.source != "commitment" and m.applies(form)}
        assert obtained == needed
        # The situation's steps, listed in catalogue order.
        assert [view.step for view in accepted.steps] == [step.code for step in shipped.steps if step.code in expected]

        completed = await _officers_finish_every_step(handle, definition, form)
        result = await finished(handle)

    assert result.status == CaseStatus.COMPLETED
    assert result.situation == situation
    assert sorted(completed) == sorted(expected)
    for index, code in enumerate(completed):
        dependencies = [d for d in shipped.step(code).depends_on if d in expected]
        assert set(dependencies) <= set(completed[:index]), f"{code} completed before {dependencies}"
    for view in result.steps:
        assert view.status == StepStatus.DONE
        assert view.department == shipped.step(view.step).department_for(channel)
        assert view.assignee == officer(view.department).username
        assert view.time_limit_working_days == shipped.step(view.step).time_limit_for(channel)

    assert case_record(engine, case.case_id).status == CaseStatus.COMPLETED
    rows = tasks(engine, case.case_id)
    assert sorted(rows) == sorted(expected)
    for code, row in rows.items():
        assert (row.thing, row.department, row.status) == (thing, shipped.step(code).department_for(channel), "done")


@pytest.mark.parametrize("thing", list(DEFINITIONS))
def test_every_thing_is_offered_online_and_at_the_service_center_window_which_hands_over_once(thing):
    # 一网通办、一窗受理 (DB33/T 2304-2021 §4): every thing can be applied for online and at
    # the service centre; at the window one delivery step hands every result over.
    definition = DEFINITIONS[thing]
    assert definition.channel("online").accepting_unit is None
    assert definition.channel("service_center").accepting_unit == "service_center"
    for situation in definition.situations:
        resolved = definition.for_situation(situation.code)
        online = [step for step in resolved.steps_for("online") if step.delivers_case]
        window = [step for step in resolved.steps_for("service_center") if step.delivers_case]
        assert online == [], situation.code
        assert [step.department_for("service_center") for step in window] == ["service_center"], situation.code
        # Delivery comes last: it waits for every other step of the situation.
        others = {step.code for step in resolved.steps_for("service_center") if not step.delivers_case}
        assert set(window[0].depends_on) == others, situation.code

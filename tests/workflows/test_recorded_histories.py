"""Running cases survive a deploy: every recorded history (tests/histories/<version>/*.json,
made by ``python -m tests.histories.record``) replays against the workflow code the
worker runs today. A change that fails here would fail the cases running when it is
deployed; see tests/histories/README.md."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from temporalio.client import WorkflowHistory
from temporalio.worker import Replayer

from tests.conftest import TEST_DATA_CONVERTER
from workflows.kit.calls import ONE_WRITE_PATCH, WRITES_AFTER_TASK_PATCH
from workflows.registry import WORKFLOWS

HISTORIES = Path(__file__).resolve().parent.parent / "histories"
RECORDED = sorted(HISTORIES.glob("**/*.json"))
# The workflow types of the first recorded version: each must keep a recorded history.
V1_WORKFLOW_TYPES = ("CaseWorkflow", "ComplaintWorkflow")


def load(path: Path) -> WorkflowHistory:
    """The recorded history; its file's name (without .json) is the workflow's ID."""
    return WorkflowHistory.from_json(path.stem, path.read_text(encoding="utf-8"))


def workflow_type(history: WorkflowHistory) -> str:
    return history.events[0].workflow_execution_started_event_attributes.workflow_type.name


@pytest.mark.parametrize("path", RECORDED, ids=[str(path.relative_to(HISTORIES)) for path in RECORDED])
async def test_recorded_history_replays_against_the_current_workflows(path: Path) -> None:
    replayer = Replayer(workflows=WORKFLOWS, data_converter=TEST_DATA_CONVERTER)
    result = await replayer.replay_workflow(load(path), raise_on_replay_failure=False)
    assert result.replay_failure is None, f"{path.relative_to(HISTORIES)}: {result.replay_failure!r}"


def test_there_are_recorded_histories_to_replay() -> None:
    # Without this, a moved or emptied folder would leave the replay test with nothing to check.
    assert RECORDED, f"no recorded histories under {HISTORIES}"


def registered_name(workflow: type) -> str:
    """The workflow type a class registers (``@workflow.defn(name=...)``, else the class name)."""
    return str(getattr(workflow, "__temporal_workflow_definition").name)


def test_every_workflow_type_of_the_first_version_has_a_recorded_history() -> None:
    registered = {registered_name(workflow) for workflow in WORKFLOWS}
    recorded = {workflow_type(load(path)) for path in RECORDED}
    # A type the worker no longer runs fails the replays above instead.
    missing = [name for name in V1_WORKFLOW_TYPES if name in registered and name not in recorded]
    assert not missing, f"no recorded history of {missing}"


def patches(history: WorkflowHistory) -> set[str]:
    """The patch ids a history's ``workflow.patched`` calls recorded (plain JSON, not encrypted)."""
    found: set[str] = set()
    for event in history.events:
        attributes = event.marker_recorded_event_attributes
        if attributes.marker_name == "core_patch":
            for payload in attributes.details["patch-data"].payloads:
                found.add(json.loads(payload.data)["id"])
    return found


def test_each_edition_of_the_engine_has_every_path_recorded() -> None:
    """v1 holds first-edition runs (no one-write patch), v2 the same paths under it."""
    editions = {folder.name: sorted(folder.glob("*.json")) for folder in HISTORIES.iterdir() if folder.is_dir()}
    assert {path.stem for path in editions["v1"]} == {path.stem for path in editions["v2"]}
    assert all(ONE_WRITE_PATCH not in patches(load(path)) for path in editions["v1"])
    assert all(ONE_WRITE_PATCH in patches(load(path)) for path in editions["v2"])


def test_every_path_is_recorded_with_writes_after_their_task() -> None:
    """v6 holds every path of the earlier editions under the writes-after-task patch; the
    editions before it never wrote that way."""
    editions = {folder.name: sorted(folder.glob("*.json")) for folder in HISTORIES.iterdir() if folder.is_dir()}
    earlier = {path.stem for name, paths in editions.items() if name != "v6" for path in paths}
    assert earlier <= {path.stem for path in editions["v6"]}
    for path in editions["v6"]:
        history = load(path)
        if workflow_type(history) in V1_WORKFLOW_TYPES:
            assert WRITES_AFTER_TASK_PATCH in patches(history), path.name
    for name, paths in editions.items():
        if name != "v6":
            assert all(WRITES_AFTER_TASK_PATCH not in patches(load(path)) for path in paths), name

"""Client-side operations on case and complaint workflows: start one exactly once, find one.

Workflow IDs carry no personal data: a case started with an idempotency key gets
an ID derived from a hash of (account, key), so a retried request finds the same
workflow; without a key it gets a random one.
"""

from __future__ import annotations

import hashlib
import uuid

from temporalio.client import Client, WorkflowHandle
from temporalio.common import SearchAttributeKey, SearchAttributePair, TypedSearchAttributes, WorkflowIDReusePolicy
from temporalio.exceptions import WorkflowAlreadyStartedError

from models.case import SEARCH_ATTRIBUTE_STATUS, SEARCH_ATTRIBUTE_THING, CaseInput, CaseSnapshot, CaseStatus
from models.complaint import ComplaintInput, ComplaintSnapshot
from workflows.case.workflow import CaseWorkflow
from workflows.complaint.workflow import ComplaintWorkflow

THING_KEY = SearchAttributeKey.for_keyword(SEARCH_ATTRIBUTE_THING)
STATUS_KEY = SearchAttributeKey.for_keyword(SEARCH_ATTRIBUTE_STATUS)


def new_case_id(username: str, idempotency_key: str | None) -> str:
    if idempotency_key is None:
        return f"ot-{uuid.uuid4().hex[:20]}"
    digest = hashlib.sha256(f"{username}\x00{idempotency_key}".encode()).hexdigest()
    return f"ot-{digest[:20]}"


async def start_case(
    client: Client, task_queue: str, case: CaseInput
) -> tuple[WorkflowHandle[CaseWorkflow, CaseSnapshot], bool]:
    """Start the case's workflow unless it exists; returns the handle and whether it was created."""
    try:
        handle = await client.start_workflow(
            CaseWorkflow.run,
            case,
            id=case.case_id,
            task_queue=task_queue,
            id_reuse_policy=WorkflowIDReusePolicy.REJECT_DUPLICATE,
            search_attributes=TypedSearchAttributes(
                [
                    SearchAttributePair(THING_KEY, case.definition.code),
                    SearchAttributePair(STATUS_KEY, CaseStatus.ACCEPTED.value),
                ]
            ),
        )
        return handle, True
    except WorkflowAlreadyStartedError:
        return client.get_workflow_handle_for(CaseWorkflow.run, case.case_id), False


async def start_complaint(
    client: Client, task_queue: str, complaint: ComplaintInput
) -> tuple[WorkflowHandle[ComplaintWorkflow, ComplaintSnapshot], bool]:
    """Start the complaint's workflow unless it exists; returns the handle and whether it was created."""
    try:
        handle = await client.start_workflow(
            ComplaintWorkflow.run,
            complaint,
            id=complaint.complaint_id,
            task_queue=task_queue,
            id_reuse_policy=WorkflowIDReusePolicy.REJECT_DUPLICATE,
        )
        return handle, True
    except WorkflowAlreadyStartedError:
        return client.get_workflow_handle_for(ComplaintWorkflow.run, complaint.complaint_id), False

"""Acceptance (受理): what the data-sharing platform holds is fetched, the rest of the
applicable materials sorted into received and owed (workflows/case/notices.py)."""

from __future__ import annotations

from temporalio import workflow
from temporalio.exceptions import ActivityError, ApplicationError

from workflows.case import notices
from workflows.case.state import CaseState
from workflows.kit import calls

with workflow.unsafe.imports_passed_through():
    from models.case import FetchSharedMaterialsInput, MaterialEntry


async def gather_materials(
    state: CaseState, *, local: bool
) -> tuple[list[MaterialEntry], list[MaterialEntry], list[MaterialEntry]]:
    """(received, fetched by data sharing, owed); an unavailable platform means "owed"."""
    requests = notices.data_sharing_requests(state)
    found: dict[str, str] = {}
    if requests:
        try:
            fetched = await calls.fetch_shared_materials(
                FetchSharedMaterialsInput(case_id=state.case.case_id, requests=requests), local=local
            )
            found = {item.material: item.reference for item in fetched.found}
        # A local activity that ran out of attempts raises its last failure itself.
        except (ActivityError, ApplicationError):
            workflow.logger.warning("data sharing unavailable; materials will be requested")
    return notices.sort_materials(state, found)

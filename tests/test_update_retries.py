"""An Update refused for a burst (RESOURCE_EXHAUSTED: beyond the server's in-flight limit) or
aborted (UNAVAILABLE: its speculative workflow task dropped) was not applied: the gateway sends it
again, with the same update id, until it is answered or the wait runs out; other errors pass."""

from __future__ import annotations

from typing import Any

import pytest
from temporalio.service import RPCError, RPCStatusCode

from services import gateway
from services.gateway import send_update


class FlakyHandle:
    def __init__(self, failures: list[RPCStatusCode]) -> None:
        self.failures = list(failures)
        self.ids: list[str | None] = []

    async def execute_update(self, update: Any, argument: Any, *, id: str | None, result_type: Any) -> str:
        self.ids.append(id)
        if self.failures:
            status = self.failures.pop(0)
            raise RPCError("refused", status, b"")
        return "answered"


class FakeClient:
    def __init__(self, handle: FlakyHandle) -> None:
        self.handle = handle

    def get_workflow_handle(self, workflow_id: str) -> FlakyHandle:
        return self.handle


async def test_a_burst_refusal_and_an_abort_are_sent_again_with_the_same_id(monkeypatch):
    monkeypatch.setattr(gateway, "RETRY_FIRST_PAUSE", 0.001)
    handle = FlakyHandle([RPCStatusCode.RESOURCE_EXHAUSTED, RPCStatusCode.UNAVAILABLE])
    answer = await send_update(FakeClient(handle), "ot-x", "complete", {}, result_type=str, update_id=None)  # type: ignore[arg-type]
    assert answer == "answered"
    assert len(handle.ids) == 3 and len(set(handle.ids)) == 1 and handle.ids[0]


async def test_other_errors_are_not_retried():
    handle = FlakyHandle([RPCStatusCode.INVALID_ARGUMENT])
    with pytest.raises(RPCError):
        await send_update(FakeClient(handle), "ot-x", "complete", {}, result_type=str, update_id="k")  # type: ignore[arg-type]
    assert handle.ids == ["k"]

"""NoticeDeliveryWorkflow: one round of sending the SMS outbox's due rows.

A Temporal Schedule (``sms-delivery``, ensured by the worker at start) starts it every
minute, skipping a minute whose previous round still runs. The sending, the retries with
backoff and the bookkeeping are the activity's (activities/notice_delivery.py).
"""

from __future__ import annotations

from temporalio import workflow

from workflows.kit.calls import deliver_pending_sms

with workflow.unsafe.imports_passed_through():
    from models.notices import DeliverNoticesInput, DeliverNoticesResult

DELIVERY_SCHEDULE_ID = "sms-delivery"


@workflow.defn(name="NoticeDeliveryWorkflow")
class NoticeDeliveryWorkflow:
    @workflow.run
    async def run(self, request: DeliverNoticesInput) -> DeliverNoticesResult:
        ran_at = workflow.now()
        result = await deliver_pending_sms(request)
        return result.model_copy(update={"ran_at": ran_at})

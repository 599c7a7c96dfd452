"""Every workflow type a OneThing worker runs. The worker registers these, and replays
(the recorded-history test, `rebuild`, the timeline) use the same list."""

from __future__ import annotations

from workflows.case.workflow import CaseWorkflow
from workflows.complaint.workflow import ComplaintWorkflow
from workflows.notice_delivery import NoticeDeliveryWorkflow

WORKFLOWS: list[type] = [CaseWorkflow, ComplaintWorkflow, NoticeDeliveryWorkflow]

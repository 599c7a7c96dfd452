"""The OneThing worker: runs case and complaint workflows and their activities on the case task queue."""

from __future__ import annotations

import asyncio
import logging
import os
import signal
from concurrent.futures import ThreadPoolExecutor
from typing import NoReturn

from sqlalchemy import Engine
from temporalio.client import Client
from temporalio.worker import Worker
from temporalio.worker.workflow_sandbox import SandboxedWorkflowRunner, SandboxRestrictions

from activities.archive import ArchiveActivities
from activities.calendar import CalendarActivities
from activities.case_changes import CaseChangeActivities
from activities.complaints import ComplaintActivities
from activities.data_sharing import DataSharingActivities, DataSharingGateway, gateway_from_settings
from activities.notice_delivery import NoticeDeliveryActivities, ensure_delivery_schedule, follow_link_maker
from activities.read_model import ReadModelActivities
from domain.workcalendar import WorkingCalendar, make_calendar
from infra.actor_seal import ActorSealVerifier, SealKeys
from infra.db import init_db, make_engine
from infra.file_store import file_store_from_settings
from infra.logs import configure_logging
from infra.signing import archive_keys, signing_key
from infra.sms import SmsGateway, sms_gateway_from_settings
from infra.temporal import connect_temporal
from infra.tracing import configure_tracing
from infra.worker_telemetry import start_metrics_server
from settings import Settings, get_settings
from workflows.registry import WORKFLOWS


def workflow_runner() -> SandboxedWorkflowRunner:
    """The sandbox, with our own workflow, model and domain-rule modules passed through.

    By default the sandbox re-imports a workflow's module for every run it loads, so
    each cached case carried its own copy of the workflow's code objects (about 0.2 MB)
    and paid the import on every load. Our `workflows`, `models` and `domain` modules hold
    no mutable module state that workflow code touches, so one shared import is safe; the
    sandbox's runtime restrictions (no clock, no I/O) still apply to the workflow code.
    """
    restrictions = SandboxRestrictions.default.with_passthrough_modules("workflows", "models", "domain")
    return SandboxedWorkflowRunner(restrictions=restrictions)


def build_worker(
    client: Client,
    settings: Settings,
    engine: Engine,
    *,
    calendar: WorkingCalendar | None = None,
    gateway: DataSharingGateway | None = None,
    task_queue: str | None = None,
    sms_gateway: SmsGateway | None = None,
) -> Worker:
    calendar = calendar or make_calendar(settings.calendar_file, settings.working_day_seconds)
    gateway = gateway or gateway_from_settings(settings)
    calendar_activities = CalendarActivities(calendar)
    data_sharing = DataSharingActivities(gateway)
    read_model = ReadModelActivities(engine, calendar)
    case_changes = CaseChangeActivities(engine, calendar, signing_key(settings), follow_link_maker(settings))
    archive = ArchiveActivities(settings.archive_dir, archive_keys(settings), file_store_from_settings(settings))
    complaints = ComplaintActivities(engine)
    notice_delivery = NoticeDeliveryActivities(engine, sms_gateway or sms_gateway_from_settings(settings))
    return Worker(
        client,
        task_queue=task_queue or settings.task_queue,
        workflows=WORKFLOWS,
        activities=[
            calendar_activities.compute_deadlines,
            calendar_activities.compute_remaining_time,
            calendar_activities.compute_next_escalation,
            data_sharing.fetch_shared_materials,
            read_model.project_case,
            case_changes.write_case_changes,
            read_model.send_notification,
            read_model.escalate_overdue_step,
            read_model.record_supervision_notice,
            archive.archive_case,
            complaints.project_complaint,
            complaints.write_complaint_changes,
            complaints.escalate_overdue_complaint,
            notice_delivery.deliver_pending_sms,
        ],
        activity_executor=ThreadPoolExecutor(max_workers=settings.worker_activity_threads),
        max_concurrent_workflow_tasks=settings.worker_max_concurrent_workflow_tasks,
        workflow_task_executor=ThreadPoolExecutor(max_workers=settings.worker_max_concurrent_workflow_tasks),
        max_cached_workflows=settings.worker_max_cached_workflows,
        workflow_runner=workflow_runner(),
        # Whatever client the worker got, its workflows act only on sealed Updates.
        interceptors=[ActorSealVerifier(SealKeys.from_settings(settings))],
    )


async def run_worker(settings: Settings) -> None:
    engine = make_engine(settings.database_url)
    init_db(engine)
    # The worker's client times activities and, with a port set, serves the SDK's metrics.
    client = await connect_temporal(settings, worker=True)
    worker = build_worker(client, settings, engine)
    if settings.sms_gateway_url is not None and await ensure_delivery_schedule(client, settings.task_queue):
        logging.getLogger(__name__).info("created the SMS delivery schedule")
    metrics_server = start_metrics_server(settings)
    logging.getLogger(__name__).info("worker polling task queue %s", settings.task_queue)
    # SIGTERM (docker stop, a rolling deploy) drains: no new tasks are polled and the
    # activities in hand finish (or are handed back) before the process exits.
    loop = asyncio.get_running_loop()
    loop.add_signal_handler(signal.SIGTERM, lambda: loop.create_task(worker.shutdown()))
    try:
        await worker.run()
    finally:
        loop.remove_signal_handler(signal.SIGTERM)
        if metrics_server is not None:
            metrics_server.stop()


def main() -> None:
    settings = get_settings()
    configure_logging(settings)
    configure_tracing(settings, "onething-worker")
    asyncio.run(run_worker(settings))


def exit_without_finalizing() -> NoReturn:
    """End the worker process once it has drained and stopped. Interpreter finalization
    is skipped: the SDK's native threads can still call into Python while it runs, which
    aborts the process (PyGILState_Release) and turns a clean stop into a crash status."""
    logging.shutdown()
    os._exit(0)


if __name__ == "__main__":
    main()
    exit_without_finalizing()

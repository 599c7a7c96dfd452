"""The OneThing worker: runs case and complaint workflows and their activities on the case task queue."""

from __future__ import annotations

import asyncio
import logging
from concurrent.futures import ThreadPoolExecutor

from sqlalchemy import Engine
from temporalio.client import Client
from temporalio.worker import Worker

from activities.archive import ArchiveActivities
from activities.calendar import CalendarActivities
from activities.complaints import ComplaintActivities
from activities.data_sharing import DataSharingActivities, DataSharingGateway, gateway_from_settings
from activities.read_model import ReadModelActivities
from models.db import init_db, make_engine
from models.redaction import install_log_redaction
from models.workcalendar import WorkingCalendar, make_calendar
from settings import Settings, get_settings
from workflows.case_workflow import CaseWorkflow
from workflows.complaint_workflow import ComplaintWorkflow
from workflows.connection import connect_temporal


def build_worker(
    client: Client,
    settings: Settings,
    engine: Engine,
    *,
    calendar: WorkingCalendar | None = None,
    gateway: DataSharingGateway | None = None,
    task_queue: str | None = None,
) -> Worker:
    calendar = calendar or make_calendar(settings.calendar_file, settings.working_day_seconds)
    gateway = gateway or gateway_from_settings(settings)
    calendar_activities = CalendarActivities(calendar)
    data_sharing = DataSharingActivities(gateway)
    read_model = ReadModelActivities(engine, calendar)
    archive = ArchiveActivities(settings.archive_dir)
    complaints = ComplaintActivities(engine)
    return Worker(
        client,
        task_queue=task_queue or settings.task_queue,
        workflows=[CaseWorkflow, ComplaintWorkflow],
        activities=[
            calendar_activities.compute_deadlines,
            calendar_activities.compute_remaining_time,
            calendar_activities.compute_next_escalation,
            data_sharing.fetch_shared_materials,
            read_model.project_case,
            read_model.send_notification,
            read_model.escalate_overdue_step,
            read_model.record_supervision_notice,
            archive.archive_case,
            complaints.project_complaint,
            complaints.escalate_overdue_complaint,
        ],
        activity_executor=ThreadPoolExecutor(max_workers=16),
        # Cases live for days: keep a bounded number of them cached in memory.
        max_cached_workflows=2000,
    )


async def run_worker(settings: Settings) -> None:
    engine = make_engine(settings.database_url)
    init_db(engine)
    client = await connect_temporal(settings)
    worker = build_worker(client, settings, engine)
    logging.getLogger(__name__).info("worker polling task queue %s", settings.task_queue)
    await worker.run()


def main() -> None:
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s %(message)s")
    install_log_redaction()
    asyncio.run(run_worker(get_settings()))


if __name__ == "__main__":
    main()

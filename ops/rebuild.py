"""`onething rebuild`: the read model rebuilt from Temporal's histories
(activities/rebuild.py says what comes back), with a progress bar."""

from __future__ import annotations

import asyncio
import sys

from ops.progress import ProgressBar
from settings import get_settings


def rebuild_from_histories(force: bool) -> int:
    """Rebuild into the configured read model; refuses one that holds cases unless ``force``."""
    from activities.rebuild import RebuildReport, holds_cases, rebuild_read_model
    from domain.workcalendar import make_calendar
    from infra.db import init_db, make_engine
    from infra.temporal import connect_temporal

    settings = get_settings()
    engine = make_engine(settings.database_url)
    init_db(engine)
    if holds_cases(engine) and not force:
        print(
            "读模型中已有案件，未重建 (the read model already holds cases; rebuild is for a lost database). "
            "--force fills in what is missing and duplicates or deletes nothing.",
            file=sys.stderr,
        )
        return 1
    calendar = make_calendar(settings.calendar_file, settings.working_day_seconds)
    progress = ProgressBar("重建读模型 rebuilding")

    async def rebuild() -> RebuildReport | None:
        try:
            client = await connect_temporal(settings)
        except RuntimeError as error:
            print(f"无法连接 Temporal (cannot reach {settings.temporal_address}): {error}", file=sys.stderr)
            return None
        return await rebuild_read_model(client, engine, calendar, progress=progress)

    try:
        report = asyncio.run(rebuild())
    finally:
        progress.close()
    if report is None:
        return 1
    print(report.summary())
    return 1 if report.failures else 0

"""Fill the read model with synthetic closed cases, for supervision queries at scale.

    python bench/seed_read_model.py --cases 100000 [--database-url sqlite:///var/bench.db]

Rows are written directly into the read-model tables (no workflows): cases of the
shipped "one things" over the past months, every step with its department, due
date, completion and working hours as the projection would have written them,
some late, some still open and overdue. The numbers are random but seeded, so a
run is repeatable. The timeliness rollup is computed from the tasks written.
"""

from __future__ import annotations

import argparse
import random
import sys
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from sqlalchemy import Engine, insert

from domain.catalogue import shipped_definitions
from domain.workcalendar import SHANGHAI, WorkingCalendar, default_calendar_file
from infra.db import init_db, make_engine
from infra.timeliness_rollup import recompute_timeliness_rollup
from models.tables import CaseRecord, TaskRecord

BATCH = 2000


def synthetic_rows(count: int, now: datetime, seed: int = 7) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """(case rows, task rows) for ``count`` cases submitted over the 180 days before ``now``."""
    rng = random.Random(seed)
    calendar = WorkingCalendar.load(default_calendar_file())
    definitions = list(shipped_definitions().values())
    cases: list[dict[str, Any]] = []
    tasks: list[dict[str, Any]] = []
    for number in range(count):
        definition = definitions[number % len(definitions)]
        situation = rng.choice(definition.situations).code if definition.situations else None
        view = definition.for_situation(situation) if situation else definition
        channel = rng.choice([c.code for c in view.channels])
        submitted = now - timedelta(days=rng.uniform(0, 180))
        case_id = f"ot-syn-{number:08d}"
        still_open = rng.random() < 0.03
        cases.append(
            {
                "case_id": case_id,
                "thing": definition.code,
                "catalogue_version": definition.version,
                "channel": channel,
                "status": "in_progress" if still_open else "completed",
                "owner": f"applicant{number % 5000}",
                "submitted_by": f"applicant{number % 5000}",
                "accepting_unit": view.channel(channel).accepting_unit,
                "submitted_at": submitted,
                "revision": 1,
                "snapshot": {},
                "rating_open": False,
                "rating_closes_at": None if still_open else submitted + timedelta(days=14),
            }
        )
        opened = submitted
        for index, step in enumerate(view.steps_for(channel)):
            deadline = calendar.add_working_days(opened, step.time_limit_for(channel))
            open_now = still_open and index == 0
            late = rng.random() < 0.08
            hours = rng.uniform(1, 20) + (rng.uniform(24, 72) if late else 0)
            completed = None if open_now else min(calendar.add_working_seconds(opened, hours * 3600).due_at, now)
            used = None if completed is None else round(calendar.working_seconds_between(opened, completed) / 3600, 2)
            tasks.append(
                {
                    "task_id": f"{case_id}:{step.code}",
                    "case_id": case_id,
                    "thing": definition.code,
                    "step": step.code,
                    "department": step.department_for(channel),
                    "status": "claimed" if open_now else "done",
                    "assignee": f"{step.department_for(channel)}_officer",
                    "opened_at": opened,
                    "due_at": deadline.due_at,
                    "warning_at": deadline.warning_at,
                    "completed_at": completed,
                    "provisional": deadline.provisional,
                    "overdue": (completed is None and deadline.due_at < now)
                    or bool(completed and completed > deadline.due_at),
                    "escalations": 0,
                    "roles": ",".join(step.actors),
                    "working_hours_used": used,
                    "paused_working_hours": 0.0,
                    "on_time": None if completed is None else completed <= deadline.due_at,
                    "hours_bucket": None if used is None else round(used * 10),
                    "completed_on": None if completed is None else completed.astimezone(SHANGHAI).date().isoformat(),
                }
            )
            if open_now:
                break
            opened = completed or opened
    return cases, tasks


def seed(engine: Engine, count: int, now: datetime | None = None, progress: bool = False) -> tuple[int, int]:
    init_db(engine)
    cases, tasks = synthetic_rows(count, now or datetime.now(UTC))
    with engine.begin() as connection:
        for table, rows in ((CaseRecord, cases), (TaskRecord, tasks)):
            for start in range(0, len(rows), BATCH):
                connection.execute(insert(table), rows[start : start + BATCH])
                if progress:
                    done = min(start + BATCH, len(rows))
                    print(f"\r{table.__tablename__}: {done}/{len(rows)}", end="", file=sys.stderr, flush=True)
            if progress:
                print(file=sys.stderr)
        # The timeliness rollup, as the projection would have kept it for these steps.
        recompute_timeliness_rollup(connection)
    return len(cases), len(tasks)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--cases", type=int, default=100_000)
    parser.add_argument("--database-url", default="sqlite:///var/bench-read-model.db")
    args = parser.parse_args()
    started = time.perf_counter()
    cases, tasks = seed(make_engine(args.database_url), args.cases, progress=True)
    print(f"{cases} cases and {tasks} tasks written in {time.perf_counter() - started:.1f} s")
    return 0


if __name__ == "__main__":
    sys.exit(main())

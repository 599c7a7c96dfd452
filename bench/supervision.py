"""Supervision and inbox queries at scale: latency of the read endpoints on 100,000
synthetic cases (bench/seed_read_model.py), on SQLite and on PostgreSQL, with the
query plans that show which indexes answer them.

    python -m bench.supervision [--cases 100000] [--postgres-url postgresql://…]

Timeliness is read from the rollup the seeder fills as the projection would have kept it.

The API runs in-process (httpx over ASGI, so no network in the numbers); each
request is timed from the client's side, after a warm-up. Writes
bench/results/<date>-supervision.json.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
import tempfile
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any, cast

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import httpx
from sqlalchemy import Engine, text
from temporalio.client import Client

from api.accounts import ensure_demo_accounts
from api.main import create_app
from bench.figures import percentile
from bench.harness import RESULTS_DIR, machine
from bench.seed_read_model import seed
from domain.catalogue import shipped_definitions
from infra.db import make_engine
from settings import Settings

NOW = datetime.now(UTC)
MONTH_AGO = (NOW - timedelta(days=30)).date().isoformat()
# A 30-day window whose ends fall mid-month: read from the days at its edges, not whole months.
WINDOW = f"from={(NOW - timedelta(days=45)).date().isoformat()}&to={(NOW - timedelta(days=15)).date().isoformat()}"
LAST_MONTH_END = NOW.date().replace(day=1) - timedelta(days=1)
LAST_MONTH = f"from={LAST_MONTH_END.replace(day=1).isoformat()}&to={LAST_MONTH_END.isoformat()}"

# (name, account, path): what a supervisor's dashboard and an officer's inbox ask.
QUERIES = [
    ("timeliness by department, last 30 days", "supervisor", f"/supervision/timeliness?from={MONTH_AGO}"),
    ("timeliness by step, last 30 days", "supervisor", f"/supervision/timeliness?group_by=step&from={MONTH_AGO}"),
    ("timeliness by day, last 30 days", "supervisor", f"/supervision/timeliness?group_by=day&from={MONTH_AGO}"),
    ("timeliness by department, all 180 days", "supervisor", "/supervision/timeliness"),
    ("overdue list", "supervisor", "/supervision/overdue"),
    ("officer inbox GET /tasks", "police_officer", "/tasks"),
    ("case list GET /cases", "supervisor", "/cases"),
    ("timeliness by step, last calendar month", "supervisor", f"/supervision/timeliness?group_by=step&{LAST_MONTH}"),
    ("timeliness by step, 30 days to 15 days ago", "supervisor", f"/supervision/timeliness?group_by=step&{WINDOW}"),
]

PLANS = {
    # Timeliness reads the rollup (infra/timeliness_rollup.py): whole-hour cells of a month per
    # department, then the tenths of one hour of one department, by primary key; the province
    # supervisor's cells (division 330000: every step).
    "timeliness": "SELECT department, hours_bucket, sum(count), sum(on_time_count) FROM timeliness_rollup "
    "WHERE span = 'month' AND scope = 'department' AND bucket_width = 10 AND division_code = '330000' "
    f"AND period >= '{MONTH_AGO[:7]}' GROUP BY department, hours_bucket",
    "timeliness tenths": "SELECT hours_bucket, count FROM timeliness_rollup WHERE span = 'month' "
    "AND scope = 'department' AND bucket_width = 1 AND division_code = '330000' "
    f"AND period = '{MONTH_AGO[:7]}' AND thing = '' AND step = '' "
    "AND department = 'police' AND hours_bucket >= 100 AND hours_bucket < 110",
    "overdue": "SELECT * FROM tasks WHERE status IN ('open', 'claimed', 'awaiting_supplement') "
    f"AND due_at < '{NOW.isoformat()}' ORDER BY due_at, task_id LIMIT 50",
    "inbox": "SELECT * FROM tasks WHERE status IN ('open', 'claimed', 'awaiting_supplement') "
    "AND department = 'police' ORDER BY due_at, task_id LIMIT 50",
    "cases": "SELECT * FROM cases ORDER BY submitted_at DESC LIMIT 50",
}


def query_plans(engine: Engine) -> dict[str, list[str]]:
    prefix = "EXPLAIN QUERY PLAN " if engine.dialect.name == "sqlite" else "EXPLAIN "
    plans = {}
    with engine.connect() as connection:
        for name, sql in PLANS.items():
            plans[name] = [str(row[-1]) for row in connection.execute(text(prefix + sql))]
    return plans


async def time_queries(engine: Engine, settings: Settings, repeat: int) -> list[dict[str, Any]]:
    ensure_demo_accounts(engine, list(shipped_definitions().values()), secret=settings.secret_key)
    # Supervision reads only the read model; no Temporal server is needed.
    app = create_app(settings, temporal_client=cast(Client, object()), engine=engine)
    results = []
    async with app.router.lifespan_context(app):
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://bench", timeout=120) as http:
            tokens: dict[str, dict[str, str]] = {}
            for _, account, _ in QUERIES:
                if account not in tokens:
                    response = await http.post("/auth/token", data={"username": account, "password": "demo"})
                    response.raise_for_status()
                    tokens[account] = {"Authorization": f"Bearer {response.json()['access_token']}"}
            for name, account, path in QUERIES:
                for _ in range(3):  # warm-up: caches, statement preparation
                    (await http.get(path, headers=tokens[account])).raise_for_status()
                samples = []
                for _ in range(repeat):
                    begun = time.perf_counter()
                    response = await http.get(path, headers=tokens[account])
                    samples.append(time.perf_counter() - begun)
                    response.raise_for_status()
                results.append(
                    {
                        "name": name,
                        "path": path,
                        "p50_ms": round(percentile(samples, 50) * 1000, 1),
                        "p95_ms": round(percentile(samples, 95) * 1000, 1),
                        "requests": repeat,
                    }
                )
    return results


def run_on(url: str, cases: int, repeat: int, workdir: Path) -> dict[str, Any]:
    engine = make_engine(url)
    try:
        begun = time.perf_counter()
        case_rows, task_rows = seed(engine, cases, now=NOW)
        seeded_s = time.perf_counter() - begun
        settings = Settings(
            env="test",
            database_url=url,
            secret_key="bench-secret-key-that-is-long-enough-0123456789",
            archive_dir=workdir / "archive",
        )
        queries = asyncio.run(time_queries(engine, settings, repeat))
        return {
            "database": engine.dialect.name,
            "cases": case_rows,
            "tasks": task_rows,
            "seed_s": round(seeded_s, 1),
            "queries": queries,
            "plans": query_plans(engine),
        }
    finally:
        engine.dispose()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--cases", type=int, default=100_000)
    parser.add_argument("--repeat", type=int, default=40)
    parser.add_argument("--postgres-url", help="an empty PostgreSQL database to seed (optional)")
    parser.add_argument("--output", type=Path)
    arguments = parser.parse_args(argv)
    runs = []
    with tempfile.TemporaryDirectory(prefix="onething-supervision-") as directory:
        workdir = Path(directory)
        runs.append(run_on(f"sqlite:///{workdir / 'bench.db'}", arguments.cases, arguments.repeat, workdir))
        if arguments.postgres_url:
            runs.append(run_on(arguments.postgres_url, arguments.cases, arguments.repeat, workdir))
    report = {"date": NOW.isoformat(timespec="seconds"), "machine": machine(), "target_p95_ms": 100, "runs": runs}
    output = arguments.output or RESULTS_DIR / f"{NOW:%Y-%m-%d}-supervision.json"
    output.parent.mkdir(parents=True, exist_ok=True)
    output.write_text(json.dumps(report, ensure_ascii=False, indent=2) + "\n", encoding="utf-8")
    print("| query | " + " | ".join(f"{run['database']} p50 / p95 ms" for run in runs) + " |")
    print("|---|" + "---|" * len(runs))
    for index, (name, _, _) in enumerate(QUERIES):
        cells = [f"{run['queries'][index]['p50_ms']} / {run['queries'][index]['p95_ms']}" for run in runs]
        print(f"| {name} | " + " | ".join(cells) + " |")
    print(f"\nwritten: {output}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

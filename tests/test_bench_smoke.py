"""The benchmark harness keeps working: a ~20-second smoke run of `onething bench --smoke`
(bench/harness.py) against its own dev server, with both the raw ceiling and the full path
completing cases."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from settings import ROOT

pytestmark = pytest.mark.e2e


def test_bench_smoke_run_completes_cases_on_both_paths(tmp_path: Path) -> None:
    output = tmp_path / "smoke.json"
    finished = subprocess.run(
        [sys.executable, str(ROOT / "cli.py"), "bench", "--smoke", "--output", str(output)],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert finished.returncode == 0, finished.stdout[-3000:] + finished.stderr[-3000:]
    report = json.loads(output.read_text(encoding="utf-8"))
    assert {"machine", "scenarios", "ratio_full_vs_raw"} <= set(report)
    scenarios = {scenario["name"]: scenario for scenario in report["scenarios"]}
    for name in ("raw closed 5", "onething closed 5"):
        scenario = scenarios[name]
        assert scenario["cases_completed"] == 10, scenario
        assert scenario["errors"] == 0, scenario
        assert scenario["cases_per_s"] > 0 and scenario["e2e_p50_s"] > 0
        for key in ("submit_p50_ms", "submit_p99_ms", "complete_p99_ms", "timer_lateness_p99_s"):
            assert key in scenario
    assert report["ratio_full_vs_raw"] > 0
    assert report["memory"]["open_cases"] == 20 and report["memory"]["worker_rss_mb_after"] > 0
    assert output.with_suffix(".png").stat().st_size > 10_000
    assert "| raw closed 5 |" in finished.stdout


def test_supervision_benchmark_smoke_times_every_query_and_shows_index_plans(tmp_path: Path) -> None:
    output = tmp_path / "supervision.json"
    finished = subprocess.run(
        [sys.executable, "-m", "bench.supervision", "--cases", "300", "--repeat", "3", "--output", str(output)],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert finished.returncode == 0, finished.stdout[-3000:] + finished.stderr[-3000:]
    report = json.loads(output.read_text(encoding="utf-8"))
    (sqlite,) = report["runs"]
    assert sqlite["database"] == "sqlite" and sqlite["cases"] == 300
    assert all(query["p95_ms"] > 0 for query in sqlite["queries"])
    plans = " ".join(line for lines in sqlite["plans"].values() for line in lines)
    for index in ("ix_tasks_status_completed_on", "ix_tasks_status_due", "ix_tasks_department_status_due"):
        assert index in plans

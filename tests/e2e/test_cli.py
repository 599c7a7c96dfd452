"""The `onething` command end to end: `run` starts and stops the whole local stack,
`demo` sets a running system in motion. (`worker` and `api` are what every LiveStack
starts, so tests/e2e/test_dev_server.py runs a case through them.)"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest

import cli
from ops.processes import free_port
from settings import ROOT
from tests.e2e.conftest import login_headers

pytestmark = pytest.mark.e2e


def _port_open(port: int) -> bool:
    with socket.socket() as sock:
        sock.settimeout(0.5)
        return sock.connect_ex(("127.0.0.1", port)) == 0


def test_run_starts_server_worker_and_api_seeds_demo_cases_and_ctrl_c_stops_them_all(tmp_path: Path) -> None:
    temporal_port, ui_port, api_port = free_port(), free_port(), free_port()
    env = {
        **os.environ,
        "PYTHONUNBUFFERED": "1",
        "ONETHING_ENV": "dev",
        "ONETHING_TEMPORAL_ADDRESS": f"127.0.0.1:{temporal_port}",
        "ONETHING_API_PORT": str(api_port),
        "ONETHING_TASK_QUEUE": "cli-run-cases",
        "DATABASE_URL": f"sqlite:///{tmp_path / 'read-model.db'}",
        "ONETHING_ARCHIVE_DIR": str(tmp_path / "archive"),
    }
    command = [
        sys.executable,
        str(ROOT / "cli.py"),
        "run",
        "--var-dir",
        str(tmp_path / "var"),
        "--ui-port",
        str(ui_port),
    ]
    process = subprocess.Popen(command, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    try:
        printed = []
        deadline = time.monotonic() + 180
        assert process.stdout is not None
        while time.monotonic() < deadline:
            line = process.stdout.readline()
            if not line:
                break
            printed.append(line)
            if "Press Ctrl-C" in line:
                break
        output = "".join(printed)
        assert "Press Ctrl-C" in output, output[-3000:]
        assert f"http://127.0.0.1:{api_port}" in output and f"http://127.0.0.1:{ui_port}" in output

        with httpx.Client(base_url=f"http://127.0.0.1:{api_port}", timeout=30) as client:
            assert client.get("/health").json()["status"] == "ok"
            cases = client.get("/cases", headers=login_headers(client, "supervisor")).json()["items"]
            assert len(cases) >= 4  # the seeded demo cases
        assert (tmp_path / "var" / "temporal.db").exists()
        assert _port_open(temporal_port) and _port_open(ui_port)

        process.send_signal(signal.SIGINT)  # what Ctrl-C sends
        assert process.wait(timeout=60) == 0
        for port in (api_port, temporal_port, ui_port):
            assert not _port_open(port), f"port {port} still open after Ctrl-C"
    finally:
        if process.poll() is None:
            process.kill()
            process.wait(timeout=30)


def test_demo_submits_more_cases_and_walks_each_a_different_number_of_steps(
    live_stack: str, capsys: pytest.CaptureFixture[str]
) -> None:
    assert cli.main(["demo", "--base-url", live_stack, "--cases", "4"]) == 0

    case_ids = capsys.readouterr().out.split()
    assert len(case_ids) == 8  # the four seeded cases, then four more
    with httpx.Client(base_url=live_stack, timeout=30) as client:
        supervisor = login_headers(client, "supervisor")
        done_counts = []
        for case_id in case_ids[4:]:
            case = client.get(f"/cases/{case_id}", headers=supervisor).json()
            done_counts.append(sum(step["status"] == "done" for step in case["steps"]))
    assert done_counts == [0, 1, 2, 3]
    # Seeding again finds the same demo cases rather than filing new ones.
    assert cli.main(["demo", "--base-url", live_stack]) == 0
    assert capsys.readouterr().out.split() == case_ids[:4]


def test_worker_drains_and_exits_cleanly_on_sigterm(live_stack_factory) -> None:
    stack = live_stack_factory()
    stack.start_all()
    worker = stack.processes["worker"]
    time.sleep(2)  # polling by now

    worker.send_signal(signal.SIGTERM)  # what `docker stop` and a rolling deploy send

    assert worker.wait(timeout=60) == 0

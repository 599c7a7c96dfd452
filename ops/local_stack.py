"""`onething run`: the dev server (file database under ./var), the worker and the API,
demo cases seeded, the URLs printed; Ctrl-C or SIGTERM stops everything it started."""

from __future__ import annotations

import os
import signal
import sys
import time
from pathlib import Path
from typing import Any

from ops.demo import seed_demo
from ops.processes import Stack, dev_server_command, onething_command, wait_for_api, wait_for_port
from settings import get_settings


def _interrupt(signum: int, frame: Any) -> None:
    # SIGTERM stops the stack the same way Ctrl-C does.
    raise KeyboardInterrupt


def run_stack(ui_port: int, seed: bool, var: Path) -> int:
    settings = get_settings()
    var.mkdir(parents=True, exist_ok=True)
    env = {**os.environ, "ONETHING_ENV": os.environ.get("ONETHING_ENV", "dev"), "PYTHONUNBUFFERED": "1"}
    base_url = f"http://{settings.api_host}:{settings.api_port}"
    stack = Stack()
    signal.signal(signal.SIGTERM, _interrupt)
    try:
        server = stack.start(
            "temporal", dev_server_command(settings, var / "temporal.db", ui_port), env, var / "temporal.log"
        )
        wait_for_port(settings.temporal_address, 60, server)
        stack.start("worker", onething_command("worker"), env, var / "worker.log")
        api = stack.start("api", onething_command("api"), env, var / "api.log")
        wait_for_port(f"{settings.api_host}:{settings.api_port}", 60, api)
        wait_for_api(base_url, 60)
        seeded = seed_demo(base_url) if seed else []
        print(
            "\nOneThing 一件事 is running:\n"
            f"  Web console  {base_url}/  (网页控制台)\n"
            f"  API          {base_url}  (OpenAPI docs: {base_url}/docs)\n"
            f"  Temporal UI  http://127.0.0.1:{ui_port}\n"
            f"  Temporal     {settings.temporal_address}\n"
            f"  Logs         {var}/*.log\n"
            f"  Demo cases   {', '.join(seeded) or '(none)'}\n"
            "  Accounts     applicant1, hospital_officer, police_officer, … password: demo\n"
            "Press Ctrl-C to stop everything.",
            flush=True,
        )
        while all(process.poll() is None for _, process in stack.processes):
            time.sleep(0.5)
        failed = [name for name, process in stack.processes if process.poll() is not None]
        print(f"stopped: {', '.join(failed)} exited; see {var}/*.log", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print("\nstopping…", flush=True)
        return 0
    finally:
        stack.stop()

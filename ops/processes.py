"""Child processes: the Temporal dev server, a worker and an API, started and stopped together.

`onething run`, the benchmark (bench/harness.py) and the end-to-end tests start their
processes with these, each on its own ports and files.
"""

from __future__ import annotations

import logging
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Sequence
from pathlib import Path

import httpx

from models.case import CUSTOM_SEARCH_ATTRIBUTES
from settings import ROOT, Settings, installed_binary

logger = logging.getLogger("onething")


def dev_server_command(settings: Settings, db_file: Path, ui_port: int) -> list[str]:
    """The Temporal dev server with a file database, our namespace and search attributes."""
    host, _, port = settings.temporal_address.rpartition(":")
    command = [
        installed_binary("temporal"),
        "server",
        "start-dev",
        "--db-filename",
        str(db_file),
        "--ip",
        host or "127.0.0.1",
        "--port",
        port,
        "--ui-port",
        str(ui_port),
        "--namespace",
        settings.temporal_namespace,
        "--log-level",
        "warn",
        # Payloads are encrypted (infra/codec.py); the UI asks the API's codec server to show them.
        "--ui-codec-endpoint",
        f"http://{settings.api_host}:{settings.api_port}/codec",
    ]
    for name in CUSTOM_SEARCH_ATTRIBUTES:
        command += ["--search-attribute", f"{name}=Keyword"]
    return command


def onething_command(role: str) -> list[str]:
    """The command line of a child `onething worker` or `onething api` (from the source tree)."""
    return [sys.executable, str(ROOT / "cli.py"), role]


def free_port() -> int:
    """A port nothing listens on now (for stacks started side by side: tests, the benchmark)."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def wait_for_port(address: str, timeout: float, process: subprocess.Popen[bytes] | None = None) -> None:
    host, _, port = address.rpartition(":")
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process is not None and process.poll() is not None:
            raise RuntimeError(f"process exited with {process.returncode} before {address} opened")
        try:
            with socket.create_connection((host or "127.0.0.1", int(port)), timeout=1):
                return
        except OSError:
            time.sleep(0.2)
    raise RuntimeError(f"{address} did not open within {timeout:.0f} s")


def wait_for_api(base_url: str, timeout: float) -> None:
    deadline = time.monotonic() + timeout
    last = "no answer"
    while time.monotonic() < deadline:
        try:
            response = httpx.get(f"{base_url}/health", timeout=2)
            if response.status_code == 200:
                return
            last = f"{response.status_code} {response.text[:300]}"
        except httpx.HTTPError as error:
            last = f"{type(error).__name__}: {error}"
        time.sleep(0.3)
    # The last answer says which check held it back (the database, Temporal, or no answer at all).
    raise RuntimeError(f"API at {base_url} not healthy within {timeout:.0f} s; last answer: {last}")


class Stack:
    """Child processes, stopped together (the last started first)."""

    def __init__(self) -> None:
        self.processes: list[tuple[str, subprocess.Popen[bytes]]] = []

    def start(self, name: str, command: Sequence[str], env: dict[str, str], log: Path) -> subprocess.Popen[bytes]:
        handle = log.open("ab")
        # A session of its own: Ctrl-C reaches only `run`, which then stops
        # the children in order (API and worker before the server).
        process = subprocess.Popen(
            command, env=env, cwd=ROOT, stdout=handle, stderr=subprocess.STDOUT, start_new_session=True
        )
        self.processes.append((name, process))
        return process

    def stop(self) -> None:
        for _, process in reversed(self.processes):
            if process.poll() is None:
                process.send_signal(signal.SIGTERM)
        for name, process in reversed(self.processes):
            try:
                process.wait(timeout=15)
            except subprocess.TimeoutExpired:
                logger.warning("%s did not stop; killing it", name)
                process.kill()

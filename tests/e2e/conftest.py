"""Real processes for end-to-end and fault-injection tests: the Temporal dev server
(file DB), the worker and the API, each started as `onething run` starts them, and
each of which a test can kill and restart."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from collections.abc import Callable, Iterator
from pathlib import Path

import httpx
import pytest

from ops.processes import Stack, dev_server_command, free_port, wait_for_api, wait_for_port
from settings import ROOT, Settings


def login_headers(client: httpx.Client, username: str) -> dict[str, str]:
    """A demo account's Authorization header, from the real API."""
    response = client.post("/auth/token", data={"username": username, "password": "demo"})
    assert response.status_code == 200, response.text
    return {"Authorization": f"Bearer {response.json()['access_token']}"}


class LiveStack:
    """One dev server, worker and API on private ports and files under ``workdir``."""

    def __init__(self, workdir: Path, **environment: str) -> None:
        self.workdir = workdir
        self.temporal_port, self.ui_port, self.api_port = free_port(), free_port(), free_port()
        self.env = {
            **os.environ,
            "PYTHONUNBUFFERED": "1",
            "ONETHING_ENV": "dev",
            "ONETHING_TEMPORAL_ADDRESS": f"127.0.0.1:{self.temporal_port}",
            "ONETHING_API_PORT": str(self.api_port),
            "ONETHING_TASK_QUEUE": "e2e-cases",
            "DATABASE_URL": f"sqlite:///{workdir / 'read-model.db'}",
            "ONETHING_ARCHIVE_DIR": str(workdir / "archive"),
            **environment,
        }
        self.settings = Settings(
            env="dev", temporal_address=self.env["ONETHING_TEMPORAL_ADDRESS"], api_port=self.api_port
        )
        self.base_url = f"http://127.0.0.1:{self.api_port}"
        self._stack = Stack()
        self.processes: dict[str, subprocess.Popen[bytes]] = {}

    # -- processes ---------------------------------------------------------------

    def start_server(self) -> None:
        command = dev_server_command(self.settings, self.workdir / "temporal.db", self.ui_port)
        server = self._start("temporal", command)
        wait_for_port(self.settings.temporal_address, 60, server)

    def start_worker(self, **environment: str) -> None:
        self._start("worker", [sys.executable, str(ROOT / "cli.py"), "worker"], environment)

    def start_api(self, **environment: str) -> None:
        api = self._start("api", [sys.executable, str(ROOT / "cli.py"), "api"], environment)
        wait_for_port(f"127.0.0.1:{self.api_port}", 60, api)
        wait_for_api(self.base_url, 60)

    def start_all(self) -> LiveStack:
        self.start_server()
        self.start_worker()
        self.start_api()
        return self

    def kill(self, name: str) -> None:
        """SIGKILL: the process gets no chance to finish what it was doing."""
        process = self.processes.pop(name)
        process.send_signal(signal.SIGKILL)
        process.wait(timeout=30)

    def stop(self, name: str) -> None:
        """SIGTERM, then wait: an orderly shutdown."""
        process = self.processes.pop(name)
        process.send_signal(signal.SIGTERM)
        try:
            process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(timeout=30)

    def stop_all(self) -> None:
        self._stack.stop()
        self.processes.clear()

    def _start(
        self, name: str, command: list[str], environment: dict[str, str] | None = None
    ) -> subprocess.Popen[bytes]:
        assert name not in self.processes or self.processes[name].poll() is not None, f"{name} is already running"
        process = self._stack.start(name, command, {**self.env, **(environment or {})}, self.workdir / f"{name}.log")
        self.processes[name] = process
        return process

    # -- HTTP --------------------------------------------------------------------

    def client(self, timeout: float = 60) -> httpx.Client:
        return httpx.Client(base_url=self.base_url, timeout=timeout)

    def login(self, client: httpx.Client, username: str) -> dict[str, str]:
        return login_headers(client, username)

    def dump_logs(self) -> None:
        for log in sorted(self.workdir.glob("*.log")):
            tail = log.read_text(errors="replace")[-3000:]
            sys.stderr.write(f"\n--- {log.name} ---\n{tail}\n")


StackFactory = Callable[..., LiveStack]


@pytest.fixture
def live_stack_factory(tmp_path_factory: pytest.TempPathFactory) -> Iterator[StackFactory]:
    """Makes stacks (not started) that are stopped, and their logs shown, after the test."""
    stacks: list[LiveStack] = []

    def make(**environment: str) -> LiveStack:
        stack = LiveStack(tmp_path_factory.mktemp("stack"), **environment)
        stacks.append(stack)
        return stack

    yield make
    for stack in stacks:
        stack.stop_all()
        stack.dump_logs()


@pytest.fixture(scope="module")
def live_stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """A running stack shared by a module's tests; yields the API's base URL."""
    stack = LiveStack(tmp_path_factory.mktemp("e2e"))
    try:
        stack.start_all()
        yield stack.base_url
    finally:
        stack.stop_all()
        stack.dump_logs()

"""End to end through HTTP against real processes: the Temporal dev server (file DB),
the worker and the API, each started as `onething` would start them."""

from __future__ import annotations

import os
import socket
import sys
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from cli import Stack, dev_server_command, play_officers, wait_for_api, wait_for_port
from models.samples import sample_birth_form
from settings import ROOT, Settings

pytestmark = pytest.mark.e2e

BIRTH_STEPS = {
    "birth_certificate",
    "vaccination_certificate",
    "hukou_registration",
    "medical_insurance_enrollment",
    "maternity_benefit_review",
    "social_security_card",
}


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


@pytest.fixture(scope="module")
def live_stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    workdir = tmp_path_factory.mktemp("e2e")
    temporal_port, ui_port, api_port = _free_port(), _free_port(), _free_port()
    env = {
        **os.environ,
        "ONETHING_ENV": "dev",
        "ONETHING_TEMPORAL_ADDRESS": f"127.0.0.1:{temporal_port}",
        "ONETHING_API_PORT": str(api_port),
        "ONETHING_TASK_QUEUE": "e2e-cases",
        "DATABASE_URL": f"sqlite:///{workdir / 'read-model.db'}",
        "ONETHING_ARCHIVE_DIR": str(workdir / "archive"),
    }
    settings = Settings(env="dev", temporal_address=env["ONETHING_TEMPORAL_ADDRESS"], api_port=api_port)
    stack = Stack()
    try:
        server = stack.start(
            "temporal", dev_server_command(settings, workdir / "temporal.db", ui_port), env, workdir / "temporal.log"
        )
        wait_for_port(settings.temporal_address, 60, server)
        stack.start("worker", [sys.executable, str(ROOT / "cli.py"), "worker"], env, workdir / "worker.log")
        api = stack.start("api", [sys.executable, str(ROOT / "cli.py"), "api"], env, workdir / "api.log")
        base_url = f"http://127.0.0.1:{api_port}"
        wait_for_port(f"127.0.0.1:{api_port}", 60, api)
        wait_for_api(base_url, 60)
        yield base_url
    finally:
        stack.stop()
        for log in sorted(Path(workdir).glob("*.log")):
            tail = log.read_text(errors="replace")[-3000:]
            sys.stderr.write(f"\n--- {log.name} ---\n{tail}\n")


def _login(client: httpx.Client, username: str) -> dict[str, str]:
    response = client.post("/auth/token", data={"username": username, "password": "demo"})
    assert response.status_code == 200, response.text
    return {"Authorization": f"Bearer {response.json()['access_token']}"}


def test_birth_case_runs_end_to_end_over_http(live_stack: str) -> None:
    with httpx.Client(base_url=live_stack, timeout=60) as client:
        form = sample_birth_form(delivery="mail")
        submitted = client.post(
            "/cases",
            json={"thing": "birth", "channel": "online", "form": form},
            headers={**_login(client, "applicant1"), "Idempotency-Key": "e2e-1"},
        )
        assert submitted.status_code == 201, submitted.text
        case_id = submitted.json()["case_id"]
        notice = submitted.json()["acceptance_notice"]
        assert {m["code"] for m in notice["materials_shared"]} >= {"mother_id_card", "marriage_certificate"}

        # Each department sees its task in its inbox before acting on it.
        inbox = client.get("/tasks", headers=_login(client, "hospital_officer")).json()["items"]
        assert {task["task_id"] for task in inbox} >= {
            f"{case_id}:birth_certificate",
            f"{case_id}:vaccination_certificate",
        }

        completed_steps = play_officers(client, case_id, form)
        assert completed_steps == len(BIRTH_STEPS)

        case = client.get(f"/cases/{case_id}", headers=_login(client, "applicant1")).json()
        assert case["status"] == "completed"
        assert {step["step"] for step in case["steps"] if step["status"] == "done"} == BIRTH_STEPS

        timeline = client.get(f"/cases/{case_id}/timeline", headers=_login(client, "supervisor"))
        assert timeline.status_code == 200, timeline.text
        steps = {step["step"]: step for step in timeline.json()["steps"]}
        assert set(steps) == BIRTH_STEPS
        for step in steps.values():
            assert step["opened_at"] and step["due_at"] and step["completed_at"]
            assert step["on_time"] is True
        event_types = [event["type"] for event in timeline.json()["events"]]
        assert event_types[0] == "accepted" and event_types[-1] == "case_completed"
        assert event_types.count("completed") == len(BIRTH_STEPS)

        # The same Idempotency-Key returns the one case that exists.
        again = client.post(
            "/cases",
            json={"thing": "birth", "channel": "online", "form": form},
            headers={**_login(client, "applicant1"), "Idempotency-Key": "e2e-1"},
        )
        assert again.status_code == 200 and again.json()["case_id"] == case_id

"""End to end through HTTP against real processes: the Temporal dev server (file DB),
the worker and the API, each started as `onething` would start them."""

from __future__ import annotations

import httpx
import pytest

from domain.samples import sample_birth_form
from ops.demo import play_officers
from tests.e2e.conftest import login_headers

pytestmark = pytest.mark.e2e

BIRTH_STEPS = {
    "birth_certificate",
    "vaccination_certificate",
    "hukou_registration",
    "medical_insurance_enrollment",
    "maternity_benefit_review",
    "social_security_card",
}


def test_birth_case_runs_end_to_end_over_http(live_stack: str) -> None:
    with httpx.Client(base_url=live_stack, timeout=60) as client:
        form = sample_birth_form(delivery="mail")
        submitted = client.post(
            "/cases",
            json={"thing": "birth", "channel": "online", "form": form},
            headers={**login_headers(client, "applicant1"), "Idempotency-Key": "e2e-1"},
        )
        assert submitted.status_code == 201, submitted.text
        case_id = submitted.json()["case_id"]
        notice = submitted.json()["acceptance_notice"]
        assert {m["code"] for m in notice["materials_shared"]} >= {"mother_id_card", "marriage_certificate"}

        # Each department sees its task in its inbox before acting on it.
        inbox = client.get("/tasks", headers=login_headers(client, "hospital_officer")).json()["items"]
        assert {task["task_id"] for task in inbox} >= {
            f"{case_id}:birth_certificate",
            f"{case_id}:vaccination_certificate",
        }

        completed_steps = play_officers(client, case_id, form)
        assert completed_steps == len(BIRTH_STEPS)

        case = client.get(f"/cases/{case_id}", headers=login_headers(client, "applicant1")).json()
        assert case["status"] == "completed"
        assert {step["step"] for step in case["steps"] if step["status"] == "done"} == BIRTH_STEPS

        timeline = client.get(f"/cases/{case_id}/timeline", headers=login_headers(client, "supervisor"))
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
            headers={**login_headers(client, "applicant1"), "Idempotency-Key": "e2e-1"},
        )
        assert again.status_code == 200 and again.json()["case_id"] == case_id

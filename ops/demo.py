"""Demo traffic: the demo accounts' logins, sample submissions and simulated officers.

`onething run` seeds the demo cases with ``seed_demo``; `onething demo --cases N` submits
more and plays the officers on them (``run_demo``); the end-to-end tests walk cases with
``play_officers``.
"""

from __future__ import annotations

import os
import sys
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx

from domain.catalogue import shipped_definitions
from domain.samples import sample_form, sample_result
from domain.workcalendar import SHANGHAI
from ops.progress import ProgressBar
from settings import get_settings

DEMO_WALK_IN_BIRTH = datetime(2026, 11, 19, 14, 5, tzinfo=SHANGHAI)

_TOKENS: dict[tuple[str, str], dict[str, str]] = {}


def login(client: httpx.Client, username: str) -> dict[str, str]:
    """A demo account's auth header, logged in once per API (as a person stays logged in;
    logging in per request would also trip the login rate limit)."""
    key = (str(client.base_url), username)
    if key not in _TOKENS:
        response = client.post("/auth/token", data={"username": username, "password": "demo"})
        response.raise_for_status()
        _TOKENS[key] = {"Authorization": f"Bearer {response.json()['access_token']}"}
    return _TOKENS[key]


def play_officers(client: httpx.Client, case_id: str, form: dict[str, Any], stop_after: int | None = None) -> int:
    """Claim and complete open tasks of a case, as each department's officer would."""
    done = 0
    while stop_after is None or done < stop_after:
        case = client.get(f"/cases/{case_id}", headers=login(client, "supervisor")).json()
        definition = shipped_definitions()[case["thing"]]
        open_steps = [step for step in case["steps"] if step["status"] in {"open", "claimed"}]
        if not open_steps:
            return done
        step = open_steps[0]
        headers = login(client, f"{step['department']}_officer")
        task_id = f"{case_id}:{step['step']}"
        client.post(f"/tasks/{task_id}/claim", headers=headers).raise_for_status()
        result = sample_result(definition.step(step["step"]), form)
        client.post(f"/tasks/{task_id}/complete", headers=headers, json={"result": result}).raise_for_status()
        done += 1
    return done


def submit_sample(
    client: httpx.Client, thing: str, channel: str, form: dict[str, Any], headers: dict[str, str], key: str
) -> tuple[str, bool]:
    """Submit a sample case; (its id, whether this call created it rather than finding it by key)."""
    response = client.post(
        "/cases",
        json={"thing": thing, "channel": channel, "form": form},
        headers={**headers, "Idempotency-Key": key},
    )
    response.raise_for_status()
    return response.json()["case_id"], response.status_code == 201


def seed_demo(base_url: str) -> list[str]:
    """Submit sample birth cases (idempotent: the same keys find the same cases)."""
    with httpx.Client(base_url=base_url, timeout=60) as client:
        applicant = login(client, "applicant1")
        clerk = login(client, "hospital_clerk")
        window = login(client, "service_center_clerk")
        cases = []
        demo: list[tuple[str, str, str, dict[str, str], int, dict[str, Any]]] = [
            ("demo-online-1", "birth", "online", applicant, 0, {}),
            # Another newborn: one case per subject (domain/subjects.py).
            ("demo-hospital-1", "birth", "hospital", clerk, 2, {"born_at": DEMO_WALK_IN_BIRTH}),
            ("demo-company-1", "company_opening", "service_center", window, 1, {}),
            ("demo-retirement-1", "retirement", "online", applicant, 0, {}),
        ]
        for key, thing, channel, headers, steps_done, options in demo:
            form = sample_form(thing, None, delivery="mail" if channel == "online" else "pickup", **options)
            case_id, created = submit_sample(client, thing, channel, form, headers, key)
            if created and steps_done:
                play_officers(client, case_id, form, stop_after=steps_done)
            cases.append(case_id)
        return cases


def run_demo(base_url: str | None, cases: int) -> int:
    """Seed the demo cases, then submit ``cases`` more and play the officers on them,
    each case taken a different number of steps, so every status shows up."""
    if base_url is None:
        settings = get_settings()
        base_url = f"http://{settings.api_host}:{settings.api_port}"
    try:
        seeded = seed_demo(base_url)
    except httpx.HTTPError as error:
        print(f"无法连接 API (cannot reach {base_url}): {error}", file=sys.stderr)
        return 1
    for case_id in seeded:
        print(case_id)
    if cases <= 0:
        return 0
    progress = ProgressBar("演示案件 demo cases")
    steps = len(shipped_definitions()["birth"].steps_for("online"))
    try:
        with httpx.Client(base_url=base_url, timeout=60) as client:
            applicant = login(client, "applicant1")
            for index in range(cases):
                # Each its own newborn (born a moment apart), so no two are the same subject.
                form = sample_form(
                    "birth", delivery="mail", born_at=datetime.now(UTC) - timedelta(days=1, seconds=index)
                )
                key = f"demo-more-{os.getpid()}-{index}"
                case_id, _ = submit_sample(client, "birth", "online", form, applicant, key)
                play_officers(client, case_id, form, stop_after=index % (steps + 1))
                print(case_id)
                progress(index + 1, cases)
    finally:
        progress.close()
    return 0

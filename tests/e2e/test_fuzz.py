"""The API fuzzed from its own OpenAPI document (schemathesis), against real processes.

Every operation gets generated requests, valid and invalid, sent anonymously and as an
applicant, a hospital officer, a supervisor and an admin (public operations only
anonymously). Path ids are sometimes swapped for real ones (seeded cases, their tasks,
a complaint, a 督办 notice, shipped things) so requests reach past the 404. Each
response must be no 5xx, have a status, media type and body the document declares,
and refuse invalid input with a 4xx.

Bounded for `make test`: a few examples per operation, derandomised (the same requests
every run), no shrinking, no example database on disk.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import pytest
import requests
import schemathesis
from hypothesis import strategies as st
from schemathesis import checks

from domain.catalogue import shipped_definitions
from domain.samples import another_newborn, sample_birth_form, sample_result
from tests.e2e.conftest import login_headers

pytestmark = pytest.mark.e2e

# Callers besides the anonymous one; officers of the other departments only help seed.
FUZZ_AS = ("applicant1", "hospital_officer", "supervisor", "admin")
SEED_LOGINS = (*FUZZ_AS, "police_officer", "medical_security_officer", "hr_social_security_officer")
CHECKS = [
    checks.not_a_server_error,
    checks.status_code_conformance,
    checks.content_type_conformance,
    checks.response_schema_conformance,
    checks.negative_data_rejection,
]
FUZZ_CONFIG: dict[str, Any] = {
    "generation": {
        "mode": "all",  # valid and invalid requests
        "max-examples": 10,
        "deterministic": True,
        "no-shrink": True,
        "database": "none",
    },
    # Examples, coverage (boundary values: it found year-1 dates) and fuzzing; no multi-step scenarios.
    "phases": {"stateful": {"enabled": False}},
    "suppress-health-check": ["all"],
    "request-timeout": 60,
}


@dataclass
class FuzzTarget:
    base_url: str
    callers: dict[str, dict[str, str]]  # caller → headers ({} is anonymous)
    known_ids: dict[str, list[Any]]  # path parameter → real values
    session: requests.Session = field(default_factory=requests.Session)


def _claim(client: httpx.Client, task: str, officer: dict[str, str]) -> None:
    # A step opens once the previous one's completion and its deadline activity have run: 409 until then.
    for _ in range(50):
        response = client.post(f"{task}/claim", headers=officer)
        if response.status_code != 409:
            break
        time.sleep(0.2)
    assert response.status_code == 200, response.text


def _finish_case(client: httpx.Client, headers: dict[str, dict[str, str]], case: dict[str, Any], form: dict) -> None:
    definition = shipped_definitions()["birth"]
    for step in case["steps"]:
        officer = headers[f"{step['department']}_officer"]
        task = f"/tasks/{case['case_id']}:{step['step']}"
        _claim(client, task, officer)
        result = sample_result(definition.step(step["step"]), form)
        completed = client.post(f"{task}/complete", headers=officer, json={"result": result})
        assert completed.status_code == 200, completed.text


def _seed(base_url: str) -> FuzzTarget:
    """Two birth cases (one open, one completed), a complaint and a 督办 notice to aim at."""
    with httpx.Client(base_url=base_url, timeout=60) as client:
        headers = {user: login_headers(client, user) for user in SEED_LOGINS}
        applicant = headers["applicant1"]
        form = sample_birth_form(delivery="mail", born_at=datetime.now(UTC) - timedelta(days=2))
        cases = {}
        for number, key in enumerate(("fuzz-seed-open", "fuzz-seed-completed")):
            response = client.post(
                "/cases",
                # Two newborns: one case per subject.
                json={"thing": "birth", "channel": "online", "form": another_newborn(form, number)},
                headers={**applicant, "Idempotency-Key": key},
            )
            assert response.status_code == 201, response.text
            cases[key] = response.json()
        _finish_case(client, headers, cases["fuzz-seed-completed"], another_newborn(form, 1))
        open_case = cases["fuzz-seed-open"]["case_id"]
        complaint = client.post(
            "/complaints",
            json={"case_id": open_case, "content": "出生证明迟迟未办，请督促。"},
            headers={**applicant, "Idempotency-Key": "fuzz-seed-complaint"},
        )
        assert complaint.status_code == 201, complaint.text
        notice = client.post(
            "/supervision/notices",
            json={"case_id": open_case, "step": "birth_certificate", "message": "请加快办理"},
            headers={**headers["supervisor"], "Idempotency-Key": "fuzz-seed-notice"},
        )
        assert notice.status_code == 201, notice.text
        notice_ids: list[str] = []
        for _ in range(50):  # the notice reaches the read model through a worker activity
            items = client.get("/supervision/notices", headers=headers["supervisor"]).json()["items"]
            notice_ids = [item["notice_id"] for item in items]
            if notice_ids:
                break
            time.sleep(0.2)
        assert notice_ids, "the 督办 notice never reached the read model"
    case_ids = [case["case_id"] for case in cases.values()]
    return FuzzTarget(
        base_url=base_url,
        callers={"anonymous": {}, **{user: headers[user] for user in FUZZ_AS}},
        known_ids={
            "case_id": case_ids,
            "task_id": [f"{case['case_id']}:{step['step']}" for case in cases.values() for step in case["steps"]],
            "complaint_id": [complaint.json()["complaint_id"]],
            "notice_id": notice_ids[:1],
            "sub_item": sorted(shipped_definitions()),
            "version": [1],
        },
    )


@pytest.fixture(scope="module")
def fuzz_target(live_stack: str) -> Iterator[FuzzTarget]:
    target = _seed(live_stack)
    yield target
    target.session.close()


@pytest.fixture(scope="module")
def api_schema(fuzz_target: FuzzTarget) -> schemathesis.BaseSchema:
    schema = schemathesis.openapi.from_url(
        f"{fuzz_target.base_url}/openapi.json", config=schemathesis.Config.from_dict(FUZZ_CONFIG)
    )

    @schema.hook
    def flatmap_path_parameters(context: schemathesis.HookContext, path_parameters: dict[str, Any]) -> Any:
        # The generated ids, or one of them replaced by a real id of the same kind.
        if not path_parameters:
            return st.just(path_parameters)
        choices = [path_parameters] + [
            {**path_parameters, name: value}
            for name in path_parameters
            for value in fuzz_target.known_ids.get(name, [])
        ]
        return st.sampled_from(choices)

    return schema


schema = schemathesis.pytest.from_fixture("api_schema")


@schema.parametrize()
def test_every_operation_answers_every_caller_as_its_openapi_document_says(
    case: schemathesis.Case, fuzz_target: FuzzTarget
) -> None:
    public = not case.operation.definition.raw.get("security")
    for caller, headers in fuzz_target.callers.items():
        if public and caller != "anonymous":
            continue
        case.call_and_validate(
            base_url=fuzz_target.base_url, session=fuzz_target.session, headers=headers, checks=CHECKS
        )

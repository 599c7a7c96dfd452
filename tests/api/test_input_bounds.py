"""Every input of the API is bounded: each string parameter and request-body field has a maximum
length (or a bounded pattern, an enum, a date format or a constant), each list a maximum number
of items and each object of free keys a maximum number of keys, in the OpenAPI document and
when a request comes in. An oversized input is a 422 naming it, in the one error shape."""

from __future__ import annotations

import ast
import base64
import json
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from fastapi import FastAPI
from pydantic import ValidationError
from sqlalchemy import func, select
from sqlmodel import Session

from api.main import create_app
from api.routes.codec import CodecPayload
from api.schemas import FORM_FIELD_MAX_CHARS, FORM_FIELDS_MAX, CompleteTaskRequest, SubmitCaseRequest
from domain.catalogue import shipped_definitions
from domain.forms import FORMS
from domain.samples import sample_answers, sample_form, sample_result
from models.catalogue import CODE_MAX_LENGTH, QUESTIONS_MAX, RESULT_FIELDS_MAX, RESULT_VALUE_MAX_LENGTH
from models.tables import LoginAttempt
from settings import Settings
from tests.api.helpers import assert_error, birth_form
from tests.conftest import test_settings as settings_for

TESTS = Path(__file__).parent

# Inputs bounded elsewhere than in the document: where, and the test that proves it.
ALLOWED_UNBOUNDED: dict[str, tuple[str, str]] = {
    "POST /cases/{case_id}/materials/{material} body.file": (
        "a file upload: at most settings.max_upload_bytes, refused 413 by the route and BodySizeLimit",
        "test_case_files.py::test_a_file_over_the_limit_is_413_and_nothing_is_stored",
    ),
}

# A string is bounded by a pattern only when the pattern is anchored and repeats nothing without end.
_UNBOUNDED_REPEAT = re.compile(r"(?<!\\)[*+]|\{\d*,\}")
DATE_FORMATS = {"date", "date-time"}


def _bounded_pattern(pattern: str) -> bool:
    return pattern.startswith("^") and pattern.endswith("$") and not _UNBOUNDED_REPEAT.search(pattern)


def _string_bounded(schema: dict[str, Any]) -> bool:
    return (
        "maxLength" in schema
        or "enum" in schema
        or "const" in schema
        or schema.get("format") in DATE_FORMATS
        or _bounded_pattern(schema.get("pattern", ""))
    )


def unbounded_inputs(document: dict[str, Any]) -> Iterator[str]:
    """Where an input of the document has no bound: ``<METHOD> <path> <place>.<field>…``."""
    schemas = document.get("components", {}).get("schemas", {})

    def walk(schema: dict[str, Any], where: str, seen: frozenset[str]) -> Iterator[str]:
        if "$ref" in schema:
            name = schema["$ref"].rsplit("/", 1)[-1]
            if name not in seen:  # a recursive model is walked once
                yield from walk(schemas[name], where, seen | {name})
            return
        for key in ("anyOf", "oneOf", "allOf"):
            for alternative in schema.get(key, []):
                yield from walk(alternative, where, seen)
        kind = schema.get("type")
        if kind == "string" and not _string_bounded(schema):
            yield where
        if kind == "array":
            if "maxItems" not in schema:
                yield f"{where} (items)"
            yield from walk(schema.get("items", {}), f"{where}[]", seen)
        free = schema.get("additionalProperties", False) is not False or "patternProperties" in schema
        if free:
            if "maxProperties" not in schema:
                yield f"{where} (keys)"
            if not _string_bounded({"type": "string", **schema.get("propertyNames", {})}):
                yield f"{where} (key)"
        if isinstance(schema.get("additionalProperties"), dict):
            yield from walk(schema["additionalProperties"], f"{where}{{*}}", seen)
        for name, sub in schema.get("properties", {}).items():
            yield from walk(sub, f"{where}.{name}", seen)

    for path, operations in document["paths"].items():
        for method, operation in operations.items():
            route = f"{method.upper()} {path}"
            for parameter in operation.get("parameters", []):
                yield from walk(parameter["schema"], f"{route} {parameter['in']}.{parameter['name']}", frozenset())
            for content in operation.get("requestBody", {}).get("content", {}).values():
                yield from walk(content["schema"], f"{route} body", frozenset())


def _document(tmp_path: Path, env: str) -> dict[str, Any]:
    return create_app(settings_for(tmp_path, env=env)).openapi()


@pytest.mark.parametrize("env", ["test", "dev"])  # dev adds the SMS sink
def test_every_string_list_and_object_the_api_takes_is_bounded(tmp_path, env):
    found = set(unbounded_inputs(_document(tmp_path, env)))

    assert found - set(ALLOWED_UNBOUNDED) == set()
    assert set(ALLOWED_UNBOUNDED) <= found, "an allowed input is bounded now: take it off the list"


def test_each_input_bounded_elsewhere_names_a_test_that_proves_its_bound():
    for where, (reason, proof) in ALLOWED_UNBOUNDED.items():
        file_name, test_name = proof.split("::")
        tree = ast.parse((TESTS / file_name).read_text())
        tests = {node.name for node in ast.walk(tree) if isinstance(node, ast.AsyncFunctionDef | ast.FunctionDef)}
        assert reason and test_name in tests, where


def test_the_walk_finds_each_kind_of_unbounded_input():
    app = FastAPI()

    @app.post("/things/{code}")
    def _post(code: str, body: dict[str, list[str]], tag: str | None = None) -> None:
        """Unbounded everywhere."""

    found = set(unbounded_inputs(app.openapi()))

    assert found == {
        "POST /things/{code} path.code",
        "POST /things/{code} query.tag",
        "POST /things/{code} body (keys)",
        "POST /things/{code} body (key)",
        "POST /things/{code} body{*} (items)",
        "POST /things/{code} body{*}[]",
    }
    assert _bounded_pattern(r"^[0-9a-f]{64}$") and not _bounded_pattern(r"^[a-z][a-z0-9_]*$")


# --- the bounds leave room for everything the catalogue ships --------------------------------------


def _largest_json(schema: dict[str, Any], definitions: dict[str, Any]) -> int:
    """The most characters a value of the schema takes as JSON, were every character escaped."""
    if "$ref" in schema:
        return _largest_json(definitions[schema["$ref"].rsplit("/", 1)[-1]], definitions)
    for key in ("anyOf", "oneOf", "allOf"):
        if key in schema:
            return max(_largest_json(alternative, definitions) for alternative in schema[key])
    if "enum" in schema or "const" in schema:
        return max(len(json.dumps(value, ensure_ascii=False)) for value in schema.get("enum", [schema.get("const")]))
    kind = schema.get("type")
    if kind == "string":
        # Without a maximum, the form's strings are codes, numbers and times: none longer than a code.
        return 2 * schema.get("maxLength", CODE_MAX_LENGTH) + 2
    if kind == "object":
        properties = schema.get("properties", {}).items()
        size = 2 + sum(len(name) + 4 + _largest_json(sub, definitions) for name, sub in properties)
        values = [schema.get("additionalProperties"), *schema.get("patternProperties", {}).values()]
        for value in values:
            if isinstance(value, dict):
                size += schema["maxProperties"] * (2 * CODE_MAX_LENGTH + 4 + _largest_json(value, definitions))
        return size
    return 24  # a number, a boolean or null


@pytest.mark.parametrize("form", sorted(FORMS))
def test_the_largest_form_a_thing_can_take_fits_twice_over(form):
    schema = FORMS[form].model_json_schema()
    definitions = schema.get("$defs", {})

    assert 2 * len(schema["properties"]) <= FORM_FIELDS_MAX
    for name, field in schema["properties"].items():
        assert 2 * _largest_json(field, definitions) <= FORM_FIELD_MAX_CHARS, name


@pytest.mark.parametrize("thing", sorted(shipped_definitions()))
def test_every_shipped_sample_form_answers_and_result_are_accepted_with_room(thing):
    definition = shipped_definitions()[thing]
    codes: list[str | None] = [situation.code for situation in definition.situations] or [None]
    for code in codes:
        form = sample_form(thing, code)
        answers = sample_answers(thing, code)
        channel = definition.channels[0].code
        SubmitCaseRequest.model_validate({"thing": thing, "channel": channel, "form": form, "answers": answers})
        for step in definition.steps:
            CompleteTaskRequest.model_validate({"result": sample_result(step, form)})
    assert 2 * len(definition.questions) <= QUESTIONS_MAX
    for question in definition.questions:
        assert all(2 * len(option) <= CODE_MAX_LENGTH for option in question.options)
    for step in definition.steps:
        assert 2 * len(step.result) <= RESULT_FIELDS_MAX
        assert all(spec.max_length <= RESULT_VALUE_MAX_LENGTH for spec in step.result.values())


def test_a_codec_payload_over_its_size_is_refused_naming_it():
    over = base64.b64encode(b"\0" * (4 * 1024 * 1024 + 1)).decode()

    with pytest.raises(ValidationError) as refused:
        CodecPayload.model_validate({"metadata": {"encoding": "YmluYXJ5L3BsYWlu"}, "data": over})

    assert [error["loc"] for error in refused.value.errors()] == [("data",)]


# --- oversized inputs on the wire ----------------------------------------------------------------


@pytest.fixture
def api_settings(tmp_path: Path, task_queue: str) -> Settings:
    # The production body limit (1 MiB), so each field's own bound is what refuses the request.
    return settings_for(tmp_path, task_queue=task_queue)


HUGE = "x" * 10_000


def _filled(path: str, oversized: str | None) -> str:
    return re.sub(r"\{(\w+)\}", lambda match: HUGE if match[1] == oversized else "x", path)


def _parameters(document: dict[str, Any]) -> Iterator[tuple[str, str, dict[str, Any]]]:
    for path, operations in document["paths"].items():
        for method, operation in operations.items():
            for parameter in operation.get("parameters", []):
                strings = [parameter["schema"], *parameter["schema"].get("anyOf", [])]
                if any(schema.get("type") == "string" and _string_bounded(schema) for schema in strings):
                    yield method, path, parameter


async def test_each_oversized_path_query_or_header_parameter_is_422_naming_it(api, api_app, login):
    headers = await login("supervisor")
    checked = 0
    document = api_app.openapi()
    for method, path, parameter in _parameters(document):
        place, name = parameter["in"], parameter["name"]
        body = document["paths"][path][method].get("requestBody", {}).get("content", {})
        response = await api.request(
            method.upper(),
            _filled(path, name if place == "path" else None),
            params={name: HUGE} if place == "query" else None,
            headers={**headers, name: HUGE} if place == "header" else headers,
            # An empty JSON body where one is read: its own errors come with the parameter's.
            json={} if "application/json" in body else None,
        )
        assert_error(response, 422, "validation_error", [f"{place}.{name}"])
        checked += 1
    assert checked > 50


async def test_a_10000_character_task_id_is_422_naming_it(api, login):
    response = await api.post(f"/tasks/{HUGE}/claim", headers=await login("hospital_officer"))

    error = assert_error(response, 422, "validation_error", ["path.task_id"])
    assert "128" in error["fields"]["path.task_id"]


async def test_a_65_character_department_filter_is_422_naming_it(api, login):
    department = "d" * 65

    inbox = await api.get("/tasks", params={"department": department}, headers=await login("hospital_officer"))
    timeliness = await api.get(
        "/supervision/timeliness", params={"department": department}, headers=await login("supervisor")
    )

    for response in (inbox, timeliness):
        error = assert_error(response, 422, "validation_error", ["query.department"])
        assert "64" in error["fields"]["query.department"]


async def test_a_form_with_10000_keys_is_422_naming_the_form(api, login, engine):
    form = {f"k{index}": 0 for index in range(10_000)}

    response = await api.post(
        "/cases", json={"thing": "birth", "channel": "hospital", "form": form}, headers=await login("hospital_clerk")
    )

    error = assert_error(response, 422, "validation_error", ["form"])
    assert str(FORM_FIELDS_MAX) in error["fields"]["form"]


async def test_an_oversized_form_field_or_answer_key_is_422_naming_it_and_not_repeating_it(api, login):
    form = birth_form()
    form["materials"] = {"marriage_certificate": "x" * FORM_FIELD_MAX_CHARS}
    body = {"thing": "birth", "channel": "hospital", "form": form, "answers": {HUGE: "yes"}}

    response = await api.post("/cases", json=body, headers=await login("hospital_clerk"))

    error = assert_error(response, 422, "validation_error", ["form.materials", "answers.[key]"])
    assert HUGE not in response.text
    assert str(FORM_FIELD_MAX_CHARS) in error["fields"]["form.materials"]


async def test_a_100000_character_complaint_answer_is_422_naming_it(api, login):
    answer = "答" * 100_000

    response = await api.post(
        "/complaints/cp-00000000000000000000/answer", json={"answer": answer}, headers=await login("police_officer")
    )

    assert_error(response, 422, "validation_error", ["answer"])


async def test_an_oversized_step_result_is_422_naming_the_field(api, login):
    result = {"birth_certificate_no": "x" * (RESULT_VALUE_MAX_LENGTH + 1)}

    response = await api.post(
        "/tasks/ot-00000000000000000000:birth_certificate/complete",
        json={"result": result},
        headers=await login("hospital_officer"),
    )

    assert_error(response, 422, "validation_error", ["result.birth_certificate_no"])


async def test_a_file_hash_that_is_not_sha256_hex_is_422_naming_it(api, login):
    response = await api.get("/cases/ot-00000000000000000000/files/not-a-hash", headers=await login("applicant1"))

    assert_error(response, 422, "validation_error", ["path.sha256"])


async def test_too_many_codec_payloads_are_422_naming_them(api, login):
    payloads = [{"metadata": {}, "data": ""}] * 1001

    response = await api.post("/codec/decode", json={"payloads": payloads}, headers=await login("supervisor"))

    assert_error(response, 422, "validation_error", ["payloads"])


@pytest.mark.parametrize("field", ["scope", "client_id", "client_secret"])
async def test_an_oversized_oauth2_login_field_is_422_naming_it_and_counts_no_attempt(
    api: httpx.AsyncClient, engine, field
):
    response = await api.post("/auth/token", data={"username": "police_officer", "password": "demo", field: HUGE})

    assert_error(response, 422, "validation_error", [field])
    with Session(engine) as session:
        assert session.execute(select(func.count()).select_from(LoginAttempt)).scalar_one() == 0

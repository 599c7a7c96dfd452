"""What the Temporal server stores for a whole birth case holds no personal data in
clear: not in any history event, not in the workflow ID, not in search attributes."""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from typing import Any

from google.protobuf.message import Message
from temporalio.api.common.v1 import Payload
from temporalio.client import Client
from temporalio.testing import WorkflowEnvironment

from tests.api.helpers import STEP_ORDER, result_for

PERSONAL_KEYS = ("name", "id_number", "phone", "address")


def personal_values(form: dict[str, Any]) -> set[str]:
    """Every name, ID number, phone and address in the form, and the newborn's
    citizen ID number the police step issues."""
    found: set[str] = set()

    def walk(value: Any, key: str = "") -> None:
        if isinstance(value, dict):
            for child_key, child in value.items():
                walk(child, child_key)
        elif isinstance(value, str) and any(part in key for part in PERSONAL_KEYS):
            found.add(value)

    walk(form)
    for step in STEP_ORDER:
        walk(result_for(step, form))
    return found


def stored_forms(value: str) -> list[bytes]:
    """How a value could appear in stored bytes: as UTF-8, or JSON-escaped."""
    return [value.encode(), json.dumps(value).encode()]


def payloads_in(message: Message) -> Iterator[Payload]:
    """Every Payload anywhere inside a protobuf message (inputs, results, failures, memos…)."""
    if isinstance(message, Payload):
        yield message
        return
    for field, value in message.ListFields():
        if field.message_type is None:
            continue
        if field.message_type.GetOptions().map_entry:
            if field.message_type.fields_by_name["value"].message_type is not None:
                for item in value.values():
                    yield from payloads_in(item)
        elif field.is_repeated:
            for item in value:
                yield from payloads_in(item)
        else:
            yield from payloads_in(value)


async def test_a_whole_birth_case_leaves_no_personal_data_in_clear_on_the_server(
    api, cases, env: WorkflowEnvironment
) -> None:
    case = await cases.submit(channel="hospital")
    await cases.finish(case)
    assert (await cases.read(case["case_id"]))["status"] == "completed"
    secrets = personal_values(case["_form"])
    assert len(secrets) >= 6  # names, ID numbers, the phone, the address, the newborn's ID

    # A client with no codec: what anyone reading the server's database sees.
    no_codec = Client(env.client.service_client, namespace=env.client.namespace)
    handle = no_codec.get_workflow_handle(case["case_id"])
    history = await handle.fetch_history()
    stored = [event.SerializeToString() for event in history.events]
    for value in secrets:
        for form in stored_forms(value):
            assert not any(form in event for event in stored), f"{value!r} is stored in clear"

    # The check can fail: decrypted, the same history does hold every one of them.
    codec = env.client.data_converter.payload_codec
    assert codec is not None
    payloads = [payload for event in history.events for payload in payloads_in(event)]
    decrypted = b"".join(payload.data for payload in await codec.decode(payloads))
    for value in secrets:
        assert value.encode() in decrypted, f"{value!r} was never in the history at all"

    description = await handle.describe()
    assert re.fullmatch(r"ot-[0-9a-f]{20}", description.id)
    attributes = description.raw_description.workflow_execution_info.search_attributes.SerializeToString()
    assert b"birth" in attributes  # the custom attributes are there, and carry only codes
    for value in secrets:
        assert value not in description.id
        for form in stored_forms(value):
            assert form not in attributes, f"{value!r} is in a search attribute"

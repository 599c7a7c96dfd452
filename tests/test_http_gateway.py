"""The data-sharing platform's HTTP client: what counts as found, not held, and unavailable."""

from __future__ import annotations

import json
import socket
import time
from datetime import date
from pathlib import Path

import httpx
import pytest

from activities.data_sharing import (
    DataSharingUnavailable,
    FixtureDataSharingGateway,
    HttpDataSharingGateway,
    PopulationRegisterGateway,
    gateway_from_settings,
)
from domain.forms import credit_code_check_character
from domain.identity import make_id_number
from domain.samples import MOTHER_ID, MOTHER_WITHOUT_MARRIAGE_RECORD_ID
from tests.conftest import test_settings as settings_in


def gateway_answering(handler: httpx.MockTransport) -> HttpDataSharingGateway:
    return HttpDataSharingGateway("http://platform.test/api/", timeout_seconds=2, transport=handler)


def test_a_held_document_is_found_by_a_lookup_that_keeps_the_id_number_out_of_the_url() -> None:
    seen: list[httpx.Request] = []

    def platform(request: httpx.Request) -> httpx.Response:
        seen.append(request)
        return httpx.Response(200, json={"reference": "DS-IDC-0001"})

    assert gateway_answering(httpx.MockTransport(platform)).lookup("id_card", MOTHER_ID) == "DS-IDC-0001"
    [request] = seen
    assert (request.method, str(request.url)) == ("POST", "http://platform.test/api/lookup")
    assert json.loads(request.content) == {"document": "id_card", "id_number": MOTHER_ID}
    assert MOTHER_ID not in str(request.url)


@pytest.mark.parametrize(
    "answer", [httpx.Response(404, json={"error": "not held"}), httpx.Response(200, json={"reference": None})]
)
def test_a_document_the_platform_does_not_hold_is_none(answer: httpx.Response) -> None:
    gateway = gateway_answering(httpx.MockTransport(lambda request: answer))
    assert gateway.lookup("marriage_certificate", MOTHER_ID) is None


@pytest.mark.parametrize(
    "answer",
    [
        httpx.Response(500, text="internal error"),
        httpx.Response(503, text="maintenance"),
        httpx.Response(429, text="slow down"),
        httpx.Response(200, text="<html>gateway portal</html>"),
        httpx.Response(200, json={"reference": 42}),
    ],
    ids=["500", "503", "429", "not-json", "not-text"],
)
def test_an_error_answer_means_the_platform_is_unavailable(answer: httpx.Response) -> None:
    gateway = gateway_answering(httpx.MockTransport(lambda request: answer))
    with pytest.raises(DataSharingUnavailable):
        gateway.lookup("id_card", MOTHER_ID)


@pytest.mark.parametrize("failure", [httpx.ReadTimeout, httpx.ConnectError, httpx.RemoteProtocolError])
def test_no_answer_in_time_or_a_broken_connection_means_unavailable_without_the_id_number(
    failure: type[httpx.TransportError],
) -> None:
    def platform(request: httpx.Request) -> httpx.Response:
        raise failure(f"failed talking to {request.url}", request=request)

    with pytest.raises(DataSharingUnavailable) as raised:
        gateway_answering(httpx.MockTransport(platform)).lookup("id_card", MOTHER_ID)
    assert MOTHER_ID not in str(raised.value)
    assert raised.value.__cause__ is None and raised.value.__suppress_context__


def test_a_platform_slower_than_the_timeout_is_unavailable_once_the_timeout_passes() -> None:
    # A listening socket nobody serves: the connection opens, no answer ever comes.
    with socket.socket() as silent:
        silent.bind(("127.0.0.1", 0))
        silent.listen()
        host, port = silent.getsockname()
        gateway = HttpDataSharingGateway(f"http://{host}:{port}", timeout_seconds=0.5)
        started = time.monotonic()
        with pytest.raises(DataSharingUnavailable, match="ReadTimeout"):
            gateway.lookup("id_card", MOTHER_ID)
        assert 0.5 <= time.monotonic() - started < 3


def test_settings_choose_the_http_gateway_only_when_a_platform_url_is_set(tmp_path: Path) -> None:
    assert isinstance(gateway_from_settings(settings_in(tmp_path)), FixtureDataSharingGateway)
    configured = gateway_from_settings(
        settings_in(tmp_path, data_sharing_url="http://127.0.0.1:1/", data_sharing_timeout_seconds=1)
    )
    assert isinstance(configured, HttpDataSharingGateway)


def test_make_runs_register_finds_any_well_formed_id_number_but_the_documented_gaps(tmp_path: Path) -> None:
    settings = settings_in(tmp_path)
    register = gateway_from_settings(settings.model_copy(update={"env": "dev"}))
    assert isinstance(register, PopulationRegisterGateway)
    stranger = make_id_number("330203", date(1994, 5, 6), 17)
    reference = register.lookup("hukou_booklet", stranger)
    assert reference is not None and reference.startswith("DS-HUKOU_BOOKLET-")
    assert register.lookup("hukou_booklet", stranger) == reference  # the same person, the same record
    assert register.lookup("id_card", MOTHER_ID) == "DS-IDC-0001"  # a recorded person as recorded
    # The documented gap: this mother's record holds no marriage certificate, so the case asks for it (补正).
    assert register.lookup("marriage_certificate", MOTHER_WITHOUT_MARRIAGE_RECORD_ID) is None
    assert register.lookup("id_card", stranger[:-1] + ("0" if stranger[-1] != "0" else "1")) is None  # bad checksum
    enterprise = "91330106MA2B3C4D5" + credit_code_check_character("91330106MA2B3C4D5")
    assert register.lookup("business_licence", enterprise) is not None  # an enterprise's credit code
    assert register.lookup("business_licence", "not-a-code") is None

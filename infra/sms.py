"""SMS gateways: what sends a text to a phone. The delivery activity (activities/notice_delivery.py)
takes one; settings choose which (``sms_gateway_url``)."""

from __future__ import annotations

from typing import Protocol

import httpx

from settings import Settings


class SmsNotSent(Exception):
    """The gateway did not take the message; the outbox tries again later."""


class SmsGateway(Protocol):
    async def send(self, phone: str, text: str) -> None:
        """Hand one message to the operator; raises when it was not taken."""
        ...


class HttpSmsGateway:
    """POSTs ``{"phone", "text"}`` as JSON to ``url``; anything but a 2xx answer, or no answer
    in time, is a failure. ``transport`` is for tests."""

    def __init__(self, url: str, timeout_seconds: float = 5.0, transport: httpx.AsyncBaseTransport | None = None):
        self._url = url
        self._timeout = timeout_seconds
        self._transport = transport

    async def send(self, phone: str, text: str) -> None:
        # A client per message: sends are few, and a client outliving its event loop breaks.
        async with httpx.AsyncClient(timeout=self._timeout, transport=self._transport) as client:
            try:
                response = await client.post(self._url, json={"phone": phone, "text": text})
            except httpx.HTTPError as error:
                # The type only: a transport error's text may quote the request, with its phone.
                raise SmsNotSent(f"SMS gateway unreachable ({type(error).__name__})") from None
        if not response.is_success:
            raise SmsNotSent(f"SMS gateway answered {response.status_code}")


def sms_gateway_from_settings(settings: Settings) -> SmsGateway | None:
    """The configured gateway; None when there is none (nothing is sent, rows wait)."""
    if settings.sms_gateway_url is None:
        return None
    return HttpSmsGateway(settings.sms_gateway_url, settings.sms_timeout_seconds)

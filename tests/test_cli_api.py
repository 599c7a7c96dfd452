"""`onething api` starts uvicorn with the settings' address and trusted proxies."""

from __future__ import annotations

from typing import Any

import pytest
import uvicorn

import cli
from settings import get_settings


def test_api_command_believes_forwarded_addresses_only_from_the_configured_proxies(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    calls: list[dict[str, Any]] = []
    monkeypatch.setattr(uvicorn, "run", lambda app, **options: calls.append({"app": app, **options}))
    monkeypatch.setenv("ONETHING_ENV", "dev")
    monkeypatch.setenv("ONETHING_API_PORT", "8123")
    monkeypatch.setenv("ONETHING_FORWARDED_ALLOW_IPS", "10.0.0.5")
    get_settings.cache_clear()
    try:
        assert cli.main(["api"]) == 0
    finally:
        get_settings.cache_clear()

    (call,) = calls
    assert call["app"] == "api.main:create_app" and call["factory"] is True
    assert call["port"] == 8123
    # The login limit per address must see the client behind the proxy, and only a trusted proxy may say who that is.
    assert call["proxy_headers"] is True and call["forwarded_allow_ips"] == "10.0.0.5"

"""Applicants sign in through an OpenID Connect provider (issue 15, production identity): a fake
provider served over real HTTP (discovery, keys, token endpoint) issues RS256 ID tokens; the
console's sign-in checks them (issuer, audience, nonce, signature), finds or makes the person's
account by the verified ID number, and their walk-in cases become theirs. A token that fails a
check signs nobody in."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator
from datetime import date
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

import pytest
import uvicorn
from joserfc import jwt
from joserfc.jwk import RSAKey
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route

from api.console.base import SESSION_COOKIE
from domain.identity import make_id_number
from domain.samples import MOTHER_ID
from ops.processes import free_port
from settings import Settings
from tests.api.console_client import console_users
from tests.api.helpers import birth_form
from tests.conftest import test_settings as settings_for

CLIENT_ID = "onething-console"
GRANDMOTHER_ID = make_id_number("330102", date(1962, 5, 1), 12)


class FakeProvider:
    """An identity provider: what it will say about the person who signs in next."""

    def __init__(self, port: int) -> None:
        self.issuer = f"http://127.0.0.1:{port}"
        self.key = RSAKey.generate_key(2048, parameters={"kid": "k1", "use": "sig"})
        self.codes: dict[str, dict[str, Any]] = {}
        self.wrong: dict[str, Any] = {}  # claims to spoil in the next token

    def grant(self, code: str, nonce: str, **person: Any) -> None:
        self.codes[code] = {"nonce": nonce, **person}

    def app(self) -> Starlette:
        async def discovery(_: Request) -> JSONResponse:
            return JSONResponse(
                {
                    "issuer": self.issuer,
                    "authorization_endpoint": f"{self.issuer}/authorize",
                    "token_endpoint": f"{self.issuer}/token",
                    "jwks_uri": f"{self.issuer}/jwks",
                }
            )

        async def jwks(_: Request) -> JSONResponse:
            return JSONResponse({"keys": [self.key.as_dict(private=False)]})

        async def token(request: Request) -> JSONResponse:
            form = await request.form()
            granted = self.codes.pop(str(form.get("code")), None)
            if granted is None or not request.headers.get("authorization", "").startswith("Basic "):
                return JSONResponse({"error": "invalid_grant"}, status_code=400)
            now = int(time.time())
            claims = {"iss": self.issuer, "aud": CLIENT_ID, "sub": granted["id_number"][-8:], "iat": now}
            claims |= {"exp": now + 300, **granted, **self.wrong}
            id_token = jwt.encode({"alg": "RS256", "kid": "k1"}, claims, self.key)
            return JSONResponse({"access_token": "at", "token_type": "Bearer", "id_token": id_token})

        routes = [Route("/.well-known/openid-configuration", discovery), Route("/jwks", jwks)]
        return Starlette(routes=[*routes, Route("/token", token, methods=["POST"])])


@pytest.fixture
async def provider() -> AsyncIterator[FakeProvider]:
    port = free_port()
    fake = FakeProvider(port)
    server = uvicorn.Server(uvicorn.Config(fake.app(), host="127.0.0.1", port=port, log_level="warning"))
    serving = asyncio.create_task(server.serve())
    while not server.started:
        assert not serving.done(), "the provider did not start"
        await asyncio.sleep(0.02)
    yield fake
    server.should_exit = True
    await serving


@pytest.fixture
def api_settings(tmp_path: Path, task_queue: str, provider: FakeProvider) -> Settings:
    return settings_for(
        tmp_path,
        task_queue=task_queue,
        oidc_issuer=provider.issuer,
        oidc_client_id=CLIENT_ID,
        oidc_client_secret="client-secret",
    )


async def _sign_in(users, provider: FakeProvider, code: str, **person: Any):
    """Start at the console's button, let the provider verify ``person``, come back."""
    browser = await users(None)
    started = await browser.client.get("/login/oidc", params={"next": "/my/cases"})
    assert started.status_code == 303, started.text
    asked = parse_qs(urlsplit(started.headers["location"]).query)
    assert asked["client_id"] == [CLIENT_ID] and "openid" in asked["scope"][0]
    provider.grant(code, asked["nonce"][0], **person)
    back = await browser.client.get("/login/oidc/callback", params={"code": code, "state": asked["state"][0]})
    return browser, back


async def _me(browser) -> dict[str, Any]:
    """GET /me with the session the sign-in left (the console's cookie is the same JWT)."""
    token = browser.client.cookies.get(SESSION_COOKIE)
    assert token, "no session after the sign-in"
    response = await browser.client.get("/me", headers={"Authorization": f"Bearer {token}"})
    assert response.status_code == 200, response.text
    return dict(response.json())


async def test_a_new_person_signs_in_gets_an_account_of_their_identity_and_their_walk_in_case(api, cases, provider):
    walk_in = birth_form()
    walk_in["applicant"] = {
        "name": "赵敏",
        "id_number": GRANDMOTHER_ID,
        "phone": "13700000001",
        "relation": "grandparent",
    }
    case = await cases.submit(as_user="hospital_clerk", form=walk_in)

    async with console_users(api) as users:
        browser, back = await _sign_in(
            users, provider, "c1", id_number=GRANDMOTHER_ID, name="赵敏", phone_number="+8613700000001"
        )
        assert back.status_code == 200, back.text
        me = await _me(browser)
        mine = await browser.client.get("/my/cases")
    assert me["role"] == "applicant" and me["username"].startswith("oidc-")
    assert (me["name"], me["id_number_masked"]) == ("赵敏", GRANDMOTHER_ID[:6] + "********" + GRANDMOTHER_ID[-4:])
    assert mine.status_code == 200 and case["case_id"] in mine.text  # the walk-in case is theirs


async def test_a_person_with_an_account_of_the_same_identity_signs_into_it(api, provider):
    async with console_users(api) as users:
        browser, back = await _sign_in(
            users, provider, "c2", id_number=MOTHER_ID, name="李芳", phone_number="13800000000"
        )
        assert back.status_code == 200, back.text
        me = await _me(browser)
    assert me["username"] == "applicant1"


@pytest.mark.parametrize(
    "spoiled",
    [{"aud": "another-client"}, {"iss": "http://evil.test"}, {"nonce": "replayed"}, {"exp": 1}],
    ids=["audience", "issuer", "nonce", "expired"],
)
async def test_a_token_failing_a_check_signs_nobody_in(api, provider, spoiled):
    provider.wrong = spoiled
    async with console_users(api) as users:
        browser, back = await _sign_in(users, provider, "c3", id_number=MOTHER_ID, name="李芳")
        # Back to the login page, with no session.
        assert back.status_code == 303 and back.headers["location"].startswith("/login"), back.text
        assert browser.client.cookies.get(SESSION_COOKIE) is None


async def test_a_callback_without_the_state_it_was_sent_with_is_refused(api, provider):
    async with console_users(api) as users:
        browser = await users(None)
        started = await browser.client.get("/login/oidc")
        nonce = parse_qs(urlsplit(started.headers["location"]).query)["nonce"][0]
        provider.grant("c4", nonce, id_number=MOTHER_ID, name="李芳")
        forged = await browser.client.get("/login/oidc/callback", params={"code": "c4", "state": "forged"})
        assert forged.status_code == 303 and forged.headers["location"].startswith("/login")
        assert browser.client.cookies.get(SESSION_COOKIE) is None

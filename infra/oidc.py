"""Signing applicants in through an external OpenID Connect provider (the provincial one in
practice; any standard issuer by configuration): discovery, the authorization address, the code
exchange and the ID token's checks (signature by the issuer's keys, issuer, audience, expiry,
nonce), with joserfc (Authlib's JOSE library). What the provider verified comes back as claims;
api/accounts.account_for_verified_person turns them into an account."""

from __future__ import annotations

import secrets
import time
from dataclasses import dataclass
from typing import Any, cast
from urllib.parse import urlencode

import httpx
from joserfc import jwt
from joserfc.errors import JoseError
from joserfc.jwk import KeySet

from settings import Settings

DISCOVERY_TTL_SECONDS = 3600
SCOPE = "openid profile phone"
ALGORITHMS = ["RS256", "ES256", "EdDSA"]


class OidcError(Exception):
    """The provider refused, could not be reached, or answered with a token that fails a check."""


@dataclass(frozen=True)
class Provider:
    issuer: str
    authorization_endpoint: str
    token_endpoint: str
    jwks: dict[str, Any]


@dataclass(frozen=True)
class AuthorizationRequest:
    url: str
    state: str
    nonce: str


class OidcClient:
    def __init__(self, settings: Settings, transport: httpx.AsyncBaseTransport | None = None) -> None:
        if settings.oidc_issuer is None or settings.oidc_client_id is None:
            raise OidcError("OIDC sign-in is not configured (ONETHING_OIDC_ISSUER, ONETHING_OIDC_CLIENT_ID)")
        self._issuer = settings.oidc_issuer.rstrip("/")
        self._client_id = settings.oidc_client_id
        secret = settings.oidc_client_secret
        self._client_secret = secret.get_secret_value() if secret is not None else None
        self._transport = transport
        self._provider: Provider | None = None
        self._fetched_at = 0.0

    async def provider(self) -> Provider:
        """The issuer's endpoints and keys (discovery), kept an hour."""
        if self._provider is not None and time.monotonic() - self._fetched_at < DISCOVERY_TTL_SECONDS:
            return self._provider
        try:
            async with httpx.AsyncClient(transport=self._transport, timeout=10) as client:
                metadata = (await client.get(f"{self._issuer}/.well-known/openid-configuration")).raise_for_status()
                config = metadata.json()
                jwks = (await client.get(config["jwks_uri"])).raise_for_status().json()
        except (httpx.HTTPError, KeyError, ValueError) as error:
            raise OidcError(f"provider discovery failed: {type(error).__name__}") from error
        if config.get("issuer", "").rstrip("/") != self._issuer:
            raise OidcError("the provider's metadata names another issuer")
        self._provider = Provider(self._issuer, config["authorization_endpoint"], config["token_endpoint"], jwks)
        self._fetched_at = time.monotonic()
        return self._provider

    async def authorization(self, redirect_uri: str) -> AuthorizationRequest:
        provider = await self.provider()
        state, nonce = secrets.token_urlsafe(24), secrets.token_urlsafe(24)
        query = {
            "response_type": "code",
            "client_id": self._client_id,
            "redirect_uri": redirect_uri,
            "scope": SCOPE,
            "state": state,
            "nonce": nonce,
        }
        return AuthorizationRequest(f"{provider.authorization_endpoint}?{urlencode(query)}", state, nonce)

    async def verified_claims(self, code: str, redirect_uri: str, nonce: str) -> dict[str, Any]:
        """Exchange the code and check the ID token; its claims."""
        provider = await self.provider()
        form = {"grant_type": "authorization_code", "code": code, "redirect_uri": redirect_uri}
        # client_secret_basic (the default method of OIDC Core §9); a public client sends its id.
        if self._client_secret is None:
            form["client_id"] = self._client_id
        try:
            async with httpx.AsyncClient(transport=self._transport, timeout=10) as client:
                if self._client_secret is not None:
                    auth = httpx.BasicAuth(self._client_id, self._client_secret)
                    answer = await client.post(provider.token_endpoint, data=form, auth=auth)
                else:
                    answer = await client.post(provider.token_endpoint, data=form)
                token = answer.raise_for_status().json()
        except (httpx.HTTPError, ValueError) as error:
            raise OidcError(f"code exchange failed: {type(error).__name__}") from error
        id_token = token.get("id_token") if isinstance(token, dict) else None
        if not isinstance(id_token, str):
            raise OidcError("the provider answered without an ID token")
        try:
            keys = KeySet.import_key_set(cast(Any, provider.jwks))
            token_claims = jwt.decode(id_token, keys, algorithms=ALGORITHMS).claims
            jwt.JWTClaimsRegistry(
                leeway=60,
                iss={"essential": True, "value": provider.issuer},
                aud={"essential": True, "value": self._client_id},
                sub={"essential": True},
                exp={"essential": True},
                nonce={"essential": True, "value": nonce},
            ).validate(token_claims)
        except (JoseError, ValueError, KeyError) as error:
            raise OidcError(f"the ID token failed a check: {type(error).__name__}") from error
        return dict(token_claims)

"""Login, bearer tokens and the 401s of the contract."""

from __future__ import annotations

import base64
import json
from datetime import UTC, datetime, timedelta

import jwt
import pytest
from sqlalchemy import func, select
from sqlmodel import Session

from api.security import ALGORITHM
from models.case import Actor
from models.tables import LoginAttempt
from tests.api.helpers import assert_error, issued_token


def _bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


async def test_login_returns_a_bearer_token_that_identifies_the_user_on_auth_me(api):
    response = await api.post("/auth/token", data={"username": "police_officer", "password": "demo"})

    assert response.status_code == 200, response.text
    body = response.json()
    assert body["token_type"] == "bearer"
    me = await api.get("/auth/me", headers=_bearer(body["access_token"]))
    assert me.status_code == 200, me.text
    assert me.json() == {
        "username": "police_officer",
        "role": "officer",
        "unit": "police",
        "unit_code": "police_330102",
        "division_code": "330102",  # where the unit is
        "name": None,  # staff carry no verified identity of an applicant
        "id_number_masked": None,
    }


async def test_login_of_a_clerk_carries_the_clerks_unit(api, login):
    me = await api.get("/auth/me", headers=await login("hospital_clerk"))

    assert me.json() == {
        "username": "hospital_clerk",
        "role": "clerk",
        "unit": "hospital",
        "unit_code": "hospital_330102_fybj",
        "division_code": "330102",  # where the unit is
        "name": None,
        "id_number_masked": None,
    }


async def test_login_with_a_wrong_password_is_401(api):
    response = await api.post("/auth/token", data={"username": "applicant1", "password": "not-demo"})

    assert_error(response, 401, "unauthorized")
    assert "access_token" not in response.text


async def test_login_of_an_unknown_user_is_401_like_a_wrong_password(api):
    unknown = await api.post("/auth/token", data={"username": "nobody", "password": "demo"})
    wrong = await api.post("/auth/token", data={"username": "applicant1", "password": "x"})

    assert_error(unknown, 401, "unauthorized")
    assert unknown.json() == wrong.json()


@pytest.mark.parametrize(
    ("method", "path"),
    [
        ("GET", "/auth/me"),
        ("GET", "/cases"),
        ("POST", "/cases"),
        ("GET", "/cases/ot-anything"),
        ("GET", "/cases/ot-anything/timeline"),
        ("POST", "/cases/ot-anything/supplements"),
        ("GET", "/tasks"),
        ("POST", "/tasks/ot-anything:birth_certificate/claim"),
        ("POST", "/tasks/ot-anything:birth_certificate/complete"),
    ],
)
async def test_every_endpoint_without_a_token_is_401(api, method, path):
    response = await api.request(method, path)

    assert_error(response, 401, "unauthorized")
    assert response.headers["WWW-Authenticate"] == "Bearer"


async def test_a_garbage_token_is_401(api):
    response = await api.get("/auth/me", headers=_bearer("not-a-jwt-at-all"))

    assert_error(response, 401, "unauthorized")


async def test_an_expired_token_is_401(api, api_settings, engine):
    applicant = Actor(username="applicant1", role="applicant")
    expired = issued_token(engine, applicant, api_settings, now=datetime.now(UTC) - timedelta(days=30))
    fresh = issued_token(engine, applicant, api_settings)

    assert (await api.get("/auth/me", headers=_bearer(fresh))).status_code == 200
    error = assert_error(await api.get("/auth/me", headers=_bearer(expired)), 401, "unauthorized")
    assert "expired" in error["message"]


async def test_a_token_whose_claims_were_edited_is_401(api, login):
    token = (await login("applicant1"))["Authorization"].removeprefix("Bearer ")
    header, payload, signature = token.split(".")
    claims = json.loads(base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4)))
    claims["role"] = "supervisor"
    forged = base64.urlsafe_b64encode(json.dumps(claims).encode()).decode().rstrip("=")
    tampered = f"{header}.{forged}.{signature}"

    # The genuine applicant token is refused supervision; the forged "supervisor" one is not let in either.
    assert_error(await api.get("/supervision/overdue", headers=_bearer(token)), 403, "forbidden")
    assert_error(await api.get("/supervision/overdue", headers=_bearer(tampered)), 401, "unauthorized")


async def test_a_token_signed_with_another_key_is_401(api):
    claims = {
        "sub": "supervisor",
        "role": "supervisor",
        "exp": int((datetime.now(UTC) + timedelta(hours=1)).timestamp()),
    }
    token = jwt.encode(claims, "some-other-secret-key-that-is-long-enough-0000", algorithm=ALGORITHM)

    assert_error(await api.get("/cases", headers=_bearer(token)), 401, "unauthorized")


async def test_an_unsigned_token_is_401(api):
    claims = {
        "sub": "supervisor",
        "role": "supervisor",
        "exp": int((datetime.now(UTC) + timedelta(hours=1)).timestamp()),
    }
    token = jwt.encode(claims, key="", algorithm="none")

    assert_error(await api.get("/cases", headers=_bearer(token)), 401, "unauthorized")


async def test_a_correctly_signed_token_without_a_role_is_401(api, api_settings):
    claims = {"sub": "supervisor", "exp": int((datetime.now(UTC) + timedelta(hours=1)).timestamp())}
    token = jwt.encode(claims, api_settings.secret_key, algorithm=ALGORITHM)

    assert_error(await api.get("/cases", headers=_bearer(token)), 401, "unauthorized")


@pytest.mark.parametrize(
    ("field", "username", "password"), [("username", "u" * 65, "demo"), ("password", "police_officer", "p" * 257)]
)
async def test_an_oversized_login_field_is_422_naming_it_and_counts_no_attempt(api, engine, field, username, password):
    response = await api.post("/auth/token", data={"username": username, "password": password})

    assert_error(response, 422, "validation_error", [field])
    with Session(engine) as session:
        assert session.execute(select(func.count()).select_from(LoginAttempt)).scalar_one() == 0

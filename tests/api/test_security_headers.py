"""Security headers (issue 16): pages run only the console's own script files and cannot be
framed, no response is MIME-sniffed or sends a Referer, production adds HSTS, and CORS answers
for the codec server only."""

from __future__ import annotations

import re
from pathlib import Path

import httpx
from starlette.applications import Starlette
from starlette.responses import HTMLResponse
from starlette.routing import Route

from api.security_headers import SecurityHeaders
from tests.api.console_client import console_users

TEMPLATES = Path(__file__).resolve().parents[2] / "api" / "templates"
UI_ORIGIN = "http://localhost:8233"  # in the codec server's allowed origins (settings.codec_cors_origins)


def _script_sources(policy: str) -> list[str]:
    directive = next(part for part in policy.split(";") if part.strip().startswith("script-src"))
    return directive.split()[1:]


async def test_a_console_page_runs_only_its_own_scripts_and_cannot_be_framed(api):
    page = await api.get("/login")

    assert page.headers["content-type"].startswith("text/html")
    policy = page.headers["content-security-policy"]
    assert _script_sources(policy) == ["'self'"]
    assert "frame-ancestors 'none'" in policy and "object-src 'none'" in policy
    assert page.headers["x-frame-options"] == "DENY"
    assert page.headers["x-content-type-options"] == "nosniff"
    assert page.headers["referrer-policy"] == "no-referrer"
    assert "strict-transport-security" not in page.headers  # not in tests: only production is TLS-only


async def test_the_officers_signed_in_pages_carry_the_policy_too(api):
    async with console_users(api) as users:
        officer = await users("police_officer")
        inbox = await officer.client.get("/inbox")

    assert inbox.status_code == 200, inbox.text
    assert "frame-ancestors 'none'" in inbox.headers["content-security-policy"]


async def test_a_json_answer_is_never_sniffed_and_carries_no_page_policy(api):
    health = await api.get("/health")

    assert health.headers["x-content-type-options"] == "nosniff"
    assert "content-security-policy" not in health.headers


def test_no_template_holds_an_inline_script_or_event_handler():
    """The policy would block them; a page that needs script loads it from /static."""
    offending = []
    for template in TEMPLATES.rglob("*.html"):
        text = template.read_text()
        inline_scripts = [tag for tag in re.findall(r"<script\b[^>]*>", text) if "src=" not in tag]
        handlers = re.findall(r"\son[a-z]+\s*=", text)
        if inline_scripts or handlers:
            offending.append(f"{template.name}: {inline_scripts + handlers}")
    assert offending == []


async def test_production_adds_hsts_to_every_response():
    async def page(request):
        return HTMLResponse("<p>ok</p>")

    app = SecurityHeaders(Starlette(routes=[Route("/", page)]), hsts=True)
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="https://onething.test") as client:
        response = await client.get("/")

    assert response.headers["strict-transport-security"].startswith("max-age=31536000")


async def test_cross_origin_requests_are_answered_for_the_codec_server_only(api):
    preflight = {"Origin": UI_ORIGIN, "Access-Control-Request-Method": "POST"}

    codec = await api.options("/codec/decode", headers=preflight)
    cases = await api.options("/cases", headers=preflight)
    listed = await api.get("/health", headers={"Origin": UI_ORIGIN})

    assert codec.headers["access-control-allow-origin"] == UI_ORIGIN
    assert "access-control-allow-origin" not in cases.headers
    assert "access-control-allow-origin" not in listed.headers

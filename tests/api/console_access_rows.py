"""The web console's access rows (one per console route × role) and the helpers console tests share.

``CONSOLE_ROUTES_A1`` covers the session, applicant and window-clerk pages; the officer and
supervisor pages add ``CONSOLE_ROUTES_A2``. tests/api/test_console_access.py requests each row's
``url`` as every role and checks every route of ``api.console`` has a row.

Roles: ``anonymous`` (no session), and the demo accounts in ``CONSOLE_USERS``. The case in a
row's url (``{case_id}``) is a birth case that applicant1 submitted on the hospital channel, so
the hospital's clerk is its accepting unit and the hospital's officer works its first steps.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

import httpx

from domain.workcalendar import SHANGHAI

CONSOLE_ROLES = ("anonymous", "applicant", "clerk", "officer", "supervisor", "admin")
CONSOLE_USERS = {
    "applicant": "applicant1",
    "clerk": "hospital_clerk",
    "officer": "hospital_officer",
    "supervisor": "supervisor",
    "admin": "admin",
}


@dataclass(frozen=True)
class ConsoleRow:
    """A console route and the status each role gets, in CONSOLE_ROLES order.

    ``url`` fills the route's placeholders (``{case_id}``, ``{thing}``…) with ``str.format``.
    POST rows send ``form`` plus the session's CSRF token. For anonymous, 303 means a redirect
    to ``/login`` (with ``next`` for a page that needs a login); a role refused gets 403.
    """

    method: str
    path: str
    url: str
    statuses: tuple[int, int, int, int, int, int]
    form: dict[str, str] = field(default_factory=dict)

    def status_for(self, role: str) -> int:
        return self.statuses[CONSOLE_ROLES.index(role)]


#                anonymous applicant clerk officer supervisor admin
APPLICANT_PAGE = (303, 200, 403, 403, 403, 403)
APPLICANT_ACTION = (303, 303, 403, 403, 403, 403)
CLERK_PAGE = (303, 403, 200, 403, 403, 403)
CLERK_AWAY = (303, 403, 303, 403, 403, 403)

CONSOLE_ROUTES_A1: list[ConsoleRow] = [
    ConsoleRow("GET", "/", "/", (303, 303, 303, 303, 303, 303)),
    ConsoleRow("GET", "/login", "/login", (200, 303, 303, 303, 303, 303)),
    # Without the login page's own token (keyed by its nonce cookie) a login is refused, whoever sends it.
    ConsoleRow("POST", "/login", "/login", (403, 403, 403, 403, 403, 403), {"username": "admin", "password": "demo"}),
    ConsoleRow("POST", "/logout", "/logout", (303, 303, 303, 303, 303, 303)),
    # The site icon, for anyone: a permanent redirect to /static/favicon.svg.
    ConsoleRow("GET", "/favicon.ico", "/favicon.ico", (301, 301, 301, 301, 301, 301)),
    ConsoleRow("GET", "/apply", "/apply", APPLICANT_PAGE),
    ConsoleRow("GET", "/apply/{thing}", "/apply/birth", APPLICANT_PAGE),
    # With no situation answers the page asks the questions again: nothing is submitted.
    ConsoleRow("POST", "/apply/{thing}", "/apply/birth", APPLICANT_PAGE),
    ConsoleRow("GET", "/my/cases", "/my/cases", APPLICANT_PAGE),
    # An uploaded file (none with this hash): those who read the case's files learn it is not there;
    # supervision never opens files.
    ConsoleRow("GET", "/files/{case_id}/{sha256}", "/files/{case_id}/" + "0" * 64, (303, 404, 404, 404, 403, 403)),
    # Sign-in through an identity provider: none is configured in the tests' settings.
    ConsoleRow("GET", "/login/oidc", "/login/oidc", (404, 404, 404, 404, 404, 404)),
    ConsoleRow("GET", "/login/oidc/callback", "/login/oidc/callback", (404, 404, 404, 404, 404, 404)),
    # The SMS link of a walk-in case: public, the link is the key; a made-up one finds nothing.
    ConsoleRow("GET", "/follow/{token}", "/follow/made-up.token", (404, 404, 404, 404, 404, 404)),
    ConsoleRow("POST", "/follow/{token}/rating", "/follow/made-up.token/rating", (404, 404, 404, 404, 404, 404)),
    ConsoleRow("GET", "/my/cases/{case_id}", "/my/cases/{case_id}", APPLICANT_PAGE),
    # An empty supplement or rating form is sent back to the case page with a message.
    ConsoleRow("POST", "/my/cases/{case_id}/supplement", "/my/cases/{case_id}/supplement", APPLICANT_ACTION),
    # Without a file the applicant is sent back to the case page to choose one.
    ConsoleRow(
        "POST",
        "/my/cases/{case_id}/materials/{material}",
        "/my/cases/{case_id}/materials/mother_id_card",
        APPLICANT_ACTION,
    ),
    ConsoleRow("POST", "/my/cases/{case_id}/rating", "/my/cases/{case_id}/rating", APPLICANT_ACTION),
    # Without a reason, a withdrawal is sent back (to the case page; the window's form comes back 422).
    ConsoleRow("POST", "/my/cases/{case_id}/withdraw", "/my/cases/{case_id}/withdraw", APPLICANT_ACTION),
    ConsoleRow("GET", "/window/cases/{case_id}/end", "/window/cases/{case_id}/end", CLERK_PAGE),
    ConsoleRow(
        "POST", "/window/cases/{case_id}/{how}", "/window/cases/{case_id}/decline", (303, 403, 422, 403, 403, 403)
    ),
    ConsoleRow("GET", "/window", "/window", CLERK_PAGE),
    ConsoleRow("GET", "/window/apply/{thing}", "/window/apply/birth", CLERK_PAGE),
    ConsoleRow("POST", "/window/apply/{thing}", "/window/apply/birth", CLERK_PAGE),
    ConsoleRow("GET", "/window/cases/{case_id}/notice", "/window/cases/{case_id}/notice", CLERK_PAGE),
    # The case owes nothing: the 补正 page (and its form) send the clerk back to the notice.
    ConsoleRow("GET", "/window/cases/{case_id}/supplement", "/window/cases/{case_id}/supplement", CLERK_AWAY),
    ConsoleRow(
        "POST",
        "/window/cases/{case_id}/supplement",
        "/window/cases/{case_id}/supplement",
        CLERK_AWAY,
        {"materials.marriage_certificate": "收件-1"},
    ),
]


# --- helpers for console tests -------------------------------------------------------------

_CSRF = re.compile(r'name="csrf_token" value="([^"]*)"')
_IDEMPOTENCY = re.compile(r'name="idempotency_key" value="([^"]*)"')


def csrf_of(html: str) -> str:
    """The CSRF token of the first form on a page."""
    match = _CSRF.search(html)
    assert match is not None, "no csrf_token on the page"
    return match.group(1)


def idempotency_key_of(html: str) -> str:
    """The idempotency key of the first state-changing form on a page."""
    match = _IDEMPOTENCY.search(html)
    assert match is not None, "no idempotency_key on the page"
    return match.group(1)


async def console_login(
    client: httpx.AsyncClient, username: str, password: str = "demo", expected_status: int = 303
) -> httpx.Response:
    """Log in through the login page as a browser does (the client's previous session is dropped)."""
    client.cookies.clear()
    page = await client.get("/login")
    assert page.status_code == 200, page.text
    response = await client.post(
        "/login", data={"username": username, "password": password, "csrf_token": csrf_of(page.text)}
    )
    assert response.status_code == expected_status, response.text
    return response


async def session_csrf(client: httpx.AsyncClient) -> str:
    """The CSRF token of the logged-in session, read from the role's start page (its logout form)."""
    page = await client.get("/", follow_redirects=True)
    return csrf_of(page.text)


def flat_form(form: dict[str, Any], prefix: str = "") -> dict[str, str]:
    """A JSON application form as the console's inputs post it: dotted names, times as
    ``datetime-local`` values in Beijing time, handed-in materials as ``materials.<code>``."""
    values: dict[str, str] = {}
    for key, value in form.items():
        path = f"{prefix}{key}"
        if isinstance(value, dict):
            values.update(flat_form(value, f"{path}."))
        elif value is None:
            continue
        elif key.endswith("_at"):
            values[path] = datetime.fromisoformat(str(value)).astimezone(SHANGHAI).strftime("%Y-%m-%dT%H:%M")
        else:
            values[path] = str(value)
    return values


def field_error(html: str, path: str) -> str | None:
    """The error the page shows beside the input ``path``, or None."""
    match = re.search(rf'data-testid="error-{re.escape(path)}">([^<]*)<', html)
    return match.group(1) if match else None


# --- officer and supervisor pages (helper A2) --------------------------------------------------
# Placeholders besides A1's: {task_id} is the case's birth-certificate task (the hospital officer's),
# {notice_id} a 督办 notice the supervisor issued on it. Officers, window clerks (出件) and
# supervisors (回访) have inboxes; a task of another unit or role is 404 to them, as a stranger's
# case is. Rows run in order: the officer claims, completes, then tries to return and refuse the
# completed task (a conflict, told on the task page: 303 back to it).

#                anonymous applicant clerk officer supervisor admin
INBOX_PAGE = (303, 403, 200, 200, 200, 403)
TASK_PAGE = (303, 403, 404, 200, 404, 403)
TASK_ACTION = (303, 403, 404, 303, 404, 403)
OFFICER_PAGE = (303, 403, 403, 200, 403, 403)
DASHBOARD_PAGE = (303, 403, 403, 403, 200, 200)

CONSOLE_ROUTES_A2: list[ConsoleRow] = [
    ConsoleRow("GET", "/inbox", "/inbox", INBOX_PAGE),
    ConsoleRow("GET", "/inbox/{task_id}", "/inbox/{task_id}", TASK_PAGE),
    ConsoleRow("POST", "/inbox/{task_id}/claim", "/inbox/{task_id}/claim", TASK_ACTION),
    ConsoleRow(
        "POST",
        "/inbox/{task_id}/complete",
        "/inbox/{task_id}/complete",
        TASK_ACTION,
        {"result.certificate_no": "X330102001"},
    ),
    ConsoleRow(
        "POST",
        "/inbox/{task_id}/return",
        "/inbox/{task_id}/return",
        TASK_ACTION,
        {"missing": "mother_id_card", "reason": "照片不清晰"},
    ),
    ConsoleRow("POST", "/inbox/{task_id}/refuse", "/inbox/{task_id}/refuse", TASK_ACTION, {"reason": "不符合条件"}),
    # The task operations (after the refusal above closed the case, each is a 409 flashed on the task page).
    ConsoleRow("POST", "/inbox/{task_id}/unclaim", "/inbox/{task_id}/unclaim", TASK_ACTION),
    ConsoleRow(
        "POST", "/inbox/{task_id}/reassign", "/inbox/{task_id}/reassign", TASK_ACTION, {"to": "hospital_330102_officer"}
    ),
    ConsoleRow(
        "POST",
        "/inbox/{task_id}/transfer",
        "/inbox/{task_id}/transfer",
        TASK_ACTION,
        {"unit": "hospital_330106_fybj", "reason": "出生地属西湖区"},
    ),
    ConsoleRow("POST", "/inbox/{task_id}/suspend", "/inbox/{task_id}/suspend", TASK_ACTION, {"reason": "需医学鉴定"}),
    ConsoleRow("POST", "/inbox/{task_id}/resume", "/inbox/{task_id}/resume", TASK_ACTION),
    ConsoleRow(
        "POST",
        "/inbox/{task_id}/extension",
        "/inbox/{task_id}/extension",
        TASK_ACTION,
        {"working_days": "2", "reason": "需会诊"},
    ),
    ConsoleRow("GET", "/inbox/notices", "/inbox/notices", OFFICER_PAGE),
    ConsoleRow(
        "POST",
        "/inbox/notices/{notice_id}/ack",
        "/inbox/notices/{notice_id}/ack",
        (303, 403, 403, 303, 403, 403),
        {"reply": "已办结"},
    ),
    ConsoleRow("GET", "/dashboard", "/dashboard", DASHBOARD_PAGE),
    ConsoleRow("GET", "/dashboard/overdue", "/dashboard/overdue", DASHBOARD_PAGE),
    ConsoleRow("GET", "/dashboard/warnings", "/dashboard/warnings", DASHBOARD_PAGE),
    # 延期审批 is a supervisor's decision (an admin manages, not supervises); no request pending: 409, flashed.
    ConsoleRow("GET", "/dashboard/extensions", "/dashboard/extensions", (303, 403, 403, 403, 200, 403)),
    ConsoleRow("GET", "/organisation", "/organisation", (303, 403, 200, 200, 200, 200)),
    ConsoleRow(
        "POST",
        "/dashboard/extensions/{task_id}/{decision}",
        "/dashboard/extensions/{task_id}/approve",
        (303, 403, 403, 403, 303, 403),
    ),
    ConsoleRow("GET", "/dashboard/cases", "/dashboard/cases", DASHBOARD_PAGE),
    ConsoleRow("GET", "/dashboard/cases/{case_id}", "/dashboard/cases/{case_id}", DASHBOARD_PAGE),
    # 督办 is the supervisor's alone: an admin may read the case but not act on it.
    ConsoleRow(
        "POST",
        "/dashboard/cases/{case_id}/supervise",
        "/dashboard/cases/{case_id}/supervise",
        (303, 403, 403, 403, 303, 403),
        {"step": "vaccination_certificate", "kind": "notice", "message": "请加快办理"},
    ),
    ConsoleRow("GET", "/dashboard/ratings", "/dashboard/ratings", DASHBOARD_PAGE),
    ConsoleRow("GET", "/dashboard/report", "/dashboard/report", DASHBOARD_PAGE),
    ConsoleRow("GET", "/dashboard/export.csv", "/dashboard/export.csv", DASHBOARD_PAGE),
]

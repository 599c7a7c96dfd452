"""A browser-like client for the console tests: one cookie jar per user, logging in through the
login form, reading pages' forms (their hidden CSRF token and idempotency key) and the elements
marked with ``data-testid``, and sending forms back as a browser would."""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from html.parser import HTMLParser
from typing import Any

import httpx

VOID_ELEMENTS = {"area", "base", "br", "col", "embed", "hr", "img", "input", "link", "meta", "source", "track", "wbr"}


@dataclass
class Element:
    tag: str
    attrs: dict[str, str]
    text: str = ""


@dataclass
class Form:
    action: str
    method: str
    fields: dict[str, str] = field(default_factory=dict)


class _PageParser(HTMLParser):
    """Collects every form (with its hidden inputs) and every element carrying ``data-testid``."""

    def __init__(self) -> None:
        super().__init__()
        self.forms: list[Form] = []
        self.elements: list[Element] = []
        self._open: list[tuple[str, Element | None]] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        values = {name: value or "" for name, value in attrs}
        if tag == "form":
            self.forms.append(Form(values.get("action", ""), values.get("method", "get").lower()))
        if tag == "input" and values.get("type") == "hidden" and self.forms and "name" in values:
            self.forms[-1].fields[values["name"]] = values.get("value", "")
        self._separate()  # cells and blocks read as separate words: "<td>1</td><td>0</td>" is "1 0"
        element = Element(tag, values) if "data-testid" in values else None
        if element is not None:
            self.elements.append(element)
        if tag not in VOID_ELEMENTS:
            self._open.append((tag, element))

    def handle_endtag(self, tag: str) -> None:
        self._separate()
        for index in range(len(self._open) - 1, -1, -1):
            if self._open[index][0] == tag:
                del self._open[index:]
                return

    def _separate(self) -> None:
        for _, element in self._open:
            if element is not None:
                element.text += " "

    def handle_data(self, data: str) -> None:
        for _, element in self._open:
            if element is not None:
                element.text += data


class Page:
    """A fetched HTML page."""

    def __init__(self, response: httpx.Response) -> None:
        self.response = response
        self.status = response.status_code
        self.html = response.text
        parser = _PageParser()
        parser.feed(self.html)
        self.forms = parser.forms
        self.elements = parser.elements

    def all(self, testid: str) -> list[Element]:
        return [element for element in self.elements if element.attrs.get("data-testid") == testid]

    def one(self, testid: str) -> Element:
        found = self.all(testid)
        assert len(found) == 1, f"{len(found)} elements with data-testid={testid!r}"
        return found[0]

    def text(self, testid: str) -> str:
        return " ".join(self.one(testid).text.split())

    def form(self, action: str) -> Form:
        found = [form for form in self.forms if form.action == action]
        assert found, f"no form posting to {action!r}; forms: {[form.action for form in self.forms]}"
        return found[0]


class ConsoleUser:
    """One user's browser: its own cookies, the same app."""

    def __init__(self, client: httpx.AsyncClient) -> None:
        self.client = client

    async def get(self, path: str, **params: str) -> Page:
        return Page(await self.client.get(path, params=params or None))

    async def login(self, username: str, password: str = "demo") -> None:
        page = await self.get("/login")
        form = page.form("/login")
        response = await self.client.post("/login", data={**form.fields, "username": username, "password": password})
        assert response.status_code == 303, response.text

    async def submit(self, page_path: str, action: str, data: dict[str, Any] | None = None) -> httpx.Response:
        """Open ``page_path`` and send its form posting to ``action`` with ``data`` filled in."""
        form = (await self.get(page_path)).form(action)
        return await self.send(form, data)

    async def send(self, form: Form, data: dict[str, Any] | None = None) -> httpx.Response:
        """Send a form already read from a page (sending it twice is a double submit)."""
        return await self.client.post(form.action, data={**form.fields, **(data or {})})

    async def follow(self, response: httpx.Response) -> Page:
        """The page a 303 leads to (with the flash message it left)."""
        assert response.status_code == 303, response.text
        return await self.get(response.headers["location"])


ConsoleUsers = Callable[[str | None], Awaitable[ConsoleUser]]


@asynccontextmanager
async def console_users(api: httpx.AsyncClient) -> AsyncIterator[ConsoleUsers]:
    """Makes logged-in browsers (``None``: anonymous) on the app the ``api`` fixture serves."""
    opened: list[httpx.AsyncClient] = []

    async def make(username: str | None) -> ConsoleUser:
        # The same ASGI app as the JSON client, with a cookie jar of its own.
        client = httpx.AsyncClient(transport=api._transport, base_url=api.base_url)
        opened.append(client)
        user = ConsoleUser(client)
        if username is not None:
            await user.login(username)
        return user

    try:
        yield make
    finally:
        for client in opened:
            await client.aclose()

"""A small reverse proxy, run in a thread of the test process: what a load balancer in front
of several API replicas does, as far as the API can tell.

- Round-robin over the upstreams.
- A refused connection (nothing was sent) marks that upstream down for a while and the
  request goes to the next one, like nginx's ``proxy_next_upstream error`` with
  ``max_fails``/``fail_timeout``.
- An upstream that fails once the request is on its way answers 502: it may have acted,
  so only the client, with its Idempotency-Key, may repeat the request.
- ``X-Forwarded-For`` is set to the address the proxy saw (replacing any the client sent:
  this proxy is the edge), so an API that trusts the proxy sees each client's own address.
"""

from __future__ import annotations

import itertools
import threading
import time
from collections.abc import Awaitable, Callable, MutableMapping
from dataclasses import dataclass
from typing import Any

import httpx
import uvicorn

from ops.processes import free_port

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]

# Headers about one hop only (RFC 9110 §7.6.1), and those this proxy sets itself.
HOP_BY_HOP = {
    "connection",
    "keep-alive",
    "proxy-authenticate",
    "proxy-authorization",
    "te",
    "trailer",
    "transfer-encoding",
    "upgrade",
    "host",
    "content-length",
    "x-forwarded-for",
    "x-forwarded-proto",
}


@dataclass(frozen=True)
class Relayed:
    """One request the proxy handled: the upstream it went to (None: none could be reached),
    the status the client got, and whether that was the upstream's own answer (not a 502
    of the proxy's)."""

    client: str
    method: str
    path: str
    upstream: str | None
    status: int
    answered: bool


class RoundRobinProxy:
    def __init__(self, upstreams: list[str], down_seconds: float = 3.0, read_timeout: float = 90.0) -> None:
        self.upstreams = upstreams
        self.down_seconds = down_seconds
        self.read_timeout = read_timeout
        self.port = free_port()
        self.base_url = f"http://127.0.0.1:{self.port}"
        self.relayed: list[Relayed] = []
        self._turn = itertools.count()
        self._down_until: dict[str, float] = {}
        self._http: httpx.AsyncClient | None = None
        config = uvicorn.Config(
            self.app,
            host="127.0.0.1",
            port=self.port,
            log_level="warning",
            # The proxy reads the TCP peer, never a header a client sent.
            proxy_headers=False,
            lifespan="on",
            interface="asgi3",
        )
        self._server = uvicorn.Server(config)
        self._thread = threading.Thread(target=self._server.run, name="reverse-proxy", daemon=True)

    def __enter__(self) -> RoundRobinProxy:
        self._thread.start()
        deadline = time.monotonic() + 10
        while not self._server.started:
            if time.monotonic() > deadline or not self._thread.is_alive():
                raise RuntimeError("the reverse proxy did not start")
            time.sleep(0.05)
        return self

    def back_up(self, upstream: str) -> None:
        """An upstream passed its health check again: send it requests at once, as a load
        balancer does, rather than after its down mark runs out."""
        self._down_until.pop(upstream, None)

    def __exit__(self, *exc_info: object) -> None:
        self._server.should_exit = True
        self._thread.join(timeout=15)

    # -- ASGI --------------------------------------------------------------------

    async def app(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "lifespan":
            await self._lifespan(receive, send)
        elif scope["type"] == "http":
            await self._relay(scope, receive, send)

    async def _lifespan(self, receive: Receive, send: Send) -> None:
        while True:
            message = await receive()
            if message["type"] == "lifespan.startup":
                self._http = httpx.AsyncClient(
                    timeout=httpx.Timeout(self.read_timeout, connect=2.0),
                    limits=httpx.Limits(max_connections=400, max_keepalive_connections=100),
                )
                await send({"type": "lifespan.startup.complete"})
            elif message["type"] == "lifespan.shutdown":
                if self._http is not None:
                    await self._http.aclose()
                await send({"type": "lifespan.shutdown.complete"})
                return

    async def _relay(self, scope: Scope, receive: Receive, send: Send) -> None:
        assert self._http is not None
        body = bytearray()
        while True:
            message = await receive()
            body += message.get("body", b"")
            if not message.get("more_body"):
                break
        client = scope["client"][0] if scope.get("client") else "unknown"
        headers = [
            (name.decode("latin-1"), value.decode("latin-1"))
            for name, value in scope["headers"]
            if name.decode("latin-1").lower() not in HOP_BY_HOP
        ]
        headers += [("x-forwarded-for", client), ("x-forwarded-proto", scope["scheme"])]
        target = scope["raw_path"].decode("latin-1") if scope.get("raw_path") else scope["path"]
        if scope.get("query_string"):
            target += "?" + scope["query_string"].decode("latin-1")

        def note(upstream: str | None, status: int, answered: bool = False) -> None:
            self.relayed.append(Relayed(client, scope["method"], scope["path"], upstream, status, answered))

        for upstream in self._candidates():
            request = self._http.build_request(scope["method"], upstream + target, headers=headers, content=bytes(body))
            try:
                response = await self._http.send(request, stream=True)
            except (httpx.ConnectError, httpx.ConnectTimeout):
                # Nothing reached the upstream: another one may take the request.
                self._down_until[upstream] = time.monotonic() + self.down_seconds
                continue
            except httpx.TransportError:
                note(upstream, 502)
                await _answer(send, 502, b"upstream failed")
                return
            try:
                body_back = b"".join([chunk async for chunk in response.aiter_raw()])
            except httpx.TransportError:
                note(upstream, 502)
                await _answer(send, 502, b"upstream failed mid-answer")
                return
            finally:
                await response.aclose()
            note(upstream, response.status_code, answered=True)
            await _answer_from(send, response, body_back)
            return
        note(None, 502)
        await _answer(send, 502, b"no upstream available")

    def _candidates(self) -> list[str]:
        """The upstreams in this request's round-robin order; those marked down go last,
        so a request still has somewhere to go when every mark is stale."""
        start = next(self._turn)
        ordered = [self.upstreams[(start + n) % len(self.upstreams)] for n in range(len(self.upstreams))]
        now = time.monotonic()
        return sorted(ordered, key=lambda upstream: self._down_until.get(upstream, 0.0) > now)


def _answer_from(send: Send, response: httpx.Response, body: bytes) -> Awaitable[None]:
    """The upstream's answer, whole (responses are buffered: no streams are relayed)."""
    headers = [
        (name.encode("latin-1"), value.encode("latin-1"))
        for name, value in response.headers.multi_items()
        if name.lower() not in HOP_BY_HOP
    ]
    headers.append((b"content-length", str(len(body)).encode()))
    return _send_whole(send, response.status_code, headers, body)


async def _send_whole(send: Send, status: int, headers: list[tuple[bytes, bytes]], body: bytes) -> None:
    await send({"type": "http.response.start", "status": status, "headers": headers})
    await send({"type": "http.response.body", "body": body})


async def _answer(send: Send, status: int, text: bytes) -> None:
    headers = [(b"content-type", b"text/plain"), (b"content-length", str(len(text)).encode())]
    await _send_whole(send, status, headers, text)

"""Run a fake ERP as a real HTTP server on 127.0.0.1 (uvicorn in a thread), and inject faults.

The adapters under test use their real httpx client against these servers; nothing is patched.
"""

from __future__ import annotations

import asyncio
import random
import socket
import threading
import time
from collections.abc import Awaitable, Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

import uvicorn
from starlette.requests import Request
from starlette.responses import JSONResponse, PlainTextResponse, Response
from starlette.types import ASGIApp, Receive, Scope, Send


@dataclass
class Faults:
    """What goes wrong next. Mutated by tests while the server runs; read by the fake's handlers."""

    down: bool = False  # every request: 503 with Retry-After
    throttle: int = 0  # the next N requests: 429 with Retry-After
    retry_after: str = "7"
    lose_after_save: int = 0  # the next N saving requests save, then answer 502
    lose_after_save_rate: float = 0.0  # ... or this share of them, at random
    hang_after_save: int = 0  # the next N saving requests save, then hang past the client timeout
    hang_seconds: float = 0.8  # past the tests' 0.5 s client timeout
    latency: float = 0.0  # added to every request
    junk: str | None = None  # every answer: this body, 200, as JSON (a broken proxy, a wrong URL)
    seed: int = 11
    requests: int = 0
    saves: int = 0
    random: random.Random = field(init=False)

    def __post_init__(self) -> None:
        self.random = random.Random(self.seed)

    def before(self) -> Response | None:
        """A failure answered before the request reaches the ERP's logic, or None."""
        self.requests += 1
        if self.down:
            return PlainTextResponse("Service Unavailable", 503, headers={"Retry-After": self.retry_after})
        if self.throttle > 0:
            self.throttle -= 1
            return PlainTextResponse("Too Many Requests", 429, headers={"Retry-After": self.retry_after})
        return None

    async def after_save(self, response: Response) -> Response:
        """The ERP saved the document; decide whether the answer gets back to the client."""
        self.saves += 1
        if self.hang_after_save > 0:
            self.hang_after_save -= 1
            await asyncio.sleep(self.hang_seconds)
            return response
        if self.lose_after_save > 0 or (
            self.lose_after_save_rate and self.random.random() < self.lose_after_save_rate
        ):
            self.lose_after_save = max(0, self.lose_after_save - 1)
            return PlainTextResponse("Bad Gateway", 502)
        return response


class FaultMiddleware:
    """Applies `Faults.before` and the latency to every HTTP request of a fake."""

    def __init__(self, app: ASGIApp, faults: Faults) -> None:
        self.app = app
        self.faults = faults

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        if self.faults.latency:
            await asyncio.sleep(self.faults.latency)
        refused = self.faults.before()
        if refused is None and self.faults.junk is not None:
            refused = Response(self.faults.junk, 200, media_type="application/json")
        if refused is not None:
            await refused(scope, receive, send)
            return
        await self.app(scope, receive, send)


Handler = Callable[[Request], Awaitable[Response]]


async def json_body(request: Request) -> Any:
    raw = await request.body()
    if not raw:
        return {}
    try:
        return await request.json()
    except ValueError:
        return None


def json_response(data: Any, status: int = 200, headers: dict[str, str] | None = None) -> JSONResponse:
    return JSONResponse(data, status, headers=headers)


def free_socket() -> socket.socket:
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    # Accepted sockets inherit this; without it Nagle + delayed ACK add 40 ms to every answer.
    sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    sock.bind(("127.0.0.1", 0))
    return sock


@contextmanager
def serve(app: ASGIApp) -> Iterator[str]:
    """Serve `app` on a free local port until the block ends; yields the base URL."""
    sock = free_socket()
    port = sock.getsockname()[1]
    config = uvicorn.Config(
        app, log_level="warning", lifespan="off", access_log=False, timeout_graceful_shutdown=1, backlog=512
    )
    server = uvicorn.Server(config)
    thread = threading.Thread(
        target=server.run, kwargs={"sockets": [sock]}, daemon=True, name=f"fake-erp-{port}"
    )
    thread.start()
    deadline = time.monotonic() + 10
    while not server.started:
        if not thread.is_alive() or time.monotonic() > deadline:
            raise RuntimeError("the fake ERP server did not start")
        time.sleep(0.01)
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        thread.join(timeout=5)
        sock.close()

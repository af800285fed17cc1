"""A fake platform server: an aiohttp app on 127.0.0.1 (a free port) in a thread with its own loop.

Each platform fake (slack.py, telegram.py, whatsapp.py, bridge.py) adds its routes and
records what it was sent. `Faults` makes the send endpoints answer 429 (with a
Retry-After) or 5xx to a share of requests, drawn from a seeded generator so a run can be
repeated. `deliver` lets the fake act as the platform towards our webhooks, over HTTP.
"""

from __future__ import annotations

import asyncio
import random
import threading
from collections.abc import Awaitable, Callable, Coroutine
from dataclasses import dataclass, field
from typing import Any, TypeVar

import aiohttp
from aiohttp import web

T = TypeVar("T")


@dataclass
class Faults:
    """What share of send requests fail, and how."""

    rate_429: float = 0.0
    rate_5xx: float = 0.0
    retry_after: float = 1.0
    seed: int = 7
    counts: dict[str, int] = field(default_factory=lambda: {"ok": 0, "429": 0, "5xx": 0})

    def __post_init__(self) -> None:
        self._random = random.Random(self.seed)

    def draw(self) -> str:
        """"429", "5xx" or "ok" for the next request."""
        roll = self._random.random()
        outcome = "429" if roll < self.rate_429 else "5xx" if roll < self.rate_429 + self.rate_5xx else "ok"
        self.counts[outcome] += 1
        return outcome


@dataclass
class Recorded:
    method: str
    path: str
    headers: dict[str, str]
    body: Any


class FakeServer:
    def __init__(self) -> None:
        self.app = web.Application(client_max_size=64 * 1024 * 1024)
        self.requests: list[Recorded] = []
        self.faults = Faults()
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self._loop.run_forever, daemon=True, name=type(self).__name__)
        self._runner: web.AppRunner | None = None
        self.port = 0
        self._client: aiohttp.ClientSession | None = None
        self.app.router.add_get("/_fake/state", self._state)

    def state(self) -> dict[str, Any]:
        """What the fake recorded, for a benchmark that runs it in another process (`tests.fakes.serve`)."""
        return {"faults": dict(self.faults.counts)}

    async def _state(self, _request: web.Request) -> web.Response:
        return web.json_response(self.state())

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self) -> FakeServer:
        self._thread.start()
        self.call(self._start())
        return self

    async def _start(self) -> None:
        self._runner = web.AppRunner(self.app, handle_signals=False, access_log=None)
        await self._runner.setup()
        site = web.TCPSite(self._runner, "127.0.0.1", 0)
        await site.start()
        self.port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]

    def stop(self) -> None:
        async def _stop() -> None:
            if self._client is not None:
                await self._client.close()
            await self.on_stop()
            if self._runner is not None:
                await self._runner.cleanup()

        self.call(_stop())
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(timeout=5)

    async def on_stop(self) -> None:
        """Close what a subclass keeps open (long polls, websockets)."""

    def call(self, coro: Coroutine[Any, Any, T], timeout: float = 30) -> T:
        """Run `coro` on the fake's loop from a thread that has no running loop."""
        return asyncio.run_coroutine_threadsafe(coro, self._loop).result(timeout)

    async def acall(self, coro: Coroutine[Any, Any, T]) -> T:
        """Run `coro` on the fake's loop and await it from another loop (the test's)."""
        return await asyncio.wrap_future(asyncio.run_coroutine_threadsafe(coro, self._loop))

    def record(self, request: web.Request, body: Any) -> None:
        self.requests.append(Recorded(request.method, request.path, dict(request.headers), body))

    def paths(self) -> list[str]:
        return [r.path for r in self.requests]

    async def post(self, url: str, raw: bytes, headers: dict[str, str]) -> tuple[int, str]:
        """POST as the platform does to one of our webhooks; returns (status, body)."""
        if self._client is None:
            self._client = aiohttp.ClientSession()
        async with self._client.post(url, data=raw, headers=headers) as response:
            return response.status, await response.text()

    async def get(self, url: str, params: dict[str, str] | None = None) -> tuple[int, str]:
        if self._client is None:
            self._client = aiohttp.ClientSession()
        async with self._client.get(url, params=params) as response:
            return response.status, (await response.read()).decode("utf-8", "replace")


def wait_for(predicate: Callable[[], Any], timeout: float = 10.0, interval: float = 0.02) -> Awaitable[Any]:
    """Poll `predicate` on the caller's loop until it returns something truthy; fail after `timeout`."""

    async def _wait() -> Any:
        deadline = asyncio.get_running_loop().time() + timeout
        while True:
            value = predicate()
            if value:
                return value
            if asyncio.get_running_loop().time() > deadline:
                raise AssertionError(f"timed out after {timeout}s waiting for {getattr(predicate, '__name__', predicate)}")
            await asyncio.sleep(interval)

    return _wait()

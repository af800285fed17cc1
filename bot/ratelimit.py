"""Outbound rate limiting per platform scope: one chat, one group, one bot or phone number.

Every send names the buckets it counts against, narrowest first, e.g. Telegram's
`("telegram:chat:5001", 1/s)` then `("telegram:bot", 30/s)`. A bucket is a GCRA (generic
cell rate algorithm) schedule: it remembers when its next slot is free. A send first waits
until its narrow buckets allow it (a paused chat holds nobody else up), then queues for the
platform-wide bucket, whose slots a pump hands out as they come free: the send with the
highest priority first (the outbox gives a thread's remaining length, so long threads,
which the per-chat limit makes slow, start early and the last message goes out sooner),
first come first served among equals.

Slots are taken when a request goes out, never reserved ahead, so a refused send (429, 5xx)
gives its slot straight back (`refund`): the platform counted no message, and the next
message in the queue goes at once. The platform limits messages, and with a third of the
requests refused that is what keeps delivery near the floor the limits impose. A
Retry-After pauses the bucket the platform named (the chat, or the whole bot or number).
"""

from __future__ import annotations

import asyncio
import contextlib
import heapq
import itertools
import time
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass

from bot.channels.base import RateLimited


@dataclass(frozen=True)
class Rate:
    """`count` messages per `per` seconds; `burst` of them may go back to back."""

    count: int
    per: float = 1.0
    burst: int = 1

    def __post_init__(self) -> None:
        if self.count < 1 or self.per <= 0 or self.burst < 1:
            raise ValueError(f"bad rate {self}: count and burst >= 1, per > 0")

    @property
    def interval(self) -> float:
        return self.per / self.count

    @property
    def tolerance(self) -> float:
        return (self.burst - 1) * self.interval


Bucket = tuple[str, Rate]


class ScopedRateLimited(RateLimited):
    """A 429 that says what the platform limited: one chat (`chat`) or the whole bot/number (`all`)."""

    def __init__(self, retry_after: float, scope: str = "chat", detail: str | None = None) -> None:
        super().__init__(retry_after)
        self.scope = scope
        if detail:
            self.args = (f"{detail}; retry after {retry_after}s",)


def rate_limited(retry_after: float, scope: str = "chat", detail: str | None = None) -> RateLimited:
    return ScopedRateLimited(retry_after, scope, detail)


@dataclass
class Reservation:
    """Slots taken by one send; give them back with `RateLimiter.refund` if the platform refused it."""

    buckets: tuple[Bucket, ...]
    at: float


class RateLimiter:
    TICK = 0.01  # how often a waiting pump looks again, so a refunded slot is used at once

    def __init__(self, clock: Callable[[], float] = time.monotonic,
                 sleep: Callable[[float], Awaitable[object]] = asyncio.sleep) -> None:
        self.clock = clock
        self.sleep = sleep
        self._tat: dict[str, float] = {}  # theoretical arrival time of the next message, per bucket
        self._paused: dict[str, float] = {}  # a Retry-After: nothing goes out on the bucket before this
        self._queues: dict[str, list[tuple[float, int, asyncio.Future[None]]]] = {}
        self._pumps: dict[str, asyncio.Task[None]] = {}
        self._nudges: dict[str, asyncio.Event] = {}
        self._order = itertools.count()

    def _earliest(self, key: str, rate: Rate) -> float:
        return max(self._tat.get(key, float("-inf")) - rate.tolerance, self._paused.get(key, float("-inf")))

    def _take(self, key: str, rate: Rate, at: float) -> None:
        self._tat[key] = max(self._tat.get(key, at), at) + rate.interval

    def ready_at(self, buckets: Sequence[Bucket]) -> float:
        """The earliest time all `buckets` allow a send (nothing is taken)."""
        return max((self._earliest(k, r) for k, r in buckets), default=float("-inf"))

    async def acquire(self, buckets: Sequence[Bucket], priority: float = 0.0) -> Reservation:
        """Wait until a send may go out on every bucket, take the slots, and return them."""
        buckets = tuple(buckets)
        if not buckets:
            return Reservation(buckets, self.clock())
        narrow, (wide_key, wide_rate) = buckets[:-1], buckets[-1]
        while True:
            while (wait := self.ready_at(narrow) - self.clock()) > 0:
                await self.sleep(wait)
            await self._turn(wide_key, wide_rate, priority)
            now = self.clock()
            if self.ready_at(narrow) <= now:
                for key, rate in narrow:
                    self._take(key, rate, now)
                return Reservation(buckets, now)
            # Another send to the same chat went first while we queued: give the slot back, wait again.
            self._give_back(wide_key, wide_rate)

    async def _turn(self, key: str, rate: Rate, priority: float) -> None:
        """Returns when a slot of the shared bucket was taken for the caller."""
        queue = self._queues.setdefault(key, [])
        if not queue and self._earliest(key, rate) <= self.clock():
            self._take(key, rate, self.clock())
            return
        turn: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        heapq.heappush(queue, (-priority, next(self._order), turn))
        pump = self._pumps.get(key)
        if pump is None or pump.done():
            self._pumps[key] = asyncio.create_task(self._pump(key, rate, queue), name=f"ratelimit:{key}")
        try:
            await turn
        except asyncio.CancelledError:
            if turn.done() and not turn.cancelled():
                self._give_back(key, rate)  # granted as we were cancelled: nobody used it
            raise

    async def _pump(self, key: str, rate: Rate, queue: list[tuple[float, int, asyncio.Future[None]]]) -> None:
        nudge = self._nudges.setdefault(key, asyncio.Event())
        while queue:
            now = self.clock()
            wait = self._earliest(key, rate) - now
            if wait > 0:
                await self._idle(nudge, min(wait, self.TICK))
                continue
            _, _, turn = heapq.heappop(queue)
            if turn.done():
                continue
            self._take(key, rate, now)
            turn.set_result(None)

    async def _idle(self, nudge: asyncio.Event, seconds: float) -> None:
        """Sleep, but wake at once when a refund frees a slot (on the real clock)."""
        if self.sleep is not asyncio.sleep:
            await self.sleep(seconds)
            return
        nudge.clear()
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(nudge.wait(), seconds)

    def _give_back(self, key: str, rate: Rate) -> None:
        if key in self._tat:
            self._tat[key] = max(self.clock(), self._tat[key] - rate.interval)
        if key in self._nudges:
            self._nudges[key].set()

    def refund(self, reservation: Reservation) -> None:
        """The platform counted no message: the slot goes to the next send at once."""
        for key, rate in reservation.buckets:
            self._give_back(key, rate)

    def pause(self, key: str, seconds: float) -> None:
        """Nothing goes out on `key` for `seconds` (a Retry-After).

        The pause is kept apart from the bucket's schedule: the platform refused the request and
        counted no message, so when the pause ends the bucket allows what it allowed before (a
        chat with its burst unused sends its next messages back to back, not one a second).
        """
        until = self.clock() + max(0.0, seconds)
        self._paused[key] = max(self._paused.get(key, until), until)

    def floor(self, counts: dict[str, int], rates: dict[str, Rate]) -> float:
        """The least time `counts[key]` messages need on each bucket: the bound a benchmark compares to."""
        return max((max(0, n - rates[k].burst) * rates[k].interval for k, n in counts.items() if n > 0), default=0.0)

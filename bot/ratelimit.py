"""Outbound rate limiting per platform scope: one chat, one group, one bot or phone number.

Every send names the buckets it counts against, narrowest first, e.g. Telegram's
`("telegram:chat:5001", 1/s)` then `("telegram:bot", 30/s)`. A bucket is a GCRA (generic
cell rate algorithm) schedule: it remembers when its next slot is free, so waiting costs a
single sleep, not polling. The limiter waits until the narrow buckets allow a send now and
only then reserves a slot on every bucket, so a paused chat never holds a slot on the
bot-wide bucket that other chats could use.

A refused send (429, 5xx) gives its slot back: the platform counted no message. A
Retry-After pauses the bucket the platform named (the chat, or the whole bot/number).
"""

from __future__ import annotations

import asyncio
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
    def __init__(self, clock: Callable[[], float] = time.monotonic,
                 sleep: Callable[[float], Awaitable[object]] = asyncio.sleep) -> None:
        self.clock = clock
        self.sleep = sleep
        self._tat: dict[str, float] = {}  # theoretical arrival time of the next message, per bucket

    def _earliest(self, key: str, rate: Rate) -> float:
        return self._tat.get(key, float("-inf")) - rate.tolerance

    def ready_at(self, buckets: Sequence[Bucket]) -> float:
        """The earliest time all `buckets` allow a send (not reserved)."""
        return max((self._earliest(k, r) for k, r in buckets), default=float("-inf"))

    async def acquire(self, buckets: Sequence[Bucket]) -> Reservation:
        """Wait until a send may go out on every bucket, reserve it, and return the reservation."""
        buckets = tuple(buckets)
        narrow, wide = buckets[:-1], buckets[-1:]
        while True:
            now = self.clock()
            wait = self.ready_at(narrow) - now
            if wait <= 0:
                break
            await self.sleep(wait)
        at = max(now, self.ready_at(narrow), self.ready_at(wide))
        for key, rate in buckets:
            self._tat[key] = max(self._tat.get(key, at), at) + rate.interval
        if at > now:
            await self.sleep(at - now)
        return Reservation(buckets, at)

    def refund(self, reservation: Reservation) -> None:
        """The platform counted no message: free the slot for the next send."""
        now = self.clock()
        for key, rate in reservation.buckets:
            if key in self._tat:
                self._tat[key] = max(now, self._tat[key] - rate.interval)

    def pause(self, key: str, rate: Rate, seconds: float) -> None:
        """Nothing goes out on `key` for `seconds` (a Retry-After)."""
        until = self.clock() + max(0.0, seconds) + rate.tolerance
        self._tat[key] = max(self._tat.get(key, until), until)

    def floor(self, counts: dict[str, int], rates: dict[str, Rate]) -> float:
        """The least time `counts[key]` messages need on each bucket: the bound a benchmark compares to."""
        return max((max(0, n - rates[k].burst) * rates[k].interval for k, n in counts.items() if n > 0), default=0.0)

"""What every structured source shares: the protocol, the sink it feeds, storing, and backoff.

A source (MQTT, OPC UA, ...) is a long-running task: `await source.run(sink, stop)` keeps
it connected, reconnecting with backoff, until `stop` is set. It turns each message into
a machine signal and hands it to the sink (the `Runtime`) in two steps: `store` (committed,
deduplicated by source key) and, once the transport has been acknowledged, `process`.
Acknowledging only after the commit is what makes an at-least-once transport lose nothing;
the source key is what makes its redeliveries harmless.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import random
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol, runtime_checkable

from pydantic import SecretStr
from sqlalchemy.engine import Engine


class SignalSink(Protocol):
    """The part of `mfgos.runtime.Runtime` a source uses (signals/ may not import mfgos/)."""

    plant_id: str
    engine: Engine

    def receive(self, *, source: str, source_key: str, kind: str, payload: dict[str, Any],
                person_id: str | None = None, process: bool = True) -> Any:
        """Store the signal once per source key; returns an object with `signal_id` and `duplicate`."""
        ...

    def receive_many(self, source: str, events: Sequence[Incoming]) -> Sequence[Any]:
        """Store a batch in one transaction, once per source key; one result per event, in order."""
        ...

    def process_signal(self, signal_id: int) -> None: ...

    def process_signals(self, signal_ids: Sequence[int]) -> None:
        """Process stored signals in one transaction (each on its own if the batch fails)."""
        ...


@runtime_checkable
class SignalSource(Protocol):
    """A structured source: one module per protocol, listed in `signals.registry.SOURCES`."""

    name: str

    async def run(self, sink: SignalSink, stop: asyncio.Event) -> None:
        """Feed `sink` until `stop` is set; connection failures are retried here, never raised."""
        ...


class SignalSettings(Protocol):
    """The settings the sources read (`mfgos.config.Settings` has them all)."""

    plant_file: Path
    mqtt_url: str | None
    mqtt_client_id: str | None
    mqtt_shared_group: str | None
    mqtt_ca_file: Path | None
    opcua_url: str | None
    signals_webhook_secret: SecretStr | None


@dataclass(frozen=True)
class Incoming:
    """One signal a source has read from a message, ready to store (a message may give several)."""

    key: str  # the source key: the same message gives the same key, so a redelivery is found
    payload: dict[str, Any]
    kind: str = "machine"
    # The machine's state as the last one this source stored for it: kept, and stored as processed
    # (processing it would change nothing), so a steady stream costs no processing transaction.
    repeat: bool = False


@dataclass(frozen=True)
class Stored:
    signal_id: int
    duplicate: bool


async def store(sink: SignalSink, *, source: str, source_key: str, payload: dict[str, Any],
                kind: str = "machine") -> Stored:
    """Commit the signal (off the event loop: the store is synchronous SQLAlchemy)."""
    received = await asyncio.to_thread(sink.receive, source=source, source_key=source_key, kind=kind,
                                       payload=payload, process=False)
    return Stored(received.signal_id, received.duplicate)


async def store_many(sink: SignalSink, *, source: str, items: Sequence[Incoming]) -> list[Stored]:
    """Commit a batch of signals in one transaction (off the event loop); one `Stored` per item, in order."""
    received = await asyncio.to_thread(sink.receive_many, source, items)
    return [Stored(r.signal_id, r.duplicate) for r in received]


async def process(sink: SignalSink, stored: Stored) -> None:
    """Process a newly stored signal. A redelivery is left alone: whoever stored it first processes
    it (or `process_pending` at the next start), so two replicas never process one signal at once."""
    if not stored.duplicate:
        await asyncio.to_thread(sink.process_signal, stored.signal_id)


def digest(*parts: str | bytes, size: int = 16) -> str:
    """A short, stable fingerprint for source keys."""
    sha = hashlib.sha256()
    for part in parts:
        sha.update(part.encode() if isinstance(part, str) else part)
        sha.update(b"\x00")
    return sha.hexdigest()[:size]


class Backoff:
    """Exponential reconnect delays with jitter, so replicas that lost one broker do not return in step."""

    def __init__(self, first: float = 1.0, cap: float = 30.0) -> None:
        self.first, self.cap = first, cap
        self.delay = first

    def reset(self) -> None:
        self.delay = self.first

    async def wait(self, stop: asyncio.Event) -> bool:
        """Sleep the next delay unless `stop` comes first; True when stopping."""
        delay = self.delay * random.uniform(0.8, 1.0)
        self.delay = min(self.delay * 2, self.cap)
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(stop.wait(), timeout=delay)
        return stop.is_set()

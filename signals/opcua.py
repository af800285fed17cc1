"""OPC UA source: one state variable per machine, subscribed for data changes.

Configuration: `MFGOS_OPCUA_URL` (`opc.tcp://host:4840/...`) and, in the plant file,
`signals.opcua: {MACHINE: NODE_ID}`. Values are read as states by
`signals.machine_state.state_name`: text (`"FAULT"`), a PackML StateCurrent number (6 =
EXECUTE) or a boolean running flag.

Each change is stored as a machine signal keyed by node and source timestamp. After a
reconnect (asyncua re-creates the subscription itself) the server re-sends every current
value with its original timestamp, so those are recognised as already stored; changes that
came and went while the connection was down are not replayed (OPC UA keeps no history for
a plain subscription).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import math
import time
from collections import Counter
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from asyncua import Client, ua
from asyncua.common.subscription import DataChangeNotif

from signals.base import Backoff, SignalSettings, SignalSink, digest, process, store
from signals.decoding import (
    RAW_KEPT,
    UNREADABLE,
    Unreadable,
    storable_problem,
    unreadable_payload,
    worth_logging,
)
from signals.machine_state import MAX_STATE, state_name
from signals.mapping import SignalMap

log = logging.getLogger(__name__)

PUBLISHING_INTERVAL_MS = 250
QUEUE_SIZE = 16  # changes the server keeps per item between publishes, so a FAULT/RUNNING blip is not lost


@dataclass(frozen=True)
class Change:
    node: str
    value: Any
    source_timestamp: datetime | None
    server_timestamp: datetime | None
    received_at: float


class _Handler:
    """asyncua calls this on its own task; we only queue, the source stores in order."""

    def __init__(self, queue: asyncio.Queue[Change]) -> None:
        self.queue = queue

    def datachange_notification(self, node: Any, val: Any, data: DataChangeNotif) -> None:
        value = data.monitored_item.Value
        self.queue.put_nowait(Change(node.nodeid.to_string(), val, value.SourceTimestamp if value else None,
                                     value.ServerTimestamp if value else None, time.time()))

    def status_change_notification(self, status: Any) -> None:
        log.warning("OPC UA subscription status changed: %s", status)


class OpcUaSource:
    """Subscribes to each machine's state variable on one OPC UA server."""

    name = "opcua"

    def __init__(self, url: str, nodes: dict[str, str], *, backoff: Backoff | None = None,
                 publishing_interval_ms: int = PUBLISHING_INTERVAL_MS) -> None:
        if not nodes:
            raise ValueError("the OPC UA source needs at least one machine -> node id (signals.opcua)")
        self.url = url
        self.machines: dict[str, str] = {}  # canonical node id -> machine
        for machine, node in nodes.items():
            try:
                self.machines[ua.NodeId.from_string(node).to_string()] = machine
            except (ValueError, TypeError, ua.UaError) as error:
                raise ValueError(f"bad OPC UA node id {node!r} for {machine}: {error} "
                                 "(write it like ns=2;s=HOB-01.State or ns=2;i=1001)") from error
        self.backoff = backoff or Backoff()
        self.publishing_interval_ms = publishing_interval_ms
        self.connected = asyncio.Event()  # set while subscribed
        self.counts: Counter[str] = Counter()  # `unreadable` values kept since start

    @classmethod
    def from_settings(cls, settings: SignalSettings, signal_map: SignalMap) -> OpcUaSource:
        assert settings.opcua_url
        if not signal_map.opcua:
            raise ValueError(f"MFGOS_OPCUA_URL is set but {settings.plant_file} names no state variables: "
                             "add signals: {opcua: {MACHINE: NODE_ID}}")
        return cls(settings.opcua_url, signal_map.opcua)

    async def run(self, sink: SignalSink, stop: asyncio.Event) -> None:
        while not stop.is_set():
            try:
                await self._session(sink, stop)
            except asyncio.CancelledError:
                raise
            except Exception as error:  # refused, timed out, or the store failed
                log.warning("OPC UA %s: %s; reconnecting in about %.0fs", self.url, error or type(error).__name__,
                            self.backoff.delay)
            finally:
                self.connected.clear()
            if await self.backoff.wait(stop):
                return

    async def _session(self, sink: SignalSink, stop: asyncio.Event) -> None:
        queue: asyncio.Queue[Change] = asyncio.Queue()
        client = Client(self.url, timeout=10, auto_reconnect=True, reconnect_max_delay=self.backoff.cap)
        await client.connect()
        try:
            subscription = await client.create_subscription(self.publishing_interval_ms, _Handler(queue))
            nodes = [client.get_node(node) for node in self.machines]
            results = await subscription.subscribe_data_change(nodes, queuesize=QUEUE_SIZE)
            for node, result in zip(self.machines, results, strict=True):
                if isinstance(result, ua.StatusCode):
                    log.error("OPC UA %s: cannot watch %s for %s: %s", self.url, node, self.machines[node],
                              result.name)
            self.backoff.reset()
            self.connected.set()
            while not stop.is_set():
                getting = asyncio.create_task(queue.get())
                stopping = asyncio.create_task(stop.wait())
                done, _ = await asyncio.wait({getting, stopping}, return_when=asyncio.FIRST_COMPLETED)
                stopping.cancel()
                if getting not in done:
                    getting.cancel()
                    return
                await self._deliver(sink, getting.result())
        finally:
            with contextlib.suppress(Exception):
                await client.disconnect()

    async def _deliver(self, sink: SignalSink, change: Change) -> None:
        try:
            key, (kind, payload) = self.key(change), self.read(change)
        except Exception as error:  # a bug in reading must not stop the intake: keep the change, go on
            log.exception("OPC UA %s: reading a change of %s failed; storing it as unreadable", self.url, change.node)
            key = f"opcua:{change.node[:200]}@r{change.received_at}#unreadable"
            kind, payload = UNREADABLE, unreadable_payload(
                f"OPC UA value of {change.node} could not be read ({type(error).__name__}: {error})", b"",
                node=change.node, machine=self.machines.get(change.node))
        await process(sink, await store(sink, source=self.name, source_key=key, payload=payload, kind=kind))

    def key(self, change: Change) -> str:
        stamp = change.source_timestamp or change.server_timestamp
        when = stamp.isoformat() if stamp else f"r{int(change.received_at)}"
        return f"opcua:{change.node[:200]}@{when}#{digest(self.url, change.node, repr(change.value))}"

    def read(self, change: Change) -> tuple[str, dict[str, Any]]:
        """(kind, payload) of the signal a change gives: a machine state, or `unreadable` with the reason."""
        machine = self.machines.get(change.node)
        value = state_value(change.value)
        if isinstance(value, Unreadable):
            self.counts["unreadable"] += 1
            if worth_logging(self.counts["unreadable"]):
                log.warning("OPC UA %s: %d unreadable value(s) kept so far (last: %s on %s)", self.url,
                            self.counts["unreadable"], value.reason, change.node)
            return UNREADABLE, unreadable_payload(
                f"OPC UA value of {change.node}: {value.reason}", repr(change.value)[:RAW_KEPT].encode(),
                node=change.node, machine=machine)
        stamp = change.source_timestamp or change.server_timestamp
        return "machine", {"topic": None, "machine": machine,
                           "payload": {"state": state_name(value), "value": value, "node": change.node,
                                       "ts": stamp.isoformat() if stamp else None}}


def state_value(value: Any) -> str | int | float | bool | Unreadable:
    """What a state variable may hold: text, a number (a PackML state) or a running flag; else why not."""
    if isinstance(value, ua.LocalizedText):  # an enumeration's display name
        value = value.Text
    if isinstance(value, bool):
        return value
    if isinstance(value, int):
        return int(value) if abs(value) < 2**63 else Unreadable("a number too large for a state")
    if isinstance(value, float):
        return value if math.isfinite(value) else Unreadable(f"{value} is not a state")
    if isinstance(value, str):
        if len(value) > MAX_STATE:
            return Unreadable(f"text of {len(value)} characters, more than the {MAX_STATE} a state may have")
        problem = storable_problem(value)
        return Unreadable(problem) if problem else value
    if value is None:
        return Unreadable("no value (null): the server sent an empty value or a bad status")
    return Unreadable(f"a value of type {type(value).__name__} where a state (text, a number or true/false) "
                      "is expected")

"""OPC UA source: one state variable per machine, subscribed for data changes.

Configuration: `MFGOS_OPCUA_URL` (`opc.tcp://host:4840/...`) and, in the plant file,
`x-signals.opcua: {MACHINE: NODE_ID}`. Values are read as states by
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
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from asyncua import Client, ua
from asyncua.common.subscription import DataChangeNotif

from signals.base import Backoff, SignalSettings, SignalSink, digest, process, store
from signals.machine_state import state_name
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
            raise ValueError("the OPC UA source needs at least one machine -> node id (x-signals.opcua)")
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

    @classmethod
    def from_settings(cls, settings: SignalSettings, signal_map: SignalMap) -> OpcUaSource:
        assert settings.opcua_url
        if not signal_map.opcua:
            raise ValueError(f"MFGOS_OPCUA_URL is set but {settings.plant_file} names no state variables: "
                             "add x-signals: {opcua: {MACHINE: NODE_ID}}")
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
        await process(sink, await store(sink, source=self.name, source_key=self.key(change),
                                        payload=self.payload(change)))

    def key(self, change: Change) -> str:
        stamp = change.source_timestamp or change.server_timestamp
        when = stamp.isoformat() if stamp else f"r{int(change.received_at)}"
        return f"opcua:{change.node[:200]}@{when}#{digest(self.url, change.node, repr(change.value))}"

    def payload(self, change: Change) -> dict[str, Any]:
        value = change.value
        if not (value is None or isinstance(value, str | int | bool) or (isinstance(value, float) and math.isfinite(value))):
            value = str(value)  # JSON columns take no NaN, dates or OPC UA structures
        stamp = change.source_timestamp or change.server_timestamp
        return {"topic": None, "machine": self.machines.get(change.node),
                "payload": {"state": state_name(value), "value": value, "node": change.node,
                            "ts": stamp.isoformat() if stamp else None}}

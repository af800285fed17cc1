"""MQTT source: plain-JSON machine states and Sparkplug B, at least once, stored before acknowledged.

Topics
- `plants/<plant>/<machine>/state` with a JSON object `{"state": ..., "reason"?: ..., "ts"?: ...}`.
  `<plant>` must be this plant's id or one of the plant file's `plant_aliases` (unless a
  `topics` entry maps the topic): one broker often serves several plants, and another plant's
  message is acknowledged, dropped and counted, never applied here.
  With `MFGOS_MQTT_SHARED_GROUP=g` this is subscribed as `$share/g/plants/+/+/state`, so
  replicas split the messages between them (docs/architecture.md, "Several replicas").
- the plant file's `signals.quality.topics`: quality inspection results, one JSON object each
  (signals/quality.py), shared among replicas like the states.
- `spBv1.0/+/#`: Sparkplug B (every group, or the groups given). Never shared: a host must see every birth of a node to name the
  aliases in its data messages, so each replica reads all of it and the source key lets
  exactly one of them store each message.

Delivery: QoS 1 on a persistent MQTT v5 session (fixed client id, clean start off, a session
expiry), and every message is acknowledged only after its signal is committed. A crash or
a lost connection before that makes the broker redeliver it; the source key makes the
redelivery a no-op. Keys: `mqtt:<topic>@<stamp>#<digest of topic and payload>`, where the
stamp is the message's own timestamp (JSON `ts`, Sparkplug `timestamp` and `seq`) and,
without one, the second it was received.

Nothing a message holds can stop the reader: decoding is total (`signals.decoding`), what
cannot be read is stored as an `unreadable` signal with the reason and acknowledged, and a
bug in reading one message is caught, kept the same way and logged. Only a failed store
leaves a message unacknowledged (the broker delivers it again).
"""

from __future__ import annotations

import asyncio
import json
import logging
import math
import socket
import ssl
import time
from collections import Counter
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any
from urllib.parse import unquote, urlsplit

import aiomqtt
from paho.mqtt.packettypes import PacketTypes
from paho.mqtt.properties import Properties
from sqlmodel import Session, select

from models import Machine
from signals import decoding, quality, sparkplug
from signals.base import Backoff, Incoming, SignalSettings, SignalSink, Stored, digest, store_many
from signals.machine_state import KNOWN_STATES, state_name
from signals.mapping import SignalMap, topic_matches

log = logging.getLogger(__name__)

STATE_FILTER = "plants/+/+/state"
SESSION_EXPIRY = 7 * 24 * 3600  # seconds the broker keeps our session (and queues QoS 1) while we are away
REBIRTH_INTERVAL = 30.0  # at most one rebirth request per edge node in this many seconds
MAX_METRICS = 50  # metrics kept per stored Sparkplug signal: the state and its context, not all telemetry
MAX_JSON = 64 * 1024  # a state message is a few hundred bytes; a bigger one is kept as unreadable
STORE_ATTEMPTS = 3  # a message whose signal cannot be stored this often is stored as unreadable instead
BATCH = 500  # messages stored in one transaction at most
RECEIVE_MAXIMUM = 2 * BATCH  # messages the broker may hand us before we acknowledge (a batch stored, one arriving)
PROCESS_BATCH = 500  # stored signals processed in one transaction at most


@dataclass(frozen=True)
class Broker:
    host: str
    port: int
    tls: bool
    username: str | None = None
    password: str | None = None

    @classmethod
    def from_url(cls, url: str) -> Broker:
        """`mqtt://[user:password@]host[:1883]` or `mqtts://...[:8883]` (TLS)."""
        parts = urlsplit(url)
        if parts.scheme not in ("mqtt", "mqtts", "tcp", "ssl") or not parts.hostname:
            raise ValueError(f"bad MFGOS_MQTT_URL {parts.scheme}://{parts.hostname or ''}...: "
                             "write it like mqtt://broker:1883 or mqtts://user:password@broker:8883")
        tls = parts.scheme in ("mqtts", "ssl")
        return cls(parts.hostname, parts.port or (8883 if tls else 1883), tls,
                   unquote(parts.username) if parts.username else None,
                   unquote(parts.password) if parts.password else None)

    def __str__(self) -> str:  # no credentials in logs
        return f"{'mqtts' if self.tls else 'mqtt'}://{self.host}:{self.port}"


class MqttSource:
    """Subscribes to machine states on one broker and feeds them to the runtime as machine signals."""

    name = "mqtt"

    def __init__(self, url: str, *, client_id: str, shared_group: str | None = None,
                 signal_map: SignalMap | None = None, sparkplug_groups: tuple[str, ...] = ("+",),
                 backoff: Backoff | None = None, state_filter: str = STATE_FILTER,
                 session_expiry: int = SESSION_EXPIRY, ca_file: Path | None = None) -> None:
        self.broker = Broker.from_url(url)
        if ca_file is not None and not self.broker.tls:
            raise ValueError("MFGOS_MQTT_CA_FILE is set but MFGOS_MQTT_URL is not mqtts://: "
                             "the CA is only used with TLS")
        if ca_file is not None and not Path(ca_file).is_file():
            raise ValueError(f"MFGOS_MQTT_CA_FILE {ca_file} is not a readable file")
        self.ca_file = ca_file
        self.client_id = client_id
        self.shared_group = shared_group
        self.signal_map = signal_map or SignalMap()
        self.sparkplug_groups = sparkplug_groups  # () turns Sparkplug off
        self.state_filter = state_filter
        self.session_expiry = session_expiry
        self.backoff = backoff or Backoff()
        self.host = sparkplug.SparkplugHost()
        self.connected = asyncio.Event()  # set while subscribed: a health check, and tests wait on it
        self._machines: frozenset[str] = frozenset()
        self._rebirth_asked: dict[tuple[str, str], float] = {}
        self._failed: dict[str, int] = {}  # source key -> failed store attempts
        self._last_state: dict[str, str] = {}  # machine -> the state last stored for it in this session
        self._stored: asyncio.Queue[list[int] | None] = asyncio.Queue()  # ids stored, to process in order
        # The plant segments of `plants/<plant>/<machine>/state` that are ours: the plant id and
        # the plant file's `plant_aliases` (the runtime's plant id joins at connect).
        self.plant_names = frozenset({self.signal_map.plant_id, *self.signal_map.plant_aliases} - {""})
        # Messages dropped (`other_plant`, `other_group`) or kept as `unreadable`, since start.
        self.counts: Counter[str] = Counter()

    @classmethod
    def from_settings(cls, settings: SignalSettings, signal_map: SignalMap) -> MqttSource:
        assert settings.mqtt_url
        client_id = settings.mqtt_client_id or f"mfgos-{signal_map.plant_id or 'plant'}-{socket.gethostname()}"
        return cls(settings.mqtt_url, client_id=client_id, shared_group=settings.mqtt_shared_group,
                   signal_map=signal_map, sparkplug_groups=signal_map.sparkplug_groups or ("+",),
                   ca_file=settings.mqtt_ca_file)

    def subscriptions(self) -> list[str]:
        """The state topics and the quality topics (shared among replicas with a group), and Sparkplug."""
        shared = [self.state_filter, *self.signal_map.quality_topics]
        if self.shared_group:
            shared = [f"$share/{self.shared_group}/{topic_filter}" for topic_filter in shared]
        return [*shared, *(f"{sparkplug.NAMESPACE}/{group}/#" for group in self.sparkplug_groups)]

    # --- the connection ------------------------------------------------------------------

    async def run(self, sink: SignalSink, stop: asyncio.Event) -> None:
        processor = asyncio.create_task(self._process_stored(sink))
        try:
            await self._connect(sink, stop)
        finally:
            self._stored.put_nowait(None)  # process what is stored, then stop (the next start does the rest)
            await processor

    async def _connect(self, sink: SignalSink, stop: asyncio.Event) -> None:
        while not stop.is_set():
            try:
                await self._session(sink, stop)
            except asyncio.CancelledError:
                raise
            except Exception as error:  # broker gone, refused, or the store failed: the broker redelivers
                if _refused_credentials(error):
                    log.error("MQTT %s refused the user name and password in MFGOS_MQTT_URL (%s); retrying in "
                              "about %.0fs", self.broker, error, self.backoff.delay)
                else:
                    log.warning("MQTT %s: %s; reconnecting in about %.0fs", self.broker, error, self.backoff.delay)
            finally:
                self.connected.clear()
            if await self.backoff.wait(stop):
                return

    def _client(self) -> aiomqtt.Client:
        properties = Properties(PacketTypes.CONNECT)
        properties.SessionExpiryInterval = self.session_expiry
        # Without it Mosquitto hands a client 20 unacknowledged messages at a time (max_inflight_messages),
        # and since we acknowledge after the commit, no batch could hold more.
        properties.ReceiveMaximum = RECEIVE_MAXIMUM
        client = aiomqtt.Client(
            self.broker.host, self.broker.port, identifier=self.client_id, protocol=aiomqtt.ProtocolVersion.V5,
            clean_start=False, properties=properties, username=self.broker.username,
            password=self.broker.password, tls_context=self._tls_context(),
            timeout=10,
        )
        # aiomqtt acknowledges a message as soon as it is queued (empicano/aiomqtt#345); paho can leave
        # it to us, set before connecting so messages queued for our session are covered too.
        client._client.manual_ack_set(True)  # noqa: SLF001
        return client

    def _tls_context(self) -> ssl.SSLContext | None:
        """TLS for mqtts://: the server's certificate and host name are checked against the system's CAs,
        or only against MFGOS_MQTT_CA_FILE when it is set (a plant's own CA)."""
        if not self.broker.tls:
            return None
        return ssl.create_default_context(cafile=str(self.ca_file) if self.ca_file else None)

    async def _session(self, sink: SignalSink, stop: asyncio.Event) -> None:
        async with self._client() as client:
            self._machines = await asyncio.to_thread(_machine_ids, sink)
            self._last_state.clear()  # the first state of each machine in a session is always processed
            self.plant_names = self.plant_names | {sink.plant_id}
            for topic_filter in self.subscriptions():
                await client.subscribe(topic_filter, qos=1)
            self.backoff.reset()
            self.connected.set()
            log.info("MQTT %s: subscribed to %s as %s", self.broker, ", ".join(self.subscriptions()), self.client_id)
            consume = asyncio.create_task(self._consume(client, sink))
            stopping = asyncio.create_task(stop.wait())
            try:
                done, _ = await asyncio.wait({consume, stopping}, return_when=asyncio.FIRST_COMPLETED)
                if consume in done:
                    consume.result()  # raises the MqttError that ended the session
            finally:
                for task in (consume, stopping):
                    task.cancel()
                await asyncio.gather(consume, stopping, return_exceptions=True)

    async def _consume(self, client: aiomqtt.Client, sink: SignalSink) -> None:
        """Take what the broker has handed over as one batch (up to `BATCH`): one transaction stores it.

        Nothing waits to fill a batch: at a trickle each message is its own batch, and under load
        the messages that arrived while the last batch was being stored make the next one.
        """
        messages = client.messages
        queued = client._queue  # noqa: SLF001 — the messages already received, taken without waiting
        while True:
            batch = [await anext(messages)]
            while len(batch) < BATCH and not queued.empty():
                batch.append(queued.get_nowait())
            handling = asyncio.ensure_future(self._handle(client, sink, batch))
            try:
                await asyncio.shield(handling)
            except asyncio.CancelledError:  # stopping: finish the batch in hand, so it is stored and acked
                await handling
                raise

    async def _handle(self, client: aiomqtt.Client, sink: SignalSink, batch: list[aiomqtt.Message]) -> None:
        """Read every message, store the batch in one commit, then acknowledge each and queue the new signals."""
        incoming: list[Incoming] = []
        rebirths: list[tuple[str, str]] = []
        for message in batch:
            data = bytes(message.payload) if isinstance(message.payload, bytes | bytearray) else \
                str(message.payload or "").encode()
            topic, received_at = message.topic.value, time.time()
            try:
                signals, rebirth = self.read(topic, data, received_at, retained=message.retain)
            except Exception as error:  # a bug in reading must not stop the intake: keep the message, go on
                log.exception("MQTT: reading a message on %s failed; storing it as unreadable",
                              decoding.clean_text(topic))
                signals, rebirth = [self._unreadable(topic, data, received_at, f"could not be read on {topic} "
                                                     f"({type(error).__name__}: {error})")], None
            incoming.extend(signals)
            if rebirth is not None and rebirth not in rebirths:
                rebirths.append(rebirth)
        incoming, states = self._mark_repeats(incoming)
        stored = await self._store(sink, incoming)
        self._last_state.update(states)
        for message in batch:
            if message.qos > 0:
                client._client.ack(message.mid, message.qos)  # noqa: SLF001 — see _client()
        if fresh := [row.signal_id for item, row in zip(incoming, stored, strict=True)
                     if not (row.duplicate or item.repeat)]:  # a repeat is stored already processed
            self._stored.put_nowait(fresh)
        for node in rebirths:
            await self._ask_rebirth(client, node)

    def _mark_repeats(self, items: list[Incoming]) -> tuple[list[Incoming], dict[str, str]]:
        """Change detection: a known state of a known machine equal to the last one this session stored
        for it is a repeat (most state messages are). Returns the items and the states they leave.

        Only without a shared subscription: replicas splitting the messages each see part of the
        stream, so what one of them saw last is not the machine's last state.
        """
        states: dict[str, str] = {}
        if self.shared_group:
            return items, states
        marked = []
        for item in items:
            machine, body = item.payload.get("machine"), item.payload.get("payload")
            if item.kind == "machine" and isinstance(machine, str) and isinstance(body, dict) \
                    and machine in self._machines:
                state = state_name(body.get("state") if body.get("state") is not None else body.get("status"))
                if state in KNOWN_STATES:
                    if (states.get(machine) or self._last_state.get(machine)) == state:
                        item = replace(item, repeat=True)
                    states[machine] = state
            marked.append(item)
        return marked, states

    async def _store(self, sink: SignalSink, items: list[Incoming]) -> list[Stored]:
        """Store a batch in one transaction. If that fails, store its signals one by one: a database
        outage fails the first and leaves the whole batch unacknowledged (the broker redelivers it);
        a signal that fails every time on its own is stored as unreadable after a few attempts, so
        it cannot hold up the messages behind it."""
        if not items:
            return []
        try:
            return await store_many(sink, source=self.name, items=items)
        except Exception as error:
            log.warning("MQTT: storing a batch of %d signals failed (%s); storing them one by one", len(items), error)
        return [await self._store_one(sink, item) for item in items]

    async def _store_one(self, sink: SignalSink, item: Incoming) -> Stored:
        try:
            (stored,) = await store_many(sink, source=self.name, items=[item])
        except Exception as error:
            attempts = self._failed[item.key] = self._failed.get(item.key, 0) + 1
            if attempts < STORE_ATTEMPTS:
                raise
            log.error("MQTT: storing %s failed %d times (%s); storing it as unreadable", item.key, attempts, error)
            (stored,) = await store_many(sink, source=self.name, items=[Incoming(
                item.key, decoding.unreadable_payload(
                    f"could not be stored: {type(error).__name__}: {str(error)[:500]}",
                    json.dumps(item.payload, default=repr).encode("utf-8", "backslashreplace"),
                    topic=item.payload.get("topic"), machine=item.payload.get("machine")),
                decoding.UNREADABLE)])
        self._failed.pop(item.key, None)
        return stored

    async def _process_stored(self, sink: SignalSink) -> None:
        """Process stored signals in order, many per transaction, beside the intake: storing the next
        batch never waits for the last one's exceptions and pages. Runs until it takes `None`."""
        while (ids := await self._stored.get()) is not None:
            done = False
            while not self._stored.empty() and len(ids) < PROCESS_BATCH:
                more = self._stored.get_nowait()
                if more is None:
                    done = True
                    break
                ids.extend(more)
            try:
                await asyncio.to_thread(sink.process_signals, ids)
            except Exception:  # the database is gone: the signals are stored, the sweep processes them later
                log.exception("MQTT: processing %d stored signals failed; the sweep will retry them", len(ids))
            if done:
                return

    async def _ask_rebirth(self, client: aiomqtt.Client, node: tuple[str, str]) -> None:
        now = time.monotonic()
        if now - self._rebirth_asked.get(node, -REBIRTH_INTERVAL) < REBIRTH_INTERVAL:
            return
        self._rebirth_asked[node] = now
        group, edge_node = node
        log.info("Sparkplug %s/%s: data without a birth; asking for a rebirth", group, edge_node)
        await client.publish(f"{sparkplug.NAMESPACE}/{group}/NCMD/{edge_node}",
                             sparkplug.encode_rebirth(int(time.time() * 1000)), qos=0)

    # --- messages -> signals (no I/O) ----------------------------------------------------

    def read(self, topic: str, data: bytes, received_at: float, *,
             retained: bool = False) -> tuple[list[Incoming], tuple[str, str] | None]:
        """The signals one message gives, and the edge node to ask for a rebirth (if any).

        Never raises for anything a message holds: what cannot be read is one `unreadable`
        signal. A message for another plant gives none (it is counted in `counts`).
        A retained message comes again at every subscribe; without a timestamp of its own it is
        keyed by its content alone, so a reconnect does not replay an old FAULT as a new one.
        """
        when = None if retained else received_at
        if any(topic_matches(topic_filter, topic) for topic_filter in self.signal_map.quality_topics):
            return [self._quality(topic, data, when)], None
        spb = sparkplug.parse_topic(topic)
        if spb is not None:
            return self._sparkplug(topic, spb, data, when)
        if topic.startswith(f"{sparkplug.NAMESPACE}/"):
            return [], None  # STATE and other Sparkplug topics we do not act on
        incoming = self._json(topic, data, when)
        return ([incoming] if incoming else []), None

    def _ignore(self, what: str, name: str, topic: str) -> None:
        """Count (and now and then log) a message meant for someone else; it is acknowledged and dropped."""
        self.counts[what] += 1
        count = self.counts[what]
        if decoding.worth_logging(count):
            log.warning("MQTT: ignored %d message(s) for %s (last: %r on %s); this plant answers to %s",
                        count, what.replace("_", " "), decoding.clean_text(name, 100), decoding.clean_text(topic, 300),
                        ", ".join(sorted(self.plant_names)) or "no plant id")

    def _unreadable(self, topic: str, data: bytes, received_at: float | None, reason: str,
                    machine: str | None = None) -> Incoming:
        self.counts["unreadable"] += 1
        if decoding.worth_logging(self.counts["unreadable"]):
            log.warning("MQTT: %d unreadable message(s) kept as signals of kind unreadable so far (last: %s)",
                        self.counts["unreadable"], decoding.clean_text(reason, 300))
        return Incoming(_key(topic, None, data, received_at),
                        decoding.unreadable_payload(reason, data, topic=topic, machine=machine), decoding.UNREADABLE)

    def _json(self, topic: str, data: bytes, received_at: float | None) -> Incoming | None:
        parts = topic.split("/")
        machine = self.signal_map.machine_for_topic(topic)
        if machine is None and len(parts) == 4:
            if parts[1] not in self.plant_names:
                self._ignore("other_plant", parts[1], topic)
                return None
            machine = parts[2]
        body = decoding.json_object(data, limit=MAX_JSON)
        if isinstance(body, decoding.Unreadable):
            return self._unreadable(topic, data, received_at, f"unreadable MQTT payload on {topic}: {body.reason}",
                                    machine)
        payload = {"topic": topic, "machine": machine, "payload": body}
        if problem := decoding.storable_problem([topic, machine]):  # the body is checked; the topic, e.g. a lone surrogate
            return self._unreadable(topic, data, received_at, f"unreadable MQTT message on {topic}: {problem}")
        return Incoming(_key(topic, body.get("ts"), data, received_at), payload)

    def _quality(self, topic: str, data: bytes, received_at: float | None) -> Incoming:
        """A quality inspection result, keyed like `POST /signals/quality`'s (signals/quality.py): the same
        result sent both ways is stored once."""
        found = quality.read_bytes(data, limit=MAX_JSON)
        if isinstance(found, decoding.Unreadable):
            return self._unreadable(topic, data, received_at, f"unreadable quality result on {topic}: {found.reason}")
        if problem := decoding.storable_problem(topic):
            return self._unreadable(topic, data, received_at, f"unreadable MQTT message on {topic}: {problem}")
        return Incoming(found.source_key, {**found.payload(), "topic": topic}, quality.KIND)

    def _sparkplug(self, topic: str, spb: sparkplug.Topic, data: bytes,
                   received_at: float | None) -> tuple[list[Incoming], tuple[str, str] | None]:
        if "+" not in self.sparkplug_groups and spb.group not in self.sparkplug_groups:
            self._ignore("other_group", spb.group, topic)
            return [], None
        if spb.message_type in ("NCMD", "DCMD"):
            return [], None  # commands to edge nodes (ours among them): not machine states
        message = sparkplug.parse(data)
        if not isinstance(message, str) and (telemetry := self.host.telemetry_only(spb, message)) is not None:
            return [], (spb.group, spb.edge_node) if telemetry.rebirth else None
        decoded = message if isinstance(message, str) else _converted(message)
        if isinstance(decoded, str):
            return [self._unreadable(topic, data, received_at, f"unreadable Sparkplug B payload on {topic}: {decoded}",
                                     self._machine(topic, spb, spb.device))], None
        outcome = self.host.observe(spb, decoded)
        stamp = f"{decoded.timestamp}.{decoded.seq}" if decoded.timestamp is not None else None
        incoming = []
        for reading in outcome.readings:
            machine = self._machine(topic, spb, reading.device)
            if spb.message_type in ("NDEATH", "DDEATH") and machine is None:
                continue  # a gateway or sensor that is not one of our machines went offline: not ours
            suffix = f"/{reading.device}" if reading.device and reading.device != spb.device else ""
            payload = {
                "topic": topic, "machine": machine if machine is not None else reading.device or spb.edge_node,
                "payload": {"state": _json_value(reading.state), "reason": reading.reason, "ts": decoded.timestamp},
                "sparkplug": {"type": spb.message_type, "group": spb.group, "edge_node": spb.edge_node,
                              "device": reading.device, "seq": decoded.seq, "timestamp": decoded.timestamp,
                              "metrics": _jsonable(reading.metrics)},
            }
            if problem := decoding.storable_problem(payload):
                return [self._unreadable(topic, data, received_at,
                                         f"unreadable Sparkplug B payload on {topic}: {problem}", machine)], None
            incoming.append(Incoming(_key(topic + suffix, stamp, data, received_at), payload))
        if not incoming and outcome.note:
            log.debug("Sparkplug %s: %s", topic, outcome.note)
        return incoming, (spb.group, spb.edge_node) if outcome.rebirth else None

    def _machine(self, topic: str, spb: sparkplug.Topic, device: str | None) -> str | None:
        """The machine a Sparkplug device (or, with no device, the edge node) stands for."""
        if device and device != spb.device:  # a device taken down by its edge node's NDEATH
            topic = spb.device_topic("DDEATH", device)
        mapped = self.signal_map.machine_for_topic(topic)
        if mapped is not None:
            return mapped
        name = device or spb.edge_node
        return name if name in self._machines or name in self.signal_map.machines else None


def _key(topic: str, stamp: Any, data: bytes, received_at: float | None) -> str:
    """Same message, same key: its own timestamp, else the second it arrived, else (retained) none."""
    if stamp not in (None, ""):
        when = str(stamp)
    else:
        when = f"r{int(received_at)}" if received_at is not None else "retained"
    return f"mqtt:{topic[:200]}@{when[:40]}#{digest(topic, data)}"


def _converted(message: Any) -> sparkplug.Payload | str:
    try:
        return sparkplug.convert(message)
    except sparkplug.SparkplugError as error:
        return str(error)


def _json_value(value: Any) -> Any:
    """A value safe for a JSON column (PostgreSQL refuses NaN and infinities)."""
    return None if isinstance(value, float) and not math.isfinite(value) else value


def _jsonable(metrics: dict[str, Any]) -> dict[str, Any]:
    return {name: _json_value(value) for name, value in list(metrics.items())[:MAX_METRICS]}


def _refused_credentials(error: Exception) -> bool:
    """CONNACK "bad user name or password" (134) or "not authorized" (135; MQTT 3.1.1 codes 4 and 5)."""
    code = getattr(getattr(error, "rc", None), "value", getattr(error, "rc", None))
    return isinstance(error, aiomqtt.MqttCodeError) and code in (4, 5, 134, 135)


def _machine_ids(sink: SignalSink) -> frozenset[str]:
    with Session(sink.engine) as session:
        return frozenset(session.exec(select(Machine.id).where(Machine.plant_id == sink.plant_id)))

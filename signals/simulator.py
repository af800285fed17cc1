"""A plant simulator: machines that run, idle, fail and flap, on MQTT (JSON and Sparkplug B) and OPC UA.

`mfgos simulate` and `mfgos demo --simulate` run it (docs/signals.md, "The plant simulator"),
and `bench/bench_signals.py --simulator` uses it as its load generator. It speaks exactly what
mfgos's own sources read, so a plant can be tried, demonstrated and measured with no hardware:

- plain JSON states on `plants/<plant>/<machine>/state` (or the topic the plant file's
  `signals.topics` maps to the machine), with the part counter and the fault code in the body;
- Sparkplug B from one edge node per group and node: NBIRTH with `bdSeq` (and the NDEATH Will
  carrying the same `bdSeq`), a DBIRTH per machine naming every metric with an alias, then DDATA
  by alias only, `seq` counting 0..255 per edge node; a `Node Control/Rebirth` NCMD makes the
  node send its births again;
- an OPC UA server (asyncua) with the state variable of each machine at the node id the plant
  file's `signals.opcua` gives (default `ns=2;s=<machine>.State`), plus `<machine>.FaultCode`
  and `<machine>.PartCount`.

What the machines do is decided by a seeded random generator per machine (`random.Random` of
the seed and the machine id), in seconds from the start: the same seed gives the same changes
at the same offsets on any day, whatever else runs, and adding machines never changes the
others. Only the wall-clock moment of each publish varies.
"""

from __future__ import annotations

import asyncio
import contextlib
import heapq
import json
import random
import re
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

import paho.mqtt.client as paho
from asyncua import Server, ua

from models.plant_file import load, parse_duration
from signals import sparkplug_b_pb2 as pb
from signals.mqtt import Broker
from signals.sparkplug import BDSEQ_METRIC, NAMESPACE, REBIRTH_METRIC

# The faults a machine reports: code and text (the text is the stop reason mfgos shows).
FAULTS = (("E-101", "spindle overload"), ("E-204", "servo alarm"), ("E-317", "coolant pressure low"),
          ("E-402", "door interlock open"), ("E-515", "tool breakage detected"), ("E-630", "hydraulic oil hot"),
          ("E-711", "part jammed in loader"), ("E-808", "emergency stop pressed"))
IDLE_REASONS = ("waiting for material", "changeover", "no operator", "waiting for quality release")
REFERENCE_S = 60.0  # a machine without min_down: faults are drawn around a minute
FAULT_SHARE = 0.8  # of the stops a machine makes, this share are faults; the rest are idle spells
SHORT_SHARE, LONG_SHARE = 0.4, 0.45  # of the faults: shorter than min_down, longer; the rest flap
DEFAULT_NODE = "mfgos-sim"
PACKML = {"RUNNING": 6, "IDLE": 4, "FAULT": 9}  # EXECUTE, IDLE, ABORTED: for a node named ...StateCurrent
# Sparkplug datatypes (sparkplug_b.proto): Int64, UInt64, Double, Boolean, String
INT64, UINT64, DOUBLE, BOOLEAN, STRING = 4, 8, 10, 11, 12
STATE, FAULT_CODE, PARTS, TEMPERATURE = range(4)  # metric index within a device's aliases
METRICS = ((STATE, "Machine/State", STRING), (FAULT_CODE, "Machine/FaultCode", STRING),
           (PARTS, "Production/PartCount", UINT64), (TEMPERATURE, "Spindle/Temperature", DOUBLE))


@dataclass(frozen=True)
class SimMachine:
    """One simulated machine and where it reports."""

    id: str
    min_down_s: float | None
    protocol: str  # "json" or "sparkplug"
    json_topic: str
    group: str
    edge_node: str
    device: str  # the Sparkplug device id on the wire (the machine id unless `signals.topics` maps another)
    opcua_node: str
    cycle_s: float  # seconds a part takes while running


@dataclass(frozen=True)
class Change:
    """A machine changing state `at` seconds after the start; `down_for`: how long this FAULT lasts."""

    at: float
    machine: str
    state: str
    code: str | None = None
    reason: str | None = None
    down_for: float | None = None


def _seeded(seed: int, name: str) -> random.Random:
    return random.Random(f"mfgos-sim/{seed}/{name}")


def machine_changes(machine: SimMachine, seed: int, faults_per_hour: float) -> Iterator[Change]:
    """The machine's state changes, forever, in order: RUNNING at 0, then stops at a Poisson rate.

    Stops come at `faults_per_hour / FAULT_SHARE` per running hour; each is a fault (FAULT_SHARE)
    or an idle spell. A fault is short (under min_down: pages nobody), long (over min_down), or a
    flap: four to six short faults within a few min_downs. Durations scale with the machine's
    min_down (REFERENCE_S without one)."""
    rng = _seeded(seed, machine.id)
    at = 0.0
    yield Change(at, machine.id, "RUNNING")
    if faults_per_hour <= 0:
        return
    stops_per_s = faults_per_hour / FAULT_SHARE / 3600.0
    ref = machine.min_down_s or REFERENCE_S
    while True:
        at += rng.expovariate(stops_per_s)
        if rng.random() >= FAULT_SHARE:
            yield Change(at, machine.id, "IDLE", reason=rng.choice(IDLE_REASONS))
            at += rng.uniform(0.5, 2.0) * ref
            yield Change(at, machine.id, "RUNNING")
            continue
        kind, (code, reason) = rng.random(), rng.choice(FAULTS)
        if kind < SHORT_SHARE:
            downs = [rng.uniform(0.2, 0.7) * ref]
        elif kind < SHORT_SHARE + LONG_SHARE:
            downs = [rng.uniform(1.5, 3.0) * ref]
        else:
            downs = [rng.uniform(0.1, 0.4) * ref for _ in range(rng.randint(4, 6))]
        for index, down in enumerate(downs):
            if index:
                at += rng.uniform(0.2, 0.6) * ref  # running between two flaps
            yield Change(at, machine.id, "FAULT", code, reason, round(down, 3))
            at += down
            yield Change(at, machine.id, "RUNNING")


@dataclass
class _Status:
    """What a machine is doing now, as the publishers report it."""

    state: str = "RUNNING"
    code: str | None = None
    reason: str | None = None
    since: float = 0.0
    run_before: float = 0.0  # seconds run before `since`
    last_ts: int = 0

    def parts(self, at: float, cycle_s: float) -> int:
        running = self.run_before + (at - self.since if self.state == "RUNNING" else 0.0)
        return int(running / cycle_s)


@dataclass
class SimConfig:
    """The machines and what they do; `plan()` lists the changes without publishing anything."""

    plant_id: str
    machines: list[SimMachine]
    seed: int = 1
    faults_per_hour: float = 6.0
    rate: float = 10.0  # periodic reports per second, over all machines

    def plan(self, until: float) -> list[Change]:
        """Every change before `until` seconds, in time order (ties: by machine, then as generated)."""
        changes = []
        for machine in self.machines:
            for change in machine_changes(machine, self.seed, self.faults_per_hour):
                if change.at >= until:
                    break
                changes.append(change)
        return sorted(changes, key=lambda c: (c.at, c.machine))

    def opcua_nodes(self) -> dict[str, str]:
        return {m.id: m.opcua_node for m in self.machines}


def extra_machine_id(number: int) -> str:
    """The id of the n-th machine (1-based) beyond the plant file's: SIM-0009, SIM-0010, ..."""
    return f"SIM-{number:04d}"


def load_config(plant_file: Path, *, machines: int | None = None, seed: int = 1, faults_per_hour: float = 6.0,
                rate: float = 10.0, protocol: str = "mixed") -> SimConfig:
    """The simulated plant from a plant file: its machines (the first `machines`, or more named by
    `extra_machine_id`), each reporting where the plant file's `signals` section maps it.

    A machine mapped by a `signals.topics` entry without wildcards reports there (a `spBv1.0/...`
    entry makes it a Sparkplug device of that group and edge node); an unmapped machine reports on
    the default topics, in JSON or Sparkplug by `protocol` (`mixed`: alternately, by position)."""
    if protocol not in ("mixed", "json", "sparkplug"):
        raise ValueError(f"protocol {protocol!r}: use mixed, json or sparkplug")
    plant = load(plant_file)
    section = plant.signals
    group = section.sparkplug_groups[0] if section.sparkplug_groups else plant.plant.id
    specs = [(m.id, parse_duration(m.min_down).total_seconds() if m.min_down else None) for m in plant.machines]
    count = len(specs) if machines is None else machines
    if count < 1:
        raise ValueError("--machines must be at least 1")
    specs = specs[:count] + [(extra_machine_id(n), None) for n in range(len(specs) + 1, count + 1)]
    built = []
    for index, (machine_id, min_down_s) in enumerate(specs):
        json_topic, spb, mapped = f"plants/{plant.plant.id}/{machine_id}/state", None, False
        for topic_filter, target in section.topics.items():
            levels = topic_filter.split("/")
            if target != machine_id or "#" in levels:
                continue
            if levels[0] == NAMESPACE and len(levels) == 5 and "+" not in (levels[1], levels[3], levels[4]):
                spb, mapped = (levels[1], levels[3], levels[4]), True
                break
            if levels[0] != NAMESPACE and "+" not in levels:
                json_topic, mapped = topic_filter, True
                break
        if not mapped and (protocol == "sparkplug" or (protocol == "mixed" and index % 2 == 1)):
            spb = (group, DEFAULT_NODE, machine_id)
        cycle_s = round(_seeded(seed, f"cycle/{machine_id}").uniform(5.0, 60.0), 1)
        built.append(SimMachine(
            id=machine_id, min_down_s=min_down_s, protocol="json" if spb is None else "sparkplug",
            json_topic=json_topic, group=spb[0] if spb else group, edge_node=spb[1] if spb else DEFAULT_NODE,
            device=spb[2] if spb else machine_id,
            opcua_node=section.opcua.get(machine_id, f"ns=2;s={machine_id}.State"), cycle_s=cycle_s))
    return SimConfig(plant.plant.id, built, seed=seed, faults_per_hour=faults_per_hour, rate=rate)


# --- MQTT: JSON and Sparkplug B ------------------------------------------------------------


def _metric(payload: pb.Payload, alias: int | None, datatype: int, value: object, name: str | None = None) -> None:
    metric = payload.metrics.add(datatype=datatype)
    if alias is not None:
        metric.alias = alias
    if name is not None:
        metric.name = name.encode()
    if value is None:
        metric.is_null = True
    elif datatype == STRING:
        metric.string_value = str(value).encode()
    elif datatype == DOUBLE:
        metric.double_value = float(value)  # type: ignore[arg-type]
    elif datatype == BOOLEAN:
        metric.boolean_value = bool(value)
    else:
        metric.long_value = int(value)  # type: ignore[call-overload]


@dataclass
class _EdgeNode:
    """One Sparkplug edge node: its connection (with the NDEATH Will), bdSeq, seq and devices."""

    group: str
    name: str
    client: paho.Client
    devices: list[SimMachine] = field(default_factory=list)
    bdseq: int = 0
    seq: int = 0
    connected: threading.Event = field(default_factory=threading.Event)
    birth_due: threading.Event = field(default_factory=threading.Event)

    def next_seq(self) -> int:
        seq, self.seq = self.seq, (self.seq + 1) % 256
        return seq

    def alias(self, machine: SimMachine, metric: int) -> int:
        return 1 + self.devices.index(machine) * len(METRICS) + metric


class MqttPlant:
    """Publishes the machines to one broker: JSON states, and Sparkplug B per edge node.

    One paho connection for the JSON machines and one per edge node (each node has its own Will).
    Stopping disconnects cleanly, so no NDEATH is sent and the machines keep their last state in
    mfgos; a killed simulator's Will takes its Sparkplug machines DOWN, as a real edge node's would."""

    def __init__(self, url: str, config: SimConfig, *, qos: int = 1) -> None:
        self.broker = Broker.from_url(url)
        self.config, self.qos = config, qos
        self.suffix = uuid.uuid4().hex[:8]  # client ids unique per run: two simulators never kick each other
        self.json_client = self._client(f"mfgos-sim-{config.plant_id}-{self.suffix}")
        self.nodes: dict[tuple[str, str], _EdgeNode] = {}
        for machine in config.machines:
            if machine.protocol == "sparkplug":
                key = (machine.group, machine.edge_node)
                if key not in self.nodes:
                    self.nodes[key] = _EdgeNode(machine.group, machine.edge_node,
                                                self._client(f"mfgos-sim-{machine.edge_node}-{self.suffix}"))
                self.nodes[key].devices.append(machine)
        self.sent = 0
        self._last: dict[int, paho.MQTTMessageInfo] = {}  # per client: the last publish, waited for at stop

    def _client(self, client_id: str) -> paho.Client:
        client = paho.Client(paho.CallbackAPIVersion.VERSION2, client_id=client_id, protocol=paho.MQTTv5)
        if self.broker.username:
            client.username_pw_set(self.broker.username, self.broker.password)
        if self.broker.tls:
            client.tls_set()
        client.max_inflight_messages_set(1000)
        client.max_queued_messages_set(0)  # unlimited: a burst waits in memory, nothing is dropped
        return client

    def start(self, timeout: float = 10.0) -> None:
        """Connect every client and wait for the broker's answer; births follow in the first `tick`."""
        for node in self.nodes.values():
            node.bdseq = 0
            death = pb.Payload(timestamp=_now_ms())
            _metric(death, None, INT64, node.bdseq, BDSEQ_METRIC)
            node.client.will_set(f"{NAMESPACE}/{node.group}/NDEATH/{node.name}", death.SerializeToString(), qos=1)
            node.client.on_connect = self._on_connect(node)
            node.client.on_message = self._on_command(node)
        clients = [self.json_client, *(node.client for node in self.nodes.values())]
        connected = threading.Event()
        self.json_client.on_connect = lambda *_args: connected.set()
        for client in clients:
            client.connect(self.broker.host, self.broker.port)
            client.loop_start()
        deadline = time.monotonic() + timeout
        waits = [connected, *(node.connected for node in self.nodes.values())]
        for event in waits:
            if not event.wait(max(0.0, deadline - time.monotonic())):
                self.stop()
                raise ConnectionError(f"MQTT {self.broker}: no answer within {timeout:.0f}s")

    def _on_connect(self, node: _EdgeNode) -> Callable[..., None]:
        def connected(client: paho.Client, *_args: object) -> None:
            client.subscribe(f"{NAMESPACE}/{node.group}/NCMD/{node.name}", qos=1)
            node.birth_due.set()  # (re)connected: a new session needs new births
            node.connected.set()
        return connected

    def _on_command(self, node: _EdgeNode) -> Callable[..., None]:
        def command(_client: paho.Client, _userdata: object, message: paho.MQTTMessage) -> None:
            request = pb.Payload()
            with contextlib.suppress(Exception):  # a command we cannot read asks for nothing
                request.ParseFromString(message.payload)
                if any(m.name.decode(errors="replace") == REBIRTH_METRIC and m.boolean_value
                       for m in request.metrics):
                    node.birth_due.set()
        return command

    def stop(self, timeout: float = 30.0) -> None:
        """Wait until the broker has acknowledged what was published (QoS 1 acknowledgements come in
        order), then disconnect cleanly: the Will (NDEATH) is not sent."""
        deadline = time.monotonic() + timeout
        for client in [self.json_client, *(node.client for node in self.nodes.values())]:
            last = self._last.get(id(client))
            if last is not None and client.is_connected():
                with contextlib.suppress(RuntimeError, ValueError):
                    last.wait_for_publish(max(0.1, deadline - time.monotonic()))
            client.disconnect()
            client.loop_stop()

    def births(self, statuses: dict[str, _Status], at: float) -> None:
        """NBIRTH then a DBIRTH per device, for every node whose births are due (connect or rebirth)."""
        for node in self.nodes.values():
            if not node.birth_due.is_set():
                continue
            node.birth_due.clear()
            node.seq = 0
            birth = pb.Payload(timestamp=_now_ms(), seq=node.next_seq())
            _metric(birth, None, INT64, node.bdseq, BDSEQ_METRIC)
            _metric(birth, None, BOOLEAN, False, REBIRTH_METRIC)
            self._send(f"{NAMESPACE}/{node.group}/NBIRTH/{node.name}", birth.SerializeToString(), node.client)
            for machine in node.devices:
                status = statuses[machine.id]
                payload = pb.Payload(timestamp=_now_ms(), seq=node.next_seq())
                values = (status.state, status.code, status.parts(at, machine.cycle_s), _temperature(machine, at))
                for (index, name, datatype), value in zip(METRICS, values, strict=True):
                    _metric(payload, node.alias(machine, index), datatype, value, name)
                self._send(f"{NAMESPACE}/{node.group}/DBIRTH/{node.name}/{machine.device}",
                           payload.SerializeToString(), node.client)

    def state(self, machine: SimMachine, status: _Status, at: float, start_ms: int) -> None:
        """A state change, at once: JSON with the reason and counter, or DDATA of the state metrics by alias."""
        if machine.protocol == "json":
            self._json(machine, status, at, start_ms)
            return
        node = self.nodes[(machine.group, machine.edge_node)]
        payload = pb.Payload(timestamp=_now_ms(), seq=node.next_seq())
        _metric(payload, node.alias(machine, STATE), STRING, status.state)
        _metric(payload, node.alias(machine, FAULT_CODE), STRING, status.code)
        _metric(payload, node.alias(machine, PARTS), UINT64, status.parts(at, machine.cycle_s))
        self._send(f"{NAMESPACE}/{node.group}/DDATA/{node.name}/{machine.device}",
                   payload.SerializeToString(), node.client)

    def report(self, machine: SimMachine, status: _Status, at: float, start_ms: int) -> None:
        """A periodic report: the JSON state again (a repeat, with the counter), or DDATA telemetry by alias."""
        if machine.protocol == "json":
            self._json(machine, status, at, start_ms)
            return
        node = self.nodes[(machine.group, machine.edge_node)]
        payload = pb.Payload(timestamp=_now_ms(), seq=node.next_seq())
        _metric(payload, node.alias(machine, PARTS), UINT64, status.parts(at, machine.cycle_s))
        _metric(payload, node.alias(machine, TEMPERATURE), DOUBLE, _temperature(machine, at))
        self._send(f"{NAMESPACE}/{node.group}/DDATA/{node.name}/{machine.device}",
                   payload.SerializeToString(), node.client)

    def _json(self, machine: SimMachine, status: _Status, at: float, start_ms: int) -> None:
        # `ts` is the planned moment in epoch ms, made to grow per machine: mfgos keys a message by it.
        status.last_ts = max(status.last_ts + 1, start_ms + int(at * 1000))
        body = {"state": status.state, "ts": status.last_ts, "parts": status.parts(at, machine.cycle_s)}
        if status.code:
            body["fault_code"] = status.code
        if status.reason:
            body["reason"] = f"{status.code}: {status.reason}" if status.code else status.reason
        self._send(machine.json_topic, _json_bytes(body), self.json_client)

    def _send(self, topic: str, data: bytes, client: paho.Client) -> None:
        self._last[id(client)] = client.publish(topic, data, qos=self.qos)
        self.sent += 1


def _json_bytes(body: dict[str, object]) -> bytes:
    return json.dumps(body, separators=(",", ":")).encode()


def _temperature(machine: SimMachine, at: float) -> float:
    """A spindle temperature that wanders with time: telemetry mfgos drops after reading its names."""
    return round(40.0 + 5.0 * ((at / machine.cycle_s) % 1.0), 2)


def _now_ms() -> int:
    return int(time.time() * 1000)


# --- OPC UA ------------------------------------------------------------------------------------


class OpcUaPlant:
    """An asyncua server with each machine's state, fault code and part counter as variables."""

    def __init__(self, config: SimConfig, port: int, host: str = "127.0.0.1") -> None:
        self.config = config
        self.url = f"opc.tcp://{host}:{port}/mfgos-sim/"
        self.server: Server | None = None
        self._state: dict[str, tuple[object, ua.VariantType]] = {}
        self._vars: dict[str, dict[str, object]] = {}

    async def start(self) -> None:
        server = Server()
        await server.init()
        server.set_endpoint(self.url)
        server.set_server_name("mfgos plant simulator")
        server.set_security_policy([ua.SecurityPolicyType.NoSecurity])  # a test bench: no certificates to hand out
        nodes = {m.id: ua.NodeId.from_string(m.opcua_node) for m in self.config.machines}
        index = await server.register_namespace(f"urn:mfgos:simulator:{self.config.plant_id}")
        while index < max([2, *(n.NamespaceIndex for n in nodes.values())]):
            index = await server.register_namespace(f"urn:mfgos:simulator:{self.config.plant_id}:{index + 1}")
        for machine in self.config.machines:
            folder = await server.nodes.objects.add_object(ua.NodeId(f"sim.{machine.id}", 2), machine.id)
            state_node = nodes[machine.id]
            packml = re.sub(r"[^a-z]", "", str(state_node.Identifier).lower()).endswith("statecurrent")
            first = ua.Variant(PACKML["RUNNING"], ua.VariantType.Int32) if packml else \
                ua.Variant("RUNNING", ua.VariantType.String)
            self._vars[machine.id] = {
                "state": await folder.add_variable(state_node, "State", first),
                "packml": packml,
                "code": await folder.add_variable(ua.NodeId(f"{machine.id}.FaultCode", 2), "FaultCode",
                                                  ua.Variant("", ua.VariantType.String)),
                "parts": await folder.add_variable(ua.NodeId(f"{machine.id}.PartCount", 2), "PartCount",
                                                   ua.Variant(0, ua.VariantType.Int64)),
            }
        await server.start()
        self.server = server

    async def state(self, machine: SimMachine, status: _Status, at: float) -> None:
        nodes = self._vars[machine.id]
        value = ua.Variant(PACKML[status.state], ua.VariantType.Int32) if nodes["packml"] else \
            ua.Variant(status.state, ua.VariantType.String)
        await nodes["code"].write_value(ua.Variant(status.code or "", ua.VariantType.String))  # type: ignore[attr-defined]
        await nodes["state"].write_value(value)  # type: ignore[attr-defined]
        await self.parts(machine, status, at)

    async def parts(self, machine: SimMachine, status: _Status, at: float) -> None:
        await self._vars[machine.id]["parts"].write_value(  # type: ignore[attr-defined]
            ua.Variant(status.parts(at, machine.cycle_s), ua.VariantType.Int64))

    async def stop(self) -> None:
        if self.server is not None:
            await self.server.stop()
            self.server = None


# --- the run ----------------------------------------------------------------------------------

TICK = 0.01  # seconds: the pacing step (reports due within a tick go together)
COUNTER_INTERVAL = 1.0  # seconds between OPC UA part-counter updates
MAX_BURST_S = 0.1  # a late simulator sends at most this many seconds' worth of reports in one go


class Simulator:
    """Runs a `SimConfig` in real time on the publishers given, until `stop` or `duration` seconds."""

    def __init__(self, config: SimConfig, *, mqtt: MqttPlant | None = None, opcua: OpcUaPlant | None = None,
                 on_change: Callable[[Change], None] | None = None) -> None:
        self.config, self.mqtt, self.opcua, self.on_change = config, mqtt, opcua, on_change
        self.statuses = {m.id: _Status() for m in config.machines}
        self.changes: list[Change] = []  # every change applied, in order
        self.reports = 0
        self.ready = asyncio.Event()  # set once connected and born: a test or the demo waits on it

    async def run(self, stop: asyncio.Event, duration: float | None = None) -> None:
        machines = {m.id: m for m in self.config.machines}
        streams = [machine_changes(m, self.config.seed, self.config.faults_per_hour) for m in self.config.machines]
        upcoming: list[tuple[float, str, int, Change, Iterator[Change]]] = []
        for order, stream in enumerate(streams):
            first = next(stream, None)
            if first is not None:
                heapq.heappush(upcoming, (first.at, first.machine, order, first, stream))
        mqtt_started = False
        try:
            if self.opcua is not None:
                await self.opcua.start()
            if self.mqtt is not None:
                await asyncio.to_thread(self.mqtt.start)  # raises ConnectionError, having closed its clients
                mqtt_started = True
            loop = asyncio.get_running_loop()
            start, start_ms = loop.time(), _now_ms()
            rate, count = self.config.rate, len(self.config.machines)
            next_counters = COUNTER_INTERVAL
            self.ready.set()
            while not stop.is_set():
                now = loop.time() - start
                if duration is not None and now >= duration:
                    return
                while upcoming and upcoming[0][0] <= now:
                    _, _, order, change, stream = heapq.heappop(upcoming)
                    await self._apply(machines[change.machine], change, start_ms)
                    following = next(stream, None)
                    if following is not None:
                        heapq.heappush(upcoming, (following.at, following.machine, order, following, stream))
                if self.mqtt is not None:
                    self.mqtt.births(self.statuses, now)
                    # what is due, but at most a tenth of a second's worth at once: a simulator that falls
                    # behind its rate still applies changes and sees `stop` on time
                    due = min(int(now * rate), self.reports + max(1, int(rate * MAX_BURST_S)))
                    while self.reports < due:
                        machine = self.config.machines[self.reports % count]
                        self.mqtt.report(machine, self.statuses[machine.id], now, start_ms)
                        self.reports += 1
                if self.opcua is not None and now >= next_counters:
                    next_counters = now + COUNTER_INTERVAL
                    for machine in self.config.machines:
                        await self.opcua.parts(machine, self.statuses[machine.id], now)
                wake = min(now + TICK, upcoming[0][0] if upcoming else now + TICK)
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(stop.wait(), max(0.0, wake - (loop.time() - start)))
        finally:
            if self.mqtt is not None and mqtt_started:
                await asyncio.to_thread(self.mqtt.stop)
            if self.opcua is not None:
                await self.opcua.stop()

    async def _apply(self, machine: SimMachine, change: Change, start_ms: int) -> None:
        status = self.statuses[machine.id]
        if status.state == "RUNNING":
            status.run_before += change.at - status.since
        status.state, status.code, status.reason, status.since = change.state, change.code, change.reason, change.at
        self.changes.append(change)
        if self.mqtt is not None:
            self.mqtt.births(self.statuses, change.at)  # a device is born before its first data
            self.mqtt.state(machine, status, change.at, start_ms)
        if self.opcua is not None:
            await self.opcua.state(machine, status, change.at)
        if self.on_change is not None:
            self.on_change(change)


def describe(change: Change) -> str:
    """One line for the terminal: `  12.3s HOB-01 FAULT E-204 servo alarm (for 95s)`."""
    what = " ".join(p for p in (change.code, change.reason) if p)
    length = f" (for {change.down_for:.0f}s)" if change.down_for is not None else ""
    return f"{change.at:8.1f}s {change.machine} {change.state}{' ' + what if what else ''}{length}"

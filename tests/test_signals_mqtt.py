"""MQTT source end to end against the real Mosquitto at 127.0.0.1:1883 (and one we start ourselves).

Every test listens on its own topics (`plants/<unique>/+/state`, Sparkplug group `<unique>`)
and uses its own client ids, so runs in parallel do not see each other's messages.
"""

from __future__ import annotations

import asyncio
import base64
import json
import shutil
import socket
import subprocess
import time
import uuid
from collections.abc import Awaitable, Callable, Iterator
from datetime import datetime
from pathlib import Path
from typing import Any

import aiomqtt
import pytest
from fastapi.testclient import TestClient
from sqlmodel import Session, select

from bot.channels.base import CaptureChannel
from mfgos.config import Settings
from mfgos.runtime import Runtime
from mfgos.server import worker_lifespan
from mfgos.web import create_app
from models import Machine, Notification, PlantException, Signal, TimelineEvent
from routing.clock import SimulatedClock
from signals.base import Backoff, Incoming
from signals.mapping import SignalMap
from signals.mqtt import STORE_ATTEMPTS, MqttSource
from signals.registry import build_sources, with_sources
from tests.conftest import postgres_schema_url, service_unavailable
from tests.test_signals_sparkplug import payload_class, spb_payload

PLANT = Path(__file__).parent / "data" / "pune_plant.yaml"
START = datetime.fromisoformat("2026-11-25T09:00:00+05:30")  # shift a: tom (maintenance) is on
HOST, PORT = "127.0.0.1", 1883
WAIT = 10.0  # seconds to wait for a message to arrive through the broker


def _reachable(host: str, port: int) -> bool:
    try:
        socket.create_connection((host, port), timeout=1).close()
        return True
    except OSError:
        return False


@pytest.fixture
def broker() -> str:
    if not _reachable(HOST, PORT):
        service_unavailable(f"Mosquitto at {HOST}:{PORT} is unreachable")
    return f"mqtt://{HOST}:{PORT}"


@pytest.fixture
def database_url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    """SQLite unless a test asks for PostgreSQL too (`parametrize("database_url", BOTH, indirect=True)`)."""
    if getattr(request, "param", "sqlite") == "sqlite":
        yield f"sqlite:///{tmp_path / 'mqtt.db'}"
    else:
        yield from postgres_schema_url()


BOTH = ["sqlite", "postgresql"]


@pytest.fixture
def runtime(database_url: str) -> Iterator[Runtime]:
    settings = Settings(_env_file=None, database_url=database_url, plant_file=PLANT)
    rt = Runtime(settings, clock=SimulatedClock(START),
                 channels={n: CaptureChannel(n) for n in ("console", "slack", "whatsapp", "telegram")})
    yield rt
    asyncio.run(rt.aclose())


@pytest.fixture
def unique() -> str:
    return f"t{uuid.uuid4().hex[:10]}"


def make_source(url: str, unique: str, *, client: str = "a", **kw: Any) -> MqttSource:
    kw.setdefault("backoff", Backoff(0.1, 0.5))
    kw.setdefault("session_expiry", 120)  # the shared broker forgets test sessions soon
    kw.setdefault("signal_map", SignalMap(plant_aliases=frozenset({unique})))  # plants/<unique>/... is ours
    kw.setdefault("state_filter", f"plants/{unique}/+/state")
    return MqttSource(url, client_id=f"mfgos-test-{unique}-{client}", sparkplug_groups=(unique,), **kw)


async def publish(topic: str, payload: bytes | str | dict[str, Any], *, qos: int = 1, url_port: int = PORT) -> None:
    data = json.dumps(payload) if isinstance(payload, dict) else payload
    async with aiomqtt.Client(HOST, url_port, protocol=aiomqtt.ProtocolVersion.V5) as client:
        await client.publish(topic, data, qos=qos)


def signals(runtime: Runtime) -> list[Signal]:
    with Session(runtime.engine) as session:
        return list(session.exec(select(Signal).order_by(Signal.id)))


async def until(condition: Callable[[], bool], what: str, timeout: float = WAIT) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        await asyncio.sleep(0.05)


def processed(runtime: Runtime, count: int) -> Callable[[], bool]:
    return lambda: sum(1 for s in signals(runtime) if s.processed_at is not None) >= count


async def running(source: MqttSource, runtime: Runtime, body: Callable[[], Awaitable[None]]) -> None:
    """Run `source` for the duration of `body` (after it has subscribed)."""
    stop = asyncio.Event()
    task = asyncio.create_task(source.run(runtime, stop))
    try:
        await asyncio.wait_for(source.connected.wait(), WAIT)
        await body()
    finally:
        stop.set()
        await asyncio.wait_for(task, WAIT)


def machine_running(runtime: Runtime, machine: str) -> bool:
    with Session(runtime.engine) as session:
        row = session.get(Machine, (runtime.plant_id, machine))
        assert row is not None
        return row.running


def exceptions(runtime: Runtime) -> list[PlantException]:
    with Session(runtime.engine) as session:
        return list(session.exec(select(PlantException).order_by(PlantException.id)))


# --- plain JSON states ---------------------------------------------------------------------


@pytest.mark.parametrize("database_url", BOTH, indirect=True)
def test_fault_opens_a_breakdown_and_pages_maintenance(broker: str, runtime: Runtime, unique: str) -> None:
    async def body() -> None:
        await publish(f"plants/{unique}/HOB-01/state", {"state": "FAULT", "reason": "spindle overload"})
        await until(processed(runtime, 1), "the FAULT signal")
        await runtime.drain()

    asyncio.run(running(make_source(broker, unique), runtime, body))
    (signal,) = signals(runtime)
    assert (signal.source, signal.kind, signal.error) == ("mqtt", "machine", None)
    assert signal.payload["machine"] == "HOB-01" and signal.payload["payload"]["state"] == "FAULT"
    (exc,) = exceptions(runtime)
    assert (exc.type, exc.machine_id, exc.status) == ("breakdown", "HOB-01", "open")
    assert "spindle overload" in exc.summary and "WO-1042" in exc.work_orders
    assert not machine_running(runtime, "HOB-01")
    with Session(runtime.engine) as session:
        paged = session.exec(select(Notification).where(Notification.exception_id == exc.id,
                                                        Notification.role == "maintenance")).all()
    assert [n.person_id for n in paged] == ["tom"]
    assert paged[0].status == "sent"


@pytest.mark.parametrize("database_url", BOTH, indirect=True)
def test_a_redelivered_message_is_stored_once(broker: str, runtime: Runtime, unique: str) -> None:
    message = {"state": "FAULT", "ts": "2026-11-25T03:30:00Z"}

    async def body() -> None:
        await publish(f"plants/{unique}/HOB-01/state", message)
        await publish(f"plants/{unique}/HOB-01/state", message)  # QoS 1 may deliver twice; so may a sender
        await publish(f"plants/{unique}/GRD-02/state", {"state": "RUNNING"})  # marks the end
        await until(lambda: any(s.payload.get("machine") == "GRD-02" for s in signals(runtime)), "the marker")

    asyncio.run(running(make_source(broker, unique), runtime, body))
    hob = [s for s in signals(runtime) if s.payload["machine"] == "HOB-01"]
    assert len(hob) == 1 and hob[0].processed_at is not None
    assert len(exceptions(runtime)) == 1


def test_running_brings_the_machine_back_up(broker: str, runtime: Runtime, unique: str) -> None:
    async def body() -> None:
        await publish(f"plants/{unique}/HOB-01/state", {"state": "FAULT"})
        await until(lambda: not machine_running(runtime, "HOB-01"), "HOB-01 down")
        await publish(f"plants/{unique}/HOB-01/state", {"state": "RUNNING"})
        await until(lambda: machine_running(runtime, "HOB-01"), "HOB-01 up")

    asyncio.run(running(make_source(broker, unique), runtime, body))
    (exc,) = exceptions(runtime)  # a machine running again does not close an unresolved breakdown
    assert exc.status == "open"
    with Session(runtime.engine) as session:
        kinds = [e.kind for e in session.exec(select(TimelineEvent).where(TimelineEvent.exception_id == exc.id))]
    assert "machine_state" in kinds


def test_an_unknown_machine_is_stored_with_an_error(broker: str, runtime: Runtime, unique: str) -> None:
    async def body() -> None:
        await publish(f"plants/{unique}/XYZ-99/state", {"state": "FAULT"})
        await publish(f"plants/{unique}/HOB-01/state", "spindle stopped")  # not JSON
        await until(processed(runtime, 2), "both signals")

    asyncio.run(running(make_source(broker, unique), runtime, body))
    unknown, unreadable = signals(runtime)
    assert unknown.error == "unknown machine 'XYZ-99' in plant pune-1"
    assert unreadable.error is not None and unreadable.error.startswith(
        f"unreadable MQTT payload on plants/{unique}/HOB-01/state")
    assert unreadable.kind == "unreadable"
    assert base64.b64decode(unreadable.payload["raw_base64"]) == b"spindle stopped"
    assert exceptions(runtime) == []


def test_topic_map_names_the_machine(broker: str, runtime: Runtime, unique: str) -> None:
    signal_map = SignalMap(plant_id="pune-1", machines=frozenset({"HOB-01"}),
                           topics={f"plants/{unique}/lc300/state": "HOB-01"})

    async def body() -> None:
        await publish(f"plants/{unique}/lc300/state", {"state": "ALARM", "reason": "hydraulics"})
        await until(processed(runtime, 1), "the mapped signal")

    asyncio.run(running(make_source(broker, unique, signal_map=signal_map), runtime, body))
    assert [(e.machine_id, e.type) for e in exceptions(runtime)] == [("HOB-01", "breakdown")]


# --- Sparkplug B ---------------------------------------------------------------------------


def test_sparkplug_ddeath_takes_the_machine_down(broker: str, runtime: Runtime, unique: str) -> None:
    node = f"spBv1.0/{unique}"

    async def body() -> None:
        await publish(f"{node}/NBIRTH/gw-1", spb_payload([{"name": "bdSeq", "datatype": 8, "long_value": 0}]))
        await publish(f"{node}/DBIRTH/gw-1/HOB-01", spb_payload(
            [{"name": "Machine/State", "alias": 1, "datatype": 12, "string_value": "RUNNING"}], seq=1))
        await publish(f"{node}/DDEATH/gw-1/HOB-01", spb_payload([], seq=2, timestamp=1_764_000_000_500))
        await until(lambda: not machine_running(runtime, "HOB-01"), "HOB-01 down")

    asyncio.run(running(make_source(broker, unique), runtime, body))
    birth, death = signals(runtime)
    assert birth.payload["sparkplug"]["type"] == "DBIRTH" and birth.error is None
    assert death.payload["payload"]["state"] == "DOWN" and death.payload["machine"] == "HOB-01"
    (exc,) = exceptions(runtime)
    assert exc.machine_id == "HOB-01" and "DDEATH" in exc.summary


@pytest.mark.parametrize("database_url", BOTH, indirect=True)
def test_sparkplug_alias_data_and_packml_numbers(broker: str, runtime: Runtime, unique: str) -> None:
    node = f"spBv1.0/{unique}"

    async def body() -> None:
        await publish(f"{node}/NBIRTH/gw-2", spb_payload([{"name": "bdSeq", "datatype": 8, "long_value": 0}]))
        await publish(f"{node}/DBIRTH/gw-2/GRD-02", spb_payload([
            {"name": "PackML/Status/StateCurrent", "alias": 7, "datatype": 3, "int_value": 6},
            {"name": "PackML/Admin/StopReason", "alias": 8, "datatype": 12, "string_value": ""},
            {"name": "Spindle/Temp", "alias": 9, "datatype": 10, "double_value": 41.0}], seq=1))
        await publish(f"{node}/DDATA/gw-2/GRD-02", spb_payload([{"alias": 9, "datatype": 10, "double_value": 42.0}],
                                                                seq=2, timestamp=1_764_000_000_100))
        await publish(f"{node}/DDATA/gw-2/GRD-02", spb_payload(
            [{"alias": 7, "datatype": 3, "int_value": 9}, {"alias": 8, "datatype": 12, "string_value": "E-stop"}],
            seq=3, timestamp=1_764_000_000_200))
        await until(processed(runtime, 2), "birth and the ABORTED data")

    asyncio.run(running(make_source(broker, unique), runtime, body))
    birth, aborted = signals(runtime)  # telemetry without a state is not stored
    assert birth.payload["payload"]["state"] == 6 and birth.error is None  # EXECUTE: already running
    assert aborted.payload["sparkplug"]["metrics"] == {"PackML/Status/StateCurrent": 9,
                                                      "PackML/Admin/StopReason": "E-stop"}
    (exc,) = exceptions(runtime)
    assert exc.machine_id == "GRD-02" and exc.summary == "GRD-02 ABORTED: E-stop"


def test_sparkplug_data_without_birth_asks_for_rebirth(broker: str, runtime: Runtime, unique: str) -> None:
    received: list[bytes] = []

    async def body() -> None:
        async with aiomqtt.Client(HOST, PORT, protocol=aiomqtt.ProtocolVersion.V5) as edge:
            await edge.subscribe(f"spBv1.0/{unique}/NCMD/gw-3", qos=1)
            await publish(f"spBv1.0/{unique}/DDATA/gw-3/HOB-01", spb_payload([{"alias": 4, "int_value": 1}]))
            async with asyncio.timeout(WAIT):
                async for message in edge.messages:
                    received.append(bytes(message.payload))  # type: ignore[arg-type]
                    break

    asyncio.run(running(make_source(broker, unique), runtime, body))
    (metric,) = payload_class().FromString(received[0]).metrics
    assert (metric.name, metric.boolean_value) == ("Node Control/Rebirth", True)
    assert signals(runtime) == []


def test_ndeath_of_a_gateway_takes_its_machines_down(runtime: Runtime, unique: str) -> None:
    """No broker needed: `read` is the message -> signals step."""
    source = make_source(f"mqtt://{HOST}:{PORT}", unique,
                         signal_map=SignalMap(machines=frozenset({"HOB-01", "GRD-02"})))
    node = f"spBv1.0/{unique}"
    source.read(f"{node}/NBIRTH/gw", spb_payload([{"name": "bdSeq", "datatype": 8, "long_value": 5}]), 0)
    for device in ("HOB-01", "GRD-02", "CONVEYOR-9"):
        source.read(f"{node}/DBIRTH/gw/{device}", spb_payload([]), 0)
    death = spb_payload([{"name": "bdSeq", "datatype": 8, "long_value": 5}], timestamp=None, seq=None)
    incoming, rebirth = source.read(f"{node}/NDEATH/gw", death, 1000.2)
    # the gateway and CONVEYOR-9 are not machines of the plant: not ours to report
    assert [(i.payload["machine"], i.payload["payload"]["state"]) for i in incoming] == [
        ("GRD-02", "DOWN"), ("HOB-01", "DOWN")]
    assert len({i.key for i in incoming}) == 2 and rebirth is None
    again, _ = source.read(f"{node}/NDEATH/gw", death, 1000.7)  # a redelivery in the same second
    assert again == []  # the session is gone; nothing to take down twice


def test_source_keys() -> None:
    source = MqttSource("mqtt://127.0.0.1", client_id="k", signal_map=SignalMap(plant_id="p"))
    stamped = source.read("plants/p/HOB-01/state", b'{"state": "FAULT", "ts": 1764000000}', 10.0)[0][0]
    assert stamped.key == source.read("plants/p/HOB-01/state", b'{"state": "FAULT", "ts": 1764000000}', 99.0)[0][0].key
    unstamped = [source.read("plants/p/HOB-01/state", b'{"state": "FAULT"}', t)[0][0].key for t in (10.1, 10.9, 11.0)]
    assert unstamped[0] == unstamped[1] != unstamped[2]  # without a timestamp: the second it arrived
    other = source.read("plants/p/HOB-01/state", b'{"state": "RUNNING", "ts": 1764000000}', 10.0)[0][0]
    assert other.key != stamped.key  # same timestamp, different news
    retained = [source.read("plants/p/HOB-01/state", b'{"state": "FAULT"}', t, retained=True)[0][0].key
                for t in (10.0, 5000.0)]
    assert retained[0] == retained[1] != unstamped[0]


def test_a_retained_state_is_not_news_after_a_reconnect(broker: str, runtime: Runtime, unique: str) -> None:
    topic = f"plants/{unique}/HOB-01/state"
    deliveries: list[bool] = []

    class Recording:
        plant_id, engine = runtime.plant_id, runtime.engine

        def receive_many(self, source: str, events: list[Incoming]) -> Any:
            received = runtime.receive_many(source, events)
            deliveries.extend(r.duplicate for r in received)
            return received

        def process_signals(self, signal_ids: list[int]) -> None:
            runtime.process_signals(signal_ids)

    async def retain(data: bytes) -> None:
        async with aiomqtt.Client(HOST, PORT, protocol=aiomqtt.ProtocolVersion.V5) as client:
            await client.publish(topic, data, qos=1, retain=True)

    async def scenario() -> None:
        await retain(b'{"state": "FAULT"}')
        try:
            for number, client in enumerate(("first", "second"), start=1):  # each subscribes afresh
                source = make_source(broker, unique, client=client)
                stop = asyncio.Event()
                task = asyncio.create_task(source.run(Recording(), stop))
                await until(lambda n=number: len(deliveries) == n, f"delivery {number}")
                stop.set()
                await task
                await asyncio.sleep(1.0)  # the second delivery comes in another second
        finally:
            await retain(b"")  # an empty retained message clears it on the broker

    asyncio.run(scenario())
    assert deliveries == [False, True]
    assert len(signals(runtime)) == 1 and len(exceptions(runtime)) == 1


def test_shared_subscription_filters() -> None:
    source = MqttSource("mqtt://u:secret@broker", client_id="c", shared_group="mfgos")
    assert source.subscriptions() == ["$share/mfgos/plants/+/+/state", "spBv1.0/+/#"]
    assert "secret" not in str(source.broker)
    with pytest.raises(ValueError, match="MFGOS_MQTT_URL"):
        MqttSource("http://broker", client_id="c")


# --- delivery guarantees -------------------------------------------------------------------


def test_replicas_share_the_state_topics(broker: str, runtime: Runtime, unique: str) -> None:
    counts = {"a": 0, "b": 0}

    class Counting:
        """A sink that tells which replica stored what (delegates to the real runtime)."""

        def __init__(self, name: str) -> None:
            self.name, self.plant_id, self.engine = name, runtime.plant_id, runtime.engine

        def receive_many(self, source: str, events: list[Incoming]) -> Any:
            counts[self.name] += len(events)
            return runtime.receive_many(source, events)

        def process_signals(self, signal_ids: list[int]) -> None:
            runtime.process_signals(signal_ids)

    async def scenario() -> None:
        stop = asyncio.Event()
        sources = [make_source(broker, unique, client=n, shared_group=f"g{unique}") for n in counts]
        tasks = [asyncio.create_task(s.run(Counting(n), stop)) for s, n in zip(sources, counts, strict=True)]
        await asyncio.wait_for(asyncio.gather(*(s.connected.wait() for s in sources)), WAIT)
        for i in range(12):
            await publish(f"plants/{unique}/HOB-01/state", {"state": "RUNNING", "ts": i})
        await until(processed(runtime, 12), "12 signals")
        stop.set()
        await asyncio.gather(*tasks)

    asyncio.run(scenario())
    assert len(signals(runtime)) == 12 and sum(counts.values()) == 12
    assert counts["a"] > 0 and counts["b"] > 0  # Mosquitto hands shared messages round robin


def test_messages_sent_while_down_arrive_after_restart(broker: str, runtime: Runtime, unique: str) -> None:
    """A fixed client id and a persistent session: the broker queues QoS 1 messages for us."""

    async def scenario() -> None:
        first = make_source(broker, unique)
        await running(first, runtime, lambda: asyncio.sleep(0))
        await publish(f"plants/{unique}/HOB-01/state", {"state": "FAULT", "ts": 1})  # nobody connected
        second = make_source(broker, unique)  # same client id
        await running(second, runtime, lambda: until(processed(runtime, 1), "the queued message"))

    asyncio.run(scenario())
    assert [s.payload["payload"]["state"] for s in signals(runtime)] == ["FAULT"]


@pytest.mark.parametrize("database_url", BOTH, indirect=True)
def test_a_message_that_could_not_be_stored_is_redelivered(broker: str, runtime: Runtime, unique: str) -> None:
    """Acknowledged only after the commit: a failed store leaves the message with the broker."""
    failures = []

    class FailingOnce:
        plant_id, engine = runtime.plant_id, runtime.engine

        def receive_many(self, source: str, events: list[Incoming]) -> Any:
            if len(failures) < 2:  # the batch, then the message on its own: the database is down
                failures.append(events[0].key)
                raise RuntimeError("database unavailable")
            return runtime.receive_many(source, events)

        def process_signals(self, signal_ids: list[int]) -> None:
            runtime.process_signals(signal_ids)

    async def scenario() -> None:
        source = make_source(broker, unique)
        stop = asyncio.Event()
        task = asyncio.create_task(source.run(FailingOnce(), stop))
        await asyncio.wait_for(source.connected.wait(), WAIT)
        await publish(f"plants/{unique}/HOB-01/state", {"state": "FAULT", "ts": 7})
        await until(processed(runtime, 1), "the redelivered message")
        stop.set()
        await task

    asyncio.run(scenario())
    (signal,) = signals(runtime)
    assert failures == [signal.source_key] * 2
    assert [e.machine_id for e in exceptions(runtime)] == ["HOB-01"]


def test_a_message_that_never_stores_does_not_block_the_rest(broker: str, runtime: Runtime, unique: str) -> None:
    """A poison message is stored as unreadable after a few attempts; the messages behind it flow."""
    attempts: list[str] = []

    class RefusesOne:
        plant_id, engine = runtime.plant_id, runtime.engine

        def receive_many(self, source: str, events: list[Incoming]) -> Any:
            for event in events:
                if event.payload.get("machine") == "HOB-01" and event.kind != "unreadable":
                    attempts.append(event.key)
                    raise ValueError("value out of range for the column")
            return runtime.receive_many(source, events)

        def process_signals(self, signal_ids: list[int]) -> None:
            runtime.process_signals(signal_ids)

    async def scenario() -> None:
        source = make_source(broker, unique)
        stop = asyncio.Event()
        task = asyncio.create_task(source.run(RefusesOne(), stop))
        await asyncio.wait_for(source.connected.wait(), WAIT)
        await publish(f"plants/{unique}/HOB-01/state", {"state": "FAULT", "ts": 1})
        await publish(f"plants/{unique}/GRD-02/state", {"state": "FAULT", "ts": 2})
        await until(processed(runtime, 2), "both messages")
        stop.set()
        await task

    asyncio.run(scenario())
    poison, good = signals(runtime)
    # three deliveries, each tried as a batch and then alone; the third time alone it is kept as unreadable
    assert attempts == [poison.source_key] * 2 * STORE_ATTEMPTS
    assert poison.error == "could not be stored: ValueError: value out of range for the column"
    assert [e.machine_id for e in exceptions(runtime)] == ["GRD-02"] and good.error is None


def test_json_that_a_database_cannot_hold_is_unreadable() -> None:
    source = MqttSource("mqtt://127.0.0.1", client_id="k", signal_map=SignalMap(plant_id="p"))
    (nan,), _ = source.read("plants/p/HOB-01/state", b'{"state": "FAULT", "temp": NaN}', 1.0)
    assert nan.payload["reason"].endswith("NaN is not a number JSON allows")
    (big,), _ = source.read("plants/p/HOB-01/state", b'{"state": "' + b"x" * 70000 + b'"}', 1.0)
    assert "70013 bytes, more than the 65536 a message may have" in big.payload["reason"]
    assert big.payload["raw_bytes"] == 70013 and big.payload["raw_truncated"]
    assert len(base64.b64decode(big.payload["raw_base64"])) == 65536


@pytest.fixture
def own_broker(tmp_path: Path) -> Iterator[Callable[[], subprocess.Popen[bytes]]]:
    """Start (and restart) a Mosquitto of our own on a free port; ended by its pid afterwards."""
    binary = shutil.which("mosquitto") or ("/usr/sbin/mosquitto" if Path("/usr/sbin/mosquitto").exists() else None)
    if binary is None:
        service_unavailable("the mosquitto binary is not installed")
    with socket.socket() as probe:
        probe.bind((HOST, 0))
        port = probe.getsockname()[1]
    config = tmp_path / "mosquitto.conf"
    config.write_text(f"listener {port} {HOST}\nallow_anonymous true\npersistence false\n")
    started: list[subprocess.Popen[bytes]] = []

    def start() -> subprocess.Popen[bytes]:
        process = subprocess.Popen([binary, "-c", str(config)], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        started.append(process)
        deadline = time.monotonic() + WAIT
        while not _reachable(HOST, port):
            if process.poll() is not None or time.monotonic() > deadline:
                pytest.fail(f"our mosquitto on port {port} did not start")
            time.sleep(0.05)
        return process

    start.port = port  # type: ignore[attr-defined]
    yield start
    for process in started:
        if process.poll() is None:
            process.terminate()
            process.wait(5)


def test_reconnects_when_the_broker_comes_back(own_broker: Any, runtime: Runtime, unique: str) -> None:
    port = own_broker.port
    first = own_broker()

    async def scenario() -> None:
        source = make_source(f"mqtt://{HOST}:{port}", unique)
        stop = asyncio.Event()
        task = asyncio.create_task(source.run(runtime, stop))
        await asyncio.wait_for(source.connected.wait(), WAIT)
        first.terminate()
        await asyncio.to_thread(first.wait, 5)
        await until(lambda: not source.connected.is_set(), "the source to notice")
        await asyncio.to_thread(own_broker)
        await asyncio.wait_for(source.connected.wait(), WAIT)
        await publish(f"plants/{unique}/HOB-01/state", {"state": "FAULT"}, url_port=port)
        await until(processed(runtime, 1), "a signal after the reconnect")
        stop.set()
        await task

    asyncio.run(scenario())
    assert [e.machine_id for e in exceptions(runtime)] == ["HOB-01"]


def test_the_server_lifespan_runs_the_configured_sources(broker: str, runtime: Runtime, unique: str) -> None:
    """The wiring `mfgos serve` uses: build_sources + with_sources around the outbox worker's lifespan."""
    settings = runtime.settings.model_copy(update={"mqtt_url": broker, "mqtt_client_id": f"mfgos-test-{unique}"})
    (source,) = build_sources(settings)
    assert isinstance(source, MqttSource)
    source.state_filter, source.sparkplug_groups, source.session_expiry = f"plants/{unique}/+/state", (unique,), 120
    source.plant_names |= {unique}
    app = create_app(runtime, lifespan=with_sources(worker_lifespan(runtime, interval=0.05), runtime, [source]))
    with TestClient(app):
        deadline = time.monotonic() + WAIT
        while not source.connected.is_set():
            assert time.monotonic() < deadline, "the source did not subscribe"
            time.sleep(0.05)
        asyncio.run(publish(f"plants/{unique}/CNC-11/state", {"state": "ERROR", "reason": "chuck pressure"}))
        deadline = time.monotonic() + WAIT
        while not (exceptions(runtime) and _sent_to(runtime, "tom")):  # the worker delivered the page
            assert time.monotonic() < deadline, "no breakdown paged"
            time.sleep(0.05)
    assert [e.summary for e in exceptions(runtime)] == ["CNC-11 ERROR: chuck pressure"]
    assert not source.connected.is_set()  # stopped with the app


def _sent_to(runtime: Runtime, person: str) -> bool:
    return any(n.status == "sent" for n in runtime.notifications_for(person))

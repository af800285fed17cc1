"""Machine intake never stops: poison messages through the real sources, then a valid one.

MQTT against the real Mosquitto at 127.0.0.1:1883 (unique topics, groups and client ids per
test, so parallel runs do not collide), OPC UA against a real asyncua server. Each poison
message must be stored as an `unreadable` signal with its reason and acknowledged, and the
valid message behind it must be stored and processed.
"""

from __future__ import annotations

import asyncio
import base64
import functools
import getpass
import json
import logging
import random
import shutil
import ssl
import subprocess
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any
from urllib.parse import quote

import aiomqtt
import pytest
from asyncua import ua
from sqlmodel import Session

from mfgos.runtime import Runtime
from models import Machine
from signals.base import Backoff
from signals.mapping import SignalMap
from signals.mqtt import MqttSource
from signals.opcua import OpcUaSource
from tests import test_signals_mqtt as mqtt_tests
from tests.conftest import service_unavailable
from tests.test_signals_mqtt import BOTH, WAIT, exceptions, make_source, publish, signals, until
from tests.test_signals_opcua import NODES, free_port, plant_server

# The MQTT tests' fixtures: the broker, a runtime on SQLite (or PostgreSQL too), a unique name per test.
broker, database_url, runtime, unique = mqtt_tests.broker, mqtt_tests.database_url, mqtt_tests.runtime, mqtt_tests.unique

# --- a Sparkplug B payload written field by field (protobuf cannot write a wrong wire type) ---


def _varint(value: int) -> bytes:
    out = bytearray()
    while True:
        byte, value = value & 0x7F, value >> 7
        out.append(byte | (0x80 if value else 0))
        if not value:
            return bytes(out)


def _field(number: int, wire: int, value: int | bytes) -> bytes:
    key = _varint(number << 3 | wire)
    if wire == 0:
        assert isinstance(value, int)
        return key + _varint(value)
    assert isinstance(value, bytes)
    return key + (_varint(len(value)) if wire == 2 else b"") + value


def varint_float_birth() -> bytes:
    """A DBIRTH whose Float metric (datatype 9) carries its float_value (field 12) as a varint."""
    state = _field(1, 2, b"Machine/State") + _field(4, 0, 12) + _field(15, 2, b"RUNNING")
    temp = _field(1, 2, b"Spindle/Temp") + _field(4, 0, 9) + _field(12, 0, 41)
    return _field(1, 0, 1_764_000_000_000) + _field(2, 2, state) + _field(2, 2, temp) + _field(3, 0, 1)


POISON: dict[str, tuple[str, bytes, str]] = {
    # name: (topic under the test's plant / group, payload, words the reason must contain)
    "deep_json": ("plants/{u}/HOB-01/state", b"[" * 30_000 + b"]" * 30_000, "JSON nested deeper than 32 levels"),
    "varint_float_dbirth": ("spBv1.0/{u}/DBIRTH/gw-1/HOB-01", varint_float_birth(),
                            "metric 'Spindle/Temp': float_value sent as a varint"),
    "random_bytes_json": ("plants/{u}/HOB-01/state", random.Random(7).randbytes(300), "not JSON"),
    "random_bytes_sparkplug": ("spBv1.0/{u}/DDATA/gw-1/HOB-01", bytes(range(256)) * 2, "unreadable Sparkplug B"),
    "invalid_utf8": ("plants/{u}/HOB-01/state", b'{"state": "\xff\xfe"}', "not UTF-8 text"),
    "huge_number": ("plants/{u}/HOB-01/state", b'{"state": "FAULT", "temp": 1e999}', "inf is not a number"),
    "nul_in_text": ("plants/{u}/HOB-01/state", b'{"state": "FA\\u0000ULT"}', "NUL character"),
}


class Recording:
    """The real runtime, recording every message the source hands over (a redelivery shows up here)."""

    def __init__(self, runtime: Runtime) -> None:
        self.runtime, self.plant_id, self.engine = runtime, runtime.plant_id, runtime.engine
        self.keys: list[str] = []

    def receive(self, **kw: Any) -> Any:
        self.keys.append(kw["source_key"])
        return self.runtime.receive(**kw)

    def process_signal(self, signal_id: int) -> None:
        self.runtime.process_signal(signal_id)


async def run_for(source: MqttSource, sink: Any, body: Callable[[], Any]) -> None:
    stop = asyncio.Event()
    task = asyncio.create_task(source.run(sink, stop))
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


@pytest.mark.parametrize("poison", list(POISON))
@pytest.mark.parametrize("database_url", BOTH, indirect=True)
def test_a_poison_message_is_kept_acked_and_the_next_one_flows(broker: str, runtime: Runtime, unique: str,
                                                              poison: str) -> None:
    topic_pattern, data, reason = POISON[poison]
    topic = topic_pattern.format(u=unique)
    sink = Recording(runtime)

    async def first() -> None:
        await publish(topic, data)
        await publish(f"plants/{unique}/GRD-02/state", {"state": "FAULT", "reason": "after the poison", "ts": 1})
        await until(lambda: any(e.machine_id == "GRD-02" for e in exceptions(runtime)), "the valid message")

    async def second() -> None:  # same client id: the broker would hand back anything not acknowledged
        await publish(f"plants/{unique}/CNC-11/state", {"state": "RUNNING", "ts": 2})
        await until(lambda: any(s.payload.get("machine") == "CNC-11" for s in signals(runtime)), "the marker")

    async def scenario() -> None:
        await run_for(make_source(broker, unique), sink, first)
        delivered = len(sink.keys)
        await run_for(make_source(broker, unique), sink, second)
        assert len(sink.keys) == delivered + 1, "something was delivered again after the restart"

    asyncio.run(scenario())
    (kept,) = [s for s in signals(runtime) if s.kind == "unreadable"]
    assert kept.payload["topic"] == topic
    assert kept.processed_at is not None and kept.error is not None and reason in kept.error, kept.error
    assert base64.b64decode(kept.payload["raw_base64"]) == data[:65536]
    assert kept.payload["raw_bytes"] == len(data)
    (breakdown,) = exceptions(runtime)
    assert breakdown.machine_id == "GRD-02" and "after the poison" in breakdown.summary
    assert machine_running(runtime, "HOB-01")  # the poison changed nothing


def test_a_bug_in_reading_keeps_the_message_and_goes_on(broker: str, runtime: Runtime, unique: str,
                                                        caplog: pytest.LogCaptureFixture) -> None:
    """The reader loop's own safety net: whatever a message makes `read` raise, it is kept and acked."""

    class Buggy(MqttSource):
        def read(self, topic: str, data: bytes, received_at: float, **kw: Any) -> Any:
            if data == b"trip":
                raise KeyError("a bug")
            return super().read(topic, data, received_at, **kw)

    source = Buggy(broker, client_id=f"mfgos-test-{unique}-bug", state_filter=f"plants/{unique}/+/state",
                   sparkplug_groups=(), signal_map=SignalMap(plant_aliases=frozenset({unique})),
                   backoff=Backoff(0.1, 0.5), session_expiry=120)

    async def body() -> None:
        await publish(f"plants/{unique}/HOB-01/state", b"trip")
        await publish(f"plants/{unique}/GRD-02/state", {"state": "FAULT", "ts": 1})
        await until(lambda: len(exceptions(runtime)) == 1, "the message behind the bug")

    with caplog.at_level(logging.ERROR, logger="signals.mqtt"):
        asyncio.run(run_for(source, runtime, body))
    kept, valid = signals(runtime)
    assert kept.kind == "unreadable" and kept.error == (f"could not be read on plants/{unique}/HOB-01/state "
                                                        "(KeyError: 'a bug')")
    assert valid.payload["machine"] == "GRD-02" and valid.error is None
    assert "storing it as unreadable" in caplog.text


@pytest.mark.parametrize("database_url", BOTH, indirect=True)
def test_another_plants_topic_changes_nothing_and_is_counted(broker: str, runtime: Runtime, unique: str) -> None:
    # Subscribed to every plant's topics, as `mfgos serve` is; this plant answers to `unique` only.
    source = make_source(broker, unique, state_filter="plants/+/+/state")

    async def body() -> None:
        await publish(f"plants/other-{unique}/CMP-02/state", {"state": "FAULT", "reason": "not ours", "ts": 1})
        await publish(f"plants/{unique}/GRD-02/state", {"state": "RUNNING", "ts": 2})
        await until(lambda: any(s.payload.get("machine") == "GRD-02" for s in signals(runtime)), "our marker")

    asyncio.run(run_for(source, runtime, body))
    assert machine_running(runtime, "CMP-02") and exceptions(runtime) == []
    assert [s.payload["topic"] for s in signals(runtime) if s.payload["topic"].startswith("plants/other-")] == []
    assert source.counts["other_plant"] >= 1


def test_another_sparkplug_group_is_ignored_and_counted(runtime: Runtime, unique: str) -> None:
    """No broker needed: `read` is the message -> signals step."""
    source = make_source("mqtt://127.0.0.1:1883", unique)  # this plant's group is `unique`
    birth = _field(2, 2, _field(1, 2, b"Machine/State") + _field(4, 0, 12) + _field(15, 2, b"FAULT"))
    assert source.read(f"spBv1.0/other-{unique}/DBIRTH/gw/CMP-02", birth, 1.0) == ([], None)
    assert source.counts["other_group"] == 1
    (ours,), _ = source.read(f"spBv1.0/{unique}/DBIRTH/gw/CMP-02", birth, 1.0)
    assert ours.payload["payload"]["state"] == "FAULT"


# --- OPC UA ----------------------------------------------------------------------------------


def test_opcua_values_of_unexpected_types_are_kept_and_the_next_one_flows(runtime: Runtime) -> None:
    url = f"opc.tcp://127.0.0.1:{free_port()}/mfgos/"

    async def scenario() -> None:
        server, variables = await plant_server(url)
        source = OpcUaSource(url, NODES, backoff=Backoff(0.1, 1.0), publishing_interval_ms=50)
        stop = asyncio.Event()
        task = asyncio.create_task(source.run(runtime, stop))
        try:
            await asyncio.wait_for(source.connected.wait(), WAIT)
            await until(lambda: len(signals(runtime)) == 4, "the four current values")
            # text that looks like a number to str.isdigit but is none to int(), a list, an empty value
            await variables["HOB-01"].write_value(ua.Variant("²", ua.VariantType.String))
            await variables["CNC-11"].write_value(ua.Variant([True, False], ua.VariantType.Boolean))
            # a failing sensor: a bad status, so the server sends an empty (null) value
            await variables["TST-01"].write_value(ua.DataValue(StatusCode=ua.StatusCode(ua.StatusCodes.BadSensorFailure)))
            await variables["GRD-02"].write_value(ua.Variant(2, ua.VariantType.Int32))  # PackML STOPPED
            await until(lambda: len(signals(runtime)) == 8 and bool(exceptions(runtime)), "the four changes")
        finally:
            stop.set()
            await asyncio.wait_for(task, WAIT)
            await server.stop()

    asyncio.run(scenario())
    latest = {s.payload.get("machine"): s for s in signals(runtime)}
    assert latest["HOB-01"].kind == "machine" and latest["HOB-01"].error == "unknown machine state '²'"
    assert latest["CNC-11"].kind == "unreadable"
    assert latest["CNC-11"].error == (f"OPC UA value of {NODES['CNC-11']}: a value of type list where a state "
                                      "(text, a number or true/false) is expected")
    assert latest["TST-01"].kind == "unreadable" and "no value (null)" in (latest["TST-01"].error or "")
    assert [e.machine_id for e in exceptions(runtime)] == ["GRD-02"]
    assert machine_running(runtime, "HOB-01") and machine_running(runtime, "CNC-11")


# --- credentials and TLS, against a Mosquitto of our own running deploy's configuration --------

USER, PASSWORD = "mfgos", "s3cret pass:@/word"  # characters a URL must escape
DEPLOY_CONFIG = Path(__file__).parent.parent / "deploy" / "mosquitto" / "mosquitto.conf"


def _tool(name: str) -> str:
    found = shutil.which(name) or next((p for p in (f"/usr/sbin/{name}", f"/usr/bin/{name}") if Path(p).exists()), None)
    if found is None:
        service_unavailable(f"{name} is not installed")
    return found


def _certificates(directory: Path) -> Path:
    """A CA and a server certificate for 127.0.0.1 signed by it (openssl); returns the CA file."""
    openssl = _tool("openssl")
    run = functools.partial(subprocess.run, check=True, capture_output=True, cwd=directory)
    run([openssl, "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "2", "-subj", "/CN=mfgos test CA",
         "-keyout", "ca.key", "-out", "ca.crt"])
    run([openssl, "req", "-newkey", "rsa:2048", "-nodes", "-subj", "/CN=127.0.0.1", "-keyout", "server.key",
         "-out", "server.csr"])
    (directory / "san.cnf").write_text("subjectAltName=IP:127.0.0.1\n")
    run([openssl, "x509", "-req", "-in", "server.csr", "-CA", "ca.crt", "-CAkey", "ca.key", "-CAcreateserial",
         "-days", "2", "-extfile", "san.cnf", "-out", "server.crt"])
    return directory / "ca.crt"


@pytest.fixture
def locked_broker(tmp_path: Path) -> Iterator[tuple[int, Path]]:
    """Mosquitto running deploy/mosquitto/mosquitto.conf, moved into `tmp_path` and onto a free port.

    Yields (TLS port, CA file); the process is ended by its pid afterwards.
    """
    binary, passwd = _tool("mosquitto"), _tool("mosquitto_passwd")
    for directory in ("passwd", "certs", "data", "config"):
        (tmp_path / directory).mkdir()
    shutil.copy(DEPLOY_CONFIG.parent / "acl", tmp_path / "config" / "acl")  # the config's acl_file
    subprocess.run([passwd, "-c", "-b", str(tmp_path / "passwd" / "passwd"), USER, PASSWORD], check=True,
                   capture_output=True)
    ca_file = _certificates(tmp_path / "certs")
    port = free_port()
    deployed = DEPLOY_CONFIG.read_text(encoding="utf-8")
    assert "allow_anonymous false" in deployed and "listener 8883\n" in deployed
    config = tmp_path / "mosquitto.conf"
    # `user`: as root, Mosquitto would switch to the `mosquitto` user, who cannot read our temporary files
    config.write_text(f"user {getpass.getuser()}\n" + deployed.replace("/mosquitto/", f"{tmp_path}/")
                      .replace("listener 8883\n", f"listener {port} 127.0.0.1\n"))
    process = subprocess.Popen([binary, "-c", str(config)], stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    try:
        deadline = time.monotonic() + WAIT
        while not mqtt_tests._reachable("127.0.0.1", port):
            if process.poll() is not None or time.monotonic() > deadline:
                pytest.fail(f"our mosquitto did not start: {process.stderr.read() if process.stderr else ''}")
            time.sleep(0.05)
        yield port, ca_file
    finally:
        process.terminate()
        process.wait(5)


async def _connects(source: MqttSource, sink: Runtime, seconds: float) -> bool:
    """Whether `source` subscribes within `seconds` (it keeps retrying until then)."""
    stop = asyncio.Event()
    task = asyncio.create_task(source.run(sink, stop))
    try:
        await asyncio.wait_for(source.connected.wait(), seconds)
        return True
    except TimeoutError:
        return False
    finally:
        stop.set()
        await asyncio.wait_for(task, WAIT)


def test_the_deployed_broker_refuses_a_wrong_password_and_takes_the_right_one(
        locked_broker: tuple[int, Path], runtime: Runtime, unique: str, caplog: pytest.LogCaptureFixture) -> None:
    port, ca_file = locked_broker
    secret = quote(PASSWORD, safe="")

    async def scenario() -> None:
        for url in (f"mqtts://127.0.0.1:{port}", f"mqtts://{USER}:wrong@127.0.0.1:{port}"):
            assert not await _connects(make_source(url, unique, client="refused", ca_file=ca_file), runtime, 1.5), url
        good = make_source(f"mqtts://{USER}:{secret}@127.0.0.1:{port}", unique, ca_file=ca_file)

        async def body() -> None:
            async with aiomqtt.Client("127.0.0.1", port, username=USER, password=PASSWORD,
                                      tls_context=ssl.create_default_context(cafile=str(ca_file)),
                                      protocol=aiomqtt.ProtocolVersion.V5) as client:
                await client.publish(f"plants/{unique}/GRD-02/state", json.dumps({"state": "FAULT"}), qos=1)
            await until(lambda: len(exceptions(runtime)) == 1, "the message through the locked broker")

        await run_for(good, runtime, body)

    with caplog.at_level(logging.ERROR, logger="signals.mqtt"):
        asyncio.run(scenario())
    assert "refused the user name and password in MFGOS_MQTT_URL" in caplog.text
    assert PASSWORD not in caplog.text and secret not in caplog.text
    assert [e.machine_id for e in exceptions(runtime)] == ["GRD-02"]


def test_mqtts_checks_the_broker_against_the_configured_ca(
        locked_broker: tuple[int, Path], runtime: Runtime, unique: str) -> None:
    tls, ca_file = locked_broker
    url = f"mqtts://{USER}:{quote(PASSWORD, safe='')}@127.0.0.1:{tls}"

    async def scenario() -> None:
        # The system's CAs do not know the plant's CA: no connection, so no credentials sent in the clear.
        assert not await _connects(make_source(url, unique, client="system-ca"), runtime, 1.5)
        assert await _connects(make_source(url, unique, client="plant-ca", ca_file=ca_file), runtime, WAIT)

    asyncio.run(scenario())
    with pytest.raises(ValueError, match="only used with TLS"):
        make_source(f"mqtt://127.0.0.1:{tls}", unique, ca_file=ca_file)
    with pytest.raises(ValueError, match="not a readable file"):
        make_source(url, unique, ca_file=ca_file.parent / "missing.crt")


"""The plant simulator (signals/simulator.py, `mfgos simulate`, `mfgos demo --simulate`) against the real
Mosquitto, a real asyncua server, mfgos's own sources and a real `mfgos serve` (no mocks).

Each test gives its plant a unique id (and so unique topics and Sparkplug group), so runs in
parallel on the shared broker never see each other's machines.
"""

from __future__ import annotations

import asyncio
import logging
import os
import queue
import re
import signal
import socket
import subprocess
import sys
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from datetime import datetime
from pathlib import Path

import paho.mqtt.client as paho
import pytest
from asyncua import Client
from sqlmodel import Session, select

from bot.channels.base import CaptureChannel
from mfgos.config import Settings
from mfgos.runtime import Runtime
from models import PlantException, Signal
from models.db import make_engine
from routing.clock import SimulatedClock
from signals import sparkplug
from signals.base import Backoff
from signals.mapping import SignalMap
from signals.mqtt import MqttSource
from signals.opcua import OpcUaSource
from signals.simulator import Change, MqttPlant, OpcUaPlant, Simulator, describe, load_config
from tests.conftest import service_unavailable

PLANT = Path(__file__).parent / "data" / "pune_plant.yaml"
HOST, PORT = "127.0.0.1", 1883
MACHINES = ["HOB-01", "GRD-02", "CNC-11", "HT-01", "WSH-01", "ASM-01", "TST-01", "CMP-02"]
ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture(autouse=True)
def _quiet_asyncua() -> None:
    logging.getLogger("asyncua").setLevel(logging.ERROR)


def plant_file(directory: Path, *, min_down: str | None = None, extra: str = "") -> tuple[Path, str]:
    """The test plant under a unique id (its own topics and Sparkplug group), machines with `min_down`."""
    plant_id = f"sim-{uuid.uuid4().hex[:10]}"
    text = PLANT.read_text(encoding="utf-8").replace("plant: {id: pune-1,", f"plant: {{id: {plant_id},")
    if min_down:
        for machine in MACHINES:
            text = text.replace(f"{{id: {machine}, ", f"{{id: {machine}, min_down: {min_down}, ")
    path = directory / f"{plant_id}.yaml"
    path.write_text(text + extra, encoding="utf-8")
    return path, plant_id


def require_broker() -> None:
    try:
        socket.create_connection((HOST, PORT), timeout=1).close()
    except OSError:
        service_unavailable(f"Mosquitto at {HOST}:{PORT} is unreachable")


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind((HOST, 0))
        return probe.getsockname()[1]


def faults(changes: list[Change]) -> list[Change]:
    return [c for c in changes if c.state == "FAULT"]


# --- what the simulator decides --------------------------------------------------------------


def test_seeded_plans_are_reproducible_and_mix_short_long_and_flapping_faults(tmp_path: Path) -> None:
    path, _ = plant_file(tmp_path, min_down="2m")
    plan = load_config(path, seed=11, faults_per_hour=4).plan(8 * 3600)
    assert plan == load_config(path, seed=11, faults_per_hour=4).plan(8 * 3600)
    assert plan != load_config(path, seed=12, faults_per_hour=4).plan(8 * 3600)
    # more machines leave the first ones' changes alone; the extra ones are named SIM-0009, ...
    wider = load_config(path, machines=10, seed=11, faults_per_hour=4)
    assert [m.id for m in wider.machines[8:]] == ["SIM-0009", "SIM-0010"]
    assert [c for c in wider.plan(8 * 3600) if c.machine in MACHINES] == plan
    assert [m.id for m in load_config(path, machines=3).machines] == MACHINES[:3]

    stops = faults(plan)
    assert len({(c.machine, round(c.at)) for c in stops}) > 8 * 8 * 4 * 0.6  # about 4 an hour, flaps count more
    assert any(c.down_for < 120 for c in stops) and any(c.down_for > 120 for c in stops)
    assert any(c.state == "IDLE" for c in plan)
    flapped = [c for c in stops if any(o.machine == c.machine and 0 < o.at - c.at < 600 for o in stops)]
    assert len(flapped) >= 3  # some machines stop again and again within minutes
    for machine in MACHINES:  # every FAULT ends in RUNNING, in time order, per machine
        mine = [c for c in plan if c.machine == machine]
        assert mine[0].state == "RUNNING" and all(a.at <= b.at for a, b in zip(mine, mine[1:], strict=False))


def test_machines_report_where_the_plant_file_maps_them(tmp_path: Path) -> None:
    path, plant_id = plant_file(tmp_path, extra=(
        "\nsignals:\n  sparkplug_groups: [gears]\n  topics:\n"
        "    \"spBv1.0/pune/+/gateway-3/lc300\": HOB-01\n    \"plants/+/grinder2/state\": GRD-02\n"
        "    \"plants/pune/grinder2/state\": GRD-02\n  opcua:\n    CNC-11: \"ns=3;s=CNC-11.PackML.StateCurrent\"\n"))
    machines = {m.id: m for m in load_config(path, protocol="mixed").machines}
    hob, grd, cnc, ht = machines["HOB-01"], machines["GRD-02"], machines["CNC-11"], machines["HT-01"]
    assert (hob.protocol, hob.group, hob.edge_node, hob.device) == ("sparkplug", "pune", "gateway-3", "lc300")
    assert (grd.protocol, grd.json_topic) == ("json", "plants/pune/grinder2/state")  # the first without wildcards
    assert (cnc.protocol, cnc.json_topic, cnc.opcua_node) == ("json", f"plants/{plant_id}/CNC-11/state",
                                                               "ns=3;s=CNC-11.PackML.StateCurrent")
    assert (ht.protocol, ht.group, ht.edge_node, ht.device) == ("sparkplug", "gears", "mfgos-sim", "HT-01")
    assert ht.opcua_node == "ns=2;s=HT-01.State"


def simulate(*args: str, timeout: float = 60) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("MFGOS_")}
    return subprocess.run([sys.executable, "-m", "mfgos.cli", "simulate", *args], cwd=ROOT, env=env,
                          capture_output=True, text=True, timeout=timeout, check=True)


def test_the_command_prints_the_same_changes_for_the_same_seed(tmp_path: Path) -> None:
    path, _ = plant_file(tmp_path)
    common = ["--plant", str(path), "--broker", "none", "--opcua-port", "0", "--duration", "2", "--faults", "7200"]
    first, second = simulate(*common, "--seed", "5"), simulate(*common, "--seed", "5")
    changes = [line for line in first.stdout.splitlines() if re.match(r"\s+\d+\.\ds ", line)]
    assert len(changes) > 8 and any(" FAULT E-" in line for line in changes)
    assert changes == [line for line in second.stdout.splitlines() if re.match(r"\s+\d+\.\ds ", line)]
    other = simulate(*common, "--seed", "6")
    assert changes != [line for line in other.stdout.splitlines() if re.match(r"\s+\d+\.\ds ", line)]


# --- Sparkplug B on the real broker ---------------------------------------------------------


class Recorder:
    """Every message on the given filters, in arrival order, from the real broker."""

    def __init__(self, *filters: str) -> None:
        self.messages: list[tuple[str, bytes]] = []
        self.subscribed = threading.Event()
        self.client = paho.Client(paho.CallbackAPIVersion.VERSION2, protocol=paho.MQTTv5)
        self.client.on_message = lambda _c, _u, m: self.messages.append((m.topic, bytes(m.payload)))
        self.client.on_subscribe = lambda *_a: self.subscribed.set()
        self.client.on_connect = lambda c, *_a: c.subscribe([(f, 1) for f in filters])
        self.client.connect(HOST, PORT)
        self.client.loop_start()
        assert self.subscribed.wait(10)

    def close(self) -> None:
        self.client.disconnect()
        self.client.loop_stop()


def test_sparkplug_births_data_seq_and_rebirth_decode_as_mfgos_reads_them(tmp_path: Path) -> None:
    require_broker()
    path, plant_id = plant_file(tmp_path)
    config = load_config(path, seed=3, faults_per_hour=7200, rate=40, protocol="sparkplug")
    recorder = Recorder(f"spBv1.0/{plant_id}/#")
    mqtt = MqttPlant(f"mqtt://{HOST}:{PORT}", config)
    simulator = Simulator(config, mqtt=mqtt)

    async def scenario() -> None:
        stop = asyncio.Event()
        task = asyncio.create_task(simulator.run(stop, duration=3.0))
        await asyncio.sleep(1.5)
        request = paho.Client(paho.CallbackAPIVersion.VERSION2, protocol=paho.MQTTv5)
        request.connect(HOST, PORT)
        request.loop_start()
        request.publish(f"spBv1.0/{plant_id}/NCMD/mfgos-sim", sparkplug.encode_rebirth(int(time.time() * 1000)),
                        qos=1).wait_for_publish(10)
        request.loop_stop()
        request.disconnect()
        await task

    try:
        asyncio.run(scenario())
        time.sleep(0.5)
    finally:
        recorder.close()
    messages = [(sparkplug.parse_topic(topic), sparkplug.decode(data)) for topic, data in recorder.messages]
    kinds = [topic.message_type for topic, _ in messages if topic is not None]
    assert kinds[:1 + len(MACHINES)] == ["NBIRTH", *["DBIRTH"] * len(MACHINES)]
    assert kinds.count("NBIRTH") == 2, "the rebirth request makes the node send its births again"
    assert "NCMD" in kinds and kinds.count("DDATA") > 60
    seq = None
    for topic, payload in messages:
        assert topic is not None
        if topic.message_type == "NCMD":
            continue
        if topic.message_type == "NBIRTH":
            assert payload.seq == 0
            assert {m.name: m.value for m in payload.metrics}["bdSeq"] == 0
        else:
            assert payload.seq == (seq + 1) % 256, "seq counts every message of the edge node"
        seq = payload.seq
        if topic.message_type == "DDATA":
            assert all(m.name is None and m.alias is not None for m in payload.metrics), "data by alias only"
        if topic.message_type == "DBIRTH":
            assert {m.name for m in payload.metrics} == {"Machine/State", "Machine/FaultCode",
                                                        "Production/PartCount", "Spindle/Temperature"}

    # mfgos's reader names every alias (no rebirth asked) and reads exactly the simulator's states
    source = MqttSource(f"mqtt://{HOST}:{PORT}", client_id="unused",
                        signal_map=SignalMap(plant_id=plant_id, machines=frozenset(MACHINES)))
    read: dict[str, list[str]] = {m: [] for m in MACHINES}
    for topic, data in recorder.messages:
        signals, rebirth = source.read(topic, data, time.time())
        assert rebirth is None
        for item in signals:
            body = item.payload["payload"]
            if not read[item.payload["machine"]] or read[item.payload["machine"]][-1] != body["state"]:
                read[item.payload["machine"]].append(body["state"])
            if body["state"] == "FAULT":
                assert re.fullmatch(r"E-\d{3}", body["reason"] or "")
    for machine in MACHINES:
        expected = [c.state for c in simulator.changes if c.machine == machine]
        collapsed = [s for i, s in enumerate(expected) if i == 0 or expected[i - 1] != s]
        assert read[machine] == collapsed


def test_a_killed_simulator_s_will_takes_its_sparkplug_machines_down(tmp_path: Path) -> None:
    require_broker()
    path, plant_id = plant_file(tmp_path)
    recorder = Recorder(f"spBv1.0/{plant_id}/#")
    env = {k: v for k, v in os.environ.items() if not k.startswith("MFGOS_")}
    process = subprocess.Popen([sys.executable, "-m", "mfgos.cli", "simulate", "--plant", str(path), "--protocol",
                                "sparkplug", "--opcua-port", "0", "--broker", f"mqtt://{HOST}:{PORT}", "--quiet"],
                               cwd=ROOT, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        until(lambda: sum(1 for topic, _ in recorder.messages if "/DBIRTH/" in topic) == len(MACHINES),
              "the births", 30)
        process.kill()  # no clean disconnect: the broker sends the Will
        until(lambda: any("/NDEATH/" in topic for topic, _ in recorder.messages), "the NDEATH", 30)
    finally:
        if process.poll() is None:
            process.kill()
        process.wait(10)
        recorder.close()
    source = MqttSource(f"mqtt://{HOST}:{PORT}", client_id="unused",
                        signal_map=SignalMap(plant_id=plant_id, machines=frozenset(MACHINES)))
    down: set[str] = set()
    for topic, data in recorder.messages:
        signals, _ = source.read(topic, data, time.time())
        if "/NDEATH/" in topic:
            down = {item.payload["machine"] for item in signals if item.payload["payload"]["state"] == "DOWN"}
    assert down == set(MACHINES), "the NDEATH's bdSeq matches the NBIRTH: every device of the node goes down"


# --- OPC UA: mfgos's source subscribes to the simulator's server ---------------------------------


@pytest.fixture
def runtime(tmp_path: Path) -> Iterator[Runtime]:
    settings = Settings(_env_file=None, database_url=f"sqlite:///{tmp_path / 'sim.db'}", plant_file=PLANT)
    rt = Runtime(settings, clock=SimulatedClock(datetime.fromisoformat("2026-11-25T09:00:00+05:30")),
                 channels={"console": CaptureChannel("console")})
    yield rt
    asyncio.run(rt.aclose())


def breakdowns(engine: object) -> set[str]:
    with Session(engine) as session:  # type: ignore[arg-type]
        return {e.machine_id or "" for e in session.exec(select(PlantException)) if e.type == "breakdown"}


def test_opcua_nodes_are_read_and_subscribed_by_the_opcua_source(runtime: Runtime, tmp_path: Path) -> None:
    # CNC-11's state is a PackML number in a namespace of its own, as the plant file says
    path, _ = plant_file(tmp_path, extra='\nsignals:\n  opcua:\n    CNC-11: "ns=3;s=CNC-11.PackML.StateCurrent"\n')
    config = load_config(path, seed=4, faults_per_hour=3600, rate=0)
    opcua = OpcUaPlant(config, free_port())
    simulator = Simulator(config, opcua=opcua)
    connected_at: list[float] = []

    async def scenario() -> None:
        stop = asyncio.Event()
        task = asyncio.create_task(simulator.run(stop, duration=6.0))
        await simulator.ready.wait()
        began = time.monotonic()
        source = OpcUaSource(opcua.url, config.opcua_nodes(), backoff=Backoff(0.1, 1.0), publishing_interval_ms=50)
        source_stop = asyncio.Event()
        reading = asyncio.create_task(source.run(runtime, source_stop))
        await asyncio.wait_for(source.connected.wait(), 15)
        connected_at.append(time.monotonic() - began)
        client = Client(opcua.url, timeout=10)
        await client.connect()
        try:
            await asyncio.sleep(2.0)
            code = await client.get_node("ns=2;s=HOB-01.FaultCode").read_value()
            parts = await client.get_node("ns=2;s=HOB-01.PartCount").read_value()
            state = await client.get_node("ns=2;s=HOB-01.State").read_value()
            assert state in ("RUNNING", "IDLE", "FAULT") and isinstance(parts, int)
            assert (code == "") == (state != "FAULT")
            assert await client.get_node("ns=3;s=CNC-11.PackML.StateCurrent").read_value() in (4, 6, 9)
        finally:
            await client.disconnect()
        await task
        await asyncio.sleep(1.0)
        source_stop.set()
        await asyncio.wait_for(reading, 15)

    asyncio.run(scenario())
    after = connected_at[0] + 0.5
    must = {c.machine for c in faults(simulator.changes) if c.at > after}
    may = {c.machine for c in faults(simulator.changes)}
    assert must, "the seed makes faults after the subscription"
    assert must <= breakdowns(runtime.engine) <= may
    with Session(runtime.engine) as session:
        rows = list(session.exec(select(Signal)))
    assert rows and all(s.source == "opcua" and s.error is None for s in rows)
    assert {s.payload["payload"]["state"] for s in rows if s.payload["machine"] == "CNC-11"} <= {
        "EXECUTE", "IDLE", "ABORTED"}


# --- black box: `mfgos simulate` against `mfgos serve` ------------------------------------------


class Process:
    """A `mfgos` process whose output is read on a thread (so it never blocks)."""

    def __init__(self, args: list[str], env: dict[str, str], cwd: Path) -> None:
        self.process = subprocess.Popen([sys.executable, "-m", "mfgos.cli", *args], cwd=cwd, env=env,
                                        stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
        self.lines: queue.Queue[str] = queue.Queue()
        self.output: list[str] = []
        threading.Thread(target=self._read, daemon=True).start()

    def _read(self) -> None:
        assert self.process.stdout is not None
        for line in self.process.stdout:
            self.lines.put(line)

    def wait_for(self, marker: str, timeout: float = 90) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline and self.process.poll() is None:
            try:
                line = self.lines.get(timeout=0.2)
            except queue.Empty:
                continue
            self.output.append(line)
            if marker in line:
                return
        pytest.fail(f"no {marker!r}: {''.join(self.output)}")

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGINT)
            try:
                self.process.wait(timeout=30)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(10)


def until(condition: Callable[[], bool], what: str, timeout: float, nudge: Callable[[], None] | None = None) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            pytest.fail(f"timed out waiting for {what}")
        if nudge is not None:
            nudge()
        time.sleep(0.3)


MIN_DOWN = 4.0  # seconds: short faults last up to 2.8 s, long ones from 6 s


FLAPPING = "\nsignals:\n  flapping: {stops: 3, within: 1m}\n"  # the 4th stop within a minute opens one breakdown


def opens_breakdown(plan: list[Change], machine: str, end: float) -> bool:
    """Whether the plan makes `machine` open a breakdown: a FAULT longer than min_down, one still on at the
    end (the simulator stops, the machine stays down), or a 4th stop within a minute (the run is shorter)."""
    stops = [c for c in faults(plan) if c.machine == machine]
    return len(stops) > 3 or any(c.down_for > MIN_DOWN or c.at + c.down_for > end for c in stops)


def test_simulate_against_serve_long_faults_and_flapping_open_exceptions_short_ones_page_nobody(
        tmp_path: Path) -> None:
    require_broker()
    path, plant_id = plant_file(tmp_path, min_down="4s", extra=FLAPPING)
    seed, duration, rate = 7, 14.0, 600
    plan = load_config(path, seed=seed, faults_per_hour=rate).plan(duration)
    expected = {m for m in MACHINES if opens_breakdown(plan, m, duration)}
    stopped = {c.machine for c in faults(plan)}
    flapped = {m for m in MACHINES if all(c.down_for < MIN_DOWN for c in faults(plan) if c.machine == m)} & expected
    assert flapped and stopped - expected and expected - flapped, \
        "the seed gives long faults, flapping and only a few short faults"
    assert all(abs(c.at - duration) > 0.5 for c in plan), "no change on the edge of the run"

    database = f"sqlite:///{tmp_path / 'serve.db'}"
    client_id = f"mfgos-test-{plant_id}"
    base = {k: v for k, v in os.environ.items() if not k.startswith("MFGOS_")}
    env = {**base, "PYTHONUNBUFFERED": "1", "MFGOS_DATABASE_URL": database, "MFGOS_PLANT_FILE": str(path),
           "MFGOS_MQTT_URL": f"mqtt://{HOST}:{PORT}", "MFGOS_MQTT_CLIENT_ID": client_id}
    serve = Process(["serve", "--host", "127.0.0.1", "--port", "0"], env, tmp_path)
    engine = make_engine(database)
    marker = paho.Client(paho.CallbackAPIVersion.VERSION2, protocol=paho.MQTTv5)
    try:
        serve.wait_for("mfgos console:")
        marker.connect(HOST, PORT)
        marker.loop_start()

        def stored() -> bool:
            with Session(engine) as session:
                return session.exec(select(Signal)).first() is not None

        until(stored, "serve to subscribe", 30, lambda: marker.publish(
            f"plants/{plant_id}/TST-01/state", '{"state": "RUNNING", "ts": "marker"}', qos=1))
        run = Process(["simulate", "--plant", str(path), "--seed", str(seed), "--faults", str(rate),
                       "--duration", str(duration), "--rate", "20", "--opcua-port", "0",
                       "--broker", f"mqtt://{HOST}:{PORT}"], env, tmp_path)
        run.wait_for("mfgos simulate: stopped", timeout=duration + 60)
        assert run.process.wait(10) == 0
        printed = [line.rstrip("\n") for line in run.output if re.match(r"\s+\d+\.\ds ", line)]
        assert printed == [describe(c) for c in plan], "the run made exactly the changes the seed plans"
        until(lambda: breakdowns(engine) >= expected, f"breakdowns on {sorted(expected)}", MIN_DOWN + 20)
        time.sleep(MIN_DOWN + 1)  # a short fault that wrongly opened would show by now
        assert breakdowns(engine) == expected
    finally:
        marker.loop_stop()
        marker.disconnect()
        serve.stop()
        engine.dispose()
        end = paho.Client(paho.CallbackAPIVersion.VERSION2, client_id=client_id, protocol=paho.MQTTv5)
        end.connect(HOST, PORT, clean_start=True)
        end.disconnect()


# --- `mfgos demo --simulate` --------------------------------------------------------------------


def test_demo_simulate_opens_an_exception_on_its_own(tmp_path: Path) -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith("MFGOS_")}
    database = f"sqlite:///{tmp_path / 'demo.db'}"
    demo = Process(["demo", "--simulate", "--faults", "3600", "--seed", "2", "--port", "0",
                    "--database", database], {**env, "PYTHONUNBUFFERED": "1"}, tmp_path)
    engine = make_engine(database)
    try:
        demo.wait_for("mfgos console:")
        demo.wait_for("simulator:", timeout=30)
        until(lambda: bool(breakdowns(engine)), "a breakdown opened by a simulated fault", 45)
    finally:
        demo.stop()
        engine.dispose()
    assert any(" FAULT E-" in line for line in demo.output + list(demo.lines.queue))

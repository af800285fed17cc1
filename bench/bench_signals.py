"""Machine signals at plant scale: how fast the MQTT source stores state messages, and how late.

    python bench/bench_signals.py [--burst 50000] [--rate 5000] [--seconds 5] [--sparkplug 20000]
                                  [--database postgresql://postgres@127.0.0.1:5432/test]

Starts a Mosquitto of its own on a free port (`max_queued_messages` raised so a burst fits;
the shared broker is left alone), then for SQLite and for the PostgreSQL given (a schema of
its own, dropped afterwards):

- burst: the MQTT source subscribes once (a persistent session), goes away, and `--burst`
  JSON state messages are published at QoS 1 by `mosquitto_pub`, one process per machine
  topic. The source comes back and drains its queue: stored msg/s from its start to the last
  commit, processed msg/s to the last processing commit, and a count of what the store holds
  (nothing may be missing). Baseline in the same run: `mosquitto_sub` draining the same
  stream from a persistent session of its own, at QoS 1, writing to /dev/null.
- live: with the source running, a publisher sends `--rate` messages/s for `--seconds`
  seconds, each stamped with its publish time; lag = commit time - publish time (stored),
  and processing-commit time - publish time (processed), p50 and p99.

And without a broker or a database: Sparkplug B DDATA telemetry (ten aliased metrics, no
state metric) through `MqttSource.read`, decoded and filtered, messages/s.

With `--simulator` the load comes from the plant simulator instead (`mfgos simulate`, its own
process): `--machines` machines (the plant's eight and SIM-0009, ..., added to a copy of the
plant file so mfgos knows them all), half JSON and
half Sparkplug B, reporting `--rate` messages/s for `--seconds` seconds with `--faults` faults
per machine-hour, read by the MQTT source (JSON and Sparkplug). Baseline in the same run:
`mosquitto_sub` subscribed to the same topics. It prints published, read by mfgos and received
by `mosquitto_sub` (each over the run's window, msg/s and the ratio), signals stored, lag p50/p99
of the stored states (commit time - the message's own timestamp) and the breakdowns opened.
    python bench/bench_signals.py --simulator [--machines 200] [--rate 2000] [--seconds 10] [--faults 60]

Prints one JSON object. The stream: eight machines of tests/data/pune_plant.yaml, each
sending `{"state": "RUNNING", "ts": ..., "seq": ...}`, with a FAULT and a RUNNING again every
1,000 messages per machine (so breakdowns open and close while the stream flows).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import re
import resource
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

import paho.mqtt.client as paho  # noqa: E402
from sqlalchemy import text as sa_text  # noqa: E402
from sqlmodel import Session, func, select  # noqa: E402

from mfgos.config import Settings  # noqa: E402
from mfgos.runtime import Runtime  # noqa: E402
from models import PlantException, Signal, make_engine  # noqa: E402
from signals import sparkplug_b_pb2 as pb  # noqa: E402
from signals.base import Backoff, Incoming  # noqa: E402
from signals.mapping import SignalMap  # noqa: E402
from signals.mqtt import MqttSource  # noqa: E402
from signals.simulator import extra_machine_id  # noqa: E402

PLANT = ROOT / "tests" / "data" / "pune_plant.yaml"
PLANT_ID = "pune-1"
MACHINES = ["HOB-01", "GRD-02", "CNC-11", "HT-01", "WSH-01", "ASM-01", "TST-01", "CMP-02"]
HOST = "127.0.0.1"
FAULT_EVERY = 1000  # per machine: a FAULT, then RUNNING again


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind((HOST, 0))
        return probe.getsockname()[1]


@contextmanager
def own_broker(queue: int) -> Iterator[int]:
    """A Mosquitto on a free port whose sessions may queue `queue` messages; stopped by its pid after."""
    binary = shutil.which("mosquitto") or "/usr/sbin/mosquitto"
    port = free_port()
    with tempfile.TemporaryDirectory() as directory:
        config = Path(directory) / "mosquitto.conf"
        config.write_text(f"listener {port} {HOST}\nallow_anonymous true\npersistence false\n"
                          f"max_queued_messages {queue}\n")
        process = subprocess.Popen([binary, "-c", str(config)], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        try:
            deadline = time.monotonic() + 10
            while True:
                try:
                    socket.create_connection((HOST, port), timeout=1).close()
                    break
                except OSError:
                    if process.poll() is not None or time.monotonic() > deadline:
                        raise RuntimeError("our mosquitto did not start") from None
                    time.sleep(0.05)
            yield port
        finally:
            process.terminate()
            process.wait(10)


@contextmanager
def database(kind: str, postgres: str) -> Iterator[str]:
    """A fresh store's URL: a temporary SQLite file, or a new schema on the PostgreSQL given."""
    if kind == "sqlite":
        with tempfile.TemporaryDirectory() as directory:
            yield f"sqlite:///{directory}/signals.db"
        return
    schema = f"bench_signals_{uuid.uuid4().hex[:10]}"
    admin = make_engine(postgres)
    with admin.begin() as connection:
        connection.execute(sa_text(f'CREATE SCHEMA "{schema}"'))
    try:
        separator = "&" if "?" in postgres else "?"
        yield f"{postgres}{separator}options=-csearch_path%3D{schema}"
    finally:
        with admin.begin() as connection:
            connection.execute(sa_text(f'DROP SCHEMA "{schema}" CASCADE'))
        admin.dispose()


def stream(count: int, prefix: str) -> dict[str, list[str]]:
    """The burst: `count` state messages spread over the machines, one list of lines per topic."""
    lines: dict[str, list[str]] = {m: [] for m in MACHINES}
    base = int(time.time() * 1000)
    for seq in range(count):
        machine = MACHINES[seq % len(MACHINES)]
        state = "FAULT" if len(lines[machine]) % FAULT_EVERY == FAULT_EVERY - 1 else "RUNNING"
        lines[machine].append(json.dumps({"state": state, "ts": base + seq, "seq": seq}))
    return {f"plants/{PLANT_ID}/{m}/state{prefix}": v for m, v in lines.items() if v}


def publish_lines(port: int, topics: dict[str, list[str]]) -> None:
    """`mosquitto_pub -l` per topic, all at once, each message at QoS 1."""
    processes = []
    for topic, lines in topics.items():
        process = subprocess.Popen(["mosquitto_pub", "-h", HOST, "-p", str(port), "-q", "1", "-t", topic, "-l"],
                                   stdin=subprocess.PIPE)
        assert process.stdin is not None
        process.stdin.write(("\n".join(lines) + "\n").encode())
        process.stdin.close()
        processes.append(process)
    for process in processes:
        if process.wait(300) != 0:
            raise RuntimeError("mosquitto_pub failed")


def baseline(port: int, count: int) -> dict[str, int]:
    """msg/s at which `mosquitto_sub` drains `count` queued QoS 1 messages from a persistent session,
    by the wall clock and by its own CPU time."""
    client = f"bench-baseline-{uuid.uuid4().hex[:8]}"
    topic = f"plants/{PLANT_ID}/+/state/base"
    common = ["mosquitto_sub", "-h", HOST, "-p", str(port), "-V", "mqttv5", "-q", "1", "-c", "-i", client,
              "-x", "3600", "-t", topic]
    subprocess.run([*common, "-E"], check=True)  # the session and its subscription
    publish_lines(port, stream(count, "/base"))
    start, cpu = time.perf_counter(), _children_cpu()
    subprocess.run([*common, "-C", str(count)], check=True, stdout=subprocess.DEVNULL, timeout=600)
    return {"msg_s": round(count / (time.perf_counter() - start)),
            "msg_per_cpu_s": round(count / max(_children_cpu() - cpu, 1e-3))}


def _children_cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


class Timed:
    """The runtime as the source's sink, timing each commit (stored, and processed).

    The send time is the payload's `sent`; with `stamps`, a payload without it is timed by its own
    `ts` (epoch milliseconds), as the simulator's messages carry."""

    def __init__(self, runtime: Runtime, *, stamps: bool = False) -> None:
        self.stamps = stamps
        self.runtime, self.plant_id, self.engine = runtime, runtime.plant_id, runtime.engine
        self.stored = self.processed = 0
        self.batches: list[int] = []
        self.sent_at: dict[int, float] = {}  # signal id -> publish time (seconds)
        self.stored_lag: list[float] = []
        self.processed_lag: list[float] = []
        self.last_stored = self.last_processed = 0.0

    def receive_many(self, source: str, events: list[Incoming]) -> Any:
        received = self.runtime.receive_many(source, events)
        now = time.time()
        self.batches.append(len(events))
        for event, row in zip(events, received, strict=True):
            if row.duplicate:
                continue
            self.stored += 1
            self.processed += event.repeat  # a repeat of the machine's state is stored already processed
            body = event.payload["payload"]
            sent = body.get("sent")
            if sent is None and self.stamps and isinstance(body.get("ts"), int):
                sent = body["ts"] / 1000
            if sent is not None:
                self.sent_at[row.signal_id] = sent
                self.stored_lag.append(now - sent)
                if event.repeat:
                    self.processed_lag.append(now - sent)
        self.last_stored = now
        if any(event.repeat for event in events):
            self.last_processed = now
        return received

    def process_signals(self, signal_ids: list[int]) -> None:
        self.runtime.process_signals(signal_ids)
        now = time.time()
        self.processed += len(signal_ids)
        self.processed_lag.extend(now - self.sent_at[i] for i in signal_ids if i in self.sent_at)
        self.last_processed = now


def source_for(port: int, client_id: str) -> MqttSource:
    return MqttSource(f"mqtt://{HOST}:{port}", client_id=client_id, signal_map=SignalMap(plant_id=PLANT_ID),
                      sparkplug_groups=(), backoff=Backoff(first=0.05, cap=0.5), session_expiry=3600)


async def until(condition: Any, timeout: float) -> bool:
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            return False
        await asyncio.sleep(0.01)
    return True


def quantiles(values: list[float]) -> dict[str, float | None]:
    if len(values) < 2:
        return {"p50": None, "p99": None}
    cuts = statistics.quantiles(values, n=100)
    return {"p50": round(cuts[49], 3), "p99": round(cuts[98], 3)}


async def burst(port: int, runtime: Runtime, count: int) -> dict[str, Any]:
    client_id = f"bench-mfgos-{uuid.uuid4().hex[:8]}"
    first, sink = source_for(port, client_id), Timed(runtime)
    stop = asyncio.Event()
    task = asyncio.create_task(first.run(sink, stop))
    await asyncio.wait_for(first.connected.wait(), 10)
    stop.set()
    await task  # gone, with its session and subscription kept by the broker
    await asyncio.to_thread(publish_lines, port, stream(count, ""))
    source, stop = source_for(port, client_id), asyncio.Event()
    start, cpu = time.time(), time.process_time()
    task = asyncio.create_task(source.run(sink, stop))
    stored = await until(lambda: sink.stored >= count, 600)
    processed = await until(lambda: sink.processed >= count, 600)
    cpu = time.process_time() - cpu  # every thread of this process: reading, storing, processing
    stop.set()
    await task
    with Session(runtime.engine) as session:
        held = session.exec(select(func.count()).select_from(Signal).where(Signal.source == "mqtt")).one()
    return {"messages": count, "stored": sink.stored, "in_store": held, "complete": stored and held == count,
            "stored_msg_s": round(count / (sink.last_stored - start)) if stored else None,
            "processed_msg_s": round(count / (sink.last_processed - start)) if processed else None,
            "msg_per_cpu_s": round(count / cpu),
            "mean_batch": round(statistics.fmean(sink.batches), 1) if sink.batches else 0}


def paced_publisher(port: int, rate: int, seconds: float, topics: list[str]) -> float:
    """Publish `rate` stamped messages a second for `seconds` seconds at QoS 1; returns the achieved rate."""
    client = paho.Client(paho.CallbackAPIVersion.VERSION2, protocol=paho.MQTTv5)
    client.max_inflight_messages_set(1000)
    client.max_queued_messages_set(0)
    client.connect(HOST, port)
    client.loop_start()
    tick, sent, start = 0.01, 0, time.perf_counter()
    try:
        while (elapsed := time.perf_counter() - start) < seconds:
            due = int(rate * min(elapsed + tick, seconds))
            while sent < due:
                body = {"state": "RUNNING", "ts": sent, "sent": time.time()}
                client.publish(topics[sent % len(topics)], json.dumps(body), qos=1)
                sent += 1
            time.sleep(max(0.0, start + (elapsed + tick) - time.perf_counter()))
        return sent / (time.perf_counter() - start)
    finally:
        client.loop_stop()
        client.disconnect()


async def live(port: int, runtime: Runtime, rate: int, seconds: float) -> dict[str, Any]:
    source, sink, stop = source_for(port, f"bench-live-{uuid.uuid4().hex[:8]}"), Timed(runtime), asyncio.Event()
    task = asyncio.create_task(source.run(sink, stop))
    await asyncio.wait_for(source.connected.wait(), 10)
    topics = [f"plants/{PLANT_ID}/{m}/state" for m in MACHINES]
    achieved = await asyncio.to_thread(paced_publisher, port, rate, seconds, topics)
    expected = int(rate * seconds)
    await until(lambda: sink.processed >= expected, 120)
    stop.set()
    await task
    return {"target_msg_s": rate, "published_msg_s": round(achieved), "stored": sink.stored,
            "stored_lag_s": quantiles(sink.stored_lag), "processed_lag_s": quantiles(sink.processed_lag),
            "mean_batch": round(statistics.fmean(sink.batches), 1) if sink.batches else 0}


def telemetry(count: int) -> dict[str, Any]:
    """Sparkplug DDATA with ten aliased metrics and no state, through `MqttSource.read`: decoded and dropped."""
    source = MqttSource("mqtt://127.0.0.1", client_id="bench", signal_map=SignalMap(plant_id=PLANT_ID,
                                                                                  machines=frozenset(MACHINES)))
    topic = "spBv1.0/pune/DDATA/gw-1/HOB-01"
    names = [f"Spindle/Axis{i}/Temperature" for i in range(10)]
    birth = pb.Payload(timestamp=0, seq=0)
    for alias, name in enumerate(names):
        birth.metrics.add(name=name.encode(), alias=alias, datatype=10, double_value=20.0)
    source.read("spBv1.0/pune/DBIRTH/gw-1/HOB-01", birth.SerializeToString(), 0.0)
    payloads = []
    for i in range(count):
        data = pb.Payload(timestamp=1_764_000_000_000 + i, seq=i % 256)
        for alias in range(10):
            data.metrics.add(alias=alias, datatype=10, double_value=20.0 + i % 7 + alias / 10)
        payloads.append(data.SerializeToString())
    start = time.perf_counter()
    kept = sum(len(source.read(topic, data, 1.0)[0]) for data in payloads)
    elapsed = time.perf_counter() - start
    assert kept == 0, "telemetry is filtered, not stored"
    return {"messages": count, "msg_s": round(count / elapsed), "us_per_msg": round(elapsed / count * 1e6, 1)}


class CountingSource(MqttSource):
    """The MQTT source, counting every message it reads (telemetry it drops included)."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.reads, self.first_read, self.last_read = 0, 0.0, 0.0

    def read(self, topic: str, data: bytes, received_at: float, *, retained: bool = False) -> Any:
        self.reads += 1
        self.last_read = time.time()
        self.first_read = self.first_read or self.last_read
        return super().read(topic, data, received_at, retained=retained)


class LineCounter:
    """`mosquitto_sub` on the simulator's topics, its lines counted on a thread: the baseline."""

    def __init__(self, port: int) -> None:
        self.process = subprocess.Popen(["mosquitto_sub", "-h", HOST, "-p", str(port), "-q", "1", "-F", "%t",
                                         "-t", f"plants/{PLANT_ID}/+/state", "-t", f"spBv1.0/{PLANT_ID}/#"],
                                        stdout=subprocess.PIPE)
        self.count, self.first, self.last = 0, 0.0, 0.0
        self.thread = threading.Thread(target=self._read, daemon=True)
        self.thread.start()

    def _read(self) -> None:
        assert self.process.stdout is not None
        for _ in self.process.stdout:
            self.count += 1
            self.last = time.time()
            self.first = self.first or self.last

    def stop(self) -> None:
        self.process.terminate()
        self.process.wait(10)


def _window_rate(count: int, first: float, last: float) -> int | None:
    return round(count / (last - first)) if count > 1 and last > first else None


def plant_with(machines: int, directory: Path) -> Path:
    """The bench plant with the simulator's extra machines (SIM-0009, ...) added, so every simulated machine
    is one mfgos knows: its repeats are stored already processed and its faults open breakdowns, as in a plant."""
    text = PLANT.read_text(encoding="utf-8")
    last = next(line for line in text.splitlines() if line.startswith("  - {id: CMP-02,"))
    extra = "".join(f"\n  - {{id: {extra_machine_id(n)}, name: Simulated machine {n}, area: gears}}"
                    for n in range(len(MACHINES) + 1, machines + 1))
    path = directory / "bench_plant.yaml"
    path.write_text(text.replace(last, last + extra), encoding="utf-8")
    return path


async def simulated(port: int, runtime: Runtime, args: argparse.Namespace) -> dict[str, Any]:
    """The simulator (`mfgos simulate`, its own process) as the load; the MQTT source reads it live."""
    source = CountingSource(f"mqtt://{HOST}:{port}", client_id=f"bench-sim-{uuid.uuid4().hex[:8]}",
                            signal_map=SignalMap(plant_id=PLANT_ID), sparkplug_groups=(PLANT_ID,),
                            backoff=Backoff(first=0.05, cap=0.5), session_expiry=3600)
    sink, stop = Timed(runtime, stamps=True), asyncio.Event()
    task = asyncio.create_task(source.run(sink, stop))
    await asyncio.wait_for(source.connected.wait(), 10)
    baseline = LineCounter(port)
    await asyncio.sleep(0.5)  # mosquitto_sub subscribed
    command = [sys.executable, "-m", "mfgos.cli", "simulate", "--plant", str(args.plant), "--machines",
               str(args.machines), "--rate", str(args.rate), "--faults", str(args.faults), "--seed", "1",
               "--duration", str(args.seconds), "--broker", f"mqtt://{HOST}:{port}", "--opcua-port", "0", "--quiet"]
    run = await asyncio.to_thread(subprocess.run, command, cwd=ROOT, capture_output=True, text=True, check=True,
                                  env={k: v for k, v in os.environ.items() if not k.startswith("MFGOS_")})
    published = int(re.search(r"(\d+) MQTT messages", run.stdout).group(1))  # type: ignore[union-attr]
    complete = await until(lambda: source.reads >= published, 120)
    await until(lambda: baseline.count >= published, 30)
    await until(lambda: sink.processed >= sink.stored, 60)
    stop.set()
    await task
    baseline.stop()
    with Session(runtime.engine) as session:
        opened = session.exec(select(func.count()).select_from(PlantException)).one()
    read_rate = _window_rate(source.reads, source.first_read, source.last_read)
    base_rate = _window_rate(baseline.count, baseline.first, baseline.last)
    return {"machines": args.machines, "target_msg_s": args.rate, "seconds": args.seconds, "published": published,
            "read_by_mfgos": source.reads, "complete": complete, "mfgos_msg_s": read_rate,
            "baseline_mosquitto_sub": {"received": baseline.count, "msg_s": base_rate},
            "ratio_to_baseline": round(read_rate / base_rate, 3) if read_rate and base_rate else None,
            "stored_signals": sink.stored, "stored_lag_s": quantiles(sink.stored_lag),
            "processed_lag_s": quantiles(sink.processed_lag), "breakdowns_opened": opened,
            "mean_batch": round(statistics.fmean(sink.batches), 1) if sink.batches else 0}


def run_database(kind: str, args: argparse.Namespace, port: int) -> dict[str, Any]:
    with database(kind, args.database) as url:
        runtime = Runtime(Settings(_env_file=None, database_url=url, plant_file=args.plant))
        try:
            if args.simulator:
                return {"simulator": asyncio.run(simulated(port, runtime, args))}
            base = baseline(port, args.burst)
            result: dict[str, Any] = {"baseline_mosquitto_sub": base, "burst": asyncio.run(burst(port, runtime, args.burst))}
            stored = result["burst"]["stored_msg_s"]
            result["burst"]["ratio_to_baseline"] = round(stored / base["msg_s"], 3) if stored else None
            result["burst"]["cpu_ratio_to_baseline"] = round(result["burst"]["msg_per_cpu_s"] / base["msg_per_cpu_s"], 3)
            result["live"] = asyncio.run(live(port, runtime, args.rate, args.seconds))
            return result
        finally:
            asyncio.run(runtime.aclose())


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--burst", type=int, default=50_000, help="messages queued while the source is away")
    parser.add_argument("--rate", type=int, default=5_000, help="messages/s of the live run")
    parser.add_argument("--seconds", type=float, default=5.0, help="length of the live run")
    parser.add_argument("--sparkplug", type=int, default=20_000, help="Sparkplug DDATA messages decoded")
    parser.add_argument("--database", default="postgresql://postgres@127.0.0.1:5432/test")
    parser.add_argument("--only", choices=["sqlite", "postgresql"], help="one database only")
    parser.add_argument("--simulator", action="store_true",
                        help="the plant simulator is the load (live, JSON and Sparkplug) instead of the burst and "
                             "live runs; --rate and --seconds apply")
    parser.add_argument("--machines", type=int, default=200, help="with --simulator: simulated machines")
    parser.add_argument("--faults", type=float, default=60.0, help="with --simulator: faults per machine-hour")
    args = parser.parse_args()
    report: dict[str, Any] = {"sparkplug_ddata": telemetry(args.sparkplug)} if args.sparkplug and not args.simulator \
        else {}
    with tempfile.TemporaryDirectory() as directory, own_broker(queue=2 * args.burst) as port:
        args.plant = plant_with(args.machines, Path(directory)) if args.simulator else PLANT
        for kind in ("sqlite", "postgresql"):
            if args.only in (None, kind):
                report[kind] = run_database(kind, args, port)
    print(json.dumps(report, indent=2))


if __name__ == "__main__":
    main()

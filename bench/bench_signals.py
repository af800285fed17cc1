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

Prints one JSON object. The stream: eight machines of tests/data/pune_plant.yaml, each
sending `{"state": "RUNNING", "ts": ..., "seq": ...}`, with a FAULT and a RUNNING again every
1,000 messages per machine (so breakdowns open and close while the stream flows).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import resource
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
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
from models import Signal, make_engine  # noqa: E402
from signals import sparkplug_b_pb2 as pb  # noqa: E402
from signals.base import Backoff, Incoming  # noqa: E402
from signals.mapping import SignalMap  # noqa: E402
from signals.mqtt import MqttSource  # noqa: E402

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
    """The runtime as the source's sink, timing each commit (stored, and processed)."""

    def __init__(self, runtime: Runtime) -> None:
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
            sent = event.payload["payload"].get("sent")
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


def run_database(kind: str, args: argparse.Namespace, port: int) -> dict[str, Any]:
    with database(kind, args.database) as url:
        runtime = Runtime(Settings(_env_file=None, database_url=url, plant_file=PLANT))
        try:
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
    args = parser.parse_args()
    report: dict[str, Any] = {"sparkplug_ddata": telemetry(args.sparkplug)} if args.sparkplug else {}
    with own_broker(queue=2 * args.burst) as port:
        for kind in ("sqlite", "postgresql"):
            if args.only in (None, kind):
                report[kind] = run_database(kind, args, port)
    print(json.dumps(report, indent=2))


if __name__ == "__main__":
    main()

"""Chat-channel benchmarks, against the local fake platforms with the real client libraries.

    python bench/bench_channels.py delivery [--notifications 1000] [--database URL]
    python bench/bench_channels.py latency [--rate 50] [--seconds 20] [--database URL] [--workers N]

delivery: 1,000 notifications spread over Telegram, Slack and WhatsApp threads, with every
fake answering 429 (Retry-After 1 s) to a third of the requests and 5xx to a tenth. All must
arrive once, in order per thread, and the run must take at most 1.1 x the floor the
configured rate limits impose on that many messages (the busiest bucket's
`(messages - burst) / rate`). Under these faults even an ideal scheduler ends above that floor
(the last messages' Retry-After chains): bench/delivery_bound.py measures by how much.

latency: inbound webhooks at a steady rate (signed WhatsApp deliveries, signed Slack Events
API requests, Telegram webhook updates) from a synthetic plant; for every notification a
message caused, the time from the start of its webhook request to the moment the outbox
hands it to the platform client. Target: p99 under 1 s at 50 inbound messages/s. `--workers N`
(PostgreSQL) processes inbound messages in N worker processes (mfgos/workers.py), as
`MFGOS_INBOUND_WORKERS` does in `serve`; without it they are processed in the web process.

Both print a JSON summary. The fakes run in a child process (`python -m tests.fakes.serve`) and
so does the load generator (`tests/fakes/load.py`), so their CPU does not share mfgos' GIL; on a
2-core machine they still share its cores. Which requests fail is drawn from a seeded generator
(`--seed`): a delivery run repeats with the same seed, and its tail depends on which requests
fail last, so compare several seeds.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import re
import statistics
import subprocess
import sys
import tempfile
import time
from collections import Counter, defaultdict
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

import httpx  # noqa: E402
import yaml  # noqa: E402
from sqlmodel import Session, select  # noqa: E402

from bench.bench_pipeline import database as fresh_database  # noqa: E402
from bot.channels.slack import SlackChannel  # noqa: E402
from bot.channels.telegram import TelegramChannel  # noqa: E402
from bot.channels.whatsapp import WhatsAppChannel  # noqa: E402
from bot.outbox import NotificationOutbox  # noqa: E402
from bot.ratelimit import RateLimiter  # noqa: E402
from models import Notification, Plant, PlantException, Signal, make_engine, migrate, session_scope  # noqa: E402
from tests.fakes.server import Faults  # noqa: E402
from tests.fakes.stack import settings_for, start_stack  # noqa: E402
from tests.fakes.whatsapp import FakeWhatsApp  # noqa: E402

SEQ = re.compile(r"#(\d+)")


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, max(0, round(q * (len(ordered) - 1))))]


# --- delivery under faults -----------------------------------------------------------------


MIXES = {"mixed": {"telegram": 0.6, "slack": 0.25, "whatsapp": 0.15}, "telegram": {"telegram": 1.0}}
PER_PERSON = 3  # an alert, the acknowledgement, the approval request: what one exception sends one person


def _delivery_rows(engine: Any, total: int, mix: str) -> dict[str, list[tuple[str, int]]]:
    """`total` notifications over the platforms of `mix`, three per person, about twenty exceptions."""
    shares = MIXES[mix]
    plan = {name: int(total * share) for name, share in shares.items()}
    plan[next(iter(plan))] += total - sum(plan.values())
    now = datetime.now(UTC)
    with session_scope(engine) as session:
        session.add(Plant(id="bench", name="Bench"))
        session.flush()
        exceptions = []
        for n in range(20):
            exc = PlantException(plant_id="bench", code=f"E-{n + 1:04d}", type="breakdown", opened_at=now,
                                 summary="spindle noise", machine_id=None)
            session.add(exc)
            exceptions.append(exc)
        session.flush()
        seq = 0
        for channel, count in plan.items():
            for person in range(-(-count // PER_PERSON)):
                address = {"telegram": str(6000 + person), "slack": f"U0B{person:04d}",
                           "whatsapp": f"+4917{person:08d}"}[channel]
                for k in range(min(PER_PERSON, count - person * PER_PERSON)):
                    seq += 1
                    exc = exceptions[(person + k // 2) % len(exceptions)]
                    session.add(Notification(
                        plant_id="bench", dedupe_key=f"bench:{seq}", exception_id=exc.id, person_id=f"{channel}{person}",
                        kind="alert", channel=channel, address=address, language="en",
                        text=f"{exc.code} breakdown on HOB-01 #{seq}", buttons=["ack"] if k == 0 else [],
                        created_at=now, next_attempt_at=now))
    return {channel: [] for channel in plan}


def _bucket_counts(outbox: NotificationOutbox, engine: Any) -> tuple[dict[str, int], dict[str, Any]]:
    counts: Counter[str] = Counter()
    rates: dict[str, Any] = {}
    with Session(engine) as session:
        for row in session.exec(select(Notification)):
            channel = outbox.channels[row.channel]
            from bot.channels.base import OutboundMessage

            message = OutboundMessage(channel=row.channel, address=row.address, text=row.text)
            for key, rate in channel.rate_buckets(message):  # type: ignore[attr-defined]
                counts[key] += 1
                rates[key] = rate
    return dict(counts), rates


class FakeProcess:
    """The fake platforms in a child process, so their CPU does not compete with mfgos for one GIL."""

    def __init__(self, platforms: list[str], *args: str) -> None:
        self.process = subprocess.Popen(
            [sys.executable, "-m", "tests.fakes.serve", *platforms, *args], cwd=ROOT,
            stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
        assert self.process.stdout is not None
        self.urls: dict[str, str] = json.loads(self.process.stdout.readline())

    def state(self, name: str) -> dict[str, Any]:
        return httpx.get(f"{self.urls[name]}/_fake/state", timeout=30).json()

    def stop(self) -> None:
        assert self.process.stdin is not None
        self.process.stdin.close()
        self.process.wait(timeout=30)


async def delivery(total: int, database: str | None, mix: str = "mixed", seed: int = Faults.seed) -> dict[str, Any]:
    tmp = Path(tempfile.mkdtemp(prefix="mfgos-bench-"))
    engine = make_engine(database or f"sqlite:///{tmp / 'delivery.db'}")
    migrate(engine)
    _delivery_rows(engine, total, mix)
    fakes = FakeProcess(["slack", "telegram", "whatsapp"], "--rate-429", str(1 / 3), "--rate-5xx", "0.1",
                        "--retry-after", "1", "--seed", str(seed))
    channels: dict[str, Any] = {
        "slack": SlackChannel(token="xoxb-fake", api_url=fakes.urls["slack"] + "/api/", engine=engine),
        "telegram": TelegramChannel(token="123:FAKE", api_url=fakes.urls["telegram"] + "/bot", webhook_secret="bench"),
        "whatsapp": WhatsAppChannel(token="wa-token", phone_number_id="1055", api_url=fakes.urls["whatsapp"]),
    }
    for channel in channels.values():
        await channel.start()
    outbox = NotificationOutbox(engine, channels, now=lambda: datetime.now(UTC), limiter=RateLimiter(),
                                concurrency=1024)
    counts, rates = _bucket_counts(outbox, engine)
    floor = outbox.limiter.floor(counts, rates)
    stop = asyncio.Event()
    began = datetime.now(UTC)
    started = time.perf_counter()
    worker = asyncio.create_task(outbox.run(stop, poll=0.2))
    while True:
        with Session(engine) as session:
            pending = session.exec(select(Notification.id).where(Notification.status == "pending")).first()
        if pending is None:
            break
        await asyncio.sleep(0.05)
    elapsed = time.perf_counter() - started
    stop.set()
    await worker
    for channel in channels.values():
        await channel.stop()
    with Session(engine) as session:
        rows = list(session.exec(select(Notification)))
    finished = {name: round(max((r.sent_at - began).total_seconds() for r in rows if r.channel == name and r.sent_at), 2)
                for name in channels if any(r.channel == name for r in rows)}
    states = {name: fakes.state(name) for name in channels}
    fakes.stop()
    received: dict[str, list[str]] = {
        "slack": [m["text"] for m in states["slack"]["messages"]],
        "telegram": [m["text"] for m in states["telegram"]["sent"]],
        "whatsapp": [FakeWhatsApp.text(m) for m in states["whatsapp"]["sent"]],
    }
    thread_of = {int(SEQ.search(r.text).group(1)): f"{r.channel}:{r.address}:{r.exception_id}" for r in rows}  # type: ignore[union-attr]
    seen: Counter[int] = Counter()
    order: dict[str, list[int]] = defaultdict(list)
    for texts in received.values():
        for text in texts:
            seq = int(SEQ.search(text).group(1))  # type: ignore[union-attr]
            seen[seq] += 1
            order[thread_of[seq]].append(seq)
    busiest = max(counts, key=lambda k: (counts[k] - rates[k].burst) * rates[k].interval)
    return {
        "benchmark": "delivery", "mix": mix, "seed": seed, "database": engine.dialect.name, "notifications": len(rows),
        "delivered": sum(1 for r in rows if r.status == "sent"), "failed": sum(1 for r in rows if r.status == "failed"),
        "received_by_fakes": sum(seen.values()), "duplicates": sum(n - 1 for n in seen.values() if n > 1),
        "missing": len(rows) - len(seen), "threads": len(order),
        "threads_out_of_order": sum(1 for ids in order.values() if ids != sorted(ids)),
        "requests": {name: state["faults"] for name, state in states.items()}, "finished_seconds": finished,
        "seconds": round(elapsed, 2), "floor_seconds": round(floor, 2),
        "busiest_bucket": f"{busiest} ({counts[busiest]} messages at {rates[busiest].count}/{rates[busiest].per:g}s)",
        "ratio": round(elapsed / floor, 3) if floor else None,
    }


# --- inbound to hand-off latency -----------------------------------------------------------


def synthetic_plant(path: Path, areas: int = 8, machines_per_area: int = 5, operators: int = 150) -> dict[str, Any]:
    """A plant with operators on WhatsApp, Telegram and Slack, two technicians and a planner per area."""
    plant: dict[str, Any] = {
        "plant": {"id": "bench-1", "name": "Bench plant", "timezone": "UTC"},
        "areas": [{"id": f"a{a}", "name": f"Area {a}"} for a in range(areas)],
        "machines": [{"id": f"M-{a}{m:02d}", "name": f"Press {a}{m:02d}", "area": f"a{a}",
                      "aliases": [f"press {a}{m:02d}"]} for a in range(areas) for m in range(machines_per_area)],
        "people": [], "routing": [
            {"when": {"type": "breakdown"}, "notify": [{"role": "maintenance", "ack_within": "10m"}, {"role": "planner"}],
             "approver": "supervisor"},
            {"when": {}, "notify": [{"role": "supervisor", "ack_within": "15m"}], "approver": "supervisor"}],
    }
    people = plant["people"]
    platforms = ("whatsapp", "telegram", "slack")
    for n in range(operators):
        platform = platforms[n % 3]
        address = {"whatsapp": f"+34600{n:06d}", "telegram": str(700000 + n), "slack": f"U0OP{n:05d}"}[platform]
        people.append({"id": f"op{n}", "name": f"Operator {n}", "roles": ["operator"], "areas": [f"a{n % areas}"],
                       "language": ("es", "en", "de", "hi")[n % 4], "channels": {platform: address}})
    for a in range(areas):
        for t in range(2):
            platform = platforms[(a + t) % 3]
            address = {"whatsapp": f"+49170{a:03d}{t:03d}", "telegram": str(800000 + a * 10 + t),
                       "slack": f"U0MT{a:03d}{t}"}[platform]
            people.append({"id": f"tech{a}_{t}", "name": f"Technician {a}.{t}", "roles": ["maintenance"],
                           "areas": [f"a{a}"], "language": "en", "channels": {platform: address}})
        people.append({"id": f"plan{a}", "name": f"Planner {a}", "roles": ["planner"], "areas": [f"a{a}"],
                       "language": "en", "channels": {"slack": f"U0PL{a:03d}"}})
    people.append({"id": "sup", "name": "Supervisor", "roles": ["supervisor"], "language": "en",
                   "channels": {"telegram": "900000"}})
    path.write_text(yaml.safe_dump(plant, sort_keys=False), encoding="utf-8")
    return plant


async def _load(url: str, plant: Path, rate: float, count: int, first: int, new_every: int = 25) -> dict[str, Any]:
    """The load generator in a child process (tests/fakes/load.py), so its CPU is not ours."""
    child = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "tests.fakes.load", url, str(plant), "--rate", str(rate), "--count", str(count),
        "--first", str(first), "--new-every", str(new_every), cwd=ROOT, stdout=asyncio.subprocess.PIPE)
    out, _ = await child.communicate()
    return json.loads(out)


async def latency(rate: float, seconds: float, database: str | None, new_every: int = 250,
                  workers: int = 0) -> dict[str, Any]:
    tmp = Path(tempfile.mkdtemp(prefix="mfgos-bench-"))
    synthetic_plant(tmp / "plant.yaml")
    fakes = FakeProcess(["slack", "telegram", "whatsapp"])
    settings = settings_for(
        database or f"sqlite:///{tmp / 'latency.db'}", tmp, slack_bot_token="xoxb-fake", slack_signing_secret="slack-secret",
        slack_api_url=fakes.urls["slack"] + "/api/", telegram_bot_token="123:FAKE",
        telegram_api_url=fakes.urls["telegram"] + "/bot", telegram_webhook_secret="bench-secret",
        whatsapp_token="wa-token", whatsapp_phone_number_id="1055", whatsapp_api_url=fakes.urls["whatsapp"],
        whatsapp_app_secret="wa-secret",
    ).model_copy(update={"plant_file": tmp / "plant.yaml"})
    stack = await start_stack(settings)
    inbound = None
    if workers:
        from mfgos.workers import InboundWorkers

        inbound = InboundWorkers(stack.runtime, workers)
        await inbound.start()
    handed: dict[int, float] = {}
    answered: dict[int, float] = {}  # the platform's answer
    for channel in stack.hub.channels.values():
        original = channel.send

        async def timed(message: Any, _send: Any = original) -> str:
            handed.setdefault(message.notification_id, time.monotonic())
            message_id = await _send(message)
            answered[message.notification_id] = time.monotonic()  # the last answer, if it was retried
            return message_id

        channel.send = timed  # type: ignore[method-assign]
    # The crash window: from the platform's answer to the commit that records it (a process dying
    # in between has the message sent again after the lease). Measured per row on the settle.
    recorded: dict[int, float] = {}
    outbox = stack.runtime.notifications
    settle = outbox._settle

    def timed_settle(batch: list[Any], _settle: Any = settle) -> list[int]:
        results = _settle(batch)
        for claim, values, _ in batch:
            if values.get("status") == "sent":
                recorded.setdefault(claim.id, time.monotonic())
        return results

    outbox._settle = timed_settle  # type: ignore[method-assign]
    # Warm-up (not measured): a server that has run a while has built the NLP pipeline of every
    # language (1-2.5 s each, once per process), opened its client connections and compiled its queries.
    for language, text in (("en", "press 000 stopped"), ("es", "prensa parada"), ("de", "Presse steht"),
                           ("hi", "press band hai")):
        await asyncio.to_thread(stack.runtime.reader.extract, text, language)
    await _load(stack.url, tmp / "plant.yaml", 20, 40, 100_000)
    while True:  # the warm-up processed (workers start their NLP pipelines first)
        with Session(stack.runtime.engine) as session:
            if session.exec(select(Signal.id).where(Signal.processed_at == None)).first() is None:  # noqa: E711
                break
        await asyncio.sleep(0.1)
    total = int(rate * seconds)
    cpu_before = process_cpu(), [process_cpu(pid) for pid in (inbound.pids if inbound else [])]
    load = await _load(stack.url, tmp / "plant.yaml", rate, total, 0, new_every)
    engine = stack.runtime.engine
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        with Session(engine) as session:
            if session.exec(select(Notification.id).where(Notification.status == "pending")).first() is None \
                    and session.exec(select(Signal.id).where(Signal.processed_at == None)).first() is None:  # noqa: E711
                break
        await asyncio.sleep(0.1)
    with Session(engine) as session:
        signals = {s.id: s.source_key for s in session.exec(select(Signal))}
        rows = list(session.exec(select(Notification)))
    latencies = []
    by_channel: dict[str, list[float]] = defaultdict(list)
    by_second: dict[int, list[float]] = defaultdict(list)
    first_sent = min(load["sent"].values())
    for row in rows:
        match = re.match(r"signal:(\d+):", row.dedupe_key)
        key = signals.get(int(match.group(1))) if match else None
        if key in load["sent"] and row.id in handed:
            latencies.append(handed[row.id] - load["sent"][key])
            by_channel[f"{row.channel}/{row.kind}"].append(latencies[-1])
            by_second[int(load["sent"][key] - first_sent)].append(latencies[-1])
    measured_rows = [r for r in rows if (m := re.match(r"signal:(\d+):", r.dedupe_key))
                     and signals.get(int(m.group(1))) in load["sent"]]
    cpu = {"web": round((process_cpu() - cpu_before[0]) * 1000 / total, 2)}
    if inbound is not None:
        cpu["workers"] = round(sum(process_cpu(pid) - before for pid, before in zip(inbound.pids, cpu_before[1],
                                                                                       strict=True)) * 1000 / total, 2)
        await inbound.stop()
    await stack.stop()
    fakes.stop()
    return {
        "benchmark": "latency", "database": engine.dialect.name, "inbound": total, "rate": rate, "workers": workers,
        "new_breakdown_every": new_every,
        "achieved_rate": round(total / load["seconds"], 1), "http_statuses": load["statuses"],
        "notifications": len(measured_rows), "measured": len(latencies),
        "kinds": dict(Counter(r.kind for r in measured_rows)),
        "p50_ms": round(statistics.median(latencies) * 1000, 1), "p95_ms": round(percentile(latencies, 0.95) * 1000, 1),
        "p99_ms": round(percentile(latencies, 0.99) * 1000, 1), "max_ms": round(max(latencies) * 1000, 1),
        "cpu_ms_per_message": cpu,
        "crash_window_ms": crash_window(answered, recorded),
        "max_ms_by_second": [round(max(by_second[k]) * 1000) for k in sorted(by_second)],
        "p99_ms_by_channel_and_kind": {k: [len(v), round(percentile(v, 0.99) * 1000, 1)]
                                       for k, v in sorted(by_channel.items())},
    }


def process_cpu(pid: int | None = None) -> float:
    """CPU seconds (user + system) of this process, or of `pid` (Linux /proc), so far."""
    if pid is None:
        return time.process_time()
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def crash_window(answered: dict[int, float], recorded: dict[int, float]) -> dict[str, float]:
    """p50/p99/max of the platform's answer -> the commit that records the row sent: how long a
    message is out but not recorded (a process dying then has it sent again after the lease)."""
    spans = [recorded[i] - answered[i] for i in recorded if i in answered]
    if not spans:
        return {}
    return {"n": len(spans), "p50": round(statistics.median(spans) * 1000, 1),
            "p99": round(percentile(spans, 0.99) * 1000, 1), "max": round(max(spans) * 1000, 1)}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = parser.add_subparsers(dest="which", required=True)
    d = sub.add_parser("delivery")
    d.add_argument("--notifications", type=int, default=1000)
    d.add_argument("--database")
    d.add_argument("--mix", choices=sorted(MIXES), default="mixed",
                   help="mixed: Telegram 60 %%, Slack 25 %%, WhatsApp 15 %%; telegram: all on the busiest bucket")
    d.add_argument("--seed", type=int, default=Faults.seed,
                   help="of the fakes' fault draws (default 7, the figures of docs/benchmarks.md); the tail of a "
                        "run depends on which requests fail last, so compare several")
    lat = sub.add_parser("latency")
    lat.add_argument("--rate", type=float, default=50.0)
    lat.add_argument("--seconds", type=float, default=20.0)
    lat.add_argument("--database")
    lat.add_argument("--workers", type=int, default=0,
                     help="inbound worker processes (PostgreSQL; default 0: processing in the web process)")
    lat.add_argument("--new-every", type=int, default=250,
                     help="inbound messages between two new breakdowns (default 250: one every 5 s at 50/s)")
    args = parser.parse_args(argv)
    # A fresh store for every run: a temporary SQLite file, or a new schema on the PostgreSQL given
    # (a second run in the same schema would find the first one's events and count them as redeliveries).
    with fresh_database(args.database) as url:
        if args.which == "delivery":
            result = asyncio.run(delivery(args.notifications, url, args.mix, args.seed))
            ok = result["missing"] == result["duplicates"] == result["threads_out_of_order"] == 0 and result["ratio"] <= 1.1
        else:
            result = asyncio.run(latency(args.rate, args.seconds, url, args.new_every, args.workers))
            ok = result["p99_ms"] < 1000 and result["measured"] > 0
    print(json.dumps(result, indent=2))
    print("PASS" if ok else "FAIL", file=sys.stderr)
    return 0 if ok else 1


if __name__ == "__main__":
    raise SystemExit(main())

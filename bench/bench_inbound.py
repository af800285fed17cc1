"""CPU per inbound chat message, by stage, on the latency run's plant and traffic, without HTTP.

    python bench/bench_inbound.py [--messages 1000] [--new-every 25] [--database URL] [--profile FILE]

What the channels latency run (bench_channels.py latency) spends per message, split into the
stages a replica runs, each timed alone with this thread's CPU clock, so a machine shared with
other jobs inflates the figures far less than it inflates wall-clock latency:

- store:   `Runtime.accept` of each message as the webhooks build it (sender looked up by
           address, the event stored, not processed): the web process's share of the store;
- process: `Runtime.process_waiting` until every stored message is processed: what an inbound
           worker (mfgos/workers.py) does;
- deliver: `NotificationOutbox.deliver_due` to capture channels until the outbox is empty:
           claims and settles, the web process's share of the outbox (no platform client).

The traffic is tests/fakes/load.py's: operators of the synthetic plant on WhatsApp, Telegram
and Slack; four in five report a breakdown of a machine, one in five asks "what is down?"; a
new machine breaks down every `--new-every` messages. SQL statements per message are counted
per stage too. Prints one JSON object.
"""

from __future__ import annotations

import argparse
import asyncio
import cProfile
import json
import random
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from sqlalchemy import event  # noqa: E402

from bench.bench_channels import synthetic_plant  # noqa: E402
from bench.bench_pipeline import database  # noqa: E402
from bot.channels.base import CaptureChannel  # noqa: E402
from mfgos.config import Settings  # noqa: E402
from mfgos.runtime import Runtime  # noqa: E402
from routing.inbound import Inbound  # noqa: E402
from tests.fakes.load import PROBLEMS  # noqa: E402


def traffic(plant: dict[str, Any], count: int, new_every: int, first: int = 0) -> list[Inbound]:
    """The load generator's messages, as the channels hand them to the gate."""
    operators = [p for p in plant["people"] if "operator" in p["roles"]]
    machines = plant["machines"]
    rng = random.Random(first or 42)
    events = []
    for n in range(first, first + count):
        person = operators[n % len(operators)]
        machine = rng.choice(machines[: 1 + (n - first) // new_every])
        text = f"{machine['aliases'][0]} {rng.choice(PROBLEMS)}" if n % 5 else "what is down?"
        platform, address = next(iter(person["channels"].items()))
        chat = {"slack": "D" + address[1:], "telegram": address, "whatsapp": None}[platform]
        events.append(Inbound(source=platform, event_id=f"L{n}", address=address, text=text, chat_id=chat))
    return events


class Statements:
    """SQL statements sent on the engine."""

    def __init__(self, engine: Any) -> None:
        self.count = 0
        event.listen(engine, "before_cursor_execute", self._count)

    def _count(self, *_: Any) -> None:
        self.count += 1


def stage(run: Any, count: int, statements: Statements, profile: cProfile.Profile | None) -> dict[str, Any]:
    before_sql, wall, cpu = statements.count, time.perf_counter(), time.thread_time()
    if profile is not None:
        profile.enable()
    run()
    if profile is not None:
        profile.disable()
    cpu, wall = time.thread_time() - cpu, time.perf_counter() - wall
    return {"cpu_ms_per_message": round(cpu * 1000 / count, 2), "wall_ms_per_message": round(wall * 1000 / count, 2),
            "statements_per_message": round((statements.count - before_sql) / count, 2)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--messages", type=int, default=1000)
    parser.add_argument("--new-every", type=int, default=25)
    parser.add_argument("--database", help="PostgreSQL URL (a fresh schema is made); default a temp SQLite file")
    parser.add_argument("--profile", type=Path, help="write a cProfile of the three timed stages here")
    args = parser.parse_args()
    with database(args.database) as url, tempfile.TemporaryDirectory() as tmp:
        plant = synthetic_plant(Path(tmp) / "plant.yaml")
        channels = {name: CaptureChannel(name) for name in ("console", "slack", "whatsapp", "telegram")}
        runtime = Runtime(Settings(database_url=url, plant_file=Path(tmp) / "plant.yaml"), channels=channels)
        runtime.defer_processing = True  # store only, as the web process does with inbound workers
        runtime.reader.warm_up()
        statements = Statements(runtime.engine)
        profile = cProfile.Profile(time.thread_time) if args.profile else None  # CPU, not waits
        for inbound in traffic(plant, 40, args.new_every, first=100_000):  # warm-up: first queries, caches
            runtime.accept(inbound)
        runtime.process_waiting()
        asyncio.run(runtime.notifications.deliver_due())
        events = traffic(plant, args.messages, args.new_every)

        def process() -> None:
            while runtime.process_waiting():
                pass

        def deliver() -> None:
            async def run() -> None:
                while await runtime.notifications.deliver_due():
                    pass
            asyncio.run(run())

        result: dict[str, Any] = {"database": runtime.engine.dialect.name, "messages": args.messages,
                                  "new_every": args.new_every}
        result["store"] = stage(lambda: [runtime.accept(e) for e in events], args.messages, statements,
                                profile)
        result["process"] = stage(process, args.messages, statements, profile)
        sent_before = sum(len(c.sent) for c in channels.values())  # type: ignore[attr-defined]
        result["deliver"] = stage(deliver, args.messages, statements, profile)
        result["notifications"] = sum(len(c.sent) for c in channels.values()) - sent_before  # type: ignore[attr-defined]
        result["total_cpu_ms_per_message"] = round(sum(result[s]["cpu_ms_per_message"]
                                                       for s in ("store", "process", "deliver")), 2)
        if profile is not None:
            profile.dump_stats(args.profile)
        asyncio.run(runtime.aclose())
    print(json.dumps(result, indent=1))


if __name__ == "__main__":
    main()

"""What the area-thread mirror (bot/threads.py) costs the store: one pass every 0.5 s per channel.

    python bench/bench_threads.py [--exceptions 20000] [--events 5] [--burst 100] [--database URL]

A store (a temporary SQLite file, or a fresh schema of the PostgreSQL at `--database`) with
`--exceptions` exceptions over 8 areas, `--events` timeline events each, spread over the last
30 days; 4 of the 8 areas have a thread conversation. Timed, one mirror at a time:

- catch_up: the first pass after a start (reads the last day, writes the rows not written yet);
- idle:     a pass with nothing new (the steady cost of the 0.5 s poll);
- busy:     a pass after `--burst` new events (50 inbound messages/s make about 100 events in
            0.5 s), writing their rows.

Prints one JSON object (milliseconds).
"""

from __future__ import annotations

import argparse
import json
import random
import statistics
import sys
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from bench.bench_pipeline import database  # noqa: E402
from bot.threads import AreaThreads  # noqa: E402
from models import Person, Plant, PlantException, TimelineEvent, make_engine, session_scope  # noqa: E402
from models.db import migrate  # noqa: E402

AREAS = [f"area{n}" for n in range(8)]
KINDS = ["opened", "routed", "comment", "acknowledged", "proposed", "approved", "closed"]


def seed(engine: Any, exceptions: int, events: int, now: datetime) -> list[int]:
    rng = random.Random(7)
    with session_scope(engine) as session:
        session.add(Plant(id="p1", name="Plant"))
        session.flush()
        session.add_all([Person(plant_id="p1", id=f"u{n}", name=f"Person {n}") for n in range(50)])
        ids = []
        for n in range(exceptions):
            opened = now - timedelta(seconds=rng.uniform(0, 30 * 86400))
            exc = PlantException(plant_id="p1", code=f"E-{n + 1:05d}", type="breakdown", area_id=AREAS[n % 8],
                                 opened_at=opened, status="closed")
            session.add(exc)
            session.flush()
            ids.append(exc.id)
            session.add_all([TimelineEvent(exception_id=exc.id, at=opened + timedelta(minutes=k), kind=KINDS[k % 7],
                                           person_id=f"u{rng.randrange(50)}", data={"people": ["u1"], "role": "tech"})
                             for k in range(events)])
    return ids


def add_events(engine: Any, exception_ids: list[int], count: int, rng: random.Random) -> None:
    now = datetime.now(UTC)
    with session_scope(engine) as session:
        session.add_all([TimelineEvent(exception_id=rng.choice(exception_ids), at=now, kind=rng.choice(KINDS),
                                       person_id="u1", data={"people": ["u2"], "role": "tech"})
                         for _ in range(count)])


def timed(fn: Any) -> tuple[float, Any]:
    start = time.perf_counter()
    result = fn()
    return (time.perf_counter() - start) * 1000, result


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--exceptions", type=int, default=20000)
    parser.add_argument("--events", type=int, default=5)
    parser.add_argument("--burst", type=int, default=100)
    parser.add_argument("--rounds", type=int, default=20)
    parser.add_argument("--database", help="PostgreSQL URL (a fresh schema is made); default a temp SQLite file")
    args = parser.parse_args()
    with database(args.database) as url:
        engine = make_engine(url)
        migrate(engine)
        now = datetime.now(UTC)
        ids = seed(engine, args.exceptions, args.events, now)
        recent = ids[-200:]  # open work: new events land on recent exceptions
        mirror = AreaThreads("slack", {area: f"C{n}" for n, area in enumerate(AREAS[:4])}, engine)
        catch_up_ms, caught = timed(mirror.mirror)
        idle = [timed(mirror.mirror)[0] for _ in range(args.rounds)]
        rng = random.Random(11)
        busy, written = [], 0
        for _ in range(args.rounds):
            add_events(engine, recent, args.burst, rng)
            ms, rows = timed(mirror.mirror)
            busy.append(ms)
            written += rows
        result = {
            "database": engine.dialect.name, "exceptions": args.exceptions,
            "timeline_events": args.exceptions * args.events + args.rounds * args.burst,
            "catch_up": {"ms": round(catch_up_ms, 1), "rows": caught},
            "idle_ms": {"median": round(statistics.median(idle), 2), "max": round(max(idle), 2)},
            "busy_ms": {"burst": args.burst, "median": round(statistics.median(busy), 1),
                        "p95": round(sorted(busy)[int(0.95 * (len(busy) - 1))], 1), "rows_per_pass": written / args.rounds},
        }
        engine.dispose()
    print(json.dumps(result))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

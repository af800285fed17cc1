"""CPU to store one inbound event: the ORM's unit of work against the core INSERT ... RETURNING
`Runtime.receive` uses, alternately in one run.

    python bench/bench_store.py [--database URL] [--events 600]

Every webhook pays for this store before it is answered, in the web process. Timed with this
thread's CPU clock (`time.thread_time`), so other jobs on a shared machine inflate it less
than wall-clock time. A fresh SQLite file, or a fresh schema of the PostgreSQL at `--database`.
Prints one JSON object with the medians and the ratio core / ORM.
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import time
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from sqlalchemy import insert  # noqa: E402

from bench.bench_pipeline import database  # noqa: E402
from models import Plant, Signal, make_engine, migrate, session_scope  # noqa: E402

PAYLOAD = {"channel": "whatsapp", "address": "+34600000001", "text": "press 001 stopped, hydraulic leak",
           "exception_ref": None, "action": None, "reply_to": None, "attachments": []}


def run(url: str, events: int) -> dict[str, Any]:
    engine = make_engine(url)
    migrate(engine)
    with session_scope(engine) as session:
        session.add(Plant(id="bench", name="Bench"))
    table = Signal.__table__  # type: ignore[attr-defined]
    keys = iter(range(events))

    def row() -> dict[str, Any]:
        return {"plant_id": "bench", "source": "whatsapp", "source_key": f"k{next(keys)}", "kind": "chat",
                "received_at": datetime.now(UTC), "person_id": "op1", "payload": PAYLOAD}

    def orm() -> None:
        with session_scope(engine) as session:
            signal = Signal(**row())
            session.add(signal)
            session.flush()

    def core() -> None:
        with engine.begin() as connection:
            connection.execute(insert(table).values(row()).returning(table.c.id)).scalar_one()

    ways: dict[str, Callable[[], None]] = {"orm": orm, "core": core}
    spent: dict[str, list[float]] = {name: [] for name in ways}
    for n in range(events):
        name = ("orm", "core")[n % 2]
        started = time.thread_time()
        ways[name]()
        spent[name].append(time.thread_time() - started)
    engine.dispose()
    medians = {name: statistics.median(values) * 1000 for name, values in spent.items()}
    return {"database": engine.dialect.name, "events": events, "orm_cpu_ms": round(medians["orm"], 3),
            "core_cpu_ms": round(medians["core"], 3), "ratio_core_to_orm": round(medians["core"] / medians["orm"], 3)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--database", help="PostgreSQL URL (a fresh schema is made); default a temp SQLite file")
    parser.add_argument("--events", type=int, default=600)
    args = parser.parse_args()
    with database(args.database) as url:
        print(json.dumps(run(url, args.events)))


if __name__ == "__main__":
    main()

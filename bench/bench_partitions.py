"""Do storing signals and the queries that read them stay flat as the store grows from 1 M to 10 M
signals? Monthly partitions (migration 0014) against the unpartitioned table of migration 0013,
filled alike in the same run (docs/benchmarks.md, "Partitions").

    python bench/bench_partitions.py --database postgresql://... [--sizes 1000000,10000000]
                                     [--per-month 1000000] [--batches 60] [--batch 500] [--rounds 40]

Two fresh schemas of the PostgreSQL at `--database` (use a database of its own: 10 M signals
take several GB per layout): `partitioned` (head) and `unpartitioned` (0013 plus the two signal
indexes 0014 adds to both databases: the baseline differs only in partitioning).
The store grows as a plant's does, `--per-month` signals a month, oldest first, so at 10 M the
last month is as full as at 1 M and only the history is longer. Source keys are random (md5),
as channel event ids and message hashes are; 1 % are MES work-order reports, 10 % chat, with one
exception and its alert per 1,000 signals. At each size, on the clock of the newest row:

- inserts: `signals.bulk.insert_new` (the batch store path of machine sources), `--batches`
  batches of `--batch` new signals, one commit each, and the single-row INSERT ... RETURNING of
  `Runtime.receive`; medians in ms;
- queries, `--rounds` times each, p50 and p95 in ms: `routing.kpis.compute` for the last 7 days
  (the dashboard's KPIs: schedule adherence reads the MES signals, notify p95 joins alerts to
  their signals), a person's sent messages (the console), the unprocessed signals (inbound
  workers and the sweep), one signal by id (every processing reads its signal so), and a
  duplicate's first signal by source key.

Prints one JSON object: the figures per layout and size, and the ratios 10 M / 1 M per layout and
partitioned / unpartitioned per size.
"""

from __future__ import annotations

import argparse
import hashlib
import importlib
import json
import statistics
import sys
import time
import uuid
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from contextlib import ExitStack
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from alembic import command  # noqa: E402
from alembic.config import Config  # noqa: E402
from sqlalchemy import insert  # noqa: E402
from sqlalchemy import text as sql  # noqa: E402
from sqlalchemy.engine import Engine  # noqa: E402
from sqlmodel import Session, select  # noqa: E402

from bench.bench_pipeline import database  # noqa: E402
from models import Signal, make_engine  # noqa: E402
from models.db import MIGRATIONS, migrate  # noqa: E402
from models.partitions import Maintenance, add_months, ensure_months, maintain, month_start  # noqa: E402
from routing import kpis  # noqa: E402

NEW_INDEXES = importlib.import_module("models.migrations.versions.0014_monthly_partitions").NEW_INDEXES
from signals.bulk import insert_new  # noqa: E402

MONTH = timedelta(days=30)
CHUNK = 250_000  # signals per fill task: one transaction each


def prepare(url: str, layout: str) -> Engine:
    engine = make_engine(url)
    if layout == "partitioned":
        migrate(engine)
    else:
        config = Config()
        config.set_main_option("script_location", str(MIGRATIONS))
        with engine.begin() as connection:
            config.attributes["connection"] = connection
            command.upgrade(config, "0013")
        with engine.begin() as connection:  # the indexes 0014 adds to both layouts: only partitioning differs
            for index in NEW_INDEXES:
                connection.execute(sql(index))
    with engine.begin() as connection:
        connection.execute(sql("INSERT INTO plants (id, name, timezone, erp, signals) "
                               "VALUES ('p1', 'Plant', 'UTC', '{}', '{}')"))
    return engine


def months_for(engine: Engine, layout: str, start: datetime, end: datetime) -> None:
    """The partitions of the months being filled, as maintenance would have made them in time."""
    if layout != "partitioned":
        return
    months = {month_start(start)}
    while (month := add_months(max(months), 1)) <= end:
        months.add(month)
    with engine.begin() as connection:
        for table in ("signals", "timeline_events"):
            ensure_months(connection, table, months, Maintenance())


def fill(engine: Engine, low: int, high: int, origin: datetime, per_month: int) -> None:
    """Signals numbered low..high, `per_month` a month from `origin` (signal 1), with their exceptions,
    alerts and work orders; set-based SQL in one transaction."""
    at = f":origin + (n - 1) * interval '1 second' * {MONTH.total_seconds() / per_month}"
    with engine.begin() as connection:
        connection.execute(sql(f"""
            INSERT INTO signals (plant_id, source, source_key, kind, received_at, person_id, payload, processed_at)
            SELECT 'p1', CASE WHEN n % 100 = 0 THEN 'mes' WHEN n % 10 = 1 THEN 'whatsapp' ELSE 'mqtt' END,
                   'k:' || md5(n::text),
                   CASE WHEN n % 100 = 0 THEN 'work_order' WHEN n % 10 = 1 THEN 'chat' ELSE 'machine' END,
                   {at}, CASE WHEN n % 10 = 1 THEN 'u' || (n % 50) END,
                   CASE WHEN n % 100 = 0 THEN json_build_object('work_order', 'WO-' || n, 'status', 'done')
                        WHEN n % 10 = 1 THEN json_build_object('channel', 'whatsapp', 'text', 'press ' || n || ' stopped')
                        ELSE json_build_object('machine', 'M-' || (n % 200), 'state', 'RUNNING') END,
                   {at}
            FROM generate_series({low}, {high}) n"""), {"origin": origin})
        connection.execute(sql(f"""
            INSERT INTO work_orders (plant_id, id, machine_id, "end", status, origin)
            SELECT 'p1', 'WO-' || n, 'M-' || (n % 200), {at} + interval '1 hour', 'done', 'plant_file'
            FROM generate_series({low}, {high}) n WHERE n % 100 = 0"""), {"origin": origin})
        connection.execute(sql(f"""
            INSERT INTO exceptions (plant_id, code, type, status, severity, summary, language, machine_id,
                   area_id, approver_role, work_orders, customer_orders_at_risk, staging_conflict, proposal,
                   opened_at, acknowledged_at, closed_at)
            SELECT 'p1', 'E-' || n, 'breakdown', 'closed', 'medium', '', 'en', 'M-' || (n % 200), 'a1',
                   'supervisor', '[]', '[]', '{{}}', '{{}}', {at}, {at} + interval '3 minutes',
                   {at} + interval '40 minutes'
            FROM generate_series({low}, {high}) n WHERE n % 1000 = 1"""), {"origin": origin})
        connection.execute(sql(f"""
            INSERT INTO notifications (plant_id, dedupe_key, exception_id, person_id, kind, channel, address,
                   language, text, buttons, created_at, status, attempts)
            SELECT 'p1', 'signal:' || s.id || ':alert:u1:' || e.id, e.id, 'u1', 'alert', 'console', 'u1', 'en',
                   'alert', '[]', e.opened_at + interval '2 seconds', 'sent', 1
            FROM generate_series({low}, {high}) n
            JOIN exceptions e ON e.code = 'E-' || n JOIN signals s ON s.source_key = 'k:' || md5(n::text)
            WHERE n % 1000 = 1"""), {"origin": origin})


def percentiles(samples: list[float]) -> dict[str, float]:
    ordered = sorted(samples)
    return {"p50_ms": round(statistics.median(ordered), 2),
            "p95_ms": round(ordered[max(0, -(-95 * len(ordered) // 100) - 1)], 2)}


def timed(rounds: int, run: Callable[[], Any]) -> list[float]:
    samples = []
    for _ in range(rounds):
        started = time.perf_counter()
        run()
        samples.append((time.perf_counter() - started) * 1000)
    return samples


def measure(engine: Engine, now: datetime, size: int, args: argparse.Namespace) -> dict[str, Any]:
    table = Signal.__table__  # type: ignore[attr-defined]

    def rows(batch: int) -> list[dict[str, Any]]:
        return [{"plant_id": "p1", "source": "mqtt", "source_key": f"new:{uuid.uuid4().hex}", "kind": "machine",
                 "received_at": now, "payload": {"machine": "M-1", "state": "RUNNING"}, "processed_at": now}
                for _ in range(batch)]

    def batch() -> None:
        with engine.begin() as connection:
            insert_new(connection, rows(args.batch))

    def single() -> None:
        with engine.begin() as connection:
            connection.execute(insert(table).values(rows(1)[0]).returning(table.c.id)).scalar_one()

    with engine.connect() as connection:
        some_id = connection.execute(sql("SELECT id FROM signals WHERE source_key = :k"),
                                     {"k": f"k:{_md5(size // 2)}"}).scalar_one()
    week = now - timedelta(days=7)

    def kpi() -> None:
        with Session(engine) as session:
            kpis.compute(session, "p1", week, now)

    def sent() -> None:  # the console's "what they sent" (mfgos/web.py, person_messages)
        with Session(engine) as session:
            session.exec(select(Signal).where(Signal.plant_id == "p1", Signal.person_id == "u7", Signal.id > 0,
                                              Signal.kind.in_(("chat", "action")))  # type: ignore[attr-defined]
                         .order_by(Signal.id).limit(200)).all()

    def unprocessed() -> None:  # Runtime.process_waiting's look
        with Session(engine) as session:
            session.exec(select(Signal.id).where(Signal.processed_at == None)  # noqa: E711
                         .order_by(Signal.id).limit(100)).all()

    def by_id() -> None:
        with Session(engine) as session:
            session.exec(select(Signal).where(Signal.id == some_id)).one()

    def by_key() -> None:
        with Session(engine) as session:
            session.exec(select(Signal).where(Signal.source_key == f"k:{_md5(size // 3)}")).one()

    batches = timed(args.batches, batch)
    singles = timed(args.batches * 4, single)
    result: dict[str, Any] = {
        "insert_batch_ms": round(statistics.median(batches), 2),
        "insert_per_row_us": round(statistics.median(batches) * 1000 / args.batch, 1),
        "insert_single_ms": round(statistics.median(singles), 3),
    }
    for name, run in (("kpis_7d", kpi), ("sent_messages", sent), ("unprocessed", unprocessed),
                      ("signal_by_id", by_id), ("signal_by_source_key", by_key)):
        run()  # warm
        result[name] = percentiles(timed(args.rounds, run))
    return result


def _md5(n: int) -> str:
    """The source key the fill gave signal `n` (md5(n::text) in SQL)."""
    return hashlib.md5(str(n).encode()).hexdigest()


def ratios(small: dict[str, Any], large: dict[str, Any]) -> dict[str, float]:
    """large / small for every figure (p95 for the queries)."""
    out = {}
    for name, value in small.items():
        a, b = (value["p95_ms"], large[name]["p95_ms"]) if isinstance(value, dict) else (value, large[name])
        out[name] = round(b / max(a, 0.001), 2)
    return out


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--database", required=True, help="postgresql://... (a database of its own)")
    parser.add_argument("--sizes", default="1000000,10000000")
    parser.add_argument("--per-month", type=int, default=1_000_000)
    parser.add_argument("--batches", type=int, default=60)
    parser.add_argument("--batch", type=int, default=500)
    parser.add_argument("--rounds", type=int, default=40)
    parser.add_argument("--layouts", default="partitioned,unpartitioned")
    parser.add_argument("--fillers", type=int, default=4, help="parallel fill transactions")
    args = parser.parse_args()
    sizes = [int(size) for size in args.sizes.split(",")]
    layouts = args.layouts.split(",")
    # The newest row is today: the history reaches back as far as the largest size needs.
    today = datetime.now(UTC).replace(microsecond=0)
    origin = today - MONTH * (sizes[-1] / args.per_month)
    result: dict[str, Any] = {"sizes": sizes, "per_month": args.per_month, "batch": args.batch, "layouts": {}}
    with ExitStack() as stack:
        engines = {layout: prepare(stack.enter_context(database(args.database)), layout) for layout in layouts}
        filled = 0
        for size in sizes:
            now = origin + MONTH * (size / args.per_month)
            started = time.perf_counter()
            for layout, engine in engines.items():
                months_for(engine, layout, origin + MONTH * (filled / args.per_month), now)
            # Both layouts filled at once, CHUNK rows a task (the machine's cores are shared anyway);
            # timed one after the other, with nothing else of ours running.
            with ThreadPoolExecutor(max_workers=args.fillers) as pool:
                tasks = [pool.submit(fill, engine, low, min(size, low + CHUNK - 1), origin, args.per_month)
                         for low in range(filled + 1, size + 1, CHUNK) for engine in engines.values()]
                for task in tasks:
                    task.result()
            for layout, engine in engines.items():
                with engine.begin() as connection:
                    connection.execute(sql("ANALYZE"))
                if layout == "partitioned":
                    maintain(engine, now)
            seconds = time.perf_counter() - started
            for layout, engine in engines.items():
                figures = measure(engine, now, size, args)
                result["layouts"].setdefault(layout, {})[str(size)] = figures
                print(json.dumps({"layout": layout, "size": size, "fill_seconds_both": round(seconds), **figures}),
                      file=sys.stderr, flush=True)
            filled = size
        for engine in engines.values():
            engine.dispose()
    small, large = (str(sizes[0]), str(sizes[-1]))
    result["ratio_largest_to_smallest"] = {layout: ratios(by_size[small], by_size[large])
                                           for layout, by_size in result["layouts"].items()}
    if len(layouts) == 2:
        result["ratio_partitioned_to_unpartitioned"] = {
            size: ratios(result["layouts"]["unpartitioned"][size], result["layouts"]["partitioned"][size])
            for size in result["layouts"]["partitioned"]}
    print(json.dumps(result, indent=2))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

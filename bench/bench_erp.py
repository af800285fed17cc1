"""ERP posting throughput: approved transactions through outbox workers into a fake ERP.

Every worker is a process of its own (a replica: its own engine, event loop and adapter), the
fake ERP (the same wire-protocol fakes the tests use) is another process that answers every
request after `--latency-ms`; they share only the database. 250 exceptions x 4 transactions,
posted in sequence order within each exception, as the outbox always does.

    python bench/bench_erp.py            # ledger, erpnext, odoo, sap; 1,000 transactions, 2 workers, 10 ms
    python bench/bench_erp.py --erp sap --transactions 4000 --database postgresql://postgres@127.0.0.1:5432/test

The database is --database, else $MFGOS_TEST_DATABASE_URL, else a temporary SQLite file; on
PostgreSQL the run uses a schema of its own, dropped afterwards. Columns: wall seconds from
the start signal until nothing is pending, transactions per second, outcomes, and CPU
milliseconds per transaction in the workers and in the fake ERP.
"""

from __future__ import annotations

import argparse
import multiprocessing
import os
import resource
import sys
import tempfile
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager, nullcontext
from multiprocessing.connection import Connection
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
ERPS = ("ledger", "erpnext", "odoo", "sap")


def cpu_seconds() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def _serve_fake(name: str, latency: float, stock: float, conn: Connection) -> None:
    """Fake ERP process: serve until the parent says stop, then report the CPU it used."""
    sys.path.insert(0, str(ROOT))
    from tests.erp_fakes.harness import build_fake
    from tests.erp_fakes.server import serve

    site = build_fake(name, stock)
    site.faults.latency = latency
    with serve(site.app) as url:
        started = cpu_seconds()
        conn.send(url)
        conn.recv()
        conn.send(cpu_seconds() - started)


def _worker(
    number: int,
    database: str,
    schema: str | None,
    erp: str,
    url: str | None,
    concurrency: int,
    start: Any,
    results: Any,
) -> None:
    """Worker process: one outbox, posting until nothing is pending anywhere."""
    sys.path.insert(0, str(ROOT))
    import asyncio
    from datetime import UTC, datetime

    from erp_adapters.ledger import LedgerErp
    from erp_adapters.outbox import ErpOutbox
    from models.db import make_engine
    from tests.erp_fakes.harness import build_fake, pending

    engine = make_engine(database, schema=schema)
    outcomes: dict[str, int] = {}

    def settled(_session: Any, _txn: Any, outcome: str, _detail: str) -> None:
        outcomes[outcome] = outcomes.get(outcome, 0) + 1

    async def work() -> None:
        adapter = LedgerErp(engine) if erp == "ledger" else build_fake(erp).adapter(url or "")
        outbox = ErpOutbox(
            engine,
            adapter,
            now=lambda: datetime.now(UTC),
            on_settled=settled,
            worker_id=f"bench-{number}",
            concurrency=concurrency,
        )
        try:
            while True:
                if not await outbox.post_due(limit=100):
                    if not pending(engine):
                        return
                    await asyncio.sleep(0.01)
        finally:
            await adapter.aclose()

    results.put(("ready", number))
    start.wait()
    cpu = cpu_seconds()
    asyncio.run(work())
    results.put(("done", number, time.time(), cpu_seconds() - cpu, outcomes))
    engine.dispose()


@contextmanager
def fake_process(name: str, latency: float, stock: float, cpu: list[float]) -> Iterator[str]:
    parent, child = multiprocessing.Pipe()
    process = multiprocessing.get_context("spawn").Process(
        target=_serve_fake, args=(name, latency, stock, child), daemon=True
    )
    process.start()
    try:
        if not parent.poll(60):
            raise RuntimeError(f"the fake {name} did not start")
        yield parent.recv()
    finally:
        parent.send("stop")
        if parent.poll(10):
            cpu.append(parent.recv())
        process.join(timeout=10)
        if process.is_alive():
            process.terminate()


@contextmanager
def store(database: str | None) -> Iterator[tuple[Any, str, str | None]]:
    """A migrated store: (engine, url, schema)."""
    from sqlalchemy import text

    from models.db import make_engine, migrate

    if database and not database.startswith("sqlite"):
        schema = f"bench_{uuid.uuid4().hex[:12]}"
        admin = make_engine(database)
        with admin.begin() as connection:
            connection.execute(text(f'CREATE SCHEMA "{schema}"'))
        engine = make_engine(database, schema=schema)
        try:
            migrate(engine)
            yield engine, database, schema
        finally:
            engine.dispose()
            with admin.begin() as connection:
                connection.execute(text(f'DROP SCHEMA "{schema}" CASCADE'))
            admin.dispose()
        return
    with tempfile.TemporaryDirectory() as directory:
        url = database or f"sqlite:///{directory}/bench.db"
        engine = make_engine(url)
        migrate(engine)
        try:
            yield engine, url, None
        finally:
            engine.dispose()


def run(
    name: str, options: argparse.Namespace, exceptions: int
) -> tuple[int, float, dict[str, int], float, float | None, int]:
    from tests.erp_fakes.harness import approvals, build_fake, pending

    context = multiprocessing.get_context("spawn")
    fake_cpu: list[float] = []
    with store(options.database) as (engine, url, schema):
        settings = {} if name == "ledger" else build_fake(name).settings
        keys = approvals(engine, exceptions, settings)
        total = sum(len(k) for k in keys.values())
        with (
            nullcontext()
            if name == "ledger"
            else fake_process(name, options.latency_ms / 1000, 10.0 * total, fake_cpu) as erp_url
        ):
            start, results = context.Event(), context.Queue()
            workers = [
                context.Process(
                    target=_worker, args=(n, url, schema, name, erp_url, options.concurrency, start, results)
                )
                for n in range(options.workers)
            ]
            for worker in workers:
                worker.start()
            for _ in workers:
                results.get(timeout=120)  # ready
            began = time.time()
            start.set()
            finished, worker_cpu, outcomes = [], 0.0, {}
            for _ in workers:
                _, _, at, cpu, counted = results.get(timeout=600)
                finished.append(at)
                worker_cpu += cpu
                for outcome, count in counted.items():
                    outcomes[outcome] = outcomes.get(outcome, 0) + count
            for worker in workers:
                worker.join(timeout=30)
        left = pending(engine)
    return total, max(finished) - began, outcomes, worker_cpu, (fake_cpu[0] if fake_cpu else None), left


def main() -> int:
    sys.path.insert(0, str(ROOT))
    parser = argparse.ArgumentParser(description=(__doc__ or "").split("\n\n")[0])
    parser.add_argument("--erp", choices=(*ERPS, "all"), default="all")
    parser.add_argument(
        "--transactions", type=int, default=1000, help="rounded down to a multiple of 4 (four per exception)"
    )
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--latency-ms", type=float, default=10.0)
    parser.add_argument("--concurrency", type=int, default=8, help="posts in flight per worker")
    parser.add_argument("--database", default=os.environ.get("MFGOS_TEST_DATABASE_URL"))
    options = parser.parse_args()

    exceptions = max(1, options.transactions // 4)
    database = "postgresql" if options.database and not options.database.startswith("sqlite") else "sqlite"
    print(
        f"{exceptions * 4} transactions ({exceptions} exceptions x 4, in order), {options.workers} worker processes x "
        f"{options.concurrency} in flight, ERP latency {options.latency_ms:g} ms, {database}, {os.cpu_count()} CPUs"
    )
    print(
        f"{'erp':8} {'seconds':>8} {'tx/s':>6} {'posted':>7} {'retries':>8} {'worker cpu/tx':>14} {'fake cpu/tx':>12}"
    )
    failed = False
    for name in ERPS if options.erp == "all" else (options.erp,):
        total, elapsed, outcomes, worker_cpu, fake_cpu, left = run(name, options, exceptions)
        fake = f"{fake_cpu / total * 1000:9.2f} ms" if fake_cpu is not None else f"{'-':>12}"
        print(
            f"{name:8} {elapsed:8.2f} {total / elapsed:6.0f} {outcomes.get('posted', 0):7d} {outcomes.get('retry', 0):8d} "
            f"{worker_cpu / total * 1000:11.2f} ms {fake}" + (f"  ({left} NOT POSTED)" if left else "")
        )
        failed = failed or bool(left)
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())

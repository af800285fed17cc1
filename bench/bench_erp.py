"""ERP posting throughput: approved transactions through outbox workers into a fake ERP.

The fake ERP (the same wire-protocol fakes the tests use) runs in a process of its own and
answers every request after `--latency-ms`; the workers are threads with their own event
loops, connections and adapters, as replicas would be, sharing only the database.

    python bench/bench_erp.py                      # every ERP, 1,000 transactions, 2 workers, 10 ms
    python bench/bench_erp.py --erp sap --transactions 4000 --database postgresql://postgres@127.0.0.1:5432/test

The database is --database, else $MFGOS_TEST_DATABASE_URL, else a temporary SQLite file; on
PostgreSQL the run uses a schema of its own, dropped afterwards.
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
from contextlib import contextmanager
from multiprocessing.connection import Connection
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
ERPS = ("ledger", "erpnext", "odoo", "sap")
FAKE_CPU: list[float] = []  # CPU seconds the fake ERP process used, per run


def _serve_fake(name: str, latency: float, stock: float, conn: Connection) -> None:
    """Child process: serve one fake ERP until the parent says stop."""
    sys.path.insert(0, str(ROOT))
    from tests.erp_fakes.harness import build_fake
    from tests.erp_fakes.server import serve

    site = build_fake(name, stock)
    site.faults.latency = latency
    with serve(site.app) as url:
        conn.send(url)
        conn.recv()
    usage = resource.getrusage(resource.RUSAGE_SELF)
    conn.send(usage.ru_utime + usage.ru_stime)


def process_cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


@contextmanager
def fake_in_process(name: str, latency: float, stock: float) -> Iterator[str]:
    parent, child = multiprocessing.Pipe()
    process = multiprocessing.get_context("spawn").Process(
        target=_serve_fake, args=(name, latency, stock, child), daemon=True
    )
    process.start()
    try:
        if not parent.poll(30):
            raise RuntimeError(f"the fake {name} did not start")
        yield parent.recv()
    finally:
        parent.send("stop")
        if parent.poll(10):
            FAKE_CPU.append(parent.recv())
        process.join(timeout=10)
        if process.is_alive():
            process.terminate()


@contextmanager
def store(database: str | None) -> Iterator[object]:
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
            yield engine
        finally:
            engine.dispose()
            with admin.begin() as connection:
                connection.execute(text(f'DROP SCHEMA "{schema}" CASCADE'))
            admin.dispose()
        return
    with tempfile.TemporaryDirectory() as directory:
        engine = make_engine(database or f"sqlite:///{directory}/bench.db")
        migrate(engine)
        try:
            yield engine
        finally:
            engine.dispose()


def main() -> int:
    sys.path.insert(0, str(ROOT))
    from erp_adapters.ledger import LedgerErp
    from tests.erp_fakes.harness import approvals, build_fake, pending, run_workers

    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--erp", choices=(*ERPS, "all"), default="all")
    parser.add_argument("--transactions", type=int, default=1000, help="a multiple of 4 (four per exception)")
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--latency-ms", type=float, default=10.0)
    parser.add_argument("--concurrency", type=int, default=16, help="posts in flight per worker")
    parser.add_argument("--database", default=os.environ.get("MFGOS_TEST_DATABASE_URL"))
    options = parser.parse_args()

    exceptions = max(1, options.transactions // 4)
    database = "postgresql" if options.database and not options.database.startswith("sqlite") else "sqlite"
    print(
        f"{exceptions * 4} transactions ({exceptions} exceptions x 4, in order), {options.workers} workers x "
        f"{options.concurrency} in flight, ERP latency {options.latency_ms:g} ms, {database}"
    )
    print(f"{'erp':8} {'seconds':>8} {'tx/s':>6} {'posted':>7} {'retries':>8} {'worker cpu/tx':>14} {'fake cpu/tx':>12}")
    failed = False
    for name in ERPS if options.erp == "all" else (options.erp,):
        FAKE_CPU.clear()
        with store(options.database) as engine:
            if name == "ledger":
                keys = approvals(engine, exceptions, {})
                cpu = process_cpu()
                elapsed, stats = run_workers(
                    engine,
                    lambda engine=engine: LedgerErp(engine),
                    workers=options.workers,
                    concurrency=options.concurrency,
                )
                cpu = process_cpu() - cpu
            else:
                site = build_fake(name)  # credentials and plant settings; the served copy is in the child
                keys = approvals(engine, exceptions, site.settings)
                with fake_in_process(name, options.latency_ms / 1000, stock=10.0 * exceptions * 4) as url:
                    cpu = process_cpu()
                    elapsed, stats = run_workers(
                        engine,
                        lambda url=url, site=site: site.adapter(url),
                        workers=options.workers,
                        concurrency=options.concurrency,
                    )
                    cpu = process_cpu() - cpu
            left = pending(engine)
        posted = sum(s.outcomes.get("posted", 0) for s in stats)
        retries = sum(s.outcomes.get("retry", 0) for s in stats)
        total = sum(len(k) for k in keys.values())
        fake_cpu = f"{FAKE_CPU[0] / total * 1000:9.2f} ms" if FAKE_CPU else f"{'-':>12}"
        print(
            f"{name:8} {elapsed:8.2f} {total / elapsed:6.0f} {posted:7d} {retries:8d} {cpu / total * 1000:11.2f} ms {fake_cpu}"
            + (f"  ({left} NOT POSTED)" if left else "")
        )
        failed = failed or bool(left)
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())

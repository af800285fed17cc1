"""How fast the KPIs and the export answer on a year of a busy plant (docs/benchmarks.md, "Insight").

    python bench/bench_insight.py [--exceptions 100000] [--events 10] [--rounds 20] [--database URL]

A fresh schema of the PostgreSQL at `--database` (default MFGOS_TEST_DATABASE_URL), filled in
SQL with generate_series (seconds, not minutes): `--exceptions` exceptions over the last 365
days (every type, 8 areas), `--events` timeline events each (opened, routed, acknowledged,
machine running, approved, ERP queued and posted, posted, closed; every 5th escalated, the
others a comment), 5
notifications each with their signal, an ERP transaction each, and 10,000 work orders with one
MES "done" signal each. Timed, `--rounds` times each, p50 and p95 in milliseconds:

- every query of the KPIs from the raw rows (`routing.kpis._from_rows`, the 12 of QUERIES), for the
  last 7, 30 and 365 days;
- the KPIs as `routing.kpis.compute` answers them on PostgreSQL, from each exception's kept figures
  (routing/figures.py): the first build of the figures once, then each round after a little
  more happened (one new exception and five events on older ones, as a busy plant between two
  questions), so every round pays its refresh;
- the per-day figures of a trend question (`routing.kpis.trend`) for the last 7, 30 and 365 days,
  and drawing its chart (`bot.charts.render`: the first drawing, then every drawing);
- the export of the last 7 days, CSV and JSON, to the last byte;
- baseline: the previous KPIs (every exception of the period loaded into Python), same periods;
- the dashboard's queries (`routing.outcomes`, `routing.trends`, the signal log's first page) for
  the last 7, 30 and 90 days, each with its ratio to `kpis.compute` of the same period, timed in
  the same run. `--dashboard-only` times only these.

Prints one JSON object.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import time
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from sqlalchemy import event  # noqa: E402
from sqlalchemy import text as sql  # noqa: E402
from sqlmodel import Session, select  # noqa: E402

from bench.bench_pipeline import database  # noqa: E402
from bot import charts  # noqa: E402
from models import Plant, PlantException, Signal, make_engine  # noqa: E402
from models.db import migrate  # noqa: E402
from routing import export, figures, kpis, outcomes, queries, trends  # noqa: E402

BASELINE = {"mttr_minutes": 95, "schedule_adherence": 0.78, "status_calls_per_week": 40, "erp_correction_rate": 0.12,
            "by_type": {"breakdown": {"mttr_minutes": 130}}}

QUERIES = ("cohort figures", "open now", "escalations and rejections", "erp rows", "messages", "people",
           "notify: count", "notify: p95 row", "schedule adherence", "customer orders at risk", "by type", "by area")


def fill(engine: Any, exceptions: int, events: int, now: datetime) -> None:
    """The store, in set-based SQL: one INSERT ... SELECT per table."""
    statements = [
        "INSERT INTO plants (id, name, timezone, erp) VALUES ('p1', 'Plant', 'UTC', '{}')",
        "INSERT INTO areas (plant_id, id, name) SELECT 'p1', 'area' || a, 'Area ' || a FROM generate_series(0, 7) a",
        # Exceptions over the last year; closed ones took 5..125 minutes.
        """INSERT INTO exceptions (plant_id, code, type, status, severity, summary, language, machine_id, area_id,
               reporter_id, approver_role, work_orders, customer_orders_at_risk, staging_conflict, proposal,
               opened_at, acknowledged_at, approved_at, posted_at, closed_at)
           SELECT 'p1', 'E-' || n, (ARRAY['breakdown','quality','material','safety','tooling','utility'])[n % 6 + 1],
                  CASE WHEN n % 50 = 0 THEN 'open' ELSE 'closed' END, 'medium', 'report ' || n, 'en',
                  'M-' || (n % 200), 'area' || (n % 8), 'u' || (n % 50), 'supervisor',
                  json_build_array('WO-' || (n % 10000)), json_build_array('SO-' || (n % 3000)), '{}', '{}',
                  at, at + interval '4 minutes', at + interval '40 minutes', at + interval '41 minutes',
                  CASE WHEN n % 50 = 0 THEN NULL ELSE at + (5 + n % 120) * interval '1 minute' END
           FROM (SELECT n, :now - (n * interval '1 second' * 31536000 / :count) AS at
                 FROM generate_series(1, :count) n) s""",
        f"""INSERT INTO timeline_events (exception_id, at, kind, person_id, text, data)
           SELECT e.id, e.opened_at + k * interval '1 minute',
                  CASE WHEN k % 10 = 4 AND e.id % 5 <> 0 THEN 'comment'
                       ELSE (ARRAY['opened','routed','acknowledged','machine_state','escalated','approved',
                                   'erp_queued','erp_posted','posted','closed'])[k % 10 + 1] END,
                  CASE WHEN k % 10 IN (0, 2, 5) THEN 'u' || (e.id % 50) END, '',
                  CASE WHEN k % 10 = 3 THEN '{{"running": true}}'::json ELSE '{{}}'::json END
           FROM exceptions e, generate_series(0, {events - 1}) k""",
        "INSERT INTO signals (plant_id, source, source_key, kind, received_at, payload, processed_at) "
        "SELECT 'p1', 'console', 'console:' || e.id, 'chat', e.opened_at, '{}', e.opened_at FROM exceptions e",
        """INSERT INTO notifications (plant_id, dedupe_key, exception_id, person_id, kind, channel, address, language,
               text, buttons, created_at, status, attempts)
           SELECT 'p1', 'signal:' || s.id || ':' || k || ':' || 'u' || k || ':' || e.id, e.id, 'u' || k,
                  CASE WHEN k < 3 THEN 'alert' WHEN k = 3 THEN 'buttons_update' ELSE 'reply' END,
                  'console', 'u' || k, 'en', 'text', '[]', e.opened_at, 'sent', 1
           FROM exceptions e JOIN signals s ON s.source_key = 'console:' || e.id, generate_series(0, 4) k""",
        """INSERT INTO erp_transactions (plant_id, exception_id, sequence, kind, fields, idempotency_key, status,
               attempts, created_at, posted_at, reference, public_id)
           SELECT 'p1', e.id, 1, 'maintenance_request', '{}', 'k' || e.id, 'sent', 1, e.approved_at, e.posted_at,
                  'MR-' || e.id, md5('erp' || e.id) FROM exceptions e""",
        """INSERT INTO work_orders (plant_id, id, machine_id, "end", status, origin)
           SELECT 'p1', 'WO-' || n, 'M-' || (n % 200), :now - n * interval '52 minutes', 'done', 'plant_file'
           FROM generate_series(0, 9999) n""",
        """INSERT INTO signals (plant_id, source, source_key, kind, received_at, payload, processed_at)
           SELECT 'p1', 'mes', 'mes:' || n, 'work_order', :now - n * interval '52 minutes' + (n % 7 - 5) * interval '1 hour',
                  json_build_object('work_order', 'WO-' || n, 'status', 'done'), :now
           FROM generate_series(0, 9999) n""",
        "ANALYZE",
    ]
    with engine.begin() as connection:
        for statement in statements:
            connection.execute(sql(statement), {"now": now, "count": exceptions})


def happen(engine: Any, at: datetime) -> None:
    """A little of a busy plant between two questions: one new exception, five events on older ones."""
    with engine.begin() as connection:
        connection.execute(sql(
            """INSERT INTO exceptions (plant_id, code, type, status, severity, summary, language, area_id,
                   approver_role, work_orders, customer_orders_at_risk, staging_conflict, proposal, opened_at)
               VALUES ('p1', :code, 'breakdown', 'open', 'medium', 'new', 'en', 'area1', 'supervisor', '[]',
                       '["SO-1"]', '{}', '{}', :at)"""), {"code": f"N-{at.timestamp():.0f}", "at": at})
        connection.execute(sql(
            """INSERT INTO timeline_events (exception_id, at, kind, person_id, text, data)
               SELECT id, :at, 'comment', 'u1', '', '{}' FROM exceptions ORDER BY random() LIMIT 5"""), {"at": at})


def old_compute(session: Session, plant_id: str, since: datetime, until: datetime) -> int:
    """The baseline: the KPIs as they were before, every exception of the period loaded as an object."""
    rows = session.exec(select(PlantException).where(PlantException.plant_id == plant_id,
                                                     PlantException.opened_at >= since,
                                                     PlantException.opened_at < until)).all()
    acks = [(e.acknowledged_at - e.opened_at).total_seconds() for e in rows if e.acknowledged_at]
    return len(rows) + len(acks)


def percentiles(samples: list[float]) -> dict[str, float]:
    ordered = sorted(samples)
    return {"p50_ms": round(statistics.median(ordered), 1),
            "p95_ms": round(ordered[max(0, -(-95 * len(ordered) // 100) - 1)], 1)}


def timed(rounds: int, run: Callable[[], Any]) -> list[float]:
    samples = []
    for _ in range(rounds):
        start = time.perf_counter()
        run()
        samples.append((time.perf_counter() - start) * 1000)
    return samples


def dashboard(engine: Any, now: datetime, rounds: int) -> dict[str, Any]:
    """The dashboard's endpoints' queries per period, p50/p95 ms, each with its ratio to the KPIs' compute."""
    out: dict[str, Any] = {}
    for days in (7, 30, 90):
        since = now - timedelta(days=days)
        with Session(engine) as session:
            calls: dict[str, Callable[[], Any]] = {
                "kpis_compute": lambda s=session, f=since: kpis.compute(s, "p1", f, now),
                "outcomes": lambda s=session, f=since: outcomes.compute(s, "p1", BASELINE, f, now),
                "trends": lambda s=session, f=since: trends.daily(s, "p1", "Asia/Kolkata", f, now),
                "pareto": lambda s=session, f=since: trends.pareto(s, "p1", f, now),
                "signal_log_page": lambda s=session: s.exec(select(Signal).where(Signal.plant_id == "p1").order_by(
                    Signal.id.desc()).limit(50)).all(),  # type: ignore[union-attr]
            }
            figures = {name: percentiles(timed(rounds, call)) for name, call in calls.items()}
        base = max(figures["kpis_compute"]["p95_ms"], 0.001)
        out[f"dashboard_{days}d"] = {name: {**f, "ratio_p95_to_kpis": round(f["p95_ms"] / base, 2)}
                                     for name, f in figures.items()}
    return out


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--exceptions", type=int, default=100_000)
    parser.add_argument("--events", type=int, default=10)
    parser.add_argument("--rounds", type=int, default=20)
    parser.add_argument("--database", default=os.environ.get("MFGOS_TEST_DATABASE_URL"))
    parser.add_argument("--dashboard-only", action="store_true", help="time only the dashboard's queries")
    args = parser.parse_args()
    if not args.database:
        parser.error("give --database postgresql://... (or set MFGOS_TEST_DATABASE_URL)")
    now = datetime.now(UTC).replace(microsecond=0)
    result: dict[str, Any] = {"exceptions": args.exceptions, "rounds": args.rounds}
    with database(args.database) as url:
        engine = make_engine(url)
        migrate(engine)
        started = time.perf_counter()
        fill(engine, args.exceptions, args.events, now)
        with engine.connect() as connection:
            result["timeline_events"] = connection.execute(sql("SELECT count(*) FROM timeline_events")).scalar()
            result["notifications"] = connection.execute(sql("SELECT count(*) FROM notifications")).scalar()
        result["fill_seconds"] = round(time.perf_counter() - started, 1)

        # Each statement compute() sends, timed at the cursor: QUERIES names them in the order they run.
        statements: list[tuple[str, float]] = []

        @event.listens_for(engine, "before_cursor_execute")
        def _start(conn: Any, *_: Any) -> None:
            conn.info["started"] = time.perf_counter()

        @event.listens_for(engine, "after_cursor_execute")
        def _stop(conn: Any, cursor: Any, statement: str, *_: Any) -> None:
            statements.append((" ".join(statement.split())[:60], (time.perf_counter() - conn.info.pop("started")) * 1000))

        # The fill's last events (ERP rows 40 minutes after an opening) run past `now`: the periods
        # end an hour later, so nothing lies after them and the kept figures answer.
        end = now + timedelta(hours=1)
        with Session(engine) as session:
            started = time.perf_counter()
            built = figures.refresh(session, "p1")
            result["figures_first_build"] = {"exceptions": built,
                                             "seconds": round(time.perf_counter() - started, 1)}
        result.update(dashboard(engine, now, args.rounds))
        more = iter(range(1, 10**6))
        for days in () if args.dashboard_only else (7, 30, 365):
            since = now - timedelta(days=days)
            per_query: list[list[float]] = [[] for _ in QUERIES]
            totals = []
            kept = []
            kept_statements: dict[str, list[float]] = {}
            for _ in range(args.rounds):
                statements.clear()
                start = time.perf_counter()
                with Session(engine) as session:
                    kpis._from_rows(session, "p1", since, end)
                totals.append((time.perf_counter() - start) * 1000)
                assert len(statements) == len(QUERIES), statements
                for slot, (_, ms) in zip(per_query, statements, strict=True):
                    slot.append(ms)
                happen(engine, now + timedelta(seconds=next(more)))
                statements.clear()
                start = time.perf_counter()
                with Session(engine) as session:
                    kpis.compute(session, "p1", since, end)
                kept.append((time.perf_counter() - start) * 1000)
                for label, ms in statements:
                    kept_statements.setdefault(label, []).append(ms)
            with Session(engine) as session:
                baseline = timed(args.rounds, lambda s=session, f=since: old_compute(s, "p1", f, end))
            result[f"kpis_{days}d"] = {
                "kept_figures": percentiles(kept), "raw_rows": percentiles(totals),
                "baseline_previous_kpis": percentiles(baseline),
                "ratio_kept_to_raw_p95": round(percentiles(kept)["p95_ms"] / max(percentiles(totals)["p95_ms"], 0.001),
                                               3),
                "ratio_raw_to_baseline_p95": round(percentiles(totals)["p95_ms"]
                                                   / max(percentiles(baseline)["p95_ms"], 0.001), 2),
                "queries": {name: percentiles(ms) for name, ms in zip(QUERIES, per_query, strict=True)},
                "kept_statements": {label: percentiles(ms) for label, ms in kept_statements.items()},
            }
        # Charts: the per-day figures of a trend (one grouped query over the period's day edges), and
        # drawing the chart (after the first drawing, which imports matplotlib and loads its font).
        plant = Plant(id="p1", name="Plant", timezone="UTC")
        for days in (7, 30, 365):
            edges, _ = queries.slots(plant, now - timedelta(days=days), now)
            with Session(engine) as session:
                result[f"trend_{days}d"] = {**percentiles(timed(args.rounds, lambda s=session, e=edges: kpis.trend(
                    s, "p1", e))), "slots": len(edges) - 1}
            with Session(engine) as session:
                values = [float(g.count) for g in kpis.trend(session, "p1", edges)]
            chart = {"kind": "trend", "title": f"Exceptions opened per day, the last {days} days",
                     "labels": [f"{e:%m-%d}" for e in edges[:-1]], "values": values, "unit": ""}
            started = time.perf_counter()
            charts.render(chart)
            first = (time.perf_counter() - started) * 1000

            def draw(c: dict[str, Any] = chart) -> bytes:
                charts._cache.clear()  # drawn every time, not taken from the cache
                return charts.render(c)

            result[f"chart_{days}d"] = {"first_ms": round(first, 1), **percentiles(timed(args.rounds, draw))}
        week = now - timedelta(days=7)
        for name, lines in () if args.dashboard_only else (("csv", export.csv_lines), ("json", export.json_chunks)):
            size = sum(len(chunk) for chunk in lines(engine, "p1", week, now))
            result[f"export_7d_{name}"] = {**percentiles(timed(args.rounds, lambda f=lines: sum(
                1 for _ in f(engine, "p1", week, now)))), "bytes": size}
        engine.dispose()
    print(json.dumps(result, indent=2))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

"""`mfgos kpi` and `mfgos export` (their arguments: mfgos/cli.py): the figures and the history of a store.

Both read the database only (nothing is migrated or loaded), so they run against a live
store, a replayed one or a copy. The plant is the store's only plant unless `--plant` names one.
"""

from __future__ import annotations

import argparse
import json
import sys
from datetime import UTC, datetime
from typing import Any

from rich import box
from rich.console import Console
from rich.table import Table
from sqlalchemy.exc import SQLAlchemyError
from sqlmodel import Session, select

from mfgos.config import Settings
from models import Plant, make_engine
from routing import export, kpis

LABELS = {
    "opened": "exceptions opened", "closed": "of them closed", "open_now": "open now (all periods)",
    "mtta_minutes": "MTTA, min (to the acknowledgement that counts)",
    "mttr_minutes": "MTTR, min (breakdowns: to running or closed)",
    "mean_resolution_minutes": "mean resolution, min (all types)",
    "notify_p95_seconds": "notification p95, s (event to last alert queued)",
    "escalations": "escalations", "escalation_rate": "share escalated",
    "schedule_adherence": "schedule adherence (due orders done by their end)",
    "customer_orders_at_risk": "customer orders at risk",
    "erp_latency_minutes": "ERP latency, min (approval to posted)", "erp_rejected": "ERP rejections",
    "messages_per_exception": "messages per exception", "people_per_exception": "people per exception",
}


def _open(args: argparse.Namespace, command: str) -> tuple[Any, str, datetime, datetime] | int:
    """The engine, plant and period the arguments name; or the exit status after saying what is wrong."""
    try:
        since, until = kpis.period(args.since, args.until, datetime.now(UTC))
    except ValueError as error:
        print(f"mfgos {command}: {error}", file=sys.stderr)
        return 2
    engine = make_engine(args.database or Settings().database_url)
    try:
        with Session(engine) as session:
            plants = session.exec(select(Plant.id).order_by(Plant.id)).all()
    except SQLAlchemyError as error:
        engine.dispose()
        print(f"mfgos {command}: cannot read the database: {type(error).__name__}", file=sys.stderr)
        return 2
    if args.plant and args.plant not in plants or not args.plant and len(plants) != 1:
        engine.dispose()
        known = ", ".join(plants) or "none"
        print(f"mfgos {command}: " + (f"no plant {args.plant!r}" if args.plant else "give --plant") +
              f" (plants in this database: {known})", file=sys.stderr)
        return 2
    return engine, args.plant or plants[0], since, until


def kpi_command(args: argparse.Namespace) -> int:
    opened = _open(args, "kpi")
    if isinstance(opened, int):
        return opened
    engine, plant_id, since, until = opened
    try:
        with Session(engine) as session:
            figures = kpis.compute(session, plant_id, since, until).to_json()
    finally:
        engine.dispose()
    if args.json:
        print(json.dumps({"plant": plant_id, **figures}, indent=2))
        return 0
    console = Console()
    table = Table(title=f"{plant_id}: {figures['since']} to {figures['until']}", box=box.SIMPLE)
    table.add_column("figure")
    table.add_column("value", justify="right")
    for key, label in LABELS.items():
        table.add_row(label, "-" if figures[key] is None else f"{figures[key]:g}")
    console.print(table)
    for key in ("by_type", "by_area"):
        groups = Table(title=key.replace("_", " "), box=box.SIMPLE)
        for column in (key.removeprefix("by_"), "count", "downtime, min", "MTTR, min"):
            groups.add_column(column, justify="left" if column == key.removeprefix("by_") else "right")
        for name, group in figures[key].items():
            groups.add_row(name, str(group["count"]), *("-" if group[f] is None else f"{group[f]:g}"
                                                        for f in ("downtime_minutes", "mttr_minutes")))
        console.print(groups)
    return 0


def export_command(args: argparse.Namespace) -> int:
    opened = _open(args, "export")
    if isinstance(opened, int):
        return opened
    engine, plant_id, since, until = opened
    lines = export.csv_lines if args.format == "csv" else export.json_chunks
    try:
        for chunk in lines(engine, plant_id, since, until):
            sys.stdout.write(chunk)
    finally:
        engine.dispose()
    return 0

"""Export: the exceptions opened in a period with their timelines, as CSV or JSON (docs/kpis.md, "Export").

One query, ordered by exception and event and read in batches, so a year of history streams
out in constant memory. CSV has one row per timeline event with the exception's columns
repeated; a spreadsheet opens it as it is. A cell that starts with `=`, `+`, `-`, `@`, a tab or
a carriage return is prefixed with `'`, so a spreadsheet shows it as text instead of running it
as a formula (a report text like `=HYPERLINK(...)` typed into chat by anyone).
"""

from __future__ import annotations

import csv
import io
import json
from collections.abc import Iterator
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import select
from sqlalchemy.engine import Engine

from models import PlantException, TimelineEvent
from routing.kpis import SKEW

E = PlantException.__table__  # type: ignore[attr-defined]
T = TimelineEvent.__table__  # type: ignore[attr-defined]

EXCEPTION_COLUMNS = ("code", "type", "status", "severity", "machine", "area", "material", "reporter",
                     "approver_role", "summary", "work_orders", "customer_orders_at_risk", "opened_at",
                     "acknowledged_at", "approved_at", "posted_at", "closed_at")
EVENT_COLUMNS = ("event_at", "event_kind", "event_person", "event_text", "event_data")
FORMULA_START = ("=", "+", "-", "@", "\t", "\r")
BATCH = 1000

_SOURCE = {"machine": "machine_id", "area": "area_id", "material": "material_id", "reporter": "reporter_id"}


def _iso(at: datetime | None) -> str | None:
    if at is None:
        return None
    return (at if at.tzinfo else at.replace(tzinfo=UTC)).astimezone(UTC).isoformat()


def _rows(engine: Engine, plant_id: str, since: datetime, until: datetime) -> Iterator[tuple[dict[str, Any], dict[str, Any] | None]]:
    """(exception, event) pairs in order; events after `until` are left out, like the KPIs'.
    The events are bounded by time as well (they come after the opening), so the timeline is read by index."""
    columns = [E.c[_SOURCE.get(name, name)].label(name) for name in EXCEPTION_COLUMNS]
    query = (select(E.c.id, *columns, T.c.at, T.c.kind, T.c.person_id, T.c.text, T.c.data)
             .select_from(E.outerjoin(T, (T.c.exception_id == E.c.id) & (T.c.at >= since - SKEW) & (T.c.at < until)))
             .where(E.c.plant_id == plant_id, E.c.opened_at >= since, E.c.opened_at < until)
             .order_by(E.c.id, T.c.id))
    with engine.connect() as connection:
        result = connection.execution_options(yield_per=BATCH).execute(query)
        for row in result.mappings():
            exception = {name: row[name] for name in EXCEPTION_COLUMNS}
            for name in ("opened_at", "acknowledged_at", "approved_at", "posted_at", "closed_at"):
                exception[name] = _iso(exception[name])
            event = None if row["kind"] is None else {
                "at": _iso(row["at"]), "kind": row["kind"], "person": row["person_id"], "text": row["text"],
                "data": row["data"] or {}}
            yield exception, event


def safe_cell(value: Any) -> str:
    """A CSV cell a spreadsheet will not run as a formula."""
    text = "" if value is None else value if isinstance(value, str) else json.dumps(value, ensure_ascii=False)
    return "'" + text if text.startswith(FORMULA_START) else text


def csv_lines(engine: Engine, plant_id: str, since: datetime, until: datetime) -> Iterator[str]:
    """The header, then one line per timeline event (an exception without events: one line, event cells empty)."""
    buffer = io.StringIO()
    writer = csv.writer(buffer)

    def line(cells: list[Any]) -> str:
        buffer.seek(0)
        buffer.truncate()
        writer.writerow([safe_cell(c) for c in cells])
        return buffer.getvalue()

    yield line([*EXCEPTION_COLUMNS, *EVENT_COLUMNS])
    for exception, event in _rows(engine, plant_id, since, until):
        cells = [" ".join(v) if isinstance(v := exception[name], list) else v for name in EXCEPTION_COLUMNS]
        after = [None] * len(EVENT_COLUMNS) if event is None else [
            event["at"], event["kind"], event["person"], event["text"], event["data"] or None]
        yield line([*cells, *after])


def json_chunks(engine: Engine, plant_id: str, since: datetime, until: datetime) -> Iterator[str]:
    """`{"since", "until", "exceptions": [{..., "timeline": [...]}]}`, one exception at a time."""
    yield json.dumps({"plant": plant_id, "since": _iso(since), "until": _iso(until)})[:-1] + ', "exceptions": ['
    current: dict[str, Any] | None = None
    first = True
    for exception, event in _rows(engine, plant_id, since, until):
        if current is None or current["code"] != exception["code"]:
            if current is not None:
                yield ("" if first else ",") + json.dumps(current, ensure_ascii=False)
                first = False
            current = {**exception, "timeline": []}
        if event is not None:
            current["timeline"].append(event)
    if current is not None:
        yield ("" if first else ",") + json.dumps(current, ensure_ascii=False)
    yield "]}\n"

"""Storing a batch of signals in one statement or two: the part of the gate that a plant's stream makes hot.

`insert_new(connection, rows)` inserts the rows whose `source_key` is not stored yet and
returns `{source_key: id}` of those it inserted; a key already stored (a redelivery, or a
replica that stored it first) is left alone, as `ON CONFLICT (source_key) DO NOTHING` does.
New rows get their ids in the order given, so signals are processed in the order they came.

On PostgreSQL the rows go in with `COPY` into a temporary table and one
`INSERT ... SELECT ... RETURNING`, whose rows with a stored key the dedupe trigger skips: SQLAlchemy's multi-row INSERT spent
about 100 µs of Python a row building and binding parameters, COPY about a fifth of that
(docs/benchmarks.md, "Signals"). On SQLite the cached multi-row INSERT is already cheap.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import Any

from sqlalchemy import Connection
from sqlalchemy.dialects.sqlite import insert as sqlite_insert

from models import Signal

COLUMNS = ("plant_id", "source", "source_key", "kind", "received_at", "payload", "processed_at")
_STAGE = "mfgos_signals_in"  # per connection, emptied at every commit


def insert_new(connection: Connection, rows: Sequence[dict[str, Any]]) -> dict[str, int]:
    """Insert the rows (dicts with `COLUMNS`) whose source key is new; `{source_key: id}` of those inserted."""
    if not rows:
        return {}
    if connection.dialect.name == "postgresql":
        return _copy(connection, rows)
    table = Signal.__table__  # type: ignore[attr-defined]
    statement = sqlite_insert(table).on_conflict_do_nothing(index_elements=["source_key"]) \
        .returning(table.c.id, table.c.source_key)
    return {key: signal_id for signal_id, key in connection.execute(statement, list(rows))}


def _copy(connection: Connection, rows: Sequence[dict[str, Any]]) -> dict[str, int]:
    columns = ", ".join(COLUMNS)
    cursor = connection.connection.driver_connection.cursor()  # type: ignore[union-attr]
    cursor.execute(f"CREATE TEMPORARY TABLE IF NOT EXISTS {_STAGE} (position integer, plant_id text, source text, "
                   "source_key text, kind text, received_at timestamptz, payload json, processed_at timestamptz) "
                   "ON COMMIT DELETE ROWS")
    with cursor.copy(f"COPY {_STAGE} (position, {columns}) FROM STDIN") as copy:
        for position, row in enumerate(rows):
            copy.write_row((position, row["plant_id"], row["source"], row["source_key"], row["kind"],
                            row["received_at"], json.dumps(row["payload"]), row["processed_at"]))
    # No conflict target: the signals table is partitioned, and the trigger that claims each row's
    # key in `signal_keys` skips a row whose key is stored, the batch's own earlier rows included
    # (models/partitions.py); on a table of before migration 0014 the unique key does it.
    cursor.execute(f"INSERT INTO signals ({columns}) SELECT {columns} FROM {_STAGE} ORDER BY position "
                   "ON CONFLICT DO NOTHING RETURNING id, source_key")
    return {key: signal_id for signal_id, key in cursor.fetchall()}

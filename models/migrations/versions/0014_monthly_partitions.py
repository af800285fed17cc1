"""monthly partitions of signals and the timeline (PostgreSQL; issue 14, "data that grows")

Revision ID: 0014
Revises: 0013

`signals` (by `received_at`) and `timeline_events` (by `at`) become partitioned tables with one
partition per month (models/partitions.py): the months their rows span, the current month and
the coming ones, and a default partition. Each table is renamed, its partitioned successor
created with the same columns and defaults (the id sequence is kept, so ids go on), the rows
copied, the old table dropped, and the keys, indexes, foreign keys and triggers made again:

* The primary keys become `(id, <time column>)`: PostgreSQL requires the partition key in them.
* `signals.source_key` was unique; it now is through `signal_keys` (source key, signal id,
  received at), filled from the rows here and kept by a BEFORE INSERT trigger that skips a row
  whose key is taken (models/partitions.py explains why). A plain index on `source_key` serves
  the look-up of a duplicate's first signal.
* Foreign keys to `signals.id` (attachments, conversations, stranger replies) reference
  `signal_keys.signal_id`, which is unique: a partitioned table's id alone cannot be.
* `signals_notify` (migration 0011) is a statement trigger again, on the partitioned table.
* New, on SQLite too: partial indexes of the signals not processed yet (`ix_signals_unprocessed`,
  which inbound workers and the sweep look for) and of what people sent (`ix_signals_person`, the
  console); without them each look read every signal.

SQLite: no partitioning there; only the new indexes.
"""

from datetime import UTC, datetime

from alembic import op
from sqlalchemy import Connection, text

from models.partitions import PARTITIONED, Maintenance, create_default, ensure_months, maintain_connection, month_start

revision = '0014'
down_revision = '0013'
branch_labels = None
depends_on = None

# The secondary indexes each table had (migrations 0001 and 0009), made again on the new table.
INDEXES = {
    "signals": ("CREATE INDEX ix_signals_plant_id ON signals (plant_id)",
                "CREATE INDEX ix_signals_work_orders ON signals (received_at) WHERE kind = 'work_order'"),
    "timeline_events": ("CREATE INDEX ix_timeline_events_exception_id ON timeline_events (exception_id)",
                        "CREATE INDEX ix_timeline_events_at ON timeline_events (at)"),
}
# New on both databases: the signals not processed yet, which inbound workers and the sweep look for,
# and what a person sent (the console); without them each look reads every signal.
NEW_INDEXES = ("CREATE INDEX ix_signals_unprocessed ON signals (id) WHERE processed_at IS NULL",
               "CREATE INDEX ix_signals_person ON signals (person_id, id) WHERE person_id IS NOT NULL")
# New with the partitions: the look-up of a duplicate's first signal (the unique key did it before).
PARTITIONED_INDEXES = {
    "signals": ("CREATE INDEX ix_signals_source_key ON signals (source_key)",
                *NEW_INDEXES),
    "timeline_events": (),
}
FOREIGN_KEYS = {"signals": ("FOREIGN KEY (plant_id) REFERENCES plants (id)",),
                "timeline_events": ("FOREIGN KEY (exception_id) REFERENCES exceptions (id)",)}
DEDUPE = """
    CREATE OR REPLACE FUNCTION signals_dedupe() RETURNS trigger LANGUAGE plpgsql AS $$
    BEGIN
        INSERT INTO signal_keys (source_key, signal_id, received_at)
        VALUES (NEW.source_key, NEW.id, NEW.received_at) ON CONFLICT (source_key) DO NOTHING;
        IF FOUND THEN
            RETURN NEW;
        END IF;
        RETURN NULL;  -- the key is stored: skip the row, as ON CONFLICT DO NOTHING would
    END $$"""


def _referrers(connection: Connection, table: str) -> list[tuple[str, str, str]]:
    """(table, constraint, column) of the single-column foreign keys that reference `table`."""
    return [tuple(row) for row in connection.execute(text(
        "SELECT c.conrelid::regclass::text, c.conname, a.attname FROM pg_constraint c "
        "JOIN pg_attribute a ON a.attrelid = c.conrelid AND a.attnum = c.conkey[1] "
        "WHERE c.contype = 'f' AND c.confrelid = to_regclass(:table)"), {"table": table})]


def _months(connection: Connection, table: str, column: str) -> set[datetime]:
    return {month_start(moment.replace(tzinfo=UTC)) for moment in connection.execute(text(
        f"SELECT DISTINCT date_trunc('month', {column} AT TIME ZONE 'UTC') FROM {table}")).scalars()}


def _rebuild(connection: Connection, table: str, *, partitioned: bool) -> None:
    """Replace `table` by a partitioned (or, downgrading, a plain) table with the same rows."""
    column = PARTITIONED[table]
    sequence = connection.execute(text("SELECT pg_get_serial_sequence(:t, 'id')"), {"t": table}).scalar()
    connection.execute(text(f"ALTER TABLE {table} RENAME TO {table}_0014"))
    connection.execute(text(f"ALTER SEQUENCE {sequence} OWNED BY NONE"))
    suffix = f" PARTITION BY RANGE ({column})" if partitioned else ""
    connection.execute(text(f"CREATE TABLE {table} (LIKE {table}_0014 INCLUDING DEFAULTS){suffix}"))
    if partitioned:
        create_default(connection, table)
        ensure_months(connection, table, _months(connection, f"{table}_0014", column), Maintenance())
    connection.execute(text(f"INSERT INTO {table} SELECT * FROM {table}_0014"))
    connection.execute(text(f"DROP TABLE {table}_0014"))
    connection.execute(text(f"ALTER SEQUENCE {sequence} OWNED BY {table}.id"))
    key = f"id, {column}" if partitioned else "id"
    connection.execute(text(f"ALTER TABLE {table} ADD PRIMARY KEY ({key})"))
    for foreign_key in FOREIGN_KEYS[table]:
        connection.execute(text(f"ALTER TABLE {table} ADD {foreign_key}"))
    for index in INDEXES[table] + (PARTITIONED_INDEXES[table] if partitioned else ()):
        connection.execute(text(index))


def _repoint(connection: Connection, referrers: list[tuple[str, str, str]], target: str) -> None:
    for table, constraint, column in referrers:
        connection.execute(text(f"ALTER TABLE {table} ADD CONSTRAINT {constraint} "
                                f"FOREIGN KEY ({column}) REFERENCES {target}"))


def upgrade() -> None:
    connection = op.get_bind()
    if connection.dialect.name != "postgresql":
        for index in NEW_INDEXES:
            op.execute(index)
        return
    referrers = _referrers(connection, "signals")
    for table, constraint, _ in referrers:
        connection.execute(text(f"ALTER TABLE {table} DROP CONSTRAINT {constraint}"))
    connection.execute(text("CREATE TABLE signal_keys (source_key varchar PRIMARY KEY, "
                            "signal_id integer NOT NULL UNIQUE, received_at timestamptz NOT NULL)"))
    connection.execute(text("INSERT INTO signal_keys SELECT source_key, id, received_at FROM signals"))
    for table in PARTITIONED:
        _rebuild(connection, table, partitioned=True)
    connection.execute(text(DEDUPE))
    connection.execute(text("CREATE TRIGGER signals_dedupe BEFORE INSERT ON signals "
                            "FOR EACH ROW EXECUTE FUNCTION signals_dedupe()"))
    connection.execute(text("CREATE TRIGGER signals_notify AFTER INSERT ON signals "
                            "FOR EACH STATEMENT EXECUTE FUNCTION signals_notify()"))
    _repoint(connection, referrers, "signal_keys (signal_id)")
    # The current month and the coming ones, on the system clock: the migration has no other;
    # `serve` runs the same maintenance on its own clock at start.
    maintain_connection(connection, datetime.now(UTC), None)


def downgrade() -> None:
    connection = op.get_bind()
    if connection.dialect.name != "postgresql":
        op.drop_index("ix_signals_person", table_name="signals")
        op.drop_index("ix_signals_unprocessed", table_name="signals")
        return
    referrers = _referrers(connection, "signal_keys")
    for table, constraint, _ in referrers:
        connection.execute(text(f"ALTER TABLE {table} DROP CONSTRAINT {constraint}"))
    for table in PARTITIONED:
        _rebuild(connection, table, partitioned=False)
    connection.execute(text("ALTER TABLE signals ADD CONSTRAINT signals_source_key_key UNIQUE (source_key)"))
    connection.execute(text("CREATE TRIGGER signals_notify AFTER INSERT ON signals "
                            "FOR EACH STATEMENT EXECUTE FUNCTION signals_notify()"))
    connection.execute(text("DROP FUNCTION signals_dedupe()"))
    connection.execute(text("DROP TABLE signal_keys"))
    _repoint(connection, referrers, "signals (id)")

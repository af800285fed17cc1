"""Monthly partitions of the tables that grow (PostgreSQL): signals and the timeline.

Both are partitioned by range on their time column, one partition per calendar month (UTC),
named `<table>_YYYY_MM`, plus a `<table>_default` partition that takes any row whose month has
no partition yet (a clock far ahead, a replayed year), so an insert of any date never fails.

`maintain` keeps it so, at `serve` start and once a day (mfgos/server.py), under an advisory
lock so that one replica does it at a time; it is idempotent:
  * it creates the partitions of the current month and `MONTHS_AHEAD` months after it, so rows
    normally go to their month, never to the default partition;
  * rows that did land in the default partition are moved into a partition of their month
    (created then), since a month's partition cannot be added while the default holds its rows;
  * with a retention (MFGOS_RETENTION_MONTHS) it drops whole signal partitions older than that,
    with the source keys of their months (see below). The timeline is never dropped: it is the
    audit of every decision and the KPIs read it for any period.

Signals are deduplicated by `source_key`, but a unique index on a partitioned table must contain
the partition key, and a redelivery has another `received_at`. So the keys live in `signal_keys`,
an unpartitioned table with `source_key` as primary key (and the signal's id, unique, which other
tables' foreign keys reference); a BEFORE INSERT trigger on `signals` claims the key there and
skips the row when the key is taken, whichever path inserts it (`INSERT`, `COPY`). That is
`ON CONFLICT (source_key) DO NOTHING` for every writer, concurrent ones included.

pg_partman would do this as a server extension, which every deployment's PostgreSQL would have
to install (and a managed one may not offer), plus a scheduler to run it; the job is small enough
to need neither.
On SQLite nothing is partitioned and every function here does nothing.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, datetime

from sqlalchemy import Connection, text
from sqlalchemy.engine import Engine

# table -> its partition key: the column every period query filters on
PARTITIONED: dict[str, str] = {"signals": "received_at", "timeline_events": "at"}
MONTHS_AHEAD = 3  # partitions made ahead of time: a missed daily run or three changes nothing
# Advisory lock of the maintenance ('mfpa'), with the schema's hash as second key (see models/db.py).
MAINTENANCE_LOCK = 0x6D66_7061


@dataclass
class Maintenance:
    """What one `maintain` call did (logged by `serve`, asserted by tests)."""

    created: list[str] = field(default_factory=list)
    moved: int = 0  # rows moved out of default partitions
    dropped: list[str] = field(default_factory=list)
    skipped: bool = False  # another process held the lock, or not PostgreSQL


def month_start(moment: datetime) -> datetime:
    """The first instant (UTC) of the month `moment` falls in."""
    moment = moment.astimezone(UTC)
    return datetime(moment.year, moment.month, 1, tzinfo=UTC)


def add_months(month: datetime, count: int) -> datetime:
    index = month.year * 12 + month.month - 1 + count
    return datetime(index // 12, index % 12 + 1, 1, tzinfo=UTC)


def partition_name(table: str, month: datetime) -> str:
    return f"{table}_{month:%Y_%m}"


def literal(moment: datetime) -> str:
    """A timestamptz literal (DDL takes no parameters); made from a datetime, never from input."""
    return f"'{moment.astimezone(UTC).isoformat()}'::timestamptz"


def month_of(table: str, name: str) -> datetime | None:
    """The month of a partition named by `partition_name` (None for the default partition)."""
    suffix = name.removeprefix(f"{table}_")
    try:
        return datetime.strptime(suffix, "%Y_%m").replace(tzinfo=UTC)
    except ValueError:
        return None


def partitions(connection: Connection, table: str) -> list[str]:
    """The names of `table`'s partitions in the current schema (empty when it is not partitioned)."""
    return list(connection.execute(text(
        "SELECT c.relname FROM pg_inherits i JOIN pg_class c ON c.oid = i.inhrelid "
        "WHERE i.inhparent = to_regclass(:table) ORDER BY c.relname"), {"table": table}).scalars())


def is_partitioned(connection: Connection, table: str) -> bool:
    return connection.dialect.name == "postgresql" and bool(connection.execute(text(
        "SELECT 1 FROM pg_partitioned_table WHERE partrelid = to_regclass(:table)"), {"table": table}).first())


def create_default(connection: Connection, table: str) -> None:
    connection.execute(text(f"CREATE TABLE IF NOT EXISTS {table}_default PARTITION OF {table} DEFAULT"))


def ensure_month(connection: Connection, table: str, month: datetime) -> int | None:
    """Give `month` its own partition of `table`; None when it had one, else the rows moved into it
    from the default partition.

    The new partition is filled and then attached, with the default partition locked throughout:
    PostgreSQL refuses a partition whose rows the default partition still holds, and a row routed
    to the default in between would make the attach fail."""
    name = partition_name(table, month)
    if connection.execute(text("SELECT to_regclass(:name)"), {"name": name}).scalar() is not None:
        return None
    column = PARTITIONED[table]
    low, high = literal(month), literal(add_months(month, 1))
    connection.execute(text(f"LOCK TABLE {table}_default IN ACCESS EXCLUSIVE MODE"))
    connection.execute(text(f"CREATE TABLE {name} (LIKE {table} INCLUDING DEFAULTS)"))
    moved = connection.execute(text(
        f"WITH moved AS (DELETE FROM {table}_default WHERE {column} >= {low} AND {column} < {high} RETURNING *) "
        f"INSERT INTO {name} SELECT * FROM moved")).rowcount
    # The attach checks the rows against the bounds; the CHECK constraint lets it skip that scan.
    connection.execute(text(f"ALTER TABLE {name} ADD CONSTRAINT {name}_bounds "
                            f"CHECK ({column} >= {low} AND {column} < {high})"))
    connection.execute(text(f"ALTER TABLE {table} ATTACH PARTITION {name} FOR VALUES FROM ({low}) TO ({high})"))
    connection.execute(text(f"ALTER TABLE {name} DROP CONSTRAINT {name}_bounds"))
    return moved


def ensure_months(connection: Connection, table: str, months: set[datetime], report: Maintenance) -> None:
    for month in sorted(months):
        moved = ensure_month(connection, table, month)
        if moved is not None:
            report.created.append(partition_name(table, month))
            report.moved += moved


def stray_months(connection: Connection, table: str) -> set[datetime]:
    """The months of the rows in `table`'s default partition (normally none)."""
    column = PARTITIONED[table]
    return {month_start(moment.replace(tzinfo=UTC)) for moment in connection.execute(text(
        f"SELECT DISTINCT date_trunc('month', {column} AT TIME ZONE 'UTC') FROM {table}_default")).scalars()}


def drop_signals_before(connection: Connection, cutoff: datetime, report: Maintenance) -> None:
    """Drop the signal partitions of the months before `cutoff` (a month start), and their source
    keys but those another table refers to (an attachment's or a conversation's message)."""
    old = [name for name in partitions(connection, "signals")
           if (month := month_of("signals", name)) is not None and month < cutoff]
    if not old:
        return
    for name in old:
        connection.execute(text(f"DROP TABLE {name}"))
        report.dropped.append(name)
    # The foreign keys that reference signal_keys (migration 0014 pointed them here).
    referrers = connection.execute(text(
        "SELECT c.conrelid::regclass::text, a.attname FROM pg_constraint c "
        "JOIN pg_attribute a ON a.attrelid = c.conrelid AND a.attnum = c.conkey[1] "
        "WHERE c.contype = 'f' AND c.confrelid = to_regclass('signal_keys')")).all()
    kept = "".join(f" AND NOT EXISTS (SELECT 1 FROM {table} r WHERE r.{column} = k.signal_id)"
                   for table, column in referrers)
    connection.execute(text(f"DELETE FROM signal_keys k WHERE k.received_at < :cutoff{kept}"), {"cutoff": cutoff})


def maintain_connection(connection: Connection, now: datetime, retention_months: int | None) -> Maintenance:
    """`maintain` inside the caller's transaction (the migration's, or `maintain`'s own)."""
    report = Maintenance()
    this_month = month_start(now)
    ahead = {add_months(this_month, k) for k in range(MONTHS_AHEAD + 1)}
    for table in PARTITIONED:
        if not is_partitioned(connection, table):
            continue
        create_default(connection, table)
        ensure_months(connection, table, ahead | stray_months(connection, table), report)
    if retention_months is not None and is_partitioned(connection, "signals"):
        drop_signals_before(connection, add_months(this_month, -retention_months), report)
    return report


def maintain(engine: Engine, now: datetime, retention_months: int | None = None) -> Maintenance:
    """Create the coming months' partitions, empty the default partitions into their months and,
    with `retention_months`, drop the signal months older than that many whole months before
    `now`'s month. One process at a time (others return at once, `skipped`); nothing on SQLite."""
    if engine.dialect.name != "postgresql":
        return Maintenance(skipped=True)
    with engine.begin() as connection:
        locked = connection.execute(text(
            "SELECT pg_try_advisory_xact_lock(:key, hashtext(coalesce(current_schema(), '')))"),
            {"key": MAINTENANCE_LOCK}).scalar()
        if not locked:
            return Maintenance(skipped=True)
        return maintain_connection(connection, now, retention_months)

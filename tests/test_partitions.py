"""Monthly partitions of signals and the timeline (models/partitions.py, migration 0014), on the real
PostgreSQL; SQLite keeps its plain tables.

Every date is relative to today, so the tests hold whatever month they run in.
"""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from alembic import command
from alembic.config import Config
from sqlalchemy import Connection, text
from sqlalchemy.engine import Engine
from sqlalchemy.exc import IntegrityError

from mfgos.config import Settings
from mfgos.runtime import Runtime
from mfgos.server import run_worker
from models.db import MIGRATIONS, make_engine, migrate
from models.partitions import (
    MAINTENANCE_LOCK,
    MONTHS_AHEAD,
    add_months,
    maintain,
    month_start,
    partition_name,
    partitions,
)
from routing.clock import SimulatedClock
from signals.bulk import insert_new
from tests.conftest import _fresh_schema, postgres_schema_url

PLANT = Path(__file__).parent / "data" / "pune_plant.yaml"
NOW = datetime.now(UTC).replace(microsecond=0)
THIS_MONTH = month_start(NOW)


@pytest.fixture
def pg_engine() -> Iterator[Engine]:
    """A fresh schema on the test PostgreSQL, not migrated yet."""
    with _fresh_schema() as (url, schema):
        engine = make_engine(url, schema=schema)
        try:
            yield engine
        finally:
            engine.dispose()


def upgrade(engine: Engine, revision: str) -> None:
    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS))
    with engine.begin() as connection:
        config.attributes["connection"] = connection
        command.upgrade(config, revision)


def downgrade(engine: Engine, revision: str) -> None:
    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS))
    with engine.begin() as connection:
        config.attributes["connection"] = connection
        command.downgrade(config, revision)


def plant(connection: Connection) -> None:
    connection.execute(text("INSERT INTO plants (id, name, timezone, erp, signals) "
                            "VALUES ('p', 'P', 'UTC', '{}', '{}')"))


def signal(connection: Connection, key: str, at: datetime) -> int | None:
    """Insert one signal as any writer would (no ON CONFLICT); its id, None when it was skipped."""
    return connection.execute(text(
        "INSERT INTO signals (plant_id, source, source_key, kind, received_at, payload) "
        "VALUES ('p', 'mqtt', :key, 'machine', :at, '{}') RETURNING id"), {"key": key, "at": at}).scalar()


def event(connection: Connection, exception_id: int, at: datetime, kind: str = "note") -> int:
    return connection.execute(text(
        "INSERT INTO timeline_events (exception_id, at, kind, text, data) "
        "VALUES (:e, :at, :kind, '', '{}') RETURNING id"), {"e": exception_id, "at": at, "kind": kind}).scalar_one()


def exception(connection: Connection) -> int:
    return connection.execute(text(
        "INSERT INTO exceptions (plant_id, code, type, status, severity, summary, language, approver_role, "
        "work_orders, customer_orders_at_risk, staging_conflict, proposal, opened_at) VALUES "
        "('p', 'E-0001', 'breakdown', 'open', 'high', '', 'en', 'supervisor', '[]', '[]', '{}', '{}', :at) "
        "RETURNING id"), {"at": NOW}).scalar_one()


def rows(connection: Connection, table: str) -> list[tuple]:
    return [tuple(row) for row in connection.execute(text(f"SELECT * FROM {table} ORDER BY id"))]


def counts(connection: Connection, table: str) -> dict[str, int]:
    """Rows per partition, by partition name (empty partitions left out)."""
    return {name: count for name, count in connection.execute(text(
        f"SELECT tableoid::regclass::text, count(*) FROM {table} GROUP BY 1"))}


def test_migration_from_0013_keeps_every_row_and_the_dedupe(pg_engine: Engine) -> None:
    upgrade(pg_engine, "0013")
    months = [add_months(THIS_MONTH, k) for k in (-25, -13, -1, 0)]  # two years back to now
    with pg_engine.begin() as connection:
        plant(connection)
        exception_id = exception(connection)
        signal_ids = [signal(connection, f"k{n}", month + timedelta(days=n, hours=5)) for n, month in enumerate(months)]
        for n, month in enumerate(months):
            event(connection, exception_id, month + timedelta(days=2 * n))
        connection.execute(text("INSERT INTO attachments (public_id, signal_id, kind, path, created_at) "
                                "VALUES ('a1', :s, 'photo', 'x.jpg', :at)"), {"s": signal_ids[0], "at": NOW})
        before = {table: rows(connection, table) for table in ("signals", "timeline_events", "attachments")}
    upgrade(pg_engine, "head")
    with pg_engine.begin() as connection:
        assert {table: rows(connection, table) for table in before} == before
        names = set(partitions(connection, "signals"))
        for month in months:  # each month of the data has its partition, and holds its row there
            assert partition_name("signals", month) in names
            assert partition_name("timeline_events", month) in set(partitions(connection, "timeline_events"))
        assert counts(connection, "signals") == {partition_name("signals", m): 1 for m in months}
        assert {partition_name("signals", add_months(THIS_MONTH, k)) for k in range(MONTHS_AHEAD + 1)} <= names
        # A key stored before the migration is still taken, at any date; a new key goes in after the old ids.
        assert signal(connection, "k0", NOW) is None
        assert signal(connection, "k3", NOW - timedelta(days=3000)) is None
        new = signal(connection, "k-new", NOW)
        assert new is not None and new > max(s for s in signal_ids if s is not None)
    with pg_engine.begin() as connection, pytest.raises(IntegrityError):  # foreign keys hold: no such message
        connection.execute(text("INSERT INTO attachments (public_id, signal_id, kind, path, created_at) "
                                "VALUES ('a2', 987654, 'photo', 'y.jpg', :at)"), {"at": NOW})
    with pg_engine.begin() as connection, pytest.raises(IntegrityError):  # nor an event of no exception
        event(connection, 987654, NOW)


def test_any_date_goes_in_and_maintenance_gives_it_its_month(pg_engine: Engine) -> None:
    migrate(pg_engine)
    far_past, far_future = datetime(1999, 12, 31, 23, 59, tzinfo=UTC), add_months(THIS_MONTH, 60) + timedelta(days=3)
    with pg_engine.begin() as connection:
        plant(connection)
        exception_id = exception(connection)
        for n, at in enumerate((far_past, far_future, NOW)):
            assert signal(connection, f"s{n}", at) is not None
            event(connection, exception_id, at)
        assert counts(connection, "signals") == {"signals_default": 2, partition_name("signals", THIS_MONTH): 1}
    report = maintain(pg_engine, NOW)
    assert sorted(report.created) == sorted(partition_name(t, m) for t in ("signals", "timeline_events")
                                            for m in (month_start(far_past), month_start(far_future)))
    assert report.moved == 4 and report.dropped == []
    with pg_engine.begin() as connection:
        assert counts(connection, "signals") == {partition_name("signals", month_start(at)): 1
                                                 for at in (far_past, far_future, NOW)}
        assert counts(connection, "timeline_events") == {partition_name("timeline_events", month_start(at)): 1
                                                         for at in (far_past, far_future, NOW)}
        # the keys of moved rows still dedupe
        assert signal(connection, "s1", NOW) is None
    assert maintain(pg_engine, NOW).created == []  # idempotent


def test_a_later_clock_gets_its_months_ahead(pg_engine: Engine) -> None:
    migrate(pg_engine)
    later = NOW + timedelta(days=400)
    report = maintain(pg_engine, later)
    expected = {partition_name(t, add_months(month_start(later), k))
                for t in ("signals", "timeline_events") for k in range(MONTHS_AHEAD + 1)}
    with pg_engine.begin() as connection:
        existing = set(partitions(connection, "signals")) | set(partitions(connection, "timeline_events"))
    assert set(report.created) == expected and expected <= existing  # 13 months on: none of them existed


def test_dedupe_holds_in_a_batch_and_between_writers(pg_engine: Engine) -> None:
    migrate(pg_engine)
    with pg_engine.begin() as connection:
        plant(connection)
        batch = [{"plant_id": "p", "source": "mqtt", "source_key": key, "kind": "machine", "received_at": at,
                  "payload": {}, "processed_at": None}
                 for key, at in (("a", NOW), ("b", NOW), ("a", NOW + timedelta(seconds=1)),
                                 ("c", add_months(NOW, 70)))]
        first = insert_new(connection, batch)
        assert sorted(first) == ["a", "b", "c"] and first["a"] < first["b"] < first["c"]
    with pg_engine.begin() as connection:
        again = insert_new(connection, [{**row, "received_at": add_months(NOW, -30)} for row in batch])
        assert again == {}
        assert connection.execute(text("SELECT count(*) FROM signals")).scalar() == 3
    # Two writers with the same key at once: the second waits for the first, then skips its row.
    second_result: list[int | None] = []
    with pg_engine.connect() as one:
        one.begin()
        assert signal(one, "race", NOW) is not None

        def other() -> None:
            with pg_engine.begin() as two:
                second_result.append(signal(two, "race", NOW + timedelta(days=40)))

        thread = threading.Thread(target=other)
        thread.start()
        thread.join(timeout=1)
        assert thread.is_alive()  # blocked on the first writer's key
        one.commit()
    thread.join(timeout=30)
    assert second_result == [None]
    with pg_engine.begin() as connection:
        assert connection.execute(text("SELECT count(*) FROM signals WHERE source_key = 'race'")).scalar() == 1


def test_retention_drops_only_whole_old_months_of_signals(pg_engine: Engine) -> None:
    migrate(pg_engine)
    months = [add_months(THIS_MONTH, k) for k in range(-5, 1)]
    with pg_engine.begin() as connection:
        plant(connection)
        exception_id = exception(connection)
        for month in months:  # the first and the last instant of every month
            for n, at in enumerate((month, add_months(month, 1) - timedelta(microseconds=1))):
                signal(connection, f"{month:%Y%m}-{n}", at)
                event(connection, exception_id, at)
        kept_id = connection.execute(text("SELECT id FROM signals WHERE source_key = :k"),
                                     {"k": f"{months[0]:%Y%m}-1"}).scalar_one()
        connection.execute(text("INSERT INTO attachments (public_id, signal_id, kind, path, created_at) "
                                "VALUES ('a1', :s, 'photo', 'x.jpg', :at)"), {"s": kept_id, "at": NOW})
    maintain(pg_engine, NOW)
    report = maintain(pg_engine, NOW, retention_months=3)  # keeps the 3 months before this one
    assert sorted(report.dropped) == [partition_name("signals", m) for m in months[:2]]
    with pg_engine.begin() as connection:
        kept = {row[0] for row in connection.execute(text("SELECT source_key FROM signals"))}
        assert kept == {f"{m:%Y%m}-{n}" for m in months[2:] for n in (0, 1)}
        assert connection.execute(text("SELECT count(*) FROM timeline_events")).scalar() == 2 * len(months)
        keys = {row[0] for row in connection.execute(text("SELECT source_key FROM signal_keys"))}
        # The dropped months' keys go, except the one an attachment still refers to.
        assert keys == kept | {f"{months[0]:%Y%m}-1"}
        assert signal(connection, f"{months[1]:%Y%m}-0", NOW) is not None  # a dropped key may come again
    assert maintain(pg_engine, NOW, retention_months=3).dropped == []


def test_one_maintenance_at_a_time(pg_engine: Engine) -> None:
    migrate(pg_engine)
    with pg_engine.begin() as connection:
        connection.execute(text("SELECT pg_advisory_xact_lock(:key, hashtext(coalesce(current_schema(), '')))"),
                           {"key": MAINTENANCE_LOCK})
        assert maintain(pg_engine, NOW + timedelta(days=400)).skipped
    assert not maintain(pg_engine, NOW + timedelta(days=400)).skipped


def test_downgrade_to_0013_keeps_every_row(pg_engine: Engine) -> None:
    migrate(pg_engine)
    with pg_engine.begin() as connection:
        plant(connection)
        exception_id = exception(connection)
        for n in range(3):
            signal(connection, f"d{n}", add_months(NOW, -n))
            event(connection, exception_id, add_months(NOW, -n))
        before = {table: rows(connection, table) for table in ("signals", "timeline_events")}
    downgrade(pg_engine, "0013")
    with pg_engine.begin() as connection:
        assert {table: rows(connection, table) for table in before} == before
        assert partitions(connection, "signals") == []
    with pg_engine.begin() as connection, pytest.raises(IntegrityError):
        signal(connection, "d0", NOW)
    migrate(pg_engine)  # and up again
    with pg_engine.begin() as connection:
        assert {table: rows(connection, table) for table in before} == before


def test_sqlite_is_not_partitioned(sqlite_engine: Engine) -> None:
    assert maintain(sqlite_engine, NOW, retention_months=1).skipped
    with sqlite_engine.begin() as connection:
        plant(connection)
        assert signal(connection, "x", datetime(1999, 1, 1, tzinfo=UTC)) is not None
        tables = connection.execute(text("SELECT name FROM sqlite_master WHERE type = 'table'")).scalars().all()
        assert "signals" in tables and not [t for t in tables if t.startswith(("signals_", "signal_keys"))]
    with sqlite_engine.begin() as connection, pytest.raises(IntegrityError):
        signal(connection, "x", NOW)


@pytest.fixture
def pg_url() -> Iterator[str]:
    yield from postgres_schema_url()


async def run_worker_once(runtime: Runtime) -> None:
    stop = asyncio.Event()
    worker = asyncio.create_task(run_worker(runtime, stop, interval=0.02))
    await asyncio.sleep(0.5)
    stop.set()
    await worker


def test_serve_keeps_the_partitions_on_its_clock_with_its_retention(pg_url: str) -> None:
    """`run_worker` (every replica of `serve`) maintains at start: months ahead of the replica's clock,
    and MFGOS_RETENTION_MONTHS applied."""
    later = add_months(THIS_MONTH, 30) + timedelta(days=9, hours=7)
    clock = SimulatedClock(later)
    runtime = Runtime(Settings(database_url=pg_url, plant_file=PLANT, erp="ledger", retention_months=2), clock=clock)
    try:
        runtime.receive(source="mqtt", source_key="old", kind="machine", payload={}, process=False)
        clock.set(add_months(later, 4))  # "old" is now 4 months back: past the retention
        asyncio.run(run_worker_once(runtime))
        with runtime.engine.begin() as connection:
            names = set(partitions(connection, "signals"))
            assert {partition_name("signals", add_months(month_start(later), 4 + k))
                    for k in range(MONTHS_AHEAD + 1)} <= names
            assert partition_name("signals", month_start(later)) not in names
            assert connection.execute(text("SELECT count(*) FROM signals")).scalar() == 0
    finally:
        runtime.engine.dispose()

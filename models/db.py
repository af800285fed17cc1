"""Engine, sessions and schema migrations (Alembic), for SQLite and PostgreSQL alike."""

from __future__ import annotations

import re
import time
from collections.abc import Iterator
from contextlib import contextmanager
from functools import lru_cache
from pathlib import Path

from sqlalchemy import event, exc, text
from sqlalchemy.engine import Engine
from sqlalchemy.pool import ConnectionPoolEntry
from sqlmodel import Session, create_engine

MIGRATIONS = Path(__file__).parent / "migrations"
# PostgreSQL advisory lock of schema migrations ('mfgm', with the schema's hash as the second key):
# replicas starting together on a fresh database take turns instead of racing to create the same
# tables; stores in other schemas (tenants, parallel tests) don't wait for each other.
MIGRATION_LOCK = 0x6D66_676D
# Seconds a pooled PostgreSQL connection may rest before its next checkout pings the server. Why
# not every checkout (SQLAlchemy's pool_pre_ping): under load each webhook, worker pass and
# outbox claim or settle checks a connection out, and the ping is a round trip each (one in ten
# of a processed message's). A connection back in the pool for less than this was working a
# moment ago; a server restart takes longer than this, so connections rested through it are pinged.
PING_AFTER_IDLE = 1.0


def normalise_url(url: str) -> str:
    """Accept the `postgresql://` form users write and pick the installed psycopg 3 driver."""
    if url.startswith("postgresql://") or url.startswith("postgres://"):
        return "postgresql+psycopg://" + url.split("://", 1)[1]
    return url


def make_engine(url: str, schema: str | None = None) -> Engine:
    """`schema` (PostgreSQL only) puts every table in that schema via the connection's search_path,
    so tests or tenants can share one database without seeing each other's rows."""
    url = normalise_url(url)
    if schema is not None and not re.fullmatch(r"[A-Za-z_][A-Za-z0-9_]{0,62}", schema):
        raise ValueError(f"bad schema name {schema!r}: letters, digits and _ only")
    if url.startswith("sqlite"):
        if schema is not None:
            raise ValueError("schema applies to PostgreSQL only")
        engine = create_engine(url, connect_args={"check_same_thread": False, "timeout": 30})

        @event.listens_for(engine, "connect")
        def _sqlite_pragmas(dbapi_connection, _record) -> None:  # type: ignore[no-untyped-def]
            cursor = dbapi_connection.cursor()
            cursor.execute("PRAGMA journal_mode=WAL")
            cursor.execute("PRAGMA foreign_keys=ON")
            cursor.execute("PRAGMA synchronous=NORMAL")
            cursor.close()

        return engine
    connect_args = {"options": f"-csearch_path={schema}"} if schema is not None else {}
    engine = create_engine(url, connect_args=connect_args)
    _ping_when_idle(engine)
    return engine


def _ping_when_idle(engine: Engine) -> None:
    """Ping a pooled connection at checkout only when it rested over `PING_AFTER_IDLE` seconds.

    A dead one is replaced (the pool retries the checkout on `DisconnectionError`); an error that
    shows a disconnect later still invalidates the whole pool, as with SQLAlchemy's own pre-ping.
    """

    @event.listens_for(engine.pool, "checkin")
    def _rested_from(_dbapi_connection: object, record: ConnectionPoolEntry) -> None:
        record.info["checked_in"] = time.monotonic()

    @event.listens_for(engine.pool, "checkout")
    def _ping(dbapi_connection: object, record: ConnectionPoolEntry, _proxy: object) -> None:
        rested = record.info.get("checked_in")
        if rested is None or time.monotonic() - rested <= PING_AFTER_IDLE:
            return  # new (just connected), or in use a moment ago
        try:
            engine.dialect.do_ping(dbapi_connection)  # type: ignore[arg-type]
        except engine.dialect.loaded_dbapi.Error as error:  # the pool connects anew and checks out again
            raise exc.DisconnectionError(f"a pooled connection failed its ping: {error}") from error


def migrate(engine: Engine) -> None:
    """Bring the schema to the newest revision; safe to call at every start, by several replicas at once.

    On PostgreSQL the migration runs under a transaction-level advisory lock on the schema it
    migrates: a second replica waits for the first to commit, then finds the schema at head and
    does nothing.
    """
    from alembic import command
    from alembic.config import Config

    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS))
    with engine.begin() as connection:
        if connection.dialect.name == "postgresql":
            connection.execute(text("SELECT pg_advisory_xact_lock(:key, hashtext(coalesce(current_schema(), '')))"),
                               {"key": MIGRATION_LOCK})
        config.attributes["connection"] = connection
        command.upgrade(config, "head")


@lru_cache(maxsize=1)
def migration_head() -> str | None:
    """The newest revision in models/migrations (read from the files once per process)."""
    from alembic.config import Config
    from alembic.script import ScriptDirectory

    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS))
    return ScriptDirectory.from_config(config).get_current_head()


def schema_revision(engine: Engine) -> str | None:
    """The revision the database is at (None: never migrated); raises when the database is unreachable."""
    from alembic.runtime.migration import MigrationContext

    with engine.connect() as connection:
        return MigrationContext.configure(connection).get_current_revision()


@contextmanager
def session_scope(engine: Engine) -> Iterator[Session]:
    """One unit of work: commit on success, roll back on any error."""
    with Session(engine, expire_on_commit=False) as session:
        try:
            yield session
            session.commit()
        except BaseException:
            session.rollback()
            raise

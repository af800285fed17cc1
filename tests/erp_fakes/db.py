"""Fresh stores for the ERP tests (SQLite file or a throw-away PostgreSQL schema) and seed rows."""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import psycopg
import pytest
from sqlalchemy.engine import Engine
from sqlmodel import Session

from models.db import make_engine, migrate
from models.tables import ErpTransaction, Plant, PlantException

POSTGRES_URL = os.environ.get("MFGOS_TEST_POSTGRES_URL", "postgresql://postgres@127.0.0.1:5432/test")
T0 = datetime(2026, 11, 25, 8, 0, tzinfo=UTC)


def sqlite_store(directory: Path) -> Engine:
    engine = make_engine(f"sqlite:///{directory / 'mfgos.db'}")
    migrate(engine)
    return engine


@contextmanager
def postgres_store() -> Iterator[Engine]:
    """A migrated schema of its own on the test PostgreSQL; skipped when the server is down."""
    schema = f"erp_{uuid.uuid4().hex[:12]}"
    try:
        with psycopg.connect(POSTGRES_URL, autocommit=True, connect_timeout=3) as conn:
            conn.execute(f'CREATE SCHEMA "{schema}"')
    except psycopg.OperationalError as exc:
        if os.environ.get("MFGOS_REQUIRE_SERVICES") == "1":
            raise
        pytest.skip(f"PostgreSQL not reachable at {POSTGRES_URL}: {exc}")
    engine = make_engine(f"{POSTGRES_URL}?options=-csearch_path%3D{schema}")
    try:
        migrate(engine)
        yield engine
    finally:
        engine.dispose()
        with psycopg.connect(POSTGRES_URL, autocommit=True) as conn:
            conn.execute(f'DROP SCHEMA "{schema}" CASCADE')


def seed_plant(engine: Engine, plant_id: str = "berlin-1", erp: dict[str, Any] | None = None) -> None:
    with Session(engine) as session:
        session.add(Plant(id=plant_id, name="Berlin Plant 1", timezone="Europe/Berlin", erp=erp or {}))
        session.commit()


def seed_exception(engine: Engine, number: int, plant_id: str = "berlin-1") -> int:
    with Session(engine) as session:
        exception = PlantException(
            plant_id=plant_id, code=f"E-{number:04d}", type="breakdown", machine_id="CNC-07", opened_at=T0
        )
        session.add(exception)
        session.commit()
        assert exception.id is not None
        return exception.id


def queue(
    engine: Engine,
    kind: str,
    fields: dict[str, Any],
    *,
    key: str,
    exception_id: int | None = None,
    sequence: int = 0,
    plant_id: str = "berlin-1",
) -> int:
    """Queue one ERP transaction as routing does when a resolution is approved."""
    with Session(engine) as session:
        row = ErpTransaction(
            plant_id=plant_id,
            exception_id=exception_id,
            sequence=sequence,
            kind=kind,
            fields=fields,
            idempotency_key=key,
            created_at=T0,
        )
        session.add(row)
        session.commit()
        assert row.id is not None
        return row.id


def row(engine: Engine, row_id: int) -> ErpTransaction:
    with Session(engine) as session:
        found = session.get(ErpTransaction, row_id)
        assert found is not None
        return found

"""A PostgreSQL store for the multi-worker ERP tests, and the rows they seed."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from typing import Any

from sqlalchemy.engine import Engine
from sqlmodel import Session

from models.db import make_engine, migrate
from models.tables import ErpTransaction, Plant, PlantException
from tests.conftest import postgres_schema_url

T0 = datetime(2026, 11, 25, 8, 0, tzinfo=UTC)


@contextmanager
def postgres_store() -> Iterator[Engine]:
    """A migrated PostgreSQL store of its own (conftest's schema-per-test rule: skipped, or
    failed under MFGOS_REQUIRE_SERVICES=1, when MFGOS_TEST_DATABASE_URL is unset or down)."""
    urls = postgres_schema_url()
    engine = make_engine(next(urls))
    try:
        migrate(engine)
        yield engine
    finally:
        engine.dispose()
        urls.close()


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

"""Exactly once across databases: two fresh mfgos databases replaying into one ERPNext.

A fresh (or restored) database numbers its exceptions and approvals from 1 again. Before the
keys carried a part of their own, the second database's breakdown E-0001 was adopted onto the
first database's document, and a Non Conformance could be adopted onto a Downtime Entry of
the same name. Here both replays post every document of their own, and every stock movement is
dated when the decision was taken (the scenario's day), not the day the fake ERP posts it.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from datetime import datetime
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from alembic import command
from alembic.config import Config
from sqlalchemy import Connection, MetaData, Table, column, insert, table
from sqlmodel import SQLModel

from erp_adapters.erpnext import document_name
from erp_adapters.outbox import ErpOutbox
from mfgos.replay import replay
from models.db import MIGRATIONS, make_engine, migrate
from models.tables import ErpTransaction, Plant, PlantException
from tests.conftest import postgres_schema_url
from tests.erp_fakes import erpnext
from tests.erp_fakes.db import T0, row
from tests.erp_fakes.harness import build_fake
from tests.erp_fakes.samples import samples
from tests.erp_fakes.server import serve
from tests.test_erp_replay import HELD, PuneErp, _erpnext_site, scenario_for

PUNE = ZoneInfo("Asia/Kolkata")
pytestmark = pytest.mark.anyio


@pytest.fixture(params=["sqlite", "postgresql"])
def fresh_databases(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Callable[[], str]]:
    """A maker of fresh, separate stores: SQLite files, or schemas on the test PostgreSQL."""
    made: list[Iterator[str]] = []
    files = iter(range(1_000))

    def fresh() -> str:
        if request.param == "sqlite":
            return f"sqlite:///{tmp_path / f'store-{next(files)}.db'}"
        made.append(postgres_schema_url())
        return next(made[-1])

    try:
        yield fresh
    finally:
        for schema in made:
            schema.close()


def test_fresh_databases_post_distinct_documents_dated_at_the_event(
    fresh_databases: Callable[[], str], tmp_path: Path
) -> None:
    """Each scenario replayed into two fresh databases (a reinstall): both post their own."""
    site, holds, (user, token) = _erpnext_site()
    site.bins[("FRG-20MNCR5", "Quarantine - PD")] = 2 * HELD  # each replay scraps 8 and releases 392
    results = []
    with serve(erpnext.make_app(site)) as url:
        erp = PuneErp("erpnext", url, user, token, holds, site)
        for number in (1, 2):
            directory = tmp_path / f"install-{number}"
            directory.mkdir()
            for scenario in ("breakdown_ledger", "quality_hold"):
                database_url = fresh_databases()
                results.append(
                    replay(scenario_for(scenario, "erpnext", directory), database_url=database_url,
                           settings=erp.settings(database_url))
                )
    transactions = [t for result in results for t in result["erp_transactions"]]
    assert [t["status"] for t in transactions] == ["posted"] * 8
    references = [t["reference"] for t in transactions]
    assert len(set(references)) == 8, references  # nothing adopted from the other database
    assert all(holds(t["kind"], t["reference"]) for t in transactions)
    assert len(site.docs["Downtime Entry"]) == 2
    assert len(site.docs["Non Conformance"]) == 2
    assert len(site.docs["Stock Entry"]) == 4
    assert site.bins[("FRG-20MNCR5", "Quarantine - PD")] == 0
    assert site.bins[("FRG-20MNCR5", "Stores - PD")] == 2 * 392
    # Each document's name appears under one doctype only.
    names = [name for docs in site.docs.values() for name in docs if name.startswith("MFGOS-")]
    assert len(names) == len(set(names)) == 8
    for txn in (t for t in transactions if t["kind"] == "stock_status"):
        entry = site.docs["Stock Entry"][txn["reference"]]
        decided = datetime.fromisoformat(txn["created_at"]).astimezone(PUNE)
        assert entry["set_posting_time"] == 1
        assert (entry["posting_date"], entry["posting_time"]) == (
            decided.strftime("%Y-%m-%d"),
            decided.strftime("%H:%M:%S"),
        ), txn


def insert_as_stored(connection: Connection, row: SQLModel) -> Any:
    """Insert `row` with only the columns its table has in the database now (an older schema);
    returns the new primary key."""
    stored = Table(row.__tablename__, MetaData(), autoload_with=connection)
    values = {c.name: getattr(row, c.name) for c in row.__table__.c if c.name in stored.c}  # type: ignore[attr-defined]
    values = {name: value for name, value in values.items() if value is not None}
    key = next(iter(stored.primary_key.columns))
    return connection.execute(insert(stored).values(values).returning(key)).scalar_one()


async def test_a_row_queued_before_migration_0007_keeps_its_key_and_finds_its_document(
    database_url: str,
) -> None:
    """A pending row of an older database posts under its old key: the document an earlier
    attempt left in the ERP is adopted, not posted again under a new name."""
    engine = make_engine(database_url)
    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS))
    old_key = "berlin-1:E-0001:A1:1"
    site = build_fake("erpnext")
    try:
        with engine.begin() as connection:
            config.attributes["connection"] = connection
            command.upgrade(config, "0006")
        with engine.begin() as connection:  # rows as 0006 had them: later migrations add columns the models know
            insert_as_stored(connection, Plant(id="berlin-1", name="Berlin Plant 1", timezone="Europe/Berlin",
                                               erp=site.settings))
            exception_id = insert_as_stored(connection, PlantException(
                plant_id="berlin-1", code="E-0001", type="breakdown", machine_id="CNC-07", opened_at=T0))
        with engine.begin() as connection:  # the columns of 0006 only; an attempt reached the ERP, its answer lost
            before_0008 = table("erp_transactions", *(column(c.name, c.type) for c in ErpTransaction.__table__.c  # type: ignore[attr-defined]
                                                      if c.name != "public_id"))
            txn_id = connection.execute(insert(before_0008).returning(before_0008.c.id).values(
                plant_id="berlin-1", exception_id=exception_id, sequence=1, kind="maintenance_request",
                fields=samples()["maintenance_request"], idempotency_key=old_key, status="pending", attempts=1,
                created_at=T0)).scalar_one()
        site.state.insert("Asset Repair", {"name": document_name(old_key), "asset": "AST-0007",
                                           "failure_date": "2026-11-25 09:00:00", "repair_status": "Pending"})
        migrate(engine)
        with serve(site.app) as url:
            adapter = site.adapter(url)
            try:
                assert await ErpOutbox(engine, adapter, now=lambda: T0).post_due() == 1
            finally:
                await adapter.aclose()
        settled = row(engine, txn_id)
        assert (settled.status, settled.idempotency_key, settled.reference) == ("sent", old_key, document_name(old_key))
        assert len(site.state.docs["Asset Repair"]) == 1
    finally:
        engine.dispose()

"""`mfgos sync-erp`, the sync `serve` schedules, and how ERP rows and the plant file share tables.

The ERP is the fake ERPNext (a real local server, driven by the real adapter over HTTP),
seeded with the Berlin demo data (CNC-07, PRESS-02, AL-6061-BAR, WO-4471/4472/4480, SO-9001);
the store's plant is tests/data/pune_plant.yaml with that ERP's erp: block.
"""

from __future__ import annotations

import asyncio
import io
import os
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
import yaml
from alembic import command
from alembic.config import Config
from fastapi import FastAPI
from sqlalchemy import text
from sqlmodel import Session, select

from erp_adapters.ledger import LedgerErp
from mfgos.config import Settings
from mfgos.runtime import Runtime
from mfgos.server import worker_lifespan
from mfgos.sync import SyncBusy, sync_erp_command, sync_plant, sync_state
from models.db import MIGRATIONS, make_engine, migrate, session_scope
from models.plant_file import apply, load
from models.tables import Area, CustomerOrder, Machine, Material, WorkOrder
from tests.erp_fakes.db import postgres_store, seed_plant
from tests.erp_fakes.erpnext import ErpNextState
from tests.erp_fakes.harness import build_fake
from tests.erp_fakes.server import Faults, serve

PLANT = Path(__file__).parent / "data" / "pune_plant.yaml"
ROOT = Path(__file__).parent.parent


@dataclass
class Site:
    state: ErpNextState
    faults: Faults
    settings: Settings
    plant_file: Path
    erp_block: dict[str, object]

    @property
    def engine_url(self) -> str:
        return self.settings.database_url

    def plant(self, extra: str = "") -> Path:
        """Write the plant file (the Pune plant plus YAML `extra` in its lists) and point at it."""
        text_ = PLANT.read_text(encoding="utf-8")
        for section, entries in yaml.safe_load(extra or "{}").items():
            marker = f"{section}:\n"
            lines = "".join(f"  - {yaml.safe_dump(entry, default_flow_style=True).strip()}\n" for entry in entries)
            text_ = text_.replace(marker, marker + lines, 1)
        self.plant_file.write_text(text_ + yaml.safe_dump({"erp": self.erp_block}), encoding="utf-8")
        return self.plant_file


@pytest.fixture
def site(tmp_path: Path) -> Iterator[Site]:
    fake = build_fake("erpnext")
    with serve(fake.app) as url:
        settings = Settings(database_url=f"sqlite:///{tmp_path / 'store.db'}", plant_file=tmp_path / "plant.yaml",
                            erp="erpnext", erp_url=url, erp_user=fake.state.api_key,
                            erp_token=fake.state.api_secret, erp_sync_interval=900)
        found = Site(fake.state, fake.faults, settings, tmp_path / "plant.yaml", fake.settings)
        found.plant()
        yield found


def run(settings: Settings, full: bool = False) -> tuple[int, str, str]:
    out, err = io.StringIO(), io.StringIO()
    code = sync_erp_command(settings, full=full, out=out, err=err)
    return code, out.getvalue(), err.getvalue()


def rows(url: str, table: type) -> dict[str, object]:
    engine = make_engine(url)
    try:
        with Session(engine) as session:
            return {row.id: row for row in session.exec(select(table))}
    finally:
        engine.dispose()


def state_of(url: str):  # noqa: ANN201 (ErpSyncState | None)
    engine = make_engine(url)
    try:
        return sync_state(engine, "pune-1")
    finally:
        engine.dispose()


def test_sync_erp_reads_master_data_then_only_what_changed(site: Site) -> None:
    code, out, err = run(site.settings)
    assert code == 0, err
    assert "erpnext -> plant pune-1" in out and "orders read: all (full read)" in out
    machines = rows(site.engine_url, Machine)
    assert machines["CNC-07"].origin == "erp" and machines["CNC-07"].name == "CNC mill 7"
    assert machines["HOB-01"].origin == "plant_file"
    assert rows(site.engine_url, WorkOrder)["WO-4472"].status == "released"
    assert {"AL-6061-BAR", "HOUSING-A"} <= rows(site.engine_url, Material).keys()
    assert rows(site.engine_url, CustomerOrder)["SO-9001"].origin == "erp"
    first = state_of(site.engine_url)
    assert first is not None and first.erp == "erpnext" and first.watermark
    newest = max(doc["modified"] for doc in site.state.docs["Work Order"].values())
    assert datetime.fromisoformat(first.watermark) == datetime.fromisoformat(newest).replace(tzinfo=UTC)

    site.state.stop_unstop("WO-4472", "Stopped")  # a planner holds the order in ERPNext
    code, out, err = run(site.settings)
    assert code == 0, err
    assert f"orders read: changed since {first.watermark}" in out
    assert "│ work orders     │    2 │     0 │       1 │         1 │" in out  # WO-4472, and the newest again
    assert rows(site.engine_url, WorkOrder)["WO-4472"].status == "held"
    second = state_of(site.engine_url)
    assert second is not None and second.watermark and second.watermark > first.watermark

    code, out, _ = run(site.settings, full=True)
    assert code == 0 and "orders read: all (full read)" in out
    assert "│ work orders     │    4 │     0 │       0 │         4 │" in out


def test_a_plant_file_entry_wins_over_the_erp(site: Site) -> None:
    site.state.put("Workstation", {"name": "HOB-01", "workstation_name": "Hobbing machine (ERP name)"})
    code, out, err = run(site.settings)
    assert code == 0, err
    assert "│ machines        │    3 │     2 │       0 │         0 │    1 │" in out
    assert "kept: the plant file lists these ids" in out
    hobber = rows(site.engine_url, Machine)["HOB-01"]
    assert (hobber.name, hobber.origin, hobber.aliases[0]) == ("Liebherr gear hobber 1", "plant_file", "hobber 1")


def load_plant(url: str, path: Path) -> None:
    engine = make_engine(url)
    try:
        with session_scope(engine) as session:
            apply(session, load(path), source_file=str(path))
    finally:
        engine.dispose()


def test_plant_file_and_erp_rows_share_the_tables(site: Site) -> None:
    url = site.engine_url
    assert run(site.settings)[0] == 0
    erp_ids = {"CNC-07", "PRESS-02"}

    # 1. A plant-file load (with changed content) leaves the ERP's rows, and the area they use, alone.
    load_plant(url, site.plant("machines: [{id: PRS-09, name: Press 9, area: assembly}]"))
    assert erp_ids | {"PRS-09", "HOB-01"} <= rows(url, Machine).keys()
    assert {"WO-4471", "WO-1042"} <= rows(url, WorkOrder).keys()
    assert "erp" in rows(url, Area)  # ERPNext workstations carry no area: they sit in erp.default_area

    # 2. An entry with an ERP row's id takes the row over; the sync then keeps the file's version.
    load_plant(url, site.plant("""
        machines: [{id: CNC-07, name: CNC mill seven, area: gears, aliases: [mill 7]}]
        work_orders: [{id: WO-4471, machine: CNC-07, quantity: 10, status: held}]
    """))
    cnc = rows(url, Machine)["CNC-07"]
    assert (cnc.origin, cnc.name, cnc.area_id, cnc.aliases) == ("plant_file", "CNC mill seven", "gears", ["mill 7"])
    assert rows(url, WorkOrder)["WO-4471"].origin == "plant_file"
    code, out, _ = run(site.settings, full=True)
    assert code == 0 and "│ machines        │    2 │     0 │       0 │         1 │    1 │" in out
    assert rows(url, Machine)["CNC-07"].name == "CNC mill seven"
    assert (rows(url, WorkOrder)["WO-4471"].status, rows(url, WorkOrder)["WO-4471"].quantity) == ("held", 10)

    # 3. Dropping the entries deletes the rows; the next (incremental) sync brings the ERP's back,
    # because the load that dropped an order resets the watermark.
    assert run(site.settings)[0] == 0
    assert state_of(url).watermark is not None
    load_plant(url, site.plant())
    assert "CNC-07" not in rows(url, Machine) and "WO-4471" not in rows(url, WorkOrder)
    assert state_of(url).watermark is None
    code, out, _ = run(site.settings)
    assert code == 0 and "orders read: all (full read)" in out
    cnc, order = rows(url, Machine)["CNC-07"], rows(url, WorkOrder)["WO-4471"]
    assert (cnc.origin, cnc.name, order.origin, order.status) == ("erp", "CNC mill 7", "erp", "running")


def test_sync_erp_says_what_is_wrong_without_a_traceback(site: Site) -> None:
    code, _, err = run(site.settings.model_copy(update={"erp": "navision"}))
    assert code == 2 and "unknown ERP 'navision' (MFGOS_ERP); choose one of: erpnext, ledger, odoo, sap" in err
    code, _, err = run(site.settings.model_copy(update={"erp": "ledger"}))
    assert code == 2 and "keeps no master data" in err
    code, _, err = run(site.settings.model_copy(update={"erp_url": None}))
    assert code == 2 and "the ERP URL is not set (MFGOS_ERP_URL)" in err

    site.faults.down = True
    code, out, err = run(site.settings)
    assert code == 1 and out == ""
    assert "the ERP is unavailable" in err and "asked to wait 7 s" in err and "watermark was not moved" in err
    assert state_of(site.engine_url) is None
    site.faults.down = False

    env = {k: v for k, v in os.environ.items() if not k.startswith("MFGOS_")}
    env.update(MFGOS_DATABASE_URL=site.engine_url, MFGOS_PLANT_FILE=str(site.plant_file), MFGOS_ERP="erpnext",
               MFGOS_ERP_URL=str(site.settings.erp_url), MFGOS_ERP_USER=site.state.api_key,
               MFGOS_ERP_TOKEN="stale-secret")
    refused = subprocess.run([sys.executable, "-m", "mfgos.cli", "sync-erp"], capture_output=True, text=True,
                             timeout=120, env=env, cwd=ROOT)
    assert refused.returncode == 1
    assert refused.stderr.startswith("mfgos sync-erp: the ERP refused the credentials")
    assert "Traceback" not in refused.stderr and "stale-secret" not in refused.stderr + refused.stdout
    env["MFGOS_ERP_TOKEN"] = site.state.api_secret
    done = subprocess.run([sys.executable, "-m", "mfgos.cli", "sync-erp"], capture_output=True, text=True,
                          timeout=120, env=env, cwd=ROOT)
    assert done.returncode == 0, done.stderr
    assert "│ customer orders │    1 │     1 │" in done.stdout and done.stderr == ""


def test_serve_syncs_on_a_schedule_and_refreshes_the_nlp(site: Site) -> None:
    runtime = Runtime(site.settings.model_copy(update={"erp_sync_interval": 0.2}))
    before = runtime.reader.extract("press 2 stopped, hydraulic leak")
    assert before.machine is None  # the plant file has no PRESS-02
    lifespan = worker_lifespan(runtime, interval=0.05)

    async def serve_until_synced() -> None:
        async with lifespan(FastAPI()):
            for _ in range(200):
                state = await asyncio.to_thread(sync_state, runtime.engine, "pune-1")
                if state is not None and state.changed_at is not None:
                    break
                await asyncio.sleep(0.05)
            await asyncio.sleep(0.3)  # one more pass: nothing new, the indexes stay

    asyncio.run(serve_until_synced())
    assert runtime.reader.extract("press 2 stopped, hydraulic leak").machine == "PRESS-02"
    assert runtime.reader.extract("cnc mill 7 spindle noise, wo 4471").work_order == "WO-4471"
    assert "PRESS-02" in rows(site.engine_url, Machine)


def test_a_replica_skips_a_plant_synced_within_the_interval(site: Site) -> None:
    runtime = Runtime(site.settings)

    async def twice() -> tuple[object, object, object]:
        first = await sync_plant(runtime.engine, runtime.erp, "pune-1")
        again = await sync_plant(runtime.engine, runtime.erp, "pune-1", unless_synced_within=timedelta(minutes=5))
        later = await sync_plant(runtime.engine, runtime.erp, "pune-1", unless_synced_within=timedelta(minutes=5),
                                 now=lambda: datetime.now(UTC) + timedelta(minutes=6))
        await runtime.aclose()
        return first, again, later

    first, again, later = asyncio.run(twice())
    assert first is not None and again is None and later is not None


def test_one_sync_at_a_time_on_postgresql() -> None:
    with postgres_store() as engine:
        seed_plant(engine, "pune-1")
        with engine.connect() as other:  # another replica in the middle of a sync
            other.execute(text("SELECT pg_advisory_lock(hashtext('mfgos-erp-sync:' || current_schema() || ':' || :p))"),
                          {"p": "pune-1"})
            with pytest.raises(SyncBusy, match="another process is syncing plant pune-1"):
                asyncio.run(sync_plant(engine, LedgerErp(engine), "pune-1"))
            other.execute(text("SELECT pg_advisory_unlock_all()"))
            other.commit()
        report = asyncio.run(sync_plant(engine, LedgerErp(engine), "pune-1"))
        assert report is not None and sync_state(engine, "pune-1") is not None


def test_migration_0002_gives_existing_rows_the_plant_file_origin(database_url: str) -> None:
    engine = make_engine(database_url)
    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS))
    try:
        with engine.begin() as connection:
            config.attributes["connection"] = connection
            command.upgrade(config, "0001")
        with engine.begin() as connection:
            connection.execute(text("INSERT INTO plants (id, name, timezone, erp) VALUES ('p', 'P', 'UTC', '{}')"))
            connection.execute(text("INSERT INTO machines (plant_id, id, name, area_id, aliases, running) "
                                    "VALUES ('p', 'M-1', 'Mill', 'a', '[]', true)"))
            connection.execute(text("INSERT INTO work_orders (plant_id, id, machine_id, status) "
                                    "VALUES ('p', 'WO-1', 'M-1', 'planned')"))
        migrate(engine)
        with Session(engine) as session:
            assert session.get(Machine, ("p", "M-1")).origin == "plant_file"
            assert session.get(WorkOrder, ("p", "WO-1")).origin == "plant_file"
            session.add(Material(plant_id="p", id="MAT", name="Bar", origin="erp"))
            session.commit()
    finally:
        engine.dispose()

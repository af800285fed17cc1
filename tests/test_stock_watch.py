"""The ERP stock watch (issue 12, point 4) end to end: a real Runtime reading the fake ERPNext over HTTP
(the adapters' reads are in the contract suite, tests/erp_fakes/contract.py), on SQLite and PostgreSQL.

A shortage before a work order's start opens one `material` exception for materials and the planner,
with the short orders and their customer orders; the next run adds nothing; a change of stock is a
movement signal and updates the exception; recovery goes on the timeline; an ERP that is down or
answers junk opens nothing and breaks nothing; replicas run it once.
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
import yaml
from fastapi import FastAPI
from fastapi.testclient import TestClient
from sqlalchemy import text
from sqlmodel import Session, select

from erp_adapters.ledger import LedgerErp
from mfgos.config import Settings
from mfgos.runtime import Runtime
from mfgos.server import worker_lifespan
from mfgos.stock_watch import Run, watch_stock
from mfgos.web import create_app
from models import Notification, PlantException, Signal, StockLevel, StockWatchRun, TimelineEvent, make_engine
from models.plant_file import check
from routing.clock import SimulatedClock
from tests.conftest import postgres_schema_url
from tests.erp_fakes.erpnext import ErpNextState
from tests.erp_fakes.harness import build_fake
from tests.erp_fakes.server import Faults, serve

BAR, STORES = "AL-6061-BAR", "Stores - BG"

PLANT = """
plant: {id: berlin-1, name: Berlin Plant 1, timezone: Europe/Berlin}
areas:
  - {id: machining, name: Machining}
machines:
  - {id: CNC-07, name: CNC mill 7, area: machining}
  - {id: CNC-08, name: CNC mill 8, area: machining}
materials:
  - {id: AL-6061-BAR, name: Aluminium bar 6061, area: machining}
  - {id: HOUSING-A, name: Pump housing A, area: machining}
customer_orders:
  - {id: SO-9001, customer: ACME Pumps, due: "now+3d"}
  - {id: SO-9002, customer: Nordwerk, due: "now+4d"}
work_orders:
  - {id: WO-5000, machine: CNC-08, material: HOUSING-A, quantity: 100, start: "now-2h", end: "now+2h", status: running}
  - {id: WO-5001, machine: CNC-07, material: AL-6061-BAR, quantity: 600, start: "now+2h", end: "now+6h", customer_order: SO-9001, status: released}
  - {id: WO-5002, machine: CNC-08, material: AL-6061-BAR, quantity: 300, start: "now+4h", end: "now+8h", customer_order: SO-9002}
  - {id: WO-5003, machine: CNC-07, material: AL-6061-BAR, quantity: 500, start: "now+8h", end: "now+12h", customer_order: SO-9002}
  - {id: WO-5004, machine: CNC-07, material: AL-6061-BAR, quantity: 900, start: "now+40h", end: "now+44h", customer_order: SO-9001}
people:
  - {id: vikram, name: Vikram Shah, roles: [materials], channels: {slack: U01VIKRAM}}
  - {id: deepa, name: Deepa Iyer, roles: [planner], channels: {slack: U01DEEPA}}
  - {id: tom, name: Tom Fischer, roles: [maintenance], channels: {slack: U01TOM}}
  - {id: sara, name: Sara Khan, roles: [supervisor], channels: {slack: U01SARA}}
routing:
  - when: {type: material}
    notify:
      - {role: materials, ack_within: 10m, escalate_to: supervisor}
      - {role: planner}
    approver: supervisor
  - when: {}
    notify:
      - {role: supervisor}
"""
WATCH = {"stock_watch": {"every": "15m", "horizon": "24h"}}


@dataclass
class Site:
    state: ErpNextState
    faults: Faults
    runtime: Runtime
    clock: SimulatedClock
    loop: asyncio.AbstractEventLoop  # one loop for the runtime's life: its ERP client belongs to it

    def run(self, *, after: timedelta = timedelta(minutes=15), force: bool = False) -> Run:
        self.clock.set(self.clock.now() + after)
        return self.loop.run_until_complete(watch_stock(self.runtime, force=force))

    def exceptions(self) -> list[PlantException]:
        with Session(self.runtime.engine) as session:
            return list(session.exec(select(PlantException).order_by(PlantException.id)))

    def rows(self, model: type, *where: Any) -> list[Any]:
        with Session(self.runtime.engine) as session:
            return list(session.exec(select(model).where(*where)))


def write_plant(path: Path, erp: dict[str, Any], extra: dict[str, Any] | None = WATCH) -> Path:
    path.write_text(PLANT + yaml.safe_dump({"erp": erp, **(extra or {})}), encoding="utf-8")
    return path


@pytest.fixture
def site(database_url: str, tmp_path: Path) -> Iterator[Site]:
    fake = build_fake("erpnext")
    with serve(fake.app) as url:
        settings = Settings(database_url=database_url, plant_file=write_plant(tmp_path / "plant.yaml", fake.settings),
                            erp="erpnext", erp_url=url, erp_user=fake.state.api_key, erp_token=fake.state.api_secret)
        clock = SimulatedClock(datetime.now(UTC))
        runtime = Runtime(settings, clock=clock)
        loop = asyncio.new_event_loop()
        try:
            yield Site(fake.state, fake.faults, runtime, clock, loop)
        finally:
            loop.run_until_complete(runtime.aclose())
            loop.close()


def timeline(site: Site, exc: PlantException, *kinds: str) -> list[TimelineEvent]:
    return site.rows(TimelineEvent, TimelineEvent.exception_id == exc.id, TimelineEvent.kind.in_(kinds))  # type: ignore[attr-defined]


def test_a_shortage_opens_one_exception_with_the_short_orders_then_follows_the_stock(site: Site) -> None:
    # 1,000 bars on hand: WO-5001 (600) and WO-5002 (300) are covered, WO-5003 (500 more) is not;
    # WO-5004 starts after the 24 h horizon and the running WO-5000 has its housings at the machine.
    first = site.run(after=timedelta(0))
    assert first.outcome is not None and first.outcome.shortages == [BAR]
    [exc] = site.exceptions()
    assert (exc.type, exc.material_id, exc.severity, exc.area_id) == ("material", BAR, "high", "machining")
    assert exc.work_orders == ["WO-5003"] and exc.customer_orders_at_risk == ["SO-9002"]
    assert exc.summary.startswith(f"{BAR} short by 400 Nos: the ERP holds 1000 Nos usable")
    alerts = site.rows(Notification, Notification.exception_id == exc.id, Notification.kind == "alert")
    assert sorted((n.person_id, n.role) for n in alerts) == [("deepa", "planner"), ("vikram", "materials")]
    assert all("WO-5003" in n.text for n in alerts)
    [short] = timeline(site, exc, "stock_short")
    assert short.data["short_by"] == 400 and short.data["work_orders"] == ["WO-5003"]
    assert {(lv.material_id, lv.location, lv.quantity) for lv in site.rows(StockLevel)} == {(BAR, STORES, 1000)}
    assert site.rows(Signal, Signal.source == "erp_stock") == []  # the first read is the baseline

    # The next run finds the same shortage: nothing opened, said or paged again.
    notes, events = len(site.rows(Notification)), len(site.rows(TimelineEvent))
    again = site.run()
    assert again.outcome is not None and again.outcome.opened == again.outcome.updated == []
    assert len(site.exceptions()) == 1
    assert (len(site.rows(Notification)), len(site.rows(TimelineEvent))) == (notes, events)

    # 300 bars go out in the ERP: a movement, and WO-5002 is now short too (600 + 300 > 700).
    site.state.bins[(BAR, STORES)] = 700.0
    moved = site.run()
    assert moved.outcome is not None and moved.outcome.movements == 1 and moved.outcome.opened == []
    [exc] = site.exceptions()
    assert exc.work_orders == ["WO-5003", "WO-5002"] and exc.customer_orders_at_risk == ["SO-9002"]
    [signal] = site.rows(Signal, Signal.source == "erp_stock")
    assert (signal.kind, signal.processed_at is not None) == ("stock", True)
    assert {k: signal.payload[k] for k in ("material", "location", "before", "after", "change")} == {
        "material": BAR, "location": STORES, "before": 1000, "after": 700, "change": -300}
    assert [e.data["work_orders"] for e in timeline(site, exc, "stock_short")] == [["WO-5003"], ["WO-5002", "WO-5003"]]

    # A delivery covers everything: recovery on the timeline, once; the exception stays for its people.
    site.state.bins[(BAR, STORES)] = 2000.0
    site.run()
    site.run()
    [exc] = site.exceptions()
    assert exc.status == "open"
    assert len(timeline(site, exc, "stock_recovered")) == 1
    assert len(site.rows(Signal, Signal.source == "erp_stock")) == 2  # 700 -> 2000; nothing for the quiet run
    [run] = site.rows(StockWatchRun)
    assert (run.erp, run.materials, run.shortages, run.error) == ("erpnext", 1, [], None)


@pytest.mark.parametrize("erp", ["ledger", "erpnext", "odoo", "sap"])
def test_every_erp_s_stock_opens_the_same_shortage(erp: str, tmp_path: Path) -> None:
    """The same plant on each ERP's stock (900 bars): WO-5003 is short, whatever the ERP."""
    url = f"sqlite:///{tmp_path / 'store.db'}"
    if erp == "ledger":
        settings = Settings(database_url=url, plant_file=write_plant(tmp_path / "plant.yaml", {}), erp="ledger")
        runtime = Runtime(settings)
        asyncio.run(LedgerErp(runtime.engine).count_stock(BAR, 900))
        run = asyncio.run(watch_stock(runtime))
        asyncio.run(runtime.aclose())
    else:
        fake = build_fake(erp, stock=900.0)
        with serve(fake.app) as base:
            settings = Settings(database_url=url, plant_file=write_plant(tmp_path / "plant.yaml", fake.settings),
                                erp=erp)
            runtime = Runtime(settings, erp=fake.adapter(base))

            async def once() -> Run:
                try:
                    return await watch_stock(runtime)
                finally:
                    await runtime.aclose()

            run = asyncio.run(once())
    assert run.error is None and run.outcome is not None and run.outcome.opened == ["E-0001"]
    engine = make_engine(url)
    with Session(engine) as session:
        [exc] = session.exec(select(PlantException)).all()
        [level] = session.exec(select(StockLevel)).all()
    engine.dispose()
    assert exc.work_orders == ["WO-5003"] and exc.customer_orders_at_risk == ["SO-9002"]
    assert level.quantity == 900 and not level.blocked


def test_the_erp_down_or_answering_junk_opens_nothing_and_the_next_run_tries_again(site: Site) -> None:
    site.faults.down = True
    down = site.run(after=timedelta(0))
    assert down.error is not None and "Unavailable" in down.error
    site.faults.down = False
    site.state.bins[(BAR, STORES)] = "lots"  # type: ignore[assignment]
    junk = site.run()
    assert junk.error is not None and "no number" in junk.error
    assert site.exceptions() == [] and site.rows(StockLevel) == [] and site.rows(Signal, Signal.source == "erp_stock") == []
    [run] = site.rows(StockWatchRun)
    assert run.error == junk.error
    shown = TestClient(create_app(site.runtime, demo=True)).get("/api/erp").json()["stock_watch"]
    assert (shown["error"], shown["materials"], shown["erp"]) == (junk.error, 1, "erpnext")
    site.state.bins[(BAR, STORES)] = 1000.0
    assert site.run().outcome is not None
    assert [e.work_orders for e in site.exceptions()] == [["WO-5003"]]
    assert site.rows(StockWatchRun)[0].error is None


def test_a_replica_skips_a_turn_another_process_had(site: Site) -> None:
    assert site.run(after=timedelta(0)).outcome is not None
    requests = site.faults.requests
    assert site.run(after=timedelta(minutes=5)).skipped  # within the interval: another replica's turn
    assert site.faults.requests == requests
    assert site.run(after=timedelta(minutes=10)).outcome is not None
    assert len(site.exceptions()) == 1


def test_a_run_holding_the_lock_makes_others_skip_on_postgresql(tmp_path: Path) -> None:
    """The ledger's stock (a count booked in it), a PostgreSQL store: another session holding the
    plant's stock-watch lock (a replica mid-run) makes this one skip without reading."""
    urls = postgres_schema_url()
    settings = Settings(database_url=next(urls), plant_file=write_plant(tmp_path / "plant.yaml", {}), erp="ledger")
    runtime = Runtime(settings)
    try:
        asyncio.run(LedgerErp(runtime.engine).count_stock(BAR, 800))
        with runtime.engine.connect() as other:
            other.execute(text("SELECT pg_advisory_lock(hashtext('mfgos-stock-watch:' || coalesce(current_schema(), '')"
                               " || ':' || :plant))"), {"plant": "berlin-1"})
            other.commit()
            assert asyncio.run(watch_stock(runtime)).skipped
            other.execute(text("SELECT pg_advisory_unlock_all()"))
            other.commit()
        ran = asyncio.run(watch_stock(runtime))
        assert ran.outcome is not None and ran.outcome.shortages == [BAR]
        with Session(runtime.engine) as session:
            [exc] = session.exec(select(PlantException)).all()
        assert exc.work_orders == ["WO-5002", "WO-5003"]  # 800 covers WO-5001 (600) only
    finally:
        asyncio.run(runtime.aclose())
        urls.close()


def test_serve_runs_the_watch_on_its_schedule(tmp_path: Path) -> None:
    settings = Settings(database_url=f"sqlite:///{tmp_path / 'store.db'}",
                        plant_file=write_plant(tmp_path / "plant.yaml", {}), erp="ledger")
    runtime = Runtime(settings)
    asyncio.run(LedgerErp(runtime.engine).count_stock(BAR, 100))

    async def serve_until_opened() -> list[PlantException]:
        async with worker_lifespan(runtime, interval=0.05)(FastAPI()):
            for _ in range(100):
                with Session(runtime.engine) as session:
                    found = list(session.exec(select(PlantException)))
                if found:
                    return found
                await asyncio.sleep(0.05)
        return []

    [exc] = asyncio.run(serve_until_opened())
    assert exc.type == "material" and exc.work_orders == ["WO-5001", "WO-5002", "WO-5003"]


def test_without_the_section_the_watch_is_off(tmp_path: Path) -> None:
    settings = Settings(database_url=f"sqlite:///{tmp_path / 'store.db'}",
                        plant_file=write_plant(tmp_path / "plant.yaml", {}, extra=None), erp="ledger")
    runtime = Runtime(settings)
    try:
        assert asyncio.run(watch_stock(runtime, force=True)).skipped
        with Session(runtime.engine) as session:
            assert session.exec(select(StockWatchRun)).all() == []
    finally:
        asyncio.run(runtime.aclose())


@pytest.mark.parametrize(("section", "words"), [
    ({"every": "10s"}, "too short: at least 1m"),
    ({"every": "15 mins"}, "bad duration"),
    ({"horizon": "24h"}, "every"),
    ({"every": "15m", "horizon": "30s"}, "horizon '30s' is too short"),
    ({"every": "15m", "horizon": "1d", "materials": ["X"]}, "materials"),
])
def test_check_plant_refuses_a_bad_stock_watch_section(tmp_path: Path, section: dict[str, Any], words: str) -> None:
    problems = check(write_plant(tmp_path / "plant.yaml", {}, extra={"stock_watch": section}))
    assert problems and all("stock_watch" in str(p) for p in problems), problems
    assert any(words in str(p) for p in problems), problems

"""Many transactions through several outbox workers into a fake ERP: the fault test and the bench.

Each worker is a thread with its own event loop, engine connections and adapter, as a replica
would be; they share only the database and the ERP.
"""

from __future__ import annotations

import asyncio
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy import func
from sqlalchemy.engine import Engine
from sqlmodel import Session, select

from erp_adapters import kinds
from erp_adapters.base import ErpAdapter
from erp_adapters.erpnext import ErpNextErp, document_name
from erp_adapters.ledger import LedgerErp
from erp_adapters.odoo import OdooErp
from erp_adapters.outbox import ErpOutbox
from erp_adapters.sap_odata import SapODataErp
from models.tables import ErpTransaction, LedgerDocument, OutboxStatus, Plant, PlantException
from tests.erp_fakes import erpnext, odoo, sap
from tests.erp_fakes.server import Faults, serve


@dataclass
class FakeErp:
    """A running fake ERP: how to reach it and how to ask it what it holds."""

    name: str
    settings: dict[str, Any]
    make: Callable[[], ErpAdapter]
    position: Callable[[str], list[int]]  # creation positions of the documents carrying a key
    faults: Faults = field(default_factory=Faults)


@dataclass
class FakeSite:
    """A fake ERP before it is served: its state, ASGI app, plant settings and adapter factory."""

    state: Any
    app: Any
    settings: dict[str, Any]
    adapter: Callable[[str], ErpAdapter]  # base URL -> adapter with the fake's credentials
    position: Callable[[str], list[int]]
    faults: Faults


def build_fake(name: str, stock: float = 1000.0) -> FakeSite:
    """The named fake ERP, seeded with the demo plant and `stock` of AL-6061-BAR on hand."""
    if name == "erpnext":
        site = erpnext.ErpNextState()
        site.seed()
        site.bins[("AL-6061-BAR", "Stores - BG")] = stock
        settings = {
            "company": "Berlin GmbH",
            "warehouse": "Stores - BG",
            "quarantine_warehouse": "Quarantine - BG",
            "quality_procedure": "QP-Deviation",
            "operator": "HR-EMP-0001",
            "assets": {"CNC-07": "AST-0007"},
            "units": {"pcs": "Nos"},
        }
        order: dict[str, int] = {}

        def erpnext_position(key: str) -> list[int]:
            if len(order) != len(site.created):
                order.update({doc: index for index, (_doctype, doc) in enumerate(site.created)})
            document = document_name(key)
            return [order[document]] if document in order else []

        return FakeSite(
            site,
            erpnext.make_app(site),
            settings,
            lambda url: ErpNextErp(url, user=site.api_key, token=site.api_secret, timeout=5),
            erpnext_position,
            site.faults,
        )
    if name == "odoo":
        state = odoo.OdooState()
        state.seed()
        for quant in state.records["stock.quant"].values():
            quant["quantity"] = stock
        return FakeSite(
            state,
            odoo.make_app(state),
            dict(odoo.SETTINGS),
            lambda url: OdooErp(f"{url}/?db={state.database}", token=state.api_key, timeout=5),
            lambda key: [record["id"] for _model, record in state.with_marker(key)],
            state.faults,
        )
    if name == "sap":
        system = sap.SapState()
        system.seed()
        system.stock[("AL-6061-BAR", "1010", "0001", "", "01")] = stock

        def sap_position(key: str) -> list[int]:
            notes = [
                int(n) - 10000000
                for n, doc in system.notifications.items()
                if doc["MaintNotifExtReferenceNumber"] == kinds.short_reference(key, 20)
            ]
            documents = [
                int(n) - 4900000000
                for n, doc in system.material_documents.items()
                if doc["MaterialDocumentHeaderText"] == kinds.short_reference(key, 25)
            ]
            return notes + documents

        return FakeSite(
            system,
            sap.make_app(system),
            dict(sap.SETTINGS),
            lambda url: SapODataErp(
                f"{url}/?sap-client=100", user=system.user, token=system.password, timeout=5
            ),
            sap_position,
            system.faults,
        )
    raise ValueError(f"no fake ERP called {name!r}; choose erpnext, odoo or sap")


@contextmanager
def fake_erp(name: str, engine: Engine, *, stock: float = 1000.0) -> Iterator[FakeErp]:
    """Serve the named fake (or give the embedded ledger) for the block."""
    if name == "ledger":

        def ledger_position(key: str) -> list[int]:
            with Session(engine) as session:
                return list(
                    session.exec(select(LedgerDocument.id).where(LedgerDocument.idempotency_key == key))
                )

        yield FakeErp("ledger", {}, lambda: LedgerErp(engine), ledger_position)
        return
    site = build_fake(name, stock)
    with serve(site.app) as url:
        yield FakeErp(name, site.settings, lambda: site.adapter(url), site.position, site.faults)


def approvals(
    engine: Engine, exceptions: int, settings: dict[str, Any], plant_id: str = "berlin-1"
) -> dict[int, list[str]]:
    """Queue four transactions per exception (a breakdown, then block 2, release 1, block 1),
    as routing does on approval; returns the keys per exception in sequence order."""
    now = datetime(2026, 11, 25, 8, 0, tzinfo=UTC)
    breakdown = {
        "machine": "CNC-07",
        "machine_name": "CNC mill 7",
        "description": "spindle noise",
        "reported_by": "ravi",
        "priority": "high",
    }
    steps = [
        ("maintenance_request", breakdown),
        ("stock_status", {"action": "block", "material": "AL-6061-BAR", "quantity": 2, "unit": "pcs"}),
        ("stock_status", {"action": "release", "material": "AL-6061-BAR", "quantity": 1, "unit": "pcs"}),
        ("stock_status", {"action": "block", "material": "AL-6061-BAR", "quantity": 1, "unit": "pcs"}),
    ]
    keys: dict[int, list[str]] = {}
    with Session(engine) as session:
        if session.get(Plant, plant_id) is None:
            session.add(Plant(id=plant_id, name="Berlin Plant 1", erp=settings))
            session.flush()
        for number in range(1, exceptions + 1):
            exception = PlantException(
                plant_id=plant_id, code=f"E-{number:04d}", type="breakdown", opened_at=now
            )
            session.add(exception)
            session.flush()
            assert exception.id is not None
            keys[exception.id] = []
            for sequence, (kind, fields) in enumerate(steps, 1):
                key = f"{exception.code}/{sequence}"
                session.add(
                    ErpTransaction(
                        plant_id=plant_id,
                        exception_id=exception.id,
                        sequence=sequence,
                        kind=kind,
                        fields={**fields, "exception": exception.code}
                        if kind == "maintenance_request"
                        else fields,
                        idempotency_key=key,
                        created_at=now,
                    )
                )
                keys[exception.id].append(key)
        session.commit()
    return keys


def pending(engine: Engine) -> int:
    with Session(engine) as session:
        return session.exec(
            select(func.count())
            .select_from(ErpTransaction)
            .where(ErpTransaction.status == OutboxStatus.pending)
        ).one()


@dataclass
class WorkerStats:
    settled: int = 0
    outcomes: dict[str, int] = field(default_factory=dict)
    # What the worker reported as posted, as the thread would get it: (key, reference).
    reported: list[tuple[str, str]] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)


def run_workers(
    engine: Engine,
    make_adapter: Callable[[], ErpAdapter],
    *,
    workers: int = 2,
    deadline: float = 120.0,
    concurrency: int = 8,
    limit: int = 64,
    backoff_base: float = 0.05,
    backoff_cap: float = 0.5,
    during: Callable[[], None] | None = None,
) -> tuple[float, list[WorkerStats]]:
    """Run `workers` outboxes until nothing is pending (or the deadline); returns seconds taken."""
    stats = [WorkerStats() for _ in range(workers)]
    finished = threading.Event()

    def replica(number: int) -> None:
        mine = stats[number]

        def settled(_session: Any, txn: ErpTransaction, outcome: str, detail: str) -> None:
            mine.outcomes[outcome] = mine.outcomes.get(outcome, 0) + 1
            if outcome == "posted":
                mine.reported.append((txn.idempotency_key, detail))

        async def work() -> None:
            adapter = make_adapter()
            outbox = ErpOutbox(
                engine,
                adapter,
                now=lambda: datetime.now(UTC),
                on_settled=settled,
                worker_id=f"worker-{number}",
                concurrency=concurrency,
                backoff_base=backoff_base,
                backoff_cap=backoff_cap,
                lease=timedelta(seconds=30),
            )
            try:
                while not finished.is_set():
                    done = await outbox.post_due(limit=limit)
                    mine.settled += done
                    if not done:
                        await asyncio.sleep(0.02)
            except Exception as exc:  # a worker must not die silently in a test
                mine.errors.append(repr(exc))
                raise
            finally:
                await adapter.aclose()

        asyncio.run(work())

    threads = [threading.Thread(target=replica, args=(n,), name=f"outbox-{n}") for n in range(workers)]
    started = time.perf_counter()
    for thread in threads:
        thread.start()
    try:
        if during is not None:
            during()
        while pending(engine) and time.perf_counter() - started < deadline:
            time.sleep(0.05)
        elapsed = time.perf_counter() - started
    finally:
        finished.set()
        for thread in threads:
            thread.join(timeout=30)
    return elapsed, stats

"""Master-data sync: machines, materials, work orders and customer orders from the ERP into the store.

Incremental twice over: the ERP is asked only for orders changed since the last watermark
(`since`, the report's `watermark` of the previous run), and a row is written only when
something in it differs. Nothing is deleted: an ERP read that is filtered or paged does not
say what disappeared, and exceptions keep pointing at the machines and orders they named.

Rows the sync creates carry `origin` "erp", so a plant-file load leaves them alone. A row the
plant file lists (`origin` "plant_file") is the file's: the sync counts it as kept and does not
change it; drop the entry from the file and the next sync brings the ERP's version in.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from sqlalchemy.engine import Engine
from sqlmodel import Session, SQLModel, select

from erp_adapters.base import ErpAdapter, ErpCustomerOrder, ErpMachine, ErpMaterial, ErpWorkOrder
from models.tables import Area, CustomerOrder, Machine, Material, Plant, RowOrigin, WorkOrder

log = logging.getLogger(__name__)

Progress = Callable[[str, int, int], None]
"""progress(what, done, total): what is "machines", "materials", "work_orders" or "customer_orders"."""

STEPS = ("machines", "materials", "work_orders", "customer_orders")


@dataclass
class SyncCounts:
    read: int = 0
    created: int = 0
    updated: int = 0
    unchanged: int = 0
    kept: int = 0  # the plant file lists this id: its entry wins
    skipped: int = 0

    @property
    def changed(self) -> int:
        return self.created + self.updated


@dataclass
class SyncReport:
    plant_id: str
    erp: str
    started_at: datetime
    watermark: datetime | None  # pass as `since` next time
    since: datetime | None = None  # orders were read changed since then; None: all of them
    counts: dict[str, SyncCounts] = field(default_factory=dict)
    warnings: list[str] = field(default_factory=list)

    def summary(self) -> str:
        parts = [
            f"{what.replace('_', ' ')}: {c.created} new, {c.updated} changed, {c.unchanged} unchanged"
            + (f", {c.kept} kept from the plant file" if c.kept else "")
            + (f", {c.skipped} skipped" if c.skipped else "")
            for what, c in self.counts.items()
        ]
        return f"{self.erp} -> {self.plant_id}: " + "; ".join(parts)

    @property
    def changed(self) -> bool:
        """Whether master data in the store changed (the NLP indexes need a refresh)."""
        return any(c.changed for c in self.counts.values())


async def sync_master_data(
    engine: Engine,
    adapter: ErpAdapter,
    plant_id: str,
    progress: Progress | None = None,
    *,
    since: datetime | None = None,
    now: Callable[[], datetime] | None = None,
) -> SyncReport:
    """Read the plant's master data from the ERP and upsert it; returns what changed."""
    settings = await asyncio.to_thread(_plant_settings, engine, plant_id)
    report = SyncReport(
        plant_id=plant_id,
        erp=getattr(adapter, "name", "erp"),
        started_at=(now or (lambda: datetime.now(UTC)))(),
        watermark=since,
        since=since,
    )

    def tell(what: str, done: int, total: int) -> None:
        if progress is not None:
            progress(what, done, total)

    readers: dict[str, Any] = {
        "machines": lambda: adapter.read_machines(settings),
        "materials": lambda: adapter.read_materials(settings),
        "work_orders": lambda: adapter.read_work_orders(settings, since),
        "customer_orders": lambda: adapter.read_customer_orders(settings, since),
    }
    for what in STEPS:
        tell(what, 0, 0)
        rows = await readers[what]()
        tell(what, 0, len(rows))
        counts = await asyncio.to_thread(_upsert, engine, plant_id, settings, what, rows, report.warnings)
        report.counts[what] = counts
        for row in rows:
            modified = getattr(row, "modified", None)
            if modified is not None and (report.watermark is None or modified > report.watermark):
                report.watermark = modified
        tell(what, len(rows), len(rows))
    log.info("ERP sync %s", report.summary())
    return report


def _plant_settings(engine: Engine, plant_id: str) -> dict[str, Any]:
    with Session(engine) as session:
        plant = session.get(Plant, plant_id)
        if plant is None:
            raise LookupError(f"plant {plant_id!r} is not in the store; load its plant file first")
        return dict(plant.erp or {})


def _apply(row: SQLModel, values: dict[str, Any]) -> bool:
    changed = False
    for name, value in values.items():
        if getattr(row, name) != value:
            setattr(row, name, value)
            changed = True
    return changed


def _upsert(
    engine: Engine, plant_id: str, settings: dict[str, Any], what: str, rows: list[Any], warnings: list[str]
) -> SyncCounts:
    counts = SyncCounts(read=len(rows))
    model = {
        "machines": Machine,
        "materials": Material,
        "work_orders": WorkOrder,
        "customer_orders": CustomerOrder,
    }[what]
    with Session(engine) as session:
        existing = {r.id: r for r in session.exec(select(model).where(model.plant_id == plant_id))}
        areas = {a.id for a in session.exec(select(Area).where(Area.plant_id == plant_id))}
        for item in rows:
            current = existing.get(item.id)
            if current is not None and current.origin == RowOrigin.plant_file:
                counts.kept += 1
                continue
            values = _values(what, item, current, settings)
            if values is None:
                counts.skipped += 1
                warnings.append(f"{what}: {item.id} has no machine in the ERP and none in the store; skipped")
                continue
            if what == "machines" and values["area_id"] not in areas:
                session.add(Area(plant_id=plant_id, id=values["area_id"], name=values["area_id"]))
                areas.add(values["area_id"])
            if current is None:
                session.add(model(plant_id=plant_id, id=item.id, origin=RowOrigin.erp.value, **values))
                counts.created += 1
            elif _apply(current, values):
                session.add(current)
                counts.updated += 1
            else:
                counts.unchanged += 1
        session.commit()
    return counts


def _values(what: str, item: Any, current: Any, settings: dict[str, Any]) -> dict[str, Any] | None:
    """The columns the ERP owns; the rest (areas, aliases, machine state) stay ours."""
    if what == "machines":
        machine: ErpMachine = item
        area = machine.area or (current.area_id if current else None) or settings.get("default_area") or "erp"
        return {"name": machine.name, "area_id": area}
    if what == "materials":
        material: ErpMaterial = item
        return {"name": material.name}
    if what == "work_orders":
        order: ErpWorkOrder = item
        machine_id = order.machine or (current.machine_id if current else None)
        if not machine_id:
            return None
        return {
            "machine_id": machine_id,
            "material_id": order.material,
            "quantity": order.quantity,
            "start": order.start,
            "end": order.end,
            "customer_order_id": order.customer_order,
            "status": order.status,
        }
    customer_order: ErpCustomerOrder = item
    return {"customer": customer_order.customer, "due": customer_order.due}

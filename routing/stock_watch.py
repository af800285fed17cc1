"""The ERP stock watch (docs/routing.md, "Stock watch"): a shortage found before the line stops.

Every `stock_watch.every` (the plant file) the runtime reads, through the ERP adapter, the stock of
the materials that the work orders starting within `stock_watch.horizon` consume, and hands the
lines here, in one transaction under the plant's stock-watch lock (mfgos/stock_watch.py):

- **Needs.** Work orders `planned` or `released`, with a material, a quantity and a start no later
  than now + horizon (a late one that has not started still needs its material). An order needs
  its `quantity` of its material (the plant's work orders name one material, one piece each); a
  running or held order has its material at the machine and is not counted.
- **Shortage.** Per material, the orders in start order, their needs cumulated: from the first
  order whose cumulated need is more than the usable stock (not blocked, every place the ERP
  names) on, every order of that material is short. One `material` exception per material, opened
  with those orders (and their customer orders at risk) in its context and routed by the plant's
  rules for `material` (materials and the planner in the plants we ship), then the planner's options.
- **Once.** A material with an open `material` exception (opened by the watch or reported in a
  chat) opens no second one: the watch writes `stock_short` on its timeline when what it found
  differs from what it last wrote there (new orders short, another quantity), else nothing. When
  the stock covers every need again, `stock_recovered` goes on the timeline once; the exception
  stays open (closing is its people's decision, docs/routing.md "Lifecycle").
- **Movements.** A material's quantity in a place that differs from the last read is stored as a
  signal (source `erp_stock`, kind `stock`, already processed), keyed by the place and the time of
  the read it differs from: the same movement is never stored twice. The first read of a place
  only sets the baseline.

Nothing here reads the ERP: a run whose read failed never gets here, so missing data opens nothing.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Protocol
from zoneinfo import ZoneInfo

from sqlmodel import Session, select

from models import PlantException, Signal, StockLevel, TimelineEvent, WorkOrder
from routing import workflow as wf
from routing.options import offer as offer_options
from routing.workflow import Context

WAITING = ("planned", "released")  # orders not started: their material is still to come
SOURCE = "erp_stock"
EVENTS = ("stock_short", "stock_recovered")
EPSILON = 1e-9  # quantities differ: more than float noise


class Line(Protocol):
    """One stock line as the ERP adapters read it (`erp_adapters.base.StockLine`)."""

    material: str
    quantity: float
    location: str
    blocked: bool
    unit: str | None


@dataclass
class Shortage:
    """A material that does not cover the orders needing it: from `work_orders[0]` on, in start order."""

    material: str
    usable: float
    needed: float  # cumulated need of every order up to the last short one
    work_orders: list[str]
    first_start: datetime
    unit: str | None = None

    @property
    def short_by(self) -> float:
        return self.needed - self.usable


@dataclass
class Outcome:
    """What one run did: exceptions opened and told, movements stored, recoveries written."""

    opened: list[str] = field(default_factory=list)  # exception codes
    updated: list[str] = field(default_factory=list)
    recovered: list[str] = field(default_factory=list)
    movements: int = 0
    shortages: list[str] = field(default_factory=list)  # materials


def orders_needing(session: Session, plant_id: str, now: datetime, horizon: timedelta) -> list[WorkOrder]:
    """The work orders whose material the watch checks, in start order."""
    rows = session.exec(select(WorkOrder).where(
        WorkOrder.plant_id == plant_id, WorkOrder.status.in_(WAITING),  # type: ignore[attr-defined]
        WorkOrder.material_id != None, WorkOrder.start != None,  # noqa: E711
        WorkOrder.start <= now + horizon)).all()  # type: ignore[operator]
    return sorted((wo for wo in rows if (wo.quantity or 0) > 0), key=lambda wo: (wo.start, wo.id))


def shortages(orders: Sequence[WorkOrder], lines: Iterable[Line]) -> dict[str, Shortage]:
    """Per material, the orders its usable stock does not cover (cumulated in start order)."""
    usable: dict[str, float] = defaultdict(float)
    units: dict[str, str | None] = {}
    for line in lines:
        units.setdefault(line.material, line.unit)
        if not line.blocked:
            usable[line.material] += line.quantity
    found: dict[str, Shortage] = {}
    cumulated: dict[str, float] = defaultdict(float)
    for wo in orders:
        material = wo.material_id or ""
        cumulated[material] += wo.quantity or 0
        if material in found:
            found[material].work_orders.append(wo.id)
            found[material].needed = cumulated[material]
        elif cumulated[material] > usable[material] + EPSILON:
            assert wo.start is not None
            found[material] = Shortage(material, usable[material], cumulated[material], [wo.id], wo.start,
                                       units.get(material))
    return found


def record(ctx: Context, orders: Sequence[WorkOrder], lines: Sequence[Line], materials: Iterable[str]) -> Outcome:
    """Store the movements of `materials` since the last read and open, update or recover their shortages."""
    outcome = Outcome()
    read = set(materials)
    outcome.movements = _movements(ctx, [line for line in lines if line.material in read], read)
    short = shortages([wo for wo in orders if wo.material_id in read], lines)
    outcome.shortages = sorted(short)
    orders_by_id = {wo.id: wo for wo in orders}
    for material in sorted(read):
        ctx.cause = f"stock_watch:{ctx.plant.id}:{ctx.now.isoformat()}:{material}"
        exc = _open_shortage(ctx, material)
        shortage = short.get(material)
        last = _last_word(ctx, exc) if exc is not None else None
        if shortage is None:
            if exc is not None and last is not None and last.kind == "stock_short":
                wf.log(ctx, exc, "stock_recovered", f"{material}: the ERP's stock covers the next work orders again",
                       material=material)
                outcome.recovered.append(exc.code)
            continue
        data = {"material": material, "usable": shortage.usable, "needed": shortage.needed,
                "short_by": shortage.short_by, "unit": shortage.unit, "work_orders": shortage.work_orders}
        if exc is None:
            exc = wf.open_exception(ctx, exception_type="material", text=_summary(ctx, shortage, orders_by_id),
                                    reporter=None, material_id=material, work_orders=shortage.work_orders,
                                    severity="high", source="stock_watch")
            wf.log(ctx, exc, "stock_short", "", **data)
            offer_options(ctx, exc)
            outcome.opened.append(exc.code)
            continue
        if last is not None and last.kind == "stock_short" and last.data == data:
            continue  # the same shortage as the last run: nothing to add
        new = [wo for wo in shortage.work_orders if wo not in exc.work_orders]
        if new:
            exc.work_orders = [*exc.work_orders, *new]
            at_risk = {orders_by_id[wo].customer_order_id for wo in new if orders_by_id[wo].customer_order_id}
            exc.customer_orders_at_risk = sorted(set(exc.customer_orders_at_risk) | at_risk)  # type: ignore[arg-type]
            ctx.session.add(exc)
        wf.log(ctx, exc, "stock_short", _summary(ctx, shortage, orders_by_id), **data)
        outcome.updated.append(exc.code)
    return outcome


def _summary(ctx: Context, shortage: Shortage, orders: dict[str, WorkOrder]) -> str:
    zone = ZoneInfo(ctx.plant.timezone)
    unit = f" {shortage.unit}" if shortage.unit else ""
    first = orders[shortage.work_orders[0]]
    return (f"{shortage.material} short by {shortage.short_by:g}{unit}: the ERP holds {shortage.usable:g}{unit} "
            f"usable, {', '.join(shortage.work_orders)} need {shortage.needed:g}{unit} with what comes before; "
            f"{first.id} starts {shortage.first_start.astimezone(zone):%Y-%m-%d %H:%M} on {first.machine_id}.")


def _open_shortage(ctx: Context, material: str) -> PlantException | None:
    """The open `material` exception of this material, newest first (the watch's or a chat report's)."""
    return ctx.session.exec(select(PlantException).where(
        PlantException.plant_id == ctx.plant.id, PlantException.type == "material",
        PlantException.material_id == material,
        PlantException.status.in_(wf.OPEN_STATUSES)).order_by(PlantException.id.desc())).first()  # type: ignore[attr-defined,union-attr]


def _last_word(ctx: Context, exc: PlantException) -> TimelineEvent | None:
    """What the watch last wrote on the exception's timeline (a shortage, or its recovery)."""
    return ctx.session.exec(select(TimelineEvent).where(
        TimelineEvent.exception_id == exc.id, TimelineEvent.kind.in_(EVENTS))  # type: ignore[attr-defined]
        .order_by(TimelineEvent.id.desc())).first()  # type: ignore[union-attr]


def _movements(ctx: Context, lines: Sequence[Line], materials: set[str]) -> int:
    """Store each change of a place's quantity since the last read as a signal, and keep the new levels."""
    now: dict[tuple[str, str, bool], tuple[float, str | None]] = {}
    for line in lines:
        key = (line.material, line.location, line.blocked)
        quantity, unit = now.get(key, (0.0, line.unit))
        now[key] = (quantity + line.quantity, unit)
    before = {(level.material_id, level.location, level.blocked): level for level in ctx.session.exec(
        select(StockLevel).where(StockLevel.plant_id == ctx.plant.id,
                                 StockLevel.material_id.in_(materials)))}  # type: ignore[attr-defined]
    stored = 0
    for key in sorted(set(now) | set(before)):
        material, location, blocked = key
        quantity, unit = now.get(key, (0.0, before[key].unit if key in before else None))
        level = before.get(key)
        if level is None:
            ctx.session.add(StockLevel(plant_id=ctx.plant.id, material_id=material, location=location,
                                       blocked=blocked, quantity=quantity, unit=unit, read_at=ctx.now))
            continue
        if abs(level.quantity - quantity) > EPSILON:
            ctx.session.add(Signal(
                plant_id=ctx.plant.id, source=SOURCE, kind="stock", received_at=ctx.now, processed_at=ctx.now,
                source_key=f"{SOURCE}:{ctx.plant.id}:{material}:{location}:{int(blocked)}:{level.read_at.isoformat()}",
                payload={"material": material, "location": location, "blocked": blocked, "before": level.quantity,
                         "after": quantity, "change": quantity - level.quantity, "unit": unit,
                         "since": level.read_at.isoformat()}))
            stored += 1
            level.quantity, level.unit = quantity, unit or level.unit
        level.read_at = ctx.now
        ctx.session.add(level)
    return stored

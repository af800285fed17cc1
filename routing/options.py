"""The planner's options on a breakdown: wait for the repair, move to a sister machine, or split.

Definitions (also in docs/routing.md):
- *the order*: the breakdown's work order current on the machine (else the next one);
  *remaining*: its planned length from now on (its whole length if it has not started);
- *repair end*: a repairer's estimate in the thread, else the machine's MTTR from the
  breakdown, else an hour from now (`routing.decisions.repair_end`);
- **wait**: the order goes on at the repair end for its remaining length; every following order
  on the machine that it would now overlap moves back just enough (in sequence);
- **move**: to a sister machine (same `kind`, running), at the first free time from now on
  that holds the whole remaining length between its own orders; one option per sister;
- **split**: half the remaining quantity on the first sister at its free time, the other half
  waiting for the repair: both halves in half the time; the order ends when the later half does;
- each option's *effects*: the customer orders that end after their due date (and by how much),
  and the orders whose start moves (a staging conflict: their material is needed at a new
  time or machine).

Choosing an option is the planner's reschedule proposal (routing/decisions.py).
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from datetime import datetime, timedelta
from typing import Any

from sqlmodel import select

from models import CustomerOrder, Machine, PlantException, WorkOrder
from routing import decisions, messages
from routing import workflow as wf
from routing.impact import OPEN_STATUSES
from routing.workflow import Context

MAX_OPTIONS = 3  # one button each: wait, the first sister, split


@dataclass
class Option:
    kind: str  # wait | move | split
    work_order: str
    machine: str
    start: str  # ISO, where the order (or its moved half) runs
    end: str  # ISO, when the whole order is done
    quantity: float | None = None  # split: the quantity moved to `machine`
    late: list[dict[str, Any]] = field(default_factory=list)  # customer_order, late_minutes, end
    moved: list[dict[str, Any]] = field(default_factory=list)  # work_order, material, start (the new need time)

    def fields(self) -> dict[str, Any]:
        """The reschedule this option proposes (a split names the half it moves)."""
        data: dict[str, Any] = {"work_order": self.work_order, "start": self.start, "end": self.end,
                                "machine": self.machine, "option": self.kind}
        if self.quantity is not None:
            data["split_quantity"] = self.quantity
        return data


def _orders(ctx: Context, machine_id: str) -> list[WorkOrder]:
    rows = ctx.session.exec(select(WorkOrder).where(
        WorkOrder.plant_id == ctx.plant.id, WorkOrder.machine_id == machine_id,
        WorkOrder.status.in_(OPEN_STATUSES))).all()  # type: ignore[attr-defined]
    return sorted((w for w in rows if w.start and w.end), key=lambda w: (w.start, w.id))  # type: ignore[arg-type, return-value]


def _late(ctx: Context, wo: WorkOrder, end: datetime) -> list[dict[str, Any]]:
    order = ctx.session.get(CustomerOrder, (ctx.plant.id, wo.customer_order_id)) if wo.customer_order_id else None
    if order is None or order.due is None or end <= order.due:
        return []
    return [{"customer_order": order.id, "late_minutes": int((end - order.due).total_seconds() // 60),
             "end": end.isoformat()}]


def _free_from(orders: list[WorkOrder], after: datetime, length: timedelta) -> datetime:
    """The first moment from `after` on when `length` fits between `orders` (sorted by start)."""
    at = after
    for wo in orders:
        if wo.end <= at:  # type: ignore[operator]
            continue
        if wo.start >= at + length:  # type: ignore[operator]
            break
        at = max(at, wo.end)  # type: ignore[type-var]
    return at


def compute(ctx: Context, exc: PlantException) -> list[Option]:
    """The options for the breakdown's current work order, with their effects."""
    if exc.type != "breakdown" or not exc.machine_id or not exc.work_orders:
        return []
    wo = wf.master_row(ctx, WorkOrder, exc.work_orders[0])
    if wo is None or wo.start is None or wo.end is None or wo.machine_id != exc.machine_id:
        return []
    now = ctx.now
    remaining = wo.end - max(now, wo.start)
    if remaining <= timedelta(0):
        return []
    repaired = max(decisions.repair_end(ctx, exc), now)
    options: list[Option] = []
    # Wait: the order goes on at the repair end; the ones after it move back in sequence.
    wait_start = max(repaired, wo.start)
    wait_end = wait_start + remaining
    wait = Option("wait", wo.id, wo.machine_id, wait_start.isoformat(), wait_end.isoformat(),
                  late=_late(ctx, wo, wait_end))
    previous_end = wait_end
    for later in (w for w in _orders(ctx, wo.machine_id) if w.id != wo.id and w.start >= wo.end):  # type: ignore[operator]
        if later.start >= previous_end:  # type: ignore[operator]
            break
        shift = previous_end - later.start  # type: ignore[operator]
        previous_end = later.end + shift  # type: ignore[operator]
        wait.moved.append({"work_order": later.id, "material": later.material_id,
                           "start": (later.start + shift).isoformat()})  # type: ignore[operator]
        wait.late += _late(ctx, later, previous_end)
    options.append(wait)
    machine = wf.master_row(ctx, Machine, wo.machine_id)
    sisters = [] if machine is None or not machine.kind else [
        m for m in ctx.session.exec(select(Machine).where(
            Machine.plant_id == ctx.plant.id, Machine.kind == machine.kind, Machine.id != machine.id)).all()
        if m.running]
    for sister in sorted(sisters, key=lambda m: m.id):
        start = _free_from(_orders(ctx, sister.id), now, remaining)
        move = Option("move", wo.id, sister.id, start.isoformat(), (start + remaining).isoformat(),
                      late=_late(ctx, wo, start + remaining))
        move.moved.append({"work_order": wo.id, "material": wo.material_id, "start": start.isoformat(),
                           "machine": sister.id})
        options.append(move)
    if sisters and wo.quantity:
        half = remaining / 2
        sister = sorted(sisters, key=lambda m: m.id)[0]
        start = _free_from(_orders(ctx, sister.id), now, half)
        end = max(start + half, wait_start + half)
        split = Option("split", wo.id, sister.id, start.isoformat(), end.isoformat(), quantity=wo.quantity / 2,
                       late=_late(ctx, wo, end))
        split.moved.append({"work_order": wo.id, "material": wo.material_id, "start": start.isoformat(),
                            "machine": sister.id})
        options.append(split)
    # Wait first, then the sisters in order, then the split: at most one button each.
    return options[:1] + [o for o in options if o.kind == "move"][:1] + [o for o in options if o.kind == "split"]


def describe(option: Option, language: str, timezone: str) -> str:
    """One option and its effects in words: "wait for the repair: WO-1042 ends 2026-11-25 22:00; late: SO-7001 by 4 h"."""

    def local(value: Any) -> str:
        return decisions.local_time(value, timezone)

    text = messages.render(f"option_{option.kind}", language, work_order=option.work_order, machine=option.machine,
                           start=local(option.start), end=local(option.end),
                           quantity=f"{option.quantity:g}" if option.quantity else "")
    late = ", ".join(f"{item['customer_order']} {messages.duration(item['late_minutes'] * 60, language)}"
                     for item in option.late)
    moved = ", ".join(f"{item['work_order']} ({item['material'] or '-'}) {local(item['start'])}"
                      for item in option.moved)
    return " ".join(part for part in (
        text,
        messages.render("option_late", language, late=late) if late else messages.render("option_on_time", language),
        messages.render("option_staging", language, moved=moved) if moved else "",
    ) if part)


def offer(ctx: Context, exc: PlantException) -> None:
    """Offer the planners of a breakdown its options as buttons, when there is a choice (a sister
    machine): a `needed` reschedule part holds them, so a press proposes that reschedule."""
    options = compute(ctx, exc)
    if len(options) < 2:
        return  # waiting for the repair is all there is: the alert says it, no choice to offer
    part = decisions.suggest(ctx, exc, "reschedule", {
        "work_order": options[0].work_order,
        "options": [{**asdict(o), "fields": o.fields()} for o in options]})
    if part is None:
        return
    buttons = tuple(f"part:option{number}:{part.id}" for number in range(1, len(options) + 1))
    for who in wf.paged_for_role(ctx, "planner", exc.area_id) or wf.paged_for_role(ctx, "planner", None):
        lines = "; ".join(f"{number}) {describe(option, who.language, ctx.plant.timezone)}"
                          for number, option in enumerate(options, start=1))
        wf.notify(ctx, who, "options", messages.render("options", who.language, code=exc.code, options=lines),
                  exc=exc, role="planner", buttons=buttons)


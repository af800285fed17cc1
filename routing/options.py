"""The planner's options when a breakdown or a material shortage holds work orders: wait, move to a
sister machine, or split; for every work order it holds.

Definitions (also in docs/routing.md, "The planner's options"):
- *the orders*: for a breakdown (tooling, utility) on a machine, the exception's work orders on
  that machine; for a material shortage, its work orders that consume the material, else (none
  named) every open work order consuming it that starts before the material arrives;
- *remaining*: an order's planned length from now on (its whole length if it has not started);
- *blocked until*: a breakdown blocks the machine until the *repair end* (a repairer's estimate in
  the thread, else the machine's MTTR from the breakdown, else an hour from now:
  `routing.decisions.repair_end`); a shortage blocks the order until the *arrival*: the latest
  `need_by` of an expedite or transfer of the material approved in mfgos and not yet past, else
  now plus the material's `lead_time` in the plant file; without either nothing is offered;
- **wait**: the order goes on its own machine when it is no longer blocked, for its remaining
  length, after the orders before it that wait too (in their planned sequence); every following
  order on the machine that it would now overlap moves back just enough (in sequence);
- **move**: to the first sister machine (same `kind`, running) at the first free time that holds the
  whole remaining length between its own orders, not before the material's arrival;
- **split**: half the quantity as a new order on that sister at its first free time for half the
  remaining length (not before the arrival); the other half stays, and waits as above for half
  the remaining length; the order is done when the later half is;
- each option's *effects*: the customer orders that end after their due date (and by how much),
  and the orders whose start moves (a staging conflict: their material is needed at a new time or
  on another machine).

Choosing an option is the planner's reschedule proposal (routing/decisions.py); a split, once
approved, is one `production_order_split` transaction.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from datetime import datetime, timedelta
from typing import Any

from sqlmodel import select

from models import CustomerOrder, ExceptionDecision, Machine, Material, PlantException, WorkOrder
from routing import decisions, messages
from routing import workflow as wf
from routing.impact import OPEN_STATUSES
from routing.workflow import Context

MAX_BUTTONS = 9  # `part:option1` .. `part:option9` (routing.decisions.OPTION)


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
    cause: str = "repair"  # repair | material: what the order waits for
    split: dict[str, Any] = field(default_factory=dict)  # split: the reschedule's fields for both halves
    previous: dict[str, Any] = field(default_factory=dict)  # previous_machine, previous_start, previous_end

    def fields(self) -> dict[str, Any]:
        """The reschedule this option proposes; a split names both halves (routing/decisions.py)."""
        if self.kind == "split":
            return {**self.split, **self.previous, "option": self.kind}
        return {"work_order": self.work_order, "start": self.start, "end": self.end, "machine": self.machine,
                **self.previous, "option": self.kind}


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


def _moment(value: Any) -> datetime | None:
    try:
        return datetime.fromisoformat(value) if isinstance(value, str) else None
    except ValueError:
        return None


def arrival(ctx: Context, material_id: str, since: datetime) -> datetime | None:
    """When the short material is expected: the latest `need_by` still ahead of an expedite or
    transfer of it approved in mfgos (its ERP transaction is queued or posted), else its `lead_time`
    from `since` (when the shortage was reported: the same moment when a press computes the options
    again later); None when neither is known."""
    requests = ctx.session.exec(select(ExceptionDecision).where(
        ExceptionDecision.plant_id == ctx.plant.id, ExceptionDecision.kind == "material_request",
        ExceptionDecision.status.in_(["approved", "settled"]))).all()  # type: ignore[attr-defined]
    coming = [moment for p in requests if p.fields.get("material") == material_id
              and (moment := _moment(p.fields.get("need_by"))) is not None and moment > ctx.now]
    if coming:
        return max(coming)
    material = wf.master_row(ctx, Material, material_id)
    if material is not None and material.lead_time_minutes:
        return max(ctx.now, since + timedelta(minutes=material.lead_time_minutes))
    return None


def held_orders(ctx: Context, exc: PlantException) -> tuple[list[WorkOrder], datetime | None, datetime | None]:
    """The orders the exception holds, when the machine is blocked until, and when the orders'
    material arrives (None: not blocked by that)."""
    named = [wo for wo in (wf.master_row(ctx, WorkOrder, w) for w in exc.work_orders or []) if wo is not None]
    named = [wo for wo in named if wo.status in OPEN_STATUSES and wo.start and wo.end]
    if exc.type in wf.MACHINE_TYPES and exc.machine_id:
        held = [wo for wo in named if wo.machine_id == exc.machine_id]
        return sorted(held, key=lambda w: (w.start, w.id)), max(decisions.repair_end(ctx, exc), ctx.now), None  # type: ignore[arg-type, return-value]
    if exc.type == "material" and exc.material_id:
        comes = arrival(ctx, exc.material_id, exc.opened_at)
        if comes is None:
            return [], None, None
        held = [wo for wo in named if wo.material_id == exc.material_id]
        if not held:
            held = [wo for wo in ctx.session.exec(select(WorkOrder).where(
                WorkOrder.plant_id == ctx.plant.id, WorkOrder.material_id == exc.material_id,
                WorkOrder.status.in_(OPEN_STATUSES))).all()  # type: ignore[attr-defined]
                if wo.start and wo.end and wo.start < comes]
        return sorted(held, key=lambda w: (w.start, w.id)), None, comes  # type: ignore[arg-type, return-value]
    return [], None, None


def _new_order_name(ctx: Context, work_order: str, taken: set[str]) -> str:
    """The split's second order: `<order>-2` (or -3, ...), a name no order of the plant has."""
    number = 2
    while f"{work_order}-{number}" in taken or wf.master_row(ctx, WorkOrder, f"{work_order}-{number}") is not None:
        number += 1
    return f"{work_order}-{number}"


def compute(ctx: Context, exc: PlantException) -> dict[str, list[Option]]:
    """For every order the exception holds, its options with their effects (wait first, then the
    first sister, then the split); an order that no longer has time left gets none."""
    held, machine_free, material_comes = held_orders(ctx, exc)
    now = ctx.now
    found: dict[str, list[Option]] = {}
    new_orders: set[str] = set()
    waiting_until: dict[str, datetime] = {}  # per machine: where the orders that wait end, in sequence
    cause = "material" if material_comes is not None else "repair"
    for wo in held:
        # What the order still had to run when the exception stopped it: the same when the options
        # are computed again later (a press after a repair estimate), as nothing ran meanwhile.
        remaining = wo.end - max(min(now, exc.opened_at), wo.start)  # type: ignore[operator]
        if remaining <= timedelta(0):
            continue
        ready = max(now, material_comes or now)
        free = waiting_until.get(wo.machine_id, machine_free or now)
        wait_start = max(free, ready, wo.start)  # type: ignore[type-var]
        wait_end = wait_start + remaining
        waiting_until[wo.machine_id] = wait_end
        wait = Option("wait", wo.id, wo.machine_id, wait_start.isoformat(), wait_end.isoformat(),
                      late=_late(ctx, wo, wait_end), cause=cause)
        previous_end = wait_end
        for later in (w for w in _orders(ctx, wo.machine_id) if w.id != wo.id and w.start >= wo.end):  # type: ignore[operator]
            if later.start >= previous_end:  # type: ignore[operator]
                break
            shift = previous_end - later.start  # type: ignore[operator]
            previous_end = later.end + shift  # type: ignore[operator]
            wait.moved.append({"work_order": later.id, "material": later.material_id,
                               "start": (later.start + shift).isoformat()})  # type: ignore[operator]
            wait.late += _late(ctx, later, previous_end)
        options = [wait]
        machine = wf.master_row(ctx, Machine, wo.machine_id)
        sisters = [] if machine is None or not machine.kind else sorted((
            m for m in ctx.session.exec(select(Machine).where(
                Machine.plant_id == ctx.plant.id, Machine.kind == machine.kind, Machine.id != machine.id)).all()
            if m.running), key=lambda m: m.id)
        if sisters:
            sister = sisters[0]
            start = _free_from(_orders(ctx, sister.id), ready, remaining)
            move = Option("move", wo.id, sister.id, start.isoformat(), (start + remaining).isoformat(),
                          late=_late(ctx, wo, start + remaining), cause=cause)
            move.moved.append({"work_order": wo.id, "material": wo.material_id, "start": start.isoformat(),
                               "machine": sister.id})
            options.append(move)
        if sisters and wo.quantity:
            half = remaining / 2
            sister = sisters[0]
            start = _free_from(_orders(ctx, sister.id), ready, half)
            end = max(start + half, wait_start + half)
            moved_quantity = wo.quantity / 2
            split = Option("split", wo.id, sister.id, start.isoformat(), end.isoformat(), quantity=moved_quantity,
                           late=_late(ctx, wo, end), cause=cause)
            split.split = {
                "work_order": wo.id, "machine": wo.machine_id, "quantity": wo.quantity - moved_quantity,
                "start": wait_start.isoformat(), "end": (wait_start + half).isoformat(),
                "new_order": _new_order_name(ctx, wo.id, new_orders), "split_quantity": moved_quantity,
                "split_machine": sister.id, "split_start": start.isoformat(), "split_end": (start + half).isoformat()}
            new_orders.add(split.split["new_order"])
            split.moved.append({"work_order": split.split["new_order"], "material": wo.material_id,
                                "start": start.isoformat(), "machine": sister.id})
            options.append(split)
        for option in options:
            option.previous = {"previous_machine": wo.machine_id, "previous_start": wo.start.isoformat(),  # type: ignore[union-attr]
                               "previous_end": wo.end.isoformat()}  # type: ignore[union-attr]
        found[wo.id] = options
    return found


def describe(option: Option, language: str, timezone: str) -> str:
    """One option and its effects in words: "wait for the repair: WO-1042 ends 2026-11-25 22:00; late: SO-7001 by 4 h"."""

    def local(value: Any) -> str:
        return decisions.local_time(value, timezone)

    template = f"option_{option.kind}" + ("_material" if option.cause == "material" and option.kind != "move" else "")
    text = messages.render(template, language, work_order=option.work_order, machine=option.machine,
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
    """Offer the planners the options of every order the exception holds, when there is a choice (a
    sister machine): one message, the orders one after the other with their options numbered on
    (WO-1042: 1) 2) 3); WO-1043: 4) 5) 6)), a button each. One `needed` reschedule part holds them
    all (its subject: the first order), so a press proposes that option's reschedule."""
    choices = [options for options in compute(ctx, exc).values() if len(options) >= 2]
    offered = [option for options in choices for option in options][:MAX_BUTTONS]
    if not offered:
        return  # waiting is all there is: the alert says it, no choice to offer
    part = decisions.suggest(ctx, exc, "reschedule", {
        "work_order": offered[0].work_order, "options": [{**asdict(o), "fields": o.fields()} for o in offered]})
    if part is None:
        return
    buttons = tuple(f"part:option{number}:{part.id}" for number in range(1, len(offered) + 1))
    for who in wf.paged_for_role(ctx, "planner", exc.area_id) or wf.paged_for_role(ctx, "planner", None):
        lines = "; ".join(f"{number}) {describe(option, who.language, ctx.plant.timezone)}"
                          for number, option in enumerate(offered, start=1))
        wf.notify(ctx, who, "options", messages.render("options", who.language, code=exc.code, options=lines),
                  exc=exc, role="planner", buttons=buttons)

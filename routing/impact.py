"""Impact analysis: what an exception on a machine touches downstream.

Definitions (also in docs/routing.md):
- *affected work orders*: the work orders on the machine that are current at the event time
  (status running or held, or released/planned with start <= t < end) plus the next one
  not done on that machine (the earliest start after the current ones). A work order named
  in the message is always included.
- *customer orders at risk*: the customer orders linked to the affected work orders.
- *staging conflict*: material staged for the next job no longer fits the plan — the next
  work order on the machine needs a different material than the current one, or the
  expected downtime (a duration in the report, "down for 3 h") pushes the current work
  order's end past the next one's start, or a material exception names the material an
  affected work order consumes.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from sqlmodel import Session, select

from models import WorkOrder

CURRENT_STATUSES = ("running", "held")
OPEN_STATUSES = ("planned", "released", "running", "held")


@dataclass
class Impact:
    work_orders: list[str] = field(default_factory=list)
    customer_orders_at_risk: list[str] = field(default_factory=list)
    staging_conflict: dict[str, Any] = field(default_factory=dict)


def _is_current(wo: WorkOrder, at: datetime) -> bool:
    if wo.status in CURRENT_STATUSES:
        return True
    return bool(wo.start and wo.end and wo.start <= at < wo.end)


def affected_work_orders(session: Session, plant_id: str, machine_id: str, at: datetime) -> list[WorkOrder]:
    orders = session.exec(
        select(WorkOrder).where(
            WorkOrder.plant_id == plant_id,
            WorkOrder.machine_id == machine_id,
            WorkOrder.status.in_(OPEN_STATUSES),  # type: ignore[attr-defined]
        )
    ).all()
    far = datetime.max.replace(tzinfo=at.tzinfo)
    orders = sorted(orders, key=lambda wo: (wo.start or far, wo.id))
    current = [wo for wo in orders if _is_current(wo, at)]
    later = [wo for wo in orders if wo not in current and (wo.start is None or wo.start >= at)]
    return current + later[:1]


def analyse(
    session: Session,
    plant_id: str,
    *,
    machine_id: str | None,
    work_order_id: str | None,
    material_id: str | None,
    exception_type: str,
    at: datetime,
    expected_downtime: timedelta | None = None,
    named: Sequence[str] = (),
) -> Impact:
    """`named`: orders the caller knows are held (the stock watch's short orders), after the machine's."""
    orders: list[WorkOrder] = []
    if machine_id:
        orders = affected_work_orders(session, plant_id, machine_id, at)
    for wo_id in named:
        if all(wo.id != wo_id for wo in orders) and (found := session.get(WorkOrder, (plant_id, wo_id))):
            orders.append(found)
    if work_order_id and all(wo.id != work_order_id for wo in orders):
        named_order = session.get(WorkOrder, (plant_id, work_order_id))
        if named_order:
            orders.insert(0, named_order)
    impact = Impact(work_orders=[wo.id for wo in orders])
    impact.customer_orders_at_risk = sorted({wo.customer_order_id for wo in orders if wo.customer_order_id})
    impact.staging_conflict = _staging_conflict(orders, at, exception_type, material_id, expected_downtime)
    return impact


def _staging_conflict(
    orders: list[WorkOrder],
    at: datetime,
    exception_type: str,
    material_id: str | None,
    expected_downtime: timedelta | None,
) -> dict[str, Any]:
    current = [wo for wo in orders if _is_current(wo, at)]
    following = [wo for wo in orders if wo not in current]
    if exception_type == "material" and material_id:
        needing = [wo.id for wo in orders if wo.material_id == material_id]
        if needing:
            return {"reason": "material_short", "material": material_id, "work_orders": needing}
    if not current or not following:
        return {}
    now_wo, next_wo = current[0], following[0]
    if next_wo.material_id and now_wo.material_id and next_wo.material_id != now_wo.material_id:
        return {
            "reason": "material_change",
            "work_order": next_wo.id,
            "material": next_wo.material_id,
            "current_material": now_wo.material_id,
        }
    if expected_downtime and now_wo.end and next_wo.start and now_wo.end + expected_downtime > next_wo.start:
        return {
            "reason": "start_moves",
            "work_order": next_wo.id,
            "material": next_wo.material_id,
            "delay_minutes": int(expected_downtime.total_seconds() // 60),
        }
    return {}

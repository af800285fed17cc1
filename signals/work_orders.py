"""Work-order status from the MES or ERP (`{event: work_order_status, work_order, status}`).

The MES is the record of what runs where; we keep `WorkOrder.status` in step so impact
analysis sees it, and note the change on the timeline of open exceptions that affect the order.
"""

from __future__ import annotations

from models import Signal, WorkOrder, WorkOrderStatus
from routing import workflow as wf
from routing.workflow import Context

# What MES and ERP systems call the statuses we keep (lower case, `-` and spaces as `_`).
STATUS_WORDS: dict[str, WorkOrderStatus] = {
    **{w: WorkOrderStatus.planned for w in ("planned", "created", "new", "draft", "confirmed")},
    **{w: WorkOrderStatus.released for w in ("released", "ready", "dispatched", "scheduled", "not_started")},
    **{w: WorkOrderStatus.running for w in ("running", "in_progress", "started", "active", "in_process",
                                            "progress", "resumed")},
    **{w: WorkOrderStatus.held for w in ("held", "hold", "on_hold", "paused", "suspended", "blocked", "stopped")},
    **{w: WorkOrderStatus.done for w in ("done", "completed", "complete", "finished", "closed", "to_close")},
}


def work_order_status(value: object) -> WorkOrderStatus | None:
    return STATUS_WORDS.get(str(value or "").strip().lower().replace("-", "_").replace(" ", "_"))


def handle_work_order_signal(ctx: Context, signal: Signal) -> None:
    payload = signal.payload
    work_order_id, raw_status = payload.get("work_order"), payload.get("status")
    order = ctx.session.get(WorkOrder, (ctx.plant.id, str(work_order_id))) if work_order_id else None
    if order is None:
        signal.error = f"unknown work order {work_order_id!r} in plant {ctx.plant.id}"
        return
    status = work_order_status(raw_status)
    if status is None:
        signal.error = (f"unknown work-order status {raw_status!r} "
                        f"(use one of {', '.join(s.value for s in WorkOrderStatus)})")
        return
    previous = order.status
    if previous == status:
        return
    order.status = status.value
    ctx.session.add(order)
    for exc in wf.open_exceptions(ctx):
        if order.id in exc.work_orders:
            wf.log(ctx, exc, "work_order_status", f"{order.id}: {previous} -> {status.value}", None,
                   work_order=order.id, status=status.value, previous=previous, source=signal.source)

"""What the MES is told when an exception's outcome is confirmed: the rows of the MES outbox.

The outcome goes "back to both" (docs/mes.md): next to the ERP's documents, the MES gets

- at the approval of a breakdown on a machine: the machine's status `down` (since when it
  stopped), a `hold` for each work order the breakdown stopped, and the downtime reason code
  the plant file's `mes.reason_codes` give the approved fix;
- when the machine runs again (or at the approval, if it already runs): its status `running`
  and a `resume` for each work order held.

Each is one `MesTransaction` row, written in the lifecycle step's own DB transaction, at most
one per exception and slot (the table's unique key), so a second approval or a second
RUNNING signal adds nothing and a replay of the same events writes the same rows. Nothing is
written for a plant without a `mes:` section.
"""

from __future__ import annotations

import re
import uuid
from datetime import datetime
from typing import TYPE_CHECKING, Any

from sqlmodel import Session, select

from models import Machine, Plant, PlantException, TimelineEvent, WorkOrder
from models.mes import MesTransaction
from routing.erp_facts import breakdown_facts

if TYPE_CHECKING:
    from routing.workflow import Context

DOWN, RUNNING, REASON = "machine_status:down", "machine_status:running", "downtime_reason"
HOLD, RESUME = "work_order_hold:", "work_order_resume:"
IN_PRODUCTION = ("running", "held")  # a work order in these states was on the machine when it stopped
MAX_REASON = 500  # characters of the approved fix the MES gets with the reason code
_UNSAFE = re.compile(r"[^A-Za-z0-9._:-]")


def on_approval(ctx: Context, exc: PlantException) -> list[MesTransaction]:
    """The approved breakdown's rows: down, holds, reason code, and (machine already running) running and resumes."""
    settings = ctx.plant.mes or {}
    if not settings or exc.type != "breakdown" or not exc.machine_id:
        return []
    facts = breakdown_facts(ctx.session, exc)
    down_at = facts["down_at"]
    orders = held_work_orders(ctx.session, exc, datetime.fromisoformat(down_at))
    base = {"machine": exc.machine_id, "exception": exc.code}
    wanted: list[tuple[str, str, dict[str, Any]]] = [(DOWN, "machine_status", {**base, "status": "down", "at": down_at})]
    code = reason_code(settings, exc)
    wanted += [(HOLD + wo, "work_order_hold", {**base, "work_order": wo, "at": down_at, "reason_code": code})
               for wo in orders]
    reason: dict[str, Any] = {**base, "reason_code": code, "down_at": down_at, "type": exc.type,
                              "reason": (exc.proposal or {}).get("text", "")[:MAX_REASON] or None}
    machine = ctx.session.get(Machine, (ctx.plant.id, exc.machine_id))
    running = machine is not None and machine.running
    if running:
        up_at = facts.get("up_at") or ctx.now.isoformat()
        minutes = (datetime.fromisoformat(up_at) - datetime.fromisoformat(down_at)).total_seconds() / 60
        reason.update(up_at=up_at, downtime_minutes=round(max(minutes, 0.0), 1))
    wanted.append((REASON, "downtime_reason", {k: v for k, v in reason.items() if v is not None}))
    if running:
        wanted += _back_running(exc, [HOLD + wo for wo in orders], reason["up_at"])
    return _add(ctx, exc, wanted)


def on_running(ctx: Context, exc: PlantException) -> list[MesTransaction]:
    """The machine of an approved breakdown runs again: its status `running`, and each hold's resume."""
    if not ctx.plant.mes:
        return []
    slots = _slots(ctx.session, exc)
    if DOWN not in slots or RUNNING in slots:
        return []  # not approved yet (the approval sends both), or told already
    return _add(ctx, exc, _back_running(exc, [s for s in slots if s.startswith(HOLD)], ctx.now.isoformat()))


def _back_running(exc: PlantException, holds: list[str], up_at: str) -> list[tuple[str, str, dict[str, Any]]]:
    base = {"machine": exc.machine_id, "exception": exc.code, "at": up_at}
    return [(RUNNING, "machine_status", {**base, "status": "running"}),
            *[(RESUME + hold.removeprefix(HOLD), "work_order_resume", {**base, "work_order": hold.removeprefix(HOLD)})
              for hold in holds]]


def held_work_orders(session: Session, exc: PlantException, down_at: datetime) -> list[str]:
    """The exception's work orders that were in production on its machine when it stopped: running or
    held, or scheduled across that moment (not the next job, which had not started)."""
    held = []
    for wo_id in exc.work_orders or []:
        wo = session.get(WorkOrder, (exc.plant_id, wo_id))
        if wo is None or wo.machine_id != exc.machine_id:
            continue
        scheduled = wo.start is not None and wo.end is not None and wo.start <= down_at < wo.end
        if wo.status in IN_PRODUCTION or scheduled and wo.status != "done":
            held.append(wo_id)
    return held


def reason_code(settings: dict[str, Any], exc: PlantException) -> str:
    """The plant's downtime reason code for the approved outcome: the first of `mes.reason_codes`
    whose types include the exception's and whose words (any of them) the approved fix or the
    report contains; else `mes.default_reason`."""
    said = " ".join((str((exc.proposal or {}).get("text", "")), exc.summary or "")).casefold()
    for rule in settings.get("reason_codes") or []:
        types, words = rule.get("types") or [], rule.get("words") or []
        if types and exc.type not in types:
            continue
        if words and not any(str(word).casefold() in said for word in words):
            continue
        return str(rule["code"])
    return str(settings["default_reason"])


def _slots(session: Session, exc: PlantException) -> list[str]:
    return list(session.exec(select(MesTransaction.slot).where(MesTransaction.exception_id == exc.id)
                             .order_by(MesTransaction.sequence)))  # type: ignore[arg-type]


def _add(ctx: Context, exc: PlantException, wanted: list[tuple[str, str, dict[str, Any]]]) -> list[MesTransaction]:
    slots = _slots(ctx.session, exc)
    rows = []
    for slot, kind, fields in wanted:
        if slot in slots:
            continue
        slots.append(slot)
        readable = _UNSAFE.sub("_", f"{ctx.plant.id}:{exc.code}:{slot}")[:150]
        row = MesTransaction(plant_id=ctx.plant.id, exception_id=exc.id, sequence=len(slots), slot=slot, kind=kind,
                             fields=fields, idempotency_key=f"{readable}:{uuid.uuid4().hex[:12]}",
                             created_at=ctx.now, next_attempt_at=ctx.now)
        ctx.session.add(row)
        rows.append(row)
    return rows


def record_result(session: Session, row: MesTransaction, outcome: str, detail: str, now: datetime) -> None:
    """Called by the MES outbox in the DB transaction that settles the row: the timeline shows what
    the MES holds (its reference) or why it refused; a retry is not news."""
    exc = session.get(PlantException, row.exception_id)
    if exc is None or session.get(Plant, row.plant_id) is None:
        return
    data = {"kind": row.kind, "slot": row.slot}
    if outcome == "sent":
        session.add(TimelineEvent(exception_id=exc.id, at=now, kind="mes_sent", text="",
                                  data={**data, "reference": row.reference}))
    elif outcome == "rejected":
        session.add(TimelineEvent(exception_id=exc.id, at=now, kind="mes_rejected", text=detail, data=data))
    elif outcome == "auth_failed":
        session.add(TimelineEvent(exception_id=exc.id, at=now, kind="mes_auth_failed", text=detail, data=data))


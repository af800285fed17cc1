"""Decision parts of an exception: the planner's reschedule, materials' request, customer service's date.

The technician's fix is the exception's own proposal (routing/workflow.py). Next to it, each role
the exception touches decides its part, in the thread, by message or button:

| kind | decided by | fields | ERP transaction |
|---|---|---|---|
| `reschedule` | planner | work_order, start, end, machine (another machine: a move) | production_order_reschedule |
| (a split) | planner | the above, quantity, new_order, split_quantity, split_machine, split_start, split_end | production_order_split |
| `material_request` | materials | material, quantity, unit, need_by, action (expedite / transfer), work_order, machine | material_request |
| `customer_order_date` | customer service | customer_order, promised, previous, customer_told | customer_order_date |

A part's states, declared as one table (`MOVES`); who may move it is the lifecycle's check
(`routing.lifecycle`, rows `decision_*`), given who the person is for this part (`standing`):

| state | move | next | who |
|---|---|---|---|
| needed | propose | proposed | decider |
| needed, proposed, rejected | not_needed | not_needed | decider |
| proposed, rejected | propose | proposed | decider |
| proposed | approve | approved | decision_approver |
| proposed | reject | rejected | decision_approver |
| approved | posted | settled | system (the ERP outbox) |

`needed` parts are the chain's: an approved reschedule that moves a work order's material need
asks materials for a request; one that makes a customer order late asks customer service for
the new date. The plant file's `approvals:` names who approves each kind; without an entry the
decider is also the approver, so the proposal is approved at once ("the deciding role's own
decision stands"). An approved part is one ERP transaction, posted once through the ERP outbox
with its own installation-unique key; once posted, the part is settled. Open parts (needed,
proposed, rejected) remind their role every `REMIND_EVERY` (the plant file's `decisions.remind_every`)
until settled or declared not needed.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from enum import StrEnum
from typing import Any
from zoneinfo import ZoneInfo

from sqlmodel import Session, select

from models import (
    CustomerOrder,
    ErpTransaction,
    ExceptionDecision,
    Machine,
    Material,
    Person,
    Plant,
    PlantApproval,
    PlantException,
    TimelineEvent,
    WorkOrder,
)
from models.decisions import DECISION_ERP_KINDS, DECISION_KINDS, DECISION_ROLES
from models.tables import RowOrigin
from nlp.extraction import Extraction
from nlp.when import AFTER_REPAIR, read_when
from routing import messages
from routing import workflow as wf
from routing.keys import decision_key
from routing.lifecycle import Action, Relation
from routing.workflow import Context, Standing


class Status(StrEnum):
    needed = "needed"  # the chain asks the role for this part
    proposed = "proposed"  # decided by its role, waiting for the approver
    approved = "approved"  # its ERP transaction is queued
    rejected = "rejected"  # the approver said no: the role decides again or declares it not needed
    not_needed = "not_needed"  # its role declared it not needed
    settled = "settled"  # posted to the ERP


class Move(StrEnum):
    propose = "propose"
    approve = "approve"
    reject = "reject"
    not_needed = "not_needed"
    posted = "posted"


S, M = Status, Move
MOVES: dict[tuple[Status, Move], Status] = {
    (S.needed, M.propose): S.proposed,
    (S.proposed, M.propose): S.proposed,  # the new proposal replaces the old
    (S.rejected, M.propose): S.proposed,
    (S.needed, M.not_needed): S.not_needed,
    (S.proposed, M.not_needed): S.not_needed,
    (S.rejected, M.not_needed): S.not_needed,
    (S.proposed, M.approve): S.approved,
    (S.proposed, M.reject): S.rejected,
    (S.approved, M.posted): S.settled,
}
del S, M
OPEN = (Status.needed, Status.proposed, Status.rejected)
# The lifecycle row that says who may make each move (posted is the ERP outbox's).
ACTIONS = {Move.propose: Action.decision_propose, Move.approve: Action.decision_approve,
           Move.reject: Action.decision_reject, Move.not_needed: Action.decision_not_needed}
ERP_KINDS = DECISION_ERP_KINDS
SPLIT_ERP_KIND = "production_order_split"  # a reschedule that splits the order (the planner's split option)
# The field that tells two parts of one kind apart on one exception.
SUBJECT = {"reschedule": "work_order", "material_request": "material", "customer_order_date": "customer_order"}
REMIND_EVERY = timedelta(hours=2)
# Buttons: `part:<move>:<id>` on a part (confirm = propose it as suggested; skip = not needed).
OPTION = re.compile(r"option([1-9])")  # `part:option2:<id>`: the planner's second option (routing/options.py)
BUTTON_MOVES = {"approve": Move.approve, "reject": Move.reject, "confirm": Move.propose, "skip": Move.not_needed}
# Words that say the customer was told, in the four languages.
TOLD = ("told", "informed", "notified", "confirmed", "informado", "avisado", "confirmado", "informiert",
        "benachrichtigt", "bestätigt", "bata diya", "bataya", "suchit")
EXPEDITE_WORDS = ("expedite", "rush", "urgent", "urgente", "acelerar", "expedir", "beschleunigen", "eilig",
                  "jaldi", "turant")
TRANSFER_WORDS = ("transfer", "move", "trasladar", "transferir", "mover", "umlagern", "bringen", "transfer karo",
                  "bhejo", "le jao")
MOVE_WORDS = ("move", "reschedule", "shift", "mover", "mueve", "reprogramar", "verschieben", "verlegen",
              "umplanen", "shift karo", "khisakao", "badlo")
NOT_NEEDED_WORDS = ("not needed", "no need", "no hace falta", "no es necesario", "nicht nötig", "nicht noetig",
                    "nicht notwendig", "zaroorat nahi", "zarurat nahi", "jarurat nahi")


# --- who the person is for a part -----------------------------------------------------------


def approver_role(ctx: Context, kind: str) -> str | None:
    """The plant's `approvals:` role for `kind`; None: the deciding role's own decision stands."""
    row = ctx.session.get(PlantApproval, (ctx.plant.id, kind))
    return row.role if row else None


def standing(ctx: Context, exc: PlantException, who: Person | None, kind: str) -> Standing:
    """Who `who` is for a part of `kind` on `exc`: the exception's relations plus decider and approver."""
    base = wf.standing_from(exc, who, ())
    if who is None:
        return base
    relations = set(base.relations)
    if DECISION_ROLES[kind] in who.roles:
        relations.add(Relation.decider)
    approver = approver_role(ctx, kind)
    if approver in who.roles or approver is None and Relation.decider in relations:
        relations.add(Relation.decision_approver)
    return Standing(frozenset(relations), base.roles)


# --- rows -----------------------------------------------------------------------------------


def parts(session: Session, exception_id: int) -> list[ExceptionDecision]:
    return list(session.exec(select(ExceptionDecision).where(ExceptionDecision.exception_id == exception_id)
                             .order_by(ExceptionDecision.id)))  # type: ignore[arg-type]


def open_parts(session: Session, exception_id: int) -> list[ExceptionDecision]:
    return [p for p in parts(session, exception_id) if p.status in OPEN]


def describe(part: ExceptionDecision, language: str, timezone: str) -> str:
    """The part in words for a person: "WO-1043 to GRD-02, 2026-11-26 06:00 to 2026-11-26 16:00"."""
    f = part.fields

    def at(value: Any) -> str:
        return local_time(value, timezone)

    if part.kind == "reschedule" and f.get("split_quantity"):
        return messages.render("part_split", language, work_order=f.get("work_order") or "?",
                               quantity=_number(f.get("quantity")), machine=f.get("machine") or "?",
                               start=at(f.get("start")), end=at(f.get("end")), new_order=f.get("new_order") or "?",
                               split_quantity=_number(f.get("split_quantity")),
                               split_machine=f.get("split_machine") or "?", split_start=at(f.get("split_start")),
                               split_end=at(f.get("split_end")))
    if part.kind == "reschedule":
        return messages.render("part_reschedule", language, work_order=f.get("work_order") or "?",
                               machine=f.get("machine") or "?", start=at(f.get("start")), end=at(f.get("end")))
    if part.kind == "material_request":
        return messages.render(f"part_material_{f.get('action') or 'expedite'}", language,
                               quantity=_number(f.get("quantity")), unit=f.get("unit") or "pcs",
                               material=f.get("material") or "?", machine=f.get("machine") or "?",
                               need_by=at(f.get("need_by")))
    return messages.render("part_customer_order_date", language, customer_order=f.get("customer_order") or "?",
                           promised=at(f.get("promised")), previous=at(f.get("previous")))


def local_time(value: Any, timezone: str) -> str:
    """An ISO time as the plant reads it: "2026-11-26 08:00" in its timezone ("?" when there is none)."""
    moment = _time(value)
    return moment.astimezone(ZoneInfo(timezone)).strftime("%Y-%m-%d %H:%M") if moment else "?"


def _number(value: Any) -> str:
    return f"{value:g}" if isinstance(value, int | float) else str(value or "?")


def _time(value: Any) -> datetime | None:
    if isinstance(value, datetime):
        return value
    if isinstance(value, str) and value:
        try:
            return datetime.fromisoformat(value)
        except ValueError:
            return None
    return None


def _iso(moment: datetime) -> str:
    return moment.isoformat()


# --- moving a part --------------------------------------------------------------------------


@dataclass
class Result:
    """What a move did: applied, or refused with the sentence the person was told."""

    applied: bool
    part: ExceptionDecision | None = None


def move(ctx: Context, exc: PlantException, part: ExceptionDecision, step: Move, who: Person | None, *,
         text: str = "", reply_channel: str | None = None) -> Result:
    """Make `step` on `part` as `MOVES` and the lifecycle's check allow, or refuse it (the person is told)."""
    target = MOVES.get((Status(part.status), step))
    if target is None:
        if who is not None:
            wf.notify(ctx, who, "refusal", messages.render(
                "part_state_refused", who.language, code=exc.code, part=describe(part, who.language, ctx.plant.timezone),
                state=messages.render(f"part_status_{part.status}", who.language)), exc=exc,
                reply_channel=reply_channel)
        return Result(False, part)
    if step is Move.posted:
        wf.log(ctx, exc, "decision_settled", "", None, part=part.id, kind=part.kind)
    else:
        outcome = wf.transition(ctx, exc, ACTIONS[step], who, text=text, quiet=True,
                                given=standing(ctx, exc, who, part.kind), part=part.id, kind=part.kind,
                                fields=dict(part.fields))
        if outcome.refusal is not None:
            role = approver_role(ctx, part.kind) if step in (Move.approve, Move.reject) else None
            role = role or DECISION_ROLES[part.kind]
            wf.log(ctx, exc, "decision_refused", messages.render("part_refused", "en", code=exc.code, role=role),
                   who.id if who else None, action=ACTIONS[step].value, reason="role", state=exc.status,
                   required_role=role, kind=part.kind)
            if who is not None:
                wf.notify(ctx, who, "refusal", messages.render("part_refused", who.language, code=exc.code, role=role),
                          exc=exc, reply_channel=reply_channel)
            return Result(False, part)
    part.status = target.value
    part.updated_at = ctx.now
    if step is Move.propose and who is not None:
        part.proposed_by = who.id
    if step in (Move.approve, Move.reject) and who is not None:
        part.decided_by = who.id
    ctx.session.add(part)
    return Result(True, part)


def _find_or_new(ctx: Context, exc: PlantException, kind: str, fields: dict[str, Any]) -> ExceptionDecision:
    """The open part of `kind` about the same subject (work order, material, customer order), else a new one."""
    subject = SUBJECT[kind]
    for part in open_parts(ctx.session, exc.id):  # type: ignore[arg-type]
        if part.kind == kind and (not fields.get(subject) or part.fields.get(subject) in (None, fields.get(subject))):
            return part
    part = ExceptionDecision(plant_id=ctx.plant.id, exception_id=exc.id, kind=kind, status=Status.needed,
                             role=DECISION_ROLES[kind], fields={}, created_at=ctx.now, updated_at=ctx.now)
    ctx.session.add(part)
    ctx.session.flush()
    return part


def propose(ctx: Context, exc: PlantException, who: Person, kind: str, fields: dict[str, Any], *,
            text: str = "", reply_channel: str | None = None, part: ExceptionDecision | None = None) -> Result:
    """`who` decides a part: recorded, shown to its approver, or approved at once when the plant names none."""
    if DECISION_ROLES[kind] not in who.roles:
        # Refused before a row is written: a stranger's reschedule leaves no part behind.
        probe = ExceptionDecision(plant_id=ctx.plant.id, exception_id=exc.id, kind=kind, status=Status.needed,
                                  role=DECISION_ROLES[kind], fields=fields, created_at=ctx.now, updated_at=ctx.now)
        return move(ctx, exc, probe, Move.propose, who, text=text, reply_channel=reply_channel)
    part = part or _find_or_new(ctx, exc, kind, fields)
    previous = dict(part.fields)
    part.fields = {**previous, **{k: v for k, v in fields.items() if v is not None}}
    result = move(ctx, exc, part, Move.propose, who, text=text, reply_channel=reply_channel)
    if not result.applied:
        part.fields = previous
        return result
    approver = approver_role(ctx, kind)
    if approver is None or approver in who.roles:
        approve(ctx, exc, part, who, reply_channel=reply_channel, own=True)
        return result
    holders = wf.paged_for_role(ctx, approver, exc.area_id) or wf.paged_for_role(ctx, approver, None)
    for target in holders:
        wf.notify(ctx, target, "approval_request", messages.render(
            "part_approval_request", target.language, code=exc.code, name=who.name,
            part=describe(part, target.language, ctx.plant.timezone)),
            exc=exc, role=approver, buttons=(f"part:approve:{part.id}", f"part:reject:{part.id}"))
    wf.notify(ctx, who, "confirmation", messages.render(
        "part_confirm_proposed", who.language, code=exc.code, part=describe(part, who.language, ctx.plant.timezone),
        role=approver), exc=exc, reply_channel=reply_channel)
    return result


def approve(ctx: Context, exc: PlantException, part: ExceptionDecision, who: Person, *, reason: str = "",
            reply_channel: str | None = None, own: bool = False) -> Result:
    """Approve: the part's ERP transaction is queued, and the chain reacts to an approved reschedule."""
    result = move(ctx, exc, part, Move.approve, who, text=reason, reply_channel=reply_channel)
    if not result.applied:
        return result
    kind = erp_kind(part)
    key = decision_key(ctx.plant.id, exc.code, part.id)  # type: ignore[arg-type]
    sequence = 100 + int(part.id or 0)  # after the resolution's own transactions, unique per part
    ctx.session.add(ErpTransaction(plant_id=ctx.plant.id, exception_id=exc.id, sequence=sequence, kind=kind,
                                   fields=erp_fields(part, exc), idempotency_key=key, created_at=ctx.now,
                                   next_attempt_at=ctx.now))
    part.erp_key = key
    wf.log(ctx, exc, "erp_queued", "", None, kind=kind, idempotency_key=key)
    language_part = describe(part, who.language, ctx.plant.timezone)
    wf.notify(ctx, who, "confirmation", messages.render("part_confirm_approved", who.language, code=exc.code,
                                                        part=language_part), exc=exc, reply_channel=reply_channel)
    proposer = wf.person(ctx, part.proposed_by)
    if not own and proposer is not None and proposer.id != who.id:
        wf.notify(ctx, proposer, "approved", messages.render(
            "part_approved", proposer.language, code=exc.code, name=who.name,
            part=describe(part, proposer.language, ctx.plant.timezone)), exc=exc)
    if part.kind == "reschedule":
        chain(ctx, exc, part)
    return result


def reject(ctx: Context, exc: PlantException, part: ExceptionDecision, who: Person, *, reason: str = "",
           reply_channel: str | None = None) -> Result:
    result = move(ctx, exc, part, Move.reject, who, text=reason, reply_channel=reply_channel)
    if not result.applied:
        return result
    wf.notify(ctx, who, "confirmation", messages.render(
        "part_confirm_rejected", who.language, code=exc.code, part=describe(part, who.language, ctx.plant.timezone)),
        exc=exc, reply_channel=reply_channel)
    proposer = wf.person(ctx, part.proposed_by)
    if proposer is not None and proposer.id != who.id:
        wf.notify(ctx, proposer, "rejected", messages.render(
            "part_rejected", proposer.language, code=exc.code, name=who.name,
            part=describe(part, proposer.language, ctx.plant.timezone), reason=reason), exc=exc)
    return result


def not_needed(ctx: Context, exc: PlantException, part: ExceptionDecision, who: Person, *, text: str = "",
               reply_channel: str | None = None) -> Result:
    result = move(ctx, exc, part, Move.not_needed, who, text=text, reply_channel=reply_channel)
    if result.applied:
        wf.notify(ctx, who, "confirmation", messages.render(
            "part_confirm_not_needed", who.language, code=exc.code,
            part=describe(part, who.language, ctx.plant.timezone)), exc=exc, reply_channel=reply_channel)
    return result


def erp_kind(part: ExceptionDecision) -> str:
    """The ERP transaction kind of a part: a reschedule that splits the order is a split."""
    return SPLIT_ERP_KIND if part.kind == "reschedule" and part.fields.get("split_quantity") else ERP_KINDS[part.kind]


def erp_fields(part: ExceptionDecision, exc: PlantException) -> dict[str, Any]:
    """The neutral ERP transaction of an approved part (docs/routing.md, "Decisions")."""
    f = part.fields
    reason = f"{exc.code}: {exc.summary}"[:200]
    if erp_kind(part) == SPLIT_ERP_KIND:
        return {**{k: f[k] for k in ("work_order", "quantity", "start", "end", "new_order", "split_quantity",
                                     "split_machine", "split_start", "split_end")},
                "machine": f.get("machine"), "reason": f"{reason} ({f['new_order']} on {f['split_machine']})"[:200]}
    if part.kind == "reschedule":
        moved = f.get("machine") and f.get("machine") != f.get("previous_machine")
        return {"work_order": f["work_order"], "start": f["start"], "end": f["end"],
                **({"machine": f["machine"]} if moved else {}),
                "reason": f"{reason} (to {f['machine']})"[:200] if moved else reason}
    if part.kind == "material_request":
        return {"material": f["material"], "quantity": f["quantity"], "unit": f.get("unit") or "pcs",
                "need_by": f["need_by"], "action": f.get("action") or "expedite", "work_order": f.get("work_order"),
                "reason": reason}
    return {"customer_order": f["customer_order"], "promised": f["promised"],
            "customer_told": bool(f.get("customer_told")), "reason": reason}


# --- the ERP and the clock ------------------------------------------------------------------


def erp_result(session: Session, txn: ErpTransaction, outcome: str, now: datetime) -> None:
    """Called with the ERP outbox's result, in its DB transaction: a part's posted transaction settles it."""
    if outcome != "posted" or txn.kind not in (*ERP_KINDS.values(), SPLIT_ERP_KIND) or txn.exception_id is None:
        return
    part = session.exec(select(ExceptionDecision).where(ExceptionDecision.erp_key == txn.idempotency_key)).first()
    exc = session.get(PlantException, txn.exception_id)
    plant = session.get(Plant, txn.plant_id)
    if part is None or exc is None or plant is None:
        return
    ctx = Context(session=session, plant=plant, now=now, cause=f"erp:{txn.id}:{txn.attempts}:settled")
    move(ctx, exc, part, Move.posted, None)
    decider = wf.person(ctx, part.proposed_by)
    # The exception's reporter and fixer heard of the reference already (workflow.record_erp_result).
    if decider is not None and decider.id not in (exc.reporter_id, (exc.proposal or {}).get("by")):
        wf.notify(ctx, decider, "erp_reference", messages.render(
            "erp_posted", decider.language, code=exc.code, kind=txn.kind, reference=txn.reference), exc=exc)


def remind_every(plant: Plant) -> timedelta:
    """The plant file's `decisions.remind_every`, else `REMIND_EVERY`."""
    return timedelta(seconds=plant.remind_every_s) if plant.remind_every_s else REMIND_EVERY


def remind(ctx: Context) -> int:
    """Remind each open part's role, every `remind_every`, until it is settled or declared not needed."""
    due = ctx.now - remind_every(ctx.plant)
    rows = ctx.session.exec(select(ExceptionDecision).where(
        ExceptionDecision.plant_id == ctx.plant.id, ExceptionDecision.status.in_([s.value for s in OPEN]))).all()  # type: ignore[attr-defined]
    reminded = 0
    for part in rows:
        if (part.reminded_at or part.updated_at) > due:
            continue
        exc = ctx.session.get(PlantException, part.exception_id)
        if exc is None:
            continue
        role = DECISION_ROLES[part.kind] if part.status != Status.proposed else \
            approver_role(ctx, part.kind) or DECISION_ROLES[part.kind]
        ctx.cause = f"remind:{part.id}:{int(ctx.now.timestamp())}"
        for who in wf.paged_for_role(ctx, role, exc.area_id) or wf.paged_for_role(ctx, role, None):
            wf.notify(ctx, who, "reminder", messages.render(
                "part_reminder", who.language, code=exc.code, part=describe(part, who.language, ctx.plant.timezone),
                state=messages.render(f"part_status_{part.status}", who.language)), exc=exc, role=role,
                buttons=_buttons_for(part))
        part.reminded_at = ctx.now
        ctx.session.add(part)
        reminded += 1
    return reminded


def next_reminder(session: Session, after: datetime | None = None) -> datetime | None:
    """When the next reminder is due (strictly after `after`, if given): the replay's clock stops there."""
    rows = session.exec(select(ExceptionDecision, Plant).join(Plant, Plant.id == ExceptionDecision.plant_id).where(  # type: ignore[arg-type]
        ExceptionDecision.status.in_([s.value for s in OPEN]))).all()  # type: ignore[attr-defined]
    times = [t for p, plant in rows if (t := (p.reminded_at or p.updated_at) + remind_every(plant))
             and (after is None or t > after)]
    return min(times) if times else None


def _buttons_for(part: ExceptionDecision) -> tuple[str, ...]:
    if part.status == Status.proposed:
        return (f"part:approve:{part.id}", f"part:reject:{part.id}")
    return (f"part:confirm:{part.id}", f"part:skip:{part.id}") if part.fields else (f"part:skip:{part.id}",)


# --- the chain ------------------------------------------------------------------------------


@dataclass
class Effects:
    """What a moved work order does downstream: its material needed anew, a customer order late."""

    staging: dict[str, Any] = field(default_factory=dict)  # material, quantity, unit, need_by, action, machine
    late: dict[str, Any] = field(default_factory=dict)  # customer_order, customer, due, promised, late_minutes


def effects(ctx: Context, wo: WorkOrder, start: datetime, end: datetime, machine: str) -> Effects:
    """Definitions (docs/routing.md): a *staging conflict* when the work order has a material and
    starts at another time or on another machine (the material staged for it is needed elsewhere
    or then: transfer to another machine, else expedite); *late* when its new end is after its
    customer order's due date, by the difference."""
    found = Effects()
    if wo.material_id and (machine != wo.machine_id or wo.start is None or start != wo.start):
        material = wf.master_row(ctx, Material, wo.material_id)
        found.staging = {"material": wo.material_id, "material_name": material.name if material else wo.material_id,
                         "quantity": wo.quantity or 1, "unit": "pcs", "need_by": _iso(start),
                         "action": "transfer" if machine != wo.machine_id else "expedite", "work_order": wo.id,
                         "machine": machine}
    if wo.customer_order_id and (order := ctx.session.get(CustomerOrder, (ctx.plant.id, wo.customer_order_id))) and \
            order.due and end > order.due:
        found.late = {"customer_order": order.id, "customer": order.customer, "previous": _iso(order.due),
                      "promised": _iso(end), "late_minutes": int((end - order.due).total_seconds() // 60)}
    return found


def chain(ctx: Context, exc: PlantException, part: ExceptionDecision) -> None:
    """An approved reschedule: the work order moves in mfgos's plan, and the roles it touches are asked."""
    f = part.fields
    wo = wf.master_row(ctx, WorkOrder, f["work_order"])
    start, end = _time(f.get("start")), _time(f.get("end"))
    if wo is None or start is None or end is None:
        return
    if f.get("split_quantity"):
        found = _split_plan(ctx, wo, f, start, end)
    else:
        found = effects(ctx, wo, start, end, f.get("machine") or wo.machine_id)
        wo.start, wo.end, wo.machine_id = start, end, f.get("machine") or wo.machine_id
    ctx.session.add(wo)
    if found.staging:
        _ask(ctx, exc, "material_request", {k: v for k, v in found.staging.items() if k != "material_name"},
             "part_staging_notice", material=found.staging["material_name"], work_order=found.staging["work_order"],
             quantity=_number(found.staging["quantity"]), unit=found.staging["unit"],
             machine=found.staging["machine"], need_by=local_time(found.staging["need_by"], ctx.plant.timezone))
    if found.late:
        _ask(ctx, exc, "customer_order_date", {k: v for k, v in found.late.items() if k in (
            "customer_order", "previous", "promised")}, "part_late_notice", customer_order=found.late["customer_order"],
             customer=found.late["customer"], late=messages.duration(found.late["late_minutes"] * 60),
             promised=local_time(found.late["promised"], ctx.plant.timezone), work_order=wo.id)


def _split_plan(ctx: Context, wo: WorkOrder, f: dict[str, Any], start: datetime, end: datetime) -> Effects:
    """An approved split in mfgos's plan: the order keeps its quantity and new dates on its machine,
    the second order (`new_order`) runs the rest on the split machine. The effects are the second
    order's: its material is needed there then, and the customer order is late if the later half is."""
    split_start, split_end = _time(f.get("split_start")), _time(f.get("split_end"))
    if split_start is None or split_end is None:
        return Effects()
    found = effects(ctx, wo, split_start, max(end, split_end), f["split_machine"])
    if found.staging:
        found.staging.update(quantity=f["split_quantity"], work_order=f["new_order"])
    if wf.master_row(ctx, WorkOrder, f["new_order"]) is None:
        ctx.session.add(WorkOrder(plant_id=ctx.plant.id, id=f["new_order"], machine_id=f["split_machine"],
                                  material_id=wo.material_id, quantity=f["split_quantity"], start=split_start,
                                  end=split_end, customer_order_id=wo.customer_order_id, status="released",
                                  # The ERP's order once the split is posted: a plant-file reload keeps it.
                                  origin=RowOrigin.erp.value))
    wo.quantity, wo.start, wo.end = f["quantity"], start, end
    return found


def suggest(ctx: Context, exc: PlantException, kind: str, fields: dict[str, Any]) -> ExceptionDecision | None:
    """A `needed` part of `kind` holding what the chain (or the planner's options) suggests; None
    when its role has decided it already (they hear of it through the reminder, not twice)."""
    part = _find_or_new(ctx, exc, kind, fields)
    if part.status != Status.needed:
        return None
    part.fields = {**part.fields, **fields}
    ctx.session.add(part)
    wf.log(ctx, exc, "decision_needed", "", None, part=part.id, kind=kind,
           fields={k: v for k, v in part.fields.items() if k != "options"})
    return part


def _ask(ctx: Context, exc: PlantException, kind: str, fields: dict[str, Any], template: str, **values: Any) -> None:
    part = suggest(ctx, exc, kind, fields)
    if part is None:
        return
    role = DECISION_ROLES[kind]
    for who in wf.paged_for_role(ctx, role, exc.area_id) or wf.paged_for_role(ctx, role, None):
        wf.notify(ctx, who, f"part_{kind}", messages.render(template, who.language, code=exc.code, **values),
                  exc=exc, role=role, buttons=(f"part:confirm:{part.id}", f"part:skip:{part.id}"))


# --- reading a message ----------------------------------------------------------------------


@dataclass
class Reading:
    """A decision read from a message: its kind, exception, fields so far, and what is still missing."""

    kind: str
    code: str
    fields: dict[str, Any]
    missing: str | None = None  # when | work_order | quantity | customer_order
    not_needed: bool = False
    part_id: int | None = None

    def pending(self, text: str) -> dict[str, Any]:
        return {"decision": {"kind": self.kind, "code": self.code, "fields": self.fields, "missing": self.missing,
                             "part": self.part_id}, "text": text}


def _has(text: str, words: tuple[str, ...]) -> bool:
    lowered = f" {text.lower()} "
    return any(f" {w} " in lowered or f" {w}," in lowered or f" {w}." in lowered for w in words)


def names_a_decision(text: str) -> bool:
    """A verb of a decision ("mover", "expedite", "verschieben", "not needed"): "Hay que mover la orden
    1043" names a work order as a status question does, but it is a planner's decision."""
    return _has(text, MOVE_WORDS + EXPEDITE_WORDS + TRANSFER_WORDS + NOT_NEEDED_WORDS)


def kind_for(who: Person, ex: Extraction, text: str, candidates: list[ExceptionDecision]) -> str | None:
    """Which part a decider's message is about: by what it names, then by the role they hold."""
    mine = [k for k in DECISION_KINDS if DECISION_ROLES[k] in who.roles]
    if not mine:
        return None
    if ex.customer_order and "customer_order_date" in mine:
        return "customer_order_date"
    if (ex.material or _has(text, EXPEDITE_WORDS)) and "material_request" in mine:
        return "material_request"
    if ex.work_order and "reschedule" in mine:
        return "reschedule"
    open_kinds = [p.kind for p in candidates if p.kind in mine]
    if len(set(open_kinds)) == 1:
        return open_kinds[0]
    return mine[0] if len(mine) == 1 else None


def read(ctx: Context, who: Person, exc: PlantException | None, ex: Extraction, text: str) -> Reading | None:
    """A decider's message as a decision part, or None (it is read as before: an update, a comment...).

    The exception: the thread; else the one holding the named work order or customer order, or
    the one with an open part for the person's role.
    """
    if not any(DECISION_ROLES[k] in who.roles for k in DECISION_KINDS):
        return None
    threadless = exc is None
    if exc is None:
        exc = _exception_for(ctx, who, ex)
        if exc is None:
            return None
    candidates = open_parts(ctx.session, exc.id)  # type: ignore[arg-type]
    kind = kind_for(who, ex, text, candidates)
    if kind is None:
        return None
    when = read_when(text, ex.language or who.language, ctx.now, ctx.plant.timezone)
    said_not_needed = _has(text, NOT_NEEDED_WORDS)
    # "Kunde informiert" confirms the customer order date part whether or not it names the order.
    acted = said_not_needed or _has(text, MOVE_WORDS + EXPEDITE_WORDS + TRANSFER_WORDS) \
        or bool((ex.customer_order or kind == "customer_order_date") and _has(text, TOLD))
    # In a thread a time is enough ("WO-1043 tomorrow 6am"); without one, a plan mentioned in
    # passing ("push wo 1043 to nights next week") is no decision: it needs its verb.
    decision_words = acted or when is not None and not threadless
    if not decision_words and not (kind == "reschedule" and ex.machine and ex.work_order):
        return None
    part = next((p for p in candidates if p.kind == kind), None)
    reading = Reading(kind=kind, code=exc.code, fields={}, part_id=part.id if part else None,
                      not_needed=said_not_needed)
    if said_not_needed:
        return reading if part else None
    reading.fields = _fields(ctx, exc, kind, ex, text, when, part)
    reading.missing = _missing(kind, reading.fields)
    return reading


def complete(ctx: Context, who: Person, pending: dict[str, Any], ex: Extraction, text: str) -> Reading | None:
    """The answer to "when?" (or "which work order?"): the pending reading with what the answer adds;
    None when the answer adds nothing."""
    data = pending.get("decision") or {}
    exc = wf.exception_by_code(ctx, str(data.get("code") or ""))
    if exc is None or data.get("kind") not in DECISION_KINDS:
        return None
    when = read_when(text, ex.language or who.language, ctx.now, ctx.plant.timezone)
    part = ctx.session.get(ExceptionDecision, data["part"]) if data.get("part") else None
    added = _fields(ctx, exc, data["kind"], ex, text, when, part, data.get("fields") or {})
    fields = {**data.get("fields", {}), **{k: v for k, v in added.items() if v is not None}}
    if fields == data.get("fields", {}):
        return None
    reading = Reading(kind=data["kind"], code=exc.code, fields=fields, part_id=data.get("part"))
    reading.missing = _missing(reading.kind, fields)
    return reading


def apply(ctx: Context, who: Person, reading: Reading, text: str, reply_channel: str | None) -> None:
    """Do what a complete reading says: propose the part, or declare it not needed."""
    exc = wf.exception_by_code(ctx, reading.code)
    if exc is None:
        return
    part = ctx.session.get(ExceptionDecision, reading.part_id) if reading.part_id else None
    if reading.not_needed and part is not None:
        not_needed(ctx, exc, part, who, text=text, reply_channel=reply_channel)
        return
    if part is not None and part.kind != reading.kind:
        part = None
    propose(ctx, exc, who, reading.kind, reading.fields, text=text, reply_channel=reply_channel, part=part)


def question(reading_data: dict[str, Any], language: str) -> str:
    """The question for what is missing ("When should WO-1043 start?")."""
    missing = reading_data.get("missing") or "when"
    fields = reading_data.get("fields") or {}
    return messages.render(f"ask_part_{missing}", language, code=reading_data.get("code") or "?",
                           work_order=fields.get("work_order") or "?", material=fields.get("material") or "?",
                           customer_order=fields.get("customer_order") or "?")


def press(ctx: Context, who: Person, button: str, reply_channel: str | None) -> bool:
    """A `part:<move>:<id>` button; False when it is not one."""
    _prefix, _, rest = button.partition(":")
    name, _, number = rest.partition(":")
    step = BUTTON_MOVES.get(name) or (Move.propose if OPTION.fullmatch(name) else None)
    part = ctx.session.get(ExceptionDecision, int(number)) if number.isdigit() and len(number) <= 9 else None
    if step is None or part is None or part.plant_id != ctx.plant.id:
        wf.notify(ctx, who, "reply", messages.render("which_dropped", who.language), reply_channel=reply_channel)
        return True
    exc = ctx.session.get(PlantException, part.exception_id)
    if exc is None:
        return True
    if step is Move.approve:
        approve(ctx, exc, part, who, reply_channel=reply_channel)
    elif step is Move.reject:
        reject(ctx, exc, part, who, reply_channel=reply_channel)
    elif step is Move.not_needed:
        not_needed(ctx, exc, part, who, reply_channel=reply_channel)
    elif found := OPTION.fullmatch(name):
        offered = part.fields.get("options") or []
        index = int(found.group(1)) - 1
        if 0 <= index < len(offered):
            fields = current_option_fields(ctx, exc, offered[index])
            propose(ctx, exc, who, part.kind, fields, reply_channel=reply_channel, part=part)
    else:
        fields = {**part.fields, **({"customer_told": True} if part.kind == "customer_order_date" else {})}
        if _missing(part.kind, fields):
            wf.notify(ctx, who, "reply", messages.render(
                "part_say_it", who.language, code=exc.code, part=describe(part, who.language, ctx.plant.timezone)),
                exc=exc, reply_channel=reply_channel)
        else:
            propose(ctx, exc, who, part.kind, fields, reply_channel=reply_channel, part=part)
    return True


def current_option_fields(ctx: Context, exc: PlantException, offered: dict[str, Any]) -> dict[str, Any]:
    """The pressed option as it stands now: the same order and the same choice (wait, move, split),
    computed again, since a repair estimate given after the options were offered moves the wait's end;
    the offered fields when the option is no longer there (the order ran out of time, the sister stopped)."""
    from routing.options import compute  # routing.options offers through this module: imported when pressed

    for option in compute(ctx, exc).get(str(offered.get("work_order")), []):
        if option.kind == offered.get("kind"):
            return option.fields()
    return dict(offered["fields"])


def decide_by_text(ctx: Context, who: Person, exc: PlantException | None, decision: str, text: str,
                   reply_channel: str | None) -> bool:
    """"approved" from the approver of a proposed part, when no fix waits for them: the part is decided.
    False: nothing of the kind waits for this person (the message is read as before)."""
    exceptions = [exc] if exc is not None else wf.open_exceptions(ctx)
    if any(e.status == "proposed" and e.approver_role in who.roles for e in exceptions):
        return False  # the fix waits for them: "approved" is about the fix
    by_id = {e.id: e for e in exceptions}
    # One query for every proposed part of these exceptions, however many are open.
    proposed = ctx.session.exec(select(ExceptionDecision).where(
        ExceptionDecision.plant_id == ctx.plant.id, ExceptionDecision.status == Status.proposed,
        ExceptionDecision.exception_id.in_(list(by_id)))).all()  # type: ignore[attr-defined]
    waiting = [(by_id[p.exception_id], p) for p in proposed
               if Relation.decision_approver in standing(ctx, by_id[p.exception_id], who, p.kind).relations]
    if len(waiting) != 1:
        return False
    found_exc, part = waiting[0]
    if decision == "approve":
        approve(ctx, found_exc, part, who, reason=text, reply_channel=reply_channel)
    else:
        reject(ctx, found_exc, part, who, reason=text, reply_channel=reply_channel)
    return True


def _exception_for(ctx: Context, who: Person, ex: Extraction) -> PlantException | None:
    open_now = wf.open_exceptions(ctx)
    if ex.work_order:
        named = [e for e in open_now if ex.work_order in (e.work_orders or [])]
        if len(named) == 1:
            return named[0]
    if ex.customer_order:
        named = [e for e in open_now if ex.customer_order in (e.customer_orders_at_risk or [])]
        if len(named) == 1:
            return named[0]
    roles = set(who.roles)
    rows = ctx.session.exec(select(ExceptionDecision).where(
        ExceptionDecision.plant_id == ctx.plant.id, ExceptionDecision.status.in_([s.value for s in OPEN]))).all()  # type: ignore[attr-defined]
    ids = {p.exception_id for p in rows if DECISION_ROLES[p.kind] in roles}
    if len(ids) == 1:
        return ctx.session.get(PlantException, ids.pop())
    return None


REPAIRERS = ("maintenance", "maintenance_lead")  # whose "back in 2h" is the repair's estimate


def note_estimate(ctx: Context, exc: PlantException, who: Person, ex: Extraction, text: str) -> None:
    """A repairer's time in the breakdown's thread ("back in 2h", "wieder um 14 Uhr", "+3h") is the
    repair's estimate: `repair_estimate` on the timeline, read by `repair_end`."""
    if exc.type not in wf.MACHINE_TYPES or not set(REPAIRERS) & set(who.roles) or exc.status == "closed":
        return
    until = read_when(text, ex.language or who.language, ctx.now, ctx.plant.timezone)
    if isinstance(until, datetime) and until > ctx.now:
        wf.log(ctx, exc, "repair_estimate", "", who.id, until=_iso(until))


def repair_end(ctx: Context, exc: PlantException) -> datetime:
    """When the machine runs again: the latest estimate a repairer gave in the thread, else the
    machine's MTTR from the breakdown, else one hour from now."""
    estimate = ctx.session.exec(select(TimelineEvent).where(
        TimelineEvent.exception_id == exc.id, TimelineEvent.kind == "repair_estimate")
        .order_by(TimelineEvent.id.desc())).first()  # type: ignore[union-attr]
    if estimate is not None and (until := _time(estimate.data.get("until"))) is not None:
        return until
    machine = wf.master_row(ctx, Machine, exc.machine_id) if exc.machine_id else None
    if machine is not None and machine.mttr_minutes:
        return max(ctx.now, exc.opened_at + timedelta(minutes=machine.mttr_minutes))
    return ctx.now + timedelta(hours=1)


def _fields(ctx: Context, exc: PlantException, kind: str, ex: Extraction, text: str, when: datetime | str | None,
            part: ExceptionDecision | None, known: dict[str, Any] | None = None) -> dict[str, Any]:
    """The fields a message gives for `kind`, completed from the open part the chain suggested and
    from what an earlier message of the same decision said (`known`, when it was asked back)."""
    base = {**(part.fields if part else {}), **{k: v for k, v in (known or {}).items() if v is not None}}
    moment = repair_end(ctx, exc) if when == AFTER_REPAIR else when if isinstance(when, datetime) else None
    if kind == "reschedule":
        work_order = ex.work_order or base.get("work_order") or \
            (exc.work_orders[0] if len(exc.work_orders or []) == 1 else None)
        fields: dict[str, Any] = {"work_order": work_order}
        wo = wf.master_row(ctx, WorkOrder, work_order) if work_order else None
        if wo is not None:
            machine = ex.machine if ex.machine and ex.machine != exc.machine_id else base.get("machine") or wo.machine_id
            fields.update(machine=machine, previous_machine=wo.machine_id,
                          previous_start=_iso(wo.start) if wo.start else None,
                          previous_end=_iso(wo.end) if wo.end else None)
            if moment is not None:
                length = (wo.end - wo.start) if wo.start and wo.end else timedelta(hours=8)
                fields.update(start=_iso(moment), end=_iso(moment + length))
        return fields
    if kind == "material_request":
        quantity = next((q for q in ex.quantities if q.value > 0), None)
        action = "transfer" if _has(text, TRANSFER_WORDS) and not _has(text, EXPEDITE_WORDS) else \
            "expedite" if _has(text, EXPEDITE_WORDS) else base.get("action") or "expedite"
        return {**base, "material": ex.material or base.get("material"),
                "quantity": quantity.value if quantity else base.get("quantity"),
                "unit": (quantity.unit if quantity and quantity.unit else None) or base.get("unit") or "pcs",
                "need_by": _iso(moment) if moment else base.get("need_by"), "action": action}
    told = _has(text, TOLD) or bool(base.get("customer_told"))
    return {**base, "customer_order": ex.customer_order or base.get("customer_order"),
            "promised": _iso(moment) if moment else base.get("promised"), "customer_told": told}


REQUIRED = {"reschedule": ("work_order", "start"), "material_request": ("material", "quantity", "need_by"),
            "customer_order_date": ("customer_order", "promised")}
MISSING_NAME = {"start": "when", "need_by": "when", "promised": "when"}


def _missing(kind: str, fields: dict[str, Any]) -> str | None:
    for name in REQUIRED[kind]:
        if fields.get(name) in (None, ""):
            return MISSING_NAME.get(name, name)
    return None

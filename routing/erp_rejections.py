"""A refused ERP transaction settles in its thread: retried, or abandoned with a reason.

A refusal (`record_erp_result`, outcome "rejected") holds the exception's later transactions and
leaves the exception `approved`; the approver role gets the ERP's reason with two buttons,
`erp_retry:<public id>` and `erp_abandon:<public id>` (`routing.lifecycle.erp_buttons`). A press,
in a chat or the console, comes here (`settle`):

1. who may is the lifecycle table's call (`erp_retry` / `erp_abandon`: the approver role, while
   the exception is `approved`), through `routing.workflow.check` like every other action;
2. the outbox changes the row (`erp_adapters.outbox.retry_rejected` queues it again,
   `abandon_rejected` gives it up): routing imports no ERP code, so the runtime hands those two
   in as `RowChanges`;
3. in the same DB transaction `erp_rejection_settled` records the decision on the timeline
   (through `transition`), tells the people who heard of the refusal, takes the buttons off every
   copy of the refusal message (`buttons_update` rows), and, when an abandoned row was the last
   one outstanding, moves the exception on as a posted one would (posted, then closed once its
   machine runs). A retried row that posts does the same through `record_erp_result`.

Abandon needs a reason: a press without one asks for it (`routing.conversation`, state
`awaiting_reason`), and the person's next message is the reason.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime

from sqlmodel import Session, select

from models import ErpTransaction, Notification, OutboxStatus, Person, Plant, PlantException
from routing import messages
from routing.lifecycle import ERP_BUTTONS, Action, erp_buttons
from routing.workflow import (
    Context,
    Refusal,
    WorkflowError,
    _finish_posting,
    _unique,
    check,
    notify,
    person,
    refuse,
    replace_buttons,
    transition,
)

# The row's statuses that still hold the exception at `approved`.
OUTSTANDING = (OutboxStatus.pending.value, OutboxStatus.rejected.value)


@dataclass(frozen=True)
class RowChanges:
    """How the ERP outbox changes a refused row, in the caller's DB transaction
    (`erp_adapters.outbox.retry_rejected` and `abandon_rejected`): each raises ValueError when
    the row cannot take the change."""

    retry: Callable[[Session, int], ErpTransaction]
    abandon: Callable[[Session, int, str], ErpTransaction]


def button_action(button: str) -> tuple[Action, str] | None:
    """`erp_retry:<public id>` -> (Action.erp_retry, public id); None for any other button."""
    name, _, public_id = button.partition(":")
    return (ERP_BUTTONS[name], public_id) if name in ERP_BUTTONS and public_id else None


def transaction(session: Session, plant_id: str, public_id: str) -> ErpTransaction | None:
    """The plant's transaction a button names (by its public id, never the integer key)."""
    return session.exec(select(ErpTransaction).where(
        ErpTransaction.plant_id == plant_id, ErpTransaction.public_id == public_id[:64])).first()


def refusal(ctx: Context, txn: ErpTransaction, action: Action, who: Person | None) -> Refusal | None:
    """Why `who` may not take `action` on `txn` now (the lifecycle table's answer), or None."""
    exc = ctx.session.get(PlantException, txn.exception_id) if txn.exception_id is not None else None
    if exc is None:
        raise WorkflowError(f"ERP transaction {txn.public_id} belongs to no exception")
    return check(ctx, exc, action, who)


def settle(ctx: Context, txn: ErpTransaction, action: Action, who: Person, reason: str, rows: RowChanges,
           reply_channel: str | None = None) -> bool:
    """`who` retries or abandons (with `reason`) the refused `txn`; False when refused or stale,
    and the person is told why. The caller asks for the reason of an abandon before calling."""
    exc = ctx.session.get(PlantException, txn.exception_id) if txn.exception_id is not None else None
    if exc is None:
        notify(ctx, who, "reply", messages.render("erp_unknown", who.language), reply_channel=reply_channel)
        return False
    refused = check(ctx, exc, action, who)
    if refused is not None:
        refuse(ctx, exc, who, refused, reply_channel)
        return False
    if txn.status != OutboxStatus.rejected:
        # Settled already (another approver, an earlier press): the buttons were stale.
        status = {"sent": "posted", "failed": "abandoned"}.get(txn.status, txn.status)
        notify(ctx, who, "reply", messages.render("erp_not_rejected", who.language, code=exc.code, kind=txn.kind,
                                                  status=status), exc=exc, reply_channel=reply_channel)
        return False
    try:
        if action is Action.erp_retry:
            rows.retry(ctx.session, txn.id)  # type: ignore[arg-type]
        else:
            rows.abandon(ctx.session, txn.id, reason)  # type: ignore[arg-type]
    except ValueError as problem:
        notify(ctx, who, "reply", messages.render("erp_retry_refused", who.language, code=exc.code, kind=txn.kind,
                                                  problem=str(problem)), exc=exc, reply_channel=reply_channel)
        return False
    _record(ctx, exc, txn, action, who, reason, reply_channel, tell_actor=False)
    notify(ctx, who, "confirmation", messages.render(f"confirm_{action.value}", who.language, code=exc.code,
                                                     kind=txn.kind, reason=reason or "-"),
           exc=exc, reply_channel=reply_channel)
    return True


def erp_rejection_settled(
    session: Session, txn: ErpTransaction, action: str, person_id: str, reason: str, now: datetime
) -> None:
    """Record `person_id`'s `action` ("retry" or "abandon") on the refused `txn`, whose row the
    outbox has just changed outside a chat (an operator's script): the same record as `settle`,
    under the same permission check (WorkflowError when the table refuses the person)."""
    actions = {"retry": Action.erp_retry, "abandon": Action.erp_abandon}
    if action not in actions:
        raise ValueError(f"unknown action {action!r}; expected one of {', '.join(actions)}")
    exc = session.get(PlantException, txn.exception_id) if txn.exception_id is not None else None
    plant = session.get(Plant, txn.plant_id)
    if exc is None or plant is None:
        return
    ctx = Context(session=session, plant=plant, now=now, cause=f"erp:{txn.id}:{txn.attempts}:{action}")
    who = person(ctx, person_id)
    refused = check(ctx, exc, actions[action], who)
    if who is None or refused is not None:
        raise WorkflowError(f"{person_id!r} may not {action} ERP transaction {txn.public_id} on {exc.code}: "
                            f"{refused.text('en') if refused else 'no such person'}")
    _record(ctx, exc, txn, actions[action], who, reason, None, tell_actor=True)


def _record(ctx: Context, exc: PlantException, txn: ErpTransaction, action: Action, who: Person, reason: str,
            reply_channel: str | None, *, tell_actor: bool) -> None:
    """The decision on the timeline, the buttons taken off, the people told (the actor too unless
    a confirmation answers them), and an exception with nothing left outstanding moved on."""
    transition(ctx, exc, action, who, text=reason, reply_channel=reply_channel, kind=txn.kind,
               transaction=txn.public_id)
    event = "erp_retried" if action is Action.erp_retry else "erp_abandoned"
    told = _withdraw_buttons(ctx, exc, txn, action, who)
    for target in _unique([person(ctx, exc.proposal.get("by")), person(ctx, exc.reporter_id),
                           *(person(ctx, pid) for pid in told), who]):
        if tell_actor or target.id != who.id:
            notify(ctx, target, event, messages.render(event, target.language, code=exc.code, kind=txn.kind,
                                                       name=who.name, reason=reason or "-"), exc=exc)
    if action is Action.erp_abandon and exc.status == "approved":
        ctx.session.flush()
        outstanding = ctx.session.exec(select(ErpTransaction.id).where(
            ErpTransaction.exception_id == exc.id,
            ErpTransaction.status.in_(OUTSTANDING))).first()  # type: ignore[attr-defined]
        if outstanding is None:
            _finish_posting(ctx, exc)


def _withdraw_buttons(ctx: Context, exc: PlantException, txn: ErpTransaction, action: Action,
                      who: Person) -> list[str]:
    """Take Retry and Abandon off every refusal message of `txn` still showing them (a
    `buttons_update` with none left and a status line, as the lifecycle does for its buttons);
    returns the people those messages went to."""
    buttons = set(erp_buttons(txn.public_id))
    rows = ctx.session.exec(select(Notification).where(
        Notification.exception_id == exc.id,
        Notification.kind.in_(("erp_rejected", "buttons_update"))).order_by(Notification.id)).all()  # type: ignore[attr-defined]
    shown = {r.id: r for r in rows if r.kind == "erp_rejected" and buttons & set(r.buttons)}
    for update in rows:
        if update.kind == "buttons_update" and update.updates_id in shown:
            shown.pop(update.updates_id)
    for row in shown.values():
        line = messages.render(f"status_line_{action.value}", row.language, code=exc.code, name=who.name)
        replace_buttons(ctx, row, [], line, action.value)
    return [row.person_id for row in shown.values()]

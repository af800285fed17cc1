"""A rejected ERP transaction settles in its thread: retried, or abandoned.

A rejection holds the exception's later transactions and leaves the exception `approved`. The
outbox changes the row (`erp_adapters.outbox.retry_rejected` queues it again, corrected or
not; `abandon_rejected` gives it up); in the same DB transaction this records the decision on
the exception's timeline, tells the people who heard of the rejection, and, when an abandoned
row was the last one outstanding, moves the exception on as a posted one would (posted, then
closed once its machine runs).
"""

from __future__ import annotations

from datetime import datetime

from sqlmodel import Session, select

from models import ErpTransaction, Plant, PlantException
from routing import messages
from routing.workflow import Context, _finish_posting, _unique, log, notify, person

# action -> timeline event and message
SETTLED = {"retry": "erp_retried", "abandon": "erp_abandoned"}


def erp_rejection_settled(
    session: Session, txn: ErpTransaction, action: str, person_id: str, reason: str, now: datetime
) -> None:
    """Record `person_id`'s `action` ("retry" or "abandon") on the rejected transaction `txn`,
    whose row the outbox has just changed."""
    if action not in SETTLED:
        raise ValueError(f"unknown action {action!r}; expected one of {', '.join(SETTLED)}")
    exc = session.get(PlantException, txn.exception_id) if txn.exception_id is not None else None
    plant = session.get(Plant, txn.plant_id)
    if exc is None or plant is None:
        return
    event = SETTLED[action]
    ctx = Context(session=session, plant=plant, now=now, cause=f"erp:{txn.id}:{txn.attempts}:{event}")
    who = person(ctx, person_id)
    log(ctx, exc, event, reason, person_id, kind=txn.kind, transaction=txn.id)
    name = who.name if who else person_id
    for target in _unique([person(ctx, exc.proposal.get("by")), person(ctx, exc.reporter_id), who]):
        notify(ctx, target, event, messages.render(event, target.language, code=exc.code, kind=txn.kind,
                                                   name=name, reason=reason or "-"), exc=exc)
    if action == "abandon" and exc.status == "approved":
        outstanding = session.exec(select(ErpTransaction.id).where(
            ErpTransaction.exception_id == exc.id,
            ErpTransaction.status.in_(("pending", "rejected")))).first()  # type: ignore[attr-defined]
        if outstanding is None:
            _finish_posting(ctx, exc)

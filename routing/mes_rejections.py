"""A row the MES refused settles from the dashboard: retried, or abandoned with a reason.

The MES outbox (mes_adapters/outbox.py) marks a refused row `rejected` for good and goes on with
the exception's later rows; the timeline says why (`mes_rejected`). Someone then fixes the cause
in the MES and retries the row, or gives it up. Who may is the lifecycle table's call, as for
every other action (`mes_retry` / `mes_abandon`: the exception's approver role, from the approval
on, closed exceptions included: the MES hears of an outcome after it was approved). The outbox
changes the row (`retry_rejected` queues it again under the same idempotency key,
`abandon_rejected` gives it up); routing imports no MES code, so the caller hands those two in.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from sqlmodel import Session

from models import Person, PlantException
from models.mes import MesTransaction
from routing.lifecycle import Action
from routing.workflow import Context, Refusal, check, refuse, transition

ACTIONS = {"retry": Action.mes_retry, "abandon": Action.mes_abandon}


@dataclass(frozen=True)
class RowChanges:
    """How the MES outbox changes a refused row, in the caller's DB transaction; each raises
    ValueError when the row is not refused (any more)."""

    retry: Callable[[Session, int], MesTransaction]
    abandon: Callable[[Session, int, str], MesTransaction]


def settle(ctx: Context, row: MesTransaction, action: Action, who: Person, reason: str,
           rows: RowChanges) -> Refusal | None:
    """`who` retries or abandons (with `reason`) the refused `row`; or the table's refusal, put on
    the timeline and told to the person. ValueError when the row is not refused (any more)."""
    exc = ctx.session.get(PlantException, row.exception_id)
    if exc is None:
        raise ValueError(f"MES transaction {row.id} belongs to no exception")
    refused = check(ctx, exc, action, who)
    if refused is not None:
        refuse(ctx, exc, who, refused)
        return refused
    if action is Action.mes_retry:
        rows.retry(ctx.session, row.id)  # type: ignore[arg-type]
    else:
        rows.abandon(ctx.session, row.id, reason)  # type: ignore[arg-type]
    transition(ctx, exc, action, who, text=reason, kind=row.kind, slot=row.slot, transaction=row.id)
    return None

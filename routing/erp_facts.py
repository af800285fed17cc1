"""Facts of a breakdown the ERP documents carry: when the machine really stopped and ran again,
and who fixed it (so an ERP that wants an operator on its downtime record gets the right one)."""

from __future__ import annotations

from typing import Any

from sqlmodel import Session, select

from models import PlantException, TimelineEvent


def breakdown_facts(session: Session, exc: PlantException) -> dict[str, Any]:
    """`down_at` / `up_at` from the machine's own state signals on the exception's timeline
    (the first stop, and the first run after it), else `down_at` is the exception's opening and
    `up_at` is left out (the ERP adapter then uses the decision's time); `fixed_by` is whoever
    proposed the fix."""
    events = session.exec(
        select(TimelineEvent)
        .where(TimelineEvent.exception_id == exc.id, TimelineEvent.kind == "machine_state")
        .order_by(TimelineEvent.at, TimelineEvent.id)  # type: ignore[arg-type]
    ).all()
    down = next((e.at for e in events if e.data.get("running") is False), None)
    up = next((e.at for e in events if e.data.get("running") is True and (down is None or e.at >= down)), None)
    facts: dict[str, Any] = {"down_at": (down or exc.opened_at).isoformat()}
    if up is not None and up >= (down or exc.opened_at):
        facts["up_at"] = up.isoformat()
    if (exc.proposal or {}).get("by"):
        facts["fixed_by"] = exc.proposal["by"]
    return facts

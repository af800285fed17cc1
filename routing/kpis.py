"""The figures that prove the value: response and resolution times, escalations, coordination cost."""

from __future__ import annotations

from dataclasses import asdict, dataclass
from datetime import datetime, timedelta
from statistics import mean
from typing import Any

from sqlmodel import Session, func, select

from models import Notification, PlantException, TimelineEvent


@dataclass
class Kpis:
    since: datetime
    until: datetime
    opened: int
    closed: int
    open_now: int
    mtta_minutes: float | None  # mean time to acknowledge
    mttr_minutes: float | None  # mean time to repair: breakdowns, opened -> machine running/closed
    mean_resolution_minutes: float | None  # all types, opened -> closed
    escalations: int
    messages_per_exception: float | None  # coordination cost: chat messages sent per exception
    by_type: dict[str, int]

    def to_json(self) -> dict[str, Any]:
        data = asdict(self)
        data["since"], data["until"] = self.since.isoformat(), self.until.isoformat()
        return data


def _minutes(deltas: list[timedelta]) -> float | None:
    return round(mean(d.total_seconds() / 60 for d in deltas), 1) if deltas else None


def compute(session: Session, plant_id: str, since: datetime, until: datetime) -> Kpis:
    rows = session.exec(select(PlantException).where(
        PlantException.plant_id == plant_id, PlantException.opened_at >= since, PlantException.opened_at < until,
    )).all()
    closed = [e for e in rows if e.closed_at]
    ids = [e.id for e in rows]
    escalations = session.exec(select(func.count()).select_from(TimelineEvent).where(
        TimelineEvent.exception_id.in_(ids), TimelineEvent.kind == "escalated")).one() if ids else 0  # type: ignore[union-attr]
    sent = session.exec(select(func.count()).select_from(Notification).where(
        Notification.exception_id.in_(ids))).one() if ids else 0  # type: ignore[union-attr]
    open_now = session.exec(select(func.count()).select_from(PlantException).where(
        PlantException.plant_id == plant_id, PlantException.status != "closed")).one()
    by_type: dict[str, int] = {}
    for e in rows:
        by_type[e.type] = by_type.get(e.type, 0) + 1
    return Kpis(
        since=since, until=until, opened=len(rows), closed=len(closed), open_now=open_now,
        mtta_minutes=_minutes([e.acknowledged_at - e.opened_at for e in rows if e.acknowledged_at]),
        mttr_minutes=_minutes([e.closed_at - e.opened_at for e in closed if e.type == "breakdown" and e.closed_at]),
        mean_resolution_minutes=_minutes([e.closed_at - e.opened_at for e in closed if e.closed_at]),
        escalations=escalations,
        messages_per_exception=round(sent / len(rows), 1) if rows else None,
        by_type=by_type,
    )

"""The four outcomes against the plant's baseline (docs/kpis.md, "Outcomes against the baseline").

The seed promises four results: resolution time falls, schedule adherence rises, ERP data quality
improves, coordination cost falls. A plant starts with its costliest exception types and expands
"as each workflow demonstrates measurable impact", so each outcome is given per exception type
next to the figure the plant had before mfgos (the plant file's `baseline:`, stored on the plant
row), with the change. The current figures are aggregate queries over the same cohort as the
KPIs (routing/kpis.py): the exceptions opened in the period, and what happened to them before
its end.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import and_, case, distinct, func, literal, select
from sqlmodel import Session

from routing.kpis import SKEW, Cohort, T, W, X, adherence, cohort, done_at, elements

# Each outcome: its key in the answer, the baseline's key in the plant file, and whether lower is better.
OUTCOMES = (
    ("resolution_minutes", "mttr_minutes", True),
    ("schedule_adherence", "schedule_adherence", False),
    ("erp_correction_rate", "erp_correction_rate", True),
    ("coordination_per_week", "status_calls_per_week", True),
)
ALL = "*"  # the key of the whole plant's figures while they are gathered


@dataclass
class Outcome:
    """One figure against its baseline; `None` where there is nothing to measure or compare."""

    baseline: float | None
    current: float | None
    change: float | None  # current - baseline
    change_pct: float | None  # the change as a share of the baseline, in percent
    better: bool | None  # the change goes the way the plant wants (less time, calls, corrections; more on time)
    baseline_of: str | None  # "type": the type's own baseline; "plant": the plant's overall one


def _outcome(baseline: float | None, current: float | None, lower_is_better: bool, scope: str | None) -> Outcome:
    if baseline is None or current is None:
        return Outcome(baseline, current, None, None, None, scope if baseline is not None else None)
    change = round(current - baseline, 3)
    pct = round(100 * change / baseline, 1) if baseline else None
    better = None if change == 0 else (change < 0) == lower_is_better
    return Outcome(baseline, current, change, pct, better, scope)


@dataclass
class Outcomes:
    since: datetime
    until: datetime
    baseline: dict[str, Any]  # as the plant file gave it; empty: nothing to compare with
    overall: dict[str, Any]  # {"count", and each outcome}
    by_type: dict[str, dict[str, Any]]

    def to_json(self) -> dict[str, Any]:
        return {"since": self.since.isoformat(), "until": self.until.isoformat(), "baseline": self.baseline or None,
                "overall": self.overall, "by_type": self.by_type}


def compute(session: Session, plant_id: str, baseline: dict[str, Any], since: datetime, until: datetime) -> Outcomes:
    """The four outcomes of the exceptions of `plant_id` opened in [since, until), overall and per
    type (every type that opened one, and every type the baseline names), against `baseline`."""
    found = cohort(session, plant_id, since, until)
    current = _current(session, plant_id, found)
    per_type = baseline.get("by_type") or {}
    types = sorted({t for t in current if t != ALL} | set(per_type))

    def figures(name: str) -> dict[str, Any]:
        mine = current.get(name, {})
        result: dict[str, Any] = {"count": mine.get("count", 0)}
        for key, base_key, lower in OUTCOMES:
            own = per_type.get(name, {}).get(base_key) if name != ALL else None
            base, scope = (own, "type") if own is not None else (baseline.get(base_key), "plant")
            result[key] = asdict(_outcome(base, mine.get(key), lower, scope))
        return result

    return Outcomes(since, until, dict(baseline), figures(ALL), {t: figures(t) for t in types})


def _current(session: Session, plant_id: str, found: Cohort) -> dict[str, dict[str, Any]]:
    """`{type or ALL: {"count", outcome key: value}}`: one grouped query per outcome (and the plant's
    schedule adherence). Every column summed is additive over types (an exception, its ERP rows and
    its timeline have one type), so the plant's row is the sum of the types' rows."""
    c = found.rows.c
    after = found.since - SKEW
    figures: dict[str, dict[str, Any]] = {}

    def by_type_and_all(*sums: Any, source: Any) -> list[Any]:
        grouped = session.execute(select(c.type, *sums).select_from(source).group_by(c.type)).all()
        columns = list(zip(*(row[1:] for row in grouped), strict=True)) or [() for _ in sums]
        whole = tuple(sum(v for v in column if v is not None) if any(v is not None for v in column) else
                      (0 if not grouped else None) for column in columns)
        return [*grouped, (ALL, *whole)]

    # How many, and resolution: opened -> machine running or closed (the KPIs' time to repair, every type).
    for name, count, seconds, resolved in by_type_and_all(func.count(), func.sum(found.repair), func.count(found.repair),
                                                           source=found.rows):
        figures.setdefault(name, {}).update(count=count or 0,
                                            resolution_minutes=_round(seconds / resolved, 60) if resolved else None)

    # Schedule adherence of the work orders the type's exceptions named, due in the period; the whole
    # plant's is the KPI's (every work order due in the period, hit by an exception or not).
    each = elements(found.dialect, c.work_orders)
    hit = select(c.type.label("type"), each.c.value.label("work_order")).select_from(found.rows).join(
        each, literal(True)).distinct().subquery("hit")
    due = (W.c.plant_id == plant_id, W.c.end >= found.since, W.c.end < found.until)
    done = done_at(plant_id, found.until, select(hit.c.work_order))
    rows = session.execute(
        select(hit.c.type, func.count(), func.count(case((done.c.at <= W.c.end, 1))))
        .select_from(hit.join(W, and_(W.c.id == hit.c.work_order, *due)).outerjoin(
            done, done.c.work_order == W.c.id)).group_by(hit.c.type)).all()
    for name, count, on_time in rows:
        figures.setdefault(name, {})["schedule_adherence"] = round(on_time / count, 3) if count else None
    figures.setdefault(ALL, {})["schedule_adherence"] = adherence(session, plant_id, found.since, found.until)

    # ERP data quality: the share of the exceptions' ERP transactions the ERP refused at least once
    # before the period's end (each needed a correction: a retry after a fix, or an abandon).
    # Grouped once and joined: an `IN (subquery)` per transaction would be read per row.
    refused_id = T.c.data["transaction"].as_integer()
    refused = (select(refused_id.label("txn"))
               .where(T.c.exception_id.in_(found.ids), T.c.kind == "erp_rejected", T.c.at >= after,
                      T.c.at < found.until).group_by(refused_id).subquery("refused"))
    txns = (select(X.c.id, X.c.exception_id).where(X.c.exception_id.in_(found.ids), X.c.created_at >= after,
                                                     X.c.created_at < found.until).subquery("txns"))
    source = found.rows.join(txns, txns.c.exception_id == c.id).outerjoin(refused, refused.c.txn == txns.c.id)
    corrected = func.count(distinct(case((refused.c.txn.is_not(None), txns.c.id))))
    for name, total, fixed in by_type_and_all(func.count(distinct(txns.c.id)), corrected, source=source):
        figures.setdefault(name, {})["erp_correction_rate"] = round(fixed / total, 3) if total else None

    # Coordination cost: what people still had to do by hand about the exceptions (each report,
    # acknowledgement, comment, proposal and decision on the timeline), per seven days of the period.
    weeks = (found.until - found.since) / timedelta(days=7)
    touches = found.rows.join(T, and_(T.c.exception_id == c.id, T.c.person_id.is_not(None), T.c.at >= after,
                                      T.c.at < found.until))
    for name, count in by_type_and_all(func.count(T.c.id), source=touches):
        figures.setdefault(name, {})["coordination_per_week"] = round(count / weeks, 1)
    for mine in figures.values():  # a type without a touch had none; a plant without an exception, nothing to measure
        mine["coordination_per_week"] = mine.get("coordination_per_week") or 0.0 if mine.get("count") else None
    return figures


def _round(value: Any, per: float) -> float | None:
    return None if value is None else round(float(value) / per, 1)

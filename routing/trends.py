"""The dashboard's charts (docs/console.md, "Dashboard"): KPIs per plant-local day, and the Pareto
of exception types by count and by downtime.

Both are aggregate queries over the KPIs' cohort (routing/kpis.py), so a day's figure on the chart
is the figure `mfgos kpi` gives for that day. A day is the plant's: its bounds are computed here,
in the plant's zone (a day across a clock change is 23 or 25 hours), and the database sorts each
exception into its day with one CASE, the same SQL on SQLite and PostgreSQL.
"""

from __future__ import annotations

from datetime import date, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy import case, func, literal, select
from sqlmodel import Session

from routing.kpis import Cohort, _minutes, _seconds, cohort, downtime

MAX_DAYS = 92  # a quarter: a chart of more days has bars too thin to read on a phone


def days(since: datetime, until: datetime, timezone: str) -> list[tuple[date, datetime, datetime]]:
    """The plant-local days that [since, until) touches, each with its bounds clipped to the period."""
    zone = ZoneInfo(timezone)
    first, last = since.astimezone(zone).date(), (until - timedelta(microseconds=1)).astimezone(zone).date()
    if (last - first).days + 1 > MAX_DAYS:
        raise ValueError(f"a trend covers at most {MAX_DAYS} days; ask for a shorter period")
    out = []
    for n in range((last - first).days + 1):
        day = first + timedelta(days=n)
        start = datetime.combine(day, datetime.min.time(), tzinfo=zone)
        end = datetime.combine(day + timedelta(days=1), datetime.min.time(), tzinfo=zone)
        out.append((day, max(start, since), min(end, until)))
    return out


def daily(session: Session, plant_id: str, timezone: str, since: datetime, until: datetime) -> list[dict[str, Any]]:
    """Per plant-local day of [since, until): the exceptions opened that day and what became of them
    before `until`: opened, closed, MTTA, MTTR (breakdowns) and downtime in minutes; `null` where
    nothing was measured. Every day is listed, quiet ones too, so a chart's axis has no gaps."""
    spans = days(since, until, timezone)
    found = cohort(session, plant_id, since, until)
    c = found.rows.c
    bucket = case(*[(c.opened_at < end, literal(n)) for n, (_, _, end) in enumerate(spans)], else_=literal(-1))
    rows = session.execute(select(
        bucket, func.count(), func.count(c.closed_at),
        func.avg(case((c.acknowledged_at < found.until, _seconds(found.dialect, c.acknowledged_at, c.opened_at)))),
        func.avg(case((c.type == "breakdown", found.repair))),
        func.sum(downtime(found)),
    ).select_from(found.rows).group_by(bucket)).all()
    by_day = {n: row for n, *row in rows}
    out = []
    for n, (day, _, _) in enumerate(spans):
        opened, closed, mtta, mttr, down = by_day.get(n, (0, 0, None, None, None))
        out.append({"day": day.isoformat(), "opened": opened, "closed": closed, "mtta_minutes": _minutes(mtta),
                    "mttr_minutes": _minutes(mttr), "downtime_minutes": _minutes(down)})
    return out


def pareto(session: Session, plant_id: str, since: datetime, until: datetime) -> dict[str, list[dict[str, Any]]]:
    """Exception types by count and by downtime, largest first, each with its running share of the
    whole (0 to 1): the few types that make most of the trouble, the workflows to design first."""
    found: Cohort = cohort(session, plant_id, since, until)
    c = found.rows.c
    rows = session.execute(select(c.type, func.count(), func.sum(downtime(found)))
                           .select_from(found.rows).group_by(c.type)).all()
    return {"by_count": _ranked([(t, n) for t, n, _ in rows]),
            "by_downtime": _ranked([(t, _minutes(d)) for t, _, d in rows if d])}


def _ranked(pairs: list[tuple[str, Any]]) -> list[dict[str, Any]]:
    pairs = sorted(pairs, key=lambda p: (-p[1], p[0]))
    total = sum(v for _, v in pairs)
    out, running = [], 0.0
    for name, value in pairs:
        running += value
        out.append({"type": name, "value": value, "cumulative_share": round(running / total, 3) if total else None})
    return out


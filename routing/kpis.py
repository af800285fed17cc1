"""The figures that prove the value (docs/kpis.md): response, repair and resolution times,
notification speed, escalations, schedule adherence, ERP latency and data quality, coordination cost.

Every figure is an aggregate query (SQLAlchemy Core) over the exceptions opened in the period,
so a year of history costs the database a scan of an index, not the process a list of rows.
Time differences and JSON arrays are the two things SQLite and PostgreSQL spell differently;
`_seconds`, `_signal_id` and `_at_risk` hold those spellings.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy import (
    ARRAY,
    DateTime,
    Integer,
    bindparam,
    case,
    cast,
    distinct,
    func,
    literal,
    select,
    text,
    union,
)
from sqlalchemy.exc import DBAPIError
from sqlalchemy.sql.elements import ColumnElement
from sqlmodel import Session

from models import (
    ErpTransaction,
    ExceptionStatus,
    Notification,
    PlantException,
    Signal,
    TimelineEvent,
    WorkOrder,
)
from routing import figures
from routing.figures import NOT_MESSAGES, SKEW

log = logging.getLogger(__name__)
E = PlantException.__table__  # type: ignore[attr-defined]
T = TimelineEvent.__table__  # type: ignore[attr-defined]
N = Notification.__table__  # type: ignore[attr-defined]
S = Signal.__table__  # type: ignore[attr-defined]
W = WorkOrder.__table__  # type: ignore[attr-defined]
X = ErpTransaction.__table__  # type: ignore[attr-defined]

# The statuses an MES or ERP reports for a finished order (signals/work_orders.py STATUS_WORDS,
# those that map to `done`; a test keeps the two in step: routing may not import signals).
DONE_WORDS = ("done", "completed", "complete", "finished", "closed", "to_close")
OPEN = tuple(s.value for s in ExceptionStatus if s is not ExceptionStatus.closed)  # by index, unlike `!= closed`
NO_AREA = "-"  # the by_area name of exceptions without an area


@dataclass
class Group:
    """One exception type or area: how many, the downtime they caused, how fast they were repaired."""

    count: int
    downtime_minutes: float | None  # breakdowns: opened -> machine running, closed or the period's end
    mttr_minutes: float | None  # opened -> machine running or closed, over those repaired in the period


@dataclass
class Kpis:
    since: datetime
    until: datetime
    opened: int
    closed: int
    open_now: int
    mtta_minutes: float | None
    mttr_minutes: float | None
    mean_resolution_minutes: float | None
    notify_p95_seconds: float | None
    escalations: int  # escalation events; `escalation_rate` is the share of exceptions escalated
    escalation_rate: float | None
    schedule_adherence: float | None
    customer_orders_at_risk: int | None
    erp_latency_minutes: float | None
    erp_rejected: int | None
    messages_per_exception: float | None
    people_per_exception: float | None
    by_type: dict[str, Group] = field(default_factory=dict)
    by_area: dict[str, Group] = field(default_factory=dict)

    def to_json(self) -> dict[str, Any]:
        data = asdict(self)
        data["since"], data["until"] = self.since.isoformat(), self.until.isoformat()
        return data


def _seconds(dialect: str, later: Any, earlier: Any) -> ColumnElement[Any]:
    """`later - earlier` in seconds (SQLite keeps datetimes as text: julianday reads them)."""
    if dialect == "sqlite":
        return (func.julianday(later) - func.julianday(earlier)) * 86400.0
    return func.extract("epoch", later - earlier)


def _signal_id(dialect: str, key: Any) -> ColumnElement[Any]:
    """The signal id in a notification's dedupe key (`signal:ID:kind:person:exception`)."""
    if dialect == "sqlite":
        rest = func.substr(key, 8)
        return cast(func.substr(rest, 1, func.instr(rest, ":") - 1), Integer)
    return cast(func.split_part(key, ":", 2), Integer)


def _at_risk(dialect: str, cohort: Any) -> Any:
    """Distinct customer orders named at risk by the cohort's exceptions (a JSON list each)."""
    each = elements(dialect, cohort.c.customer_orders_at_risk)
    return select(func.count(distinct(each.c.value))).select_from(cohort).join(each, literal(True))


def _minutes(value: Any) -> float | None:
    return None if value is None else round(float(value) / 60, 1)


def _ratio(part: Any, whole: Any, digits: int = 3) -> float | None:
    return round(float(part or 0) / whole, digits) if whole else None


@dataclass(frozen=True)
class Cohort:
    """The exceptions opened in a period, one row each with what the figures need (a subquery), and
    the SQL of their time to repair: shared by the figures here, the outcomes and the trends."""

    rows: Any  # subquery: id, type, area_id, opened_at, acknowledged_at, approved_at, posted_at,
    # customer_orders_at_risk, work_orders, closed_at (before `until`), running_at
    repair: Any  # seconds from opening to the machine running or the close, whichever came first
    ids: Any  # select of the ids: for `IN (...)` on the timeline, outbox and ERP tables
    dialect: str
    since: datetime
    until: datetime


def cohort(session: Session, plant_id: str, since: datetime, until: datetime,
           exception_type: str | None = None) -> Cohort:
    """The exceptions of `plant_id` (of `exception_type` only, if given) opened in [since, until),
    with what happened to them before `until`."""
    dialect = session.get_bind().dialect.name
    in_period: tuple[Any, ...] = (E.c.plant_id == plant_id, E.c.opened_at >= since, E.c.opened_at < until)
    if exception_type:
        in_period += (E.c.type == exception_type,)
    # What happens to an exception happens after it opened: bounding the timeline, outbox and ERP
    # rows by time too lets the database read the period's rows by index, not every row it has.
    after = since - SKEW
    # The first "machine running" on each timeline: the end of a repair if it came before the close.
    # Grouped once and joined (a correlated subquery would run per exception, and per use).
    running = (select(T.c.exception_id, func.min(T.c.at).label("at"))
               .where(T.c.exception_id.in_(select(E.c.id).where(*in_period)), T.c.kind == "machine_state",
                      T.c.data["running"].as_boolean().is_(True), T.c.at >= after, T.c.at < until)
               .group_by(T.c.exception_id).subquery("running"))
    closed_in = case((E.c.closed_at < until, E.c.closed_at))
    rows = select(
        E.c.id, E.c.type, E.c.area_id, E.c.opened_at, E.c.acknowledged_at, E.c.approved_at, E.c.posted_at,
        E.c.customer_orders_at_risk, E.c.work_orders, closed_in.label("closed_at"), running.c.at.label("running_at"),
    ).select_from(E.outerjoin(running, running.c.exception_id == E.c.id)).where(*in_period).subquery("cohort")
    return Cohort(rows=rows, repair=_repair(dialect, rows.c), ids=select(E.c.id).where(*in_period),
                  dialect=dialect, since=since, until=until)


def _repair(dialect: str, c: Any) -> Any:
    """Seconds from opening to the machine running again or the close, whichever came first."""
    return _seconds(dialect, figures.repaired_at(c), c.opened_at)


def compute(session: Session, plant_id: str, since: datetime, until: datetime) -> Kpis:
    """The figures for exceptions opened in [since, until) of one plant; see docs/kpis.md. A period
    that nothing happened after (one ending now) reads each exception's kept figures on
    PostgreSQL (routing/figures.py); any other is computed from the raw rows."""
    dialect = session.get_bind().dialect.name
    if dialect == "postgresql" and figures.settled(session, plant_id, until):
        try:
            figures.refresh(session, plant_id)
        except DBAPIError as error:  # a read-only standby: the raw rows still answer
            log.warning("KPIs from the raw rows: the kept figures could not be brought up to date (%s)",
                        str(error.orig).splitlines()[0] if error.orig else error)
        else:
            return _from_figures(session, plant_id, since, until)
    return _from_rows(session, plant_id, since, until)


def _open_now(session: Session, plant_id: str) -> int:
    return session.execute(select(func.count()).select_from(E).where(E.c.plant_id == plant_id,
                                                                     E.c.status.in_(OPEN))).scalar()


def _from_figures(session: Session, plant_id: str, since: datetime, until: datetime) -> Kpis:
    """The same figures from the kept sums: whole days from the day rows, the edges of the period
    from the exceptions' figures, totals, types and areas as grouping sets of one statement. In a
    settled period every moment is before its end, so the sums need no cut-off but the downtime
    of breakdowns still down, which runs to the period's end."""
    rows_in = figures.period_rows(plant_id, since, until)
    p = rows_in.c
    end = until.timestamp()

    def mean(total: Any, count: Any) -> Any:
        return func.sum(total) / func.nullif(func.sum(count), 0)

    downtime = case((func.sum(p.breakdowns) > 0, func.sum(p.breakdown_repair_sum)
                     + func.sum(p.unrepaired_breakdowns) * end - func.sum(p.unrepaired_opened_sum)))
    rows = session.execute(select(
        func.grouping(p.type, p.area_id), p.type, p.area_id, func.sum(p.opened), func.sum(p.closed),
        mean(p.ack_sum, p.ack_n), mean(p.breakdown_repair_sum, p.breakdown_repair_n),
        mean(p.resolution_sum, p.resolution_n), mean(p.erp_latency_sum, p.erp_latency_n),
        func.sum(p.escalations), func.sum(p.escalated), func.sum(p.rejected), func.sum(p.erp_rows),
        func.sum(p.messages), func.sum(p.people), func.sum(p.notified), downtime, mean(p.repair_sum, p.repair_n),
    ).group_by(func.grouping_sets(text("()"), p.type, p.area_id))).all()
    totals = next((row for row in rows if row[0] == 3), None)  # grouped by neither: the whole period
    (opened, closed, mtta, mttr, resolution, erp_latency, escalations, escalated, rejected, erp_rows, messages,
     people, notified) = ((0, 0) + (None,) * 4 + (0,) * 7) if totals is None or not totals[3] else totals[3:16]

    def grouped(flag: int, name: int) -> dict[str, Group]:
        return {row[name]: Group(count=int(row[3]), downtime_minutes=_minutes(row[-2]),
                                 mttr_minutes=_minutes(row[-1]))
                for row in sorted((r for r in rows if r[0] == flag), key=lambda r: r[name])}

    opened = int(opened)
    return Kpis(
        since=since, until=until, opened=opened, closed=int(closed), open_now=_open_now(session, plant_id),
        mtta_minutes=_minutes(mtta), mttr_minutes=_minutes(mttr), mean_resolution_minutes=_minutes(resolution),
        notify_p95_seconds=figures.notify_p95(session, plant_id, since, until, int(notified)),
        escalations=int(escalations), escalation_rate=_ratio(escalated, opened),
        schedule_adherence=adherence(session, plant_id, since, until),
        customer_orders_at_risk=session.execute(figures.at_risk(plant_id, since, until)).scalar() if opened else None,
        erp_latency_minutes=_minutes(erp_latency),
        erp_rejected=int(rejected) if erp_rows else None,
        messages_per_exception=_ratio(messages, opened, 2), people_per_exception=_ratio(people, opened, 2),
        by_type=grouped(1, 1), by_area=grouped(2, 2),
    )


def _from_rows(session: Session, plant_id: str, since: datetime, until: datetime) -> Kpis:
    """The figures from the period's raw rows (any period, any database)."""

    def run(query: Any) -> Any:
        return session.execute(query)

    found = cohort(session, plant_id, since, until)
    dialect, c, repair, ids = found.dialect, found.rows.c, found.repair, found.ids
    after = since - SKEW
    breakdown = c.type == "breakdown"

    row = run(select(
        func.count(),
        func.count(c.closed_at),
        func.avg(case((c.acknowledged_at < until, _seconds(dialect, c.acknowledged_at, c.opened_at)))),
        func.avg(case((breakdown, repair))),
        func.avg(_seconds(dialect, c.closed_at, c.opened_at)),
        func.avg(case((c.posted_at < until, _seconds(dialect, c.posted_at, c.approved_at)))),
    ).select_from(found.rows)).one()
    opened, closed, mtta, mttr, resolution, erp_latency = row

    events = run(select(
        func.count(case((T.c.kind == "escalated", 1))),
        func.count(distinct(case((T.c.kind == "escalated", T.c.exception_id)))),
        func.count(case((T.c.kind == "erp_rejected", 1))),
    ).where(T.c.exception_id.in_(ids), T.c.at >= after, T.c.at < until)).one()
    escalations, escalated, rejected = events
    erp_rows = run(select(func.count()).select_from(X).where(
        X.c.exception_id.in_(ids), X.c.created_at >= after, X.c.created_at < until)).scalar()

    messages = run(select(func.count()).select_from(N).where(
        N.c.exception_id.in_(ids), N.c.kind.not_in(NOT_MESSAGES), N.c.created_at >= after,
        N.c.created_at < until)).scalar()
    involved = union(
        select(N.c.exception_id, N.c.person_id).where(N.c.exception_id.in_(ids), N.c.kind.not_in(NOT_MESSAGES),
                                                       N.c.created_at >= after, N.c.created_at < until),
        select(T.c.exception_id, T.c.person_id).where(T.c.exception_id.in_(ids), T.c.person_id.is_not(None),
                                                       T.c.at >= after, T.c.at < until),
    ).subquery()
    people = run(select(func.count()).select_from(involved)).scalar()

    return Kpis(
        since=since, until=until, opened=opened, closed=closed, open_now=_open_now(session, plant_id),
        mtta_minutes=_minutes(mtta), mttr_minutes=_minutes(mttr), mean_resolution_minutes=_minutes(resolution),
        notify_p95_seconds=_notify_p95(session, dialect, ids, after, until),
        escalations=escalations, escalation_rate=_ratio(escalated, opened),
        schedule_adherence=adherence(session, plant_id, since, until),
        customer_orders_at_risk=run(_at_risk(dialect, found.rows)).scalar() if opened else None,
        erp_latency_minutes=_minutes(erp_latency),
        erp_rejected=rejected if erp_rows else None,
        messages_per_exception=_ratio(messages, opened, 2), people_per_exception=_ratio(people, opened, 2),
        by_type=groups(session, found, c.type),
        by_area=groups(session, found, func.coalesce(c.area_id, NO_AREA)),
    )


def trend(session: Session, plant_id: str, edges: Sequence[datetime], exception_type: str | None = None) -> list[Group]:
    """One `Group` per slot [edges[i], edges[i+1]) of the exceptions opened in it (of `exception_type`
    only, if given): how many, the downtime their breakdowns caused, their MTTR. One grouped query:
    the slot of each exception is found among the edges in SQL (`width_bucket` on PostgreSQL, a
    CASE on SQLite), so a year of days costs one scan of the period's exceptions."""
    if len(edges) < 2:
        return []
    found = cohort(session, plant_id, edges[0], edges[-1], exception_type)
    opened_at = found.rows.c.opened_at
    last = len(edges) - 2
    inner = list(edges[1:-1])
    if not last:
        slot: Any = literal(0)
    elif found.dialect == "postgresql":
        # width_bucket over the inner edges: a binary search per exception (0 before the first edge, i from
        # edge i on), where a CASE would test every edge in turn: a year's 366 slots cost what 7 do.
        slot = func.width_bucket(opened_at, cast(bindparam("edges", inner, type_=ARRAY(DateTime(timezone=True))),
                                                          ARRAY(DateTime(timezone=True))))
    else:
        slot = case(*[(opened_at < edge, i) for i, edge in enumerate(inner)], else_=last)
    per_slot = groups(session, found, slot)
    return [per_slot.get(i) or Group(count=0, downtime_minutes=None, mttr_minutes=None) for i in range(last + 1)]


def downtime(found: Cohort) -> Any:
    """Seconds a breakdown kept its machine down: to running or closed, else to the period's end; null otherwise."""
    c = found.rows.c
    return case((c.type == "breakdown", func.coalesce(
        found.repair, _seconds(found.dialect, literal(found.until, E.c.opened_at.type), c.opened_at))))


def groups(session: Session, found: Cohort, name: Any) -> dict[str, Group]:
    """`{name: Group}` of the cohort grouped by `name`: a breakdown not yet repaired is down until the period's end."""
    rows = session.execute(select(name, func.count(), func.sum(downtime(found)), func.avg(found.repair))
                           .select_from(found.rows).group_by(name).order_by(name)).all()
    return {key: Group(count=count, downtime_minutes=_minutes(downtime), mttr_minutes=_minutes(mttr))
            for key, count, downtime, mttr in rows}


def _notify_p95(session: Session, dialect: str, ids: Any, after: datetime, until: datetime) -> float | None:
    """95th percentile (nearest rank) over exceptions of: the reporting event's arrival (its
    signal's `received_at`) -> the last stakeholder's alert queued. Portable: count, then one row at its rank."""
    alerts = N.alias("alerts")
    per = (select(_seconds(dialect, func.max(alerts.c.created_at), func.min(S.c.received_at)).label("seconds"))
           .select_from(alerts.join(S, S.c.id == _signal_id(dialect, alerts.c.dedupe_key)))
           .where(alerts.c.exception_id.in_(ids), alerts.c.kind == "alert", alerts.c.created_at >= after,
                  alerts.c.created_at < until,
                  alerts.c.dedupe_key.like("signal:%"))
           .group_by(alerts.c.exception_id)).subquery()
    count = session.execute(select(func.count()).select_from(per)).scalar() or 0
    if not count:
        return None
    rank = -(-95 * count // 100)  # ceil(0.95 n)
    value = session.execute(select(per.c.seconds).order_by(per.c.seconds).offset(rank - 1).limit(1)).scalar()
    return round(max(0.0, float(value)), 1)


def done_at(plant_id: str, until: datetime, orders: Any) -> Any:
    """When each of `orders` (a select of work-order ids) was first reported done by the MES or ERP
    before `until`: a subquery (work_order, at), grouped once and then joined (no per-order look-up)."""
    status = func.lower(func.replace(func.replace(S.c.payload["status"].as_string(), "-", "_"), " ", "_"))
    order = S.c.payload["work_order"].as_string()
    return (select(order.label("work_order"), func.min(S.c.received_at).label("at"))
            # The kind as a literal in the SQL, so PostgreSQL uses the partial index of work-order signals.
            .where(S.c.plant_id == plant_id, S.c.kind == bindparam("kind", "work_order", literal_execute=True),
                   S.c.error.is_(None),
                   S.c.processed_at.is_not(None), S.c.received_at < until, status.in_(DONE_WORDS),
                   order.in_(orders))
            .group_by(order).subquery("done_at"))


def adherence(session: Session, plant_id: str, since: datetime, until: datetime) -> float | None:
    """Work orders due in the period (their `end`) that the MES or ERP reported done by then, over those due."""
    is_due = (W.c.plant_id == plant_id, W.c.end >= since, W.c.end < until)
    done = done_at(plant_id, until, select(W.c.id).where(*is_due))
    due, on_time = session.execute(
        select(func.count(), func.count(case((done.c.at <= W.c.end, 1))))
        .select_from(W.outerjoin(done, done.c.work_order == W.c.id)).where(*is_due)).one()
    return _ratio(on_time, due)


def elements(dialect: str, column: Any) -> Any:
    """The texts of a JSON list column, as a table-valued function with one `value` column (join it on true)."""
    if dialect == "sqlite":
        return func.json_each(column).table_valued("value")
    return func.json_array_elements_text(column).table_valued("value")


_SPAN = re.compile(r"^(?:(\d{1,5})d)?(?:(\d{1,6})h)?(?:(\d{1,7})m)?$")


def moment(text: str, now: datetime, what: str) -> datetime:
    """`text` as a moment: ISO 8601 (without an offset it is UTC) or a span back from `now` (`7d`, `24h`, `1d12h`)."""
    text = text.strip()
    span = _SPAN.match(text)
    if span and any(span.groups()):
        days, hours, minutes = (int(g or 0) for g in span.groups())
        return now - timedelta(days=days, hours=hours, minutes=minutes)
    try:
        at = datetime.fromisoformat(text)
    except ValueError:
        raise ValueError(f"{what}: give an ISO date or time (2026-11-23, 2026-11-23T06:00+05:30) "
                         f"or a span back from now (7d, 24h, 90m), not {text[:40]!r}") from None
    return at if at.tzinfo else at.replace(tzinfo=UTC)


def period(since: str | None, until: str | None, now: datetime, default: str = "7d") -> tuple[datetime, datetime]:
    """The period [since, until) a caller asked for; the last seven days to now by default."""
    end = moment(until, now, "until") if until else now
    start = moment(since or default, now, "since")
    if start >= end:
        raise ValueError(f"since ({start.isoformat()}) must be before until ({end.isoformat()})")
    return start, end

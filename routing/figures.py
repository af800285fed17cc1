"""Each exception's KPI figures, kept up to date so that a year's KPIs answer in milliseconds.

`routing/kpis.py` defines the figures over the raw rows: for a year of a busy plant that is a
scan of a million timeline events and half a million notifications per query. Here the same
definitions are computed once per exception into `exception_figures` (models/figures.py) and
brought up to date on demand: the exceptions that got an event (timeline, notification, ERP
row) since the plant's mark, or opened since, are computed again. The mark steps back `SKEW`
before each refresh, so an event stamped by a replica whose clock is a little behind, or that
committed a moment late, is still seen.

The figures have no end: they count every event an exception has. They equal a period's figures
only when nothing in the store happened at or after the period's end (`settled`): a period that
ends now, which is what people ask for ("this week", "last 365 days"). A period in the past is
computed from the raw rows, as before.

PostgreSQL only: the refresh runs in its own transaction under an advisory lock per plant, which
SQLite (one writer, and small stores) neither needs nor allows beside a caller's open transaction.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy import (
    Integer,
    and_,
    bindparam,
    case,
    cast,
    delete,
    func,
    literal,
    or_,
    select,
    union,
    union_all,
)
from sqlalchemy.dialects.postgresql import insert
from sqlmodel import Session

from models import (
    ErpTransaction,
    ExceptionFigures,
    FigureDay,
    FigureOrder,
    FigureOrderLast,
    FiguresMark,
    Notification,
    PlantException,
    Signal,
    TimelineEvent,
)

E = PlantException.__table__  # type: ignore[attr-defined]
T = TimelineEvent.__table__  # type: ignore[attr-defined]
N = Notification.__table__  # type: ignore[attr-defined]
S = Signal.__table__  # type: ignore[attr-defined]
X = ErpTransaction.__table__  # type: ignore[attr-defined]
F = ExceptionFigures.__table__  # type: ignore[attr-defined]
O = FigureOrder.__table__  # type: ignore[attr-defined]  # noqa: E741
LAST = FigureOrderLast.__table__  # type: ignore[attr-defined]
MARK = FiguresMark.__table__  # type: ignore[attr-defined]
D = FigureDay.__table__  # type: ignore[attr-defined]
NO_AREA = "-"  # the by_area name of exceptions without an area

# Internal rows of the notification outbox, not messages to a person: edits of earlier buttons.
NOT_MESSAGES = ("buttons_update",)
# Replicas' clocks may differ a little, and a transaction may commit a moment after its rows' time.
SKEW = timedelta(minutes=5)
CHUNK = 2000  # exceptions computed per statement: bounded memory, no huge IN lists
LOCK = 0x6D66_6673  # "mffs": the advisory lock class of a plant's figures refresh


def settled(session: Session, plant_id: str, until: datetime) -> bool:
    """Nothing was stored at or after `until`: the figures equal those of a period ending then.
    Four index look-ups (the plant's newest exception, and the newest event, message and ERP row)."""
    latest = _latest(session, plant_id)
    return latest is None or latest < until


def _latest(connection: Any, plant_id: str) -> datetime | None:
    moments = [connection.execute(select(func.max(E.c.opened_at)).where(E.c.plant_id == plant_id)).scalar(),
               *(connection.execute(select(func.max(column))).scalar()
                 for column in (T.c.at, N.c.created_at, X.c.created_at))]
    return max((at for at in moments if at is not None), default=None)


def refresh(session: Session, plant_id: str) -> int:
    """Bring the plant's figures up to date, in a transaction of its own (the caller's may be
    read-only or long); returns how many exceptions were computed again."""
    engine = session.get_bind()
    with engine.begin() as connection:
        connection.execute(select(func.pg_advisory_xact_lock(LOCK, func.hashtext(plant_id))))
        mark = connection.execute(select(MARK.c.done_until).where(MARK.c.plant_id == plant_id)).scalar()
        latest = _latest(connection, plant_id)
        if latest is None or (mark is not None and latest < mark - SKEW):
            return 0
        ids = sorted(connection.execute(_touched(plant_id, None if mark is None else mark - SKEW)).scalars())
        days: set[datetime] = set()
        for start in range(0, len(ids), CHUNK):
            days |= _compute(connection, plant_id, ids[start:start + CHUNK])
        _sum_days(connection, plant_id, sorted(days))
        done = latest if mark is None else max(mark, latest)
        connection.execute(insert(MARK).values(plant_id=plant_id, done_until=done)
                           .on_conflict_do_update(index_elements=[MARK.c.plant_id], set_={"done_until": done}))
        return len(ids)


def _touched(plant_id: str, since: datetime | None) -> Any:
    """Ids of the plant's exceptions that opened or got an event at or after `since` (all of them without)."""
    mine = select(E.c.id).where(E.c.plant_id == plant_id)
    if since is None:
        return mine
    touched = union(
        select(E.c.id.label("id")).where(E.c.opened_at >= since),
        select(T.c.exception_id).where(T.c.at >= since),
        select(N.c.exception_id).where(N.c.created_at >= since, N.c.exception_id.is_not(None)),
        select(X.c.exception_id).where(X.c.created_at >= since, X.c.exception_id.is_not(None)),
    ).subquery()
    return select(touched.c.id).where(touched.c.id.in_(mine))


def _compute(connection: Any, plant_id: str, ids: list[int]) -> set[datetime]:
    """The figures of `ids`, replaced in one go (the same definitions as routing/kpis.py, with no
    end); returns the days they opened on, whose sums change with them."""
    chosen = bindparam("ids", ids, expanding=True)
    running = (select(T.c.exception_id.label("id"), func.min(T.c.at).label("at"))
               .where(T.c.exception_id.in_(chosen), T.c.kind == "machine_state",
                      T.c.data["running"].as_boolean().is_(True))
               .group_by(T.c.exception_id).subquery())
    events = (select(T.c.exception_id.label("id"),
                     func.count(case((T.c.kind == "escalated", 1))).label("escalations"),
                     func.count(case((T.c.kind == "erp_rejected", 1))).label("rejected"))
              .where(T.c.exception_id.in_(chosen), T.c.kind.in_(("escalated", "erp_rejected")))
              .group_by(T.c.exception_id).subquery())
    erp = (select(X.c.exception_id.label("id"), func.count().label("n"))
           .where(X.c.exception_id.in_(chosen)).group_by(X.c.exception_id).subquery())
    messages = (select(N.c.exception_id.label("id"), func.count().label("n"))
                .where(N.c.exception_id.in_(chosen), N.c.kind.not_in(NOT_MESSAGES))
                .group_by(N.c.exception_id).subquery())
    pairs = union(
        select(N.c.exception_id.label("id"), N.c.person_id.label("person"))
        .where(N.c.exception_id.in_(chosen), N.c.kind.not_in(NOT_MESSAGES)),
        select(T.c.exception_id, T.c.person_id).where(T.c.exception_id.in_(chosen), T.c.person_id.is_not(None)),
    ).subquery()
    people = select(pairs.c.id, func.count().label("n")).group_by(pairs.c.id).subquery()
    alerts = N.alias("alerts")
    signal_id = cast(func.split_part(alerts.c.dedupe_key, ":", 2), Integer)  # `signal:ID:kind:person:exception`
    notify = (select(alerts.c.exception_id.label("id"),
                     func.extract("epoch", func.max(alerts.c.created_at) - func.min(S.c.received_at)).label("s"))
              .select_from(alerts.join(S, S.c.id == signal_id))
              .where(alerts.c.exception_id.in_(chosen), alerts.c.kind == "alert",
                     alerts.c.dedupe_key.like("signal:%"))
              .group_by(alerts.c.exception_id).subquery())
    rows = (select(E.c.id, E.c.plant_id, E.c.type, E.c.area_id, E.c.opened_at, E.c.acknowledged_at,
                   running.c.at, E.c.approved_at, E.c.posted_at, E.c.closed_at,
                   func.coalesce(events.c.escalations, 0), func.coalesce(events.c.rejected, 0),
                   func.coalesce(erp.c.n, 0), func.coalesce(messages.c.n, 0), func.coalesce(people.c.n, 0),
                   notify.c.s)
            .select_from(E.outerjoin(running, running.c.id == E.c.id).outerjoin(events, events.c.id == E.c.id)
                         .outerjoin(erp, erp.c.id == E.c.id).outerjoin(messages, messages.c.id == E.c.id)
                         .outerjoin(people, people.c.id == E.c.id).outerjoin(notify, notify.c.id == E.c.id))
            .where(E.c.id.in_(chosen)))
    orders = func.json_array_elements_text(E.c.customer_orders_at_risk).table_valued("value")
    at_risk = (select(E.c.id, orders.c.value, E.c.plant_id, E.c.opened_at).distinct()
               .select_from(E).join(orders, literal(True)).where(E.c.id.in_(chosen)))
    connection.execute(delete(F).where(F.c.exception_id.in_(chosen)))
    named = set(connection.execute(select(O.c.customer_order).where(O.c.exception_id.in_(chosen))).scalars())
    connection.execute(delete(O).where(O.c.exception_id.in_(chosen)))
    connection.execute(F.insert().from_select(
        ["exception_id", "plant_id", "type", "area_id", "opened_at", "acknowledged_at", "running_at", "approved_at",
         "posted_at", "closed_at", "escalations", "rejected", "erp_rows", "messages", "people", "notify_seconds"],
        rows))
    connection.execute(O.insert().from_select(["exception_id", "customer_order", "plant_id", "opened_at"], at_risk))
    named |= set(connection.execute(select(O.c.customer_order).where(O.c.exception_id.in_(chosen))).scalars())
    _last_named(connection, plant_id, sorted(named))
    return set(connection.execute(select(DAY).distinct().where(F.c.exception_id.in_(chosen))).scalars())


DAY = func.date_trunc("day", F.c.opened_at, "UTC")  # the UTC day an exception opened on
EPOCH = func.extract("epoch", F.c.opened_at)


def repaired_at(c: Any) -> Any:
    """When an exception's repair ended: the machine running again or the close, whichever came
    first (the KPIs' definition, docs/kpis.md); `c` has `running_at` and `closed_at`."""
    return case((c.running_at.is_(None), c.closed_at), (c.closed_at.is_(None), c.running_at),
                (c.running_at < c.closed_at, c.running_at), else_=c.closed_at)


def _seconds(later: Any, earlier: Any) -> Any:
    return func.extract("epoch", later - earlier)


def sums(where: Any, *keys: Any) -> Any:
    """The FigureDay columns summed over the exception figures `where` selects, grouped by `keys`
    then type and area: what a day row holds, and what a partial day at a period's edge adds."""
    repaired = repaired_at(F.c)
    repair = _seconds(repaired, F.c.opened_at)
    breakdown = F.c.type == "breakdown"
    area = func.coalesce(F.c.area_id, NO_AREA)
    unrepaired = and_(breakdown, repaired.is_(None))
    ack = _seconds(F.c.acknowledged_at, F.c.opened_at)
    resolution = _seconds(F.c.closed_at, F.c.opened_at)
    erp = _seconds(F.c.posted_at, F.c.approved_at)
    zero = literal(0.0)
    columns = {
        "opened": func.count(), "closed": func.count(F.c.closed_at),
        "ack_sum": func.coalesce(func.sum(ack), zero), "ack_n": func.count(ack),
        "breakdowns": func.count(case((breakdown, 1))),
        "breakdown_repair_sum": func.coalesce(func.sum(case((breakdown, repair))), zero),
        "breakdown_repair_n": func.count(case((breakdown, repair))),
        "resolution_sum": func.coalesce(func.sum(resolution), zero), "resolution_n": func.count(resolution),
        "erp_latency_sum": func.coalesce(func.sum(erp), zero), "erp_latency_n": func.count(erp),
        "repair_sum": func.coalesce(func.sum(repair), zero), "repair_n": func.count(repair),
        "unrepaired_breakdowns": func.count(case((unrepaired, 1))),
        "unrepaired_opened_sum": func.coalesce(func.sum(case((unrepaired, EPOCH))), zero),
        "escalations": func.sum(F.c.escalations), "escalated": func.count(case((F.c.escalations > 0, 1))),
        "rejected": func.sum(F.c.rejected), "erp_rows": func.sum(F.c.erp_rows),
        "messages": func.sum(F.c.messages), "people": func.sum(F.c.people),
        "notified": func.count(F.c.notify_seconds),
    }
    return (select(*keys, F.c.type.label("type"), area.label("area_id"),
                   *(value.label(name) for name, value in columns.items()))
            .where(where).group_by(*keys, F.c.type, area))


def _sum_days(connection: Any, plant_id: str, days: list[datetime]) -> None:
    """The day rows of `days` summed again from their exceptions' figures."""
    if not days:
        return
    connection.execute(delete(D).where(D.c.plant_id == plant_id, D.c.day.in_(days)))
    # Each day as a range of openings, so the index on (plant, opened) finds its exceptions.
    on_days = or_(*(and_(F.c.opened_at >= day, F.c.opened_at < day + timedelta(days=1)) for day in days))
    rows = sums(and_(F.c.plant_id == plant_id, on_days), literal(plant_id).label("plant_id"), DAY.label("day"))
    connection.execute(D.insert().from_select([c.name for c in rows.selected_columns], rows))


def period_rows(plant_id: str, since: datetime, until: datetime) -> Any:
    """The period's sums per type and area: whole UTC days from the day rows, the partial days at
    either edge from the exceptions' own figures (at most two days of them)."""
    first = _day_after(since)
    last = until.astimezone(UTC).replace(hour=0, minute=0, second=0, microsecond=0)
    mine = F.c.plant_id == plant_id
    if first >= last:  # no whole day inside: the exceptions themselves
        return sums(and_(mine, F.c.opened_at >= since, F.c.opened_at < until)).subquery("period")
    names = [c.name for c in D.c if c.name not in ("plant_id", "day")]
    days = select(*(D.c[name] for name in names)).where(D.c.plant_id == plant_id, D.c.day >= first, D.c.day < last)
    before = sums(and_(mine, F.c.opened_at >= since, F.c.opened_at < first))
    after = sums(and_(mine, F.c.opened_at >= last, F.c.opened_at < until))
    return union_all(days, before, after).subquery("period")


def _day_after(moment: datetime) -> datetime:
    """The first UTC midnight at or after `moment`."""
    day = moment.astimezone(UTC).replace(hour=0, minute=0, second=0, microsecond=0)
    return day if day == moment else day + timedelta(days=1)


def notify_p95(session: Session, plant_id: str, since: datetime, until: datetime, count: int) -> float | None:
    """Nearest-rank 95th percentile of the period's notification times: the slowest 5 % walked
    down an index, not the whole period sorted."""
    if not count:
        return None
    rank = -(-95 * count // 100)
    value = session.execute(select(F.c.notify_seconds).where(
        F.c.plant_id == plant_id, F.c.notify_seconds.is_not(None), F.c.opened_at >= since, F.c.opened_at < until,
    ).order_by(F.c.notify_seconds.desc()).offset(count - rank).limit(1)).scalar()
    return round(max(0.0, float(value)), 1)


def _last_named(connection: Any, plant_id: str, orders: list[str]) -> None:
    """When each of `orders` was last named at risk in the plant, from what its exceptions name now."""
    if not orders:
        return
    chosen = bindparam("orders", orders, expanding=True)
    connection.execute(delete(LAST).where(LAST.c.plant_id == plant_id, LAST.c.customer_order.in_(chosen)))
    connection.execute(LAST.insert().from_select(
        ["plant_id", "customer_order", "last_opened_at"],
        select(O.c.plant_id, O.c.customer_order, func.max(O.c.opened_at))
        .where(O.c.plant_id == plant_id, O.c.customer_order.in_(chosen)).group_by(O.c.plant_id, O.c.customer_order)))


def at_risk(plant_id: str, since: datetime, until: datetime) -> Any:
    """Distinct customer orders named at risk by the period's exceptions. In a settled period
    nothing opened after `until`, so an order was named in the period exactly when its last
    naming is in it."""
    return select(func.count()).select_from(LAST).where(
        LAST.c.plant_id == plant_id, LAST.c.last_opened_at >= since, LAST.c.last_opened_at < until)

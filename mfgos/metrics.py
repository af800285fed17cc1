"""Prometheus metrics (`GET /metrics`, docs/console.md): what an operator graphs and alerts on.

Two kinds, both in the Prometheus text format of prometheus-client:

- Counts of the store, read from the database at each scrape (`StoreCollector`): signals in,
  exceptions open, notifications pending and failed, the ERP outbox, escalations. Every
  replica reports the same figures, so a restart or a second replica never resets or splits
  them; graph them from any one replica.
- Latency histograms this process observes: how long processing one signal takes
  (`mfgos_signal_processing_seconds`, observed by `Runtime.process_signal`) and how long the
  HTTP routes take to answer (`mfgos_http_request_seconds`, by route template, never by raw
  path, so a scan of random URLs cannot create new series).
"""

from __future__ import annotations

import time
from collections.abc import Iterator

from prometheus_client import REGISTRY, CollectorRegistry, Histogram, generate_latest
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric
from prometheus_client.registry import Collector
from sqlalchemy import func, select
from sqlalchemy.engine import Engine
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from models import ErpTransaction, MesTransaction, Notification, PlantException, Signal, TimelineEvent

CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"
METHODS = frozenset({"GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"})  # any other: "other"
LATENCY_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)

SIGNAL_SECONDS = Histogram("mfgos_signal_processing_seconds",
                           "Time to process one stored signal (chat, action, machine, work order), seconds",
                           buckets=LATENCY_BUCKETS)
HTTP_SECONDS = Histogram("mfgos_http_request_seconds", "Time to answer an HTTP request, by route, seconds",
                         ["method", "route"], buckets=LATENCY_BUCKETS)

E = PlantException.__table__  # type: ignore[attr-defined]
N = Notification.__table__  # type: ignore[attr-defined]
S = Signal.__table__  # type: ignore[attr-defined]
T = TimelineEvent.__table__  # type: ignore[attr-defined]
X = ErpTransaction.__table__  # type: ignore[attr-defined]
M = MesTransaction.__table__  # type: ignore[attr-defined]


class StoreCollector(Collector):
    """The plant's counts, one small aggregate query each, at scrape time."""

    def __init__(self, engine: Engine, plant_id: str) -> None:
        self.engine = engine
        self.plant_id = plant_id

    def collect(self) -> Iterator[Metric]:
        plant = self.plant_id
        with self.engine.connect() as db:
            signals = db.execute(select(S.c.kind, func.count()).where(S.c.plant_id == plant)
                                 .group_by(S.c.kind)).all()
            unprocessed = db.execute(select(func.count()).select_from(S).where(
                S.c.plant_id == plant, S.c.processed_at.is_(None))).scalar()
            open_by_type = db.execute(select(E.c.type, func.count()).where(
                E.c.plant_id == plant, E.c.status != "closed").group_by(E.c.type)).all()
            notifications = db.execute(select(N.c.status, func.count()).where(
                N.c.plant_id == plant, N.c.status.in_(("pending", "failed"))).group_by(N.c.status)).all()
            erp = db.execute(select(X.c.status, func.count()).where(
                X.c.plant_id == plant, X.c.status.in_(("pending", "rejected", "failed"))).group_by(X.c.status)).all()
            to_mes = db.execute(select(M.c.status, func.count()).where(
                M.c.plant_id == plant, M.c.status.in_(("pending", "rejected"))).group_by(M.c.status)).all()
            escalations = db.execute(select(func.count()).select_from(T.join(E, E.c.id == T.c.exception_id)).where(
                E.c.plant_id == plant, T.c.kind == "escalated")).scalar()
        yield _counter("mfgos_signals", "Signals stored (every inbound event), by kind", "kind", signals)
        yield _gauge("mfgos_signals_unprocessed", "Signals stored but not processed yet", unprocessed)
        yield _gauge("mfgos_exceptions_open", "Exceptions not closed, by type", open_by_type, "type")
        yield _gauge("mfgos_notifications", "Notification outbox rows pending or failed, by status",
                     _every(notifications, ("pending", "failed")), "status")
        yield _gauge("mfgos_erp_outbox", "ERP outbox rows pending, rejected or abandoned (failed), by status",
                     _every(erp, ("pending", "rejected", "failed")), "status")
        yield _gauge("mfgos_mes_outbox", "MES outbox rows pending or refused for good (rejected), by status",
                     _every(to_mes, ("pending", "rejected")), "status")
        yield _counter("mfgos_escalations", "Escalations fired (an acknowledgement overdue, nobody on shift)", None,
                       [((), escalations or 0)])


def _every(rows: list[tuple[str, int]], names: tuple[str, ...]) -> list[tuple[str, int]]:
    """Every label value, 0 where there are no rows: a series that vanishes at zero breaks alerts."""
    found = dict(rows)
    return [(name, found.get(name, 0)) for name in names]


def _gauge(name: str, documentation: str, rows: object, label: str | None = None) -> GaugeMetricFamily:
    if label is None:
        return GaugeMetricFamily(name, documentation, value=float(rows or 0))  # type: ignore[arg-type]
    family = GaugeMetricFamily(name, documentation, labels=[label])
    for value, count in rows:  # type: ignore[attr-defined]
        family.add_metric([str(value)], float(count))
    return family


def _counter(name: str, documentation: str, label: str | None, rows: object) -> CounterMetricFamily:
    family = CounterMetricFamily(name, documentation, labels=[label] if label else [])
    for value, count in rows:  # type: ignore[attr-defined]
        family.add_metric([str(value)] if label else [], float(count))
    return family


def render(engine: Engine, plant_id: str) -> bytes:
    """The exposition: this process's histograms (and its process_* figures), then the store's counts."""
    store = CollectorRegistry(auto_describe=False)
    store.register(StoreCollector(engine, plant_id))
    return generate_latest(REGISTRY) + generate_latest(store)


class RequestTimer:
    """ASGI middleware: each answer's time into `HTTP_SECONDS`, labelled by the route that matched."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = time.perf_counter()
        status = 500

        async def sending(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
            await send(message)

        try:
            await self.app(scope, receive, sending)
        finally:
            route = getattr(scope.get("route"), "path", None) or ("unmatched" if status == 404 else "other")
            method = scope.get("method", "")
            HTTP_SECONDS.labels(method if method in METHODS else "other", route).observe(time.perf_counter() - started)

"""The ERP stock watch on a schedule (routing/stock_watch.py decides; this reads the ERP and runs it).

`watch_stock` is one run: the materials the next work orders need (the plant file's
`stock_watch.horizon`), one `read_stocks` through the ERP adapter with no database transaction
open, then one transaction that stores the movements and opens, updates or recovers the
shortages, and records the run (`stock_watch_runs`). An ERP that is down, refuses us or answers
junk is logged and recorded as the run's error; nothing is opened on data that was not read, and
the next run tries again.

Runs once across replicas: on PostgreSQL the run holds a session advisory lock for the plant (a
second process skips its turn instead of reading the ERP twice), and a replica skips its turn when
any process ran the watch within 90 % of the interval. `StockWatchScheduler` plans the runs on
APScheduler, `stock_watch.every` apart, reading the interval from the plant row at every run: a
plant file loaded with the section changed, removed or added takes effect at the next turn.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING

from apscheduler.schedulers.asyncio import AsyncIOScheduler
from apscheduler.triggers.date import DateTrigger
from sqlalchemy import text
from sqlalchemy.engine import Engine
from sqlmodel import Session

from erp_adapters.base import StockLine
from models import Plant, StockWatchRun, session_scope
from routing import stock_watch
from routing import workflow as wf

if TYPE_CHECKING:
    from mfgos.runtime import Runtime

log = logging.getLogger(__name__)

OFF_RECHECK = timedelta(minutes=5)  # without a `stock_watch:` section: look again this often (a reload may add it)
FAILED_RETRY = timedelta(minutes=1)  # a run that failed on our side (the database away) is tried again this soon
SAME_TURN = 0.9  # a run within this share of the interval counts as this turn's (another replica's)
_LOCK_KEY = "hashtext('mfgos-stock-watch:' || coalesce(current_schema(), '') || ':' || :plant)"


@dataclass
class Run:
    """What one call did: `skipped` (another process has or had this turn), else the outcome or the error."""

    skipped: bool = False
    outcome: stock_watch.Outcome | None = None
    error: str | None = None


@contextlib.contextmanager
def _one_at_a_time(engine: Engine, plant_id: str) -> Iterator[bool]:
    """A PostgreSQL session advisory lock for the whole run; yields whether this process got it
    (SQLite has one writer anyway: always)."""
    if engine.dialect.name != "postgresql":
        yield True
        return
    with engine.connect() as connection:
        locked = bool(connection.execute(text(f"SELECT pg_try_advisory_lock({_LOCK_KEY})"), {"plant": plant_id}).scalar())
        connection.commit()  # the lock is the session's; no transaction stays open while the ERP is read
        try:
            yield locked
        finally:
            if locked:
                connection.execute(text(f"SELECT pg_advisory_unlock({_LOCK_KEY})"), {"plant": plant_id})
                connection.commit()


async def watch_stock(runtime: Runtime, *, force: bool = False) -> Run:
    """One run of the plant's stock watch; `force` runs even if another process ran it this turn."""
    now = runtime.clock.now()
    with _one_at_a_time(runtime.engine, runtime.plant_id) as mine:
        if not mine:
            return Run(skipped=True)
        with Session(runtime.engine) as session:  # read under the lock: a run that just ended is seen
            plant = runtime.plant(session)
            spec, settings = dict(plant.stock_watch), dict(plant.erp)
            last = session.get(StockWatchRun, plant.id)
            if not spec or not force and last is not None and \
                    now - last.ran_at < timedelta(seconds=spec["every_s"] * SAME_TURN):
                return Run(skipped=True)
            materials = sorted({wo.material_id for wo in stock_watch.orders_needing(
                session, plant.id, now, timedelta(seconds=spec["horizon_s"])) if wo.material_id})
        lines: list[StockLine] = []
        if materials:
            try:
                lines = await runtime.erp.read_stocks(settings, materials)
            except Exception as error:  # the ERP's error family, or anything an answer broke: open nothing
                reason = f"{type(error).__name__}: {error}"[:500]
                log.warning("stock watch: the ERP's stock could not be read (%s); trying again next run", reason)
                await asyncio.to_thread(_apply, runtime, now, materials, None, reason)
                return Run(error=reason)
        outcome = await asyncio.to_thread(_apply, runtime, now, materials, lines, None)
    return Run(outcome=outcome)


def _apply(runtime: Runtime, now: datetime, materials: list[str], lines: list[StockLine] | None,
           error: str | None) -> stock_watch.Outcome:
    """Record the run; with the lines read (no `error`), store the movements and settle the shortages."""
    outcome = stock_watch.Outcome()
    with session_scope(runtime.engine) as session:
        plant = session.get(Plant, runtime.plant_id)
        assert plant is not None
        row = session.get(StockWatchRun, plant.id) or StockWatchRun(plant_id=plant.id, ran_at=now, erp=runtime.erp.name)
        if lines is not None:
            ctx = wf.Context(session=session, plant=plant, now=now, cause=f"stock_watch:{plant.id}:{now.isoformat()}")
            # The orders read again in this transaction: one that started or moved while the ERP was read counts as it is now.
            orders = stock_watch.orders_needing(session, plant.id, now,
                                                timedelta(seconds=plant.stock_watch.get("horizon_s", 0)))
            outcome = stock_watch.record(ctx, orders, lines, materials)
            row.shortages = outcome.shortages
        row.ran_at, row.erp, row.materials, row.error = now, runtime.erp.name, len(materials), error
        session.add(row)
    if outcome.opened or outcome.updated or outcome.recovered or outcome.movements:
        log.info("stock watch: opened %s, updated %s, recovered %s, %d movement(s)", outcome.opened, outcome.updated,
                 outcome.recovered, outcome.movements)
    return outcome


class StockWatchScheduler:
    """Runs the stock watch every `stock_watch.every` on APScheduler (the first run at start)."""

    def __init__(self, runtime: Runtime) -> None:
        self.runtime = runtime
        self.scheduler = AsyncIOScheduler(timezone=UTC)

    def start(self) -> None:
        self.scheduler.start()
        self.scheduler.add_job(self._pass, id="stock_watch", misfire_grace_time=None)  # no trigger: now

    async def _pass(self) -> None:
        wait = OFF_RECHECK
        try:
            await watch_stock(self.runtime)
            with Session(self.runtime.engine) as session:
                spec = self.runtime.plant(session).stock_watch
            if spec:
                wait = timedelta(seconds=spec["every_s"])
        except Exception:  # our side failed (the database away): soon again
            log.exception("stock watch run failed; trying again in a minute")
            wait = FAILED_RETRY
        self.scheduler.add_job(self._pass, DateTrigger(run_date=datetime.now(UTC) + wait), id="stock_watch",
                               replace_existing=True, misfire_grace_time=None)

    def stop(self) -> None:
        self.scheduler.shutdown(wait=False)

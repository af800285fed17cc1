"""The ERP outbox worker: posts `erp_transactions` rows to the ERP exactly once, in order.

How a row travels (docs/architecture.md: a crash at any point loses nothing, posts nothing twice):

1. Claim (short DB transaction): due pending rows, the head of each exception's queue only,
   locked with `FOR UPDATE SKIP LOCKED` on PostgreSQL so replicas take different rows. The
   claim counts the attempt and leases the row by pushing `next_attempt_at` forward; the
   update is a compare-and-set on `attempts`, which also keeps SQLite writers apart.
2. Post (no DB transaction open): if an earlier attempt may have reached the ERP
   (attempts > 0 before this claim) the adapter looks the key up first and adopts the
   reference it finds; otherwise it posts.
3. Settle (short DB transaction): compare-and-set on the claimed `attempts` (a worker whose
   lease ran out cannot overwrite the row), then `on_settled` in the same transaction so
   the timeline and the thread see exactly what the row says.

A crash after 2 leaves the row leased; when the lease ends another pass looks the key up
and adopts the document the ERP already holds.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import socket
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import and_, exists, or_, select, update
from sqlalchemy.engine import Engine
from sqlmodel import Session

from erp_adapters import kinds
from erp_adapters.base import AuthFailed, ErpAdapter, Rejected, Transaction, Unavailable
from models.tables import ErpTransaction, OutboxStatus, Plant, PlantException

log = logging.getLogger(__name__)

POSTED = "posted"
REJECTED = "rejected"
AUTH_FAILED = "auth_failed"
RETRY = "retry"

OnSettled = Callable[[Session, ErpTransaction, str, str], None]

_T = ErpTransaction.__table__
_BLOCKING = (OutboxStatus.pending.value, OutboxStatus.rejected.value)


@dataclass(frozen=True)
class _Claim:
    id: int
    attempts: int  # after this claim; the settle compares against it
    transaction: Transaction


@dataclass(frozen=True)
class _Outcome:
    outcome: str
    detail: str
    values: dict[str, Any]


_RELEASE = _Outcome("release", "", {})  # not attempted (posting paused): back to the queue, nothing to report


class ErpOutbox:
    """Posts due ERP transactions through one adapter; run one per process or replica.

    `on_settled(session, txn, outcome, detail)` runs inside the settling DB transaction;
    outcome is "posted" (detail: the ERP reference), "rejected" (the ERP's reason),
    "auth_failed" (posting paused; tell an admin) or "retry" (why, and when next).
    """

    def __init__(
        self,
        engine: Engine,
        adapter: ErpAdapter,
        *,
        now: Callable[[], datetime],
        on_settled: OnSettled | None = None,
        worker_id: str | None = None,
        lease: timedelta = timedelta(minutes=2),
        concurrency: int = 8,  # httpx's pool gets slow with many requests in flight; 8 hides 10-50 ms latency
        backoff_base: float = 2.0,
        backoff_cap: float = 300.0,
        max_retry_after: float = 3600.0,
        auth_pause: timedelta = timedelta(minutes=5),
    ) -> None:
        self.engine = engine
        self.adapter = adapter
        self.now = now
        self.on_settled = on_settled
        self.worker_id = worker_id or f"{socket.gethostname()}:{os.getpid()}:{id(self):x}"
        self.lease = lease
        self.concurrency = concurrency
        self.backoff_base = backoff_base
        self.backoff_cap = backoff_cap
        self.max_retry_after = max_retry_after
        self.auth_pause = auth_pause
        self.paused_until: datetime | None = None

    @property
    def paused(self) -> bool:
        return self.paused_until is not None and self.now() < self.paused_until

    async def post_due(self, limit: int = 100) -> int:
        """One pass: claim up to `limit` due rows and post them; return how many were settled
        (posted, rejected, or rescheduled after a failure)."""
        if self.paused:
            return 0
        claims = await asyncio.to_thread(self._claim, limit)
        if not claims:
            return 0
        gate = asyncio.Semaphore(self.concurrency)
        results: asyncio.Queue[tuple[_Claim, _Outcome | None]] = asyncio.Queue()

        async def attempt(claim: _Claim) -> None:
            outcome = None
            try:
                async with gate:
                    # After an AuthFailed in this pass the rest is left untouched until the pause ends.
                    outcome = _RELEASE if self.paused else await self._attempt(claim)
            finally:
                await results.put((claim, outcome))  # None: the attempt died; its lease covers it

        tasks = [asyncio.create_task(attempt(claim)) for claim in claims]
        settled, remaining = 0, len(claims)
        try:
            while remaining:
                # Settle what has finished in one DB transaction; later results queue up meanwhile.
                batch = [await results.get()]
                while not results.empty():
                    batch.append(results.get_nowait())
                remaining -= len(batch)
                done = [(claim, outcome) for claim, outcome in batch if outcome is not None]
                if done:
                    settled += await asyncio.to_thread(self._settle_batch, done)
        except BaseException:
            for task in tasks:
                task.cancel()
            raise
        await asyncio.gather(*tasks)  # re-raises what killed an attempt (leased rows stay safe)
        return settled

    async def run_forever(self, stop_event: asyncio.Event, poll_interval: float = 1.0) -> None:
        """Post until `stop_event` is set; a busy pass is followed at once by the next."""
        log.info("ERP outbox %s posting to %s", self.worker_id, getattr(self.adapter, "name", "erp"))
        while not stop_event.is_set():
            try:
                settled = await self.post_due()
            except Exception:
                log.exception("ERP outbox %s: pass failed; trying again shortly", self.worker_id)
                settled = 0
            if settled:
                continue
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stop_event.wait(), timeout=poll_interval)

    # --- claim -------------------------------------------------------------------------------

    def _claim(self, limit: int) -> list[_Claim]:
        now = self.now()
        earlier = _T.alias("earlier")
        blocked_by_earlier = exists().where(
            earlier.c.exception_id == _T.c.exception_id,
            earlier.c.status.in_(_BLOCKING),
            or_(
                earlier.c.sequence < _T.c.sequence,
                and_(earlier.c.sequence == _T.c.sequence, earlier.c.id < _T.c.id),
            ),
        )
        due = and_(
            _T.c.status == OutboxStatus.pending.value,
            or_(_T.c.next_attempt_at.is_(None), _T.c.next_attempt_at <= now),
        )
        query = (
            select(_T.c.id, _T.c.attempts)
            .where(due, ~blocked_by_earlier)
            .order_by(_T.c.exception_id, _T.c.sequence, _T.c.id)
            .limit(limit)
        )
        if self.engine.dialect.name == "postgresql":
            query = query.with_for_update(skip_locked=True, of=_T)
        lease_until = now + self.lease
        with Session(self.engine) as session:
            candidates = session.execute(query).all()
            claimed: list[tuple[int, int]] = []
            if self.engine.dialect.name == "postgresql":
                if candidates:
                    # The rows are locked by this transaction: one update claims them all.
                    session.execute(
                        update(_T)
                        .where(_T.c.id.in_([row_id for row_id, _ in candidates]))
                        .values(attempts=_T.c.attempts + 1, next_attempt_at=lease_until)
                    )
                claimed = [(row_id, attempts + 1) for row_id, attempts in candidates]
            else:
                for row_id, attempts in candidates:
                    # SQLite read those rows outside its write lock: compare-and-set each one.
                    result = session.execute(
                        update(_T)
                        .where(_T.c.id == row_id, _T.c.attempts == attempts, due)
                        .values(attempts=attempts + 1, next_attempt_at=lease_until)
                    )
                    if result.rowcount == 1:
                        claimed.append((row_id, attempts + 1))
            if not claimed:
                session.rollback()
                return []
            rows = {
                row.id: row
                for row in session.execute(select(_T).where(_T.c.id.in_([row_id for row_id, _ in claimed])))
            }
            codes = dict(
                session.execute(
                    select(PlantException.id, PlantException.code).where(
                        PlantException.id.in_({r.exception_id for r in rows.values() if r.exception_id})
                    )
                ).all()
            )
            settings = dict(
                session.execute(
                    select(Plant.id, Plant.erp).where(Plant.id.in_({r.plant_id for r in rows.values()}))
                ).all()
            )
            session.commit()
        claims = []
        for row_id, attempts in claimed:
            row = rows[row_id]
            claims.append(
                _Claim(
                    id=row_id,
                    attempts=attempts,
                    transaction=Transaction(
                        kind=row.kind,
                        fields=dict(row.fields or {}),
                        idempotency_key=row.idempotency_key,
                        exception_code=codes.get(row.exception_id),
                        plant_settings=dict(settings.get(row.plant_id) or {}),
                        first_attempt=attempts == 1,
                        decided_at=row.created_at,
                    ),
                )
            )
        return claims

    # --- post --------------------------------------------------------------------------------

    async def _attempt(self, claim: _Claim) -> _Outcome:
        txn = claim.transaction
        now = self.now
        try:
            reference = None
            if claim.attempts > 1:
                # An earlier attempt may have reached the ERP (timeout, 5xx after saving, crash).
                reference = await self.adapter.lookup(txn)
                if reference is not None:
                    log.info("ERP transaction %s already in the ERP as %s; adopting it", claim.id, reference)
            if reference is None:
                reference = await self.adapter.post(txn)
        except Rejected as exc:
            return _Outcome(
                REJECTED,
                exc.reason,
                {"status": OutboxStatus.rejected.value, "error": exc.reason, "next_attempt_at": None},
            )
        except AuthFailed as exc:
            if self.paused:
                # A sibling in this pass already paused posting and reported it: one alert per pause.
                return _RELEASE
            self.paused_until = now() + self.auth_pause
            detail = f"{exc}; ERP posting paused until {self.paused_until.isoformat()}"
            log.error("ERP outbox %s: %s", self.worker_id, detail)
            return _Outcome(AUTH_FAILED, detail, {"error": str(exc), "next_attempt_at": self.paused_until})
        except Unavailable as exc:
            delay = self._delay(claim.attempts, exc.retry_after)
            return self._retry(str(exc), delay)
        except Exception as exc:
            log.exception("ERP outbox %s: transaction %s failed unexpectedly", self.worker_id, claim.id)
            return self._retry(
                f"unexpected error: {type(exc).__name__}: {exc}", self._delay(claim.attempts, None)
            )
        return _Outcome(
            POSTED,
            reference,
            {
                "status": OutboxStatus.sent.value,
                "reference": reference,
                "posted_at": now(),
                "error": None,
                "next_attempt_at": None,
            },
        )

    def _retry(self, error: str, delay: float) -> _Outcome:
        when = self.now() + timedelta(seconds=delay)
        return _Outcome(
            RETRY, f"{error}; next attempt at {when.isoformat()}", {"error": error, "next_attempt_at": when}
        )

    def _delay(self, attempts: int, retry_after: float | None) -> float:
        """Exponential backoff (2 s, 4 s, 8 s, ... capped), or what the ERP asked for."""
        if retry_after is not None:
            return min(max(retry_after, 0.0), self.max_retry_after)
        return min(self.backoff_cap, self.backoff_base * 2 ** max(attempts - 1, 0))

    # --- settle ------------------------------------------------------------------------------

    def _settle_batch(self, items: list[tuple[_Claim, _Outcome]]) -> int:
        """Settle finished attempts in one DB transaction; if a report fails, row by row."""
        try:
            with Session(self.engine, expire_on_commit=False) as session:
                settled = sum(self._settle_one(session, claim, outcome) for claim, outcome in items)
                session.commit()
            return settled
        except Exception:
            if len(items) == 1:
                claim, outcome = items[0]
                log.exception(
                    "ERP outbox %s: could not record %s for transaction %s; its lease will expire and a "
                    "look-up will settle it",
                    self.worker_id,
                    outcome.outcome,
                    claim.id,
                )
                return 0
        return sum(self._settle_batch([item]) for item in items)

    def _settle_one(self, session: Session, claim: _Claim, outcome: _Outcome) -> int:
        owned = and_(
            _T.c.id == claim.id, _T.c.attempts == claim.attempts, _T.c.status == OutboxStatus.pending.value
        )
        if outcome is _RELEASE:
            session.execute(update(_T).where(owned).values(next_attempt_at=self.paused_until))
            return 0
        # One round trip: the compare-and-set update hands back the row for the report.
        txn = session.scalars(
            update(ErpTransaction).where(owned).values(**outcome.values).returning(ErpTransaction),
            execution_options={"populate_existing": True},
        ).one_or_none()
        if txn is None:
            log.warning(
                "ERP outbox %s: lost the lease on transaction %s before settling it (%s)",
                self.worker_id,
                claim.id,
                outcome.outcome,
            )
            return 0
        if self.on_settled is not None:
            self.on_settled(session, txn, outcome.outcome, outcome.detail)
        return 1


def retry_rejected(
    session: Session, txn_id: int, fields_patch: dict[str, Any] | None = None
) -> ErpTransaction:
    """Correct a rejected transaction and queue it again, in the caller's DB transaction.

    `fields_patch` is merged into the fields; a key patched to None is removed. The corrected
    fields must pass the kind's validation, else ValueError says what is still wrong.
    """
    txn = session.get(ErpTransaction, txn_id)
    if txn is None:
        raise LookupError(f"no ERP transaction {txn_id}")
    if txn.status != OutboxStatus.rejected:
        raise ValueError(
            f"ERP transaction {txn_id} is {txn.status}; only a rejected one can be corrected and retried"
        )
    fields = dict(txn.fields)
    for name, value in (fields_patch or {}).items():
        if value is None:
            fields.pop(name, None)
        else:
            fields[name] = value
    found = kinds.problems(txn.kind, fields)
    if found:
        raise ValueError(f"{txn.kind} still has problems: " + "; ".join(found))
    txn.fields = fields
    txn.status = OutboxStatus.pending
    txn.error = None
    txn.next_attempt_at = None
    session.add(txn)
    return txn


def abandon_rejected(session: Session, txn_id: int, reason: str) -> ErpTransaction:
    """Give up on a rejected transaction (status failed), so the exception's later ones can post."""
    txn = session.get(ErpTransaction, txn_id)
    if txn is None:
        raise LookupError(f"no ERP transaction {txn_id}")
    if txn.status != OutboxStatus.rejected:
        raise ValueError(f"ERP transaction {txn_id} is {txn.status}; only a rejected one can be abandoned")
    txn.status = OutboxStatus.failed
    txn.error = f"abandoned: {reason}" if reason else "abandoned"
    session.add(txn)
    return txn

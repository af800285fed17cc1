"""The MES outbox worker: sends `mes_transactions` rows to the MES exactly once, in order.

The same three steps as the ERP outbox (erp_adapters/outbox.py), so a crash at any point
loses nothing and sends nothing twice:

1. Claim (short DB transaction): due pending rows, only the head of each exception's queue
   (its machine goes down before it runs again, a work order is held before it resumes),
   locked with `FOR UPDATE SKIP LOCKED` on PostgreSQL; the claim counts the attempt and leases
   the row by pushing `next_attempt_at` forward, a compare-and-set on `attempts`.
2. Send (no DB transaction open), with the row's idempotency key. The MES dedupes on it, so a
   second send after a timeout, a lost answer or a crash gets the first one's reference back.
3. Settle (short DB transaction): compare-and-set on the claimed `attempts`, then `on_settled`
   in the same transaction, so the timeline says exactly what the row says.

A refusal (`Rejected`) is permanent: the row is `rejected`, the timeline shows the MES's words,
and the exception's later rows go on (a refused hold must not keep the machine "down" in the
MES). Credentials refused (`AuthFailed`) pause sending for `auth_pause`.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import and_, exists, or_, select, update
from sqlalchemy.engine import Engine
from sqlmodel import Session

from mes_adapters.base import AuthFailed, MesAdapter, Rejected, Transaction, Unavailable
from models.mes import MesTransaction
from models.tables import Plant, PlantException

log = logging.getLogger(__name__)

SENT = "sent"
REJECTED = "rejected"
AUTH_FAILED = "auth_failed"
RETRY = "retry"

OnSettled = Callable[[Session, MesTransaction, str, str], None]

_T = MesTransaction.__table__  # type: ignore[attr-defined]


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


class MesOutbox:
    """Sends due MES transactions through one adapter; run one per process or replica.

    `on_settled(session, row, outcome, detail)` runs inside the settling DB transaction; outcome
    is "sent" (detail: the MES's reference), "rejected" (its reason), "auth_failed" (sending
    paused) or "retry" (why, and when next).
    """

    def __init__(self, engine: Engine, adapter: MesAdapter, *, now: Callable[[], datetime],
                 on_settled: OnSettled | None = None, lease: timedelta = timedelta(minutes=2),
                 backoff_base: float = 2.0, backoff_cap: float = 300.0, max_retry_after: float = 3600.0,
                 auth_pause: timedelta = timedelta(minutes=5)) -> None:
        self.engine = engine
        self.adapter = adapter
        self.now = now
        self.on_settled = on_settled
        self.lease = lease
        self.backoff_base = backoff_base
        self.backoff_cap = backoff_cap
        self.max_retry_after = max_retry_after
        self.auth_pause = auth_pause
        self.paused_until: datetime | None = None

    @property
    def paused(self) -> bool:
        return self.paused_until is not None and self.now() < self.paused_until

    async def send_due(self, limit: int = 100) -> int:
        """One pass: claim up to `limit` due rows and send them one after the other; return how
        many were settled (sent, rejected, or rescheduled after a failure)."""
        if self.paused:
            return 0
        settled = 0
        for claim in await asyncio.to_thread(self._claim, limit):
            if self.paused:  # credentials refused earlier in this pass: the rest waits for the pause
                await asyncio.to_thread(self._release, claim)
                continue
            outcome = await self._attempt(claim)
            settled += await asyncio.to_thread(self._settle, claim, outcome)
        return settled

    # --- claim -------------------------------------------------------------------------------

    def _claim(self, limit: int) -> list[_Claim]:
        now = self.now()
        earlier = _T.alias("earlier")
        blocked_by_earlier = exists().where(
            earlier.c.exception_id == _T.c.exception_id, earlier.c.status == "pending",
            or_(earlier.c.sequence < _T.c.sequence, and_(earlier.c.sequence == _T.c.sequence, earlier.c.id < _T.c.id)))
        due = and_(_T.c.status == "pending", or_(_T.c.next_attempt_at.is_(None), _T.c.next_attempt_at <= now))
        query = (select(_T.c.id, _T.c.attempts).where(due, ~blocked_by_earlier)
                 .order_by(_T.c.exception_id, _T.c.sequence, _T.c.id).limit(limit))
        if self.engine.dialect.name == "postgresql":
            query = query.with_for_update(skip_locked=True, of=_T)
        claimed: list[tuple[int, int]] = []
        with Session(self.engine) as session:
            for row_id, attempts in session.execute(query).all():
                # Compare-and-set: on SQLite the read was outside the write lock, and a row leased
                # by another worker in between has another `attempts` now.
                result = session.execute(update(_T).where(_T.c.id == row_id, _T.c.attempts == attempts, due)
                                         .values(attempts=attempts + 1, next_attempt_at=now + self.lease))
                if result.rowcount == 1:  # type: ignore[attr-defined]
                    claimed.append((row_id, attempts + 1))
            if not claimed:
                session.rollback()
                return []
            rows = {r.id: r for r in session.execute(select(_T).where(_T.c.id.in_([i for i, _ in claimed])))}
            codes = dict(session.execute(select(PlantException.id, PlantException.code).where(  # type: ignore[call-overload]
                PlantException.id.in_({r.exception_id for r in rows.values()}))).all())  # type: ignore[union-attr]
            settings = dict(session.execute(select(Plant.id, Plant.mes).where(  # type: ignore[call-overload]
                Plant.id.in_({r.plant_id for r in rows.values()}))).all())  # type: ignore[attr-defined]
            session.commit()
        return [_Claim(id=row_id, attempts=attempts, transaction=Transaction(
            kind=rows[row_id].kind, fields=dict(rows[row_id].fields or {}),
            idempotency_key=rows[row_id].idempotency_key, plant=rows[row_id].plant_id,
            exception_code=codes.get(rows[row_id].exception_id),
            plant_settings=dict(settings.get(rows[row_id].plant_id) or {}), decided_at=rows[row_id].created_at))
            for row_id, attempts in claimed]

    # --- send --------------------------------------------------------------------------------

    async def _attempt(self, claim: _Claim) -> _Outcome:
        try:
            reference = await self.adapter.post(claim.transaction)
        except Rejected as exc:
            return _Outcome(REJECTED, exc.reason, {"status": "rejected", "error": exc.reason, "next_attempt_at": None})
        except AuthFailed as exc:
            self.paused_until = self.now() + self.auth_pause
            detail = f"{exc}; sending to the MES paused until {self.paused_until.isoformat()}"
            log.error("MES outbox: %s", detail)
            return _Outcome(AUTH_FAILED, detail, {"error": str(exc), "next_attempt_at": self.paused_until})
        except Unavailable as exc:
            return self._retry(str(exc), self._delay(claim.attempts, exc.retry_after))
        except Exception as exc:
            log.exception("MES outbox: transaction %s failed unexpectedly", claim.id)
            return self._retry(f"unexpected error: {type(exc).__name__}: {exc}", self._delay(claim.attempts, None))
        return _Outcome(SENT, reference, {"status": "sent", "reference": reference, "sent_at": self.now(),
                                          "error": None, "next_attempt_at": None})

    def _retry(self, error: str, delay: float) -> _Outcome:
        when = self.now() + timedelta(seconds=delay)
        return _Outcome(RETRY, f"{error}; next attempt at {when.isoformat()}", {"error": error, "next_attempt_at": when})

    def _delay(self, attempts: int, retry_after: float | None) -> float:
        """Exponential backoff (2 s, 4 s, 8 s, ... capped), or what the MES asked for (capped too)."""
        if retry_after is not None:
            return min(max(retry_after, 0.0), self.max_retry_after)
        return min(self.backoff_cap, self.backoff_base * 2 ** max(attempts - 1, 0))

    # --- settle ------------------------------------------------------------------------------

    def _owned(self, claim: _Claim) -> Any:
        return and_(_T.c.id == claim.id, _T.c.attempts == claim.attempts, _T.c.status == "pending")

    def _release(self, claim: _Claim) -> None:
        """Not attempted (sending paused): back to the queue for when the pause ends."""
        with Session(self.engine) as session:
            session.execute(update(_T).where(self._owned(claim)).values(next_attempt_at=self.paused_until))
            session.commit()

    def _settle(self, claim: _Claim, outcome: _Outcome) -> int:
        with Session(self.engine, expire_on_commit=False) as session:
            row = session.scalars(update(MesTransaction).where(self._owned(claim)).values(**outcome.values)
                                  .returning(MesTransaction), execution_options={"populate_existing": True}
                                  ).one_or_none()
            if row is None:
                log.warning("MES outbox: lost the lease on transaction %s before settling it (%s)", claim.id,
                            outcome.outcome)
                return 0
            if self.on_settled is not None:
                self.on_settled(session, row, outcome.outcome, outcome.detail)
            session.commit()
        return 1


def retry_rejected(session: Session, row_id: int) -> MesTransaction:
    """Queue a row the MES refused again (after the fix in the MES), in the caller's DB transaction:
    the same idempotency key, so an MES that did store it after all answers with its reference."""
    row = session.get(MesTransaction, row_id)
    if row is None:
        raise LookupError(f"no MES transaction {row_id}")
    if row.status != REJECTED:
        raise ValueError(f"MES transaction {row_id} is {row.status}; only a rejected one can be retried")
    row.status, row.error, row.next_attempt_at = "pending", None, None
    session.add(row)
    return row


def abandon_rejected(session: Session, row_id: int, reason: str) -> MesTransaction:
    """Give a row the MES refused up for good (status failed), with the reason, in the caller's DB transaction."""
    row = session.get(MesTransaction, row_id)
    if row is None:
        raise LookupError(f"no MES transaction {row_id}")
    if row.status != REJECTED:
        raise ValueError(f"MES transaction {row_id} is {row.status}; only a rejected one can be abandoned")
    row.status, row.error = "failed", f"abandoned: {reason}" if reason else "abandoned"
    session.add(row)
    return row

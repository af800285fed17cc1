"""The notification outbox worker: delivers pending chat messages through their channel.

Rows were written in the same database transaction as the decision that caused them. How a
row travels (a crash at any point loses nothing; a message is posted twice only if the
process dies between the platform's answer and the commit that records it):

1. Claim (short DB transaction): the due head of each thread (channel, address, exception;
   a row with an earlier pending row in its thread is never a head), locked with
   `FOR UPDATE SKIP LOCKED` on PostgreSQL so replicas take different threads. Owning the
   head owns the thread: the claim also leases the head's due successors, and every claimed
   row gets `next_attempt_at` pushed to the end of the lease and `attempts` counted (the
   compare-and-set token of the settle).
2. Send (no DB transaction open), one task per thread, rows in order: wait for the
   channel's rate buckets (`bot.ratelimit`), send, and on a 429 pause the bucket the
   platform named and try again; 5xx and network errors back off and try again. A wait
   longer than `max_inline_wait` puts the row back with `next_attempt_at` and ends the run,
   so the rest of the thread waits behind it and keeps its order.
3. Settle (short DB transaction, compare-and-set on `attempts`): sent with the platform's
   message id, rescheduled, or failed with a `not_reached` event on the exception's
   timeline so a person can see who was not reached.

A row whose channel this process does not have is settled `not_configured` (final; the console
still lists it). A `buttons_update` row edits the message of the row it `updates`: it waits while
that one is pending and is settled without a call when that one never reached anybody.

`deliver_due()` is one pass (replay, tests, `Runtime.drain`); `run()` delivers continuously
for `mfgos serve`, woken by `wake()` when new rows are committed. Status edits of messages
already sent (Slack `chat.update`, Telegram `editMessageText`) follow the exception's
timeline: see `sync_status`.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections import Counter
from collections.abc import Callable
from concurrent.futures import Executor
from dataclasses import dataclass, field, replace
from datetime import datetime, timedelta
from typing import Any, Protocol, runtime_checkable

from sqlalchemy import exists, func, select, update
from sqlalchemy.engine import Engine
from sqlmodel import Session

from bot import charts
from bot.channels.base import (
    BUTTONS_UPDATE,
    Channel,
    Original,
    OutboundMessage,
    PermanentFailure,
    RateLimited,
    TemporaryFailure,
)
from bot.ratelimit import Bucket, RateLimiter, Reservation
from models import Notification, OutboxStatus, PlantException, TimelineEvent, session_scope

log = logging.getLogger(__name__)

MAX_BACKOFF = timedelta(minutes=5)
CLAIM_INTERVAL = 0.05  # seconds between two claims of the continuous worker: under load one claim serves many rows
STATUS_INTERVAL = 0.5  # seconds between two looks for status changes to edit into sent messages
EDIT_PRIORITY = -1.0  # status edits queue behind every message (messages have priority >= 1)
# Status changes that edit sent messages. Not "opened": every message of an exception is written
# with it or after it, so it already shows that state, and an edit would only spend the chat's slot.
STATUS_EVENTS = ("acknowledged", "proposed", "approved", "rejected", "posted", "closed", "escalated")
ORIGINAL_WAIT = 5.0  # seconds at most between two looks whether the message a buttons_update edits was delivered

_N = Notification.__table__


def thread_key(row: Notification | Any) -> str:
    """Messages with one key keep their order: one person's conversation about one exception."""
    return f"{row.channel}:{row.address}:{row.exception_id or '-'}"


@runtime_checkable
class RateLimitedChannel(Protocol):
    """A channel that knows its platform's limits: the buckets one message counts against."""

    def rate_buckets(self, message: OutboundMessage) -> tuple[Bucket, ...]: ...


@runtime_checkable
class EditableChannel(Protocol):
    """A channel that can edit a message it sent when the exception's status changes."""

    async def update_status(self, row: Notification, exception: PlantException) -> None: ...


@dataclass
class _Claim:
    id: int
    attempts: int  # after the claim; the settle compares against it
    message: OutboundMessage
    channel_name: str
    exception_id: int | None
    person_id: str


@dataclass
class _Run:
    key: str
    claims: list[_Claim]
    lease_until: datetime
    settled: int = 0
    done: list[int] = field(default_factory=list)


class NotificationOutbox:
    def __init__(self, engine: Engine, channels: dict[str, Channel], *, now: Callable[[], datetime],
                 limiter: RateLimiter | None = None,
                 lease: timedelta = timedelta(seconds=60), concurrency: int = 128, run_length: int = 50,
                 max_inline_wait: float = 10.0, backoff_base: float = 0.1, executor: Executor | None = None) -> None:
        self.engine = engine
        self.channels = channels
        self.now = now
        self.limiter = limiter or RateLimiter()
        self.lease = lease
        self.concurrency = concurrency
        self.run_length = run_length  # rows of one thread leased per claim
        self.max_inline_wait = max_inline_wait
        self.backoff_base = backoff_base
        self.executor = executor
        self._wake = asyncio.Event()
        self._running = False
        self._settling: list[tuple[_Claim, dict[str, Any], str | None, asyncio.Future[list[int]]]] = []
        self._settler: asyncio.Task[None] | None = None
        self._backlog: Counter[str] = Counter()  # rows claimed and not yet settled, per narrow bucket (chat)
        self._status_mark: int | None = None
        self._mark_status()

    async def _db(self, fn: Callable[..., Any], *args: Any) -> Any:
        """Database work off the event loop: in `executor` if one is given (on SQLite the one thread
        that also stores inbound messages, so writers never wait for each other's lock)."""
        if self.executor is None:
            return await asyncio.to_thread(fn, *args)
        return await asyncio.get_running_loop().run_in_executor(self.executor, lambda: fn(*args))

    # --- passes --------------------------------------------------------------------------

    def wake(self) -> None:
        """New rows were committed: the continuous worker claims them now rather than at its next poll."""
        self._wake.set()

    async def deliver_due(self, limit: int = 500) -> int:
        """One pass over due rows; returns how many were settled.

        While `run()` delivers continuously this only wakes it and returns 0, so the
        periodic `Runtime.drain` and the worker never compete for rows.
        """
        if self._running:
            self.wake()
            return 0
        runs = await self._db(self._claim, limit, set())
        gate = asyncio.Semaphore(self.concurrency)

        async def bounded(run: _Run) -> int:
            async with gate:
                return await self._deliver_run(run)

        settled = sum(await asyncio.gather(*(bounded(run) for run in runs)))
        await self.sync_status()
        return settled

    async def run(self, stop: asyncio.Event, poll: float = 1.0) -> None:
        """Deliver until `stop` is set: a task per thread, new threads claimed as soon as `wake()` says."""
        self._running = True
        self._wake = asyncio.Event()  # bound to this loop; replay and tests run passes on loops of their own
        tasks: dict[str, asyncio.Task[int]] = {}
        # Status edits wait for the same rate limits as messages: on a task of their own, so an edit
        # waiting for a chat's slot never holds up the claim of new messages.
        edits = asyncio.create_task(self._edit_statuses(stop), name="outbox:status-edits")
        try:
            loop = asyncio.get_running_loop()
            while not stop.is_set():
                self._wake.clear()
                claimed_at = loop.time()
                room = self.concurrency - len(tasks)
                if room > 0:
                    try:
                        runs = await self._db(self._claim, room, set(tasks))
                    except Exception:
                        log.exception("notification outbox: claim failed; trying again shortly")
                        runs = []
                    for run in runs:
                        task = asyncio.create_task(self._deliver_run(run), name=f"outbox:{run.key}")
                        tasks[run.key] = task
                        task.add_done_callback(lambda _t, key=run.key: (tasks.pop(key, None), self._wake.set()))
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(self._first(stop), timeout=poll)
                # Under load many wakes come at once: one claim serves them all.
                await asyncio.sleep(max(0.0, claimed_at + CLAIM_INTERVAL - loop.time()))
        finally:
            self._running = False
            edits.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await edits
            if tasks:
                # Rows in flight finish or keep their lease; another pass delivers them after it.
                _, pending = await asyncio.wait(list(tasks.values()), timeout=5)
                for task in pending:
                    task.cancel()

    async def _edit_statuses(self, stop: asyncio.Event) -> None:
        while not stop.is_set():
            try:
                await self.sync_status()
            except Exception:
                log.exception("notification outbox: status edits failed; trying again shortly")
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stop.wait(), timeout=STATUS_INTERVAL)

    async def _first(self, stop: asyncio.Event) -> None:
        waiters = [asyncio.create_task(self._wake.wait()), asyncio.create_task(stop.wait())]
        try:
            await asyncio.wait(waiters, return_when=asyncio.FIRST_COMPLETED)
        finally:
            for waiter in waiters:
                waiter.cancel()

    # --- claim ---------------------------------------------------------------------------

    def _claim(self, limit: int, busy: set[str]) -> list[_Run]:
        now = self.now()
        earlier = _N.alias("earlier")
        same_thread = (
            (earlier.c.channel == _N.c.channel) & (earlier.c.address == _N.c.address)
            & (func.coalesce(earlier.c.exception_id, 0) == func.coalesce(_N.c.exception_id, 0))
        )
        has_earlier = exists().where(same_thread, earlier.c.status == "pending", earlier.c.id < _N.c.id)
        due = (_N.c.status == "pending") & (_N.c.next_attempt_at.is_(None) | (_N.c.next_attempt_at <= now))
        # More candidates than needed: a head another worker claims first is skipped, not waited for.
        heads_query = select(_N.c.id).where(due, ~has_earlier).order_by(_N.c.id).limit(2 * limit + len(busy))
        if self.engine.dialect.name == "postgresql":
            heads_query = heads_query.with_for_update(skip_locked=True, of=_N)
        lease_until = now + self.lease
        with Session(self.engine, expire_on_commit=False) as session:
            head_ids = list(session.execute(heads_query).scalars())
            if not head_ids:
                session.rollback()
                return []
            heads = {row.id: row for row in session.execute(select(_N).where(_N.c.id.in_(head_ids)))}
            keys = {thread_key(row): row for row in sorted(heads.values(), key=lambda r: r.id)
                    if thread_key(row) not in busy}
            if not keys:
                session.rollback()
                return []
            # The successors of every head: nobody else can claim them while the head is pending.
            followers: dict[str, list[Any]] = {key: [] for key in keys}
            first = min(row.id for row in keys.values())
            stopped: set[str] = set()
            for row in session.execute(select(_N).where(_N.c.status == "pending", _N.c.id > first).order_by(_N.c.id)):
                key = thread_key(row)
                if key not in keys or key in stopped or row.id <= keys[key].id:
                    continue
                if (row.next_attempt_at is not None and row.next_attempt_at > now) \
                        or len(followers[key]) + 1 >= self.run_length:
                    stopped.add(key)  # keep the run contiguous: a later row waits for this one
                    continue
                followers[key].append(row)
            rows_by_key = {key: [head, *followers[key]] for key, head in keys.items()}
            wanted = dict(list(rows_by_key.items())[:limit])
            # One statement leases them all; a row another worker leased meanwhile is no longer due and
            # drops out, and so does the rest of its thread (the run must stay contiguous).
            ids = [row.id for rows in wanted.values() for row in rows]
            leased = dict(session.execute(
                update(_N).where(_N.c.id.in_(ids), due).values(attempts=_N.c.attempts + 1, next_attempt_at=lease_until)
                .returning(_N.c.id, _N.c.attempts)).all())
            claimed: dict[str, list[tuple[Any, int]]] = {}
            release: list[int] = []
            for key, rows in wanted.items():
                gap = False
                for row in rows:
                    gap = gap or row.id not in leased
                    if gap:
                        if row.id in leased:
                            release.append(row.id)  # behind a row we did not get: not ours to send yet
                        continue
                    claimed.setdefault(key, []).append((row, leased[row.id]))
            if release:
                session.execute(update(_N).where(_N.c.id.in_(release)).values(next_attempt_at=now))
            exception_ids = {row.exception_id for rows in claimed.values() for row, _ in rows if row.exception_id}
            codes = dict(session.execute(select(PlantException.id, PlantException.code)
                                         .where(PlantException.id.in_(exception_ids))).all()) if exception_ids else {}
            updated = {row.updates_id for rows in claimed.values() for row, _ in rows if row.updates_id}
            originals = {row.id: Original(status=row.status, platform_message_id=row.platform_message_id,
                                          kind=row.kind, text=row.text)
                         for row in session.execute(select(_N).where(_N.c.id.in_(updated)))} if updated else {}
            session.commit()
        runs = []
        for key, rows in claimed.items():
            claims = [
                _Claim(id=row.id, attempts=attempts, channel_name=row.channel, exception_id=row.exception_id,
                       person_id=row.person_id,
                       message=OutboundMessage(
                           channel=row.channel, address=row.address, text=row.text, notification_id=row.id,
                           exception_code=codes.get(row.exception_id), thread_key=key,
                           buttons=tuple(row.buttons or ()), language=row.language or "en", kind=row.kind,
                           updates=originals.get(row.updates_id) if row.updates_id else None, chart=row.chart))
                for row, attempts in rows
            ]
            runs.append(_Run(key=key, claims=claims, lease_until=lease_until))
        return runs

    # --- send ----------------------------------------------------------------------------

    async def _deliver_run(self, run: _Run) -> int:
        scopes = [self._scope(claim) for claim in run.claims]
        self._backlog.update(scope for scope in scopes if scope)
        finished = 0
        try:
            for index, claim in enumerate(run.claims):
                try:
                    values, failed_reason = await self._attempt(run, claim, index, scopes[index])
                except asyncio.CancelledError:
                    raise
                except Exception:  # never lose the row: it keeps its lease and is tried again after it
                    log.exception("notification %s: delivery failed unexpectedly", claim.id)
                    return run.settled
                try:
                    ok = await self._record(claim, values, failed_reason)
                except Exception:
                    log.exception("notification %s: could not record the outcome; the lease will expire", claim.id)
                    return run.settled
                if values.get("status") == "pending":
                    # Rescheduled: the rest of the thread waits behind it, in order, and is due again
                    # with it rather than when this run's lease ends.
                    rest = run.claims[index + 1:]
                    if rest:
                        try:
                            await self._db(self._renew, rest, values["next_attempt_at"])
                        except Exception:
                            log.exception("notification %s: could not release the rows behind it", claim.id)
                    return run.settled
                run.settled += ok
                finished = index + 1
                self._forget(scopes[index])
            return run.settled
        finally:
            for scope in scopes[finished:]:
                self._forget(scope)

    def _scope(self, claim: _Claim) -> str | None:
        """The narrow bucket (chat, channel, recipient) a row counts against, if its platform has one."""
        channel = self.channels.get(claim.channel_name)
        buckets = channel.rate_buckets(claim.message) if isinstance(channel, RateLimitedChannel) else ()
        return buckets[0][0] if len(buckets) > 1 else None

    def _forget(self, scope: str | None) -> None:
        if scope is None:
            return
        self._backlog[scope] -= 1
        if self._backlog[scope] <= 0:
            del self._backlog[scope]

    def _backoff(self, failures: int) -> float:
        return min(MAX_BACKOFF.total_seconds(), self.backoff_base * 2 ** max(failures - 1, 0))

    async def _attempt(self, run: _Run, claim: _Claim, index: int,
                       scope: str | None) -> tuple[dict[str, Any], str | None]:
        """Send one row, retrying in place while the waits stay short; returns the row's new values."""
        channel = self.channels.get(claim.channel_name)
        if channel is None:
            # Final, not retried: this process will never have the channel. The row stays readable on the
            # console (it lists every row of a person and of an exception, whatever its channel); a setup
            # gap, not a delivery failure, so no `not_reached` on the timeline.
            reason = f"{claim.channel_name} is not configured here; the message was not sent (readable on the console)"
            return {"status": OutboxStatus.not_configured, "error": reason, "next_attempt_at": None}, None
        if claim.message.kind == BUTTONS_UPDATE:
            original = claim.message.updates
            if original is None or original.status not in (OutboxStatus.pending, OutboxStatus.sent) \
                    or (original.status == OutboxStatus.sent and not original.platform_message_id):
                # The person never got the message: there are no buttons to take back. Done, without a call.
                return {"status": "sent", "sent_at": self.now(), "next_attempt_at": None,
                        "error": f"nothing to update: the message it updates is {original.status if original else 'gone'}"}, None
            if original.status == OutboxStatus.pending:
                # Edits follow the message they edit: wait for it (its own thread may be held up).
                return self._reschedule(min(ORIGINAL_WAIT, self._backoff(claim.attempts)),
                                        "waiting for the message it updates to be delivered"), None
        if claim.message.chart and claim.message.image is None:
            claim.message = await self._drawn(claim)
        buckets = channel.rate_buckets(claim.message) if isinstance(channel, RateLimitedChannel) else ()
        waited = 0.0
        failures = 0
        tries = 0
        while True:
            await self._renew_if_needed(run, index)
            # Longest remaining work first: the rows still to go to this chat (all its threads: the
            # per-chat limit and a chat's Retry-After hold them all), so no chat's chain of waits is
            # left for the end; a message that was refused goes ahead of first attempts once its wait is over.
            remaining = self._backlog.get(scope, 0) if scope else len(run.claims) - index
            priority = remaining + 10 * tries
            reservation: Reservation | None = await self.limiter.acquire(buckets, priority) if buckets else None
            tries += 1
            try:
                message_id = await channel.send(claim.message)
            except RateLimited as error:
                self._refund(reservation)
                retry_after = max(0.0, float(error.retry_after))
                inline = waited + retry_after <= self.max_inline_wait and bool(buckets)
                scope = getattr(error, "scope", None)
                if buckets and (scope == "all" or len(buckets) > 1):
                    # The platform named a whole bucket (the number, or this chat): everyone on it waits.
                    # Longer waits are kept by the row itself (next_attempt_at), on the store's clock.
                    key = buckets[-1][0] if scope == "all" else buckets[0][0]
                    self.limiter.pause(key, min(retry_after, self.max_inline_wait))
                elif inline:
                    await asyncio.sleep(retry_after)  # only this recipient is limited: only this thread waits
                if inline:
                    waited += retry_after
                    continue
                return self._reschedule(retry_after, str(error)), None
            except TemporaryFailure as error:
                self._refund(reservation)
                failures += 1
                delay = self._backoff(failures)
                if waited + delay <= self.max_inline_wait:
                    waited += delay
                    await asyncio.sleep(delay)
                    continue
                return self._reschedule(self._backoff(claim.attempts + failures), str(error)), None
            except PermanentFailure as error:
                self._refund(reservation)
                return {"status": "failed", "error": str(error)[:2000], "next_attempt_at": None}, str(error)
            return {"status": "sent", "sent_at": self.now(), "platform_message_id": message_id,
                    "error": None, "next_attempt_at": None}, None

    async def _drawn(self, claim: _Claim) -> OutboundMessage:
        """The message with its chart drawn (off the event loop; the same figures give the same PNG, so a
        retry sends the same file). A chart that cannot be drawn is left out: the text has the facts."""
        try:
            image = await asyncio.to_thread(charts.render, claim.message.chart or {})
        except Exception:
            log.exception("notification %s: the chart could not be drawn; sending the text alone", claim.id)
            return replace(claim.message, chart=None)
        return replace(claim.message, image=image)

    def _refund(self, reservation: Reservation | None) -> None:
        if reservation is not None:
            self.limiter.refund(reservation)

    def _reschedule(self, seconds: float, error: str) -> dict[str, Any]:
        return {"status": "pending", "error": error[:2000], "next_attempt_at": self.now() + timedelta(seconds=seconds)}

    async def _renew_if_needed(self, run: _Run, index: int) -> None:
        now = self.now()
        if now < run.lease_until - self.lease / 2:
            return
        run.lease_until = now + self.lease
        rest = run.claims[index:]
        await self._db(self._renew, rest, run.lease_until)

    def _renew(self, claims: list[_Claim], until: datetime) -> None:
        """Move the lease of rows this run still holds to `until` (a renewal, or their release)."""
        with session_scope(self.engine) as session:
            for claim in claims:
                session.execute(update(_N).where(_N.c.id == claim.id, _N.c.attempts == claim.attempts,
                                                 _N.c.status == "pending").values(next_attempt_at=until))

    # --- settle --------------------------------------------------------------------------

    async def _record(self, claim: _Claim, values: dict[str, Any], failed_reason: str | None) -> int:
        """Settle one row; rows settled at about the same time share one database transaction."""
        done: asyncio.Future[list[int]] = asyncio.get_running_loop().create_future()
        self._settling.append((claim, values, failed_reason, done))
        if self._settler is None or self._settler.done():
            self._settler = asyncio.create_task(self._settle_batches())
        return (await done)[0]

    async def _settle_batches(self) -> None:
        while self._settling:
            batch, self._settling = self._settling, []
            try:
                results = await self._db(self._settle, [(c, v, f) for c, v, f, _ in batch])
            except Exception as error:
                for *_, done in batch:
                    done.set_exception(error)
                continue
            for result, (*_, done) in zip(results, batch, strict=True):
                done.set_result([result])

    def _settle(self, batch: list[tuple[_Claim, dict[str, Any], str | None]]) -> list[int]:
        results = []
        with Session(self.engine, expire_on_commit=False) as session:
            for claim, values, failed_reason in batch:
                result = session.execute(update(_N).where(_N.c.id == claim.id, _N.c.attempts == claim.attempts,
                                                          _N.c.status == "pending").values(**values))
                if result.rowcount != 1:
                    log.warning("notification %s: lease lost before settling (%s)", claim.id, values.get("status"))
                    results.append(0)
                    continue
                if failed_reason is not None and claim.exception_id:
                    session.add(TimelineEvent(
                        exception_id=claim.exception_id, at=self.now(), kind="not_reached", person_id=claim.person_id,
                        text=failed_reason[:2000], data={"channel": claim.channel_name, "notification": claim.id}))
                results.append(0 if values.get("status") == "pending" else 1)
            session.commit()
        return results

    # --- status edits --------------------------------------------------------------------

    def _editable(self) -> dict[str, EditableChannel]:
        return {name: ch for name, ch in self.channels.items() if isinstance(ch, EditableChannel)}

    def _mark_status(self) -> None:
        """Edits follow timeline events written after this worker started (older ones were shown already)."""
        with contextlib.suppress(Exception), Session(self.engine) as session:
            self._status_mark = session.execute(select(func.max(TimelineEvent.id))).scalar() or 0

    async def sync_status(self) -> int:
        """Edit sent messages (thread roots, cards with buttons) of exceptions whose status moved on."""
        editable = self._editable()
        if not editable or self._status_mark is None:
            return 0
        work = await self._db(self._status_work, list(editable))
        # Each edit waits for its own chat's slot (one chat's wait holds up no other edit), behind the
        # messages waiting for the platform-wide bucket: a new message matters more than an old one's status.
        done = await asyncio.gather(*(self._edit_status(editable[row.channel], row, exception)
                                      for row, exception in work))
        return sum(done)

    async def _edit_status(self, channel: EditableChannel, row: Notification, exception: PlantException) -> int:
        buckets = channel.rate_buckets(OutboundMessage(channel=row.channel, address=row.address, text="")) \
            if isinstance(channel, RateLimitedChannel) else ()
        reservation = await self.limiter.acquire(buckets, priority=EDIT_PRIORITY) if buckets else None
        try:
            await channel.update_status(row, exception)
        except (RateLimited, TemporaryFailure, PermanentFailure) as error:
            self._refund(reservation)
            log.info("status edit of notification %s on %s skipped: %s", row.id, row.channel, error)
            return 0
        return 1

    def _status_work(self, channels: list[str]) -> list[tuple[Notification, PlantException]]:
        with Session(self.engine, expire_on_commit=False) as session:
            events = session.execute(
                select(TimelineEvent.id, TimelineEvent.exception_id)
                .where(TimelineEvent.id > self._status_mark, TimelineEvent.kind.in_(STATUS_EVENTS))
                .order_by(TimelineEvent.id)).all()
            if not events:
                return []
            self._status_mark = events[-1][0]
            exception_ids = {exception_id for _, exception_id in events}
            exceptions = {e.id: e for e in session.execute(
                select(PlantException).where(PlantException.id.in_(exception_ids))).scalars()}
            # A message the lifecycle edits with buttons_update rows is theirs: a status edit would undo them.
            edited = _N.alias("edited")
            rows = session.execute(select(Notification).where(
                Notification.exception_id.in_(exception_ids), Notification.channel.in_(channels),
                Notification.status == "sent", Notification.platform_message_id.is_not(None),
                Notification.kind != BUTTONS_UPDATE, ~exists().where(edited.c.updates_id == Notification.id),
            ).order_by(Notification.id)).scalars().all()
            return [(row, exceptions[row.exception_id]) for row in rows
                    if row.exception_id in exceptions and (row.buttons or row.kind == "thread_root")]

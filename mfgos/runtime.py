"""The composition root: one place that builds the engine, plant, NLP, channels, ERP and workers.

`Runtime` is what every interface drives — the web console, the terminal chat, replay and
`serve`. Inbound events are stored as signals (committed) before they are processed;
processing runs in its own transaction that also marks the signal processed, so a crash
between the two leaves an unprocessed signal that `process_pending` picks up at start, or
in the periodic sweep of a live replica (`process_pending(older_than=...)`, mfgos/server.py).
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

from sqlalchemy import insert as sa_insert
from sqlalchemy import text as sa_text
from sqlalchemy import update
from sqlalchemy.exc import DBAPIError, IntegrityError, InterfaceError, OperationalError
from sqlmodel import Session, func, select

from bot.channels.base import CaptureChannel, Channel
from bot.outbox import NotificationOutbox
from erp_adapters.base import ErpAdapter
from erp_adapters.outbox import ErpOutbox, abandon_rejected, retry_rejected
from erp_adapters.registry import create_adapter
from mes_adapters.outbox import MesOutbox
from mes_adapters.registry import create_adapter as create_mes_adapter
from mfgos.config import Settings
from mfgos.metrics import SIGNAL_SECONDS
from models import (
    AckTimer,
    ChannelIdentity,
    ErpTransaction,
    MesTransaction,
    Notification,
    Person,
    Plant,
    Signal,
    make_engine,
    migrate,
    session_scope,
)
from models.partitions import Maintenance, maintain
from models.plant_file import PlantChanges, apply, load
from nlp import ocr
from nlp.extractor import Extractor, master_data_from_store
from routing import decisions, digests, mes, messages
from routing import workflow as wf
from routing.clock import Clock, SystemClock
from routing.conversation import handle_chat, photos_to_read
from routing.erp_rejections import RowChanges
from routing.inbound import Inbound
from routing.static import StaticCache
from signals.base import Incoming
from signals.bulk import insert_new
from signals.machine_state import next_breakdown_due, open_due_breakdowns
from signals.registry import SIGNAL_HANDLERS

log = logging.getLogger(__name__)
Handler = Callable[[wf.Context, Signal], None]
# 'mfgo': the advisory lock of the replica that runs the timers, with the schema's hash as the second
# key, so that stores in other schemas of one server (tenants, parallel tests) never skip each other's timers.
TIMER_LOCK = 0x6D66_676F
# A signal whose processing the database broke off (a deadlock with another replica, a lost connection)
# is tried this often, pausing TRANSIENT_PAUSE x the attempt between tries, before the sweep gets it.
TRANSIENT_ATTEMPTS = 3
TRANSIENT_PAUSE = 0.5
# 'mfgp', with the hash of the schema and plant id: one replica at a time loads a plant file.
PLANT_LOAD_LOCK = 0x6D66_6770
# 'mfgd', with the hash of the schema and plant id: one replica at a time sends a plant's digests.
DIGEST_LOCK = 0x6D66_6764
# A refused ERP transaction retried or abandoned from a thread: the outbox changes the row (routing imports no ERP code).
REJECTED_ROWS = RowChanges(retry=retry_rejected, abandon=abandon_rejected)
# NOTIFY channel: master data changed (a plant file loaded, an ERP sync); inbound workers of every
# replica rebuild their NLP indexes (mfgos/workers.py).
MASTER_DATA_CHANNEL = "mfgos_master_data"
SIGNALS = Signal.__table__  # type: ignore[attr-defined]


class _PhotosToRead(Exception):
    """Raised inside a chat signal's processing (so its transaction rolls back, nothing done) when
    its photos have not been read yet: they are read outside the processing lock, then it runs again."""

    def __init__(self, payload: dict[str, Any], photos: list[dict[str, Any]], language: str | None) -> None:
        super().__init__("photos to read")
        self.payload, self.photos, self.language = payload, photos, language


@dataclass
class Received:
    """What `receive` did: the signal id, and whether it was a redelivery of one already stored."""

    signal_id: int
    duplicate: bool = False


class Runtime:
    def __init__(self, settings: Settings, *, clock: Clock | None = None,
                 channels: dict[str, Channel] | None = None, erp: ErpAdapter | None = None) -> None:
        self.settings = settings
        self.clock = clock or SystemClock()
        self.engine = make_engine(settings.database_url)
        migrate(self.engine)
        self.plant_id = ""
        self._reader: Extractor | None = None
        self._processing = threading.Lock()
        self._static = StaticCache()  # people, shifts, rules: keyed on the plant's content hash
        self.load_plant(Path(settings.plant_file))
        self.channels: dict[str, Channel] = channels if channels is not None else {"console": CaptureChannel("console")}
        # The runtime's clock reaches the ERP too: documents posted in a replay carry its times.
        self.erp = erp or create_adapter(settings.erp, engine=self.engine, settings=settings, now=self.clock.now)
        self.notifications = NotificationOutbox(self.engine, self.channels, now=self.clock.now)
        self.erp_outbox = ErpOutbox(self.engine, self.erp, now=self.clock.now, on_settled=self._erp_settled)
        self.mes = create_mes_adapter(settings.mes, engine=self.engine, settings=settings, now=self.clock.now)
        self.mes_outbox = MesOutbox(self.engine, self.mes, now=self.clock.now, on_settled=self._mes_settled)
        # The one table processing picks a handler from: people's messages and buttons, then the signals.
        self.handlers: dict[str, Handler] = {
            "chat": self._converse, "action": self._converse, **SIGNAL_HANDLERS,
        }
        # With inbound workers in processes of their own (PostgreSQL, mfgos/workers.py) the web
        # process only stores; a trigger announces the signal to the workers.
        self.defer_processing = False
        self.ocr_limits = ocr.OcrLimits(max_bytes=settings.media_max_bytes, max_pixels=settings.ocr_max_pixels,
                                        timeout=settings.ocr_timeout, devanagari=settings.ocr_devanagari)

    # --- plant -------------------------------------------------------------------------

    def load_plant(self, path: Path) -> PlantChanges:
        """Load (or reload) the plant file; refresh the NLP indexes only when master data changed."""
        plant_file = load(path, now=self.clock.now())  # relative dates (`now+2h`) on this clock
        with session_scope(self.engine) as session:
            if self.engine.dialect.name == "postgresql":
                # Replicas starting together load the same file: one at a time (until this transaction
                # ends), so the second finds the plant stored instead of inserting it again.
                session.execute(sa_text("SELECT pg_advisory_xact_lock(:key, hashtext("
                                        "coalesce(current_schema(), '') || '/' || :plant))"),
                                {"key": PLANT_LOAD_LOCK, "plant": plant_file.plant.id})
            changes = apply(session, plant_file, source_file=str(path))
        self.plant_id = plant_file.plant.id
        self._static.invalidate()
        if changes.changed and self._reader is not None:
            with Session(self.engine) as session:
                self._reader.refresh(master_data_from_store(session, self.plant_id))
        if changes.changed:
            self._announce_master_data()
        return changes

    def _announce_master_data(self) -> None:
        """Tell the other processes reading messages (inbound workers, any replica) to rebuild their indexes."""
        if self.engine.dialect.name == "postgresql":
            with self.engine.begin() as connection:
                connection.execute(sa_text("SELECT pg_notify(:channel, '')"), {"channel": MASTER_DATA_CHANNEL})

    def refresh_master_data(self, *, announce: bool = True) -> None:
        """Rebuild the NLP indexes from the store after master data changed outside `load_plant`
        (an ERP sync; `announce`: and tell the other processes); nothing to do here until the
        indexes are first built."""
        if announce:
            self._announce_master_data()
        if self._reader is None:
            return
        with self._processing, Session(self.engine) as session:  # never under a message being read
            self._reader.refresh(master_data_from_store(session, self.plant_id))

    @property
    def reader(self) -> Extractor:
        """Built on first use: commands that never read a message don't pay for the indexes."""
        if self._reader is None:
            with Session(self.engine) as session:
                self._reader = Extractor(master_data_from_store(session, self.plant_id))
        return self._reader

    def plant(self, session: Session) -> Plant:
        plant = session.get(Plant, self.plant_id)
        assert plant is not None, "plant loaded at start"
        return plant

    # --- inbound -----------------------------------------------------------------------

    def person_for(self, channel: str, address: str) -> str | None:
        with Session(self.engine) as session:
            row = session.exec(select(ChannelIdentity).where(
                ChannelIdentity.channel == channel, ChannelIdentity.address == address)).first()
            return row.person_id if row else None

    def receive(self, *, source: str, source_key: str, kind: str, payload: dict[str, Any],
                person_id: str | None = None, process: bool = True) -> Received:
        """Store an inbound event (once per source key), then process it."""
        process = process and not self.defer_processing
        # A core INSERT ... RETURNING: every webhook pays for this, and the ORM's unit of work
        # (an object, a flush, its identity map) costs CPU here for nothing. One statement is atomic
        # by itself: in autocommit it is one round trip, where BEGIN and COMMIT would add two.
        row = {"plant_id": self.plant_id, "source": source, "source_key": source_key, "kind": kind,
               "received_at": self.clock.now(), "person_id": person_id, "payload": payload}
        # A stored key: on PostgreSQL the insert returns no row (models/partitions.py), on SQLite it raises.
        try:
            with self.engine.connect().execution_options(isolation_level="AUTOCOMMIT") as connection:
                signal_id = connection.execute(sa_insert(SIGNALS).values(row).returning(SIGNALS.c.id)).scalar()
        except IntegrityError:
            signal_id = None
        if signal_id is None:
            with Session(self.engine) as session:
                existing = session.exec(select(Signal).where(Signal.source_key == source_key)).one()
                signal_id, processed = existing.id, existing.processed_at is not None
            if process and not processed:
                self.process_signal(signal_id)
            return Received(signal_id=signal_id, duplicate=True)
        assert signal_id is not None
        if process:
            self.process_signal(signal_id)
        return Received(signal_id=signal_id)

    def receive_many(self, source: str, events: Sequence[Incoming]) -> list[Received]:
        """Store many inbound events in one transaction (a machine source's batch), not yet processed
        (except a repeat of the state last stored, which is stored as processed: it changes nothing).

        The same gate as `receive`, at plant scale: one `INSERT ... ON CONFLICT (source_key) DO
        NOTHING` for the batch (`signals.bulk`), so a redelivered event (or one stored by another replica) is
        found, not stored twice, and the batch commits as a whole or not at all. The caller
        acknowledges its transport after this returns and then calls `process_signals`.
        """
        if not events:
            return []
        now = self.clock.now()
        rows = [{"plant_id": self.plant_id, "source": source, "source_key": e.key, "kind": e.kind,
                 "received_at": now, "payload": e.payload, "processed_at": now if e.repeat else None}
                for e in events]
        with session_scope(self.engine) as session:
            new = insert_new(session.connection(), rows)
            missing = {e.key for e in events} - new.keys()
            old = {key: signal_id for key, signal_id in session.execute(select(Signal.source_key, Signal.id).where(
                Signal.source_key.in_(missing)))} if missing else {}  # type: ignore[attr-defined]
        first: set[str] = set()  # a key twice in one batch: the first is new, the second a duplicate
        received = []
        for event in events:
            key = event.key
            if key in new and key not in first:
                first.add(key)
                received.append(Received(signal_id=new[key]))
            else:
                received.append(Received(signal_id=new.get(key) or old[key], duplicate=True))
        return received

    def accept(self, event: Inbound) -> Received:
        """The one way in: every channel, the console, the terminal chat and replay hand their events here.

        The sender is found from the channel address unless the caller knows the person; a chat
        text over `routing.inbound.MAX_TEXT` is stored cut and marked, and answered "too long";
        the event is stored once per `(source, event_id)` and processed.
        """
        person_id = event.person_id
        if person_id is None and event.is_chat and event.address:
            person_id = self.person_for(event.source, event.address)
        return self.receive(source=event.source, source_key=event.source_key, kind=event.signal_kind,
                            payload=event.payload(), person_id=person_id)

    def receive_chat(self, *, channel: str, address: str, text: str, event_id: str,
                     exception_ref: str | None = None, action: str | None = None, reply_to: str | None = None,
                     person_id: str | None = None) -> Received:
        """A chat message by keywords (tests and benchmarks): `accept` of the same `Inbound`."""
        return self.accept(Inbound(source=channel, event_id=event_id, address=address, person_id=person_id,
                                   text=text, exception_ref=exception_ref, action=action, reply_to=reply_to))

    def process_signal(self, signal_id: int, *, skip_locked: bool = False) -> bool:
        """Process one stored signal; False when it was done already (or, `skip_locked`, being done elsewhere)."""
        # One signal at a time per process: the extractor's pipelines are not thread-safe and
        # SQLite takes one writer anyway; replicas on PostgreSQL run side by side.
        try:
            with self._processing, SIGNAL_SECONDS.time():
                return self._process_signal(signal_id, skip_locked=skip_locked)
        except _PhotosToRead as unread:
            # Seconds of Tesseract, outside the lock: the other messages of this process go on meanwhile.
            if not self._read_photos(signal_id, unread):
                return False
        try:
            with self._processing, SIGNAL_SECONDS.time():
                return self._process_signal(signal_id, skip_locked=skip_locked)
        except _PhotosToRead:
            return False  # read by nobody after all (the store failed meanwhile): the sweep takes it again

    def _read_photos(self, signal_id: int, unread: _PhotosToRead) -> bool:
        """OCR of a chat signal's photos, kept on the signal (`photo_text`, one result per photo) while it
        is unprocessed, so the conversation reads the text like a typed message. A crash before this
        commits leaves the signal as it was and the next processing reads the photos again; the same
        bytes give the same text, so a second replica reading them meanwhile changes nothing."""
        results = [{"sha256": item.get("sha256"), **self._read_photo(item, unread.language).to_json()}
                   for item in unread.photos]
        for result in results:
            if result["status"] != "read":
                log.info("signal %s: photo %s not read: %s %s", signal_id, str(result["sha256"])[:12],
                         result["status"], result["reason"])
        try:
            with session_scope(self.engine) as session:
                session.execute(update(Signal).where(Signal.id == signal_id, Signal.processed_at == None)  # noqa: E711
                                .values(payload={**unread.payload, "photo_text": results})
                                .execution_options(synchronize_session=False))
        except (OperationalError, InterfaceError) as error:
            log.warning("signal %s: the photos' text was not stored (%s); the sweep reads them again",
                        signal_id, str(error.orig or error).splitlines()[0][:200])
            return False
        return True

    def process_signals(self, signal_ids: Sequence[int]) -> None:
        """Process stored machine signals in one transaction: a source's batch costs one commit.

        Each signal is handled as `process_signal` would, in order, under the batch's row locks.
        If any of them fails the batch is rolled back and each signal is processed on its own,
        so one bad signal is recorded as failed without holding up the others.
        """
        if len(signal_ids) < 2:
            for signal_id in signal_ids:
                self.process_signal(signal_id)
            return
        with self._processing:
            try:
                with session_scope(self.engine) as session:
                    signals = session.exec(select(Signal).where(Signal.id.in_(signal_ids))  # type: ignore[union-attr]
                                           .where(Signal.processed_at == None)  # noqa: E711
                                           .order_by(Signal.id).with_for_update()).all()
                    plant = self.plant(session)
                    static, now = self._static.get(session, plant), self.clock.now()
                    held: dict[tuple[type, str], Any] = {}  # master rows read once for the whole batch
                    for signal in signals:
                        ctx = wf.Context(session=session, plant=plant, now=now, cause=f"signal:{signal.id}",
                                         static=static, new_cause=True, held=held)
                        if (handler := self.handlers.get(signal.kind)) is not None:
                            handler(ctx, signal)
                        else:
                            signal.error = f"unknown signal kind {signal.kind!r}"
                    # One UPDATE marks the batch processed; a signal a handler gave an error is
                    # written with it by the flush, as its own row.
                    session.flush()
                    session.execute(update(Signal).where(Signal.id.in_([s.id for s in signals]))  # type: ignore[union-attr]
                                    .values(processed_at=now).execution_options(synchronize_session=False))
                return
            except Exception:
                log.warning("processing a batch of %d signals failed; processing them one by one",
                            len(signal_ids), exc_info=True)
            for signal_id in signal_ids:
                self._process_signal(signal_id)

    def _read_photo(self, item: dict[str, Any], language: str | None) -> ocr.OcrResult:
        try:
            return ocr.read_file(Path(str(item["path"])), (language,), self.ocr_limits)
        except Exception as error:  # a bug in reading must not fail the message: it is read without the photo
            log.exception("reading the photo %s failed", item.get("path"))
            return ocr.OcrResult("failed", reason=f"{type(error).__name__}: {str(error)[:200]}")

    def _process_signal(self, signal_id: int, *, skip_locked: bool = False) -> bool:
        """Process one signal; a database that failed (not the signal) gets it again, never a "failed" mark.

        A deadlock with another replica is tried again at once. A lost connection (PostgreSQL
        restarting) leaves the signal unprocessed for the sweep (mfgos/server.py), where marking it
        failed would answer the sender "processing failed" and drop a report nothing was wrong with.
        """
        for attempt in range(1, TRANSIENT_ATTEMPTS + 1):
            try:
                return self._process_signal_once(signal_id, skip_locked=skip_locked)
            except (OperationalError, InterfaceError) as error:
                if attempt == TRANSIENT_ATTEMPTS:
                    log.warning("processing signal %s: the database failed %d times (%s); the sweep takes it again",
                                signal_id, attempt, str(error.orig or error).splitlines()[0][:200])
                    return False
                time.sleep(TRANSIENT_PAUSE * attempt)
        return False

    def _process_signal_once(self, signal_id: int, *, skip_locked: bool) -> bool:
        try:
            with session_scope(self.engine) as session:
                # The row lock makes a second replica handed the same event wait, then find it done;
                # a sweep (`skip_locked`) passes over a signal another replica is processing instead.
                # One round trip reads the signal, the plant row (whose content hash keys the static
                # cache) and the sender, whom every chat handler looks up first.
                found = session.exec(
                    select(Signal, Plant, Person).select_from(Signal).join(Plant, Plant.id == self.plant_id)
                    .join(Person, (Person.plant_id == Plant.id) & (Person.id == Signal.person_id), isouter=True)
                    .where(Signal.id == signal_id).with_for_update(skip_locked=skip_locked, of=Signal)).first()
                if found is None or found[0].processed_at is not None:
                    return False
                signal, plant, sender = found
                # First processing of this signal (checked under its row lock): no row of this
                # cause can be stored yet, so notifications need no look-up by key.
                ctx = wf.Context(session=session, plant=plant, now=self.clock.now(), cause=f"signal:{signal_id}",
                                 static=self._static.get(session, plant), new_cause=True)
                if sender is not None:  # `wf.person` finds it in the session, without a query
                    ctx.held[(Person, sender.id)] = sender
                    if signal.kind == "chat" and self.ocr_limits.max_pixels and \
                            (photos := photos_to_read(signal.payload)):
                        raise _PhotosToRead(dict(signal.payload), photos, sender.language)
                if (handler := self.handlers.get(signal.kind)) is not None:
                    handler(ctx, signal)
                else:
                    signal.error = f"unknown signal kind {signal.kind!r}"
                signal.processed_at = ctx.now
                session.add(signal)
        except (OperationalError, InterfaceError, _PhotosToRead):
            raise  # the database, not the signal: `_process_signal` tries again; photos: `process_signal`
        except Exception as error:  # the signal stays stored; say so to the sender and move on
            if isinstance(error, DBAPIError) and error.connection_invalidated:
                # The store went away (a restart, a dropped connection), not the message: it stays
                # unprocessed for the next pass, rather than answered "failed" for good.
                raise
            log.exception("processing signal %s failed", signal_id)
            self._record_failure(signal_id, error)
        return True

    def _converse(self, ctx: wf.Context, signal: Signal) -> None:
        handle_chat(ctx, signal, self.reader, REJECTED_ROWS)

    def _record_failure(self, signal_id: int, error: Exception) -> None:
        with session_scope(self.engine) as session:
            signal = session.get(Signal, signal_id)
            if signal is None:
                return
            signal.error = f"{type(error).__name__}: {error}"[:2000]
            signal.processed_at = self.clock.now()
            session.add(signal)
            ctx = wf.Context(session=session, plant=self.plant(session), now=self.clock.now(),
                             cause=f"signal:{signal_id}:failed")
            who = wf.person(ctx, signal.person_id)
            if who:
                wf.notify(ctx, who, "reply", messages.render("processing_failed", who.language),
                          reply_channel=signal.payload.get("channel"))

    def process_pending(self, older_than: timedelta | None = None) -> int:
        """Process signals stored but not processed (a crash between storing and processing).

        `older_than`: only signals received at least that long ago, and never one another replica
        is processing right now (SKIP LOCKED): the periodic sweep of `serve` (mfgos/server.py),
        which picks up what a crashed replica left without racing the replicas still working."""
        query = select(Signal.id).where(Signal.processed_at == None).order_by(Signal.id)  # noqa: E711
        if older_than is not None:
            query = query.where(Signal.received_at <= self.clock.now() - older_than)
        with Session(self.engine) as session:
            ids = session.exec(query).all()
        for signal_id in ids:
            self.process_signal(signal_id, skip_locked=older_than is not None)
        return len(ids)

    def process_waiting(self, limit: int = 100) -> int:
        """Process the oldest unprocessed signals, passing over any another process holds: an inbound
        worker's pass (mfgos/workers.py). Returns how many this call processed."""
        query = select(Signal.id).where(Signal.processed_at == None).order_by(Signal.id).limit(limit)  # noqa: E711
        # A read outside any transaction: one round trip per pass, not three (BEGIN, SELECT, ROLLBACK).
        with self.engine.connect().execution_options(isolation_level="AUTOCOMMIT") as connection:
            ids = connection.execute(query).scalars().all()
        return sum(self.process_signal(signal_id, skip_locked=True) for signal_id in ids)

    # --- time and outboxes -------------------------------------------------------------

    def maintain_partitions(self) -> Maintenance:
        """Keep the monthly partitions on this runtime's clock, with MFGOS_RETENTION_MONTHS (models/partitions.py)."""
        report = maintain(self.engine, self.clock.now(), self.settings.retention_months)
        if report.created or report.dropped or report.moved:
            log.info("partitions: created %s, moved %d row(s) out of the default partitions, dropped %s",
                     report.created, report.moved, report.dropped)
        return report

    def fire_timers(self) -> int:
        """Fire due escalation timers and open the breakdowns `min_down` held back; on PostgreSQL only the
        replica holding the advisory lock does."""
        with session_scope(self.engine) as session:
            if self.engine.dialect.name == "postgresql":
                locked = session.exec(sa_text(
                    "SELECT pg_try_advisory_xact_lock(:key, hashtext(coalesce(current_schema(), '')))",
                ).bindparams(key=TIMER_LOCK)).one()
                if not locked[0]:
                    return 0
            plant = self.plant(session)
            ctx = wf.Context(session=session, plant=plant, now=self.clock.now(), cause="timers",
                             static=self._static.get(session, plant))
            return wf.escalate_unacknowledged(ctx) + open_due_breakdowns(ctx) + decisions.remind(ctx)

    def send_digests(self) -> int:
        """Queue the digests of every period that ended since the last pass (routing/digests.py); how many
        messages. On PostgreSQL only the replica holding the plant's digest lock does, and the digests' mark
        moves in the same transaction as their outbox rows: two replicas or a restart send each one once."""
        with session_scope(self.engine) as session:
            if self.engine.dialect.name == "postgresql":
                locked = session.exec(sa_text(
                    "SELECT pg_try_advisory_xact_lock(:key, hashtext(coalesce(current_schema(), '') || '/' || :plant))",
                ).bindparams(key=DIGEST_LOCK, plant=self.plant_id)).one()
                if not locked[0]:
                    return 0
            plant = self.plant(session)
            ctx = wf.Context(session=session, plant=plant, now=self.clock.now(), cause="digests",
                             static=self._static.get(session, plant))
            return digests.send_due(ctx)

    def next_digest(self, after: datetime) -> datetime | None:
        """When the plant's next digest is due, strictly after `after` (None: the plant file has no `digests:`)."""
        with Session(self.engine) as session:
            return digests.next_end(session, self.plant(session), after)

    def next_due(self, after: datetime | None = None) -> datetime | None:
        """The earliest moment something is due: an escalation timer, a breakdown `min_down` held back, or
        an outbox retry.

        With `after`, the earliest moment strictly later: replay steps its clock from one due
        moment to the next past rows that are due but cannot go yet (an ERP transaction queued
        behind an earlier one of its exception, a channel that is not configured)."""
        with Session(self.engine) as session:
            if after is None:
                timer = wf.next_timer_due(session)
            else:
                timer = session.exec(select(func.min(AckTimer.due_at)).where(
                    AckTimer.status == "pending", AckTimer.due_at > after)).one()
            erp = select(func.min(ErpTransaction.next_attempt_at)).where(ErpTransaction.status == "pending")
            note = select(func.min(Notification.next_attempt_at)).where(Notification.status == "pending")
            to_mes = select(func.min(MesTransaction.next_attempt_at)).where(MesTransaction.status == "pending")
            if after is not None:
                erp = erp.where(ErpTransaction.next_attempt_at > after)
                note = note.where(Notification.next_attempt_at > after)
                to_mes = to_mes.where(MesTransaction.next_attempt_at > after)  # type: ignore[operator]
            moments = [timer, session.exec(erp).one(), session.exec(note).one(), session.exec(to_mes).one(),
                       next_breakdown_due(session, after), decisions.next_reminder(session, after)]
        return min((m for m in moments if m is not None), default=None)

    def _erp_settled(self, session: Session, txn: Any, outcome: str, detail: str) -> None:
        wf.record_erp_result(session, txn, outcome, detail, self.clock.now())
        decisions.erp_result(session, txn, outcome, self.clock.now())

    def _mes_settled(self, session: Session, row: MesTransaction, outcome: str, detail: str) -> None:
        mes.record_result(session, row, outcome, detail, self.clock.now())

    async def drain(self, rounds: int = 20) -> None:
        """Run timers and the outboxes (ERP, MES, notifications) until nothing more is due now."""
        for _ in range(rounds):
            work = self.fire_timers()
            work += await self.erp_outbox.post_due()
            work += await self.mes_outbox.send_due()
            work += await self.notifications.deliver_due()
            if not work:
                return

    async def aclose(self) -> None:
        await self.erp.aclose()
        await self.mes.aclose()
        self.engine.dispose()

    # --- views -------------------------------------------------------------------------

    def notifications_for(self, person_id: str, after_id: int = 0) -> list[Notification]:
        with Session(self.engine) as session:
            return list(session.exec(select(Notification).where(
                Notification.person_id == person_id, Notification.id > after_id).order_by(Notification.id)))


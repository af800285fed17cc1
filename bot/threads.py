"""Area threads: every exception of an area gets one thread in the area's group conversation.

A Slack channel or a Telegram group (or forum) per area is the shared view of the floor:
the thread's root shows the exception and is edited as its status moves on, and each
timeline event worth knowing (who was paged, acknowledged, proposed, approved, was not
reached ...) is one reply, written once in the thread's language, never once per
recipient. The people routed still get their own direct message with their buttons,
so the thread never pings them a second time (names, not mentions).

The mirror turns timeline events into outbox rows (`Notification` of kind `thread_root`
and `thread_reply`, addressed to the conversation), so they are delivered like every
other message: in order within the thread (the root first), rate-limited, retried. Rows
are keyed by conversation, exception and event, so replicas mirroring the same events
and a restart re-reading the last minutes write each row once.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections import deque
from collections.abc import Callable
from concurrent.futures import Executor
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy import func
from sqlalchemy.exc import IntegrityError
from sqlmodel import Session, select

from models import Notification, Person, PlantException, TimelineEvent
from routing import messages

log = logging.getLogger(__name__)

THREAD_KINDS = ("thread_root", "thread_reply")
# Timeline events the thread shows; "opened" only brings the root (which shows the exception).
SHOWN = ("opened", "routed", "escalated", "acknowledged", "proposed", "approved", "rejected", "erp_posted",
         "erp_rejected", "closed", "not_reached", "reported_again")
CATCH_UP = timedelta(days=1)  # on start: events this recent are mirrored if they are not yet
OVERLAP = 30.0  # seconds: every pass re-reads the ids that were new this recently, for late commits
PERSON = "thread:"  # the person_id prefix of thread rows (nobody to reach: a conversation)


def thread_person(channel: str, conversation: str) -> str:
    return f"{PERSON}{channel}:{conversation}"


@dataclass
class AreaThreads:
    """The mirror of one channel: area id -> conversation ("*": every other area)."""

    channel: str
    conversations: dict[str, str]
    engine: Any
    language: str = "en"
    interval: float = 0.5
    _mark: int | None = field(default=None, init=False)  # the highest event id read
    _marks: deque[tuple[float, int]] = field(default_factory=deque, init=False)  # (monotonic time, mark) of passes
    _done: set[int] = field(default_factory=set, init=False)  # event ids above the oldest kept mark, handled

    def conversation(self, area: str | None) -> str | None:
        return self.conversations.get(area or "") or self.conversations.get("*")

    def mirror(self, now: datetime | None = None) -> int:
        """One pass: write the rows of events not mirrored yet; returns how many rows were written."""
        now = now or datetime.now(UTC)
        tick = time.monotonic()
        first = self._mark is None
        if first:
            since = TimelineEvent.at >= now - CATCH_UP
        else:
            # Ids a little below the mark again: a transaction that took its ids earlier may commit later.
            while len(self._marks) > 1 and self._marks[1][0] <= tick - OVERLAP:
                self._marks.popleft()
            since = TimelineEvent.id > self._marks[0][1]
        query = (select(TimelineEvent, PlantException)
                 .join(PlantException, PlantException.id == TimelineEvent.exception_id)  # type: ignore[arg-type]
                 .where(since, TimelineEvent.kind.in_(SHOWN))  # type: ignore[attr-defined]
                 .order_by(TimelineEvent.id))
        if "*" not in self.conversations:
            query = query.where(PlantException.area_id.in_(list(self.conversations)))  # type: ignore[union-attr]
        with Session(self.engine) as session:
            if first:
                # Ids a transaction still open now could take are above those of events this old.
                settled = session.exec(select(func.max(TimelineEvent.id)).where(
                    TimelineEvent.at < now - timedelta(seconds=OVERLAP))).one() or 0
                self._marks.append((tick - OVERLAP, settled))
            read = [(event, exc) for event, exc in session.exec(query) if event.id not in self._done]
            found = [(event, exc) for event, exc in read
                     if self.conversation(exc.area_id) and not (event.kind == "not_reached"
                                                                and (event.person_id or "").startswith(PERSON))]
            written = 0
            if found:
                rows = self._rows(session, found, now)
                keys = [row.dedupe_key for row in rows]
                have = dict(session.exec(select(Notification.dedupe_key, Notification.status).where(
                    Notification.dedupe_key.in_(keys))).all())  # type: ignore[attr-defined]
                # A thread whose root the platform refused for good (the bot is not in the channel) gets no
                # replies: its one not_reached event says so, not one per event.
                dead = {row.exception_id for row in rows if row.kind == "thread_root" and have.get(row.dedupe_key) == "failed"}
                new = [row for row in rows if row.dedupe_key not in have and row.exception_id not in dead]
                session.add_all(new)
                try:
                    session.commit()
                except IntegrityError:  # another replica wrote some of them first: the next pass skips those
                    session.rollback()
                    return 0
                written = len(new)
            ids = [event.id or 0 for event, _ in read]
        self._done.update(ids)
        self._mark = max([self._mark or 0, *ids])
        self._marks.append((tick, self._mark))
        low = self._marks[0][1]
        self._done = {i for i in self._done if i > low}
        return written

    def _rows(self, session: Session, found: list[tuple[TimelineEvent, PlantException]],
              now: datetime) -> list[Notification]:
        names = self._names(session, found)
        rows: list[Notification] = []
        rooted: set[int] = set()
        for event, exc in found:
            conversation = self.conversation(exc.area_id)
            assert conversation is not None and exc.id is not None
            base = f"{self.channel}-thread:{conversation}:{exc.id}"
            common = {"plant_id": exc.plant_id, "exception_id": exc.id, "channel": self.channel,
                      "address": conversation, "person_id": thread_person(self.channel, conversation),
                      "language": self.language, "created_at": now, "next_attempt_at": now}
            if exc.id not in rooted:
                rooted.add(exc.id)
                # The root's own text is the exception's card, rendered when it is sent.
                rows.append(Notification(dedupe_key=base, kind="thread_root", text=exc.code, **common))
            text = self.line(event, exc, names)
            if text:
                rows.append(Notification(dedupe_key=f"{base}:{event.id}", kind="thread_reply", text=text, **common))
        return rows

    @staticmethod
    def _names(session: Session, found: list[tuple[TimelineEvent, PlantException]]) -> dict[str, str]:
        ids = {pid for event, _ in found for pid in [event.person_id, *((event.data or {}).get("people") or [])] if pid}
        if not ids:
            return {}
        people = session.exec(select(Person).where(Person.id.in_(ids)))  # type: ignore[attr-defined]
        return {p.id: p.name for p in people}

    def line(self, event: TimelineEvent, exc: PlantException, names: dict[str, str]) -> str | None:
        """The reply one timeline event becomes, in the thread's language (None: the root says it)."""
        lang, data = self.language, event.data or {}
        name = names.get(event.person_id or "", event.person_id or "?")
        people = ", ".join(names.get(p, p) for p in data.get("people") or []) or "-"
        reason = f" {event.text}" if event.text else ""
        match event.kind:
            case "routed" if data.get("people"):
                return messages.render("thread_paged", lang, code=exc.code, names=people, role=data.get("role", "?"))
            case "escalated":
                return messages.render("thread_escalated", lang, code=exc.code, role=data.get("role", "?"),
                                       to_role=data.get("to_role", "?"), names=people)
            case "acknowledged":
                return messages.render("acknowledged", lang, code=exc.code, name=name)
            case "proposed":
                return messages.render("proposal", lang, code=exc.code, name=name, summary=event.text or "-")
            case "approved":
                return messages.render("approved", lang, code=exc.code, name=name) + reason
            case "rejected":
                return messages.render("rejected", lang, code=exc.code, name=name, reason=event.text or "")
            case "erp_posted":
                return messages.render("erp_posted", lang, code=exc.code, kind=data.get("kind", "?"),
                                       reference=data.get("reference", "?"))
            case "erp_rejected":
                return messages.render("erp_rejected", lang, code=exc.code, kind=data.get("kind", "?"),
                                       reason=event.text or "?")
            case "closed":
                return messages.render("closed", lang, code=exc.code)
            case "not_reached":
                return messages.render("thread_not_reached", lang, code=exc.code, name=name,
                                       channel=data.get("channel", "?"))
            case "reported_again":
                return messages.render("thread_reported_again", lang, code=exc.code, name=name,
                                       text=(event.text or "")[:300])
        return None

    async def run(self, wake: Callable[[], None] | None = None, executor: Executor | None = None) -> None:
        """Mirror until cancelled, waking the outbox when rows were written; `executor`: the thread that
        writes inbound messages (on SQLite one writer at a time avoids waiting for each other's lock)."""
        loop = asyncio.get_running_loop()
        while True:
            try:
                if await loop.run_in_executor(executor, self.mirror) and wake is not None:
                    wake()
            except Exception:
                log.exception("%s area threads: mirror pass failed; trying again shortly", self.channel)
            await asyncio.sleep(self.interval)

"""The notification outbox worker: delivers pending chat messages through their channel.

Rows were written in the same database transaction as the decision that caused them. The
worker keeps the order of messages to one person about one exception, retries rate limits
and temporary failures, and records permanent failures on the exception's timeline so a
person can see who was not reached.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime, timedelta

from sqlalchemy.engine import Engine
from sqlmodel import Session, select

from bot.channels.base import Channel, OutboundMessage, PermanentFailure, RateLimited, TemporaryFailure
from models import Notification, PlantException, TimelineEvent, session_scope

MAX_BACKOFF = timedelta(minutes=5)


def thread_key(row: Notification) -> str:
    return f"{row.channel}:{row.address}:{row.exception_id or '-'}"


class NotificationOutbox:
    def __init__(self, engine: Engine, channels: dict[str, Channel], *, now: Callable[[], datetime],
                 fallback: str | None = "console") -> None:
        self.engine = engine
        self.channels = channels
        self.now = now
        self.fallback = fallback

    def _channel_for(self, row: Notification) -> Channel | None:
        return self.channels.get(row.channel) or (self.channels.get(self.fallback) if self.fallback else None)

    async def deliver_due(self, limit: int = 500) -> int:
        """One pass over due rows in creation order; returns how many were settled."""
        now = self.now()
        with Session(self.engine) as session:
            ids = session.exec(
                select(Notification.id).where(Notification.status == "pending", Notification.next_attempt_at <= now)
                .order_by(Notification.id).limit(limit)
            ).all()
        blocked: set[str] = set()
        settled = 0
        for row_id in ids:
            with session_scope(self.engine) as session:
                row = session.get(Notification, row_id)
                if row is None or row.status != "pending":
                    continue
                key = thread_key(row)
                if key in blocked:
                    continue  # an earlier message of this thread is waiting: keep the order
                channel = self._channel_for(row)
                if channel is None:
                    self._fail(session, row, f"no channel {row.channel!r} configured")
                    settled += 1
                    continue
                message = OutboundMessage(
                    channel=row.channel, address=row.address, text=row.text, notification_id=row.id,
                    exception_code=self._code(session, row), thread_key=key, buttons=tuple(row.buttons),
                    language=row.language,
                )
                row.attempts += 1
                try:
                    row.platform_message_id = await channel.send(message)
                except RateLimited as error:
                    row.next_attempt_at = now + timedelta(seconds=error.retry_after)
                    row.error = str(error)
                    blocked.add(key)
                except TemporaryFailure as error:
                    row.next_attempt_at = now + min(MAX_BACKOFF, timedelta(seconds=2 ** min(row.attempts, 8)))
                    row.error = str(error)
                    blocked.add(key)
                except PermanentFailure as error:
                    self._fail(session, row, str(error))
                    settled += 1
                else:
                    row.status, row.sent_at, row.error = "sent", now, None
                    if channel.name != row.channel:
                        row.error = f"{row.channel} not configured; shown on {channel.name}"
                    settled += 1
                session.add(row)
        return settled

    def _fail(self, session: Session, row: Notification, reason: str) -> None:
        row.status, row.error = "failed", reason
        session.add(row)
        if row.exception_id:
            session.add(TimelineEvent(exception_id=row.exception_id, at=self.now(), kind="not_reached",
                                      person_id=row.person_id, text=reason,
                                      data={"channel": row.channel, "notification": row.id}))

    @staticmethod
    def _code(session: Session, row: Notification) -> str | None:
        exc = session.get(PlantException, row.exception_id) if row.exception_id else None
        return exc.code if exc else None

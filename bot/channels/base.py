"""The one protocol every chat channel implements, and the neutral message types.

A channel only converts: platform payload -> `InboundMessage`, `OutboundMessage` -> platform
call. Everything else (signatures, dedupe, identity, conversation) is shared.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Protocol, runtime_checkable


@dataclass(frozen=True)
class InboundAttachment:
    kind: str  # photo | voice | file
    content_type: str | None = None
    url: str | None = None
    data: bytes | None = None


@dataclass(frozen=True)
class InboundMessage:
    channel: str
    address: str  # the sender's id on the platform (Slack user id, Telegram user id, phone)
    event_id: str  # the platform's id of this delivery, for de-duplication
    text: str = ""
    exception_ref: str | None = None  # the exception this belongs to, if the platform thread says so
    action: str | None = None  # a button press: ack | approve | reject | propose
    chat_id: str | None = None
    thread_id: str | None = None
    reply_to: str | None = None  # platform id of the message this one replies to or quotes
    attachments: tuple[InboundAttachment, ...] = ()
    received_at: datetime | None = None
    aliases: tuple[str, ...] = ()  # other ids of the same sender (WhatsApp: wa_id and the business-scoped user id)


BUTTONS_UPDATE = "buttons_update"  # the kind of an outbox row that edits an earlier message's buttons


@dataclass(frozen=True)
class Original:
    """The earlier message a `buttons_update` row edits, as the outbox found it when it claimed the row."""

    status: str  # its outbox status: only a sent one has a platform message to edit
    platform_message_id: str | None
    kind: str
    text: str


@dataclass(frozen=True)
class OutboundMessage:
    channel: str
    address: str
    text: str
    notification_id: int | None = None
    exception_code: str | None = None
    thread_key: str | None = None  # messages with one key keep their order
    buttons: tuple[str, ...] = ()  # ack | approve | reject | propose
    language: str = "en"
    kind: str = ""  # the outbox row's kind; thread_root / thread_reply are posts in an area thread (bot/threads.py)
    # kind buttons_update: the message whose buttons become `buttons` (possibly none); `text` is the status line
    updates: Original | None = None
    chart: dict[str, Any] | None = None  # the figures of a chart answer (routing/queries.py `Chart`)
    # The chart drawn (PNG, bot/charts.py), set by the outbox before `send`: the channel sends it with
    # `text` as its caption. None: a text message (no chart, or the drawing failed: the facts still go).
    image: bytes | None = None


class DeliveryError(Exception):
    """Base of the outbound error family."""


class RateLimited(DeliveryError):
    def __init__(self, retry_after: float) -> None:
        super().__init__(f"rate limited, retry after {retry_after}s")
        self.retry_after = retry_after


class TemporaryFailure(DeliveryError):
    """5xx or network error: retry with backoff."""


class PermanentFailure(DeliveryError):
    """The platform will never accept this message (blocked bot, unknown chat): record it."""


@runtime_checkable
class Channel(Protocol):
    name: str

    async def send(self, message: OutboundMessage) -> str:
        """Hand one message to the platform; return the platform's message id."""
        ...


@dataclass
class CapturedMessage:
    message: OutboundMessage
    platform_message_id: str


@dataclass
class CaptureChannel:
    """Keeps what it is given: the console and replay read from it; tests assert on it."""

    name: str
    sent: list[CapturedMessage] = field(default_factory=list)

    async def send(self, message: OutboundMessage) -> str:
        message_id = f"{self.name}-{len(self.sent) + 1}"
        self.sent.append(CapturedMessage(message, message_id))
        return message_id

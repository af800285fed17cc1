"""Inbound checks every channel shares, so a platform module only converts payloads.

- Signatures: HMAC-SHA256 helpers for WhatsApp (`X-Hub-Signature-256` over the raw body),
  the generic bridge (timestamped, so a replay of an old request is refused) and the
  Telegram secret-token header. Slack requests are verified by slack-bolt's own signature
  middleware (the same v0 HMAC, ±5 minutes), which the Slack channel configures.
- `InboundGate.accept`: drops our own messages, drops redeliveries while one is being
  handled in this process, maps the platform identity to a person of the plant (cached),
  stores photos and voice notes of known people, then hands the message to the core gate
  every way in shares (`Runtime.accept`: the size limit, the store's dedupe by event id,
  processing), and wakes the outbox so the answers leave at once. A sender who is not in
  the plant is stored too and gets only the short "not registered" reply, at most once an
  hour (in the language of their message, routing/conversation.py). A
  platform that tells a user's language only on request (Slack's `users.info` locale) passes
  `locale`, which is asked for strangers alone: the plant's people have their language in the
  plant file, and a lookup per message would cost a request each.
"""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import logging
import time
from collections import OrderedDict
from collections.abc import Awaitable, Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any, Protocol

from bot.channels.base import InboundAttachment, InboundMessage
from bot.media import MediaStore
from routing.inbound import MAX_TEXT, Inbound

log = logging.getLogger(__name__)

BRIDGE_MAX_AGE = 300  # seconds a signed bridge request stays valid (as Slack's window)
SEEN = 10_000  # recently handled event keys remembered in process
IDENTITY_TTL = 60.0  # seconds a platform address -> person lookup is reused (a reloaded plant file shows after it)

Fetch = Callable[[InboundAttachment], Awaitable[tuple[bytes, str | None]]]


# --- signatures ----------------------------------------------------------------------------


def hmac_hex(secret: str | bytes, message: bytes) -> str:
    key = secret.encode() if isinstance(secret, str) else secret
    return hmac.new(key, message, hashlib.sha256).hexdigest()


def verify_whatsapp(app_secret: str, raw_body: bytes, header: str | None) -> bool:
    """`X-Hub-Signature-256: sha256=<hex HMAC-SHA256(app secret, raw body)>`."""
    if not header or not header.startswith("sha256="):
        return False
    return hmac.compare_digest(header[7:].lower(), hmac_hex(app_secret, raw_body))


def sign_bridge(secret: str, raw_body: bytes, timestamp: int | None = None) -> dict[str, str]:
    """The headers of a signed bridge request (both directions use the same scheme)."""
    ts = str(int(time.time()) if timestamp is None else timestamp)
    digest = hmac_hex(secret, ts.encode() + b"." + raw_body)
    return {"X-Mfgos-Timestamp": ts, "X-Mfgos-Signature": f"sha256={digest}"}


def verify_bridge(secret: str, raw_body: bytes, timestamp: str | None, signature: str | None,
                  now: float | None = None, max_age: int = BRIDGE_MAX_AGE) -> bool:
    """HMAC-SHA256 over `<timestamp>.<raw body>`; refused when the timestamp is off by more than `max_age`."""
    if not timestamp or not signature or not signature.startswith("sha256="):
        return False
    try:
        sent = int(timestamp)
    except ValueError:
        return False
    if abs((time.time() if now is None else now) - sent) > max_age:
        return False
    expected = hmac_hex(secret, timestamp.encode() + b"." + raw_body)
    return hmac.compare_digest(signature[7:].lower(), expected)


def verify_telegram(secret: str, header: str | None) -> bool:
    """Telegram echoes the `secret_token` given to setWebhook in `X-Telegram-Bot-Api-Secret-Token`."""
    return bool(header) and hmac.compare_digest(header.encode(), secret.encode())


# --- the gate ------------------------------------------------------------------------------


class Receiver(Protocol):
    """What the gate needs from the runtime (mfgos.runtime.Runtime has it)."""

    engine: Any

    def person_for(self, channel: str, address: str) -> str | None: ...

    def accept(self, event: Inbound) -> Any: ...


@dataclass(frozen=True)
class Accepted:
    """What the gate did with one inbound message."""

    outcome: str  # stored | duplicate | own
    signal_id: int | None = None
    person_id: str | None = None


class InboundGate:
    def __init__(self, runtime: Receiver, *, media: MediaStore | None = None,
                 wake: Callable[[], None] | None = None, workers: int | None = None) -> None:
        self.runtime = runtime
        self.media = media
        self.wake = wake
        self.sqlite = str(getattr(runtime.engine, "url", "")).startswith("sqlite")
        # SQLite takes one writer at a time: one worker avoids lock waits; PostgreSQL takes several.
        self._pool = ThreadPoolExecutor(max_workers=workers or (1 if self.sqlite else 4), thread_name_prefix="inbound")
        self._inflight: set[str] = set()
        self._seen: OrderedDict[str, None] = OrderedDict()
        self._people: dict[tuple[str, str], tuple[str | None, float]] = {}

    @property
    def executor(self) -> ThreadPoolExecutor:
        """The thread(s) that write inbound messages; on SQLite the outbox writes there too."""
        return self._pool

    def close(self) -> None:
        self._pool.shutdown(wait=True)

    async def _run(self, fn: Callable[..., Any], *args: Any, **kwargs: Any) -> Any:
        loop = asyncio.get_running_loop()
        return await loop.run_in_executor(self._pool, lambda: fn(*args, **kwargs))

    async def accept(self, message: InboundMessage, *, own: bool = False, language: str | None = None,
                     fetch: Fetch | None = None,
                     locale: Callable[[], Awaitable[str | None]] | None = None) -> Accepted:
        """Store and process one inbound message once; see the module docstring for the order of checks."""
        if own:
            return Accepted("own")
        key = f"{message.channel}:{message.event_id}"
        if key in self._inflight or key in self._seen:
            return Accepted("duplicate")
        self._inflight.add(key)
        try:
            person_id = await self._run(self._identify, message)
            if person_id is None and language is None and locale is not None:
                language = await locale()
            # A message over the size limit is only answered "too long": nothing of it is fetched.
            keep = person_id is not None and len(message.text) <= MAX_TEXT
            attachments = await self._keep_attachments(message, fetch) if keep else \
                [{"kind": a.kind, "content_type": a.content_type, "stored": False} for a in message.attachments]
            event = Inbound(
                source=message.channel, event_id=message.event_id, address=message.address, person_id=person_id,
                text=message.text, action=message.action, exception_ref=message.exception_ref,
                reply_to=message.reply_to, chat_id=message.chat_id, thread_id=message.thread_id,
                language=language, attachments=tuple(attachments))
            received = await self._run(self.runtime.accept, event)
            if self.media is not None and any(a.get("path") for a in attachments) and not received.duplicate:
                await self._run(self.media.link, self.runtime.engine, received.signal_id, attachments,
                                message.exception_ref)
        finally:
            self._inflight.discard(key)
        self._seen[key] = None
        if len(self._seen) > SEEN:
            self._seen.popitem(last=False)
        if self.wake is not None:
            self.wake()
        return Accepted("duplicate" if received.duplicate else "stored", received.signal_id, person_id)

    def _identify(self, message: InboundMessage) -> str | None:
        now = time.monotonic()
        for address in (message.address, *message.aliases):
            if not address:
                continue
            key = (message.channel, address)
            cached = self._people.get(key)
            if cached is None or cached[1] < now:
                cached = (self.runtime.person_for(message.channel, address), now + IDENTITY_TTL)
                self._people[key] = cached
            if cached[0]:
                return cached[0]
        return None

    async def _keep_attachments(self, message: InboundMessage, fetch: Fetch | None) -> list[dict[str, Any]]:
        kept: list[dict[str, Any]] = []
        for item in message.attachments:
            data, content_type = item.data, item.content_type
            try:
                if data is None and fetch is not None:
                    data, fetched_type = await fetch(item)
                    content_type = content_type or fetched_type
                if data is None or self.media is None:
                    raise ValueError("no content")
                kept.append(await self._run(self.media.save, data, item.kind, content_type))
            except Exception as error:  # the message still counts; the timeline says the file is missing
                log.warning("%s: attachment %s not stored: %s", message.channel, item.kind, error)
                kept.append({"kind": item.kind, "content_type": content_type, "stored": False,
                             "error": str(error)[:200]})
        return kept

"""The generic bridge: self-hosted WhatsApp bridges and other messengers plug in over signed HTTP.

Protocol (docs/channels.md has the full spec with examples):

- Inbound: the bridge POSTs JSON to `/bridge/inbound` with `X-Mfgos-Timestamp: <unix
  seconds>` and `X-Mfgos-Signature: sha256=<hex HMAC-SHA256(secret, "<timestamp>.<raw body>")>`.
  Body: `event_id` and `from` (required), `text`, `action` (ack | propose | approve |
  reject, `choose:E-0042`, the answer button of a "which one?", or `erp_retry:<id>` /
  `erp_abandon:<id>`, Retry / Abandon of a refused ERP transaction), `exception` (a code),
  `reply_to` (the `message_id` we returned for the message being answered), `thread`, `chat`,
  `language`, `from_me`, `attachments` (`[{kind, content_type, data (base64) | url}]`).
- Outbound: we POST JSON to `MFGOS_BRIDGE_CALLBACK_URL`, signed the same way, with
  `Idempotency-Key: mfgos-notification-<id>` (a retry carries the same key): `to`, `text`,
  `exception`, `buttons` (`[{id, title}]`; the bridge may show them or list them as text; a
  press sends the button's `id` back as the `action`),
  `language`, `thread_key`, `notification_id`, `kind`, and for a `buttons_update` `updates` (the
  `message_id` the bridge gave the message whose buttons are now `buttons`). A 2xx answer `{"message_id": "..."}` is
  delivered; 429 with `Retry-After` is retried after it; 5xx and network errors are retried
  with backoff; any other 4xx is a permanent failure, recorded on the exception's timeline.
"""

from __future__ import annotations

import base64
import binascii
import json
from typing import Any

import httpx

from bot.channels.base import (
    InboundAttachment,
    InboundMessage,
    OutboundMessage,
    PermanentFailure,
    TemporaryFailure,
)
from bot.channels.cards import ACTIONS, button_label, button_value, parse_button, with_code
from bot.channels.payload import ident, text
from bot.fetch import MediaLimits, MediaPolicy, fetch_media, origin_of
from bot.middleware import sign_bridge
from bot.ratelimit import Bucket, Rate, rate_limited

MAX_CODE = 40  # characters of an exception code (E-0042)
MAX_LANGUAGE = 10


class BridgeError(ValueError):
    """An inbound bridge request that does not follow the protocol; the message says what is wrong."""


class BridgeChannel:
    name = "bridge"
    media_limits = MediaLimits()  # from_settings: MFGOS_MEDIA_MAX_BYTES / MFGOS_MEDIA_TIMEOUT

    def __init__(self, *, secret: str, callback_url: str, recipient_rate: Rate = Rate(1, 1.0, burst=3),
                 total_rate: Rate = Rate(20, 1.0), timeout: float = 10.0) -> None:
        self.secret = secret
        self.callback_url = callback_url
        self.recipient_rate = recipient_rate
        self.total_rate = total_rate
        self.timeout = timeout
        self._client: httpx.AsyncClient | None = None

    @classmethod
    def from_settings(cls, settings: Any, **_: Any) -> BridgeChannel:
        channel = cls(secret=settings.bridge_secret.get_secret_value(), callback_url=settings.bridge_callback_url)
        channel.media_limits = MediaLimits.from_settings(settings)
        return channel

    @property
    def client(self) -> httpx.AsyncClient:
        if self._client is None:
            self._client = httpx.AsyncClient(timeout=self.timeout)
        return self._client

    async def start(self) -> None:
        self.client  # noqa: B018 - build the client on the serving loop

    async def stop(self) -> None:
        if self._client is not None:
            await self._client.aclose()
            self._client = None

    # --- outbound ------------------------------------------------------------------------

    def rate_buckets(self, message: OutboundMessage) -> tuple[Bucket, ...]:
        return (f"bridge:to:{message.address}", self.recipient_rate), ("bridge:all", self.total_rate)

    async def send(self, message: OutboundMessage) -> str:
        body = {
            "notification_id": message.notification_id, "to": message.address,
            "text": with_code(message.text, message.exception_code), "exception": message.exception_code,
            "buttons": [{"id": button_value(b, message.exception_code), "title": button_label(b, message.language)}
                        for b in message.buttons],
            "language": message.language, "thread_key": message.thread_key, "kind": message.kind or None,
            # buttons_update: the message_id (as the bridge returned it) whose buttons are now `buttons`
            "updates": message.updates.platform_message_id if message.updates else None,
        }
        raw = json.dumps(body, ensure_ascii=False).encode()
        headers = {"Content-Type": "application/json", **sign_bridge(self.secret, raw)}
        if message.notification_id is not None:
            headers["Idempotency-Key"] = f"mfgos-notification-{message.notification_id}"
        try:
            response = await self.client.post(self.callback_url, content=raw, headers=headers)
        except httpx.TransportError as error:
            raise TemporaryFailure(f"bridge unreachable: {type(error).__name__}") from error
        detail = f"bridge answered {response.status_code}: {response.text[:200]}"
        if response.status_code == 429:
            raise rate_limited(float(response.headers.get("Retry-After") or 1), "chat", detail)
        if response.status_code >= 500:
            raise TemporaryFailure(detail)
        if not response.is_success:
            raise PermanentFailure(detail)
        try:
            return str(response.json()["message_id"])
        except (ValueError, KeyError, TypeError):
            return f"bridge-{message.notification_id}"

    # --- inbound -------------------------------------------------------------------------

    def parse(self, body: Any) -> tuple[InboundMessage, str | None, bool]:
        """(message, language, from_me) from a verified inbound body; BridgeError says what is wrong."""
        if not isinstance(body, dict):
            raise BridgeError("the body must be a JSON object")
        event_id, sender = body.get("event_id"), body.get("from")
        if not isinstance(event_id, str) or ident(event_id.strip()) is None:
            raise BridgeError("event_id: a string of 1-200 characters without control characters is required "
                              "(the bridge's message id)")
        if not isinstance(sender, str) or ident(sender.strip()) is None:
            raise BridgeError("from: the sender's address is required (1-200 characters, no control characters)")
        action = body.get("action")
        if action is not None:
            ours = isinstance(action, str) and (action in ACTIONS or action.startswith(("choose:", "erp_")))
            action = parse_button(action)[0] if ours else None
            if action is None:
                raise BridgeError(f"action: one of {', '.join(ACTIONS)}, choose:<exception code>, "
                                  "or a button's id as sent (erp_retry:<id>, erp_abandon:<id>)")
        message_text = body.get("text") or ""
        if not isinstance(message_text, str):
            raise BridgeError("text: must be a string")
        exception = body.get("exception")
        if exception not in (None, "") and ident(exception, MAX_CODE) is None:
            raise BridgeError(f"exception: an exception code (at most {MAX_CODE} characters)")
        items = body.get("attachments") or []
        if not isinstance(items, list):
            raise BridgeError("attachments: a list")
        attachments = tuple(self._attachment(i, item) for i, item in enumerate(items))
        if not message_text.strip() and not action and not attachments:
            raise BridgeError("the message has no text, action or attachment")
        message = InboundMessage(
            channel=self.name, address=sender.strip(), event_id=event_id.strip(), text=text(message_text),
            exception_ref=str(exception).upper() if exception not in (None, "") else None, action=action,
            chat_id=ident(body.get("chat")), thread_id=ident(body.get("thread")), reply_to=ident(body.get("reply_to")),
            attachments=attachments)
        language = ident(body.get("language"), MAX_LANGUAGE)
        return message, language, body.get("from_me") is True

    @staticmethod
    def _attachment(index: int, item: Any) -> InboundAttachment:
        where = f"attachments[{index}]"
        if not isinstance(item, dict) or item.get("kind") not in ("photo", "voice", "file"):
            raise BridgeError(f"{where}: an object with kind photo, voice or file")
        declared = text(item.get("content_type"))[:100] or None
        if item.get("data"):
            try:
                data = base64.b64decode(item["data"], validate=True)
            except (binascii.Error, TypeError, ValueError) as error:
                raise BridgeError(f"{where}.data: not base64") from error
            return InboundAttachment(kind=item["kind"], content_type=declared, data=data)
        url = item.get("url")
        if not isinstance(url, str) or origin_of(url) is None:
            raise BridgeError(f"{where}: give data (base64) or an https url")
        return InboundAttachment(kind=item["kind"], content_type=declared, url=url)

    async def fetch(self, attachment: InboundAttachment) -> tuple[bytes, str | None]:
        """Files named by URL: over https from public addresses, or from the bridge's own origin (that of
        its callback URL): bot/fetch.py. Signed over the URL, so a bridge can serve its files to mfgos alone."""
        url = attachment.url or ""
        return await fetch_media(url, MediaPolicy.for_channel(None, self.callback_url, self.media_limits),
                                 headers=sign_bridge(self.secret, url.encode()))

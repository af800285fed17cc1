"""WhatsApp Cloud API: webhook payloads -> InboundMessage, OutboundMessage -> POST /<phone-number-id>/messages.

WhatsApp has no threads: every message about an exception carries its code (E-0042); a
reply quoting one of our messages (`context.id`), a button press (its id is `ack:E-0042`)
or a code in the text puts the answer on that exception, and otherwise the conversation
takes the person's single open exception. Senders are known by `wa_id` (as "+<digits>")
and by the business-scoped `contacts[].user_id`, which arrives instead of `wa_id` for
people who use a username.
"""

from __future__ import annotations

import logging
import re
from dataclasses import dataclass
from typing import Any

import httpx

from bot.channels.base import (
    InboundAttachment,
    InboundMessage,
    OutboundMessage,
    PermanentFailure,
    TemporaryFailure,
)
from bot.channels.cards import button_label, button_value, parse_button, with_code
from bot.ratelimit import Bucket, Rate, rate_limited

log = logging.getLogger(__name__)

MAX_BUTTONS = 3
MAX_TITLE = 20
MAX_BODY = 1024  # interactive body; a plain text message may have 4096
RATE_LIMIT_CODES = {130429: "all", 131056: "chat", 4: "all", 80007: "all"}
TEMPORARY_CODES = {1, 2, 131000, 131016}
AUTH_CODES = {190, 0}
KINDS = {"image": "photo", "audio": "voice", "voice": "voice", "video": "file", "document": "file", "sticker": "photo"}
# A language guess from the country code, for people not in the plant ("not registered" reply).
COUNTRY_LANGUAGE = (("34", "es"), ("52", "es"), ("54", "es"), ("57", "es"), ("56", "es"), ("51", "es"),
                    ("49", "de"), ("43", "de"), ("41", "de"), ("91", "hi"), ("1", "en"), ("44", "en"))
BSUID = re.compile(r"^[A-Z]{2}\.\w+$")


@dataclass(frozen=True)
class WhatsAppInbound:
    message: InboundMessage
    language: str | None
    own: bool


def language_of(phone: str) -> str | None:
    digits = phone.lstrip("+")
    return next((lang for prefix, lang in COUNTRY_LANGUAGE if digits.startswith(prefix)), None)


class WhatsAppChannel:
    name = "whatsapp"

    def __init__(self, *, token: str, phone_number_id: str, api_url: str = "https://graph.facebook.com",
                 version: str = "v21.0", app_secret: str | None = None, verify_token: str | None = None,
                 number_rate: Rate = Rate(80, 1.0), recipient_rate: Rate | None = None, timeout: float = 10.0) -> None:
        self.token = token
        self.phone_number_id = phone_number_id
        self.base_url = f"{api_url.rstrip('/')}/{version}"
        self.app_secret = app_secret
        self.verify_token = verify_token
        self.number_rate = number_rate
        self.recipient_rate = recipient_rate  # the per-user pair limit, if the account has one
        self.timeout = timeout
        self._client: httpx.AsyncClient | None = None

    @classmethod
    def from_settings(cls, settings: Any, **_: Any) -> WhatsAppChannel:
        secret = settings.whatsapp_app_secret
        verify = settings.whatsapp_verify_token
        return cls(token=settings.whatsapp_token.get_secret_value(), phone_number_id=settings.whatsapp_phone_number_id,
                   api_url=settings.whatsapp_api_url, version=settings.whatsapp_api_version,
                   app_secret=secret.get_secret_value() if secret else None,
                   verify_token=verify.get_secret_value() if verify else None)

    @property
    def client(self) -> httpx.AsyncClient:
        if self._client is None:
            self._client = httpx.AsyncClient(base_url=self.base_url, timeout=self.timeout,
                                             headers={"Authorization": f"Bearer {self.token}"},
                                             limits=httpx.Limits(max_connections=64, max_keepalive_connections=32))
        return self._client

    async def start(self) -> None:
        self.client  # noqa: B018 - build the client on the serving loop

    async def stop(self) -> None:
        if self._client is not None:
            await self._client.aclose()
            self._client = None

    # --- outbound ------------------------------------------------------------------------

    def rate_buckets(self, message: OutboundMessage) -> tuple[Bucket, ...]:
        number = (f"whatsapp:number:{self.phone_number_id}", self.number_rate)
        if self.recipient_rate is None:
            return (number,)
        return (f"whatsapp:to:{message.address}", self.recipient_rate), number

    def payload(self, message: OutboundMessage) -> dict[str, Any]:
        """The Graph API body: reply buttons (at most 3, titles of at most 20 characters) or plain text."""
        text = with_code(message.text, message.exception_code)
        body: dict[str, Any] = {"messaging_product": "whatsapp", "recipient_type": "individual"}
        if BSUID.match(message.address):
            body["recipient"] = message.address
        else:
            body["to"] = message.address.lstrip("+")
        buttons = message.buttons[:MAX_BUTTONS]
        if buttons:
            if len(text) > MAX_BODY:
                text = text[: MAX_BODY - 1] + "…"
            body["type"] = "interactive"
            body["interactive"] = {"type": "button", "body": {"text": text}, "action": {"buttons": [
                {"type": "reply", "reply": {"id": button_value(b, message.exception_code),
                                            "title": button_label(b, message.language)[:MAX_TITLE]}}
                for b in buttons]}}
        else:
            body["type"] = "text"
            body["text"] = {"body": text[:4096], "preview_url": False}
        return body

    async def send(self, message: OutboundMessage) -> str:
        try:
            response = await self.client.post(f"/{self.phone_number_id}/messages", json=self.payload(message))
        except httpx.TransportError as error:
            raise TemporaryFailure(f"WhatsApp unreachable: {type(error).__name__}") from error
        if response.is_success:
            try:
                return str(response.json()["messages"][0]["id"])
            except (ValueError, KeyError, IndexError) as error:
                raise TemporaryFailure(f"WhatsApp answered {response.status_code} without a message id") from error
        raise self._error(response)

    def _error(self, response: httpx.Response) -> Exception:
        try:
            error = response.json().get("error") or {}
        except ValueError:
            error = {}
        code = error.get("code")
        detail = f"WhatsApp {response.status_code} (code {code}): {error.get('message') or response.text[:200]}"
        if response.status_code == 429 or code in RATE_LIMIT_CODES:
            retry_after = float(response.headers.get("Retry-After") or 1)
            return rate_limited(retry_after, RATE_LIMIT_CODES.get(code, "chat"), detail)
        if response.status_code >= 500 or code in TEMPORARY_CODES:
            return TemporaryFailure(detail)
        if response.status_code == 401 or code in AUTH_CODES:
            log.error("WhatsApp refused the access token; messages wait until it is fixed: %s", detail)
            return TemporaryFailure(detail)
        return PermanentFailure(detail)

    # --- inbound -------------------------------------------------------------------------

    def parse(self, body: dict[str, Any]) -> list[WhatsAppInbound]:
        """Every message of a webhook delivery (statuses and other numbers' messages are skipped)."""
        found: list[WhatsAppInbound] = []
        if not isinstance(body, dict):
            return found
        for entry in body.get("entry") or []:
            for change in entry.get("changes") or []:
                value = change.get("value") or {}
                if change.get("field") != "messages" or not isinstance(value, dict):
                    continue
                metadata = value.get("metadata") or {}
                if str(metadata.get("phone_number_id", self.phone_number_id)) != str(self.phone_number_id):
                    continue
                own_number = str(metadata.get("display_phone_number") or "").lstrip("+").replace(" ", "")
                contacts = value.get("contacts") or []
                for item in value.get("messages") or []:
                    parsed = self._message(item, contacts, own_number)
                    if parsed is not None:
                        found.append(parsed)
        return found

    def _message(self, item: dict[str, Any], contacts: list[dict[str, Any]], own_number: str) -> WhatsAppInbound | None:
        sender = str(item.get("from") or "")
        contact = next((c for c in contacts if sender and c.get("wa_id") == sender), contacts[0] if contacts else {})
        wa_id = sender or str(contact.get("wa_id") or "")
        user_id = str(item.get("from_user_id") or contact.get("user_id") or "")
        addresses = [a for a in (f"+{wa_id}" if wa_id.isdigit() else wa_id, user_id) if a]
        if not addresses or not item.get("id"):
            return None
        kind = item.get("type")
        text, action, code, attachments = "", None, None, []
        if kind == "text":
            text = str((item.get("text") or {}).get("body") or "")
        elif kind == "interactive":
            reply = (item.get("interactive") or {}).get("button_reply") or (item.get("interactive") or {}).get("list_reply") or {}
            action, code = parse_button(str(reply.get("id") or ""))
            text = "" if action else str(reply.get("title") or "")
        elif kind == "button":  # a template's quick-reply button
            button = item.get("button") or {}
            action, code = parse_button(str(button.get("payload") or ""))
            text = "" if action else str(button.get("text") or "")
        elif kind in KINDS:
            media = item.get(kind) or {}
            text = str(media.get("caption") or "")
            attachments.append(InboundAttachment(kind=KINDS[kind], content_type=media.get("mime_type"),
                                                 url=f"media:{media.get('id')}"))
        else:
            return None
        message = InboundMessage(
            channel=self.name, address=addresses[0], aliases=tuple(addresses[1:]), event_id=str(item["id"]),
            text=text, action=action, exception_ref=code, reply_to=(item.get("context") or {}).get("id"),
            chat_id=addresses[0], attachments=tuple(attachments))
        return WhatsAppInbound(message, language_of(wa_id) if wa_id.isdigit() else None,
                               own=bool(own_number) and wa_id == own_number)

    async def fetch(self, attachment: InboundAttachment) -> tuple[bytes, str | None]:
        """Media arrive as ids: look up the download URL, then fetch it with the same token."""
        media_id = (attachment.url or "").removeprefix("media:")
        meta = await self.client.get(f"/{media_id}")
        meta.raise_for_status()
        info = meta.json()
        download = await self.client.get(info["url"])
        download.raise_for_status()
        return download.content, info.get("mime_type") or download.headers.get("content-type")

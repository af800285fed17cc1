"""WhatsApp Cloud API: webhook payloads -> InboundMessage, OutboundMessage -> POST /<phone-number-id>/messages.

WhatsApp has no threads: every message about an exception carries its code (E-0042); a
reply quoting one of our messages (`context.id`), a button press (its id is `ack:E-0042`)
or a code in the text puts the answer on that exception, and otherwise the conversation
takes the person's single open exception. Senders are known by `wa_id` (as "+<digits>")
and by the business-scoped `contacts[].user_id`, which arrives instead of `wa_id` for
people who use a username. Sent messages cannot be edited: a `buttons_update` row is a reply
quoting the message it updates. Formatting markers in what people wrote are broken (`plain`).

The 24-hour customer-service window: free-form messages (text, reply buttons) reach a
person only within 24 hours of their last message to the number; outside it the API
refuses with 131047 "Re-engagement message" and only an approved template may be sent.
With `MFGOS_WHATSAPP_TEMPLATE` set (a template whose body is one parameter, `{{1}}`), a
message to someone whose window is known to be closed, or one the API refuses with 131047,
is sent as that template with the message's text as the parameter, and the exception's
timeline records it (`whatsapp_template`). Without a template the refusal is permanent and
shows on the timeline as `not_reached`. The window is known from the messages any replica
received (the `chat_windows` table, cached here while it is known open); when it is not known
the free-form message is tried and the API decides. The
API may also accept the message and report 131047 later, in a `failed` status on the
webhook: the message is then queued again as the template (kind `whatsapp_template`), or,
without a template, recorded as not reached.
"""

from __future__ import annotations

import asyncio
import hashlib
import logging
import math
import re
import time
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
from sqlalchemy import case
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.engine import Engine
from sqlmodel import Session, select

from bot.channels.base import (
    InboundAttachment,
    InboundMessage,
    OutboundMessage,
    PermanentFailure,
    TemporaryFailure,
)
from bot.channels.cards import (
    break_markers,
    button_label,
    button_value,
    choice_code,
    choice_labels,
    parse_button,
    with_code,
)
from bot.channels.payload import ident, obj, objects, text
from bot.fetch import WHATSAPP_HOSTS, FetchRefused, MediaLimits, MediaPolicy, fetch_media
from bot.ratelimit import Bucket, Rate, rate_limited
from models import ChatWindow, Notification, OutboxStatus, TimelineEvent, session_scope
from routing import messages

log = logging.getLogger(__name__)

MAX_BUTTONS = 3
MAX_TITLE = 20
MAX_ROWS = 10  # rows of a list message: the answers of a "which one?" with more than MAX_BUTTONS choices
MAX_BODY = 1024  # interactive body; a plain text message may have 4096
MAX_CAPTION = 1024  # characters of an image's caption
MAX_MEDIA_IDS = 256  # uploaded charts remembered by their bytes' hash
RATE_LIMIT_CODES = {130429: "all", 131056: "chat", 4: "all", 80007: "all"}
TEMPORARY_CODES = {1, 2, 131000, 131016}
AUTH_CODES = {190, 0}
KINDS = {"image": "photo", "audio": "voice", "voice": "voice", "video": "file", "document": "file", "sticker": "photo"}
# A language guess from the country code, for people not in the plant ("not registered" reply).
COUNTRY_LANGUAGE = (("34", "es"), ("52", "es"), ("54", "es"), ("57", "es"), ("56", "es"), ("51", "es"),
                    ("49", "de"), ("43", "de"), ("41", "de"), ("91", "hi"), ("1", "en"), ("44", "en"))
BSUID = re.compile(r"^[A-Z]{2}\.\w+$")
MEDIA_ID = re.compile(r"^[A-Za-z0-9_-]+$")  # it becomes a path segment of the Graph API
WINDOW = timedelta(hours=24)
REENGAGEMENT = 131047  # "Re-engagement message": outside the 24-hour window
MAX_PARAMETER = 900  # a template body is at most 1024 characters with its fixed text
SPACES = re.compile(r"\s+")  # template parameters may not hold newlines, tabs or runs of spaces
# WhatsApp's formatting: *bold* _italic_ ~strike~ `code` and ```mono```, and at the start of a line
# "> " a quote and "- " or "* " a list item. A marker between two letters or digits (maintenance_request)
# cannot open or close anything: left alone.
MARKERS = re.compile(r"(?<![^\W_])[*_~`]|[*_~`](?![^\W_])|^[ \t]*[>-]", re.MULTILINE)


def plain(text: str) -> str:
    """Text we did not write, as WhatsApp shows it literally. WhatsApp has no escape character, and
    a marker only formats at a word boundary: each gets an invisible U+200B before it (see
    `break_markers`). There are no mentions in a one-to-one chat, and links show as written."""
    return break_markers(text, MARKERS)


class WindowClosed(PermanentFailure):
    """The API refused a free-form message: the person has not written in the last 24 hours."""


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

    TEMPLATE_KIND = "whatsapp_template"  # an outbox row to send as the template (a 131047 came by webhook)
    media_limits = MediaLimits()  # from_settings: MFGOS_MEDIA_MAX_BYTES / MFGOS_MEDIA_TIMEOUT

    def __init__(self, *, token: str, phone_number_id: str, api_url: str = "https://graph.facebook.com",
                 version: str = "v21.0", app_secret: str | None = None, verify_token: str | None = None,
                 number_rate: Rate = Rate(80, 1.0), recipient_rate: Rate | None = None, timeout: float = 10.0,
                 template: str | None = None, template_languages: dict[str, str] | None = None,
                 window: timedelta = WINDOW, engine: Any = None) -> None:
        self.token = token
        self.phone_number_id = phone_number_id
        self.base_url = f"{api_url.rstrip('/')}/{version}"
        self.app_secret = app_secret
        self.verify_token = verify_token
        self.number_rate = number_rate
        self.recipient_rate = recipient_rate  # the per-user pair limit, if the account has one
        self.timeout = timeout
        self.template = template
        self.template_languages = dict(template_languages or {})  # ours (es) -> the template's (es_MX)
        self.window = window
        self.engine = engine
        self._heard: dict[str, float] = {}  # address -> unix time of their last message (0: window known closed)
        self._unsaved: dict[str, float] = {}  # heard here, not yet in the store
        self._client: httpx.AsyncClient | None = None
        self._media: dict[str, str] = {}  # sha256 of an uploaded chart -> its media id (valid for 30 days)

    @classmethod
    def from_settings(cls, settings: Any, *, engine: Any = None, **_: Any) -> WhatsAppChannel:
        secret = settings.whatsapp_app_secret
        verify = settings.whatsapp_verify_token
        channel = cls(token=settings.whatsapp_token.get_secret_value(), phone_number_id=settings.whatsapp_phone_number_id,
                   api_url=settings.whatsapp_api_url, version=settings.whatsapp_api_version,
                   app_secret=secret.get_secret_value() if secret else None,
                   verify_token=verify.get_secret_value() if verify else None,
                   template=settings.whatsapp_template, template_languages=settings.whatsapp_template_languages,
                   engine=engine)
        channel.media_limits = MediaLimits.from_settings(settings)
        return channel

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

    def payload(self, message: OutboundMessage, labels: dict[str, str] | None = None) -> dict[str, Any]:
        """The Graph API body: reply buttons (at most 3, titles of at most 20 characters), a list
        message for a "which one?" with more answers than that, or plain text; a reply to the
        earlier message for a buttons_update. `labels`: titles of `choose:` buttons (`choice_labels`)."""
        text = plain(with_code(message.text, message.exception_code))
        body = self._recipient(message.address)
        buttons = message.buttons[:MAX_BUTTONS]
        if buttons:
            if len(text) > MAX_BODY:
                text = text[: MAX_BODY - 1] + "…"
            body["type"] = "interactive"
            if len(message.buttons) > MAX_BUTTONS and all(choice_code(b) for b in message.buttons):
                body["interactive"] = {"type": "list", "body": {"text": text}, "action": {
                    "button": messages.render("button_choose", message.language)[:MAX_TITLE],
                    "sections": [{"rows": [{"id": b, "title": button_label(b, message.language, labels)[:MAX_TITLE]}
                                           for b in message.buttons[:MAX_ROWS]]}]}}
            else:
                body["interactive"] = {"type": "button", "body": {"text": text}, "action": {"buttons": [
                    {"type": "reply", "reply": {"id": button_value(b, message.exception_code),
                                                "title": button_label(b, message.language, labels)[:MAX_TITLE]}}
                    for b in buttons]}}
        else:
            body["type"] = "text"
            body["text"] = {"body": text[:4096], "preview_url": False}
        if message.updates is not None and message.updates.platform_message_id:
            # A buttons_update: sent messages cannot be edited, so the status line (with the buttons still
            # valid, if any) is a reply quoting the message whose buttons no longer all apply.
            body["context"] = {"message_id": message.updates.platform_message_id}
        return body

    def image_payload(self, message: OutboundMessage, media_id: str) -> dict[str, Any]:
        """A chart answer: an image message of the uploaded media with the answer as its caption."""
        body = self._recipient(message.address)
        caption = plain(with_code(message.text, message.exception_code))
        if len(caption) > MAX_CAPTION:
            caption = caption[: MAX_CAPTION - 1] + "…"
        body["type"] = "image"
        body["image"] = {"id": media_id, "caption": caption}
        return body

    async def _media_id(self, image: bytes) -> str:
        """Upload a PNG (POST /<phone-number-id>/media, multipart) and return its media id. An upload is
        not a message: the person sees nothing until the image message is sent, so a retry after a failed
        send reuses the id this process got for the same bytes rather than uploading them again."""
        digest = hashlib.sha256(image).hexdigest()
        if digest in self._media:
            return self._media[digest]
        try:
            response = await self.client.post(
                f"/{self.phone_number_id}/media", data={"messaging_product": "whatsapp", "type": "image/png"},
                files={"file": ("chart.png", image, "image/png")})
        except httpx.TransportError as error:
            raise TemporaryFailure(f"WhatsApp unreachable: {type(error).__name__}") from error
        if not response.is_success:
            raise self._error(response)
        try:
            media_id = str(response.json()["id"])
        except (ValueError, KeyError, TypeError) as error:
            raise TemporaryFailure(f"WhatsApp answered {response.status_code} to the upload without a media id") \
                from error
        if len(self._media) >= MAX_MEDIA_IDS:
            self._media.pop(next(iter(self._media)))
        self._media[digest] = media_id
        return media_id

    def template_payload(self, message: OutboundMessage) -> dict[str, Any]:
        """The approved template, its body parameter the message's text (on one line, as Meta requires)."""
        body = self._recipient(message.address)
        text = plain(SPACES.sub(" ", with_code(message.text, message.exception_code)).strip())
        if len(text) > MAX_PARAMETER:
            text = text[: MAX_PARAMETER - 1] + "…"
        body["type"] = "template"
        body["template"] = {"name": self.template, "language": {"policy": "deterministic", "code": self.template_language(
            message.language)}, "components": [{"type": "body", "parameters": [{"type": "text", "text": text}]}]}
        return body

    def template_language(self, language: str) -> str:
        return self.template_languages.get(language, language)

    def _recipient(self, address: str) -> dict[str, Any]:
        body: dict[str, Any] = {"messaging_product": "whatsapp", "recipient_type": "individual"}
        if BSUID.match(address):
            body["recipient"] = address
        else:
            body["to"] = address.lstrip("+")
        return body

    def window_closed(self, address: str, now: float | None = None) -> bool:
        """Known to be outside the 24-hour window (an address never heard from is not known)."""
        heard = self._heard.get(address)
        return heard is not None and (time.time() if now is None else now) - heard > self.window.total_seconds()

    def heard_from(self, addresses: list[str], at: float) -> None:
        for address in addresses:
            if at > self._heard.get(address, -1.0):
                self._heard[address] = at
                self._unsaved[address] = at

    async def save_heard(self) -> None:
        """Put what this replica heard into the store, so every replica knows the window is open."""
        if self.engine is None or not self._unsaved:
            self._unsaved.clear()
            return
        heard, self._unsaved = self._unsaved, {}
        await asyncio.to_thread(self._store_windows, heard)

    def _store_windows(self, heard: dict[str, float]) -> None:
        # Each upsert stands alone (the later time wins), so each commits by itself: every inbound
        # WhatsApp webhook pays this, and autocommit spares it the BEGIN and COMMIT round trips.
        assert self.engine is not None
        with self.engine.connect().execution_options(isolation_level="AUTOCOMMIT") as connection:
            for address, at in heard.items():
                connection.execute(window_upsert(self.engine, self.name, address, at, self.window))

    async def known_closed(self, address: str) -> bool:
        """Known to be outside the window, by what any replica heard or was refused (the store);
        an address heard here within the window needs no look-up."""
        now = time.time()
        heard = self._heard.get(address)
        if (heard is not None and now - heard <= self.window.total_seconds()) or self.engine is None:
            return self.window_closed(address, now)
        stored = await asyncio.to_thread(stored_window, self.engine, self.name, address)
        if stored is not None:
            self._heard[address] = stored
        return self.window_closed(address, now)

    async def send(self, message: OutboundMessage) -> str:
        if message.kind == self.TEMPLATE_KIND:
            return await self._send_template(message, "the API reported 131047 (outside the 24-hour window) "
                                                      "for the free-form message")
        if self.template and await self.known_closed(message.address):
            return await self._send_template(message, "the 24-hour window is closed")
        labels = await asyncio.to_thread(choice_labels, self.engine, message.buttons, MAX_TITLE) \
            if self.engine is not None and any(choice_code(b) for b in message.buttons) else {}
        try:
            if message.image is not None:
                return await self._post(self.image_payload(message, await self._media_id(message.image)))
            return await self._post(self.payload(message, labels))
        except WindowClosed as error:
            self._heard[message.address] = 0.0  # closed until they write again
            if self.engine is not None:
                await asyncio.to_thread(self._store_windows, {message.address: 0.0})
            if not self.template:
                raise PermanentFailure(f"{error}; set MFGOS_WHATSAPP_TEMPLATE to reach people outside the "
                                       "24-hour window") from error
            return await self._send_template(message, str(error))

    async def _send_template(self, message: OutboundMessage, reason: str) -> str:
        if not self.template:
            raise PermanentFailure(f"WhatsApp: outside the 24-hour window ({reason}) and no MFGOS_WHATSAPP_TEMPLATE")
        message_id = await self._post(self.template_payload(message))
        if self.engine is not None and message.notification_id is not None:
            try:
                await asyncio.to_thread(self._record_template, message, reason)
            except Exception:  # it was sent: failing here would have the outbox send it again
                log.exception("notification %s: template sent, but not recorded on the timeline",
                              message.notification_id)
        return message_id

    def _record_template(self, message: OutboundMessage, reason: str) -> None:
        """The exception's timeline says what the person got instead of the free-form message."""
        with session_scope(self.engine) as session:
            row = session.get(Notification, message.notification_id)
            if row is None or row.exception_id is None:
                return
            language = self.template_language(message.language)
            session.add(TimelineEvent(
                exception_id=row.exception_id, at=datetime.now(UTC), kind="whatsapp_template", person_id=row.person_id,
                text=f"sent as template {self.template} ({language}): {reason}"[:2000],
                data={"channel": self.name, "notification": row.id, "template": self.template, "language": language,
                      "parameter": self.template_payload(message)["template"]["components"][0]["parameters"][0]["text"]}))

    async def _post(self, payload: dict[str, Any]) -> str:
        try:
            response = await self.client.post(f"/{self.phone_number_id}/messages", json=payload)
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
        if code == REENGAGEMENT:
            return WindowClosed(detail)
        return PermanentFailure(detail)

    # --- delivery statuses -----------------------------------------------------------------

    def failed_statuses(self, body: Any) -> list[dict[str, Any]]:
        """The `failed` statuses of a webhook delivery for our number (`sent`, `delivered`, `read` say nothing
        new), as `{id, errors: [{code, title, message}]}` whatever shape they came in."""
        found: list[dict[str, Any]] = []
        for value in self._values(body):
            for status in objects(value.get("statuses")):
                status_id = ident(status.get("id"))
                if status.get("status") != "failed" or status_id is None:
                    continue
                errors = [{"code": e.get("code") if type(e.get("code")) is int else None,
                           "title": text(e.get("title"))[:500], "message": text(e.get("message"))[:500]}
                          for e in objects(status.get("errors"))]
                found.append({"id": status_id, "errors": errors or [{}]})
        return found

    def _values(self, body: Any) -> list[dict[str, Any]]:
        """The `value` of each `messages` change for our number in a delivery; parts of another shape
        are skipped (and logged)."""
        entries = body.get("entry") if isinstance(body, dict) else None
        well_formed = isinstance(entries, list)
        values: list[dict[str, Any]] = []
        for entry in objects(entries):
            changes = entry.get("changes")
            well_formed = well_formed and isinstance(changes, list) and len(objects(changes)) == len(changes)
            for change in objects(changes):
                value = change.get("value")
                if change.get("field") != "messages":
                    continue
                if not isinstance(value, dict) or any(
                        not isinstance(value.get(part, []), list) for part in ("messages", "statuses", "contacts")) \
                        or not isinstance(value.get("metadata", {}), dict):
                    well_formed = False
                    continue
                number = ident(obj(value.get("metadata")).get("phone_number_id", self.phone_number_id))
                if number == str(self.phone_number_id):
                    values.append(value)
        if not well_formed or (isinstance(entries, list) and len(objects(entries)) != len(entries)):
            log.warning("whatsapp: (parts of) a delivery not of the documented shape were ignored")
        return values

    async def handle_failed(self, statuses: list[dict[str, Any]]) -> int:
        """Messages the API accepted and then could not deliver; returns how many rows were queued again."""
        if not statuses or self.engine is None:
            return 0
        return await asyncio.to_thread(self._settle_failed, statuses)

    def _settle_failed(self, statuses: list[dict[str, Any]]) -> int:
        queued = 0
        now = datetime.now(UTC)
        with session_scope(self.engine) as session:
            for status in statuses:
                row = session.exec(select(Notification).where(Notification.channel == self.name,
                                                              Notification.platform_message_id == str(status["id"]))).first()
                if row is None or row.status == OutboxStatus.failed:
                    continue  # not ours, or a redelivered status
                error = (status.get("errors") or [{}])[0]
                code = error.get("code")
                detail = f"WhatsApp status failed (code {code}): {error.get('title') or error.get('message') or '?'}"
                row.status, row.error = OutboxStatus.failed, detail[:2000]
                session.add(row)
                if code == REENGAGEMENT:
                    self._heard[row.address] = 0.0
                    session.execute(window_upsert(self.engine, self.name, row.address, 0.0, self.window))
                if code == REENGAGEMENT and self.template and row.kind != self.TEMPLATE_KIND:
                    session.add(Notification(
                        plant_id=row.plant_id, dedupe_key=f"whatsapp-template:{row.id}", exception_id=row.exception_id,
                        person_id=row.person_id, role=row.role, kind=self.TEMPLATE_KIND, channel=row.channel,
                        address=row.address, language=row.language, text=row.text, created_at=now, next_attempt_at=now))
                    queued += 1
                elif row.exception_id is not None:
                    hint = "; set MFGOS_WHATSAPP_TEMPLATE to reach people outside the 24-hour window" \
                        if code == REENGAGEMENT else ""
                    session.add(TimelineEvent(exception_id=row.exception_id, at=now, kind="not_reached",
                                              person_id=row.person_id, text=(detail + hint)[:2000],
                                              data={"channel": self.name, "notification": row.id}))
        return queued

    # --- inbound -------------------------------------------------------------------------

    def parse(self, body: Any) -> list[WhatsAppInbound]:
        """Every message of a webhook delivery (statuses and other numbers' messages are skipped; so is
        anything not of the shape the Cloud API documents)."""
        found: list[WhatsAppInbound] = []
        for value in self._values(body):
            metadata = obj(value.get("metadata"))
            own_number = text(metadata.get("display_phone_number")).lstrip("+").replace(" ", "")
            contacts = objects(value.get("contacts"))
            for item in objects(value.get("messages")):
                parsed = self._message(item, contacts, own_number)
                if parsed is not None:
                    found.append(parsed)
        return found

    def _message(self, item: dict[str, Any], contacts: list[dict[str, Any]], own_number: str) -> WhatsAppInbound | None:
        sender = ident(item.get("from")) or ""
        contact = next((c for c in contacts if sender and c.get("wa_id") == sender), contacts[0] if contacts else {})
        wa_id = sender or ident(contact.get("wa_id")) or ""
        user_id = ident(item.get("from_user_id")) or ident(contact.get("user_id")) or ""
        addresses = [a for a in (f"+{wa_id}" if wa_id.isdigit() else wa_id, user_id) if a]
        message_id = ident(item.get("id"))
        if not addresses or message_id is None:
            log.warning("whatsapp: a message without a readable sender or id was ignored")
            return None
        kind = item.get("type")
        if not isinstance(kind, str):
            return None
        body, action, code, attachments = "", None, None, []
        if kind == "text":
            body = text(obj(item.get("text")).get("body"))
        elif kind == "interactive":
            interactive = obj(item.get("interactive"))
            reply = obj(interactive.get("button_reply")) or obj(interactive.get("list_reply"))
            action, code = parse_button(text(reply.get("id")))
            body = "" if action else text(reply.get("title"))
        elif kind == "button":  # a template's quick-reply button
            button = obj(item.get("button"))
            action, code = parse_button(text(button.get("payload")))
            body = "" if action else text(button.get("text"))
        elif kind in KINDS:
            media = obj(item.get(kind))
            media_id = ident(media.get("id"))
            body = text(media.get("caption"))
            if media_id is not None:
                attachments.append(InboundAttachment(kind=KINDS[kind], content_type=text(media.get("mime_type"))[:100]
                                                     or None, url=f"media:{media_id}"))
        else:
            return None
        sent = item.get("timestamp")
        try:
            at = float(sent) if isinstance(sent, str | int) and not isinstance(sent, bool) else time.time()
        except ValueError:
            at = time.time()
        self.heard_from(addresses, at if math.isfinite(at) else time.time())
        message = InboundMessage(
            channel=self.name, address=addresses[0], aliases=tuple(addresses[1:]), event_id=message_id,
            text=body, action=action, exception_ref=code, reply_to=ident(obj(item.get("context")).get("id")),
            chat_id=addresses[0], attachments=tuple(attachments))
        return WhatsAppInbound(message, language_of(wa_id) if wa_id.isdigit() else None,
                               own=bool(own_number) and wa_id == own_number)

    async def fetch(self, attachment: InboundAttachment) -> tuple[bytes, str | None]:
        """Media arrive as ids: the configured API names the download URL, which is fetched with the
        same token from Meta's media hosts (or the API's own origin) only: bot/fetch.py."""
        media_id = ident((attachment.url or "").removeprefix("media:"))
        if media_id is None or not MEDIA_ID.match(media_id):
            raise FetchRefused("not a WhatsApp media id")
        meta = await self.client.get(f"/{media_id}")
        meta.raise_for_status()
        info = obj(meta.json())
        data, served_type = await fetch_media(text(info.get("url")), MediaPolicy.for_channel(
            WHATSAPP_HOSTS, self.base_url, self.media_limits), headers={"Authorization": f"Bearer {self.token}"})
        return data, text(info.get("mime_type"))[:100] or served_type


def window_upsert(engine: Engine, channel: str, address: str, at: float, window: timedelta) -> Any:
    """Record a message heard at `at` (the later time wins) or, with `at` 0, a refusal: closed,
    unless a message came in within the window meanwhile (another replica heard them write again)."""
    table = ChatWindow.__table__  # type: ignore[attr-defined]
    insert = (postgresql.insert if engine.dialect.name == "postgresql" else sqlite.insert)(table)
    statement = insert.values(channel=channel, address=address, heard_at=at)
    if at > 0:
        merged = case((table.c.heard_at < statement.excluded.heard_at, statement.excluded.heard_at),
                      else_=table.c.heard_at)
    else:
        cutoff = time.time() - window.total_seconds()
        merged = case((table.c.heard_at < cutoff, 0.0), else_=table.c.heard_at)
    return statement.on_conflict_do_update(index_elements=["channel", "address"], set_={"heard_at": merged})


def stored_window(engine: Engine, channel: str, address: str) -> float | None:
    """When any replica last heard `address` on `channel` (0: known closed); None if never."""
    with Session(engine) as session:
        return session.exec(select(ChatWindow.heard_at).where(
            ChatWindow.channel == channel, ChatWindow.address == address)).first()

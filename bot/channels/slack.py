"""Slack through slack-bolt: events -> InboundMessage, OutboundMessage -> chat.postMessage (Block Kit).

Events arrive over HTTP at `POST /slack/events` (bolt checks the signing secret and
answers `url_verification`; the listener runs after the 3-second ack) or over Socket Mode
when `MFGOS_SLACK_APP_TOKEN` is set. A redelivery (`X-Slack-Retry-Num`) carries the same
message, whose key `<channel>:<ts>` the shared gate has seen.

Where messages go: people get direct messages, with their buttons. An exception whose area
has a channel (`MFGOS_SLACK_CHANNELS`, "*" for every area) also gets one thread there
(bot/threads.py): its root shows the exception (context block: machine, work orders,
customer orders at risk, SLA clock; live buttons) and is edited with `chat.update` as the
status moves on, and each timeline event is one reply. With `MFGOS_SLACK_DIRECT_MESSAGES=false`
there are no direct messages for such exceptions: every message is a reply in the thread
mentioning its recipient. Thread roots are `Notification` rows of kind `thread_root`, so a
reply in the thread finds its exception the way a reply to any of our messages does (`reply_to`).

A `buttons_update` row is a `chat.update` of the message it updates (the buttons left, the status
line). Text we did not write is escaped once where a message is built (`mrkdwn`).

A sender who is not in the plant is answered in the language of their message; when the text is
too short to tell, their Slack locale (`users.info` with `include_locale`, asked once per user
and only for strangers) decides.
"""

from __future__ import annotations

import asyncio
import logging
import re
from dataclasses import replace
from datetime import UTC, datetime
from typing import Any

import aiohttp
from slack_bolt.adapter.fastapi.async_handler import AsyncSlackRequestHandler
from slack_bolt.adapter.socket_mode.async_handler import AsyncSocketModeHandler
from slack_bolt.async_app import AsyncApp
from slack_sdk.errors import SlackApiError, SlackClientError
from slack_sdk.web.async_client import AsyncWebClient
from sqlalchemy.exc import IntegrityError
from sqlmodel import Session, select

from bot.channels.base import (
    BUTTONS_UPDATE,
    InboundAttachment,
    InboundMessage,
    OutboundMessage,
    PermanentFailure,
    TemporaryFailure,
)
from bot.channels.cards import (
    ACTIONS,
    ZWSP,
    ExceptionCard,
    break_markers,
    button_label,
    button_value,
    choice_code,
    choice_labels,
    exception_card,
    live_buttons,
    parse_button,
)
from bot.channels.payload import ident, obj, objects, text
from bot.fetch import SLACK_HOSTS, MediaLimits, MediaPolicy, fetch_media
from bot.middleware import InboundGate
from bot.ratelimit import Bucket, Rate, rate_limited
from bot.threads import THREAD_KINDS, AreaThreads
from models import Notification, PlantException, session_scope

log = logging.getLogger(__name__)

PERMANENT = {"channel_not_found", "not_in_channel", "is_archived", "user_not_found", "account_inactive",
             "msg_too_long", "no_text", "invalid_blocks", "cannot_dm_bot", "user_disabled", "message_not_found",
             "cant_update_message", "restricted_action"}
AUTH = {"invalid_auth", "not_authed", "token_revoked", "token_expired", "missing_scope"}
IGNORED_SUBTYPES = {"bot_message", "message_changed", "message_deleted", "channel_join", "channel_leave",
                    "channel_topic", "channel_purpose", "channel_name", "thread_broadcast", "ekm_access_denied"}
MENTION = re.compile(r"<@[A-Z0-9]+>\s*")
STYLES = {"ack": "primary", "approve": "primary", "reject": "danger"}
MAX_TEXT = 3000  # characters of a section's text and of a message's `text`
MAX_BUTTON = 75  # characters of a button's text
MAX_FILE_TITLE = 200  # characters of an uploaded file's title
# What mrkdwn still formats once & < > are entities: *bold* _italic_ ~strike~ `code`, a "> " quote at
# the start of a line (Slack's own messages carry it as "&gt;"), and the broadcast words.
# A marker between two letters or digits (maintenance_request) cannot open or close anything: left alone.
MARKERS = re.compile(r"(?<![^\W_])[*_~`]|[*_~`](?![^\W_])|^&gt;|(?<=@)(?=(?:channel|here|everyone)\b)",
                     re.MULTILINE | re.IGNORECASE)


def mrkdwn(text: str) -> str:
    """Text we did not write (an operator's report inside our template, a machine name) as Slack shows
    it literally: & < > as the entities Slack asks for, which undoes <!channel>, <@U...>, <#C...> and
    <url|label>; formatting markers and @channel/@here/@everyone broken with an invisible U+200B."""
    escaped = text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")
    return break_markers(escaped, MARKERS)


def clip(text: str, limit: int = MAX_TEXT) -> str:
    """Escaped text cut to Slack's limit without leaving half an entity or a bare marker behind."""
    if len(text) <= limit:
        return text
    cut = text[: limit - 1]
    amp = cut.rfind("&")
    if amp > cut.rfind(";"):
        cut = cut[:amp]
    return cut.rstrip(ZWSP) + "…"


def _kind(mimetype: str | None) -> str:
    if (mimetype or "").startswith("image/"):
        return "photo"
    if (mimetype or "").startswith(("audio/", "video/")):
        return "voice"
    return "file"


class SlackChannel:
    name = "slack"
    media_limits = MediaLimits()  # from_settings: MFGOS_MEDIA_MAX_BYTES / MFGOS_MEDIA_TIMEOUT

    def __init__(self, *, token: str, signing_secret: str | None = None, app_token: str | None = None,
                 api_url: str = "https://slack.com/api/", area_channels: dict[str, str] | None = None,
                 gate: InboundGate | None = None, engine: Any = None, thread_language: str = "en",
                 direct_messages: bool = True, channel_rate: Rate = Rate(1, 1.0, burst=3),
                 workspace_rate: Rate = Rate(50, 1.0)) -> None:
        self.token = token
        self.signing_secret = signing_secret
        self.app_token = app_token
        self.api_url = api_url
        self.area_channels = dict(area_channels or {})
        self.gate = gate
        self.engine = engine
        self.thread_language = thread_language
        self.direct_messages = direct_messages
        # The area threads are mirrored from the timeline when people also get direct messages.
        self.threads = AreaThreads(self.name, self.area_channels, engine, thread_language) \
            if self.area_channels and engine is not None and direct_messages else None
        self._mirror: asyncio.Task[None] | None = None
        self.channel_rate, self.workspace_rate = channel_rate, workspace_rate
        self._session: aiohttp.ClientSession | None = None
        self._client: AsyncWebClient | None = None
        self._app: AsyncApp | None = None
        self._http: AsyncSlackRequestHandler | None = None
        self._socket: AsyncSocketModeHandler | None = None
        self._areas: dict[str, str | None] = {}
        self._root_locks: dict[tuple[str, str], asyncio.Lock] = {}
        self._locales: dict[str, asyncio.Future[str | None]] = {}  # users.info lookups, per user

    @classmethod
    def from_settings(cls, settings: Any, *, gate: InboundGate | None = None, engine: Any = None,
                      **_: Any) -> SlackChannel:
        signing, app_token = settings.slack_signing_secret, settings.slack_app_token
        channel = cls(token=settings.slack_bot_token.get_secret_value(),
                   signing_secret=signing.get_secret_value() if signing else None,
                   app_token=app_token.get_secret_value() if app_token else None, api_url=settings.slack_api_url,
                   area_channels=settings.slack_channels, gate=gate, engine=engine,
                   thread_language=settings.thread_language, direct_messages=settings.slack_direct_messages)
        channel.media_limits = MediaLimits.from_settings(settings)
        return channel

    # --- lifecycle -----------------------------------------------------------------------

    @property
    def client(self) -> AsyncWebClient:
        if self._client is None:
            # One aiohttp session for every call (a session per call costs ~40% of the throughput).
            self._session = aiohttp.ClientSession()
            self._client = AsyncWebClient(token=self.token, base_url=self.api_url, session=self._session,
                                          retry_handlers=[])
        return self._client

    @property
    def app(self) -> AsyncApp:
        if self._app is None:
            app = AsyncApp(client=self.client, signing_secret=self.signing_secret or "",
                           request_verification_enabled=self.signing_secret is not None,
                           process_before_response=False)
            app.event("message")(self._on_message)
            app.event("app_mention")(self._on_message)
            app.action(re.compile(r"^mfgos_"))(self._on_button)
            self._app = app
        return self._app

    @property
    def http(self) -> AsyncSlackRequestHandler:
        if self._http is None:
            self._http = AsyncSlackRequestHandler(self.app)
        return self._http

    async def start(self) -> None:
        self.http  # noqa: B018 - build the app on the serving loop
        if self.app_token:
            self._socket = AsyncSocketModeHandler(self.app, self.app_token)
            await self._socket.connect_async()
        if self.threads is not None and self._mirror is None:
            gate = self.gate
            self._mirror = asyncio.create_task(
                self.threads.run(gate.wake if gate else None, gate.executor if gate and gate.sqlite else None),
                name="slack-area-threads")

    async def stop(self) -> None:
        if self._mirror is not None:
            self._mirror.cancel()
            await asyncio.gather(self._mirror, return_exceptions=True)
            self._mirror = None
        if self._socket is not None:
            await self._socket.close_async()
            self._socket = None
        if self._session is not None:
            await self._session.close()
        self._session = self._client = self._app = self._http = None

    # --- inbound -------------------------------------------------------------------------

    async def _on_message(self, event: dict[str, Any]) -> None:
        inbound = self.parse(event) if self.gate is not None else None
        if inbound is not None and self.gate is not None:
            await self.gate.accept(inbound, fetch=self.fetch, locale=lambda: self.locale(inbound.address))

    def parse(self, event: Any) -> InboundMessage | None:
        """A message event as an InboundMessage, or None when it is not a person's message (bots,
        edits, joins) or not of the shape Slack documents (logged)."""
        if not isinstance(event, dict) or event.get("subtype") in IGNORED_SUBTYPES or event.get("bot_id"):
            return None
        user, conversation, ts = ident(event.get("user")), ident(event.get("channel")), ident(event.get("ts"))
        if not user or not conversation or not ts:
            log.warning("slack: a message event without a readable user, channel or ts was ignored")
            return None
        attachments = []
        for file in objects(event.get("files")):
            url = text(file.get("url_private_download")) or text(file.get("url_private"))
            mimetype = text(file.get("mimetype"))[:100] or None
            if url:
                attachments.append(InboundAttachment(_kind(mimetype), mimetype, url=url))
        thread_ts = ident(event.get("thread_ts"))
        return InboundMessage(
            channel=self.name, address=user, event_id=f"{conversation}:{ts}",
            text=MENTION.sub("", text(event.get("text"))).strip(), chat_id=conversation,
            thread_id=thread_ts, reply_to=f"{conversation}:{thread_ts}" if thread_ts and thread_ts != ts else None,
            attachments=tuple(attachments))

    async def locale(self, user: str) -> str | None:
        """The user's Slack locale ("es-ES"), or None when Slack will not say; asked once per user
        (two messages arriving together share the one request; after a network error, asked again)."""
        lookup = self._locales.get(user)
        if lookup is None:
            lookup = self._locales[user] = asyncio.ensure_future(self._ask_locale(user))
        try:
            return await asyncio.shield(lookup)
        except (SlackClientError, aiohttp.ClientError, TimeoutError) as error:
            log.info("slack users.info %s: %s; answering in the language of the text", user, error)
            if self._locales.get(user) is lookup:
                del self._locales[user]
            return None

    async def _ask_locale(self, user: str) -> str | None:
        try:
            answer = await self.client.users_info(user=user, include_locale=True)
        except SlackApiError as error:  # Slack answered (user_not_found, missing_scope): no locale to have
            log.info("slack users.info %s: %s", user, error.response.get("error"))
            return None
        return (answer.get("user") or {}).get("locale") or None

    async def _on_button(self, ack: Any, body: dict[str, Any], action: dict[str, Any]) -> None:
        await ack()
        inbound = self.parse_action(body, action) if self.gate is not None else None
        if inbound is not None and self.gate is not None:
            await self.gate.accept(inbound)

    def parse_action(self, body: Any, action: Any) -> InboundMessage | None:
        """A press of one of our buttons as an InboundMessage, or None when it is not one."""
        body, action = obj(body), obj(action)
        kind, code = parse_button(text(action.get("value")))
        user = ident(obj(body.get("user")).get("id"))
        container = obj(body.get("container"))
        conversation = ident(container.get("channel_id")) or ident(obj(body.get("channel")).get("id"))
        message_ts = ident(container.get("message_ts")) or ident(obj(body.get("message")).get("ts"))
        if kind is None or not user:
            return None
        pressed = ident(action.get("action_ts")) or ident(body.get("trigger_id"))
        return InboundMessage(
            channel=self.name, address=user, action=kind, exception_ref=code, chat_id=conversation,
            event_id=f"action:{conversation}:{message_ts}:{pressed}:{user}",
            reply_to=f"{conversation}:{message_ts}" if conversation and message_ts else None)

    async def fetch(self, attachment: InboundAttachment) -> tuple[bytes, str | None]:
        """Slack files need the bot token, so they come only from Slack's file host (or the configured
        API's origin): bot/fetch.py."""
        return await fetch_media(attachment.url or "", MediaPolicy.for_channel(SLACK_HOSTS, self.api_url, self.media_limits),
                                 headers={"Authorization": f"Bearer {self.token}"})

    # --- outbound ------------------------------------------------------------------------

    def _area(self, code: str) -> str | None:
        if code not in self._areas:
            with Session(self.engine) as session:
                self._areas[code] = session.exec(select(PlantException.area_id).where(PlantException.code == code)).first()
        return self._areas[code]

    def _conversation(self, message: OutboundMessage) -> tuple[str, bool]:
        """(where the message goes, whether that is the exception's thread in an area channel)."""
        if message.kind in THREAD_KINDS:
            return message.address, True
        if not self.direct_messages and message.exception_code and self.area_channels and self.engine is not None:
            area = self._area(message.exception_code)
            target = self.area_channels.get(area or "") or self.area_channels.get("*")
            if target:
                return target, True
        return message.address, False

    def rate_buckets(self, message: OutboundMessage) -> tuple[Bucket, ...]:
        conversation, _ = self._conversation(message)
        return (f"slack:channel:{conversation}", self.channel_rate), ("slack:workspace", self.workspace_rate)

    def blocks(self, text: str, card: ExceptionCard | None, buttons: tuple[str, ...], language: str,
               context: bool | None = None, code: str | None = None, note: str | None = None,
               labels: dict[str, str] | None = None) -> list[dict[str, Any]]:
        """Block Kit: the text (already `mrkdwn`), the exception's context (by default when there is
        something to decide), a note (a status line, escaped here), buttons (`labels`: titles of
        `choose:` buttons, `choice_labels`)."""
        blocks: list[dict[str, Any]] = [
            {"type": "section", "text": {"type": "mrkdwn", "text": clip(text), "verbatim": True}}]
        if card is not None and (bool(buttons) if context is None else context):
            blocks.append({"type": "context", "elements": [{"type": "mrkdwn", "text": clip(mrkdwn(line), 300),
                                                            "verbatim": True}
                                                           for line in card.context_lines(language)[:10]]})
        if note:
            blocks.append({"type": "context", "elements": [{"type": "mrkdwn", "text": clip(mrkdwn(note), 300),
                                                            "verbatim": True}]})
        if buttons:
            blocks.append({"type": "actions", "block_id": "mfgos_actions", "elements": [
                {"type": "button", "action_id": f"mfgos_{b}",
                 "text": {"type": "plain_text", "text": button_label(b, language, labels)[:MAX_BUTTON]},
                 "value": button_value(b, code or (card.code if card else None)), **({"style": STYLES[b]} if b in STYLES else {})}
                for b in buttons]})
        return blocks

    async def _labels(self, buttons: tuple[str, ...]) -> dict[str, str]:
        """Titles of the `choose:` buttons among `buttons` (a DB read only when there are some)."""
        if self.engine is None or not any(choice_code(b) for b in buttons):
            return {}
        return await asyncio.to_thread(choice_labels, self.engine, buttons, MAX_BUTTON)

    async def _card(self, code: str | None) -> ExceptionCard | None:
        if not code or self.engine is None:
            return None
        return await asyncio.to_thread(exception_card, self.engine, code)

    async def send(self, message: OutboundMessage) -> str:
        if message.kind in THREAD_KINDS:
            return await self._send_in_area_thread(message)
        if message.kind == BUTTONS_UPDATE:
            return await self._update_buttons(message)
        conversation, in_thread = self._conversation(message)
        if message.image is not None:
            return await self._send_chart(message, conversation, in_thread)
        # The exception's card (a DB read) only where it is shown: thread roots and messages with buttons.
        card = await self._card(message.exception_code) if in_thread or message.buttons else None
        text = mrkdwn(message.text)
        thread_ts = None
        if in_thread and card is not None:
            thread_ts = await self._thread_root(conversation, card)
            text = f"<@{message.address}> {text}"  # our mention of the recipient, the one left unescaped
        try:
            response = await self.client.chat_postMessage(
                channel=conversation, text=clip(text), thread_ts=thread_ts, unfurl_links=False, unfurl_media=False,
                blocks=self.blocks(text, card, message.buttons, message.language, code=message.exception_code,
                                   labels=await self._labels(message.buttons)))
        except Exception as error:
            raise self._error(error) from error
        return f"{response['channel']}:{response['ts']}"

    async def _send_chart(self, message: OutboundMessage, conversation: str, in_thread: bool) -> str:
        """A chart answer: the PNG uploaded the current way (`files_upload_v2`: files.getUploadURLExternal,
        the upload, files.completeUploadExternal) into the person's DM (or the exception's thread), with the
        answer as its comment. Only the completion posts: a retry after a failed upload or completion
        uploads again, and the file that was never shared stays unseen."""
        text = mrkdwn(message.text)
        thread_ts = None
        try:
            if in_thread:
                card = await self._card(message.exception_code)
                if card is not None:
                    thread_ts = await self._thread_root(conversation, card)
                    text = f"<@{message.address}> {text}"
            elif conversation.startswith(("U", "W")):  # a user: the file goes into the DM with them
                opened = await self.client.conversations_open(users=conversation)
                conversation = opened["channel"]["id"]
            response = await self.client.files_upload_v2(
                channel=conversation, file=message.image, filename="chart.png",
                title=str((message.chart or {}).get("title") or "chart")[:MAX_FILE_TITLE],
                initial_comment=clip(text), thread_ts=thread_ts)
        except Exception as error:
            raise self._error(error) from error
        return f"{conversation}:file:{response['file']['id']}"

    async def _update_buttons(self, message: OutboundMessage) -> str:
        """A buttons_update: `chat.update` of the original (its channel and ts) showing what it showed,
        the status line, and only the buttons still valid (their values unchanged, so a press works as before)."""
        original = message.updates
        if original is None or not original.platform_message_id:
            raise PermanentFailure("a buttons_update without the message it updates")
        conversation, _, ts = original.platform_message_id.rpartition(":")
        card = await self._card(message.exception_code)
        if original.kind == "thread_root" and card is not None:
            text = mrkdwn(card.headline(message.language))
        else:
            text = mrkdwn(original.text)
            if original.kind not in THREAD_KINDS and self._conversation(replace(message, kind=original.kind))[1]:
                text = f"<@{message.address}> {text}"  # as it was posted: a reply in the area thread
        blocks = self.blocks(text, card, message.buttons, message.language, context=card is not None,
                             code=message.exception_code, note=message.text, labels=await self._labels(message.buttons))
        try:
            await self.client.chat_update(channel=conversation, ts=ts, text=clip(text), blocks=blocks)
        except Exception as error:
            raise self._error(error) from error
        return original.platform_message_id

    @staticmethod
    def _error(error: Exception) -> Exception:
        if isinstance(error, SlackApiError):
            status = error.response.status_code
            code = error.response.get("error") if isinstance(error.response.data, dict) else None
            detail = f"Slack {status}: {code or error}"
            if status == 429 or code == "ratelimited":
                return rate_limited(float(error.response.headers.get("Retry-After", 1)), "chat", detail)
            if status >= 500 or code in ("internal_error", "fatal_error", "service_unavailable", "request_timeout"):
                return TemporaryFailure(detail)
            if code in AUTH:
                log.error("Slack refused the bot token (%s); messages wait until it is fixed", code)
                return TemporaryFailure(detail)
            return PermanentFailure(detail)
        if isinstance(error, aiohttp.ClientError | TimeoutError | SlackClientError | ValueError):
            return TemporaryFailure(f"Slack unreachable: {type(error).__name__}: {error}")
        return error

    async def _send_in_area_thread(self, message: OutboundMessage) -> str:
        """A row of the area thread (bot/threads.py): the root shows the card, a reply says one event."""
        conversation, code = message.address, message.exception_code
        card = await self._card(code)
        if card is None:
            raise PermanentFailure(f"no exception {code} to show in {conversation}")
        if message.kind == "thread_root":
            text, thread_ts = mrkdwn(card.headline(message.language)), None
            blocks = self.blocks(text, card, live_buttons(ACTIONS, card.status), message.language, context=True)
        else:
            root = await asyncio.to_thread(self._root_row, conversation, card.code)
            if root is None or root[1] is None:
                if root is not None and root[0] == "failed":
                    raise PermanentFailure(f"the thread of {card.code} could not be started in {conversation}")
                raise TemporaryFailure(f"the thread of {card.code} in {conversation} has no root yet")
            text, thread_ts = mrkdwn(message.text), root[1].rpartition(":")[2]
            blocks = self.blocks(text, None, (), message.language)
        try:
            response = await self.client.chat_postMessage(
                channel=conversation, text=clip(text), thread_ts=thread_ts, unfurl_links=False, unfurl_media=False,
                blocks=blocks)
        except Exception as error:
            raise self._error(error) from error
        return f"{response['channel']}:{response['ts']}"

    async def _thread_root(self, conversation: str, card: ExceptionCard) -> str:
        """The ts of the exception's thread in `conversation`, posting the root the first time."""
        lock = self._root_locks.setdefault((conversation, card.code), asyncio.Lock())
        async with lock:
            found = await asyncio.to_thread(self._stored_root, conversation, card.code)
            if found:
                return found.rpartition(":")[2]
            buttons = live_buttons(ACTIONS, card.status)
            headline = card.headline(self.thread_language)
            shown = mrkdwn(headline)
            try:
                response = await self.client.chat_postMessage(
                    channel=conversation, text=clip(shown), unfurl_links=False,
                    blocks=self.blocks(shown, card, buttons, self.thread_language, context=True))
            except Exception as error:
                raise self._error(error) from error
            ts = str(response["ts"])
            winner = await asyncio.to_thread(self._store_root, conversation, card, ts, headline, buttons)
            if winner != ts:  # another replica posted the root first: keep one thread
                try:
                    await self.client.chat_delete(channel=conversation, ts=ts)
                except Exception as error:
                    log.warning("could not delete a second thread root of %s: %s", card.code, error)
            return winner

    def _stored_root(self, conversation: str, code: str) -> str | None:
        root = self._root_row(conversation, code)
        return root[1] if root else None

    def _root_row(self, conversation: str, code: str) -> tuple[str, str | None] | None:
        """(status, platform message id) of the exception's thread root in `conversation`, if there is one."""
        with Session(self.engine) as session:
            row = session.exec(select(Notification.status, Notification.platform_message_id).join(
                PlantException, PlantException.id == Notification.exception_id).where(  # type: ignore[arg-type]
                PlantException.code == code, Notification.kind == "thread_root",
                Notification.address == conversation, Notification.channel == self.name)).first()
            return (row[0], row[1]) if row else None

    def _store_root(self, conversation: str, card: ExceptionCard, ts: str, text: str, buttons: tuple[str, ...]) -> str:
        now = datetime.now(UTC)
        try:
            with session_scope(self.engine) as session:
                exc = session.exec(select(PlantException).where(PlantException.code == card.code)).one()
                session.add(Notification(
                    plant_id=exc.plant_id, dedupe_key=f"slack-thread:{conversation}:{exc.id}", exception_id=exc.id,
                    person_id=f"slack:{conversation}", kind="thread_root", channel=self.name, address=conversation,
                    language=self.thread_language, text=text, buttons=list(buttons), created_at=now, status="sent",
                    sent_at=now, platform_message_id=f"{conversation}:{ts}"))
            return ts
        except IntegrityError:
            stored = self._stored_root(conversation, card.code)
            return stored.rpartition(":")[2] if stored else ts

    async def update_status(self, row: Notification, exception: PlantException) -> None:
        """chat.update a thread root or a card: the new status in the context, only the buttons that apply."""
        conversation, _, ts = (row.platform_message_id or "").rpartition(":")
        card = await self._card(exception.code)
        if not conversation or card is None:
            return
        wanted = ACTIONS if row.kind == "thread_root" else tuple(row.buttons)
        buttons = live_buttons(wanted, card.status)
        text = mrkdwn(card.headline(row.language) if row.kind == "thread_root" else row.text)
        blocks = self.blocks(text, card, buttons, row.language, context=True)
        try:
            await self.client.chat_update(channel=conversation, ts=ts, text=clip(text), blocks=blocks)
        except Exception as error:
            raise self._error(error) from error

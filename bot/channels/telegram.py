"""Telegram through python-telegram-bot: updates -> InboundMessage, OutboundMessage -> sendMessage.

Long polling by default; with `MFGOS_TELEGRAM_WEBHOOK_SECRET` set, updates arrive at
`POST /telegram/webhook` (bot/webhooks.py checks the secret-token header) and are
processed before the answer, so an update Telegram saw acknowledged is stored.
Threads: a private chat is one conversation (a reply quoting one of our messages, a
button or a code in the text names the exception). An area with a group
(`MFGOS_TELEGRAM_GROUPS`, "*" for every other area) gets one thread per exception there
(bot/threads.py): in a forum the bot opens a topic named after the exception ("E-0042
breakdown on HOB-01"), in a plain group the root message is the thread and the bot's
replies quote it. Buttons are inline keyboards (`callback_data` `ack:E-0042`); a press in a
group is the pressing person's (the role checks are theirs); when the exception's status
moves on, the message is edited (`editMessageText`) with only the buttons that still apply; a
`buttons_update` row edits only its keyboard (`editMessageReplyMarkup`) and replies with the status.
Messages go without `parse_mode`, so what people wrote shows as written (`plain`).

In groups the bot takes only what is addressed to it, whether or not privacy mode is on:
a reply to one of its messages, a message in an exception's topic, a message mentioning
@the_bot or naming an exception code (E-0042). Other group chatter is not ours and is not
stored. The sender is the person; the bot's answers to them come in their private chat.
"""

from __future__ import annotations

import asyncio
import logging
import re
import warnings
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy.exc import IntegrityError
from sqlmodel import Session, select
from telegram import InlineKeyboardButton, InlineKeyboardMarkup, InputFile, Message, ReplyParameters, Update
from telegram.error import (
    BadRequest,
    ChatMigrated,
    Forbidden,
    InvalidToken,
    NetworkError,
    RetryAfter,
    TelegramError,
)
from telegram.ext import (
    Application,
    ApplicationBuilder,
    CallbackQueryHandler,
    ContextTypes,
    MessageHandler,
    filters,
)

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
    CODE,
    ExceptionCard,
    break_markers,
    button_label,
    button_value,
    choice_code,
    choice_labels,
    exception_card,
    live_buttons,
    parse_button,
    status_name,
    with_code,
)
from bot.channels.payload import ident
from bot.channels.payload import text as payload_text
from bot.fetch import TELEGRAM_HOSTS, FetchRefused, MediaLimits, MediaPolicy, fetch_media
from bot.middleware import InboundGate
from bot.ratelimit import Bucket, Rate, rate_limited
from bot.threads import THREAD_KINDS, AreaThreads
from models import Notification, PlantException, session_scope
from routing import messages

log = logging.getLogger(__name__)

MAX_TEXT = 4096
MAX_CAPTION = 1024  # characters of a photo's caption
MAX_TOPIC = 128  # characters of a forum topic's name
MAX_BUTTON = 64  # characters of a "which one?" answer button's title: short enough to read on a phone
NOT_A_FORUM = ("not a forum", "not enough rights")  # createForumTopic's refusals that mean "use reply chains"
# Telegram turns "@name" into a mention (which notifies that member of a group) even without a parse mode:
# the place right after such an "@".
MENTION = re.compile(r"(?<=(?<!\w)@)(?=\w)")


def plain(text: str) -> str:
    """Text we did not write, as Telegram shows it literally. Messages go without `parse_mode`, so
    HTML tags, entities and Markdown stay text; what is left is the mention Telegram detects by
    itself: "@name" gets an invisible U+200B after its "@"."""
    return break_markers(text, MENTION)


def retry_seconds(error: RetryAfter) -> float:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        value = error.retry_after
    return value.total_seconds() if isinstance(value, timedelta) else float(value)


class TelegramChannel:
    name = "telegram"
    media_limits = MediaLimits()  # from_settings: MFGOS_MEDIA_MAX_BYTES / MFGOS_MEDIA_TIMEOUT

    def __init__(self, *, token: str, api_url: str = "https://api.telegram.org/bot", webhook_secret: str | None = None,
                 webhook_url: str | None = None, gate: InboundGate | None = None, engine: Any = None,
                 chat_rate: Rate = Rate(1, 1.0, burst=3), group_rate: Rate = Rate(20, 60.0), bot_rate: Rate = Rate(30, 1.0, burst=3),
                 poll_timeout: int = 10, area_groups: dict[str, str] | None = None,
                 thread_language: str = "en") -> None:
        self.token = token
        self.api_url = api_url
        self.file_url = api_url[: -len("/bot")] + "/file/bot" if api_url.endswith("/bot") else api_url.rstrip("/") + "/file/bot"
        self.webhook_secret = webhook_secret
        self.webhook_url = webhook_url
        self.gate = gate
        self.engine = engine
        self.chat_rate, self.group_rate, self.bot_rate = chat_rate, group_rate, bot_rate
        self.poll_timeout = poll_timeout
        self.area_groups = dict(area_groups or {})
        self.thread_language = thread_language
        self.threads = AreaThreads(self.name, self.area_groups, engine, thread_language) \
            if self.area_groups and engine is not None else None
        self._mirror: asyncio.Task[None] | None = None
        self._not_forums: set[str] = set()
        self._app: Application | None = None
        self.bot_id: int | None = None
        self.bot_username: str | None = None

    @classmethod
    def from_settings(cls, settings: Any, *, gate: InboundGate | None = None, engine: Any = None,
                      **_: Any) -> TelegramChannel:
        secret = settings.telegram_webhook_secret
        channel = cls(token=settings.telegram_bot_token.get_secret_value(), api_url=settings.telegram_api_url,
                      webhook_secret=secret.get_secret_value() if secret else None,
                      webhook_url=settings.telegram_webhook_url, gate=gate, engine=engine,
                      area_groups=settings.telegram_groups, thread_language=settings.thread_language)
        channel.media_limits = MediaLimits.from_settings(settings)
        return channel

    @property
    def webhook_mode(self) -> bool:
        return self.webhook_secret is not None

    @property
    def app(self) -> Application:
        if self._app is None:
            builder = (ApplicationBuilder().token(self.token).base_url(self.api_url).base_file_url(self.file_url)
                       .get_updates_read_timeout(5).connection_pool_size(64))
            if self.webhook_mode:
                builder = builder.updater(None)
            app = builder.build()
            app.add_handler(CallbackQueryHandler(self._on_button))
            app.add_handler(MessageHandler(filters.ChatType.PRIVATE | filters.ChatType.GROUPS, self._on_message))
            self._app = app
        return self._app

    async def start(self) -> None:
        app = self.app
        await app.initialize()  # getMe: our own id, to drop our own messages
        self.bot_id = app.bot.id
        self.bot_username = app.bot.username
        if self.webhook_mode:
            if self.webhook_url:
                await app.bot.set_webhook(self.webhook_url, secret_token=self.webhook_secret,
                                          allowed_updates=["message", "callback_query"])
        else:
            assert app.updater is not None
            await app.updater.start_polling(timeout=self.poll_timeout, allowed_updates=["message", "callback_query"])
        await app.start()
        if self.threads is not None and self._mirror is None:
            gate = self.gate
            self._mirror = asyncio.create_task(
                self.threads.run(gate.wake if gate else None, gate.executor if gate and gate.sqlite else None),
                name="telegram-area-threads")

    async def stop(self) -> None:
        if self._mirror is not None:
            self._mirror.cancel()
            await asyncio.gather(self._mirror, return_exceptions=True)
            self._mirror = None
        if self._app is None:
            return
        app, self._app = self._app, None
        if app.updater is not None and app.updater.running:
            await app.updater.stop()
        if app.running:
            await app.stop()
        await app.shutdown()

    def parse(self, data: Any) -> Update | None:
        """A webhook delivery as an Update, or None (logged) when it is not one we can read."""
        if not isinstance(data, dict) or type(data.get("update_id")) is not int:
            log.warning("telegram: a delivery without an update_id was ignored")
            return None
        try:
            update = Update.de_json(data, self.app.bot)
        except Exception as error:  # python-telegram-bot's converters raise whatever a wrong type makes them raise
            log.warning("telegram: an update of the wrong shape was ignored: %s: %s", type(error).__name__,
                        str(error)[:200])
            return None
        # The Application keys its per-user and per-chat data by these ids before any handler runs, so an id
        # that is not an integer (a list, say) would fail inside python-telegram-bot, not in our handlers.
        for holder in (update.effective_user, update.effective_chat):
            if holder is not None and (type(holder.id) is not int or ident(holder.id) is None):
                log.warning("telegram: an update whose user or chat id is not an integer was ignored")
                return None
        return update

    async def handle_update(self, update: Update) -> None:
        """A webhook delivery: processed (stored) before Telegram gets its 200."""
        await self.app.process_update(update)

    # --- inbound -------------------------------------------------------------------------

    async def _on_message(self, update: Update, _context: ContextTypes.DEFAULT_TYPE) -> None:
        message, sender = update.effective_message, update.effective_user
        if message is None or sender is None or self.gate is None:
            return
        if ident(sender.id) is None or ident(message.chat_id) is None or ident(message.message_id) is None:
            log.warning("telegram: a message without a readable sender, chat or id was ignored")
            return
        own = sender.id == self.bot_id or sender.is_bot is True
        text = payload_text(message.text) or payload_text(message.caption)
        attachments: list[InboundAttachment] = []
        photos = message.photo if isinstance(message.photo, tuple | list) else ()
        if photos and ident(getattr(photos[-1], "file_id", None)):
            attachments.append(InboundAttachment("photo", "image/jpeg", url=f"tg-file:{photos[-1].file_id}"))
        for item, kind in ((message.voice, "voice"), (message.audio, "voice"), (message.document, "file")):
            if item is not None and ident(getattr(item, "file_id", None)):
                attachments.append(InboundAttachment(kind, payload_text(getattr(item, "mime_type", None))[:100] or None,
                                                     url=f"tg-file:{item.file_id}"))
        if not text and not attachments:
            return
        if message.chat.type != "private" and not own:
            text, addressed = self._addressed(message, text)
            if not addressed:
                return  # group chatter, not for the bot
        chat_id = str(message.chat_id)
        reply_to, exception_ref, thread_id = None, None, None
        quoted = message.reply_to_message
        if message.is_topic_message and message.message_thread_id is not None:
            thread_id = str(message.message_thread_id)
            topic = quoted.forum_topic_created if quoted is not None else None
            if topic is not None and (found := CODE.search(topic.name.upper())):
                exception_ref = found.group(0)
        if quoted is not None and quoted.from_user is not None and quoted.from_user.id == self.bot_id:
            reply_to = f"{chat_id}:{quoted.message_id}"
        inbound = InboundMessage(
            channel=self.name, address=str(sender.id), event_id=f"{chat_id}:{message.message_id}", text=text,
            exception_ref=exception_ref, chat_id=chat_id, thread_id=thread_id, reply_to=reply_to,
            attachments=tuple(attachments), received_at=message.date)
        await self.gate.accept(inbound, own=own, language=(sender.language_code or "")[:2] or None,
                               fetch=self.fetch)

    def _addressed(self, message: Message, text: str) -> tuple[str, bool]:
        """(the text without the @mention, whether a group message is meant for the bot)."""
        mention = f"@{self.bot_username}".lower() if self.bot_username else None
        words = text.split()
        kept = [w for w in words if w.lower().rstrip(",.:;!?") != mention]
        mentioned = len(kept) < len(words)
        text = " ".join(kept) if mentioned else text
        quoted = message.reply_to_message
        to_us = quoted is not None and quoted.from_user is not None and quoted.from_user.id == self.bot_id
        in_topic = message.is_topic_message and quoted is not None and quoted.forum_topic_created is not None \
            and CODE.search(quoted.forum_topic_created.name.upper()) is not None
        return text, mentioned or to_us or in_topic or CODE.search(text.upper()) is not None

    async def _on_button(self, update: Update, _context: ContextTypes.DEFAULT_TYPE) -> None:
        query = update.callback_query
        if query is None or self.gate is None:
            return
        try:
            await query.answer()  # stops the button's spinner; a stale query is no reason to lose the press
        except TelegramError as error:
            log.info("answerCallbackQuery failed: %s", error)
        action, code = parse_button(query.data or "")
        if action is None:
            return
        chat_id = str(query.message.chat.id) if query.message is not None else str(query.from_user.id)
        reply_to = f"{chat_id}:{query.message.message_id}" if query.message is not None else None
        inbound = InboundMessage(channel=self.name, address=str(query.from_user.id), event_id=f"callback:{query.id}",
                                 action=action, exception_ref=code, chat_id=chat_id, reply_to=reply_to)
        await self.gate.accept(inbound, own=query.from_user.id == self.bot_id,
                               language=(query.from_user.language_code or "")[:2] or None)

    async def fetch(self, attachment: InboundAttachment) -> tuple[bytes, str | None]:
        """getFile names the file's path; it is fetched from Telegram's file host (or the configured
        API's origin) only: bot/fetch.py."""
        file = await self.app.bot.get_file((attachment.url or "").removeprefix("tg-file:"))
        if not file.file_path:
            raise FetchRefused("Telegram gave no file path")
        data, _ = await fetch_media(file.file_path, MediaPolicy.for_channel(TELEGRAM_HOSTS, self.file_url,
                                                                             self.media_limits))
        return data, attachment.content_type

    # --- outbound ------------------------------------------------------------------------

    def rate_buckets(self, message: OutboundMessage) -> tuple[Bucket, ...]:
        chat = (f"telegram:chat:{message.address}", self.chat_rate)
        bot = ("telegram:bot", self.bot_rate)
        if message.address.startswith("-"):  # groups and channels have negative ids
            return chat, (f"telegram:group:{message.address}", self.group_rate), bot
        return chat, bot

    def _keyboard(self, buttons: tuple[str, ...], code: str | None, language: str,
                  labels: dict[str, str] | None = None) -> InlineKeyboardMarkup | None:
        """The actions side by side on one row; the answers of a "which one?" one per row, titled by `labels`."""
        if not buttons:
            return None
        actions = [InlineKeyboardButton(button_label(b, language), callback_data=button_value(b, code))
                   for b in buttons if not choice_code(b)]
        answers = [[InlineKeyboardButton(button_label(b, language, labels), callback_data=button_value(b, code))]
                   for b in buttons if choice_code(b)]
        return InlineKeyboardMarkup(([actions] if actions else []) + answers)

    async def _labels(self, buttons: tuple[str, ...]) -> dict[str, str]:
        """Titles of the `choose:` buttons among `buttons` (a DB read only when there are some)."""
        if self.engine is None or not any(choice_code(b) for b in buttons):
            return {}
        return await asyncio.to_thread(choice_labels, self.engine, buttons, MAX_BUTTON)

    async def send(self, message: OutboundMessage) -> str:
        if message.kind in THREAD_KINDS:
            return await self._send_in_area_thread(message)
        if message.kind == BUTTONS_UPDATE:
            return await self._update_buttons(message)
        if message.image is not None:
            return await self._send_chart(message)
        text = plain(with_code(message.text, message.exception_code))[:MAX_TEXT]
        try:
            sent = await self.app.bot.send_message(
                chat_id=message.address, text=text,
                reply_markup=self._keyboard(message.buttons, message.exception_code, message.language,
                                            await self._labels(message.buttons)))
        except TelegramError as error:
            raise self._error(error) from error
        return f"{sent.chat_id}:{sent.message_id}"

    async def _send_chart(self, message: OutboundMessage) -> str:
        """A chart answer: one `sendPhoto` (multipart) with the answer as its caption, so the facts and the
        chart arrive as one message. A caption longer than Telegram's 1024 characters is cut."""
        caption = plain(with_code(message.text, message.exception_code))
        if len(caption) > MAX_CAPTION:
            caption = caption[: MAX_CAPTION - 1] + "…"
        try:
            sent = await self.app.bot.send_photo(
                chat_id=message.address, photo=InputFile(message.image or b"", filename="chart.png"), caption=caption,
                reply_markup=self._keyboard(message.buttons, message.exception_code, message.language))
        except TelegramError as error:
            raise self._error(error) from error
        return f"{sent.chat_id}:{sent.message_id}"

    async def _update_buttons(self, message: OutboundMessage) -> str:
        """A buttons_update: `editMessageReplyMarkup` of the original (only the buttons still valid, or
        none), then the status line as a reply to it. Sent again after a failure, the edit
        is "not modified" and only the reply goes."""
        original = message.updates
        chat_id, _, message_id = (original.platform_message_id or "").rpartition(":") if original else ("", "", "")
        if not chat_id or not message_id.isdigit():
            raise PermanentFailure("a buttons_update without a Telegram message to edit")
        # No buttons left: no reply_markup at all, which is how the Bot API removes an inline keyboard.
        markup = self._keyboard(message.buttons, message.exception_code, message.language,
                                await self._labels(message.buttons))
        try:
            await self.app.bot.edit_message_reply_markup(chat_id=chat_id, message_id=int(message_id), reply_markup=markup)
        except BadRequest as error:
            if "not modified" not in str(error).lower():
                raise PermanentFailure(f"Telegram: {error}") from error
        except TelegramError as error:
            raise self._error(error) from error
        if not message.text.strip():
            return f"{chat_id}:{message_id}"
        try:
            sent = await self.app.bot.send_message(
                chat_id=chat_id, text=plain(with_code(message.text, message.exception_code))[:MAX_TEXT],
                reply_parameters=ReplyParameters(message_id=int(message_id), allow_sending_without_reply=True))
        except TelegramError as error:
            raise self._error(error) from error
        return f"{sent.chat_id}:{sent.message_id}"

    # --- area threads (bot/threads.py) ---------------------------------------------------

    def root_text(self, card: ExceptionCard, language: str) -> str:
        """The thread's root: the exception and its context (machine, orders, SLA clock, status)."""
        return plain("\n".join([card.headline(language), "", *card.context_lines(language)]))[:MAX_TEXT]

    async def _send_in_area_thread(self, message: OutboundMessage) -> str:
        chat, code = message.address, message.exception_code or ""
        card = await asyncio.to_thread(exception_card, self.engine, code) if self.engine is not None else None
        if card is None:
            raise PermanentFailure(f"no exception {code} to show in {chat}")
        topic = await asyncio.to_thread(self._stored, "thread_topic", chat, card.code)
        topic_id = int(topic[1].rpartition(":")[2]) if topic and topic[1] else None
        try:
            if message.kind == "thread_root":
                if topic_id is None and chat not in self._not_forums:
                    topic_id = await self._open_topic(chat, card)
                sent = await self.app.bot.send_message(
                    chat_id=chat, text=self.root_text(card, message.language), message_thread_id=topic_id,
                    reply_markup=self._keyboard(live_buttons(ACTIONS, card.status), card.code, message.language))
            else:
                root = await asyncio.to_thread(self._stored, "thread_root", chat, card.code)
                if root is None or root[1] is None:
                    if root is not None and root[0] == "failed":
                        raise PermanentFailure(f"the thread of {card.code} could not be started in {chat}")
                    raise TemporaryFailure(f"the thread of {card.code} in {chat} has no root yet")
                sent = await self.app.bot.send_message(
                    chat_id=chat, text=plain(message.text)[:MAX_TEXT], message_thread_id=topic_id,
                    reply_parameters=ReplyParameters(message_id=int(root[1].rpartition(":")[2]),
                                                     allow_sending_without_reply=True))
        except TelegramError as error:
            raise self._error(error) from error
        return f"{sent.chat_id}:{sent.message_id}"

    async def _open_topic(self, chat: str, card: ExceptionCard) -> int | None:
        """A forum topic for the exception; None in a plain group (or without the right to open topics)."""
        name = f"{card.code} {messages.type_name(card.type, self.thread_language)} {card.machine}"[:MAX_TOPIC]
        try:
            topic = await self.app.bot.create_forum_topic(chat_id=chat, name=name)
        except BadRequest as error:
            if not any(reason in str(error).lower() for reason in NOT_A_FORUM):
                raise
            log.info("telegram group %s: no forum topics (%s); threads are reply chains", chat, error)
            self._not_forums.add(chat)
            return None
        return await asyncio.to_thread(self._store_topic, chat, card.code, topic.message_thread_id)

    def _stored(self, kind: str, chat: str, code: str) -> tuple[str, str | None] | None:
        """(status, platform id) of the exception's thread row of `kind` in `chat`."""
        with Session(self.engine) as session:
            row = session.exec(select(Notification.status, Notification.platform_message_id).join(
                PlantException, PlantException.id == Notification.exception_id).where(  # type: ignore[arg-type]
                PlantException.code == code, Notification.kind == kind, Notification.address == chat,
                Notification.channel == self.name)).first()
            return (row[0], row[1]) if row else None

    def _store_topic(self, chat: str, code: str, topic_id: int) -> int:
        """The topic we opened, as a sent row: a message in it (quoting its first message) finds the exception.
        Returns the exception's topic: the one stored first, if another was opened meanwhile."""
        now = datetime.now(UTC)
        try:
            with session_scope(self.engine) as session:
                exc = session.exec(select(PlantException).where(PlantException.code == code)).one()
                session.add(Notification(
                    plant_id=exc.plant_id, dedupe_key=f"telegram-topic:{chat}:{exc.id}", exception_id=exc.id,
                    person_id=f"thread:telegram:{chat}", kind="thread_topic", channel=self.name, address=chat,
                    language=self.thread_language, text=code, created_at=now, status="sent", sent_at=now,
                    platform_message_id=f"{chat}:{topic_id}"))
            return topic_id
        except IntegrityError:
            log.warning("telegram group %s: a second topic for %s was opened; the first one is kept", chat, code)
            stored = self._stored("thread_topic", chat, code)
            return int(stored[1].rpartition(":")[2]) if stored and stored[1] else topic_id

    @staticmethod
    def _error(error: TelegramError) -> Exception:
        if isinstance(error, RetryAfter):
            return rate_limited(retry_seconds(error), "chat", f"Telegram: {error}")
        if isinstance(error, ChatMigrated):
            return PermanentFailure(f"Telegram: the group moved to chat {error.new_chat_id}")
        if isinstance(error, Forbidden | BadRequest):  # blocked by the user, chat not found, bad text
            return PermanentFailure(f"Telegram: {error}")
        if isinstance(error, InvalidToken):
            log.error("Telegram refused the bot token; messages wait until it is fixed")
            return TemporaryFailure(f"Telegram: {error}")
        if isinstance(error, NetworkError):
            return TemporaryFailure(f"Telegram: {error}")
        return TemporaryFailure(f"Telegram: {type(error).__name__}: {error}")

    async def update_status(self, row: Notification, exception: PlantException) -> None:
        """Edit a sent card: its text plus the new status, and only the buttons that still apply."""
        chat_id, _, message_id = (row.platform_message_id or "").rpartition(":")
        if not chat_id or not message_id.isdigit():
            return
        if row.kind == "thread_root":
            card = await asyncio.to_thread(exception_card, self.engine, exception.code) if self.engine else None
            if card is None:
                return
            text, buttons = self.root_text(card, row.language), live_buttons(ACTIONS, card.status)
        else:
            status = messages.render("card_status", row.language, code=exception.code,
                                     status=status_name(exception.status, row.language))
            text = plain(with_code(row.text, exception.code))[: MAX_TEXT - len(status) - 2] + "\n\n" + status
            buttons = live_buttons(tuple(row.buttons), exception.status)
        try:
            await self.app.bot.edit_message_text(
                text=text, chat_id=chat_id, message_id=int(message_id),
                reply_markup=self._keyboard(buttons, exception.code, row.language))
        except BadRequest as error:
            if "not modified" not in str(error).lower():
                raise PermanentFailure(f"Telegram: {error}") from error
        except TelegramError as error:
            raise self._error(error) from error

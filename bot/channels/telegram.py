"""Telegram through python-telegram-bot: updates -> InboundMessage, OutboundMessage -> sendMessage.

Long polling by default; with `MFGOS_TELEGRAM_WEBHOOK_SECRET` set, updates arrive at
`POST /telegram/webhook` (bot/webhooks.py checks the secret-token header) and are
processed before the answer, so an update Telegram saw acknowledged is stored.
Threads: a private chat is one conversation (a reply quoting one of our messages, a
button or a code in the text names the exception); in groups the sender is the person
and a forum topic whose name carries a code (e.g. "E-0042 hobber") is that exception's
thread. Buttons are inline keyboards (`callback_data` `ack:E-0042`); when the
exception's status moves on, the message is edited (`editMessageText`) to show it, with
only the buttons that still apply.
"""

from __future__ import annotations

import logging
import warnings
from datetime import timedelta
from typing import Any

from telegram import InlineKeyboardButton, InlineKeyboardMarkup, Update
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
    InboundAttachment,
    InboundMessage,
    OutboundMessage,
    PermanentFailure,
    TemporaryFailure,
)
from bot.channels.cards import (
    CODE,
    button_label,
    button_value,
    live_buttons,
    parse_button,
    status_name,
    with_code,
)
from bot.middleware import InboundGate
from bot.ratelimit import Bucket, Rate, rate_limited
from models import Notification, PlantException
from routing import messages

log = logging.getLogger(__name__)

MAX_TEXT = 4096


def retry_seconds(error: RetryAfter) -> float:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        value = error.retry_after
    return value.total_seconds() if isinstance(value, timedelta) else float(value)


class TelegramChannel:
    name = "telegram"

    def __init__(self, *, token: str, api_url: str = "https://api.telegram.org/bot", webhook_secret: str | None = None,
                 webhook_url: str | None = None, gate: InboundGate | None = None, engine: Any = None,
                 chat_rate: Rate = Rate(1, 1.0, burst=3), group_rate: Rate = Rate(20, 60.0), bot_rate: Rate = Rate(30, 1.0, burst=3),
                 poll_timeout: int = 10) -> None:
        self.token = token
        self.api_url = api_url
        self.file_url = api_url[: -len("/bot")] + "/file/bot" if api_url.endswith("/bot") else api_url.rstrip("/") + "/file/bot"
        self.webhook_secret = webhook_secret
        self.webhook_url = webhook_url
        self.gate = gate
        self.engine = engine
        self.chat_rate, self.group_rate, self.bot_rate = chat_rate, group_rate, bot_rate
        self.poll_timeout = poll_timeout
        self._app: Application | None = None
        self.bot_id: int | None = None

    @classmethod
    def from_settings(cls, settings: Any, *, gate: InboundGate | None = None, engine: Any = None,
                      **_: Any) -> TelegramChannel:
        secret = settings.telegram_webhook_secret
        return cls(token=settings.telegram_bot_token.get_secret_value(), api_url=settings.telegram_api_url,
                   webhook_secret=secret.get_secret_value() if secret else None,
                   webhook_url=settings.telegram_webhook_url, gate=gate, engine=engine)

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
        if self.webhook_mode:
            if self.webhook_url:
                await app.bot.set_webhook(self.webhook_url, secret_token=self.webhook_secret,
                                          allowed_updates=["message", "callback_query"])
        else:
            assert app.updater is not None
            await app.updater.start_polling(timeout=self.poll_timeout, allowed_updates=["message", "callback_query"])
        await app.start()

    async def stop(self) -> None:
        if self._app is None:
            return
        app, self._app = self._app, None
        if app.updater is not None and app.updater.running:
            await app.updater.stop()
        if app.running:
            await app.stop()
        await app.shutdown()

    async def handle_update(self, data: dict[str, Any]) -> None:
        """A webhook delivery: processed (stored) before Telegram gets its 200."""
        update = Update.de_json(data, self.app.bot)
        await self.app.process_update(update)

    # --- inbound -------------------------------------------------------------------------

    async def _on_message(self, update: Update, _context: ContextTypes.DEFAULT_TYPE) -> None:
        message, sender = update.effective_message, update.effective_user
        if message is None or sender is None or self.gate is None:
            return
        own = sender.id == self.bot_id or sender.is_bot
        text = message.text or message.caption or ""
        attachments: list[InboundAttachment] = []
        if message.photo:
            attachments.append(InboundAttachment("photo", "image/jpeg", url=f"tg-file:{message.photo[-1].file_id}"))
        for item, kind in ((message.voice, "voice"), (message.audio, "voice"), (message.document, "file")):
            if item is not None:
                attachments.append(InboundAttachment(kind, getattr(item, "mime_type", None), url=f"tg-file:{item.file_id}"))
        if not text and not attachments:
            return
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
        file = await self.app.bot.get_file((attachment.url or "").removeprefix("tg-file:"))
        return bytes(await file.download_as_bytearray()), attachment.content_type

    # --- outbound ------------------------------------------------------------------------

    def rate_buckets(self, message: OutboundMessage) -> tuple[Bucket, ...]:
        chat = (f"telegram:chat:{message.address}", self.chat_rate)
        bot = ("telegram:bot", self.bot_rate)
        if message.address.startswith("-"):  # groups and channels have negative ids
            return chat, (f"telegram:group:{message.address}", self.group_rate), bot
        return chat, bot

    def _keyboard(self, buttons: tuple[str, ...], code: str | None, language: str) -> InlineKeyboardMarkup | None:
        if not buttons:
            return None
        return InlineKeyboardMarkup([[InlineKeyboardButton(button_label(b, language), callback_data=button_value(b, code))
                                      for b in buttons]])

    async def send(self, message: OutboundMessage) -> str:
        text = with_code(message.text, message.exception_code)[:MAX_TEXT]
        try:
            sent = await self.app.bot.send_message(
                chat_id=message.address, text=text,
                reply_markup=self._keyboard(message.buttons, message.exception_code, message.language))
        except TelegramError as error:
            raise self._error(error) from error
        return f"{sent.chat_id}:{sent.message_id}"

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
        status = messages.render("card_status", row.language, code=exception.code,
                                 status=status_name(exception.status, row.language))
        text = with_code(row.text, exception.code)[: MAX_TEXT - len(status) - 2] + "\n\n" + status
        try:
            await self.app.bot.edit_message_text(
                text=text, chat_id=chat_id, message_id=int(message_id),
                reply_markup=self._keyboard(live_buttons(tuple(row.buttons), exception.status), exception.code,
                                            row.language))
        except BadRequest as error:
            if "not modified" not in str(error).lower():
                raise PermanentFailure(f"Telegram: {error}") from error
        except TelegramError as error:
            raise self._error(error) from error

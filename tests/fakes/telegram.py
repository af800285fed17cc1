"""A fake Telegram Bot API: `/bot<token>/<method>` as python-telegram-bot calls it, and file downloads.

getUpdates is a real long poll (held until an update arrives or `timeout` passes).
Methods: getMe, deleteWebhook, setWebhook, getUpdates, sendMessage, sendPhoto (multipart), editMessageText,
editMessageReplyMarkup, answerCallbackQuery, getFile, createForumTopic. Chat ids starting with 403 answer "Forbidden:
bot was blocked by the user", with 400 "Bad Request: chat not found". Groups have negative
ids; those in `forums` take topics (createForumTopic elsewhere answers "the chat is not a
forum"), and a `message_thread_id` that is not an open topic of the chat is refused. As the platform it queues
updates for polling or POSTs them to a webhook with the secret-token header.
"""

from __future__ import annotations

import asyncio
import itertools
import json
import time
from collections import defaultdict
from typing import Any

from aiohttp import web

from tests.fakes.server import FakeServer

BOT = {"id": 999999, "is_bot": True, "first_name": "mfgos", "username": "mfgos_bot"}


class FakeTelegram(FakeServer):
    def __init__(self, token: str = "123:FAKE") -> None:
        super().__init__()
        self.token = token
        self.sent: list[dict[str, Any]] = []
        self.edits: list[dict[str, Any]] = []
        self.photos: list[dict[str, Any]] = []  # sendPhoto: chat_id, message_id, caption, data (the bytes received)
        self.answered: list[str] = []
        self.webhook: dict[str, Any] = {}
        self.files: dict[str, bytes] = {}
        self.forums: set[str] = set()  # chat ids of forum supergroups
        self.topics: dict[int, dict[str, Any]] = {}  # message_thread_id -> {"chat_id", "name"}
        self._updates: list[dict[str, Any]] = []
        self._update_ids = itertools.count(1)
        self._message_ids: dict[str, itertools.count[int]] = defaultdict(lambda: itertools.count(100))
        self._waiting: list[asyncio.Event] = []  # one per held getUpdates
        self._closing = False
        self.app.router.add_post("/bot{token}/{method}", self._api)
        self.app.router.add_get("/file/bot{token}/{path:.*}", self._file)

    @property
    def api_url(self) -> str:
        return f"{self.url}/bot"

    # --- Bot API -------------------------------------------------------------------------

    async def _api(self, request: web.Request) -> web.Response:
        method = request.match_info["method"]
        files: dict[str, dict[str, Any]] = {}
        if request.content_type == "application/json":
            params = await request.json()
        else:
            form = await request.post()
            params = {k: v for k, v in form.items() if isinstance(v, str)}
            # Files come as multipart parts (sendPhoto): kept apart, with their name and bytes.
            files = {k: {"filename": v.filename, "content_type": v.content_type, "data": v.file.read()}
                     for k, v in form.items() if isinstance(v, web.FileField)}
        for key in ("reply_markup", "allowed_updates", "reply_parameters"):
            if isinstance(params.get(key), str):
                params[key] = json.loads(params[key])
        self.record(request, {"method": method, **params})
        if request.match_info["token"] != self.token:
            return web.json_response({"ok": False, "error_code": 401, "description": "Unauthorized"}, status=401)
        handler = getattr(self, f"_{method}", None)
        if handler is None:
            return web.json_response({"ok": False, "error_code": 404, "description": "Not Found"}, status=404)
        if files:
            params["_files"] = files
        if method in ("sendMessage", "sendPhoto", "editMessageText", "editMessageReplyMarkup"):
            outcome = self.faults.draw()
            if outcome == "429":
                wait = int(self.faults.retry_after)
                return web.json_response({"ok": False, "error_code": 429, "description": f"Too Many Requests: retry after {wait}",
                                          "parameters": {"retry_after": wait}}, status=429)
            if outcome == "5xx":
                return web.json_response({"ok": False, "error_code": 502, "description": "Bad Gateway"}, status=502)
        result = await handler(params)
        if isinstance(result, web.Response):
            return result
        return web.json_response({"ok": True, "result": result})

    async def _getMe(self, _params: dict[str, Any]) -> dict[str, Any]:
        return BOT

    async def _deleteWebhook(self, _params: dict[str, Any]) -> bool:
        self.webhook = {}
        return True

    async def _setWebhook(self, params: dict[str, Any]) -> bool:
        self.webhook = {"url": params.get("url"), "secret_token": params.get("secret_token")}
        return True

    async def _getUpdates(self, params: dict[str, Any]) -> list[dict[str, Any]]:
        offset = int(params.get("offset") or 0)
        self._updates = [u for u in self._updates if u["update_id"] >= offset]
        if not self._updates and not self._closing:
            arrived = asyncio.Event()
            self._waiting.append(arrived)
            try:
                await asyncio.wait_for(arrived.wait(), timeout=float(params.get("timeout") or 0))
            except TimeoutError:
                pass
            finally:
                self._waiting.remove(arrived)
        return list(self._updates)

    def _release(self) -> None:
        for arrived in self._waiting:
            arrived.set()

    def _refuse(self, chat_id: str) -> web.Response | None:
        if chat_id.lstrip("-").startswith("403"):
            return web.json_response({"ok": False, "error_code": 403, "description": "Forbidden: bot was blocked by the user"},
                                     status=403)
        if chat_id.lstrip("-").startswith("400"):
            return web.json_response({"ok": False, "error_code": 400, "description": "Bad Request: chat not found"},
                                     status=400)
        return None

    @staticmethod
    def chat(chat_id: str) -> dict[str, Any]:
        return {"id": int(chat_id), "type": "private" if not chat_id.startswith("-") else "supergroup"}

    async def _sendMessage(self, params: dict[str, Any]) -> Any:
        chat_id = str(params.get("chat_id"))
        if (refused := self._refuse(chat_id)) is not None:
            return refused
        thread = int(params["message_thread_id"]) if params.get("message_thread_id") not in (None, "") else None
        if thread is not None and self.topics.get(thread, {}).get("chat_id") != chat_id:
            return web.json_response({"ok": False, "error_code": 400, "description": "Bad Request: message thread not found"},
                                     status=400)
        message_id = next(self._message_ids[chat_id])
        message = {"message_id": message_id, "date": int(time.time()), "from": BOT, "text": params.get("text", ""),
                   "chat": self.chat(chat_id)}
        if thread is not None:
            message["message_thread_id"], message["is_topic_message"] = thread, True
        if params.get("reply_markup"):
            message["reply_markup"] = params["reply_markup"]
        self.sent.append({"chat_id": chat_id, "message_id": message_id, "text": message["text"],
                          "reply_markup": params.get("reply_markup"), "message_thread_id": thread,
                          "reply_parameters": params.get("reply_parameters")})
        return message

    async def _sendPhoto(self, params: dict[str, Any]) -> Any:
        """sendPhoto as documented: `chat_id` and `photo` (here a multipart upload) are required, the photo
        at most 10 MB and a real image, the caption at most 1024 characters."""
        chat_id = str(params.get("chat_id") or "")
        if not chat_id:
            return self._bad("Bad Request: chat_id is empty")
        if (refused := self._refuse(chat_id)) is not None:
            return refused
        photo = params.get("_files", {}).get("photo")
        if photo is None:
            return self._bad("Bad Request: there is no photo in the request")
        data = photo["data"]
        if not data or len(data) > 10 * 1024 * 1024:
            return self._bad("Bad Request: file must be non-empty and at most 10 MB")
        if not data.startswith((b"\x89PNG\r\n\x1a\n", b"\xff\xd8\xff")):
            return self._bad("Bad Request: IMAGE_PROCESS_FAILED")
        caption = str(params.get("caption") or "")
        if len(caption) > 1024:
            return self._bad("Bad Request: message caption is too long")
        message_id = next(self._message_ids[chat_id])
        message = {"message_id": message_id, "date": int(time.time()), "from": BOT, "chat": self.chat(chat_id),
                   "photo": [{"file_id": f"photo-{chat_id}-{message_id}", "file_unique_id": f"u{message_id}",
                              "width": 800, "height": 450}]}
        if caption:
            message["caption"] = caption
        if params.get("reply_markup"):
            message["reply_markup"] = params["reply_markup"]
        self.photos.append({"chat_id": chat_id, "message_id": message_id, "caption": caption, "data": data,
                            "filename": photo["filename"], "reply_markup": params.get("reply_markup")})
        return message

    @staticmethod
    def _bad(description: str) -> web.Response:
        return web.json_response({"ok": False, "error_code": 400, "description": description}, status=400)

    async def _createForumTopic(self, params: dict[str, Any]) -> Any:
        chat_id, name = str(params.get("chat_id")), str(params.get("name") or "")
        if chat_id not in self.forums:
            return web.json_response({"ok": False, "error_code": 400, "description": "Bad Request: the chat is not a forum"},
                                     status=400)
        if not 1 <= len(name) <= 128:
            return web.json_response({"ok": False, "error_code": 400, "description": "Bad Request: TOPIC_TITLE_EMPTY"},
                                     status=400)
        thread = next(self._message_ids[chat_id])  # the id of the "topic created" service message
        self.topics[thread] = {"chat_id": chat_id, "name": name}
        return {"message_thread_id": thread, "name": name, "icon_color": 7322096}

    def in_chat(self, chat_id: str, thread: int | None = None) -> list[dict[str, Any]]:
        """What the bot posted in a group (in one topic of it, if `thread` is given)."""
        return [m for m in self.sent if m["chat_id"] == str(chat_id) and (thread is None or m["message_thread_id"] == thread)]

    async def _editMessageText(self, params: dict[str, Any]) -> Any:
        chat_id, message_id = str(params.get("chat_id")), int(params.get("message_id") or 0)
        found = [m for m in self.sent if m["chat_id"] == chat_id and m["message_id"] == message_id]
        if not found:
            return web.json_response({"ok": False, "error_code": 400, "description": "Bad Request: message to edit not found"},
                                     status=400)
        if found[0]["text"] == params.get("text") and found[0]["reply_markup"] == params.get("reply_markup"):
            return web.json_response({"ok": False, "error_code": 400, "description": "Bad Request: message is not modified"},
                                     status=400)
        found[0].update(text=params.get("text"), reply_markup=params.get("reply_markup"))
        self.edits.append({"chat_id": chat_id, "message_id": message_id, "text": params.get("text"),
                           "reply_markup": params.get("reply_markup")})
        return {"message_id": message_id, "date": int(time.time()), "edit_date": int(time.time()), "from": BOT,
                "chat": self.chat(chat_id), "text": params.get("text")}

    async def _editMessageReplyMarkup(self, params: dict[str, Any]) -> Any:
        """Only the inline keyboard changes; no `reply_markup` (or an empty keyboard) removes it."""
        chat_id, message_id = str(params.get("chat_id")), int(params.get("message_id") or 0)
        found = [m for m in self.sent if m["chat_id"] == chat_id and m["message_id"] == message_id]
        if not found:
            return web.json_response({"ok": False, "error_code": 400, "description": "Bad Request: message to edit not found"},
                                     status=400)
        markup = params.get("reply_markup") or None
        if not (markup or {}).get("inline_keyboard"):
            markup = None
        if found[0]["reply_markup"] == markup:
            return web.json_response({"ok": False, "error_code": 400, "description": "Bad Request: message is not modified"},
                                     status=400)
        found[0]["reply_markup"] = markup
        self.edits.append({"chat_id": chat_id, "message_id": message_id, "reply_markup": markup,
                           "method": "editMessageReplyMarkup"})
        message = {"message_id": message_id, "date": int(time.time()), "edit_date": int(time.time()), "from": BOT,
                   "chat": self.chat(chat_id), "text": found[0]["text"]}
        if markup:
            message["reply_markup"] = markup
        return message

    async def _answerCallbackQuery(self, params: dict[str, Any]) -> bool:
        self.answered.append(str(params.get("callback_query_id")))
        return True

    async def _getFile(self, params: dict[str, Any]) -> dict[str, Any]:
        file_id = str(params.get("file_id"))
        return {"file_id": file_id, "file_unique_id": f"u{file_id}", "file_size": len(self.files.get(file_id, b"")),
                "file_path": f"media/{file_id}"}

    async def _file(self, request: web.Request) -> web.Response:
        file_id = request.match_info["path"].removeprefix("media/")
        if request.match_info["token"] != self.token or file_id not in self.files:
            return web.Response(status=404)
        return web.Response(body=self.files[file_id], content_type="application/octet-stream")

    async def on_stop(self) -> None:
        self._closing = True
        self._release()

    def state(self) -> dict[str, Any]:
        return {**super().state(), "sent": self.sent, "edits": self.edits}

    # --- as the platform -------------------------------------------------------------------

    @staticmethod
    def user(user_id: int, first_name: str = "Person", language_code: str | None = "en") -> dict[str, Any]:
        user: dict[str, Any] = {"id": user_id, "is_bot": False, "first_name": first_name}
        if language_code:
            user["language_code"] = language_code
        return user

    def message(self, user_id: int, text: str = "", *, chat: dict[str, Any] | None = None, language_code: str | None = "en",
                reply_to: dict[str, Any] | None = None, photo: str | None = None, voice: str | None = None,
                topic: tuple[int, str] | None = None, message_id: int | None = None) -> dict[str, Any]:
        chat = chat or {"id": user_id, "type": "private", "first_name": "Person"}
        message: dict[str, Any] = {"message_id": message_id or next(self._message_ids[f"in:{chat['id']}"]),
                                   "date": int(time.time()), "chat": chat,
                                   "from": self.user(user_id, language_code=language_code)}
        if text:
            message["caption" if photo or voice else "text"] = text
        if photo:
            message["photo"] = [{"file_id": photo + "-small", "file_unique_id": "s", "width": 90, "height": 90},
                                {"file_id": photo, "file_unique_id": "b", "width": 800, "height": 600}]
        if voice:
            message["voice"] = {"file_id": voice, "file_unique_id": "v", "duration": 3, "mime_type": "audio/ogg"}
        if reply_to:
            message["reply_to_message"] = reply_to
        if topic:
            thread_id, name = topic
            message["message_thread_id"] = thread_id
            message["is_topic_message"] = True
            opened_by = BOT if thread_id in self.topics else self.user(user_id)
            message.setdefault("reply_to_message", {
                "message_id": thread_id, "date": int(time.time()), "chat": chat, "message_thread_id": thread_id,
                "from": opened_by, "forum_topic_created": {"name": name, "icon_color": 7322096}})
        return {"update_id": next(self._update_ids), "message": message}

    def callback(self, user_id: int, data: str, sent: dict[str, Any], language_code: str | None = "en") -> dict[str, Any]:
        """A press on an inline button of a message we sent (an entry of `self.sent`)."""
        return {"update_id": next(self._update_ids), "callback_query": {
            "id": f"cb{next(self._update_ids)}", "from": self.user(user_id, language_code=language_code),
            "chat_instance": "ci", "data": data,
            "message": {"message_id": sent["message_id"], "date": int(time.time()), "from": BOT, "text": sent["text"],
                        "chat": self.chat(sent["chat_id"])}}}

    def queue(self, update: dict[str, Any]) -> None:
        """Hand an update to the next getUpdates (long polling)."""
        async def _queue() -> None:
            self._updates.append(update)
            self._release()

        self.call(_queue())

    async def deliver(self, url: str, update: dict[str, Any], secret: str | None) -> tuple[int, str]:
        """POST an update to a webhook as Telegram does."""
        headers = {"Content-Type": "application/json"}
        if secret is not None:
            headers["X-Telegram-Bot-Api-Secret-Token"] = secret
        return await self.post(url, json.dumps(update).encode(), headers)

    def sent_to(self, chat_id: str) -> list[dict[str, Any]]:
        return [m for m in self.sent if m["chat_id"] == str(chat_id)]

    @staticmethod
    def buttons(message: dict[str, Any]) -> list[str]:
        markup = message.get("reply_markup") or {}
        return [b["callback_data"] for row in markup.get("inline_keyboard", []) for b in row]

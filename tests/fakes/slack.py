"""A fake Slack: the Web API methods mfgos calls, Socket Mode over a websocket, and signed event delivery.

Web API (`/api/<method>`, Bearer token): auth.test, chat.postMessage (JSON or form),
chat.update, chat.delete, users.info (GET; the locale of the users in `locales`, with
`include_locale`), conversations.open, the upload of files_upload_v2 (files.getUploadURLExternal,
the upload URL, files.completeUploadExternal: `shared` keeps what was posted, with its bytes),
apps.connections.open (app token) and file downloads. A channel
id starting with `CGONE` or a user starting with `UGONE` answers `channel_not_found`.
As the platform it signs Events API requests (v0 HMAC) and pushes Socket Mode envelopes.
"""

from __future__ import annotations

import hashlib
import hmac
import itertools
import json
import time
import urllib.parse
import uuid
from typing import Any

from aiohttp import WSMsgType, web

from tests.fakes.server import FakeServer

BOT_USER, BOT_ID, TEAM = "UBOT", "BBOT", "T0PLANT"


class FakeSlack(FakeServer):
    def __init__(self, token: str = "xoxb-fake", signing_secret: str = "slack-secret", app_token: str = "xapp-fake") -> None:
        super().__init__()
        self.token, self.signing_secret, self.app_token = token, signing_secret, app_token
        self.messages: list[dict[str, Any]] = []
        self.updates: list[dict[str, Any]] = []
        self.deleted: list[dict[str, Any]] = []
        self.files: dict[str, tuple[bytes, str]] = {}
        self.acks: list[str] = []
        self._ts = itertools.count(1)
        self._sockets: list[web.WebSocketResponse] = []
        self.locales: dict[str, str] = {}  # users.info: user id -> Slack locale ("es-ES")
        self.app.router.add_post("/api/{method}", self._api)
        self.app.router.add_get("/api/{method}", self._api)  # users.info is a GET with query parameters
        self.app.router.add_get("/link", self._link)
        self.app.router.add_get("/files/{name}", self._file)
        self.app.router.add_post("/upload/v1/{file_id}", self._upload)
        # files_upload_v2: file id -> {"filename", "length", "data" (once uploaded)}; shared ones in `shared`.
        self.uploads: dict[str, dict[str, Any]] = {}
        self.shared: list[dict[str, Any]] = []

    @property
    def api_url(self) -> str:
        return f"{self.url}/api/"

    # --- Web API -------------------------------------------------------------------------

    async def _api(self, request: web.Request) -> web.Response:
        method = request.match_info["method"]
        # slack_sdk sends some methods' arguments in the query string of a POST (files.getUploadURLExternal).
        body: dict[str, Any] = dict(request.query)
        if request.method == "POST" and request.content_type == "application/json":
            body.update(await request.json())
        elif request.method == "POST":
            body.update(await request.post())
        self.record(request, body)
        auth = request.headers.get("Authorization", "")
        expected = self.app_token if method == "apps.connections.open" else self.token
        if auth != f"Bearer {expected}":
            return web.json_response({"ok": False, "error": "invalid_auth"})
        handler = getattr(self, "_" + method.replace(".", "_"), None)
        if handler is None:
            return web.json_response({"ok": False, "error": "unknown_method"})
        if method in ("chat.postMessage", "chat.update", "files.completeUploadExternal"):
            outcome = self.faults.draw()
            if outcome == "429":
                return web.json_response({"ok": False, "error": "ratelimited"}, status=429,
                                         headers={"Retry-After": str(int(self.faults.retry_after))})
            if outcome == "5xx":
                return web.json_response({"ok": False, "error": "internal_error"}, status=500)
        return web.json_response(await handler(body))

    async def _users_info(self, body: dict[str, Any]) -> dict[str, Any]:
        """Users are in `locales` (user id -> "es-ES"); the locale only comes with `include_locale`."""
        user = str(body.get("user") or "")
        if user not in self.locales:
            return {"ok": False, "error": "user_not_found"}
        profile: dict[str, Any] = {"id": user, "team_id": TEAM, "name": user.lower(), "is_bot": False}
        if str(body.get("include_locale")).lower() in ("1", "true"):
            profile["locale"] = self.locales[user]
        return {"ok": True, "user": profile}

    async def _auth_test(self, _body: dict[str, Any]) -> dict[str, Any]:
        return {"ok": True, "url": "https://plant.slack.com/", "team": "Plant", "user": "mfgos", "team_id": TEAM,
                "user_id": BOT_USER, "bot_id": BOT_ID, "is_enterprise_install": False}

    def _conversation(self, channel: str) -> str | None:
        if channel.startswith(("CGONE", "UGONE")):
            return None
        return "D" + channel[1:] if channel.startswith("U") else channel

    async def _chat_postMessage(self, body: dict[str, Any]) -> dict[str, Any]:
        conversation = self._conversation(str(body.get("channel", "")))
        if conversation is None:
            return {"ok": False, "error": "channel_not_found"}
        if not body.get("text") and not body.get("blocks"):
            return {"ok": False, "error": "no_text"}
        blocks = body.get("blocks")
        if isinstance(blocks, str):
            blocks = json.loads(blocks)
        n = next(self._ts)
        ts = f"{1_700_000_000 + n}.{n:06d}"
        message = {"channel": conversation, "to": body.get("channel"), "ts": ts, "text": body.get("text", ""),
                   "blocks": blocks or [], "thread_ts": body.get("thread_ts")}
        self.messages.append(message)
        return {"ok": True, "channel": conversation, "ts": ts,
                "message": {"type": "message", "user": BOT_USER, "bot_id": BOT_ID, "text": message["text"], "ts": ts}}

    async def _chat_update(self, body: dict[str, Any]) -> dict[str, Any]:
        found = [m for m in self.messages if m["channel"] == body.get("channel") and m["ts"] == body.get("ts")]
        if not found:
            return {"ok": False, "error": "message_not_found"}
        blocks = body.get("blocks")
        if isinstance(blocks, str):
            blocks = json.loads(blocks)
        found[0].update(text=body.get("text", found[0]["text"]), blocks=blocks or [])
        self.updates.append({"channel": body["channel"], "ts": body["ts"], "text": body.get("text"), "blocks": blocks})
        return {"ok": True, "channel": body["channel"], "ts": body["ts"], "text": body.get("text")}

    async def _chat_delete(self, body: dict[str, Any]) -> dict[str, Any]:
        self.deleted.append(body)
        self.messages = [m for m in self.messages if not (m["channel"] == body.get("channel") and m["ts"] == body.get("ts"))]
        return {"ok": True, "channel": body.get("channel"), "ts": body.get("ts")}

    async def _conversations_open(self, body: dict[str, Any]) -> dict[str, Any]:
        """The DM with one user (`users`): its channel id."""
        users = str(body.get("users") or "")
        conversation = self._conversation(users) if users.startswith("U") and "," not in users else None
        if conversation is None:
            return {"ok": False, "error": "user_not_found" if users else "not_enough_users"}
        return {"ok": True, "channel": {"id": conversation}}

    async def _files_getUploadURLExternal(self, body: dict[str, Any]) -> dict[str, Any]:
        """Step 1 of an upload: `filename` and `length` (bytes) are required; an upload URL and a file id back."""
        filename, length = str(body.get("filename") or ""), str(body.get("length") or "")
        if not filename or not length.isdigit() or int(length) <= 0:
            return {"ok": False, "error": "invalid_arguments"}
        file_id = f"F{next(self._ts):08d}"
        self.uploads[file_id] = {"filename": filename, "length": int(length), "data": None}
        return {"ok": True, "upload_url": f"{self.url}/upload/v1/{file_id}", "file_id": file_id}

    async def _upload(self, request: web.Request) -> web.Response:
        """Step 2: the bytes, raw or as a multipart part; they must be as long as step 1 said."""
        upload = self.uploads.get(request.match_info["file_id"])
        if upload is None:
            return web.Response(status=404, text="unknown upload")
        if request.content_type == "multipart/form-data":
            part = next((v for v in (await request.post()).values() if isinstance(v, web.FileField)), None)
            data = part.file.read() if part is not None else b""
        else:
            data = await request.read()
        if len(data) != upload["length"]:
            return web.Response(status=400, text="length mismatch")
        upload["data"] = data
        return web.Response(text=f"OK - {len(data)}")

    async def _files_completeUploadExternal(self, body: dict[str, Any]) -> dict[str, Any]:
        """Step 3: `files` (JSON: ids and titles) of uploads whose bytes arrived, shared into `channel_id`
        (and `thread_ts`) with `initial_comment`: this is what posts the message."""
        try:
            files = json.loads(body.get("files") or "[]")
        except ValueError:
            return {"ok": False, "error": "invalid_arguments"}
        if not isinstance(files, list) or not files or not all(isinstance(f, dict) and f.get("id") for f in files):
            return {"ok": False, "error": "invalid_arguments"}
        if any(self.uploads.get(f["id"], {}).get("data") is None for f in files):
            return {"ok": False, "error": "file_not_found"}
        channel = body.get("channel_id")
        if channel is not None:
            if str(channel).startswith("U"):  # a user id is not a conversation: the DM comes from conversations.open
                return {"ok": False, "error": "channel_not_found"}
            if self._conversation(str(channel)) is None:
                return {"ok": False, "error": "channel_not_found"}
        for f in files:
            self.shared.append({"id": f["id"], "title": f.get("title"), "channel": channel,
                                "thread_ts": body.get("thread_ts"), "initial_comment": body.get("initial_comment"),
                                "data": self.uploads[f["id"]]["data"]})
        return {"ok": True, "files": [{"id": f["id"], "title": f.get("title")} for f in files]}

    async def _apps_connections_open(self, _body: dict[str, Any]) -> dict[str, Any]:
        return {"ok": True, "url": f"ws://127.0.0.1:{self.port}/link?ticket={uuid.uuid4().hex}"}

    async def _file(self, request: web.Request) -> web.Response:
        if request.headers.get("Authorization") != f"Bearer {self.token}":
            return web.Response(status=403, text="not authorised")
        name = request.match_info["name"]
        if name not in self.files:
            return web.Response(status=404)
        data, content_type = self.files[name]
        return web.Response(body=data, content_type=content_type)

    def add_file(self, name: str, data: bytes, content_type: str) -> dict[str, Any]:
        """A file as it appears in a message event's `files`."""
        self.files[name] = (data, content_type)
        return {"id": f"F{name}", "name": name, "mimetype": content_type,
                "url_private": f"{self.url}/files/{name}", "url_private_download": f"{self.url}/files/{name}"}

    # --- what a person sees ----------------------------------------------------------------

    def posted(self, channel: str | None = None, to: str | None = None) -> list[dict[str, Any]]:
        return [m for m in self.messages if (channel is None or m["channel"] == channel) and (to is None or m["to"] == to)]

    @staticmethod
    def buttons(message: dict[str, Any]) -> list[str]:
        return [e["value"] for b in message["blocks"] if b.get("type") == "actions" for e in b["elements"]]

    @staticmethod
    def context(message: dict[str, Any]) -> list[str]:
        return [e["text"] for b in message["blocks"] if b.get("type") == "context" for e in b["elements"]]

    def state(self) -> dict[str, Any]:
        return {**super().state(), "messages": self.messages, "updates": self.updates}

    # --- as the platform: the Events API -------------------------------------------------

    def sign(self, raw: bytes, timestamp: int | None = None, secret: str | None = None) -> dict[str, str]:
        ts = str(int(time.time()) if timestamp is None else timestamp)
        digest = hmac.new((secret or self.signing_secret).encode(), f"v0:{ts}:".encode() + raw, hashlib.sha256)
        return {"X-Slack-Request-Timestamp": ts, "X-Slack-Signature": "v0=" + digest.hexdigest()}

    @staticmethod
    def message_event(user: str, text: str, channel: str, ts: str, thread_ts: str | None = None,
                      files: list[dict[str, Any]] | None = None, event_id: str | None = None) -> dict[str, Any]:
        event: dict[str, Any] = {"type": "message", "user": user, "text": text, "channel": channel, "ts": ts,
                                 "channel_type": "im" if channel.startswith("D") else "channel"}
        if thread_ts:
            event["thread_ts"] = thread_ts
        if files:
            event["files"], event["subtype"] = files, "file_share"
        return {"token": "legacy", "team_id": TEAM, "api_app_id": "A0MFGOS", "type": "event_callback",
                "event": event, "event_id": event_id or f"Ev{uuid.uuid4().hex[:10]}", "event_time": int(time.time()),
                "authorizations": [{"team_id": TEAM, "user_id": BOT_USER, "is_bot": True}]}

    def button_payload(self, user: str, value: str, message: dict[str, Any]) -> dict[str, Any]:
        return {"type": "block_actions", "user": {"id": user, "team_id": TEAM}, "team": {"id": TEAM},
                "api_app_id": "A0MFGOS", "token": "legacy", "trigger_id": uuid.uuid4().hex,
                "container": {"type": "message", "message_ts": message["ts"], "channel_id": message["channel"]},
                "channel": {"id": message["channel"]}, "message": {"ts": message["ts"], "text": message["text"]},
                "response_url": f"{self.url}/respond",
                "actions": [{"type": "button", "action_id": f"mfgos_{value.split(':')[0]}", "block_id": "mfgos_actions",
                             "value": value, "action_ts": f"{time.time():.6f}"}]}

    async def deliver_event(self, url: str, body: dict[str, Any], *, retry_num: int | None = None,
                            timestamp: int | None = None, secret: str | None = None) -> tuple[int, str]:
        raw = json.dumps(body).encode()
        headers = {"Content-Type": "application/json", **self.sign(raw, timestamp, secret)}
        if retry_num is not None:
            headers |= {"X-Slack-Retry-Num": str(retry_num), "X-Slack-Retry-Reason": "http_timeout"}
        return await self.post(url, raw, headers)

    async def deliver_action(self, url: str, payload: dict[str, Any], **kw: Any) -> tuple[int, str]:
        raw = urllib.parse.urlencode({"payload": json.dumps(payload)}).encode()
        headers = {"Content-Type": "application/x-www-form-urlencoded", **self.sign(raw, kw.get("timestamp"), kw.get("secret"))}
        return await self.post(url, raw, headers)

    # --- as the platform: Socket Mode ----------------------------------------------------

    async def _link(self, request: web.Request) -> web.WebSocketResponse:
        socket = web.WebSocketResponse(autoping=True)
        await socket.prepare(request)
        self._sockets.append(socket)
        await socket.send_json({"type": "hello", "num_connections": 1, "connection_info": {"app_id": "A0MFGOS"},
                                "debug_info": {"host": "fake", "approximate_connection_time": 3600}})
        async for frame in socket:
            if frame.type == WSMsgType.TEXT:
                data = json.loads(frame.data)
                if "envelope_id" in data:
                    self.acks.append(data["envelope_id"])
        if socket in self._sockets:
            self._sockets.remove(socket)
        return socket

    @property
    def connected(self) -> int:
        return len([s for s in self._sockets if not s.closed])

    async def push(self, kind: str, payload: dict[str, Any]) -> str:
        """Send an envelope (`events_api` or `interactive`) to the connected client; returns its id."""
        envelope_id = uuid.uuid4().hex
        socket = next(s for s in reversed(self._sockets) if not s.closed)
        await socket.send_json({"envelope_id": envelope_id, "type": kind, "accepts_response_payload": kind != "events_api",
                                "payload": payload, "retry_attempt": 0, "retry_reason": ""})
        return envelope_id

    async def on_stop(self) -> None:
        for socket in list(self._sockets):
            await socket.close()

"""A fake messenger bridge (docs/channels.md, "The bridge protocol"): it receives mfgos' signed
callbacks, serves files, and delivers signed inbound messages to `/bridge/inbound`.

A callback whose signature is wrong or stale is answered 401 and not kept; `to` starting
with `+000` is refused with 404 (unknown recipient).
"""

from __future__ import annotations

import itertools
import json
import time
from typing import Any

from aiohttp import web

from bot.middleware import sign_bridge, verify_bridge
from tests.fakes.server import FakeServer


class FakeBridge(FakeServer):
    def __init__(self, secret: str = "bridge-secret") -> None:
        super().__init__()
        self.secret = secret
        self.sent: list[dict[str, Any]] = []
        self.refused: list[dict[str, Any]] = []
        self.idempotency_keys: list[str] = []
        self.files: dict[str, tuple[bytes, str]] = {}
        self._ids = itertools.count(1)
        self.app.router.add_post("/callback", self._callback)
        self.app.router.add_get("/files/{name}", self._file)

    @property
    def callback_url(self) -> str:
        return f"{self.url}/callback"

    async def _callback(self, request: web.Request) -> web.Response:
        raw = await request.read()
        body = json.loads(raw)
        self.record(request, body)
        if not verify_bridge(self.secret, raw, request.headers.get("X-Mfgos-Timestamp"),
                             request.headers.get("X-Mfgos-Signature")):
            self.refused.append(body)
            return web.json_response({"error": "bad signature"}, status=401)
        outcome = self.faults.draw()
        if outcome == "429":
            return web.json_response({"error": "slow down"}, status=429,
                                     headers={"Retry-After": str(int(self.faults.retry_after))})
        if outcome == "5xx":
            return web.json_response({"error": "upstream down"}, status=503)
        if str(body.get("to", "")).startswith("+000"):
            return web.json_response({"error": "unknown recipient"}, status=404)
        self.idempotency_keys.append(request.headers.get("Idempotency-Key", ""))
        message_id = f"br-{next(self._ids)}"
        self.sent.append({"message_id": message_id, **body})
        return web.json_response({"message_id": message_id})

    async def _file(self, request: web.Request) -> web.Response:
        name = request.match_info["name"]
        url = str(request.url)
        if name not in self.files or not verify_bridge(self.secret, url.encode(), request.headers.get("X-Mfgos-Timestamp"),
                                                       request.headers.get("X-Mfgos-Signature")):
            return web.Response(status=404)
        data, content_type = self.files[name]
        return web.Response(body=data, content_type=content_type)

    def sent_to(self, address: str) -> list[dict[str, Any]]:
        return [m for m in self.sent if m["to"] == address]

    @staticmethod
    def buttons(message: dict[str, Any]) -> list[str]:
        return [b["id"] for b in message.get("buttons", [])]

    async def deliver(self, url: str, body: dict[str, Any], *, secret: str | None = None,
                      timestamp: int | None = None) -> tuple[int, str]:
        raw = json.dumps(body).encode()
        headers = {"Content-Type": "application/json", **sign_bridge(secret or self.secret, raw, timestamp)}
        return await self.post(url, raw, headers)

    def inbound(self, sender: str, text: str = "", **extra: Any) -> dict[str, Any]:
        return {"event_id": f"bridge-{next(self._ids)}-{int(time.time() * 1000)}", "from": sender, "text": text, **extra}

"""The whole app as `serve` builds it, with EVERY webhook mounted (Slack, Telegram in webhook mode,
WhatsApp, the bridge, the MES webhook) against the fake platforms, on a loop in its own thread
so synchronous tests (hypothesis) can talk to it over real HTTP.

`signed(path, raw)` gives the headers that make a body correctly signed for that route: the
tests hold the test secrets, so hostile bodies reach the parsers behind the signature checks.
"""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import socket
import threading
import time
from collections.abc import Coroutine
from pathlib import Path
from typing import Any, TypeVar

import uvicorn
from fastapi import FastAPI
from sqlmodel import Session, select

from bot.channels.registry import ChannelHub
from bot.middleware import sign_bridge
from mfgos.runtime import Runtime
from mfgos.web import create_app
from models import Attachment, Signal
from signals.registry import build_routers
from signals.webhooks import sign as sign_mes
from tests.fakes.bridge import FakeBridge
from tests.fakes.slack import FakeSlack
from tests.fakes.stack import settings_for
from tests.fakes.telegram import FakeTelegram
from tests.fakes.whatsapp import FakeWhatsApp

T = TypeVar("T")

SLACK_SECRET, TG_SECRET, WA_SECRET, BRIDGE_SECRET, MES_SECRET = (
    "slack-secret", "tg-secret_123", "wa-secret", "bridge-secret", "mes-secret")


class GuardedApp:
    """Fakes, runtime, channel hub and uvicorn on a private loop; `stop()` ends them all."""

    def __init__(self, tmp: Path, **extra: Any) -> None:
        self.slack, self.telegram = FakeSlack().start(), FakeTelegram().start()
        self.whatsapp, self.bridge = FakeWhatsApp().start(), FakeBridge().start()
        self.settings = settings_for(
            f"sqlite:///{tmp / 'guard.db'}", tmp,
            slack_bot_token="xoxb-fake", slack_signing_secret=SLACK_SECRET, slack_api_url=self.slack.api_url,
            telegram_bot_token="123:FAKE", telegram_api_url=self.telegram.api_url, telegram_webhook_secret=TG_SECRET,
            telegram_webhook_url="https://mfgos.example/telegram/webhook",
            whatsapp_token="wa-token", whatsapp_phone_number_id="1055", whatsapp_api_url=self.whatsapp.api_url,
            whatsapp_app_secret=WA_SECRET, whatsapp_verify_token="verify",
            bridge_secret=BRIDGE_SECRET, bridge_callback_url=self.bridge.callback_url,
            signals_webhook_secret=MES_SECRET, **extra)
        self.loop = asyncio.new_event_loop()
        self.thread = threading.Thread(target=self.loop.run_forever, daemon=True, name="guarded-app")
        self.thread.start()
        self.call(self._start())

    def call(self, coro: Coroutine[Any, Any, T], timeout: float = 60) -> T:
        return asyncio.run_coroutine_threadsafe(coro, self.loop).result(timeout)

    async def _start(self) -> None:
        self.runtime = Runtime(self.settings)
        self.hub = ChannelHub(self.settings, self.runtime)
        self.app: FastAPI = create_app(self.runtime, demo=True, extra_routers=[
            *self.hub.routers(), *build_routers(self.runtime, self.settings)])
        sock = socket.create_server(("127.0.0.1", 0))
        self.server = uvicorn.Server(uvicorn.Config(self.app, lifespan="off", log_level="critical", access_log=False))
        self.task = asyncio.create_task(self.server.serve(sockets=[sock]))
        while not self.server.started:
            if self.task.done():
                self.task.result()
            await asyncio.sleep(0.01)
        await self.hub.start()
        self.url = f"http://127.0.0.1:{sock.getsockname()[1]}"

    async def _stop(self) -> None:
        await self.hub.stop()
        self.server.should_exit = True
        await asyncio.wait_for(self.task, 10)
        self.runtime.engine.dispose()

    def stop(self) -> None:
        self.call(self._stop())
        self.loop.call_soon_threadsafe(self.loop.stop)
        self.thread.join(timeout=5)
        for fake in (self.slack, self.telegram, self.whatsapp, self.bridge):
            fake.stop()

    # --- what the store holds --------------------------------------------------------------

    def signals(self) -> list[Signal]:
        with Session(self.runtime.engine) as session:
            return list(session.exec(select(Signal).order_by(Signal.id)))

    def attachments(self) -> list[Attachment]:
        with Session(self.runtime.engine) as session:
            return list(session.exec(select(Attachment).order_by(Attachment.id)))


def signed(path: str, raw: bytes, timestamp: int | None = None) -> dict[str, str]:
    """The headers that make `raw` a correctly signed delivery to the webhook at `path`."""
    now = int(time.time()) if timestamp is None else timestamp
    if path == "/slack/events":
        digest = hmac.new(SLACK_SECRET.encode(), f"v0:{now}:".encode() + raw, hashlib.sha256).hexdigest()
        return {"X-Slack-Request-Timestamp": str(now), "X-Slack-Signature": f"v0={digest}"}
    if path == "/telegram/webhook":
        return {"X-Telegram-Bot-Api-Secret-Token": TG_SECRET}
    if path == "/whatsapp/webhook":
        return {"X-Hub-Signature-256": "sha256=" + hmac.new(WA_SECRET.encode(), raw, hashlib.sha256).hexdigest()}
    if path == "/bridge/inbound":
        return sign_bridge(BRIDGE_SECRET, raw, now)
    if path == "/signals/mes":
        return {"X-Mfgos-Signature": sign_mes(MES_SECRET, raw)}
    return {}

"""The explicit channel registry, and the hub that runs the configured channels beside the web app.

A channel joins by one line in `CHANNELS` (module, class, the settings it needs) and a
`from_settings(settings, *, gate, engine)` class method; modules are imported only when
their settings are present, so an unconfigured platform costs nothing. The console is
always there (the web app's own channel). The contract tests run every registered
channel (tests/test_channels_contract.py checks that none is left out).
"""

from __future__ import annotations

import asyncio
import importlib
import logging
from typing import Any

from bot.channels.base import Channel
from bot.media import MediaStore
from bot.middleware import InboundGate

log = logging.getLogger(__name__)

# name -> (module, class, settings that must all be set for the channel to run)
CHANNELS: dict[str, tuple[str, str, tuple[str, ...]]] = {
    "slack": ("bot.channels.slack", "SlackChannel", ("slack_bot_token",)),
    "telegram": ("bot.channels.telegram", "TelegramChannel", ("telegram_bot_token",)),
    "whatsapp": ("bot.channels.whatsapp", "WhatsAppChannel", ("whatsapp_token", "whatsapp_phone_number_id")),
    "bridge": ("bot.channels.bridge", "BridgeChannel", ("bridge_secret", "bridge_callback_url")),
}
# Without these a configured channel could send but never hear back safely.
INBOUND_NEEDS: dict[str, tuple[tuple[str, ...], str]] = {
    "slack": (("slack_signing_secret", "slack_app_token"),
              "set MFGOS_SLACK_SIGNING_SECRET (Events API) or MFGOS_SLACK_APP_TOKEN (Socket Mode)"),
    "whatsapp": (("whatsapp_app_secret",), "set MFGOS_WHATSAPP_APP_SECRET to verify webhook signatures"),
}


class ChannelConfigError(ValueError):
    """A channel's settings are incomplete; the message names the missing variable."""


def configured(settings: Any) -> list[str]:
    """The channels whose required settings are all present."""
    return [name for name, (_, _, needs) in CHANNELS.items() if all(getattr(settings, s, None) for s in needs)]


def channel_class(name: str) -> type:
    module_name, class_name, _ = CHANNELS[name]
    try:
        module = importlib.import_module(module_name)
    except ImportError as error:
        raise ChannelConfigError(f"channel {name} needs a package that is not installed ({error.name}); "
                                 "reinstall mfgos: pip install -e .") from error
    return getattr(module, class_name)


def build_channels(settings: Any, runtime: Any, gate: InboundGate | None = None) -> dict[str, Channel]:
    """One channel per platform whose settings are present (not started yet: `ChannelHub.start`)."""
    gate = gate or InboundGate(runtime, media=MediaStore(settings.attachments_dir),
                               wake=runtime.notifications.wake)
    built: dict[str, Channel] = {}
    for name in configured(settings):
        if name in INBOUND_NEEDS:
            any_of, hint = INBOUND_NEEDS[name]
            if not any(getattr(settings, s, None) for s in any_of):
                raise ChannelConfigError(f"{name}: {hint}")
        built[name] = channel_class(name).from_settings(settings, gate=gate, engine=runtime.engine)
    return built


class ChannelHub:
    """The configured channels, their webhooks and the continuous outbox worker, started and stopped together."""

    def __init__(self, settings: Any, runtime: Any, channels: dict[str, Channel] | None = None,
                 gate: InboundGate | None = None) -> None:
        self.settings = settings
        self.runtime = runtime
        self.gate = gate or InboundGate(runtime, media=MediaStore(settings.attachments_dir),
                                        wake=runtime.notifications.wake)
        self.channels = channels if channels is not None else build_channels(settings, runtime, self.gate)
        runtime.channels.update(self.channels)  # the outbox holds this same dict
        if self.gate.sqlite:
            # One writer thread for SQLite: inbound messages and the outbox never wait on each other's lock.
            runtime.notifications.executor = self.gate.executor
        self._stop = asyncio.Event()
        self._tasks: list[asyncio.Task[Any]] = []
        self.started: set[str] = set()

    def routers(self) -> list[Any]:
        from bot.webhooks import channel_router

        return [channel_router(self)]

    async def start(self, retry: float = 5.0) -> None:
        """Start every channel (one that fails keeps retrying in the background) and the outbox worker."""
        self._stop = asyncio.Event()
        for name, channel in self.channels.items():
            self._tasks.append(asyncio.create_task(self._start_channel(name, channel, retry), name=f"start:{name}"))
        if self._tasks:  # none at all when only the console (and perhaps machines) is configured
            await asyncio.wait(self._tasks, timeout=10)
        self._tasks.append(asyncio.create_task(self.runtime.notifications.run(self._stop), name="notification-outbox"))

    async def _start_channel(self, name: str, channel: Any, retry: float) -> None:
        delay = retry
        while not self._stop.is_set():
            try:
                await channel.start()
                self.started.add(name)
                log.info("channel %s started", name)
                return
            except Exception as error:
                log.error("channel %s did not start (%s: %s); trying again in %.0fs", name, type(error).__name__,
                          error, delay)
                try:
                    await channel.stop()
                except Exception:
                    log.debug("channel %s: stop after a failed start failed too", name, exc_info=True)
                await asyncio.sleep(delay)
                delay = min(delay * 2, 60.0)

    async def stop(self) -> None:
        self._stop.set()
        self.runtime.notifications.wake()
        for task in self._tasks:
            if not task.done() and task.get_name().startswith("start:"):
                task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        self._tasks.clear()
        for name, channel in self.channels.items():
            try:
                await channel.stop()
            except Exception:
                log.exception("channel %s did not stop cleanly", name)
        self.started.clear()
        if self.runtime.notifications.executor is self.gate.executor:
            self.runtime.notifications.executor = None
        self.gate.close()

"""The explicit list of structured sources and signal kinds; a source is imported only when configured.

Adding a source means one module with a class that has `name`, `from_settings(settings,
signal_map)` and `async run(sink, stop)` (`signals.base.SignalSource`), and one line in
`SOURCES`. The server runs what `build_sources(settings)` returns and mounts what
`build_routers(sink, settings)` returns:

    sources = build_sources(settings)                 # at start: bad configuration fails here
    app = create_app(runtime, extra_routers=[*channel_routers, *build_routers(runtime, settings)],
                     lifespan=with_sources(worker_lifespan(runtime, ...), runtime, sources))
"""

from __future__ import annotations

import asyncio
import contextlib
import importlib
import logging
from collections.abc import AsyncIterator, Callable
from contextlib import AbstractAsyncContextManager
from dataclasses import dataclass

from fastapi import APIRouter, FastAPI

from models import Signal
from routing.workflow import Context
from signals.base import SignalSettings, SignalSink, SignalSource
from signals.decoding import UNREADABLE, handle_unreadable_signal
from signals.machine_state import handle_machine_signal
from signals.mapping import load_signal_map
from signals.quality import KIND as QUALITY
from signals.quality import handle_quality_signal
from signals.work_orders import handle_work_order_signal

log = logging.getLogger(__name__)

STOP_TIMEOUT = 10.0  # seconds a source gets to finish the message in hand at shutdown


@dataclass(frozen=True)
class SourceEntry:
    target: str  # "module:Class"
    setting: str  # the setting that switches the source on
    install_hint: str
    description: str


SOURCES: dict[str, SourceEntry] = {
    "mqtt": SourceEntry("signals.mqtt:MqttSource", "mqtt_url", "pip install mfgos  (needs aiomqtt)",
                        "MQTT: plants/+/+/state JSON and Sparkplug B"),
    "opcua": SourceEntry("signals.opcua:OpcUaSource", "opcua_url", "pip install mfgos  (needs asyncua)",
                         "OPC UA: one state variable per machine"),
}

# Signal kinds the runtime hands to signals/ for processing (chat and action go to bot/).
SIGNAL_HANDLERS: dict[str, Callable[[Context, Signal], None]] = {
    "machine": handle_machine_signal,
    "work_order": handle_work_order_signal,
    QUALITY: handle_quality_signal,
    UNREADABLE: handle_unreadable_signal,
}


def source_class(name: str) -> type:
    entry = SOURCES[name]
    module_name, _, class_name = entry.target.partition(":")
    try:
        module = importlib.import_module(module_name)
    except ImportError as error:
        raise ImportError(f"the {name} source cannot be loaded ({error}); install it with: {entry.install_hint}") \
            from error
    return getattr(module, class_name)


def build_sources(settings: SignalSettings) -> list[SignalSource]:
    """The configured sources (a source whose setting is unset is off); raises on bad configuration."""
    enabled = [name for name, entry in SOURCES.items() if getattr(settings, entry.setting, None)]
    if not enabled:
        return []
    signal_map = load_signal_map(settings.plant_file)
    return [source_class(name).from_settings(settings, signal_map) for name in enabled]


def build_routers(sink: SignalSink, settings: SignalSettings) -> list[APIRouter]:
    """The webhook routers: `POST /signals/quality` always (only `signals` tokens pass the sign-in gate),
    `POST /signals/mes` once its secret is set."""
    from signals.quality import quality_router

    routers = [quality_router(sink)]
    secret = settings.signals_webhook_secret
    if secret is not None and secret.get_secret_value():
        from signals.webhooks import webhook_router

        routers.append(webhook_router(sink, secret.get_secret_value()))
    return routers


@contextlib.asynccontextmanager
async def running_sources(sink: SignalSink, sources: list[SignalSource]) -> AsyncIterator[asyncio.Event]:
    """Run every source as a task for the life of the block; stop them (politely, then by force) after it."""
    stop = asyncio.Event()
    tasks = [asyncio.create_task(source.run(sink, stop), name=f"mfgos-source-{source.name}") for source in sources]
    try:
        yield stop
    finally:
        stop.set()
        if tasks:
            done, pending = await asyncio.wait(tasks, timeout=STOP_TIMEOUT)
            for task in pending:
                task.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)
            for task in done:
                if not task.cancelled() and task.exception() is not None:
                    log.error("signal source %s stopped with an error", task.get_name(), exc_info=task.exception())


Lifespan = Callable[[FastAPI], AbstractAsyncContextManager[None]]


def with_sources(lifespan: Lifespan, sink: SignalSink, sources: list[SignalSource]) -> Lifespan:
    """`lifespan` with the sources running inside it: they stop before it closes the runtime."""

    @contextlib.asynccontextmanager
    async def combined(app: FastAPI) -> AsyncIterator[None]:
        async with lifespan(app), running_sources(sink, sources):
            yield

    return combined

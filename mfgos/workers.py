"""Inbound workers: processing in processes of their own, so webhooks and outboxes keep their GIL.

With `MFGOS_INBOUND_WORKERS=N` (PostgreSQL only) `serve` stores every inbound event and answers
the webhook at once; N worker processes read and process the stored signals. Why: reading a
message and deciding what it means takes CPU and a dozen database round trips, and in the web
process each round trip hands the GIL to the event loop and waits to get it back, so under load
processing falls behind the webhooks and every answer queues behind it.

- The web process stores a signal; a trigger sends `NOTIFY mfgos_signal` at its commit.
- A worker `LISTEN`s on it (and looks anyway every `POLL` seconds) and processes the oldest
  unprocessed signals in order (`Runtime.process_waiting`, skipping rows another process has
  locked); a trigger on the notifications table sends `NOTIFY mfgos_outbox` at the commit.
- The web process `LISTEN`s on `mfgos_outbox` and wakes its notification outbox.
- Loading the plant file or an ERP sync sends `NOTIFY mfgos_master_data`; workers rebuild their
  NLP indexes (machine names, aliases, materials) from the store.

Nothing is lost when a worker dies: the signal is stored, the web process starts a new worker,
and the periodic sweep of every replica processes signals left over a minute (mfgos/server.py).
Workers of one replica and of several replicas process side by side exactly as replicas do.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import multiprocessing
import signal
import threading
from multiprocessing.process import BaseProcess
from typing import Any

import psycopg
from sqlalchemy.engine import Engine
from sqlalchemy.exc import DBAPIError

from mfgos.config import Settings
from mfgos.runtime import MASTER_DATA_CHANNEL, Runtime

log = logging.getLogger(__name__)

# NOTIFY channels, sent by triggers at commit (models/migrations/versions/0011_pgfast_notify.py).
SIGNAL_CHANNEL = "mfgos_signal"  # a signal was stored
OUTBOX_CHANNEL = "mfgos_outbox"  # notification rows were written

POLL = 1.0  # seconds a worker waits for a NOTIFY before looking anyway (a lost notification costs this)
RESTART_DELAY = 1.0  # seconds between a worker's death and its replacement
LISTEN_RETRY = 2.0  # seconds before the outbox listener reconnects after losing its connection


def libpq_url(engine: Engine) -> str:
    """The engine's database as a libpq URL for a plain psycopg connection (search_path options kept)."""
    return engine.url.set(drivername="postgresql").render_as_string(hide_password=False)


def work(settings: Settings, stop: threading.Event | None = None) -> None:
    """A worker's life: process what is waiting, then wait for the next NOTIFY; until SIGTERM or `stop`."""
    stop = stop or threading.Event()
    if threading.current_thread() is threading.main_thread():
        signal.signal(signal.SIGTERM, lambda *_: stop.set())
        signal.signal(signal.SIGINT, lambda *_: stop.set())
    runtime = Runtime(settings)
    runtime.reader.warm_up()
    try:
        with psycopg.connect(libpq_url(runtime.engine), autocommit=True) as listener:
            listener.execute(f"LISTEN {SIGNAL_CHANNEL}")
            listener.execute(f"LISTEN {MASTER_DATA_CHANNEL}")
            while not stop.is_set():
                # Notifications queue on the connection from LISTEN on: those that came while processing
                # are read at once (no wait while busy), so the next pass starts without delay.
                try:
                    busy = runtime.process_waiting() > 0
                except DBAPIError as error:  # the store is away: the signals wait in it for the next pass
                    log.warning("inbound worker: %s; trying again in %.0fs", error.orig or error, POLL)
                    stop.wait(POLL)
                    continue
                notes = list(listener.notifies(timeout=0.0 if busy else POLL, stop_after=None if busy else 1))
                if any(note.channel == MASTER_DATA_CHANNEL for note in notes):  # a plant file or ERP sync
                    runtime.refresh_master_data(announce=False)
    finally:
        runtime.engine.dispose()


def _main(settings: Settings) -> None:
    logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(name)s[worker]: %(message)s")
    work(settings)


class InboundWorkers:
    """The web process's side: start `count` worker processes, replace any that dies, wake the outbox."""

    def __init__(self, runtime: Runtime, count: int) -> None:
        self.runtime = runtime
        self.count = count
        self._context = multiprocessing.get_context("spawn")  # no forked copy of the loop, pool or threads
        self._processes: list[BaseProcess] = []
        self._tasks: list[asyncio.Task[Any]] = []
        self._stop = asyncio.Event()

    def _spawn(self) -> BaseProcess:
        process = self._context.Process(target=_main, args=(self.runtime.settings,), name="mfgos-inbound",
                                        daemon=True)
        process.start()
        return process

    async def start(self) -> None:
        """Hand processing to the workers: from now on this process only stores inbound events."""
        self._stop = asyncio.Event()
        self.runtime.defer_processing = True
        self._processes = [self._spawn() for _ in range(self.count)]
        self._tasks = [asyncio.create_task(self._listen(), name="inbound-workers:outbox-listener"),
                       asyncio.create_task(self._supervise(), name="inbound-workers:supervisor")]

    async def _supervise(self) -> None:
        while not self._stop.is_set():
            for index, process in enumerate(self._processes):
                if not process.is_alive():
                    log.error("inbound worker %s exited (%s); starting another", process.pid, process.exitcode)
                    self._processes[index] = self._spawn()
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._stop.wait(), timeout=RESTART_DELAY)

    async def _listen(self) -> None:
        url = libpq_url(self.runtime.engine)
        while not self._stop.is_set():
            try:
                async with await psycopg.AsyncConnection.connect(url, autocommit=True) as connection:
                    await connection.execute(f"LISTEN {OUTBOX_CHANNEL}")
                    self.runtime.notifications.wake()  # rows committed while not listening
                    async for _ in connection.notifies():
                        self.runtime.notifications.wake()
            except asyncio.CancelledError:
                raise
            except Exception as error:  # the outbox still polls; this only makes delivery prompt
                log.warning("outbox listener: %s; reconnecting in %.0fs", error, LISTEN_RETRY)
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(self._stop.wait(), timeout=LISTEN_RETRY)

    async def stop(self, timeout: float = 10.0) -> None:
        """Stop the workers (each finishes the signal in hand) and process inline again."""
        self._stop.set()
        for task in self._tasks:
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        for process in self._processes:
            process.terminate()  # SIGTERM: the worker ends after its current signal
        for process in self._processes:
            await asyncio.to_thread(process.join, timeout)
            if process.is_alive():
                process.kill()
        self._processes = []
        self.runtime.defer_processing = False

    @property
    def pids(self) -> list[int | None]:
        return [process.pid for process in self._processes]

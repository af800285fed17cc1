"""`mfgos demo` and `mfgos serve`: one process with the console, the REST API and the workers.

At start the runtime processes signals stored before a crash; with MFGOS_INBOUND_WORKERS
(PostgreSQL) inbound messages are then processed in worker processes (mfgos/workers.py).
A worker on the server's event loop fires escalation timers and drains both outboxes every half second on
the system clock, so a timer that came due while the process was down fires at once, and
every 15 seconds sweeps for signals another replica stored but died before processing. APScheduler
sends the plant's digests at each period's end (`DigestScheduler`, docs/digests.md) and runs the ERP
stock watch every `stock_watch.every` (`StockWatchScheduler`, mfgos/stock_watch.py). With an
ERP other than the ledger a second task reads master data from it every
MFGOS_ERP_SYNC_INTERVAL seconds (mfgos/sync.py).
"""

from __future__ import annotations

import asyncio
import contextlib
import ipaddress
import logging
import socket
import sys
from collections.abc import AsyncIterator, Callable, Sequence
from contextlib import AbstractAsyncContextManager, asynccontextmanager
from datetime import UTC, timedelta
from typing import TYPE_CHECKING, Protocol

import uvicorn
from apscheduler.schedulers.asyncio import AsyncIOScheduler
from apscheduler.triggers.date import DateTrigger
from fastapi import APIRouter, FastAPI

from mfgos.auth import oidc_problem
from mfgos.config import DEMO_PLANT, Settings
from mfgos.guard import allowed_hosts
from mfgos.runtime import Runtime
from mfgos.stock_watch import StockWatchScheduler
from mfgos.web import CONSOLE, ConsoleChannel, create_app
from signals.base import SignalSource
from signals.registry import build_routers, build_sources, with_sources

if TYPE_CHECKING:
    from mfgos.simulate import DemoSimulation

log = logging.getLogger(__name__)

WORKER_INTERVAL = 0.5  # seconds between passes; short enough that the console feels live
# A signal a dead replica stored and never processed is taken within SWEEP_AGE + SWEEP_INTERVAL
# (45 s): under a minute. Younger ones are left to the replica (or its inbound workers) that took them.
SWEEP_INTERVAL = 15.0  # seconds between sweeps for signals a crashed replica stored but never processed
SWEEP_AGE = timedelta(seconds=30)
# Monthly partitions on PostgreSQL (models/partitions.py): made MONTHS_AHEAD months ahead, so a day
# between runs is plenty; retention drops a month at most once a month anyway.
MAINTENANCE_INTERVAL = 24 * 3600.0


async def run_worker(runtime: Runtime, stop: asyncio.Event, interval: float = WORKER_INTERVAL,
                     sweep_interval: float = SWEEP_INTERVAL, sweep_age: timedelta = SWEEP_AGE) -> None:
    """Fire due timers and drain both outboxes until `stop` is set; a failing pass is logged, not fatal.

    Every `sweep_interval` seconds it also processes signals stored more than `sweep_age` ago and
    still unprocessed: another replica stored them and died before processing them. Every replica
    sweeps; a signal being processed elsewhere is skipped (SKIP LOCKED), one processed is done.
    At start and every MAINTENANCE_INTERVAL it keeps the monthly partitions (PostgreSQL)."""
    loop = asyncio.get_running_loop()
    next_sweep = loop.time() + sweep_interval
    next_maintenance = loop.time()
    while not stop.is_set():
        if loop.time() >= next_maintenance:
            next_maintenance = loop.time() + MAINTENANCE_INTERVAL
            try:
                await asyncio.to_thread(runtime.maintain_partitions)
            except Exception:  # months ahead exist and the default partition takes the rest: retry tomorrow
                log.exception("partition maintenance failed")
        try:
            await runtime.drain()
        except Exception:  # the rows stay in the outbox; the next pass retries them
            log.exception("outbox worker pass failed")
        if loop.time() >= next_sweep:
            next_sweep = loop.time() + sweep_interval
            try:  # reading messages takes CPU: off the event loop, like the web app's own processing
                swept = await asyncio.to_thread(runtime.process_pending, older_than=sweep_age)
                if swept:
                    log.warning("swept %d signal(s) stored over 30 s ago and left unprocessed "
                                "(a replica stopped?)", swept)
            except Exception:
                log.exception("sweep for unprocessed signals failed")
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(stop.wait(), timeout=interval)


DIGEST_RETRY = timedelta(minutes=1)  # a digest pass that failed (the database away) is tried again this soon


class DigestScheduler:
    """Sends the plant's digests at each period's end (routing/digests.py), on APScheduler.

    One job, planned at the next digest moment the plant file's schedule gives and planned again
    after each pass; the first pass runs at start, so a digest that came due while the process was
    down goes out at once. Every replica plans the same moments: the runtime's digest lock and mark
    let one of them send, once (`Runtime.send_digests`)."""

    def __init__(self, runtime: Runtime) -> None:
        self.runtime = runtime
        self.scheduler = AsyncIOScheduler(timezone=UTC)

    def start(self) -> None:
        self.scheduler.start()
        self.scheduler.add_job(self._pass, id="digests", misfire_grace_time=None)  # no trigger: now

    async def _pass(self) -> None:
        now = self.runtime.clock.now()
        try:
            await asyncio.to_thread(self.runtime.send_digests)
            due = await asyncio.to_thread(self.runtime.next_digest, now)
        except Exception:
            log.exception("digest pass failed; trying again in a minute")
            due = now + DIGEST_RETRY
        if due is not None:
            self.scheduler.add_job(self._pass, DateTrigger(run_date=due), id="digests", replace_existing=True,
                                   misfire_grace_time=None)

    def stop(self) -> None:
        self.scheduler.shutdown(wait=False)


class Hub(Protocol):
    """The configured chat channels (`bot.channels.registry.ChannelHub`): started and stopped with the app."""

    async def start(self) -> None: ...

    async def stop(self) -> None: ...


def worker_lifespan(runtime: Runtime, *, interval: float = WORKER_INTERVAL, hub: Hub | None = None,
                    on_ready: Callable[[], None] | None = None) -> Callable[[FastAPI], AbstractAsyncContextManager[None]]:
    """A FastAPI lifespan that runs `run_worker` (and the channels, if any) beside the app and closes
    the runtime at the end."""

    @asynccontextmanager
    async def lifespan(_app: FastAPI) -> AsyncIterator[None]:
        if hub is not None:
            await hub.start()
        inbound = None
        if runtime.settings.inbound_workers:  # PostgreSQL only: run_server refuses it on SQLite
            from mfgos.workers import InboundWorkers

            inbound = InboundWorkers(runtime, runtime.settings.inbound_workers)
            await inbound.start()
        stop = asyncio.Event()
        task = asyncio.create_task(run_worker(runtime, stop, interval), name="mfgos-outbox-worker")
        digests = DigestScheduler(runtime)
        digests.start()
        stock = StockWatchScheduler(runtime)  # the plant file's `stock_watch:`; idle without it
        stock.start()
        erp_sync = None
        settings = runtime.settings
        if settings.erp != "ledger" and settings.erp_sync_interval > 0:
            # ERP master data on its own task (a slow ERP read must not hold up the outboxes);
            # MFGOS_ERP_SYNC_INTERVAL seconds apart, docs/erp.md.
            from mfgos.sync import run_scheduled_sync

            erp_sync = asyncio.create_task(run_scheduled_sync(runtime, stop, settings.erp_sync_interval),
                                           name="mfgos-erp-sync")
        if on_ready is not None:
            on_ready()
        try:
            yield
        finally:
            stop.set()
            digests.stop()
            stock.stop()
            if erp_sync is not None:
                erp_sync.cancel()  # safe mid-read: the watermark moves only after a whole sync
                with contextlib.suppress(asyncio.CancelledError):
                    await erp_sync
            await task
            if inbound is not None:
                await inbound.stop()
            if hub is not None:
                await hub.stop()
            await runtime.aclose()

    return lifespan


def demo_settings(settings: Settings) -> Settings:
    """The embedded defaults: the demo plant and the ledger ERP; the database stays as configured
    (a SQLite file in the working directory unless MFGOS_DATABASE_URL or --database says otherwise)."""
    return settings.model_copy(update={"plant_file": DEMO_PLANT, "erp": "ledger"})


def _bind(host: str, port: int) -> socket.socket:
    """Bind before serving so `--port 0` can print the port the system picked."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    return socket.create_server((host, port), family=family, backlog=128)


def _url(host: str, port: int) -> str:
    shown = "127.0.0.1" if host in ("0.0.0.0", "") else ("[::1]" if host == "::" else host)
    if ":" in shown and not shown.startswith("["):
        shown = f"[{shown}]"
    return f"http://{shown}:{port}/"


def _is_loopback(host: str) -> bool:
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return host == "localhost"


def run_server(settings: Settings, host: str, port: int, demo: bool,
               extra_routers: Sequence[APIRouter] = (), simulation: DemoSimulation | None = None) -> int:
    """Serve the console, the REST API and `extra_routers` until Ctrl-C; returns the exit code."""
    logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(name)s: %(message)s")
    if demo:
        if not _is_loopback(host):
            # The demo has no sign-in (anyone acts as anyone): it must not be reachable from the network.
            print(f"mfgos demo: refusing --host {host}: the demo has no sign-in, so it listens on this machine "
                  "only (127.0.0.1, ::1 or localhost). Use `mfgos serve` to open the console to others.",
                  file=sys.stderr)
            return 2
        settings = demo_settings(settings)
    settings = settings.model_copy(update={"allowed_hosts": allowed_hosts(
        settings.allowed_hosts, host, (socket.gethostname(),))})
    try:
        sock = _bind(host, port)
    except OSError as error:
        print(f"mfgos: cannot listen on {host}:{port}: {error.strerror}", file=sys.stderr)
        return 1
    public_url_given = bool(settings.public_url)
    if not public_url_given:  # sign-in links point where the console listens unless told otherwise
        settings = settings.model_copy(update={"public_url": _url(host, sock.getsockname()[1])})
    try:
        if not demo and (problem := oidc_problem(settings)):
            raise ValueError(problem)
        if settings.inbound_workers and not settings.database_url.startswith(("postgresql", "postgres:")):
            raise ValueError("MFGOS_INBOUND_WORKERS needs PostgreSQL (MFGOS_DATABASE_URL=postgresql://...): "
                             "SQLite takes one writer at a time, so workers of their own would only wait for it")
        runtime = Runtime(settings, channels={CONSOLE: ConsoleChannel()})
        hub, routers = None, list(extra_routers)
        sources: list[SignalSource] = []
        if not demo:
            # `serve`: every channel whose settings are present, with its webhook on this app.
            from bot.channels.registry import ChannelHub

            hub = ChannelHub(settings, runtime)
            routers += hub.routers()
            # Structured signals (signals/registry.py): MQTT / OPC UA sources and the MES webhook.
            sources = build_sources(settings)
            routers += build_routers(runtime, settings)
        elif simulation is not None:  # `demo --simulate`: the demo reads its simulated machines
            sources = simulation.sources
    except Exception as error:  # a bad plant file, an unreachable database, half a channel config: say which
        sock.close()
        print(f"mfgos: cannot start: {error}", file=sys.stderr)
        return 1
    runtime.reader.warm_up()  # build the NLP pipelines now, not on the first message
    recovered = runtime.process_pending()
    if recovered:
        print(f"mfgos: processed {recovered} message(s) stored before the last stop", flush=True)
    url = _url(host, sock.getsockname()[1])

    def ready() -> None:
        print(f"mfgos console: {url}", flush=True)
        print(f"  plant {runtime.plant_id} | database {runtime.engine.url.render_as_string(hide_password=True)} | "
              f"ERP {settings.erp} | channels {', '.join(sorted(runtime.channels))} | Ctrl-C stops", flush=True)
        if demo:
            print("  demo: no sign-in, anyone here can act as any person", flush=True)
        elif not public_url_given and not _is_loopback(host):
            print(f"  warning: sign-in links point at {settings.public_url}, which other machines may not reach; "
                  "set MFGOS_PUBLIC_URL to the https address people open (a TLS proxy in front of this port)",
                  flush=True)
        elif not str(settings.public_url).startswith("https://") and not _is_loopback(host):
            print("  warning: sign-in links and session cookies travel over plain http; put a TLS proxy in front "
                  "and set MFGOS_PUBLIC_URL to its https address", flush=True)

    lifespan = with_sources(worker_lifespan(runtime, hub=hub, on_ready=ready), runtime, sources)
    if demo and simulation is not None:
        lifespan = simulation.around(lifespan)
    app = create_app(runtime, extra_routers=routers, lifespan=lifespan, demo=demo)
    config = uvicorn.Config(app, log_level="warning", access_log=False, lifespan="on")
    server = uvicorn.Server(config)
    try:
        server.run(sockets=[sock])
    except KeyboardInterrupt:  # uvicorn re-raises Ctrl-C after its graceful shutdown; that is a clean stop
        pass
    finally:
        sock.close()
    if not server.started:
        return 1
    print("mfgos: stopped", flush=True)
    return 0

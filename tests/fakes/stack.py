"""mfgos as `serve` runs it, on the test's event loop: runtime, channel hub, the one ASGI app under uvicorn.

The fakes run in threads of their own; the app listens on 127.0.0.1 at a free port, so
every webhook travels over real HTTP from a fake platform to our routes.
"""

from __future__ import annotations

import asyncio
import itertools
import socket
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import uvicorn
from sqlmodel import Session, select

from bot.channels.registry import ChannelHub
from mfgos.config import Settings
from mfgos.runtime import Runtime
from mfgos.web import create_app
from models import Notification, PlantException, Signal, TimelineEvent, session_scope
from tests.fakes.slack import FakeSlack
from tests.fakes.telegram import FakeTelegram
from tests.fakes.whatsapp import FakeWhatsApp

_keys = itertools.count(1)

PLANT = Path(__file__).resolve().parents[1] / "data" / "channels_plant.yaml"


@dataclass
class Fakes:
    """The three chat platforms' wire fakes, started together (the `fakes` fixture, tests/conftest.py)."""

    slack: FakeSlack
    telegram: FakeTelegram
    whatsapp: FakeWhatsApp

    @classmethod
    def start(cls) -> Fakes:
        return cls(FakeSlack().start(), FakeTelegram().start(), FakeWhatsApp().start())

    def stop(self) -> None:
        for fake in (self.slack, self.telegram, self.whatsapp):
            fake.stop()


def settings_for(database_url: str, tmp: Path, **channels: Any) -> Settings:
    return Settings(_env_file=None, database_url=database_url, plant_file=PLANT,  # type: ignore[call-arg]
                    attachments_dir=tmp / "attachments", **channels)


@dataclass
class Stack:
    runtime: Runtime
    hub: ChannelHub
    url: str
    server: uvicorn.Server
    task: asyncio.Task[Any]
    extra: dict[str, Any] = field(default_factory=dict)

    async def stop(self) -> None:
        await self.hub.stop()
        self.server.should_exit = True
        await asyncio.wait_for(self.task, 10)
        self.runtime.engine.dispose()

    # --- what the core would write (tests of the channel side write it directly) -------------

    def open_exception(self, code: str = "E-0001", summary: str = "spindle noise", **fields: Any) -> int:
        with session_scope(self.runtime.engine) as session:
            exc = PlantException(plant_id=self.runtime.plant_id, code=code, type="breakdown", summary=summary,
                                 opened_at=datetime.now(UTC), **fields)
            session.add(exc)
            session.flush()
            assert exc.id is not None
            return exc.id

    def queue(self, channel: str, address: str, text: str, *, exception_id: int | None = None,
              kind: str = "alert", buttons: tuple[str, ...] = (), updates_id: int | None = None,
              person_id: str = "someone", language: str = "en") -> int:
        """One outbox row, due now, and the worker woken for it; returns its id."""
        now = datetime.now(UTC)
        with session_scope(self.runtime.engine) as session:
            row = Notification(plant_id=self.runtime.plant_id, dedupe_key=f"test:{next(_keys)}", exception_id=exception_id,
                               person_id=person_id, kind=kind, channel=channel, address=address, language=language,
                               text=text, buttons=list(buttons), created_at=now, next_attempt_at=now,
                               updates_id=updates_id)
            session.add(row)
            session.flush()
            assert row.id is not None
            row_id = row.id
        self.runtime.notifications.wake()
        return row_id

    def notification(self, row_id: int) -> Notification | None:
        with Session(self.runtime.engine) as session:
            return session.get(Notification, row_id)

    # --- what the store says ---------------------------------------------------------------

    def exception(self, code: str = "E-0001") -> PlantException | None:
        with Session(self.runtime.engine) as session:
            return session.exec(select(PlantException).where(PlantException.code == code)).first()

    def notifications(self, **where: Any) -> list[Notification]:
        with Session(self.runtime.engine) as session:
            query = select(Notification).order_by(Notification.id)
            for name, value in where.items():
                query = query.where(getattr(Notification, name) == value)
            return list(session.exec(query))

    def signals(self) -> list[Signal]:
        with Session(self.runtime.engine) as session:
            return list(session.exec(select(Signal).order_by(Signal.id)))

    def timeline(self, code: str = "E-0001") -> list[TimelineEvent]:
        with Session(self.runtime.engine) as session:
            exc = session.exec(select(PlantException).where(PlantException.code == code)).first()
            if exc is None:
                return []
            return list(session.exec(select(TimelineEvent).where(TimelineEvent.exception_id == exc.id)
                                     .order_by(TimelineEvent.id)))


async def start_stack(settings: Settings, clock: Any = None, **outbox: Any) -> Stack:
    runtime = Runtime(settings) if clock is None else Runtime(settings, clock=clock)
    for name, value in outbox.items():
        setattr(runtime.notifications, name, value)
    hub = ChannelHub(settings, runtime)
    app = create_app(runtime, extra_routers=hub.routers())
    sock = socket.create_server(("127.0.0.1", 0))
    server = uvicorn.Server(uvicorn.Config(app, lifespan="off", log_level="warning", access_log=False))
    task = asyncio.create_task(server.serve(sockets=[sock]))
    while not server.started:
        if task.done():
            task.result()
        await asyncio.sleep(0.01)
    await hub.start()
    return Stack(runtime=runtime, hub=hub, url=f"http://127.0.0.1:{sock.getsockname()[1]}", server=server, task=task)

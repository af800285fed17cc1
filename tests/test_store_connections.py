"""Pooled PostgreSQL connections: pinged only after resting, and a lost connection loses no message.

The pool pings a connection at checkout only when it rested in the pool for more than
`models.db.PING_AFTER_IDLE` seconds (a ping per checkout is a round trip per webhook, worker
pass and outbox settle). These tests kill connections on the server (`pg_terminate_backend`),
as a restart or a dropped network connection does, and check what the application sees.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy import text
from sqlalchemy.engine import Engine
from sqlalchemy.exc import DBAPIError
from sqlmodel import Session, select

import models.db
from mfgos.config import Settings
from mfgos.runtime import Runtime
from models import Notification, Signal
from tests.conftest import _postgres_engine, postgres_schema_url

PLANT = Path(__file__).parent / "data" / "pune_plant.yaml"


@pytest.fixture
def pg() -> Iterator[Engine]:
    yield from _postgres_engine()


def backend_pid(engine: Engine) -> int:
    with engine.connect() as connection:
        return connection.execute(text("SELECT pg_backend_pid()")).scalar_one()


def terminate(engine: Engine, pid: int) -> None:
    """Kill one server backend from a connection of its own (not from `engine`'s pool)."""
    killer = models.db.make_engine(str(engine.url.set(drivername="postgresql")))
    try:
        with killer.begin() as connection:
            assert connection.execute(text("SELECT pg_terminate_backend(:pid)"), {"pid": pid}).scalar_one()
    finally:
        killer.dispose()


def test_a_connection_killed_while_resting_is_replaced_unseen(pg: Engine, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(models.db, "PING_AFTER_IDLE", 0.0)  # every connection back in the pool has rested
    first = backend_pid(pg)
    terminate(pg, first)
    second = backend_pid(pg)  # the ping found it dead: a new connection, no error
    assert second != first


def test_a_connection_in_use_a_moment_ago_is_not_pinged_and_a_loss_is_seen_once(
        pg: Engine, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(models.db, "PING_AFTER_IDLE", 3600.0)  # nothing has rested: no ping
    first = backend_pid(pg)
    terminate(pg, first)
    with pytest.raises(DBAPIError) as raised:
        backend_pid(pg)
    assert raised.value.connection_invalidated
    assert backend_pid(pg) != first  # the pool was invalidated: the next checkout connects anew


@pytest.fixture
def runtime() -> Iterator[Runtime]:
    for url in postgres_schema_url():
        runtime = Runtime(Settings(database_url=url, plant_file=PLANT))
        runtime.reader.warm_up()
        try:
            yield runtime
        finally:
            runtime.engine.dispose()


def test_a_message_whose_connection_dies_while_processing_is_tried_again_not_failed(runtime: Runtime) -> None:
    """Losing the store is not the message's fault: no "processing failed" answer; the runtime tries
    the signal again on a new connection (mfgos/runtime.py `_process_signal`) and it is processed once."""
    dies = {"once": True}
    converse = runtime.handlers["chat"]

    def handler(ctx, signal):  # type: ignore[no-untyped-def]
        if dies.pop("once", False):  # the server ends this session's backend, as a restart would
            ctx.session.execute(text("SELECT pg_terminate_backend(pg_backend_pid())"))
        converse(ctx, signal)

    runtime.handlers["chat"] = handler
    runtime.defer_processing = True
    received = runtime.receive_chat(channel="console", address="ravi", person_id="ravi", event_id="e1",
                                    text="hobber 1 band ho gaya, spindle se awaaz aa rahi hai")
    assert runtime.process_waiting() == 1
    assert dies == {}, "the backend was killed during the first attempt"
    with Session(runtime.engine) as session:
        signal = session.get(Signal, received.signal_id)
        assert signal is not None and signal.processed_at is not None and signal.error is None
        kinds = [row.kind for row in session.exec(select(Notification))]
    assert kinds.count("opened") == 1 and "reply" not in kinds

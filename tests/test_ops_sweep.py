"""A signal stored by a replica that died before processing it is processed by a live replica's
periodic sweep (mfgos/server.py `run_worker`), not only when some replica starts.

Two `Runtime`s on one PostgreSQL schema stand for two replicas: the real store, the real row locks.
"""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from sqlalchemy import text
from sqlmodel import Session, select

from mfgos.config import Settings
from mfgos.runtime import Runtime
from mfgos.server import run_worker
from models import PlantException, Signal
from routing.clock import SimulatedClock
from tests.conftest import postgres_schema_url

PLANT = Path(__file__).parent / "data" / "pune_plant.yaml"
T0 = datetime(2026, 11, 25, 3, 30, tzinfo=UTC)  # 09:00 in Pune, a Wednesday: shift a
REPORT = "hobber 1 band ho gaya, spindle se awaaz aa rahi hai. wo 1042"


@pytest.fixture
def shared_url() -> Iterator[str]:
    yield from postgres_schema_url()


def replica(url: str, clock: SimulatedClock) -> Runtime:
    return Runtime(Settings(database_url=url, plant_file=PLANT, erp="ledger"), clock=clock)


def store_unprocessed(runtime: Runtime, key: str, person: str, text: str) -> int:
    """What a replica that crashes right after storing leaves behind."""
    payload = {"channel": "console", "address": person, "text": text, "exception_ref": None, "action": None,
               "reply_to": None, "attachments": []}
    return runtime.receive(source="console", source_key=key, kind="chat", payload=payload, person_id=person,
                           process=False).signal_id


def processed(runtime: Runtime, signal_id: int) -> bool:
    with Session(runtime.engine) as session:
        signal = session.get(Signal, signal_id)
        return signal is not None and signal.processed_at is not None


def test_a_live_replica_sweeps_up_what_a_crashed_one_stored(shared_url: str) -> None:
    crashed = replica(shared_url, SimulatedClock(T0))
    signal_id = store_unprocessed(crashed, "console:crash-1", "ravi", REPORT)
    crashed.engine.dispose()  # gone, without processing it

    clock = SimulatedClock(T0 + timedelta(seconds=20))
    live = replica(shared_url, clock)

    async def run_for(seconds: float) -> None:
        stop = asyncio.Event()
        worker = asyncio.create_task(run_worker(live, stop, interval=0.02, sweep_interval=0.05))
        await asyncio.sleep(seconds)
        stop.set()
        await worker

    try:
        asyncio.run(run_for(0.5))
        assert not processed(live, signal_id)  # younger than a minute: its replica may still be on it
        clock.set(T0 + timedelta(seconds=61))
        asyncio.run(run_for(1.5))
        assert processed(live, signal_id)
        with Session(live.engine) as session:
            (opened,) = session.exec(select(PlantException)).all()
        assert (opened.code, opened.machine_id, opened.reporter_id) == ("E-0001", "HOB-01", "ravi")
    finally:
        live.engine.dispose()


def test_a_sweep_skips_a_signal_another_replica_is_processing(shared_url: str) -> None:
    """SKIP LOCKED: a sweep does not wait behind another replica's row lock, it moves on."""
    clock = SimulatedClock(T0)
    first, second = replica(shared_url, clock), replica(shared_url, clock)
    ids = [store_unprocessed(first, f"console:q-{n}", "neha", "what is down?") for n in range(3)]
    clock.set(T0 + timedelta(minutes=2))
    busy = first.engine.connect()
    try:
        busy_txn = busy.begin()
        # `first` is processing the first signal: it holds the row lock processing takes.
        busy.execute(text("SELECT id FROM signals WHERE id = :id FOR UPDATE"), {"id": ids[0]})
        sweep = threading.Thread(target=second.process_pending, kwargs={"older_than": timedelta(minutes=1)})
        sweep.start()
        sweep.join(timeout=20)
        assert not sweep.is_alive(), "the sweep waited on another replica's row lock"
        assert [processed(second, i) for i in ids] == [False, True, True]
        busy_txn.rollback()
        sweep.join(timeout=20)
        second.process_pending(older_than=timedelta(minutes=1))  # the next sweep takes it
        assert [processed(second, i) for i in ids] == [True, True, True]
    finally:
        busy.close()
        first.engine.dispose()
        second.engine.dispose()

"""The batch gate machine sources use: `Runtime.receive_many` and `Runtime.process_signals`, on both stores."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from datetime import datetime
from pathlib import Path

import pytest
from sqlmodel import Session, select

from bot.channels.base import CaptureChannel
from mfgos.config import Settings
from mfgos.runtime import Runtime
from models import PlantException, Signal
from routing.clock import SimulatedClock
from signals.base import Incoming
from tests.conftest import postgres_schema_url

PLANT = Path(__file__).parent / "data" / "pune_plant.yaml"
START = datetime.fromisoformat("2026-11-25T09:00:00+05:30")


@pytest.fixture(params=["sqlite", "postgresql"])
def runtime(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Runtime]:
    urls = iter([f"sqlite:///{tmp_path / 'batch.db'}"]) if request.param == "sqlite" else postgres_schema_url()
    rt = Runtime(Settings(_env_file=None, database_url=next(urls), plant_file=PLANT), clock=SimulatedClock(START),
                 channels={n: CaptureChannel(n) for n in ("console", "slack", "whatsapp", "telegram")})
    yield rt
    asyncio.run(rt.aclose())
    next(urls, None)


def event(key: str, machine: str, state: str, *, repeat: bool = False) -> Incoming:
    return Incoming(key, {"topic": f"plants/pune-1/{machine}/state", "machine": machine, "payload": {"state": state}},
                    repeat=repeat)


def stored(runtime: Runtime) -> list[Signal]:
    with Session(runtime.engine) as session:
        return list(session.exec(select(Signal).order_by(Signal.id)))


def test_a_batch_is_stored_once_per_key_in_order(runtime: Runtime) -> None:
    first = runtime.receive_many("mqtt", [event("a", "HOB-01", "RUNNING"), event("b", "GRD-02", "FAULT"),
                                          event("a", "HOB-01", "RUNNING")])
    assert [r.duplicate for r in first] == [False, False, True] and first[0].signal_id == first[2].signal_id
    again = runtime.receive_many("mqtt", [event("b", "GRD-02", "FAULT"), event("c", "CNC-11", "RUNNING")])
    assert [r.duplicate for r in again] == [True, False] and again[0].signal_id == first[1].signal_id
    assert [s.source_key for s in stored(runtime)] == ["a", "b", "c"]  # ids in the order the messages came
    assert all(s.processed_at is None for s in stored(runtime))  # nothing is processed by storing


def test_a_repeat_is_stored_already_processed(runtime: Runtime) -> None:
    runtime.receive_many("mqtt", [event("r", "HOB-01", "RUNNING", repeat=True)])
    (signal,) = stored(runtime)
    assert signal.processed_at is not None and signal.error is None


def test_a_batch_is_processed_in_one_go_with_each_signals_own_error(runtime: Runtime) -> None:
    rows = runtime.receive_many("mqtt", [event("f", "GRD-02", "FAULT"), event("x", "HOB-01", "EXPLODED"),
                                         event("h", "HOB-01", "FAULT")])
    broken = runtime.receive_many("mqtt", [Incoming("k", {"machine": "HOB-01"}, kind="no-such-kind")])
    runtime.process_signals([r.signal_id for r in rows + broken])
    by_key = {s.source_key: s for s in stored(runtime)}
    assert all(s.processed_at is not None for s in by_key.values())
    assert by_key["x"].error == "unknown machine state 'EXPLODED'"
    assert by_key["k"].error == "unknown signal kind 'no-such-kind'"
    with Session(runtime.engine) as session:
        opened = sorted(e.machine_id for e in session.exec(select(PlantException)))
    assert opened == ["GRD-02", "HOB-01"]
    runtime.process_signals([r.signal_id for r in rows])  # processing again changes nothing
    with Session(runtime.engine) as session:
        assert len(session.exec(select(PlantException)).all()) == 2


def test_a_handler_that_raises_rolls_the_batch_back_and_each_signal_is_processed_on_its_own(
        runtime: Runtime) -> None:
    def boom(ctx: object, signal: Signal) -> None:
        raise RuntimeError("a bug in a handler")

    runtime.handlers["boom"] = boom
    rows = runtime.receive_many("mqtt", [event("f", "GRD-02", "FAULT"), Incoming("b", {}, kind="boom"),
                                         event("h", "HOB-01", "FAULT")])
    runtime.process_signals([r.signal_id for r in rows])
    by_key = {s.source_key: s for s in stored(runtime)}
    assert by_key["b"].error == "RuntimeError: a bug in a handler" and by_key["b"].processed_at is not None
    with Session(runtime.engine) as session:  # the two others were processed once, on their own
        assert sorted(e.machine_id for e in session.exec(select(PlantException))) == ["GRD-02", "HOB-01"]

"""The runtime around the pipeline: storing before processing, duplicates, restarts, queries."""

from __future__ import annotations

import asyncio
import json
import subprocess
import sys
from datetime import datetime, timedelta
from pathlib import Path

import pytest
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from sqlmodel import Session, SQLModel, select

from bot.channels.base import CaptureChannel
from mfgos.config import Settings
from mfgos.runtime import Runtime
from models import AckTimer, Notification, PlantException, Signal, make_engine, migrate
from routing.clock import SimulatedClock

PLANT = Path(__file__).parent / "data" / "pune_plant.yaml"
START = datetime.fromisoformat("2026-11-25T09:00:00+05:30")


def make_runtime(url: str, clock: SimulatedClock) -> Runtime:
    settings = Settings(database_url=url, plant_file=PLANT)
    channels = {name: CaptureChannel(name) for name in ("console", "slack", "whatsapp", "telegram")}
    return Runtime(settings, clock=clock, channels=channels)


def chat(runtime: Runtime, person: str, text: str, event_id: str, **kw: str) -> None:
    runtime.receive_chat(channel="console", address=person, person_id=person, text=text, event_id=event_id, **kw)
    asyncio.run(runtime.drain())


def messages_to(runtime: Runtime, person: str) -> list[Notification]:
    return runtime.notifications_for(person)


def test_timer_due_while_down_fires_at_start(database_url: str) -> None:
    clock = SimulatedClock(START)
    first = make_runtime(database_url, clock)
    chat(first, "ravi", "hobber 1 band ho gaya, spindle se awaaz aa rahi hai. wo 1042", "m1")
    asyncio.run(first.aclose())
    # The process is down for 25 minutes; tom never acknowledged within 10.
    later = SimulatedClock(START + timedelta(minutes=25))
    second = make_runtime(database_url, later)
    asyncio.run(second.drain())
    escalations = [n for n in messages_to(second, "lena") if n.kind == "escalation"]
    assert len(escalations) == 1 and escalations[0].created_at == later.now()
    with Session(second.engine) as session:
        [timer] = session.exec(select(AckTimer)).all()
        assert timer.status == "fired"
    asyncio.run(second.drain())
    assert len([n for n in messages_to(second, "lena") if n.kind == "escalation"]) == 1, "fires once"
    asyncio.run(second.aclose())


def test_redelivered_event_is_processed_once(database_url: str) -> None:
    runtime = make_runtime(database_url, SimulatedClock(START))
    for _ in range(3):
        chat(runtime, "ravi", "hobber 1 band ho gaya wo 1042", "same-event")
    with Session(runtime.engine) as session:
        assert len(session.exec(select(Signal)).all()) == 1
        assert len(session.exec(select(PlantException)).all()) == 1
    assert len([n for n in messages_to(runtime, "tom") if n.kind == "alert"]) == 1
    asyncio.run(runtime.aclose())


def test_unregistered_sender_learns_nothing(database_url: str) -> None:
    runtime = make_runtime(database_url, SimulatedClock(START))
    runtime.receive_chat(channel="whatsapp", address="+10000000000", text="status wo 1042?", event_id="x1")
    asyncio.run(runtime.drain())
    with Session(runtime.engine) as session:
        [signal] = session.exec(select(Signal)).all()
        assert signal.person_id is None and signal.processed_at is not None
        [reply] = session.exec(select(Notification)).all()
    assert reply.kind == "not_registered" and reply.address == "+10000000000"
    assert "WO-1042" not in reply.text and "registered" in reply.text
    sent = runtime.channels["whatsapp"].sent  # type: ignore[attr-defined]
    assert [m.message.address for m in sent] == ["+10000000000"]
    asyncio.run(runtime.aclose())


def test_a_failing_step_keeps_the_signal_and_tells_the_sender(tmp_path: Path) -> None:
    runtime = make_runtime(f"sqlite:///{tmp_path / 'x.db'}", SimulatedClock(START))

    class Broken:
        def extract(self, text: str, language: str | None = None) -> None:
            raise RuntimeError("extractor exploded")

    runtime._reader = Broken()  # type: ignore[assignment]
    chat(runtime, "ravi", "hobber 1 band", "boom")
    with Session(runtime.engine) as session:
        [signal] = session.exec(select(Signal)).all()
    assert signal.error and "extractor exploded" in signal.error
    assert signal.payload["text"] == "hobber 1 band", "the message itself is kept"
    [reply] = messages_to(runtime, "ravi")
    assert reply.kind == "reply" and "save hai" in reply.text, "told in ravi's language (Hindi)"
    asyncio.run(runtime.aclose())


def test_stored_but_unprocessed_signal_is_processed_at_start(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'x.db'}"
    clock = SimulatedClock(START)
    first = make_runtime(url, clock)
    first.receive(source="console", source_key="console:crash", kind="chat", person_id="ravi",
                  payload={"channel": "console", "address": "ravi", "text": "hobber 1 band ho gaya wo 1042"},
                  process=False)
    asyncio.run(first.aclose())
    second = make_runtime(url, clock)
    assert second.process_pending() == 1
    with Session(second.engine) as session:
        assert len(session.exec(select(PlantException)).all()) == 1
    assert second.process_pending() == 0
    asyncio.run(second.aclose())


def test_managers_ask_what_is_down_status_and_mttr(tmp_path: Path) -> None:
    clock = SimulatedClock(START)
    runtime = make_runtime(f"sqlite:///{tmp_path / 'x.db'}", clock)
    chat(runtime, "ravi", "hobber 1 band ho gaya, spindle se awaaz aa rahi hai. wo 1042", "r1")
    chat(runtime, "neha", "what is down?", "q1")
    chat(runtime, "neha", "status WO-1043", "q2")
    code = "E-0001"
    clock.set(START + timedelta(minutes=5))
    chat(runtime, "tom", "on my way", "a1", exception_ref=code)
    clock.set(START + timedelta(minutes=45))
    chat(runtime, "tom", "fixed, replaced bearing, running again", "p1", exception_ref=code)
    runtime.receive_chat(channel="console", address="sara", person_id="sara", text="", event_id="ok1",
                         exception_ref=code, action="approve")
    asyncio.run(runtime.drain())
    chat(runtime, "neha", "MTTR this week", "q3")
    replies = [n.text for n in messages_to(runtime, "neha") if n.kind == "reply"]
    assert "HOB-01" in replies[0] and code in replies[0]
    assert "WO-1043" in replies[1] and code in replies[1]
    assert "MTTR 45 min" in replies[2] and "1 closed" in replies[2]
    asyncio.run(runtime.aclose())


def test_migrations_match_the_tables(tmp_path: Path) -> None:
    engine = make_engine(f"sqlite:///{tmp_path / 'm.db'}")
    migrate(engine)
    with engine.connect() as connection:
        diff = compare_metadata(MigrationContext.configure(connection), SQLModel.metadata)
    engine.dispose()
    assert diff == [], f"a table changed without a migration: {diff}"


def test_cli_extract_and_check_plant(tmp_path: Path) -> None:
    out = subprocess.run([sys.executable, "-m", "mfgos.cli", "extract", "--plant", str(PLANT),
                          "hobber 1 band ho gaya wo 1042"], capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr
    data = json.loads(out.stdout)
    assert {k: data[k] for k in ("intent", "exception_type", "machine", "work_order")} == {
        "intent": "report", "exception_type": "breakdown", "machine": "HOB-01", "work_order": "WO-1042"}
    assert set(data) >= {"material", "quantities", "severity", "confidence", "clarify"}
    lines = subprocess.run([sys.executable, "-m", "mfgos.cli", "extract", "--plant", str(PLANT)],
                           input='{"text": "komme sofort"}\n{"text": "status wo 1050?"}\n',
                           capture_output=True, text=True, timeout=120)
    assert [json.loads(line)["intent"] for line in lines.stdout.splitlines()] == ["ack", "query"]
    bad = tmp_path / "bad.yaml"
    bad.write_text(PLANT.read_text().replace("machine: HOB-01, material: FRG-20MNCR5, quantity: 400",
                                             "machine: HOB-99, material: FRG-20MNCR5, quantity: 400", 1))
    checked = subprocess.run([sys.executable, "-m", "mfgos.cli", "check-plant", str(bad)],
                             capture_output=True, text=True, timeout=120)
    assert checked.returncode == 1 and "HOB-99" in checked.stderr and "bad.yaml:" in checked.stderr
    good = subprocess.run([sys.executable, "-m", "mfgos.cli", "check-plant", str(PLANT)],
                          capture_output=True, text=True, timeout=120)
    assert good.returncode == 0, good.stderr


def test_two_replicas_process_one_signal_once(database_url: str) -> None:
    """Two replicas on PostgreSQL handed the same stored event: the row lock lets one process it.

    (SQLite serves one process; within it `Runtime` processes one signal at a time.)"""
    from concurrent.futures import ThreadPoolExecutor

    if database_url.startswith("sqlite"):
        pytest.skip("replicas run on PostgreSQL (docs/architecture.md)")
    clock = SimulatedClock(START)
    replicas = [make_runtime(database_url, clock) for _ in range(2)]
    received = replicas[0].receive(
        source="console", source_key="console:race", kind="chat", person_id="ravi", process=False,
        payload={"channel": "console", "address": "ravi", "text": "hobber 1 band ho gaya wo 1042"})
    with ThreadPoolExecutor(2) as pool:
        list(pool.map(Runtime.process_signal, replicas, [received.signal_id] * len(replicas)))
    with Session(replicas[0].engine) as session:
        assert len(session.exec(select(PlantException)).all()) == 1
        alerts = session.exec(select(Notification).where(Notification.kind == "alert")).all()
    assert sorted(n.person_id for n in alerts) == ["deepa", "john", "tom"]
    for replica in replicas:
        asyncio.run(replica.aclose())

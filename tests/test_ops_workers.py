"""Inbound workers (mfgos/workers.py): with MFGOS_INBOUND_WORKERS the web process stores, a worker
process processes, and the web process's outbox hears of the rows at once.

Real processes on the real PostgreSQL (a fresh schema per test): the NOTIFY triggers, the row
locks and a worker killed with SIGKILL are what production has.
"""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import httpx
import pytest
from sqlmodel import Session, select

from mfgos.config import Settings
from mfgos.runtime import Runtime
from mfgos.server import run_server
from mfgos.workers import InboundWorkers, work
from models import Machine, Notification, PlantException, Signal, make_engine, session_scope
from tests.conftest import postgres_schema_url
from tests.test_channel_serve import Served, serve  # noqa: F401 (fixture)

PLANT = Path(__file__).parent / "data" / "pune_plant.yaml"
REPORT = "hobber 1 band ho gaya, spindle se awaaz aa rahi hai. wo 1042"


@pytest.fixture
def url() -> Iterator[str]:
    yield from postgres_schema_url()


def settings(url: str) -> Settings:
    return Settings(_env_file=None, database_url=url, plant_file=PLANT, erp="ledger")  # type: ignore[call-arg]


def report(runtime: Runtime, key: str, text: str = REPORT) -> int:
    return runtime.receive_chat(channel="console", address="ravi", person_id="ravi", text=text,
                                event_id=key).signal_id


def processed(runtime: Runtime, signal_id: int) -> bool:
    with Session(runtime.engine) as session:
        row = session.get(Signal, signal_id)
        return row is not None and row.processed_at is not None


async def until(condition: object, timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while not condition():  # type: ignore[operator]
        assert time.monotonic() < deadline, f"not within {timeout:.0f}s: {what}"
        await asyncio.sleep(0.05)


def test_the_web_process_stores_and_a_worker_process_processes(url: str) -> None:
    runtime = Runtime(settings(url))

    async def scenario() -> None:
        workers = InboundWorkers(runtime, 1)
        await workers.start()
        try:
            signal_id = report(runtime, "w1")
            assert not processed(runtime, signal_id), "stored only: the webhook is answered before processing"
            # Spawning a worker and building its NLP pipelines takes seconds on a loaded machine.
            await until(lambda: processed(runtime, signal_id), 120, "the worker processes the stored report")
            woken = runtime.notifications._wake
            await until(woken.is_set, 10, "the outbox hears of the rows the worker wrote (NOTIFY)")
            with Session(runtime.engine) as session:
                rows = session.exec(select(Notification).where(Notification.dedupe_key.startswith(  # type: ignore[attr-defined]
                    f"signal:{signal_id}:"))).all()
            assert any(row.person_id == "ravi" for row in rows), "the reporter hears back"
            # The second message goes by NOTIFY: well before a poll would have found it.
            woken.clear()
            second = report(runtime, "w2", "what is down?")
            started = time.monotonic()
            await until(lambda: processed(runtime, second), 30, "the worker processes the next message")
            assert time.monotonic() - started < 5
        finally:
            await workers.stop()
        assert not runtime.defer_processing, "after the workers stop, the web process processes again"
        third = report(runtime, "w3", "what is down?")
        assert processed(runtime, third)

    asyncio.run(scenario())
    asyncio.run(runtime.aclose())


def test_a_killed_worker_is_replaced_and_nothing_is_lost(url: str) -> None:
    runtime = Runtime(settings(url))

    async def scenario() -> None:
        workers = InboundWorkers(runtime, 1)
        await workers.start()
        try:
            first = report(runtime, "k1")
            await until(lambda: processed(runtime, first), 120, "the first worker processes")
            [pid] = workers.pids
            assert pid is not None
            os.kill(pid, signal.SIGKILL)
            stored = report(runtime, "k2", "what is down?")  # stored while no worker runs
            await until(lambda: workers.pids[0] != pid, 10, "the supervisor starts another worker")
            await until(lambda: processed(runtime, stored), 120, "the new worker processes what waited")
        finally:
            await workers.stop()

    asyncio.run(scenario())
    with Session(runtime.engine) as session:
        assert len(session.exec(select(Signal).where(Signal.processed_at == None)).all()) == 0  # noqa: E711
    asyncio.run(runtime.aclose())


def test_two_workers_process_each_signal_once(url: str) -> None:
    """Workers in threads here (the loop is the same): both take the oldest waiting signals, skipping
    the one the other holds, and every signal is processed once."""
    runtime = Runtime(settings(url))
    runtime.defer_processing = True
    ids = [report(runtime, f"t{n}", "what is down?") for n in range(12)]
    stop = threading.Event()
    threads = [threading.Thread(target=work, args=(settings(url), stop)) for _ in range(2)]
    for thread in threads:
        thread.start()
    try:
        asyncio.run(until(lambda: all(processed(runtime, i) for i in ids), 120, "every signal processed"))
    finally:
        stop.set()
        for thread in threads:
            thread.join(30)
    with Session(runtime.engine) as session:
        replies = session.exec(select(Notification.dedupe_key).where(Notification.person_id == "ravi")).all()
    assert len(replies) == len(set(replies)) == len(ids), "one answer per message, none twice"
    asyncio.run(runtime.aclose())


def test_serve_refuses_inbound_workers_on_sqlite(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    config = Settings(_env_file=None, database_url=f"sqlite:///{tmp_path / 'x.db'}", plant_file=PLANT,  # type: ignore[call-arg]
                      inbound_workers=2)
    assert run_server(config, "127.0.0.1", 0, demo=False) == 1
    assert "MFGOS_INBOUND_WORKERS needs PostgreSQL" in capsys.readouterr().err


def test_a_worker_reads_machines_an_erp_sync_brought_to_another_process(url: str) -> None:
    """Master data changed by the web process (an ERP sync) reaches a worker's NLP indexes by NOTIFY."""
    runtime = Runtime(settings(url))
    runtime.defer_processing = True
    stop = threading.Event()
    worker = threading.Thread(target=work, args=(settings(url), stop))
    worker.start()
    try:
        first = report(runtime, "m0", "what is down?")
        asyncio.run(until(lambda: processed(runtime, first), 120, "the worker is up"))
        with session_scope(runtime.engine) as session:  # what an ERP sync writes
            session.add(Machine(plant_id=runtime.plant_id, id="BRO-07", name="Broaching machine 7", area_id="gears",
                                aliases=["broacher 7"]))
        runtime.refresh_master_data()
        signal_id = report(runtime, "m1", "broacher 7 breakdown, hydraulic leak")
        asyncio.run(until(lambda: processed(runtime, signal_id), 60, "the report is processed"))
        with Session(runtime.engine) as session:
            opened = session.exec(select(PlantException)).all()
        assert [e.machine_id for e in opened] == ["BRO-07"], "the worker knew the new machine by its alias"
    finally:
        stop.set()
        worker.join(30)
    asyncio.run(runtime.aclose())


def test_serve_with_inbound_workers_answers_and_stops_cleanly(url: str, serve: Callable[..., Served]) -> None:  # noqa: F811
    """`mfgos serve` as operators start it, with MFGOS_INBOUND_WORKERS: the console's message is
    stored and answered at once, a worker process processes it, and Ctrl-C stops the workers too."""
    served = serve(MFGOS_DATABASE_URL=url, MFGOS_INBOUND_WORKERS="1")
    console = served.wait_for("mfgos console:").split("mfgos console:", 1)[1].strip()
    made = subprocess.run([sys.executable, "-m", "mfgos.cli", "token", "create", "t", "--scope", "act", "--as", "ravi"],
                          cwd=served.cwd, env=served.env, capture_output=True, text=True, timeout=120)
    assert made.returncode == 0, made.stderr
    token = made.stdout.strip().splitlines()[-1]
    with httpx.Client(base_url=console, timeout=30) as http:
        said = http.post("/api/messages", json={"text": "what is down?", "event_id": "serve-1"},
                         headers={"Authorization": f"Bearer {token}"})
    assert said.status_code == 200, said.text
    engine = make_engine(url)
    try:
        def done() -> bool:
            with Session(engine) as session:
                rows = session.exec(select(Signal)).all()
            return bool(rows) and all(row.processed_at is not None for row in rows)

        asyncio.run(until(done, 120, "a worker process of serve processes the message"))
        with Session(engine) as session:
            assert session.exec(select(Notification).where(Notification.person_id == "ravi")).first() is not None
    finally:
        engine.dispose()
    served.process.send_signal(signal.SIGINT)
    assert served.process.wait(timeout=30) == 0
    assert not [line for line in served.output if "Traceback" in line]

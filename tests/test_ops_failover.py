"""Timers fail over: a replica that dies holding the timer lock leaves the timers to another.

Two `Runtime`s on one PostgreSQL schema stand for two replicas. The replica that runs the timers
holds a transaction-level advisory lock while it fires them; a replica killed mid-pass is a
connection PostgreSQL drops, and the lock goes with it. A child process killed with SIGKILL
while it holds the lock is exactly that.
"""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from sqlmodel import Session, select

from mfgos.config import Settings
from mfgos.runtime import TIMER_LOCK, Runtime
from models import AckTimer, Notification
from routing.clock import SimulatedClock
from tests.conftest import postgres_schema_url

PLANT = Path(__file__).parent / "data" / "pune_plant.yaml"
T0 = datetime(2026, 11, 25, 3, 30, tzinfo=UTC)  # 09:00 in Pune, a Wednesday: shift a
REPORT = "hobber 1 band ho gaya, spindle se awaaz aa rahi hai. wo 1042"
# A replica in the middle of its timer pass: it holds the lock until killed.
HOLDER = """
import sys, time, psycopg
with psycopg.connect(sys.argv[1]) as connection:
    connection.execute("SELECT pg_advisory_xact_lock(%s, hashtext(coalesce(current_schema(), '')))",
                       (int(sys.argv[2]),))
    print("locked", flush=True)
    time.sleep(600)
"""


@pytest.fixture
def shared_url() -> Iterator[str]:
    yield from postgres_schema_url()


def replica(url: str, clock: SimulatedClock) -> Runtime:
    return Runtime(Settings(_env_file=None, database_url=url, plant_file=PLANT, erp="ledger"),  # type: ignore[call-arg]
                   clock=clock)


def test_the_timers_of_a_killed_replica_fire_on_the_other(shared_url: str) -> None:
    clock = SimulatedClock(T0)
    first, second = replica(shared_url, clock), replica(shared_url, clock)
    first.receive_chat(channel="console", address="ravi", person_id="ravi", text=REPORT, event_id="r1")
    clock.set(T0 + timedelta(minutes=25))  # nobody acknowledged within the rule's 10 minutes
    url = first.engine.url.set(drivername="postgresql").render_as_string(hide_password=False)
    holder = subprocess.Popen([sys.executable, "-c", HOLDER, url, str(TIMER_LOCK)], stdout=subprocess.PIPE, text=True)
    try:
        assert holder.stdout is not None and holder.stdout.readline().strip() == "locked"
        assert second.fire_timers() == 0, "the first replica is firing them: the second leaves them"
        os.kill(holder.pid, signal.SIGKILL)  # the first replica dies mid-pass
        holder.wait(timeout=30)
        started = time.monotonic()
        fired = 0
        while not fired and time.monotonic() - started < 60:  # the next passes of the second replica
            fired = second.fire_timers()
            if not fired:
                time.sleep(0.5)
        assert fired, "the second replica fires the timers within a minute of the first one's death"
        with Session(second.engine) as session:
            [timer] = session.exec(select(AckTimer)).all()
            escalations = session.exec(select(Notification).where(Notification.kind == "escalation")).all()
        assert timer.status == "fired" and len(escalations) == 1
        assert first.fire_timers() == 0, "fired once: nothing left for anyone"
    finally:
        holder.kill()
        holder.wait(timeout=30)
        asyncio.run(first.aclose())
        asyncio.run(second.aclose())

"""A report whose processing the database broke off is processed later, never marked failed.

The chaos suite (bench/chaos.py) showed why: a deadlock with another replica or a connection lost
while PostgreSQL restarts used to mark the signal failed and answer "processing failed", and the
report never reached anyone. Here another transaction holds the machine's row while the report
of a new breakdown on it is processed, with a lock timeout: the database refuses, as it would in
a deadlock, and the report must wait for the sweep instead.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import psycopg
import pytest
from sqlmodel import Session, select

from mfgos.config import Settings
from mfgos.runtime import Runtime
from models import Notification, PlantException, Signal
from tests.conftest import postgres_schema_url

PLANT = Path(__file__).parent / "data" / "pune_plant.yaml"
REPORT = "hobber 1 band ho gaya, spindle se awaaz aa rahi hai. wo 1042"


@pytest.fixture
def url() -> Iterator[str]:
    yield from postgres_schema_url()


def test_a_report_the_database_broke_off_waits_for_the_sweep_and_is_processed_then(url: str) -> None:
    impatient = url + "%20-clock_timeout%3D300"  # one more libpq option: give up a lock wait after 0.3 s
    runtime = Runtime(Settings(_env_file=None, database_url=impatient, plant_file=PLANT, erp="ledger"))  # type: ignore[call-arg]
    with psycopg.connect(url) as holder:
        holder.execute("SELECT 1 FROM machines WHERE id = 'HOB-01' FOR UPDATE")  # another replica, mid-transaction
        signal_id = runtime.receive_chat(channel="console", address="ravi", person_id="ravi", text=REPORT,
                                         event_id="r1").signal_id
        with Session(runtime.engine) as session:
            stored = session.get(Signal, signal_id)
            assert stored is not None
            assert stored.processed_at is None and stored.error is None, "not marked failed: left for the sweep"
            assert session.exec(select(PlantException)).all() == []
            assert [n.kind for n in session.exec(select(Notification))] == [], "nobody told 'processing failed'"
        holder.rollback()
    assert runtime.process_pending() == 1
    with Session(runtime.engine) as session:
        [exc] = session.exec(select(PlantException)).all()
        assert exc.machine_id == "HOB-01"
        processed = session.get(Signal, signal_id)
        assert processed is not None and processed.processed_at is not None and processed.error is None
        kinds = {n.kind for n in session.exec(select(Notification).where(Notification.person_id == "ravi"))}
        assert "opened" in kinds and "reply" not in kinds
    runtime.engine.dispose()

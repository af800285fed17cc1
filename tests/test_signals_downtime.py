"""From signal to exception: `min_down`, flapping, and downtime measured from the state signals.

Machine signals go through the real gate (`Runtime.receive_many` then `process_signals`, as
the MQTT source hands them over) on a simulated clock, on SQLite and PostgreSQL.
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from datetime import datetime, timedelta
from pathlib import Path

import pytest
from sqlmodel import Session, select

from bot.channels.base import CaptureChannel
from mfgos.config import Settings
from mfgos.runtime import Runtime
from models import Machine, Notification, PlantException, TimelineEvent
from routing.clock import SimulatedClock
from routing.erp_facts import breakdown_facts
from signals.base import Incoming
from tests.conftest import postgres_schema_url

PLANT = Path(__file__).parent / "data" / "pune_plant.yaml"
START = datetime.fromisoformat("2026-11-25T09:00:00+05:30")  # shift a: tom (maintenance) is on


@pytest.fixture(params=["sqlite", "postgresql"])
def runtime(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Runtime]:
    """HOB-01 with `min_down: 2m`; the plant opens a breakdown for more than 3 stops within 10 minutes."""
    text = PLANT.read_text(encoding="utf-8").replace(
        "{id: HOB-01, name: Liebherr gear hobber 1, area: gears,",
        "{id: HOB-01, name: Liebherr gear hobber 1, area: gears, min_down: 2m,")
    assert "min_down: 2m" in text
    plant = tmp_path / "plant.yaml"
    plant.write_text(text + "\nsignals:\n  flapping: {stops: 3, within: 10m}\n", encoding="utf-8")
    urls = iter([f"sqlite:///{tmp_path / 'downtime.db'}"]) if request.param == "sqlite" else postgres_schema_url()
    url = next(urls)
    rt = Runtime(Settings(_env_file=None, database_url=url, plant_file=plant), clock=SimulatedClock(START),
                 channels={n: CaptureChannel(n) for n in ("console", "slack", "whatsapp", "telegram")})
    yield rt
    asyncio.run(rt.aclose())
    next(urls, None)  # drops the PostgreSQL schema


def at(runtime: Runtime, minutes: float) -> None:
    runtime.clock.set(START + timedelta(minutes=minutes))  # type: ignore[attr-defined]


def state(runtime: Runtime, machine: str, value: str, minutes: float) -> None:
    """One state message at `minutes` after the start, stored and processed the way the MQTT source does."""
    at(runtime, minutes)
    (stored,) = runtime.receive_many("mqtt", [Incoming(f"t:{machine}:{minutes}:{value}", {
        "topic": f"plants/pune-1/{machine}/state", "machine": machine,
        "payload": {"state": value, "reason": "servo alarm"}})])
    runtime.process_signals([stored.signal_id])


def breakdowns(runtime: Runtime) -> list[PlantException]:
    with Session(runtime.engine) as session:
        return list(session.exec(select(PlantException).where(PlantException.type == "breakdown")
                                 .order_by(PlantException.id)))


def pages(runtime: Runtime) -> list[Notification]:
    with Session(runtime.engine) as session:
        return list(session.exec(select(Notification).where(Notification.kind != "reply")))


def test_a_fault_shorter_than_min_down_pages_nobody(runtime: Runtime) -> None:
    state(runtime, "HOB-01", "FAULT", 0)
    assert runtime.next_due() == START + timedelta(minutes=2)  # replay would stop its clock there
    state(runtime, "HOB-01", "RUNNING", 1.5)
    at(runtime, 5)
    runtime.fire_timers()
    assert breakdowns(runtime) == [] and pages(runtime) == []
    with Session(runtime.engine) as session:
        machine = session.get(Machine, ("pune-1", "HOB-01"))
        assert machine is not None and machine.running and machine.breakdown_due_at is None


def test_a_stop_longer_than_min_down_opens_its_breakdown_with_the_real_downtime(runtime: Runtime) -> None:
    state(runtime, "HOB-01", "FAULT", 0)
    at(runtime, 1)
    assert runtime.fire_timers() == 0 and breakdowns(runtime) == []
    at(runtime, 2)
    runtime.fire_timers()
    (exc,) = breakdowns(runtime)
    assert exc.machine_id == "HOB-01" and "down for 2 min" in exc.summary
    assert "tom" in {n.person_id for n in pages(runtime)}  # maintenance is paged once it counts
    state(runtime, "HOB-01", "RUNNING", 7)
    with Session(runtime.engine) as session:
        held = session.get(PlantException, exc.id)
        assert held is not None
        facts = breakdown_facts(session, held)
        stops = session.exec(select(TimelineEvent).where(TimelineEvent.exception_id == exc.id,
                                                         TimelineEvent.kind == "machine_state")).all()
    # the ERP transaction's downtime comes from the state signals: stopped at 0, ran again at 7
    assert datetime.fromisoformat(facts["down_at"]) == START
    assert datetime.fromisoformat(facts["up_at"]) == START + timedelta(minutes=7)
    assert sorted(e.data["running"] for e in stops) == [False, True]


def test_a_machine_that_flaps_opens_one_breakdown(runtime: Runtime) -> None:
    for stop in range(6):  # six stops of 30 s within 10 minutes, each shorter than min_down
        state(runtime, "HOB-01", "FAULT", stop * 1.5)
        state(runtime, "HOB-01", "RUNNING", stop * 1.5 + 0.5)
    (exc,) = breakdowns(runtime)  # opened at the fourth stop; the fifth and sixth join it
    assert exc.summary.startswith("HOB-01 stopped 4 times within 10m")
    assert exc.opened_at == START + timedelta(minutes=4.5)


def test_stops_spread_wider_than_the_flapping_period_do_not_count_together(runtime: Runtime) -> None:
    for stop in range(5):  # one short stop every 4 minutes: never more than 3 within 10 minutes
        state(runtime, "HOB-01", "FAULT", stop * 4)
        state(runtime, "HOB-01", "RUNNING", stop * 4 + 0.5)
    assert breakdowns(runtime) == []


def test_a_machine_without_min_down_opens_its_breakdown_at_once(runtime: Runtime) -> None:
    state(runtime, "GRD-02", "FAULT", 0)
    (exc,) = breakdowns(runtime)
    assert exc.machine_id == "GRD-02" and exc.opened_at == START

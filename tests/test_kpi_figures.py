"""Kept figures (routing/figures.py) answer exactly what the raw rows answer, and follow new events.

A day with every kind of event is replayed into PostgreSQL; the KPIs of periods that end after
it are computed from the kept figures and compared, figure by figure, with the same period
computed from the raw rows. Then more happens (a new exception, an escalation, an
acknowledgement): the next KPIs see it, and only the exceptions it touched are computed again.
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import datetime, timedelta
from pathlib import Path

import pytest
from sqlmodel import Session, select

from mfgos.replay import replay
from models import ExceptionFigures, PlantException, TimelineEvent, make_engine, migrate
from routing import figures, kpis
from tests.conftest import postgres_schema_url

SCENARIO = Path(__file__).parent / "scenarios" / "insight_day.yaml"
DAY = datetime.fromisoformat("2026-11-25T00:00:00+05:30")


@pytest.fixture
def store() -> Iterator[str]:
    for url in postgres_schema_url():
        replay(SCENARIO, database_url=url)
        yield url


def both(session: Session, since: datetime, until: datetime) -> tuple[dict, dict]:
    """The period's KPIs through `compute` (kept figures when settled) and from the raw rows."""
    kept = kpis.compute(session, "pune-1", since, until).to_json()
    rows = kpis._from_rows(session, "pune-1", since, until).to_json()
    return kept, rows


def test_kept_figures_equal_the_raw_rows_for_every_period_ending_after_the_last_event(store: str) -> None:
    engine = make_engine(store)
    migrate(engine)
    with Session(engine) as session:
        plant = session.exec(select(PlantException.plant_id)).first()
        assert plant == "pune-1"
        until = DAY + timedelta(days=3)
        assert figures.settled(session, "pune-1", until)
        for since in (DAY - timedelta(days=365), DAY, DAY + timedelta(hours=9, minutes=30), DAY + timedelta(hours=14),
                      DAY + timedelta(days=2)):  # the last: nothing opened, every figure null
            kept, rows = both(session, since, until)
            assert kept == rows, since
        kept, _ = both(session, DAY, until)
        assert kept["opened"] >= 3 and kept["mtta_minutes"] is not None and kept["messages_per_exception"]
        assert session.exec(select(ExceptionFigures)).all(), "the figures were kept"
        # A period that ends before the day's last event is not settled: the raw rows answer it.
        assert not figures.settled(session, "pune-1", DAY + timedelta(hours=10))
    engine.dispose()


def test_new_events_reach_the_next_kpis_and_only_their_exceptions_are_computed_again(store: str) -> None:
    engine = make_engine(store)
    migrate(engine)
    until = DAY + timedelta(days=3)
    with Session(engine) as session:
        kpis.compute(session, "pune-1", DAY, until)
        assert figures.refresh(session, "pune-1") <= len(session.exec(select(PlantException)).all())
        first = session.exec(select(PlantException).order_by(PlantException.id)).first()
        assert first is not None
        later = DAY + timedelta(days=1)
        session.add(TimelineEvent(exception_id=first.id, at=later, kind="escalated", person_id="new-person"))
        session.add(PlantException(plant_id="pune-1", code="E-9999", type="safety", opened_at=later, area_id="gears",
                                   acknowledged_at=later + timedelta(minutes=4)))
        session.commit()
        kept, rows = both(session, DAY - timedelta(days=30), until)
        assert kept == rows
        before = kpis._from_rows(session, "pune-1", DAY - timedelta(days=30), DAY + timedelta(hours=23))
        assert kept["opened"] == before.opened + 1
        assert kept["escalations"] == before.escalations + 1
        assert kept["by_type"]["safety"]["count"] >= 1
        # Nothing new: the refresh looks again only at the last few minutes' exceptions.
        assert figures.refresh(session, "pune-1") <= 2
    engine.dispose()


def test_sqlite_keeps_computing_from_the_raw_rows(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'k.db'}"
    replay(SCENARIO, database_url=url)
    engine = make_engine(url)
    with Session(engine) as session:
        kpis.compute(session, "pune-1", DAY, DAY + timedelta(days=3))
        assert session.exec(select(ExceptionFigures)).all() == []
    engine.dispose()


def test_a_read_only_database_answers_from_the_raw_rows(store: str) -> None:
    """A standby used for reporting cannot keep figures: the raw rows answer, nothing fails."""
    read_only = make_engine(store + "%20-cdefault_transaction_read_only%3Don")
    until = DAY + timedelta(days=3)
    with Session(read_only) as session:
        kept, rows = both(session, DAY, until)
        assert kept == rows and kept["opened"] >= 3
    read_only.dispose()
    engine = make_engine(store)
    with Session(engine) as session:
        assert session.exec(select(ExceptionFigures)).all() == []
    engine.dispose()

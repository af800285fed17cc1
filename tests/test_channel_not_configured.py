"""A message for a channel this process does not have: `not_configured`, said why, readable on the console."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from datetime import datetime

import pytest
from fastapi.testclient import TestClient
from sqlmodel import Session, select

from mfgos.config import DEMO_PLANT, Settings
from mfgos.runtime import Runtime
from mfgos.web import CONSOLE, ConsoleChannel, create_app
from models import Notification
from routing.clock import SimulatedClock

# A Wednesday at 09:00 in Pune: shift a is on, so tom (maintenance, on Slack in the demo plant) is paged.
START = datetime.fromisoformat("2026-11-25T09:00:00+05:30")
REPORT = "hobber 1 band ho gaya, spindle se awaaz aa rahi hai. wo 1042"


@pytest.fixture
def runtime(database_url: str) -> Iterator[Runtime]:
    settings = Settings(_env_file=None, database_url=database_url, plant_file=DEMO_PLANT, erp="ledger")
    built = Runtime(settings, clock=SimulatedClock(START), channels={CONSOLE: ConsoleChannel()})
    yield built
    built.engine.dispose()


def test_a_message_for_an_unconfigured_channel_is_not_configured_not_sent(runtime: Runtime) -> None:
    with TestClient(create_app(runtime, demo=True)) as client:
        said = client.post("/api/messages", json={"person_id": "ravi", "text": REPORT})
        assert said.status_code == 200, said.text
        code = said.json()["replies"][0]["exception"]
        for _ in range(3):  # more passes change nothing: the status is final, not retried
            asyncio.run(runtime.notifications.deliver_due())
        thread = client.get(f"/api/exceptions/{code}").json()
        to_tom = [n for n in thread["notifications"] if n["to"] == "tom"]
        assert to_tom and all(n["status"] == "not_configured" for n in to_tom), to_tom
        assert all("slack is not configured" in n["error"] for n in to_tom)
        # Console rows are delivered as before.
        assert all(n["status"] == "sent" for n in thread["notifications"] if n["channel"] == CONSOLE)
        # Still readable on the console, in tom's own feed.
        feed = client.get("/api/people/tom/messages").json()["messages"]
        assert {m["id"] for m in feed} >= {n["id"] for n in to_tom}
    with Session(runtime.engine) as session:
        rows = session.exec(select(Notification).where(Notification.person_id == "tom")).all()
        assert all(row.attempts == 1 and row.next_attempt_at is None and row.sent_at is None for row in rows)

"""The README's two-minute tour, step by step, on the demo plant, at any day and hour.

The demo plant's orders and shifts are relative to the moment it is loaded, so the tour must
give the same story at 03:00 on a Sunday, at 14:00 a year from now and right now: the web
console's API on a real Runtime (demo plant, ledger ERP, SQLite) with an injected clock.
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient

from mfgos.config import DEMO_PLANT, Settings
from mfgos.runtime import Runtime
from mfgos.web import CONSOLE, ConsoleChannel, create_app
from routing.clock import SimulatedClock

README = Path(__file__).resolve().parent.parent / "README.md"
REPORT = "hobber 1 band ho gaya, spindle se awaaz aa rahi hai. wo 1042"
MOMENTS = {
    "sunday-03h": datetime.fromisoformat("2026-12-06T03:00:00+05:30"),
    "next-year-14h": datetime.fromisoformat("2027-12-07T14:00:00+05:30"),
    "new-year-23h59": datetime.fromisoformat("2027-12-31T23:59:00+05:30"),
    "now": datetime.now(UTC).replace(microsecond=0),
}


@pytest.fixture(params=list(MOMENTS))
def start(request: pytest.FixtureRequest) -> datetime:
    return MOMENTS[request.param]


@pytest.fixture
def clock(start: datetime) -> SimulatedClock:
    return SimulatedClock(start)


@pytest.fixture
def runtime(tmp_path: Path, clock: SimulatedClock) -> Iterator[Runtime]:
    settings = Settings(database_url=f"sqlite:///{tmp_path / 'demo.db'}", plant_file=DEMO_PLANT, erp="ledger")
    built = Runtime(settings, clock=clock, channels={CONSOLE: ConsoleChannel()})
    yield built
    built.engine.dispose()


@pytest.fixture
def client(runtime: Runtime) -> Iterator[TestClient]:
    with TestClient(create_app(runtime, demo=True)) as test_client:
        yield test_client


def chat(client: TestClient, person: str, text: str, exception: str | None = None) -> dict[str, Any]:
    response = client.post("/api/messages", json={"person_id": person, "text": text, "exception": exception})
    assert response.status_code == 200, response.text
    return response.json()


def press(client: TestClient, person: str, action: str, exception: str) -> dict[str, Any]:
    response = client.post("/api/actions", json={"person_id": person, "action": action, "exception": exception})
    assert response.status_code == 200, response.text
    return response.json()


def inbox(client: TestClient, person: str) -> list[dict[str, Any]]:
    return client.get(f"/api/people/{person}/messages").json()["messages"]


def detail(client: TestClient, code: str) -> dict[str, Any]:
    return client.get(f"/api/exceptions/{code}").json()


TOUR_TEXTS = (REPORT, "bin unterwegs", "fixed, replaced the bearing, running again", "what is down?",
              "status WO-1043", "MTTR this week")


def test_the_readme_tour_is_the_one_tested() -> None:
    """The messages replayed below are the ones the README tells the reader to send."""
    readme = README.read_text(encoding="utf-8")
    tour = readme[readme.index("## A two-minute tour"):readme.index("The same without a browser")]
    assert all(f"`{text}`" in tour for text in TOUR_TEXTS)
    for label in ("**Acknowledge**", "**Propose fix**", "**Approve**", "E-0001", "WO-1042", "WO-1043", "SO-7001", "SO-7002",
                  "Arjun", "Lena", "Meena", "Sara", "Neha"):
        assert label in tour, label
    # ... and its button names are the page's.
    page = (README.parent / "mfgos" / "static" / "app.js").read_text(encoding="utf-8")
    for button in ("Acknowledge", "Propose fix", "Approve"):
        assert f'"{button}"' in page, button


def test_the_readme_tour(client: TestClient, runtime: Runtime, clock: SimulatedClock, start: datetime) -> None:
    def at(minutes: float) -> None:
        clock.set(start + timedelta(minutes=minutes))
        asyncio.run(runtime.drain())

    # The console's person picker says who is on shift: the tour's people, whatever the hour.
    people = {p["id"]: p["on_shift"] for p in client.get("/api/plant").json()["people"]}
    assert (people["ravi"], people["tom"], people["sara"], people["arjun"]) == (True, True, True, False)

    # 1. Ravi reports in Hinglish.
    opened = chat(client, "ravi", REPORT)
    code = opened["replies"][0]["exception"]
    assert code == "E-0001"
    thread = detail(client, code)
    assert (thread["type"], thread["machine"], thread["work_orders"], thread["customer_orders_at_risk"]) == (
        "breakdown", "HOB-01", ["WO-1042", "WO-1043"], ["SO-7001", "SO-7002"])

    # 2. Tom has the alert with its buttons; Deepa the work orders; John the customer
    # orders; not Arjun.
    alerts = {n["to"]: n for n in thread["notifications"] if n["kind"] == "alert"}
    assert set(alerts) == {"tom", "deepa", "john"}
    alert = next(m for m in inbox(client, "tom") if m["kind"] == "alert")
    assert alert["buttons"] == ["ack", "propose"]
    assert "WO-1042" in next(m for m in inbox(client, "deepa") if m["kind"] == "alert")["text"]
    assert "SO-7001" in next(m for m in inbox(client, "john") if m["kind"] == "alert")["text"]
    assert inbox(client, "arjun") == []
    # ... and Lena is paged when Tom has not acknowledged within 10 minutes.
    at(9.9)
    assert inbox(client, "lena") == []
    at(10)
    assert [m["kind"] for m in inbox(client, "lena")] == ["escalation"]

    # 3. Tom is on his way, then proposes the fix.
    at(12)
    chat(client, "tom", "bin unterwegs", exception=code)
    assert detail(client, code)["status"] == "acknowledged"
    at(40)
    chat(client, "tom", "fixed, replaced the bearing, running again", exception=code)
    assert detail(client, code)["status"] == "proposed"
    # Meena presses approve: refused (not the approver), and the attempt is on the timeline.
    at(41)
    press(client, "meena", "approve", code)
    thread = detail(client, code)
    assert thread["status"] == "proposed"
    assert [t["person"] for t in thread["timeline"] if t["kind"] == "approval_refused"] == ["meena"]
    # Sara approves on her approval request: a maintenance_request is posted to the ledger, its
    # reference in the thread.
    request = next(m for m in inbox(client, "sara") if m["kind"] == "approval_request")
    assert (request["exception"], request["buttons"]) == (code, ["approve", "reject"])
    at(42)
    press(client, "sara", "approve", code)
    at(42)
    thread = detail(client, code)
    [txn] = thread["erp_transactions"]
    assert (txn["kind"], txn["status"]) == ("maintenance_request", "posted")
    assert any(txn["reference"] in m["text"] for m in inbox(client, "ravi") if m["kind"] == "erp_reference")
    assert thread["status"] == "closed"

    # 4. Neha asks.
    down = chat(client, "neha", "what is down?")["replies"]
    assert [r["kind"] for r in down] == ["reply"] and "E-0001" not in down[0]["text"]  # closed: nothing open
    status = chat(client, "neha", "status WO-1043")["replies"]
    assert [r["kind"] for r in status] == ["reply"] and "WO-1043" in status[0]["text"]
    kpis = chat(client, "neha", "MTTR this week")["replies"]
    assert [r["kind"] for r in kpis] == ["reply"] and "MTTR" in kpis[0]["text"]

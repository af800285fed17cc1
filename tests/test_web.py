"""The web console's REST API on a real Runtime (temp SQLite, demo plant, ledger ERP)."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Iterator
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from fastapi import APIRouter
from fastapi.testclient import TestClient
from sqlmodel import Session, func, select

from mfgos.config import DEMO_PLANT, Settings
from mfgos.runtime import Runtime
from mfgos.server import worker_lifespan
from mfgos.web import CONSOLE, ConsoleChannel, create_app
from models import Signal
from routing.clock import SimulatedClock

# A Wednesday at 09:00 in Pune: shift a is on, so tom (maintenance) is paged, arjun (shift b) is not.
START = datetime.fromisoformat("2026-11-25T09:00:00+05:30")
REPORT = "hobber 1 band ho gaya, spindle se awaaz aa rahi hai. wo 1042"


@pytest.fixture
def clock() -> SimulatedClock:
    return SimulatedClock(START)


@pytest.fixture
def runtime(tmp_path: Path, clock: SimulatedClock) -> Iterator[Runtime]:
    settings = Settings(database_url=f"sqlite:///{tmp_path / 'web.db'}", plant_file=DEMO_PLANT, erp="ledger")
    built = Runtime(settings, clock=clock, channels={CONSOLE: ConsoleChannel()})
    yield built
    built.engine.dispose()


@pytest.fixture
def client(runtime: Runtime) -> Iterator[TestClient]:
    with TestClient(create_app(runtime, demo=True)) as test_client:  # chat as anyone; sign-in: test_auth*.py
        yield test_client


def chat(client: TestClient, person: str, text: str, exception: str | None = None,
         event_id: str | None = None) -> dict[str, Any]:
    response = client.post("/api/messages", json={"person_id": person, "text": text, "exception": exception,
                                                  "event_id": event_id})
    assert response.status_code == 200, response.text
    return response.json()


def press(client: TestClient, person: str, action: str, exception: str, text: str = "") -> dict[str, Any]:
    response = client.post("/api/actions", json={"person_id": person, "action": action, "exception": exception,
                                                 "text": text})
    assert response.status_code == 200, response.text
    return response.json()


def messages(client: TestClient, person: str, after: int = 0) -> list[dict[str, Any]]:
    response = client.get(f"/api/people/{person}/messages", params={"after": after})
    assert response.status_code == 200, response.text
    return response.json()["messages"]


def detail(client: TestClient, code: str) -> dict[str, Any]:
    response = client.get(f"/api/exceptions/{code}")
    assert response.status_code == 200, response.text
    return response.json()


def drain(runtime: Runtime) -> None:
    asyncio.run(runtime.drain())


def test_breakdown_from_report_to_erp_reference(client: TestClient, runtime: Runtime, clock: SimulatedClock) -> None:
    opened = chat(client, "ravi", REPORT)
    assert [r["kind"] for r in opened["replies"]] == ["opened"]
    code = opened["replies"][0]["exception"]
    assert code == "E-0001"

    listed = client.get("/api/exceptions").json()["exceptions"]
    assert [(e["code"], e["type"], e["machine"], e["status"]) for e in listed] == [
        ("E-0001", "breakdown", "HOB-01", "open")]
    assert "WO-1042" in listed[0]["work_orders"]
    assert "SO-7001" in listed[0]["customer_orders_at_risk"]
    alerted = {n["to"] for n in detail(client, code)["notifications"] if n["kind"] == "alert"}
    assert alerted == {"tom", "deepa", "john"}
    machines = {m["id"]: m["running"] for m in client.get("/api/plant").json()["machines"]}
    assert machines["HOB-01"] is False

    # tom's alert shows up in his inbox on his own channel, with the buttons of the rule.
    alert = next(m for m in messages(client, "tom") if m["kind"] == "alert")
    assert (alert["channel"], alert["exception"], alert["buttons"]) == ("slack", code, ["ack", "propose"])

    clock.set(START + timedelta(minutes=4))
    press(client, "tom", "ack", code)
    assert detail(client, code)["status"] == "acknowledged"
    assert any(m["kind"] == "acknowledged" and "Tom Fischer" in m["text"] for m in messages(client, "ravi"))

    clock.set(START + timedelta(minutes=50))
    chat(client, "tom", "fixed, replaced the hob arbor bearing, running again", exception=code)
    thread = detail(client, code)
    assert thread["status"] == "proposed"
    assert thread["proposal"]["by"] == "tom"
    request = next(m for m in messages(client, "sara") if m["kind"] == "approval_request")
    assert request["buttons"] == ["approve", "reject"]

    # Nothing reaches the ERP before the approval, even with the outbox drained.
    drain(runtime)
    assert client.get("/api/erp").json()["transactions"] == []

    clock.set(START + timedelta(minutes=52))
    press(client, "sara", "approve", code)
    drain(runtime)

    thread = detail(client, code)
    [txn] = thread["erp_transactions"]
    assert (txn["kind"], txn["status"]) == ("maintenance_request", "posted")
    reference = txn["reference"]
    assert reference and reference.startswith("MR-")
    assert any(t["kind"] == "erp_posted" and t["data"]["reference"] == reference for t in thread["timeline"])
    assert thread["status"] == "closed"  # posted, and HOB-01 runs again after the fix
    assert any(reference in m["text"] for m in messages(client, "ravi") if m["kind"] == "erp_reference")

    erp = client.get("/api/erp").json()
    assert [(t["exception"], t["reference"], t["status"]) for t in erp["transactions"]] == [(code, reference, "posted")]
    assert [(d["reference"], d["kind"]) for d in erp["ledger_documents"]] == [(reference, "maintenance_request")]
    assert erp["ledger_documents"][0]["fields"]["machine"] == "HOB-01"

    kpis = client.get("/api/kpis", params={"period": "today"}).json()
    assert (kpis["opened"], kpis["closed"], kpis["open_now"]) == (1, 1, 0)
    assert kpis["mtta_minutes"] == 4.0
    assert kpis["mttr_minutes"] == 50.0  # repaired when tom said it runs again (50m), not at the close (52m)
    assert kpis["mean_resolution_minutes"] == 52.0
    assert client.get("/api/kpis", params={"period": "week"}).json()["opened"] == 1


def test_an_operator_cannot_approve(client: TestClient, clock: SimulatedClock) -> None:
    code = chat(client, "ravi", REPORT)["replies"][0]["exception"]
    clock.set(START + timedelta(minutes=30))
    chat(client, "tom", "fixed, replaced the hob arbor bearing, running again", exception=code)

    refused = press(client, "meena", "approve", code)
    assert [r["kind"] for r in refused["replies"]] == ["refusal"]
    assert "supervisor" in refused["replies"][0]["text"]
    thread = detail(client, code)
    assert thread["status"] == "proposed"
    assert [(a["person"], a["accepted"]) for a in thread["approvals"]] == [("meena", False)]
    assert any(t["kind"] == "approval_refused" and t["person"] == "meena" for t in thread["timeline"])
    assert client.get("/api/erp").json()["transactions"] == []


def test_a_rejection_sends_the_thread_back(client: TestClient) -> None:
    code = chat(client, "ravi", REPORT)["replies"][0]["exception"]
    chat(client, "tom", "fixed, replaced the hob arbor bearing, running again", exception=code)
    press(client, "sara", "reject", code, text="check the spindle runout first")
    thread = detail(client, code)
    assert thread["status"] == "acknowledged"
    assert any(t["kind"] == "rejected" and t["text"] == "check the spindle runout first" for t in thread["timeline"])
    assert any(m["kind"] == "rejected" for m in messages(client, "tom"))


def test_a_double_submit_is_stored_once(client: TestClient, runtime: Runtime) -> None:
    first = chat(client, "ravi", REPORT, event_id="3f1c9a52-double-submit")
    second = chat(client, "ravi", REPORT, event_id="3f1c9a52-double-submit")
    assert second["signal_id"] == first["signal_id"]
    assert (first["duplicate"], second["duplicate"]) == (False, True)
    with Session(runtime.engine) as session:
        assert session.exec(select(func.count()).select_from(Signal)).one() == 1
    assert len(client.get("/api/exceptions").json()["exceptions"]) == 1
    assert [m["kind"] for m in messages(client, "ravi")] == ["opened"]


def test_messages_page_by_cursor_and_list_what_the_person_sent(client: TestClient) -> None:
    chat(client, "ravi", REPORT)
    first = client.get("/api/people/ravi/messages").json()
    assert [s["text"] for s in first["sent"]] == [REPORT]
    last = first["messages"][-1]["id"]
    chat(client, "ravi", "what is down?")
    later = client.get("/api/people/ravi/messages", params={"after": last, "after_sent": first["sent"][-1]["id"]}).json()
    assert [m["kind"] for m in later["messages"]] == ["reply"]
    assert "HOB-01" in later["messages"][0]["text"]
    assert [s["text"] for s in later["sent"]] == ["what is down?"]


@pytest.mark.parametrize(("method", "path", "body", "status", "says"), [
    ("get", "/api/people/nobody/messages", None, 404, "unknown person 'nobody'"),
    ("get", "/api/exceptions/E-0999", None, 404, "unknown exception"),
    ("post", "/api/messages", {"person_id": "nobody", "text": "hello"}, 404, "unknown person"),
    ("post", "/api/messages", {"person_id": "ravi", "text": "hi", "exception": "E-0999"}, 404, "unknown exception"),
    ("post", "/api/actions", {"person_id": "sara", "action": "approve", "exception": "E-0999"}, 404,
     "unknown exception"),
    ("post", "/api/messages", {"person_id": "ravi", "text": ""}, 422, "text: the message is empty"),
    ("post", "/api/messages", {"person_id": "ravi", "text": "   \n"}, 422, "text: the message is empty"),
    ("post", "/api/messages", {"person_id": "ravi"}, 422, "text: Field required"),
    ("post", "/api/messages", {"person_id": "ravi", "text": "x", "event_id": "has spaces"}, 422, "event_id"),
    ("post", "/api/actions", {"person_id": "sara", "action": "delete", "exception": "E-0001"}, 422, "action"),
    ("get", "/api/kpis?period=month", None, 422, "period"),
    ("get", "/api/people/ravi/messages?after=-1", None, 422, "after"),
])
def test_bad_requests_get_clear_errors(client: TestClient, runtime: Runtime, method: str, path: str,
                                       body: dict[str, Any] | None, status: int, says: str) -> None:
    response = client.post(path, json=body) if method == "post" else client.get(path)
    assert response.status_code == status
    assert says in response.json()["detail"]
    with Session(runtime.engine) as session:
        assert session.exec(select(func.count()).select_from(Signal)).one() == 0  # nothing stored


def test_plant_view_lists_people_and_machines(client: TestClient) -> None:
    plant = client.get("/api/plant").json()
    assert plant["plant"]["id"] == "pune-1"
    people = {p["id"]: p for p in plant["people"]}
    assert people["ravi"]["roles"] == ["operator"] and people["ravi"]["language"] == "hi"
    assert people["tom"]["on_shift"] is True and people["arjun"]["on_shift"] is False
    assert people["ravi"]["channels"] == ["whatsapp"]  # channel names only, never the addresses
    assert {m["id"] for m in plant["machines"]} >= {"HOB-01", "GRD-02"}
    assert all(m["running"] for m in plant["machines"])


def test_console_page_and_extra_routers_are_served(runtime: Runtime) -> None:
    bridge = APIRouter()

    @bridge.post("/bridge/inbound")
    def inbound() -> dict[str, str]:
        return {"ok": "bridge"}

    with TestClient(create_app(runtime, extra_routers=[bridge], demo=True)) as client:
        page = client.get("/")
        assert page.status_code == 200 and "mfgos console" in page.text
        for asset in ("/static/app.js", "/static/app.css"):
            assert client.get(asset).status_code == 200
        assert client.post("/bridge/inbound").json() == {"ok": "bridge"}
        health = client.get("/healthz").json()
        assert (health["status"], health["plant"]) == ("ok", "pune-1")


def test_the_worker_lifespan_delivers_and_posts_without_help(runtime: Runtime) -> None:
    """The server's worker: notifications reach their channel and an approval reaches the ERP."""
    app = create_app(runtime, lifespan=worker_lifespan(runtime, interval=0.05), demo=True)
    with TestClient(app) as client:
        code = chat(client, "ravi", REPORT)["replies"][0]["exception"]
        chat(client, "tom", "fixed, replaced the hob arbor bearing, running again", exception=code)
        press(client, "sara", "approve", code)
        deadline = time.monotonic() + 15
        while time.monotonic() < deadline:
            thread = detail(client, code)
            if thread["erp_transactions"] and thread["erp_transactions"][0]["status"] == "posted" and \
                    all(n["status"] in ("sent", "not_configured") for n in thread["notifications"]):
                break
            time.sleep(0.05)
        else:
            pytest.fail(f"the worker did not post and deliver: {thread}")
        assert thread["erp_transactions"][0]["reference"].startswith("MR-")

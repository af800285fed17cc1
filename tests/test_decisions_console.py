"""Decision parts on the console (issue 16): shown on the exception's detail with their state, and
decided with the same buttons the chat platforms carry, through the console API."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from datetime import datetime
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient

from mfgos.config import Settings
from mfgos.runtime import Runtime
from mfgos.web import CONSOLE, ConsoleChannel, create_app
from routing.clock import SimulatedClock

START = datetime.fromisoformat("2026-11-25T09:00:00+05:30")
PLANT = Path(__file__).parent / "data" / "pune_decide_plant.yaml"


@pytest.fixture
def runtime(tmp_path: Path) -> Iterator[Runtime]:
    settings = Settings(database_url=f"sqlite:///{tmp_path / 'web.db'}", plant_file=PLANT, erp="ledger")
    built = Runtime(settings, clock=SimulatedClock(START), channels={CONSOLE: ConsoleChannel()})
    yield built
    built.engine.dispose()


@pytest.fixture
def client(runtime: Runtime) -> Iterator[TestClient]:
    with TestClient(create_app(runtime, demo=True)) as test_client:
        yield test_client


def post(client: TestClient, path: str, body: dict[str, Any]) -> None:
    response = client.post(path, json=body)
    assert response.status_code == 200, response.text


def detail(client: TestClient, code: str) -> dict[str, Any]:
    response = client.get(f"/api/exceptions/{code}")
    assert response.status_code == 200, response.text
    return response.json()


def test_open_parts_show_on_the_detail_and_their_buttons_decide_them(client: TestClient, runtime: Runtime) -> None:
    post(client, "/api/messages", {"person_id": "ravi", "text": "hobber 1 band ho gaya, wo 1042"})
    [options] = detail(client, "E-0001")["decisions"]
    assert (options["kind"], options["status"], options["open"], options["role_name"]) == (
        "reschedule", "needed", True, "planner")
    post(client, "/api/actions", {"person_id": "deepa", "action": f"part:option2:{options['id']}",
                                  "exception": "E-0001"})
    post(client, "/api/actions", {"person_id": "sara", "action": f"part:approve:{options['id']}",
                                  "exception": "E-0001"})
    asyncio.run(runtime.drain())
    parts = {p["kind"]: p for p in detail(client, "E-0001")["decisions"]}
    assert parts["reschedule"]["status"] == "settled" and not parts["reschedule"]["open"]
    assert parts["reschedule"]["text"] == "WO-1042 on HOB-02 from 2026-11-25 14:00 to 2026-11-25 23:00"
    material = parts["material_request"]
    assert (material["status"], material["open"]) == ("needed", True)
    assert material["text"] == "transfer 400 pcs of FRG-20MNCR5 to HOB-02 by 2026-11-25 14:00"
    post(client, "/api/actions", {"person_id": "vikram", "action": f"part:skip:{material['id']}",
                                  "exception": "E-0001"})
    assert {p["kind"]: p["status"] for p in detail(client, "E-0001")["decisions"]}["material_request"] == "not_needed"
    response = client.post("/api/actions", json={"person_id": "vikram", "action": "part:explode:1",
                                                 "exception": "E-0001"})
    assert response.status_code == 422


def test_the_exceptions_list_counts_open_decisions(client: TestClient) -> None:
    post(client, "/api/messages", {"person_id": "ravi", "text": "hobber 1 band ho gaya, wo 1042"})
    response = client.get("/api/exceptions")
    assert response.status_code == 200, response.text
    [row] = response.json()["exceptions"]
    assert row["open_decisions"] == 1, "the planner's options wait for a choice"

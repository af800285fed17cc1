"""A row the MES refused, settled from the dashboard: Retry and Abandon (`POST /api/mes/{id}/...`).

The demo plant (which has an `mes:` section) on a signed-in server: a breakdown is reported,
acknowledged, fixed and approved through the pipeline; its rows go to the embedded MES. One more
row with a status the MES does not know is refused by the real outbox. Then an operator's press is
refused by the lifecycle table (403, on the timeline); the supervisor, the breakdown's approver,
retries it (queued again under the same key, refused again) and abandons it with a reason.
"""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlmodel import Session, select

from mfgos.auth import SESSION_COOKIE
from mfgos.config import Settings
from mfgos.runtime import Runtime
from mfgos.server import demo_settings
from mfgos.web import CONSOLE, ConsoleChannel, create_app
from models import PlantException
from models.mes import MesTransaction
from routing.inbound import Inbound

REPORT = "hobber 1 band ho gaya, spindle se awaaz aa rahi hai. wo 1042"


@pytest.fixture
def served(tmp_path: Path) -> Iterator[tuple[Runtime, Any]]:
    runtime = Runtime(demo_settings(Settings(database_url=f"sqlite:///{tmp_path / 'mes.db'}")),
                      channels={CONSOLE: ConsoleChannel()})
    app = create_app(runtime)
    yield runtime, app
    asyncio.run(runtime.aclose())


def press(runtime: Runtime, person: str, text: str = "", action: str | None = None) -> None:
    runtime.accept(Inbound(source=CONSOLE, event_id=uuid.uuid4().hex, address=person, person_id=person, text=text,
                           action=action, exception_ref="E-0001" if action else None))


def signed_in(app: Any, person: str) -> TestClient:
    return TestClient(app, base_url="http://127.0.0.1",
                      cookies={SESSION_COOKIE: app.state.auth.start_session(person, "test")})


def test_only_the_approver_retries_or_abandons_what_the_mes_refused(served: tuple[Runtime, Any]) -> None:
    runtime, app = served
    press(runtime, "ravi", REPORT)
    press(runtime, "tom", action="ack")
    press(runtime, "tom", "replaced the hob arbor bearing", action="propose")
    press(runtime, "sara", action="approve")
    with Session(runtime.engine) as session:
        exc = session.exec(select(PlantException).where(PlantException.code == "E-0001")).one()
        bad = MesTransaction(plant_id=exc.plant_id, exception_id=exc.id, sequence=99, slot="machine_status:test",
                             kind="machine_status", fields={"machine": "HOB-01", "status": "exploded",
                                                            "exception": "E-0001", "at": exc.opened_at.isoformat()},
                             idempotency_key=f"test:{uuid.uuid4().hex}", created_at=runtime.clock.now(),
                             next_attempt_at=runtime.clock.now())
        session.add(bad)
        session.commit()
        bad_id = bad.id
    for _ in range(10):
        asyncio.run(runtime.mes_outbox.send_due())

    sara, meena = signed_in(app, "sara"), signed_in(app, "meena")
    rows = {r["id"]: r for r in sara.get("/api/mes").json()["transactions"]}
    assert rows[bad_id]["status"] == "rejected" and "status" in rows[bad_id]["error"], rows[bad_id]
    assert {r["status"] for i, r in rows.items() if i != bad_id} == {"sent"}

    refused = meena.post(f"/api/mes/{bad_id}/retry", json={})
    assert refused.status_code == 403
    assert refused.json()["detail"].startswith("Only someone with the supervisor role can retry or abandon "
                                               "what the MES refused for E-0001")
    assert meena.post(f"/api/mes/{bad_id}/retry", json={"person_id": "sara"}).status_code == 403  # nobody else
    assert sara.post(f"/api/mes/{bad_id}/abandon", json={"text": "  "}).status_code == 422
    assert sara.post("/api/mes/999999/retry", json={}).status_code == 404
    assert sara.post(f"/api/mes/{2**31}/retry", json={}).status_code == 422  # beyond any id the store holds
    assert sara.post(f"/api/mes/{bad_id}/explode", json={}).status_code == 422

    retried = sara.post(f"/api/mes/{bad_id}/retry", json={})
    assert retried.status_code == 200 and retried.json()["status"] == "pending", retried.text
    asyncio.run(runtime.mes_outbox.send_due())
    assert {r["id"]: r for r in sara.get("/api/mes").json()["transactions"]}[bad_id]["status"] == "rejected"

    abandoned = sara.post(f"/api/mes/{bad_id}/abandon", json={"text": "test rig, not a real machine state"})
    assert abandoned.json() == {"id": bad_id, "status": "failed", "error": "abandoned: test rig, not a real machine state"}
    assert sara.post(f"/api/mes/{bad_id}/retry", json={}).status_code == 409  # settled already

    said = [t["sentence"] for t in sara.get("/api/exceptions/E-0001").json()["timeline"] if t["sentence"]]
    assert "Meena Patil tried to retry or abandon the MES transaction; refused: only someone with the " \
           "supervisor role can" in said, said
    assert "Sara Khan sent the machine status to the MES again" in said, said
    assert any(s.startswith("Sara Khan gave up the machine status in the MES") and "test rig" in s for s in said)

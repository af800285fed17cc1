"""`POST /signals/mes` through FastAPI's TestClient on the real app: signatures, idempotency, bad bodies."""

from __future__ import annotations

import asyncio
import base64
import json
from collections.abc import Iterator
from datetime import datetime
from pathlib import Path
from typing import Any

import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient
from pydantic import SecretStr
from sqlmodel import Session, select

from bot.channels.base import CaptureChannel
from mfgos.config import Settings
from mfgos.runtime import Runtime
from mfgos.web import create_app
from models import Machine, PlantException, Signal, TimelineEvent, WorkOrder
from routing.clock import SimulatedClock
from signals.registry import build_routers
from signals.webhooks import SIGNATURE_HEADER, sign
from tests.conftest import postgres_schema_url

PLANT = Path(__file__).parent / "data" / "pune_plant.yaml"
START = datetime.fromisoformat("2026-11-25T09:00:00+05:30")
SECRET = "mes-shared-secret"


@pytest.fixture(params=["sqlite", "postgresql"])
def database_url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    if request.param == "sqlite":
        yield f"sqlite:///{tmp_path / 'hooks.db'}"
    else:
        yield from postgres_schema_url()


@pytest.fixture
def runtime(database_url: str) -> Iterator[Runtime]:
    settings = Settings(_env_file=None, database_url=database_url, plant_file=PLANT,
                        signals_webhook_secret=SecretStr(SECRET))
    rt = Runtime(settings, clock=SimulatedClock(START), channels={"console": CaptureChannel("console")})
    yield rt
    asyncio.run(rt.aclose())


@pytest.fixture
def client(runtime: Runtime) -> TestClient:
    app: FastAPI = create_app(runtime, extra_routers=build_routers(runtime, runtime.settings))
    return TestClient(app)


def post(client: TestClient, body: dict[str, Any] | bytes, *, secret: str = SECRET,
         signature: str | None = None) -> Any:
    raw = body if isinstance(body, bytes) else json.dumps(body).encode()
    headers = {"Content-Type": "application/json", SIGNATURE_HEADER: signature or sign(secret, raw)}
    return client.post("/signals/mes", content=raw, headers=headers)


def signals(runtime: Runtime) -> list[Signal]:
    with Session(runtime.engine) as session:
        return list(session.exec(select(Signal).order_by(Signal.id)))


def exceptions(runtime: Runtime) -> list[PlantException]:
    with Session(runtime.engine) as session:
        return list(session.exec(select(PlantException)))


def test_signed_machine_event_opens_a_breakdown(client: TestClient, runtime: Runtime) -> None:
    answer = post(client, {"event_id": "mes-1", "machine": "HOB-01", "state": "FAULT", "reason": "servo alarm 401",
                           "work_order": "WO-1042"})
    assert answer.status_code == 200, answer.text
    assert answer.json() == {"signal_id": 1, "duplicate": False, "stored": True}
    (signal,) = signals(runtime)
    assert (signal.source, signal.source_key, signal.kind) == ("mes", "mes:mes-1", "machine")
    (exc,) = exceptions(runtime)
    assert (exc.type, exc.machine_id, exc.summary) == ("breakdown", "HOB-01", "HOB-01 FAULT: servo alarm 401")


def test_event_names_stand_for_states(client: TestClient, runtime: Runtime) -> None:
    assert post(client, {"event_id": "e1", "machine": "GRD-02", "event": "downtime_start"}).status_code == 200
    assert post(client, {"event_id": "e2", "machine": "GRD-02", "event": "downtime_end"}).status_code == 200
    with Session(runtime.engine) as session:
        machine = session.get(Machine, ("pune-1", "GRD-02"))
        assert machine is not None and machine.running
    assert [e.machine_id for e in exceptions(runtime)] == ["GRD-02"]


@pytest.mark.parametrize("signature", [
    None, "", "sha256=" + "0" * 64, sign("another-secret", b"x"), "md5=abc",
])
def test_forged_or_missing_signature_is_refused_and_nothing_stored(client: TestClient, runtime: Runtime,
                                                                   signature: str | None) -> None:
    raw = json.dumps({"event_id": "forged", "machine": "HOB-01", "state": "FAULT"}).encode()
    headers = {"Content-Type": "application/json"}
    if signature is not None:
        headers[SIGNATURE_HEADER] = signature
    answer = client.post("/signals/mes", content=raw, headers=headers)
    assert answer.status_code == 401
    assert SIGNATURE_HEADER in answer.json()["detail"]
    assert signals(runtime) == [] and exceptions(runtime) == []


def test_signature_over_a_different_body_is_refused(client: TestClient, runtime: Runtime) -> None:
    signed = json.dumps({"event_id": "x", "machine": "HOB-01", "state": "RUNNING"}).encode()
    sent = json.dumps({"event_id": "x", "machine": "HOB-01", "state": "FAULT"}).encode()
    answer = client.post("/signals/mes", content=sent, headers={SIGNATURE_HEADER: sign(SECRET, signed)})
    assert answer.status_code == 401 and signals(runtime) == []


def test_duplicate_event_id_is_processed_once(client: TestClient, runtime: Runtime) -> None:
    body = {"event_id": "mes-77", "machine": "HOB-01", "state": "FAULT"}
    first, second = post(client, body), post(client, body)
    assert (first.status_code, second.status_code) == (200, 200)
    assert first.json()["duplicate"] is False and second.json() == {**first.json(), "duplicate": True}
    # even with other content, an event id is one event
    third = post(client, {**body, "state": "RUNNING"})
    assert third.json()["duplicate"] is True
    assert len(signals(runtime)) == 1 and len(exceptions(runtime)) == 1


@pytest.mark.parametrize(("raw", "detail"), [
    (b'{"event_id": "m1", "machine": "HOB-01", ', "body is not JSON: Expecting property name"),
    (b'{"event_id": "m1", "machine": "HOB-01", "state": "FAULT", "ts": NaN}',
     "body is not JSON: NaN is not a number JSON allows"),
    (b"\xff\xfe", "body is not JSON: "),
])
def test_malformed_json_is_a_clear_400(client: TestClient, runtime: Runtime, raw: bytes, detail: str) -> None:
    answer = post(client, raw)
    assert answer.status_code == 400
    assert answer.json()["detail"].startswith(detail)
    assert_kept_as_unreadable(runtime, answer.json(), raw)


@pytest.mark.parametrize(("body", "problem"), [
    ({"machine": "HOB-01", "state": "FAULT"}, "event_id: Field required"),
    ({"event_id": "a b", "machine": "HOB-01", "state": "FAULT"}, "event_id: String should match pattern"),
    ({"event_id": "e", "machine": "HOB-01"}, "give 'state'"),
    ({"event_id": "e", "state": "FAULT"}, "needs 'machine'"),
    ({"event_id": "e", "event": "work_order_status", "work_order": "WO-1042"}, "needs 'work_order' and 'status'"),
    ([1, 2], "Input should be a valid dictionary"),
])
def test_wrong_shape_is_a_clear_422_and_kept_as_unreadable(client: TestClient, runtime: Runtime, body: Any,
                                                       problem: str) -> None:
    answer = post(client, json.dumps(body).encode())
    assert answer.status_code == 422
    assert problem in answer.json()["detail"]
    assert_kept_as_unreadable(runtime, answer.json(), json.dumps(body).encode())
    assert exceptions(runtime) == []


def assert_kept_as_unreadable(runtime: Runtime, answer: dict[str, Any], raw: bytes) -> None:
    """A signed body we cannot use is kept (once) as an unreadable signal whose error is the answer's detail."""
    (signal,) = signals(runtime)
    assert answer["stored"] is True and answer["signal_id"] == signal.id
    assert (signal.kind, signal.error, signal.processed_at is not None) == ("unreadable", answer["detail"], True)
    assert base64.b64decode(signal.payload["raw_base64"]) == raw


def test_unknown_machine_is_stored_and_said(client: TestClient, runtime: Runtime) -> None:
    answer = post(client, {"event_id": "u1", "machine": "HOB-99", "state": "FAULT"})
    assert answer.status_code == 422
    assert answer.json() == {"signal_id": 1, "duplicate": False, "stored": True,
                             "detail": "unknown machine 'HOB-99' in plant pune-1"}
    unknown_event = post(client, {"event_id": "u2", "machine": "HOB-01", "event": "coffee_break"})
    assert unknown_event.status_code == 422 and "unknown MES event 'coffee_break'" in unknown_event.json()["detail"]
    assert [s.error is not None for s in signals(runtime)] == [True, True] and exceptions(runtime) == []


def test_work_order_status_updates_the_order(client: TestClient, runtime: Runtime) -> None:
    post(client, {"event_id": "f1", "machine": "HOB-01", "state": "FAULT"})  # WO-1042 runs on HOB-01
    answer = post(client, {"event_id": "wo-1", "event": "work_order_status", "work_order": "WO-1042",
                           "status": "On Hold"})
    assert answer.status_code == 200, answer.text
    with Session(runtime.engine) as session:
        order = session.get(WorkOrder, ("pune-1", "WO-1042"))
        assert order is not None and order.status == "held"
        notes = session.exec(select(TimelineEvent).where(TimelineEvent.kind == "work_order_status")).all()
    assert [(n.text, n.data["previous"]) for n in notes] == [("WO-1042: running -> held", "running")]
    bad = post(client, {"event_id": "wo-2", "event": "work_order_status", "work_order": "WO-1042", "status": "lost"})
    assert bad.status_code == 422 and bad.json()["detail"].startswith("unknown work-order status 'lost'")
    missing = post(client, {"event_id": "wo-3", "event": "work_order_status", "work_order": "WO-9", "status": "done"})
    assert missing.json()["detail"] == "unknown work order 'WO-9' in plant pune-1"


def test_no_secret_no_route(runtime: Runtime) -> None:
    settings = runtime.settings.model_copy(update={"signals_webhook_secret": None})
    assert [route.path for router in build_routers(runtime, settings)  # type: ignore[attr-defined]
            for route in router.routes] == ["/signals/quality"]  # token only: always mounted
    app = create_app(runtime, extra_routers=build_routers(runtime, settings))
    assert TestClient(app).post("/signals/mes", content=b"{}").status_code in (404, 405)


@pytest.mark.parametrize(("raw", "detail"), [
    (b'{"event_id": "d1", "x": ' + b"[" * 40 + b"]" * 40 + b"}", "body is JSON nested deeper than 32 levels"),
    (b'{"event_id": "h1", "machine": "HOB-01", "state": "FAULT", "temp": 1e999}',
     "body is JSON the store cannot keep: inf is not a number JSON allows"),
    (b'{"event_id": "s1", "machine": "HOB-01", "state": "FAULT", "note": "\\ud800"}',
     "body is JSON the store cannot keep: text that is not valid Unicode (a lone surrogate)"),
])
def test_hostile_json_is_a_clear_400_not_a_500(runtime: Runtime, raw: bytes, detail: str) -> None:
    """Deep nesting made the parser raise RecursionError; infinities and NULs made PostgreSQL refuse the row."""
    app: FastAPI = create_app(runtime, extra_routers=build_routers(runtime, runtime.settings))
    with TestClient(app, raise_server_exceptions=False) as client:
        answer = post(client, raw)
        assert (answer.status_code, answer.json()["detail"]) == (400, detail)
        assert_kept_as_unreadable(runtime, answer.json(), raw)
        valid = post(client, {"event_id": "after-1", "machine": "GRD-02", "state": "FAULT"})
    assert valid.status_code == 200 and [e.machine_id for e in exceptions(runtime)] == ["GRD-02"]


@pytest.mark.parametrize(("raw", "detail"), [
    (b'{"event_id": "d2", "x": ' + b"[" * 30_000 + b"]" * 30_000 + b"}", "the body is nested deeper than 64 levels"),
    (b'{"event_id": "n1", "machine": "HOB-01", "state": "FAULT", "note": "a\\u0000b"}', "the body holds a NUL character"),
])
def test_what_the_guard_refuses_never_reaches_the_webhook(runtime: Runtime, raw: bytes, detail: str) -> None:
    """Past 64 levels or with a NUL the app's guard answers 400 before the route: nothing is stored."""
    app: FastAPI = create_app(runtime, extra_routers=build_routers(runtime, runtime.settings))
    with TestClient(app, raise_server_exceptions=False) as client:
        answer = post(client, raw)
        assert (answer.status_code, answer.json()["detail"]) == (400, detail)
        valid = post(client, {"event_id": "after-2", "machine": "GRD-02", "state": "FAULT"})
    assert valid.status_code == 200 and [e.machine_id for e in exceptions(runtime)] == ["GRD-02"]
    with Session(runtime.engine) as session:
        assert all(s.kind != "unreadable" for s in session.exec(select(Signal)))


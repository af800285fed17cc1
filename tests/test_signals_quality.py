"""Quality inspection results end to end: `POST /signals/quality` on the real app behind its sign-in gate
(with real API tokens), the plant file's quality topic on the real Mosquitto, and `mfgos replay`.

A failed lot opens one quality exception routed like a chat report of a quality problem; drift opens
one warning at the 7th result on one side of the centre line, and not before (docs/signals.md).
"""

from __future__ import annotations

import asyncio
import json
import math
import os
import signal
import subprocess
import sys
from collections.abc import Iterator
from datetime import datetime
from pathlib import Path
from typing import Any

import httpx
import paho.mqtt.client as paho
import pytest
from fastapi.testclient import TestClient
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlalchemy.engine import Engine
from sqlmodel import Session, select

from bot.channels.base import CaptureChannel
from mfgos.config import Settings
from mfgos.replay import replay
from mfgos.runtime import Runtime
from mfgos.web import create_app
from models import Notification, PlantException, Signal, TimelineEvent, make_engine
from models.plant_file import check
from models.quality import QualityChart
from routing.clock import SimulatedClock
from signals.base import Incoming
from signals.decoding import Unreadable, storable_problem
from signals.mapping import SignalMap
from signals.quality import MAX_BODY, QualityResult, read_bytes, read_result
from signals.registry import build_routers
from tests import test_signals_mqtt as mqtt_tests
from tests.test_signals_mqtt import make_source, publish, running, until

PLANT = Path(__file__).parent / "data" / "pune_plant.yaml"
SCENARIOS = Path(__file__).parent / "scenarios"
START = datetime.fromisoformat("2026-11-25T10:00:00+05:30")  # shift a: ana (quality) and sara are on

# A failed lot on the gear grinder: WO-1050 feeds SO-7001.
broker, unique = mqtt_tests.broker, mqtt_tests.unique  # the MQTT tests' fixtures: the broker, a name per test

FAILED = {"lot": "IL-4711", "characteristic": "tooth thickness", "result": "fail", "value": 2.557, "lower": 2.45,
          "upper": 2.55, "nominal": 2.5, "unit": "mm", "inspected": 50, "rejected": 6, "material": "FRG-20MNCR5",
          "work_order": "WO-1050", "machine": "GRD-02"}


@pytest.fixture
def runtime(database_url: str) -> Iterator[Runtime]:
    config = Settings(_env_file=None, database_url=database_url, plant_file=PLANT)  # type: ignore[call-arg]
    rt = Runtime(config, clock=SimulatedClock(START),
                 channels={n: CaptureChannel(n) for n in ("console", "slack", "whatsapp", "telegram")})
    yield rt
    asyncio.run(rt.aclose())


@pytest.fixture
def app(runtime: Runtime) -> Any:
    return create_app(runtime, extra_routers=build_routers(runtime, runtime.settings))


@pytest.fixture
def inspection(app: Any) -> TestClient:
    """The inspection system: a client holding an API token of scope `signals`."""
    secret = app.state.auth.create_token("inspection", "signals", None)
    return TestClient(app, headers={"Authorization": f"Bearer {secret}"})


def signals(runtime: Runtime) -> list[Signal]:
    with Session(runtime.engine) as session:
        return list(session.exec(select(Signal).order_by(Signal.id)))


def exceptions(runtime: Runtime) -> list[PlantException]:
    return exceptions_in(runtime.engine)


def exceptions_in(engine: Engine) -> list[PlantException]:
    with Session(engine) as session:
        return list(session.exec(select(PlantException).order_by(PlantException.id)))


def timeline(runtime: Runtime, exc: PlantException, kind: str) -> list[TimelineEvent]:
    with Session(runtime.engine) as session:
        return list(session.exec(select(TimelineEvent).where(TimelineEvent.exception_id == exc.id,
                                                             TimelineEvent.kind == kind).order_by(TimelineEvent.id)))


def pages(runtime: Runtime) -> list[tuple[str, str | None, str]]:
    with Session(runtime.engine) as session:
        return [(n.person_id, n.role, n.kind) for n in session.exec(select(Notification).order_by(Notification.id))]


def point(lot: int, value: float, **extra: Any) -> dict[str, Any]:
    """One passing result of the ground tooth thickness (nominal 2.500 mm, limits 2.450 to 2.550)."""
    return {"lot": f"IL-{lot:04d}", "characteristic": "tooth thickness", "value": value, "lower": 2.45,
            "upper": 2.55, "nominal": 2.5, "unit": "mm", "machine": "GRD-02", **extra}


# --- the endpoint: who may call it, and what it refuses ---------------------------------------------


def test_only_a_signals_token_may_send_results(app: Any, runtime: Runtime, inspection: TestClient) -> None:
    auth = app.state.auth
    reader = TestClient(app, headers={"Authorization": f"Bearer {auth.create_token('board', 'read', None)}"})
    actor = TestClient(app, headers={"Authorization": f"Bearer {auth.create_token('ana-app', 'act', 'ana')}"})
    assert TestClient(app).post("/signals/quality", json=FAILED).status_code == 401
    forged = TestClient(app, headers={"Authorization": "Bearer mfgos_" + "0" * 43})
    assert forged.post("/signals/quality", json=FAILED).status_code == 401
    assert reader.post("/signals/quality", json=FAILED).status_code == 403
    assert actor.post("/signals/quality", json=FAILED).status_code == 403
    assert signals(runtime) == [] and exceptions(runtime) == [], "a refused call stores nothing"
    answer = inspection.post("/signals/quality", json=FAILED)
    assert answer.status_code == 200, answer.text
    assert answer.json() == {"signal_id": 1, "duplicate": False, "stored": True}


def test_an_oversized_body_is_refused_before_it_is_read(runtime: Runtime, inspection: TestClient) -> None:
    big = json.dumps({**FAILED, "note": "x" * MAX_BODY}).encode()
    assert inspection.post("/signals/quality", content=big,
                           headers={"Content-Type": "application/json"}).status_code == 413

    def chunks() -> Iterator[bytes]:  # no Content-Length: refused while it streams in
        yield big[: MAX_BODY // 2]
        yield big[MAX_BODY // 2:]

    assert inspection.post("/signals/quality", content=chunks()).status_code == 413
    assert signals(runtime) == []


@pytest.mark.parametrize(("body", "status", "reason"), [
    (b"lot IL-1 failed", 400, "not JSON"),
    (b"[" * 40 + b"]" * 40, 400, "nested deeper"),
    (b'{"lot": "IL-1", "characteristic": "d", "result": "fail", "value": 1e999}', 400, "not a number JSON allows"),
    (b'["IL-1", "fail"]', 422, "expected a JSON object"),
    (b'{"characteristic": "bore", "result": "fail"}', 422, "lot: Field required"),
    (b'{"lot": "IL-1", "characteristic": "bore"}', 422, "send 'result'"),
    (b'{"lot": "IL-1", "characteristic": "bore", "result": "maybe"}', 422, "unknown result 'maybe'"),
    (b'{"lot": "IL-1", "characteristic": "bore", "result": "pass", "lower": 2, "upper": 1}', 422, "is above"),
    (b'{"lot": "IL-1", "characteristic": "bore", "result": "fail", "inspected": 5, "rejected": 9}', 422,
     "9 rejected of 5"),
    (b'{"lot": "IL-1", "characteristic": "bore", "result": "fail", "value": "25.1"}', 422, "value"),
    (b'{"lot": {"id": 1}, "characteristic": "bore", "result": "fail"}', 422, "lot"),
])
def test_junk_is_answered_4xx_kept_unreadable_and_the_next_result_flows(
        runtime: Runtime, inspection: TestClient, body: bytes, status: int, reason: str) -> None:
    answer = inspection.post("/signals/quality", content=body, headers={"Content-Type": "application/json"})
    assert answer.status_code == status, answer.text
    assert reason in answer.json()["detail"]
    again = inspection.post("/signals/quality", content=body, headers={"Content-Type": "application/json"})
    assert again.json()["duplicate"] is True, "the same bytes are kept once"
    assert [(s.kind, s.source) for s in signals(runtime)] == [("unreadable", "quality")]
    assert exceptions(runtime) == []
    good = inspection.post("/signals/quality", json=FAILED)
    assert good.status_code == 200, good.text
    assert len(exceptions(runtime)) == 1


def test_a_result_naming_an_unknown_machine_is_stored_with_an_error(runtime: Runtime,
                                                                  inspection: TestClient) -> None:
    answer = inspection.post("/signals/quality", json={**FAILED, "machine": "GRD-99"})
    assert answer.status_code == 422
    assert answer.json()["detail"] == "unknown machine 'GRD-99' in plant pune-1" and answer.json()["stored"]
    [signal] = signals(runtime)
    assert (signal.kind, signal.processed_at is not None) == ("quality", True)
    assert exceptions(runtime) == []


# --- a failed lot ------------------------------------------------------------------------------------


def test_a_failed_lot_opens_one_quality_exception_routed_like_a_chat_report(
        runtime: Runtime, inspection: TestClient) -> None:
    answer = inspection.post("/signals/quality", json=FAILED)
    assert answer.status_code == 200, answer.text
    [exc] = exceptions(runtime)
    assert (exc.type, exc.severity, exc.machine_id, exc.material_id, exc.approver_role) == (
        "quality", "high", "GRD-02", "FRG-20MNCR5", "quality")
    assert exc.work_orders == ["WO-1050"] and exc.customer_orders_at_risk == ["SO-7001"]
    assert "IL-4711" in exc.summary and "6 of 50 rejected" in exc.summary
    # The plant's rule for quality, as for ravi's chat report in tests/scenarios/quality_hold.yaml.
    assert pages(runtime) == [("ana", "quality", "alert"), ("deepa", "planner", "alert"),
                              ("john", "customer_service", "alert")]
    [result] = timeline(runtime, exc, "quality_result")
    assert {k: result.data[k] for k in FAILED} == FAILED
    assert result.data["signal_id"] == 1
    [signal] = signals(runtime)
    assert (signal.kind, signal.source, signal.error) == ("quality", "quality", None)
    assert signal.source_key.startswith("quality:lot:IL-4711#")

    # The same result again (a retry): stored once, applied once.
    again = inspection.post("/signals/quality", json=FAILED)
    assert again.json() == {"signal_id": 1, "duplicate": True, "stored": True}
    # Another characteristic of the same lot fails: it joins, and nobody is paged again.
    runout = {**FAILED, "characteristic": "flank runout", "value": 0.031, "upper": 0.025}
    del runout["lower"], runout["nominal"]
    assert inspection.post("/signals/quality", json=runout).status_code == 200
    assert [e.id for e in exceptions(runtime)] == [exc.id]
    assert [r.data["characteristic"] for r in timeline(runtime, exc, "quality_result")] == [
        "tooth thickness", "flank runout"]
    assert len(pages(runtime)) == 3


def test_a_second_failed_lot_on_the_machine_joins_and_tells_the_people_paged(
        runtime: Runtime, inspection: TestClient) -> None:
    inspection.post("/signals/quality", json=FAILED)
    second = {**FAILED, "lot": "IL-4712", "id": "QM-2", "result": "NOK"}
    assert inspection.post("/signals/quality", json=second).status_code == 200
    [exc] = exceptions(runtime)
    assert [r.data["lot"] for r in timeline(runtime, exc, "quality_result")] == ["IL-4711", "IL-4712"]
    notes = [(who, kind) for who, _, kind in pages(runtime) if kind == "note"]
    assert notes == [("ana", "note"), ("deepa", "note"), ("john", "note")]
    # An explicit id is the key: the same id is the same result, whatever the body says.
    assert inspection.post("/signals/quality", json={**second, "lot": "IL-9999"}).json()["duplicate"] is True


def test_a_passing_result_opens_nothing(runtime: Runtime, inspection: TestClient) -> None:
    assert inspection.post("/signals/quality", json={**FAILED, "result": "pass", "value": 2.51,
                                                     "rejected": 0}).status_code == 200
    without_result = {k: v for k, v in FAILED.items() if k != "result"}  # 2.557 > 2.55: failed by its limits
    assert inspection.post("/signals/quality", json={**without_result, "value": 2.52, "lot": "IL-1"}).status_code == 200
    assert exceptions(runtime) == []
    assert inspection.post("/signals/quality", json={**without_result, "lot": "IL-2"}).status_code == 200
    [exc] = exceptions(runtime)
    assert timeline(runtime, exc, "quality_result")[0].data["result"] == "fail"


# --- drift ---------------------------------------------------------------------------------------------


def test_drift_opens_one_warning_at_the_seventh_point_and_not_before(runtime: Runtime,
                                                                      inspection: TestClient) -> None:
    above = [2.512, 2.518, 2.509, 2.521, 2.515, 2.526, 2.511, 2.52, 2.514]  # in tolerance, above 2.500
    for lot, value in enumerate(above[:6], start=1):
        assert inspection.post("/signals/quality", json=point(lot, value)).status_code == 200
    assert exceptions(runtime) == [], "six in a row is not yet drift"
    inspection.post("/signals/quality", json=point(7, above[6]))
    [warning] = exceptions(runtime)
    assert (warning.type, warning.severity, warning.machine_id) == ("quality", "low", "GRD-02")
    assert "7 results in a row above the centre line 2.5 mm" in warning.summary
    assert [(who, role) for who, role, kind in pages(runtime) if kind == "alert"] == [
        ("ana", "quality"), ("deepa", "planner"), ("john", "customer_service")]  # WO-1050 runs on GRD-02
    for lot, value in enumerate(above[7:], start=8):
        inspection.post("/signals/quality", json=point(lot, value))
    [drift] = timeline(runtime, warning, "quality_drift")
    assert {k: drift.data[k] for k in ("rule", "count", "side", "centre", "lot")} == {
        "rule": "run", "count": 7, "side": "above", "centre": 2.5, "lot": "IL-0007"}
    assert len(exceptions(runtime)) == 1, "one warning per run, not one per further point"

    # A point below the centre line ends the run; seven below start a new one, which warns on the
    # open exception of the machine instead of opening a second.
    below = [2.49, 2.488, 2.493, 2.485, 2.491, 2.487, 2.492]
    for lot, value in enumerate(below, start=20):
        inspection.post("/signals/quality", json=point(lot, value))
    assert len(exceptions(runtime)) == 1
    assert [(d.data["side"], d.data["count"]) for d in timeline(runtime, warning, "quality_drift")] == [
        ("above", 7), ("below", 7)]


def test_a_point_on_the_centre_line_resets_the_run_and_the_mid_of_the_limits_is_the_centre(
        runtime: Runtime, inspection: TestClient) -> None:
    """Without a nominal the centre line is the middle of the limits (2.500 here)."""
    values = [2.51, 2.52, 2.513, 2.518, 2.511, 2.516, 2.5, 2.51, 2.52, 2.513, 2.518, 2.511, 2.516]
    for lot, value in enumerate(values, start=1):
        result = point(lot, value)
        del result["nominal"]
        inspection.post("/signals/quality", json=result)
    assert exceptions(runtime) == [], "six, the centre, six: no run of seven"
    inspection.post("/signals/quality", json={**point(99, 2.514), "nominal": None})
    [warning] = exceptions(runtime)
    assert "centre line 2.5 mm" in warning.summary


def test_seven_results_rising_open_a_trend_warning(runtime: Runtime, inspection: TestClient) -> None:
    rising = [2.47, 2.475, 2.48, 2.49, 2.505, 2.51, 2.52]  # across the centre line: no run, but a trend
    for lot, value in enumerate(rising, start=1):
        inspection.post("/signals/quality", json=point(lot, value))
        assert len(exceptions(runtime)) == (1 if lot == 7 else 0), f"after result {lot}"
    [warning] = exceptions(runtime)
    [drift] = timeline(runtime, warning, "quality_drift")
    assert (drift.data["rule"], drift.data["count"]) == ("trend", 7)
    assert "7 results in a row rising" in warning.summary


# --- MQTT ----------------------------------------------------------------------------------------------


def test_results_on_the_quality_topic_and_a_bad_payload_does_not_stop_the_next(broker: str, runtime: Runtime,
                                                                               unique: str) -> None:
    topic = f"plants/{unique}/quality"
    source = make_source(broker, unique, signal_map=SignalMap(plant_aliases=frozenset({unique}),
                                                              quality_topics=(topic,)))
    assert topic in source.subscriptions()

    async def body() -> None:
        await publish(topic, b"\xff\xfe not json")
        await publish(topic, {"lot": "IL-1", "characteristic": "bore"})  # no result, no value
        await publish(topic, FAILED)
        await until(lambda: len(exceptions(runtime)) == 1, "the failed lot's exception")
        await publish(topic, FAILED)  # a redelivery, or the same result sent again: stored once
        await publish(topic, point(2, 2.51))
        await until(lambda: len(signals(runtime)) == 4 and all(s.processed_at for s in signals(runtime)),
                    "every message stored and processed")

    asyncio.run(running(source, runtime, body))
    stored = signals(runtime)
    assert [s.kind for s in stored] == ["unreadable", "unreadable", "quality", "quality"]
    assert "unreadable quality result on" in (stored[0].error or "") and "not JSON" in (stored[0].error or "")
    assert "send 'result'" in (stored[1].error or "")
    assert stored[2].payload["topic"] == topic and stored[2].source == "mqtt"
    assert stored[2].source_key.startswith("quality:lot:IL-4711#"), "the same key as POST /signals/quality"
    [exc] = exceptions(runtime)
    assert (exc.type, exc.machine_id, exc.severity) == ("quality", "GRD-02", "high")
    assert source.counts["unreadable"] == 2


# --- the plant file ------------------------------------------------------------------------------------


@pytest.mark.parametrize(("section", "problem"), [
    ('{topics: ["plants/pune-1/quality"], run: 8, trend: 0}', None),
    ('{topics: ["plants/#"]}', "overlaps plants/+/+/state (machine states)"),
    ('{topics: ["spBv1.0/pune/#"]}', "overlaps spBv1.0/# (Sparkplug B)"),
    ('{topics: ["plants/pune-1/q+"]}', "'+' must be a whole level"),
    ("{run: 2}", "must be 0 (off) or 3 to 50 results, got 2"),
    ('{topics: ["quality/#"]}\n  topics: {"quality/grinder": GRD-02}', "overlaps the machine state topic"),
])
def test_check_plant_validates_the_quality_section(tmp_path: Path, section: str, problem: str | None) -> None:
    plant = tmp_path / "plant.yaml"
    plant.write_text(PLANT.read_text(encoding="utf-8") + f"signals:\n  quality: {section}\n", encoding="utf-8")
    found = [str(p) for p in check(plant)]
    if problem is None:
        assert found == []
    else:
        assert len(found) == 1 and problem in found[0], found


def test_the_plant_file_sets_the_run_length(tmp_path: Path, database_url: str) -> None:
    plant = tmp_path / "plant.yaml"
    plant.write_text(PLANT.read_text(encoding="utf-8") + "signals:\n  quality: {run: 3, trend: 0}\n",
                     encoding="utf-8")
    config = Settings(_env_file=None, database_url=database_url, plant_file=plant)  # type: ignore[call-arg]
    rt = Runtime(config, clock=SimulatedClock(START), channels={"console": CaptureChannel("console")})
    try:
        client_app = create_app(rt, extra_routers=build_routers(rt, rt.settings))
        client = TestClient(client_app, headers={
            "Authorization": f"Bearer {client_app.state.auth.create_token('qs', 'signals', None)}"})
        for lot, value in enumerate([2.51, 2.52], start=1):
            client.post("/signals/quality", json=point(lot, value))
        assert exceptions(rt) == []
        client.post("/signals/quality", json=point(3, 2.53))
        [warning] = exceptions(rt)
        assert "3 results in a row above" in warning.summary
    finally:
        asyncio.run(rt.aclose())


# --- replay --------------------------------------------------------------------------------------------


def test_replay_scenario_drift_then_failed_lots(database_url: str) -> None:
    result = replay(SCENARIOS / "quality_inspection.yaml", database_url=database_url)
    grinder, hobber = result["exceptions"]
    assert (grinder["type"], grinder["machine"], grinder["severity"]) == ("quality", "GRD-02", "high")
    assert grinder["opened_at"] == "2026-11-25T10:06:00+05:30", "the 7th result above the nominal, all in tolerance"
    assert [t["kind"] for t in grinder["timeline"] if t["kind"].startswith("quality")] == [
        "quality_drift", "quality_result", "quality_result"]
    alerts = {(n["to"], n["exception"]) for n in result["notifications"] if n["kind"] == "alert"}
    assert alerts == {("ana", 1), ("deepa", 1), ("john", 1), ("ana", 2), ("deepa", 2), ("john", 2)}
    notes = [(n["to"], n["elapsed_s"]) for n in result["notifications"] if n["kind"] == "note"]
    assert notes == [("ana", 600.0), ("deepa", 600.0), ("john", 600.0)], "lot IL-0808's failure, once"
    assert (hobber["machine"], hobber["material"], hobber["work_orders"][0]) == ("HOB-01", "FRG-20MNCR5", "WO-1042")
    [facts] = [t["data"] for t in hobber["timeline"] if t["kind"] == "quality_result"]
    assert {k: facts[k] for k in ("lot", "characteristic", "value", "lower", "upper", "inspected", "rejected")} == {
        "lot": "IL-0911", "characteristic": "bore diameter", "value": 40.031, "lower": 40.0, "upper": 40.025,
        "inspected": 20, "rejected": 3}


# --- the parser, fed anything --------------------------------------------------------------------------

json_leaf = (st.none() | st.booleans() | st.integers() | st.integers(min_value=2**63) | st.floats()
             | st.text(max_size=30) | st.just("\x00") | st.just("\ud800") | st.sampled_from(["pass", "NOK", "i.O."]))
json_value = st.recursive(json_leaf, lambda inner: st.lists(inner, max_size=3)
                          | st.dictionaries(st.text(max_size=8), inner, max_size=3), max_leaves=10)
FIELDS = ("id", "lot", "characteristic", "result", "value", "lower", "upper", "nominal", "unit", "inspected",
          "rejected", "material", "work_order", "machine", "ts")
results = st.dictionaries(st.sampled_from(FIELDS), json_value, max_size=len(FIELDS)) | json_value


@settings(max_examples=400, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(results)
def test_the_parser_is_total_and_what_it_accepts_can_be_stored(value: Any) -> None:
    found = read_result(value)
    assert isinstance(found, QualityResult | Unreadable)
    if isinstance(found, QualityResult):
        assert storable_problem(found.payload()) is None
        assert found.payload()["result"] in ("pass", "fail") and found.source_key.startswith("quality:")
        for number in (found.value, found.lower, found.upper, found.nominal):
            assert number is None or (not isinstance(number, bool) and math.isfinite(number))
        found.inspection()  # the typed event routing/quality.py takes


@settings(max_examples=300, deadline=None)
@given(st.binary(max_size=300) | st.builds(lambda v: json.dumps(v, allow_nan=True).encode(), results))
def test_raw_bytes_never_raise(data: bytes) -> None:
    assert isinstance(read_bytes(data), QualityResult | Unreadable)


# --- black box: one real `mfgos serve` ------------------------------------------------------------------


def test_mfgos_serve_takes_results_by_http_and_mqtt(tmp_path: Path, broker: str, unique: str) -> None:
    """`mfgos serve` as deployed, probed from outside: a token made by `mfgos token create`, real HTTP,
    and the plant file's quality topic on the real Mosquitto (a bad payload first, then a failed lot)."""
    plant = tmp_path / "plant.yaml"
    plant.write_text(PLANT.read_text(encoding="utf-8") + f"signals:\n  plant_aliases: [{unique}]\n"
                     f"  quality: {{topics: [plants/{unique}/quality]}}\n", encoding="utf-8")
    database = f"sqlite:///{tmp_path / 'serve.db'}"
    client_id = f"mfgos-test-{unique}-serve"
    env = {k: v for k, v in os.environ.items() if not k.startswith("MFGOS_")} | {
        "PYTHONUNBUFFERED": "1", "MFGOS_DATABASE_URL": database, "MFGOS_PLANT_FILE": str(plant),
        "MFGOS_ATTACHMENTS_DIR": str(tmp_path / "attachments"), "MFGOS_MQTT_URL": broker,
        "MFGOS_MQTT_CLIENT_ID": client_id}
    made = subprocess.run([sys.executable, "-m", "mfgos.cli", "token", "create", "qms", "--scope", "signals"],
                          env=env, capture_output=True, text=True, timeout=120)
    assert made.returncode == 0, made.stderr
    token = made.stdout.strip()
    process = subprocess.Popen([sys.executable, "-m", "mfgos.cli", "serve", "--host", "127.0.0.1", "--port", "0"],
                               cwd=tmp_path, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    assert process.stdout is not None
    engine = make_engine(database)
    try:
        url = ""
        for line in process.stdout:
            if "mfgos console:" in line:
                url = line.split("mfgos console:", 1)[1].strip().rstrip("/")
                break
        assert url, "mfgos serve did not start"
        with httpx.Client(base_url=url, timeout=30) as http:
            assert http.post("/signals/quality", json=FAILED).status_code == 401
            assert http.post("/signals/quality", json=FAILED,
                             headers={"Authorization": "Bearer mfgos_nope"}).status_code == 401
            ok = http.post("/signals/quality", json={**FAILED, "result": "pass"},
                           headers={"Authorization": f"Bearer {token}"})
            assert ok.status_code == 200, ok.text
            junk = http.post("/signals/quality", content=b"{", headers={"Authorization": f"Bearer {token}"})
            assert junk.status_code == 400

        def stored() -> list[Signal]:
            with Session(engine) as session:
                return list(session.exec(select(Signal).order_by(Signal.id)))

        async def mqtt() -> None:
            topic = f"plants/{unique}/quality"
            await until(lambda: bool(process.poll() is None and stored()), "serve's store")
            marker = 0
            while not any(s.payload.get("topic") == topic for s in stored()):  # until serve has subscribed
                marker += 1
                await publish(topic, b"not json " + str(marker).encode())
                await asyncio.sleep(0.2)
                assert marker < 100, "serve never took a quality message"
            await publish(topic, {**FAILED, "lot": "IL-5000"})
            await until(lambda: bool(exceptions_in(engine)), "the exception")

        asyncio.run(mqtt())
        [exc] = exceptions_in(engine)
        assert (exc.type, exc.machine_id) == ("quality", "GRD-02") and "IL-5000" in exc.summary
        assert [s.kind for s in stored()][:2] == ["quality", "unreadable"]
    finally:
        process.send_signal(signal.SIGINT)
        try:
            process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(timeout=10)
        engine.dispose()
        cleanup = paho.Client(paho.CallbackAPIVersion.VERSION2, client_id=client_id, protocol=paho.MQTTv5)
        cleanup.connect("127.0.0.1", 1883, clean_start=True)
        cleanup.disconnect()
    output = process.stdout.read() if process.stdout else ""
    assert "Traceback" not in output, output


# --- many at once ----------------------------------------------------------------------------------------


def test_a_batch_and_two_replicas_at_once_open_one_exception_and_count_every_result(database_url: str) -> None:
    """Results stored in one batch (as the MQTT source stores them) and processed by two runtimes at the
    same moment (two replicas): one exception, each result counted once on the chart, none failed."""
    config = Settings(_env_file=None, database_url=database_url, plant_file=PLANT)  # type: ignore[call-arg]
    first, second = (Runtime(config, clock=SimulatedClock(START), channels={"console": CaptureChannel("console")})
                     for _ in range(2))
    try:
        results = [QualityResult.model_validate({**FAILED, "lot": f"IL-{n}", "value": 2.55 + n / 1000})
                   for n in range(1, 7)]
        stored = first.receive_many("mqtt", [Incoming(r.source_key, r.payload(), "quality") for r in results])
        ids = [s.signal_id for s in stored]

        async def both() -> None:
            await asyncio.gather(asyncio.to_thread(first.process_signals, ids[0::2]),
                                 asyncio.to_thread(second.process_signals, ids[1::2]))

        asyncio.run(both())
        assert [(s.processed_at is not None, s.error) for s in signals(first)] == [(True, None)] * 6
        [exc] = exceptions(first)
        assert sorted(r.data["lot"] for r in timeline(first, exc, "quality_result")) == [f"IL-{n}" for n in range(1, 7)]
        with Session(first.engine) as session:
            [chart] = session.exec(select(QualityChart)).all()
        assert (chart.machine_id, chart.results, chart.side, chart.run) == ("GRD-02", 6, 1, 6)
    finally:
        for rt in (first, second):
            asyncio.run(rt.aclose())

"""Property tests: generated payloads to every decoder; nothing escapes, the result is a value or a reason.

The decoders are called directly (no safety net around them), so an exception here is a
decoder that could stop the intake. Whatever they return must be storable as it is: a
machine signal whose payload the database keeps, or an `unreadable` one with a reason.
"""

from __future__ import annotations

import asyncio
import base64
import json
import math
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from asyncua import ua
from fastapi.testclient import TestClient
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st
from pydantic import SecretStr
from sqlmodel import Session

from bot.channels.base import CaptureChannel
from mfgos.config import Settings
from mfgos.runtime import Runtime
from mfgos.web import create_app
from models import Signal
from routing.clock import SimulatedClock
from signals import sparkplug
from signals.decoding import MAX_DEPTH, RAW_KEPT, Unreadable, json_object, storable_problem
from signals.machine_state import state_name
from signals.mapping import SignalMap
from signals.mqtt import MqttSource
from signals.opcua import Change, OpcUaSource, state_value
from signals.registry import build_routers
from signals.webhooks import SIGNATURE_HEADER, sign
from tests.test_signals_intake import _field
from tests.test_signals_sparkplug import spb_payload

PLANT = Path(__file__).parent / "data" / "pune_plant.yaml"
SECRET = "property-secret"

# JSON values of every kind, including what JSON text can say but a database cannot keep.
scalars = st.one_of(st.none(), st.booleans(), st.integers(min_value=-(2**70), max_value=2**70),
                    st.floats(allow_nan=True, allow_infinity=True), st.text(max_size=30))
json_values = st.recursive(scalars, lambda inner: st.lists(inner, max_size=4)
                           | st.dictionaries(st.text(max_size=10), inner, max_size=4), max_leaves=25)
state_keys = st.sampled_from(["state", "status", "ts", "reason", "machine", "event", "event_id", "work_order"])
state_objects = st.dictionaries(st.one_of(state_keys, st.text(max_size=8)), json_values, max_size=6)


def nested(depth: int) -> bytes:
    return b'{"state": ' + b"[" * depth + b"1" + b"]" * depth + b"}"


json_payloads = st.one_of(
    st.binary(max_size=300),
    state_objects.map(lambda v: json.dumps(v, allow_nan=True).encode()),
    json_values.map(lambda v: json.dumps(v, allow_nan=True).encode()),
    st.integers(min_value=0, max_value=40_000).map(nested),
    st.text(max_size=100).map(lambda t: t.encode("utf-8", "surrogatepass")),
)


def source() -> MqttSource:
    return MqttSource("mqtt://127.0.0.1", client_id="property", signal_map=SignalMap(plant_id="p"),
                      sparkplug_groups=("g",))


def check_signals(incoming: list[Any], data: bytes) -> None:
    """Every signal a message gives can be stored as it is; an unreadable one says why and keeps the bytes."""
    for item in incoming:
        json.dumps(item.payload, allow_nan=False).encode("utf-8")  # what the JSON column will do
        assert storable_problem(item.payload) is None
        if item.kind == "unreadable":
            assert item.payload["reason"]
            assert base64.b64decode(item.payload["raw_base64"]) == data[:RAW_KEPT]
        else:
            assert item.kind == "machine" and "reason" not in item.payload


# --- JSON states over MQTT -------------------------------------------------------------------


@given(data=json_payloads)
@example(data=nested(30_000))
@example(data=b'{"state": "FAULT", "t": 1e999}')
@example(data=b'{"state": "\\ud800"}')
@settings(max_examples=300, deadline=None)
def test_json_state_messages_decode_or_say_why(data: bytes) -> None:
    incoming, rebirth = source().read("plants/p/HOB-01/state", data, 1.0)
    assert rebirth is None and len(incoming) == 1
    check_signals(incoming, data)
    body = json_object(data, limit=64 * 1024)
    assert isinstance(body, Unreadable) == (incoming[0].kind == "unreadable")


@given(depth=st.integers(min_value=0, max_value=100))
def test_nesting_is_refused_exactly_past_the_limit(depth: int) -> None:
    body = json_object(nested(depth), limit=64 * 1024)
    assert isinstance(body, Unreadable) == (depth + 1 > MAX_DEPTH)


# --- Sparkplug B -----------------------------------------------------------------------------

VALUE_FIELDS = {10: 0, 11: 0, 12: 5, 13: 1, 14: 0, 15: 2, 16: 2}


@st.composite
def metrics(draw: st.DrawFn) -> bytes:
    """One metric with any datatype and any value field, in the right or a wrong wire type."""
    out = _field(1, 2, draw(st.sampled_from([b"Machine/State", b"Spindle/Temp", b"status", b"\xff\xfe"])))
    if draw(st.booleans()):
        out += _field(2, 0, draw(st.integers(min_value=0, max_value=2**64 - 1)))
    if draw(st.booleans()):
        out += _field(4, 0, draw(st.integers(min_value=0, max_value=40)))
    number = draw(st.sampled_from(sorted(VALUE_FIELDS)))
    wire = VALUE_FIELDS[number] if draw(st.booleans()) else draw(st.sampled_from([0, 1, 2, 5]))
    if wire == 0:
        value: int | bytes = draw(st.integers(min_value=0, max_value=2**64 - 1))
    elif wire in (1, 5):
        value = draw(st.binary(min_size=8 if wire == 1 else 4, max_size=8 if wire == 1 else 4))
    else:
        value = draw(st.binary(max_size=20))
    return out + _field(number, wire, value)


hand_made = st.lists(metrics(), max_size=5).map(lambda ms: b"".join(_field(2, 2, m) for m in ms)
                                                + _field(3, 0, 1))
valid = st.builds(lambda state, seq: spb_payload([
    {"name": "Machine/State", "alias": 1, "datatype": 12, "string_value": state},
    {"name": "Spindle/Temp", "alias": 2, "datatype": 10, "double_value": 41.5},
    {"name": "PackML/Status/StateCurrent", "alias": 3, "datatype": 3, "int_value": 6}], seq=seq),
    st.text(max_size=20), st.integers(min_value=0, max_value=255))


@st.composite
def mutated(draw: st.DrawFn) -> bytes:
    """A valid payload with bytes flipped, cut off or inserted."""
    data = bytearray(draw(valid))
    for _ in range(draw(st.integers(min_value=1, max_value=4))):
        where = draw(st.integers(min_value=0, max_value=max(len(data) - 1, 0)))
        how = draw(st.sampled_from(["flip", "cut", "insert"]))
        if how == "flip" and data:
            data[where] = draw(st.integers(min_value=0, max_value=255))
        elif how == "cut":
            del data[where:]
        else:
            data[where:where] = draw(st.binary(min_size=1, max_size=6))
    return bytes(data)


sparkplug_payloads = st.one_of(st.binary(max_size=400), hand_made, mutated(), valid)


@given(data=sparkplug_payloads)
@example(data=_field(2, 2, _field(1, 2, b"t") + _field(4, 0, 9) + _field(12, 0, 41)))  # float as a varint
@example(data=_field(2, 2, _field(1, 2, b"s") + _field(4, 0, 12) + _field(10, 0, 7)))  # String with an int
@settings(max_examples=400, deadline=None)
def test_sparkplug_payloads_decode_or_say_why(data: bytes) -> None:
    decoded = sparkplug.read_payload(data)
    assert isinstance(decoded, sparkplug.Payload | str)
    if isinstance(decoded, str):
        assert decoded
    else:
        for metric in decoded.metrics:
            allowed = sparkplug.ALLOWED_FIELDS.get(metric.datatype or 0)
            assert metric.value is None or allowed is None or _field_of(metric.value, metric.datatype)


def _field_of(value: Any, datatype: int | None) -> bool:
    """A decoded value has the Python type its datatype promises."""
    expected = {9: float, 10: float, 11: (bool, int), 12: str, 14: str, 15: str, 17: str, 18: str}.get(datatype or 0)
    return expected is None or isinstance(value, expected) or (datatype in range(1, 9) and isinstance(value, int))


@given(messages=st.lists(st.tuples(st.sampled_from(["NBIRTH", "DBIRTH", "NDATA", "DDATA", "DDEATH", "NDEATH"]),
                                   sparkplug_payloads), max_size=6))
@settings(max_examples=150, deadline=None)
def test_a_sparkplug_session_of_hostile_messages_gives_storable_signals(messages: list[tuple[str, bytes]]) -> None:
    reader = source()
    for kind, data in messages:
        device = "/HOB-01" if kind.startswith("D") else ""
        incoming, _ = reader.read(f"spBv1.0/g/{kind}/gw{device}", data, 1.0)
        check_signals(incoming, data)


# --- OPC UA ----------------------------------------------------------------------------------

opcua_values = st.one_of(
    st.none(), st.booleans(), st.integers(min_value=-(2**80), max_value=2**80), st.floats(), st.text(max_size=300),
    st.binary(max_size=20), st.lists(st.integers(), max_size=3), st.datetimes(),
    st.text(max_size=20).map(lambda t: ua.LocalizedText(t)),
    st.binary(max_size=20).map(lambda b: ua.ExtensionObject(ua.NodeId(1, 2), b)),
    st.integers(min_value=0, max_value=100).map(lambda i: ua.NodeId(i, 2)),
    st.text(max_size=5).map(lambda t: ua.QualifiedName(t, 1)),
)


@given(value=opcua_values)
@example(value="²")
@example(value="9" * 5000)
@example(value=float("nan"))
@settings(max_examples=300, deadline=None)
def test_opcua_values_become_a_state_or_a_reason(value: Any) -> None:
    assert isinstance(state_value(value), str | int | float | bool | Unreadable)
    opcua = OpcUaSource("opc.tcp://127.0.0.1:4840", {"HOB-01": "ns=2;s=HOB-01.State"})
    change = Change("ns=2;s=HOB-01.State", value, datetime.now(UTC), None, 1.0)
    kind, payload = opcua.read(change)
    json.dumps(payload, allow_nan=False)
    assert storable_problem(payload) is None
    assert kind == "unreadable" or payload["payload"]["state"] == state_name(payload["payload"]["value"])
    assert kind == "machine" or payload["reason"].startswith("OPC UA value of ns=2;s=HOB-01.State: ")


@given(value=st.one_of(st.text(), st.integers(min_value=-(10**30), max_value=10**30), st.floats(), st.none()))
def test_state_names_are_total(value: Any) -> None:
    assert isinstance(state_name(value), str)


# --- MES webhook -----------------------------------------------------------------------------


@pytest.fixture(scope="module")
def mes(tmp_path_factory: pytest.TempPathFactory) -> Iterator[TestClient]:
    database = tmp_path_factory.mktemp("mes") / "mes.db"
    settings_ = Settings(_env_file=None, database_url=f"sqlite:///{database}", plant_file=PLANT,
                         signals_webhook_secret=SecretStr(SECRET))
    runtime = Runtime(settings_, clock=SimulatedClock(datetime.fromisoformat("2026-11-25T09:00:00+05:30")),
                      channels={"console": CaptureChannel("console")})
    with TestClient(create_app(runtime, extra_routers=build_routers(runtime, settings_)),
                    raise_server_exceptions=False) as client:
        yield client
    asyncio.run(runtime.aclose())


mes_bodies = st.one_of(
    st.binary(max_size=200),
    json_values.map(lambda v: json.dumps(v, allow_nan=True).encode()),
    st.fixed_dictionaries({"event_id": st.one_of(st.text(max_size=12), st.integers(), st.none())},
                          optional={"machine": json_values, "state": json_values, "event": json_values,
                                    "work_order": json_values, "status": json_values, "ts": json_values})
    .map(lambda v: json.dumps(v, allow_nan=True).encode()),
    st.integers(min_value=0, max_value=40_000).map(lambda d: b'{"event_id": "d", "x": ' + b"[" * d + b"]" * d + b"}"),
)


@given(body=mes_bodies)
@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
def test_mes_bodies_are_answered_never_a_500(mes: TestClient, body: bytes) -> None:
    answer = mes.post("/signals/mes", content=body, headers={SIGNATURE_HEADER: sign(SECRET, body),
                                                             "Content-Type": "application/json"})
    assert answer.status_code in (200, 400, 413, 422), answer.text
    reply = answer.json()
    if answer.status_code == 413:  # over 64 KiB: refused before it is read, nothing stored
        return
    if "stored" not in reply:  # the app's guard refused it (a NUL, deep nesting): 400, nothing stored
        assert answer.status_code == 400 and reply["detail"]
        return
    assert reply["stored"] is True and isinstance(reply["signal_id"], int)
    assert answer.status_code == 200 or reply["detail"]
    assert not any(isinstance(v, float) and not math.isfinite(v) for v in reply.values())


# --- through the runtime ---------------------------------------------------------------------


@pytest.fixture(scope="module")
def pune(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Runtime]:
    database = tmp_path_factory.mktemp("pune") / "pune.db"
    runtime = Runtime(Settings(_env_file=None, database_url=f"sqlite:///{database}", plant_file=PLANT),
                      clock=SimulatedClock(datetime.fromisoformat("2026-11-25T09:00:00+05:30")),
                      channels={"console": CaptureChannel("console")})
    yield runtime
    asyncio.run(runtime.aclose())


@given(data=json_payloads)
@example(data=b'{"machine": {"a": 1}, "state": "FAULT"}')
@example(data=b'{"machine": [1], "state": "FAULT"}')
@settings(max_examples=80, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
def test_whatever_a_state_message_holds_processing_says_what_it_did(
        pune: Runtime, data: bytes, caplog: pytest.LogCaptureFixture) -> None:
    """Decoded or not, each message is processed by its handler without an exception escaping it."""
    reader = MqttSource("mqtt://127.0.0.1", client_id="property", signal_map=SignalMap(plant_id="pune-1"))
    (item,), _ = reader.read("plants/pune-1/HOB-01/state", data, 1.0)
    caplog.clear()
    received = pune.receive(source="mqtt", source_key=f"{item.key}:{uuid.uuid4().hex}", kind=item.kind,
                            payload=item.payload)
    assert "processing signal" not in caplog.text  # the runtime's net for handlers that raise
    with Session(pune.engine) as session:
        signal = session.get(Signal, received.signal_id)
        assert signal is not None and signal.processed_at is not None
        assert (signal.error is not None) >= (item.kind == "unreadable")

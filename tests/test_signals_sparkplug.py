"""Sparkplug B: our wire decoder against Google's protobuf encoder, and the host-side session rules.

`spb_payload` builds payloads with the `protobuf` runtime from a descriptor of
`sparkplug_b.proto` (eclipse/tahu, field numbers as published), so the decoder is checked
against an independent encoder; the MQTT tests publish with it too.
"""

from __future__ import annotations

import functools
from typing import Any

import pytest
from google.protobuf import descriptor_pb2, descriptor_pool, message_factory
from hypothesis import given, settings
from hypothesis import strategies as st

from signals import sparkplug
from signals.sparkplug import (
    Payload,
    SparkplugError,
    SparkplugHost,
    Topic,
    decode,
    encode_rebirth,
    parse_topic,
)

_F = descriptor_pb2.FieldDescriptorProto
_METRIC_FIELDS = [  # (name, number, type, in the value oneof)
    ("name", 1, _F.TYPE_STRING, False), ("alias", 2, _F.TYPE_UINT64, False), ("timestamp", 3, _F.TYPE_UINT64, False),
    ("datatype", 4, _F.TYPE_UINT32, False), ("is_historical", 5, _F.TYPE_BOOL, False),
    ("is_transient", 6, _F.TYPE_BOOL, False), ("is_null", 7, _F.TYPE_BOOL, False),
    ("int_value", 10, _F.TYPE_UINT32, True), ("long_value", 11, _F.TYPE_UINT64, True),
    ("float_value", 12, _F.TYPE_FLOAT, True), ("double_value", 13, _F.TYPE_DOUBLE, True),
    ("boolean_value", 14, _F.TYPE_BOOL, True), ("string_value", 15, _F.TYPE_STRING, True),
    ("bytes_value", 16, _F.TYPE_BYTES, True),
]


@functools.cache
def payload_class() -> Any:
    """`org.eclipse.tahu.protobuf.Payload` built at test time (no protoc, no generated module)."""
    proto = descriptor_pb2.FileDescriptorProto(name="mfgos_test_sparkplug_b.proto",
                                               package="org.eclipse.tahu.protobuf", syntax="proto2")
    payload = proto.message_type.add(name="Payload")
    metric = payload.nested_type.add(name="Metric")
    metric.oneof_decl.add(name="value")
    for name, number, kind, in_oneof in _METRIC_FIELDS:
        field = metric.field.add(name=name, number=number, type=kind, label=_F.LABEL_OPTIONAL)
        if in_oneof:
            field.oneof_index = 0
    payload.field.add(name="timestamp", number=1, type=_F.TYPE_UINT64, label=_F.LABEL_OPTIONAL)
    payload.field.add(name="metrics", number=2, type=_F.TYPE_MESSAGE, label=_F.LABEL_REPEATED,
                      type_name=".org.eclipse.tahu.protobuf.Payload.Metric")
    payload.field.add(name="seq", number=3, type=_F.TYPE_UINT64, label=_F.LABEL_OPTIONAL)
    payload.field.add(name="uuid", number=4, type=_F.TYPE_STRING, label=_F.LABEL_OPTIONAL)
    payload.field.add(name="body", number=5, type=_F.TYPE_BYTES, label=_F.LABEL_OPTIONAL)
    pool = descriptor_pool.DescriptorPool()
    pool.Add(proto)
    return message_factory.GetMessageClass(pool.FindMessageTypeByName("org.eclipse.tahu.protobuf.Payload"))


def spb_payload(metrics: list[dict[str, Any]], *, timestamp: int | None = 1_764_000_000_000,
                seq: int | None = 0) -> bytes:
    """A Sparkplug B payload; metrics as dicts of Metric fields, e.g. {"name": "State", "alias": 1,
    "datatype": 12, "string_value": "RUNNING"}."""
    message = payload_class()()
    if timestamp is not None:
        message.timestamp = timestamp
    if seq is not None:
        message.seq = seq
    for fields in metrics:
        metric = message.metrics.add()
        for name, value in fields.items():
            setattr(metric, name, value)
    return message.SerializeToString()


def test_decodes_what_protobuf_encodes() -> None:
    data = spb_payload([
        {"name": "State", "alias": 1, "timestamp": 5, "datatype": 12, "string_value": "FAULT"},
        {"name": "Speed", "alias": 2, "datatype": 10, "double_value": 1450.5},
        {"name": "Temp", "alias": 3, "datatype": 9, "float_value": 0.5},
        {"name": "Count", "alias": 4, "datatype": 8, "long_value": 2**63 + 7},
        {"name": "Door open", "alias": 5, "datatype": 11, "boolean_value": True},
        {"name": "Raw", "alias": 6, "datatype": 17, "bytes_value": b"\x01\xff"},
        {"name": "Missing", "alias": 7, "datatype": 3, "is_null": True},
        {"name": "Old", "alias": 8, "datatype": 12, "is_historical": True, "string_value": "RUNNING"},
    ], timestamp=1_764_000_123_456, seq=255)
    payload = decode(data)
    assert (payload.timestamp, payload.seq) == (1_764_000_123_456, 255)
    values = {m.name: m.value for m in payload.metrics}
    assert values == {"State": "FAULT", "Speed": 1450.5, "Temp": 0.5, "Count": 2**63 + 7, "Door open": True,
                      "Raw": "01ff", "Missing": None, "Old": "RUNNING"}
    assert [m.alias for m in payload.metrics] == list(range(1, 9))
    assert payload.metrics[0].timestamp == 5 and payload.metrics[7].is_historical
    assert payload.metrics[6].is_null


@pytest.mark.parametrize(("datatype", "field", "raw", "value"), [
    (1, "int_value", 255, -1),  # Int8 -1, two's complement in 8 bits
    (1, "int_value", 0xFFFFFFFF, -1),  # Int8 -1 sign-extended by some encoders
    (2, "int_value", 0x8000, -32768),
    (3, "int_value", 0xFFFFFFFE, -2),
    (4, "long_value", 2**64 - 5, -5),
    (7, "int_value", 0xFFFFFFFE, 0xFFFFFFFE),  # UInt32 stays unsigned
    (3, "int_value", 6, 6),
])
def test_signed_integers(datatype: int, field: str, raw: int, value: int) -> None:
    decoded = decode(spb_payload([{"name": "v", "datatype": datatype, field: raw}]))
    assert decoded.metrics[0].value == value


@settings(max_examples=150, deadline=None)
@given(
    timestamp=st.integers(0, 2**64 - 1), seq=st.integers(0, 255),
    metrics=st.lists(st.fixed_dictionaries({
        "name": st.text(max_size=30), "alias": st.integers(0, 2**64 - 1),
        "datatype": st.just(12), "string_value": st.text(max_size=60),
    }), max_size=6),
)
def test_decoder_matches_protobuf_for_any_string_metrics(timestamp: int, seq: int, metrics: list[dict]) -> None:
    payload = decode(spb_payload(metrics, timestamp=timestamp, seq=seq))
    assert (payload.timestamp, payload.seq) == (timestamp, seq)
    assert [(m.name, m.alias, m.value) for m in payload.metrics] == [
        (m["name"], m["alias"], m["string_value"]) for m in metrics]


@pytest.mark.parametrize("data", [b"\x08", b"\x12\x05\x0a\x01", b"\x0b\x00", b"\x08\xff\xff\xff\xff\xff\xff\xff\xff\xff\xff\x01",
                                  b"\x00\x01"])
def test_broken_payloads_are_refused(data: bytes) -> None:
    with pytest.raises(SparkplugError):
        decode(data)


def test_rebirth_request_is_a_valid_ncmd_payload() -> None:
    message = payload_class().FromString(encode_rebirth(1_764_000_000_000))
    assert message.timestamp == 1_764_000_000_000
    (metric,) = message.metrics
    assert (metric.name, metric.datatype, metric.boolean_value) == ("Node Control/Rebirth", 11, True)


@pytest.mark.parametrize(("topic", "parsed"), [
    ("spBv1.0/pune/DDATA/gw-3/HOB-01", Topic("pune", "DDATA", "gw-3", "HOB-01")),
    ("spBv1.0/pune/NDEATH/gw-3", Topic("pune", "NDEATH", "gw-3")),
    ("spBv1.0/STATE/scada-1", None),
    ("spBv1.0/pune/DDATA/gw-3", None),  # a device message needs a device
    ("spBv1.0/pune/NDATA/gw-3/HOB-01", None),
    ("plants/pune-1/HOB-01/state", None),
])
def test_topics(topic: str, parsed: Topic | None) -> None:
    assert parse_topic(topic) == parsed


def _observe(host: SparkplugHost, topic: str, metrics: list[dict[str, Any]]) -> sparkplug.Outcome:
    parsed = parse_topic(topic)
    assert parsed is not None
    return host.observe(parsed, decode(spb_payload(metrics)))


def test_aliases_from_births_name_data_metrics() -> None:
    host = SparkplugHost()
    _observe(host, "spBv1.0/g/NBIRTH/gw", [{"name": "bdSeq", "datatype": 8, "long_value": 1}])
    birth = _observe(host, "spBv1.0/g/DBIRTH/gw/HOB-01", [
        {"name": "PackML/Status/StateCurrent", "alias": 7, "datatype": 3, "int_value": 6},
        {"name": "Admin/StopReason", "alias": 8, "datatype": 12, "string_value": ""},
    ])
    assert [(r.device, r.state) for r in birth.readings] == [("HOB-01", 6)]
    data = _observe(host, "spBv1.0/g/DDATA/gw/HOB-01", [
        {"alias": 7, "datatype": 3, "int_value": 9}, {"alias": 8, "datatype": 12, "string_value": "E-stop"}])
    (reading,) = data.readings
    assert (reading.state, reading.reason, data.rebirth) == (9, "E-stop", False)
    telemetry = _observe(host, "spBv1.0/g/DDATA/gw/HOB-01", [{"alias": 8, "datatype": 12, "string_value": "x"}])
    assert telemetry.readings == [] and not telemetry.rebirth


def test_data_without_a_birth_asks_for_a_rebirth() -> None:
    outcome = _observe(SparkplugHost(), "spBv1.0/g/DDATA/gw/HOB-01", [{"alias": 7, "datatype": 3, "int_value": 9}])
    assert outcome.readings == [] and outcome.rebirth


def test_new_nbirth_forgets_old_aliases() -> None:
    host = SparkplugHost()
    _observe(host, "spBv1.0/g/NBIRTH/gw", [])
    _observe(host, "spBv1.0/g/DBIRTH/gw/HOB-01", [{"name": "State", "alias": 1, "datatype": 12, "string_value": "RUN"}])
    _observe(host, "spBv1.0/g/NBIRTH/gw", [])
    assert _observe(host, "spBv1.0/g/DDATA/gw/HOB-01", [{"alias": 1, "datatype": 12, "string_value": "x"}]).rebirth


def test_ndeath_takes_the_node_and_its_devices_down_unless_stale() -> None:
    host = SparkplugHost()
    _observe(host, "spBv1.0/g/NBIRTH/gw", [{"name": "bdSeq", "datatype": 8, "long_value": 4}])
    _observe(host, "spBv1.0/g/DBIRTH/gw/GRD-02", [])
    _observe(host, "spBv1.0/g/DBIRTH/gw/HOB-01", [])
    _observe(host, "spBv1.0/g/DDEATH/gw/HOB-01", [])
    stale = _observe(host, "spBv1.0/g/NDEATH/gw", [{"name": "bdSeq", "datatype": 8, "long_value": 3}])
    assert stale.readings == [] and "stale" in stale.note
    death = _observe(host, "spBv1.0/g/NDEATH/gw", [{"name": "bdSeq", "datatype": 8, "long_value": 4}])
    assert [(r.device, r.state) for r in death.readings] == [(None, "DOWN"), ("GRD-02", "DOWN")]
    assert host.devices("g", "gw") == []


def test_ddeath_is_down() -> None:
    (reading,) = _observe(SparkplugHost(), "spBv1.0/g/DDEATH/gw/HOB-01", []).readings
    assert (reading.device, reading.state) == ("HOB-01", "DOWN") and "DDEATH" in (reading.reason or "")


def test_empty_payload_decodes_to_nothing() -> None:
    assert decode(b"") == Payload()

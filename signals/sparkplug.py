"""Sparkplug B: topics, payloads read with the protobuf runtime, and the host-side session a consumer keeps.

Payloads are parsed by Google's `protobuf` runtime (its C implementation, upb) against
`signals/sparkplug_b.proto`, the Sparkplug B payload schema (generated module
`signals/sparkplug_b_pb2.py`). It replaced a hand-written wire reader: upb parses a DDATA
of ten metrics in about a microsecond, where the Python reader took about a hundred
(docs/signals.md, "Sparkplug B: the decoder"). What protobuf accepts is then checked against
the schema's rules it does not enforce: a value field sent with another wire type, or a value
field that contradicts the metric's datatype, makes the payload unreadable.

Host-side rules we follow (Sparkplug 3.0):
- metric names come only in births; data messages may carry aliases only, so the aliases
  of each node and device are remembered from NBIRTH/DBIRTH. Data with an alias we never
  saw a birth for asks the edge node to rebirth (`Node Control/Rebirth` in an NCMD).
- DDEATH takes one device down; NDEATH takes the node and every device it announced down,
  unless its `bdSeq` does not match the node's last NBIRTH (a stale Will from an older session).
"""

from __future__ import annotations

import functools
import re
from dataclasses import dataclass, field
from typing import Any

from google.protobuf.message import DecodeError
from google.protobuf.unknown_fields import UnknownFieldSet

from signals import sparkplug_b_pb2 as pb

NAMESPACE = "spBv1.0"
MESSAGE_TYPES = ("NBIRTH", "NDEATH", "NDATA", "NCMD", "DBIRTH", "DDEATH", "DDATA", "DCMD")
REBIRTH_METRIC = "Node Control/Rebirth"
BDSEQ_METRIC = "bdSeq"
# Data types (Payload comment in sparkplug_b.proto)
INT8, INT16, INT32, INT64 = 1, 2, 3, 4
BOOLEAN, DATETIME = 11, 13
_SIGNED_BITS = {INT8: 8, INT16: 16, INT32: 32, INT64: 64}
DATATYPE_NAMES = {1: "Int8", 2: "Int16", 3: "Int32", 4: "Int64", 5: "UInt8", 6: "UInt16", 7: "UInt32", 8: "UInt64",
                  9: "Float", 10: "Double", 11: "Boolean", 12: "String", 13: "DateTime", 14: "Text", 15: "UUID",
                  16: "DataSet", 17: "Bytes", 18: "File", 19: "Template"}
# Metric value fields: number -> (name, wire type). A value sent with another wire type is not
# that field (a float as a varint): the payload contradicts the proto and is unreadable.
VALUE_FIELDS = {10: ("int_value", 0), 11: ("long_value", 0), 12: ("float_value", 5), 13: ("double_value", 1),
                14: ("boolean_value", 0), 15: ("string_value", 2), 16: ("bytes_value", 2), 17: ("dataset_value", 2),
                18: ("template_value", 2), 19: ("extension_value", 2)}
# Which value fields each datatype may use. Integers, booleans and dates come as int or long
# (encoders differ); a String metric with an int_value, or a Float with a double_value, is wrong.
_INTEGERS = frozenset({10, 11})
ALLOWED_FIELDS = {**{t: _INTEGERS for t in (1, 2, 3, 4, 5, 6, 7, 8, 13)}, 9: frozenset({12}),
                  10: frozenset({13}), 11: _INTEGERS | {14}, 12: frozenset({15}), 14: frozenset({15}),
                  15: frozenset({15}), 16: frozenset({17}), 17: frozenset({16}), 18: frozenset({16}),
                  19: frozenset({18})}
FIELD_NUMBERS = {name: number for number, (name, _) in VALUE_FIELDS.items()}
WIRE_NAMES = {0: "a varint", 1: "8 bytes", 2: "length-delimited bytes", 5: "4 bytes"}
MAX_PAYLOAD = 1024 * 1024  # a birth with a few hundred metrics is tens of KiB
# Metric names (last path level, letters and digits only, lower case) that carry a machine state
# or the reason for a stop. `PackML/Status/StateCurrent` -> statecurrent.
STATE_METRICS = {"state", "status", "machinestate", "machinestatus", "statecurrent", "currentstate", "runstate"}
REASON_METRICS = {"reason", "stopreason", "alarm", "alarmtext", "fault", "faultcode", "faulttext"}


class SparkplugError(ValueError):
    """A payload that is not a readable Sparkplug B protobuf message."""


@dataclass(frozen=True)
class Topic:
    group: str
    message_type: str
    edge_node: str
    device: str | None = None

    def device_topic(self, message_type: str, device: str) -> str:
        return f"{NAMESPACE}/{self.group}/{message_type}/{self.edge_node}/{device}"


def parse_topic(topic: str) -> Topic | None:
    """`spBv1.0/<group>/<type>/<edge node>[/<device>]`; None for anything else (STATE, foreign topics)."""
    parts = topic.split("/")
    if len(parts) not in (4, 5) or parts[0] != NAMESPACE or parts[2] not in MESSAGE_TYPES:
        return None
    if (parts[2][0] == "D") != (len(parts) == 5):
        return None
    return Topic(parts[1], parts[2], parts[3], parts[4] if len(parts) == 5 else None)


# --- the protobuf wire format ------------------------------------------------------------


@dataclass
class Metric:
    name: str | None = None
    alias: int | None = None
    timestamp: int | None = None
    datatype: int | None = None
    is_historical: bool = False
    is_null: bool = False
    value: Any = None


@dataclass
class Payload:
    timestamp: int | None = None
    seq: int | None = None
    uuid: str | None = None
    metrics: list[Metric] = field(default_factory=list)


def _signed(value: int, datatype: int | None) -> int:
    bits = _SIGNED_BITS.get(datatype or 0)
    if bits is None:
        return value
    value &= (1 << bits) - 1  # some encoders sign-extend an Int8 to 32 or 64 bits
    return value - (1 << bits) if value >= 1 << (bits - 1) else value


def _text(raw: bytes) -> str:
    return raw.decode("utf-8", errors="replace")


def _metric(message: pb.Payload.Metric) -> Metric:
    metric = Metric(
        name=_text(message.name) if message.HasField("name") else None,
        alias=message.alias if message.HasField("alias") else None,
        timestamp=message.timestamp if message.HasField("timestamp") else None,
        datatype=message.datatype if message.HasField("datatype") else None,
        is_historical=message.is_historical, is_null=message.is_null)
    # A value field sent with another wire type than the schema's (a Float as a varint) is not that
    # field to protobuf: it lands among the unknown fields. The payload contradicts the schema.
    for unknown in UnknownFieldSet(message):
        if unknown.field_number in VALUE_FIELDS:
            raise SparkplugError(f"metric {_label(metric)}: {VALUE_FIELDS[unknown.field_number][0]} sent as "
                                 f"{WIRE_NAMES.get(unknown.wire_type, f'wire type {unknown.wire_type}')}")
    kind = message.WhichOneof("value")
    if kind is not None:
        number = FIELD_NUMBERS[kind]
        allowed = ALLOWED_FIELDS.get(metric.datatype) if metric.datatype is not None else None
        if allowed is not None and number not in allowed:
            raise SparkplugError(f"metric {_label(metric)}: datatype {DATATYPE_NAMES[metric.datatype]} "
                                 f"contradicts its {kind}")
        if not metric.is_null:
            metric.value = _metric_value(number, getattr(message, kind), metric.datatype)
    return metric


def _label(metric: Metric) -> str:
    if metric.name is not None:
        return repr(metric.name[:100])
    return f"alias {metric.alias}" if metric.alias is not None else "without a name"


def _metric_value(number: int, value: Any, datatype: int | None) -> Any:
    if number in (10, 11):  # int_value (uint32) / long_value (uint64)
        return bool(value) if datatype == BOOLEAN else _signed(value, datatype)
    if number in (12, 13, 14):  # float, double, boolean: protobuf gives the Python value
        return value
    if number == 15:
        return _text(value)
    if number == 16:
        return value.hex()
    return None  # DataSet, Template, extensions: not machine states


def read_payload(data: bytes) -> Payload | str:
    """A Sparkplug B payload, or the reason `data` is not one (never raises)."""
    message = parse(data)
    if isinstance(message, str):
        return message
    try:
        return convert(message)
    except SparkplugError as error:
        return str(error)


def parse(data: bytes) -> pb.Payload | str:
    """The protobuf message, or the reason `data` is not one (never raises). Cheap: a data message of
    plain telemetry is dropped after this and `SparkplugHost.telemetry_only`, never converted."""
    if len(data) > MAX_PAYLOAD:
        return f"{len(data)} bytes, more than the {MAX_PAYLOAD} a Sparkplug payload may have"
    message = pb.Payload()
    try:
        message.ParseFromString(bytes(data))
    except DecodeError as error:
        return f"not a Sparkplug B protobuf message ({error})"
    return message


def convert(message: pb.Payload) -> Payload:
    """The payload's fields as Python values, checked against the schema rules protobuf leaves to us;
    raises SparkplugError (and nothing else) when the payload breaks one."""
    return Payload(timestamp=message.timestamp if message.HasField("timestamp") else None,
                   seq=message.seq if message.HasField("seq") else None,
                   uuid=_text(message.uuid) if message.HasField("uuid") else None,
                   metrics=[_metric(metric) for metric in message.metrics])


def decode(data: bytes) -> Payload:
    """Decode a Sparkplug B payload; raises SparkplugError (and nothing else) when it is not one."""
    message = parse(data)
    if isinstance(message, str):
        raise SparkplugError(message)
    return convert(message)


def encode_rebirth(timestamp_ms: int) -> bytes:
    """The NCMD payload asking an edge node to re-send its births: `Node Control/Rebirth = true`."""
    message = pb.Payload(timestamp=timestamp_ms)
    message.metrics.add(name=REBIRTH_METRIC.encode(), timestamp=timestamp_ms, datatype=BOOLEAN, boolean_value=True)
    return message.SerializeToString()


# --- the host-side session ---------------------------------------------------------------


@functools.lru_cache(maxsize=4096)
def _plain(name: str) -> str:
    """`PackML/Status/StateCurrent` -> `statecurrent` (cached: an edge node repeats its metric names)."""
    return re.sub(r"[^a-z0-9]", "", name.rsplit("/", 1)[-1].lower())


@dataclass
class Reading:
    """A machine state read from one Sparkplug message, for one device (or the edge node itself)."""

    device: str | None  # None: the edge node
    state: Any
    reason: str | None
    metrics: dict[str, Any]


@dataclass
class Outcome:
    readings: list[Reading] = field(default_factory=list)
    rebirth: bool = False  # ask the edge node to rebirth: data came with aliases we cannot name
    note: str = ""  # why a message gave no reading, for the log


class SparkplugHost:
    """What a Sparkplug host remembers between messages: aliases and devices per edge node."""

    def __init__(self) -> None:
        self._aliases: dict[tuple[str, str, str | None], dict[int, str]] = {}
        self._devices: dict[tuple[str, str], set[str]] = {}
        self._bdseq: dict[tuple[str, str], Any] = {}

    def devices(self, group: str, edge_node: str) -> list[str]:
        return sorted(self._devices.get((group, edge_node), ()))

    def observe(self, topic: Topic, payload: Payload) -> Outcome:
        node, kind = (topic.group, topic.edge_node), topic.message_type
        scope = (topic.group, topic.edge_node, topic.device)
        if kind == "NBIRTH":
            for key in [k for k in self._aliases if k[:2] == node]:
                del self._aliases[key]
            self._devices[node] = set()
            self._bdseq[node] = next((m.value for m in payload.metrics if m.name == BDSEQ_METRIC), None)
        if kind in ("NBIRTH", "DBIRTH"):
            self._aliases[scope] = {m.alias: m.name for m in payload.metrics if m.alias is not None and m.name}
            if topic.device:
                self._devices.setdefault(node, set()).add(topic.device)
        if kind == "DDEATH":
            self._aliases.pop(scope, None)
            self._devices.get(node, set()).discard(topic.device or "")
            return Outcome([Reading(topic.device, "DOWN", "Sparkplug DDEATH: device offline", {})])
        if kind == "NDEATH":
            return self._node_death(topic, payload)
        if kind in ("NCMD", "DCMD"):
            return Outcome(note="command")
        return self._data(topic, payload, scope)

    def telemetry_only(self, topic: Topic, message: pb.Payload) -> Outcome | None:
        """For a data message without a state metric, what to do (nothing, or ask for a rebirth); None when
        it carries one and must be read in full. Most data is telemetry: this keeps it cheap."""
        if topic.message_type not in ("NDATA", "DDATA"):
            return None
        aliases = self._aliases.get((topic.group, topic.edge_node, topic.device), {})
        unnamed = False
        for metric in message.metrics:
            if metric.HasField("name"):
                name: str | None = _text(metric.name)
            else:
                name = aliases.get(metric.alias) if metric.HasField("alias") else None
            if name is None:
                unnamed = True
            elif _plain(name) in STATE_METRICS:
                return None
        return Outcome(rebirth=unnamed, note="aliases without a birth" if unnamed else "no state metric")

    def _node_death(self, topic: Topic, payload: Payload) -> Outcome:
        node = (topic.group, topic.edge_node)
        bdseq = next((m.value for m in payload.metrics if m.name == BDSEQ_METRIC), None)
        known = self._bdseq.get(node)
        if bdseq is not None and known is not None and bdseq != known:
            return Outcome(note=f"stale NDEATH (bdSeq {bdseq}, last NBIRTH had {known})")
        reason = f"Sparkplug NDEATH: edge node {topic.edge_node} offline"
        devices = sorted(self._devices.pop(node, set()))
        for key in [k for k in self._aliases if k[:2] == node]:
            del self._aliases[key]
        return Outcome([Reading(None, "DOWN", reason, {}), *(Reading(d, "DOWN", reason, {}) for d in devices)])

    def _data(self, topic: Topic, payload: Payload, scope: tuple[str, str, str | None]) -> Outcome:
        aliases = self._aliases.get(scope, {})
        named: dict[str, Any] = {}
        unnamed = False
        for metric in payload.metrics:
            name = metric.name or (aliases.get(metric.alias) if metric.alias is not None else None)
            if name is None:
                unnamed = True
            elif not metric.is_historical:
                named[name] = metric.value
        state_name = next((n for n in named if _plain(n) in STATE_METRICS and named[n] is not None), None)
        if state_name is None:
            return Outcome(rebirth=unnamed and topic.message_type.endswith("DATA"),
                           note="aliases without a birth" if unnamed else "no state metric")
        reason = next((str(v) for n, v in named.items() if _plain(n) in REASON_METRICS and v not in (None, "")),
                      None)
        return Outcome([Reading(topic.device, named[state_name], reason, named)], rebirth=unnamed)

"""The signals registry, the plant file's signals section, and machine states as sources send them."""

from __future__ import annotations

import asyncio
import inspect
from collections.abc import Iterator
from datetime import datetime
from pathlib import Path

import pytest
from pydantic import SecretStr
from sqlmodel import Session

from bot.channels.base import CaptureChannel
from mfgos.config import Settings
from mfgos.runtime import Runtime
from models import Machine, Signal
from models.plant_file import load
from routing.clock import SimulatedClock
from signals.base import SignalSink, SignalSource
from signals.machine_state import state_name
from signals.mapping import SignalMapError, load_signal_map, topic_matches
from signals.mqtt import MqttSource
from signals.opcua import OpcUaSource
from signals.registry import (
    SIGNAL_HANDLERS,
    SOURCES,
    build_routers,
    build_sources,
    running_sources,
    source_class,
)

PLANT = Path(__file__).parent / "data" / "pune_plant.yaml"
START = datetime.fromisoformat("2026-11-25T09:00:00+05:30")
SECTION = """
signals:
  topics:
    "plants/pune-1/lc300/state": HOB-01
    "spBv1.0/pune/+/gw-7/#": GRD-02
  opcua:
    HOB-01: "ns=2;s=HOB-01.State"
"""


def plant_with(tmp_path: Path, section: str) -> Path:
    path = tmp_path / "plant.yaml"
    path.write_text(PLANT.read_text(encoding="utf-8") + section, encoding="utf-8")
    return path


def settings(plant_file: Path = PLANT, **kw: object) -> Settings:
    return Settings(_env_file=None, plant_file=plant_file, **kw)


# --- registry ------------------------------------------------------------------------------


@pytest.mark.parametrize("name", sorted(SOURCES))
def test_every_registered_source_keeps_the_protocol(name: str) -> None:
    cls = source_class(name)
    assert cls.name == name
    assert inspect.iscoroutinefunction(cls.run) and callable(cls.from_settings)
    assert SOURCES[name].setting in Settings.model_fields


def test_nothing_configured_nothing_built() -> None:
    """No source runs unconfigured; of the webhooks only quality results, which need a `signals` token."""
    assert build_sources(settings()) == []
    routers = build_routers(object(), settings())  # type: ignore[arg-type]
    assert [route.path for router in routers for route in router.routes] == ["/signals/quality"]  # type: ignore[attr-defined]


def test_configured_sources_are_built(tmp_path: Path) -> None:
    plant = plant_with(tmp_path, SECTION)
    built = build_sources(settings(plant, mqtt_url="mqtt://broker:1883", mqtt_shared_group="mfgos",
                                   opcua_url="opc.tcp://plc:4840/"))
    mqtt, opcua = built
    assert isinstance(mqtt, MqttSource) and isinstance(opcua, OpcUaSource)
    assert all(isinstance(s, SignalSource) for s in built)
    assert mqtt.client_id.startswith("mfgos-pune-1-") and mqtt.subscriptions()[0] == "$share/mfgos/plants/+/+/state"
    assert mqtt.signal_map.machine_for_topic("plants/pune-1/lc300/state") == "HOB-01"
    assert opcua.machines == {"ns=2;s=HOB-01.State": "HOB-01"}
    explicit = build_sources(settings(plant, mqtt_url="mqtt://broker", mqtt_client_id="mfgos-replica-2"))
    assert [s.client_id for s in explicit if isinstance(s, MqttSource)] == ["mfgos-replica-2"]


def test_the_plant_answers_to_its_id_and_aliases_and_reads_its_sparkplug_groups(tmp_path: Path) -> None:
    plant = plant_with(tmp_path, "\nsignals:\n  plant_aliases: [pune, \"4711\"]\n  sparkplug_groups: [pune-gears]\n")
    (mqtt,) = build_sources(settings(plant, mqtt_url="mqtt://broker:1883"))
    assert isinstance(mqtt, MqttSource)
    assert mqtt.plant_names == {"pune-1", "pune", "4711"}
    assert mqtt.subscriptions() == ["plants/+/+/state", "spBv1.0/pune-gears/#"]
    fault = b'{"state": "FAULT"}'
    assert [len(mqtt.read(f"plants/{p}/CMP-02/state", fault, 1.0)[0]) for p in ("pune", "4711", "berlin-1")] == [
        1, 1, 0]
    assert mqtt.counts["other_plant"] == 1


def test_opcua_without_nodes_is_a_clear_error() -> None:
    with pytest.raises(ValueError, match="names no state variables"):
        build_sources(settings(opcua_url="opc.tcp://plc:4840/"))


def test_webhook_router_needs_its_secret() -> None:
    """The MES webhook needs its secret; quality results come with a `signals` token, so always mounted."""
    routers = build_routers(object(), settings(signals_webhook_secret=SecretStr("s")))  # type: ignore[arg-type]
    assert [route.path for router in routers for route in router.routes] == [  # type: ignore[attr-defined]
        "/signals/quality", "/signals/mes"]
    unsigned = build_routers(object(), settings(signals_webhook_secret=SecretStr("")))  # type: ignore[arg-type]
    assert [route.path for router in unsigned for route in router.routes] == ["/signals/quality"]  # type: ignore[attr-defined]


def test_signal_kinds_have_handlers() -> None:
    assert set(SIGNAL_HANDLERS) == {"machine", "work_order", "quality", "unreadable"}


def test_running_sources_start_and_stop() -> None:
    seen: list[str] = []

    class Ticker:
        """A source that runs until told to stop."""

        name = "ticker"

        async def run(self, sink: SignalSink, stop: asyncio.Event) -> None:
            seen.append("started")
            await stop.wait()
            seen.append("stopped")

    class Stubborn(Ticker):
        """Ignores the stop event: cancelled after the grace period."""

        async def run(self, sink: SignalSink, stop: asyncio.Event) -> None:
            try:
                await asyncio.sleep(3600)
            except asyncio.CancelledError:
                seen.append("cancelled")
                raise

    async def scenario() -> None:
        import signals.registry as registry

        registry_timeout = registry.STOP_TIMEOUT
        registry.STOP_TIMEOUT = 0.2
        try:
            async with running_sources(object(), [Ticker(), Stubborn()]):  # type: ignore[arg-type]
                await asyncio.sleep(0.05)
        finally:
            registry.STOP_TIMEOUT = registry_timeout

    asyncio.run(scenario())
    assert sorted(seen) == ["cancelled", "started", "stopped"]


# --- the plant file's signals section ------------------------------------------------------


def test_signals_section_keeps_the_plant_file_valid(tmp_path: Path) -> None:
    plant = plant_with(tmp_path, SECTION)
    assert load(plant).signals.opcua == {"HOB-01": "ns=2;s=HOB-01.State"}  # validated with the plant file
    signal_map = load_signal_map(plant)
    assert signal_map.machine_for_topic("spBv1.0/pune/DDATA/gw-7/anything") == "GRD-02"
    assert signal_map.machine_for_topic("spBv1.0/pune/NDEATH/gw-7") == "GRD-02"  # '#' matches no level too
    assert signal_map.machine_for_topic("plants/pune-1/HOB-01/state") is None
    assert "HOB-01" in signal_map.machines and signal_map.plant_id == "pune-1"


@pytest.mark.parametrize(("section", "message"), [
    ("signals:\n  topics: {\"plants/+/x/state\": HOB-99}\n",
     "signals.topics.plants/+/x/state: unknown machine 'HOB-99' (known: HOB-01"),
    ("signals:\n  topics: {\"plants/#/x\": HOB-01}\n", "signals.topics.plants/#/x: '#' must be a whole last level"),
    ("signals:\n  topics: {\"plants/a+/x\": HOB-01}\n", "'+' must be a whole level"),
    ("signals:\n  opcua: {LATHE-3: \"ns=2;i=5\"}\n", "signals.opcua.LATHE-3: unknown machine 'LATHE-3'"),
    ("signals:\n  topic: {}\n", "signals: unknown key 'topic' (did you mean topics?"),
    ("signals:\n  opcua: [HOB-01]\n", "signals.opcua: expected a mapping (key: value), got a list"),
    ("signals: [1]\n", "signals: expected a mapping (key: value), got a list"),
    ("signals:\n  plant_aliases: [pune/1]\n", "signals.plant_aliases[0]: 'pune/1' is not one topic level"),
    ("signals:\n  sparkplug_groups: pune\n", "signals.sparkplug_groups: expected a list, got the text 'pune'"),
    ("signals:\n  flapping: {stops: 1, within: 10m}\n", "signals.flapping.stops: must be at least 2, got 1"),
    ("x-signals:\n  topics: {}\n", "x-signals: 'x-signals' is now the section 'signals': rename the key"),
])
def test_signals_section_errors_say_where(tmp_path: Path, section: str, message: str) -> None:
    with pytest.raises(SignalMapError) as error:
        load_signal_map(plant_with(tmp_path, "\n" + section))
    assert message in str(error.value) and str(tmp_path) in str(error.value)


@pytest.mark.parametrize(("topic_filter", "topic", "matches"), [
    ("plants/+/+/state", "plants/p/HOB-01/state", True),
    ("plants/+/+/state", "plants/p/HOB-01/state/x", False),
    ("plants/#", "plants", True),
    ("plants/#", "plants/a/b", True),
    ("a/+", "a", False),
    ("a/b", "a/c", False),
])
def test_topic_filters(topic_filter: str, topic: str, matches: bool) -> None:
    assert topic_matches(topic_filter, topic) is matches


# --- machine states ------------------------------------------------------------------------


@pytest.mark.parametrize(("value", "name"), [
    ("fault ", "FAULT"), (6, "EXECUTE"), ("11", "HELD"), (9.0, "ABORTED"), (True, "RUNNING"), (False, "STOPPED"),
    (None, ""), (99, "99"),
])
def test_state_names(value: object, name: str) -> None:
    assert state_name(value) == name


@pytest.fixture
def runtime(tmp_path: Path) -> Iterator[Runtime]:
    rt = Runtime(settings(database_url=f"sqlite:///{tmp_path / 'states.db'}"), clock=SimulatedClock(START),
                 channels={"console": CaptureChannel("console")})
    yield rt
    asyncio.run(rt.aclose())


def _signal(runtime: Runtime, key: str, payload: dict[str, object]) -> Signal:
    received = runtime.receive(source="test", source_key=key, kind="machine", payload=payload)
    with Session(runtime.engine) as session:
        signal = session.get(Signal, received.signal_id)
        assert signal is not None
        return signal


def test_idle_and_transitions_change_nothing(runtime: Runtime) -> None:
    idle = _signal(runtime, "k1", {"machine": "HOB-01", "payload": {"state": 4}})  # PackML IDLE
    odd = _signal(runtime, "k2", {"machine": "HOB-01", "payload": {"state": "DANCING"}})
    assert idle.error is None and odd.error == "unknown machine state 'DANCING'"
    with Session(runtime.engine) as session:
        machine = session.get(Machine, ("pune-1", "HOB-01"))
        assert machine is not None and machine.running


def test_machine_beside_the_payload_is_used(runtime: Runtime) -> None:
    """Replay and the webhook put the machine next to the payload, not inside it."""
    signal = _signal(runtime, "k3", {"topic": None, "machine": "CNC-11", "payload": {"state": "ALARM"}})
    assert signal.error is None
    with Session(runtime.engine) as session:
        machine = session.get(Machine, ("pune-1", "CNC-11"))
        assert machine is not None and not machine.running

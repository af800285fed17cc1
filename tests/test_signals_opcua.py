"""OPC UA source against a real asyncua server running in the test's event loop (no mocks)."""

from __future__ import annotations

import asyncio
import logging
import socket
import time
from collections.abc import Callable, Iterator
from datetime import datetime
from pathlib import Path
from typing import Any

import pytest
from asyncua import Server, ua
from sqlmodel import Session, select

from bot.channels.base import CaptureChannel
from mfgos.config import Settings
from mfgos.runtime import Runtime
from models import Machine, PlantException, Signal
from routing.clock import SimulatedClock
from signals.base import Backoff
from signals.opcua import OpcUaSource

PLANT = Path(__file__).parent / "data" / "pune_plant.yaml"
START = datetime.fromisoformat("2026-11-25T09:00:00+05:30")
WAIT = 15.0
# machine -> (variable name, initial value, OPC UA type): a text state, a PackML number, a running flag
VARIABLES: dict[str, tuple[str, Any, ua.VariantType]] = {
    "HOB-01": ("State", "RUNNING", ua.VariantType.String),
    "GRD-02": ("StateCurrent", 6, ua.VariantType.Int32),
    "CNC-11": ("Running", True, ua.VariantType.Boolean),
    "TST-01": ("State", "RUNNING", ua.VariantType.String),
}
NODES = {machine: f"ns=2;s={machine}.{name}" for machine, (name, _, _) in VARIABLES.items()}


@pytest.fixture(autouse=True)
def _quiet_asyncua() -> None:
    logging.getLogger("asyncua").setLevel(logging.ERROR)


@pytest.fixture
def runtime(tmp_path: Path) -> Iterator[Runtime]:
    settings = Settings(_env_file=None, database_url=f"sqlite:///{tmp_path / 'opcua.db'}", plant_file=PLANT)
    rt = Runtime(settings, clock=SimulatedClock(START), channels={"console": CaptureChannel("console")})
    yield rt
    asyncio.run(rt.aclose())


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


async def plant_server(url: str) -> tuple[Server, dict[str, Any]]:
    """An OPC UA server with one state variable per machine (namespace 2, string node ids)."""
    server = Server()
    await server.init()
    server.set_endpoint(url)
    idx = await server.register_namespace("urn:mfgos:test-plant")
    assert idx == 2
    variables = {}
    for machine, (name, value, kind) in VARIABLES.items():
        folder = await server.nodes.objects.add_object(ua.NodeId(machine, idx), machine)
        variables[machine] = await folder.add_variable(ua.NodeId(f"{machine}.{name}", idx), name,
                                                       ua.Variant(value, kind))
    await server.start()
    return server, variables


def signals(runtime: Runtime) -> list[Signal]:
    with Session(runtime.engine) as session:
        return list(session.exec(select(Signal).order_by(Signal.id)))


def machine_running(runtime: Runtime, machine: str) -> bool:
    with Session(runtime.engine) as session:
        row = session.get(Machine, (runtime.plant_id, machine))
        assert row is not None
        return row.running


def breakdowns(runtime: Runtime) -> list[str]:
    with Session(runtime.engine) as session:
        return sorted(e.machine_id or "" for e in session.exec(select(PlantException)) if e.type == "breakdown")


async def until(condition: Callable[[], bool], what: str, timeout: float = WAIT) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        await asyncio.sleep(0.05)


def test_state_changes_become_machine_signals(runtime: Runtime) -> None:
    url = f"opc.tcp://127.0.0.1:{free_port()}/mfgos/"

    async def scenario() -> None:
        server, variables = await plant_server(url)
        source = OpcUaSource(url, NODES, backoff=Backoff(0.1, 1.0), publishing_interval_ms=50)
        stop = asyncio.Event()
        task = asyncio.create_task(source.run(runtime, stop))
        try:
            await asyncio.wait_for(source.connected.wait(), WAIT)
            await until(lambda: len(signals(runtime)) == 4, "the four current values")
            assert breakdowns(runtime) == []
            await variables["HOB-01"].write_value(ua.Variant("FAULT", ua.VariantType.String))
            await variables["GRD-02"].write_value(ua.Variant(9, ua.VariantType.Int32))  # PackML ABORTED
            await variables["CNC-11"].write_value(ua.Variant(False, ua.VariantType.Boolean))
            await until(lambda: len(breakdowns(runtime)) == 3, "three breakdowns")
            # a blip shorter than the publishing interval still arrives: the items queue their changes
            await variables["TST-01"].write_value(ua.Variant("FAULT", ua.VariantType.String))
            await variables["TST-01"].write_value(ua.Variant("RUNNING", ua.VariantType.String))
            await variables["HOB-01"].write_value(ua.Variant("RUNNING", ua.VariantType.String))
            await until(lambda: machine_running(runtime, "HOB-01") and len(breakdowns(runtime)) == 4, "the blip")
        finally:
            stop.set()
            await asyncio.wait_for(task, WAIT)
            await server.stop()

    asyncio.run(scenario())
    assert breakdowns(runtime) == ["CNC-11", "GRD-02", "HOB-01", "TST-01"]
    assert machine_running(runtime, "TST-01") and not machine_running(runtime, "GRD-02")
    rows = signals(runtime)
    assert all(s.source == "opcua" and s.error is None and s.processed_at for s in rows)
    states = [(s.payload["machine"], s.payload["payload"]["state"]) for s in rows]
    assert ("GRD-02", "ABORTED") in states and ("CNC-11", "STOPPED") in states
    assert states.count(("TST-01", "FAULT")) == 1
    assert len({s.source_key for s in rows}) == len(rows) == 10


def test_reconnects_after_the_server_restarts(runtime: Runtime) -> None:
    url = f"opc.tcp://127.0.0.1:{free_port()}/mfgos/"

    async def scenario() -> None:
        server, _ = await plant_server(url)
        source = OpcUaSource(url, {"HOB-01": NODES["HOB-01"]}, backoff=Backoff(0.1, 1.0), publishing_interval_ms=50)
        stop = asyncio.Event()
        task = asyncio.create_task(source.run(runtime, stop))
        try:
            await asyncio.wait_for(source.connected.wait(), WAIT)
            await until(lambda: len(signals(runtime)) == 1, "the current value")
            await server.stop()
            server, variables = await plant_server(url)
            await asyncio.sleep(0.5)
            await variables["HOB-01"].write_value(ua.Variant("ALARM", ua.VariantType.String))
            await until(lambda: breakdowns(runtime) == ["HOB-01"], "the alarm after the restart")
        finally:
            stop.set()
            await asyncio.wait_for(task, WAIT)
            await server.stop()

    asyncio.run(scenario())


def test_unreachable_server_is_retried_until_stopped(runtime: Runtime) -> None:
    source = OpcUaSource(f"opc.tcp://127.0.0.1:{free_port()}/", NODES, backoff=Backoff(0.05, 0.1))

    async def scenario() -> None:
        stop = asyncio.Event()
        task = asyncio.create_task(source.run(runtime, stop))
        await asyncio.sleep(1.0)
        assert not task.done() and not source.connected.is_set()
        stop.set()
        await asyncio.wait_for(task, WAIT)

    asyncio.run(scenario())
    assert signals(runtime) == []


def test_bad_node_ids_are_refused_at_start() -> None:
    with pytest.raises(ValueError, match="bad OPC UA node id 'HOB-01 state' for HOB-01"):
        OpcUaSource("opc.tcp://127.0.0.1:4840/", {"HOB-01": "HOB-01 state"})
    with pytest.raises(ValueError, match="at least one machine"):
        OpcUaSource("opc.tcp://127.0.0.1:4840/", {})

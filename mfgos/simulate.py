"""`mfgos simulate` and `mfgos demo --simulate`: the plant simulator (signals/simulator.py) run from the command.

`simulate` publishes to a broker and serves OPC UA for any mfgos (or anything else) to read.
`demo --simulate` runs the simulator inside the demo process and the demo reads it like a
plant: by default through the simulator's own OPC UA server on a free local port, so it needs
no broker and no hardware; with `--broker` through MQTT (JSON and Sparkplug B) instead.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import signal
import socket
import sys
from collections.abc import AsyncIterator, Callable
from contextlib import AbstractAsyncContextManager
from dataclasses import dataclass
from pathlib import Path

from fastapi import FastAPI

from mfgos.config import DEMO_PLANT, Settings
from signals.base import SignalSource
from signals.simulator import Change, MqttPlant, OpcUaPlant, SimConfig, Simulator, describe, load_config

DEFAULT_BROKER = "mqtt://127.0.0.1:1883"


def simulate_command(args: argparse.Namespace) -> int:
    """Run the simulator until Ctrl-C or `--duration`; 2 for a bad plant file or URL, 1 when it cannot connect."""
    settings = Settings()
    plant = Path(args.plant) if args.plant else settings.plant_file
    broker = args.broker or settings.mqtt_url or DEFAULT_BROKER
    try:
        config = load_config(plant, machines=args.machines, seed=args.seed, faults_per_hour=args.faults,
                             rate=args.rate, protocol=args.protocol)
        mqtt = None if broker.lower() == "none" else MqttPlant(broker, config, qos=args.qos)
    except Exception as error:  # a bad plant file or URL: say which
        print(f"mfgos simulate: {error}", file=sys.stderr)
        return 2
    opcua = OpcUaPlant(config, args.opcua_port) if args.opcua_port else None
    print(f"mfgos simulate: plant {config.plant_id}, {len(config.machines)} machines, seed {config.seed}, "
          f"{config.faults_per_hour:g} faults/machine-hour, {config.rate:g} reports/s", flush=True)
    for line in _where(config, mqtt, opcua):
        print(f"  {line}", flush=True)
    on_change = None if args.quiet else (lambda change: print(describe(change), flush=True))
    simulator = Simulator(config, mqtt=mqtt, opcua=opcua, on_change=on_change)
    try:
        asyncio.run(_run(simulator, args.duration))
    except (ConnectionError, OSError) as error:
        print(f"mfgos simulate: {error}", file=sys.stderr)
        return 1
    sent = mqtt.sent if mqtt is not None else 0
    print(f"mfgos simulate: stopped; {len(simulator.changes)} state changes, {sent} MQTT messages", flush=True)
    return 0


async def _run(simulator: Simulator, duration: float | None) -> None:
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for number in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(number, stop.set)
    await simulator.run(stop, duration)


def _where(config: SimConfig, mqtt: MqttPlant | None, opcua: OpcUaPlant | None) -> list[str]:
    """Where each machine reports, for the terminal."""
    lines = []
    if mqtt is not None:
        json_machines = [m for m in config.machines if m.protocol == "json"]
        if json_machines:
            lines.append(f"MQTT {mqtt.broker} JSON: {_listed([m.json_topic for m in json_machines])}")
        for (group, node), edge in mqtt.nodes.items():
            lines.append(f"MQTT {mqtt.broker} Sparkplug B spBv1.0/{group}/+/{node}: "
                         f"{_listed([m.device for m in edge.devices])}")
    if opcua is not None:
        lines.append(f"OPC UA {opcua.url}: {_listed([m.opcua_node for m in config.machines])}")
    return lines


def _listed(items: list[str], shown: int = 4) -> str:
    return ", ".join(items[:shown]) + (f" and {len(items) - shown} more" if len(items) > shown else "")


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


Lifespan = Callable[[FastAPI], AbstractAsyncContextManager[None]]


@dataclass
class DemoSimulation:
    """The simulator inside `mfgos demo`, and the source the demo reads it with."""

    simulator: Simulator
    sources: list[SignalSource]

    def around(self, lifespan: Lifespan) -> Lifespan:
        """`lifespan` with the simulator running around it: started first, stopped after the sources."""

        @contextlib.asynccontextmanager
        async def combined(app: FastAPI) -> AsyncIterator[None]:
            stop = asyncio.Event()
            task = asyncio.create_task(self.simulator.run(stop), name="mfgos-simulator")
            ready = asyncio.create_task(self.simulator.ready.wait())
            await asyncio.wait({task, ready}, return_when=asyncio.FIRST_COMPLETED)
            if task.done():  # it could not start (a broker that is not there): say so and stop
                ready.cancel()
                task.result()
            try:
                async with lifespan(app):
                    yield
            finally:
                stop.set()
                await task

        return combined


def demo_simulation(*, faults: float, seed: int, broker: str | None) -> DemoSimulation:
    """The demo plant simulated; read through OPC UA on a free local port, or MQTT when a broker is given."""
    config = load_config(DEMO_PLANT, seed=seed, faults_per_hour=faults, rate=0.0 if broker is None else 2.0)

    def show(change: Change) -> None:
        print(f"  simulator: {describe(change).strip()}", flush=True)

    if broker is None:
        from signals.opcua import OpcUaSource

        opcua = OpcUaPlant(config, _free_port())
        source: SignalSource = OpcUaSource(opcua.url, config.opcua_nodes())
        return DemoSimulation(Simulator(config, opcua=opcua, on_change=show), [source])
    from signals.mapping import load_signal_map
    from signals.mqtt import MqttSource

    mqtt = MqttPlant(broker, config)
    source = MqttSource(broker, client_id=f"mfgos-demo-{mqtt.suffix}", signal_map=load_signal_map(DEMO_PLANT),
                        session_expiry=0)
    return DemoSimulation(Simulator(config, mqtt=mqtt, on_change=show), [source])

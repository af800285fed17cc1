"""Black box: a real `mfgos serve` reading the real Mosquitto keeps taking machine messages after poison.

The test talks to the process only through the broker and reads what it stored straight from
its SQLite file, so it needs no API or sign-in.
"""

from __future__ import annotations

import json
import os
import queue
import signal
import subprocess
import sys
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import paho.mqtt.client as paho
import pytest
from sqlmodel import Session, select

from models import Machine, PlantException, Signal
from models.db import make_engine
from tests.conftest import service_unavailable
from tests.test_signals_intake import varint_float_birth
from tests.test_signals_mqtt import HOST, PLANT, PORT, _reachable

STARTUP_TIMEOUT = 60.0
WAIT = 20.0


class Serve:
    """One `mfgos serve` process; its stdout is read on a thread so it never blocks."""

    def __init__(self, cwd: Path, env: dict[str, str]) -> None:
        self.process = subprocess.Popen([sys.executable, "-m", "mfgos.cli", "serve", "--host", "127.0.0.1",
                                         "--port", "0"], cwd=cwd, env=env, stdout=subprocess.PIPE,
                                        stderr=subprocess.STDOUT, text=True)
        self.lines: queue.Queue[str] = queue.Queue()
        self.output: list[str] = []
        threading.Thread(target=self._read, daemon=True).start()

    def _read(self) -> None:
        assert self.process.stdout is not None
        for line in self.process.stdout:
            self.lines.put(line)

    def wait_for(self, marker: str) -> None:
        deadline = time.monotonic() + STARTUP_TIMEOUT
        while time.monotonic() < deadline and self.process.poll() is None:
            try:
                line = self.lines.get(timeout=0.2)
            except queue.Empty:
                continue
            self.output.append(line)
            if marker in line:
                return
        pytest.fail(f"no {marker!r} from mfgos serve: {''.join(self.output)}")

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGINT)
            assert self.process.wait(timeout=30) == 0


@pytest.fixture
def start_serve(tmp_path: Path) -> Iterator[Callable[[dict[str, str]], Serve]]:
    started: list[Serve] = []
    base = {k: v for k, v in os.environ.items() if not k.startswith("MFGOS_")}

    def start(variables: dict[str, str]) -> Serve:
        serve = Serve(tmp_path, {**base, "PYTHONUNBUFFERED": "1", **variables})
        started.append(serve)
        serve.wait_for("mfgos console:")
        return serve

    yield start
    for serve in started:
        if serve.process.poll() is None:
            serve.process.kill()
            serve.process.wait(timeout=10)


def publish(topic: str, payload: bytes | dict[str, Any]) -> None:
    """QoS 1 through the real broker with paho's blocking client (the test is not async)."""
    client = paho.Client(paho.CallbackAPIVersion.VERSION2, protocol=paho.MQTTv5)
    client.connect(HOST, PORT)
    client.loop_start()
    try:
        data = json.dumps(payload).encode() if isinstance(payload, dict) else payload
        client.publish(topic, data, qos=1).wait_for_publish(timeout=10)
    finally:
        client.loop_stop()
        client.disconnect()


def test_serve_stores_the_valid_message_behind_poison_and_acks_the_poison(
        tmp_path: Path, start_serve: Callable[[dict[str, str]], Serve]) -> None:
    if not _reachable(HOST, PORT):
        service_unavailable(f"Mosquitto at {HOST}:{PORT} is unreachable")
    unique = f"t{uuid.uuid4().hex[:10]}"
    plant = tmp_path / "plant.yaml"
    plant.write_text(PLANT.read_text(encoding="utf-8")
                     + f"\nsignals:\n  plant_aliases: [{unique}]\n  sparkplug_groups: [{unique}]\n", encoding="utf-8")
    database = f"sqlite:///{tmp_path / 'serve.db'}"
    variables = {"MFGOS_DATABASE_URL": database, "MFGOS_PLANT_FILE": str(plant),
                 "MFGOS_MQTT_URL": f"mqtt://{HOST}:{PORT}", "MFGOS_MQTT_CLIENT_ID": f"mfgos-test-{unique}-serve",
                 # one chat channel, as a plant has (the bridge, pointed nowhere: nothing is sent to it)
                 "MFGOS_BRIDGE_SECRET": "s3cret", "MFGOS_BRIDGE_CALLBACK_URL": "http://127.0.0.1:9/never-called"}
    engine = make_engine(database)

    def rows() -> list[Signal]:
        with Session(engine) as session:
            return list(session.exec(select(Signal).order_by(Signal.id)))

    def until(condition: Callable[[], bool], what: str, nudge: Callable[[int], None] | None = None) -> None:
        deadline, attempt = time.monotonic() + WAIT, 0
        while not condition():
            if time.monotonic() > deadline:
                pytest.fail(f"timed out waiting for {what}; stored: {[(s.kind, s.payload.get('topic')) for s in rows()]}")
            if nudge is not None and attempt % 10 == 0:
                nudge(attempt)
            attempt += 1
            time.sleep(0.1)

    def subscribed(marker: str) -> Callable[[int], None]:
        """Until the process has subscribed, a marker message may go to nobody: send it again."""
        return lambda attempt: publish(f"plants/{unique}/TST-01/state", {"state": "RUNNING", "ts": f"{marker}{attempt}"})

    def has_marker(marker: str) -> bool:
        return any(str(s.payload.get("payload", {}).get("ts", "")).startswith(marker) for s in rows())

    serve = start_serve(variables)
    until(lambda: has_marker("first"), "the first marker", subscribed("first"))
    publish(f"plants/{unique}/HOB-01/state", b"[" * 30_000 + b"]" * 30_000)
    publish(f"spBv1.0/{unique}/DBIRTH/gw-1/HOB-01", varint_float_birth())
    publish(f"plants/{unique}/HOB-01/state", bytes(range(256)))
    publish(f"plants/other-{unique}/CMP-02/state", {"state": "FAULT", "ts": 1})
    publish(f"plants/{unique}/GRD-02/state", {"state": "FAULT", "reason": "behind the poison", "ts": 2})
    with Session(engine) as session:
        def breakdown() -> bool:
            session.expire_all()
            return any(e.machine_id == "GRD-02" for e in session.exec(select(PlantException)))
        until(breakdown, "the valid message to open a breakdown")
    serve.stop()

    unreadable = [s for s in rows() if s.kind == "unreadable"]
    assert [s.payload["topic"] for s in unreadable] == [f"plants/{unique}/HOB-01/state",
                                                        f"spBv1.0/{unique}/DBIRTH/gw-1/HOB-01",
                                                        f"plants/{unique}/HOB-01/state"]
    assert all(s.processed_at is not None for s in unreadable)
    assert "JSON nested deeper than 32 levels" in (unreadable[0].error or "")
    assert "float_value sent as a varint" in (unreadable[1].error or "")
    assert "not JSON" in (unreadable[2].error or "")
    assert not any("other-" in str(s.payload.get("topic")) for s in rows())
    with Session(engine) as session:
        compressor = session.get(Machine, ("pune-1", "CMP-02"))
        assert compressor is not None and compressor.running

    # Restarted with the same client id: the poison was acknowledged, so the broker has nothing to hand back.
    second = start_serve(variables)
    try:
        until(lambda: has_marker("second"), "the second marker", subscribed("second"))
        second.stop()
        assert len([s for s in rows() if s.kind == "unreadable"]) == 3
    finally:
        end_session(variables["MFGOS_MQTT_CLIENT_ID"])
        engine.dispose()


def end_session(client_id: str) -> None:
    """Drop the persistent session `serve` left on the shared broker (it would queue messages for days)."""
    client = paho.Client(paho.CallbackAPIVersion.VERSION2, client_id=client_id, protocol=paho.MQTTv5)
    client.connect(HOST, PORT, clean_start=True)
    client.disconnect()

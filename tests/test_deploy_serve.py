"""Two `mfgos serve` replicas run with exactly what deploy/.env.example documents.

The environment is the one compose gives the container `mfgos-1` (and `mfgos-2`): the example
filled in as its comments say, interpolated into deploy/compose.yaml (tests/test_deploy.py), plus
what deploy/Dockerfile sets. Only what names the place stands in for the containers' world: the
database URL is the local PostgreSQL (a schema of its own), the broker URL the local Mosquitto
(plain, no password: it has none) without the container's CA file, the plant file and the
attachments directory are paths here, and each replica's MQTT client id and shared group are
unique on the shared broker (compose derives the id from the container's host name).

Both replicas start together on a fresh schema (they take turns migrating), pass the image's and
compose's health checks (run as Docker runs them), answer /healthz, take
a signed MES request through the allowed host name and see each other's (one database), refuse
a bad signature and an unknown host, and take a machine message from the broker.
"""

from __future__ import annotations

import json
import os
import queue
import signal
import socket
import subprocess
import sys
import threading
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import httpx
import paho.mqtt.client as paho
import pytest
from sqlmodel import Session, select

from models import Signal
from models.db import make_engine
from signals.webhooks import SIGNATURE_HEADER, sign
from tests.conftest import postgres_schema_url, service_unavailable
from tests.test_deploy import (
    DEPLOY,
    SECRET_NAME,
    compose_config,
    container_environment,
    filled_env_example,
    final_stage,
    image_environment,
)

pytestmark = pytest.mark.timeout(240)

ROOT = DEPLOY.parent
PLANT = ROOT / "tests" / "data" / "channels_plant.yaml"
MQTT_HOST, MQTT_PORT = "127.0.0.1", 1883
STARTUP_TIMEOUT = 120.0


def final_stage_healthcheck() -> list[str]:
    """The image's HEALTHCHECK as compose writes one: ["CMD", program, arguments...]."""
    return list(next(c for c in final_stage() if c.cmd == "HEALTHCHECK").value)


@dataclass
class Replica:
    process: subprocess.Popen[str]
    url: str = ""
    output: list[str] = field(default_factory=list)


def _read(process: subprocess.Popen[str], lines: queue.Queue[str]) -> None:
    assert process.stdout is not None
    for line in process.stdout:
        lines.put(line)


def wait_for_console(replica: Replica, lines: queue.Queue[str]) -> None:
    deadline = time.monotonic() + STARTUP_TIMEOUT
    while not replica.url:
        if time.monotonic() > deadline or replica.process.poll() is not None:
            while not lines.empty():
                replica.output.append(lines.get())
            pytest.fail(f"mfgos serve did not start: {''.join(replica.output)}")
        try:
            line = lines.get(timeout=0.2)
        except queue.Empty:
            continue
        replica.output.append(line)
        if "mfgos console:" in line:
            replica.url = line.split("mfgos console:", 1)[1].strip().rstrip("/")


def end_mqtt_session(client_id: str) -> None:
    """Drop the persistent session a replica left on the shared broker."""
    client = paho.Client(paho.CallbackAPIVersion.VERSION2, client_id=client_id, protocol=paho.MQTTv5)
    client.connect(MQTT_HOST, MQTT_PORT, clean_start=True)
    client.disconnect()


@pytest.fixture
def database() -> Iterator[str]:
    yield from postgres_schema_url()


@pytest.fixture
def example(tmp_path: Path, database: str) -> dict[str, str]:
    """The environment of compose's `mfgos-1`, from the filled example, with the local stand-ins."""
    try:
        socket.create_connection((MQTT_HOST, MQTT_PORT), timeout=2).close()
    except OSError:
        service_unavailable(f"Mosquitto at {MQTT_HOST}:{MQTT_PORT} is unreachable")
    env = filled_env_example()
    container = {**image_environment(), **container_environment(compose_config(env)["services"]["mfgos-1"], env)}
    assert container["MFGOS_DATABASE_URL"].startswith("postgresql://mfgos:")
    assert container["MFGOS_MQTT_URL"].startswith("mqtts://mfgos:")
    assert container["MFGOS_PLANT_FILE"] == "/etc/mfgos/plant.yaml"
    plant_id = f"dep-{uuid.uuid4().hex[:8]}"
    plant = tmp_path / "plant.yaml"
    plant.write_text(PLANT.read_text(encoding="utf-8").replace("id: chan-1,", f"id: {plant_id},"), encoding="utf-8")
    del container["MFGOS_MQTT_CA_FILE"]
    return container | {
        "MFGOS_DATABASE_URL": database,
        "MFGOS_MQTT_URL": f"mqtt://{MQTT_HOST}:{MQTT_PORT}",
        "MFGOS_MQTT_SHARED_GROUP": f"g{uuid.uuid4().hex[:10]}",
        "MFGOS_PLANT_FILE": str(plant),
        "MFGOS_ATTACHMENTS_DIR": str(tmp_path / "attachments"),
        "PATH": os.environ.get("PATH", ""),
    }


@pytest.fixture
def replicas(tmp_path: Path, example: dict[str, str]) -> Iterator[list[Replica]]:
    """Two replicas started at once, each in a directory of its own (nothing shared on disk)."""
    started: list[tuple[Replica, queue.Queue[str], str]] = []
    for number in (1, 2):
        directory = tmp_path / f"mfgos-{number}"
        directory.mkdir()
        client_id = f"mfgos-{uuid.uuid4().hex[:8]}-mfgos-{number}"
        env = example | {"MFGOS_MQTT_CLIENT_ID": client_id, "PYTHONPATH": str(ROOT)}
        process = subprocess.Popen([sys.executable, "-m", "mfgos.cli", "serve", "--host", "127.0.0.1", "--port", "0"],
                                   cwd=directory, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
        lines: queue.Queue[str] = queue.Queue()
        threading.Thread(target=_read, args=(process, lines), daemon=True).start()
        started.append((Replica(process), lines, client_id))
    try:
        for replica, lines, _ in started:
            wait_for_console(replica, lines)
        yield [replica for replica, _, _ in started]
        for replica, _, _ in started:
            replica.process.send_signal(signal.SIGINT)
            assert replica.process.wait(timeout=30) == 0
    finally:
        for replica, lines, client_id in started:
            if replica.process.poll() is None:
                replica.process.kill()
                replica.process.wait(timeout=10)
            while not lines.empty():
                replica.output.append(lines.get())
            end_mqtt_session(client_id)
    secrets = [value for name, value in example.items() if SECRET_NAME.search(name) and value]
    assert secrets, "the example has secrets to keep out of the logs"
    for replica, _, _ in started:
        assert not any("Traceback" in line for line in replica.output), "".join(replica.output)
        assert not [s for s in secrets if s in "".join(replica.output)], "a secret in the output"
        assert not list((tmp_path / "mfgos-1").glob("*.db")) and not list((tmp_path / "mfgos-2").glob("*.db")), \
            "a replica made a SQLite file of its own"


def test_two_replicas_run_with_what_the_env_example_documents(example: dict[str, str], database: str,
                                                              replicas: list[Replica]) -> None:
    host = example["MFGOS_ALLOWED_HOSTS"]
    assert host == "mfgos.example.com"
    plant_id = next(line for line in Path(example["MFGOS_PLANT_FILE"]).read_text().splitlines()
                    if line.startswith("plant:")).split("id: ", 1)[1].split(",", 1)[0]
    # The health checks of the image and of compose, as Docker runs them inside the container.
    compose_check = compose_config(filled_env_example())["services"]["mfgos-1"]["healthcheck"]["test"]
    checks = [final_stage_healthcheck(), compose_check]
    for check in checks:
        for replica in replicas:
            command = [part.replace("127.0.0.1:8000", replica.url.split("//", 1)[1]) for part in check[1:]]
            assert subprocess.run([sys.executable if command[0] == "python" else command[0], *command[1:]],
                                  timeout=30).returncode == 0, command
    first, second = (httpx.Client(base_url=r.url, headers={"Host": host}, timeout=30) for r in replicas)
    with first, second:
        for replica in (first, second):
            health = replica.get("/healthz")
            assert health.status_code == 200 and health.json()["status"] == "ok"
            assert health.json()["plant"] == plant_id

        # A signed MES request, through the host name the example allows.
        secret = example["MFGOS_SIGNALS_WEBHOOK_SECRET"]
        body = json.dumps({"event_id": f"e-{uuid.uuid4().hex}", "machine": "HOB-01", "state": "DOWN",
                           "reason": "spindle"}).encode()
        signed = {"Content-Type": "application/json", SIGNATURE_HEADER: sign(secret, body)}
        stored = first.post("/signals/mes", content=body, headers=signed)
        assert stored.status_code == 200 and stored.json()["duplicate"] is False, stored.text
        again = second.post("/signals/mes", content=body, headers=signed)
        assert again.status_code == 200, again.text
        assert again.json() == {**stored.json(), "duplicate": True}, "the replicas share one database"

        forged = first.post("/signals/mes", content=body, headers={**signed, SIGNATURE_HEADER: "sha256=" + "0" * 64})
        assert forged.status_code == 401
        assert first.post("/signals/mes", content=body, headers={**signed, "Host": "evil.example"}).status_code == 400

    # A machine message through the broker reaches one of the replicas.
    publisher = paho.Client(paho.CallbackAPIVersion.VERSION2, client_id=f"line-{uuid.uuid4().hex[:8]}",
                            protocol=paho.MQTTv5)
    publisher.connect(MQTT_HOST, MQTT_PORT)
    publisher.loop_start()
    engine = make_engine(database)
    topic = f"plants/{plant_id}/GRD-02/state"
    try:
        deadline = time.monotonic() + 60
        found: list[Signal] = []
        while not found:  # until the replicas have subscribed, a message goes to nobody: send again
            assert time.monotonic() < deadline, "no replica stored the machine message"
            publisher.publish(topic, json.dumps({"state": "DOWN", "reason": "coolant"}), qos=1).wait_for_publish(10)
            time.sleep(0.5)
            with Session(engine) as session:
                found = [s for s in session.exec(select(Signal).where(Signal.source == "mqtt"))
                         if topic in json.dumps(s.payload)]
    finally:
        publisher.disconnect()
        publisher.loop_stop()
        engine.dispose()


def test_the_image_without_a_database_url_refuses_to_start(tmp_path: Path) -> None:
    """The image sets MFGOS_DATABASE_URL empty: a container started without one stops and says so,
    instead of keeping the plant's data in a SQLite file of its own."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("MFGOS_")} | image_environment() | {
        "MFGOS_PLANT_FILE": str(PLANT), "PYTHONPATH": str(ROOT)}
    assert env["MFGOS_DATABASE_URL"] == ""
    done = subprocess.run([sys.executable, "-m", "mfgos.cli", "serve", "--host", "127.0.0.1", "--port", "0"],
                          cwd=tmp_path, env=env, capture_output=True, text=True, timeout=60)
    assert done.returncode == 2, done.stderr
    assert "MFGOS_DATABASE_URL is empty" in done.stderr and "postgresql://" in done.stderr
    assert list(tmp_path.iterdir()) == []

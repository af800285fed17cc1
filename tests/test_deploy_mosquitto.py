"""deploy/mosquitto: the broker configuration the compose file and Kubernetes run, run here.

A real Mosquitto runs deploy/mosquitto/mosquitto.conf and deploy/mosquitto/acl as written, TLS
certificates from deploy/mosquitto/make-certs.sh included; only the paths (password file,
certificates, persistence) and the port are this test's own. It checks what the deployment
promises: no anonymous client, a user reads only what the ACL gives it, and a burst of 50,000
QoS 1 messages waits whole for mfgos's persistent session across a broker restart.
"""

from __future__ import annotations

import getpass
import json
import os
import shutil
import socket
import ssl
import subprocess
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import paho.mqtt.client as paho
import pytest
import yaml
from paho.mqtt.packettypes import PacketTypes
from paho.mqtt.properties import Properties

from tests.conftest import service_unavailable

pytestmark = pytest.mark.timeout(240)

DEPLOY = Path(__file__).resolve().parent.parent / "deploy" / "mosquitto"
BURST = 50_000
PASSWORDS = {"mfgos": "mfgos-pw", "line2": "line2-pw", "stranger": "stranger-pw"}
CONTAINER_PATHS = {  # where compose mounts each file -> where this test puts it
    "password_file": "passwd", "acl_file": "acl", "cafile": "certs/ca.crt", "certfile": "certs/server.crt",
    "keyfile": "certs/server.key", "persistence_location": "data/",
}


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@dataclass
class Broker:
    directory: Path
    port: int
    process: subprocess.Popen[bytes] | None = None

    def start(self) -> None:
        self.process = subprocess.Popen(["mosquitto", "-c", str(self.directory / "mosquitto.conf")],
                                        stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline:
            try:
                socket.create_connection(("127.0.0.1", self.port), timeout=1).close()
                return
            except OSError:
                if self.process.poll() is not None:
                    pytest.fail(f"mosquitto exited: {self.process.stderr.read().decode() if self.process.stderr else ''}")
                time.sleep(0.1)
        pytest.fail("mosquitto did not listen")

    def stop(self) -> None:
        """A clean stop: Mosquitto writes its persistence file, as `docker compose stop` has it do."""
        if self.process and self.process.poll() is None:
            self.process.terminate()
            self.process.wait(timeout=60)


@pytest.fixture
def broker(tmp_path: Path) -> Iterator[Broker]:
    if not shutil.which("mosquitto") or not shutil.which("mosquitto_passwd") or not shutil.which("openssl"):
        service_unavailable("mosquitto, mosquitto_passwd or openssl is not installed")
    # make-certs.sh writes next to itself: run a copy of it here.
    shutil.copy(DEPLOY / "make-certs.sh", tmp_path / "make-certs.sh")
    subprocess.run(["sh", str(tmp_path / "make-certs.sh"), "localhost", "127.0.0.1"], check=True,
                   capture_output=True, timeout=120)
    shutil.copy(DEPLOY / "acl", tmp_path / "acl")
    for user, password in PASSWORDS.items():
        subprocess.run(["mosquitto_passwd", "-b", *([] if (tmp_path / "passwd").exists() else ["-c"]),
                        str(tmp_path / "passwd"), user, password], check=True, capture_output=True)
    (tmp_path / "data").mkdir()
    port = free_port()
    lines = []
    for line in (DEPLOY / "mosquitto.conf").read_text(encoding="utf-8").splitlines():
        key, _, _value = line.partition(" ")
        if key in CONTAINER_PATHS:
            line = f"{key} {tmp_path / CONTAINER_PATHS[key]}"
        elif line == "listener 8883":
            line = f"listener {port} 127.0.0.1"
        lines.append(line)
    # Mosquitto started as root switches to the user `mosquitto`, who cannot read this directory.
    lines.append(f"user {getpass.getuser()}")
    (tmp_path / "mosquitto.conf").write_text("\n".join(lines) + "\n", encoding="utf-8")
    broker = Broker(tmp_path, port)
    broker.start()
    try:
        yield broker
    finally:
        broker.stop()


def client(broker: Broker, user: str | None, client_id: str, *, persistent: bool = False) -> paho.Client:
    """A connected MQTT 5 client over TLS, trusting the CA that make-certs.sh made."""
    mqtt = paho.Client(paho.CallbackAPIVersion.VERSION2, client_id=client_id, protocol=paho.MQTTv5)
    mqtt.tls_set(ca_certs=str(broker.directory / "certs" / "ca.crt"), tls_version=ssl.PROTOCOL_TLS_CLIENT)
    if user:
        mqtt.username_pw_set(user, PASSWORDS[user])
    mqtt.max_inflight_messages_set(100)
    mqtt.max_queued_messages_set(0)
    connected = threading.Event()
    outcome: list[object] = []

    def on_connect(_c: paho.Client, _u: object, _f: object, reason: paho.ReasonCode, _p: object) -> None:
        outcome.append(reason)
        connected.set()

    mqtt.on_connect = on_connect
    properties = Properties(PacketTypes.CONNECT)
    if persistent:
        properties.SessionExpiryInterval = 3600
    mqtt.connect("localhost", broker.port, clean_start=not persistent, properties=properties)
    mqtt.loop_start()
    assert connected.wait(20), "no CONNACK"
    if outcome[0] != 0:
        mqtt.loop_stop()
        raise ConnectionRefusedError(str(outcome[0]))
    return mqtt


def subscribe(mqtt: paho.Client, topic: str) -> list[paho.ReasonCode]:
    granted: list[paho.ReasonCode] = []
    done = threading.Event()

    def on_subscribe(_c: paho.Client, _u: object, _mid: int, codes: list[paho.ReasonCode], _p: object) -> None:
        granted.extend(codes)
        done.set()

    mqtt.on_subscribe = on_subscribe
    mqtt.subscribe(topic, qos=1)
    assert done.wait(20), f"no SUBACK for {topic}"
    return granted


def close(mqtt: paho.Client) -> None:
    mqtt.disconnect()
    mqtt.loop_stop()


def received(mqtt: paho.Client) -> list[str]:
    """The payloads `mqtt` gets from now on (Mosquitto grants a subscription the ACL denies and
    then delivers nothing the user may not read)."""
    payloads: list[str] = []
    mqtt.on_message = lambda _c, _u, message: payloads.append(message.payload.decode())
    return payloads


def test_no_anonymous_client_and_each_user_reads_only_what_the_acl_gives(broker: Broker) -> None:
    with pytest.raises(ConnectionRefusedError):
        client(broker, None, "anonymous")
    stranger, mfgos, line = (client(broker, "stranger", "stranger"), client(broker, "mfgos", "mfgos-acl"),
                             client(broker, "line2", "line2"))
    try:
        for_stranger, for_mfgos, for_line = received(stranger), received(mfgos), received(line)
        subscribe(stranger, "plants/#")
        subscribe(line, "plants/#")
        subscribe(mfgos, "$share/mfgos/plants/+/+/state")
        line.publish("plants/pune-1/HOB-01/state", '{"state": "DOWN"}', qos=1).wait_for_publish(10)
        deadline = time.monotonic() + 10
        while not for_mfgos and time.monotonic() < deadline:
            time.sleep(0.05)
        time.sleep(0.5)
        assert for_mfgos == ['{"state": "DOWN"}']
        assert for_stranger == [] and for_line == [], "only mfgos reads machine signals"
    finally:
        for mqtt in (stranger, mfgos, line):
            close(mqtt)


def test_a_burst_of_50000_qos1_messages_waits_whole_for_the_persistent_session(broker: Broker) -> None:
    """mfgos is away (a restart, an upgrade) while a line sends 50,000 states; the broker restarts
    too; mfgos comes back to every one of them, each once."""
    reader_id = "mfgos-pune-1-mfgos-1"
    reader = client(broker, "mfgos", reader_id, persistent=True)
    assert not subscribe(reader, "$share/mfgos/plants/+/+/state")[0].is_failure
    close(reader)

    line = client(broker, "line2", "line2")
    acked = threading.Semaphore(0)
    line.on_publish = lambda *_: acked.release()
    payload = {"state": "RUNNING", "reason": "x" * 60}
    for number in range(BURST):
        line.publish(f"plants/pune-1/M{number % 40:02d}/state", json.dumps({**payload, "seq": number}), qos=1)
    for _ in range(BURST):
        assert acked.acquire(timeout=60), "the broker stopped acknowledging the burst"
    close(line)

    broker.stop()
    broker.start()

    seen: list[int] = []
    everything = threading.Event()

    def on_message(_c: paho.Client, _u: object, message: paho.MQTTMessage) -> None:
        seen.append(json.loads(message.payload)["seq"])
        if len(seen) >= BURST:
            everything.set()

    mqtt = paho.Client(paho.CallbackAPIVersion.VERSION2, client_id=reader_id, protocol=paho.MQTTv5)
    mqtt.tls_set(ca_certs=str(broker.directory / "certs" / "ca.crt"), tls_version=ssl.PROTOCOL_TLS_CLIENT)
    mqtt.username_pw_set("mfgos", PASSWORDS["mfgos"])
    mqtt.on_message = on_message
    properties = Properties(PacketTypes.CONNECT)
    properties.SessionExpiryInterval = 3600
    mqtt.connect("localhost", broker.port, clean_start=False, properties=properties)
    mqtt.loop_start()
    try:
        everything.wait(120)
        time.sleep(0.5)  # anything past the burst would be a duplicate
    finally:
        close(mqtt)
    assert len(seen) == BURST and set(seen) == set(range(BURST)), \
        f"{len(seen)} delivered, {len(set(seen))} distinct of {BURST}"


def test_the_queue_limits_leave_room_for_twice_the_burst() -> None:
    """Mosquitto's defaults keep 1,000 messages per client: the file must raise both limits."""
    settings = dict(line.split(" ", 1) for line in (DEPLOY / "mosquitto.conf").read_text().splitlines()
                    if line and not line.startswith("#") and " " in line)
    assert int(settings["max_queued_messages"]) >= 2 * BURST
    assert int(settings["max_queued_bytes"]) >= 2 * BURST * 1024  # twice the burst at 1 KiB a message
    assert settings["persistence"] == "true"
    assert os.path.basename(settings["acl_file"]) == "acl"


def test_ending_a_removed_replicas_session_gives_its_share_back(broker: Broker) -> None:
    """docs/operations.md, "Scaling": Mosquitto hands a shared subscription's messages to every
    member in turn, connected or not; after scaling down, the command the page gives ends the
    removed replica's session, and the replicas left get every message again."""
    removed = client(broker, "mfgos", "mfgos-pune-1-mfgos-2", persistent=True)
    subscribe(removed, "$share/mfgos/plants/+/+/state")
    close(removed)
    kept = client(broker, "mfgos", "mfgos-pune-1-mfgos-0", persistent=True)
    payloads = received(kept)
    subscribe(kept, "$share/mfgos/plants/+/+/state")
    line = client(broker, "line2", "line2")

    def burst(count: int, expected: int) -> int:
        """Publish `count` messages; how many the kept replica got once `expected` came (or 20 s passed)."""
        before = len(payloads)
        for number in range(count):
            line.publish("plants/pune-1/HOB-01/state", json.dumps({"state": "RUNNING", "seq": number}), qos=1
                         ).wait_for_publish(10)
        deadline = time.monotonic() + 20
        while len(payloads) - before < expected and time.monotonic() < deadline:
            time.sleep(0.05)
        time.sleep(0.5)  # and nothing more comes
        return len(payloads) - before

    try:
        assert burst(100, 50) == 50, "the removed replica's session takes its share"
        ended = subprocess.run(
            ["mosquitto_sub", "-V", "mqttv5", "-i", "mfgos-pune-1-mfgos-2", "-t", "end", "-E", "-h", "localhost",
             "-p", str(broker.port), "--cafile", str(broker.directory / "certs" / "ca.crt"),
             "-u", "mfgos", "-P", PASSWORDS["mfgos"]], capture_output=True, text=True, timeout=30)
        assert ended.returncode == 0, ended.stderr
        assert burst(100, 100) == 100
    finally:
        close(kept)
        close(line)


def test_the_compose_health_check_of_the_broker_passes(broker: Broker) -> None:
    """The broker's health check in deploy/compose.yaml, run as compose runs it (paths and port here)."""
    check = yaml.safe_load((DEPLOY.parent / "compose.yaml").read_text(encoding="utf-8"))["services"]["mqtt"][
        "healthcheck"]["test"]
    assert check[0] == "CMD-SHELL"
    command = (check[1].replace("$$", "$").replace("-p 8883", f"-p {broker.port}")
               .replace("/mosquitto/certs/ca.crt", str(broker.directory / "certs" / "ca.crt")))
    for _ in range(3):  # three checks in a row, as compose's interval would make them
        done = subprocess.run(["sh", "-c", command], env={**os.environ, "MQTT_USER": "mfgos",
                                                          "MQTT_PASSWORD": PASSWORDS["mfgos"]},
                              capture_output=True, text=True, timeout=30)
        assert done.returncode == 0, done.stderr

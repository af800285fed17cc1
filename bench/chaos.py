"""The chaos suite: three `mfgos serve` replicas under load while a replica, PostgreSQL and the broker die.

    python bench/chaos.py [--scale 1.0] [--chat-rate 8] [--mqtt-rate 150] [--keep]

Everything runs on loopback and belongs to the run: a private PostgreSQL cluster (initdb into a
temporary directory, its own port), a private Mosquitto (its own port, persistence and queue
limits as deploy/mosquitto/mosquitto.conf), the fake Slack, Telegram and WhatsApp in one child
process (`tests.fakes.serve`), a fake ERPNext in another, and three replicas on fixed ports
sharing one database and one broker (MQTT shared subscription, a persistent session each).

Load at scale 1: 10,000 machine messages published to the broker (QoS 1, JSON states with their
own `ts`), 1,000 chat reports as the platforms post them (signed Slack events, Telegram updates
with the secret token, signed WhatsApp deliveries), and 300 approvals: for each of the first 300
exceptions opened from chat, the area's technician writes the fix in the chat naming the code,
and the area's supervisor presses Approve on the Slack message that asks for it. A webhook that
is not answered 200 is sent again, to the next replica, as a platform retries behind a load
balancer; a machine message the broker has not acknowledged is published again.

Meanwhile: replica 1 is killed with SIGKILL and restarted, twice; PostgreSQL is stopped with
`pg_ctl -m immediate` (a crash: recovery from the WAL) and started; the broker is stopped
(SIGTERM: it writes its persistence file) and started. Then the run waits for quiescence
(every signal processed, no notification or ERP transaction pending, every approval done) and
prints JSON with how each figure is counted:

- machine messages: published (acknowledged by the broker) vs stored signals, by source key
  (`mqtt:<topic>@<ts>#...`);
- chat events: webhooks answered 200 vs stored signals, by source key (`<platform>:<event id>`);
  a stored signal never processed counts as lost;
- notifications: every outbox row must be sent and the platform message its row records must be
  at the fake; a new message at a fake that no row records is a duplicate (a message sent
  twice: the first send was never recorded);
- exceptions: a breakdown opened on a machine while another was still open there is a duplicate;
- ERP documents: per idempotency key at the fake ERPNext (the document's name is derived from
  the key): an ERP transaction without its document is lost, a key created twice a duplicate;
- approvals: presses answered 200 vs approvals stored.

Exit status 1 when anything is lost or duplicated (or the run does not settle in time).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import math
import os
import pwd
import re
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
import urllib.parse
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

import httpx  # noqa: E402
import paho.mqtt.client as paho  # noqa: E402
import psycopg  # noqa: E402
import yaml  # noqa: E402

from erp_adapters.erpnext import document_name  # noqa: E402
from tests.fakes.slack import FakeSlack  # noqa: E402
from tests.fakes.telegram import FakeTelegram  # noqa: E402
from tests.fakes.whatsapp import FakeWhatsApp  # noqa: E402

PG_BIN = Path("/usr/lib/postgresql/15/bin")
MOSQUITTO = Path("/usr/sbin/mosquitto")
PLANT_ID = "chaos-1"
AREAS = 8
LINE_MACHINES = 16  # the machines that send states over MQTT (two per area)
OPERATORS = 48
REPLICAS = 3
SLACK_SECRET, WA_SECRET, TG_SECRET = "slack-secret", "wa-secret", "bench-secret"
ERP_USER, ERP_TOKEN = "mfgos-key", "mfgos-secret"
FULL = {"machine_messages": 10_000, "chat_reports": 1_000, "approvals": 300}
PROBLEMS = ("stopped, hydraulic leak", "is down, motor overheated", "stopped, spindle noise", "down, sensor fault")


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def service_user() -> list[str]:
    """PostgreSQL refuses to run as root: as root, run the private services as `postgres`."""
    return ["runuser", "-u", "postgres", "--"] if os.geteuid() == 0 else []


def own(path: Path) -> None:
    if os.geteuid() == 0:
        user = pwd.getpwnam("postgres")
        for root, _, files in os.walk(path):
            os.chown(root, user.pw_uid, user.pw_gid)
            for name in files:
                os.chown(Path(root) / name, user.pw_uid, user.pw_gid)


# --- the private services ------------------------------------------------------------------


class Postgres:
    """A PostgreSQL cluster of this run only: initdb into `directory`, listening on `port`."""

    def __init__(self, directory: Path) -> None:
        self.directory = directory
        self.port = free_port()
        self.data = directory / "data"

    @property
    def url(self) -> str:
        return f"postgresql://postgres@127.0.0.1:{self.port}/chaos"

    def _ctl(self, *args: str) -> None:
        subprocess.run([*service_user(), str(PG_BIN / "pg_ctl"), "-D", str(self.data), *args],
                       check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, timeout=120)

    def create(self) -> None:
        self.directory.mkdir(parents=True)
        own(self.directory)
        subprocess.run([*service_user(), str(PG_BIN / "initdb"), "-D", str(self.data), "-U", "postgres",
                        "--auth=trust", "--no-sync"], check=True, stdout=subprocess.DEVNULL, timeout=120)
        with (self.data / "postgresql.conf").open("a") as conf:
            conf.write(f"port = {self.port}\nlisten_addresses = '127.0.0.1'\nunix_socket_directories = '{self.directory}'\n"
                       "max_connections = 300\nshared_buffers = 128MB\n")
        self.start()
        with psycopg.connect(f"postgresql://postgres@127.0.0.1:{self.port}/postgres", autocommit=True) as connection:
            connection.execute("CREATE DATABASE chaos")

    def start(self) -> None:
        self._ctl("-l", str(self.directory / "server.log"), "-w", "start")

    def crash(self) -> None:
        """Stop as a crash would: no checkpoint, recovery from the WAL at the next start."""
        self._ctl("-m", "immediate", "-w", "stop")

    def stop(self) -> None:
        with contextlib.suppress(subprocess.CalledProcessError):
            self._ctl("-m", "fast", "-w", "stop")


class Broker:
    """A Mosquitto of this run only, configured as deploy/mosquitto/mosquitto.conf is for persistence and queues."""

    def __init__(self, directory: Path) -> None:
        self.directory = directory
        self.port = free_port()
        self.process: subprocess.Popen[bytes] | None = None

    def create(self) -> None:
        (self.directory / "data").mkdir(parents=True)
        (self.directory / "mosquitto.conf").write_text(
            f"listener {self.port} 127.0.0.1\nallow_anonymous true\n"
            "max_queued_messages 100000\nmax_queued_bytes 134217728\n"
            f"persistence true\npersistence_location {self.directory / 'data'}/\nautosave_interval 60\n"
            f"log_dest file {self.directory / 'mosquitto.log'}\n", encoding="utf-8")
        own(self.directory)
        self.start()

    def start(self) -> None:
        self.process = subprocess.Popen([*service_user(), str(MOSQUITTO), "-c", str(self.directory / "mosquitto.conf")],
                                        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        deadline = time.monotonic() + 30
        while True:
            try:
                socket.create_connection(("127.0.0.1", self.port), timeout=1).close()
                return
            except OSError:
                if time.monotonic() > deadline:
                    raise
                time.sleep(0.1)

    def stop(self) -> None:
        """SIGTERM: Mosquitto writes its persistence file (the queued QoS 1 messages) and exits."""
        if self.process is not None and self.process.poll() is None:
            # runuser passes SIGTERM on to mosquitto.
            self.process.send_signal(signal.SIGTERM)
            self.process.wait(timeout=60)


class Fakes:
    """The fake platforms (`tests.fakes.serve`) in a child process; `state` is what each recorded."""

    def __init__(self) -> None:
        self.process = subprocess.Popen([sys.executable, "-m", "tests.fakes.serve", "slack", "telegram", "whatsapp"],
                                        cwd=ROOT, stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
        assert self.process.stdout is not None
        self.urls: dict[str, str] = json.loads(self.process.stdout.readline())

    def state(self, name: str) -> dict[str, Any]:
        return httpx.get(f"{self.urls[name]}/_fake/state", timeout=60).json()

    def stop(self) -> None:
        assert self.process.stdin is not None
        self.process.stdin.close()
        self.process.wait(timeout=30)


class ErpFake:
    """The fake ERPNext site holding the plant (machines as workstations), in a child process."""

    def __init__(self, machines: list[str]) -> None:
        self.process = subprocess.Popen([sys.executable, str(Path(__file__).resolve()), "erp-fake", ",".join(machines)],
                                        cwd=ROOT, stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
        assert self.process.stdout is not None
        self.url = self.process.stdout.readline().strip()

    def created(self) -> list[tuple[str, str]]:
        return [tuple(pair) for pair in httpx.get(f"{self.url}/_chaos/created", timeout=60).json()]  # type: ignore[misc]

    def stop(self) -> None:
        assert self.process.stdin is not None
        self.process.stdin.close()
        self.process.wait(timeout=30)


def serve_erp_fake(machines: list[str]) -> int:
    """The child process of `ErpFake`: serves until stdin closes."""
    from starlette.responses import JSONResponse
    from starlette.types import Receive, Scope, Send

    from tests.erp_fakes import erpnext
    from tests.erp_fakes.server import serve

    site = erpnext.ErpNextState()
    site.seed()
    site.put("Company", {"name": "Chaos Works"})
    for warehouse in ("Stores - CW", "Quarantine - CW"):
        site.put("Warehouse", {"name": warehouse})
    for machine in machines:
        site.put("Workstation", {"name": machine, "workstation_name": machine})
    site.created.clear()
    inner = erpnext.make_app(site)

    async def app(scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http" and scope["path"] == "/_chaos/created":
            with site.lock:
                created = list(site.created)
            await JSONResponse(created)(scope, receive, send)
            return
        await inner(scope, receive, send)

    with serve(app) as url:
        print(url, flush=True)
        sys.stdin.read()
    return 0


# --- the plant -----------------------------------------------------------------------------


@dataclass
class Plant:
    path: Path
    chat_machines: list[str]
    line_machines: list[str]
    operators: list[dict[str, Any]]
    people: dict[str, dict[str, Any]]


def write_plant(path: Path, chat_machines: int) -> Plant:
    """Areas with presses reported from chat and line machines that send states; operators on all
    three platforms, two technicians, a planner and a supervisor (the approver, on Slack) per area."""
    per_area = math.ceil(chat_machines / AREAS)
    machines = [{"id": f"M-{a}{m:02d}", "name": f"Press {a}{m:02d}", "area": f"a{a}", "aliases": [f"press {a}{m:02d}"]}
                for m in range(per_area) for a in range(AREAS)]
    lines = [{"id": f"L-{n:02d}", "name": f"Transfer line {n:02d}", "area": f"a{n % AREAS}",
              "aliases": [f"line {n:02d}"]} for n in range(LINE_MACHINES)]
    platforms = ("whatsapp", "telegram", "slack")

    def address(platform: str, n: int) -> str:
        return {"whatsapp": f"+34600{n:06d}", "telegram": str(700000 + n), "slack": f"U0C{n:06d}"}[platform]

    people: list[dict[str, Any]] = []
    for n in range(OPERATORS):
        platform = platforms[n % 3]
        people.append({"id": f"op{n}", "name": f"Operator {n}", "roles": ["operator"], "areas": [f"a{n % AREAS}"],
                       "language": "en", "channels": {platform: address(platform, n)}})
    for a in range(AREAS):
        for t in range(2):
            platform = platforms[(a + t) % 3]
            people.append({"id": f"tech{a}_{t}", "name": f"Technician {a}.{t}", "roles": ["maintenance"],
                           "areas": [f"a{a}"], "language": "en", "channels": {platform: address(platform, 1000 + a * 10 + t)}})
        people.append({"id": f"plan{a}", "name": f"Planner {a}", "roles": ["planner"], "areas": [f"a{a}"],
                       "language": "en", "channels": {"slack": address("slack", 2000 + a)}})
        people.append({"id": f"sup{a}", "name": f"Supervisor {a}", "roles": ["supervisor"], "areas": [f"a{a}"],
                       "language": "en", "channels": {"slack": address("slack", 3000 + a)}})
    plant = {
        "plant": {"id": PLANT_ID, "name": "Chaos works", "timezone": "UTC"},
        "areas": [{"id": f"a{a}", "name": f"Area {a}"} for a in range(AREAS)],
        "machines": machines + lines,
        "people": people,
        "routing": [
            {"when": {"type": "breakdown"}, "notify": [{"role": "maintenance", "ack_within": "8h"}, {"role": "planner"}],
             "approver": "supervisor"},
            {"when": {}, "notify": [{"role": "supervisor", "ack_within": "8h"}], "approver": "supervisor"}],
        "erp": {"company": "Chaos Works", "warehouse": "Stores - CW", "quarantine_warehouse": "Quarantine - CW",
                "quality_procedure": "QP-Deviation", "operator": "HR-EMP-0001", "units": {"pcs": "Nos"},
                "timezone": "UTC"},
    }
    path.write_text(yaml.safe_dump(plant, sort_keys=False), encoding="utf-8")
    return Plant(path, [m["id"] for m in machines][:chat_machines], [m["id"] for m in lines],
                 [p for p in people if p["id"].startswith("op")], {p["id"]: p for p in people})


# --- the replicas --------------------------------------------------------------------------


@dataclass
class Replica:
    number: int
    port: int
    env: dict[str, str]
    directory: Path
    process: subprocess.Popen[bytes] | None = None
    starts: int = 0

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self) -> None:
        self.directory.mkdir(parents=True, exist_ok=True)
        log = (self.directory / "serve.log").open("ab")
        self.process = subprocess.Popen(
            [sys.executable, "-m", "mfgos.cli", "serve", "--host", "127.0.0.1", "--port", str(self.port)],
            cwd=self.directory, env=self.env, stdout=log, stderr=subprocess.STDOUT)
        self.starts += 1

    def wait_ready(self, timeout: float) -> None:
        deadline = time.monotonic() + timeout
        while True:
            assert self.process is not None
            if self.process.poll() is not None:
                raise RuntimeError(f"replica {self.number} exited: see {self.directory / 'serve.log'}")
            with contextlib.suppress(httpx.HTTPError):
                if httpx.get(f"{self.url}/healthz", timeout=2).status_code == 200:
                    return
            if time.monotonic() > deadline:
                raise RuntimeError(f"replica {self.number} did not answer /healthz in {timeout:.0f}s")
            time.sleep(0.3)

    def kill(self) -> None:
        """SIGKILL: no shutdown, no flush; whatever it held is for the others (and its restart) to finish."""
        if self.process is not None and self.process.poll() is None:
            self.process.kill()
            self.process.wait(timeout=30)

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.send_signal(signal.SIGINT)
            try:
                self.process.wait(timeout=30)
            except subprocess.TimeoutExpired:
                self.kill()


def replica_env(number: int, database: str, broker_port: int, plant: Path, fakes: Fakes, erp: ErpFake,
                directory: Path) -> dict[str, str]:
    keep = {k: v for k, v in os.environ.items() if not k.startswith("MFGOS_")}
    return keep | {
        "PYTHONPATH": str(ROOT), "MFGOS_DATABASE_URL": database, "MFGOS_PLANT_FILE": str(plant),
        "MFGOS_ATTACHMENTS_DIR": str(directory / "attachments"),
        "MFGOS_MQTT_URL": f"mqtt://127.0.0.1:{broker_port}", "MFGOS_MQTT_CLIENT_ID": f"mfgos-chaos-{number}",
        "MFGOS_MQTT_SHARED_GROUP": "chaos",
        "MFGOS_SLACK_BOT_TOKEN": "xoxb-fake", "MFGOS_SLACK_SIGNING_SECRET": SLACK_SECRET,
        "MFGOS_SLACK_API_URL": fakes.urls["slack"] + "/api/",
        "MFGOS_TELEGRAM_BOT_TOKEN": "123:FAKE", "MFGOS_TELEGRAM_API_URL": fakes.urls["telegram"] + "/bot",
        "MFGOS_TELEGRAM_WEBHOOK_SECRET": TG_SECRET,
        "MFGOS_WHATSAPP_TOKEN": "wa-token", "MFGOS_WHATSAPP_PHONE_NUMBER_ID": "1055",
        "MFGOS_WHATSAPP_API_URL": fakes.urls["whatsapp"], "MFGOS_WHATSAPP_APP_SECRET": WA_SECRET,
        "MFGOS_ERP": "erpnext", "MFGOS_ERP_URL": erp.url, "MFGOS_ERP_USER": ERP_USER, "MFGOS_ERP_TOKEN": ERP_TOKEN,
        "MFGOS_ERP_SYNC_INTERVAL": "0",
    }


# --- load ----------------------------------------------------------------------------------


@dataclass
class Tally:
    """What the load generators were told: the keys the broker and the replicas acknowledged."""

    published: set[str] = field(default_factory=set)  # MQTT source-key prefixes the broker acknowledged
    acknowledged: dict[str, str] = field(default_factory=dict)  # chat source key -> "report" | "proposal" | "press"
    retries: Counter[str] = field(default_factory=Counter)  # webhooks sent again, by the status that made us
    proposed: set[str] = field(default_factory=set)
    pressed: set[str] = field(default_factory=set)
    reports_sent: int = 0


class Webhooks:
    """Posts a webhook to the replicas in turn until one answers 200, as a platform behind a load balancer retries."""

    def __init__(self, replicas: list[Replica], tally: Tally) -> None:
        self.replicas = replicas
        self.tally = tally
        self.turn = 0
        self.client = httpx.AsyncClient(timeout=20)
        self.slack, self.telegram, self.whatsapp = FakeSlack(), FakeTelegram(), FakeWhatsApp()

    async def post(self, path: str, raw: bytes, headers: dict[str, str], key: str, what: str,
                   deadline: float = 900) -> None:
        give_up = time.monotonic() + deadline
        attempt = 0
        while True:
            replica = self.replicas[self.turn % len(self.replicas)]
            self.turn += 1
            if path == "/slack/events":  # signed when sent: Slack refuses a signature over five minutes old
                headers = headers | self.slack.sign(raw)
                if attempt:
                    headers |= {"X-Slack-Retry-Num": str(attempt), "X-Slack-Retry-Reason": "http_error"}
            try:
                response = await self.client.post(replica.url + path, content=raw, headers=headers)
                status = str(response.status_code)
            except httpx.HTTPError as error:
                status = type(error).__name__
            if status == "200":
                self.tally.acknowledged[key] = what
                return
            attempt += 1
            self.tally.retries[status] += 1
            if time.monotonic() > give_up:
                raise RuntimeError(f"webhook {key} not accepted within {deadline:.0f}s (last: {status})")
            await asyncio.sleep(0.3)

    def chat(self, person: dict[str, Any], text: str, n: int) -> tuple[str, bytes, dict[str, str], str]:
        """A text message from `person` as their platform posts it: path, body, headers, source key."""
        platform, address = next(iter(person["channels"].items()))
        if platform == "whatsapp":
            raw = json.dumps(self.whatsapp.text_message(address, text, message_id=f"wamid.C{n}")).encode()
            return "/whatsapp/webhook", raw, {"Content-Type": "application/json",
                                              "X-Hub-Signature-256": self.whatsapp.sign(raw)}, f"whatsapp:wamid.C{n}"
        if platform == "slack":
            ts = f"{1_800_000_000 + n}.{n:06d}"
            raw = json.dumps(self.slack.message_event(address, text, "D" + address[1:], ts, event_id=f"EvC{n}")).encode()
            return "/slack/events", raw, {"Content-Type": "application/json"}, f"slack:D{address[1:]}:{ts}"
        update = self.telegram.message(int(address), text, message_id=n)
        update["update_id"] = n
        return "/telegram/webhook", json.dumps(update).encode(), {
            "Content-Type": "application/json", "X-Telegram-Bot-Api-Secret-Token": TG_SECRET}, f"telegram:{address}:{n}"

    async def aclose(self) -> None:
        await self.client.aclose()


def publish_machine_messages(port: int, plant: Plant, count: int, rate: float, tally: Tally, stop: threading.Event) -> None:
    """`count` machine states over MQTT, QoS 1, each with its own `ts`; one the broker did not
    acknowledge (it was down) is published again, as a PLC gateway with a store-and-forward buffer does."""
    client = paho.Client(paho.CallbackAPIVersion.VERSION2, client_id="chaos-line-gateway", protocol=paho.MQTTv5)
    client.reconnect_delay_set(0.2, 2)
    client.connect_async("127.0.0.1", port)
    client.loop_start()
    base = int(time.time() * 1000)
    waiting: dict[str, tuple[str, bytes, Any, float]] = {}
    try:
        for n in range(count):
            if stop.is_set():
                return
            machine = plant.line_machines[n % len(plant.line_machines)]
            # Mostly running; every 8th message of a machine a stop (its breakdown opens once, then stays open).
            state = "DOWN" if (n // len(plant.line_machines)) % 8 == 7 else ("RUNNING" if n % 7 else "IDLE")
            topic, stamp = f"plants/{PLANT_ID}/{machine}/state", base + n
            payload = json.dumps({"state": state, "reason": "chaos" if state == "DOWN" else "", "ts": stamp}).encode()
            waiting[f"mqtt:{topic}@{stamp}#"] = (topic, payload, client.publish(topic, payload, qos=1), time.monotonic())
            _settle_publishes(client, waiting, tally)
            time.sleep(1 / rate)
        deadline = time.monotonic() + 600
        while waiting and time.monotonic() < deadline and not stop.is_set():
            _settle_publishes(client, waiting, tally)
            time.sleep(0.2)
    finally:
        client.disconnect()
        client.loop_stop()


def _settle_publishes(client: paho.Client, waiting: dict[str, tuple[str, bytes, Any, float]], tally: Tally) -> None:
    now = time.monotonic()
    for key, (topic, payload, info, sent) in list(waiting.items()):
        try:
            published = info.is_published()
        except RuntimeError:  # published while not connected: paho sends it when it reconnects
            published = False
        if published:
            tally.published.add(key)
            del waiting[key]
        elif now - sent > 10:  # not acknowledged in 10 s (the broker restarted): send it again
            waiting[key] = (topic, payload, client.publish(topic, payload, qos=1), now)


async def send_reports(hooks: Webhooks, plant: Plant, count: int, rate: float) -> None:
    """`count` reports: report n is about press n mod presses (the first of each opens, later ones join)."""
    tasks = []
    began = time.monotonic()
    for n in range(count):
        delay = began + n / rate - time.monotonic()
        if delay > 0:
            await asyncio.sleep(delay)
        machine = plant.chat_machines[n % len(plant.chat_machines)]
        person = plant.operators[n % len(plant.operators)]
        alias = f"press {machine[2:]}"
        text = f"{alias} {PROBLEMS[n % len(PROBLEMS)]}"
        tasks.append(asyncio.create_task(hooks.post(*hooks.chat(person, text, 100_000 + n), "report")))
        hooks.tally.reports_sent = n + 1
    await asyncio.gather(*tasks)


async def drive_approvals(hooks: Webhooks, plant: Plant, database: str, fakes: Fakes, count: int,
                          done: asyncio.Event) -> None:
    """The first `count` exceptions opened from chat: the technician proposes the fix in the chat,
    the supervisor presses Approve on the Slack message that asks them."""
    pending: set[asyncio.Task[None]] = set()
    while True:
        try:
            async with await psycopg.AsyncConnection.connect(database, autocommit=True) as connection:
                rows = await (await connection.execute(
                    "SELECT code, area_id, status FROM exceptions WHERE machine_id LIKE 'M-%%' AND type = 'breakdown'"
                    " ORDER BY id LIMIT %s", (count,))).fetchall()
        except psycopg.Error:
            await asyncio.sleep(1)  # PostgreSQL is restarting
            continue
        approved = [code for code, _, status in rows if status in ("approved", "posted", "closed")]
        if len(approved) >= count:
            break
        proposed = [(code, area) for code, area, status in rows if status == "proposed" and code not in hooks.tally.pressed]
        messages: list[dict[str, Any]] = []
        if proposed:
            with contextlib.suppress(httpx.HTTPError):
                messages = (await asyncio.to_thread(fakes.state, "slack"))["messages"]
        for code, area, status in rows:
            if status in ("open", "acknowledged") and code not in hooks.tally.proposed:
                hooks.tally.proposed.add(code)
                tech = plant.people[f"tech{area[1:]}_0"]
                text = f"{code} fixed, replaced the hydraulic seal, running again"
                n = 500_000 + int(code[2:])
                pending.add(asyncio.create_task(hooks.post(*hooks.chat(tech, text, n), "proposal")))
        for code, area in proposed:
            supervisor = plant.people[f"sup{area[1:]}"]["channels"]["slack"]
            asking = [m for m in messages if m["to"] == supervisor and f"approve:{code}" in FakeSlack.buttons(m)]
            if not asking:
                continue
            hooks.tally.pressed.add(code)
            payload = hooks.slack.button_payload(supervisor, f"approve:{code}", asking[-1])
            payload["trigger_id"] = f"chaos-{code}"
            raw = urllib.parse.urlencode({"payload": json.dumps(payload)}).encode()
            pending.add(asyncio.create_task(hooks.post(
                "/slack/events", raw, {"Content-Type": "application/x-www-form-urlencoded"}, f"press:{code}", "press")))
        for task in [task for task in pending if task.done()]:
            task.result()  # a webhook never accepted ends the run
            pending.discard(task)
        await asyncio.sleep(1)
    await asyncio.gather(*pending)
    done.set()


# --- chaos ---------------------------------------------------------------------------------


@dataclass
class Event:
    at: float  # share of the chat reports sent
    what: str
    done_at: float | None = None


async def chaos(events: list[Event], tally: Tally, total_reports: int, replicas: list[Replica], pg: Postgres,
                broker: Broker, log: list[dict[str, Any]], began: float, start_timeout: float) -> None:
    for event in events:
        while tally.reports_sent < event.at * total_reports:
            await asyncio.sleep(0.1)
        started = time.monotonic()
        if event.what == "kill replica 1":
            replicas[0].kill()
            await asyncio.sleep(2)
            replicas[0].start()
            await asyncio.to_thread(replicas[0].wait_ready, start_timeout)
        elif event.what == "restart postgresql":
            await asyncio.to_thread(pg.crash)
            await asyncio.sleep(2)
            await asyncio.to_thread(pg.start)
        elif event.what == "restart broker":
            await asyncio.to_thread(broker.stop)
            await asyncio.sleep(2)
            await asyncio.to_thread(broker.start)
        log.append({"event": event.what, "at_s": round(started - began, 1),
                    "back_after_s": round(time.monotonic() - started, 1)})


# --- counting ------------------------------------------------------------------------------


def quiet(database: str) -> dict[str, int] | None:
    """What is still to do, or None when PostgreSQL cannot be asked right now."""
    try:
        with psycopg.connect(database, autocommit=True) as connection:
            return {
                "unprocessed_signals": connection.execute("SELECT count(*) FROM signals WHERE processed_at IS NULL").fetchone()[0],  # type: ignore[index]
                "pending_notifications": connection.execute("SELECT count(*) FROM notifications WHERE status = 'pending'").fetchone()[0],  # type: ignore[index]
                "pending_erp": connection.execute("SELECT count(*) FROM erp_transactions WHERE status = 'pending'").fetchone()[0],  # type: ignore[index]
            }
    except psycopg.Error:
        return None


def count(database: str, tally: Tally, fakes: Fakes, erp: ErpFake) -> dict[str, Any]:
    with psycopg.connect(database, autocommit=True) as connection:
        signals = connection.execute("SELECT source_key, processed_at IS NOT NULL, error FROM signals").fetchall()
        notes = connection.execute("SELECT kind, channel, status, platform_message_id, dedupe_key FROM notifications").fetchall()
        exceptions = connection.execute("SELECT code, machine_id, type, opened_at, closed_at, status FROM exceptions"
                                        " ORDER BY opened_at").fetchall()
        txns = connection.execute("SELECT idempotency_key, status, kind FROM erp_transactions").fetchall()
        approvals = connection.execute("SELECT count(*) FROM approvals WHERE decision = 'approve' AND accepted").fetchone()[0]  # type: ignore[index]
    stored = Counter(key for key, _, _ in signals)
    processed = {key for key, done, _ in signals if done}
    failed = [(key, error) for key, _, error in signals if error]

    # Machine messages: the stored key starts with the published prefix (the digest follows it).
    mqtt_stored = Counter(re.sub(r"#.*$", "#", key) for key in stored if key.startswith("mqtt:"))
    mqtt_lost = [key for key in tally.published if key not in mqtt_stored]
    mqtt_unprocessed = [key for key in stored if key.startswith("mqtt:") and key not in processed]

    chat_keys = set(tally.acknowledged)
    chat_lost = [key for key in chat_keys if key not in stored and not key.startswith("press:")]
    chat_stored = [key for key in stored if not key.startswith("mqtt:")]
    chat_unprocessed = [key for key in chat_stored if key not in processed]

    # Notifications: each row sent, its platform message at the fake; fake messages no row records are sent twice.
    at_fakes: dict[str, set[str]] = {
        "slack": {f"{m['channel']}:{m['ts']}" for m in fakes.state("slack")["messages"]},
        "telegram": {f"{m['chat_id']}:{m['message_id']}" for m in fakes.state("telegram")["sent"]},
        "whatsapp": {m["id"] for m in fakes.state("whatsapp")["sent"]},
    }
    # A button edit is a new message where the platform cannot edit one (its row records that message).
    recorded = {(channel, pmid) for _, channel, status, pmid, _ in notes if status == "sent" and pmid}
    not_sent = [key for _, _, status, _, key in notes if status != "sent"]
    missing_at_fake = [pmid for channel, pmid in recorded if channel in at_fakes and pmid not in at_fakes[channel]]
    unrecorded = {channel: sorted(ids - {pmid for c, pmid in recorded if c == channel}) for channel, ids in at_fakes.items()}

    # Exceptions: a second breakdown opened on a machine while one was open there.
    twice = []
    last_open: dict[tuple[str, str], Any] = {}
    for code, machine, kind, opened_at, closed_at, _ in exceptions:
        if machine is None:
            continue
        earlier = last_open.get((machine, kind))
        if earlier is not None and (earlier[1] is None or earlier[1] > opened_at):
            twice.append(f"{earlier[0]} and {code} on {machine}")
        last_open[(machine, kind)] = (code, closed_at)

    # ERP documents, by the name the adapter derives from the idempotency key.
    created = Counter(name for _, name in erp.created())
    expected = {document_name(key): (key, status) for key, status, _ in txns}
    erp_lost = [key for name, (key, _) in expected.items() if created[name] == 0]
    erp_twice = [name for name, n in created.items() if n > 1]
    erp_foreign = [name for name in created if name not in expected]

    lost = {
        "machine_messages": len(mqtt_lost), "chat_events": len(chat_lost),
        "signals_never_processed": len(mqtt_unprocessed) + len(chat_unprocessed),
        "notifications_not_sent": len(not_sent), "notifications_missing_at_fakes": len(missing_at_fake),
        "erp_documents": len(erp_lost), "approvals": max(0, len(tally.pressed) - approvals),
    }
    duplicates = {
        "signals_per_key": sum(n - 1 for n in stored.values() if n > 1),
        "machine_messages_per_published_key": sum(n - 1 for n in mqtt_stored.values() if n > 1),
        "notifications_sent_twice": sum(len(ids) for ids in unrecorded.values()),
        "exceptions_opened_twice": len(twice), "erp_documents_per_key": len(erp_twice) + len(erp_foreign),
    }
    return {
        "messages_in": {"machine_published": len(tally.published), "machine_stored": sum(mqtt_stored.values()),
                        "chat_acknowledged": len([k for k in chat_keys if not k.startswith("press:")]),
                        "chat_stored": len(chat_stored),
                        "by_kind": dict(Counter(tally.acknowledged.values())),
                        "signals_failed": len(failed), "webhook_retries": dict(tally.retries)},
        "exceptions": {"opened": len(exceptions), "by_status": dict(Counter(e[5] for e in exceptions)),
                       "from_chat": sum(1 for e in exceptions if (e[1] or "").startswith("M-")),
                       "from_machine_states": sum(1 for e in exceptions if (e[1] or "").startswith("L-"))},
        "notifications": {"rows": len(notes), "sent": sum(1 for n in notes if n[2] == "sent"),
                          "at_fakes": {channel: len(ids) for channel, ids in at_fakes.items()},
                          "by_kind": dict(Counter(n[0] for n in notes))},
        "approvals": {"pressed": len(tally.pressed), "stored": approvals},
        "erp_documents": {"transactions": len(txns), "by_status": dict(Counter(t[1] for t in txns)),
                          "created_at_fake": sum(created.values())},
        "lost": sum(lost.values()), "lost_by_kind": lost,
        "duplicates": sum(duplicates.values()), "duplicates_by_kind": duplicates,
        "examples": {"machine_lost": mqtt_lost[:5], "chat_lost": chat_lost[:5], "not_sent": not_sent[:5],
                     "missing_at_fakes": missing_at_fake[:5], "sent_twice": {c: ids[:5] for c, ids in unrecorded.items() if ids},
                     "opened_twice": twice[:5], "erp_lost": erp_lost[:5], "erp_twice": (erp_twice + erp_foreign)[:5],
                     "failed": failed[:3]},
    }


# --- the run -------------------------------------------------------------------------------


@contextlib.contextmanager
def workspace(keep: bool) -> Iterator[Path]:
    path = Path(tempfile.mkdtemp(prefix="mfgos-chaos-"))
    path.chmod(0o755)
    try:
        yield path
    finally:
        if not keep:
            shutil.rmtree(path, ignore_errors=True)


async def run(directory: Path, scale: float, chat_rate: float, mqtt_rate: float, settle: float,
              start_timeout: float) -> dict[str, Any]:
    sizes = {name: max(1, round(n * scale)) for name, n in FULL.items()}
    plant = write_plant(directory / "plant.yaml", max(AREAS, math.ceil(sizes["approvals"] * 1.25 / AREAS) * AREAS))
    pg, broker = Postgres(directory / "postgres"), Broker(directory / "mosquitto")
    pg.create()
    broker.create()
    fakes, erp = Fakes(), ErpFake(plant.chat_machines + plant.line_machines)
    replicas = [Replica(n, free_port(), {}, directory / f"replica-{n}") for n in range(1, REPLICAS + 1)]
    tally = Tally()
    hooks = Webhooks(replicas, tally)
    stop = threading.Event()
    try:
        for replica in replicas:
            replica.env = replica_env(replica.number, pg.url, broker.port, plant.path, fakes, erp, replica.directory)
            replica.start()
        for replica in replicas:
            await asyncio.to_thread(replica.wait_ready, start_timeout)
        began = time.monotonic()
        events = [Event(0.15, "kill replica 1"), Event(0.35, "restart postgresql"), Event(0.55, "restart broker"),
                  Event(0.75, "kill replica 1")]
        log: list[dict[str, Any]] = []
        approvals_done = asyncio.Event()
        publisher = asyncio.create_task(asyncio.to_thread(
            publish_machine_messages, broker.port, plant, sizes["machine_messages"], mqtt_rate, tally, stop))
        tasks = [asyncio.create_task(send_reports(hooks, plant, sizes["chat_reports"], chat_rate)),
                 asyncio.create_task(chaos(events, tally, sizes["chat_reports"], replicas, pg, broker, log, began,
                                                   start_timeout)),
                 asyncio.create_task(drive_approvals(hooks, plant, pg.url, fakes, sizes["approvals"], approvals_done)),
                 publisher]
        load_deadline = time.monotonic() + settle
        for task in tasks:
            await asyncio.wait_for(task, timeout=max(1.0, load_deadline - time.monotonic()))
        load_seconds = time.monotonic() - began
        # Quiescence: nothing left to do, three looks in a row a second apart.
        calm, remaining = 0, None
        while calm < 3:
            if time.monotonic() > load_deadline:
                raise RuntimeError(f"not quiet within the deadline: {remaining}")
            remaining = quiet(pg.url)
            calm = calm + 1 if remaining is not None and not any(remaining.values()) else 0
            await asyncio.sleep(1)
        result = count(pg.url, tally, fakes, erp)
        return {"benchmark": "chaos", "scale": scale, "sizes": sizes, "replicas": REPLICAS,
                "chat_rate": chat_rate, "mqtt_rate": mqtt_rate, "load_seconds": round(load_seconds, 1),
                "settled_seconds": round(time.monotonic() - began, 1), "chaos": log, **result}
    finally:
        stop.set()
        await hooks.aclose()
        for replica in replicas:
            replica.stop()
        broker.stop()
        pg.stop()
        fakes.stop()
        erp.stop()


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    if argv[:1] == ["erp-fake"]:
        return serve_erp_fake(argv[1].split(","))
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--scale", type=float, default=1.0,
                        help="share of the full load (10,000 machine messages, 1,000 reports, 300 approvals)")
    parser.add_argument("--chat-rate", type=float, default=8.0, help="chat reports per second")
    parser.add_argument("--mqtt-rate", type=float, default=150.0, help="machine messages per second")
    parser.add_argument("--deadline", type=float, default=1800.0,
                        help="seconds for the load and for settling after it (a run past it fails)")
    parser.add_argument("--start-timeout", type=float, default=900.0,
                        help="seconds a replica may take to answer /healthz after a (re)start")
    parser.add_argument("--keep", action="store_true", help="keep the working directory (logs of every service)")
    args = parser.parse_args(argv)
    with workspace(args.keep) as directory:
        try:
            result = asyncio.run(run(directory, args.scale, args.chat_rate, args.mqtt_rate, args.deadline,
                                     args.start_timeout))
        except (RuntimeError, TimeoutError) as error:
            print(json.dumps({"benchmark": "chaos", "error": str(error) or type(error).__name__,
                              "directory": str(directory)}), flush=True)
            return 1
        if args.keep:
            result["directory"] = str(directory)
    print(json.dumps(result, indent=2, default=str))
    ok = result["lost"] == 0 and result["duplicates"] == 0
    print("PASS" if ok else "FAIL", file=sys.stderr)
    return 0 if ok else 1


if __name__ == "__main__":
    raise SystemExit(main())

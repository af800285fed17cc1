"""Black-box probe: ONE real `mfgos serve` process, every channel configured, probed only from outside.

The process runs the demo plant on its own SQLite file, Slack/Telegram/WhatsApp against the local
fakes, the bridge and the MES webhook with secrets, and MQTT on the local Mosquitto under a plant
alias of its own. The tests talk to it over HTTP (httpx, raw sockets where a client would not send
the hostile request) and MQTT, sign Slack and WhatsApp deliveries as the platforms do, and read the
store straight from the SQLite file only where nothing outside shows it (unreadable signals, nothing
stored). Every HTTP answer passes through `_secured`, so a missing security header fails the test
that received it. The tests share the process; each sets up what it needs itself.
"""

from __future__ import annotations

import json
import os
import queue
import re
import signal
import socket
import subprocess
import sys
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

import httpx
import paho.mqtt.client as paho
import pytest
from sqlalchemy.engine import Engine
from sqlmodel import Session, select

from mfgos.auth import SESSION_COOKIE
from models import Signal
from models.db import make_engine
from tests.conftest import service_unavailable
from tests.fakes.slack import FakeSlack
from tests.fakes.telegram import FakeTelegram
from tests.fakes.whatsapp import FakeWhatsApp

pytestmark = pytest.mark.timeout(120)

DEMO_PLANT = Path(__file__).parents[1] / "mfgos" / "data" / "demo_plant.yaml"
MQTT_HOST, MQTT_PORT = "127.0.0.1", 1883
STARTUP_TIMEOUT = 60.0
WAIT = 30.0  # the machine is shared: generous, and always polled
LINK = re.compile(r"https?://\S+/auth/magic/[A-Za-z0-9_-]+")
TOM, SARA = "tom", "sara"
TOM_SLACK = "U01TOM"
TELEGRAM_SECRET, BRIDGE_SECRET, MES_SECRET = "tg-secret", "bridge-secret", "mes-secret"
HOSTILE = "hobber 1 band ho gaya <!channel> <@U999> <https://evil.example|click>"
T = TypeVar("T")


def until(probe: Callable[[], T], what: str, timeout: float = WAIT) -> T:
    """The first truthy value of `probe`, polled; fails naming `what` when none comes in time."""
    deadline = time.monotonic() + timeout
    while True:
        value = probe()
        if value:
            return value
        if time.monotonic() > deadline:
            pytest.fail(f"timed out after {timeout:.0f}s waiting for {what}")
        time.sleep(0.1)


def assert_secured(status: int, headers: Any, what: str) -> None:
    """The browser's security headers, on every answer, refusals included."""
    csp = headers.get("content-security-policy") or ""
    assert csp, f"{what} ({status}): no Content-Security-Policy"
    assert "'unsafe-inline'" not in csp and "frame-ancestors 'none'" in csp, f"{what}: CSP {csp!r}"
    assert headers.get("x-content-type-options") == "nosniff", f"{what} ({status}): no nosniff"
    assert headers.get("referrer-policy"), f"{what} ({status}): no Referrer-Policy"


def _secured(response: httpx.Response) -> None:
    assert_secured(response.status_code, response.headers, f"{response.request.method} {response.request.url.raw_path!r}")


@dataclass
class Probe:
    url: str
    port: int
    slack: FakeSlack
    telegram: FakeTelegram
    whatsapp: FakeWhatsApp
    engine: Engine
    alias: str
    output: list[str]

    def client(self) -> httpx.Client:
        """A browser or a platform: every answer it gets is checked for the security headers."""
        return httpx.Client(base_url=self.url, timeout=30, event_hooks={"response": [_secured]})

    def signals(self) -> list[Signal]:
        with Session(self.engine) as session:
            return list(session.exec(select(Signal).order_by(Signal.id)))

    def raw(self, request: bytes, timeout: float = 30) -> tuple[int, dict[str, str], bytes]:
        """One request as written, over a plain socket: (status, headers, start of the body)."""
        with socket.create_connection(("127.0.0.1", self.port), timeout=timeout) as sock:
            sock.sendall(request)
            data = b""
            while b"\r\n\r\n" not in data:
                chunk = sock.recv(65536)
                if not chunk:
                    break
                data += chunk
        head, _, body = data.partition(b"\r\n\r\n")
        lines = head.decode("latin-1").split("\r\n")
        headers = {k.strip().lower(): v.strip() for k, _, v in (line.partition(":") for line in lines[1:])}
        return int(lines[0].split()[1]), headers, body


def _read(process: subprocess.Popen[str], lines: queue.Queue[str]) -> None:
    assert process.stdout is not None
    for line in process.stdout:
        lines.put(line)


def _end_mqtt_session(client_id: str) -> None:
    """Drop the persistent session `serve` left on the shared broker."""
    client = paho.Client(paho.CallbackAPIVersion.VERSION2, client_id=client_id, protocol=paho.MQTTv5)
    client.connect(MQTT_HOST, MQTT_PORT, clean_start=True)
    client.disconnect()


@pytest.fixture(scope="module")
def probe(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Probe]:
    try:
        socket.create_connection((MQTT_HOST, MQTT_PORT), timeout=2).close()
    except OSError:
        service_unavailable(f"Mosquitto at {MQTT_HOST}:{MQTT_PORT} is unreachable")
    tmp = tmp_path_factory.mktemp("probe")
    alias = f"p{uuid.uuid4().hex[:10]}"
    plant = tmp / "plant.yaml"
    plant.write_text(DEMO_PLANT.read_text(encoding="utf-8")
                     + f"\nsignals:\n  plant_aliases: [{alias}]\n  sparkplug_groups: [{alias}]\n", encoding="utf-8")
    slack, telegram, whatsapp = FakeSlack().start(), FakeTelegram().start(), FakeWhatsApp().start()
    database = f"sqlite:///{tmp / 'probe.db'}"
    client_id = f"mfgos-probe-{alias}"
    env = {k: v for k, v in os.environ.items() if not k.startswith("MFGOS_")} | {
        "PYTHONUNBUFFERED": "1", "MFGOS_DATABASE_URL": database, "MFGOS_PLANT_FILE": str(plant),
        "MFGOS_ATTACHMENTS_DIR": str(tmp / "attachments"),
        "MFGOS_SLACK_BOT_TOKEN": slack.token, "MFGOS_SLACK_SIGNING_SECRET": slack.signing_secret,
        "MFGOS_SLACK_API_URL": slack.api_url,
        "MFGOS_TELEGRAM_BOT_TOKEN": telegram.token, "MFGOS_TELEGRAM_API_URL": telegram.api_url,
        "MFGOS_TELEGRAM_WEBHOOK_SECRET": TELEGRAM_SECRET,
        "MFGOS_WHATSAPP_TOKEN": whatsapp.token, "MFGOS_WHATSAPP_APP_SECRET": whatsapp.app_secret,
        "MFGOS_WHATSAPP_VERIFY_TOKEN": "wa-verify", "MFGOS_WHATSAPP_PHONE_NUMBER_ID": whatsapp.phone_number_id,
        "MFGOS_WHATSAPP_API_URL": whatsapp.api_url,
        "MFGOS_BRIDGE_SECRET": BRIDGE_SECRET, "MFGOS_BRIDGE_CALLBACK_URL": "http://127.0.0.1:9/never-called",
        "MFGOS_SIGNALS_WEBHOOK_SECRET": MES_SECRET,
        "MFGOS_MQTT_URL": f"mqtt://{MQTT_HOST}:{MQTT_PORT}", "MFGOS_MQTT_CLIENT_ID": client_id,
    }
    process = subprocess.Popen([sys.executable, "-m", "mfgos.cli", "serve", "--host", "127.0.0.1", "--port", "0"],
                               cwd=tmp, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    lines: queue.Queue[str] = queue.Queue()
    output: list[str] = []
    threading.Thread(target=_read, args=(process, lines), daemon=True).start()
    engine = make_engine(database)
    try:
        url = ""
        deadline = time.monotonic() + STARTUP_TIMEOUT
        while not url or not any("channels" in line for line in output):
            if time.monotonic() > deadline or process.poll() is not None:
                pytest.fail(f"mfgos serve did not start: {''.join(output)}")
            try:
                line = lines.get(timeout=0.2)
            except queue.Empty:
                continue
            output.append(line)
            if "mfgos console:" in line:
                url = line.split("mfgos console:", 1)[1].strip().rstrip("/")
        yield Probe(url=url, port=int(url.rsplit(":", 1)[1]), slack=slack, telegram=telegram,
                    whatsapp=whatsapp, engine=engine, alias=alias, output=output)
    finally:
        if process.poll() is None:
            process.send_signal(signal.SIGINT)
            try:
                process.wait(timeout=30)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait(timeout=10)
        while not lines.empty():
            output.append(lines.get())
        engine.dispose()
        _end_mqtt_session(client_id)
        for fake in (slack, telegram, whatsapp):
            fake.stop()
    assert not any("Traceback" in line for line in output), "".join(output)


@pytest.fixture(scope="module")
def tom(probe: Probe) -> Iterator[httpx.Client]:
    """A browser signed in as Tom through the link Slack brought him (test 2 checks each step)."""
    with probe.client() as browser:
        before = len(probe.slack.posted(to=TOM_SLACK))
        assert browser.post("/auth/login", json={"person_id": TOM}).status_code == 202
        message = until(lambda: probe.slack.posted(to=TOM_SLACK)[before:], "the sign-in link in Tom's Slack")[0]
        link = LINK.search(message["text"])
        assert link, message["text"]
        assert browser.get(link.group(0)).status_code == 303 and SESSION_COOKIE in browser.cookies
        yield browser


# --- 1. anonymous ---------------------------------------------------------------------------

ANONYMOUS_REFUSED = [
    ("GET", "/api/session"), ("GET", "/api/plant"), ("GET", "/api/exceptions"), ("GET", "/api/exceptions/E-0001"),
    ("GET", "/api/people/tom/messages"), ("GET", "/api/erp"), ("GET", "/api/kpis"), ("GET", "/api/nothing-here"),
    ("POST", "/api/messages"), ("POST", "/api/actions"), ("GET", "/attachments/x"),
]


def test_anonymous_callers_get_401_json_the_sign_in_page_and_health(probe: Probe) -> None:
    with probe.client() as anonymous:
        for method, path in ANONYMOUS_REFUSED:
            body = {"person_id": TOM, "text": "hobber 1 down", "action": "ack", "exception": "E-0001"}
            answer = anonymous.request(method, path, json=body if method == "POST" else None)
            assert answer.status_code == 401, f"{method} {path}: {answer.status_code} {answer.text[:200]}"
            assert answer.headers["content-type"].startswith("application/json"), f"{method} {path}"
            answer.json()
        page = anonymous.get("/")
        assert page.status_code == 200 and "/static/login.js" in page.text and "/static/app.js" not in page.text
        health = anonymous.get("/healthz")
        assert health.status_code == 200 and health.json()["status"] == "ok"


# --- 2. sign-in by chat link ------------------------------------------------------------------


def test_sign_in_by_a_link_in_toms_slack(probe: Probe) -> None:
    before = len(probe.slack.messages)
    with probe.client() as browser, probe.client() as stranger:
        unknown = stranger.post("/auth/login", json={"person_id": "nobody"})
        known = browser.post("/auth/login", json={"person_id": TOM})
        assert known.status_code == unknown.status_code == 202
        assert known.content == unknown.content, "the answer does not tell who exists"
        message = until(lambda: probe.slack.posted(to=TOM_SLACK), "the link in Tom's Slack")[-1]
        assert "Anmeldung" in message["text"], f"Tom reads German: {message['text']!r}"
        link = LINK.search(message["text"])
        assert link and link.group(0).startswith(probe.url + "/auth/magic/")
        opened = browser.get(link.group(0))
        assert opened.status_code == 303 and opened.headers["location"] == "/"
        cookie = opened.headers["set-cookie"]
        assert cookie.startswith(f"{SESSION_COOKIE}=")
        assert "httponly" in cookie.lower() and "samesite=lax" in cookie.lower(), cookie
        again = stranger.get(link.group(0))
        assert again.status_code == 410 and "no longer works" in again.text
        assert SESSION_COOKIE not in stranger.cookies
        me = browser.get("/api/session")
        assert me.status_code == 200 and me.json()["person"]["id"] == TOM
        assert browser.get("/").text.count("/static/app.js") == 1, "signed in, / is the console"
        # Nobody but Tom was written to about it (the "nobody" request went nowhere).
        assert {m["to"] for m in probe.slack.messages[before:] if "/auth/magic/" in m["text"]} == {TOM_SLACK}


# --- 3. acting as someone else ----------------------------------------------------------------


def test_tom_cannot_act_or_read_as_sara(tom: httpx.Client) -> None:
    assert tom.post("/api/actions", json={"person_id": SARA, "action": "ack", "exception": "E-0001"}).status_code == 403
    assert tom.post("/api/messages", json={"person_id": SARA, "text": "what is down?"}).status_code == 403
    assert tom.get(f"/api/people/{SARA}/messages").status_code == 403
    assert tom.get(f"/api/people/{TOM}/messages").status_code == 200
    said = tom.post("/api/messages", json={"person_id": TOM, "text": "what is down?", "event_id": uuid.uuid4().hex})
    assert said.status_code == 200, said.text


# --- 4. forged, oversized and malformed webhooks ----------------------------------------------


def test_forged_oversized_and_malformed_webhooks_are_refused_without_a_5xx(probe: Probe) -> None:
    answers: list[tuple[str, int]] = []

    def seen(what: str, status: int, expected: int | tuple[int, ...]) -> None:
        answers.append((what, status))
        assert status in ((expected,) if isinstance(expected, int) else expected), f"{what}: {status}"

    event = json.dumps(FakeSlack.message_event(TOM_SLACK, "test", "D01TOM", f"{time.time():.6f}")).encode()
    slack_json = {"Content-Type": "application/json"}
    with probe.client() as platform:
        signed = probe.slack.sign(event)
        forged = {**signed, "X-Slack-Signature": "v0=" + "0" * 64}
        seen("slack bad signature", platform.post("/slack/events", content=event, headers=slack_json | forged).status_code, 401)
        stamp = {**signed, "X-Slack-Request-Timestamp": "abc"}
        seen("slack timestamp abc", platform.post("/slack/events", content=event, headers=slack_json | stamp).status_code, 401)
        junk = b"this is not json {{{"
        seen("slack non-JSON unsigned", platform.post("/slack/events", content=junk, headers=slack_json).status_code, 401)
        seen("slack non-JSON signed", platform.post("/slack/events", content=junk,
                                                    headers=slack_json | probe.slack.sign(junk)).status_code, 200)

        before = len(probe.signals())
        update = json.dumps({"message": [1]}).encode()
        seen("telegram wrong secret", platform.post("/telegram/webhook", content=update, headers={
            "Content-Type": "application/json", "X-Telegram-Bot-Api-Secret-Token": "wrong"}).status_code, (401, 403))
        seen("telegram message [1]", platform.post("/telegram/webhook", content=update, headers={
            "Content-Type": "application/json", "X-Telegram-Bot-Api-Secret-Token": TELEGRAM_SECRET}).status_code, 200)
        assert len(probe.signals()) == before, "nothing stored"

        entry = json.dumps({"entry": "x"}).encode()
        seen("whatsapp entry x", platform.post("/whatsapp/webhook", content=entry, headers={
            "Content-Type": "application/json", "X-Hub-Signature-256": probe.whatsapp.sign(entry)}).status_code, 200)
        seen("whatsapp unsigned", platform.post("/whatsapp/webhook", content=entry,
                                                headers={"Content-Type": "application/json"}).status_code, 401)
        seen("path with %00", platform.post("/slack/events%00", content=event, headers=slack_json).status_code, 400)
        seen("mes unsigned", platform.post("/signals/mes", json={"event": "down", "machine": "HOB-01"}).status_code,
             (401, 403))

    # 2 MiB declared and not sent: the answer comes without the server waiting for (or reading) the body.
    started = time.monotonic()
    status, headers, _ = probe.raw(b"POST /slack/events HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\n"
                                   b"Content-Length: 2097152\r\n\r\n{", timeout=20)
    assert_secured(status, headers, "2 MiB declared")
    seen("slack 2 MiB declared", status, 413)
    assert time.monotonic() - started < 15, "answered without waiting for the body"
    assert all(status < 500 for _, status in answers), answers


# --- 5. poison MQTT, then a valid message ------------------------------------------------------


def publish(topic: str, payload: bytes | dict[str, Any]) -> None:
    client = paho.Client(paho.CallbackAPIVersion.VERSION2, protocol=paho.MQTTv5)
    client.connect(MQTT_HOST, MQTT_PORT)
    client.loop_start()
    try:
        data = json.dumps(payload).encode() if isinstance(payload, dict) else payload
        client.publish(topic, data, qos=1).wait_for_publish(timeout=10)
    finally:
        client.loop_stop()
        client.disconnect()


def test_poison_mqtt_is_stored_unreadable_and_the_valid_message_behind_it_is_processed(
        probe: Probe, tom: httpx.Client) -> None:
    alias = probe.alias
    marker = uuid.uuid4().hex[:8]
    attempts = iter(range(10_000))

    def subscribed() -> bool:
        """Until `serve` has subscribed a message goes to nobody: send a marker until one is stored."""
        if any(str(s.payload.get("payload", {}).get("ts", "")).startswith(marker) for s in probe.signals()):
            return True
        attempt = next(attempts)
        if attempt % 10 == 0:
            publish(f"plants/{alias}/TST-01/state", {"state": "RUNNING", "ts": f"{marker}{attempt}"})
        return False

    until(subscribed, "serve to take MQTT messages")
    deep, garbage = f"plants/{alias}/CNC-11/state", f"spBv1.0/{alias}/DDATA/gw-1/CNC-11"
    publish(deep, b"[" * 30_000 + b"]" * 30_000)
    publish(garbage, b"\x12\xff\xff\xff\xff\x0f\x08" + bytes(range(200)))
    publish(f"plants/{alias}/GRD-02/state", {"state": "DOWN", "reason": "behind the poison"})

    def grinder_down() -> bool:
        machines = {m["id"]: m for m in tom.get("/api/plant").json()["machines"]}
        return machines["GRD-02"]["running"] is False

    until(grinder_down, "GRD-02 to show down in /api/plant")
    unreadable = {s.payload.get("topic"): s for s in probe.signals() if s.kind == "unreadable"}
    assert {deep, garbage} <= set(unreadable), f"unreadable: {list(unreadable)}"
    assert "deeper" in (unreadable[deep].error or ""), unreadable[deep].error
    assert all(unreadable[t].processed_at is not None for t in (deep, garbage))
    assert tom.get("/healthz").json()["status"] == "ok"


# --- 6. escaping on Slack ----------------------------------------------------------------------


def test_a_hostile_slack_report_reaches_slack_escaped(probe: Probe) -> None:
    before = len(probe.slack.messages)
    event = json.dumps(FakeSlack.message_event(TOM_SLACK, HOSTILE, "D01TOM", f"{time.time():.6f}")).encode()
    with probe.client() as platform:
        answer = platform.post("/slack/events", content=event,
                               headers={"Content-Type": "application/json", **probe.slack.sign(event)})
        assert answer.status_code == 200, answer.text

    def shown(message: dict[str, Any]) -> str:
        return message["text"] + " " + json.dumps(message["blocks"], ensure_ascii=False)

    quoting = until(lambda: [m for m in probe.slack.messages[before:] if "evil.example" in shown(m)],
                    "an alert quoting the report on Slack")
    assert any("&lt;!channel&gt;" in message["text"] for message in quoting), [m["text"] for m in quoting]
    assert any("&lt;!channel&gt;" in json.dumps(message["blocks"]) for message in quoting)
    for message in probe.slack.messages[before:]:
        for raw in ("<!channel>", "<@U999>", "<https://evil"):
            assert raw not in shown(message), f"{raw} reached Slack raw in a message to {message['to']}: {shown(message)[:400]}"


# --- 7. security headers and the Host check ----------------------------------------------------


def test_every_answer_is_secured_and_an_unknown_host_is_refused(probe: Probe) -> None:
    with probe.client() as browser:
        for path in ("/", "/healthz", "/static/app.js", "/auth/magic/nothing", "/api/plant", "/no-such-page"):
            browser.get(path)  # `_secured` checks each answer
        refused = browser.get("/api/plant", headers={"Host": "evil.example"})
        assert refused.status_code == 400
    status, headers, _ = probe.raw(b"GET / HTTP/1.1\r\nHost: evil.example\r\nConnection: close\r\n\r\n")
    assert status == 400
    assert_secured(status, headers, "unknown Host")

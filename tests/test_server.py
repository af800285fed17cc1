"""`mfgos demo --port 0` as a real process: recovery at start, the console, the worker, Ctrl-C."""

from __future__ import annotations

import os
import queue
import signal
import socket
import subprocess
import sys
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import httpx
import pytest

from mfgos.config import DEMO_PLANT, Settings
from mfgos.runtime import Runtime
from mfgos.web import CONSOLE, ConsoleChannel
from routing.clock import SimulatedClock

STARTUP_TIMEOUT = 60


def last_wednesday_morning() -> datetime:
    """09:00 in Pune on a Wednesday at least a day ago: tom is on shift then, so a report starts a
    10-minute escalation timer that is long overdue by the time the server starts."""
    now = datetime.now(ZoneInfo("Asia/Kolkata"))
    days_back = (now.weekday() - 2) % 7 or 7
    return (now - timedelta(days=days_back)).replace(hour=9, minute=0, second=0, microsecond=0)


class Demo:
    def __init__(self, process: subprocess.Popen[str]) -> None:
        self.process = process
        self.lines: queue.Queue[str] = queue.Queue()
        self.output: list[str] = []
        threading.Thread(target=self._read, daemon=True).start()

    def _read(self) -> None:
        assert self.process.stdout is not None
        for line in self.process.stdout:
            self.lines.put(line)

    def wait_for(self, marker: str, timeout: float = STARTUP_TIMEOUT) -> str:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            try:
                line = self.lines.get(timeout=0.2)
            except queue.Empty:
                if self.process.poll() is not None:
                    break
                continue
            self.output.append(line)
            if marker in line:
                return line
        stderr = self.process.stderr.read() if self.process.poll() is not None and self.process.stderr else ""
        pytest.fail(f"no {marker!r} from mfgos demo; stdout: {''.join(self.output)!r} stderr: {stderr!r}")


@pytest.fixture
def start_demo(tmp_path: Path) -> Iterator[Callable[..., Demo]]:
    started: list[subprocess.Popen[str]] = []
    env = {**os.environ, "PYTHONUNBUFFERED": "1"}
    for name in ("MFGOS_DATABASE_URL", "MFGOS_PLANT_FILE", "MFGOS_ERP"):
        env.pop(name, None)

    def start(*args: str, command: str = "demo", **variables: str) -> Demo:
        if command == "serve" and "--plant" not in args:  # `serve` needs a plant file; the demo's will do
            variables = {"MFGOS_PLANT_FILE": str(DEMO_PLANT), **variables}
        process = subprocess.Popen([sys.executable, "-m", "mfgos.cli", command, *args], cwd=tmp_path,
                                   env={**env, **variables}, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                                   text=True)
        started.append(process)
        return Demo(process)

    yield start
    for process in started:
        if process.poll() is None:
            process.kill()
            process.wait(timeout=10)


def poll_until(read: Callable[[], Any], done: Callable[[Any], bool], timeout: float = 15) -> Any:
    deadline = time.monotonic() + timeout
    value = read()
    while not done(value):
        if time.monotonic() > deadline:
            pytest.fail(f"gave up waiting; last value: {value}")
        time.sleep(0.1)
        value = read()
    return value


def test_demo_recovers_serves_and_stops_on_ctrl_c(tmp_path: Path, start_demo: Callable[..., Demo]) -> None:
    # Before the server runs: a report whose escalation timer came due while nothing ran, and a
    # question stored but never processed (a crash between storing and processing).
    settings = Settings(database_url=f"sqlite:///{tmp_path / 'mfgos.db'}", plant_file=DEMO_PLANT, erp="ledger")
    before = Runtime(settings, clock=SimulatedClock(last_wednesday_morning()), channels={CONSOLE: ConsoleChannel()})
    before.receive_chat(channel=CONSOLE, address="ravi", person_id="ravi", event_id="before-1",
                        text="hobber 1 band ho gaya, spindle se awaaz aa rahi hai. wo 1042")
    before.receive(source=CONSOLE, source_key="console:before-2", kind="chat", person_id="deepa", process=False,
                   payload={"channel": CONSOLE, "address": "deepa", "text": "what is down?", "exception_ref": None,
                            "action": None, "reply_to": None, "attachments": []})
    overdue = before.next_due()
    assert overdue is not None and overdue < datetime.now(UTC)  # nothing has fired it yet
    before.engine.dispose()

    demo = start_demo("--port", "0")
    recovered = demo.wait_for("processed")
    assert "processed 1 message(s) stored before the last stop" in recovered
    url = demo.wait_for("mfgos console:").split("mfgos console:", 1)[1].strip()
    assert url.startswith("http://127.0.0.1:") and not url.endswith(":0/")

    with httpx.Client(base_url=url, timeout=10) as http:
        assert http.get("/healthz").json()["status"] == "ok"
        page = http.get("/")
        assert page.status_code == 200 and "mfgos console" in page.text

        # The overdue timer fired at start: tom did not acknowledge, so lena was paged.
        thread = poll_until(lambda: http.get("/api/exceptions/E-0001").json(),
                            lambda t: any(e["kind"] == "escalated" for e in t["timeline"]))
        assert any(n["to"] == "lena" and n["kind"] == "escalation" for n in thread["notifications"])
        # The stored question was answered.
        answers = http.get("/api/people/deepa/messages").json()["messages"]
        assert any(m["kind"] == "reply" and "HOB-01" in m["text"] for m in answers)

        # The worker delivers new messages on its own.
        sent = http.post("/api/messages", json={"person_id": "tom", "text": "bin unterwegs",
                                                "exception": "E-0001", "event_id": str(uuid.uuid4())})
        assert sent.status_code == 200
        poll_until(lambda: http.get("/api/exceptions/E-0001").json(),
                   lambda t: t["status"] == "acknowledged"
                   and all(n["status"] in ("sent", "not_configured") for n in t["notifications"]))

    demo.process.send_signal(signal.SIGINT)
    assert demo.process.wait(timeout=20) == 0


def test_a_busy_port_is_a_clear_error(start_demo: Callable[..., Demo]) -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        demo = start_demo("--port", str(taken.getsockname()[1]))
        assert demo.process.wait(timeout=STARTUP_TIMEOUT) == 1
        assert demo.process.stderr is not None
        assert "cannot listen on 127.0.0.1:" in demo.process.stderr.read()


def test_serve_mounts_the_configured_channels_webhooks(start_demo: Callable[..., Demo]) -> None:
    serve = start_demo("--host", "127.0.0.1", "--port", "0", command="serve", MFGOS_PLANT_FILE=str(DEMO_PLANT),
                       MFGOS_BRIDGE_SECRET="s3cret",
                       MFGOS_BRIDGE_CALLBACK_URL="http://127.0.0.1:9/never-called")
    url = serve.wait_for("mfgos console:").split("mfgos console:", 1)[1].strip()
    assert "channels bridge, console" in serve.wait_for("channels")
    with httpx.Client(base_url=url, timeout=10) as http:
        assert http.get("/healthz").json()["status"] == "ok"
        # Mounted beside the console, and it checks signatures: an unsigned request changes nothing.
        assert http.post("/bridge/inbound", json={"from": "+919800000001", "text": "hi"}).status_code == 401
        assert http.get("/api/exceptions").status_code == 401, "serve: the REST API needs a sign-in or a token"
    serve.process.send_signal(signal.SIGINT)
    assert serve.process.wait(timeout=20) == 0

"""`mfgos serve` as a real process with any subset of channels, including none at all."""

from __future__ import annotations

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

import httpx
import pytest

STARTUP_TIMEOUT = 60
DEMO_PLANT = Path(__file__).parents[1] / "mfgos" / "data" / "demo_plant.yaml"
CHANNEL_VARIABLES = ("SLACK", "TELEGRAM", "WHATSAPP", "BRIDGE", "MQTT", "OPCUA", "SIGNALS_WEBHOOK")


class Served:
    """One `mfgos serve` process; its stdout read on a thread so a marker can be waited for."""

    def __init__(self, process: subprocess.Popen[str], env: dict[str, str], cwd: Path) -> None:
        self.process, self.env, self.cwd = process, env, cwd
        self.lines: queue.Queue[str] = queue.Queue()
        self.output: list[str] = []
        threading.Thread(target=self._read, daemon=True).start()

    def _read(self) -> None:
        assert self.process.stdout is not None
        for line in self.process.stdout:
            self.lines.put(line)

    def wait_for(self, marker: str) -> str:
        deadline = time.monotonic() + STARTUP_TIMEOUT
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
        if self.process.poll() is None:
            self.process.kill()
        _, stderr = self.process.communicate(timeout=10)
        pytest.fail(f"no {marker!r} from mfgos serve; stdout: {''.join(self.output)!r} stderr: {stderr!r}")


@pytest.fixture
def serve(tmp_path: Path) -> Iterator[Callable[..., Served]]:
    """`serve(**variables)` starts one; only the variables given configure anything."""
    env = {k: v for k, v in os.environ.items()
           if not (k.startswith("MFGOS_") and k != "MFGOS_TEST_DATABASE_URL")} | {"PYTHONUNBUFFERED": "1"}
    started: list[subprocess.Popen[str]] = []

    def start(**variables: str) -> Served:
        full = {**env, "MFGOS_PLANT_FILE": str(DEMO_PLANT), **variables}
        process = subprocess.Popen(
            [sys.executable, "-m", "mfgos.cli", "serve", "--host", "127.0.0.1", "--port", "0"], cwd=tmp_path,
            env=full, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        started.append(process)
        return Served(process, full, tmp_path)

    yield start
    for process in started:
        if process.poll() is None:
            process.kill()
            process.wait(timeout=10)


def healthy_and_stops(served: Served) -> str:
    url = served.wait_for("mfgos console:").split("mfgos console:", 1)[1].strip()
    channels = served.wait_for("channels")
    with httpx.Client(base_url=url, timeout=10) as http:
        assert http.get("/healthz").json()["status"] == "ok"
        # The console's own channel works: a message is taken and answered (as Ravi, with an act
        # token made by the CLI on the same store; anonymous callers are refused).
        assert http.post("/api/messages", json={"text": "what is down?"}).status_code == 401
        made = subprocess.run([sys.executable, "-m", "mfgos.cli", "token", "create", "t", "--scope", "act",
                               "--as", "ravi"], cwd=served.cwd, env=served.env, capture_output=True, text=True,
                              timeout=120)
        assert made.returncode == 0, made.stderr
        token = made.stdout.strip().splitlines()[-1]
        said = http.post("/api/messages", json={"text": "what is down?", "event_id": str(uuid.uuid4())},
                         headers={"Authorization": f"Bearer {token}"})
        assert said.status_code == 200, said.text
    served.process.send_signal(signal.SIGINT)
    assert served.process.wait(timeout=20) == 0
    return channels


def test_serve_with_no_chat_channel_runs_the_console(serve: Callable[..., Served]) -> None:
    """Console only: the channel hub has nothing to start and must still start the outbox worker."""
    channels = healthy_and_stops(serve())
    assert "channels console |" in channels


def test_serve_with_machines_only_reaches_healthz(serve: Callable[..., Served]) -> None:
    """MQTT from the local Mosquitto and no chat platform."""
    channels = healthy_and_stops(serve(MFGOS_MQTT_URL="mqtt://127.0.0.1:1883",
                                       MFGOS_MQTT_CLIENT_ID=f"mfgos-serve-{uuid.uuid4().hex[:8]}"))
    assert "channels console |" in channels

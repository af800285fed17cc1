"""`mfgos serve` needs a plant file; `mfgos demo --reset` starts the demo afresh (real processes)."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from mfgos.config import DEMO_PLANT, Settings
from mfgos.runtime import Runtime
from mfgos.web import CONSOLE, ConsoleChannel

ROOT = Path(__file__).resolve().parent.parent
EXAMPLE_PLANT = ROOT / "tests" / "data" / "pune_plant.yaml"
STARTUP_TIMEOUT = 90


@pytest.fixture
def other_plant(tmp_path: Path) -> Path:
    """A plant that is not the demo: the example plant under another id."""
    path = tmp_path / "chakan.yaml"
    path.write_text(EXAMPLE_PLANT.read_text(encoding="utf-8").replace("id: pune-1,", "id: chakan-2,"),
                    encoding="utf-8")
    return path


@pytest.fixture
def environment() -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("MFGOS_")}
    return {**env, "PYTHONUNBUFFERED": "1", "PYTHONPATH": str(ROOT)}


@pytest.fixture
def processes() -> Iterator[list[subprocess.Popen[str]]]:
    started: list[subprocess.Popen[str]] = []
    yield started
    for process in started:
        if process.poll() is None:
            process.kill()
            process.wait(timeout=10)


def mfgos(*args: str, cwd: Path, env: dict[str, str], timeout: float = 60) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "mfgos.cli", *args], cwd=cwd, env=env, capture_output=True,
                          text=True, timeout=timeout)


def start(processes: list[subprocess.Popen[str]], *args: str, cwd: Path, env: dict[str, str]) -> tuple[
        subprocess.Popen[str], str]:
    """Start `mfgos ARGS` and wait for the console URL it prints."""
    process = subprocess.Popen([sys.executable, "-m", "mfgos.cli", *args], cwd=cwd, env=env, text=True,
                               stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    processes.append(process)
    deadline, output = time.monotonic() + STARTUP_TIMEOUT, []
    assert process.stdout is not None
    while time.monotonic() < deadline:
        line = process.stdout.readline()
        if not line and process.poll() is not None:
            break
        output.append(line)
        if "mfgos console:" in line:
            return process, line.split("mfgos console:", 1)[1].strip()
    stderr = process.stderr.read() if process.stderr and process.poll() is not None else ""
    pytest.fail(f"no console URL; stdout {''.join(output)!r} stderr {stderr!r}")


def stop(process: subprocess.Popen[str]) -> None:
    process.send_signal(signal.SIGINT)
    assert process.wait(timeout=30) == 0


def test_serve_without_a_plant_file_refuses_to_start(tmp_path: Path, environment: dict[str, str]) -> None:
    done = mfgos("serve", "--host", "127.0.0.1", "--port", "0", cwd=tmp_path, env=environment)
    assert done.returncode == 2
    assert "MFGOS_PLANT_FILE" in done.stderr and "--plant" in done.stderr and "mfgos demo" in done.stderr
    assert not (tmp_path / "mfgos.db").exists()  # refused before touching anything


def test_serve_runs_the_plant_file_it_is_given(tmp_path: Path, environment: dict[str, str], other_plant: Path,
                                               processes: list[subprocess.Popen[str]]) -> None:
    # One channel configured (the bridge), as a production `serve` has.
    environment |= {"MFGOS_BRIDGE_SECRET": "s3cret", "MFGOS_BRIDGE_CALLBACK_URL": "http://127.0.0.1:9/never-called"}
    process, url = start(processes, "serve", "--host", "127.0.0.1", "--port", "0", "--plant", str(other_plant),
                         cwd=tmp_path, env=environment)
    assert httpx.get(url + "healthz", timeout=10).json()["plant"] == "chakan-2"
    stop(process)


def demo_database_with_an_exception(directory: Path, plant: Path = DEMO_PLANT) -> Path:
    database = directory / "mfgos.db"
    runtime = Runtime(Settings(database_url=f"sqlite:///{database}", plant_file=plant, erp="ledger"),
                      channels={CONSOLE: ConsoleChannel()})
    runtime.receive_chat(channel=CONSOLE, address="ravi", person_id="ravi", event_id="r-1",
                         text="hobber 1 band ho gaya, wo 1042")
    runtime.engine.dispose()
    return database


def test_demo_reset_starts_fresh(tmp_path: Path, environment: dict[str, str],
                                 processes: list[subprocess.Popen[str]]) -> None:
    demo_database_with_an_exception(tmp_path)
    process, url = start(processes, "demo", "--port", "0", cwd=tmp_path, env=environment)
    assert [e["code"] for e in httpx.get(url + "api/exceptions", timeout=10).json()["exceptions"]] == ["E-0001"]
    stop(process)
    process, url = start(processes, "demo", "--port", "0", "--reset", cwd=tmp_path, env=environment)
    assert httpx.get(url + "api/exceptions", timeout=10).json()["exceptions"] == []
    stop(process)


def test_demo_reset_refuses_a_database_that_is_not_the_demos(tmp_path: Path, environment: dict[str, str],
                                                            other_plant: Path) -> None:
    database = demo_database_with_an_exception(tmp_path, plant=other_plant)
    before = database.read_bytes()
    done = mfgos("demo", "--port", "0", "--reset", "--database", f"sqlite:///{database}", cwd=tmp_path,
                 env=environment)
    assert done.returncode == 2 and "not the demo plant" in done.stderr and "nothing deleted" in done.stderr
    assert database.read_bytes() == before
    refused = mfgos("demo", "--reset", "--database", "postgresql://nobody@127.0.0.1:1/x", cwd=tmp_path,
                    env=environment)
    assert refused.returncode == 2 and "is not one" in refused.stderr


def test_demo_refuses_simulator_options_without_simulate(tmp_path: Path, environment: dict[str, str]) -> None:
    """`--faults`, `--seed` and `--broker` shape the simulated machines: given alone they would be ignored."""
    done = mfgos("demo", "--port", "0", "--faults", "3", "--seed", "7", cwd=tmp_path, env=environment)
    assert done.returncode == 2 and "--faults, --seed only apply with --simulate" in done.stderr
    assert not list(tmp_path.glob("*.db")), "nothing started"

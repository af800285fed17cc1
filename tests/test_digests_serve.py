"""Two `mfgos serve` replicas on one PostgreSQL database: at the digest's minute on the wall clock
(APScheduler), each person named by the plant file's `digests:` gets it once (docs/digests.md)."""

from __future__ import annotations

import math
import os
import queue
import signal
import subprocess
import sys
import threading
import time
from collections import Counter
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest
from sqlmodel import Session, select

from models import Notification, make_engine
from tests.conftest import postgres_schema_url

pytestmark = pytest.mark.timeout(480)

ROOT = Path(__file__).resolve().parents[1]
PLANT = ROOT / "tests" / "data" / "pune_digest_plant.yaml"
STARTUP_TIMEOUT = 150.0
LEAD = timedelta(minutes=3)  # from the start of the replicas to the digest: both are up by then


@pytest.fixture
def database() -> Iterator[str]:
    yield from postgres_schema_url()


def plant_with_digest_at(tmp_path: Path, moment: datetime) -> Path:
    """The digest plant with one shift digest a day, at `moment`'s Pune time (a whole minute)."""
    text = PLANT.read_text(encoding="utf-8")
    local = moment.astimezone(ZoneInfo("Asia/Kolkata"))
    path = tmp_path / "plant.yaml"
    path.write_text(text[:text.index("digests:")] + f'digests:\n  shift: {{roles: [supervisor, manager], at: ["{local:%H:%M}"]}}\n',
                    encoding="utf-8")
    return path


def start(tmp_path: Path, number: int, env: dict[str, str]) -> tuple[subprocess.Popen[str], queue.Queue[str]]:
    directory = tmp_path / f"mfgos-{number}"
    directory.mkdir()
    process = subprocess.Popen([sys.executable, "-m", "mfgos.cli", "serve", "--host", "127.0.0.1", "--port", "0"],
                               cwd=directory, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    lines: queue.Queue[str] = queue.Queue()

    def read() -> None:
        assert process.stdout is not None
        for line in process.stdout:
            lines.put(line)

    threading.Thread(target=read, daemon=True).start()
    return process, lines


def wait_for_console(process: subprocess.Popen[str], lines: queue.Queue[str], output: list[str]) -> None:
    deadline = time.monotonic() + STARTUP_TIMEOUT
    while time.monotonic() < deadline and process.poll() is None:
        try:
            line = lines.get(timeout=0.2)
        except queue.Empty:
            continue
        output.append(line)
        if "mfgos console:" in line:
            return
    pytest.fail(f"mfgos serve did not start: {''.join(output)}")


def digests_sent(database: str) -> list[Notification]:
    engine = make_engine(database)
    try:
        with Session(engine) as session:
            return list(session.exec(select(Notification).where(Notification.kind == "digest")))
    finally:
        engine.dispose()


def test_two_serve_replicas_send_the_digest_once_per_person(tmp_path: Path, database: str) -> None:
    now = datetime.now(UTC)
    due = datetime.fromtimestamp(math.ceil((now + LEAD).timestamp() / 60) * 60, UTC)
    env = {k: v for k, v in os.environ.items() if not k.startswith("MFGOS_")} | {
        "PYTHONUNBUFFERED": "1", "PYTHONPATH": str(ROOT), "MFGOS_DATABASE_URL": database,
        "MFGOS_PLANT_FILE": str(plant_with_digest_at(tmp_path, due)),
        "MFGOS_ATTACHMENTS_DIR": str(tmp_path / "attachments")}
    replicas = [start(tmp_path, number, env) for number in (1, 2)]
    outputs: list[list[str]] = [[], []]
    try:
        for (process, lines), output in zip(replicas, outputs, strict=True):
            wait_for_console(process, lines, output)
        assert datetime.now(UTC) < due - timedelta(seconds=5), "both replicas must be up before the digest's minute"
        assert digests_sent(database) == [], "nothing before the digest's minute (the first pass only starts it)"
        deadline = due + timedelta(seconds=90)
        while datetime.now(UTC) < deadline and len(digests_sent(database)) < 3:
            time.sleep(1)
        time.sleep(3)  # a second replica's pass at the same minute would have written by now
        rows = digests_sent(database)
        assert Counter(row.person_id for row in rows) == {"sara": 1, "neha": 1, "kiran": 1}
        assert all(row.created_at >= due for row in rows), "sent at the digest's minute, not before"
        assert all(row.created_at < due + timedelta(seconds=30) for row in rows), "at the digest's minute"
        label = f"{due.astimezone(ZoneInfo('Asia/Kolkata')):%H:%M}"
        heads = {row.person_id: row.text.split(",")[0] for row in rows}
        assert heads == {"sara": f"Resumen del turno {label}-{label}", "neha": f"Schichtbericht {label}-{label}",
                         "kiran": f"Shift {label}-{label} ka saar"}, "the period since the same time yesterday"
        for process, _ in replicas:
            assert process.poll() is None, "both replicas still run"
    finally:
        for process, _ in replicas:
            if process.poll() is None:
                process.send_signal(signal.SIGINT)
                try:
                    process.wait(timeout=30)
                except subprocess.TimeoutExpired:
                    process.kill()
                    process.wait(timeout=10)
        for (_, lines), output in zip(replicas, outputs, strict=True):
            while not lines.empty():
                output.append(lines.get())
    for output in outputs:
        assert not any("Traceback" in line for line in output), "".join(output)

"""`mfgos chat --as PERSON` as a subprocess with piped stdin, on a temp SQLite file.

The chat runs on the system clock, so who is on shift depends on when the test runs; the
assertions use people who are always reachable (lena, deepa: no shifts) or the reporter.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

REPORT = "hobber 1 band ho gaya, spindle se awaaz aa rahi hai. wo 1042"


@pytest.fixture
def run_chat(tmp_path: Path):  # type: ignore[no-untyped-def]
    env = {**os.environ, "MFGOS_DATABASE_URL": f"sqlite:///{tmp_path / 'chat.db'}", "NO_COLOR": "1",
           "COLUMNS": "200"}
    env.pop("MFGOS_PLANT_FILE", None)

    def run(person: str, *lines: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run([sys.executable, "-m", "mfgos.cli", "chat", "--as", person],
                              input="".join(f"{line}\n" for line in lines), capture_output=True, text=True,
                              cwd=tmp_path, env=env, timeout=120)

    return run


def test_a_report_opens_an_exception_and_the_thread_carries_on(run_chat) -> None:  # type: ignore[no-untyped-def]
    ravi = run_chat("ravi", REPORT, "/open", "/quit")
    assert ravi.returncode == 0, ravi.stderr
    assert "chatting as Ravi Kumar" in ravi.stdout
    assert "E-0001 (opened) E-0001 khula: HOB-01" in ravi.stdout  # the reply, in ravi's language
    assert "E-0001 breakdown on HOB-01 [open] WOs WO-1042" in ravi.stdout  # /open

    # deepa (planner) was paged; her chat opens with the alert she has not seen yet.
    deepa = run_chat("deepa", "what is down?")
    assert deepa.returncode == 0, deepa.stderr
    assert "[slack] E-0001 (alert)" in deepa.stdout
    assert "Down now: HOB-01" in deepa.stdout

    # deepa, paged for it, presses ack on the thread; ravi sees it when he looks again. (Only
    # someone paged, the approver or a manager may: lena is paged only once maintenance is late.)
    deepa = run_chat("deepa", "/ack", "/thread E-0001", "/ack")
    assert deepa.returncode == 0, deepa.stderr
    assert "/ack on E-0001: now acknowledged" in deepa.stdout
    ravi_again = run_chat("ravi", "")
    assert "Deepa Iyer ne acknowledge kiya" in ravi_again.stdout


def test_commands_explain_mistakes(run_chat) -> None:  # type: ignore[no-untyped-def]
    result = run_chat("sara", "/approve", "/thread E-0042", "/frobnicate", "/help", "/quit", "never read")
    assert result.returncode == 0, result.stderr
    assert "no thread for /approve" in result.stdout
    assert "unknown exception E-0042" in result.stdout
    assert "unknown command /frobnicate" in result.stdout
    assert "/reject [reason]" in result.stdout


def test_an_unknown_person_is_refused_with_the_list(run_chat) -> None:  # type: ignore[no-untyped-def]
    result = run_chat("nobody")
    assert result.returncode == 2
    assert "unknown person 'nobody'" in result.stderr
    assert "ravi" in result.stderr and "Sara Khan (supervisor)" in result.stderr


def test_replay_without_json_prints_readable_tables(tmp_path: Path) -> None:
    scenario = Path(__file__).parent / "scenarios" / "breakdown_ledger.yaml"
    result = subprocess.run([sys.executable, "-m", "mfgos.cli", "replay", str(scenario)], capture_output=True,
                            text=True, cwd=tmp_path, env={**os.environ, "COLUMNS": "220", "NO_COLOR": "1"},
                            timeout=120)
    assert result.returncode == 0, result.stderr
    lines = result.stdout.splitlines()

    def row(*cells: str) -> str:
        found = [line for line in lines if all(cell in line for cell in cells)]
        assert found, f"no line with {cells} in:\n{result.stdout}"
        return found[0]

    row("E-0001", "breakdown", "HOB-01", "closed", "WO-1042")  # exceptions
    row("+51m", "meena tried to decide; refused: only someone with the supervisor role")  # the timeline
    row("+0m", "tom", "maintenance", "slack", "alert")  # notifications: elapsed, to, role, channel
    row("maintenance request", "posted", "MR-000001", "machine: HOB-01")  # the ERP
    assert "1 exception(s)" in lines[-1] and "1 posted" in lines[-1]

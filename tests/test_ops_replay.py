"""What a replay reports as still pending when its horizon ends (`mfgos replay`)."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
PLANT = ROOT / "tests" / "data" / "pune_plant.yaml"


def test_a_timer_beyond_the_horizon_is_reported_pending(tmp_path: Path) -> None:
    """The maintenance acknowledgement is due 10 minutes after the report; the scenario ends at 5."""
    scenario = tmp_path / "short.yaml"
    scenario.write_text(f"""plant: {PLANT}
start: "2026-11-25T09:00:00+05:30"
until: 5m
events:
  - {{at: 0s, chat: {{from: ravi, channel: whatsapp, text: "hobber 1 band ho gaya, wo 1042"}}}}
""", encoding="utf-8")

    def replay(*args: str) -> str:
        done = subprocess.run([sys.executable, "-m", "mfgos.cli", "replay", str(scenario), *args], cwd=tmp_path,
                              capture_output=True, text=True, timeout=180)
        assert done.returncode == 0, done.stderr
        return done.stdout

    result = json.loads(replay("--json"))
    assert result["end"] == "2026-11-25T09:05:00+05:30"
    assert result["pending"] == {"erp_transactions": 0, "mes_transactions": 0, "notifications": 0, "timers": 1}
    assert not any(n["kind"] == "escalation" for n in result["notifications"])
    assert "Still pending at the end (2026-11-25T09:05:00+05:30): 1 escalation timer(s)." in replay()

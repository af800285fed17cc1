"""When the MES is told what (routing/mes.py), through a replay on the embedded local MES.

The machine that already runs again when the fix is approved: the approval sends all five at
once, the reason code with the real downtime (from the state signals), in order; the local MES's
book holds each once.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

from mes_adapters.local import LocalMes
from mfgos.replay import replay
from models.db import make_engine
from tests.test_mes_replay import write_scenario

START = datetime.fromisoformat("2026-11-25T09:00:00+05:30")
FIXED_FIRST = """\
plant: plant.yaml
start: "2026-11-25T09:00:00+05:30"
events:
  - {at: 0s, signal: {source: mqtt, topic: plants/pune-1/HOB-01/state, payload: {state: FAULT}}}
  - {at: 3m, action: {from: tom, exception: 1, kind: ack}}
  - {at: 20m, signal: {source: mqtt, topic: plants/pune-1/HOB-01/state, payload: {state: RUNNING}}}
  - {at: 21m, chat: {from: tom, channel: slack, exception: 1, text: "fixed, replaced the hob arbor bearing, running again"}}
  - {at: 25m, action: {from: sara, exception: 1, kind: approve}}
"""


def at(minutes: float) -> str:
    return (START + timedelta(minutes=minutes)).astimezone(UTC).isoformat()


def test_a_machine_running_before_the_approval_gets_everything_at_the_approval(tmp_path: Path) -> None:
    scenario = write_scenario(tmp_path)
    scenario.write_text(FIXED_FIRST, encoding="utf-8")
    url = f"sqlite:///{tmp_path / 'r.db'}"
    result = replay(scenario, url)

    rows = result["mes_transactions"]
    assert [(r["kind"], r["fields"].get("status")) for r in rows] == [
        ("machine_status", "down"), ("work_order_hold", None), ("downtime_reason", None),
        ("machine_status", "running"), ("work_order_resume", None)]
    assert {r["created_at"] for r in rows} == {(START + timedelta(minutes=25)).isoformat()}
    assert all(r["status"] == "sent" and r["reference"] for r in rows)
    reason = rows[2]["fields"]
    assert reason == {"machine": "HOB-01", "exception": "E-0001", "reason_code": "DT-110", "down_at": at(0),
                      "up_at": at(20), "downtime_minutes": 20.0, "type": "breakdown",
                      "reason": "fixed, replaced the hob arbor bearing, running again"}
    assert rows[3]["fields"]["at"] == rows[4]["fields"]["at"] == at(20)
    assert rows[1]["fields"]["work_order"] == rows[4]["fields"]["work_order"] == "WO-1042"

    engine = make_engine(url)
    try:
        book = LocalMes(engine).documents()
    finally:
        engine.dispose()
    assert [d.reference for d in book] == [r["reference"] for r in rows]
    assert [d.reference[:2] for d in book] == ["MS", "WH", "DR", "MS", "WR"]

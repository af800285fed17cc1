"""End to end through `mfgos replay`: a breakdown approved and its machine running again reach the
fake MES over HTTP as exactly one hold, one resume, one status down and up, one reason code.

The replay runs as its own process (`python -m mfgos.cli replay --json`) with MFGOS_MES=rest and
the fake MES of tests/mes_fakes/rest.py serving in this process; the fake throttles the first
request and loses the answer to the second after storing it, so the run goes through a retry
and a resend of a key the MES already holds. Replaying the same scenario into the same
database again sends nothing more.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import yaml

from tests.erp_fakes.server import serve
from tests.mes_fakes.rest import PATH, FakeMesState, make_app

ROOT = Path(__file__).parent
START = datetime.fromisoformat("2026-11-25T09:00:00+05:30")
MES_SECTION = {
    "site": "PUNE",
    "machines": {"HOB-01": "EQ-HOB1"},
    "reason_codes": [{"code": "DT-110", "types": ["breakdown"], "words": ["bearing", "spindle"]},
                     {"code": "DT-100", "types": ["breakdown"]}],
    "default_reason": "DT-999",
}
SCENARIO = """\
# HOB-01 faults; tom acknowledges and proposes the fix; sara approves (twice: the second is refused);
# the machine runs again at 40m, and says so twice.
plant: plant.yaml
start: "2026-11-25T09:00:00+05:30"
events:
  - {at: 0s, signal: {source: mqtt, topic: plants/pune-1/HOB-01/state, payload: {state: FAULT, reason: spindle overload}}}
  - {at: 3m, action: {from: tom, exception: 1, kind: ack}}
  - {at: 30m, action: {from: tom, exception: 1, kind: propose, text: "replaced the hob arbor bearing"}}
  - {at: 31m, action: {from: sara, exception: 1, kind: approve}}
  - {at: 32m, action: {from: sara, exception: 1, kind: approve}}
  - {at: 40m, signal: {source: mqtt, topic: plants/pune-1/HOB-01/state, payload: {state: RUNNING}}}
  - {at: 41m, signal: {source: mqtt, topic: plants/pune-1/HOB-01/state, payload: {state: RUNNING}}}
"""


def at(minutes: float) -> str:
    """A moment of the scenario as the MES gets it: ISO 8601 in UTC."""
    return (START + timedelta(minutes=minutes)).astimezone(UTC).isoformat()


def write_scenario(directory: Path) -> Path:
    plant = yaml.safe_load((ROOT / "data" / "pune_plant.yaml").read_text(encoding="utf-8"))
    plant["mes"] = MES_SECTION
    (directory / "plant.yaml").write_text(yaml.safe_dump(plant, sort_keys=False, allow_unicode=True), encoding="utf-8")
    scenario = directory / "breakdown_mes.yaml"
    scenario.write_text(SCENARIO, encoding="utf-8")
    return scenario


def run_replay(scenario: Path, database_url: str, url: str, token: str) -> dict[str, Any]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("MFGOS_")}
    env.update(MFGOS_MES="rest", MFGOS_MES_URL=url, MFGOS_MES_TOKEN=token, MFGOS_MES_TIMEOUT="5",
               PYTHONPATH=str(ROOT.parent))
    done = subprocess.run([sys.executable, "-m", "mfgos.cli", "replay", "--json", "--database", database_url,
                           str(scenario)], env=env, capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stderr[-3000:]
    return json.loads(done.stdout)


def test_a_breakdown_approved_and_running_again_reaches_the_mes_once(tmp_path: Path, database_url: str) -> None:
    scenario = write_scenario(tmp_path)
    state = FakeMesState()
    state.faults.throttle, state.faults.retry_after = 1, "5"  # the first request: 429, retry in 5 s
    state.faults.lose_after_save = 1  # the next one is stored, and its answer lost (502)
    with serve(make_app(state)) as url:
        result = run_replay(scenario, database_url, url + PATH, state.token)
        again = run_replay(scenario, database_url, url + PATH, state.token)

    bodies = list(state.received.values())
    assert sorted(b["kind"] for b in bodies) == sorted(
        ["machine_status", "machine_status", "work_order_hold", "work_order_resume", "downtime_reason"])
    assert state.faults.saves == 5 and state.faults.requests >= 7  # the 429 and the lost answer were sent again
    assert {(b["plant"], b["site"], b["exception"]) for b in bodies} == {("pune-1", "PUNE", "E-0001")}
    assert all(b["data"]["machine"] == "HOB-01" and b["data"]["equipment"] == "EQ-HOB1" for b in bodies)
    down, running = sorted(state.of_kind("machine_status"), key=lambda b: b["data"]["at"])
    assert (down["data"]["status"], down["data"]["at"]) == ("down", at(0))
    assert (running["data"]["status"], running["data"]["at"]) == ("running", at(40))
    [hold], [resume] = state.of_kind("work_order_hold"), state.of_kind("work_order_resume")
    assert hold["data"] | {"equipment": None} == {"machine": "HOB-01", "equipment": None, "exception": "E-0001",
                                                  "work_order": "WO-1042", "at": at(0), "reason_code": "DT-110"}
    assert (resume["data"]["work_order"], resume["data"]["at"]) == ("WO-1042", at(40))
    [reason] = state.of_kind("downtime_reason")
    assert reason["data"]["reason_code"] == "DT-110" and reason["data"]["down_at"] == at(0)
    assert reason["data"]["reason"] == "replaced the hob arbor bearing" and reason["decided_at"] == at(31)
    # Order: down, hold, reason at the approval; running, resume when it ran again.
    order = [b["kind"] for b in sorted(bodies, key=lambda b: state.references[b["id"]])]
    assert order == ["machine_status", "work_order_hold", "downtime_reason", "machine_status", "work_order_resume"]

    sent = result["mes_transactions"]
    assert [t["status"] for t in sent] == ["sent"] * 5 and result["pending"]["mes_transactions"] == 0
    assert sorted(t["reference"] for t in sent) == sorted(state.references.values())
    [exception] = result["exceptions"]
    assert exception["status"] == "closed"
    shown = [e["data"]["reference"] for e in exception["timeline"] if e["kind"] == "mes_sent"]
    assert sorted(shown) == sorted(state.references.values())
    assert again["mes_transactions"] == sent and len(state.received) == 5

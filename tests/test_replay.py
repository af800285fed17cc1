"""End-to-end scenarios through `mfgos replay`: the real pipeline on a simulated clock."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from mfgos.replay import ScenarioError, replay

SCENARIOS = Path(__file__).parent / "scenarios"


def run(name: str, database_url: str | None = None) -> dict[str, Any]:
    return replay(SCENARIOS / name, database_url=database_url)


def alerts_at(result: dict[str, Any], elapsed: float) -> dict[str, str]:
    return {n["to"]: n["role"] for n in result["notifications"]
            if n["kind"] == "alert" and n["elapsed_s"] == elapsed}


def kinds(exception: dict[str, Any]) -> list[str]:
    return [t["kind"] for t in exception["timeline"]]


def test_breakdown_acknowledged_fixed_approved_posted(database_url: str) -> None:
    result = run("breakdown_ledger.yaml", database_url)
    [exc] = result["exceptions"]
    assert (exc["type"], exc["machine"]) == ("breakdown", "HOB-01")
    assert exc["work_orders"][:2] == ["WO-1042", "WO-1043"]
    assert exc["customer_orders_at_risk"] == ["SO-7001", "SO-7002"]
    assert alerts_at(result, 0) == {"tom": "maintenance", "deepa": "planner", "john": "customer_service"}
    paged = {n["to"] for n in result["notifications"]}
    assert "arjun" not in paged, "arjun is on shift b"
    assert "lena" not in paged, "tom acknowledged within 10 minutes"
    refusal = [n for n in result["notifications"] if n["to"] == "meena"]
    assert [(n["kind"], n["elapsed_s"]) for n in refusal] == [("refusal", 51 * 60)]
    assert "approval_refused" in kinds(exc)
    [txn] = result["erp_transactions"]
    assert txn["kind"] == "maintenance_request" and txn["fields"]["machine"] == "HOB-01"
    assert txn["status"] == "posted" and txn["reference"]
    assert txn["created_at"] == "2026-11-25T09:52:00+05:30", "nothing reaches the ERP before approval"
    references = [n for n in result["notifications"] if n["kind"] == "erp_reference"]
    assert references and all(txn["reference"] in n["text"] for n in references)
    assert {n["to"] for n in references} >= {"tom", "sara"}
    assert exc["status"] == "closed"
    assert kinds(exc).index("acknowledged") < kinds(exc).index("proposed") < kinds(exc).index("approved")


def test_quality_hold_disposition_approved_by_quality(database_url: str) -> None:
    result = run("quality_hold.yaml", database_url)
    [exc] = result["exceptions"]
    assert (exc["type"], exc["machine"], exc["approver_role"]) == ("quality", "GRD-02", "quality")
    assert alerts_at(result, 0) == {"ana": "quality", "deepa": "planner", "john": "customer_service"}
    assert [n["to"] for n in result["notifications"] if n["kind"] == "refusal"] == ["sara"]
    txns = result["erp_transactions"]
    assert [t["kind"] for t in txns] == ["nonconformance", "stock_status", "stock_status"]
    stock = [(t["fields"]["action"], t["fields"]["quantity"]) for t in txns if t["kind"] == "stock_status"]
    assert stock == [("scrap", 8), ("release", 392)]
    assert all(t["status"] == "posted" and t["reference"] for t in txns)
    assert exc["status"] == "closed"


def test_unacknowledged_alert_escalates_at_the_right_minute(database_url: str) -> None:
    result = run("escalation.yaml", database_url)
    [exc] = result["exceptions"]
    assert (exc["type"], exc["machine"]) == ("material", "ASM-01")
    assert "WO-1077" in exc["work_orders"]
    assert alerts_at(result, 0) == {"vikram": "materials", "deepa": "planner"}
    escalations = [(n["to"], n["role"], n["elapsed_s"]) for n in result["notifications"] if n["kind"] == "escalation"]
    assert escalations == [("neha", "manager", 600.0)]
    assert result["erp_transactions"] == []
    [answer] = [n for n in result["notifications"] if n["to"] == "neha" and n["kind"] == "reply"]
    assert answer["elapsed_s"] == 1200 and "WO-1077" in answer["text"]


def test_missing_machine_asked_back_and_duplicate_joins(database_url: str) -> None:
    result = run("duplicate_and_ask_back.yaml", database_url)
    [exc] = result["exceptions"]
    assert exc["machine"] == "HOB-01" and exc["reporter"] == "ravi"
    [question] = [n for n in result["notifications"] if n["kind"] == "question"]
    assert (question["to"], question["elapsed_s"]) == ("ravi", 0)
    assert exc["opened_at"] == "2026-11-25T09:01:00+05:30"
    assert kinds(exc).count("reported_again") == 1
    assert [n["to"] for n in result["notifications"] if n["kind"] == "alert" and n["role"] == "maintenance"] == ["tom"]
    assert [n["to"] for n in result["notifications"] if n["kind"] == "joined"] == ["meena"]


def test_ambiguous_machine_asked_back_in_the_reporters_language(database_url: str) -> None:
    result = run("ambiguous_machine.yaml", database_url)
    [question] = [n for n in result["notifications"] if n["kind"] == "question"]
    assert question["to"] == "ana" and question["elapsed_s"] == 0
    assert "MIL-01" in question["text"] and "MIL-02" in question["text"] and "Cuál" in question["text"]
    [exc] = result["exceptions"]
    assert (exc["machine"], exc["type"]) == ("MIL-02", "breakdown")
    assert exc["opened_at"] == "2026-11-25T09:02:00+05:30"


@pytest.mark.parametrize("body, message", [
    ("plant: nowhere.yaml\nstart: '2026-11-25T09:00:00+05:30'\nevents: []\n", "does not exist"),
    ("plant: ../data/pune_plant.yaml\nstart: '2026-11-25T09:00:00'\nevents: []\n", "UTC offset"),
    ("plant: ../data/pune_plant.yaml\nstart: '2026-11-25T09:00:00+05:30'\nevents:\n  - {at: 5 min, chat: {from: ravi, text: hi}}\n", "bad time offset"),
    ("plant: ../data/pune_plant.yaml\nstart: '2026-11-25T09:00:00+05:30'\nevents:\n  - {at: 0s, chat: {text: hi}}\n", "missing 'from'"),
    ("plant: [unclosed\n", "YAML syntax error"),
])
def test_bad_scenario_files_fail_clearly(tmp_path: Path, body: str, message: str) -> None:
    path = SCENARIOS / f"_bad_{tmp_path.name}.yaml"
    path.write_text(body)
    try:
        with pytest.raises(ScenarioError, match=message):
            replay(path)
    finally:
        path.unlink()


def test_unknown_person_and_unknown_exception_are_clear_errors(tmp_path: Path) -> None:
    path = SCENARIOS / f"_bad_{tmp_path.name}.yaml"
    path.write_text("plant: ../data/pune_plant.yaml\nstart: '2026-11-25T09:00:00+05:30'\nevents:\n"
                    "  - {at: 0s, chat: {from: nobody, text: hi}}\n")
    try:
        with pytest.raises(ScenarioError, match="unknown person 'nobody'"):
            replay(path)
        path.write_text("plant: ../data/pune_plant.yaml\nstart: '2026-11-25T09:00:00+05:30'\nevents:\n"
                        "  - {at: 0s, chat: {from: tom, exception: 3, text: hi}}\n")
        with pytest.raises(ScenarioError, match="exception 3 does not exist"):
            replay(path)
    finally:
        path.unlink()


def _cli(*args: str, **kw: Any) -> subprocess.Popen[str]:
    return subprocess.Popen([sys.executable, "-m", "mfgos.cli", *args], stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True, **kw)


def _comparable(result: dict[str, Any]) -> dict[str, Any]:
    return {
        "notifications": [(n["elapsed_s"], n["to"], n["kind"], n["text"], n["status"]) for n in result["notifications"]],
        "erp": [(t["kind"], t["reference"], t["status"], json.dumps(t["fields"], sort_keys=True))
                for t in result["erp_transactions"]],
        "exceptions": [(e["code"], e["status"], kinds(e)) for e in result["exceptions"]],
    }


@pytest.mark.parametrize("pause_after", [0, 2, 3])
def test_kill_9_between_events_loses_and_duplicates_nothing(database_url: str, pause_after: int) -> None:
    """A replay killed with SIGKILL between two events, resumed into the same database, ends
    exactly like an uninterrupted replay: every signal, notification, timer and ERP transaction
    once."""
    scenario = str(SCENARIOS / "breakdown_ledger.yaml")
    clean = run("breakdown_ledger.yaml")
    victim = _cli("replay", scenario, "--json", "--database", database_url, "--pause-after", str(pause_after))
    assert victim.stderr is not None
    for line in victim.stderr:
        if line.startswith("paused after event"):
            break
    else:
        pytest.fail(f"replay did not pause: {victim.wait()}")
    os.kill(victim.pid, signal.SIGKILL)
    victim.wait()
    resumed = _cli("replay", scenario, "--json", "--database", database_url)
    out, err = resumed.communicate(timeout=120)
    assert resumed.returncode == 0, err
    assert _comparable(json.loads(out)) == _comparable(clean)


def test_cli_replay_exit_codes(tmp_path: Path) -> None:
    ok = subprocess.run([sys.executable, "-m", "mfgos.cli", "replay", str(SCENARIOS / "escalation.yaml"), "--json"],
                        capture_output=True, text=True, timeout=120)
    assert ok.returncode == 0, ok.stderr
    assert json.loads(ok.stdout)["exceptions"][0]["type"] == "material"
    bad = tmp_path / "bad.yaml"
    bad.write_text("events: []\n")
    failed = subprocess.run([sys.executable, "-m", "mfgos.cli", "replay", str(bad), "--json"],
                            capture_output=True, text=True, timeout=120)
    assert failed.returncode == 2 and "missing key 'plant'" in failed.stderr


def recipients(result: dict[str, Any], kind: str) -> list[tuple[str, float]]:
    return [(n["to"], n["elapsed_s"]) for n in result["notifications"] if n["kind"] == kind]


def test_spanish_report_asked_back_in_spanish_through_to_the_ledger() -> None:
    result = run("spanish_breakdown.yaml")
    [question] = [n for n in result["notifications"] if n["kind"] == "question"]
    assert (question["to"], question["elapsed_s"], question["text"]) == ("carlos", 0, "¿Qué máquina es?")
    [exc] = result["exceptions"]
    assert (exc["type"], exc["machine"], exc["status"]) == ("breakdown", "HOB-01", "closed")
    assert exc["opened_at"] == "2026-11-25T09:01:00+05:30"
    assert set(alerts_at(result, 60)) == {"tom", "deepa", "john"}
    [to_carlos] = [n for n in result["notifications"] if n["to"] == "carlos" and n["kind"] == "erp_reference"]
    assert "con la referencia MR-" in to_carlos["text"], "the operator hears back in Spanish"
    [tom_alert] = [n for n in result["notifications"] if n["to"] == "tom" and n["kind"] == "alert"]
    assert tom_alert["text"].startswith("E-0001 Ausfall"), "tom reads German"
    assert [t["kind"] for t in result["erp_transactions"]] == ["maintenance_request"]


def test_german_quality_report_with_spanish_disposition() -> None:
    result = run("german_quality.yaml")
    [exc] = result["exceptions"]
    assert (exc["type"], exc["machine"], exc["status"]) == ("quality", "HT-01", "closed")
    assert recipients(result, "acknowledged") == [("jonas", 300.0)]
    opened = [n for n in result["notifications"] if n["to"] == "jonas" and n["kind"] == "opened"]
    assert opened and "eröffnet" in opened[0]["text"]
    lines = [(t["kind"], t["fields"].get("action"), t["fields"].get("quantity")) for t in result["erp_transactions"]]
    assert lines == [("nonconformance", None, 200.0), ("stock_status", "scrap", 40.0),
                     ("stock_status", "release", 160.0)]


def test_hindi_report_asked_back_in_hindi_through_to_the_ledger() -> None:
    result = run("hindi_breakdown.yaml")
    assert recipients(result, "question") == [("ravi", 0.0)]
    [exc] = result["exceptions"]
    assert (exc["type"], exc["machine"], exc["status"]) == ("breakdown", "GRD-02", "closed")
    assert recipients(result, "acknowledged") == [("ravi", 240.0)]
    [txn] = result["erp_transactions"]
    assert txn["kind"] == "maintenance_request" and txn["fields"]["machine"] == "GRD-02"
    assert txn["created_at"] == "2026-11-25T10:31:00+05:30"


def test_small_talk_pages_nobody_and_an_update_stays_on_its_exception(database_url: str) -> None:
    """Issue 15: lunch, thanks, a drill announced, a lost jacket, a plan, an emoji: no exception
    opened or joined, nobody paged; the reporter's "still down" goes on E-0001's timeline."""
    result = run("small_talk.yaml", database_url)
    [exc] = result["exceptions"]
    assert (exc["type"], exc["machine"]) == ("breakdown", "HOB-01")
    chatter = {120: "meena", 180: "ravi", 240: "sara", 300: "meena", 360: "deepa", 420: "meena", 480: "ravi",
               540: "meena", 570: "meena"}
    for note in result["notifications"]:
        if note["elapsed_s"] in chatter:
            assert note["to"] == chatter[note["elapsed_s"]], note  # only the sender hears back
            assert note["kind"] not in ("alert", "joined", "escalation"), note
    later = [t for t in exc["timeline"] if t["elapsed_s"] > 0]
    assert [(t["elapsed_s"], t["person"]) for t in later if t["kind"] != "escalated"] == [(480, "ravi")], later
    assert "abhi bhi band" in later[0]["text"]
    asked = [(n["elapsed_s"], n["kind"], n["text"]) for n in result["notifications"] if 540 <= n["elapsed_s"] < 600]
    assert asked == [(540, "question", "Is this a problem to report? yes / no"), (570, "reply", "OK, nothing reported.")]

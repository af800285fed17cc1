"""Every function decides in the thread (issue 16): the planner's reschedule, materials' request and
customer service's date, as parts of an exception, through `mfgos replay` on the real pipeline."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from sqlmodel import Session, select

from mfgos.replay import replay
from models import ExceptionDecision, LedgerDocument, make_engine
from models.plant_file import check
from routing import decisions
from routing.lifecycle import Action, Relation, step_for

SCENARIOS = Path(__file__).parent / "scenarios"
DATA = Path(__file__).parent / "data"
# WO-1042 (12 h long) moved to HOB-02 tomorrow 08:00 Pune time; SO-7001 was due tomorrow 18:00.
START, END = "2026-11-26T02:30:00+00:00", "2026-11-26T14:30:00+00:00"


def ledger(database_url: str) -> list[LedgerDocument]:
    engine = make_engine(database_url)
    try:
        with Session(engine) as session:
            return list(session.exec(select(LedgerDocument).order_by(LedgerDocument.id)))
    finally:
        engine.dispose()


def parts(database_url: str) -> list[ExceptionDecision]:
    engine = make_engine(database_url)
    try:
        with Session(engine) as session:
            return list(session.exec(select(ExceptionDecision).order_by(ExceptionDecision.id)))
    finally:
        engine.dispose()


def sent(result: dict[str, Any], to: str, kind: str) -> list[dict[str, Any]]:
    return [n for n in result["notifications"] if n["to"] == to and n["kind"] == kind]


@pytest.mark.parametrize(("language", "need_by", "action"), [
    ("en", "2026-11-26T01:30:00+00:00", "expedite"),  # "by tomorrow 7am"
    ("es", "2026-11-26T01:30:00+00:00", "expedite"),  # "para mañana a las 7"
    ("de", START, "transfer"),  # the suggested transfer, by button
    ("hi", "2026-11-26T01:30:00+00:00", "expedite"),  # "kal subah 7 baje tak jaldi"
])
def test_the_chain_in_four_languages_posts_each_decision_exactly_once(
        database_url: str, language: str, need_by: str, action: str) -> None:
    result = replay(SCENARIOS / f"decide_chain_{language}.yaml", database_url=database_url)
    [exc] = result["exceptions"]
    assert exc["status"] == "closed", "the exception still follows its resolution"
    books = ledger(database_url)
    by_kind = {kind: [d for d in books if d.kind == kind] for kind in
               ("production_order_reschedule", "material_request", "customer_order_date", "maintenance_request")}
    assert all(len(rows) == 1 for rows in by_kind.values()), {k: len(v) for k, v in by_kind.items()}
    assert len(books) == 4
    [reschedule], [material], [promise] = (by_kind[k] for k in (
        "production_order_reschedule", "material_request", "customer_order_date"))
    assert (reschedule.fields["work_order"], reschedule.fields["start"], reschedule.fields["end"]) == \
        ("WO-1042", START, END)
    assert "HOB-02" in reschedule.fields["reason"]
    assert {k: material.fields[k] for k in ("material", "quantity", "unit", "need_by", "action", "work_order")} == {
        "material": "FRG-20MNCR5", "quantity": 400, "unit": "pcs", "need_by": need_by, "action": action,
        "work_order": "WO-1042"}
    assert {k: promise.fields[k] for k in ("customer_order", "promised", "customer_told")} == {
        "customer_order": "SO-7001", "promised": END, "customer_told": True}
    assert [p.status for p in parts(database_url)] == ["settled", "settled", "settled"]
    # Approved by the plant's approvals: role for reschedules; the others stand on their role's word.
    assert [(p.kind, p.proposed_by, p.decided_by) for p in parts(database_url)] == [
        ("reschedule", "deepa", "sara"), ("material_request", "vikram", "vikram"),
        ("customer_order_date", "john", "john")]
    # The chain told materials and customer service what the reschedule did, with the numbers.
    [staging] = sent(result, "vikram", "part_material_request")
    assert "400" in staging["text"] and "HOB-02" in staging["text"] and "2026-11-26 08:00" in staging["text"]
    [late] = sent(result, "john", "part_customer_order_date")
    assert "SO-7001" in late["text"] and "2 h" in late["text"] and "2026-11-26 20:00" in late["text"]
    [request] = sent(result, "sara", "approval_request")[:1]
    assert "WO-1042" in request["text"] and "HOB-02" in request["text"]


def test_the_hindi_planner_is_asked_when_and_the_answer_completes_the_reschedule(database_url: str) -> None:
    result = replay(SCENARIOS / "decide_chain_hi.yaml", database_url=database_url)
    [question] = sent(result, "deepa", "question")
    assert question["elapsed_s"] == 9 * 60 and "kal subah" in question["text"]
    [exc] = result["exceptions"]
    [proposed] = [t for t in exc["timeline"] if t["kind"] == "decision_proposed" and t["person"] == "deepa"]
    assert proposed["text"] == "WO-1042 ko hobber 2 par shift karo / kal subah 8 baje"


def test_only_the_deciding_role_decides_and_only_the_approver_approves(tmp_path: Path, database_url: str) -> None:
    scenario = tmp_path / "refused.yaml"
    scenario.write_text(f"""plant: {DATA / 'pune_decide_plant.yaml'}
start: "2026-11-25T09:00:00+05:30"
events:
  - {{at: 0s, chat: {{from: ravi, channel: whatsapp, text: "hobber 1 band ho gaya, spindle se awaaz aa rahi hai. wo 1042"}}}}
  - {{at: 2m, chat: {{from: deepa, channel: slack, exception: 1, text: "move WO-1042 to hobber 2 tomorrow 8am"}}}}
  - {{at: 3m, action: {{from: deepa, exception: 1, kind: "part:approve:1"}}}}
  - {{at: 4m, action: {{from: tom, exception: 1, kind: "part:approve:1"}}}}
  - {{at: 5m, action: {{from: sara, exception: 1, kind: "part:reject:1"}}}}
  - {{at: 6m, chat: {{from: deepa, channel: slack, exception: 1, text: "reschedule not needed"}}}}
""", encoding="utf-8")
    result = replay(scenario, database_url=database_url)
    assert [n["kind"] for n in sent(result, "deepa", "refusal")] == ["refusal"], "the planner cannot approve her own"
    assert [n["kind"] for n in sent(result, "tom", "refusal")] == ["refusal"]
    assert sent(result, "deepa", "rejected")
    [part] = parts(database_url)
    assert part.status == "not_needed" and part.decided_by == "sara"
    assert result["erp_transactions"] == [], "nothing reaches the ERP before approval"
    [exc] = result["exceptions"]
    refused = [t for t in exc["timeline"] if t["kind"] == "decision_refused"]
    assert [t["person"] for t in refused] == ["deepa", "tom"]


def test_open_parts_remind_their_role_until_settled(tmp_path: Path, database_url: str) -> None:
    scenario = tmp_path / "remind.yaml"
    scenario.write_text(f"""plant: {DATA / 'pune_decide_plant.yaml'}
start: "2026-11-25T09:00:00+05:30"
until: 5h
events:
  - {{at: 0s, chat: {{from: ravi, channel: whatsapp, text: "hobber 1 band ho gaya, spindle se awaaz aa rahi hai. wo 1042"}}}}
  - {{at: 2m, chat: {{from: deepa, channel: slack, exception: 1, text: "move WO-1042 to hobber 2 tomorrow 8am"}}}}
  - {{at: 3m, action: {{from: sara, exception: 1, kind: "part:approve:1"}}}}
  - {{at: 2h30m, action: {{from: vikram, exception: 1, kind: "part:skip:2"}}}}
""", encoding="utf-8")
    result = replay(scenario, database_url=database_url)
    vikram = [n["elapsed_s"] for n in sent(result, "vikram", "reminder")]
    john = [n["elapsed_s"] for n in sent(result, "john", "reminder")]
    assert vikram == [(3 + 120) * 60], "reminded once, then declared not needed"
    assert john == [(3 + 120) * 60, (3 + 240) * 60], "still open: reminded every two hours"
    assert [p.status for p in parts(database_url)] == ["settled", "not_needed", "needed"]


def test_the_decision_rows_of_the_lifecycle_keep_the_state_and_name_who() -> None:
    for state in ("open", "acknowledged", "proposed", "approved", "posted", "closed"):
        step = step_for(state, Action.decision_propose)
        assert step is not None and step.next == state and step.who == frozenset({Relation.decider})
        approve = step_for(state, Action.decision_approve)
        assert approve is not None and approve.who == frozenset({Relation.decision_approver})
    assert set(decisions.MOVES.values()) <= set(decisions.Status)
    assert {s for (s, _m) in decisions.MOVES} | set(decisions.MOVES.values()) == set(decisions.Status)


def test_check_plant_validates_approvals(tmp_path: Path) -> None:
    plant = (DATA / "pune_decide_plant.yaml").read_text(encoding="utf-8")
    bad = tmp_path / "plant.yaml"
    bad.write_text(plant.replace("approvals: {reschedule: supervisor}",
                                 "approvals: {reschedule: boss, expedite: planner}"), encoding="utf-8")
    problems = [str(p) for p in check(bad)]
    assert any("approvals" in p and "boss" in p for p in problems), problems
    assert any("approvals" in p and "expedite" in p for p in problems), problems
    assert check(DATA / "pune_decide_plant.yaml") == []


def test_a_breakdown_with_a_sister_machine_offers_wait_move_and_split_and_a_choice_is_a_proposal(
        database_url: str) -> None:
    result = replay(SCENARIOS / "decide_options.yaml", database_url=database_url)
    [offered] = sent(result, "deepa", "options")
    assert offered["elapsed_s"] == 0
    text = offered["text"]
    # Wait: HOB-01's MTTR is 4 h from 09:00, WO-1042 has 9 h left; WO-1043 moves back to 22:00.
    assert "1) wait for the repair: WO-1042 on HOB-01 from 2026-11-25 13:00, done 2026-11-25 22:00 (on time)" in text
    assert "WO-1043 (FRG-20MNCR5) 2026-11-25 22:00" in text
    # Move: HOB-02 is free from 14:00 (WO-1044 ends then).
    assert "2) move to HOB-02: WO-1042 from 2026-11-25 14:00, done 2026-11-25 23:00 (on time)" in text
    assert "3) split: 200 of WO-1042 on HOB-02 from 2026-11-25 14:00" in text
    # Every held order has its options, numbered on: WO-1043 (next on HOB-01) waits behind WO-1042's
    # wait (22:00, 10 h), or moves to HOB-02 when it is free.
    assert "4) wait for the repair: WO-1043 on HOB-01 from 2026-11-25 22:00, done 2026-11-26 08:00 (on time)" in text
    assert "5) move to HOB-02: WO-1043 from 2026-11-25 14:00, done 2026-11-26 00:00 (on time)" in text
    [reschedule] = [t for t in result["erp_transactions"] if t["kind"] == "production_order_reschedule"]
    assert (reschedule["fields"]["start"], reschedule["fields"]["end"]) == (
        "2026-11-25T08:30:00+00:00", "2026-11-25T17:30:00+00:00")
    assert reschedule["fields"]["machine"] == "HOB-02", "the move reaches the ERP as the machine change too"
    first = parts(database_url)[0]
    assert (first.kind, first.status, first.proposed_by, first.decided_by) == ("reschedule", "settled", "deepa", "sara")
    assert first.fields["machine"] == "HOB-02" and first.fields["option"] == "move"


def test_the_options_say_which_customer_orders_become_late_and_by_how_much(tmp_path: Path, database_url: str) -> None:
    plant = tmp_path / "plant.yaml"
    plant.write_text((DATA / "pune_decide_plant.yaml").read_text(encoding="utf-8").replace("mttr: 4h", "mttr: 40h"),
                     encoding="utf-8")
    scenario = tmp_path / "late.yaml"
    scenario.write_text(f"""plant: {plant}
start: "2026-11-25T09:00:00+05:30"
events:
  - {{at: 0s, chat: {{from: ravi, channel: whatsapp, text: "hobber 1 band ho gaya, spindle se awaaz aa rahi hai. wo 1042"}}}}
""", encoding="utf-8")
    result = replay(scenario, database_url=database_url)
    [offered] = sent(result, "deepa", "options")
    # Waiting 40 h: WO-1042 from Friday 01:00 to 10:00, SO-7001 (due Thursday 18:00) 16 h late;
    # WO-1043 follows to 20:00 Friday, SO-7002 (due 1 December) still on time.
    assert "1) wait for the repair: WO-1042 on HOB-01 from 2026-11-27 01:00, done 2026-11-27 10:00 (late: SO-7001 16 h)" \
        in offered["text"]
    assert "2) move to HOB-02: WO-1042 from 2026-11-25 14:00, done 2026-11-25 23:00 (on time)" in offered["text"]


def test_decision_buttons_carry_their_part_on_every_channel() -> None:
    from bot.channels.cards import button_label, button_value, parse_button

    for value, label in (("part:approve:7", "Freigeben"), ("part:skip:7", "Nicht nötig"), ("part:option2:7", "Option 2")):
        assert parse_button(value) == (value, None)
        assert button_value(value, "E-0001") == value
        assert button_label(value, "de") == label
    assert parse_button("part:explode:7") == (None, None)


def test_after_the_repair_is_the_technicians_estimate_else_the_mttr(tmp_path: Path, database_url: str) -> None:
    scenario = tmp_path / "estimate.yaml"
    scenario.write_text(f"""plant: {DATA / 'pune_decide_plant.yaml'}
start: "2026-11-25T09:00:00+05:30"
events:
  - {{at: 0s, chat: {{from: ravi, channel: whatsapp, text: "hobber 1 band ho gaya, spindle se awaaz aa rahi hai. wo 1042"}}}}
  - {{at: 4m, chat: {{from: tom, channel: slack, exception: 1, text: "bin unterwegs, wieder um 15 Uhr"}}}}
  - {{at: 10m, chat: {{from: deepa, channel: slack, exception: 1, text: "WO-1043 after the repair"}}}}
""", encoding="utf-8")
    result = replay(scenario, database_url=database_url)
    [exc] = result["exceptions"]
    assert ("acknowledged", "tom") in [(t["kind"], t["person"]) for t in exc["timeline"]], "read on as before"
    reschedule = next(p for p in parts(database_url) if p.fields.get("work_order") == "WO-1043")
    # Tom's 15:00 (09:30 UTC), not HOB-01's MTTR (13:00); WO-1043 keeps its 10 h.
    assert (reschedule.fields["start"], reschedule.fields["end"]) == ("2026-11-25T09:30:00+00:00",
                                                                      "2026-11-25T19:30:00+00:00")


def test_a_wait_pressed_after_the_technicians_estimate_waits_for_that_estimate(
        tmp_path: Path, database_url: str) -> None:
    """The options were offered at 09:00 with the MTTR (repair until 13:00); tom then says it runs
    again at 15:00; deepa presses "wait" at 10:00: WO-1042 (9 h left when it stopped) waits for 15:00."""
    scenario = tmp_path / "estimate.yaml"
    scenario.write_text(f"""plant: {DATA / "pune_decide_plant.yaml"}
start: "2026-11-25T09:00:00+05:30"
events:
  - {{at: 0s, chat: {{from: ravi, channel: whatsapp, text: "hobber 1 band ho gaya, spindle se awaaz aa rahi hai. wo 1042"}}}}
  - {{at: 20m, chat: {{from: tom, channel: slack, exception: 1, text: "Lager defekt, wieder um 15 Uhr"}}}}
  - {{at: 1h, action: {{from: deepa, exception: 1, kind: "part:option1:1"}}}}
  - {{at: 1h5m, action: {{from: sara, exception: 1, kind: "part:approve:1"}}}}
""", encoding="utf-8")
    result = replay(scenario, database_url=database_url)
    [offered] = sent(result, "deepa", "options")
    assert "1) wait for the repair: WO-1042 on HOB-01 from 2026-11-25 13:00" in offered["text"]  # the MTTR then
    [reschedule] = [t for t in result["erp_transactions"] if t["kind"] == "production_order_reschedule"]
    # 15:00 to 24:00 in Pune (9 h left when it stopped), not the offered 13:00 to 22:00
    assert (reschedule["fields"]["start"], reschedule["fields"]["end"]) == (
        "2026-11-25T09:30:00+00:00", "2026-11-25T18:30:00+00:00")
    assert reschedule["fields"]["work_order"] == "WO-1042" and reschedule["fields"].get("machine") in (None, "HOB-01")

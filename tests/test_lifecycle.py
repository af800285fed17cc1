"""The exception lifecycle table (routing/lifecycle.py) applied end to end through `mfgos replay`.

Who may do what in which state, refusals that say the state, escalations that only a counting
acknowledgement stops, nobody paged twice or about their own report, and the button updates
of messages whose buttons no longer apply.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlmodel import Session, select

from mfgos.replay import replay
from models import (
    AckTimer,
    ErpTransaction,
    ExceptionStatus,
    Notification,
    Plant,
    PlantException,
    TimelineEvent,
    make_engine,
)
from models.plant_file import apply, load
from routing import kpis, messages
from routing import workflow as wf
from routing.lifecycle import BUTTONS, TABLE, UNFINISHED, Action, Relation, step_for
from routing.workflow import Context

SCENARIOS = Path(__file__).parent / "scenarios"
PERSON_ACTIONS = (Action.acknowledge, Action.propose, Action.approve, Action.reject, Action.comment)


def run(name: str, database_url: str) -> dict[str, Any]:
    return replay(SCENARIOS / name, database_url=database_url)


@contextmanager
def store(database_url: str) -> Iterator[Session]:
    engine = make_engine(database_url)
    try:
        with Session(engine) as session:
            yield session
    finally:
        engine.dispose()


def sent(result: dict[str, Any], kind: str) -> list[tuple[str, float]]:
    return [(n["to"], n["elapsed_s"]) for n in result["notifications"] if n["kind"] == kind]


def events(exception: dict[str, Any], kind: str) -> list[dict[str, Any]]:
    return [t for t in exception["timeline"] if t["kind"] == kind]


# --- the table itself ----------------------------------------------------------------------


@pytest.mark.parametrize("state", list(ExceptionStatus))
def test_every_state_answers_every_action(state: ExceptionStatus) -> None:
    """A new state (or action) cannot be forgotten: each pair has a row or a refusal sentence in
    every language, and a state that leads nowhere is not counted as open."""
    for language in messages.LANGUAGES:
        assert messages.TEMPLATES[f"state_{state.value}"].get(language), (state, language)
    for action in Action:
        if step_for(state, action) is None and action in PERSON_ACTIONS:
            for language in messages.LANGUAGES:
                assert messages.TEMPLATES[f"refused_nothing_{action.value}"].get(language), (action, language)
    assert step_for(state, Action.comment) is not None, "anyone may comment, in any state"
    leads_on = any(s.state == state and s.next != state for s in TABLE)
    assert (state in UNFINISHED) == leads_on


def test_the_table_has_one_row_per_state_and_action_and_buttons_name_its_actions() -> None:
    pairs = [(s.state, s.action) for s in TABLE]
    assert len(pairs) == len(set(pairs))
    assert set(BUTTONS) == {"ack", "propose", "approve", "reject"}
    assert all(any(s.action is action for s in TABLE) for action in Action)
    for action in BUTTONS.values():  # the status line of a button update, in every language
        assert set(messages.TEMPLATES[f"status_line_{action.value}"]) == set(messages.LANGUAGES)
    for key in ("refused_not_paged", "already_acknowledged", "passed_on", "reporter_note"):
        assert set(messages.TEMPLATES[key]) == set(messages.LANGUAGES)


# --- who may: every row against real people of the plant -----------------------------------

# In reject_after_approval.yaml: ravi reported, tom was paged (maintenance), sara holds the
# approver role (supervisor), neha is a manager, meena only works in the plant.
PEOPLE = {"ravi": Relation.reporter, "tom": Relation.notified, "sara": Relation.approver,
          "neha": Relation.manager, "meena": Relation.member}


def test_every_row_allows_exactly_the_relations_it_names(database_url: str) -> None:
    run("reject_after_approval.yaml", database_url)
    with store(database_url) as session:
        plant = session.exec(select(Plant)).one()
        exc = session.exec(select(PlantException)).one()
        ctx = Context(session=session, plant=plant, now=exc.opened_at + timedelta(hours=1), cause="test")
        people = {pid: wf.person(ctx, pid) for pid in PEOPLE}
        standings = {pid: wf.standing(ctx, exc, who) for pid, who in people.items()}
        assert {pid: PEOPLE[pid] in s.relations for pid, s in standings.items()} == dict.fromkeys(PEOPLE, True)
        assert Relation.notified not in standings["ravi"].relations
        for step in TABLE:
            if step.who == frozenset({Relation.system}):
                assert wf.check(ctx, with_status(exc, step.state), step.action, None) is None
                assert wf.check(ctx, exc, step.action, people["tom"]) is not None
                continue
            for pid, relation in PEOPLE.items():
                refusal = wf.check(ctx, with_status(exc, step.state), step.action, people[pid], standings[pid],
                                   acknowledged={})
                allowed = relation in step.who or Relation.member in step.who
                assert (refusal is None) == allowed, (step, pid, refusal)
                if refusal is not None:
                    # Rows for the approver alone (decisions, settling what the ERP refused) name the role.
                    assert refusal.reason == ("role" if step.who == frozenset({Relation.approver}) else "not_paged")
        session.rollback()


def with_status(exc: PlantException, state: ExceptionStatus) -> PlantException:
    exc.status = state.value
    return exc


# --- acknowledgements that count -----------------------------------------------------------


def test_the_reporters_ack_is_refused_not_counted_and_the_escalation_runs_on(database_url: str) -> None:
    result = run("operator_ack.yaml", database_url)
    [exc] = result["exceptions"]
    [refusal, again] = [n for n in result["notifications"] if n["kind"] == "refusal"]
    assert (refusal["to"], refusal["elapsed_s"]) == ("ravi", 60.0)
    assert refusal["text"] == messages.render("refused_not_paged", "hi", code="E-0001")
    assert [(t["person"], t["data"]["action"], t["data"]["reason"]) for t in events(exc, "refused")] == [
        ("ravi", "acknowledge", "not_paged"), ("tom", "acknowledge", "already_acknowledged")]
    assert (again["to"], again["text"]) == ("tom", "E-0001 ist bereits von Tom Fischer bestätigt.")
    assert sent(result, "escalation") == [("lena", 600.0)], "the reporter's ack stops nothing"
    [ack] = events(exc, "acknowledged")
    assert (ack["person"], ack["elapsed_s"], ack["data"]["roles"]) == ("tom", 720.0, ["maintenance"])
    with store(database_url) as session:
        row = session.exec(select(PlantException)).one()
        assert row.acknowledged_at is not None
        assert row.acknowledged_at - row.opened_at == timedelta(minutes=12), "MTTA from tom, not ravi"
        [timer] = session.exec(select(AckTimer)).all()
        assert timer.status == "fired"
        figures = kpis.compute(session, row.plant_id, row.opened_at - timedelta(days=1), row.opened_at + timedelta(days=1))
        assert figures.mtta_minutes == 12.0


def test_a_counting_ack_settles_the_timer_and_nobody_is_escalated_to(database_url: str) -> None:
    result = run("reject_after_approval.yaml", database_url)
    [exc] = result["exceptions"]
    assert sent(result, "escalation") == []
    [ack] = events(exc, "acknowledged")
    assert ack["data"] == {"roles": ["maintenance"], "timers": ["maintenance"]}
    with store(database_url) as session:
        [timer] = session.exec(select(AckTimer)).all()
        assert (timer.status, timer.settled_at is not None) == ("acknowledged", True)


# --- who is paged -------------------------------------------------------------------------


def test_nobody_is_escalated_to_about_their_own_report(database_url: str) -> None:
    result = run("own_report_not_escalated.yaml", database_url)
    [exc] = result["exceptions"]
    assert exc["reporter"] == "neha"
    assert sent(result, "escalation") == []
    assert [(n["kind"], n["elapsed_s"]) for n in result["notifications"] if n["to"] == "neha"] == [
        ("opened", 0.0), ("refusal", 300.0)], "her own ack is refused, and she is not escalated to"
    assert events(exc, "acknowledged") == [] and exc["status"] == "open"
    [escalated] = events(exc, "escalated")
    assert escalated["elapsed_s"] == 600.0
    assert escalated["data"] == {"role": "materials", "to_role": "manager", "people": [], "reporter_skipped": ["neha"]}


def test_nobody_is_paged_twice_by_two_steps_or_an_escalation(database_url: str) -> None:
    result = run("paged_once.yaml", database_url)
    [exc] = result["exceptions"]
    pages = [(n["to"], n["role"]) for n in result["notifications"] if n["kind"] in ("alert", "escalation")]
    assert sorted(pages) == [("deepa", "planner"), ("john", "customer_service"), ("lena", "maintenance_lead"),
                             ("tom", "maintenance")]
    [customers] = [t for t in events(exc, "routed") if t["data"]["role"] == "customer_service"]
    assert customers["data"]["already_paged"] == ["deepa"]
    [escalated] = events(exc, "escalated")
    assert escalated["data"]["people"] == [] and escalated["data"]["already_paged"] == ["lena"]
    assert escalated["text"], "an escalation that pages nobody says so"


# --- states refuse what no longer applies --------------------------------------------------


def test_reject_after_approval_says_it_is_approved(database_url: str) -> None:
    result = run("reject_after_approval.yaml", database_url)
    [exc] = result["exceptions"]
    assert exc["status"] == "posted", "HOB-01 is still down"
    refusals = [(n["to"], n["elapsed_s"], n["text"]) for n in result["notifications"] if n["kind"] == "refusal"]
    assert refusals == [
        ("sara", 1920.0, "E-0001 is already approved by Sara Khan and posted to the ERP, nothing to reject."),
        ("tom", 1980.0, "E-0001 ist bereits von Sara Khan freigegeben und im ERP gebucht, nichts mehr zu bestätigen."),
    ]
    assert not any("no proposed" in n["text"] for n in result["notifications"])
    assert [t["kind"] for t in exc["timeline"]].count("rejected") == 0
    with store(database_url) as session:
        [txn] = session.exec(select(ErpTransaction)).all()
        assert txn.status == "sent", "the refused reject changed nothing in the ERP"


def test_the_reporters_running_again_is_a_note_to_the_people_paged(database_url: str) -> None:
    result = run("reporter_says_running.yaml", database_url)
    [exc] = result["exceptions"]
    assert exc["status"] == "acknowledged"
    assert events(exc, "proposed") == [] and sent(result, "approval_request") == []
    assert [(t["person"], t["text"]) for t in events(exc, "comment")] == [("ravi", "hobber 1 is running again")]
    assert sorted(sent(result, "note")) == [("deepa", 1200.0), ("john", 1200.0), ("tom", 1200.0)]
    [reply] = [n for n in result["notifications"] if n["to"] == "ravi" and n["elapsed_s"] == 1200.0]
    assert "Tom Fischer" in reply["text"]


# --- live buttons -------------------------------------------------------------------------


def updates(session: Session) -> list[tuple[str, str, list[str], str, datetime]]:
    """(person, kind of the message updated, buttons left, text, when) of every buttons_update."""
    rows = session.exec(select(Notification).order_by(Notification.id)).all()
    by_id = {n.id: n for n in rows}
    out = []
    for row in rows:
        if row.kind == "buttons_update":
            original = by_id[row.updates_id]
            assert (row.channel, row.address, row.exception_id) == (original.channel, original.address,
                                                                    original.exception_id)
            out.append((row.person_id, original.kind, list(row.buttons), row.text, row.created_at))
    return out


def test_messages_whose_buttons_no_longer_apply_are_updated_once(database_url: str) -> None:
    run("reject_after_approval.yaml", database_url)
    with store(database_url) as session:
        start = session.exec(select(PlantException)).one().opened_at
        found = [(who, kind, buttons, text, (at - start).total_seconds()) for who, kind, buttons, text, at in updates(session)]
    assert found == [
        ("tom", "alert", ["propose"], "E-0001 bestätigt von Tom Fischer", 180.0),
        ("tom", "alert", [], "E-0001 freigegeben von Sara Khan", 1860.0),
        ("sara", "approval_request", [], "E-0001 approved by Sara Khan", 1860.0),
    ]
    run("reject_after_approval.yaml", database_url)  # the same events again: nothing new
    with store(database_url) as session:
        assert len(updates(session)) == 3


def test_an_escalation_targets_ack_button_stays_until_their_role_is_acknowledged(database_url: str) -> None:
    run("operator_ack.yaml", database_url)
    with store(database_url) as session:
        found = [(who, kind, buttons) for who, kind, buttons, _, _ in updates(session)]
    # tom's acknowledgement answers for maintenance; lena's escalation asks maintenance_lead.
    assert found == [("tom", "alert", ["propose"])]


# --- any order of presses keeps to the table -----------------------------------------------

PLANT_FILE = Path(__file__).parent / "data" / "pune_plant.yaml"
START = datetime.fromisoformat("2026-11-25T09:00:00+05:30")  # a Wednesday, shift a: tom is on
PRESSES = ("ack", "propose", "approve", "reject", "comment", "timers", "running")


def press(ctx: Context, exc: PlantException, who: Any, what: str) -> bool | None:
    """One press or system event; True/False as the workflow answered, None for system events."""
    if what == "ack":
        return wf.acknowledge(ctx, exc, who, "")
    if what == "propose":
        return wf.propose(ctx, exc, who, "replaced the bearing", {})
    if what in ("approve", "reject"):
        return wf.decide(ctx, exc, who, what, "")
    if what == "comment":
        return wf.comment(ctx, exc, who, "looking")
    if what == "timers":
        wf.escalate_unacknowledged(ctx)
    else:
        wf.set_machine_running(ctx, "HOB-01", True, "signal")
    return None


def pune(session: Session) -> Plant:
    if session.get(Plant, "pune-1") is None:
        apply(session, load(PLANT_FILE), source_file=str(PLANT_FILE))
        session.commit()
    plant = session.get(Plant, "pune-1")
    assert plant is not None
    return plant


def test_reject_while_the_erp_posting_waits_says_who_approved(engine: Any) -> None:
    """Approved, the ERP transactions not yet posted: a reject is refused with who approved."""
    with Session(engine) as session:
        plant = pune(session)

        def at(minutes: int) -> Context:
            return Context(session=session, plant=plant, now=START + timedelta(minutes=minutes), cause=f"t{minutes}")

        ctx = at(0)
        exc = wf.open_exception(ctx, exception_type="quality", text="burn marks on the teeth",
                                reporter=wf.person(ctx, "ravi"), machine_id="GRD-02")
        ana = wf.person(ctx, "ana")
        assert ana is not None and wf.propose(at(5), exc, ana, "scrap 8 pcs", {}) is True
        assert wf.decide(at(6), exc, ana, "approve") is True
        assert exc.status == "approved"
        assert wf.decide(at(7), exc, ana, "reject", "wait") is False
        assert exc.status == "approved"
        [refusal] = session.exec(select(Notification).where(Notification.kind == "refusal")).all()
        assert refusal.text == "E-0001 ya está aprobada por Ana Ruiz, nada que rechazar."
        refused = session.exec(select(TimelineEvent).where(TimelineEvent.kind == "refused")).one()
        assert refused.data == {"action": "reject", "reason": "state", "state": "approved"}
        assert refused.text == "E-0001 is already approved by Ana Ruiz, nothing to reject."


@settings(max_examples=30, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(presses=st.lists(st.tuples(st.sampled_from(list(PEOPLE)), st.sampled_from(PRESSES),
                                  st.integers(min_value=0, max_value=15)), max_size=10))
def test_any_order_of_presses_keeps_to_the_table(sqlite_engine: Any, presses: list[tuple[str, str, int]]) -> None:
    with Session(sqlite_engine) as session:
        plant = pune(session)
        ctx = Context(session=session, plant=plant, now=START, cause="open")
        ravi = wf.person(ctx, "ravi")
        exc = wf.open_exception(ctx, exception_type="breakdown", text="hobber 1 stopped", reporter=ravi,
                                machine_id="HOB-01")
        now = START
        for n, (pid, what, minutes) in enumerate(presses):
            now += timedelta(minutes=minutes)
            ctx = Context(session=session, plant=plant, now=now, cause=f"press:{n}")
            before = exc.status
            answer = press(ctx, exc, wf.person(ctx, pid), what)
            assert exc.status in {s.value for s in ExceptionStatus}
            if answer is False:
                assert exc.status == before, (pid, what)
            if answer is True and what in ("approve", "reject"):
                step = step_for(before, Action(what))
                assert step is not None and pid == "sara" and exc.status == step.next
        pages = session.exec(select(Notification.person_id).where(
            Notification.kind.in_(("alert", "escalation")))).all()  # type: ignore[attr-defined]
        assert len(pages) == len(set(pages)) and "ravi" not in pages, "nobody paged twice, nor about their own report"
        acks = session.exec(select(TimelineEvent).where(TimelineEvent.kind == "acknowledged")).all()
        assert all(a.person_id in ("tom", "sara", "neha") and a.data["roles"] for a in acks)
        assert (exc.acknowledged_at is None) == (not acks)
        by_id = {row.id: row for row in session.exec(select(Notification)).all()}
        for row in by_id.values():
            if row.kind == "buttons_update":
                assert set(row.buttons) < set(by_id[row.updates_id].buttons)
        session.rollback()

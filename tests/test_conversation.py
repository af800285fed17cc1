"""The conversation as a state machine, end to end: "which one?" and its answers, confirmations,
strangers, the size limit and the one gate, through `mfgos replay` and the runtime."""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlmodel import Session, select

from bot.channels.base import CaptureChannel
from mfgos.config import Settings
from mfgos.replay import replay
from mfgos.runtime import Runtime
from models import Conversation, Notification, PlantException, Signal
from routing.clock import SimulatedClock
from routing.conversation import TRANSITIONS, Event, State, transition
from routing.inbound import MAX_TEXT, Inbound

SCENARIOS = Path(__file__).parent / "scenarios"
PLANT = Path(__file__).parent / "data" / "pune_plant.yaml"
START = datetime.fromisoformat("2026-11-25T09:00:00+05:30")


def variant(tmp_path: Path, name: str, changes: dict[int, dict[str, Any]]) -> Path:
    """The scenario `name` with some events changed (merged into the event's chat/action body or its `at`)."""
    raw = yaml.safe_load((SCENARIOS / name).read_text(encoding="utf-8"))
    raw["plant"] = str(PLANT)
    for index, change in changes.items():
        event = raw["events"][index]
        kind = next(k for k in ("chat", "action", "signal") if k in event)
        event["at"] = change.pop("at", event["at"])
        event[kind].update(change)
    path = tmp_path / name
    path.write_text(yaml.safe_dump(raw), encoding="utf-8")
    return path


def timeline(exc: dict[str, Any]) -> list[tuple[str, str | None, str]]:
    return [(t["kind"], t["person"], t["text"]) for t in exc["timeline"]]


def sent(result: dict[str, Any], to: str, kind: str) -> list[dict[str, Any]]:
    return [n for n in result["notifications"] if n["to"] == to and n["kind"] == kind]


# --- "which one?" --------------------------------------------------------------------------


@pytest.mark.parametrize(("answer", "chosen"), [("E-0001", 1), ("hobber 1", 1), ("die zweite", 2)])
def test_which_one_is_answered_by_code_machine_or_ordinal_and_completes_the_ack(
        database_url: str, tmp_path: Path, answer: str, chosen: int) -> None:
    result = replay(variant(tmp_path, "which_one.yaml", {3: {"text": answer}}), database_url=database_url)
    [question] = sent(result, "tom", "question")
    assert question["elapsed_s"] == 180 and "E-0001" in question["text"] and "E-0002" in question["text"]
    picked, other = result["exceptions"][chosen - 1], result["exceptions"][2 - chosen]
    assert ("acknowledged", "tom", "bin unterwegs") in timeline(picked), "the pending ack with its own words"
    assert picked["status"] == "acknowledged" and other["status"] == "open"
    assert all(t[0] != "proposed" for e in result["exceptions"] for t in timeline(e)), "an answer is never a fix"
    assert not any(n["kind"] == "approval_request" for n in result["notifications"])
    assert [t for e in result["exceptions"] for t in timeline(e) if t[1] == "tom"] == [
        ("acknowledged", "tom", "bin unterwegs")], "nor a comment"
    [confirmation] = sent(result, "tom", "confirmation")
    assert confirmation["exception"] == chosen and confirmation["elapsed_s"] == 240
    reporter = "Ravi Kumar" if chosen == 1 else "Meena Patil"
    assert confirmation["text"] == f"Vermerkt bei {picked['code']}: du hast bestätigt. {reporter} wurde informiert."


def test_a_fix_without_thread_is_asked_back_and_lands_with_its_text_where_the_answer_says(database_url: str) -> None:
    result = replay(SCENARIOS / "fix_without_thread.yaml", database_url=database_url)
    first, second = result["exceptions"]
    [question] = sent(result, "tom", "question")
    assert question["elapsed_s"] == 1800
    assert all(t[0] != "proposed" for t in timeline(first)), "not landed on the other (or the latest) one"
    [proposed] = [t for t in timeline(second) if t[0] == "proposed"]
    assert proposed == ("proposed", "tom", "bearing replaced, running again")
    [request] = sent(result, "sara", "approval_request")
    assert request["elapsed_s"] == 1860 and "bearing replaced, running again" in request["text"]
    assert "die zweite" not in request["text"]
    [txn] = result["erp_transactions"]
    assert txn["exception"] == 2 and txn["fields"]["machine"] == "GRD-02"
    # Confirmations: each to its sender, on its exception, saying what happens next.
    confirmations = [(n["to"], n["exception"], n["elapsed_s"], n["text"]) for n in result["notifications"]
                     if n["kind"] == "confirmation"]
    assert confirmations == [
        ("tom", 1, 120, "Vermerkt bei E-0001: du hast bestätigt. Ravi Kumar wurde informiert."),
        ("tom", 2, 180, "Vermerkt bei E-0002: du hast bestätigt. Meena Patil wurde informiert."),
        ("tom", 2, 1860, "Deine Lösung für E-0002 wartet auf die Freigabe durch Schichtleitung."),
        ("sara", 2, 1980, "Recorded on E-0002: you approved the fix. It goes to the ERP now."),
        ("ravi", 1, 2100, "E-0001 mein comment jod diya."),
    ]
    assert ("comment", "ravi", "abhi bhi band hai") in timeline(first)


def test_an_unrelated_message_leaves_the_question_and_a_late_answer_is_no_answer(
        database_url: str, tmp_path: Path) -> None:
    # A question at 3m; "what is down?" at 4m is answered as a query and drops the question, so
    # "E-0001" alone at 5m records nothing; a later "die zweite" after the expiry completes nothing.
    path = variant(tmp_path, "which_one.yaml", {3: {"text": "what is down?"}})
    raw = yaml.safe_load(path.read_text(encoding="utf-8"))
    raw["events"] += [{"at": "5m", "chat": {"from": "tom", "channel": "slack", "text": "E-0001"}},
                      {"at": "6m", "chat": {"from": "tom", "channel": "slack", "text": "on my way"}},
                      {"at": "40m", "chat": {"from": "tom", "channel": "slack", "text": "die zweite"}}]
    path.write_text(yaml.safe_dump(raw), encoding="utf-8")
    result = replay(path, database_url=database_url)
    [answer] = [n for n in sent(result, "tom", "reply") if n["elapsed_s"] == 240]
    assert "HOB-01" in answer["text"] and "GRD-02" in answer["text"]
    questions = sent(result, "tom", "question")
    assert [n["elapsed_s"] for n in questions] == [180, 360, 2400]
    assert "E-0002" not in questions[-1]["text"], "at 40m the question of 6m has expired: read on its own"
    for exc in result["exceptions"]:
        assert all(t[1] != "tom" for t in timeline(exc)), "nothing recorded for tom"
    assert sent(result, "tom", "confirmation") == []


# --- strangers -------------------------------------------------------------------------------


def test_not_registered_is_answered_once_an_hour_per_sender(database_url: str) -> None:
    result = replay(SCENARIOS / "stranger.yaml", database_url=database_url)
    answers = [(n["to"], n["channel"], n["elapsed_s"]) for n in result["notifications"]]
    assert answers == [("unregistered:+919811111111", "whatsapp", 0), ("unregistered:+919811111111", "whatsapp", 3660),
                       ("unregistered:777", "telegram", 3720)]
    assert result["exceptions"] == []


# --- the runtime: more answers, buttons, the one gate ------------------------------------------


def make_runtime(url: str, clock: SimulatedClock) -> Runtime:
    settings = Settings(database_url=url, plant_file=PLANT)
    channels = {name: CaptureChannel(name) for name in ("console", "slack", "whatsapp", "telegram")}
    return Runtime(settings, clock=clock, channels=channels)


class Floor:
    """The runtime on a simulated clock with two open breakdowns Tom is paged for."""

    def __init__(self, url: str) -> None:
        self.clock = SimulatedClock(START)
        self.runtime = make_runtime(url, self.clock)
        self.events = 0
        self.say("ravi", "hobber 1 band hai, spindle alarm")
        self.say("meena", "grinder 2 stopped, coolant leak")

    def say(self, person: str | None, text: str = "", **kw: Any) -> int:
        self.events += 1
        self.clock.set(self.clock.now() + timedelta(seconds=30))
        received = self.runtime.accept(Inbound(
            source=kw.pop("source", "console"), event_id=f"e{self.events}", address=kw.pop("address", person),
            person_id=kw.pop("person_id", person), text=text, **kw))
        asyncio.run(self.runtime.drain())
        return received.signal_id

    def replies(self, signal_id: int) -> list[Notification]:
        """What the bot answered the sender of this message (edits of its earlier buttons are not answers)."""
        with Session(self.runtime.engine) as session:
            signal = session.get(Signal, signal_id)
            assert signal is not None
            return list(session.exec(select(Notification).where(
                Notification.dedupe_key.startswith(f"signal:{signal_id}:"),  # type: ignore[attr-defined]
                Notification.person_id == signal.person_id, Notification.kind != "buttons_update",
            ).order_by(Notification.id)))

    def close(self) -> None:
        asyncio.run(self.runtime.aclose())


@pytest.fixture
def floor(database_url: str) -> Any:
    made = Floor(database_url)
    yield made
    made.close()


ANSWERS = [("e1", "E-0001"), ("2", "E-0002"), ("HOB-01", "E-0001"), ("the second", "E-0002"), ("2nd", "E-0002"),
           ("dusra", "E-0002"), ("la 2", "E-0002"), ("grinder 2", "E-0002"), ("the first one", "E-0001"),
           ("E-0002", "E-0002")]


@pytest.mark.parametrize(("answer", "code"), ANSWERS)
def test_every_form_of_answer_picks_its_exception_and_is_never_recorded_itself(
        floor: Floor, answer: str, code: str) -> None:
    asked = floor.replies(floor.say("tom", "bin unterwegs"))
    assert [n.kind for n in asked] == ["question"], answer
    [reply] = floor.replies(floor.say("tom", answer))
    assert reply.kind == "confirmation", (answer, reply.text)
    assert code in reply.text, (answer, reply.text)
    with Session(floor.runtime.engine) as session:
        excs = {e.code: e for e in session.exec(select(PlantException)).all()}
        assert excs[code].status == "acknowledged" and all(not e.proposal for e in excs.values())
        assert [e.status for c, e in excs.items() if c != code] == ["open"]
    # Acknowledged now: the next "on my way" needs no question, it can only mean the other one.
    [again] = floor.replies(floor.say("tom", "bin unterwegs"))
    assert again.kind == "confirmation" and code not in again.text


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(answer=st.text(min_size=1, max_size=60).filter(str.strip))
def test_any_answer_to_which_one_is_answered_and_never_fails(floor: Floor, answer: str) -> None:
    floor.say("tom", "bin unterwegs")
    signal_id = floor.say("tom", answer)
    with Session(floor.runtime.engine) as session:
        signal = session.get(Signal, signal_id)
        assert signal is not None and signal.error is None, signal.error if signal else None
    assert floor.replies(signal_id), "every message of a known person is answered"


def test_a_choose_button_answers_the_question(floor: Floor) -> None:
    floor.say("tom", "bearing replaced, running again")
    [reply] = floor.replies(floor.say("tom", action="choose:E-0002"))
    assert reply.kind == "confirmation" and "E-0002" in reply.text
    with Session(floor.runtime.engine) as session:
        second = session.exec(select(PlantException).where(PlantException.code == "E-0002")).one()
        assert second.status == "proposed" and second.proposal["text"] == "bearing replaced, running again"
        conv = session.exec(select(Conversation).where(Conversation.person_id == "tom")).one()
        assert conv.state == State.idle and conv.pending == {}
    [stale] = floor.replies(floor.say("tom", action="choose:E-0001"))
    assert stale.kind == "reply", "a button of an answered question records nothing"


def test_an_approval_without_thread_with_one_proposal_needs_no_question(floor: Floor) -> None:
    floor.say("tom", "bearing replaced, running again", exception_ref="E-0002")
    [reply] = floor.replies(floor.say("sara", "ok approved"))
    assert (reply.kind, reply.text) == ("confirmation", "Recorded on E-0002: you approved the fix. It goes to the ERP now.")


def test_a_question_survives_a_restart(floor: Floor, database_url: str) -> None:
    floor.say("tom", "bin unterwegs")
    asyncio.run(floor.runtime.aclose())
    floor.runtime = make_runtime(database_url, floor.clock)
    [reply] = floor.replies(floor.say("tom", "die zweite"))
    assert reply.kind == "confirmation" and "E-0002" in reply.text


def test_the_one_gate_caps_size_and_dedupes_by_event_id_for_every_way_in(floor: Floor) -> None:
    too_long = floor.say("meena", "x" * (MAX_TEXT + 1), source="telegram", address="5001", person_id=None)
    [reply] = floor.replies(too_long)
    assert reply.kind == "reply" and reply.text.startswith("Your message is too long (4001 characters")
    with Session(floor.runtime.engine) as session:
        signal = session.get(Signal, too_long)
        assert signal is not None and signal.person_id == "meena", "the gate found the sender"
        assert len(signal.payload["text"]) == MAX_TEXT and signal.payload["too_long"] == MAX_TEXT + 1
        assert len(session.exec(select(PlantException)).all()) == 2, "nothing else came of it"
    again = floor.runtime.accept(Inbound(source="telegram", event_id=f"e{floor.events}", address="5001",
                                         text="x" * (MAX_TEXT + 1)))
    assert again.duplicate and again.signal_id == too_long
    assert len(floor.replies(too_long)) == 1


def test_the_console_api_answers_a_duplicate_event_id_once(floor: Floor) -> None:
    from fastapi.testclient import TestClient

    from mfgos.web import create_app

    client = TestClient(create_app(floor.runtime, demo=True))
    body = {"person_id": "tom", "action": "ack", "exception": "E-0001", "event_id": "press-1"}
    first, second = client.post("/api/actions", json=body).json(), client.post("/api/actions", json=body).json()
    assert [r["kind"] for r in first["replies"]] == ["confirmation"]
    assert second["duplicate"] and second["replies"] == first["replies"]
    with Session(floor.runtime.engine) as session:
        assert len(session.exec(select(Signal).where(Signal.source_key == "console:press-1")).all()) == 1


# --- the transition table --------------------------------------------------------------------


def test_the_transition_table_covers_every_state() -> None:
    targets = set(TRANSITIONS.values())
    assert targets <= set(State)
    for state in State:
        assert state is State.idle or state in targets, f"{state} is reachable"
        if state is State.idle:
            assert {e for (s, e) in TRANSITIONS if s is state} == {Event.asked_machine, Event.asked_type,
                                                                     Event.asked_which, Event.asked_reason}
            continue
        # Any message answers "why abandon?": it is never asked again, nor given up on.
        settles = (Event.answered, Event.left, Event.expired) if state is State.awaiting_reason else \
            (Event.answered, Event.asked_again, Event.gave_up, Event.left, Event.expired)
        assert {e for (s, e) in TRANSITIONS if s is state} - {Event.asked_type} == set(settles), state
        for event in settles:
            target = TRANSITIONS[(state, event)]
            assert (target is state) if event is Event.asked_again else (target is State.idle), (state, event)
    for (state, event), target in TRANSITIONS.items():
        conv = Conversation(plant_id="p", person_id="x", state=state, pending={"text": "t"}, options=["E-0001"])
        assert transition(conv, event) is target and conv.state == target
        assert (conv.pending == {}) == (target is State.idle)
    with pytest.raises(ValueError, match="no transition"):
        transition(Conversation(plant_id="p", person_id="x", state=State.idle), Event.answered)


@given(st.text(max_size=MAX_TEXT + 50))
def test_a_stored_chat_text_is_never_over_the_limit(text: str) -> None:
    payload = Inbound(source="console", event_id="e", text=text).payload()
    assert len(payload["text"]) <= MAX_TEXT
    assert payload.get("too_long") == (len(text) if len(text) > MAX_TEXT else None)


def test_the_terminal_chat_answers_an_overlong_line_too_long(tmp_path: Path) -> None:
    env = {**os.environ, "MFGOS_DATABASE_URL": f"sqlite:///{tmp_path / 'chat.db'}", "NO_COLOR": "1",
           "COLUMNS": "200"}
    env.pop("MFGOS_PLANT_FILE", None)
    done = subprocess.run([sys.executable, "-m", "mfgos.cli", "chat", "--as", "lena", ], cwd=tmp_path, env=env,
                          input="y" * (MAX_TEXT + 1) + "\n/open\n/quit\n", capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    assert "(reply) Deine Nachricht ist zu lang (4001 Zeichen" in done.stdout
    assert "no open exceptions" in done.stdout


# --- the store -------------------------------------------------------------------------------


def test_an_unanswered_report_question_is_carried_over_by_the_migration(database_url: str) -> None:
    from alembic import command
    from alembic.config import Config
    from sqlalchemy import JSON, Integer, String, column, insert, table
    from sqlmodel.sql.sqltypes import UTCDateTime

    from models import make_engine
    from models.db import MIGRATIONS

    engine = make_engine(database_url)
    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS))
    asked = START - timedelta(minutes=5)
    with engine.begin() as connection:
        config.attributes["connection"] = connection
        command.upgrade(config, "0003")
        connection.execute(insert(table("plants", column("id", String), column("name", String),
                                        column("timezone", String), column("erp", JSON))),
                           {"id": "pune-1", "name": "Pune", "timezone": "Asia/Kolkata", "erp": {}})
        connection.execute(insert(table("signals", column("id", Integer), column("plant_id", String),
                                        column("source", String), column("source_key", String), column("kind", String),
                                        column("received_at", UTCDateTime()), column("person_id", String),
                                        column("payload", JSON))),
                           {"id": 7, "plant_id": "pune-1", "source": "whatsapp", "source_key": "whatsapp:w7",
                            "kind": "chat", "received_at": asked, "person_id": "ravi", "payload": {}})
        pending = table("pending_reports", column("plant_id", String), column("person_id", String),
                        column("signal_id", Integer), column("text", String), column("extraction", JSON),
                        column("missing", String), column("candidates", JSON),
                        column("created_at", UTCDateTime()), column("resolved_at", UTCDateTime()))
        row = {"plant_id": "pune-1", "person_id": "ravi", "signal_id": 7, "text": "gear machine band hai",
               "extraction": {"exception_type": "breakdown"}, "missing": "machine", "candidates": ["HOB-01", "GRD-02"],
               "created_at": asked}
        connection.execute(insert(pending), [{**row, "resolved_at": asked + timedelta(minutes=1), "text": "old"},
                                             {**row, "resolved_at": None}])
        command.upgrade(config, "head")
    with Session(engine) as session:
        [conv] = session.exec(select(Conversation)).all()
    engine.dispose()
    assert (conv.person_id, conv.state, conv.options, conv.signal_id) == \
        ("ravi", State.awaiting_machine, ["HOB-01", "GRD-02"], 7)
    assert conv.pending == {"text": "gear machine band hai", "extraction": {"exception_type": "breakdown"}}
    assert conv.expires_at == asked + timedelta(minutes=30)


def test_replaying_into_the_same_store_repeats_nothing_through_the_gate(database_url: str) -> None:
    first = replay(SCENARIOS / "stranger.yaml", database_url=database_url)
    second = replay(SCENARIOS / "stranger.yaml", database_url=database_url)
    assert second["notifications"] == first["notifications"] and len(first["notifications"]) == 3
    from models import make_engine

    engine = make_engine(database_url)
    with Session(engine) as session:
        keys = session.exec(select(Signal.source_key).order_by(Signal.id)).all()
    engine.dispose()
    assert len(keys) == 5 and keys[0].startswith("whatsapp:replay:") and keys[-1].startswith("telegram:replay:")

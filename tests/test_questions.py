"""Questions by message (docs/questions.md): a replayed day with managers', supervisors' and
operators' questions in four languages, each answer checked against the facts of the replay
(codes, counts, names, dates with the day, KPI figures worked out by hand below); the line
between a report and a question in each language; and any text at any moment never fails."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlmodel import Session

from mfgos.replay import load_scenario, replay
from models import Person, Plant, make_engine, migrate
from models.plant_file import apply, load
from nlp import Extractor
from nlp.evaluate import master_data_from_plant_file
from routing import queries
from routing.clock import SimulatedClock

SCENARIO = Path(__file__).parent / "scenarios" / "questions_day.yaml"
PLANT = Path(__file__).parent / "data" / "pune_plant.yaml"


@pytest.fixture
def day(database_url: str) -> dict[str, Any]:
    return replay(SCENARIO, database_url=database_url)


def answers(report: dict[str, Any]) -> dict[tuple[str, str], str]:
    """(asker, question) -> the reply (to the last time it was asked): each question gets one reply,
    in order, at its own moment."""
    scenario = load_scenario(SCENARIO)
    out: dict[tuple[str, str], str] = {}
    asked: dict[tuple[str, float], list[str]] = {}
    for event in scenario.events:
        if event.kind == "chat" and "exception" not in event.body:
            asked.setdefault((event.body["from"], event.at.total_seconds()), []).append(event.body["text"])
    for (person, elapsed), texts in asked.items():
        replies = [n["text"] for n in report["notifications"]
                   if n["to"] == person and n["kind"] == "reply" and n["elapsed_s"] == elapsed]
        if len(replies) == len(texts):  # reports (confirmed, not replied to) are left out
            out.update({(person, q): r for q, r in zip(texts, replies, strict=True)})
    return out


def test_questions_of_a_day_are_answered_with_the_facts(day: dict[str, Any]) -> None:
    said = answers(day)
    codes = [(e["code"], e["type"], e["machine"], e["status"]) for e in day["exceptions"]]
    # The day: E-0001 and E-0002 closed; E-0003 (no bearings on ASM-01) escalated to neha at 11:10.
    assert codes[:3] == [("E-0001", "breakdown", "HOB-01", "closed"), ("E-0002", "quality", "GRD-02", "closed"),
                         ("E-0003", "material", "ASM-01", "open")]

    # 11:20, Wednesday. Manager: the lists, in English.
    down = said["neha", "what is down?"]
    assert down.startswith("Nothing is down.") and "E-0003 material on ASM-01" in down and "E-0001" not in down
    assert said["neha", "what is escalated?"] == ("Escalated and still open:\n"
                                                  "- E-0003 material on ASM-01, open for 20 min, work orders WO-1077")
    assert said["neha", "what is waiting for approval?"] == "Waiting for approval: none."
    # Supervisor: one exception, who holds it and what it waits for.
    assert said["sara", "status E-0003"] == (
        "E-0003 material on ASM-01: open, open for 20 min, nobody has acknowledged it, "
        "waiting for an acknowledgement, work orders WO-1077.")
    # Spanish quality engineer: the open ones of an area.
    assert said["ana", "¿qué incidencias están abiertas en assembly?"] == (
        "Incidencias abiertas (assembly):\n- E-0003 material en ASM-01, abierta desde hace 20 min, órdenes WO-1077")
    # German: a work order's due date with its day (Wednesday), before the MES said done (12:00).
    running = next(n["text"] for n in day["notifications"]
                   if n["to"] == "tom" and n["elapsed_s"] == 140 * 60 and n["kind"] == "reply")
    assert running == ("WO-1042: in Arbeit, 400 × FRG-20MNCR5 an HOB-01 (Maschine läuft), "
                       "fällig Mi 2026-11-25 18:00, für SO-7001.")

    # Operators see their areas only: ravi works in gears, meena in heat and assembly.
    assert said["ravi", "kya band hai?"] == "Kuch bhi band nahi hai.", "E-0003 is in assembly, not ravi's area"
    assert said["ravi", "status E-0003"] == "E-0003 aapke area mein nahi hai (gears)."
    assert said["ravi", "assembly mein khule exceptions?"] == (
        "Aap sirf apne area dekhte hain (gears).\nKhule exceptions: koi nahi.")
    assert "E-0003" in said["meena", "what is open?"]
    assert said["meena", "status HOB-01"] == "HOB-01 is not in your areas (heat, assembly)."

    # Who is on shift at 11:20 (shift a): tom, not arjun (shift b); ana for quality.
    assert said["neha", "who is the maintenance on call?"] == "On shift now for maintenance:\n- Tom Fischer (tom; Slack)"
    assert said["ana", "¿quién está de turno en calidad?"] == "De turno ahora en calidad:\n- Ana Ruiz (ana; Slack)"
    assert said["lena", "wer hat Bereitschaft in der Instandhaltung?"] == (
        "Jetzt im Dienst (Instandhaltung):\n- Tom Fischer (tom; Slack)")
    assert said["ravi", "maintenance mein kaun duty par hai?"] == "Abhi duty par (maintenance):\n- Tom Fischer (tom; Slack)"

    # Unknown ids are said to be unknown; a question it cannot place lists what it can answer.
    assert said["neha", "status WO-9999"] == "I don't know work order WO-9999."
    assert said["neha", "status E-0042"] == "I don't know exception E-0042."
    assert said["ana", "estado SO-7999"] == "No conozco el pedido SO-7999."
    assert said["neha", "can you tell me a joke?"].startswith("I can answer: 'what is down?'")
    assert said["tom", "wie ist das Wetter?"].startswith("Ich beantworte: 'was steht?'")

    # 12:30: WO-1042 finished at 12:00, before its end.
    finished = said["tom", "Status WO-1042"]
    assert finished.startswith("WO-1042: fertig, 400 × FRG-20MNCR5 an HOB-01")
    assert "fertig Mi 2026-11-25 12:00, fällig Mi 2026-11-25 18:00" in finished
    # A customer order: promised date with the day, at risk from E-0003, its work orders; ravi sees gears' only.
    order = said["neha", "status SO-7001"].splitlines()
    assert order[0] == "SO-7001 for Deccan Tractors: promised Thu 2026-11-26 18:00, AT RISK from E-0003."
    assert [line.split()[1] for line in order[2:]] == ["WO-1042", "WO-1050", "WO-1061", "WO-1077", "WO-1078"]
    assert order[2] == "- WO-1042 done (HOB-01), due Wed 2026-11-25 18:00"
    ravi_order = said["ravi", "status SO-7001"].splitlines()
    assert ravi_order[1] == "Aap sirf apne area dekhte hain (gears)."
    assert [line.split()[1] for line in ravi_order[3:]] == ["WO-1042", "WO-1050"]
    # By age: E-0003 opened at 11:00 is open 1 h 30 min at 12:30.
    assert said["sara", "what's been open more than 3 hours?"] == "Open exceptions (open longer than 3 h): none."
    assert said["sara", "what's been open more than 1 hour?"] == (
        "Open exceptions (open longer than 1 h):\n- E-0003 material on ASM-01, open for 1 h 30 min, work orders WO-1077")
    assert said["neha", "open quality issues in assembly"] == "Open exceptions (quality, assembly): none."
    # Questions about a machine, in four languages: answered, nothing opened (below: still 3 then).
    assert said["ravi", "kya hobber 1 band hai?"] == "HOB-01 (Liebherr gear hobber 1): chalu."
    assert said["tom", "steht hobber 1?"] == "HOB-01 (Liebherr gear hobber 1): läuft."
    assert said["ana", "¿está parada la rectificadora 2?"] == "GRD-02 (Gear grinder 2): en marcha."
    assert said["neha", "is HOB-01 down?"] == "HOB-01 (Liebherr gear hobber 1): running."

    # 22:30: WO-1050 finished late (21:00, due 20:00); WO-1077 due 22:00 and not done: overdue.
    assert "finished Wed 2026-11-25 21:00, due Wed 2026-11-25 20:00" in said["neha", "status WO-1050"]
    assert "OVERDUE" not in said["neha", "status WO-1050"]
    wo_1077 = said["neha", "status WO-1077"]
    assert "due Wed 2026-11-25 22:00, OVERDUE by 30 min, for SO-7001." in wo_1077 and "E-0003" in wo_1077

    # Thursday 00:30: Wednesday is yesterday; this week runs from Monday the 23rd.
    # By hand: MTTR = HOB-01 running again at 09:50 - opened 09:00 = 50 min (the only breakdown);
    # MTTA = (tom after 4 min + ana after 3 min) / 2 = 3.5 min; one escalation (E-0003 to neha).
    assert said["neha", "MTTR yesterday"] == "yesterday (Wed 2026-11-25): MTTR 50 min (3 opened, 2 closed)."
    kpis = said["neha", "KPIs yesterday"]
    assert kpis.startswith("KPIs yesterday (Wed 2026-11-25): 3 exceptions opened, 2 closed, 1 open now. MTTR 50 min, "
                           "MTTA 3.5 min")
    # Adherence by hand: due Wednesday WO-1042 (done 12:00 <= 18:00), WO-1050 (21:00 > 20:00), WO-1077
    # and WO-1078 (not done): 1 of 4.
    assert "1 escalations" in kpis and "Schedule adherence 25%" in kpis and "2 customer orders at risk" in kpis
    assert said["sara", "schedule adherence yesterday"] == "yesterday (Wed 2026-11-25): adherence 25% (3 opened, 2 closed)."
    assert said["ana", "MTTR esta semana"] == "esta semana (lun 2026-11-23 – jue 2026-11-26): MTTR 50 min (3 abiertas, 2 cerradas)."
    assert said["tom", "MTTA diese Woche"] == "diese Woche (Mo 2026-11-23 – Do 2026-11-26): MTTA 3.5 min (3 eröffnet, 2 geschlossen)."
    assert said["ravi", "escalations is hafte"] == "is hafte (Som 2026-11-23 – Guru 2026-11-26): escalations 1 (3 khule, 2 band)."
    assert said["neha", "top exception types last 30 days"] == (
        "Top exception types by count, the last 30 days (Tue 2026-10-27 – Thu 2026-11-26):\n"
        "1. breakdown: 1, 50 min\n2. material: 1\n3. quality: 1")
    assert said["neha", "top exception types by downtime last 30 days"].splitlines()[1] == "1. breakdown: 1, 50 min"
    assert said["lena", "häufigste Störungsarten letzten Monat"] == (
        "Keine Störungen eröffnet letzten Monat (Do 2026-10-01 – Sa 2026-10-31).")
    # The complaint of issue 13: an order finished says finished, with when, not only "due".
    assert "fertig Do 2026-11-26 00:00, fällig Do 2026-11-26 04:00" in said["tom", "Status WO-1043"]


def test_a_question_opens_nothing_and_the_same_words_as_a_statement_are_a_report(day: dict[str, Any]) -> None:
    said = answers(day)
    assert said["neha", "is TST-01 down?"] == "TST-01 (End-of-line test bench 1): running."
    assert said["ana", "¿está parado CNC-11?"] == "CNC-11 (Mazak lathe 11): en marcha."
    assert said["tom", "steht HT-01?"] == "HT-01 (Sealed quench furnace 1): läuft."
    assert said["ravi", "kya CMP-02 band hai?"] == "CMP-02 aapke area mein nahi hai (gears).", "ravi works in gears"
    questions_at = 15 * 3600 + 35 * 60
    assert [e["code"] for e in day["exceptions"] if datetime.fromisoformat(e["opened_at"]) <=
            datetime.fromisoformat(day["start"]) + timedelta(seconds=questions_at)] == ["E-0001", "E-0002", "E-0003"]
    reports = [(e["machine"], e["type"], e["reporter"]) for e in day["exceptions"][3:]]
    assert reports == [("TST-01", "breakdown", "neha"), ("CNC-11", "breakdown", "ana"),
                       ("HT-01", "breakdown", "tom"), ("CMP-02", "utility", "ravi")]  # a compressor: utility


@pytest.fixture(scope="module")
def extractor() -> Extractor:
    return Extractor(master_data_from_plant_file(PLANT))


BOUNDARY = [  # (a report, the question about the same thing), per language
    ("CNC-11 is down", "is CNC-11 down?"), ("CNC-11 is down", "what is down?"),
    ("CNC-11 está parado", "¿está parado CNC-11?"), ("CNC-11 está parado", "¿qué está parado?"),
    ("CNC-11 steht", "steht CNC-11?"), ("CNC-11 steht", "was steht?"),
    ("CNC-11 band hai", "kya CNC-11 band hai?"), ("CNC-11 band hai", "kya band hai"),
    ("grinder 2 burn marks, can someone check?", "open quality issues in assembly"),
]


@pytest.mark.parametrize(("report", "question"), BOUNDARY)
def test_reports_stay_reports_and_questions_are_questions(extractor: Extractor, report: str, question: str) -> None:
    said = extractor.extract(report)
    assert said.intent == "report" and not queries.asks_instead_of_reporting(report, said)
    asked = extractor.extract(question)
    assert asked.intent == "query" or (asked.intent == "other" and queries.is_question(question)) or \
        (asked.intent == "report" and queries.asks_instead_of_reporting(question, asked))


@pytest.fixture(scope="module")
def floor(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Session, Plant, list[Person]]]:
    engine = make_engine(f"sqlite:///{tmp_path_factory.mktemp('questions') / 'q.db'}")
    migrate(engine)
    with Session(engine) as session:
        apply(session, load(PLANT))
        session.commit()
        plant = session.get(Plant, "pune-1")
        assert plant is not None
        people = [p for p in (session.get(Person, (plant.id, pid)) for pid in ("ravi", "meena", "neha", "tom"))
                  if p is not None]
        yield session, plant, people
    engine.dispose()


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(text=st.one_of(st.text(max_size=700), st.lists(st.sampled_from([
    "status", "estado", "WO-", "E-", "SO-", "9999999", "0", "last", "letzten", "pichhle", "days", "hours", "Tage",
    "more than", "top", "who", "kaun", "on call", "MTTR", "yesterday", "kal", "open", "escalated", "quality",
    "assembly", "?", "¿", "<b>", "*_~`", "HOB-01", "maintenance", "month", "week", "downtime", "%s", "{}"]),
    max_size=12).map(" ".join)),
    hours=st.integers(min_value=0, max_value=24 * 400), who=st.integers(min_value=0, max_value=3),
    language=st.sampled_from(["en", "es", "de", "hi"]))
def test_any_question_text_at_any_moment_is_answered_and_never_raises(
        floor: tuple[Session, Plant, list[Person]], extractor: Extractor, text: str, hours: int, who: int,
        language: str) -> None:
    session, plant, people = floor
    now = SimulatedClock(datetime.fromisoformat("2026-01-01T00:17:00+00:00") + timedelta(hours=hours)).now()
    extraction = extractor.extract(text[:queries.LIMIT])
    reply = queries.answer(session, plant, now, extraction, language, people[who])
    assert isinstance(reply, str) and reply.strip()
    assert len(reply) < 4000
    queries.is_question(text)


KOLKATA = Plant(id="p", name="P", timezone="Asia/Kolkata")


def local(text: str) -> datetime:
    return datetime.fromisoformat(text)


@pytest.mark.parametrize(("asked_at", "question", "since", "until", "words"), [
    # A Monday just after midnight: yesterday is Sunday, this week is today only, last week the one before.
    ("2026-12-07T00:10:00+05:30", "MTTR yesterday", "2026-12-06T00:00+05:30", "2026-12-07T00:00+05:30",
     "yesterday (Sun 2026-12-06)"),
    ("2026-12-07T00:10:00+05:30", "MTTR this week", "2026-12-07T00:00+05:30", None, "this week (Mon 2026-12-07)"),
    ("2026-12-07T00:10:00+05:30", "MTTR last week", "2026-11-30T00:00+05:30", "2026-12-07T00:00+05:30",
     "last week (Mon 2026-11-30 – Sun 2026-12-06)"),
    # A week that spans a month end; "diese Woche", "is hafte" and "esta semana" are the same week.
    ("2026-12-02T15:00:00+05:30", "MTTR diese Woche", "2026-11-30T00:00+05:30", None,
     "diese Woche (Mo 2026-11-30 – Mi 2026-12-02)"),
    ("2026-12-02T15:00:00+05:30", "MTTR is hafte", "2026-11-30T00:00+05:30", None,
     "is hafte (Som 2026-11-30 – Budh 2026-12-02)"),
    # Last month in January is December of the year before.
    ("2027-01-01T08:00:00+05:30", "Termintreue letzten Monat", "2026-12-01T00:00+05:30", "2027-01-01T00:00+05:30",
     "letzten Monat (Di 2026-12-01 – Do 2026-12-31)"),
    ("2027-01-01T08:00:00+05:30", "adherencia este mes", "2027-01-01T00:00+05:30", None, "este mes (vie 2027-01-01)"),
    # The plant's day, not UTC's: 20:00 UTC is already tomorrow in Pune.
    ("2026-12-07T20:00:00+00:00", "KPIs today", "2026-12-08T00:00+05:30", None, "today (Tue 2026-12-08)"),
    ("2026-12-07T12:00:00+05:30", "KPIs last 30 days", "2026-11-07T12:00+05:30", None,
     "the last 30 days (Sat 2026-11-07 – Mon 2026-12-07)"),
    ("2026-12-07T12:00:00+05:30", "MTTR últimos 2 días", "2026-12-05T12:00+05:30", None,
     "los últimos 2 días (sáb 2026-12-05 – lun 2026-12-07)"),
])
def test_periods_are_plant_days_relative_to_the_moment_of_asking(
        asked_at: str, question: str, since: str, until: str | None, words: str) -> None:
    now = local(asked_at)
    language = {"diese": "de", "is hafte": "hi", "Termintreue": "de", "adherencia": "es", "últimos": "es"}
    lang = next((v for k, v in language.items() if k in question), "en")
    start, end, said = queries.period_of(question, KOLKATA, now, lang)
    assert (start, said) == (local(since), words)
    assert end == (local(until) if until else now + timedelta(seconds=1)), "up to now, this second included"

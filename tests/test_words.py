"""The words people read: every template in four languages without ids, the timeline as sentences,
the exceptions list's markers and the buttons a later update replaced, through the console API."""

from __future__ import annotations

import asyncio
import re
import string
import subprocess
import sys
from collections.abc import Iterator
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlmodel import Session, select

from mfgos.config import DEMO_PLANT, Settings
from mfgos.runtime import Runtime
from mfgos.web import CONSOLE, ConsoleChannel, create_app
from models import Notification
from routing import lifecycle, messages, queries
from routing.clock import SimulatedClock
from routing.timeline import SENTENCES, Line, sentences

ROOT = Path(__file__).resolve().parent.parent
# A Wednesday at 09:00 in Pune: shift a is on, tom (maintenance) is paged, lena (lead) gets escalations.
START = datetime.fromisoformat("2026-11-25T09:00:00+05:30")
REPORT = "hobber 1 band ho gaya, spindle se awaaz aa rahi hai. wo 1042"

SNAKE_ID = re.compile(r"\b[a-z0-9]+(?:_[a-z0-9]+)+\b")
KEY_VALUE = re.compile(r"\b\w+=\S")
PLACEHOLDER = re.compile(r"\{[^}]*\}")
# The placeholders that take an id get a raw id, the worst case: the text must show a word.
IDS = {"role": "maintenance_lead", "to_role": "customer_service", "kind": "maintenance_request",
       "status": "posted", "type": "breakdown", "severity": "critical", "channel": "whatsapp"}
SAMPLES = {"code": "E-0042", "name": "Tom Fischer", "names": "Tom Fischer, Arjun Rao",
           "machine": "HOB-01 (Liebherr gear hobber 1)", "where": "HOB-01 (Liebherr gear hobber 1)",
           "summary": "spindle noise", "ack": "10 min", "work_orders": "WO-1042, WO-1043",
           "customer_orders": "SO-7001", "reference": "MR-000001", "problem": "a breakdown"}


def placeholders(template: str) -> set[str]:
    return {name for _, name, _, _ in string.Formatter().parse(template) if name}


def leaks(text: str) -> list[str]:
    return SNAKE_ID.findall(text) + KEY_VALUE.findall(text) + PLACEHOLDER.findall(text)


# --- templates ---------------------------------------------------------------------------


def test_every_template_is_written_in_all_four_languages() -> None:
    missing = {key: sorted(set(messages.LANGUAGES) - set(variants))
               for key, variants in [*messages.TEMPLATES.items(), *queries.HEADERS.items()]
               if set(variants) != set(messages.LANGUAGES)}
    assert missing == {}
    for key, variants in messages.TEMPLATES.items():
        names = {language: placeholders(text) for language, text in variants.items()}
        assert len({frozenset(n) for n in names.values()}) == 1, f"{key}: placeholders differ {names}"


@pytest.mark.parametrize("language", messages.LANGUAGES)
def test_no_template_shows_an_id_a_key_value_or_a_placeholder(language: str) -> None:
    shown = {}
    for key, variants in messages.TEMPLATES.items():
        values = {name: IDS.get(name, SAMPLES.get(name, "sample words")) for name in placeholders(variants["en"])}
        text = messages.render(key, language, **values)
        if leaks(text):
            shown[key] = (text, leaks(text))
    assert shown == {}


@pytest.mark.parametrize("language", messages.LANGUAGES)
def test_every_id_of_the_vocabularies_has_a_word(language: str) -> None:
    tables = {"role": messages.ROLE_NAMES, "kind": messages.KIND_NAMES, "type": messages.TYPE_NAMES,
              "severity": messages.SEVERITY_NAMES, "work order status": messages.WORK_ORDER_STATUS_NAMES,
              "channel": messages.CHANNEL_NAMES, "problem": messages.PROBLEM_NAMES}
    for what, table in tables.items():
        assert set(table[language]) == set(table["en"]), f"{what} in {language}"
        assert not [w for w in table[language].values() if "_" in w], f"{what} in {language}"
    for status in ("open", "acknowledged", "proposed", "approved", "posted", "closed"):
        assert "_" not in messages.status_name(status, language)


# --- the timeline as sentences ----------------------------------------------------------------


def timeline_kinds_in_code() -> set[str]:
    """Every timeline kind the code writes: the lifecycle's events, `log(ctx, exc, "kind"` and
    `TimelineEvent(... kind="kind"`."""
    kinds: set[str] = set(lifecycle.EVENT.values())
    for path in [*ROOT.glob("routing/*.py"), *ROOT.glob("bot/**/*.py"), *ROOT.glob("signals/**/*.py"),
                 *ROOT.glob("mfgos/*.py")]:
        source = path.read_text(encoding="utf-8")
        kinds.update(re.findall(r"\blog\(ctx, exc, \"(\w+)\"", source))
        for call in re.finditer(r"TimelineEvent\((.{0,300}?)\)", source, re.S):
            kinds.update(re.findall(r"kind=\"(\w+)\"", call.group(1)))
    return kinds


def test_every_timeline_kind_the_code_writes_has_a_sentence() -> None:
    kinds = timeline_kinds_in_code()
    assert {"opened", "routed", "escalated", "erp_posted", "not_reached", "attachment"} <= kinds
    assert kinds - set(SENTENCES) == set()


json_values = st.recursive(st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=20),
                           lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=8), inner,
                                                                                        max_size=3), max_leaves=8)


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(kind=st.sampled_from([*SENTENCES, "something_new", ""]), person=st.none() | st.text(max_size=12),
       data=st.dictionaries(st.sampled_from(["role", "to_role", "people", "kind", "ack_within", "work_orders",
                                             "customer_orders_at_risk", "staging_conflict", "running", "channel",
                                             "status", "work_order", "type", "secret_key"]), json_values, max_size=6),
       language=st.sampled_from([*messages.LANGUAGES, "xx"]))
def test_any_event_data_gives_a_sentence_and_unknown_kinds_never_show_their_data(
        kind: str, person: str | None, data: dict[str, Any], language: str) -> None:
    data = {**data, "secret_key": "RAW-DATA-123"}
    [sentence] = sentences([Line(kind=kind, person=person, text="", data=data)], language)
    assert sentence is None or isinstance(sentence, str) and sentence.strip()
    assert sentence is None or "RAW-DATA-123" not in sentence


def test_an_impact_that_found_nothing_has_no_sentence() -> None:
    said = sentences([Line("impact", data={"work_orders": [], "customer_orders_at_risk": [], "staging_conflict": {}}),
                      Line("closed")], "en")
    assert said == [None, "Closed"]


# --- through the console API --------------------------------------------------------------------


@pytest.fixture
def clock() -> SimulatedClock:
    return SimulatedClock(START)


@pytest.fixture
def runtime(database_url: str, clock: SimulatedClock) -> Iterator[Runtime]:
    built = Runtime(Settings(database_url=database_url, plant_file=DEMO_PLANT, erp="ledger"),
                    clock=clock, channels={CONSOLE: ConsoleChannel()})
    yield built
    built.engine.dispose()


@pytest.fixture
def client(runtime: Runtime) -> Iterator[TestClient]:
    with TestClient(create_app(runtime, demo=True)) as test_client:
        yield test_client


def chat(client: TestClient, person: str, text: str, exception: str | None = None) -> dict[str, Any]:
    response = client.post("/api/messages", json={"person_id": person, "text": text, "exception": exception})
    assert response.status_code == 200, response.text
    return response.json()


def press(client: TestClient, person: str, action: str, exception: str) -> None:
    response = client.post("/api/actions", json={"person_id": person, "action": action, "exception": exception})
    assert response.status_code == 200, response.text


def listed(client: TestClient, code: str = "E-0001") -> dict[str, Any]:
    [row] = [e for e in client.get("/api/exceptions").json()["exceptions"] if e["code"] == code]
    return row


def test_the_timeline_reads_as_sentences_in_the_readers_language(
        client: TestClient, runtime: Runtime, clock: SimulatedClock) -> None:
    chat(client, "ravi", REPORT)
    clock.set(START + timedelta(minutes=11))
    asyncio.run(runtime.drain())  # tom did not acknowledge within 10 min: lena hears it
    chat(client, "tom", "on my way", "E-0001")
    chat(client, "tom", "fixed, replaced the hob arbor bearing, running again", "E-0001")
    press(client, "meena", "approve", "E-0001")  # an operator: refused
    press(client, "sara", "approve", "E-0001")
    asyncio.run(runtime.drain())

    english = client.get("/api/exceptions/E-0001").json()["timeline"]
    said = [t["sentence"] for t in english if t["sentence"]]
    assert said == [
        f"Ravi Kumar reported a breakdown on HOB-01 (Liebherr gear hobber 1) — {REPORT}",
        "Impact: work orders WO-1042, WO-1043; customer orders SO-7001, SO-7002 at risk",
        "Paged Tom Fischer (maintenance), to acknowledge within 10 min",
        "Paged Deepa Iyer (planner)",
        "Paged John Mathew (customer service)",
        "Escalated to Lena Vogel (maintenance lead): not acknowledged within 10 min",
        "Tom Fischer acknowledged — on my way",
        "Tom Fischer proposed a fix — fixed, replaced the hob arbor bearing, running again",
        "HOB-01 (Liebherr gear hobber 1) runs again",
        "Meena Patil tried to decide; refused: only someone with the supervisor role can approve or reject",
        "Sara Khan approved",
        "Queued maintenance request for the ERP",
        "Posted maintenance request MR-000001 to the ERP",
        "Everything is posted to the ERP",
        "Closed",
        # The demo plant writes back to its embedded MES (docs/mes.md): after the close, in the outbox's order.
        "Told the MES: machine status MS-000001",
        "Told the MES: work order hold WH-000002",
        "Told the MES: downtime reason DR-000003",
        "Told the MES: machine status MS-000004",
        "Told the MES: work order resume WR-000005",
    ]
    german = [t["sentence"] for t in client.get("/api/exceptions/E-0001", params={"lang": "de"}).json()["timeline"]]
    assert "Eskaliert an Lena Vogel (Instandhaltungsleitung): nicht innerhalb von 10 min bestätigt" in german
    assert "Im ERP gebucht: Instandhaltungsmeldung MR-000001" in german
    for sentence in [*said, *filter(None, german)]:
        assert not leaks(sentence.replace(REPORT, "")), sentence
    # An unknown language reads English rather than failing.
    assert client.get("/api/exceptions/E-0001", params={"lang": "<x>"}).json()["timeline"] == english


def test_messages_people_get_name_no_ids(client: TestClient, runtime: Runtime, clock: SimulatedClock) -> None:
    chat(client, "ravi", REPORT)
    clock.set(START + timedelta(minutes=3))
    chat(client, "lena", "was steht?")  # lena (German) asks what is down
    press(client, "tom", "ack", "E-0001")
    chat(client, "tom", "fixed, replaced the bearing, running again", "E-0001")
    press(client, "sara", "approve", "E-0001")
    asyncio.run(runtime.drain())
    for person in ("ravi", "tom", "sara", "lena", "deepa", "john"):
        for note in client.get(f"/api/people/{person}/messages").json()["messages"]:
            assert not leaks(note["text"].replace(REPORT, "")), (person, note["text"])
    assert any("maintenance request ERP mein post hua, reference MR-000001" in n["text"]
               for n in client.get("/api/people/ravi/messages").json()["messages"])
    # lena's answer is in her words, no raw type or status.
    [answer] = [n["text"] for n in client.get("/api/people/lena/messages").json()["messages"] if n["kind"] == "reply"]
    assert answer.startswith("Steht gerade: HOB-01 (Liebherr gear hobber 1)\nOffene Störungen:\n"
                             "- E-0001 Ausfall an HOB-01, offen seit 3 min, Aufträge WO-1042"), answer
    assert not leaks(answer) and "[" not in answer and "breakdown" not in answer


def test_the_list_says_age_who_has_it_escalated_and_overdue(
        client: TestClient, runtime: Runtime, clock: SimulatedClock) -> None:
    chat(client, "ravi", REPORT)
    clock.set(START + timedelta(minutes=5))
    row = listed(client)
    assert (row["age"], row["severity_name"], row["status_name"], row["type_name"]) == \
        ("5 min", "high", "open", "breakdown")
    assert row["acknowledged_by"] is None and row["holder"] == "Tom Fischer, Deepa Iyer, John Mathew"
    assert (row["escalated"], row["overdue"]) == (False, False)

    clock.set(START + timedelta(minutes=10, seconds=30))  # the timer is past due, the worker has not run
    assert (listed(client)["escalated"], listed(client)["overdue"]) == (False, True)
    asyncio.run(runtime.drain())  # it fires: lena is paged
    row = listed(client)
    assert (row["escalated"], row["overdue"]) == (True, True) and "Lena Vogel" in row["paged"]

    press(client, "tom", "ack", "E-0001")
    clock.set(START + timedelta(hours=3, minutes=2))
    row = listed(client)
    assert (row["acknowledged_by"], row["holder"], row["age"]) == ("Tom Fischer", "Tom Fischer", "3 h")


def test_a_buttons_update_replaces_the_buttons_it_edits(client: TestClient, runtime: Runtime) -> None:
    chat(client, "ravi", REPORT)
    [alert] = [n for n in client.get("/api/people/tom/messages").json()["messages"] if n["kind"] == "alert"]
    assert alert["buttons"] == ["ack", "propose"] and alert["buttons_status"] is None
    # The lifecycle's row (the contract on Notification.updates_id): first one button left, then none.
    with Session(runtime.engine) as session:
        original = session.get(Notification, alert["id"])
        assert original is not None
        for n, (buttons, text) in enumerate([(["propose"], "E-0001 acknowledged by Lena Vogel"),
                                             ([], "E-0001 acknowledged by Tom Fischer")]):
            session.add(Notification(
                plant_id=original.plant_id, dedupe_key=f"test-update:{n}", exception_id=original.exception_id,
                person_id="tom", role=original.role, kind="buttons_update", channel=original.channel,
                address=original.address, language="de", text=text, buttons=buttons, created_at=original.created_at,
                updates_id=original.id))
        session.commit()
        assert len(session.exec(select(Notification).where(Notification.kind == "buttons_update")).all()) == 2
    notes = client.get("/api/people/tom/messages").json()["messages"]
    [alert] = [n for n in notes if n["kind"] == "alert"]
    assert alert["buttons"] == [] and alert["buttons_status"] == "E-0001 acknowledged by Tom Fischer"
    assert [n["updates_id"] for n in notes if n["kind"] == "buttons_update"] == [alert["id"]] * 2
    [in_thread] = [n for n in client.get("/api/exceptions/E-0001").json()["notifications"] if n["id"] == alert["id"]]
    assert in_thread["buttons"] == []


# --- the page and the replay tables -----------------------------------------------------------------


def test_the_page_has_no_inline_script_or_style_and_sets_text_only() -> None:
    static = ROOT / "mfgos" / "static"
    html = (static / "index.html").read_text(encoding="utf-8")
    assert not re.search(r"<script(?![^>]*\bsrc=)[^>]*>", html), "inline script"
    assert not re.search(r"\sstyle=|\son[a-z]+=", html, re.I), "inline style or handler"
    script = (static / "app.js").read_text(encoding="utf-8")
    assert "innerHTML" not in script and "insertAdjacentHTML" not in script and "eval(" not in script
    assert '"style"' not in script and ".setAttribute(\"style" not in script


def test_replay_tables_tell_the_timeline_in_sentences(tmp_path: Path) -> None:
    out = subprocess.run([sys.executable, "-m", "mfgos.cli", "replay", str(ROOT / "tests/scenarios/escalation.yaml")],
                         capture_output=True, text=True, timeout=300, cwd=tmp_path, env={
                             "PATH": "/usr/bin:/bin", "COLUMNS": "200", "PYTHONPATH": str(ROOT)})
    assert out.returncode == 0, out.stderr
    assert "Escalated to neha (manager): not acknowledged within 10 min" in out.stdout
    assert "Paged vikram (materials), to acknowledge within 10 min" in out.stdout
    assert "ack_within" not in out.stdout and "=" not in out.stdout


def test_the_stock_watch_reads_as_a_sentence() -> None:
    short = Line("stock_short", data={"material": "FRG-20", "usable": 120, "needed": 400, "unit": "pcs",
                                      "work_orders": ["WO-1042", "WO-1043"]})
    assert sentences([short], "en") == [
        "The ERP's stock of FRG-20 is short: 120 pcs usable, 400 pcs needed by WO-1042, WO-1043"]
    assert sentences([short], "es") == [
        "Falta FRG-20 en el stock del ERP: 120 pcs disponibles, 400 pcs necesarios para WO-1042, WO-1043"]
    assert sentences([Line("stock_recovered", data={"material": "FRG-20"})], "de") == [
        "Der ERP-Bestand von FRG-20 deckt die nächsten Aufträge wieder"]

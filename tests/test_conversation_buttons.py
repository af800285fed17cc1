""""Which one?" asked with buttons: the question a person with several open exceptions gets
carries one `choose:<code>` button per exception on every platform that has buttons; a press
(Slack block_actions, Telegram callback_query, WhatsApp interactive reply, the console's
POST /api/actions) completes what was pending there with its original words; the question's
buttons are then taken away, and a stale press records nothing.

The real client libraries against the fakes in tests/fakes, the runtime on SQLite and PostgreSQL.
"""

from __future__ import annotations

import itertools
import socket
import threading
import time
from collections.abc import AsyncIterator, Iterator
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
import uvicorn
import yaml
from fastapi.testclient import TestClient
from hypothesis import given
from hypothesis import strategies as st
from sqlmodel import Session, select

from bot.channels.cards import ACTIONS, CODE, ERP_BUTTON, button_label, button_value, parse_button
from mfgos.config import Settings
from mfgos.runtime import Runtime
from mfgos.web import create_app
from models import Notification, PlantException
from routing.conversation import QUESTION_TTL
from routing.inbound import Inbound
from tests.fakes.bridge import FakeBridge
from tests.fakes.server import wait_for
from tests.fakes.slack import FakeSlack
from tests.fakes.stack import PLANT, Stack, start_stack
from tests.fakes.telegram import FakeTelegram
from tests.fakes.whatsapp import FakeWhatsApp
from tests.test_console_browser import _errors, _texts, _until_texts, _wait, browser  # noqa: F401 - the fixture
from tests.test_conversation import Floor, floor  # noqa: F401 - the fixture

pytestmark = [pytest.mark.anyio, pytest.mark.timeout(90),
              pytest.mark.filterwarnings("ignore::telegram.warnings.PTBDeprecationWarning")]

SARA, ARJUN, BEA = "5001", "+919800000002", "+4915100000009"
# Two breakdowns in the gear cutting area, reported on the console: maintenance is paged for both.
REPORTS = [("carlos", "hobber 1 stopped, spindle alarm"), ("carlos", "grinder 2 stopped, coolant leak")]
LABELS = ["E-0001 · Gear hobber 1", "E-0002 · Gear grinder 2"]
_events = itertools.count(1)


def plant_file(tmp: Path) -> Path:
    """The channel test plant with everyone who answers here in maintenance for gear cutting:
    Tom on Slack (as he is), Sara on Telegram, Arjun on WhatsApp, Bea on the bridge; and one machine more."""
    plant = yaml.safe_load(PLANT.read_text(encoding="utf-8"))
    plant["machines"].append({"id": "SHP-03", "name": "Gear shaper 3", "area": "gears", "aliases": ["shaper 3"]})
    for person in plant["people"]:
        if person["id"] in ("sara", "arjun", "bea"):
            person["roles"], person["areas"] = ["maintenance"], ["gears", "assembly"]
    path = tmp / "plant.yaml"
    path.write_text(yaml.safe_dump(plant), encoding="utf-8")
    return path


def settings(database_url: str, tmp: Path, **channels: Any) -> Settings:
    return Settings(_env_file=None, database_url=database_url, plant_file=plant_file(tmp),  # type: ignore[call-arg]
                    attachments_dir=tmp / "attachments", **channels)


def report_both(runtime: Runtime) -> None:
    for person, text in REPORTS:
        runtime.accept(Inbound(source="console", event_id=f"report-{next(_events)}", address=person,
                               person_id=person, text=text))


def ack_of(stack: Stack, code: str, person: str) -> list[tuple[str, str]]:
    return [(t.kind, t.text) for t in stack.timeline(code) if t.person_id == person]


def assert_acknowledged_second_only(stack: Stack, person: str, words: str) -> None:
    assert ack_of(stack, "E-0002", person) == [("acknowledged", words)], "the pending ack with its own words"
    assert ack_of(stack, "E-0001", person) == [], "nothing on the other one"
    assert stack.exception("E-0001").status == "open"


async def stale_press_records_nothing(stack: Stack, person: str, press: Any) -> None:
    """A second press of the answered question's other button: answered, and nothing recorded."""
    answered = len(stack.notifications(person_id=person))
    await press()
    await wait_for(lambda: len(stack.notifications(person_id=person)) > answered)
    [said] = [n for n in stack.notifications(person_id=person)[answered:] if n.kind != "buttons_update"]
    assert said.kind == "reply" and said.exception_id is None, said.text
    assert ack_of(stack, "E-0001", person) == [] and stack.exception("E-0001").status == "open"


# --- what every channel sends and reads back ----------------------------------------------------


@given(number=st.integers(0, 999_999), other=st.one_of(st.none(), st.from_regex(r"E-\d{4}", fullmatch=True)))
def test_a_choose_button_comes_back_as_itself_whatever_thread_it_is_in(number: int, other: str | None) -> None:
    code = f"E-{number:04d}"
    value = button_value(f"choose:{code}", other)
    assert value == f"choose:{code}" and len(value.encode()) <= 64, "Telegram callback_data: 64 bytes at most"
    assert parse_button(value) == (f"choose:{code}", None)
    assert parse_button(value.lower()) == (f"choose:{code}", None)
    assert button_label(value, "de") == code


@given(value=st.text(max_size=80))
def test_any_button_value_is_one_of_ours_or_nothing(value: str) -> None:
    action, code = parse_button(value)
    if action is None:
        assert code is None
    elif action.startswith("choose:"):
        assert code is None and CODE.fullmatch(action.removeprefix("choose:"))
    elif action.startswith("erp_"):  # Retry / Abandon of a refused ERP transaction: the value as sent
        assert code is None and action == value and ERP_BUTTON.fullmatch(value)
    else:
        assert action in ACTIONS and (code is None or CODE.fullmatch(code))


# --- Slack ---------------------------------------------------------------------------------


@pytest.fixture
def slack() -> Iterator[FakeSlack]:
    server = FakeSlack().start()
    yield server
    server.stop()


@pytest.fixture
async def slack_stack(slack: FakeSlack, database_url: str, tmp_path: Path) -> AsyncIterator[Stack]:
    stack = await start_stack(settings(database_url, tmp_path, slack_bot_token="xoxb-fake",
                                       slack_signing_secret="slack-secret", slack_api_url=slack.api_url))
    yield stack
    await stack.stop()


def choices_in(message: dict[str, Any]) -> list[tuple[str, str]]:
    return [(e["value"], e["text"]["text"]) for b in message["blocks"] if b.get("type") == "actions"
            for e in b["elements"]]


async def test_slack_question_has_a_button_per_exception_and_a_press_completes_the_ack(
        slack: FakeSlack, slack_stack: Stack) -> None:
    report_both(slack_stack.runtime)
    url = slack_stack.url + "/slack/events"
    status, _ = await slack.acall(slack.deliver_event(url, slack.message_event("U01TOM", "bin unterwegs", "D01TOM",
                                                                               "1700000100.000100")))
    assert status == 200
    [question] = await wait_for(lambda: [m for m in slack.posted(to="U01TOM")
                                         if any(v.startswith("choose:") for v in slack.buttons(m))])
    assert choices_in(question) == [("choose:E-0001", LABELS[0]), ("choose:E-0002", LABELS[1])]
    assert "E-0001" in question["text"] and "E-0002" in question["text"]

    status, _ = await slack.acall(slack.deliver_action(url, slack.button_payload("U01TOM", "choose:E-0002", question)))
    assert status == 200
    await wait_for(lambda: slack_stack.exception("E-0002").status == "acknowledged")
    assert_acknowledged_second_only(slack_stack, "tom", "bin unterwegs")
    # The question is edited: no buttons left, the answer as its status line.
    [edit] = await wait_for(lambda: [u for u in slack.updates if u["ts"] == question["ts"]])
    assert not [b for b in edit["blocks"] if b["type"] == "actions"], "no buttons left on the question"
    assert "Beantwortet: E-0002" in slack.context(edit)

    await stale_press_records_nothing(slack_stack, "tom", lambda: slack.acall(slack.deliver_action(
        url, slack.button_payload("U01TOM", "choose:E-0001", question))))


# --- Telegram ------------------------------------------------------------------------------


@pytest.fixture
def telegram() -> Iterator[FakeTelegram]:
    server = FakeTelegram().start()
    yield server
    server.stop()


async def test_telegram_question_has_a_keyboard_of_choices_and_a_press_completes_the_ack(
        telegram: FakeTelegram, database_url: str, tmp_path: Path) -> None:
    stack = await start_stack(settings(database_url, tmp_path, telegram_bot_token="123:FAKE",
                                       telegram_api_url=telegram.api_url))
    try:
        report_both(stack.runtime)
        telegram.queue(telegram.message(int(SARA), "on my way"))
        [question] = await wait_for(lambda: [m for m in telegram.sent_to(SARA)
                                             if any(b.startswith("choose:") for b in FakeTelegram.buttons(m))])
        rows = question["reply_markup"]["inline_keyboard"]
        assert [[(b["callback_data"], b["text"]) for b in row] for row in rows] == [
            [("choose:E-0001", LABELS[0])], [("choose:E-0002", LABELS[1])]], "one answer per row"

        telegram.queue(telegram.callback(int(SARA), "choose:E-0002", question))
        await wait_for(lambda: stack.exception("E-0002").status == "acknowledged")
        assert_acknowledged_second_only(stack, "sara", "on my way")
        [edit] = await wait_for(lambda: [e for e in telegram.edits if e["message_id"] == question["message_id"]])
        assert edit["method"] == "editMessageReplyMarkup" and edit["reply_markup"] is None, "the keyboard is removed"
        await wait_for(lambda: [m for m in telegram.sent_to(SARA) if m["text"] == "Answered: E-0002"])

        async def press_stale() -> None:
            telegram.queue(telegram.callback(int(SARA), "choose:E-0001", question))

        await stale_press_records_nothing(stack, "sara", press_stale)
    finally:
        await stack.stop()


# --- WhatsApp ------------------------------------------------------------------------------


@pytest.fixture
def whatsapp() -> Iterator[FakeWhatsApp]:
    server = FakeWhatsApp().start()
    yield server
    server.stop()


@pytest.fixture
async def whatsapp_stack(whatsapp: FakeWhatsApp, database_url: str, tmp_path: Path) -> AsyncIterator[Stack]:
    whatsapp.open_window(ARJUN.lstrip("+"))
    stack = await start_stack(settings(database_url, tmp_path, whatsapp_token="wa-token",
                                       whatsapp_phone_number_id="1055", whatsapp_api_url=whatsapp.api_url,
                                       whatsapp_app_secret="wa-secret"))
    yield stack
    await stack.stop()


async def whatsapp_question(whatsapp: FakeWhatsApp, stack: Stack, text: str) -> dict[str, Any]:
    status, _ = await whatsapp.acall(whatsapp.deliver(stack.url + "/whatsapp/webhook",
                                                      whatsapp.text_message(ARJUN, text)))
    assert status == 200
    [question] = await wait_for(lambda: [m for m in whatsapp.sent_to(ARJUN)
                                         if any(b.startswith("choose:") for b in FakeWhatsApp.buttons(m))])
    return question


async def test_whatsapp_question_has_reply_buttons_and_a_press_completes_the_ack(
        whatsapp: FakeWhatsApp, whatsapp_stack: Stack) -> None:
    report_both(whatsapp_stack.runtime)
    question = await whatsapp_question(whatsapp, whatsapp_stack, "aa raha hoon")
    assert question["interactive"]["type"] == "button"
    assert FakeWhatsApp.buttons(question) == ["choose:E-0001", "choose:E-0002"]
    assert FakeWhatsApp.titles(question) == ["E-0001", "E-0002"], "code and machine exceed 20 characters: the code"

    async def press(code: str) -> None:
        status, _ = await whatsapp.acall(whatsapp.deliver(whatsapp_stack.url + "/whatsapp/webhook", whatsapp.button_reply(
            ARJUN, f"choose:{code}", code, question["id"])))
        assert status == 200

    await press("E-0002")
    await wait_for(lambda: whatsapp_stack.exception("E-0002").status == "acknowledged")
    assert_acknowledged_second_only(whatsapp_stack, "arjun", "aa raha hoon")
    # Sent messages cannot be edited: the status line answers the question, quoting it, without buttons.
    [done] = await wait_for(lambda: [m for m in whatsapp.sent_to(ARJUN)
                                     if (m.get("context") or {}).get("message_id") == question["id"]])
    assert done["type"] == "text" and FakeWhatsApp.text(done) == "Jawab diya: E-0002"

    await stale_press_records_nothing(whatsapp_stack, "arjun", lambda: press("E-0001"))


async def test_whatsapp_more_choices_than_reply_buttons_come_as_a_list(
        whatsapp: FakeWhatsApp, whatsapp_stack: Stack) -> None:
    report_both(whatsapp_stack.runtime)
    whatsapp_stack.runtime.accept(Inbound(source="console", event_id="report-3", address="carlos", person_id="carlos",
                                          text="shaper 3 stopped, hydraulic leak"))
    whatsapp_stack.runtime.accept(Inbound(source="console", event_id="report-4", address="meena", person_id="meena",
                                          text="line 1 stopped, conveyor motor broken"))
    question = await whatsapp_question(whatsapp, whatsapp_stack, "aa raha hoon")
    assert question["interactive"]["type"] == "list", "WhatsApp allows three reply buttons at most"
    choices = FakeWhatsApp.buttons(question)
    assert len(choices) >= 4 and all(c.startswith("choose:E-") for c in choices)
    status, _ = await whatsapp.acall(whatsapp.deliver(whatsapp_stack.url + "/whatsapp/webhook", whatsapp.button_reply(
        ARJUN, choices[1], "E-0002", question["id"], kind="list_reply")))
    assert status == 200
    await wait_for(lambda: whatsapp_stack.exception("E-0002").status == "acknowledged")
    assert_acknowledged_second_only(whatsapp_stack, "arjun", "aa raha hoon")


# --- bridge --------------------------------------------------------------------------------


async def test_bridge_gets_the_choices_as_buttons_and_a_choose_action_answers(
        database_url: str, tmp_path: Path) -> None:
    bridge = FakeBridge().start()
    stack = await start_stack(settings(database_url, tmp_path, bridge_secret="bridge-secret",
                                       bridge_callback_url=bridge.callback_url))
    url = stack.url + "/bridge/inbound"
    try:
        report_both(stack.runtime)
        status, _ = await bridge.acall(bridge.deliver(url, bridge.inbound(BEA, "bin unterwegs")))
        assert status == 200
        [question] = await wait_for(lambda: [m for m in bridge.sent_to(BEA) if m["kind"] == "question"])
        assert question["buttons"] == [{"id": "choose:E-0001", "title": "E-0001"},
                                       {"id": "choose:E-0002", "title": "E-0002"}]
        for bad in ("choose:", "choose:E-12", "choose:E-0001 x", "choose"):
            status, answer = await bridge.acall(bridge.deliver(url, bridge.inbound(BEA, action=bad)))
            assert status == 400 and "action" in answer, bad

        status, _ = await bridge.acall(bridge.deliver(url, bridge.inbound(BEA, action="choose:e-0002")))
        assert status == 200
        await wait_for(lambda: stack.exception("E-0002").status == "acknowledged")
        assert_acknowledged_second_only(stack, "bea", "bin unterwegs")
        [done] = await wait_for(lambda: [m for m in bridge.sent_to(BEA) if m["updates"] == question["message_id"]])
        assert (done["kind"], done["buttons"], done["text"]) == ("buttons_update", [], "Beantwortet: E-0002")

        async def press_stale() -> None:
            await bridge.acall(bridge.deliver(url, bridge.inbound(BEA, action="choose:E-0001")))

        await stale_press_records_nothing(stack, "bea", press_stale)
    finally:
        await stack.stop()
        bridge.stop()


# --- the console ---------------------------------------------------------------------------


def test_console_question_has_choose_buttons_and_posting_one_completes_it(database_url: str, tmp_path: Path) -> None:
    runtime = Runtime(settings(database_url, tmp_path))
    try:
        report_both(runtime)
        client = TestClient(create_app(runtime, demo=True))
        asked = client.post("/api/messages", json={"person_id": "tom", "text": "bin unterwegs"}).json()
        [question] = asked["replies"]
        assert question["kind"] == "question" and question["buttons"] == ["choose:E-0001", "choose:E-0002"]

        pressed = client.post("/api/actions", json={"person_id": "tom", "action": "choose:E-0002",
                                                    "exception": "E-0002"})
        assert pressed.status_code == 200, pressed.text
        [reply] = pressed.json()["replies"]
        assert reply["kind"] == "confirmation" and reply["exception"] == "E-0002"
        detail = client.get("/api/exceptions/E-0002").json()
        assert detail["status"] == "acknowledged"
        # The page shows the question with its buttons replaced by the answer.
        shown = client.get("/api/people/tom/messages").json()
        [now] = [m for m in shown["messages"] if m["id"] == question["id"]]
        assert now["buttons"] == [] and now["buttons_status"] == "Beantwortet: E-0002"

        stale = client.post("/api/actions", json={"person_id": "tom", "action": "choose:E-0001", "exception": "E-0001"})
        assert [r["kind"] for r in stale.json()["replies"]] == ["reply"]
        assert client.get("/api/exceptions/E-0001").json()["status"] == "open"
        for bad in ("choose:", "choose:E-", "choose:E-0001;drop", "choose:X-1", "chose:E-0001", "choose:E-1234567"):
            refused = client.post("/api/actions", json={"person_id": "tom", "action": bad, "exception": "E-0001"})
            assert refused.status_code == 422, bad
    finally:
        runtime.engine.dispose()


def test_console_page_shows_the_choices_and_a_click_answers(tmp_path: Path, browser: Any) -> None:  # noqa: F811
    """The page itself: the question's buttons read as the codes, a click posts `choose:E-0002`,
    and the answered question shows its status line instead of its buttons."""
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support.ui import Select

    runtime = Runtime(settings(f"sqlite:///{tmp_path / 'console.db'}", tmp_path))
    sock = socket.create_server(("127.0.0.1", 0))
    server = uvicorn.Server(uvicorn.Config(create_app(runtime, demo=True), log_level="warning", access_log=False, lifespan="off"))
    thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, daemon=True)
    thread.start()
    try:
        deadline = time.monotonic() + 30
        while not server.started:
            assert thread.is_alive() and time.monotonic() < deadline, "the console did not start"
            time.sleep(0.05)
        report_both(runtime)
        browser.get(f"http://127.0.0.1:{sock.getsockname()[1]}/")
        _until_texts(browser, "#person option", lambda names: len(names) > 5)
        Select(browser.find_element(By.ID, "person")).select_by_value("tom")
        browser.find_element(By.ID, "text").send_keys("bin unterwegs")
        browser.find_element(By.ID, "send").click()
        buttons = "#messages .msg.in .buttons button.choose"
        assert _until_texts(browser, buttons, bool) == ["E-0001", "E-0002"]
        browser.execute_script("[...document.querySelectorAll(arguments[0])].find((e) => e.textContent === "
                               "'E-0002').click()", buttons)
        _wait(browser, lambda _: ack_of_runtime(runtime, "E-0002"))
        _until_texts(browser, "#messages .msg.in .buttons-status", lambda said: "Beantwortet: E-0002" in said)
        assert _texts(browser, buttons) == [], "the answered question has no buttons left"
        assert _errors(browser) == []
    finally:
        server.should_exit = True
        thread.join(timeout=30)
        sock.close()
        runtime.engine.dispose()


def ack_of_runtime(runtime: Runtime, code: str) -> bool:
    with Session(runtime.engine) as session:
        found = session.exec(select(PlantException).where(PlantException.code == code)).one()
        return found.status == "acknowledged"


# --- a question settled without an answer ----------------------------------------------------


@pytest.mark.parametrize(("then", "line"), [
    ("expired", "Nicht mehr gefragt"),  # no answer within QUESTION_TTL: the next message is read on its own
    ("gave_up", "Nicht mehr gefragt"),  # not understood, twice
    ("typed", "Beantwortet: E-0001"),  # answered by text, not by a button
])
def test_the_buttons_of_a_question_settled_otherwise_are_taken_away(floor: Floor, then: str, line: str) -> None:  # noqa: F811
    [question] = floor.replies(floor.say("tom", "bin unterwegs"))
    assert question.buttons == ["choose:E-0001", "choose:E-0002"]
    if then == "expired":
        floor.clock.set(floor.clock.now() + QUESTION_TTL + timedelta(minutes=1))
        floor.say("tom", "was ist offen?")
    elif then == "gave_up":
        [again] = floor.replies(floor.say("tom", "hmm"))
        assert again.kind == "question" and again.buttons == question.buttons, "asked again: the same buttons"
        floor.say("tom", "keine ahnung")
    else:
        floor.say("tom", "die erste")
    with Session(floor.runtime.engine) as session:
        updates = session.exec(select(Notification).where(Notification.kind == "buttons_update",
                                                          Notification.person_id == "tom")).all()
        asked = session.exec(select(Notification.id).where(Notification.kind == "question")).all()
    taken = {u.updates_id: u for u in updates if u.updates_id in asked}
    assert set(taken) == set(asked), "every question of it loses its buttons"
    assert all(u.buttons == [] and u.text == line for u in taken.values())

"""A refused ERP transaction settled end to end: from the thread (Slack) and from the console.

The Pune breakdown is approved on a runtime whose plant file names no `erp.operator`, so the
fake ERPNext refuses its Downtime Entry (`Value missing for Downtime Entry: Operator`), as the
real one does. Then:

- Slack: Sara (the supervisor, the breakdown's approver) gets the ERP's reason with Retry and
  Abandon; Tom pressing her button is refused by the lifecycle table; Sara presses Abandon, is
  asked why, and her next direct message is the reason: the transaction is given up, the
  exception posts and closes (the machine already runs), and her message loses its buttons.
- The console: the exception's detail lists the refused transaction with the ERP's reason and
  its two actions; a planner pressing one gets 403; the plant file is corrected and Sara
  retries: one Downtime Entry is posted, the exception closes, and every copy of the refusal
  message shows no buttons, only who settled it. Abandon from the console without a reason
  is asked for in the chat like on Slack.
- The console page in Chromium: the refused transaction with its reason in the detail, Retry
  and Abandon for Sara only, Abandon's prompt for the reason, the buttons replaced after.
- Every channel renders the two buttons in the recipient's language and reads a press back.

Real client libraries against the fakes (tests/fakes, tests/erp_fakes), on SQLite and PostgreSQL.
"""

from __future__ import annotations

import asyncio
import socket
import threading
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
import uvicorn
import yaml
from fastapi.testclient import TestClient
from hypothesis import given
from hypothesis import strategies as st
from sqlmodel import Session, select

from bot.channels.base import OutboundMessage
from bot.channels.bridge import BridgeChannel, BridgeError
from bot.channels.cards import button_label, button_value, parse_button
from bot.channels.slack import SlackChannel
from bot.channels.telegram import TelegramChannel
from bot.channels.whatsapp import WhatsAppChannel
from mfgos.config import Settings
from mfgos.runtime import Runtime
from mfgos.web import CONSOLE, ConsoleChannel, create_app
from models import ErpTransaction, Notification, PlantException, TimelineEvent
from routing.clock import SimulatedClock
from routing.inbound import Inbound
from tests.erp_fakes import erpnext
from tests.erp_fakes.server import serve
from tests.fakes.server import wait_for
from tests.fakes.slack import FakeSlack
from tests.fakes.stack import start_stack
from tests.test_console_browser import _click, _errors, _texts, _until_texts, _wait, browser  # noqa: F401 - the fixture
from tests.test_erp_replay import ERP_BLOCKS, PLANT, PuneErp, _erpnext_site

START = datetime.fromisoformat("2026-11-25T09:00:00+05:30")  # a Wednesday, shift a: Tom and Sara on
REFUSED = "erp.operator is not set"  # the adapter refuses before ERPNext would (`Value missing ...: Operator`)
SARA, TOM = "U01SARA", "U01TOM"


@pytest.fixture
def fake_erpnext() -> Iterator[PuneErp]:
    site, holds, (user, token) = _erpnext_site()
    with serve(erpnext.make_app(site)) as url:
        yield PuneErp("erpnext", url, user, token, holds, site)


def plant_file(directory: Path, **erp: Any) -> Path:
    """The Pune plant with the ERPNext block, `operator` left out unless given."""
    block = {k: v for k, v in ERP_BLOCKS["erpnext"].items() if k != "operator"} | erp
    path = directory / "pune_plant.yaml"
    path.write_text(PLANT.read_text(encoding="utf-8") + yaml.safe_dump({"erp": block}, sort_keys=False),
                    encoding="utf-8")
    return path


def settings(database_url: str, directory: Path, erp: PuneErp, **channels: Any) -> Settings:
    return Settings(_env_file=None, database_url=database_url, plant_file=plant_file(directory),  # type: ignore[call-arg]
                    attachments_dir=directory / "attachments", erp=erp.name, erp_url=erp.url, erp_user=erp.user,
                    erp_token=erp.token, **channels)


def approve_breakdown(runtime: Runtime, clock: SimulatedClock) -> None:
    """Ravi reports, Tom acknowledges and fixes it (running again), Sara approves: on the console."""
    steps = [(0, "ravi", "hobber 1 band ho gaya, spindle se awaaz aa rahi hai. wo 1042", None),
             (4, "tom", "bin unterwegs", "E-0001"),
             (50, "tom", "fixed, replaced the hob arbor bearing, running again", "E-0001")]
    for minute, who, text, thread in steps:
        clock.set(START + timedelta(minutes=minute))
        runtime.accept(Inbound(source=CONSOLE, event_id=f"step-{minute}", address=who, person_id=who, text=text,
                               exception_ref=thread))
    clock.set(START + timedelta(minutes=52))
    runtime.accept(Inbound(source=CONSOLE, event_id="approve", address="sara", person_id="sara",
                           action="approve", exception_ref="E-0001"))


def drain(runtime: Runtime) -> None:
    """Timers and both outboxes until nothing is due, on an event loop of its own (the ERP's
    HTTP client is closed after, so the next loop opens its own)."""
    async def run() -> None:
        try:
            await runtime.drain()
        finally:
            await runtime.erp.aclose()

    asyncio.run(run())


def store(runtime: Runtime) -> tuple[PlantException, list[ErpTransaction], list[TimelineEvent]]:
    with Session(runtime.engine) as session:
        exc = session.exec(select(PlantException)).one()
        txns = list(session.exec(select(ErpTransaction).order_by(ErpTransaction.id)))
        events = list(session.exec(select(TimelineEvent).order_by(TimelineEvent.id)))
        return exc, txns, events


def rows(runtime: Runtime, **where: Any) -> list[Notification]:
    with Session(runtime.engine) as session:
        query = select(Notification).order_by(Notification.id)
        for name, value in where.items():
            query = query.where(getattr(Notification, name) == value)
        return list(session.exec(query))


# --- Slack ---------------------------------------------------------------------------------


@dataclass
class SlackPlant:
    runtime: Runtime
    clock: SimulatedClock
    slack: FakeSlack
    url: str


@pytest.fixture
async def slack_plant(fake_erpnext: PuneErp, database_url: str, tmp_path: Path) -> AsyncIterator[SlackPlant]:
    slack = FakeSlack().start()
    clock = SimulatedClock(START)
    runtime_settings = settings(database_url, tmp_path, fake_erpnext, slack_bot_token="xoxb-fake",
                                slack_signing_secret="slack-secret", slack_api_url=slack.api_url)
    stack = await start_stack(runtime_settings, clock=clock)
    try:
        yield SlackPlant(stack.runtime, clock, slack, f"{stack.url}/slack/events")
    finally:
        await stack.stop()
        await stack.runtime.aclose()
        slack.stop()


def seen(plant: SlackPlant, predicate: Callable[[], Any]) -> Awaitable[Any]:
    """`wait_for` on the simulated clock: each look moves it a second, so the outbox's retries
    (a button update waits for its message) come due as they would."""
    def look() -> Any:
        plant.clock.set(plant.clock.now() + timedelta(seconds=1))
        plant.runtime.notifications.wake()
        return predicate()

    return wait_for(look)


@pytest.mark.anyio
@pytest.mark.timeout(90)
async def test_slack_rejection_abandoned_with_the_reason_asked_for_closes_the_exception(
        slack_plant: SlackPlant, fake_erpnext: PuneErp) -> None:
    runtime, clock, slack, url = slack_plant.runtime, slack_plant.clock, slack_plant.slack, slack_plant.url
    approve_breakdown(runtime, clock)
    clock.set(START + timedelta(minutes=53))
    await runtime.erp_outbox.post_due()
    exc, [txn], _ = store(runtime)
    assert (exc.status, txn.status) == ("approved", "rejected") and REFUSED in (txn.error or "")

    # Sara, who decides on breakdowns, gets the ERP's words and the two buttons naming the row.
    [refusal] = await seen(slack_plant, lambda: [m for m in slack.posted(to=SARA) if REFUSED in m["text"]])
    assert slack.buttons(refusal) == [f"erp_retry:{txn.public_id}", f"erp_abandon:{txn.public_id}"]
    assert txn.public_id != str(txn.id) and len(txn.public_id) == 20  # random, not the row's key
    titles = [e["text"]["text"] for b in refusal["blocks"] if b.get("type") == "actions" for e in b["elements"]]
    assert titles == ["Retry", "Abandon"]
    # Tom, who proposed the fix, hears of it without buttons.
    told = await seen(slack_plant, lambda: [m for m in slack.posted(to=TOM) if REFUSED in m["text"]])
    assert all(not slack.buttons(m) for m in told)

    # Tom presses Sara's button (a forged payload): the lifecycle table refuses him.
    status, _ = await slack.acall(slack.deliver_action(url, slack.button_payload(TOM, f"erp_retry:{txn.public_id}",
                                                                                 refusal)))
    assert status == 200
    await seen(slack_plant, lambda: [m for m in slack.posted(to=TOM) if "Nur die Schichtleitung" in m["text"]])
    assert store(runtime)[1][0].status == "rejected"
    assert any(e.kind == "approval_refused" and e.data.get("action") == "erp_retry" for e in store(runtime)[2])

    # Sara presses Abandon: asked why; her next message is the reason.
    clock.set(START + timedelta(minutes=60))
    status, _ = await slack.acall(slack.deliver_action(url, slack.button_payload(
        SARA, f"erp_abandon:{txn.public_id}", refusal)))
    assert status == 200
    [question] = await seen(slack_plant, lambda: [m for m in slack.posted(to=SARA) if "why give up" in m["text"]])
    assert "E-0001" in question["text"] and not slack.buttons(question)
    assert store(runtime)[1][0].status == "rejected", "nothing is abandoned before the reason"

    status, _ = await slack.acall(slack.deliver_event(url, slack.message_event(
        SARA, "HR has not set up the Employee yet", "D01SARA", "1764043200.000100")))
    assert status == 200
    await seen(slack_plant, lambda: store(runtime)[0].status == "closed")
    exc, [txn], events = store(runtime)
    assert (txn.status, txn.error) == ("failed", "abandoned: HR has not set up the Employee yet")
    kinds = [e.kind for e in events]
    assert kinds[kinds.index("erp_abandoned"):] == ["erp_abandoned", "posted", "closed"]
    abandoned = events[kinds.index("erp_abandoned")]
    assert (abandoned.person_id, abandoned.text) == ("sara", "HR has not set up the Employee yet")
    assert not fake_erpnext.state.docs["Downtime Entry"]

    # The refusal message is edited: no buttons left, who settled it as its status line.
    line = "E-0001: given up in the ERP by Sara Khan"
    [edit] = await seen(slack_plant, lambda: [u for u in slack.updates
                                              if u["ts"] == refusal["ts"] and line in slack.context(u)])
    assert not [b for b in edit["blocks"] if b["type"] == "actions"]
    assert all(not slack.buttons(u) for u in slack.updates if u["ts"] == refusal["ts"])
    await seen(slack_plant, lambda: [m for m in slack.posted(to=SARA) if "Recorded on E-0001" in m["text"]])

    # A stale press afterwards records nothing.
    before = len(store(runtime)[2])
    status, _ = await slack.acall(slack.deliver_action(url, slack.button_payload(SARA, f"erp_retry:{txn.public_id}",
                                                                                 refusal)))
    assert status == 200
    await seen(slack_plant, lambda: len(rows(runtime, person_id="sara")) and rows(runtime, person_id="sara")[-1].kind
                   in ("refusal", "reply"))
    assert [e.kind for e in store(runtime)[2][before:]] == ["refused"]  # the exception is closed
    assert store(runtime)[1][0].status == "failed"


# --- the console ---------------------------------------------------------------------------


@pytest.fixture
def console(fake_erpnext: PuneErp, database_url: str, tmp_path: Path) -> Iterator[tuple[Runtime, TestClient]]:
    clock = SimulatedClock(START)
    runtime = Runtime(settings(database_url, tmp_path, fake_erpnext), clock=clock,
                      channels={CONSOLE: ConsoleChannel()})
    approve_breakdown(runtime, clock)
    clock.set(START + timedelta(minutes=53))
    drain(runtime)
    clock.set(START + timedelta(minutes=60))
    with TestClient(create_app(runtime, demo=True)) as client:
        yield runtime, client
    runtime.engine.dispose()


def press(client: TestClient, person: str, action: str, text: str = "") -> Any:
    return client.post("/api/actions", json={"person_id": person, "action": action, "exception": "E-0001",
                                             "text": text})


def test_console_shows_the_refusal_to_the_approver_and_a_retry_after_the_fix_posts_once(
        console: tuple[Runtime, TestClient], fake_erpnext: PuneErp, tmp_path: Path) -> None:
    runtime, client = console
    [listed] = client.get("/api/exceptions").json()["exceptions"]
    assert listed["erp_refused"] is True, "the dashboard marks it"
    detail = client.get("/api/exceptions/E-0001").json()
    assert detail["status"] == "approved" and detail["erp_refused"] is True
    [txn] = detail["erp_transactions"]
    assert txn["status"] == "rejected" and REFUSED in txn["error"]
    retry, abandon = txn["actions"]
    assert (retry, abandon) == (f"erp_retry:{txn['public_id']}", f"erp_abandon:{txn['public_id']}")
    timeline = [t["sentence"] for t in detail["timeline"]]
    assert any("The ERP refused the maintenance request" in (s or "") and REFUSED in (s or "") for s in timeline)
    sara = client.get("/api/people/sara/messages").json()["messages"]
    [shown] = [m for m in sara if m["kind"] == "erp_rejected"]
    assert shown["buttons"] == [retry, abandon] and REFUSED in shown["text"]

    # Deepa (planner) and Tom (who fixed it) are refused by the same table: 403, recorded.
    for person, role in (("deepa", "supervisor role"), ("tom", "Nur die Schichtleitung")):
        refused = press(client, person, retry)
        assert refused.status_code == 403, refused.text
        assert role in refused.json()["detail"]  # in their language
    assert press(client, "sara", "erp_retry:" + "0" * 20).status_code == 404
    assert press(client, "sara", "erp_retry:12").status_code == 422
    refusals = [t for t in client.get("/api/exceptions/E-0001").json()["timeline"] if t["kind"] == "approval_refused"]
    assert [t["person"] for t in refusals][-2:] == ["deepa", "tom"]
    assert "retry or abandon" in refusals[-1]["sentence"]

    # Retried before the fix: refused by the ERP again, with the buttons again.
    answer = press(client, "sara", retry)
    assert answer.status_code == 200, answer.text
    assert [r["kind"] for r in answer.json()["replies"]] == ["confirmation"]
    drain(runtime)
    assert client.get("/api/exceptions/E-0001").json()["erp_transactions"][0]["status"] == "rejected"
    assert len([m for m in client.get("/api/people/sara/messages").json()["messages"]
                if m["kind"] == "erp_rejected"]) == 2

    # The plant file gets its operator; Sara retries; one Downtime Entry, the exception closes.
    runtime.load_plant(plant_file(tmp_path, operator="HR-EMP-0001"))
    assert press(client, "sara", retry).status_code == 200
    drain(runtime)
    drain(runtime)
    detail = client.get("/api/exceptions/E-0001").json()
    assert detail["status"] == "closed"
    [txn] = detail["erp_transactions"]
    assert txn["status"] == "posted" and txn["actions"] == [] and detail["erp_refused"] is False
    assert [d["operator"] for d in fake_erpnext.state.docs["Downtime Entry"].values()] == ["HR-EMP-0001"]
    kinds = [t["kind"] for t in detail["timeline"]]
    assert kinds.count("erp_retried") == 2 and kinds[-3:] == ["erp_posted", "posted", "closed"]
    # Every copy of the refusal shows who settled it and no buttons (the page applies the updates).
    messages = client.get("/api/people/sara/messages").json()["messages"]
    refusals = [m for m in messages if m["kind"] == "erp_rejected"]
    assert [(m["buttons"], m["buttons_status"]) for m in refusals] == [
        ([], "E-0001: sent to the ERP again by Sara Khan")] * 2
    # A press after it all: nothing recorded, no 403 (Sara may; the exception is closed).
    late = press(client, "sara", retry)
    assert late.status_code == 200 and [r["kind"] for r in late.json()["replies"]] == ["refusal"]


def test_console_abandon_without_a_reason_asks_for_it_in_the_chat(console: tuple[Runtime, TestClient]) -> None:
    runtime, client = console
    [txn] = client.get("/api/exceptions/E-0001").json()["erp_transactions"]
    answer = press(client, "sara", f"erp_abandon:{txn['public_id']}")
    assert answer.status_code == 200, answer.text
    [question] = answer.json()["replies"]
    assert question["kind"] == "question" and question["exception"] == "E-0001"
    assert "why give up the maintenance request" in question["text"]
    assert client.get("/api/exceptions/E-0001").json()["status"] == "approved"

    said = client.post("/api/messages", json={"person_id": "sara", "text": "booked by hand in ERPNext"})
    assert said.status_code == 200, said.text
    assert [r["kind"] for r in said.json()["replies"]] == ["confirmation"]
    assert "given up in the ERP (booked by hand in ERPNext)" in said.json()["replies"][0]["text"]
    detail = client.get("/api/exceptions/E-0001").json()
    assert detail["status"] == "closed"
    assert detail["erp_transactions"][0]["status"] == "failed"
    [abandoned] = [t for t in detail["timeline"] if t["kind"] == "erp_abandoned"]
    assert abandoned["sentence"] == "Sara Khan gave up the maintenance request in the ERP — booked by hand in ERPNext"
    # Ravi, the reporter, is told in Hindi; Tom, who fixed it, in German.
    told = {m["to"]: m["text"] for m in rows_json(client, "ravi") + rows_json(client, "tom")
            if m["kind"] == "erp_abandoned"}
    assert set(told) == {"ravi", "tom"} and "booked by hand" in told["ravi"]


def rows_json(client: TestClient, person: str) -> list[dict[str, Any]]:
    return client.get(f"/api/people/{person}/messages").json()["messages"]


# --- every channel renders the two buttons and reads a press back ----------------------------

PUBLIC_ID = "3f9a0c1b2d4e5f60718a"
ERP_BUTTONS = (f"erp_retry:{PUBLIC_ID}", f"erp_abandon:{PUBLIC_ID}")
TITLES = {"en": ["Retry", "Abandon"], "es": ["Reintentar", "Abandonar"], "de": ["Erneut senden", "Aufgeben"],
          "hi": ["Dobara bhejein", "Chhod dein"]}


@given(public_id=st.from_regex(r"[0-9a-f]{20}", fullmatch=True), thread=st.one_of(st.none(), st.just("E-0042")))
def test_an_erp_button_comes_back_as_itself_and_fits_telegram(public_id: str, thread: str | None) -> None:
    for name in ("erp_retry", "erp_abandon"):
        value = button_value(f"{name}:{public_id}", thread)
        assert value == f"{name}:{public_id}" and len(value.encode()) <= 64, "Telegram callback_data: 64 bytes"
        assert parse_button(value) == (value, None), "the transaction names its exception"
    assert parse_button(f"erp_retry:{public_id}x") == (None, None)
    assert parse_button("erp_retry:") == parse_button("erp_retry") == (None, None)


@pytest.mark.parametrize("language", sorted(TITLES))
def test_every_channel_renders_retry_and_abandon_in_the_recipients_language(language: str) -> None:
    assert [button_label(b, language) for b in ERP_BUTTONS] == TITLES[language]
    message = OutboundMessage(channel="x", address="5001", text="E-0001: the ERP refused", exception_code="E-0001",
                              buttons=ERP_BUTTONS, language=language, kind="erp_rejected")
    # Slack: an actions block whose values are the buttons as they are.
    slack = SlackChannel(token="xoxb-fake").blocks("text", None, ERP_BUTTONS, language, code="E-0001")
    [actions] = [b for b in slack if b["type"] == "actions"]
    assert [(e["value"], e["text"]["text"]) for e in actions["elements"]] == list(zip(ERP_BUTTONS, TITLES[language],
                                                                                        strict=True))
    # Telegram: one row of inline buttons.
    keyboard = TelegramChannel(token="123:FAKE")._keyboard(ERP_BUTTONS, "E-0001", language)
    assert keyboard is not None
    assert [[(b.callback_data, b.text) for b in row] for row in keyboard.inline_keyboard] == [
        list(zip(ERP_BUTTONS, TITLES[language], strict=True))]
    # WhatsApp: two reply buttons, titles within 20 characters.
    body = WhatsAppChannel(token="wa", phone_number_id="1055").payload(message)
    replies = [b["reply"] for b in body["interactive"]["action"]["buttons"]]
    assert [(r["id"], r["title"]) for r in replies] == list(zip(ERP_BUTTONS, TITLES[language], strict=True))
    assert all(len(r["title"]) <= 20 for r in replies)


def test_the_bridge_takes_an_erp_button_back_and_refuses_a_malformed_one() -> None:
    bridge = BridgeChannel(secret="s", callback_url="http://127.0.0.1:9/callback")
    for value in ERP_BUTTONS:
        message, _, _ = bridge.parse({"event_id": "e1", "from": "+4915100000009", "action": value})
        assert (message.action, message.exception_ref) == (value, None)
    for bad in ("erp_retry:", "erp_retry:XYZ", f"erp_delete:{PUBLIC_ID}", f"erp_retry:{PUBLIC_ID} "):
        with pytest.raises(BridgeError, match="action"):
            bridge.parse({"event_id": "e2", "from": "+4915100000009", "action": bad})


# --- the console page ----------------------------------------------------------------------


def test_console_page_shows_the_refusal_and_abandons_it_with_the_reason_typed(
        fake_erpnext: PuneErp, tmp_path: Path, browser: Any) -> None:  # noqa: F811
    """In Chromium: the detail of E-0001 lists the refused transaction with the ERP's reason;
    Sara (the approver) sees Retry and Abandon there and on her message, Deepa sees neither;
    Abandon asks for the reason in a prompt, and the exception closes."""
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support.ui import Select

    clock = SimulatedClock(START)
    runtime = Runtime(settings(f"sqlite:///{tmp_path / 'console.db'}", tmp_path, fake_erpnext), clock=clock,
                      channels={CONSOLE: ConsoleChannel()})
    approve_breakdown(runtime, clock)
    clock.set(START + timedelta(minutes=53))
    drain(runtime)
    sock = socket.create_server(("127.0.0.1", 0))
    server = uvicorn.Server(uvicorn.Config(create_app(runtime, demo=True), log_level="warning", access_log=False,
                                           lifespan="off"))
    thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, daemon=True)
    thread.start()
    try:
        deadline = time.monotonic() + 30
        while not server.started:
            assert thread.is_alive() and time.monotonic() < deadline, "the console did not start"
            time.sleep(0.05)
        browser.get(f"http://127.0.0.1:{sock.getsockname()[1]}/")
        _until_texts(browser, "#person option", lambda names: len(names) > 5)
        Select(browser.find_element(By.ID, "person")).select_by_value("deepa")
        _until_texts(browser, "#exceptions tbody tr", bool)
        browser.find_element(By.CSS_SELECTOR, "#exceptions tbody tr[data-code='E-0001']").click()
        assert _until_texts(browser, "#exceptions .marker.erp-refused", bool) == ["ERP refused"]
        reason = _until_texts(browser, "#detail tr.refused td", bool)
        assert REFUSED in " ".join(reason)
        assert _texts(browser, "#detail td.buttons button") == [], "a planner does not decide"

        Select(browser.find_element(By.ID, "person")).select_by_value("sara")
        assert _until_texts(browser, "#detail td.buttons button", bool) == ["Retry", "Abandon"]
        assert _until_texts(browser, "#messages .msg.in .buttons button.erp_abandon", bool) == ["Abandon"]
        _click(browser, "#detail td.buttons button", "Abandon")
        prompt = _wait(browser, lambda b: b.switch_to.alert)
        prompt.send_keys("booked by hand in ERPNext")
        prompt.accept()
        _wait(browser, lambda _: store(runtime)[0].status == "closed")
        _until_texts(browser, "#messages .msg.in .buttons-status",
                     lambda said: "E-0001: given up in the ERP by Sara Khan" in said)
        assert _texts(browser, "#messages .msg.in .buttons button.erp_abandon") == []
        assert store(runtime)[1][0].error == "abandoned: booked by hand in ERPNext"
        assert _errors(browser) == []
    finally:
        server.should_exit = True
        thread.join(timeout=30)
        sock.close()
        runtime.engine.dispose()

"""Telegram end to end: python-telegram-bot against the fake Bot API, long polling and webhook mode."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import pytest
from sqlmodel import Session, select

from bot.ratelimit import Rate
from models import Attachment
from tests.fakes.server import wait_for
from tests.fakes.stack import Stack, settings_for, start_stack
from tests.fakes.telegram import BOT, FakeTelegram

pytestmark = [pytest.mark.anyio, pytest.mark.timeout(60),
              pytest.mark.filterwarnings("ignore::telegram.warnings.PTBDeprecationWarning")]

SARA, MEENA = 5001, 5002



@pytest.fixture
def fake() -> Iterator[FakeTelegram]:
    server = FakeTelegram().start()
    yield server
    server.stop()


async def _stack(fake: FakeTelegram, tmp_path: Path, **extra: Any) -> Stack:
    settings = settings_for(f"sqlite:///{tmp_path / 'tg.db'}", tmp_path, telegram_bot_token="123:FAKE",
                            telegram_api_url=fake.api_url, **extra)
    return await start_stack(settings)


@pytest.fixture
async def polling(fake: FakeTelegram, tmp_path: Path) -> AsyncIterator[Stack]:
    stack = await _stack(fake, tmp_path)
    await wait_for(lambda: "getUpdates" in [r.body["method"] for r in fake.requests])
    yield stack
    await stack.stop()


@pytest.fixture
async def webhook(fake: FakeTelegram, tmp_path: Path) -> AsyncIterator[Stack]:
    stack = await _stack(fake, tmp_path, telegram_webhook_secret="tg-secret_123",
                         telegram_webhook_url="https://mfgos.example/telegram/webhook")
    yield stack
    await stack.stop()


def propose_fix(stack: Stack) -> None:
    """Tom (on the console here) reports and fixes HOB-01, so the supervisor on Telegram must decide."""
    rt = stack.runtime
    rt.receive_chat(channel="console", address="carlos", person_id="carlos", text="hobber 1 stopped, spindle noise",
                    event_id="c1")
    rt.receive_chat(channel="console", address="tom", person_id="tom", exception_ref="E-0001", event_id="c2",
                    text="fixed, replaced the spindle bearing, running again")
    rt.notifications.wake()


async def test_polling_a_report_opens_an_exception_and_the_reporter_hears_back(fake: FakeTelegram, polling: Stack) -> None:
    fake.queue(fake.message(MEENA, "line 1 stopped, conveyor motor broken"))
    [confirmation] = await wait_for(lambda: fake.sent_to(str(MEENA)))
    assert confirmation["text"].startswith("E-0001 opened: breakdown on ASM-01")
    assert polling.exception().machine_id == "ASM-01"
    calls = [r.body["method"] for r in fake.requests]
    assert calls[:3] == ["getMe", "deleteWebhook", "getUpdates"]


async def test_approval_by_button_answers_the_query_and_edits_the_card(fake: FakeTelegram, polling: Stack) -> None:
    propose_fix(polling)
    [card] = await wait_for(lambda: fake.sent_to(str(SARA)))
    assert card["text"].startswith("E-0001: Tom Fischer proposes") and fake.buttons(card) == ["approve:E-0001", "reject:E-0001"]
    assert [b["text"] for b in card["reply_markup"]["inline_keyboard"][0]] == ["Approve", "Reject"]
    update = fake.callback(SARA, "approve:E-0001", card)
    fake.queue(update)
    await wait_for(lambda: polling.exception().status in ("approved", "posted", "closed"))
    assert update["callback_query"]["id"] in fake.answered
    # The lifecycle takes the used buttons away (a buttons update): the keyboard goes, the status follows.
    # (a slow answer can make the client send the same edit again: each one only takes the keyboard away)
    edits = await wait_for(lambda: [e for e in fake.edits if e["message_id"] == card["message_id"]])
    assert all(edit.get("reply_markup") is None and "text" not in edit for edit in edits), edits
    await wait_for(lambda: [m for m in fake.sent_to(str(SARA)) if "approved by Sara" in m["text"]])


async def test_a_reply_quoting_our_message_goes_to_its_exception(fake: FakeTelegram, polling: Stack) -> None:
    propose_fix(polling)
    [card] = await wait_for(lambda: fake.sent_to(str(SARA)))
    quoted = {"message_id": card["message_id"], "date": 0, "chat": {"id": SARA, "type": "private"}, "from": BOT,
              "text": card["text"]}
    fake.queue(fake.message(SARA, "ok, approved", reply_to=quoted))
    await wait_for(lambda: polling.exception().status in ("approved", "posted", "closed"))
    assert polling.signals()[-1].payload["reply_to"] == f"{SARA}:{card['message_id']}"


async def test_a_forum_topic_named_with_a_code_is_that_exceptions_thread(fake: FakeTelegram, polling: Stack) -> None:
    propose_fix(polling)
    await wait_for(lambda: fake.sent_to(str(SARA)))
    group = {"id": -1001234, "type": "supergroup", "title": "Gears", "is_forum": True}
    fake.queue(fake.message(SARA, "approve", chat=group, topic=(77, "E-0001 hobber spindle")))
    await wait_for(lambda: polling.exception().status in ("approved", "posted", "closed"))
    signal = polling.signals()[-1]
    assert (signal.payload["exception_ref"], signal.payload["thread_id"], signal.payload["chat_id"]) == \
        ("E-0001", "77", "-1001234")


async def test_a_voice_note_is_stored(fake: FakeTelegram, polling: Stack) -> None:
    fake.files["VOICE1"] = b"OggS-voice-note"
    fake.queue(fake.message(MEENA, "line 1 stopped, conveyor broken", voice="VOICE1"))

    def stored() -> list[Attachment]:
        with Session(polling.runtime.engine) as session:
            return list(session.exec(select(Attachment)))

    [note] = await wait_for(stored)
    assert note.kind == "voice" and Path(note.path).read_bytes() == b"OggS-voice-note"
    assert note.exception_id == polling.exception().id


async def test_a_stranger_is_told_in_their_language_and_our_own_messages_are_dropped(
        fake: FakeTelegram, polling: Stack) -> None:
    fake.queue(fake.message(7777, "¿qué máquina está parada?", language_code="es"))
    fake.queue({"update_id": 990, "message": {"message_id": 5, "date": 0, "chat": {"id": -100555, "type": "group"},
                                              "from": BOT, "text": "E-0001 breakdown"}})
    [reply] = await wait_for(lambda: fake.sent_to("7777"))
    assert reply["text"].startswith("No estás registrado")
    await asyncio.sleep(0.3)
    assert [s.payload["address"] for s in polling.signals()] == ["7777"]


async def test_a_stranger_writing_german_with_an_english_app_is_answered_in_german(
        fake: FakeTelegram, polling: Stack) -> None:
    fake.queue(fake.message(7778, "Hallo, welche Maschine steht gerade?", language_code="en"))
    [reply] = await wait_for(lambda: fake.sent_to("7778"))
    assert reply["text"].startswith("Du bist in diesem Werk nicht registriert")


@pytest.mark.parametrize("secret", [None, "wrong-secret"])
async def test_webhook_refuses_a_missing_or_wrong_secret(fake: FakeTelegram, webhook: Stack, secret: str | None) -> None:
    status, _ = await fake.acall(fake.deliver(webhook.url + "/telegram/webhook", fake.message(MEENA, "line 1 down"), secret))
    assert status == 403
    assert webhook.signals() == []


async def test_webhook_mode_registers_and_processes_each_update_once(fake: FakeTelegram, webhook: Stack) -> None:
    assert fake.webhook == {"url": "https://mfgos.example/telegram/webhook", "secret_token": "tg-secret_123"}
    assert "getUpdates" not in [r.body["method"] for r in fake.requests]
    update = fake.message(MEENA, "line 1 stopped, conveyor motor broken")
    for _ in range(2):  # Telegram redelivers when it did not see our 200
        status, _ = await fake.acall(fake.deliver(webhook.url + "/telegram/webhook", update, "tg-secret_123"))
        assert status == 200
    assert len(webhook.signals()) == 1, "stored before the 200"
    [confirmation] = await wait_for(lambda: fake.sent_to(str(MEENA)))
    assert "E-0001" in confirmation["text"]


# --- groups and forum topics as exception threads --------------------------------------------

GEARS_FORUM, PLANT_GROUP = "-1001234", "-100555"


async def _groups(fake: FakeTelegram, tmp_path: Path, groups: dict[str, str]) -> Stack:
    stack = await _stack(fake, tmp_path, telegram_groups=groups)
    await wait_for(lambda: "getUpdates" in [r.body["method"] for r in fake.requests])
    channel = stack.hub.channels["telegram"]
    # Telegram's 20 messages a minute per group would make this test take minutes (the limiter has its own tests).
    channel.group_rate = channel.chat_rate = Rate(50, 1.0, burst=50)
    return stack


def carlos_reports(stack: Stack) -> None:
    stack.runtime.receive_chat(channel="console", address="carlos", person_id="carlos", event_id="c1",
                               text="hobber 1 stopped, spindle noise")
    stack.runtime.notifications.wake()


def tom_proposes(stack: Stack) -> None:
    stack.runtime.receive_chat(channel="console", address="tom", person_id="tom", exception_ref="E-0001", event_id="c2",
                               text="fixed, replaced the spindle bearing, running again")
    stack.runtime.notifications.wake()


async def test_a_forum_gets_a_topic_per_exception_and_presses_there_are_the_pressing_persons(
        fake: FakeTelegram, tmp_path: Path) -> None:
    fake.forums.add(GEARS_FORUM)
    stack = await _groups(fake, tmp_path, {"gears": GEARS_FORUM})
    try:
        carlos_reports(stack)
        [(topic_id, topic)] = await wait_for(lambda: list(fake.topics.items()))
        assert topic == {"chat_id": GEARS_FORUM, "name": "E-0001 breakdown HOB-01 (Gear hobber 1)"}
        root, paged = await wait_for(lambda: fake.in_chat(GEARS_FORUM, topic_id)[:2] if
                                     len(fake.in_chat(GEARS_FORUM, topic_id)) >= 2 else None)
        assert root["text"].startswith("E-0001 breakdown on HOB-01") and "Work orders: WO-1042" in root["text"]
        assert fake.buttons(root) == ["ack:E-0001", "propose:E-0001"]
        assert paged["text"] == "E-0001: Tom Fischer notified (maintenance)."
        assert paged["reply_parameters"]["message_id"] == root["message_id"], "replies quote the root"

        tom_proposes(stack)
        await wait_for(lambda: fake.buttons(fake.in_chat(GEARS_FORUM)[0]) == ["approve:E-0001", "reject:E-0001"])
        # Meena (an operator) presses Approve in the group: the press is hers, and she may not decide.
        fake.queue(fake.callback(MEENA, "approve:E-0001", fake.in_chat(GEARS_FORUM)[0]))
        [refusal] = await wait_for(lambda: fake.sent_to(str(MEENA)))
        assert refusal["text"].startswith("Only someone with the supervisor role can approve or reject E-0001")
        assert stack.exception().status == "proposed"
        assert [(e.kind, e.person_id) for e in stack.timeline() if e.kind == "approval_refused"] == \
            [("approval_refused", "meena")]
        # Sara (the supervisor) presses it: approved, by her.
        fake.queue(fake.callback(SARA, "approve:E-0001", fake.in_chat(GEARS_FORUM)[0]))
        await wait_for(lambda: stack.exception().status in ("approved", "posted", "closed"))
        assert [e.person_id for e in stack.timeline() if e.kind == "approved"] == ["sara"]
        await wait_for(lambda: "E-0001 approved by Sara Khan." in [m["text"] for m in fake.in_chat(GEARS_FORUM, topic_id)])

        # A message in the topic belongs to the exception, without quoting anything of ours.
        fake.queue(fake.message(SARA, "root cause: worn bearing, order spares", chat=_forum(),
                                topic=(topic_id, topic["name"])))
        await wait_for(lambda: [e for e in stack.timeline() if e.kind == "comment" and "worn bearing" in e.text])
        assert len([m for m in fake.in_chat(GEARS_FORUM) if m["message_thread_id"] is None]) == 0, "all in the topic"
    finally:
        await stack.stop()


def _forum() -> dict[str, object]:
    return {"id": int(GEARS_FORUM), "type": "supergroup", "title": "Gears", "is_forum": True}


async def test_in_a_group_the_bot_takes_only_what_is_addressed_to_it(fake: FakeTelegram, tmp_path: Path) -> None:
    stack = await _groups(fake, tmp_path, {"*": PLANT_GROUP})
    try:
        group = {"id": int(PLANT_GROUP), "type": "supergroup", "title": "Plant"}
        fake.queue(fake.message(MEENA, "lunch at 12?", chat=group))
        fake.queue(fake.message(MEENA, "@mfgos_bot line 1 stopped, conveyor motor broken", chat=group))
        [confirmation] = await wait_for(lambda: fake.sent_to(str(MEENA)))
        assert confirmation["text"].startswith("E-0001 opened: breakdown on ASM-01"), "answered in her private chat"
        [signal] = stack.signals()
        assert signal.payload["text"] == "line 1 stopped, conveyor motor broken" and signal.person_id == "meena"
        assert signal.payload["chat_id"] == PLANT_GROUP
    finally:
        await stack.stop()


async def test_a_plain_group_thread_is_a_reply_chain_and_a_reply_to_it_goes_to_the_exception(
        fake: FakeTelegram, tmp_path: Path) -> None:
    stack = await _groups(fake, tmp_path, {"*": PLANT_GROUP})
    try:
        carlos_reports(stack)
        root, paged = await wait_for(lambda: fake.in_chat(PLANT_GROUP)[:2] if len(fake.in_chat(PLANT_GROUP)) >= 2 else None)
        assert fake.topics == {} and root["message_thread_id"] is None, "not a forum: no topic"
        assert root["text"].startswith("E-0001 breakdown on HOB-01")
        assert paged["reply_parameters"]["message_id"] == root["message_id"]
        tom_proposes(stack)
        await wait_for(lambda: fake.buttons(fake.in_chat(PLANT_GROUP)[0]) == ["approve:E-0001", "reject:E-0001"])
        quoted = {"message_id": root["message_id"], "date": 0, "from": BOT, "text": root["text"],
                  "chat": {"id": int(PLANT_GROUP), "type": "supergroup"}}
        fake.queue(fake.message(SARA, "ok, approved", chat={"id": int(PLANT_GROUP), "type": "supergroup", "title": "Plant"},
                                reply_to=quoted))
        await wait_for(lambda: stack.exception().status in ("approved", "posted", "closed"))
        assert [e.person_id for e in stack.timeline() if e.kind == "approved"] == ["sara"]
        await wait_for(lambda: fake.buttons(fake.in_chat(PLANT_GROUP)[0]) == [], timeout=15)
    finally:
        await stack.stop()

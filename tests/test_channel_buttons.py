"""Live buttons, channel side: a `buttons_update` row edits the earlier message on its platform
(Slack chat.update, Telegram editMessageReplyMarkup, WhatsApp a reply), after the original and
never without it; the buttons left still work."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import update

from models import Notification, session_scope
from tests.fakes.bridge import FakeBridge
from tests.fakes.server import wait_for
from tests.fakes.slack import FakeSlack
from tests.fakes.stack import Stack, settings_for, start_stack
from tests.fakes.telegram import FakeTelegram
from tests.fakes.whatsapp import FakeWhatsApp

pytestmark = [pytest.mark.anyio, pytest.mark.timeout(60)]

STATUS = "E-0001 acknowledged by Tom Fischer"
SARA, ARJUN, BEA = "5001", "+919800000002", "+4915100000009"


def settled(stack: Stack, row_id: int) -> Notification | None:
    row = stack.notification(row_id)
    return row if row is not None and row.status != "pending" else None


# --- Slack ---------------------------------------------------------------------------------


@pytest.fixture
def slack() -> Iterator[FakeSlack]:
    server = FakeSlack().start()
    yield server
    server.stop()


@pytest.fixture
async def slack_stack(slack: FakeSlack, tmp_path: Path) -> AsyncIterator[Stack]:
    settings = settings_for(f"sqlite:///{tmp_path / 'slack.db'}", tmp_path, slack_bot_token="xoxb-fake",
                            slack_signing_secret="slack-secret", slack_api_url=slack.api_url)
    stack = await start_stack(settings)
    yield stack
    await stack.stop()


async def test_slack_edits_the_original_and_a_button_left_still_works(slack: FakeSlack, slack_stack: Stack) -> None:
    exc = slack_stack.open_exception()
    original = slack_stack.queue("slack", "U01TOM", "E-0001 breakdown: spindle noise", exception_id=exc,
                                 buttons=("ack", "propose"), person_id="tom")
    [message] = await wait_for(lambda: slack.posted(to="U01TOM"))
    assert slack.buttons(message) == ["ack:E-0001", "propose:E-0001"]
    # The fake has the post before the outbox has written down its id: wait for the row, not the post.
    stored = await wait_for(lambda: settled(slack_stack, original))
    assert stored.platform_message_id == f"{message['channel']}:{message['ts']}"

    done = slack_stack.queue("slack", "U01TOM", STATUS, exception_id=exc, kind="buttons_update", buttons=("ack",),
                             updates_id=original, person_id="tom")
    [edit] = await wait_for(lambda: slack.updates)
    assert (edit["channel"], edit["ts"]) == (message["channel"], message["ts"]), "the original message, not a new one"
    assert len(slack.posted()) == 1
    assert slack.buttons(slack.posted()[0]) == ["ack:E-0001"]
    assert STATUS in slack.context(slack.posted()[0]) and "spindle noise" in edit["text"]
    row = await wait_for(lambda: settled(slack_stack, done))
    assert (row.status, row.platform_message_id) == ("sent", stored.platform_message_id)

    # The button left on the edited message is pressed: it reaches the exception as before.
    url = slack_stack.url + "/slack/events"
    status, _ = await slack.acall(slack.deliver_action(url, slack.button_payload("U01TOM", "ack:E-0001",
                                                                                   slack.posted()[0])))
    assert status == 200
    await wait_for(lambda: slack_stack.exception().status == "acknowledged")
    # The lifecycle takes the used ack, the last button shown, away itself: a third edit, no actions block;
    # the status edits leave a message the lifecycle updates alone.
    await wait_for(lambda: len(slack.updates) == 2 and not slack.buttons(slack.posted()[0]))
    await asyncio.sleep(1.2)  # two passes of the status edits
    assert len(slack.updates) == 2
    assert not [b for b in slack.posted()[0]["blocks"] if b["type"] == "actions"], "no buttons left: no actions block"


@pytest.mark.parametrize("same_thread", [True, False])
async def test_slack_update_waits_for_its_original_and_follows_it(slack: FakeSlack, slack_stack: Stack,
                                                                  same_thread: bool) -> None:
    exc = slack_stack.open_exception()
    original = slack_stack.queue("slack", "U01TOM", "E-0001 breakdown", exception_id=exc, buttons=("ack",))
    later = datetime.now(UTC) + timedelta(hours=1)
    with session_scope(slack_stack.runtime.engine) as session:  # not delivered yet: its platform is slow
        session.execute(update(Notification).where(Notification.id == original).values(next_attempt_at=later))
    # In the original's thread the update queues behind it; in another one it is claimed and must wait.
    done = slack_stack.queue("slack", "U01TOM", STATUS, exception_id=exc if same_thread else None,
                             kind="buttons_update", updates_id=original)
    await asyncio.sleep(0.5)
    assert slack.messages == [] and slack.updates == [], "nothing to edit yet, and no new message instead"
    waiting = slack_stack.notification(done)
    assert waiting.status == "pending"
    if not same_thread:
        assert waiting.attempts >= 1 and "waiting for the message it updates" in (waiting.error or "")

    with session_scope(slack_stack.runtime.engine) as session:
        session.execute(update(Notification).where(Notification.id == original).values(next_attempt_at=datetime.now(UTC)))
    slack_stack.runtime.notifications.wake()
    await wait_for(lambda: slack.updates)
    assert [m["ts"] for m in slack.messages] == [slack.updates[0]["ts"]]
    assert (await wait_for(lambda: settled(slack_stack, done))).status == "sent"


@pytest.mark.parametrize("original_status", ["failed", "not_configured"])
async def test_an_update_of_a_message_never_delivered_is_done_without_a_call(
        slack: FakeSlack, slack_stack: Stack, original_status: str) -> None:
    exc = slack_stack.open_exception()
    original = slack_stack.queue("slack", "UGONE1", "E-0001 breakdown", exception_id=exc, buttons=("ack",))
    with session_scope(slack_stack.runtime.engine) as session:
        session.execute(update(Notification).where(Notification.id == original)
                        .values(status=original_status, next_attempt_at=None))
    done = slack_stack.queue("slack", "UGONE1", STATUS, exception_id=exc, kind="buttons_update", updates_id=original)
    row = await wait_for(lambda: settled(slack_stack, done))
    assert row.status == "sent" and "nothing to update" in (row.error or "") and row.platform_message_id is None
    assert slack.messages == [] and slack.updates == []
    assert not [r for r in slack.requests if r.path.endswith(("chat.postMessage", "chat.update"))]


# --- Telegram ------------------------------------------------------------------------------


@pytest.fixture
def telegram() -> Iterator[FakeTelegram]:
    server = FakeTelegram().start()
    yield server
    server.stop()


@pytest.fixture
async def telegram_stack(telegram: FakeTelegram, tmp_path: Path) -> AsyncIterator[Stack]:
    settings = settings_for(f"sqlite:///{tmp_path / 'tg.db'}", tmp_path, telegram_bot_token="123:FAKE",
                            telegram_api_url=telegram.api_url)
    stack = await start_stack(settings)
    yield stack
    await stack.stop()


def keyboard(message: dict[str, Any] | None) -> list[str]:
    return [b["callback_data"] for row in ((message or {}).get("inline_keyboard") or []) for b in row]


async def test_telegram_edits_the_keyboard_replies_with_the_status_and_a_button_left_works(
        telegram: FakeTelegram, telegram_stack: Stack) -> None:
    exc = telegram_stack.open_exception()
    original = telegram_stack.queue("telegram", SARA, "E-0001 breakdown: spindle noise", exception_id=exc,
                                    buttons=("ack", "propose"), person_id="sara")
    [card] = await wait_for(lambda: telegram.sent_to(SARA))
    done = telegram_stack.queue("telegram", SARA, STATUS, exception_id=exc, kind="buttons_update", buttons=("ack",),
                                updates_id=original, person_id="sara")
    [edit] = await wait_for(lambda: telegram.edits)
    assert (edit["method"], edit["message_id"]) == ("editMessageReplyMarkup", card["message_id"])
    assert keyboard(edit["reply_markup"]) == ["ack:E-0001"] and card["text"] == "E-0001 breakdown: spindle noise"
    [_, reply] = await wait_for(lambda: telegram.sent_to(SARA)[1:] and telegram.sent_to(SARA))
    assert reply["text"] == STATUS and reply["reply_parameters"]["message_id"] == card["message_id"]
    row = await wait_for(lambda: settled(telegram_stack, done))
    assert (row.status, row.platform_message_id) == ("sent", f"{SARA}:{reply['message_id']}")

    telegram.queue(telegram.callback(int(SARA), "ack:E-0001", card))  # the button left, on the edited message
    await wait_for(lambda: telegram_stack.exception().status == "acknowledged")

    telegram_stack.queue("telegram", SARA, "", exception_id=exc, kind="buttons_update", updates_id=original)
    await wait_for(lambda: len(telegram.edits) >= 2)
    assert telegram.edits[-1]["reply_markup"] is None and card["reply_markup"] is None, "no keyboard left"
    request = [r.body for r in telegram.requests if r.body.get("method") == "editMessageReplyMarkup"][-1]
    assert not request.get("reply_markup"), "the Bot API removes the keyboard when no reply_markup is given"


# --- WhatsApp ------------------------------------------------------------------------------


@pytest.fixture
def whatsapp() -> Iterator[FakeWhatsApp]:
    server = FakeWhatsApp().start()
    yield server
    server.stop()


async def test_whatsapp_replies_to_the_original_with_the_status_and_the_buttons_left(
        whatsapp: FakeWhatsApp, tmp_path: Path) -> None:
    settings = settings_for(f"sqlite:///{tmp_path / 'wa.db'}", tmp_path, whatsapp_token="wa-token",
                            whatsapp_phone_number_id="1055", whatsapp_api_url=whatsapp.api_url,
                            whatsapp_app_secret="wa-secret")
    whatsapp.open_window(ARJUN.lstrip("+"))
    stack = await start_stack(settings)
    try:
        exc = stack.open_exception()
        original = stack.queue("whatsapp", ARJUN, "E-0001 breakdown", exception_id=exc, buttons=("ack", "propose"))
        [card] = await wait_for(lambda: whatsapp.sent_to(ARJUN))
        stack.queue("whatsapp", ARJUN, STATUS, exception_id=exc, kind="buttons_update", buttons=("propose",),
                    updates_id=original)
        stack.queue("whatsapp", ARJUN, "E-0001 closed", exception_id=exc, kind="buttons_update", updates_id=original)
        [_, live, closed] = await wait_for(lambda: whatsapp.sent_to(ARJUN)[2:] and whatsapp.sent_to(ARJUN))
        assert live["context"] == {"message_id": card["id"]} and closed["context"] == {"message_id": card["id"]}
        assert FakeWhatsApp.text(live) == STATUS and FakeWhatsApp.buttons(live) == ["propose:E-0001"]
        assert closed["type"] == "text" and FakeWhatsApp.text(closed) == "E-0001 closed"
    finally:
        await stack.stop()


# --- bridge --------------------------------------------------------------------------------


async def test_the_bridge_is_told_which_message_a_buttons_update_replaces(tmp_path: Path) -> None:
    bridge = FakeBridge().start()
    settings = settings_for(f"sqlite:///{tmp_path / 'bridge.db'}", tmp_path, bridge_secret="bridge-secret",
                            bridge_callback_url=bridge.callback_url)
    stack = await start_stack(settings)
    try:
        exc = stack.open_exception()
        original = stack.queue("bridge", BEA, "E-0001 breakdown", exception_id=exc, buttons=("ack", "propose"))
        [card] = await wait_for(lambda: bridge.sent_to(BEA))
        stack.queue("bridge", BEA, STATUS, exception_id=exc, kind="buttons_update", buttons=("propose",),
                    updates_id=original)
        [_, edit] = await wait_for(lambda: bridge.sent_to(BEA)[1:] and bridge.sent_to(BEA))
        assert (edit["kind"], edit["updates"], edit["text"]) == ("buttons_update", card["message_id"], STATUS)
        assert FakeBridge.buttons(edit) == ["propose:E-0001"] and card["updates"] is None
    finally:
        await stack.stop()
        bridge.stop()

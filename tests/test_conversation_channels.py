"""The size limit on a real platform: python-telegram-bot against the fake Bot API, webhook mode."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import pytest

from routing.inbound import MAX_TEXT
from tests.fakes.server import wait_for
from tests.fakes.stack import Stack, settings_for, start_stack
from tests.fakes.telegram import FakeTelegram

pytestmark = [pytest.mark.anyio, pytest.mark.timeout(60),
              pytest.mark.filterwarnings("ignore::telegram.warnings.PTBDeprecationWarning")]

MEENA = 5002
SECRET = "tg-secret_123"


@pytest.fixture
def fake() -> Iterator[FakeTelegram]:
    server = FakeTelegram().start()
    yield server
    server.stop()


@pytest.fixture
async def webhook(fake: FakeTelegram, tmp_path: Path) -> AsyncIterator[Stack]:
    settings = settings_for(f"sqlite:///{tmp_path / 'tg.db'}", tmp_path, telegram_bot_token="123:FAKE",
                            telegram_api_url=fake.api_url, telegram_webhook_secret=SECRET,
                            telegram_webhook_url="https://mfgos.example/telegram/webhook")
    stack = await start_stack(settings)
    yield stack
    await stack.stop()


async def test_a_message_over_the_limit_gets_too_long_and_nothing_else(fake: FakeTelegram, webhook: Stack) -> None:
    fake.files["PHOTO1"] = b"\x89PNG-not-fetched"
    update = fake.message(MEENA, "line 1 stopped, conveyor motor broken " + "x" * MAX_TEXT, photo="PHOTO1")
    status, _ = await fake.acall(fake.deliver(webhook.url + "/telegram/webhook", update, SECRET))
    assert status == 200, "the platform hears it was taken"
    [answer] = await wait_for(lambda: fake.sent_to(str(MEENA)))
    assert answer["text"].startswith(f"Your message is too long ({MAX_TEXT + 38} characters, at most {MAX_TEXT})")
    # A normal message after it is answered: so the outbox had its chance to send anything else.
    status, _ = await fake.acall(fake.deliver(webhook.url + "/telegram/webhook", fake.message(MEENA, "what is down?"),
                                              SECRET))
    assert status == 200
    await wait_for(lambda: len(fake.sent_to(str(MEENA))) == 2)
    await asyncio.sleep(0.2)
    assert len(fake.sent_to(str(MEENA))) == 2 and webhook.exception() is None
    assert "getFile" not in [r.body["method"] for r in fake.requests], "nothing of it is fetched"
    [stored, _] = webhook.signals()
    assert stored.payload["too_long"] == MAX_TEXT + 38 and len(stored.payload["text"]) == MAX_TEXT

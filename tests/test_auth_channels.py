"""The sign-in link travels like every bot message: through the outbox and the real Slack client to
the fake Slack, into the person's direct messages, in their language; the person opens it and is in."""

from __future__ import annotations

import re
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import httpx
import pytest

from mfgos.auth import SESSION_COOKIE
from tests.fakes.server import wait_for
from tests.fakes.slack import FakeSlack
from tests.fakes.stack import Stack, settings_for, start_stack

pytestmark = [pytest.mark.anyio, pytest.mark.timeout(60)]
LINK = re.compile(r"https?://\S+/auth/magic/[A-Za-z0-9_-]+")


@pytest.fixture
def fake() -> Iterator[FakeSlack]:
    server = FakeSlack().start()
    yield server
    server.stop()


@pytest.fixture
async def stack(fake: FakeSlack, tmp_path: Path) -> AsyncIterator[Stack]:
    settings = settings_for(f"sqlite:///{tmp_path / 'auth.db'}", tmp_path, slack_bot_token="xoxb-fake",
                            slack_api_url=fake.api_url, slack_signing_secret="slack-secret")
    running = await start_stack(settings)
    yield running
    await running.stop()


async def test_the_link_arrives_in_the_persons_slack_in_their_language(fake: FakeSlack, stack: Stack) -> None:
    async with httpx.AsyncClient(base_url=stack.url) as browser:
        assert (await browser.post("/auth/login", json={"person_id": "tom"})).status_code == 202
        [message] = await wait_for(lambda: fake.posted(to="U01TOM"))
        assert "Anmeldung" in message["text"], "Tom reads German"
        link = LINK.search(message["text"])
        assert link and link.group(0).startswith(stack.url + "/auth/magic/")
        opened = await browser.get(link.group(0))
        assert opened.status_code == 303 and SESSION_COOKIE in browser.cookies
        me = (await browser.get("/api/session")).json()
        assert me["person"]["id"] == "tom" and me["demo"] is False
        assert (await browser.get(link.group(0))).status_code == 410
    # Nobody else was written to.
    assert [m["to"] for m in fake.messages] == ["U01TOM"]

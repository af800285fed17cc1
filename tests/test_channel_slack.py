"""Slack end to end: slack-bolt and slack-sdk against the fake Slack, events over HTTP and Socket Mode."""

from __future__ import annotations

import asyncio
import json
import re
import time
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from sqlmodel import Session, select

from bot.threads import AreaThreads
from models import Attachment
from tests.fakes.server import wait_for
from tests.fakes.slack import BOT_ID, BOT_USER, FakeSlack
from tests.fakes.stack import Stack, settings_for, start_stack

pytestmark = [pytest.mark.anyio, pytest.mark.timeout(60)]



@pytest.fixture
def fake() -> Iterator[FakeSlack]:
    server = FakeSlack().start()
    yield server
    server.stop()


async def _stack(fake: FakeSlack, tmp_path: Path, **extra: Any) -> Stack:
    settings = settings_for(f"sqlite:///{tmp_path / 'slack.db'}", tmp_path, slack_bot_token="xoxb-fake",
                            slack_api_url=fake.api_url, **extra)
    return await start_stack(settings)


@pytest.fixture
async def stack(fake: FakeSlack, tmp_path: Path) -> AsyncIterator[Stack]:
    running = await _stack(fake, tmp_path, slack_signing_secret="slack-secret")
    yield running
    await running.stop()


def ts(n: int) -> str:
    return f"{1_800_000_000 + n}.000{n:03d}"


async def test_url_verification_needs_a_valid_signature(fake: FakeSlack, stack: Stack) -> None:
    url = stack.url + "/slack/events"
    body = {"type": "url_verification", "token": "t", "challenge": "3eZbrw1aBm2rZgRNFdxV2595E9CY3gmdALWMmHkvFXO7tYXAYM8P"}
    assert await fake.acall(fake.deliver_event(url, body)) == (200, json.dumps({"challenge": body["challenge"]}))
    assert (await fake.acall(fake.deliver_event(url, body, secret="forged")))[0] == 401


@pytest.mark.parametrize("how", ["forged", "stale", "unsigned"])
async def test_a_forged_or_stale_event_is_refused_and_changes_nothing(fake: FakeSlack, stack: Stack, how: str) -> None:
    body = fake.message_event("U01TOM", "hobber 1 down, spindle broken", "D01TOM", ts(1))
    if how == "unsigned":
        status, _ = await fake.acall(fake.post(stack.url + "/slack/events", json.dumps(body).encode(),
                                               {"Content-Type": "application/json"}))
    else:
        status, _ = await fake.acall(fake.deliver_event(
            stack.url + "/slack/events", body, secret="forged" if how == "forged" else None,
            timestamp=int(time.time()) - 301 if how == "stale" else None))
    assert status == 401
    await asyncio.sleep(0.2)
    assert stack.signals() == [] and fake.posted() == []


async def test_a_report_in_a_dm_pages_people_and_a_redelivery_is_processed_once(fake: FakeSlack, stack: Stack) -> None:
    url = stack.url + "/slack/events"
    body = fake.message_event("U01TOM", "hobber 1 band, spindle broken. wo 1042", "D01TOM", ts(1))
    assert (await fake.acall(fake.deliver_event(url, body)))[0] == 200
    await wait_for(lambda: len(fake.posted()) >= 3)
    for retry in (1, 2):  # Slack redelivers when it thinks the ack came late
        assert (await fake.acall(fake.deliver_event(url, body, retry_num=retry)))[0] == 200
    await asyncio.sleep(0.3)
    assert len(stack.signals()) == 1
    [alert] = fake.posted(to="U01LENA")  # nobody with the maintenance role is free, so the lead is paged
    assert alert["text"].startswith("E-0001") and fake.buttons(alert) == ["ack:E-0001"]
    context = fake.context(alert)
    assert "Maschine: HOB-01 (Gear hobber 1)" in context and "Aufträge: WO-1042" in context
    assert "Gefährdete Kundenaufträge: SO-7001" in context and any(c.startswith("Eröffnet") for c in context)
    assert len(fake.posted(to="U01DEEPA")) == 1
    [confirmation] = fake.posted(to="U01TOM")
    assert "E-0001 eröffnet" in confirmation["text"]


async def test_our_own_messages_and_other_bots_are_dropped(fake: FakeSlack, stack: Stack) -> None:
    url = stack.url + "/slack/events"
    own = fake.message_event(BOT_USER, "E-0001 breakdown on HOB-01", "D01TOM", ts(2))
    other_bot = fake.message_event("U0OTHER", "hobber 1 down", "D01TOM", ts(3))
    other_bot["event"]["bot_id"] = "B0OTHER"
    mine = fake.message_event("U01TOM", "hobber 1 down", "D01TOM", ts(4))
    mine["event"]["bot_id"] = BOT_ID
    for body in (own, other_bot, mine):
        assert (await fake.acall(fake.deliver_event(url, body)))[0] == 200
    await asyncio.sleep(0.3)
    assert stack.signals() == [] and fake.posted() == []


async def test_a_stranger_learns_only_that_they_are_not_registered(fake: FakeSlack, stack: Stack) -> None:
    body = fake.message_event("U0STRANGER", "what is down? status WO-1042", "D0STRANGER", ts(5))
    assert (await fake.acall(fake.deliver_event(stack.url + "/slack/events", body)))[0] == 200
    [reply] = await wait_for(lambda: fake.posted(to="U0STRANGER"))
    assert "not registered" in reply["text"] and "WO-1042" not in reply["text"] and fake.buttons(reply) == []
    [signal] = stack.signals()
    assert signal.person_id is None and signal.payload["text"] == "what is down? status WO-1042"
    assert len(fake.posted()) == 1


async def test_a_stranger_is_answered_in_the_language_they_wrote(fake: FakeSlack, stack: Stack) -> None:
    body = fake.message_event("U0EXTRANJ", "¿qué máquinas están paradas ahora?", "D0EXTRANJ", ts(6))
    assert (await fake.acall(fake.deliver_event(stack.url + "/slack/events", body)))[0] == 200
    [reply] = await wait_for(lambda: fake.posted(to="U0EXTRANJ"))
    assert reply["text"].startswith("No estás registrado")


async def test_a_strangers_slack_locale_decides_when_the_text_cannot(fake: FakeSlack, stack: Stack) -> None:
    fake.locales.update({"U0FREMD": "de-DE", "U0GAST": "hi-IN"})
    url = stack.url + "/slack/events"
    for n, (user, text) in enumerate((("U0FREMD", "??"), ("U0FREMD", "hallo?"), ("U0GAST", "¿hay alguien?"))):
        assert (await fake.acall(fake.deliver_event(url, fake.message_event(user, text, f"D{user}", ts(7 + n)))))[0] == 200
    await wait_for(lambda: len(fake.posted()) == 2)
    german = [m["text"] for m in fake.posted(to="U0FREMD")]  # once an hour per sender: "hallo?" is not answered
    assert len(german) == 1 and german[0].startswith("Du bist in diesem Werk nicht registriert"), german
    [spanish] = fake.posted(to="U0GAST")  # the text is Spanish: it wins over the Hindi locale
    assert spanish["text"].startswith("No estás registrado")
    lookups = [r for r in fake.requests if r.path.endswith("/users.info")]
    assert [r.body["user"] for r in lookups] == ["U0FREMD", "U0GAST"]  # once per stranger, never for people


async def test_without_direct_messages_everything_is_a_reply_in_the_area_thread(fake: FakeSlack, tmp_path: Path) -> None:
    stack = await _stack(fake, tmp_path, slack_signing_secret="slack-secret", slack_channels={"gears": "C0GEARS"},
                         slack_direct_messages=False)
    try:
        url = stack.url + "/slack/events"
        body = fake.message_event("U01DEEPA", "hobber 1 stopped, spindle noise", "D01DEEPA", ts(10))
        assert (await fake.acall(fake.deliver_event(url, body)))[0] == 200
        await wait_for(lambda: len(fake.posted(channel="C0GEARS")) >= 2)
        root, *replies = fake.posted(channel="C0GEARS")
        assert root["thread_ts"] is None and root["text"].startswith("E-0001 breakdown on HOB-01")
        assert fake.buttons(root) == ["ack:E-0001", "propose:E-0001"]
        assert "Status: open" in fake.context(root)
        [tom] = [r for r in replies if "<@U01TOM>" in r["text"]]
        assert tom["thread_ts"] == root["ts"] and fake.buttons(tom) == ["ack:E-0001", "propose:E-0001"]

        # Tom acknowledges with the root's button: bolt acks, the listener runs after it.
        status, _ = await fake.acall(fake.deliver_action(url, fake.button_payload("U01TOM", "ack:E-0001", root)))
        assert status == 200
        await wait_for(lambda: stack.exception().status == "acknowledged")
        await wait_for(lambda: any("Status: acknowledged" in fake.context(m) for m in fake.posted(channel="C0GEARS")
                                   if m["ts"] == root["ts"]))
        assert fake.buttons(fake.posted(channel="C0GEARS")[0]) == ["propose:E-0001"]

        # A reply in the thread belongs to the exception: Tom proposes the fix.
        reply = fake.message_event("U01TOM", "fixed, replaced the spindle bearing, running again", "C0GEARS", ts(11),
                                   thread_ts=root["ts"])
        assert (await fake.acall(fake.deliver_event(url, reply)))[0] == 200
        await wait_for(lambda: stack.exception().status == "proposed")
        await wait_for(lambda: fake.buttons(fake.posted(channel="C0GEARS")[0]) == ["approve:E-0001", "reject:E-0001"])
        assert len([m for m in fake.posted(channel="C0GEARS") if m["thread_ts"] is None]) == 1, "one thread per exception"
        assert fake.posted(to="U01TOM") == [], "no direct messages in this mode"
    finally:
        await stack.stop()


async def test_the_area_thread_follows_the_timeline_and_routed_people_get_their_own_dm(
        fake: FakeSlack, tmp_path: Path) -> None:
    stack = await _stack(fake, tmp_path, slack_signing_secret="slack-secret", slack_channels={"gears": "C0GEARS"})
    try:
        url = stack.url + "/slack/events"
        body = fake.message_event("U01DEEPA", "hobber 1 stopped, spindle noise", "D01DEEPA", ts(40))
        assert (await fake.acall(fake.deliver_event(url, body)))[0] == 200
        # Tom (maintenance) hears about it in his own DM, with his buttons and the exception's context.
        [alert] = await wait_for(lambda: fake.posted(to="U01TOM"))
        assert alert["thread_ts"] is None and alert["text"].startswith("E-0001")
        assert fake.buttons(alert) == ["ack:E-0001", "propose:E-0001"]
        assert "Maschine: HOB-01 (Gear hobber 1)" in fake.context(alert)
        # The area channel gets the thread: the root with the card, then one reply per routing step (Deepa, the planner, reported it).
        await wait_for(lambda: len(fake.posted(channel="C0GEARS")) >= 2)
        root, *replies = fake.posted(channel="C0GEARS")
        assert root["thread_ts"] is None and root["text"].startswith("E-0001 breakdown on HOB-01")
        assert fake.buttons(root) == ["ack:E-0001", "propose:E-0001"] and "Status: open" in fake.context(root)
        assert all(r["thread_ts"] == root["ts"] for r in replies)
        assert [r["text"] for r in replies] == ["E-0001: Tom Fischer notified (maintenance)."]
        assert not any("<@" in m["text"] for m in fake.posted(channel="C0GEARS")), "names, not a second ping"

        # Tom acknowledges in his DM: the root, his DM card and the thread all show it.
        status, _ = await fake.acall(fake.deliver_action(url, fake.button_payload("U01TOM", "ack:E-0001", alert)))
        assert status == 200
        await wait_for(lambda: stack.exception().status == "acknowledged")
        await wait_for(lambda: "E-0001: Tom Fischer acknowledged." in [m["text"] for m in fake.posted(channel="C0GEARS")])
        await wait_for(lambda: fake.buttons(fake.posted(channel="C0GEARS")[0]) == ["propose:E-0001"])
        await wait_for(lambda: fake.buttons(fake.posted(to="U01TOM")[0]) == ["propose:E-0001"])

        # A reply in the area thread belongs to the exception.
        reply = fake.message_event("U01TOM", "fixed, replaced the spindle bearing, running again", "C0GEARS", ts(41),
                                   thread_ts=root["ts"])
        assert (await fake.acall(fake.deliver_event(url, reply)))[0] == 200
        await wait_for(lambda: stack.exception().status == "proposed")
        await wait_for(lambda: fake.buttons(fake.posted(channel="C0GEARS")[0]) == ["approve:E-0001", "reject:E-0001"])
        proposal = await wait_for(lambda: [m for m in fake.posted(channel="C0GEARS") if "proposes" in m["text"]])
        assert proposal[0]["text"] == "E-0001: Tom Fischer proposes: fixed, replaced the spindle bearing, running " \
            "again. Approve or reject?"
        thread = fake.posted(channel="C0GEARS")
        assert len([m for m in thread if m["thread_ts"] is None]) == 1, "one thread per exception"
        assert [float(m["ts"]) for m in thread] == sorted(float(m["ts"]) for m in thread), "in timeline order"

        # Mirroring again (another replica, or a restart re-reading the last day) writes nothing twice.
        slack = stack.hub.channels["slack"]
        assert slack.threads.mirror() == 0
        assert AreaThreads("slack", {"gears": "C0GEARS"}, stack.runtime.engine).mirror() == 0
        await asyncio.sleep(0.6)
        assert fake.posted(channel="C0GEARS") == thread
    finally:
        await stack.stop()


async def test_an_area_channel_the_bot_cannot_post_in_is_on_the_timeline_once(fake: FakeSlack, tmp_path: Path) -> None:
    stack = await _stack(fake, tmp_path, slack_signing_secret="slack-secret", slack_channels={"gears": "CGONE1"})
    try:
        url = stack.url + "/slack/events"
        body = fake.message_event("U01DEEPA", "hobber 1 stopped, spindle noise", "D01DEEPA", ts(50))
        assert (await fake.acall(fake.deliver_event(url, body)))[0] == 200
        [alert] = await wait_for(lambda: fake.posted(to="U01TOM"))
        [root] = await wait_for(lambda: [n for n in stack.notifications(kind="thread_root") if n.status == "failed"])
        assert "channel_not_found" in (root.error or "")
        await wait_for(lambda: [e for e in stack.timeline() if e.kind == "not_reached"])
        status, _ = await fake.acall(fake.deliver_action(url, fake.button_payload("U01TOM", "ack:E-0001", alert)))
        assert status == 200
        await wait_for(lambda: stack.exception().status == "acknowledged")
        await asyncio.sleep(1.2)  # two mirror passes
        assert [n.kind for n in stack.notifications(address="CGONE1")] == ["thread_root", "thread_reply"]
        assert fake.posted(to="CGONE1") == [] and fake.posted(to="U01DEEPA"), "the DMs still go out"
    finally:
        await stack.stop()


async def test_a_photo_is_stored_and_linked_to_the_exception(fake: FakeSlack, stack: Stack) -> None:
    url = stack.url + "/slack/events"
    await fake.acall(fake.deliver_event(url, fake.message_event("U01TOM", "hobber 1 down, spindle broken", "D01TOM", ts(20))))
    await wait_for(lambda: stack.exception() is not None)
    photo = fake.add_file("spindle.jpg", b"\xff\xd8\xff-jpeg-bytes", "image/jpeg")
    body = fake.message_event("U01TOM", "E-0001 photo of the spindle", "D01TOM", ts(21), files=[photo])
    assert (await fake.acall(fake.deliver_event(url, body)))[0] == 200

    def stored() -> list[Attachment]:
        with Session(stack.runtime.engine) as session:
            return list(session.exec(select(Attachment)))

    [attachment] = await wait_for(stored)
    assert attachment.exception_id == stack.exception().id and attachment.kind == "photo"
    assert Path(attachment.path).read_bytes() == b"\xff\xd8\xff-jpeg-bytes"
    link = f"/attachments/{attachment.public_id}"
    assert any(e.kind == "attachment" and [a.get("url") for a in e.data.get("attachments", [])] == [link]
               for e in stack.timeline())
    status, _ = await fake.acall(fake.get(stack.url + link))
    assert status == 401, "only to people signed in"
    async with httpx.AsyncClient(base_url=stack.url) as console:  # Tom signs in with the link sent to his Slack
        await console.post("/auth/login", json={"person_id": "tom"})
        [sign_in] = await wait_for(lambda: [m["text"] for m in fake.posted(to="U01TOM") if "/auth/magic/" in m["text"]])
        await console.get(re.search(r"/auth/magic/[\w-]+", sign_in).group(0))  # type: ignore[union-attr]
        assert (await console.get(link)).status_code == 200, "the console shows it"
        assert (await console.get(f"/attachments/{attachment.id}")).status_code == 404, "never under its integer key"


async def test_socket_mode_receives_events_and_button_presses(fake: FakeSlack, tmp_path: Path) -> None:
    stack = await _stack(fake, tmp_path, slack_app_token="xapp-fake")
    try:
        await wait_for(lambda: fake.connected)
        assert (await fake.acall(fake.post(stack.url + "/slack/events", b"{}", {})))[0] == 404, "no HTTP events"
        envelope = await fake.acall(fake.push("events_api", fake.message_event(
            "U01TOM", "hobber 1 down, spindle broken", "D01TOM", ts(30))))
        await wait_for(lambda: envelope in fake.acks)
        [alert] = await wait_for(lambda: fake.posted(to="U01LENA"))
        press = await fake.acall(fake.push("interactive", fake.button_payload("U01LENA", "ack:E-0001", alert)))
        await wait_for(lambda: press in fake.acks)
        await wait_for(lambda: stack.exception().status == "acknowledged")
        await wait_for(lambda: fake.updates)
        assert fake.buttons(fake.posted(to="U01LENA")[0]) == [], "the acknowledged card has no buttons left"
    finally:
        await stack.stop()

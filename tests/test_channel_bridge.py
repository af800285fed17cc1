"""The generic bridge: signed inbound requests, signed callbacks, attachments (docs/channels.md)."""

from __future__ import annotations

import asyncio
import base64
import time
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import pytest
from sqlmodel import Session, select

from models import Attachment
from tests.fakes.bridge import FakeBridge
from tests.fakes.server import wait_for
from tests.fakes.stack import Stack, settings_for, start_stack

pytestmark = [pytest.mark.anyio, pytest.mark.timeout(60)]

BEA = "+4915100000009"



@pytest.fixture
def fake() -> Iterator[FakeBridge]:
    server = FakeBridge().start()
    yield server
    server.stop()


@pytest.fixture
async def stack(fake: FakeBridge, tmp_path: Path) -> AsyncIterator[Stack]:
    settings = settings_for(f"sqlite:///{tmp_path / 'bridge.db'}", tmp_path, bridge_secret="bridge-secret",
                            bridge_callback_url=fake.callback_url)
    running = await start_stack(settings)
    yield running
    await running.stop()


def inbound(stack: Stack) -> str:
    return stack.url + "/bridge/inbound"


async def test_a_signed_message_is_processed_and_answered_through_the_signed_callback(fake: FakeBridge, stack: Stack) -> None:
    body = fake.inbound(BEA, "Linie 1 steht, Förderband kaputt")
    status, answer = await fake.acall(fake.deliver(inbound(stack), body))
    assert status == 200 and '"status":"stored"' in answer
    assert (await fake.acall(fake.deliver(inbound(stack), body)))[1].count("duplicate") == 1, "redelivery: once"
    [reply] = await wait_for(lambda: fake.sent_to(BEA))
    assert reply["text"].startswith("E-0001 eröffnet: Ausfall an ASM-01") and reply["exception"] == "E-0001"
    assert reply["language"] == "de" and fake.refused == []
    assert fake.idempotency_keys == [f"mfgos-notification-{reply['notification_id']}"]


@pytest.mark.parametrize("how", ["forged", "stale"])
async def test_a_forged_or_stale_request_is_refused(fake: FakeBridge, stack: Stack, how: str) -> None:
    body = fake.inbound(BEA, "Linie 1 steht")
    status, _ = await fake.acall(fake.deliver(inbound(stack), body, secret="forged" if how == "forged" else None,
                                              timestamp=int(time.time()) - 301 if how == "stale" else None))
    assert status == 401
    await asyncio.sleep(0.1)
    assert stack.signals() == []


async def test_a_body_that_breaks_the_protocol_gets_a_400_that_says_why(fake: FakeBridge, stack: Stack) -> None:
    status, answer = await fake.acall(fake.deliver(inbound(stack), {"from": BEA, "text": "hello"}))
    assert status == 400 and "event_id" in answer
    status, answer = await fake.acall(fake.deliver(inbound(stack), fake.inbound(BEA, "x", action="delete")))
    assert status == 400 and "action" in answer
    assert stack.signals() == []


async def test_actions_and_attachments_by_value_and_by_url(fake: FakeBridge, stack: Stack) -> None:
    await fake.acall(fake.deliver(inbound(stack), fake.inbound(BEA, "Linie 1 steht, Förderband kaputt")))
    await wait_for(lambda: stack.exception() is not None)
    fake.files["belt.jpg"] = (b"JPEG-belt", "image/jpeg")
    body = fake.inbound(BEA, "so sieht es aus", exception="E-0001", attachments=[
        {"kind": "photo", "content_type": "image/jpeg", "url": f"{fake.url}/files/belt.jpg"},
        {"kind": "voice", "content_type": "audio/ogg", "data": base64.b64encode(b"OggS-note").decode()}])
    assert (await fake.acall(fake.deliver(inbound(stack), body)))[0] == 200

    def stored() -> list[Attachment]:
        with Session(stack.runtime.engine) as session:
            return list(session.exec(select(Attachment).order_by(Attachment.id)))

    photo, voice = await wait_for(lambda: len(stored()) == 2 and stored())
    assert Path(photo.path).read_bytes() == b"JPEG-belt" and Path(voice.path).read_bytes() == b"OggS-note"
    assert {photo.exception_id, voice.exception_id} == {stack.exception().id}
    action = fake.inbound(BEA, exception="E-0001", action="ack")
    assert (await fake.acall(fake.deliver(inbound(stack), action)))[0] == 200
    assert stack.signals()[-1].kind == "action"


@pytest.mark.parametrize(("text", "language", "expected"), [
    ("¿qué máquinas están paradas ahora?", None, "No estás registrado"),
    ("", "hi", "Aap is plant mein registered nahi hain"),
])
async def test_a_stranger_hears_in_their_language_as_on_every_channel(
        fake: FakeBridge, stack: Stack, text: str, language: str | None, expected: str) -> None:
    extra = {"language": language} if language else {}
    if not text:
        extra["attachments"] = [{"kind": "photo", "content_type": "image/jpeg", "data": base64.b64encode(b"jpg").decode()}]
    assert (await fake.acall(fake.deliver(inbound(stack), fake.inbound("+4400000001", text, **extra))))[0] == 200
    [reply] = await wait_for(lambda: fake.sent_to("+4400000001"))
    assert reply["text"].startswith(expected)

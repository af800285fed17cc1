"""Photos of paper end to end: the real client libraries against the platform fakes (tests/fakes),
the app under uvicorn, the real Tesseract. A photo in, the exception it describes opened, the photo
and the text read from it on the exception's timeline, the answer in the sender's language."""

from __future__ import annotations

import base64
import io
import shutil
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import pytest
from PIL import Image
from sqlmodel import Session, select

from models import Attachment, Signal
from nlp import ocr
from tests.conftest import service_unavailable
from tests.fakes.bridge import FakeBridge
from tests.fakes.server import wait_for
from tests.fakes.slack import FakeSlack
from tests.fakes.stack import Stack, settings_for, start_stack
from tests.fakes.telegram import FakeTelegram
from tests.fakes.whatsapp import FakeWhatsApp
from tests.paper import papers, render

pytestmark = [pytest.mark.anyio, pytest.mark.timeout(120),
              pytest.mark.filterwarnings("ignore::telegram.warnings.PTBDeprecationWarning")]

MEENA, CARLOS, BEA = 5002, "+34600000001", "+4915100000009"


@pytest.fixture(autouse=True)
def _tesseract() -> None:
    if shutil.which("tesseract") is None:
        service_unavailable("tesseract is not installed (see the README's set-up)")


def attachments(stack: Stack) -> list[Attachment]:
    with Session(stack.runtime.engine) as session:
        return list(session.exec(select(Attachment)))


# --- Telegram: python-telegram-bot, long polling --------------------------------------------


@pytest.fixture
def telegram() -> Iterator[FakeTelegram]:
    server = FakeTelegram().start()
    yield server
    server.stop()


@pytest.fixture
async def polling(telegram: FakeTelegram, tmp_path: Path) -> AsyncIterator[Stack]:
    stack = await start_stack(settings_for(f"sqlite:///{tmp_path / 'tg.db'}", tmp_path, telegram_bot_token="123:FAKE",
                                           telegram_api_url=telegram.api_url))
    await wait_for(lambda: "getUpdates" in [r.body["method"] for r in telegram.requests])
    yield stack
    await stack.stop()


async def test_telegram_a_photo_of_a_note_opens_the_exception_with_the_photo_on_its_timeline(
        telegram: FakeTelegram, polling: Stack) -> None:
    paper = papers("note", "en")[0]
    telegram.files["NOTE1"] = render(paper, fmt="JPEG")
    update = telegram.message(MEENA, photo="NOTE1")
    telegram.queue(update)
    [confirmation] = await wait_for(lambda: telegram.sent_to(str(MEENA)), timeout=60)
    assert confirmation["text"].startswith("E-0001 opened: breakdown on ASM-01")
    exc = polling.exception()
    assert (exc.machine_id, exc.work_orders) == ("ASM-01", ["WO-1077"])
    [photo] = await wait_for(lambda: attachments(polling))
    assert photo.exception_id == exc.id and photo.content_type == "image/jpeg"
    events = {e.kind: e for e in polling.timeline()}
    assert events["attachment"].data["attachments"][0]["url"] == f"/attachments/{photo.public_id}"
    assert "conveyor motor" in events["photo_text"].text and "WO-1077" in events["photo_text"].text



# --- WhatsApp: httpx against the fake Cloud API, signed webhooks ---------------------------------


@pytest.fixture
def whatsapp() -> Iterator[FakeWhatsApp]:
    server = FakeWhatsApp().start()
    yield server
    server.stop()


@pytest.fixture
async def wa_stack(whatsapp: FakeWhatsApp, tmp_path: Path) -> AsyncIterator[Stack]:
    stack = await start_stack(settings_for(
        f"sqlite:///{tmp_path / 'wa.db'}", tmp_path, whatsapp_token="wa-token", whatsapp_phone_number_id="1055",
        whatsapp_api_url=whatsapp.api_url, whatsapp_app_secret="wa-secret", whatsapp_verify_token="verify-me"))
    yield stack
    await stack.stop()


async def test_whatsapp_a_spanish_form_opens_a_breakdown_and_is_answered_in_spanish(
        whatsapp: FakeWhatsApp, wa_stack: Stack, monkeypatch: pytest.MonkeyPatch) -> None:
    calls: list[Any] = []
    real = ocr.read_file
    monkeypatch.setattr(ocr, "read_file", lambda *a, **k: calls.append(a) or real(*a, **k))
    body = whatsapp.image_message(CARLOS, render(papers("form", "es")[0], fmt="JPEG"))
    for _ in range(2):  # Meta delivers again until it sees a 200
        assert (await whatsapp.acall(whatsapp.deliver(wa_stack.url + "/whatsapp/webhook", body)))[0] == 200
    [reply] = await wait_for(lambda: whatsapp.sent_to(CARLOS), timeout=60)
    assert len(wa_stack.signals()) == 1 and len(calls) == 1, "stored once, read once"
    assert whatsapp.text(reply).startswith("E-0001 abierto: avería en HOB-01")
    assert wa_stack.exception().work_orders[0] == "WO-1042"
    assert "husillo" in [e for e in wa_stack.timeline() if e.kind == "photo_text"][0].text


async def test_whatsapp_a_photo_with_no_text_on_it_is_answered_and_pages_nobody(
        whatsapp: FakeWhatsApp, wa_stack: Stack) -> None:
    out = io.BytesIO()
    Image.new("RGB", (1024, 768), (120, 130, 140)).save(out, format="JPEG")  # a photo of a grey wall
    body = whatsapp.image_message(CARLOS, out.getvalue())
    assert (await whatsapp.acall(whatsapp.deliver(wa_stack.url + "/whatsapp/webhook", body)))[0] == 200
    [reply] = await wait_for(lambda: whatsapp.sent_to(CARLOS), timeout=60)
    assert whatsapp.text(reply).startswith("No pude leer texto en esa foto")
    assert wa_stack.exception() is None and [a.exception_id for a in attachments(wa_stack)] == [None]


# --- Slack: slack-bolt's Events API ------------------------------------------------------------


@pytest.fixture
def slack() -> Iterator[FakeSlack]:
    server = FakeSlack().start()
    yield server
    server.stop()


@pytest.fixture
async def slack_stack(slack: FakeSlack, tmp_path: Path) -> AsyncIterator[Stack]:
    stack = await start_stack(settings_for(f"sqlite:///{tmp_path / 'slack.db'}", tmp_path, slack_bot_token="xoxb-fake",
                                           slack_api_url=slack.api_url, slack_signing_secret="slack-secret"))
    yield stack
    await stack.stop()


async def test_slack_a_german_label_with_a_caption_is_read_with_the_caption(slack: FakeSlack, slack_stack: Stack) -> None:
    paper = papers("label", "de")[0]
    photo = slack.add_file("label.png", render(paper), "image/png")
    body = slack.message_event("U01TOM", paper.caption, "D01TOM", "1800000001.000001", files=[photo])
    assert (await slack.acall(slack.deliver_event(slack_stack.url + "/slack/events", body)))[0] == 200
    exc = await wait_for(slack_stack.exception, timeout=60)
    assert (exc.type, exc.material_id) == ("material", "FRG-20")
    [signal] = slack_stack.signals()
    assert signal.payload["text"] == paper.caption and signal.payload["photo_text"][0]["status"] == "read"
    await wait_for(lambda: [a for a in attachments(slack_stack) if a.exception_id == exc.id])


async def test_slack_a_file_that_only_claims_to_be_an_image_is_not_read(slack: FakeSlack, slack_stack: Stack) -> None:
    photo = slack.add_file("evil.png", b"<svg onload=alert(1)>", "image/png")
    body = slack.message_event("U01TOM", "hobber 1 down, spindle broken", "D01TOM", "1800000002.000002", files=[photo])
    assert (await slack.acall(slack.deliver_event(slack_stack.url + "/slack/events", body)))[0] == 200
    exc = await wait_for(slack_stack.exception, timeout=60)
    assert exc.machine_id == "HOB-01"  # the text is read as typed; the "photo" is a download, never OCR'd

    def read() -> list[Signal]:
        return [s for s in slack_stack.signals() if s.processed_at is not None]

    [signal] = await wait_for(read)
    assert "photo_text" not in signal.payload


# --- the bridge: a photo inline (base64) in a signed request ---------------------------------------


@pytest.fixture
def bridge() -> Iterator[FakeBridge]:
    server = FakeBridge().start()
    yield server
    server.stop()


async def test_bridge_a_german_note_inline_opens_the_breakdown_in_german(bridge: FakeBridge, tmp_path: Path) -> None:
    stack = await start_stack(settings_for(f"sqlite:///{tmp_path / 'bridge.db'}", tmp_path,
                                           bridge_secret="bridge-secret", bridge_callback_url=bridge.callback_url))
    try:
        note = render(papers("note", "de")[0], fmt="JPEG")
        body = bridge.inbound(BEA, "", attachments=[
            {"kind": "photo", "content_type": "image/jpeg", "data": base64.b64encode(note).decode()}])
        assert (await bridge.acall(bridge.deliver(stack.url + "/bridge/inbound", body)))[0] == 200
        [reply] = await wait_for(lambda: bridge.sent_to(BEA), timeout=60)
        assert reply["text"].startswith("E-0001 eröffnet: Ausfall an ASM-01")
    finally:
        await stack.stop()

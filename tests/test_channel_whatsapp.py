"""WhatsApp end to end: our httpx client against the fake Cloud API, signed webhooks over HTTP."""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import pytest
from sqlmodel import Session, select

from bot.channels.base import OutboundMessage
from models import Attachment
from tests.fakes.server import wait_for
from tests.fakes.stack import Stack, settings_for, start_stack
from tests.fakes.whatsapp import FakeWhatsApp

pytestmark = [pytest.mark.anyio, pytest.mark.timeout(60)]

CARLOS, ARJUN = "+34600000001", "+919800000002"



@pytest.fixture
def fake() -> Iterator[FakeWhatsApp]:
    server = FakeWhatsApp().start()
    yield server
    server.stop()


async def _stack(fake: FakeWhatsApp, tmp_path: Path, **extra: Any) -> Stack:
    settings = settings_for(f"sqlite:///{tmp_path / 'wa.db'}", tmp_path, whatsapp_token="wa-token",
                            whatsapp_phone_number_id="1055", whatsapp_api_url=fake.api_url,
                            whatsapp_app_secret="wa-secret", whatsapp_verify_token="verify-me", **extra)
    return await start_stack(settings)


@pytest.fixture
async def stack(fake: FakeWhatsApp, tmp_path: Path) -> AsyncIterator[Stack]:
    running = await _stack(fake, tmp_path)
    yield running
    await running.stop()


@pytest.fixture
async def with_template(fake: FakeWhatsApp, tmp_path: Path) -> AsyncIterator[Stack]:
    fake.templates["mfgos_update"] = {"hi": 1, "es_ES": 1}  # approved by Meta in Hindi and Spanish (Spain)
    running = await _stack(fake, tmp_path, whatsapp_template="mfgos_update", whatsapp_template_languages={"es": "es_ES"})
    yield running
    await running.stop()


def hook(stack: Stack) -> str:
    return stack.url + "/whatsapp/webhook"


async def test_the_verify_handshake_echoes_the_challenge_only_for_our_token(fake: FakeWhatsApp, stack: Stack) -> None:
    params = {"hub.mode": "subscribe", "hub.challenge": "1158201444", "hub.verify_token": "verify-me"}
    assert await fake.acall(fake.get(hook(stack), params)) == (200, "1158201444")
    assert (await fake.acall(fake.get(hook(stack), params | {"hub.verify_token": "guess"})))[0] == 403


async def test_a_forged_or_reserialised_body_is_refused_and_changes_nothing(fake: FakeWhatsApp, stack: Stack) -> None:
    body = fake.text_message(CARLOS, "hobber 1 parada, ruido en el husillo")
    assert (await fake.acall(fake.deliver(hook(stack), body, secret="forged")))[0] == 401
    # The signature is over the raw bytes: the same JSON serialised differently does not match.
    signature = fake.sign(json.dumps(body).encode())
    status, _ = await fake.acall(fake.post(hook(stack), json.dumps(body, indent=1).encode(),
                                           {"Content-Type": "application/json", "X-Hub-Signature-256": signature}))
    assert status == 401
    await asyncio.sleep(0.2)
    assert stack.signals() == [] and fake.sent == []


async def test_a_report_opens_an_exception_and_the_operator_hears_back_in_spanish(fake: FakeWhatsApp, stack: Stack) -> None:
    body = fake.text_message(CARLOS, "hobber 1 parada, ruido en el husillo. wo 1042")
    for _ in range(2):  # Meta redelivers until it sees a 200
        assert (await fake.acall(fake.deliver(hook(stack), body)))[0] == 200
    assert len(stack.signals()) == 1
    [reply] = await wait_for(lambda: fake.sent_to(CARLOS))
    assert fake.text(reply).startswith("E-0001 abierto: avería en HOB-01") and reply["type"] == "text"


async def test_reply_buttons_fit_whatsapp_and_a_press_acknowledges(fake: FakeWhatsApp, stack: Stack) -> None:
    fake.open_window(ARJUN)  # he wrote to the number today
    stack.runtime.receive_chat(channel="console", address="meena", person_id="meena", event_id="m1",
                               text="line 1 stopped, conveyor motor broken")
    stack.runtime.notifications.wake()
    [alert] = await wait_for(lambda: fake.sent_to(ARJUN))
    assert fake.text(alert).startswith("E-0001") and fake.buttons(alert) == ["ack:E-0001", "propose:E-0001"]
    assert all(len(b["reply"]["title"]) <= 20 for b in alert["interactive"]["action"]["buttons"])
    press = fake.button_reply(ARJUN, "ack:E-0001", "Acknowledge", context=alert["id"])
    assert (await fake.acall(fake.deliver(hook(stack), press)))[0] == 200
    await wait_for(lambda: stack.exception().status == "acknowledged")
    assert [e.person_id for e in stack.timeline() if e.kind == "acknowledged"] == ["arjun"]


async def test_a_reply_quoting_our_message_goes_to_that_exception(fake: FakeWhatsApp, stack: Stack) -> None:
    fake.open_window(ARJUN)
    stack.runtime.receive_chat(channel="console", address="meena", person_id="meena", event_id="m1",
                               text="line 1 stopped, conveyor motor broken")
    stack.runtime.notifications.wake()
    [alert] = await wait_for(lambda: fake.sent_to(ARJUN))
    answer = fake.text_message(ARJUN, "fixed, replaced the drive belt, running again", context=alert["id"])
    assert (await fake.acall(fake.deliver(hook(stack), answer)))[0] == 200
    await wait_for(lambda: stack.exception().status == "proposed")


async def test_a_sender_known_only_by_business_scoped_user_id(fake: FakeWhatsApp, stack: Stack) -> None:
    body = fake.text_message(None, "hobber 1 band ho gaya, spindle se awaaz", user_id="US.13491208655302741918")
    assert (await fake.acall(fake.deliver(hook(stack), body)))[0] == 200
    [signal] = stack.signals()
    assert signal.person_id == "ravi"
    [reply] = await wait_for(lambda: [m for m in fake.sent if m.get("recipient") == "US.13491208655302741918"])
    assert "to" not in reply and "E-0001" in fake.text(reply)


async def test_a_stranger_gets_the_not_registered_reply_in_their_language(fake: FakeWhatsApp, stack: Stack) -> None:
    body = fake.text_message("+34611111111", "¿qué máquinas están paradas?")
    assert (await fake.acall(fake.deliver(hook(stack), body)))[0] == 200
    [reply] = await wait_for(lambda: fake.sent_to("+34611111111"))
    assert fake.text(reply).startswith("No estás registrado") and stack.signals()[0].person_id is None


async def test_a_strangers_text_decides_their_language_and_the_country_code_only_when_it_cannot(
        fake: FakeWhatsApp, stack: Stack) -> None:
    await fake.acall(fake.deliver(hook(stack), fake.text_message("+15550009999", "Hallo, welche Maschine steht gerade?")))
    [german] = await wait_for(lambda: fake.sent_to("+15550009999"))
    assert fake.text(german).startswith("Du bist in diesem Werk nicht registriert")
    await fake.acall(fake.deliver(hook(stack), fake.image_message("+34622222222", b"\xff\xd8-photo")))
    [spanish] = await wait_for(lambda: fake.sent_to("+34622222222"))
    assert fake.text(spanish).startswith("No estás registrado"), "no text: the country code decides"
    assert all(s.person_id is None for s in stack.signals())


async def test_a_photo_with_a_caption_is_stored_on_the_exception(fake: FakeWhatsApp, stack: Stack) -> None:
    await fake.acall(fake.deliver(hook(stack), fake.text_message(CARLOS, "hobber 1 parada, ruido en el husillo")))
    await wait_for(lambda: stack.exception() is not None)
    body = fake.image_message(CARLOS, b"\x89PNG\r\n\x1a\n-photo", caption="E-0001 así está el husillo", mime="image/png")
    assert (await fake.acall(fake.deliver(hook(stack), body)))[0] == 200

    def stored() -> list[Attachment]:
        with Session(stack.runtime.engine) as session:
            return list(session.exec(select(Attachment)))

    [photo] = await wait_for(stored)
    assert (photo.kind, photo.content_type, photo.exception_id) == ("photo", "image/png", stack.exception().id)
    assert Path(photo.path).read_bytes() == b"\x89PNG\r\n\x1a\n-photo" and photo.path.endswith(".png")


async def test_delivery_statuses_and_other_numbers_are_ignored(fake: FakeWhatsApp, stack: Stack) -> None:
    statuses = fake.envelope([], [])
    statuses["entry"][0]["changes"][0]["value"]["statuses"] = [{"id": "wamid.X", "status": "delivered"}]
    other = fake.text_message(CARLOS, "hobber 1 parada")
    other["entry"][0]["changes"][0]["value"]["metadata"]["phone_number_id"] = "other-number"
    for body in (statuses, other):
        assert (await fake.acall(fake.deliver(hook(stack), body)))[0] == 200
    assert stack.signals() == []


# --- the 24-hour customer-service window ------------------------------------------------------


def meena_reports(stack: Stack) -> None:
    """Meena (console) reports line 1: Arjun, who has not written to the number, is paged on WhatsApp."""
    stack.runtime.receive_chat(channel="console", address="meena", person_id="meena", event_id="m1",
                               text="line 1 stopped, conveyor motor broken")
    stack.runtime.notifications.wake()


def free_form_to(fake: FakeWhatsApp, number: str) -> list[dict[str, Any]]:
    return [r.body for r in fake.requests if r.path.endswith("/messages") and r.body.get("to") == number.lstrip("+")
            and r.body.get("type") != "template"]


async def test_outside_the_window_without_a_template_the_timeline_shows_who_was_not_reached(
        fake: FakeWhatsApp, stack: Stack) -> None:
    meena_reports(stack)
    [row] = await wait_for(lambda: [n for n in stack.notifications(address=ARJUN) if n.status == "failed"])
    assert "131047" in (row.error or "") and "MFGOS_WHATSAPP_TEMPLATE" in (row.error or "")
    [event] = [e for e in stack.timeline() if e.kind == "not_reached"]
    assert event.person_id == "arjun" and "Re-engagement message" in event.text
    assert fake.sent_to(ARJUN) == [] and len(free_form_to(fake, ARJUN)) == 1


async def test_a_131047_refusal_is_answered_with_the_template_and_the_timeline_records_it(
        fake: FakeWhatsApp, with_template: Stack) -> None:
    stack = with_template
    meena_reports(stack)
    [sent] = await wait_for(lambda: fake.sent_to(ARJUN))
    assert sent["type"] == "template"
    template = sent["template"]
    assert (template["name"], template["language"]) == ("mfgos_update", {"policy": "deterministic", "code": "hi"})
    [parameter] = template["components"][0]["parameters"]
    assert parameter["type"] == "text" and parameter["text"].startswith("E-0001") and "\n" not in parameter["text"]
    [row] = await wait_for(lambda: [n for n in stack.notifications(address=ARJUN) if n.status == "sent"])
    assert row.platform_message_id == sent["id"]
    [event] = [e for e in stack.timeline() if e.kind == "whatsapp_template"]
    assert event.person_id == "arjun" and event.data["template"] == "mfgos_update" and event.data["language"] == "hi"
    assert event.data["notification"] == row.id and event.data["parameter"] == parameter["text"]
    assert "Re-engagement message" in event.text
    # The window is known to be closed now: the next message goes straight to the template.
    channel = stack.hub.channels["whatsapp"]
    await channel.send(OutboundMessage(channel="whatsapp", address=ARJUN, text="line 1:\n  still down?", language="hi"))
    assert len(free_form_to(fake, ARJUN)) == 1, "one refused free-form attempt in all"
    assert fake.text(fake.sent_to(ARJUN)[-1]) == "line 1: still down?", "one line, as Meta requires of parameters"
    # Once Arjun writes, the window is open again and messages are free-form (with buttons).
    await fake.acall(fake.deliver(hook(stack), fake.text_message(ARJUN, "E-0001 dekh raha hoon")))
    await channel.send(OutboundMessage(channel="whatsapp", address=ARJUN, text="E-0001 ok?", buttons=("ack",),
                                       exception_code="E-0001", language="hi"))
    assert fake.sent_to(ARJUN)[-1]["type"] == "interactive"


async def test_someone_who_last_wrote_a_day_ago_gets_the_template_without_a_refused_attempt(
        fake: FakeWhatsApp, with_template: Stack) -> None:
    report = fake.text_message(CARLOS, "hobber 1 parada, ruido en el husillo")
    report["entry"][0]["changes"][0]["value"]["messages"][0]["timestamp"] = str(int(time.time()) - 25 * 3600)
    assert (await fake.acall(fake.deliver(hook(with_template), report)))[0] == 200  # a delivery retried for a day
    [sent] = await wait_for(lambda: fake.sent_to(CARLOS))
    assert sent["type"] == "template" and sent["template"]["language"]["code"] == "es_ES"
    assert fake.text(sent).startswith("E-0001 abierto: avería en HOB-01")
    assert free_form_to(fake, CARLOS) == [], "the window was known to be closed"
    # Recorded just after the send (the fake has the message a moment before the timeline has the event).
    await wait_for(lambda: [e for e in with_template.timeline() if e.kind == "whatsapp_template"])
    assert [e.kind for e in with_template.timeline()].count("whatsapp_template") == 1


@pytest.mark.parametrize("template", [True, False])
async def test_a_131047_reported_later_by_status_webhook_sends_the_template_or_records_not_reached(
        fake: FakeWhatsApp, tmp_path: Path, template: bool) -> None:
    fake.templates["mfgos_update"] = {"hi": 1}
    stack = await _stack(fake, tmp_path, **({"whatsapp_template": "mfgos_update"} if template else {}))
    try:
        fake.status_webhook = hook(stack)  # the API accepts, then reports the failure on the webhook
        meena_reports(stack)
        [failed] = await wait_for(lambda: [n for n in stack.notifications(address=ARJUN, kind="alert")
                                           if n.status == "failed"])
        assert "131047" in (failed.error or "") and len(fake.failed) == 1
        if template:
            [sent] = await wait_for(lambda: fake.sent_to(ARJUN))
            assert sent["type"] == "template" and fake.text(sent).startswith("E-0001")
            [event] = await wait_for(lambda: [e for e in stack.timeline() if e.kind == "whatsapp_template"])
            assert event.person_id == "arjun" and "131047" in event.text
            assert not [e for e in stack.timeline() if e.kind == "not_reached"]
        else:
            [event] = await wait_for(lambda: [e for e in stack.timeline() if e.kind == "not_reached"])
            assert event.person_id == "arjun" and "MFGOS_WHATSAPP_TEMPLATE" in event.text
            await asyncio.sleep(0.3)
            assert fake.sent_to(ARJUN) == []
    finally:
        await stack.stop()


async def test_a_template_meta_has_not_approved_in_that_language_is_recorded_as_not_reached(
        fake: FakeWhatsApp, tmp_path: Path) -> None:
    fake.templates["mfgos_update"] = {"es": 1}  # not approved in Hindi
    stack = await _stack(fake, tmp_path, whatsapp_template="mfgos_update")
    try:
        meena_reports(stack)
        [row] = await wait_for(lambda: [n for n in stack.notifications(address=ARJUN) if n.status == "failed"])
        assert "132001" in (row.error or "")
        [event] = await wait_for(lambda: [e for e in stack.timeline() if e.kind == "not_reached"])
        assert event.person_id == "arjun" and "does not exist in the translation" in event.text
        assert fake.sent_to(ARJUN) == []
    finally:
        await stack.stop()

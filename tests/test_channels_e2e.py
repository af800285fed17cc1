"""The foundation's breakdown scenario over the real channels, each against its fake platform.

Carlos reports on WhatsApp (Spanish) -> Tom gets a Slack DM with buttons and #gears the exception's thread ->
Tom acknowledges with the button and proposes the fix in the thread -> Sara approves on
Telegram with the inline button -> the ledger ERP posts -> Carlos hears every step on
WhatsApp in Spanish. Once with the Events API over HTTP and Telegram long polling, once
with Socket Mode and the Telegram webhook.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from mfgos.server import run_worker
from tests.fakes.server import wait_for
from tests.fakes.stack import Fakes, Stack, settings_for, start_stack

pytestmark = [pytest.mark.anyio, pytest.mark.timeout(120),
              pytest.mark.filterwarnings("ignore::telegram.warnings.PTBDeprecationWarning")]

CARLOS, TOM, SARA = "+34600000001", "U01TOM", 5001
TG_SECRET = "tg-secret"



@pytest.fixture(params=["events-api+polling", "socket-mode+webhook"])
async def plant(request: pytest.FixtureRequest, fakes: Fakes, tmp_path: Path) -> AsyncIterator[tuple[Stack, str]]:
    mode = request.param
    slack = {"slack_signing_secret": "slack-secret"} if mode.startswith("events") else {"slack_app_token": "xapp-fake"}
    telegram = {} if mode.endswith("polling") else {"telegram_webhook_secret": TG_SECRET}
    settings = settings_for(
        f"sqlite:///{tmp_path / 'e2e.db'}", tmp_path, slack_bot_token="xoxb-fake", slack_api_url=fakes.slack.api_url,
        slack_channels={"gears": "C0GEARS"}, telegram_bot_token="123:FAKE", telegram_api_url=fakes.telegram.api_url,
        whatsapp_token="wa-token", whatsapp_phone_number_id="1055", whatsapp_api_url=fakes.whatsapp.api_url,
        whatsapp_app_secret="wa-secret", whatsapp_verify_token="verify", **slack, **telegram)
    stack = await start_stack(settings)
    stop = asyncio.Event()
    worker = asyncio.create_task(run_worker(stack.runtime, stop, interval=0.1))  # timers and the ERP outbox, as serve
    yield stack, mode
    stop.set()
    await worker
    await stack.stop()


def spanish(fakes: Fakes) -> list[str]:
    return [fakes.whatsapp.text(m) for m in fakes.whatsapp.sent_to(CARLOS)]


async def test_whatsapp_report_slack_thread_telegram_approval_and_spanish_confirmations(
        fakes: Fakes, plant: tuple[Stack, str]) -> None:
    stack, mode = plant
    socket_mode = mode.startswith("socket")
    if socket_mode:
        await wait_for(lambda: fakes.slack.connected)

    # 1. Carlos reports on WhatsApp.
    report = fakes.whatsapp.text_message(CARLOS, "hobber 1 parada, ruido fuerte en el husillo. wo 1042")
    assert (await fakes.whatsapp.acall(fakes.whatsapp.deliver(stack.url + "/whatsapp/webhook", report)))[0] == 200
    await wait_for(lambda: any(t.startswith("E-0001 abierto: avería en HOB-01") for t in spanish(fakes)))

    # 2. Tom gets his DM with buttons and the context block; #gears gets the exception's thread.
    [alert] = await wait_for(lambda: fakes.slack.posted(to=TOM))
    assert fakes.slack.buttons(alert) == ["ack:E-0001", "propose:E-0001"]
    assert "Aufträge: WO-1042" in fakes.slack.context(alert)
    [root, *_] = await wait_for(lambda: fakes.slack.posted(channel="C0GEARS"))
    assert root["thread_ts"] is None and fakes.slack.buttons(root) == ["ack:E-0001", "propose:E-0001"]
    await wait_for(lambda: "E-0001: Tom Fischer notified (maintenance)." in
                   [m["text"] for m in fakes.slack.posted(channel="C0GEARS") if m["thread_ts"] == root["ts"]])

    # 3. Tom acknowledges with the button; Carlos hears it in Spanish; the thread root shows it.
    press = fakes.slack.button_payload(TOM, "ack:E-0001", alert)
    if socket_mode:
        await fakes.slack.acall(fakes.slack.push("interactive", press))
    else:
        assert (await fakes.slack.acall(fakes.slack.deliver_action(stack.url + "/slack/events", press)))[0] == 200
    await wait_for(lambda: "E-0001: Tom Fischer confirmó." in spanish(fakes))
    await wait_for(lambda: "Status: acknowledged" in fakes.slack.context(fakes.slack.posted(channel="C0GEARS")[0]))

    # 4. Tom proposes the fix by replying in the thread.
    fix = fakes.slack.message_event(TOM, "fixed, replaced the spindle bearing, running again", "C0GEARS",
                                    "1800000100.000100", thread_ts=root["ts"])
    if socket_mode:
        await fakes.slack.acall(fakes.slack.push("events_api", fix))
    else:
        assert (await fakes.slack.acall(fakes.slack.deliver_event(stack.url + "/slack/events", fix)))[0] == 200

    # 5. Sara approves on Telegram with the inline button.
    [card] = await wait_for(lambda: fakes.telegram.sent_to(str(SARA)))
    assert fakes.telegram.buttons(card) == ["approve:E-0001", "reject:E-0001"]
    update = fakes.telegram.callback(SARA, "approve:E-0001", card)
    if socket_mode:
        status, _ = await fakes.telegram.acall(fakes.telegram.deliver(stack.url + "/telegram/webhook", update, TG_SECRET))
        assert status == 200
    else:
        fakes.telegram.queue(update)

    # 6. The ledger posts; Carlos hears approval and the ERP reference in Spanish; the card is edited.
    await wait_for(lambda: any(t.startswith("E-0001: registrado en el ERP (solicitud de mantenimiento) con la referencia MR-") for t in spanish(fakes)))
    assert "E-0001 aprobado por Sara Khan." in spanish(fakes)
    assert stack.exception().status == "closed", "the fix said the machine runs again"
    await wait_for(lambda: "E-0001 cerrado." in spanish(fakes))
    await wait_for(lambda: [e for e in fakes.telegram.edits if e["message_id"] == card["message_id"]])
    await wait_for(lambda: "E-0001 closed." in [m["text"] for m in fakes.slack.posted(channel="C0GEARS")], timeout=20)
    kinds = [e.kind for e in stack.timeline()]
    assert kinds.index("acknowledged") < kinds.index("proposed") < kinds.index("approved") < kinds.index("erp_posted")
    # The thread in #gears takes about one message a second (Slack's limit): wait for the last ones.
    await wait_for(lambda: all(n.status == "sent" for n in stack.notifications()), timeout=20)

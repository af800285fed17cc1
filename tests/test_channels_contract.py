"""One behaviour suite for the Channel protocol, run against every registered channel and the console.

Each platform channel is the real module driving the real client library (slack-sdk,
python-telegram-bot, httpx) against its local fake server; the console is the capture
channel the console and replay read. A meta-test fails when a channel is registered
without joining this suite.
"""

from __future__ import annotations

import socket
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from typing import Any

import pytest

from bot.channels.base import (
    CaptureChannel,
    Channel,
    OutboundMessage,
    PermanentFailure,
    RateLimited,
    TemporaryFailure,
)
from bot.channels.bridge import BridgeChannel
from bot.channels.cards import button_value
from bot.channels.registry import CHANNELS
from bot.channels.slack import SlackChannel
from bot.channels.telegram import TelegramChannel
from bot.channels.whatsapp import WhatsAppChannel
from bot.outbox import RateLimitedChannel
from tests.fakes.bridge import FakeBridge
from tests.fakes.server import FakeServer
from tests.fakes.slack import FakeSlack
from tests.fakes.telegram import FakeTelegram
from tests.fakes.whatsapp import FakeWhatsApp

pytestmark = [pytest.mark.anyio, pytest.mark.filterwarnings("ignore::telegram.warnings.PTBDeprecationWarning")]



@dataclass
class Subject:
    """A channel under test, the addresses it knows, and what its recipients saw."""

    channel: Channel
    fake: FakeServer | None
    address: str
    gone: str | None  # an address the platform refuses for good
    received: Callable[[str], list[tuple[str, list[str]]]]


def _closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def slack(fake: FakeSlack | None) -> tuple[SlackChannel, str, str]:
    api = fake.api_url if fake else f"http://127.0.0.1:{_closed_port()}/api/"
    return SlackChannel(token="xoxb-fake", signing_secret="slack-secret", api_url=api), "U01TOM", "UGONE1"


def telegram(fake: FakeTelegram | None) -> tuple[TelegramChannel, str, str]:
    api = fake.api_url if fake else f"http://127.0.0.1:{_closed_port()}/bot"
    return TelegramChannel(token="123:FAKE", api_url=api, webhook_secret="tg-secret"), "5001", "403001"


def whatsapp(fake: FakeWhatsApp | None) -> tuple[WhatsAppChannel, str, str]:
    api = fake.api_url if fake else f"http://127.0.0.1:{_closed_port()}"
    if fake:
        fake.open_window("+34600000001")  # inside the 24-hour window (tests/test_channel_whatsapp.py has outside)
    return WhatsAppChannel(token="wa-token", phone_number_id="1055", api_url=api, app_secret="wa-secret"), \
        "+34600000001", "+999000"


def bridge(fake: FakeBridge | None) -> tuple[BridgeChannel, str, str]:
    url = fake.callback_url if fake else f"http://127.0.0.1:{_closed_port()}/callback"
    return BridgeChannel(secret="bridge-secret", callback_url=url), "+4915100000009", "+0001"


def _slack_seen(fake: FakeSlack) -> Callable[[str], list[tuple[str, list[str]]]]:
    return lambda address: [(m["text"], fake.buttons(m)) for m in fake.posted(to=address)]


def _telegram_seen(fake: FakeTelegram) -> Callable[[str], list[tuple[str, list[str]]]]:
    return lambda address: [(m["text"], fake.buttons(m)) for m in fake.sent_to(address)]


def _whatsapp_seen(fake: FakeWhatsApp) -> Callable[[str], list[tuple[str, list[str]]]]:
    return lambda address: [(fake.text(m), fake.buttons(m)) for m in fake.sent_to(address)]


def _bridge_seen(fake: FakeBridge) -> Callable[[str], list[tuple[str, list[str]]]]:
    return lambda address: [(m["text"], fake.buttons(m)) for m in fake.sent_to(address)]


PLATFORMS: dict[str, tuple[type[FakeServer], Callable[[Any], tuple[Any, str, str]], Callable[[Any], Any]]] = {
    "slack": (FakeSlack, slack, _slack_seen),
    "telegram": (FakeTelegram, telegram, _telegram_seen),
    "whatsapp": (FakeWhatsApp, whatsapp, _whatsapp_seen),
    "bridge": (FakeBridge, bridge, _bridge_seen),
}
ALL = [*PLATFORMS, "console"]


def test_every_registered_channel_joins_the_contract_suite() -> None:
    assert set(CHANNELS) <= set(PLATFORMS), f"add {set(CHANNELS) - set(PLATFORMS)} to PLATFORMS"


@pytest.fixture(params=ALL)
async def subject(request: pytest.FixtureRequest) -> AsyncIterator[Subject]:
    if request.param == "console":
        capture = CaptureChannel("console")
        # The console shows the neutral message: its buttons act on the message's exception.
        yield Subject(capture, None, "sara", None,
                      lambda a: [(c.message.text, [button_value(b, c.message.exception_code) for b in c.message.buttons])
                                 for c in capture.sent if c.message.address == a])
        return
    fake_class, build, seen = PLATFORMS[request.param]
    fake = fake_class().start()
    channel, address, gone = build(fake)
    await channel.start()
    try:
        yield Subject(channel, fake, address, gone, seen(fake))
    finally:
        await channel.stop()
        fake.stop()


def message(subject: Subject, text: str = "E-0042 breakdown on HOB-01", **kw: Any) -> OutboundMessage:
    return OutboundMessage(channel=subject.channel.name, address=subject.address, text=text, notification_id=7,
                           exception_code="E-0042", **kw)


async def test_send_delivers_once_and_returns_the_platform_message_id(subject: Subject) -> None:
    first = await subject.channel.send(message(subject))
    second = await subject.channel.send(message(subject, "E-0042: Tom acknowledged."))
    assert first and second and first != second
    seen = subject.received(subject.address)
    assert [text for text, _ in seen] == ["E-0042 breakdown on HOB-01", "E-0042: Tom acknowledged."] or \
        [text.split("> ", 1)[-1] for text, _ in seen] == ["E-0042 breakdown on HOB-01", "E-0042: Tom acknowledged."]


async def test_buttons_name_their_action_and_the_exception(subject: Subject) -> None:
    await subject.channel.send(message(subject, buttons=("ack", "propose"), language="de"))
    [(_, buttons)] = subject.received(subject.address)
    assert buttons == ["ack:E-0042", "propose:E-0042"]


async def test_a_message_about_an_exception_names_its_code(subject: Subject) -> None:
    await subject.channel.send(message(subject, "Tom acknowledged."))
    [(text, _)] = subject.received(subject.address)
    assert "E-0042" in text or subject.channel.name in ("slack", "console"), "threadless channels carry the code"


@pytest.fixture(params=list(PLATFORMS))
async def platform(request: pytest.FixtureRequest) -> AsyncIterator[Subject]:
    fake_class, build, seen = PLATFORMS[request.param]
    fake = fake_class().start()
    channel, address, gone = build(fake)
    await channel.start()
    try:
        yield Subject(channel, fake, address, gone, seen(fake))
    finally:
        await channel.stop()
        fake.stop()


async def test_a_429_is_rate_limited_with_the_platforms_retry_after(platform: Subject) -> None:
    assert platform.fake is not None
    platform.fake.faults.rate_429, platform.fake.faults.retry_after = 1.0, 3
    with pytest.raises(RateLimited) as raised:
        await platform.channel.send(message(platform))
    assert raised.value.retry_after == 3
    assert platform.received(platform.address) == []


async def test_a_5xx_is_a_temporary_failure(platform: Subject) -> None:
    assert platform.fake is not None
    platform.fake.faults.rate_5xx = 1.0
    with pytest.raises(TemporaryFailure):
        await platform.channel.send(message(platform))


async def test_a_refused_recipient_is_a_permanent_failure(platform: Subject) -> None:
    assert platform.gone is not None
    with pytest.raises(PermanentFailure):
        await platform.channel.send(OutboundMessage(channel=platform.channel.name, address=platform.gone, text="hello"))


@pytest.mark.parametrize("name", list(PLATFORMS))
async def test_an_unreachable_platform_is_a_temporary_failure(name: str) -> None:
    _, build, _ = PLATFORMS[name]
    channel, address, _ = build(None)
    try:
        if name == "telegram":
            with pytest.raises(Exception) as raised:  # PTB's start calls getMe first
                await channel.start()
            assert "connect" in str(raised.value).lower() or "network" in type(raised.value).__name__.lower()
            return
        await channel.start()
        with pytest.raises(TemporaryFailure):
            await channel.send(OutboundMessage(channel=name, address=address, text="hello"))
    finally:
        await channel.stop()


async def test_platform_channels_name_their_rate_buckets(platform: Subject) -> None:
    assert isinstance(platform.channel, RateLimitedChannel)
    buckets = platform.channel.rate_buckets(message(platform))
    assert buckets and all(rate.count >= 1 and rate.per > 0 for _, rate in buckets)
    assert buckets[0][0] != buckets[-1][0] or len(buckets) == 1, "narrowest first, platform-wide last"

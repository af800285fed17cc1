"""Text people wrote leaves through every channel so that the platform shows it as written: no
mention, no link, no formatting (the real clients against the fakes, and a property per platform)."""

from __future__ import annotations

import re
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from bot.channels.cards import ZWSP
from bot.channels.slack import mrkdwn
from bot.channels.telegram import plain as telegram_plain
from bot.channels.whatsapp import plain as whatsapp_plain
from mfgos.auth import link_token
from tests.fakes.server import wait_for
from tests.fakes.slack import FakeSlack
from tests.fakes.stack import Stack, settings_for, start_stack
from tests.fakes.telegram import FakeTelegram
from tests.fakes.whatsapp import FakeWhatsApp

HOSTILE = "<!channel> <@U123> <https://evil|click> *bold* _it_ ~s~ `code` [x](http://e) <b>x</b> &amp;"
ARJUN = "+919800000002"


def visible(text: str) -> str:
    """What a person reads: the invisible U+200B is not there for them."""
    return text.replace(ZWSP, "")


# --- Slack ---------------------------------------------------------------------------------


@pytest.fixture
def slack() -> Iterator[FakeSlack]:
    server = FakeSlack().start()
    yield server
    server.stop()


@pytest.fixture
async def slack_stack(slack: FakeSlack, tmp_path: Path) -> AsyncIterator[Stack]:
    settings = settings_for(f"sqlite:///{tmp_path / 'slack.db'}", tmp_path, slack_bot_token="xoxb-fake",
                            slack_signing_secret="slack-secret", slack_api_url=slack.api_url,
                            slack_channels={"*": "C0FLOOR"})
    stack = await start_stack(settings)
    yield stack
    await stack.stop()


def assert_slack_literal(shown: str) -> None:
    assert "<" not in shown and ">" not in shown, "no <!channel>, <@U...> or <url|label> reaches Slack"
    assert "&lt;!channel&gt;" in shown and "&lt;@U123&gt;" in shown and "&lt;https://evil|click&gt;" in shown
    assert "&lt;b&gt;x&lt;/b&gt;" in shown and "&amp;amp;" in shown, "& is escaped once, as Slack asks"
    for word in ("*bold*", "_it_", "~s~", "`code`"):
        assert word not in shown and word in visible(shown), f"{word} is shown as written, not formatted"


@pytest.mark.anyio
async def test_slack_shows_a_report_literally_in_a_message_and_its_blocks(slack: FakeSlack, slack_stack: Stack) -> None:
    slack_stack.queue("slack", "U01TOM", f"E-0001 reported by Ravi: {HOSTILE}", buttons=())
    [message] = await wait_for(lambda: slack.posted(to="U01TOM"))
    assert_slack_literal(message["text"])
    [section] = [b for b in message["blocks"] if b["type"] == "section"]
    assert section["text"]["type"] == "mrkdwn"
    assert_slack_literal(section["text"]["text"])


@pytest.mark.anyio
async def test_slack_shows_the_summary_literally_in_an_area_thread_root(slack: FakeSlack, slack_stack: Stack) -> None:
    """The thread root is our template around the operator's summary and the plant's machine name."""
    exception_id = slack_stack.open_exception(summary=HOSTILE, machine_id="<!here>*HOB*")
    slack_stack.queue("slack", "C0FLOOR", "E-0001", kind="thread_root", exception_id=exception_id)
    [root] = await wait_for(lambda: slack.posted(channel="C0FLOOR"))
    assert_slack_literal(root["text"])
    context = " ".join(slack.context(root))
    assert "&lt;!here&gt;" in context and "*HOB*" not in context and "<" not in context


# --- Telegram ------------------------------------------------------------------------------


@pytest.fixture
def telegram() -> Iterator[FakeTelegram]:
    server = FakeTelegram().start()
    yield server
    server.stop()


@pytest.mark.anyio
async def test_telegram_sends_a_report_as_plain_text_without_mentions(telegram: FakeTelegram, tmp_path: Path) -> None:
    settings = settings_for(f"sqlite:///{tmp_path / 'tg.db'}", tmp_path, telegram_bot_token="123:FAKE",
                            telegram_api_url=telegram.api_url)
    stack = await start_stack(settings)
    try:
        stack.queue("telegram", "-1005001", f"{HOSTILE} @all @tom_fischer mail tom@plant.example")
        [sent] = await wait_for(lambda: telegram.in_chat("-1005001"))
        [request] = [r.body for r in telegram.requests if r.body.get("method") == "sendMessage"]
        assert not request.get("parse_mode") and not request.get("entities"), "no parse mode: tags and Markdown stay text"
        assert visible(sent["text"]).startswith(HOSTILE), "shown exactly as written"
        assert "@all" not in sent["text"] and "@tom_fischer" not in sent["text"], "Telegram sees no @mention"
        assert visible(sent["text"]).endswith("@all @tom_fischer mail tom@plant.example")
    finally:
        await stack.stop()


# --- WhatsApp ------------------------------------------------------------------------------


@pytest.fixture
def whatsapp() -> Iterator[FakeWhatsApp]:
    server = FakeWhatsApp().start()
    yield server
    server.stop()


@pytest.mark.anyio
async def test_whatsapp_shows_a_report_without_formatting(whatsapp: FakeWhatsApp, tmp_path: Path) -> None:
    settings = settings_for(f"sqlite:///{tmp_path / 'wa.db'}", tmp_path, whatsapp_token="wa-token",
                            whatsapp_phone_number_id="1055", whatsapp_api_url=whatsapp.api_url,
                            whatsapp_app_secret="wa-secret")
    whatsapp.open_window(ARJUN.lstrip("+"))
    stack = await start_stack(settings)
    try:
        stack.queue("whatsapp", ARJUN, f"{HOSTILE}\n> quoted\n- listed\n```mono```", buttons=("ack",))
        [message] = await wait_for(lambda: whatsapp.sent_to(ARJUN.lstrip("+")))
        body = FakeWhatsApp.text(message)
        for word in ("*bold*", "_it_", "~s~", "`code`", "```mono```", "\n>", "\n-"):
            assert word not in body and word in visible(body), f"{word!r} is shown as written, not formatted"
        assert visible(body).startswith(HOSTILE)
    finally:
        await stack.stop()


# --- properties: whatever the text, no control sequence survives ----------------------------

SPICY = st.sampled_from([*"<>&!@#|*_~`[]()-.:;/\\ \n\t\u200baAuU1", "channel", "here", "everyone", "&amp;", "&lt;"])


# A marker not preceded by U+200B, unless it stands between two letters or digits (where it formats nothing).
UNBROKEN = re.compile(r"(?:^|(?<=[^\u200b]))(?:(?<![^\W_])[*_~`]|[*_~`](?![^\W_]))")


def _texts() -> st.SearchStrategy[str]:
    return st.one_of(st.text(max_size=200), st.lists(SPICY, max_size=60).map("".join))


@given(_texts())
def test_slack_mrkdwn_leaves_no_control_sequence(text: str) -> None:
    shown = mrkdwn(text)
    assert "<" not in shown and ">" not in shown
    assert re.fullmatch(r"(?:[^&]|&(?:amp|lt|gt);)*", shown, re.DOTALL), "every & starts one of Slack's entities"
    assert not UNBROKEN.search(shown), "every formatting marker that could open or close is broken"
    assert not re.search(r"(?im)^&gt;", shown), "no quote"
    assert not re.search(r"(?i)@(?:channel|here|everyone)\b", shown), "no broadcast word"
    unescaped = visible(shown).replace("&lt;", "<").replace("&gt;", ">").replace("&amp;", "&")
    assert unescaped == text.replace(ZWSP, ""), "escaped once: people read exactly what was written"


@given(_texts())
def test_telegram_plain_leaves_no_mention(text: str) -> None:
    shown = telegram_plain(text)
    assert not re.search(r"(?<!\w)@\w", shown), "no @name Telegram would detect"
    assert visible(shown) == text.replace(ZWSP, "")


@given(_texts())
def test_whatsapp_plain_leaves_no_formatting(text: str) -> None:
    shown = whatsapp_plain(text)
    assert not UNBROKEN.search(shown), "every formatting marker that could open or close is broken"
    assert not re.search(r"(?m)^[ \t]*[>-]", shown), "no quote or list at the start of a line"
    assert visible(shown) == text.replace(ZWSP, "")


@pytest.mark.parametrize("escape", [mrkdwn, telegram_plain, whatsapp_plain])
def test_a_sign_in_link_passes_every_channels_escaping_intact(escape: object) -> None:
    """A link token next to `_` or `-` once got an invisible U+200B from the Slack escaping,
    which cut the link (410 on a fresh link): the tokens are letters and digits now."""
    for _ in range(300):
        url = f"https://mfgos.example/auth/magic/{link_token()}"
        assert url in escape(f"Anmeldung: {url} (10 Minuten)")  # type: ignore[operator]

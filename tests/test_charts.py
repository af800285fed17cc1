"""Charts where they say it better (docs/questions.md): a trend or ranking question gets its answer's
text and a PNG chart, on Slack (files_upload_v2 into the DM), Telegram (sendPhoto) and WhatsApp
(media upload, then an image message), each through the real client against its wire fake, and
the same PNG on the console. The figures behind the charts are checked against a replayed week,
in four languages; a retry after a failure posts the chart once; no label text breaks a drawing."""

from __future__ import annotations

import asyncio
import io
import re
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from PIL import Image

from bot import charts
from mfgos.replay import replay
from models import Notification, PlantException, session_scope
from tests.fakes.server import Faults, wait_for
from tests.fakes.stack import Fakes, Stack, settings_for, start_stack

SCENARIO = Path(__file__).parent / "scenarios" / "charts_week.yaml"
CARLOS, TOM, SARA = "+34600000001", "U01TOM", 5001
PNG = b"\x89PNG\r\n\x1a\n"


def png_size(data: bytes) -> tuple[int, int]:
    assert data.startswith(PNG), "not a PNG"
    image = Image.open(io.BytesIO(data))
    image.load()  # decodes every pixel: a truncated file fails here
    return image.size


# --- the figures behind the charts: a replayed week, four languages ------------------------------


@pytest.fixture
def week(database_url: str) -> dict[str, Any]:
    return replay(SCENARIO, database_url=database_url)


def reply_to(week: dict[str, Any], person: str, nth: int = 0) -> dict[str, Any]:
    """The `nth` answer `person` got on Thursday 09:00, when the questions were asked."""
    return [n for n in week["notifications"]
            if n["to"] == person and n["kind"] == "reply" and n["elapsed_s"] == 72 * 3600][nth]


def test_trend_and_pareto_questions_get_charts_with_the_weeks_figures(week: dict[str, Any]) -> None:
    opened = [(e["code"], e["type"], e["opened_at"][:10]) for e in week["exceptions"]]
    assert opened == [("E-0001", "breakdown", "2026-11-23"), ("E-0002", "quality", "2026-11-23"),
                      ("E-0003", "material", "2026-11-24"), ("E-0004", "breakdown", "2026-11-25"),
                      ("E-0005", "breakdown", "2026-11-25")]

    # English: breakdowns per day over 30 days; the chart has every day, the text the days that had any.
    trend = reply_to(week, "neha", 0)
    assert trend["text"] == ("Breakdown opened per day, the last 30 days (Tue 2026-10-27 – Thu 2026-11-26): total 3.\n"
                             "- Mon 11-23: 1\n- Wed 11-25: 2")
    chart = trend["chart"]
    assert chart["kind"] == "trend" and len(chart["labels"]) == len(chart["values"]) == 31
    assert chart["labels"][0] == "Tue 10-27" and chart["labels"][-1] == "Thu 11-26"
    assert dict(zip(chart["labels"], chart["values"], strict=True))["Mon 11-23"] == 1
    assert dict(zip(chart["labels"], chart["values"], strict=True))["Wed 11-25"] == 2
    assert sum(chart["values"]) == 3

    # MTTR per day: HOB-01 ran again 40 minutes after it stopped (Tom's fix); the others are not repaired.
    mttr = reply_to(week, "neha", 1)
    assert mttr["text"].startswith("MTTR (min) per day, this month (Sun 2026-11-01 – Thu 2026-11-26): MTTR 40 min.")
    assert mttr["chart"]["unit"] == "min" and len(mttr["chart"]["values"]) == 26
    assert [v for v in mttr["chart"]["values"] if v] == [40.0] and mttr["chart"]["values"][22] == 40.0  # Mon 11-23

    # A ranking by downtime: only breakdowns stop machines, so it has one bar.
    downtime = reply_to(week, "neha", 2)
    assert downtime["text"].startswith("Top exception types by downtime, this week (Mon 2026-11-23 – Thu 2026-11-26):\n"
                                       "1. breakdown: 3, ")
    assert downtime["chart"]["kind"] == "pareto" and downtime["chart"]["labels"] == ["breakdown"]
    assert downtime["chart"]["unit"] == "min" and downtime["chart"]["values"][0] > 0

    # Spanish Pareto, German trend, Hindi "top problems": the same week in each language.
    pareto = reply_to(week, "ana")
    assert pareto["text"].startswith("Tipos más frecuentes, esta semana (lun 2026-11-23 – jue 2026-11-26):\n1. avería: 3")
    assert pareto["chart"] == {"kind": "pareto", "title": "Tipos más frecuentes, esta semana (lun 2026-11-23 – "
                               "jue 2026-11-26)", "labels": ["avería", "material", "calidad"],
                               "values": [3.0, 1.0, 1.0], "unit": ""}
    german = reply_to(week, "tom")
    assert german["text"] == ("Eröffnete Störungen pro Tag, diese Woche (Mo 2026-11-23 – Do 2026-11-26): gesamt 5.\n"
                              "- Mo 11-23: 2\n- Di 11-24: 1\n- Mi 11-25: 2")
    assert german["chart"]["labels"] == ["Mo 11-23", "Di 11-24", "Mi 11-25", "Do 11-26"]
    assert german["chart"]["values"] == [2.0, 1.0, 2.0, 0.0]
    hindi = reply_to(week, "ravi")
    assert hindi["text"].startswith("Sabse zyada exception types, is hafte (Som 2026-11-23 – Guru 2026-11-26):")
    assert hindi["chart"]["values"] == [3.0, 1.0, 1.0]

    hindi_trend = reply_to(week, "ravi", 1)
    assert hindi_trend["text"] == ("Khule exceptions har din, is hafte (Som 2026-11-23 – Guru 2026-11-26): kul 5.\n"
                                   "- Som 11-23: 2\n- Mangal 11-24: 1\n- Budh 11-25: 2")
    assert hindi_trend["chart"]["values"] == [2.0, 1.0, 2.0, 0.0]
    # Downtime per day, by hand: HOB-01 ran again after 40 min (Mon); TST-01 (Wed 09:00) and CNC-11
    # (Wed 11:00) are still down at Thursday 09:00, 24 h and 22 h: 2760 min on Wednesday.
    downtime_trend = reply_to(week, "sara")
    assert downtime_trend["text"] == ("Downtime (min) per day, this week (Mon 2026-11-23 – Thu 2026-11-26): "
                                      "total 2800 min.\n- Mon 11-23: 40 min\n- Wed 11-25: 2760 min")
    assert downtime_trend["chart"]["values"] == [40.0, 0.0, 2760.0, 0.0]
    assert downtime["chart"]["values"] == [2800.0]

    # What the bot cannot chart is answered with text alone.
    joke, down = reply_to(week, "neha", 3), reply_to(week, "neha", 4)
    assert joke["text"].startswith("I can answer:") and "chart" not in joke
    assert down["text"].startswith("Down now: CNC-11") and "chart" not in down
    # Nothing was opened by a question.
    assert len(week["exceptions"]) == 5

    # Each chart draws as an 800 x 450 PNG.
    for answer in (trend, mttr, downtime, pareto, german, hindi, hindi_trend, downtime_trend):
        assert png_size(charts.render(answer["chart"])) == charts.SIZE


# --- drawing ------------------------------------------------------------------------------------


def test_a_drawing_is_the_same_bytes_every_time_and_carries_no_metadata() -> None:
    chart = {"kind": "pareto", "title": "Top $x$ types ~ 100%", "labels": ["a_b", "$\\frac{1}{2}$", "x" * 80],
             "values": [3, 2, 1], "unit": ""}
    first = charts.render(chart)
    charts._cache.clear()  # drawn again, not taken from the cache
    assert charts.render(chart) == first
    assert png_size(first) == charts.SIZE
    assert b"tEXt" not in first and b"tIME" not in first and b"matplotlib" not in first.lower()
    assert charts.digest(chart) == charts.digest(dict(chart))


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(title=st.text(max_size=300), labels=st.lists(st.text(max_size=200), max_size=30),
       values=st.lists(st.one_of(st.floats(allow_nan=True, allow_infinity=True), st.integers(-10**12, 10**12),
                                 st.none(), st.text(max_size=5)), max_size=30),
       kind=st.sampled_from(["trend", "pareto", "pie", None]), unit=st.one_of(st.none(), st.text(max_size=20)))
def test_no_label_text_or_figure_breaks_a_drawing(title: str, labels: list[str], values: list[Any], kind: Any,
                                                   unit: Any) -> None:
    data = charts.render({"kind": kind, "title": title, "labels": labels, "values": values, "unit": unit})
    assert png_size(data) == charts.SIZE


# --- end to end: a question in, a chart out, on each platform -----------------------------------


@pytest.fixture
async def stack(fakes: Fakes, tmp_path: Path) -> AsyncIterator[Stack]:
    settings = settings_for(
        f"sqlite:///{tmp_path / 'charts.db'}", tmp_path, slack_bot_token="xoxb-fake", slack_api_url=fakes.slack.api_url,
        slack_signing_secret="slack-secret", telegram_bot_token="123:FAKE", telegram_api_url=fakes.telegram.api_url,
        whatsapp_token="wa-token", whatsapp_phone_number_id="1055", whatsapp_api_url=fakes.whatsapp.api_url,
        whatsapp_app_secret="wa-secret", whatsapp_verify_token="verify")
    started = await start_stack(settings, backoff_base=0.05)
    # Six exceptions opened a minute ago: three breakdowns, two quality problems, a material shortage.
    now = datetime.now(UTC)
    with session_scope(started.runtime.engine) as session:
        for n, kind in enumerate(["breakdown", "quality", "breakdown", "material", "quality", "breakdown"], start=1):
            session.add(PlantException(plant_id=started.runtime.plant_id, code=f"E-{n:04d}", type=kind,
                                       summary=f"{kind} {n}", opened_at=now - timedelta(minutes=1)))
    yield started
    await started.stop()


def chart_rows(stack: Stack) -> list[Notification]:
    return [n for n in stack.notifications(kind="reply") if n.chart]


async def ask_slack(fakes: Fakes, stack: Stack, text: str, ts: str) -> None:
    event = fakes.slack.message_event(TOM, text, "D01TOM", ts)
    assert (await fakes.slack.acall(fakes.slack.deliver_event(stack.url + "/slack/events", event)))[0] == 200


async def ask_whatsapp(fakes: Fakes, stack: Stack, text: str) -> None:
    body = fakes.whatsapp.text_message(CARLOS, text)
    assert (await fakes.whatsapp.acall(fakes.whatsapp.deliver(stack.url + "/whatsapp/webhook", body)))[0] == 200


@pytest.mark.anyio
@pytest.mark.timeout(120)
@pytest.mark.filterwarnings("ignore::telegram.warnings.PTBDeprecationWarning")
async def test_a_chart_question_gets_a_png_with_its_caption_on_each_platform(fakes: Fakes, stack: Stack) -> None:
    # Slack, German: the chart is uploaded (files_upload_v2) and shared into Tom's DM with the answer.
    await ask_slack(fakes, stack, "Trend der Störungen letzten 7 Tage", "1800000001.000100")
    [shared] = await wait_for(lambda: fakes.slack.shared)
    assert shared["channel"] == "D01TOM" and shared["thread_ts"] is None
    assert shared["initial_comment"].startswith("Eröffnete Störungen pro Tag, die letzten 7 Tage (")
    assert "gesamt 6" in shared["initial_comment"]
    assert png_size(shared["data"]) == charts.SIZE
    assert [r.path for r in fakes.slack.requests if "files." in r.path or "conversations." in r.path] == [
        "/api/conversations.open", "/api/files.getUploadURLExternal", "/api/files.completeUploadExternal"]
    assert not fakes.slack.posted(to=TOM), "the answer is the file's comment, not a second message"

    # Telegram, English: one sendPhoto with the ranking as its caption.
    fakes.telegram.queue(fakes.telegram.message(SARA, "top exception types last 7 days"))
    [photo] = await wait_for(lambda: fakes.telegram.photos)
    assert photo["chat_id"] == str(SARA) and photo["filename"] == "chart.png"
    assert photo["caption"].startswith("Top exception types by count, the last 7 days (")
    # The breakdowns are still down: their downtime grows to the moment of asking.
    assert re.search(r":\n1\. breakdown: 3, [\d.]+ min\n2\. quality: 2\n3\. material: 1$", photo["caption"])
    assert png_size(photo["data"]) == charts.SIZE

    # WhatsApp, Spanish: the PNG uploaded as media, then an image message with it and the caption.
    await ask_whatsapp(fakes, stack, "Pareto de paros últimos 7 días")
    [(image, data)] = await wait_for(lambda: fakes.whatsapp.images_to(CARLOS))
    assert image["image"]["caption"].startswith("Tipos más frecuentes, los últimos 7 días (")
    assert re.search(r"\n1\. avería: 3, [\d.]+ min\n2\. calidad: 2\n3\. material: 1$", image["image"]["caption"])
    assert png_size(data) == charts.SIZE and fakes.whatsapp.uploads == [image["image"]["id"]]

    # A question that is no trend or ranking gets text only.
    fakes.telegram.queue(fakes.telegram.message(SARA, "what is down?"))
    [text] = await wait_for(lambda: fakes.telegram.sent_to(str(SARA)))
    assert "Open exceptions" in text["text"] or "Offene" in text["text"] or "E-0001" in text["text"]
    assert len(fakes.telegram.photos) == 1

    # Each chart row was sent once; its drawing is the bytes the platform got.
    rows = await wait_for(lambda: [r for r in chart_rows(stack) if r.status == "sent"] if
                          all(r.status == "sent" for r in chart_rows(stack)) and len(chart_rows(stack)) == 3 else None)
    by_channel = {r.channel: r for r in rows}
    assert charts.render(by_channel["slack"].chart or {}) == shared["data"]
    assert charts.render(by_channel["telegram"].chart or {}) == photo["data"]
    assert charts.render(by_channel["whatsapp"].chart or {}) == data


@pytest.mark.anyio
@pytest.mark.timeout(120)
@pytest.mark.filterwarnings("ignore::telegram.warnings.PTBDeprecationWarning")
async def test_a_retry_after_a_failure_posts_the_chart_once(fakes: Fakes, stack: Stack) -> None:
    # Slack answers 500 to the completion: the retry uploads again and shares once.
    fakes.slack.faults = Faults(rate_5xx=1.0)
    await ask_slack(fakes, stack, "top exception types last 7 days", "1800000002.000100")
    await wait_for(lambda: fakes.slack.faults.counts["5xx"] >= 1)
    fakes.slack.faults = Faults()
    [shared] = await wait_for(lambda: fakes.slack.shared)
    assert png_size(shared["data"]) == charts.SIZE
    # WhatsApp answers 503 to the image message: the retry reuses the uploaded media, one image arrives.
    fakes.whatsapp.faults = Faults(rate_5xx=1.0)
    await ask_whatsapp(fakes, stack, "tendencia de averías últimos 7 días")
    await wait_for(lambda: fakes.whatsapp.faults.counts["5xx"] >= 1)
    fakes.whatsapp.faults = Faults()
    [(image, _)] = await wait_for(lambda: fakes.whatsapp.images_to(CARLOS))
    assert image["image"]["caption"].startswith("Avería: abiertas por día, los últimos 7 días (")
    assert len(fakes.whatsapp.uploads) == 1
    await wait_for(lambda: len(chart_rows(stack)) == 2 and all(r.status == "sent" for r in chart_rows(stack)))
    await asyncio.sleep(0.3)  # nothing more arrives later
    assert len(fakes.slack.shared) == 1 and len(fakes.whatsapp.images_to(CARLOS)) == 1
    assert len([r for r in fakes.slack.requests if r.path == "/api/files.getUploadURLExternal"]) >= 2


# --- the console ----------------------------------------------------------------------------------


def test_the_console_shows_the_same_chart_to_the_asker_only(tmp_path: Path) -> None:
    from fastapi.testclient import TestClient

    from mfgos.config import DEMO_PLANT, Settings
    from mfgos.runtime import Runtime
    from mfgos.web import CONSOLE, ConsoleChannel, create_app
    from routing.clock import SimulatedClock

    settings = Settings(_env_file=None, database_url=f"sqlite:///{tmp_path / 'console.db'}",  # type: ignore[call-arg]
                        plant_file=DEMO_PLANT, erp="ledger")
    runtime = Runtime(settings, clock=SimulatedClock(datetime.now(UTC)), channels={CONSOLE: ConsoleChannel()})
    try:
        app = create_app(runtime)
        auth = app.state.auth
        neha = TestClient(app, headers={"Authorization": f"Bearer {auth.create_token('neha', 'act', 'neha')}"})
        ravi = TestClient(app, headers={"Authorization": f"Bearer {auth.create_token('ravi', 'act', 'ravi')}"})
        nobody = TestClient(app)
        said = ravi.post("/api/messages", json={"person_id": "ravi", "text": "hobber 1 band ho gaya, wo 1042"})
        assert said.status_code == 200, said.text
        asked = neha.post("/api/messages", json={"person_id": "neha", "text": "top exception types last 7 days"})
        assert asked.status_code == 200, asked.text
        [answer] = asked.json()["replies"]
        assert answer["text"].startswith("Top exception types by count, the last 7 days (")
        assert answer["chart"] == f"/api/people/neha/charts/{answer['id']}"
        # The bubble's image: the PNG the chat platforms would get for the row's figures.
        image = neha.get(answer["chart"])
        assert image.status_code == 200 and image.headers["content-type"] == "image/png"
        assert png_size(image.content) == charts.SIZE
        with session_scope(runtime.engine) as session:
            row = session.get(Notification, answer["id"])
            assert row is not None and row.chart is not None
            assert row.chart["labels"] == ["breakdown"] and row.chart["values"] == [1.0]
            assert image.content == charts.render(row.chart)
        # Only the asker reads it: another person is refused, an unknown or chartless row is not found.
        assert ravi.get(answer["chart"]).status_code == 403
        assert nobody.get(answer["chart"]).status_code == 401
        assert neha.get("/api/people/neha/charts/999999").status_code == 404
        text_only = said.json()["replies"][0]
        assert text_only["chart"] is None
        assert ravi.get(f"/api/people/ravi/charts/{text_only['id']}").status_code == 404
        assert neha.get("/api/people/neha/charts/not-a-number").status_code == 422
    finally:
        runtime.engine.dispose()

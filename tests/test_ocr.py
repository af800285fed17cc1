"""Photos of paper read by OCR (nlp/ocr.py): pages the tests render (tests/paper.py) in English,
Spanish, German and Hindi in Latin script, read by the real Tesseract; hostile images; the
runtime's store-then-read-then-process order (a crash mid-OCR loses nothing, a redelivery is
read once). End to end through the chat channels: tests/test_ocr_channels.py."""

from __future__ import annotations

import difflib
import io
import re
import shutil
import struct
import time
import zlib
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from PIL import Image
from sqlmodel import Session, select

from bot.media import MediaStore
from mfgos.config import Settings
from mfgos.runtime import Runtime
from models import Attachment, Notification, PlantException, Signal, TimelineEvent
from nlp import ocr
from routing.inbound import Inbound
from routing.timeline import Line, sentences
from tests.conftest import service_unavailable
from tests.paper import PAPERS, Paper, papers, render

PLANT = Path(__file__).parent / "data" / "channels_plant.yaml"
# Who sends each language's photo (tests/data/channels_plant.yaml) and on which channel.
SENDERS = {"en": ("meena", "telegram", "5002"), "es": ("carlos", "whatsapp", "+34600000001"),
           "de": ("bea", "bridge", "+4915100000009"), "hi": ("ravi", "whatsapp", "US.13491208655302741918")}


@pytest.fixture(autouse=True, scope="module")
def _tesseract() -> None:
    if shutil.which("tesseract") is None:
        service_unavailable("tesseract is not installed (apt-get install tesseract-ocr tesseract-ocr-eng "
                            "tesseract-ocr-spa tesseract-ocr-deu tesseract-ocr-hin)")


def accuracy(read: str, truth: str) -> float:
    """Character accuracy: 1 - edit distance / length, as difflib's matching ratio approximates it."""
    return difflib.SequenceMatcher(None, read, truth).ratio()


def png(image: Image.Image) -> bytes:
    out = io.BytesIO()
    image.save(out, format="PNG")
    return out.getvalue()


# --- reading ---------------------------------------------------------------------------------


@pytest.mark.parametrize("paper", PAPERS, ids=lambda p: f"{p.kind}-{p.language}")
def test_each_page_is_read_in_its_writers_language(paper: Paper) -> None:
    result = ocr.read_bytes(render(paper, fmt="JPEG" if paper.kind == "note" else "PNG"), [paper.language])
    assert result.status == "read", result
    assert accuracy(result.text, paper.text) >= (0.9 if paper.kind == "note" else 0.98), result.text
    for name in (paper.machine if paper.kind == "form" else None, paper.work_order, paper.material):
        if name:
            assert name in result.text  # the ids the NLP routes on


def test_the_models_are_the_senders_language_and_english_and_hindi_reads_latin() -> None:
    assert ocr.models_for(["es"]) == "spa+eng" and ocr.models_for(["de-DE"]) == "deu+eng"
    assert ocr.models_for(["hi"]) == ocr.models_for([None]) == "eng"
    assert ocr.models_for(["hi"], ocr.OcrLimits(devanagari=True)) == "eng+hin"


def test_a_blank_or_tiny_image_has_nothing_readable() -> None:
    assert ocr.read_bytes(png(Image.new("L", (800, 600), 255)), ["en"]).status == "unreadable"
    assert ocr.read_bytes(png(Image.new("RGB", (1, 1))), ["en"]).status == "unreadable"


# --- hostile images --------------------------------------------------------------------------


def _chunk(kind: bytes, data: bytes) -> bytes:
    return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))


def bomb(side: int = 100_000) -> bytes:
    """A PNG of a few hundred bytes that says it is side x side pixels (10 gigapixels): a decompression bomb."""
    header = struct.pack(">IIBBBBB", side, side, 1, 0, 0, 0, 0)
    rows = zlib.compress(b"\x00" * (side // 8 + 1) * 64)
    return b"\x89PNG\r\n\x1a\n" + _chunk(b"IHDR", header) + _chunk(b"IDAT", rows) + _chunk(b"IEND", b"")


def test_a_decompression_bomb_is_refused_from_its_header() -> None:
    started = time.monotonic()
    result = ocr.read_bytes(bomb(), ["en"])
    assert result.status == "refused" and "pixels" in result.reason
    assert time.monotonic() - started < 1.0, "refused before decoding"


def test_too_many_bytes_are_not_opened_and_a_missing_file_is_refused(tmp_path: Path) -> None:
    limits = ocr.OcrLimits(max_bytes=1000)
    assert ocr.read_bytes(b"\x89PNG" + b"\x00" * 2000, ["en"], limits).status == "refused"
    big = tmp_path / "big.png"
    big.write_bytes(b"\x00" * 2000)
    assert ocr.read_file(big, ["en"], limits).reason.startswith("2000 bytes")
    assert ocr.read_file(tmp_path / "gone.png", ["en"]).status == "refused"


def test_tesseract_past_its_time_limit_is_stopped_and_reported() -> None:
    started = time.monotonic()
    result = ocr.read_bytes(render(papers("form", "de")[0]), ["de"], ocr.OcrLimits(timeout=0.05))
    assert result.status == "failed" and "more than 0.05 s" in result.reason
    assert time.monotonic() - started < 3


def test_a_truncated_or_lying_image_is_refused() -> None:
    page = render(papers("label", "en")[0])
    for data in (page[: len(page) // 3], b"GIF89a" + page[6:], b"\xff\xd8\xff\xe0garbage", b"<svg onload=x>", b""):
        assert ocr.read_bytes(data, ["en"]).status in ("refused", "unreadable", "failed")


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.one_of(st.binary(max_size=4096),
                 st.binary(max_size=2048).map(lambda b: b"\x89PNG\r\n\x1a\n" + b),
                 st.binary(max_size=2048).map(lambda b: b"\xff\xd8\xff" + b),
                 st.binary(max_size=2048).map(lambda b: b"GIF89a" + b),
                 st.binary(max_size=2048).map(lambda b: b"RIFF\x00\x00\x00\x00WEBP" + b)))
def test_any_bytes_as_an_image_never_raise(data: bytes) -> None:
    result = ocr.read_bytes(data, ["en"], ocr.OcrLimits(timeout=5))
    assert result.status in ("refused", "unreadable", "failed", "read")


# --- in the runtime: stored, read, then processed like a typed message -------------------------


@pytest.fixture
def runtime(database_url: str, tmp_path: Path) -> Iterator[Runtime]:
    rt = Runtime(Settings(_env_file=None, database_url=database_url, plant_file=PLANT,  # type: ignore[call-arg]
                          attachments_dir=tmp_path / "attachments"))
    yield rt
    rt.engine.dispose()


def photo_message(rt: Runtime, tmp_path: Path, paper: Paper | None, event_id: str, *, data: bytes | None = None,
                  caption: str | None = None, language: str | None = None) -> Inbound:
    """The message a channel hands the runtime for a photo: the file stored first (bot/media.py)."""
    person, channel, address = SENDERS[language or (paper.language if paper else "en")]
    stored = MediaStore(tmp_path / "attachments").save(data if data is not None else render(paper),  # type: ignore[arg-type]
                                                       "photo", "image/jpeg")
    return Inbound(source=channel, event_id=event_id, address=address, person_id=person,
                   text=paper.caption if caption is None and paper else caption or "", attachments=(stored,))


def timeline(rt: Runtime) -> list[TimelineEvent]:
    with Session(rt.engine) as session:
        return list(session.exec(select(TimelineEvent).order_by(TimelineEvent.id)))


def replies(rt: Runtime, person: str) -> list[str]:
    with Session(rt.engine) as session:
        return [n.text for n in session.exec(select(Notification).where(Notification.person_id == person)
                                            .order_by(Notification.id))]


def exceptions(rt: Runtime) -> list[PlantException]:
    with Session(rt.engine) as session:
        return list(session.exec(select(PlantException).order_by(PlantException.id)))


@pytest.mark.parametrize("language", ["en", "es", "de", "hi"])
def test_a_photo_of_a_form_opens_the_exception_it_describes(runtime: Runtime, tmp_path: Path, language: str) -> None:
    paper = papers("form", language)[0]
    runtime.accept(photo_message(runtime, tmp_path, paper, "p1"))
    [exc] = exceptions(runtime)
    assert (exc.type, exc.machine_id, exc.work_orders[0]) == ("breakdown", "HOB-01", "WO-1042")
    [read] = [e for e in timeline(runtime) if e.kind == "photo_text"]
    assert accuracy(read.text, paper.text) > 0.98 and read.data["photos"][0]["words"] > 10
    person = SENDERS[language][0]
    [sentence] = sentences([Line(read.kind, read.person_id, read.text, read.data)], "en", names={person: "P. Erson"})
    assert sentence.startswith("Text read from P. Erson's photo — ") and paper.lines[1] in sentence  # the console's line
    assert replies(runtime, SENDERS[language][0])[0].startswith("E-0001")


def test_a_label_with_a_caption_reports_the_material(runtime: Runtime, tmp_path: Path) -> None:
    runtime.accept(photo_message(runtime, tmp_path, papers("label", "es")[0], "p1"))
    [exc] = exceptions(runtime)
    assert (exc.type, exc.material_id) == ("material", "FRG-20")


def test_a_photo_with_nothing_readable_is_answered_not_paged(runtime: Runtime, tmp_path: Path) -> None:
    blank = png(Image.new("L", (900, 700), 250))
    for event_id, data in (("blank", blank), ("bomb", bomb()), ("noise", b"\x89PNG\r\n\x1a\nnot really")):
        runtime.accept(photo_message(runtime, tmp_path, None, event_id, data=data, language="es"))
    assert exceptions(runtime) == []
    assert [r.split(".")[0] for r in replies(runtime, "carlos")] == ["No pude leer texto en esa foto"] * 3
    with Session(runtime.engine) as session:
        signals = session.exec(select(Signal).order_by(Signal.id)).all()
    assert [s.payload["photo_text"][0]["status"] for s in signals] == ["unreadable", "refused", "refused"]
    assert all(s.processed_at is not None and s.error is None for s in signals)


def test_a_crash_while_reading_loses_nothing_and_a_redelivery_is_read_once(
        runtime: Runtime, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    paper = papers("note", "de")[0]
    message = photo_message(runtime, tmp_path, paper, "n1")
    real, calls = ocr.read_file, []

    def crash(*args: Any, **kwargs: Any) -> ocr.OcrResult:
        raise SystemExit("killed mid-OCR")  # the process dies: no Python error handling runs

    monkeypatch.setattr(ocr, "read_file", crash)
    with pytest.raises(SystemExit):
        runtime.accept(message)
    with Session(runtime.engine) as session:
        [stored] = session.exec(select(Signal)).all()
    assert stored.processed_at is None and "photo_text" not in stored.payload, "stored, not read, not processed"

    def counted(*args: Any, **kwargs: Any) -> ocr.OcrResult:
        calls.append(args)
        return real(*args, **kwargs)

    monkeypatch.setattr(ocr, "read_file", counted)
    assert runtime.process_pending() == 1  # the restart's pass
    assert runtime.accept(message).duplicate and runtime.process_pending() == 0  # the platform delivers it again
    assert len(calls) == 1
    [exc] = exceptions(runtime)
    assert (exc.type, exc.machine_id) == ("breakdown", "ASM-01")
    assert [e.kind for e in timeline(runtime)].count("photo_text") == 1


def test_a_photo_in_a_thread_without_text_stays_a_comment(runtime: Runtime, tmp_path: Path) -> None:
    runtime.receive_chat(channel="console", address="carlos", person_id="carlos", event_id="c1",
                         text="hobber 1 parada, ruido en el husillo")
    blank = png(Image.new("L", (900, 700), 250))
    message = photo_message(runtime, tmp_path, None, "p2", data=blank, language="es")
    runtime.accept(Inbound(**{**message.__dict__, "exception_ref": "E-0001"}))
    assert [e.text for e in timeline(runtime) if e.kind == "comment"] == ["(attachment)"]
    assert not any("No pude leer" in r for r in replies(runtime, "carlos"))


def test_a_photo_with_a_caption_in_a_thread_shows_no_server_path(runtime: Runtime, tmp_path: Path) -> None:
    """The timeline (and so the console's API) says what was sent, never where the file is kept."""
    runtime.receive_chat(channel="console", address="carlos", person_id="carlos", event_id="c1",
                         text="hobber 1 parada, ruido en el husillo")
    blank = png(Image.new("L", (900, 700), 250))
    message = photo_message(runtime, tmp_path, None, "p3", data=blank, caption="así quedó el husillo",
                            language="es")
    runtime.accept(Inbound(**{**message.__dict__, "exception_ref": "E-0001"}))
    attached = [e for e in timeline(runtime) if e.kind == "attachment"]
    assert attached, "the photo is on the timeline"
    for event in timeline(runtime):
        assert str(tmp_path) not in f"{event.text} {event.data}"
        assert all("path" not in item for item in event.data.get("attachments", []))


def test_the_set_up_installs_tesseract_with_every_language_model_read() -> None:
    """The README's set-up, .ci/run and the image install the Debian package of every model nlp/ocr.py loads."""
    root = Path(__file__).resolve().parents[1]
    packages = {"tesseract-ocr"} | {f"tesseract-ocr-{m}" for m in (*ocr.MODELS.values(), ocr.DEVANAGARI)}
    for where in ("README.md", ".ci/run", "deploy/Dockerfile"):
        named = set(re.findall(r"tesseract-ocr(?:-[a-z]{3})?\b", (root / where).read_text(encoding="utf-8")))
        assert packages <= named, f"{where} does not install {sorted(packages - named)}"


def test_a_photo_taken_sideways_or_a_transparent_cut_out_is_read_upright_on_white() -> None:
    paper = papers("label", "de")[0]
    page = Image.open(io.BytesIO(render(paper))).convert("RGB")
    exif = Image.Exif()
    exif[0x0112] = 6  # Orientation: the camera was turned; the viewer rotates 90° clockwise
    out = io.BytesIO()
    page.rotate(90, expand=True).save(out, format="JPEG", quality=90, exif=exif.tobytes())
    assert accuracy(ocr.read_bytes(out.getvalue(), ["de"]).text, paper.text) > 0.95
    ink = page.convert("L").point(lambda v: 255 - v)  # black text -> opaque, white paper -> transparent
    cut_out = Image.new("RGBA", page.size, (0, 0, 0, 0))
    cut_out.putalpha(ink)
    assert accuracy(ocr.read_bytes(png(cut_out), ["de"]).text, paper.text) > 0.95


def test_a_note_without_its_machine_is_asked_back_like_a_typed_one(runtime: Runtime, tmp_path: Path) -> None:
    note = Paper("note", "en", ("conveyor motor broken", "belt not moving"))
    message = photo_message(runtime, tmp_path, note, "q1")
    received = runtime.accept(message)
    MediaStore(tmp_path / "attachments").link(runtime.engine, received.signal_id, list(message.attachments), None)
    assert exceptions(runtime) == []
    [question] = replies(runtime, "meena")
    assert "machine" in question.lower()
    runtime.receive_chat(channel="telegram", address="5002", person_id="meena", event_id="q2", text="line 1")
    [exc] = exceptions(runtime)
    assert exc.machine_id == "ASM-01" and "conveyor motor broken" in exc.summary
    # The photo asked about, and its text, are on the exception the answer opened.
    with Session(runtime.engine) as session:
        [photo] = session.exec(select(Attachment)).all()
    assert photo.exception_id == exc.id
    events = {e.kind: e for e in timeline(runtime)}
    assert events["attachment"].data["attachments"][0]["url"] == f"/attachments/{photo.public_id}"
    assert events["photo_text"].text.startswith("conveyor motor broken")

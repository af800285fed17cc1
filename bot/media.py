"""Photos and voice notes from any channel: stored on disk, linked on the exception's timeline.

Files are content-addressed (`<sha256>.<ext>` under `settings.attachments_dir`), so a
redelivered photo is stored once. The message's signal carries what was stored; once the
signal is processed, `link` adds `Attachment` rows for the exception the message went to
(and a timeline entry, unless the conversation already wrote one) so the console shows them.

The type of a file is what its bytes say (`sniff`: magic numbers), never what the sender
declared: a "photo" that is HTML or SVG would otherwise run as script on the console's
origin. Images, PDF and audio are shown inline (`inline_type`); anything else is a download.
Links use the row's random `public_id` (`link_of`), never its integer key.
"""

from __future__ import annotations

import hashlib
import os
import tempfile
from pathlib import Path
from typing import Any

from sqlalchemy.engine import Engine
from sqlmodel import Session, select

from models import Attachment, Notification, PlantException, Signal, TimelineEvent, session_scope
from routing.conversation import CODE
from routing.timeline import attachment_link

MAX_BYTES = 25 * 1024 * 1024  # WhatsApp's largest voice/video; Slack and Telegram bots get less
DOWNLOAD = "application/octet-stream"
# Sniffed type -> file extension; every type here is shown inline, anything else is a download.
EXTENSIONS = {"image/jpeg": ".jpg", "image/png": ".png", "image/gif": ".gif", "image/webp": ".webp",
              "application/pdf": ".pdf", "audio/ogg": ".ogg", "audio/mpeg": ".mp3", "audio/mp4": ".m4a",
              "audio/wav": ".wav", "audio/amr": ".amr"}
# (offset, magic bytes, type), in order; MP4-family files say "ftyp" at offset 4.
MAGIC: tuple[tuple[int, bytes, str], ...] = (
    (0, b"\xff\xd8\xff", "image/jpeg"),
    (0, b"\x89PNG\r\n\x1a\n", "image/png"),
    (0, b"GIF87a", "image/gif"),
    (0, b"GIF89a", "image/gif"),
    (0, b"%PDF-", "application/pdf"),
    (0, b"OggS", "audio/ogg"),
    (0, b"ID3", "audio/mpeg"),
    (0, b"#!AMR", "audio/amr"),
)


def sniff(head: bytes) -> str:
    """The type the first bytes of a file show, or `DOWNLOAD` when they show none we serve inline."""
    for offset, magic, kind in MAGIC:
        if head[offset:offset + len(magic)] == magic:
            return kind
    if head[:4] == b"RIFF" and head[8:12] == b"WEBP":
        return "image/webp"
    if head[:4] == b"RIFF" and head[8:12] == b"WAVE":
        return "audio/wav"
    if head[4:8] == b"ftyp" and head[8:12] in (b"M4A ", b"M4B ", b"mp42", b"isom", b"dash", b"mp41"):
        return "audio/mp4"  # voice notes from phones; a video in the same box is served as audio, never as script
    if len(head) > 1 and head[0] == 0xFF and head[1] & 0xE0 == 0xE0 and head[1] & 0x06:
        return "audio/mpeg"  # an MPEG audio frame without an ID3 tag
    return DOWNLOAD


def sniff_file(path: Path) -> str:
    with path.open("rb") as handle:
        return sniff(handle.read(16))


link_of = attachment_link  # the console's link to an attachment: one definition, in routing/timeline.py


class MediaStore:
    def __init__(self, directory: Path, max_bytes: int = MAX_BYTES) -> None:
        self.directory = Path(directory)
        self.max_bytes = max_bytes

    def save(self, data: bytes, kind: str, declared_type: str | None = None) -> dict[str, Any]:
        """Write the file once (atomic rename) and return what the signal records about it; its type is
        sniffed from the bytes (the sender's `declared_type` is kept only as what they claimed)."""
        if len(data) > self.max_bytes:
            raise ValueError(f"{len(data)} bytes is more than the {self.max_bytes} allowed")
        digest = hashlib.sha256(data).hexdigest()
        content_type = sniff(data[:16])
        extension = EXTENSIONS.get(content_type, ".bin")
        path = self.directory / digest[:2] / f"{digest}{extension}"
        if not path.exists():
            path.parent.mkdir(parents=True, exist_ok=True)
            fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=".part-")
            try:
                with os.fdopen(fd, "wb") as handle:
                    handle.write(data)
                os.replace(tmp, path)
            except BaseException:
                Path(tmp).unlink(missing_ok=True)
                raise
        return {"kind": kind, "content_type": content_type, "path": str(path), "sha256": digest, "size": len(data),
                "stored": True, "declared_type": str(declared_type)[:100] if declared_type else None}

    def link(self, engine: Engine, signal_id: int, stored: list[dict[str, Any]], exception_ref: str | None) -> list[int]:
        """Attachment rows for a processed signal, on the exception it went to (if any); idempotent."""
        with session_scope(engine) as session:
            if session.exec(select(Attachment.id).where(Attachment.signal_id == signal_id)).first():
                return []
            signal = session.get(Signal, signal_id)
            if signal is None:
                return []
            exception_id = _exception_of(session, signal, exception_ref)
            rows = [Attachment(signal_id=signal_id, exception_id=exception_id, kind=item["kind"],
                               content_type=item.get("content_type"), path=item["path"], created_at=signal.received_at)
                    for item in stored if item.get("path")]
            for row in rows:
                session.add(row)
            session.flush()
            ids = [row.id for row in rows if row.id is not None]
            if exception_id is not None and ids:
                session.add(TimelineEvent(
                    exception_id=exception_id, at=signal.received_at, kind="attachment", person_id=signal.person_id,
                    text=", ".join(f"{r.kind} {Path(r.path).name}" for r in rows),
                    data={"attachments": [{"url": link_of(r.public_id), "kind": r.kind, "content_type": r.content_type}
                                          for r in rows]}))
            return ids


def _exception_of(session: Session, signal: Signal, exception_ref: str | None) -> int | None:
    """The exception the conversation put the message on: a notification it caused, the named or quoted thread."""
    caused = session.exec(select(Notification.exception_id).where(
        Notification.dedupe_key.like(f"signal:{signal.id}:%"),  # type: ignore[attr-defined]
        Notification.exception_id.is_not(None))).first()  # type: ignore[union-attr]
    if caused:
        return caused
    if exception_ref:
        found = session.exec(select(PlantException.id).where(PlantException.code == exception_ref.upper())).first()
        if found:
            return found
    if match := CODE.search(signal.payload.get("text") or ""):
        found = session.exec(select(PlantException.id).where(PlantException.code == f"E-{int(match.group(1)):04d}")).first()
        if found:
            return found
    if reply_to := signal.payload.get("reply_to"):
        quoted = session.exec(select(Notification.exception_id).where(
            Notification.platform_message_id == str(reply_to))).first()
        if quoted:
            return quoted
    return None

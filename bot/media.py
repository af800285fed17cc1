"""Photos and voice notes from any channel: stored on disk, linked on the exception's timeline.

Files are content-addressed (`<sha256>.<ext>` under `settings.attachments_dir`), so a
redelivered photo is stored once. The message's signal carries what was stored; once the
signal is processed, `link` adds `Attachment` rows for the exception the message went to
(and a timeline entry, unless the conversation already wrote one) so the console shows them.
"""

from __future__ import annotations

import hashlib
import mimetypes
import os
import tempfile
from pathlib import Path
from typing import Any

from sqlalchemy.engine import Engine
from sqlmodel import Session, select

from models import Attachment, Notification, PlantException, Signal, TimelineEvent, session_scope
from routing.conversation import CODE

MAX_BYTES = 25 * 1024 * 1024  # WhatsApp's largest voice/video; Slack and Telegram bots get less
EXTENSIONS = {"audio/ogg": ".ogg", "audio/mpeg": ".mp3", "image/jpeg": ".jpg", "image/png": ".png",
              "audio/ogg; codecs=opus": ".ogg", "image/webp": ".webp", "audio/mp4": ".m4a"}


class MediaStore:
    def __init__(self, directory: Path, max_bytes: int = MAX_BYTES) -> None:
        self.directory = Path(directory)
        self.max_bytes = max_bytes

    def save(self, data: bytes, kind: str, content_type: str | None) -> dict[str, Any]:
        """Write the file once (atomic rename) and return what the signal records about it."""
        if len(data) > self.max_bytes:
            raise ValueError(f"{len(data)} bytes is more than the {self.max_bytes} allowed")
        digest = hashlib.sha256(data).hexdigest()
        base = (content_type or "").split(";")[0].strip().lower()
        extension = EXTENSIONS.get(base) or (mimetypes.guess_extension(base) if base else None) or ".bin"
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
        return {"kind": kind, "content_type": base or None, "path": str(path), "sha256": digest, "size": len(data),
                "stored": True}

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
                    data={"attachment_ids": ids, "paths": [r.path for r in rows],
                          "content_types": [r.content_type for r in rows]}))
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

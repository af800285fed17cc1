"""The one typed inbound event every way in produces: a chat line, a button press or a signal.

Platforms (Slack, Telegram, WhatsApp, the bridge), the web console, the terminal chat and
replay all build an `Inbound` and hand it to the one gate (`mfgos.runtime.Runtime.accept`),
which caps its size, finds the sender, stores it once per `(source, event_id)` and has it
processed by the handler its `kind` names. What is stored is `payload()`: the shape the
handlers read back from `Signal.payload`.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

MAX_TEXT = 4000  # characters of one chat message on every channel; longer ones are answered "too long"
CHAT_KINDS = ("chat", "action")


@dataclass(frozen=True)
class Inbound:
    """One inbound event: a chat message (`kind` left out: `chat`, or `action` when a button was
    pressed) or a signal of `kind` (`machine`, `work_order`, ...)."""

    source: str  # the channel (slack, telegram, whatsapp, bridge, console) or the signal source (mqtt, ...)
    event_id: str  # the source's id of this delivery: the second delivery of one id is a duplicate
    kind: str | None = None
    address: str | None = None  # the sender's id on the channel
    person_id: str | None = None  # when the channel already knows the person (console, terminal, replay)
    text: str = ""
    action: str | None = None  # a button value: ack | approve | reject | propose | choose:E-0001
    exception_ref: str | None = None  # the thread, when the channel says which exception it is
    reply_to: str | None = None  # platform id of the message this one quotes
    chat_id: str | None = None
    thread_id: str | None = None
    language: str | None = None  # the language the platform reports for the sender, if any
    attachments: tuple[dict[str, Any], ...] = ()
    data: dict[str, Any] = field(default_factory=dict)  # a signal's own fields (topic, payload, machine)

    @property
    def source_key(self) -> str:
        """The key the store dedupes on."""
        return f"{self.source}:{self.event_id}"

    @property
    def signal_kind(self) -> str:
        """The kind stored on the signal: the handler table's key."""
        return self.kind or ("action" if self.action else "chat")

    @property
    def is_chat(self) -> bool:
        return self.signal_kind in CHAT_KINDS

    def too_long(self) -> bool:
        return self.is_chat and len(self.text) > MAX_TEXT

    def payload(self) -> dict[str, Any]:
        """What is stored on the signal; a chat text over the limit is cut and marked `too_long` (its length)."""
        if not self.is_chat:
            return dict(self.data)
        payload: dict[str, Any] = {
            "channel": self.source, "address": self.address, "text": self.text[:MAX_TEXT],
            "exception_ref": self.exception_ref, "action": self.action, "reply_to": self.reply_to,
            "attachments": list(self.attachments), "language": self.language, "chat_id": self.chat_id,
            "thread_id": self.thread_id,
        }
        if self.too_long():
            payload["too_long"] = len(self.text)
        return payload

"""What rich chat messages show about an exception, neutral of any platform.

Channels with buttons and editable messages (Slack Block Kit, Telegram inline keyboards,
WhatsApp reply buttons) render the same things from here: button titles in the
recipient's language, the button value (`ack:E-0042`, so a press names its exception even
where the platform has no threads), which buttons still make sense for a status, and the
short context of a thread (machine, work orders, customer orders at risk, the SLA clock).
The answer buttons of a "which one?" (`choose:E-0042`) carry their code already; their
title is the code, with the machine's name when it fits the platform's limit. The Retry and
Abandon buttons of a transaction the ERP refused (`erp_retry:<public id>`,
`erp_abandon:<public id>`) name the transaction, not the exception, and are sent back as they are.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy.engine import Engine
from sqlmodel import Session, select

from models import AckTimer, Machine, Plant, PlantException
from routing import messages
from routing.roster import plant_local

ACTIONS = ("ack", "propose", "approve", "reject")
CODE = re.compile(r"\bE-\d{4,6}\b")
CHOICE = re.compile(r"choose:(E-\d{4,6})")  # an answer button of a "which one?" question
# Retry / Abandon of a refused ERP transaction, by its public id (`ErpTransaction.public_id`).
ERP_BUTTON = re.compile(r"(erp_retry|erp_abandon):([0-9a-f]{8,32})")
# Which buttons still mean something once the exception has moved on.
LIVE = {
    "open": {"ack", "propose"},
    "acknowledged": {"propose"},
    "proposed": {"approve", "reject"},
}
ZWSP = "\u200b"  # ZERO WIDTH SPACE: invisible, breaks a formatting marker or a mention (break_markers)


def choice_code(button: str) -> str | None:
    """The exception a `choose:E-0042` button names; None for any other button."""
    found = CHOICE.fullmatch(button)
    return found.group(1) if found else None


def erp_button(button: str) -> str | None:
    """`erp_retry` or `erp_abandon` for a Retry / Abandon button of a refused ERP transaction, else None."""
    found = ERP_BUTTON.fullmatch(button)
    return found.group(1) if found else None


def button_label(action: str, language: str, labels: Mapping[str, str] | None = None) -> str:
    """The title of a button; a `choose:` one is its code, or its entry in `labels` (`choice_labels`)."""
    if code := choice_code(action):
        return (labels or {}).get(action, code)
    if kind := erp_button(action):
        return messages.render(f"button_{kind}", language)
    return messages.render(f"button_{action}", language)


def button_value(action: str, code: str | None) -> str:
    """What a press sends back: the action and the exception (a `choose:` button names its own,
    an ERP one its transaction)."""
    if choice_code(action) or erp_button(action):
        return action
    return f"{action}:{code}" if code else action


def parse_button(value: str) -> tuple[str | None, str | None]:
    """`ack:E-0042` -> ("ack", "E-0042"); `choose:E-0042` -> ("choose:E-0042", None), an answer that
    belongs to no thread; `erp_retry:<id>` -> ("erp_retry:<id>", None), the transaction names its
    exception; anything that is not one of our buttons -> (None, None)."""
    if erp_button(value or ""):
        return value, None
    action, _, code = (value or "").partition(":")
    if action == "choose":
        return (f"choose:{code.upper()}", None) if CODE.fullmatch(code.upper()) else (None, None)
    if action not in ACTIONS:
        return None, None
    return action, (code.upper() if code and CODE.fullmatch(code.upper()) else None)


def choice_labels(engine: Engine | None, buttons: Iterable[str], limit: int) -> dict[str, str]:
    """The title of each `choose:` button among `buttons`: "E-0042 · Gear hobber 1" when that fits
    in `limit` characters, else the code alone (the question's text lists the details)."""
    codes = [code for b in buttons if (code := choice_code(b))]
    if not codes or engine is None:
        return {}
    with Session(engine) as session:
        rows = session.exec(select(PlantException.code, Machine.name).join(Machine, (
            Machine.plant_id == PlantException.plant_id) & (Machine.id == PlantException.machine_id))  # type: ignore[arg-type]
            .where(PlantException.code.in_(codes))).all()  # type: ignore[attr-defined]
    return {f"choose:{code}": label for code, name in rows if len(label := f"{code} · {name}") <= limit}


def live_buttons(buttons: tuple[str, ...] | list[str], status: str) -> tuple[str, ...]:
    return tuple(b for b in buttons if b in LIVE.get(status, set()))


def status_name(status: str, language: str) -> str:
    key = f"status_{status}"
    return messages.render(key, language) if key in messages.TEMPLATES else status


def break_markers(text: str, markers: re.Pattern[str]) -> str:
    """Put an invisible ZERO WIDTH SPACE before every match of `markers`.

    Slack mrkdwn and WhatsApp have no escape character for their formatting markers; both only
    treat a marker as one when it stands at a word boundary (so one between two letters or digits
    needs nothing). With U+200B right before it, a
    marker that would open formatting follows a character that is not a space (if the platform
    counts U+200B as a letter) and one that would close it follows a space (if it counts it as
    a space): either way no pair forms, and the text shows as written.
    """
    return markers.sub(lambda found: ZWSP + found.group(0), text)


def with_code(text: str, code: str | None) -> str:
    """Channels without threads carry the exception's code in every message about it."""
    if not code or code in text:
        return text
    return f"[{code}] {text}"


@dataclass(frozen=True)
class ExceptionCard:
    code: str
    status: str
    type: str
    machine: str
    summary: str
    area: str | None
    work_orders: tuple[str, ...]
    customer_orders: tuple[str, ...]
    opened: str  # plant-local "HH:MM"
    ack_due: str | None

    def context_lines(self, language: str) -> list[str]:
        lines = [messages.render("card_machine", language, machine=self.machine)]
        if self.work_orders:
            lines.append(messages.render("card_work_orders", language, work_orders=", ".join(self.work_orders)))
        if self.customer_orders:
            lines.append(messages.render("card_customers", language, customer_orders=", ".join(self.customer_orders)))
        clock = messages.render("card_opened", language, opened=self.opened)
        if self.ack_due and self.status == "open":
            clock += " · " + messages.render("card_ack_due", language, due=self.ack_due)
        lines.append(clock)
        lines.append(messages.render("card_status_line", language, status=status_name(self.status, language)))
        return lines

    def headline(self, language: str) -> str:
        return messages.render("card_root", language, code=self.code, type=messages.type_name(self.type, language),
                               machine=self.machine, summary=self.summary[:300])


def exception_card(engine: Engine, exception: PlantException | str) -> ExceptionCard | None:
    """The card of an exception (by row or code), read in a short session of its own."""
    with Session(engine) as session:
        exc = exception if isinstance(exception, PlantException) else session.exec(
            select(PlantException).where(PlantException.code == exception)).first()
        if exc is None:
            return None
        plant = session.get(Plant, exc.plant_id)
        machine = session.get(Machine, (exc.plant_id, exc.machine_id)) if exc.machine_id else None
        due = session.exec(select(AckTimer.due_at).where(AckTimer.exception_id == exc.id, AckTimer.status == "pending")
                           .order_by(AckTimer.due_at)).first()

        def local(at: datetime | None) -> str | None:
            if at is None:
                return None
            return (plant_local(plant, at) if plant else at).strftime("%H:%M")

        return ExceptionCard(
            code=exc.code, status=exc.status, type=exc.type, summary=exc.summary, area=exc.area_id,
            machine=f"{exc.machine_id} ({machine.name})" if machine else (exc.machine_id or "?"),
            work_orders=tuple(exc.work_orders), customer_orders=tuple(exc.customer_orders_at_risk),
            opened=local(exc.opened_at) or "?", ack_due=local(due),
        )

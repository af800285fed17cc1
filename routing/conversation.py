"""The conversation with one person: one stored chat signal -> the lifecycle step the person meant.

The gate has stored the message as a signal and resolved the sender to a person (or not).
Here we read it (NLP), find the thread it belongs to, and call the lifecycle step; when the
bot needs to know more it asks, and the question is explicit state: `State` per person,
changed only through `TRANSITIONS` and kept in `models.Conversation`, so the next message
is read as the answer (the code, the machine, "the second one") and completes what was
pending with its original text. Every message of a known person gets an answer: what was
recorded, on which exception, and what happens next. All in the caller's transaction.
"""

from __future__ import annotations

import re
from dataclasses import asdict, dataclass
from datetime import datetime, timedelta
from enum import StrEnum
from pathlib import Path
from typing import Any, Protocol

from sqlmodel import select

from models import (
    Attachment,
    Conversation,
    Notification,
    OutboxStatus,
    Person,
    PlantException,
    Signal,
    StrangerReply,
)
from nlp.extraction import Extraction, Quantity
from routing import decisions, erp_rejections, messages, queries
from routing import workflow as wf
from routing.erp_rejections import RowChanges
from routing.inbound import MAX_TEXT
from routing.lifecycle import Action
from routing.options import offer as offer_options
from routing.timeline import attachment_link
from routing.workflow import Context

CODE = re.compile(r"\bE-?(\d{1,6})\b", re.I)
TYPE_CONFIDENCE = 0.5  # below this an "other" report is a guess: ask what kind of problem it is
MAX_QUESTIONS = 2  # after this many unanswered questions the bot stops asking
LISTED = 9  # choices a "which one?" shows in full; codes alone after that, to keep the message short
# "Is this a problem to report?": the answer as a button (`yes`, `no`) or a word in the four languages.
YES_NO = ("yes", "no")
_ANSWER_WORDS = {
    "yes": ("yes", "y", "yeah", "yep", "si", "sí", "ja", "jo", "haan", "han", "ha", "haa", "ji"),
    "no": ("no", "n", "nope", "nah", "nein", "nee", "nahi", "nahin", "nai"),
}
PHOTOS_READ = 4  # photos of one message read by OCR (mfgos/runtime.py); the others are only kept
QUESTION_TTL = timedelta(minutes=30)  # an answer later than this is read as a new message
STRANGER_QUIET = timedelta(hours=1)  # one "not registered" answer per address in this time
# An answer that is only a number, maybe with an article: "1", "la 2", "the 3rd", "Nr. 2", "#2".
NUMBER_ANSWER = re.compile(
    r"^\s*(?:(?:la|el|le|die|der|das|the|no\.?|nr\.?|number|nummer|n[uú]mero|#)\s*)?(\d{1,6})"
    r"(?:st|nd|rd|th|\.|\))?\s*$", re.I)
# Ordinals people pick from a list with (0 = first, -1 = last), in the plant's four languages.
ORDINALS: dict[str, int] = {
    "first": 0, "1st": 0, "primera": 0, "primero": 0, "erste": 0, "ersten": 0, "pehla": 0, "pehli": 0,
    "second": 1, "2nd": 1, "segunda": 1, "segundo": 1, "zweite": 1, "zweiten": 1, "dusra": 1, "dusri": 1,
    "doosra": 1, "doosri": 1, "third": 2, "3rd": 2, "tercera": 2, "tercero": 2, "dritte": 2, "dritten": 2,
    "teesra": 2, "teesri": 2, "fourth": 3, "4th": 3, "cuarta": 3, "cuarto": 3, "vierte": 3, "vierten": 3,
    "chautha": 3, "chauthi": 3, "last": -1, "ultima": -1, "última": -1, "ultimo": -1, "último": -1,
    "letzte": -1, "letzten": -1, "aakhri": -1, "akhri": -1,
}
TYPE_WORDS = {
    "breakdown": ("breakdown", "avería", "averia", "ausfall", "kaput", "down", "band", "stopped"),
    "quality": ("quality", "calidad", "qualität", "qualitat", "defect", "scrap"),
    "material": ("material", "missing", "falta", "fehlt", "khatam", "shortage"),
    "safety": ("safety", "seguridad", "sicherheit", "unsafe"),
    "tooling": ("tooling", "tool", "herramienta", "werkzeug"),
    "utility": ("utility", "power", "air", "strom", "luft", "luz", "bijli"),
    "staffing": ("staffing", "people", "personal", "personas", "log"),
    "other": ("other", "otro", "sonstiges", "aur"),
}


class State(StrEnum):
    idle = "idle"  # no open question: a message is read on its own
    awaiting_machine = "awaiting_machine"  # a report without its machine: pending = the report
    awaiting_type = "awaiting_type"  # a report whose kind of problem is unclear: pending = the report
    awaiting_which_exception = "awaiting_which_exception"  # an action without a thread: pending = the action
    awaiting_reason = "awaiting_reason"  # Abandon pressed on a refused ERP transaction: pending = which one
    awaiting_problem = "awaiting_problem"  # a message that may be small talk: pending = the would-be report
    awaiting_decision = "awaiting_decision"  # a decision part without its time or subject: pending = the reading


class Event(StrEnum):
    asked_machine = "asked_machine"  # the bot asked which machine
    asked_type = "asked_type"  # the bot asked what kind of problem
    asked_which = "asked_which"  # the bot asked which of the person's exceptions is meant
    asked_reason = "asked_reason"  # the bot asked why a refused ERP transaction is given up
    asked_problem = "asked_problem"  # the bot asked whether the message is a problem to report
    asked_decision = "asked_decision"  # the bot asked what a decision part still lacks (when, which order)
    answered = "answered"  # the answer completed what was pending
    asked_again = "asked_again"  # the answer was not understood: the same question once more
    gave_up = "gave_up"  # still not understood after MAX_QUESTIONS: a report opens with what is known, an action is dropped
    left = "left"  # something unrelated (a new report, a query, another thread): the question is dropped
    expired = "expired"  # no answer within QUESTION_TTL


S, E = State, Event
# Every move the conversation can make; anything else is a bug (`transition` raises).
TRANSITIONS: dict[tuple[State, Event], State] = {
    (S.idle, E.asked_machine): S.awaiting_machine,
    (S.idle, E.asked_type): S.awaiting_type,
    (S.idle, E.asked_which): S.awaiting_which_exception,
    (S.idle, E.asked_reason): S.awaiting_reason,
    (S.idle, E.asked_problem): S.awaiting_problem,

    (S.awaiting_machine, E.answered): S.idle,
    (S.awaiting_machine, E.asked_type): S.awaiting_type,  # machine given, the kind still unclear
    (S.awaiting_machine, E.asked_again): S.awaiting_machine,
    (S.awaiting_machine, E.gave_up): S.idle,
    (S.awaiting_machine, E.left): S.idle,
    (S.awaiting_machine, E.expired): S.idle,

    (S.awaiting_type, E.answered): S.idle,
    (S.awaiting_type, E.asked_again): S.awaiting_type,
    (S.awaiting_type, E.gave_up): S.idle,
    (S.awaiting_type, E.left): S.idle,
    (S.awaiting_type, E.expired): S.idle,

    (S.awaiting_which_exception, E.answered): S.idle,
    (S.awaiting_which_exception, E.asked_again): S.awaiting_which_exception,
    (S.awaiting_which_exception, E.gave_up): S.idle,
    (S.awaiting_which_exception, E.left): S.idle,
    (S.awaiting_which_exception, E.expired): S.idle,

    (S.awaiting_reason, E.answered): S.idle,  # the next message is the reason: the transaction is abandoned
    (S.awaiting_reason, E.left): S.idle,  # a button, or a message in another exception's thread
    (S.awaiting_reason, E.expired): S.idle,  # nothing abandoned; the buttons still work
    (S.awaiting_problem, E.answered): S.idle,  # yes: read on as a report; no: nothing recorded
    (S.awaiting_problem, E.left): S.idle,
    (S.awaiting_problem, E.expired): S.idle,

    (S.idle, E.asked_decision): S.awaiting_decision,
    (S.awaiting_decision, E.answered): S.idle,
    (S.awaiting_decision, E.asked_again): S.awaiting_decision,
    (S.awaiting_decision, E.gave_up): S.idle,
    (S.awaiting_decision, E.left): S.idle,
    (S.awaiting_decision, E.expired): S.idle,
}
del S, E


class Reader(Protocol):
    """What the conversation needs from the NLP layer."""

    def extract(self, text: str, language: str | None = None) -> Extraction: ...

    def match_machine(self, text: str, candidates: list[str] | None = None) -> str | None: ...


def transition(conv: Conversation, event: Event) -> State:
    """Move `conv` by `event` as `TRANSITIONS` says; back in `idle` nothing is pending."""
    target = TRANSITIONS.get((State(conv.state), event))
    if target is None:
        raise ValueError(f"conversation: no transition from {conv.state} on {event}")
    conv.state = target
    if target is State.idle:
        conv.pending, conv.options, conv.questions = {}, [], 0
        conv.signal_id = conv.asked_at = conv.expires_at = None
    return target


def handle_chat(ctx: Context, signal: Signal, reader: Reader, rows: RowChanges | None = None) -> None:
    """Process one chat message or button press (the runtime's handler for `chat` and `action`);
    `rows`: how the ERP outbox retries or abandons a refused transaction (the runtime's)."""
    payload: dict[str, Any] = signal.payload
    who = wf.person(ctx, signal.person_id)
    if who is None:
        _reply_unregistered(ctx, payload, reader)
        return
    turn = Turn(ctx, who, payload.get("channel"), signal, reader, _conversation(ctx, who), rows)
    if payload.get("too_long"):
        turn.reply("reply", messages.render("too_long", who.language, length=payload["too_long"], limit=MAX_TEXT))
        return
    asked_by = turn.conv.signal_id if turn.conv.state != State.idle else None
    read = [r for r in payload.get("photo_text") or [] if r.get("status") == "read" and r.get("text")]
    if payload.get("photo_text") and not read and not (payload.get("text") or "").strip() \
            and _platform_thread(ctx, payload) is None:
        # A photo of paper with nothing readable and nothing typed: say so, rather than page anyone.
        turn.reply("reply", messages.render("photo_unreadable", who.language))
        return
    if read:
        turn.handle(payload | {"text": message_text(payload)})
        _log_photo_text(ctx, who, _exception_caused(ctx, payload), read)
    else:
        turn.handle(payload)
    if asked_by is not None and turn.conv.signal_id != asked_by:
        _photos_of_the_question(ctx, who, payload, asked_by)


def photos_to_read(payload: dict[str, Any]) -> list[dict[str, Any]]:
    """The stored images of a chat message not read yet (at most `PHOTOS_READ`): the runtime reads
    them by OCR before the message is processed, so their text is read like a typed message."""
    if "photo_text" in payload or payload.get("action"):
        return []
    return [item for item in payload.get("attachments") or [] if isinstance(item, dict) and item.get("path")
            and str(item.get("content_type") or "").startswith("image/")][:PHOTOS_READ]


def message_text(payload: dict[str, Any]) -> str:
    """What the person said: the typed text (a photo's caption) and then the text read from the photos."""
    parts = [str(payload.get("text") or "").strip()]
    parts += [str(r["text"]).strip() for r in payload.get("photo_text") or [] if r.get("status") == "read"]
    return "\n".join(p for p in parts if p)[:MAX_TEXT]


def _exception_caused(ctx: Context, payload: dict[str, Any]) -> PlantException | None:
    """The exception this message went to: its thread, or the one it opened, joined or commented on."""
    exc = _platform_thread(ctx, payload)
    if exc is None:
        found = ctx.session.exec(select(Notification.exception_id).where(
            Notification.dedupe_key.like(f"{ctx.cause}:%"),  # type: ignore[attr-defined]
            Notification.exception_id.is_not(None)).limit(1)).first()  # type: ignore[union-attr]
        exc = ctx.session.get(PlantException, found) if found else None
    return exc


def _log_photo_text(ctx: Context, who: Person, exc: PlantException | None, read: list[dict[str, Any]]) -> None:
    """On the exception the message went to: the text read from the photo, as read, so anyone can
    check what the OCR made of the paper."""
    if exc is not None and read:
        wf.log(ctx, exc, "photo_text", "\n\n".join(str(r["text"]) for r in read), who.id,
               photos=[{"sha256": r.get("sha256"), "confidence": r.get("confidence"), "words": r.get("words")}
                       for r in read])


def _photos_of_the_question(ctx: Context, who: Person, payload: dict[str, Any], asked_by: int) -> None:
    """A photo the bot asked about ("which machine?"), answered now: the exception the answer opened
    or joined gets the photo and the text read from it, as if they had come with the answer."""
    asking = ctx.session.get(Signal, asked_by)
    if asking is None or not asking.payload.get("photo_text"):
        return  # the question was about a typed message: nothing to carry over
    exc = _exception_caused(ctx, payload)
    if exc is None:
        return
    _log_photo_text(ctx, who, exc, [r for r in asking.payload.get("photo_text") or []
                                    if r.get("status") == "read" and r.get("text")])
    rows = ctx.session.exec(select(Attachment).where(
        Attachment.signal_id == asked_by, Attachment.exception_id == None)).all()  # noqa: E711
    for row in rows:
        row.exception_id = exc.id
        ctx.session.add(row)
    if rows:
        wf.log(ctx, exc, "attachment", ", ".join(f"{r.kind} {Path(r.path).name}" for r in rows), who.id,
               attachments=[{"url": attachment_link(r.public_id), "kind": r.kind, "content_type": r.content_type}
                            for r in rows])


@dataclass
class Turn:
    """One message of one person, with the conversation it continues."""

    ctx: Context
    who: Person
    channel: str | None
    signal: Signal
    reader: Reader
    conv: Conversation
    rows: RowChanges | None = None

    def handle(self, payload: dict[str, Any]) -> None:
        ctx, who = self.ctx, self.who
        text = (payload.get("text") or "").strip()
        thread = _platform_thread(ctx, payload)
        if action := payload.get("action"):
            self.press(thread, str(action), text)
            return
        if self.conv.state == State.awaiting_reason and text and self.give_reason(thread, text):
            return
        if not text:
            if thread:
                wf.comment(ctx, thread, who, "(attachment)")
                self.confirm(thread, "confirm_comment")
            return
        ex = self.reader.extract(text, language=who.language)
        if thread is None and self.conv.state != State.idle and self.answer(ex, text):
            return
        exc = thread or _code_in_text(ctx, text)
        if thread is None and exc is not None and not CODE.sub("", text).strip(" .,:;!?#-"):
            # A code alone, with no question open, says nothing to record: never a comment or a fix.
            self.reply("reply", messages.render("help", who.language))
            return
        if self.decision_part(exc, ex, text):
            return
        if exc and payload.get("attachments"):
            # What was sent, not where it is kept: the stored path and the platform's file reference
            # stay on the signal (the console links the file once bot/media.py has its row).
            wf.log(ctx, exc, "attachment", "", who.id,
                   attachments=[{"kind": item.get("kind"), "content_type": item.get("content_type")}
                                for item in payload["attachments"] if isinstance(item, dict)])
        intent = ex.intent
        if intent == "other" and queries.is_question(text) or \
                intent == "report" and exc is None and queries.asks_instead_of_reporting(text, ex):
            intent = "query"
        if intent == "query":
            said = queries.respond(ctx.session, ctx.plant, ctx.now, ex, who.language, who)
            self.reply("reply", said.text, exc, chart=said.chart.to_json() if said.chart else None)
            return
        if intent == "report" and exc is None:
            if ex.unsure_problem:  # small talk or a problem? ask the sender rather than page anyone
                self.ask(Event.asked_problem, {"text": ex.text, "extraction": ex.to_json()}, [])
            else:
                self.report(ex)
            return
        if intent == "other" and exc is None:
            # Small talk ("thanks", "lunch truck is here") outside a thread joins no exception, pages nobody.
            self.reply("reply", messages.render("help", who.language))
            return
        if exc is None and intent == "update" and ex.machine:
            exc = _open_on_machine(ctx, ex.machine)  # "still down, press 12": that exception's timeline
        if exc is None:
            exc, asked = self.involved(intent, {"intent": intent, "text": ex.text, "resolution": _resolution(ex)})
            if exc is None:
                if asked:
                    return
                if intent == "report" and ex.exception_type:
                    self.report(ex)
                elif intent in ("ack", "approve", "reject", "update"):
                    self.reply("reply", messages.render("no_open_exception", who.language))
                else:
                    self.reply("reply", messages.render("help", who.language))
                return
        self.in_thread(exc, intent, ex.text, _resolution(ex))

    # --- decision parts (routing/decisions.py) ---------------------------------------------------

    def decision_part(self, exc: PlantException | None, ex: Extraction, text: str) -> bool:
        """A decider's reschedule, material request or customer date, or an approver's word on one;
        False: the message is something else and is read as before."""
        ctx, who = self.ctx, self.who
        if ex.intent in ("approve", "reject"):
            return decisions.decide_by_text(ctx, who, exc, ex.intent, text, self.channel)
        # A question mark asks; a decision verb without one decides, however the sentence starts
        # ("Hay que mover la orden 1043" decides, "¿movemos la orden 1043?" asks).
        asked = text.rstrip().endswith("?") or \
            (queries.is_question(text) or ex.intent == "query") and not decisions.names_a_decision(text)
        if asked or exc is None and ex.intent == "report":
            return False  # a question, or a new report ("HOB-01 down since 6am"), is no decision
        if exc is not None:
            decisions.note_estimate(ctx, exc, who, ex, text)  # a repairer's "back in 2h"; read on as before
        reading = decisions.read(ctx, who, exc, ex, text)
        if reading is None:
            return False
        if reading.missing:
            self.ask(Event.asked_decision, reading.pending(text), [])
        else:
            decisions.apply(ctx, who, reading, text, self.channel)
        return True

    def complete_decision(self, ex: Extraction, text: str) -> bool:
        """The answer to a decision's question: done when it is complete, asked again when not."""
        reading = decisions.complete(self.ctx, self.who, self.conv.pending, ex, text)
        if reading is not None and not reading.missing:
            original = self.conv.pending.get("text") or ""
            self.settle(Event.answered)
            decisions.apply(self.ctx, self.who, reading, f"{original} / {text}", self.channel)
            return True
        if reading is None and _unrelated(self.ctx, ex, text):
            self.settle(Event.left)
            return False
        if reading is not None:
            self.conv.pending = reading.pending(self.conv.pending.get("text") or "")
        return self.ask_again()

    # --- steps on one exception --------------------------------------------------------------

    def in_thread(self, exc: PlantException, intent: str, text: str, resolution: dict[str, Any]) -> None:
        """What a message on `exc` means: a decision, a proposed fix, an acknowledgement or a comment."""
        ctx, who = self.ctx, self.who
        if intent in ("approve", "reject"):
            self.decide(exc, intent, text)
            return
        responder = wf.is_responder(ctx, exc, who)
        has_fix = bool(resolution.get("machine_running") or resolution.get("dispositions")
                       or resolution.get("work_order_actions"))
        if intent == "update" or (intent == "report" and responder) or (has_fix and intent != "ack"):
            if has_fix or (responder and who.id != exc.reporter_id):
                self.propose(exc, text, resolution)
            else:
                self.comment(exc, text)
            return
        if intent == "ack" or responder:
            # A paged person's first reply in the thread is an acknowledgement; later ones ("ok",
            # "still on it") are comments, not refusals of a second acknowledgement.
            if intent != "ack" and wf.check(ctx, exc, Action.acknowledge, who, explain=False) is not None:
                self.comment(exc, text)
            elif wf.acknowledge(ctx, exc, who, text, reply_channel=self.channel):
                self.confirm_ack(exc)
            return
        self.comment(exc, text)

    def press(self, thread: PlantException | None, action: str, text: str) -> None:
        """A button: `choose:E-0001` answers "which one?", `erp_retry:<id>` and `erp_abandon:<id>`
        settle a refused ERP transaction; the others act on their exception."""
        if self.conv.state == State.awaiting_reason:
            self.settle(Event.left)  # a button instead of the reason: Abandon is not pending any more
        if (erp := erp_rejections.button_action(action)) is not None:
            self.erp(*erp, text)
            return
        kind, _, code = action.partition(":")
        if kind == "part":
            decisions.press(self.ctx, self.who, action, self.channel)
            return
        if kind in YES_NO:
            if self.conv.state == State.awaiting_problem:
                self.settle_problem(kind)
            else:
                self.reply("reply", messages.render("choice_closed", self.who.language))
            return
        if kind == "choose":
            chosen = wf.exception_by_code(self.ctx, code) if code else None
            if self.conv.state == State.awaiting_which_exception and chosen and chosen.code in self.conv.options:
                self.complete(chosen)
            else:
                self.reply("reply", messages.render("which_dropped", self.who.language))
            return
        exc = thread or (wf.exception_by_code(self.ctx, code) if code else None)
        if exc is None:
            exc, asked = self.involved(kind, {"action": kind, "text": text})
            if exc is None:
                if not asked:
                    self.reply("reply", messages.render("no_open_exception", self.who.language))
                return
        self.act(exc, kind, text)

    def act(self, exc: PlantException, action: str, text: str) -> None:
        ctx, who = self.ctx, self.who
        if action == "ack":
            if wf.acknowledge(ctx, exc, who, text, reply_channel=self.channel):  # False: refused, and told why
                self.confirm_ack(exc)
        elif action in ("approve", "reject"):
            self.decide(exc, action, text)
        elif action == "propose":
            self.propose(exc, text or "fix proposed", {})
        else:
            self.reply("reply", messages.render("help", who.language))

    def erp(self, action: Action, public_id: str, text: str) -> None:
        """Retry or abandon a refused ERP transaction; an abandon without a reason asks for it first."""
        ctx, who = self.ctx, self.who
        txn = erp_rejections.transaction(ctx.session, ctx.plant.id, public_id)
        exc = ctx.session.get(PlantException, txn.exception_id) if txn and txn.exception_id is not None else None
        if txn is None or exc is None or self.rows is None:
            self.reply("reply", messages.render("erp_unknown", who.language))
            return
        if action is Action.erp_abandon and not text.strip() and txn.status == OutboxStatus.rejected:
            if (refused := erp_rejections.refusal(ctx, txn, action, who)) is not None:
                wf.refuse(ctx, exc, who, refused, self.channel)
                return
            self.ask(Event.asked_reason, {"transaction": txn.public_id, "code": exc.code, "kind": txn.kind}, [])
            return
        erp_rejections.settle(ctx, txn, action, who, text.strip(), self.rows, self.channel)

    def give_reason(self, thread: PlantException | None, text: str) -> bool:
        """The message after Abandon is its reason (in no thread, or in the exception's own);
        False: it was written in another exception's thread, so Abandon is dropped and it is read as usual."""
        pending = dict(self.conv.pending)
        if thread is not None and thread.code != pending.get("code"):
            self.settle(Event.left)
            return False
        self.settle(Event.answered)
        txn = erp_rejections.transaction(self.ctx.session, self.ctx.plant.id, str(pending.get("transaction") or ""))
        if txn is None or self.rows is None:
            self.reply("reply", messages.render("erp_unknown", self.who.language))
        else:
            erp_rejections.settle(self.ctx, txn, Action.erp_abandon, self.who, text, self.rows, self.channel)
        return True

    def decide(self, exc: PlantException, decision: str, text: str) -> None:
        if wf.decide(self.ctx, exc, self.who, decision, text, reply_channel=self.channel):
            self.confirm(exc, "confirm_approved" if decision == "approve" else "confirm_rejected")

    def propose(self, exc: PlantException, text: str, resolution: dict[str, Any]) -> None:
        # False: refused (and told); a closed exception takes the text as a comment instead.
        if not wf.propose(self.ctx, exc, self.who, text, resolution, reply_channel=self.channel):
            return
        if exc.status == "proposed":
            self.confirm(exc, "confirm_proposal", role=exc.approver_role)
        else:
            self.confirm(exc, "confirm_comment")

    def comment(self, exc: PlantException, text: str) -> None:
        wf.comment(self.ctx, exc, self.who, text)
        self.confirm(exc, "confirm_comment")

    def confirm_ack(self, exc: PlantException) -> None:
        reporter = wf.person(self.ctx, exc.reporter_id)
        if reporter and reporter.id != self.who.id:
            self.confirm(exc, "confirm_ack_told", name=reporter.name)
        else:
            self.confirm(exc, "confirm_ack")

    # --- which exception ---------------------------------------------------------------------

    def involved(self, intent: str, pending: dict[str, Any]) -> tuple[PlantException | None, bool]:
        """Without a thread: the person's one exception; with several, ask which (True: asked)."""
        ctx, who = self.ctx, self.who
        open_now = wf.open_exceptions(ctx)
        if intent in ("approve", "reject"):
            candidates = [e for e in open_now if e.status == "proposed" and e.approver_role in who.roles]
        else:
            paged = wf.responder_exception_ids(ctx, who, [e for e in open_now if e.reporter_id != who.id])
            candidates = [e for e in open_now if e.reporter_id == who.id or e.id in paged]
            if intent == "ack":  # never offer one the lifecycle would refuse (already acknowledged by them)
                candidates = [e for e in candidates
                              if wf.check(ctx, e, Action.acknowledge, who, explain=False) is None]
        if len(candidates) == 1:
            return candidates[0], False
        if not candidates:
            return None, False
        self.ask(Event.asked_which, pending, [e.code for e in candidates])
        return None, True

    def complete(self, exc: PlantException) -> None:
        """The answer named `exc`: do what was pending there, with its original text."""
        pending = dict(self.conv.pending)
        self.settle(Event.answered, exc.code)
        if pending.get("action"):
            self.act(exc, pending["action"], pending.get("text") or "")
        else:
            self.in_thread(exc, pending.get("intent") or "other", pending.get("text") or "",
                           pending.get("resolution") or {})

    def choose(self, text: str) -> PlantException | None:
        """The offered exception an answer names: its code, a number, an ordinal or its machine."""
        ctx = self.ctx
        options = [e for e in (wf.exception_by_code(ctx, c) for c in self.conv.options)
                   if e is not None and e.status in wf.OPEN_STATUSES]
        by_code = {e.code: e for e in options}
        if match := CODE.search(text):
            return by_code.get(f"E-{int(match.group(1)):04d}")
        if match := NUMBER_ANSWER.match(text):
            number = int(match.group(1))
            if f"E-{number:04d}" in by_code:
                return by_code[f"E-{number:04d}"]
            return options[number - 1] if 1 <= number <= len(options) else None
        for word in re.findall(r"[^\W_]+", text.lower()):
            if word in ORDINALS and -len(options) <= ORDINALS[word] < len(options):
                return options[ORDINALS[word]]
        machines = list(dict.fromkeys(e.machine_id for e in options if e.machine_id))
        if machines and (machine := self.reader.match_machine(text, machines)):
            owners = [e for e in options if e.machine_id == machine]
            if len(owners) == 1:
                return owners[0]
        return None

    # --- answers -----------------------------------------------------------------------------

    def answer(self, ex: Extraction, text: str) -> bool:
        """Read the message as the answer to the open question; False: it is something else."""
        if self.conv.state == State.awaiting_decision:
            return self.complete_decision(ex, text)
        if self.conv.state == State.awaiting_problem:
            said = _yes_or_no(text)
            if said is None:
                self.settle(Event.left)  # not an answer: read the message on its own
                return False
            self.settle_problem(said)
            return True
        if self.conv.state == State.awaiting_which_exception:
            if chosen := self.choose(text):
                self.complete(chosen)
                return True
            if _unrelated(self.ctx, ex, text):
                self.settle(Event.left)
                return False
            return self.ask_again()
        if ex.intent in ("query", "ack", "approve", "reject") or queries.is_question(text) or \
                _code_in_text(self.ctx, text):
            self.settle(Event.left)
            return False
        return self.complete_report(ex, text)

    def complete_report(self, answer: Extraction, text: str) -> bool:
        conv = self.conv
        original = conv.pending.get("extraction") or {}
        machine, exception_type = original.get("machine"), original.get("exception_type")
        if conv.state == State.awaiting_machine:
            machine = answer.machine if answer.machine and (not conv.options or answer.machine in conv.options) \
                else self.reader.match_machine(text, conv.options or None)
            if machine is None:
                if answer.intent == "report" and answer.exception_type:
                    self.settle(Event.left)  # a new report replaces the unanswered question
                    return False
                return self.ask_again()
            exception_type = exception_type or answer.exception_type
            if not exception_type:
                self.ask(Event.asked_type, {**conv.pending, "extraction": {**original, "machine": machine}}, [])
                return True
        else:
            exception_type = answer.exception_type or _type_from_words(text)
            if exception_type is None:
                return self.ask_again()
            machine = machine or answer.machine
        pending_text = conv.pending.get("text") or ""
        self.settle(Event.answered)
        self.open_or_join(f"{pending_text} / {answer.text}", exception_type, machine, original)
        return True

    def settle_problem(self, said: str) -> None:
        """The answer to "Is this a problem to report?": yes reads the message on as a report
        (asking for its machine or kind if those are missing), no records nothing."""
        pending = dict(self.conv.pending)
        self.settle(Event.answered)
        if said == "yes":
            self.report(_extraction(pending.get("extraction") or {"text": pending.get("text") or ""}))
        else:
            self.reply("reply", messages.render("not_reported", self.who.language))

    # --- questions ---------------------------------------------------------------------------

    def ask(self, event: Event, pending: dict[str, Any], options: list[str]) -> None:
        conv = self.conv
        if (State(conv.state), event) not in TRANSITIONS:
            self.settle(Event.left)  # a new question replaces the unanswered one
        transition(conv, event)
        conv.pending, conv.options, conv.questions = pending, options, 1
        conv.signal_id, conv.channel = self.signal.id, self.channel
        conv.asked_at, conv.expires_at = self.ctx.now, self.ctx.now + QUESTION_TTL
        self.ctx.session.add(conv)
        about = wf.exception_by_code(self.ctx, pending["code"]) if conv.state == State.awaiting_reason else None
        self.reply("question", self.question(), about, buttons=self.choices())

    def ask_again(self) -> bool:
        conv = self.conv
        if conv.questions >= MAX_QUESTIONS:
            state, pending = State(conv.state), dict(conv.pending)
            self.settle(Event.gave_up)
            if state == State.awaiting_which_exception:
                self.reply("reply", messages.render("which_dropped", self.who.language))
            elif state == State.awaiting_decision:
                self.reply("reply", messages.render("part_dropped", self.who.language))
            else:  # open with what is known rather than lose the report
                original = pending.get("extraction") or {}
                self.open_or_join(pending.get("text") or "", original.get("exception_type") or "other",
                                  original.get("machine"), original)
            return True
        transition(conv, Event.asked_again)
        conv.questions += 1
        conv.expires_at = self.ctx.now + QUESTION_TTL
        self.ctx.session.add(conv)
        self.reply("question", self.question(), buttons=self.choices())
        return True

    def question(self) -> str:
        conv, language = self.conv, self.who.language
        if conv.state == State.awaiting_problem:
            return messages.render("ask_problem", language)
        if conv.state == State.awaiting_reason:
            return messages.render("ask_abandon_reason", language, code=conv.pending.get("code") or "-",
                                   kind=conv.pending.get("kind") or "-")
        if conv.state == State.awaiting_type:
            return messages.render("ask_type", language)
        if conv.state == State.awaiting_decision:
            return decisions.question(conv.pending.get("decision") or {}, language)
        if conv.state == State.awaiting_which_exception:
            lines = []
            for number, code in enumerate(conv.options[:LISTED], start=1):
                exc = wf.exception_by_code(self.ctx, code)
                place = wf.machine_label(self.ctx, exc.machine_id) if exc and exc.machine_id else \
                    (exc.area_id if exc and exc.area_id else "-")
                lines.append(messages.render("option", language, number=number, code=code, machine=place,
                                             type=messages.type_name(exc.type, language) if exc else "?"))
            lines += [", ".join(conv.options[LISTED:])] if len(conv.options) > LISTED else []
            return messages.render("ask_which", language, options="; ".join(lines))
        if conv.options:
            return messages.render("ask_machine_choice", language, options=", ".join(conv.options))
        return messages.render("ask_machine", language)

    def choices(self) -> tuple[str, ...]:
        """The buttons of a question: `yes` / `no` for "is this a problem?", one `choose:<code>` per
        listed exception for a "which one?"; the others have none."""
        if self.conv.state == State.awaiting_problem:
            return YES_NO
        if self.conv.state != State.awaiting_which_exception:
            return ()
        return tuple(f"choose:{code}" for code in self.conv.options[:LISTED])

    def settle(self, event: Event, chosen: str | None = None) -> None:
        """Move the conversation by `event`; a "which one?" left behind loses its buttons (`chosen`: the answer)."""
        state, asked_at = State(self.conv.state), self.conv.asked_at
        transition(self.conv, event)
        if self.conv.id is not None:
            self.ctx.session.add(self.conv)
        if state == State.awaiting_which_exception:
            _withdraw_choices(self.ctx, self.who, asked_at, chosen)

    # --- reports -----------------------------------------------------------------------------

    def report(self, ex: Extraction) -> None:
        """Open (or join) an exception, unless the machine or the type is missing: then ask back."""
        if self.conv.state != State.idle:
            self.settle(Event.left)  # a new report replaces an unanswered question
        pending = {"text": ex.text, "extraction": ex.to_json()}
        exception_type = ex.exception_type
        if ex.machine_candidates and not ex.machine:
            self.ask(Event.asked_machine, pending, list(ex.machine_candidates))
        elif not ex.machine and not ex.work_order and exception_type in wf.NEEDS_MACHINE:
            self.ask(Event.asked_machine, pending, [])
        elif not exception_type or (exception_type == "other" and ex.clarify and ex.confidence < TYPE_CONFIDENCE):
            self.ask(Event.asked_type, pending, [])
        else:
            self.open_or_join(ex.text, exception_type, ex.machine, ex.to_json())

    def open_or_join(self, text: str, exception_type: str, machine: str | None, original: dict[str, Any]) -> None:
        ctx, who = self.ctx, self.who
        work_order, material = original.get("work_order"), original.get("material")
        area = wf.area_for(ctx, machine, material, work_order, who)
        existing = wf.find_correlated(ctx, exception_type=exception_type, machine_id=machine, area_id=area,
                                      work_order_id=work_order)
        if existing:
            wf.join_report(ctx, existing, who, text, work_order, self.channel)
            return
        exc = wf.open_exception(ctx, exception_type=exception_type, text=text, reporter=who, machine_id=machine,
                          work_order_id=work_order, material_id=material,
                          severity=original.get("severity") or "medium",
                          language=who.language or original.get("language") or "en", reply_channel=self.channel)
        offer_options(ctx, exc)

    # --- answers to the person -----------------------------------------------------------------

    def reply(self, kind: str, text: str, exc: PlantException | None = None, buttons: tuple[str, ...] = (),
              chart: dict[str, Any] | None = None) -> None:
        wf.notify(self.ctx, self.who, kind, text, exc=exc, role=(self.who.roles or [None])[0], buttons=buttons,
                  reply_channel=self.channel, chart=chart)

    def confirm(self, exc: PlantException, key: str, **values: Any) -> None:
        """Tell the sender what was recorded on `exc` and what happens next."""
        self.reply("confirmation", messages.render(key, self.who.language, code=exc.code, **values), exc)


# --- reading helpers -------------------------------------------------------------------------


def _conversation(ctx: Context, who: Person) -> Conversation:
    """The person's conversation (locked on PostgreSQL: their messages are read one at a time);
    an expired question is dropped first. A person never asked anything has no row until asked."""
    conv = ctx.session.exec(select(Conversation).where(
        Conversation.plant_id == ctx.plant.id, Conversation.person_id == who.id).with_for_update()).first()
    if conv is None:
        # Every message of someone never asked builds this: the JSON columns are given, since
        # their default factories cost pydantic a signature inspection each (0.5 against 0.1 ms).
        return Conversation(plant_id=ctx.plant.id, person_id=who.id, state=State.idle, pending={}, options=[])
    if conv.state != State.idle and conv.expires_at is not None and conv.expires_at <= ctx.now:
        state, asked_at = State(conv.state), conv.asked_at
        transition(conv, Event.expired)
        ctx.session.add(conv)
        if state == State.awaiting_which_exception:
            _withdraw_choices(ctx, who, asked_at, None)
    return conv


def _withdraw_choices(ctx: Context, who: Person, asked_at: datetime | None, chosen: str | None) -> None:
    """Take the `choose:` buttons off the "which one?" messages of the question just settled
    (asked at `asked_at`, asked again since): a `buttons_update` with none left and a status line,
    so the platforms that can edit a message (Slack, Telegram) remove them and the others say so."""
    if asked_at is None:
        return
    questions = ctx.session.exec(select(Notification).where(
        Notification.plant_id == ctx.plant.id, Notification.person_id == who.id, Notification.kind == "question",
        Notification.created_at >= asked_at).order_by(Notification.id)).all()
    asked = [n for n in questions if n.id is not None and any(b.startswith("choose:") for b in n.buttons)]
    if not asked:
        return
    done = set(ctx.session.exec(select(Notification.updates_id).where(
        Notification.kind == "buttons_update", Notification.updates_id.in_([n.id for n in asked]))))  # type: ignore[union-attr]
    line = messages.render("choice_answered", who.language, code=chosen) if chosen else \
        messages.render("choice_closed", who.language)
    for row in asked:
        if row.id not in done:
            wf.replace_buttons(ctx, row, [], line, "answered" if chosen else "closed")


def _unrelated(ctx: Context, ex: Extraction, text: str) -> bool:
    """A message that is plainly something else than an answer: a question, a new report, another thread."""
    return ex.intent == "query" or queries.is_question(text) or bool(ex.intent == "report" and ex.exception_type) \
        or _code_in_text(ctx, text) is not None


def _resolution(ex: Extraction) -> dict[str, Any]:
    if ex.resolution is None:
        return {}
    data = asdict(ex.resolution)
    data["dispositions"] = [dict(d) for d in data.get("dispositions", ())]
    return data


def _yes_or_no(text: str) -> str | None:
    """"yes" / "no" when the message is one of those words (in any of the four languages), else None."""
    words = re.findall(r"[^\W\d_]+", text.lower())
    if not words or len(words) > 3:
        return None
    for said, forms in _ANSWER_WORDS.items():
        if words[0] in forms:
            return said
    return None


def _extraction(data: dict[str, Any]) -> Extraction:
    """The stored reading of a message back as an `Extraction` (the pending report of a question)."""
    fields = {k: v for k, v in data.items() if k in Extraction.__dataclass_fields__ and k not in
              ("quantities", "resolution")}
    return Extraction(**fields, quantities=[Quantity(**q) for q in data.get("quantities") or ()])


def _open_on_machine(ctx: Context, machine: str) -> PlantException | None:
    """The one open exception on `machine`, if there is exactly one: where an update about it belongs."""
    found = [e for e in wf.open_exceptions(ctx) if e.machine_id == machine]
    return found[0] if len(found) == 1 else None


def _type_from_words(text: str) -> str | None:
    lowered = text.lower()
    for exception_type, words in TYPE_WORDS.items():
        if any(re.search(rf"\b{re.escape(w)}\b", lowered) for w in words):
            return exception_type
    return None


def _platform_thread(ctx: Context, payload: dict[str, Any]) -> PlantException | None:
    """The exception the channel says a message belongs to: its thread, or a quoted bot message."""
    ref = payload.get("exception_ref")
    if ref:
        ref = str(ref)[:40]
        found = ctx.session.get(PlantException, int(ref)) if ref.isdigit() and len(ref) <= 9 else \
            wf.exception_by_code(ctx, ref)
        if found:
            return found
    if reply_to := payload.get("reply_to"):
        note = ctx.session.exec(select(Notification).where(Notification.platform_message_id == str(reply_to))).first()
        if note and note.exception_id:
            return ctx.session.get(PlantException, note.exception_id)
    return None


def _code_in_text(ctx: Context, text: str) -> PlantException | None:
    """A message that names an exception by its code ("E-0042 fixed") belongs to it."""
    if match := CODE.search(text):
        return wf.exception_by_code(ctx, f"E-{int(match.group(1)):04d}")
    return None


# --- strangers -------------------------------------------------------------------------------


def _reply_unregistered(ctx: Context, payload: dict[str, Any], reader: Reader) -> None:
    """Tell an unknown sender they are not registered, and nothing else about the plant; once an hour at most."""
    channel, address = str(payload.get("channel") or "console"), str(payload.get("address") or "?")
    last = ctx.session.get(StrangerReply, (channel, address), with_for_update=True)
    if last is not None and ctx.now - last.replied_at < STRANGER_QUIET:
        return
    language = stranger_language(reader, payload.get("text") or "", payload.get("language"))
    if last is None:
        last = StrangerReply(channel=channel, address=address, plant_id=ctx.plant.id, replied_at=ctx.now)
    last.replied_at = ctx.now
    ctx.session.add(last)
    ctx.session.add(Notification(
        plant_id=ctx.plant.id, dedupe_key=f"{ctx.cause}:not_registered:{channel}:{address}",
        person_id=f"unregistered:{address}", kind="not_registered", channel=channel, address=address,
        language=language, text=messages.render("not_registered", language), created_at=ctx.now,
        next_attempt_at=ctx.now,
    ))


def stranger_language(reader: Reader, text: str, reported: str | None) -> str:
    """The language of someone the plant does not know: what their message is written in.

    Every channel alike: the language the platform reports (Telegram's `language_code`, a Slack
    locale, the bridge's `language`, WhatsApp's country code) is the hint that decides when the
    text is too short or unclear to tell, and English when there is neither.
    """
    hint = (reported or "").replace("_", "-").split("-")[0].lower()
    hint_language = hint if hint in messages.LANGUAGES else None
    if not text.strip():
        return hint_language or "en"
    detected = reader.extract(text, language=hint_language).language
    return detected if detected in messages.LANGUAGES else hint_language or "en"

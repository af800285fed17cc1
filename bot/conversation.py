"""Conversation handling: one stored chat signal -> the lifecycle step the person meant.

The channel has already stored the message as a signal and resolved the sender to a person
(or not). Here we read it (NLP), find the thread it belongs to, complete a pending question,
and call the routing step. All in the caller's database transaction.
"""

from __future__ import annotations

import re
from dataclasses import asdict
from typing import Any, Protocol

from sqlmodel import select

from models import Notification, PendingReport, Person, PlantException, Signal
from nlp.extraction import Extraction
from routing import messages, queries
from routing import workflow as wf
from routing.workflow import Context

CODE = re.compile(r"\bE-?(\d{1,6})\b", re.I)
TYPE_CONFIDENCE = 0.5  # below this an "other" report is a guess: ask what kind of problem it is
MAX_QUESTIONS = 2  # after this many unanswered questions the report opens with what is known
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


class Reader(Protocol):
    """What conversation needs from the NLP layer."""

    def extract(self, text: str, language: str | None = None) -> Extraction: ...

    def match_machine(self, text: str, candidates: list[str] | None = None) -> str | None: ...


def handle_chat(ctx: Context, signal: Signal, reader: Reader) -> None:
    payload: dict[str, Any] = signal.payload
    channel = payload.get("channel")
    who = wf.person(ctx, signal.person_id)
    if who is None:
        _reply_unregistered(ctx, payload, reader)
        return
    text = (payload.get("text") or "").strip()
    exc = _thread(ctx, payload, text)
    action = payload.get("action")
    if action:
        _handle_action(ctx, who, exc, action, text, channel)
        return
    if not text:
        if exc:
            wf.comment(ctx, exc, who, "(attachment)")
        return
    extraction = reader.extract(text, language=who.language)
    _record_attachment_note(ctx, exc, who, payload)
    if exc is None and extraction.intent not in ("query", "ack", "approve", "reject"):
        pending = _pending(ctx, who)
        if pending and _complete_pending(ctx, who, pending, extraction, reader, channel):
            return
    intent = extraction.intent
    if intent == "other" and queries.is_question(text):
        intent = "query"
    if intent == "query":
        _reply(ctx, who, "reply", queries.answer(ctx.session, ctx.plant, ctx.now, extraction, who.language), exc, channel)
        return
    if intent == "report" and exc is None:
        report(ctx, who, extraction, channel, signal)
        return
    target = exc or _involved_exception(ctx, who, intent, channel)
    if target is None:
        if intent in ("report", "update") and extraction.exception_type:
            report(ctx, who, extraction, channel, signal)
        elif intent == "other":
            _reply(ctx, who, "reply", messages.render("help", who.language), None, channel)
        return
    _in_thread(ctx, who, target, extraction, channel)


def _in_thread(ctx: Context, who: Person, exc: PlantException, ex: Extraction, channel: str | None) -> None:
    intent = ex.intent
    responder = wf.is_responder(ctx, exc, who)
    if intent in ("approve", "reject"):
        wf.decide(ctx, exc, who, intent, ex.text, reply_channel=channel)
        return
    resolution = _resolution(ex)
    has_fix = bool(resolution.get("machine_running") or resolution.get("dispositions")
                   or resolution.get("work_order_actions"))
    if intent == "update" or (intent == "report" and responder) or (has_fix and intent != "ack"):
        if has_fix or (responder and who.id != exc.reporter_id):
            wf.propose(ctx, exc, who, ex.text, resolution, reply_channel=channel)
            return
        wf.comment(ctx, exc, who, ex.text)
        return
    if intent == "ack" or responder:
        # Any reply in the thread from a paged person is an acknowledgement.
        if not wf.acknowledge(ctx, exc, who, ex.text, reply_channel=channel):
            wf.comment(ctx, exc, who, ex.text)
        return
    wf.comment(ctx, exc, who, ex.text)


def _resolution(ex: Extraction) -> dict[str, Any]:
    if ex.resolution is None:
        return {}
    data = asdict(ex.resolution)
    data["dispositions"] = [dict(d) for d in data.get("dispositions", ())]
    return data


def _handle_action(ctx: Context, who: Person, exc: PlantException | None, action: str, text: str,
                   channel: str | None) -> None:
    exc = exc or _involved_exception(ctx, who, action, channel)
    if exc is None:
        return
    if action == "ack":
        if not wf.acknowledge(ctx, exc, who, text, reply_channel=channel):
            wf.comment(ctx, exc, who, "acknowledged (again)")
    elif action in ("approve", "reject"):
        wf.decide(ctx, exc, who, action, text, reply_channel=channel)
    elif action == "propose":
        wf.propose(ctx, exc, who, text or "fix proposed", {}, reply_channel=channel)
    else:
        wf.comment(ctx, exc, who, f"unknown action {action}")


# --- reports and questions ---------------------------------------------------------------


def report(ctx: Context, who: Person, ex: Extraction, channel: str | None, signal: Signal) -> None:
    """Open (or join) an exception, unless the machine or the type is missing: then ask back."""
    exception_type = ex.exception_type
    if ex.machine_candidates and not ex.machine:
        _ask(ctx, who, signal, ex, "machine", list(ex.machine_candidates), channel)
        return
    if not ex.machine and not ex.work_order and exception_type in wf.NEEDS_MACHINE:
        _ask(ctx, who, signal, ex, "machine", [], channel)
        return
    if not exception_type or (exception_type == "other" and ex.clarify and ex.confidence < TYPE_CONFIDENCE):
        _ask(ctx, who, signal, ex, "type", [], channel)
        return
    _open_or_join(ctx, who, ex.text, exception_type, ex.machine, ex.work_order, ex.material, ex.severity,
                  ex.language, channel)


def _open_or_join(ctx: Context, who: Person, text: str, exception_type: str, machine: str | None,
                  work_order: str | None, material: str | None, severity: str, language: str,
                  channel: str | None) -> PlantException:
    area = wf.area_for(ctx, machine, material, work_order, who)
    existing = wf.find_correlated(ctx, exception_type=exception_type, machine_id=machine, area_id=area,
                                  work_order_id=work_order)
    if existing:
        wf.join_report(ctx, existing, who, text, work_order, channel)
        return existing
    return wf.open_exception(ctx, exception_type=exception_type, text=text, reporter=who, machine_id=machine,
                             work_order_id=work_order, material_id=material, severity=severity,
                             language=who.language or language, reply_channel=channel)


def _ask(ctx: Context, who: Person, signal: Signal, ex: Extraction, missing: str, candidates: list[str],
         channel: str | None) -> None:
    ctx.session.add(PendingReport(
        plant_id=ctx.plant.id, person_id=who.id, signal_id=signal.id, text=ex.text, extraction=ex.to_json(),
        missing=missing, candidates=candidates, created_at=ctx.now,
    ))
    _reply(ctx, who, "question", _question(who, missing, candidates), None, channel)


def _question(who: Person, missing: str, candidates: list[str]) -> str:
    if missing == "type":
        return messages.render("ask_type", who.language)
    if candidates:
        return messages.render("ask_machine_choice", who.language, options=", ".join(candidates))
    return messages.render("ask_machine", who.language)


def _pending(ctx: Context, who: Person) -> PendingReport | None:
    return ctx.session.exec(select(PendingReport).where(
        PendingReport.plant_id == ctx.plant.id, PendingReport.person_id == who.id,
        PendingReport.resolved_at == None,  # noqa: E711
    ).order_by(PendingReport.id.desc())).first()  # type: ignore[union-attr]


def _complete_pending(ctx: Context, who: Person, pending: PendingReport, answer: Extraction, reader: Reader,
                      channel: str | None) -> bool:
    """Use the answer to complete the pending report; False if the message is something else."""
    original = pending.extraction
    machine, exception_type = original.get("machine"), original.get("exception_type")
    if pending.missing == "machine":
        machine = answer.machine if answer.machine and (not pending.candidates or answer.machine in pending.candidates) \
            else reader.match_machine(answer.text, pending.candidates or None)
        if machine is None:
            if answer.intent == "report" and answer.exception_type:
                pending.resolved_at = ctx.now  # a new report replaces the unanswered question
                ctx.session.add(pending)
                return False
            return _ask_again(ctx, who, pending, channel)
        exception_type = exception_type or answer.exception_type
    else:
        exception_type = answer.exception_type or _type_from_words(answer.text)
        if exception_type is None:
            return _ask_again(ctx, who, pending, channel)
        machine = machine or answer.machine
    pending.resolved_at = ctx.now
    ctx.session.add(pending)
    if not exception_type:
        pending.resolved_at = None
        pending.missing = "type"
        return _ask_again(ctx, who, pending, channel)
    _open_or_join(ctx, who, f"{pending.text} / {answer.text}", exception_type, machine, original.get("work_order"),
                  original.get("material"), original.get("severity") or "medium", original.get("language") or "en",
                  channel)
    return True


def _ask_again(ctx: Context, who: Person, pending: PendingReport, channel: str | None) -> bool:
    asked = ctx.session.exec(select(Notification.id).where(
        Notification.person_id == who.id, Notification.kind == "question",
        Notification.created_at >= pending.created_at)).all()
    if len(asked) >= MAX_QUESTIONS:
        # Stop asking: open with what is known rather than lose the report.
        pending.resolved_at = ctx.now
        ctx.session.add(pending)
        original = pending.extraction
        _open_or_join(ctx, who, pending.text, original.get("exception_type") or "other", None,
                      original.get("work_order"), original.get("material"), original.get("severity") or "medium",
                      original.get("language") or "en", channel)
        return True
    _reply(ctx, who, "question", _question(who, pending.missing, pending.candidates), None, channel)
    return True


def _type_from_words(text: str) -> str | None:
    lowered = text.lower()
    for exception_type, words in TYPE_WORDS.items():
        if any(re.search(rf"\b{re.escape(w)}\b", lowered) for w in words):
            return exception_type
    return None


# --- threads -----------------------------------------------------------------------------


def _thread(ctx: Context, payload: dict[str, Any], text: str) -> PlantException | None:
    """The exception a message belongs to: the platform thread, a quoted bot message, or a code in the text."""
    ref = payload.get("exception_ref")
    if ref:
        found = wf.exception_by_code(ctx, str(ref)) if not str(ref).isdigit() else \
            ctx.session.get(PlantException, int(ref))
        if found:
            return found
    if reply_to := payload.get("reply_to"):
        note = ctx.session.exec(select(Notification).where(Notification.platform_message_id == str(reply_to))).first()
        if note and note.exception_id:
            return ctx.session.get(PlantException, note.exception_id)
    if match := CODE.search(text):
        return wf.exception_by_code(ctx, f"E-{int(match.group(1)):04d}")
    return None


def _involved_exception(ctx: Context, who: Person, intent: str, channel: str | None) -> PlantException | None:
    """Without a thread: the person's single open conversation, or ask which one."""
    candidates = []
    open_now = wf.open_exceptions(ctx)
    paged = wf.responder_exception_ids(ctx, who, [e for e in open_now if e.reporter_id != who.id])
    for exc in open_now:
        involved = exc.reporter_id == who.id or exc.id in paged
        if intent in ("approve", "reject"):
            involved = exc.status == "proposed" and exc.approver_role in who.roles
        if involved:
            candidates.append(exc)
    if len(candidates) == 1:
        return candidates[0]
    if len(candidates) > 1:
        codes = ", ".join(e.code for e in candidates)
        _reply(ctx, who, "question", messages.render("which_exception", who.language, codes=codes,
                                                     example=candidates[-1].code), None, channel)
    elif intent in ("ack", "approve", "reject", "update"):
        _reply(ctx, who, "reply", messages.render("no_open_exception", who.language), None, channel)
    return None


def _reply(ctx: Context, who: Person, kind: str, text: str, exc: PlantException | None, channel: str | None) -> None:
    wf.notify(ctx, who, kind, text, exc=exc, role=(who.roles or [None])[0], reply_channel=channel)


def _reply_unregistered(ctx: Context, payload: dict[str, Any], reader: Reader) -> None:
    """Tell an unknown sender they are not registered, and nothing else about the plant."""
    channel, address = payload.get("channel") or "console", payload.get("address") or "?"
    language = stranger_language(reader, payload.get("text") or "", payload.get("language"))
    key = f"{ctx.cause}:not_registered:{channel}:{address}"
    if ctx.session.exec(select(Notification.id).where(Notification.dedupe_key == key)).first():
        return
    ctx.session.add(Notification(
        plant_id=ctx.plant.id, dedupe_key=key, person_id=f"unregistered:{address}", kind="not_registered",
        channel=channel, address=address, language=language, text=messages.render("not_registered", language),
        created_at=ctx.now, next_attempt_at=ctx.now,
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


def _record_attachment_note(ctx: Context, exc: PlantException | None, who: Person, payload: dict[str, Any]) -> None:
    if exc and payload.get("attachments"):
        wf.log(ctx, exc, "attachment", "", who.id, attachments=payload["attachments"])

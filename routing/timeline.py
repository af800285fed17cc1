"""An exception's timeline as sentences people read: "Tom Fischer acknowledged — on my way".

The lifecycle writes timeline events as a kind plus data (ids, seconds, lists) so that code can
read them back; the console and the replay tables show them as one sentence each, in the
reader's language, built here from the kind and the data. An event whose sentence would say
nothing (an impact analysis that found nothing) has none; a kind this module does not know gets
a generic sentence, never its raw data.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from routing import messages


def attachment_link(public_id: str) -> str:
    """The console's link to an attachment (served by bot/webhooks.py), as an `attachment` event carries it."""
    return f"/attachments/{public_id}"


@dataclass(frozen=True)
class Line:
    """What a sentence is made of: a timeline row, from the store or from the replay JSON."""

    kind: str
    person: str | None = None  # a person id
    text: str = ""
    data: Mapping[str, Any] = field(default_factory=dict)


@dataclass
class _Story:
    """What earlier events said that a later one needs: how long a role had to acknowledge,
    and which roles had nobody on shift (the reason an escalation gives)."""

    language: str
    names: Mapping[str, str]
    machine: str
    where: str
    ack_within: dict[str, int] = field(default_factory=dict)
    nobody: set[str] = field(default_factory=set)

    def name(self, person_id: str | None) -> str:
        if not person_id:
            return messages.render("someone", self.language)
        return self.names.get(person_id) or messages.words(person_id)

    def people(self, ids: Sequence[str] | None) -> str:
        return ", ".join(self.name(p) for p in ids or [])

    def say(self, key: str, **values: Any) -> str:
        return messages.render(key, self.language, **values)

    def said(self, sentence: str, text: str) -> str:
        """A sentence followed by what the person wrote, when they wrote something."""
        text = " ".join((text or "").split())
        return self.say("tl_said", sentence=sentence, text=text) if text else sentence


def _opened(story: _Story, line: Line) -> str:
    problem = messages.problem_name(str(line.data.get("type") or "other"), story.language)
    if line.person:
        return story.said(story.say("tl_opened", name=story.name(line.person), problem=problem, where=story.where),
                          line.text)
    key = "tl_opened_by_inspection" if line.data.get("type") == "quality" else "tl_opened_by_signal"
    return story.said(story.say(key, problem=problem, where=story.where), line.text)


def _impact(story: _Story, line: Line) -> str | None:
    parts = []
    if line.data.get("work_orders"):
        parts.append(story.say("tl_impact_work_orders", work_orders=", ".join(map(str, line.data["work_orders"]))))
    if line.data.get("customer_orders_at_risk"):
        parts.append(story.say("tl_impact_customers",
                               customer_orders=", ".join(map(str, line.data["customer_orders_at_risk"]))))
    staging = line.data.get("staging_conflict") or {}
    if isinstance(staging, Mapping) and staging.get("material"):
        work_order = staging.get("work_order") or ", ".join(map(str, staging.get("work_orders") or []))
        parts.append(story.say("tl_impact_staging", work_order=work_order or "-", material=staging["material"]))
    return story.say("tl_impact", parts="; ".join(parts)) if parts else None


def _routed(story: _Story, line: Line) -> str:
    role = str(line.data.get("role") or "")
    seconds = line.data.get("ack_within")
    names = story.people(line.data.get("people"))
    if isinstance(seconds, int | float) and seconds > 0:
        story.ack_within[role] = int(seconds)
        return story.say("tl_routed_ack", names=names, role=role, ack=messages.duration(seconds, story.language))
    return story.say("tl_routed", names=names, role=role)


def _nobody(story: _Story, line: Line) -> str:
    role = str(line.data.get("role") or "")
    story.nobody.add(role)
    return story.say("tl_nobody_available", role=role)


def _escalated(story: _Story, line: Line) -> str:
    role, to_role = str(line.data.get("role") or ""), str(line.data.get("to_role") or "")
    names = story.people(line.data.get("people"))
    if not names:
        return story.say("tl_escalated_unreached", to_role=to_role)
    if role in story.nobody:
        return story.say("tl_escalated_nobody", names=names, role=role, to_role=to_role)
    seconds = story.ack_within.get(role)
    ack = messages.duration(seconds, story.language) if seconds else "-"
    return story.say("tl_escalated_late", names=names, to_role=to_role, ack=ack)


def _machine_state(story: _Story, line: Line) -> str:
    key = "tl_machine_running" if line.data.get("running") else "tl_machine_stopped"
    return story.say(key, machine=story.machine)


def _erp(key: str) -> Callable[[_Story, Line], str]:
    def sentence(story: _Story, line: Line) -> str:
        return story.say(key, kind=str(line.data.get("kind") or ""), reference=line.data.get("reference") or "")
    return sentence


def _by_person(key: str, with_text: bool = True) -> Callable[[_Story, Line], str]:
    def sentence(story: _Story, line: Line) -> str:
        said = story.say(key, name=story.name(line.person))
        return story.said(said, line.text) if with_text else said
    return sentence


def _refused(story: _Story, line: Line) -> str:
    action = str(line.data.get("action") or "")
    key = "tl_refused_erp" if action.startswith("erp_") else "tl_refused_mes" if action.startswith("mes_") \
        else "tl_refused"
    return story.say(key, name=story.name(line.person), role=str(line.data.get("required_role") or ""))


def _erp_settled(key: str) -> Callable[[_Story, Line], str]:
    """A refused transaction retried or abandoned: who, which kind, and the reason they gave."""
    def sentence(story: _Story, line: Line) -> str:
        return story.said(story.say(key, name=story.name(line.person), kind=str(line.data.get("kind") or "")),
                          line.text)
    return sentence


def _erp_rejected(story: _Story, line: Line) -> str:
    return story.said(story.say("tl_erp_rejected", kind=str(line.data.get("kind") or "")), line.text)


def _mes_rejected(story: _Story, line: Line) -> str:
    return story.said(story.say("tl_mes_rejected", kind=str(line.data.get("kind") or "")), line.text)


def _channel_event(key: str) -> Callable[[_Story, Line], str]:
    def sentence(story: _Story, line: Line) -> str:
        return story.say(key, name=story.name(line.person), channel=str(line.data.get("channel") or ""))
    return sentence


def _work_order_status(story: _Story, line: Line) -> str:
    return story.say("tl_work_order_status", work_order=line.data.get("work_order") or "-",
                     status=messages.work_order_status_name(str(line.data.get("status") or ""), story.language))


def _measured(value: Any, unit: Any) -> str:
    if not isinstance(value, int | float) or isinstance(value, bool):
        return "-"
    return f"{value:g} {unit}" if isinstance(unit, str) and unit else f"{value:g}"


def _stock(story: _Story, line: Line) -> str:
    """What the stock watch found (routing/stock_watch.py): the material, usable against needed, and
    the work orders that need it; or that the stock covers them again."""
    data, unit = line.data, line.data.get("unit")
    orders = data.get("work_orders")
    return story.say(f"tl_{line.kind}", material=str(data.get("material") or "-"),
                     usable=_measured(data.get("usable"), unit), needed=_measured(data.get("needed"), unit),
                     work_orders=", ".join(str(o) for o in orders) if isinstance(orders, list) and orders else "-")


def _quality_result(story: _Story, line: Line) -> str:
    """An inspection result (routing/quality.py): the lot, the characteristic, its value, the limits and
    the quantities, whatever of them the inspection system sent."""
    data, unit = line.data, line.data.get("unit")
    key = "tl_quality_passed" if data.get("result") == "pass" else "tl_quality_failed"
    parts = [story.say(key, lot=data.get("lot") or "-", characteristic=data.get("characteristic") or "-",
                       value=_measured(data.get("value"), unit))]
    lower, upper = _measured(data.get("lower"), unit), _measured(data.get("upper"), unit)
    if data.get("lower") is not None and data.get("upper") is not None:
        parts.append(story.say("tl_quality_limits", lower=lower, upper=upper))
    elif data.get("upper") is not None:
        parts.append(story.say("tl_quality_at_most", upper=upper))
    elif data.get("lower") is not None:
        parts.append(story.say("tl_quality_at_least", lower=lower))
    if data.get("nominal") is not None:
        parts.append(story.say("tl_quality_nominal", nominal=_measured(data.get("nominal"), unit)))
    if data.get("rejected") is not None:
        parts.append(story.say("tl_quality_rejected", rejected=data["rejected"],
                               inspected=data["inspected"] if data.get("inspected") is not None else "-"))
    named = [str(data[k]) for k in ("work_order", "material") if data.get(k)]
    return "; ".join(parts) + (f" ({', '.join(named)})" if named else "")


def _quality_drift(story: _Story, line: Line) -> str:
    """A drift warning: which rule, on which side (or which way), how many results, the last one."""
    data, unit = line.data, line.data.get("unit")
    rule = "trend" if data.get("rule") == "trend" else "drift"
    side = "above" if data.get("side") == "above" else "below"
    return story.say(f"tl_quality_{rule}_{side}", characteristic=data.get("characteristic") or "-",
                     machine=data.get("machine") or story.machine, count=data.get("count") or "-",
                     centre=_measured(data.get("centre"), unit), value=_measured(data.get("value"), unit),
                     lot=data.get("lot") or "-")


def _ack_overdue(story: _Story, line: Line) -> str:
    return story.say("tl_ack_overdue", role=str(line.data.get("role") or ""))


def _decision(key: str) -> Callable[[_Story, Line], str]:
    """A decision part's step (routing/decisions.py): who, which kind, and their words."""
    def sentence(story: _Story, line: Line) -> str:
        said = story.say(key, name=story.name(line.person), kind=str(line.data.get("kind") or ""))
        return story.said(said, line.text) if line.person else said
    return sentence


def _fixed(key: str) -> Callable[[_Story, Line], str]:
    def sentence(story: _Story, _line: Line) -> str:
        return story.say(key)
    return sentence


def _similar(story: _Story, line: Line) -> str | None:
    fixes = [f for f in line.data.get("fixes") or [] if isinstance(f, Mapping)]
    return messages.past_fixes(fixes, story.language) if fixes else None


# Every kind the code writes (routing/workflow.py `log`, bot/ and signals/): kind -> sentence.
SENTENCES: dict[str, Callable[[_Story, Line], str | None]] = {
    "opened": _opened,
    "reported_again": _by_person("tl_reported_again"),
    "impact": _impact,
    "similar": _similar,
    "unrouted": _fixed("tl_unrouted"),
    "nobody_available": _nobody,
    "routed": _routed,
    "escalated": _escalated,
    "ack_overdue": _ack_overdue,
    "acknowledged": _by_person("tl_acknowledged"),
    "comment": _by_person("tl_comment"),
    "attachment": _by_person("tl_attachment", with_text=False),
    "photo_text": _by_person("tl_photo_text"),
    "proposed": _by_person("tl_proposed"),
    "approval_refused": _refused,
    "decision_ignored": _by_person("tl_decision_ignored", with_text=False),
    "rejected": _by_person("tl_rejected"),
    "approved": _by_person("tl_approved"),
    "erp_queued": _erp("tl_erp_queued"),
    "erp_posted": _erp("tl_erp_posted"),
    "erp_rejected": _erp_rejected,
    "erp_retried": _erp_settled("tl_erp_retried"),
    "erp_abandoned": _erp_settled("tl_erp_abandoned"),
    "mes_retried": _erp_settled("tl_mes_retried"),
    "mes_abandoned": _erp_settled("tl_mes_abandoned"),
    "erp_auth_failed": _fixed("tl_erp_auth_failed"),
    "mes_sent": _erp("tl_mes_sent"),
    "mes_rejected": _mes_rejected,
    "mes_auth_failed": _fixed("tl_mes_auth_failed"),
    "posted": _fixed("tl_posted"),
    "closed": _fixed("tl_closed"),
    "machine_state": _machine_state,
    "not_reached": _channel_event("tl_not_reached"),
    "whatsapp_template": _channel_event("tl_template_sent"),
    "work_order_status": _work_order_status,
    "repair_estimate": _by_person("tl_repair_estimate", with_text=False),
    "quality_result": _quality_result,
    "stock_short": _stock,
    "stock_recovered": _stock,
    "quality_drift": _quality_drift,
    **{kind: _decision(f"tl_{kind}") for kind in ("decision_needed", "decision_proposed", "decision_approved",
                                                  "decision_rejected", "decision_not_needed", "decision_settled",
                                                  "decision_refused")},
}


def _other(story: _Story, line: Line) -> str:
    """A kind written by code this module does not know yet: who did something, and their words."""
    said = story.say("tl_other", name=story.name(line.person)) if line.person else story.say("tl_other_system")
    return story.said(said, line.text) if line.person else said


def sentences(lines: Sequence[Line], language: str, *, names: Mapping[str, str] | None = None,
              machine: str | None = None, where: str | None = None) -> list[str | None]:
    """One sentence per line, in order (None where there is nothing to say).

    `names` maps person ids to names; `machine` is the exception's machine as people know it
    ("HOB-01 (Liebherr gear hobber 1)"); `where` the place the problem is on (the machine, else
    the area), "the plant" when neither is known.
    """
    language = language if language in messages.LANGUAGES else "en"
    story = _Story(language=language, names=names or {},
                   machine=machine or where or messages.render("the_plant", language),
                   where=where or machine or messages.render("the_plant", language))
    result: list[str | None] = []
    for line in lines:
        data = line.data if isinstance(line.data, Mapping) else {}
        line = Line(kind=line.kind, person=line.person, text=line.text or "", data=data)
        try:
            result.append(SENTENCES.get(line.kind, _other)(story, line))
        except (TypeError, ValueError, KeyError, AttributeError):
            # Data of an unexpected shape (an older row, another writer): say what is safe to say.
            result.append(_other(story, line))
    return result

"""Answers to managers' questions by message: what is down, status of a work order or machine, KPIs."""

from __future__ import annotations

import re
from datetime import datetime, timedelta

from sqlmodel import Session, select

from models import Area, Machine, Plant, PlantException, WorkOrder
from nlp.extraction import Extraction
from routing import messages
from routing.kpis import compute
from routing.roster import plant_local

OPEN = ("open", "acknowledged", "proposed", "approved", "posted")
_KPI_WORDS = re.compile(r"\b(mttr|mtta|kpi|kpis|resolution time|downtime)\b", re.I)
_DOWN_WORDS = re.compile(
    r"\b(down|stopped|stop|standing|band|ruka|ruki|steht|stehen|stillstand|parad[oa]s?|caíd[oa]s?|holds?)\b", re.I)
_WEEK = re.compile(r"\b(week|woche|semana|hafte|hafta)\b", re.I)
_MONTH = re.compile(r"\b(month|monat|mes|mahina|mahine)\b", re.I)

HEADERS = {
    "down": {"en": "Down now", "es": "Parado ahora", "de": "Steht gerade", "hi": "Abhi band"},
    "nothing_down": {"en": "Nothing is down.", "es": "No hay nada parado.", "de": "Nichts steht.",
                     "hi": "Kuch bhi band nahi hai."},
    "open": {"en": "Open exceptions", "es": "Incidencias abiertas", "de": "Offene Störungen",
             "hi": "Khule exceptions"},
    "unknown_wo": {"en": "I don't know work order {id}.", "es": "No conozco la orden {id}.",
                   "de": "Auftrag {id} kenne ich nicht.", "hi": "Work order {id} nahi mila."},
}


def is_question(text: str) -> bool:
    """A KPI request or a question mark: answer it even when the intent model was unsure."""
    return bool(_KPI_WORDS.search(text)) or text.rstrip().endswith("?")


def _h(key: str, lang: str, **values: str) -> str:
    return (HEADERS[key].get(lang) or HEADERS[key]["en"]).format(**values)


def _ago(now: datetime, then: datetime) -> str:
    return messages.duration((now - then).total_seconds())


def _open_exceptions(session: Session, plant_id: str) -> list[PlantException]:
    return list(session.exec(select(PlantException).where(
        PlantException.plant_id == plant_id, PlantException.status.in_(OPEN),  # type: ignore[attr-defined]
    ).order_by(PlantException.id)))


def _line(now: datetime, exc: PlantException, language: str) -> str:
    line = messages.render("q_line", language, code=exc.code, type=exc.type, status=exc.status,
                           where=exc.machine_id or exc.area_id or "-", age=_ago(now, exc.opened_at))
    if exc.work_orders:
        line += ", " + messages.render("q_line_work_orders", language, work_orders=", ".join(exc.work_orders))
    return line


def answer(session: Session, plant: Plant, now: datetime, extraction: Extraction, language: str) -> str:
    """Pick the question from the extraction and the text; fall back to the open-exception list."""
    text = extraction.text
    if _KPI_WORDS.search(text):
        return kpi_summary(session, plant, now, text, language)
    if extraction.work_order:
        return work_order_status(session, plant, now, extraction.work_order, language)
    if extraction.machine:
        return machine_status(session, plant, now, extraction.machine, language)
    if _DOWN_WORDS.search(text) or re.search(r"\b(running|läuft|chalu|funciona)\b", text, re.I):
        return what_is_down(session, plant, now, language, area=_area_named(session, plant, text),
                            exception_type="quality" if re.search(r"quality|qualit|calidad", text, re.I) else None)
    return what_is_down(session, plant, now, language, area=_area_named(session, plant, text))


def _area_named(session: Session, plant: Plant, text: str) -> str | None:
    lowered = text.lower()
    for area in session.exec(select(Area).where(Area.plant_id == plant.id)):
        if area.id.lower() in lowered or area.name.lower() in lowered:
            return area.id
    return None


def what_is_down(session: Session, plant: Plant, now: datetime, language: str, area: str | None = None,
                 exception_type: str | None = None) -> str:
    machines = session.exec(select(Machine).where(Machine.plant_id == plant.id, Machine.running == False)  # noqa: E712
                            .order_by(Machine.id)).all()
    if area:
        machines = [m for m in machines if m.area_id == area]
    exceptions = [e for e in _open_exceptions(session, plant.id)
                  if (not area or e.area_id == area) and (not exception_type or e.type == exception_type)]
    lines = []
    if machines:
        lines.append(f"{_h('down', language)}: " + ", ".join(f"{m.id} ({m.name})" for m in machines))
    else:
        lines.append(_h("nothing_down", language))
    if exceptions:
        lines.append(f"{_h('open', language)}:")
        lines += [f"- {_line(now, e, language)}" for e in exceptions]
    return "\n".join(lines)


def work_order_status(session: Session, plant: Plant, now: datetime, work_order_id: str, language: str) -> str:
    wo = session.get(WorkOrder, (plant.id, work_order_id))
    if wo is None:
        return _h("unknown_wo", language, id=work_order_id)
    machine = session.get(Machine, (plant.id, wo.machine_id))
    state = messages.render("q_running" if machine and machine.running else "q_stopped", language)
    status = messages.work_order_status_name(wo.status, language)
    if wo.quantity is not None:
        parts = [messages.render("q_work_order", language, work_order=wo.id, status=status, quantity=f"{wo.quantity:g}",
                                 material=wo.material_id or "-", machine=wo.machine_id, state=state)]
    else:
        parts = [messages.render("q_work_order_bare", language, work_order=wo.id, status=status,
                                 machine=wo.machine_id, state=state)]
    if wo.end:
        parts.append(messages.render("q_due", language, due=f"{plant_local(plant, wo.end):%Y-%m-%d %H:%M}"))
    if wo.customer_order_id:
        parts.append(messages.render("q_for_customer", language, customer_order=wo.customer_order_id))
    touching = [e for e in _open_exceptions(session, plant.id) if wo.id in e.work_orders]
    text = ", ".join(parts) + "."
    if touching:
        text += "\n" + "\n".join(f"- {_line(now, e, language)}" for e in touching)
    return text


def machine_status(session: Session, plant: Plant, now: datetime, machine_id: str, language: str = "en") -> str:
    machine = session.get(Machine, (plant.id, machine_id))
    if machine is None:
        return messages.render("q_unknown_machine", language, machine=machine_id)
    touching = [e for e in _open_exceptions(session, plant.id) if e.machine_id == machine_id]
    state = messages.render("q_running" if machine.running else "q_stopped", language)
    text = messages.render("q_machine", language, machine=f"{machine.id} ({machine.name})", state=state)
    if touching:
        text += "\n" + "\n".join(f"- {_line(now, e, language)}" for e in touching)
    return text


def kpi_summary(session: Session, plant: Plant, now: datetime, text: str, language: str = "en") -> str:
    local = plant_local(plant, now)
    if _WEEK.search(text):
        start_local = (local - timedelta(days=local.weekday())).replace(hour=0, minute=0, second=0, microsecond=0)
        label = "q_this_week"
    elif _MONTH.search(text):
        start_local = local.replace(day=1, hour=0, minute=0, second=0, microsecond=0)
        label = "q_this_month"
    else:
        start_local = local.replace(hour=0, minute=0, second=0, microsecond=0)
        label = "q_today"
    k = compute(session, plant.id, start_local, now + timedelta(seconds=1))

    def fmt(v: float | None) -> str:
        return "-" if v is None else f"{v:g} min"

    return messages.render(
        "q_kpis", language, period=messages.render(label, language), opened=k.opened, closed=k.closed,
        open_now=k.open_now, mttr=fmt(k.mttr_minutes), mtta=fmt(k.mtta_minutes),
        resolution=fmt(k.mean_resolution_minutes), escalations=k.escalations,
        messages="-" if k.messages_per_exception is None else k.messages_per_exception)

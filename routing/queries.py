"""Answers to managers' questions by message: what is down, status of a work order or machine, KPIs."""

from __future__ import annotations

import re
from datetime import datetime, timedelta

from sqlmodel import Session, select

from models import Area, Machine, Plant, PlantException, WorkOrder
from nlp.extraction import Extraction
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
    minutes = int((now - then).total_seconds() // 60)
    return f"{minutes} min" if minutes < 120 else f"{minutes // 60} h {minutes % 60} min"


def _open_exceptions(session: Session, plant_id: str) -> list[PlantException]:
    return list(session.exec(select(PlantException).where(
        PlantException.plant_id == plant_id, PlantException.status.in_(OPEN),  # type: ignore[attr-defined]
    ).order_by(PlantException.id)))


def _line(now: datetime, exc: PlantException) -> str:
    where = exc.machine_id or exc.area_id or "-"
    wos = f", WOs {', '.join(exc.work_orders)}" if exc.work_orders else ""
    return f"{exc.code} {exc.type} {where} [{exc.status}] since {_ago(now, exc.opened_at)}{wos}"


def answer(session: Session, plant: Plant, now: datetime, extraction: Extraction, language: str) -> str:
    """Pick the question from the extraction and the text; fall back to the open-exception list."""
    text = extraction.text
    if _KPI_WORDS.search(text):
        return kpi_summary(session, plant, now, text)
    if extraction.work_order:
        return work_order_status(session, plant, now, extraction.work_order, language)
    if extraction.machine:
        return machine_status(session, plant, now, extraction.machine)
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
        lines += [f"- {_line(now, e)}" for e in exceptions]
    return "\n".join(lines)


def work_order_status(session: Session, plant: Plant, now: datetime, work_order_id: str, language: str) -> str:
    wo = session.get(WorkOrder, (plant.id, work_order_id))
    if wo is None:
        return _h("unknown_wo", language, id=work_order_id)
    machine = session.get(Machine, (plant.id, wo.machine_id))
    state = "running" if machine and machine.running else "DOWN"
    parts = [f"{wo.id}: {wo.status}, {wo.quantity:g} x {wo.material_id or '-'} on {wo.machine_id} (machine {state})"
             if wo.quantity is not None else f"{wo.id}: {wo.status} on {wo.machine_id} (machine {state})"]
    if wo.end:
        parts.append(f"due {plant_local(plant, wo.end):%a %H:%M}")
    if wo.customer_order_id:
        parts.append(f"for {wo.customer_order_id}")
    touching = [e for e in _open_exceptions(session, plant.id) if wo.id in e.work_orders]
    text = ", ".join(parts) + "."
    if touching:
        text += "\n" + "\n".join(f"- {_line(now, e)}" for e in touching)
    return text


def machine_status(session: Session, plant: Plant, now: datetime, machine_id: str) -> str:
    machine = session.get(Machine, (plant.id, machine_id))
    if machine is None:
        return f"I don't know machine {machine_id}."
    touching = [e for e in _open_exceptions(session, plant.id) if e.machine_id == machine_id]
    state = "running" if machine.running else "DOWN"
    text = f"{machine.id} ({machine.name}): {state}."
    if touching:
        text += "\n" + "\n".join(f"- {_line(now, e)}" for e in touching)
    return text


def kpi_summary(session: Session, plant: Plant, now: datetime, text: str) -> str:
    local = plant_local(plant, now)
    if _WEEK.search(text):
        start_local = (local - timedelta(days=local.weekday())).replace(hour=0, minute=0, second=0, microsecond=0)
        label = "this week"
    elif _MONTH.search(text):
        start_local = local.replace(day=1, hour=0, minute=0, second=0, microsecond=0)
        label = "this month"
    else:
        start_local = local.replace(hour=0, minute=0, second=0, microsecond=0)
        label = "today"
    k = compute(session, plant.id, start_local, now + timedelta(seconds=1))

    def fmt(v: float | None) -> str:
        return "-" if v is None else f"{v:g} min"

    return (f"KPIs {label}: {k.opened} exceptions opened, {k.closed} closed, {k.open_now} open now. "
            f"MTTR {fmt(k.mttr_minutes)}, MTTA {fmt(k.mtta_minutes)}, "
            f"mean resolution {fmt(k.mean_resolution_minutes)}, {k.escalations} escalations, "
            f"{k.messages_per_exception if k.messages_per_exception is not None else '-'} messages per exception.")

"""Answers to questions by message (docs/questions.md), in the asker's language and scope.

A question is user text: it is read up to `LIMIT` characters, only ids the plant knows (or the
pattern of one) are echoed, and whatever it says the answer is a sentence, never an error.
Operators see the machines, orders and exceptions of their areas; everyone sees only their plant.
Each answer names the ids the asker can act on (E-0042, WO-1042, SO-7001, a person's id).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from sqlmodel import Session, select

from models import (
    Area,
    CustomerOrder,
    ExceptionDecision,
    Machine,
    Person,
    Plant,
    PlantException,
    Signal,
    TimelineEvent,
    WorkOrder,
)
from nlp.extraction import Extraction
from routing import messages
from routing.kpis import DONE_WORDS, OPEN, Kpis, compute
from routing.kpis import trend as kpis_trend
from routing.roster import Roster, plant_local

LIMIT = 500  # characters of a question that are read: a pasted log is not a longer question
MAX_LINES = 15  # exceptions listed in one answer; the rest are counted
MAX_DAYS = 366  # the longest "last N days" read
MAX_BARS = 20  # bars of a Pareto chart: the rest are too small to read

_KPI_WORDS = re.compile(
    r"\b(mttr|mtta|kpi|kpis|resolution time|downtime|adherence|adherencia|termintreue|escalation rate|"
    r"erp latency|latencia|latenz|p95|escalations|escalaciones|eskalationen)\b", re.I)
_DOWN_WORDS = re.compile(
    r"\b(down|stopped|stop|standing|band|ruka|ruki|steht|stehen|stillstand|parad[oa]s?|caíd[oa]s?|holds?)\b", re.I)
_OPEN_WORDS = re.compile(r"\b(open|abiert[oa]s?|offen\w*|khul[ea]|khula|pending|pendientes?)\b", re.I)
_ESCALATED_WORDS = re.compile(r"\b(escalated|escalad[oa]s?|eskaliert\w*|escalate hu\w*)\b", re.I)
_APPROVAL_WORDS = re.compile(
    r"\b(approvals?|approve|aprobaci[oó]n|aprobar|freigabe\w*|genehmigung\w*|manzoori|manjuri)\b", re.I)
# "top" only before what it ranks: "top priority, move WO-1043" is no question.
_TOP_WORDS = re.compile(r"\b(top\s+(\d{1,2}\s+)?(exception|types?|problems?|issues?|tipos|incidencias|st[oö]rung\w*|"
                        r"arten)|pareto|most common|m[aá]s frecuentes?|h[aä]ufigste\w*|sabse zyada|sabse jyada)\b", re.I)
# A trend asks how a figure moved over the period: charted per day (per hour over two days or less).
_TREND_WORDS = re.compile(r"\b(trends?|tendencias?|evoluci[oó]n|verlauf|entwicklung|chart|graph|gr[aá]fic[oa]|"
                          r"diagramm|grafik|per day|por d[ií]a|pro tag|har din)\b", re.I)
_BY_DOWNTIME = re.compile(r"\b(downtime|tiempo parad[oa]|stillstand\w*|band samay|ausfallzeit)\b", re.I)
_WHO_WORDS = re.compile(r"\b(who|qui[eé]n(es)?|wer|kaun)\b", re.I)
_SHIFT_WORDS = re.compile(r"\b(on call|on shift|on duty|de turno|de guardia|guardia|schicht|bereitschaft|"
                          r"dienst|duty|shift)\b", re.I)
_HELP_WORDS = re.compile(r"^\W*(help|ayuda|hilfe|madad)\W*$", re.I)
# A question that starts like one: the model may read "open quality issues in assembly" as a report.
_ASKS = re.compile(
    r"^\W*(status|estado|stand|pareto|h[aä]ufigste\w*|open|abiert[oa]s|offene|khule|list|show|zeig\w*|muestra\w*|"
    r"what|what's|whats|which|who|how many|qu[eé]|cu[aá]l\w*|cu[aá]nt[oa]s|qui[eé]n|was|welche\w*|wer|"
    r"wie viele|kya|kaun\w*|kitne)\b", re.I)
_CODE = re.compile(r"\bE-?(\d{1,6})\b", re.I)
_WORK_ORDER = re.compile(r"\bWO[- ]?(\d{1,9})\b", re.I)
_CUSTOMER_ORDER = re.compile(r"\bSO[- ]?(\d{1,9})\b", re.I)
_AGE = re.compile(r"(\d{1,4})\s*(hours?|hrs?|h|horas?|stunden?|std|ghante|ghanta|minutes?|mins?|minutos?|minuten?|"
                  r"days?|d[ií]as?|tagen?|tage|din)\b", re.I)

HEADERS = {
    "down": {"en": "Down now", "es": "Parado ahora", "de": "Steht gerade", "hi": "Abhi band"},
    "nothing_down": {"en": "Nothing is down.", "es": "No hay nada parado.", "de": "Nichts steht.",
                     "hi": "Kuch bhi band nahi hai."},
    "open": {"en": "Open exceptions", "es": "Incidencias abiertas", "de": "Offene Störungen",
             "hi": "Khule exceptions"},
    "escalated": {"en": "Escalated and still open", "es": "Escaladas y aún abiertas",
                  "de": "Eskaliert und noch offen", "hi": "Escalate hue aur abhi khule"},
    "approval": {"en": "Waiting for approval", "es": "Esperan aprobación", "de": "Warten auf Freigabe",
                 "hi": "Manzoori ka intezaar"},
    "none": {"en": "none", "es": "ninguna", "de": "keine", "hi": "koi nahi"},
    "more": {"en": "... and {count} more", "es": "... y {count} más", "de": "... und {count} weitere",
             "hi": "... aur {count}"},
    "older_than": {"en": "open longer than {age}", "es": "abiertas hace más de {age}",
                   "de": "länger als {age} offen", "hi": "{age} se zyada khule"},
    "your_areas": {"en": "You see your areas only ({areas}).", "es": "Solo ves tus áreas ({areas}).",
                   "de": "Du siehst nur deine Bereiche ({areas}).", "hi": "Aap sirf apne area dekhte hain ({areas})."},
    "not_your_area": {"en": "{id} is not in your areas ({areas}).", "es": "{id} no está en tus áreas ({areas}).",
                      "de": "{id} liegt nicht in deinen Bereichen ({areas}).",
                      "hi": "{id} aapke area mein nahi hai ({areas})."},
    "unknown_wo": {"en": "I don't know work order {id}.", "es": "No conozco la orden {id}.",
                   "de": "Auftrag {id} kenne ich nicht.", "hi": "Work order {id} nahi mila."},
    "unknown_co": {"en": "I don't know customer order {id}.", "es": "No conozco el pedido {id}.",
                   "de": "Kundenauftrag {id} kenne ich nicht.", "hi": "Customer order {id} nahi mila."},
    "unknown_exception": {"en": "I don't know exception {id}.", "es": "No conozco la incidencia {id}.",
                          "de": "Störung {id} kenne ich nicht.", "hi": "Exception {id} nahi mila."},
    "finished": {"en": "finished {when}", "es": "terminada {when}", "de": "fertig {when}", "hi": "{when} ko poora"},
    "finished_bare": {"en": "finished", "es": "terminada", "de": "fertig", "hi": "poora"},
    "overdue": {"en": "OVERDUE by {age}", "es": "ATRASADA {age}", "de": "ÜBERFÄLLIG seit {age}",
                "hi": "{age} se DEREE"},
    "down_since": {"en": "down since {when}", "es": "parada desde {when}", "de": "steht seit {when}",
                   "hi": "{when} se band"},
    "customer_order": {"en": "{id} for {customer}: promised {due}", "es": "{id} para {customer}: prometido {due}",
                       "de": "{id} für {customer}: zugesagt {due}", "hi": "{id} {customer} ke liye: vaada {due}"},
    "at_risk": {"en": "AT RISK from {codes}", "es": "EN RIESGO por {codes}", "de": "GEFÄHRDET durch {codes}",
                "hi": "{codes} se KHATRE mein"},
    "not_at_risk": {"en": "not at risk", "es": "sin riesgo", "de": "nicht gefährdet", "hi": "khatre mein nahi"},
    "its_work_orders": {"en": "Work orders", "es": "Órdenes", "de": "Aufträge", "hi": "Work orders"},
    "exception": {"en": "{code} {type} on {where}: {status}, open for {age}",
                  "es": "{code} {type} en {where}: {status}, abierta hace {age}",
                  "de": "{code} {type} an {where}: {status}, seit {age} offen",
                  "hi": "{code} {where} par {type}: {status}, {age} se khula"},
    "exception_closed": {"en": "{code} {type} on {where}: closed {when}",
                         "es": "{code} {type} en {where}: cerrada {when}",
                         "de": "{code} {type} an {where}: geschlossen {when}",
                         "hi": "{code} {where} par {type}: {when} ko band hua"},
    "held_by": {"en": "held by {names}", "es": "la lleva {names}", "de": "übernommen von {names}",
                "hi": "{names} ke paas"},
    "held_by_nobody": {"en": "nobody has acknowledged it", "es": "nadie la ha confirmado",
                       "de": "niemand hat sie bestätigt", "hi": "kisi ne acknowledge nahi kiya"},
    "waits_ack": {"en": "waiting for an acknowledgement", "es": "espera confirmación",
                  "de": "wartet auf Bestätigung", "hi": "acknowledgement ka intezaar"},
    "waits_fix": {"en": "waiting for a fix", "es": "espera una solución", "de": "wartet auf eine Lösung",
                  "hi": "fix ka intezaar"},
    "waits_approval": {"en": "waiting for approval by {role}", "es": "espera aprobación de {role}",
                       "de": "wartet auf Freigabe durch {role}", "hi": "{role} ki manzoori ka intezaar"},
    "waits_erp": {"en": "waiting for the ERP posting", "es": "espera el registro en el ERP",
                  "de": "wartet auf die ERP-Buchung", "hi": "ERP posting ka intezaar"},
    "waits_close": {"en": "posted to the ERP, waiting to be closed", "es": "registrada en el ERP, espera cierre",
                    "de": "im ERP gebucht, wartet auf Abschluss", "hi": "ERP mein post, band hone ka intezaar"},
    "parts_open": {"en": "open decision parts", "es": "partes de decisión abiertas",
                   "de": "offene Entscheidungsteile", "hi": "khule decision parts"},
    "on_shift": {"en": "On shift now for {role}", "es": "De turno ahora en {role}", "de": "Jetzt im Dienst ({role})",
                 "hi": "Abhi duty par ({role})"},
    "on_shift_all": {"en": "On shift now", "es": "De turno ahora", "de": "Jetzt im Dienst", "hi": "Abhi duty par"},
    "nobody_on_shift": {"en": "Nobody holding {role} is on shift now.", "es": "Nadie de {role} está de turno ahora.",
                        "de": "Niemand aus {role} ist jetzt im Dienst.", "hi": "Abhi {role} mein koi duty par nahi."},
    "top_by_count": {"en": "Top exception types by count, {period}", "es": "Tipos más frecuentes, {period}",
                     "de": "Häufigste Störungsarten, {period}", "hi": "Sabse zyada exception types, {period}"},
    "top_by_downtime": {"en": "Top exception types by downtime, {period}",
                        "es": "Tipos con más tiempo parado, {period}",
                        "de": "Störungsarten nach Stillstandszeit, {period}",
                        "hi": "Sabse zyada band samay wale types, {period}"},
    "trend_count": {"en": "Exceptions opened", "es": "Incidencias abiertas", "de": "Eröffnete Störungen",
                    "hi": "Khule exceptions"},
    "trend_type": {"en": "{type} opened", "es": "{type}: abiertas", "de": "{type}: eröffnet", "hi": "{type} khule"},
    "trend_mttr": {"en": "MTTR (min)", "es": "MTTR (min)", "de": "MTTR (min)", "hi": "MTTR (min)"},
    "trend_downtime": {"en": "Downtime (min)", "es": "Tiempo parado (min)", "de": "Stillstand (min)",
                       "hi": "Band samay (min)"},
    "per_day": {"en": "per day", "es": "por día", "de": "pro Tag", "hi": "har din"},
    "per_hour": {"en": "per hour", "es": "por hora", "de": "pro Stunde", "hi": "har ghante"},
    "trend_total": {"en": "total {total}", "es": "total {total}", "de": "gesamt {total}", "hi": "kul {total}"},
    "trend_empty": {"en": "nothing to show", "es": "nada que mostrar", "de": "nichts zu zeigen",
                    "hi": "dikhane ko kuch nahi"},
    "no_exceptions": {"en": "No exceptions opened {period}.", "es": "Ninguna incidencia abierta {period}.",
                      "de": "Keine Störungen eröffnet {period}.", "hi": "{period} koi exception nahi khula."},
    "counts": {"en": "{opened} opened, {closed} closed", "es": "{opened} abiertas, {closed} cerradas",
               "de": "{opened} eröffnet, {closed} geschlossen", "hi": "{opened} khule, {closed} band"},
    "kpi_extra": {"en": "Schedule adherence {adherence}, {at_risk} customer orders at risk, ERP latency {erp}.",
                  "es": "Cumplimiento del plan {adherence}, {at_risk} pedidos en riesgo, latencia ERP {erp}.",
                  "de": "Termintreue {adherence}, {at_risk} Kundenaufträge gefährdet, ERP-Latenz {erp}.",
                  "hi": "Schedule adherence {adherence}, {at_risk} customer orders khatre mein, ERP latency {erp}."},
    "can_answer": {
        "en": "I can answer: 'what is down?', 'status HOB-01', 'status WO-1042', 'status SO-7001', 'status E-0001', "
              "'open quality issues in assembly', 'what's been open more than 2 hours?', 'what is escalated?', "
              "'what is waiting for approval?', 'who is the maintenance on call?', 'MTTR this week', "
              "'schedule adherence yesterday', 'top exception types by downtime last 30 days', "
              "'trend of breakdowns last 30 days' (with a chart).",
        "es": "Puedo responder: '¿qué está parado?', 'estado HOB-01', 'estado WO-1042', 'estado SO-7001', "
              "'estado E-0001', 'incidencias de calidad abiertas en assembly', '¿qué lleva abierto más de 2 horas?', "
              "'¿qué está escalado?', '¿qué espera aprobación?', '¿quién está de turno en calidad?', "
              "'MTTR esta semana', 'adherencia ayer', 'tipos más frecuentes últimos 30 días', "
              "'tendencia de averías últimos 30 días' (con gráfico).",
        "de": "Ich beantworte: 'was steht?', 'Status HOB-01', 'Status WO-1042', 'Status SO-7001', 'Status E-0001', "
              "'offene Qualität Störungen in assembly', 'was ist länger als 2 Stunden offen?', 'was ist eskaliert?', "
              "'was wartet auf Freigabe?', 'wer hat Bereitschaft in der Instandhaltung?', 'MTTR diese Woche', "
              "'Termintreue gestern', 'häufigste Störungsarten letzten Monat', "
              "'Trend der Störungen diese Woche' (mit Diagramm).",
        "hi": "Main jawab de sakta hoon: 'kya band hai?', 'status HOB-01', 'status WO-1042', 'status SO-7001', "
              "'status E-0001', 'khule quality issues assembly mein', '2 ghante se zyada khule kaun se hain?', "
              "'kya escalate hua?', 'kaun se approval baaki hain?', 'maintenance mein kaun duty par hai?', "
              "'MTTR is hafte', 'adherence kal', 'sabse zyada types pichle 30 din', "
              "'is hafte ka trend' (chart ke saath).",
    },
}

DAY_NAMES = {
    "en": ("Mon", "Tue", "Wed", "Thu", "Fri", "Sat", "Sun"),
    "es": ("lun", "mar", "mié", "jue", "vie", "sáb", "dom"),
    "de": ("Mo", "Di", "Mi", "Do", "Fr", "Sa", "So"),
    "hi": ("Som", "Mangal", "Budh", "Guru", "Shukra", "Shani", "Ravi"),
}

# The periods a question can name, plant-local; the first that matches wins (longer phrases first).
_PERIODS: tuple[tuple[str, re.Pattern[str]], ...] = (
    ("last_days", re.compile(r"\b(?:last|past|[uú]ltim[oa]s|letzten|vergangenen|pichhle|pichle|pichhle)\s+(\d{1,4})\s*"
                             r"(?:days?|d[ií]as|tagen?|tage|din)\b", re.I)),
    ("last_hours", re.compile(r"\b(?:last|past|[uú]ltimas|letzten|pichhle|pichle)\s+(\d{1,4})\s*"
                              r"(?:hours?|horas|stunden|ghante)\b", re.I)),
    ("yesterday", re.compile(r"\b(yesterday|ayer|gestern|kal)\b", re.I)),
    ("last_week", re.compile(r"\b(last week|semana pasada|letzte[nr]? woche|vorwoche|pichhle hafte|pichle hafte|"
                             r"pichle hafta|pichhle hafta)\b", re.I)),
    ("last_month", re.compile(r"\b(last month|mes pasado|letzte[nr]? monat|vormonat|pichhle mahine|pichle mahine|"
                              r"pichle mahina)\b", re.I)),
    ("this_week", re.compile(r"\b(week|woche|semana|hafte|hafta)\b", re.I)),
    ("this_month", re.compile(r"\b(month|monat|mes|mahina|mahine)\b", re.I)),
    ("today", re.compile(r"\b(today|hoy|heute|aaj)\b", re.I)),
)
PERIOD_NAMES = {
    "today": {"en": "today", "es": "hoy", "de": "heute", "hi": "aaj"},
    "yesterday": {"en": "yesterday", "es": "ayer", "de": "gestern", "hi": "kal"},
    "this_week": {"en": "this week", "es": "esta semana", "de": "diese Woche", "hi": "is hafte"},
    "last_week": {"en": "last week", "es": "la semana pasada", "de": "letzte Woche", "hi": "pichhle hafte"},
    "this_month": {"en": "this month", "es": "este mes", "de": "diesen Monat", "hi": "is mahine"},
    "last_month": {"en": "last month", "es": "el mes pasado", "de": "letzten Monat", "hi": "pichhle mahine"},
    "last_days": {"en": "the last {n} days", "es": "los últimos {n} días", "de": "die letzten {n} Tage",
                  "hi": "pichhle {n} din"},
    "last_hours": {"en": "the last {n} hours", "es": "las últimas {n} horas", "de": "die letzten {n} Stunden",
                   "hi": "pichhle {n} ghante"},
}

# KPI figures a question can name: the words in four languages, the field and how it is shown.
_FIGURES: tuple[tuple[str, re.Pattern[str], str], ...] = (
    ("mttr_minutes", re.compile(r"\b(mttr|time to repair|reparaci[oó]n|reparaturzeit)\b", re.I), "MTTR"),
    ("mtta_minutes", re.compile(r"\b(mtta|time to acknowledge|tiempo de respuesta|reaktionszeit)\b", re.I), "MTTA"),
    ("mean_resolution_minutes", re.compile(r"\b(resolution|resoluci[oó]n|l[oö]sungszeit|samadhan)\b", re.I),
     "resolution"),
    ("schedule_adherence", re.compile(r"\b(adherence|adherencia|cumplimiento|termintreue|on.time)\b", re.I),
     "adherence"),
    ("escalation_rate", re.compile(r"\b(escalation rate|tasa de escalad\w*|eskalationsrate|escalation dar)\b", re.I),
     "escalation rate"),
    ("escalations", re.compile(r"\b(escalations|escalaciones|eskalationen)\b", re.I), "escalations"),
    ("erp_latency_minutes", re.compile(r"\b(erp latency|latencia|erp.latenz|latenz)\b", re.I), "ERP latency"),
    ("erp_rejected", re.compile(r"\b(rejected|rechaz\w*|abgelehnt\w*|ablehnung\w*)\b", re.I), "ERP rejected"),
    ("notify_p95_seconds", re.compile(r"\b(p95|notification time|notify)\b", re.I), "notify p95"),
    ("customer_orders_at_risk", re.compile(r"\b(at risk|en riesgo|gef[aä]hrdet|khatre)\b", re.I),
     "customer orders at risk"),
    ("messages_per_exception", re.compile(r"\b(messages per|mensajes por|nachrichten pro|messages har)\b", re.I),
     "messages per exception"),
    ("people_per_exception", re.compile(r"\b(people per|personas por|personen pro|log har)\b", re.I),
     "people per exception"),
)


@dataclass(frozen=True)
class Scope:
    """What the asker may see: an operator their areas (`areas`), anyone else the whole plant (None)."""

    areas: tuple[str, ...] | None

    def sees(self, area_id: str | None) -> bool:
        return self.areas is None or area_id in self.areas


def scope_of(asker: Person | None) -> Scope:
    """Operators (and only operators: a supervisor who also runs a machine sees the plant) see their areas."""
    if asker is not None and asker.roles and set(asker.roles) <= {"operator"} and asker.areas:
        return Scope(tuple(asker.areas))
    return Scope(None)


def is_question(text: str) -> bool:
    """A KPI request, a question mark or a question's first word: answer it even when the intent
    model was unsure ("MTTR this week", "estado SO-7001")."""
    text = text[:LIMIT]
    return bool(_KPI_WORDS.search(text) or _TOP_WORDS.search(text) or _TREND_WORDS.search(text)
                or _ASKS.match(text)) or \
        text.rstrip().endswith("?") or text.lstrip().startswith("¿")


def asks_instead_of_reporting(text: str, extraction: Extraction) -> bool:
    """A message the model read as a report but that names no machine and starts like a question
    ("open quality issues in assembly", "top exception types by downtime"). A report names what is
    wrong ("CNC-3 is down"); a question mark alone ("smoke near the washer?") stays a report."""
    text = text[:LIMIT]
    return extraction.machine is None and bool(_ASKS.match(text) or _KPI_WORDS.search(text)
                                          or _TOP_WORDS.search(text) or _TREND_WORDS.search(text))


def _h(key: str, lang: str, **values: object) -> str:
    return (HEADERS[key].get(lang) or HEADERS[key]["en"]).format(**values)


def _ago(now: datetime, then: datetime) -> str:
    return messages.duration((now - then).total_seconds())


def when(plant: Plant, at: datetime, language: str) -> str:
    """A moment as the plant reads it: the weekday, the date and the plant-local time ("Thu 2026-11-26 04:00")."""
    local = plant_local(plant, at)
    return f"{DAY_NAMES.get(language, DAY_NAMES['en'])[local.weekday()]} {local:%Y-%m-%d %H:%M}"


def _areas_text(scope: Scope) -> str:
    return ", ".join(scope.areas or ())


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


def _lines(now: datetime, found: list[PlantException], language: str) -> list[str]:
    lines = [f"- {_line(now, e, language)}" for e in found[:MAX_LINES]]
    if len(found) > MAX_LINES:
        lines.append(_h("more", language, count=len(found) - MAX_LINES))
    return lines


@dataclass(frozen=True)
class Chart:
    """What a chart shows, decided here and drawn elsewhere (bot/charts.py): one value per label.

    `trend`: a line over time slots (`labels` are days or hours); `pareto`: bars ranked from the
    largest with the cumulative share. Labels and title are plant and user text: the drawing escapes them.
    Stored as JSON on the answer's outbox row (`Notification.chart`), so every channel and the
    console draw the same chart from the same figures."""

    kind: str  # trend | pareto
    title: str
    labels: tuple[str, ...]
    values: tuple[float, ...]
    unit: str = ""  # "" for counts, "min" for times

    def to_json(self) -> dict[str, Any]:
        return {"kind": self.kind, "title": self.title, "labels": list(self.labels), "values": list(self.values),
                "unit": self.unit}


@dataclass(frozen=True)
class Answer:
    """An answer's text (always: the facts, with their numbers) and, for a trend or a ranking, its chart."""

    text: str
    chart: Chart | None = None


def answer(session: Session, plant: Plant, now: datetime, extraction: Extraction, language: str,
           asker: Person | None = None) -> str:
    """The text of `respond`."""
    return respond(session, plant, now, extraction, language, asker).text


def respond(session: Session, plant: Plant, now: datetime, extraction: Extraction, language: str,
            asker: Person | None = None) -> Answer:
    """The question in `extraction` answered for `asker`, with a chart when one says it better (a
    trend, a ranking); a question it cannot place gets the list of questions it can answer. Order
    matters: an exception code or a "who" names the subject more surely than a machine the question
    also mentions, and a trend of a KPI ("MTTR trend") is a trend, not the KPI."""
    text = extraction.text[:LIMIT]
    scope = scope_of(asker)
    if _HELP_WORDS.match(text):
        return Answer(_h("can_answer", language))
    if code := _CODE.search(text):
        return Answer(exception_status(session, plant, now, f"E-{int(code.group(1)):04d}", language, scope))
    if _WHO_WORDS.search(text) and (_SHIFT_WORDS.search(text) or _role_named(text)):
        return Answer(on_shift(session, plant, now, _role_named(text), _area_named(session, plant, text), language))
    if _TREND_WORDS.search(text):
        return trend(session, plant, now, text, language)
    if _TOP_WORDS.search(text):
        return top_types(session, plant, now, text, language, by_downtime=bool(_BY_DOWNTIME.search(text)))
    return Answer(_answer_text(session, plant, now, extraction, language, scope))


def _answer_text(session: Session, plant: Plant, now: datetime, extraction: Extraction, language: str,
                 scope: Scope) -> str:
    """The answers without a chart: KPIs, orders, machines, lists."""
    text = extraction.text[:LIMIT]
    if _KPI_WORDS.search(text):
        return kpi_summary(session, plant, now, text, language)
    customer_order = extraction.customer_order or (
        f"SO-{found.group(1)}" if (found := _CUSTOMER_ORDER.search(text)) else None)
    if customer_order:
        return customer_order_status(session, plant, now, customer_order, language, scope)
    work_order = extraction.work_order or (f"WO-{found.group(1)}" if (found := _WORK_ORDER.search(text)) else None)
    if work_order:  # one the plant does not know is said to be unknown
        return work_order_status(session, plant, now, work_order, language, scope)
    if extraction.machine:
        return machine_status(session, plant, now, extraction.machine, language, scope)
    if any(pattern.search(text) for _, pattern, _ in _FIGURES):  # "escalations yesterday", "at risk this week"
        return kpi_summary(session, plant, now, text, language)
    listing = _listing(text)
    if listing is None:
        return _h("can_answer", language)
    age = _AGE.search(text)
    return exceptions_list(session, plant, now, language, scope, listing=listing,
                           area=_area_named(session, plant, text), exception_type=_type_named(text),
                           older_than=_span(age) if age else None)


def _listing(text: str) -> str | None:
    """Which list a question asks for: down, escalated, approval or open; None when it asks for none."""
    if _APPROVAL_WORDS.search(text):
        return "approval"
    if _ESCALATED_WORDS.search(text):
        return "escalated"
    if _DOWN_WORDS.search(text) or re.search(r"\b(running|läuft|chalu|funciona)\b", text, re.I):
        return "down"
    if _OPEN_WORDS.search(text) or _AGE.search(text) or _type_named(text):
        return "open"
    return None


def _span(found: re.Match[str]) -> timedelta:
    amount, unit = int(found.group(1)), found.group(2).lower()
    if unit.startswith(("min", "m")):
        return timedelta(minutes=amount)
    if unit.startswith(("d", "t")):
        return timedelta(days=min(amount, MAX_DAYS))
    return timedelta(hours=amount)


def _area_named(session: Session, plant: Plant, text: str) -> str | None:
    lowered = text.lower()
    for area in session.exec(select(Area).where(Area.plant_id == plant.id).order_by(Area.id)):
        if re.search(rf"\b{re.escape(area.id.lower())}\b", lowered) or area.name.lower() in lowered:
            return area.id
    return None


def _type_named(text: str) -> str | None:
    """An exception type named in any of the four languages ("quality", "calidad", "Qualität"), also
    in the plural ("breakdowns", "averías")."""
    lowered = text.lower()
    for exception_type in messages.TYPE_NAMES["en"]:
        names = {exception_type} | {messages.type_name(exception_type, lang).lower() for lang in messages.LANGUAGES}
        if exception_type != "other" and any(re.search(rf"\b{re.escape(n)}(?:s|es|en|n)?\b", lowered) for n in names):
            return exception_type
    return None


def _role_named(text: str) -> str | None:
    """A role named in any of the four languages; the longest name first ("maintenance lead")."""
    lowered = text.lower()
    names = sorted(((messages.role_name(role, lang).lower(), role) for role in messages.ROLE_NAMES["en"]
                    for lang in messages.LANGUAGES), key=lambda pair: -len(pair[0]))
    names += [("qualität", "quality"), ("wartung", "maintenance"), ("mantenimiento", "maintenance"),
              ("almacén", "materials"), ("lager", "materials"), ("planung", "planner"), ("planificación", "planner")]
    for name, role in names:
        if re.search(rf"\b{re.escape(name)}", lowered):
            return role
    return None


def exceptions_list(session: Session, plant: Plant, now: datetime, language: str, scope: Scope,
                    listing: str = "down", area: str | None = None, exception_type: str | None = None,
                    older_than: timedelta | None = None) -> str:
    """What is down, open, escalated or waiting for approval, by area, type and age, in the asker's areas."""
    lines = []
    if area and not scope.sees(area):
        lines.append(_h("your_areas", language, areas=_areas_text(scope)))
        area = None
    found = [e for e in _open_exceptions(session, plant.id)
             if scope.sees(e.area_id) and (not area or e.area_id == area)
             and (not exception_type or e.type == exception_type)
             and (older_than is None or now - e.opened_at > older_than)]
    header = "open"
    if listing == "escalated":
        escalated = set(session.exec(select(TimelineEvent.exception_id).where(
            TimelineEvent.exception_id.in_([e.id for e in found]),  # type: ignore[union-attr]
            TimelineEvent.kind == "escalated")))
        found, header = [e for e in found if e.id in escalated], "escalated"
    elif listing == "approval":
        parts = set(session.exec(select(ExceptionDecision.exception_id).where(
            ExceptionDecision.exception_id.in_([e.id for e in found]),  # type: ignore[attr-defined]
            ExceptionDecision.status == "proposed")))
        found, header = [e for e in found if e.status == "proposed" or e.id in parts], "approval"
    elif listing == "down":
        machines = [m for m in session.exec(select(Machine).where(
            Machine.plant_id == plant.id, Machine.running == False).order_by(Machine.id))  # noqa: E712
                    if scope.sees(m.area_id) and (not area or m.area_id == area)]
        lines.append(f"{_h('down', language)}: " + ", ".join(f"{m.id} ({m.name})" for m in machines)
                     if machines else _h("nothing_down", language))
    filters = [messages.type_name(exception_type, language)] if exception_type else []
    if area:
        filters.append(area)
    if older_than is not None:
        filters.append(_h("older_than", language, age=messages.duration(older_than.total_seconds(), language)))
    title = _h(header, language) + (f" ({', '.join(filters)})" if filters else "")
    if found:
        lines.append(f"{title}:")
        lines += _lines(now, found, language)
    elif listing != "down":
        lines.append(f"{title}: {_h('none', language)}.")
    return "\n".join(lines)


def _finished_at(session: Session, plant: Plant, work_order_id: str) -> datetime | None:
    """When the MES or ERP first reported the order done (routing/kpis.py reads the same signals)."""
    status = Signal.payload["status"].as_string()  # type: ignore[index]
    reports = session.exec(select(Signal.received_at, status).where(
        Signal.plant_id == plant.id, Signal.kind == "work_order", Signal.error.is_(None),  # type: ignore[union-attr]
        Signal.payload["work_order"].as_string() == work_order_id)  # type: ignore[index]
        .order_by(Signal.received_at)).all()
    return next((at for at, said in reports
                 if str(said or "").strip().lower().replace("-", "_").replace(" ", "_") in DONE_WORDS), None)


def work_order_status(session: Session, plant: Plant, now: datetime, work_order_id: str, language: str,
                      scope: Scope | None = None) -> str:
    """Its status, machine, due date with the day; overdue flagged; a finished order says when it finished."""
    scope = scope or Scope(None)
    wo = session.get(WorkOrder, (plant.id, work_order_id))
    if wo is None:
        return _h("unknown_wo", language, id=work_order_id)
    machine = session.get(Machine, (plant.id, wo.machine_id))
    if machine is not None and not scope.sees(machine.area_id):
        return _h("not_your_area", language, id=wo.id, areas=_areas_text(scope))
    state = messages.render("q_running" if machine and machine.running else "q_stopped", language)
    status = messages.work_order_status_name(wo.status, language)
    if wo.quantity is not None:
        parts = [messages.render("q_work_order", language, work_order=wo.id, status=status, quantity=f"{wo.quantity:g}",
                                 material=wo.material_id or "-", machine=wo.machine_id, state=state)]
    else:
        parts = [messages.render("q_work_order_bare", language, work_order=wo.id, status=status,
                                 machine=wo.machine_id, state=state)]
    if wo.status == "done":
        finished = _finished_at(session, plant, wo.id)
        parts.append(_h("finished", language, when=when(plant, finished, language)) if finished
                     else _h("finished_bare", language))
    if wo.end:
        parts.append(messages.render("q_due", language, due=when(plant, wo.end, language)))
        if wo.status != "done" and wo.end < now:
            parts.append(_h("overdue", language, age=_ago(now, wo.end)))
    if wo.customer_order_id:
        parts.append(messages.render("q_for_customer", language, customer_order=wo.customer_order_id))
    touching = [e for e in _open_exceptions(session, plant.id) if wo.id in e.work_orders]
    text = ", ".join(parts) + "."
    if touching:
        text += "\n" + "\n".join(_lines(now, touching, language))
    return text


def machine_status(session: Session, plant: Plant, now: datetime, machine_id: str, language: str = "en",
                   scope: Scope | None = None) -> str:
    """Running or down (since when), and its open exceptions."""
    scope = scope or Scope(None)
    machine = session.get(Machine, (plant.id, machine_id))
    if machine is None:
        return messages.render("q_unknown_machine", language, machine=machine_id)
    if not scope.sees(machine.area_id):
        return _h("not_your_area", language, id=machine.id, areas=_areas_text(scope))
    touching = [e for e in _open_exceptions(session, plant.id) if e.machine_id == machine_id]
    state = messages.render("q_running" if machine.running else "q_stopped", language)
    if not machine.running and machine.down_since:
        state += f", {_h('down_since', language, when=when(plant, machine.down_since, language))}"
    text = messages.render("q_machine", language, machine=f"{machine.id} ({machine.name})", state=state)
    if touching:
        text += "\n" + "\n".join(_lines(now, touching, language))
    return text


def customer_order_status(session: Session, plant: Plant, now: datetime, order_id: str, language: str,
                          scope: Scope | None = None) -> str:
    """The promised date, at risk or not (and from which exceptions), and its work orders in the asker's areas."""
    scope = scope or Scope(None)
    order = session.get(CustomerOrder, (plant.id, order_id))
    if order is None:
        return _h("unknown_co", language, id=order_id)
    risks = [e for e in _open_exceptions(session, plant.id) if order.id in e.customer_orders_at_risk]
    due = when(plant, order.due, language) if order.due else "-"
    head = _h("customer_order", language, id=order.id, customer=order.customer, due=due)
    head += ", " + (_h("at_risk", language, codes=", ".join(e.code for e in risks)) if risks
                    else _h("not_at_risk", language)) + "."
    areas = {m.id: m.area_id for m in session.exec(select(Machine).where(Machine.plant_id == plant.id))}
    orders = [wo for wo in session.exec(select(WorkOrder).where(
        WorkOrder.plant_id == plant.id, WorkOrder.customer_order_id == order.id).order_by(WorkOrder.id))
        if scope.sees(areas.get(wo.machine_id))]
    lines = [head]
    if scope.areas is not None:
        lines.append(_h("your_areas", language, areas=_areas_text(scope)))
    if orders:
        lines.append(f"{_h('its_work_orders', language)}:")
        for wo in orders[:MAX_LINES]:
            line = f"- {wo.id} {messages.work_order_status_name(wo.status, language)} ({wo.machine_id})"
            if wo.end:
                line += f", {messages.render('q_due', language, due=when(plant, wo.end, language))}"
                if wo.status != "done" and wo.end < now:
                    line += f", {_h('overdue', language, age=_ago(now, wo.end))}"
            lines.append(line)
    return "\n".join(lines)


def exception_status(session: Session, plant: Plant, now: datetime, code: str, language: str,
                     scope: Scope | None = None) -> str:
    """Its status, who holds it, what it waits for, and its open decision parts."""
    scope = scope or Scope(None)
    exc = session.exec(select(PlantException).where(PlantException.plant_id == plant.id,
                                                    PlantException.code == code)).first()
    if exc is None:
        return _h("unknown_exception", language, id=code)
    if not scope.sees(exc.area_id):
        return _h("not_your_area", language, id=exc.code, areas=_areas_text(scope))
    where = exc.machine_id or exc.area_id or "-"
    type_name = messages.type_name(exc.type, language)
    if exc.closed_at is not None:
        return _h("exception_closed", language, code=exc.code, type=type_name, where=where,
                  when=when(plant, exc.closed_at, language)) + "."
    text = _h("exception", language, code=exc.code, type=type_name, where=where,
              status=messages.status_name(exc.status, language), age=_ago(now, exc.opened_at))
    holders = list(dict.fromkeys(session.exec(select(TimelineEvent.person_id).where(
        TimelineEvent.exception_id == exc.id, TimelineEvent.kind == "acknowledged",
        TimelineEvent.person_id.is_not(None)).order_by(TimelineEvent.id))))  # type: ignore[union-attr]
    people = {p.id: p.name for p in session.exec(select(Person).where(
        Person.plant_id == plant.id, Person.id.in_(holders)))}  # type: ignore[attr-defined]
    text += ", " + (_h("held_by", language, names=", ".join(f"{people.get(p, p)} ({p})" for p in holders))
                    if holders else _h("held_by_nobody", language))
    waits = {"open": _h("waits_ack", language), "acknowledged": _h("waits_fix", language),
             "proposed": _h("waits_approval", language, role=messages.role_name(exc.approver_role, language)),
             "approved": _h("waits_erp", language), "posted": _h("waits_close", language)}
    text += ", " + waits.get(exc.status, messages.status_name(exc.status, language))
    if exc.work_orders:
        text += ", " + messages.render("q_line_work_orders", language, work_orders=", ".join(exc.work_orders))
    text += "."
    parts = session.exec(select(ExceptionDecision).where(
        ExceptionDecision.exception_id == exc.id,
        ExceptionDecision.status.in_(("needed", "proposed"))).order_by(ExceptionDecision.id)).all()  # type: ignore[attr-defined]
    if parts:
        text += "\n" + _h("parts_open", language) + ":\n" + "\n".join(
            f"- {messages.kind_name(p.kind, language)} ({messages.role_name(p.role, language)}): "
            f"{messages.render(f'part_status_{p.status}', language)}"
            for p in parts)
    return text


def on_shift(session: Session, plant: Plant, now: datetime, role: str | None, area: str | None,
             language: str) -> str:
    """Who holds `role` (any role when None) for `area` and is on shift now: the people routing would page."""
    roster = Roster.load(session, plant.id)
    local = plant_local(plant, now)
    roles = [role] if role else sorted({r for entry in roster.people for r in entry.roles})
    ids = list(dict.fromkeys(pid for r in roles for pid in roster.ids_for_role(r, area, local)))
    role_words = messages.role_name(role, language) if role else ""
    if area:
        role_words += f" ({area})"
    if not ids:
        return _h("nobody_on_shift", language, role=role_words or "-")
    people = {p.id: p for p in session.exec(select(Person).where(
        Person.plant_id == plant.id, Person.id.in_(ids)))}  # type: ignore[attr-defined]
    title = _h("on_shift", language, role=role_words) if role else _h("on_shift_all", language)
    listed = []
    for pid in ids[:MAX_LINES]:
        person = people[pid]
        channels = ", ".join(messages.channel_name(c, language) for c in person.channels)
        extra = "" if role else ", " + ", ".join(messages.role_name(r, language) for r in person.roles)
        listed.append(f"- {person.name} ({person.id}{extra}{'; ' + channels if channels else ''})")
    return f"{title}:\n" + "\n".join(listed)


def period_of(text: str, plant: Plant, now: datetime, language: str) -> tuple[datetime, datetime, str]:
    """The plant-local period a question names ("yesterday", "esta semana", "letzten Monat",
    "pichhle 30 din"), as [since, until) and its words with the dates; the last seven days when none."""
    local = plant_local(plant, now)
    midnight = local.replace(hour=0, minute=0, second=0, microsecond=0)
    end = now + timedelta(seconds=1)  # what happened at this very second counts
    key, n = "last_days", 7
    for name, pattern in _PERIODS:
        if found := pattern.search(text):
            key = name
            if name in ("last_days", "last_hours"):
                n = max(1, min(int(found.group(1)), MAX_DAYS if name == "last_days" else 24 * MAX_DAYS))
            break
    if key == "today":
        since = midnight
    elif key == "yesterday":
        since, end = midnight - timedelta(days=1), midnight
    elif key == "this_week":
        since = midnight - timedelta(days=local.weekday())
    elif key == "last_week":
        end = midnight - timedelta(days=local.weekday())
        since = end - timedelta(days=7)
    elif key == "this_month":
        since = midnight.replace(day=1)
    elif key == "last_month":
        end = midnight.replace(day=1)
        since = (end - timedelta(days=1)).replace(day=1)
    elif key == "last_hours":
        since = local - timedelta(hours=n)
    else:
        since = local - timedelta(days=n)
    words = (PERIOD_NAMES[key].get(language) or PERIOD_NAMES[key]["en"]).format(n=n)
    last = min(end, now + timedelta(seconds=1)) - timedelta(seconds=1)
    days = DAY_NAMES.get(language, DAY_NAMES["en"])
    first, final = plant_local(plant, since), plant_local(plant, last)
    span = f"{days[first.weekday()]} {first:%Y-%m-%d}"
    if final.date() != first.date():
        span += f" – {days[final.weekday()]} {final:%Y-%m-%d}"
    return since, end, f"{words} ({span})"


def _figure(kpis: Kpis, name: str) -> str:
    value = getattr(kpis, name)
    if value is None:
        return "-"
    if name in ("schedule_adherence", "escalation_rate"):
        return f"{value * 100:g}%"
    if name.endswith("_minutes"):
        return f"{value:g} min"
    if name.endswith("_seconds"):
        return f"{value:g} s"
    return f"{value:g}"


def kpi_summary(session: Session, plant: Plant, now: datetime, text: str, language: str = "en") -> str:
    """The figures a question names for its period, or the main ones when it names none (docs/kpis.md)."""
    since, until, period = period_of(text[:LIMIT], plant, now, language)
    kpis = compute(session, plant.id, since, until)
    named = [(field, label) for field, pattern, label in _FIGURES if pattern.search(text)]
    if _BY_DOWNTIME.search(text) and not named:
        total = sum(g.downtime_minutes or 0 for g in kpis.by_type.values())
        return f"{period}: downtime {total:g} min" + "".join(
            f"\n- {messages.type_name(t, language)}: {g.downtime_minutes:g} min"
            for t, g in kpis.by_type.items() if g.downtime_minutes)
    if named:
        return f"{period}: " + ", ".join(f"{label} {_figure(kpis, field)}" for field, label in named) + \
            f" ({_h('counts', language, opened=kpis.opened, closed=kpis.closed)})."

    def fmt(v: float | None) -> str:
        return "-" if v is None else f"{v:g} min"

    return messages.render(
        "q_kpis", language, period=period, opened=kpis.opened, closed=kpis.closed,
        open_now=kpis.open_now, mttr=fmt(kpis.mttr_minutes), mtta=fmt(kpis.mtta_minutes),
        resolution=fmt(kpis.mean_resolution_minutes), escalations=kpis.escalations,
        messages="-" if kpis.messages_per_exception is None else kpis.messages_per_exception,
    ) + " " + _h("kpi_extra", language, adherence=_figure(kpis, "schedule_adherence"),
                 at_risk=_figure(kpis, "customer_orders_at_risk"), erp=_figure(kpis, "erp_latency_minutes"))


def top_types(session: Session, plant: Plant, now: datetime, text: str, language: str,
              by_downtime: bool = False) -> Answer:
    """The exception types of the period ranked by count, or by the downtime their breakdowns caused:
    as text (the top five) and as a Pareto chart of every type of the period."""
    since, until, period = period_of(text[:LIMIT], plant, now, language)
    groups = compute(session, plant.id, since, until).by_type
    if not groups:
        return Answer(_h("no_exceptions", language, period=period))
    if by_downtime:
        ranked = sorted(groups.items(), key=lambda item: (-(item[1].downtime_minutes or 0), -item[1].count, item[0]))
    else:
        ranked = sorted(groups.items(), key=lambda item: (-item[1].count, item[0]))
    title = _h("top_by_downtime" if by_downtime else "top_by_count", language, period=period)
    lines = []
    for rank, (name, group) in enumerate(ranked[:5], start=1):
        line = f"{rank}. {messages.type_name(name, language)}: {group.count}"
        if group.downtime_minutes is not None:
            line += f", {group.downtime_minutes:g} min"
        lines.append(line)
    charted = [(name, float(group.downtime_minutes or 0) if by_downtime else float(group.count))
               for name, group in ranked]
    charted = [(name, value) for name, value in charted if value > 0][:MAX_BARS]
    chart = Chart("pareto", title, tuple(messages.type_name(name, language) for name, _ in charted),
                  tuple(value for _, value in charted), "min" if by_downtime else "") if charted else None
    return Answer(f"{title}:\n" + "\n".join(lines), chart)


def slots(plant: Plant, since: datetime, until: datetime) -> tuple[list[datetime], str]:
    """The edges of a trend's slots: plant-local days (hours when the period spans two days or less),
    the first and last cut to the period; and "day" or "hour". Local midnights are found on the
    calendar, not by adding 24 hours, so a day with a clock change is still one day."""
    zone = ZoneInfo(plant.timezone)
    start, end = since.astimezone(zone), until.astimezone(zone)
    if until - since <= timedelta(days=2):
        step = start.replace(minute=0, second=0, microsecond=0)
        edges = [since]
        while True:
            step = (step.astimezone(UTC) + timedelta(hours=1)).astimezone(zone)
            if step >= end:
                break
            edges.append(step)
        return [*edges, until], "hour"
    edges, day = [since], start.date()
    while True:
        day += timedelta(days=1)
        midnight = datetime(day.year, day.month, day.day, tzinfo=zone)
        if midnight >= end:
            break
        edges.append(midnight)
    return [*edges, until], "day"


def trend(session: Session, plant: Plant, now: datetime, text: str, language: str) -> Answer:
    """How a figure moved over the period, per day (or hour): exceptions opened (of a type, if one is
    named), MTTR, or breakdown downtime; the text gives the total or mean and the slots that had any."""
    since, until, period = period_of(text[:LIMIT], plant, now, language)
    edges, unit = slots(plant, since, until)
    exception_type = _type_named(text)
    mttr = bool(_FIGURES[0][1].search(text))
    if mttr:
        exception_type = exception_type or "breakdown"  # MTTR is the breakdowns' figure (docs/kpis.md)
    groups = kpis_trend(session, plant.id, edges, exception_type)
    if mttr:
        measure, values, chart_unit = _h("trend_mttr", language), [g.mttr_minutes for g in groups], "min"
        whole = kpis_trend(session, plant.id, [since, until], exception_type)[0].mttr_minutes
        summary = f"MTTR {whole:g} min" if whole is not None else _h("trend_empty", language)
    elif _BY_DOWNTIME.search(text):
        measure, values, chart_unit = _h("trend_downtime", language), [g.downtime_minutes for g in groups], "min"
        summary = _h("trend_total", language, total=f"{sum(v or 0 for v in values):g} min")
    else:
        measure = _h("trend_type", language, type=messages.type_name(exception_type, language)) if exception_type \
            else _h("trend_count", language)
        values, chart_unit = [float(g.count) for g in groups], ""
        summary = _h("trend_total", language, total=f"{sum(v or 0 for v in values):g}")
    zone = ZoneInfo(plant.timezone)
    days = DAY_NAMES.get(language, DAY_NAMES["en"])
    labels = tuple(f"{e.astimezone(zone):%H:00}" if unit == "hour" else
                   f"{days[e.astimezone(zone).weekday()]} {e.astimezone(zone):%m-%d}" for e in edges[:-1])
    title = f"{measure[:1].upper()}{measure[1:]} {_h('per_' + unit, language)}, {period}"
    filled = [(label, value) for label, value in zip(labels, values, strict=True) if value]
    lines = [f"- {label}: {value:g}{' min' if chart_unit else ''}" for label, value in filled[-MAX_LINES:]]
    if len(filled) > MAX_LINES:  # the latest slots are listed; the chart shows them all
        lines.insert(0, _h("more", language, count=len(filled) - MAX_LINES))
    chart = Chart("trend", title, labels, tuple(float(v or 0) for v in values), chart_unit)
    return Answer(f"{title}: {summary}." + ("\n" + "\n".join(lines) if lines else ""), chart)

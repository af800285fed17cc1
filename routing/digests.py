"""Digests (docs/digests.md): per shift and per day, what happened and what still waits, for the
roles the plant file names, each in their own language.

A supervisor handing over a shift and a manager starting the day ask the same questions: what
went wrong, what is still stuck and on whom, which decisions nobody has taken, and whether the
plant is getting better. A digest answers them in one message instead of a status meeting.

The schedule is the plant file's `digests:` section, stored on the plant row: `shift` (at every
shift's end, covering the shift; or, in a plant without shifts, between the times `at`) and
`daily` (at `at`, covering the 24 hours before). Plant-local times, so a digest follows
daylight saving. `send_due` sends every period that ended after the plant's `DigestMark` and
moves the mark, in one transaction with the outbox rows, whose dedupe key names the plant, the
kind, the period's end and the person: a restart or a second replica sends nothing twice (the
runtime also holds an advisory lock around the pass, mfgos/runtime.py). The first pass of a new
schedule only sets the mark: digests start with the first period that ends after it. A period
that ended while every process was down is sent at the next pass if it ended within `CATCH_UP`.

An empty period is not skipped: its digest says in one line that nothing happened, so a missing
digest always means something is wrong, never that the shift was quiet.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from sqlmodel import Session, select

from models import (
    DigestMark,
    ExceptionDecision,
    ExceptionStatus,
    Machine,
    Person,
    Plant,
    PlantApproval,
    PlantException,
    Shift,
    TimelineEvent,
)
from routing import kpis, messages, outcomes
from routing import workflow as wf
from routing.decisions import OPEN as OPEN_PARTS
from routing.decisions import Status as PartStatus
from routing.roster import DAY_NAMES, ShiftHours, people_by_id
from routing.workflow import Context

KINDS = ("shift", "daily")
CATCH_UP = timedelta(days=1)  # a period that ended longer ago than this while everything was down is not sent
LIST_LIMIT = 10  # lines per list; the rest is counted ("... and 4 more")
# A digest fits one message everywhere (Slack clips a text at 3,000 characters): longer lists are cut shorter.
MAX_CHARS = 2800
SHORTER = (LIST_LIMIT, 5, 3, 1, 0)
SUMMARY_CHARS = 80  # of a report's text, in the list of what opened
WEEK = timedelta(days=7)
LOOKAHEAD = timedelta(days=8)  # a weekly shift pattern has an end within a week


@dataclass(frozen=True)
class Period:
    """One digest's span: `kind` (shift or daily), `label` (the shift id, or the times), [start, end) in UTC."""

    kind: str
    label: str
    start: datetime
    end: datetime


# --- the schedule ----------------------------------------------------------------------------


def _at(day: date, clock: time, zone: ZoneInfo) -> datetime:
    """The plant-local day and time as UTC: spans are then real hours (a night across a clock change is 7 or 9 h)."""
    return datetime.combine(day, clock, tzinfo=zone).astimezone(UTC)


def _clock(text: str) -> time:
    hours, minutes = text.split(":")
    return time(int(hours), int(minutes))


def _days(since: datetime, until: datetime, zone: ZoneInfo) -> list[date]:
    """The plant-local days around [since, until]: a period ending in it may start a day before."""
    first, last = since.astimezone(zone).date() - timedelta(days=2), until.astimezone(zone).date() + timedelta(days=1)
    return [first + timedelta(days=n) for n in range((last - first).days + 1)]


def _shift_periods(spec: dict[str, Any], shifts: Sequence[Shift], days: list[date], zone: ZoneInfo) -> list[Period]:
    if spec.get("at"):
        times = sorted({_clock(t) for t in spec["at"]})
        periods = []
        for day in days:
            for i, clock in enumerate(times):  # each time ends the period since the one before (yesterday's last)
                start = _at(day, times[i - 1], zone) if i else _at(day - timedelta(days=1), times[-1], zone)
                label = f"{times[i - 1]:%H:%M}-{clock:%H:%M}"
                periods.append(Period("shift", label, start, _at(day, clock, zone)))
        return periods
    wanted = spec.get("shifts")
    periods = []
    for shift in shifts:
        if wanted is not None and shift.id not in wanted:
            continue
        hours = ShiftHours.of(shift)
        for day in days:
            if DAY_NAMES[day.weekday()] not in hours.days:
                continue
            end_day = day if hours.end > hours.start else day + timedelta(days=1)  # past midnight: ends next day
            periods.append(Period("shift", shift.id, _at(day, hours.start, zone), _at(end_day, hours.end, zone)))
    return periods


def periods_ending(plant: Plant, shifts: Sequence[Shift], since: datetime, until: datetime) -> list[Period]:
    """Every digest period of the plant's schedule that ends in (since, until], oldest first."""
    zone = ZoneInfo(plant.timezone)
    days = _days(since, until, zone)
    found: list[Period] = []
    if (spec := plant.digests.get("shift")) is not None:
        found += _shift_periods(spec, shifts, days, zone)
    if (spec := plant.digests.get("daily")) is not None:
        clock = _clock(spec["at"])
        found += [Period("daily", "", _at(day - timedelta(days=1), clock, zone), _at(day, clock, zone)) for day in days]
    ended = [p for p in found if since < p.end <= until]
    return sorted(ended, key=lambda p: (p.end, KINDS.index(p.kind), p.label))


def next_end(session: Session, plant: Plant, after: datetime) -> datetime | None:
    """When the next digest is due, strictly after `after`: the replay's clock and `serve`'s scheduler stop there."""
    if not plant.digests:
        return None
    ahead = periods_ending(plant, _shifts(session, plant), after, after + LOOKAHEAD)
    return ahead[0].end if ahead else None


def _shifts(session: Session, plant: Plant) -> list[Shift]:
    return list(session.exec(select(Shift).where(Shift.plant_id == plant.id).order_by(Shift.id)))  # type: ignore[arg-type]


# --- sending ---------------------------------------------------------------------------------


def send_due(ctx: Context) -> int:
    """Send the digests of every period that ended since the last pass; how many messages were queued.

    Run under the runtime's digest lock; the mark moves in the same transaction as the outbox rows."""
    if not ctx.plant.digests:
        return 0
    queued = 0
    shifts = _shifts(ctx.session, ctx.plant)
    for kind in KINDS:
        if kind not in ctx.plant.digests:
            continue
        mark = ctx.session.get(DigestMark, (ctx.plant.id, kind))
        if mark is None:  # a new schedule: the first digest is of the first period ending from now on
            ctx.session.add(DigestMark(plant_id=ctx.plant.id, kind=kind, done_until=ctx.now))
            continue
        if mark.done_until >= ctx.now:
            continue
        for period in periods_ending(ctx.plant, shifts, max(mark.done_until, ctx.now - CATCH_UP), ctx.now):
            if period.kind == kind:
                queued += _send(ctx, period, ctx.plant.digests[kind]["roles"])
        mark.done_until = ctx.now
        ctx.session.add(mark)
    return queued


def _send(ctx: Context, period: Period, roles: Sequence[str]) -> int:
    ctx.cause = f"digest:{ctx.plant.id}:{period.kind}:{period.end.isoformat()}"
    facts = gather(ctx.session, ctx.plant, period, ctx.now)
    ids = [entry.person_id for entry in wf.static(ctx).roster.people if set(entry.roles) & set(roles)]
    for who in people_by_id(ctx.session, ctx.plant.id, ids):
        role = next(r for r in roles if r in who.roles)
        wf.notify(ctx, who, "digest", render(facts.for_person(who), who.language, ctx.plant.timezone), role=role)
    return len(ids)


# --- what a digest says ----------------------------------------------------------------------


@dataclass
class Facts:
    """What one period's digest is about; `for_person` narrows it to the areas a person covers."""

    period: Period
    now: datetime
    opened: list[PlantException]
    still_open: list[PlantException]
    escalations: list[tuple[PlantException, TimelineEvent]]
    parts: list[tuple[PlantException, ExceptionDecision, str]]  # the part and the role it waits for
    week: kpis.Kpis
    machines_down: set[str]
    # The four outcomes of the same seven days against the plant file's baseline; None without one.
    outcomes: outcomes.Outcomes | None = None

    def for_person(self, who: Person) -> Facts:
        if not who.areas:
            return self

        def mine(exc: PlantException) -> bool:
            return exc.area_id is None or exc.area_id in who.areas

        return Facts(self.period, self.now, [e for e in self.opened if mine(e)],
                     [e for e in self.still_open if mine(e)], [x for x in self.escalations if mine(x[0])],
                     [x for x in self.parts if mine(x[0])], self.week, self.machines_down, self.outcomes)

    @property
    def quiet(self) -> bool:
        return not (self.opened or self.still_open or self.escalations or self.parts)


def gather(session: Session, plant: Plant, period: Period, now: datetime) -> Facts:
    """The period's facts as the store holds them at `now` (the period's end, or just after)."""
    opened = list(session.exec(select(PlantException).where(
        PlantException.plant_id == plant.id, PlantException.opened_at >= period.start,
        PlantException.opened_at < period.end).order_by(PlantException.id)))  # type: ignore[arg-type]
    still_open = list(session.exec(select(PlantException).where(
        PlantException.plant_id == plant.id, PlantException.status != ExceptionStatus.closed.value,
        PlantException.opened_at < period.end).order_by(PlantException.opened_at, PlantException.id)))  # type: ignore[arg-type]
    escalations = list(session.exec(select(PlantException, TimelineEvent).join(
        TimelineEvent, TimelineEvent.exception_id == PlantException.id).where(  # type: ignore[arg-type]
        PlantException.plant_id == plant.id, TimelineEvent.kind == "escalated", TimelineEvent.at >= period.start,
        TimelineEvent.at < period.end).order_by(TimelineEvent.at, TimelineEvent.id)))  # type: ignore[arg-type]
    rows = session.exec(select(PlantException, ExceptionDecision).join(
        ExceptionDecision, ExceptionDecision.exception_id == PlantException.id).where(  # type: ignore[arg-type]
        ExceptionDecision.plant_id == plant.id, ExceptionDecision.status.in_([s.value for s in OPEN_PARTS]))  # type: ignore[attr-defined]
        .order_by(ExceptionDecision.created_at, ExceptionDecision.id)).all()  # type: ignore[arg-type]
    approvers = _approvers(session, plant)
    parts = [(exc, part, approvers.get(part.kind, part.role) if part.status == PartStatus.proposed else part.role)
             for exc, part in rows]
    down = {m.id for m in session.exec(select(Machine).where(Machine.plant_id == plant.id,
                                                             Machine.running == False))}  # noqa: E712
    compared = outcomes.compute(session, plant.id, plant.baseline, period.end - WEEK, period.end) \
        if plant.baseline else None
    return Facts(period, now, opened, still_open, list(escalations), parts,
                 kpis.compute(session, plant.id, period.end - WEEK, period.end), down, compared)


def _approvers(session: Session, plant: Plant) -> dict[str, str]:
    return {a.kind: a.role for a in session.exec(select(PlantApproval).where(PlantApproval.plant_id == plant.id))}


def _waits_for(exc: PlantException, language: str) -> str:
    """What an unfinished exception waits for, by its state (docs/routing.md, "Lifecycle")."""
    if exc.status == ExceptionStatus.open:
        return messages.render("digest_wait_ack", language)
    if exc.status == ExceptionStatus.acknowledged:
        return messages.render("digest_wait_fix", language)
    if exc.status == ExceptionStatus.proposed:
        return messages.render("digest_wait_approval", language, role=exc.approver_role)
    if exc.status == ExceptionStatus.approved:
        return messages.render("digest_wait_erp", language)
    return messages.render("digest_wait_running", language, machine=exc.machine_id or "-")


def _limited(lines: list[str], language: str, limit: int) -> list[str]:
    if len(lines) <= limit:
        return lines
    return [*lines[:limit], messages.render("digest_more", language, count=len(lines) - limit)]


def _minutes(value: float | None) -> str:
    return "-" if value is None else messages.duration(value * 60)


def _share(value: float | None) -> str:
    return "-" if value is None else f"{value:.0%}"


def render(facts: Facts, language: str, timezone: str) -> str:
    """The digest in `language`: a head line, then each list with its count, then the week's figures;
    with the lists cut shorter while it would not fit one message (`MAX_CHARS`)."""
    for limit in SHORTER:
        text = _render(facts, language, timezone, limit)
        if len(text) <= MAX_CHARS:
            break
    return text


def _render(facts: Facts, language: str, timezone: str, limit: int) -> str:
    zone = ZoneInfo(timezone)
    period = facts.period
    start, end = period.start.astimezone(zone), period.end.astimezone(zone)
    span = f"{start:%Y-%m-%d %H:%M} - {end:%H:%M}" if start.date() == end.date() else \
        f"{start:%Y-%m-%d %H:%M} - {end:%Y-%m-%d %H:%M}"
    lines = [messages.render(f"digest_head_{period.kind}", language, shift=period.label, span=span)]
    if facts.quiet:
        lines.append(messages.render("digest_quiet", language))
    else:
        lines.append(messages.render("digest_opened", language, count=len(facts.opened)))
        lines += _limited([_opened_line(e, language) for e in facts.opened], language, limit)
        lines.append(messages.render("digest_open", language, count=len(facts.still_open)))
        lines += _limited([_open_line(e, facts, language) for e in facts.still_open], language, limit)
        lines.append(messages.render("digest_escalations", language, count=len(facts.escalations)))
        lines += _limited([_escalation_line(e, t, language, zone) for e, t in facts.escalations], language, limit)
        lines.append(messages.render("digest_parts", language, count=len(facts.parts)))
        lines += _limited([_part_line(e, p, role, facts.now, language) for e, p, role in facts.parts], language, limit)
    week = facts.week
    lines.append(messages.render(
        "digest_week", language, opened=week.opened, closed=week.closed, mtta=_minutes(week.mtta_minutes),
        mttr=_minutes(week.mttr_minutes), adherence=_share(week.schedule_adherence),
        escalation_rate=_share(week.escalation_rate), erp_rejected=week.erp_rejected or 0))
    if facts.outcomes is not None:
        lines += _outcome_lines(facts.outcomes, language)
    return "\n".join(lines)


def _outcome_lines(found: outcomes.Outcomes, language: str) -> list[str]:
    """One line per exception type (and the whole plant first) with each outcome that has both a
    baseline and a current figure: the workflows that pay off, and those to design next."""
    lines = []
    groups = [(messages.render("digest_outcomes_all", language), found.overall),
              *((messages.type_name(t, language), f) for t, f in found.by_type.items())]
    for name, figures in groups:
        said = [messages.render("digest_outcome", language, name=messages.render(f"outcome_{key}", language),
                                current=_outcome_value(key, figures[key]["current"]),
                                baseline=_outcome_value(key, figures[key]["baseline"]),
                                change=_outcome_change(key, figures[key]))
                for key, _, _ in outcomes.OUTCOMES if figures[key]["change"] is not None]
        if said:
            lines.append(f"- {name}: " + ", ".join(said))
    return [messages.render("digest_outcomes", language), *lines] if lines else []


def _outcome_value(key: str, value: float) -> str:
    if key == "resolution_minutes":
        return _minutes(value)
    return _share(value) if key in ("schedule_adherence", "erp_correction_rate") else f"{value:g}"


def _outcome_change(key: str, figure: dict[str, Any]) -> str:
    """Rates change by points, the others by a share of the baseline."""
    if key in ("schedule_adherence", "erp_correction_rate"):
        return f"{figure['change'] * 100:+.1f} pts"
    return f"{figure['change_pct']:+.0f}%" if figure["change_pct"] is not None else f"{figure['change']:+g}"


def _opened_line(exc: PlantException, language: str) -> str:
    return "- " + messages.render("digest_opened_line", language, code=exc.code, type=exc.type,
                                  where=exc.machine_id or exc.area_id or "-", status=exc.status, summary=_cut(exc.summary))


def _open_line(exc: PlantException, facts: Facts, language: str) -> str:
    return "- " + messages.render("digest_open_line", language, code=exc.code, type=exc.type,
                                  where=_where(exc, facts, language), waits=_waits_for(exc, language),
                                  age=messages.age((facts.now - exc.opened_at).total_seconds(), language))


def _escalation_line(exc: PlantException, event: TimelineEvent, language: str, zone: ZoneInfo) -> str:
    return "- " + messages.render("digest_escalation_line", language, code=exc.code, role=event.data.get("role") or "-",
                                  to_role=event.data.get("to_role") or "-", time=f"{event.at.astimezone(zone):%H:%M}")


def _part_line(exc: PlantException, part: ExceptionDecision, role: str, now: datetime, language: str) -> str:
    return "- " + messages.render("digest_part_line", language, code=exc.code, kind=part.kind, role=role,
                                  state=messages.render(f"digest_part_{part.status}", language),
                                  age=messages.age((now - part.created_at).total_seconds(), language))


def _where(exc: PlantException, facts: Facts, language: str) -> str:
    where = exc.machine_id or exc.area_id or "-"
    return f"{where} ({messages.render('q_stopped', language)})" if exc.machine_id in facts.machines_down else where


def _cut(text: str) -> str:
    text = " ".join(text.split())
    return text if len(text) <= SUMMARY_CHARS else text[:SUMMARY_CHARS - 1] + "…"

"""The exception lifecycle: open, correlate, route, acknowledge, propose, decide, post, close.

Every function here runs inside the caller's database transaction and only writes rows:
timeline events, notification outbox rows, escalation timers and ERP outbox rows. Nothing
leaves the process from here, so a crash before the commit leaves no trace and a crash
after it leaves the outbox workers everything they need.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any, TypeVar

from sqlalchemy import text as sa_text
from sqlmodel import Session, select

from models import (
    AckTimer,
    Approval,
    ErpTransaction,
    ExceptionStatus,
    Machine,
    Material,
    Notification,
    Person,
    Plant,
    PlantException,
    TimelineEvent,
    WorkOrder,
)
from models.decisions import DECISION_ERP_KINDS
from routing import mes, messages
from routing.erp_facts import breakdown_facts
from routing.impact import analyse
from routing.keys import erp_key
from routing.lifecycle import (
    BUTTONS,
    DECIDERS,
    ERP_BUTTONS,
    EVENT,
    NOT_BY_REPORTER,
    UNFINISHED,
    WITH_BUTTONS,
    Action,
    Relation,
    erp_buttons,
    step_for,
)
from routing.roster import people_for_role
from routing.rules import NotifyStep, matching_rule
from routing.similar import past_fixes
from routing.static import StaticData

OPEN_STATUSES = tuple(state.value for state in UNFINISHED)
MACHINE_TYPES = ("breakdown", "tooling", "utility")  # resolutions that become maintenance requests
# Reports of these types are about a machine; without one the bot asks back.
NEEDS_MACHINE = ("breakdown", "tooling")
CORRELATION_WINDOW = timedelta(hours=2)  # for reports that name no machine
PAGES = ("alert", "escalation")  # the notifications that make someone `notified` for an exception


class WorkflowError(Exception):
    """A request the lifecycle cannot take (e.g. approving a closed exception)."""


@dataclass
class Context:
    """One unit of work: the session, the plant, the time, and what caused it (for outbox keys)."""

    session: Session
    plant: Plant
    now: datetime
    cause: str  # e.g. "signal:42", "timer:7", "erp:3" — makes outbox keys deterministic
    # People, shifts and rules as the caller already holds them (a cache); else read once here.
    static: StaticData | None = None
    # True when no earlier transaction can have written rows of this cause (a signal processed
    # for the first time, under its row lock): then `notify` needs no look-up in the store.
    new_cause: bool = False
    notified: dict[str, Notification] = field(default_factory=dict, repr=False)  # this unit's, by key
    # The session's identity map holds rows weakly; master-data rows read once stay here for the
    # unit of work, so the next look-up of the same machine or person costs no query (and no flush).
    held: dict[tuple[type, str], Any] = field(default_factory=dict, repr=False)


M = TypeVar("M", Machine, Material, Person, WorkOrder)


def master_row(ctx: Context, model: type[M], row_id: str) -> M | None:
    """A machine, material, person or work order of the plant by id (`Session.get`, kept for the unit).

    Without autoflush: the lifecycle never adds these rows, and a change to one already read is
    on the object the identity map returns, so flushing first could not change the answer.
    """
    with ctx.session.no_autoflush:
        found = ctx.session.get(model, (ctx.plant.id, row_id))
    if found is not None:
        ctx.held[(model, row_id)] = found
    return found


def static(ctx: Context) -> StaticData:
    if ctx.static is None:
        ctx.static = StaticData.load(ctx.session, ctx.plant)
    return ctx.static


def paged_for_role(ctx: Context, role: str, area: str | None) -> list[Person]:
    """People holding `role` for `area`, on shift now (`routing.roster.people_for_role`)."""
    return people_for_role(ctx.session, ctx.plant, role, area, ctx.now, static(ctx).roster)


# --- small helpers -----------------------------------------------------------------------


def person(ctx: Context, person_id: str | None) -> Person | None:
    return master_row(ctx, Person, person_id) if person_id else None


def display_name(ctx: Context, person_id: str | None) -> str:
    found = person(ctx, person_id)
    return found.name if found else (person_id or "system")


def log(ctx: Context, exc: PlantException, event_kind: str, text: str = "", person_id: str | None = None,
        **data: Any) -> TimelineEvent:
    event = TimelineEvent(exception_id=exc.id, at=ctx.now, kind=event_kind, person_id=person_id, text=text, data=data)
    ctx.session.add(event)
    return event


def preferred_channel(who: Person, reply_channel: str | None = None) -> tuple[str, str]:
    """Answer where the person wrote from; otherwise their first configured channel; else the console."""
    if reply_channel and (reply_channel == "console" or reply_channel in who.channels):
        return reply_channel, who.channels.get(reply_channel, who.id)
    for channel, address in who.channels.items():
        return channel, address
    return "console", who.id


def notify(ctx: Context, who: Person, kind: str, text: str, *, exc: PlantException | None = None,
           role: str | None = None, buttons: tuple[str, ...] = (), reply_channel: str | None = None,
           chart: dict[str, Any] | None = None) -> Notification:
    channel, address = preferred_channel(who, reply_channel)
    if role is None:
        # Say in which capacity the person hears about it: as the reporter, or by their role.
        role = "reporter" if exc and exc.reporter_id == who.id else (who.roles[0] if who.roles else None)
    return _add_once(ctx, f"{ctx.cause}:{kind}:{who.id}:{exc.id if exc else '-'}", lambda key: Notification(
        plant_id=ctx.plant.id, dedupe_key=key, exception_id=exc.id if exc else None, person_id=who.id,
        role=role, kind=kind, channel=channel, address=address, language=who.language, text=text,
        buttons=list(buttons), created_at=ctx.now, next_attempt_at=ctx.now, chart=chart,
    ))


def _add_once(ctx: Context, key: str, build: Callable[[str], Notification]) -> Notification:
    """The outbox row of `key`: the one this cause already wrote (a replay, a retry), else a new one."""
    existing = ctx.notified.get(key)
    if existing is None and not ctx.new_cause:
        # Rows this unit of work added are in `ctx.notified`: nothing to flush before looking.
        with ctx.session.no_autoflush:
            existing = ctx.session.exec(select(Notification).where(Notification.dedupe_key == key)).first()
    if existing:
        return existing
    row = build(key)
    ctx.session.add(row)
    ctx.notified[key] = row
    return row


def replace_buttons(ctx: Context, row: Notification, buttons: list[str], text: str, reason: str) -> Notification:
    """A `buttons_update` of the sent message `row`: `buttons` are the ones still valid, `text` the
    status line; once per cause and `reason`, so a replay writes nothing twice."""
    return _add_once(ctx, f"{ctx.cause}:buttons_update:{row.id}:{reason}", lambda key: Notification(
        plant_id=ctx.plant.id, dedupe_key=key, exception_id=row.exception_id, person_id=row.person_id, role=row.role,
        kind="buttons_update", channel=row.channel, address=row.address, language=row.language, text=text,
        buttons=buttons, created_at=ctx.now, next_attempt_at=ctx.now, updates_id=row.id))


def machine_label(ctx: Context, machine_id: str | None) -> str:
    if not machine_id:
        return "?"
    machine = master_row(ctx, Machine, machine_id)
    return f"{machine_id} ({machine.name})" if machine else machine_id


def thread_people(ctx: Context, exc: PlantException) -> list[Person]:
    """The reporter and everyone paged for the exception, in the order they joined."""
    ids: list[str] = [exc.reporter_id] if exc.reporter_id else []
    rows = ctx.session.exec(
        select(Notification.person_id)
        .where(Notification.exception_id == exc.id, Notification.kind.in_(("alert", "escalation")))  # type: ignore[attr-defined]
        .order_by(Notification.id)
    ).all()
    for pid in rows:
        if pid not in ids:
            ids.append(pid)
    return [p for p in (person(ctx, pid) for pid in ids) if p]


def open_exceptions(ctx: Context) -> list[PlantException]:
    return list(ctx.session.exec(
        select(PlantException)
        .where(PlantException.plant_id == ctx.plant.id, PlantException.status.in_(OPEN_STATUSES))  # type: ignore[attr-defined]
        .order_by(PlantException.id)
    ))


def exception_by_code(ctx: Context, code: str) -> PlantException | None:
    return ctx.session.exec(select(PlantException).where(PlantException.code == code.upper())).first()


# --- report ------------------------------------------------------------------------------


def find_correlated(ctx: Context, *, exception_type: str, machine_id: str | None, area_id: str | None,
                    work_order_id: str | None) -> PlantException | None:
    """A second report of the same problem joins the open exception instead of opening another.

    Same problem = same type on the same machine while the exception is open; for reports
    without a machine, same type and the same work order, or the same area within two hours.

    When none is open the caller goes on to open one. Two processes (inbound workers, replicas)
    reporting the same new breakdown at the same moment would both find none and open two; so on
    PostgreSQL the second look is made under `hold_opening`, which the first holds until it commits.
    """
    found = _open_correlated(ctx, exception_type=exception_type, machine_id=machine_id, area_id=area_id,
                             work_order_id=work_order_id)
    if found is None and hold_opening(ctx, exception_type, machine_id, area_id):
        found = _open_correlated(ctx, exception_type=exception_type, machine_id=machine_id, area_id=area_id,
                                 work_order_id=work_order_id)
    return found


# 'mfgx': the transaction-scoped advisory lock on opening an exception that names no machine, with the hash
# of the schema, plant, type and area as the second key: other schemas (tenants, tests) never wait for it.
OPENING_LOCK = 0x6D66_6778


def hold_opening(ctx: Context, exception_type: str, machine_id: str | None, area_id: str | None) -> bool:
    """Wait until no other transaction may be opening an exception on this machine (or, without one, of
    this type in this area), and hold that right until this one ends. False on SQLite, whose one writer
    at a time serializes anyway.

    On a machine the lock is the machine's row (FOR UPDATE): a machine state stopping it, or a
    breakdown opening on it, writes that row anyway, so every path takes the row first and then
    nothing else of the machine's, and no two of them can wait for each other. Taken only when no
    open exception was found: a report that joins one costs no round trip. Under READ COMMITTED the
    look after it sees what the previous holder committed.
    """
    if ctx.session.get_bind().dialect.name != "postgresql":
        return False
    if machine_id and ctx.session.execute(
            select(Machine.id).where(Machine.plant_id == ctx.plant.id, Machine.id == machine_id).with_for_update()
    ).first() is not None:
        return True
    ctx.session.execute(sa_text(
        "SELECT pg_advisory_xact_lock(:key, hashtext(coalesce(current_schema(), '') || '/' || :plant"
        " || '/' || :type || '/' || :subject))"),
        {"key": OPENING_LOCK, "plant": ctx.plant.id, "type": exception_type, "subject": machine_id or area_id or "-"})
    return True


def _open_correlated(ctx: Context, *, exception_type: str, machine_id: str | None, area_id: str | None,
                     work_order_id: str | None) -> PlantException | None:
    # Only the open ones of this type (on this machine, if named), newest first: one plant can
    # have many open exceptions, and each row read whole costs (its JSON columns).
    query = select(PlantException).where(
        PlantException.plant_id == ctx.plant.id, PlantException.status.in_(OPEN_STATUSES),  # type: ignore[attr-defined]
        PlantException.type == exception_type)
    if machine_id:
        query = query.where(PlantException.machine_id == machine_id)
    for exc in ctx.session.exec(query.order_by(PlantException.id.desc())):  # type: ignore[union-attr]
        if machine_id:
            if exc.machine_id == machine_id:
                return exc
        elif work_order_id and work_order_id in exc.work_orders or area_id and exc.area_id == area_id and exc.machine_id is None and ctx.now - exc.opened_at <= CORRELATION_WINDOW:
            return exc
    return None


def join_report(ctx: Context, exc: PlantException, reporter: Person | None, text: str,
                work_order_id: str | None, reply_channel: str | None) -> None:
    log(ctx, exc, "reported_again", text, reporter.id if reporter else None)
    if work_order_id and work_order_id not in exc.work_orders:
        exc.work_orders = [*exc.work_orders, work_order_id]
    if reporter:
        notify(ctx, reporter, "joined", messages.render("joined", reporter.language, code=exc.code, status=exc.status),
               exc=exc, role="reporter", reply_channel=reply_channel)


def open_exception(
    ctx: Context,
    *,
    exception_type: str,
    text: str,
    reporter: Person | None,
    machine_id: str | None = None,
    work_order_id: str | None = None,
    material_id: str | None = None,
    severity: str = "medium",
    language: str = "en",
    expected_downtime: timedelta | None = None,
    reply_channel: str | None = None,
    source: str = "chat",
    work_orders: Sequence[str] = (),
) -> PlantException:
    """Open an exception, analyse its impact, route it and page the people the rules name.

    `work_orders`: the orders it holds, when the opener knows them (the stock watch's short
    orders, on any machine): they are its affected work orders, before routing pages anyone."""
    area_id = area_for(ctx, machine_id, material_id, work_order_id or next(iter(work_orders), None), reporter)
    if machine_id is None and work_order_id:
        wo = master_row(ctx, WorkOrder, work_order_id)
        machine_id = wo.machine_id if wo else None
    exc = PlantException(
        plant_id=ctx.plant.id, code="E-pending", type=exception_type, severity=severity, summary=text[:500],
        language=language, machine_id=machine_id, area_id=area_id, material_id=material_id,
        reporter_id=reporter.id if reporter else None, opened_at=ctx.now,
        # Given rather than left to the default factories, which cost pydantic a signature
        # inspection each (about 1 ms for the four).
        work_orders=[], customer_orders_at_risk=[], staging_conflict={}, proposal={},
    )
    ctx.session.add(exc)
    ctx.session.flush()
    exc.code = f"E-{exc.id:04d}"
    # Impact reads work orders only, which nothing before it in a unit of work changes; without
    # autoflush the code above goes out in one UPDATE with the impact at the commit, not in two.
    with ctx.session.no_autoflush:
        impact = analyse(
            ctx.session, ctx.plant.id, machine_id=machine_id, work_order_id=work_order_id, material_id=material_id,
            exception_type=exception_type, at=ctx.now, expected_downtime=expected_downtime, named=work_orders,
        )
    exc.work_orders = impact.work_orders
    exc.customer_orders_at_risk = impact.customer_orders_at_risk
    exc.staging_conflict = impact.staging_conflict
    log(ctx, exc, "opened", text, exc.reporter_id, type=exception_type, machine=machine_id, source=source,
        severity=severity)
    log(ctx, exc, "impact", "", None, work_orders=impact.work_orders,
        customer_orders_at_risk=impact.customer_orders_at_risk, staging_conflict=impact.staging_conflict)
    if machine_id and exception_type == "breakdown":
        machine = master_row(ctx, Machine, machine_id)
        if machine and machine.running:
            machine.running = False
            ctx.session.add(machine)
    paged = route(ctx, exc)
    if reporter:
        names = ", ".join(sorted({p.name for p in paged})) or "-"
        notify(ctx, reporter, "opened", messages.render(
            "reporter_opened", reporter.language, code=exc.code,
            type=messages.type_name(exception_type, reporter.language),
            machine=machine_label(ctx, machine_id), names=names,
        ), exc=exc, role="reporter", reply_channel=reply_channel)
    return exc


def area_for(ctx: Context, machine_id: str | None, material_id: str | None, work_order_id: str | None,
              reporter: Person | None) -> str | None:
    if machine_id and (machine := master_row(ctx, Machine, machine_id)):
        return machine.area_id
    if work_order_id and (wo := master_row(ctx, WorkOrder, work_order_id)):
        machine = master_row(ctx, Machine, wo.machine_id)
        if machine:
            return machine.area_id
    if material_id and (material := master_row(ctx, Material, material_id)) and material.area_id:
        return material.area_id
    if reporter and len(reporter.areas) == 1:
        return reporter.areas[0]
    return None


def _alert_text(ctx: Context, exc: PlantException, who: Person, step: NotifyStep,
                past: Sequence[Mapping[str, Any]] = ()) -> str:
    lang = who.language
    parts = [messages.render("alert", lang, code=exc.code, type=messages.type_name(exc.type, lang),
                             machine=machine_label(ctx, exc.machine_id), summary=exc.summary)]
    if past and step.ack_within:  # the roles that answer for it are the ones who fix it
        parts.append(messages.past_fixes(past, lang))
    if exc.work_orders:
        parts.append(messages.render("alert_work_orders", lang, work_orders=", ".join(exc.work_orders)))
    if exc.customer_orders_at_risk and step.role in ("customer_service", "planner", "manager", "supervisor"):
        parts.append(messages.render("alert_customers", lang, customer_orders=", ".join(exc.customer_orders_at_risk)))
    if exc.staging_conflict and step.role in ("materials", "planner"):
        parts.append(messages.render("alert_staging", lang, work_order=exc.staging_conflict.get("work_order")
                                     or ", ".join(exc.staging_conflict.get("work_orders", [])),
                                     material=exc.staging_conflict.get("material")))
    if step.ack_within:
        parts.append(messages.render("alert_ack", lang, ack=_format_minutes(step.ack_within)))
    return " ".join(parts)


def _format_minutes(delta: timedelta) -> str:
    minutes = int(delta.total_seconds() // 60)
    return f"{minutes} min" if minutes < 120 else f"{minutes // 60} h"


def route(ctx: Context, exc: PlantException) -> list[Person]:
    """Page each role of the first matching rule; start an escalation timer where `ack_within` is set."""
    rule = matching_rule(ctx.session, ctx.plant.id, {
        "type": exc.type, "area": exc.area_id, "machine": exc.machine_id, "severity": exc.severity,
    }, static(ctx).rules)
    if rule is None:
        log(ctx, exc, "unrouted", "no routing rule matches")
        return []
    exc.rule_position = rule.position
    exc.approver_role = rule.approver
    paged: list[Person] = []
    past: list[dict[str, Any]] = []
    if any(step.ack_within for step in rule.steps):
        past = [fix.as_data(ctx.now) for fix in past_fixes(ctx.session, exc)]
        if past:
            log(ctx, exc, "similar", "", None, fixes=past)
    conditions = {
        "staging_conflict": bool(exc.staging_conflict),
        "customer_orders_at_risk": bool(exc.customer_orders_at_risk),
    }
    for step in rule.steps:
        if step.condition and not conditions.get(step.condition, False):
            continue
        # The reporter already knows; paging them for their own report is noise.
        holders = [p for p in paged_for_role(ctx, step.role, exc.area_id) if p.id != exc.reporter_id]
        if not holders:
            log(ctx, exc, "nobody_available", f"nobody with role {step.role} on shift", role=step.role)
            if step.escalate_to:
                paged += _escalate(ctx, exc, step.role, step.escalate_to, "nobody_on_shift", step.ack_within)
            continue
        # Someone holding two roles the rule pages hears it once, from the first step; they still
        # answer for both (their acknowledgement settles the timers of every role they hold).
        earlier = {q.id for q in paged}
        people = [p for p in holders if p.id not in earlier]
        for who in people:
            notify(ctx, who, "alert", _alert_text(ctx, exc, who, step, past), exc=exc, role=step.role,
                   buttons=("ack", "propose") if step.ack_within else ())
            paged.append(who)
        already = [p.id for p in holders if p.id in earlier]
        log(ctx, exc, "routed", "", None, role=step.role, people=[p.id for p in people],
            ack_within=int(step.ack_within.total_seconds()) if step.ack_within else None,
            **({"already_paged": already} if already else {}))
        if step.ack_within:
            ctx.session.add(AckTimer(exception_id=exc.id, role=step.role, due_at=ctx.now + step.ack_within,
                                     escalate_to=step.escalate_to))
    return paged


def _escalate(ctx: Context, exc: PlantException, role: str, escalate_to: str, template: str,
              ack_within: timedelta | None) -> list[Person]:
    """Page `escalate_to`, except the reporter (it is their own report) and anyone paged for it already."""
    holders = paged_for_role(ctx, escalate_to, exc.area_id) or paged_for_role(ctx, escalate_to, None)
    already = paged_ids(ctx, exc)
    people = [p for p in holders if p.id != exc.reporter_id and p.id not in already]
    for who in people:
        text = messages.render(template, who.language, code=exc.code, role=role,
                               ack=_format_minutes(ack_within) if ack_within else "-",
                               summary=f"{machine_label(ctx, exc.machine_id)}: {exc.summary}")
        notify(ctx, who, "escalation", text, exc=exc, role=escalate_to, buttons=("ack",))
    skipped: dict[str, Any] = {}
    if reporter := [p.id for p in holders if p.id == exc.reporter_id]:
        skipped["reporter_skipped"] = reporter
    if repeated := [p.id for p in holders if p.id in already]:
        skipped["already_paged"] = repeated
    transition(ctx, exc, Action.escalate, None, text="" if people else f"nobody left to page with role {escalate_to}",
               role=role, to_role=escalate_to, people=[p.id for p in people], **skipped)
    return people


def paged_ids(ctx: Context, exc: PlantException) -> set[str]:
    """The people paged for `exc` so far (alerts and escalations), this unit's pages included."""
    ids = {n.person_id for n in ctx.notified.values() if n.exception_id == exc.id and n.kind in PAGES}
    with ctx.session.no_autoflush:
        ids.update(ctx.session.exec(select(Notification.person_id).where(
            Notification.exception_id == exc.id, Notification.kind.in_(PAGES))))  # type: ignore[attr-defined]
    return ids


# --- the lifecycle table, applied --------------------------------------------------------


@dataclass(frozen=True)
class Standing:
    """Who a person is for one exception (`routing.lifecycle.Relation`), and the roles they answer for."""

    relations: frozenset[Relation]
    roles: frozenset[str]  # what their acknowledgement answers for: the roles they hold (and were paged by)


def standing_from(exc: PlantException, who: Person | None, pages: Iterable[str]) -> Standing:
    """`pages`: the people paged for the exception (alerts and escalations); without them, all
    relations but `notified`."""
    if who is None:
        return Standing(frozenset({Relation.system}), frozenset())
    relations = {Relation.member}
    if who.id in pages:
        relations.add(Relation.notified)
    if exc.reporter_id == who.id:
        relations.add(Relation.reporter)
    if exc.approver_role in who.roles:
        relations.add(Relation.approver)
    if "manager" in who.roles:
        relations.add(Relation.manager)
    return Standing(frozenset(relations), frozenset(who.roles))


def standing(ctx: Context, exc: PlantException, who: Person | None) -> Standing:
    """Who `who` is for `exc`, `notified` included (one look at the exception's pages)."""
    if who is None:
        return standing_from(exc, None, ())
    return standing_from(exc, who, {who.id} if is_responder(ctx, exc, who) else set())


def acknowledgements(ctx: Context, exc: PlantException) -> dict[str, str | None]:
    """Each role acknowledged so far -> the person who acknowledged it first."""
    done: dict[str, str | None] = {}
    for event in ctx.session.exec(select(TimelineEvent).where(
            TimelineEvent.exception_id == exc.id, TimelineEvent.kind == EVENT[Action.acknowledge])
            .order_by(TimelineEvent.id)):
        for role in event.data.get("roles") or ():
            done.setdefault(role, event.person_id)
    return done


@dataclass(frozen=True)
class Refusal:
    """Why an action is not taken, in words for the person (`text`) and for the timeline (`reason`)."""

    action: Action
    reason: str  # state | not_paged | role | already_acknowledged
    code: str
    state: str
    name: str = ""  # who approved (state refusals) or acknowledged (already_acknowledged)
    role: str = ""  # the approver role (role refusals)

    def text(self, language: str) -> str:
        if self.reason == "role":
            key = "refused_erp" if self.action.value in ERP_BUTTONS else \
                "refused_mes" if self.action.value.startswith("mes_") else "refused"
            return messages.render(key, language, role=self.role, code=self.code)
        if self.reason == "not_paged":
            return messages.render("refused_not_paged", language, code=self.code)
        if self.reason == "already_acknowledged":
            return messages.render("already_acknowledged", language, code=self.code, name=self.name)
        said = messages.render(f"state_{self.state}", language, code=self.code, name=self.name)
        nothing = f"refused_nothing_{self.action.value}"
        if nothing in messages.TEMPLATES:
            said = f"{said}, {messages.render(nothing, language)}"
        return f"{said}."


@dataclass(frozen=True)
class Outcome:
    """What `transition` did: applied (the event written), or refused (and why)."""

    applied: bool
    refusal: Refusal | None = None
    event: TimelineEvent | None = None


def check(ctx: Context, exc: PlantException, action: Action, who: Person | None,
          given: Standing | None = None, acknowledged: dict[str, str | None] | None = None,
          explain: bool = True) -> Refusal | None:
    """None if the table lets `who` take `action` on `exc` now; else why not (with the names the
    sentence needs, unless `explain` is False)."""
    step = step_for(exc.status, action)
    if step is None:
        decided = explain and exc.status in (ExceptionStatus.approved, ExceptionStatus.posted)
        return Refusal(action, "state", exc.code, exc.status,
                       name=display_name(ctx, _approved_by(ctx, exc)) if decided else "")
    # Everyone may comment: no need to look up who they are.
    if Relation.member in step.who and who is not None or Relation.system in step.who and who is None:
        return None
    held = given or standing_from(exc, who, ())
    if given is None and (not held.relations & step.who or Relation.reporter in held.relations
                          and action in NOT_BY_REPORTER):
        held = standing(ctx, exc, who)  # only having been paged can still allow it
    mine = Relation.reporter in held.relations and Relation.notified not in held.relations
    if not held.relations & step.who or mine and action in NOT_BY_REPORTER:
        reason = "role" if step.who == DECIDERS else "not_paged"
        return Refusal(action, reason, exc.code, exc.status, role=exc.approver_role)
    if action is Action.acknowledge:
        acknowledged = acknowledgements(ctx, exc) if acknowledged is None else acknowledged
        if not held.roles - acknowledged.keys():
            first = sorted(held.roles)[0] if held.roles and explain else None
            return Refusal(action, "already_acknowledged", exc.code, exc.status,
                           name=display_name(ctx, acknowledged.get(first)) if first else "")
    return None


def transition(ctx: Context, exc: PlantException, action: Action, who: Person | None, *, text: str = "",
               reply_channel: str | None = None, quiet: bool = False, given: Standing | None = None,
               **data: Any) -> Outcome:
    """Take `action` on `exc` as the lifecycle table says, or refuse it.

    Applied: the new state, its timestamp, the timeline event (with `data`) and the button updates
    of earlier messages. Refused: unless `quiet`, the person is told why and `refused` goes on the
    timeline; the caller sends no confirmation of its own. `given`: who the person is, when the
    caller knows more than the exception says (a decision part's decider and approver).
    """
    acknowledged = acknowledgements(ctx, exc) if action is Action.acknowledge else None
    refusal = check(ctx, exc, action, who, given, acknowledged=acknowledged)
    if refusal is not None:
        if not quiet:
            refuse(ctx, exc, who, refusal, reply_channel)
        return Outcome(applied=False, refusal=refusal)
    step = step_for(exc.status, action)
    assert step is not None  # check() said so
    if acknowledged is not None:
        data = {**data, **_settle_timers(ctx, exc, standing_from(exc, who, ()), acknowledged)}
        acknowledged = {**acknowledged, **dict.fromkeys(data["roles"], who.id if who else None)}
    moved = exc.status != step.next
    exc.status = step.next.value
    stamp = STAMPS.get(action)
    if stamp and (action is not Action.acknowledge or exc.acknowledged_at is None):
        setattr(exc, stamp, ctx.now)
    event = log(ctx, exc, EVENT[action], text, who.id if who else None, **data)
    if moved or action is Action.acknowledge:
        _update_buttons(ctx, exc, action, who, acknowledged)
    return Outcome(applied=True, event=event)


# The time each state is reached (MTTA reads `acknowledged_at`: the first acknowledgement that counts).
STAMPS = {Action.acknowledge: "acknowledged_at", Action.propose: "proposed_at", Action.approve: "approved_at",
          Action.erp_posted: "posted_at", Action.close: "closed_at"}


def refuse(ctx: Context, exc: PlantException, who: Person | None, refusal: Refusal,
           reply_channel: str | None = None) -> None:
    """Tell the person why, and put the attempt on the timeline."""
    data: dict[str, Any] = {"action": refusal.action.value, "reason": refusal.reason, "state": refusal.state}
    if refusal.reason == "role":
        # Kept under its own name: the console and the threads show a refused approval as such.
        data.update(decision=refusal.action.value, required_role=refusal.role)
    log(ctx, exc, "approval_refused" if refusal.reason == "role" else "refused", refusal.text("en"),
        who.id if who else None, **data)
    if who is not None:
        notify(ctx, who, "refusal", refusal.text(who.language), exc=exc, role=_first_role(who),
               reply_channel=reply_channel)


def _settle_timers(ctx: Context, exc: PlantException, held: Standing,
                   acknowledged: dict[str, str | None]) -> dict[str, Any]:
    """An acknowledgement stops the escalation of the roles it answers for.

    Someone paged settles the timers of the roles they hold (and those that would escalate to
    them); the approver and managers, who answer for the whole exception, settle every timer
    still running.
    """
    timers = ctx.session.exec(
        select(AckTimer).where(AckTimer.exception_id == exc.id, AckTimer.status == "pending")
    ).all()
    everything = bool(held.relations & {Relation.approver, Relation.manager})
    settled = [t for t in timers if everything or t.role in held.roles or t.escalate_to in held.roles]
    for timer in settled:
        timer.status = "acknowledged"
        timer.settled_at = ctx.now
        ctx.session.add(timer)
    return {"roles": sorted(held.roles - acknowledged.keys()), "timers": sorted(t.role for t in settled)}


def _update_buttons(ctx: Context, exc: PlantException, action: Action, actor: Person | None,
                    acknowledged: dict[str, str | None] | None) -> None:
    """After a transition: each earlier message whose buttons are no longer all allowed for its
    recipient gets a `buttons_update` row with the ones still allowed and a status line.

    `acknowledged`: the roles acknowledged now, when the caller knows them (else read if needed).
    """
    rows = ctx.session.exec(select(Notification).where(
        Notification.exception_id == exc.id,
        Notification.kind.in_((*WITH_BUTTONS, "buttons_update"))).order_by(Notification.id)).all()  # type: ignore[attr-defined]
    shown: dict[int, list[str]] = {}
    originals: list[Notification] = []
    for row in rows:
        if row.kind == "buttons_update":
            if row.updates_id in shown:
                shown[row.updates_id] = list(row.buttons)
        elif row.buttons and row.id is not None:
            originals.append(row)
            shown[row.id] = list(row.buttons)
    if not originals:
        return
    pages = {r.person_id for r in rows if r.kind in PAGES}
    if acknowledged is None and any("ack" in shown[r.id] for r in originals):  # type: ignore[index]
        acknowledged = acknowledgements(ctx, exc)
    for row in originals:
        buttons = shown[row.id]  # type: ignore[index]
        target = person(ctx, row.person_id)
        if not buttons or target is None:
            continue
        held = standing_from(exc, target, pages)
        still = [b for b in buttons if b in BUTTONS
                 and check(ctx, exc, BUTTONS[b], target, held, acknowledged or {}, explain=False) is None]
        if still == buttons:
            continue
        line = _status_line(ctx, exc, action, actor, row.language)
        _add_once(ctx, f"{ctx.cause}:buttons_update:{row.id}:{action.value}", lambda key, row=row, still=still,
                  line=line: Notification(
            plant_id=ctx.plant.id, dedupe_key=key, exception_id=exc.id, person_id=row.person_id, role=row.role,
            kind="buttons_update", channel=row.channel, address=row.address, language=row.language, text=line,
            buttons=still, created_at=ctx.now, next_attempt_at=ctx.now, updates_id=row.id))


def _status_line(ctx: Context, exc: PlantException, action: Action, actor: Person | None, language: str) -> str:
    key = f"status_line_{action.value}"
    if actor is not None and key in messages.TEMPLATES:
        return messages.render(key, language, code=exc.code, name=actor.name)
    return messages.render("card_status", language, code=exc.code,
                           status=messages.render(f"status_{exc.status}", language)).rstrip(".")


def _approved_by(ctx: Context, exc: PlantException) -> str | None:
    return ctx.session.exec(select(Approval.person_id).where(
        Approval.exception_id == exc.id, Approval.accepted == True, Approval.decision == "approve")  # noqa: E712
        .order_by(Approval.id.desc())).first()  # type: ignore[union-attr]


# --- the thread --------------------------------------------------------------------------


def acknowledge(ctx: Context, exc: PlantException, who: Person, text: str = "",
                reply_channel: str | None = None) -> bool:
    """Acknowledge as someone paged, the approver or a manager; the first such one sets MTTA.

    Anyone else (the reporter, a colleague) is told who can, and the escalation runs on.
    """
    if not transition(ctx, exc, Action.acknowledge, who, text=text, reply_channel=reply_channel).applied:
        return False
    reporter = person(ctx, exc.reporter_id)
    if reporter and reporter.id != who.id:
        notify(ctx, reporter, "acknowledged", messages.render("acknowledged", reporter.language, code=exc.code,
                                                              name=who.name), exc=exc, role="reporter")
    return True


def is_responder(ctx: Context, exc: PlantException, who: Person) -> bool:
    """Paged for this exception (directly or by escalation)."""
    return exc.id in responder_exception_ids(ctx, who, [exc])


def responder_exception_ids(ctx: Context, who: Person, exceptions: list[PlantException]) -> set[int]:
    """The ids of those `exceptions` `who` was paged for: one query for them all."""
    ids = {e.id for e in exceptions if e.id is not None}
    # Pages of this unit of work are all in `ctx.notified` (only `notify` writes them), the
    # store has the earlier ones: nothing to flush before asking.
    paged = {n.exception_id for n in ctx.notified.values()
             if n.person_id == who.id and n.kind in PAGES and n.exception_id in ids}
    if ids - paged:
        with ctx.session.no_autoflush:
            paged.update(ctx.session.exec(select(Notification.exception_id).where(
                Notification.exception_id.in_(ids - paged), Notification.person_id == who.id,  # type: ignore[union-attr]
                Notification.kind.in_(PAGES),  # type: ignore[attr-defined]
            ).distinct()))
    return {i for i in paged if i is not None}


def comment(ctx: Context, exc: PlantException, who: Person | None, text: str) -> bool:
    """A note on the timeline: anyone of the plant, in any state."""
    return transition(ctx, exc, Action.comment, who, text=text).applied


def propose(ctx: Context, exc: PlantException, who: Person, text: str, resolution: dict[str, Any],
            reply_channel: str | None = None) -> bool:
    """A proposed resolution waits for the rule's approver; a fixed machine counts as running again.

    From someone not paged (the reporter saying "it runs again") it is not a proposal: it goes on
    the timeline as a comment and to the people paged as a note, and they propose.
    """
    held = standing(ctx, exc, who)
    refusal = check(ctx, exc, Action.propose, who, held)
    if refusal is not None and refusal.reason == "not_paged":
        _pass_on(ctx, exc, who, text, reply_channel)
        return False
    if refusal is not None:
        refuse(ctx, exc, who, refusal, reply_channel)
        return False
    if check(ctx, exc, Action.acknowledge, who, held) is None:
        acknowledge(ctx, exc, who, "", reply_channel)
    transition(ctx, exc, Action.propose, who, text=text, reply_channel=reply_channel, **resolution)
    exc.proposal = {"by": who.id, "text": text, **resolution}
    if resolution.get("machine_running") and exc.machine_id:
        set_machine_running(ctx, exc.machine_id, True, f"reported fixed by {who.name}")
    for approver in paged_for_role(ctx, exc.approver_role, exc.area_id) or \
            paged_for_role(ctx, exc.approver_role, None):
        notify(ctx, approver, "approval_request",
               messages.render("proposal", approver.language, code=exc.code, name=who.name, summary=text),
               exc=exc, role=exc.approver_role, buttons=("approve", "reject"))
    return True


def _pass_on(ctx: Context, exc: PlantException, who: Person, text: str, reply_channel: str | None) -> None:
    comment(ctx, exc, who, text)
    paged = [p for p in thread_people(ctx, exc) if p.id not in (who.id, exc.reporter_id)]
    for target in paged:
        notify(ctx, target, "note", messages.render("reporter_note", target.language, code=exc.code, name=who.name,
                                                    text=text), exc=exc)
    notify(ctx, who, "reply", messages.render("passed_on", who.language, code=exc.code,
                                              names=", ".join(p.name for p in paged) or "-"),
           exc=exc, reply_channel=reply_channel)


def decide(ctx: Context, exc: PlantException, who: Person, decision: str, reason: str = "",
           reply_channel: str | None = None) -> bool:
    """Approve or reject the proposal: the rule's approver role, while a proposal waits; else refused."""
    if decision not in (Action.approve, Action.reject):
        raise WorkflowError(f"not a decision: {decision}")
    action = Action(decision)
    proposal = dict(exc.proposal or {})
    outcome = transition(ctx, exc, action, who, text=reason, reply_channel=reply_channel, quiet=True,
                         **({"proposal": proposal} if action is Action.reject else {}))
    if outcome.refusal is not None:
        ctx.session.add(Approval(exception_id=exc.id, person_id=who.id, decision=decision, accepted=False,
                                 reason=outcome.refusal.text("en"), at=ctx.now))
        refuse(ctx, exc, who, outcome.refusal, reply_channel)
        return False
    approval = Approval(exception_id=exc.id, person_id=who.id, decision=decision, accepted=True, reason=reason,
                        at=ctx.now)
    ctx.session.add(approval)
    ctx.session.flush()
    proposer = person(ctx, proposal.get("by"))
    if action is Action.reject:
        for target in _unique([proposer, person(ctx, exc.reporter_id)]):
            notify(ctx, target, "rejected", messages.render("rejected", target.language, code=exc.code,
                                                            name=who.name, reason=reason), exc=exc)
        exc.proposal = {}
        return True
    transactions = erp_transactions_for(ctx, exc, approval, who)
    for txn in transactions:
        ctx.session.add(txn)
        log(ctx, exc, "erp_queued", "", None, kind=txn.kind, idempotency_key=txn.idempotency_key)
    mes.on_approval(ctx, exc)  # the same outcome, back to the MES too (routing/mes.py)
    for target in _unique([proposer, person(ctx, exc.reporter_id)]):
        if target.id != who.id:
            notify(ctx, target, "approved", messages.render("approved", target.language, code=exc.code,
                                                            name=who.name), exc=exc)
    if not transactions:
        _finish_posting(ctx, exc)
    return True


def _unique(people: list[Person | None]) -> list[Person]:
    seen: dict[str, Person] = {}
    for p in people:
        if p and p.id not in seen:
            seen[p.id] = p
    return list(seen.values())


def _first_role(who: Person) -> str | None:
    return who.roles[0] if who.roles else None


# --- ERP ---------------------------------------------------------------------------------


def erp_transactions_for(ctx: Context, exc: PlantException, approval: Approval, approver: Person) -> list[ErpTransaction]:
    """The neutral transactions an approved resolution becomes (mapping documented in docs/routing.md).

    - breakdown / tooling / utility on a machine -> maintenance_request
    - each disposition line (scrap / block / release) -> stock_status
    - quality and safety -> nonconformance (with the disposition)
    - a proposal to hold / release a work order -> production_order_status
    """
    proposal = exc.proposal or {}
    downtime = int((ctx.now - exc.opened_at).total_seconds() // 60)
    work_order = (exc.work_orders or [None])[0]
    material = exc.material_id
    if not material and work_order and (wo := master_row(ctx, WorkOrder, work_order)):
        material = wo.material_id
    kinds: list[tuple[str, dict[str, Any]]] = []
    if exc.type in MACHINE_TYPES and exc.machine_id:
        machine = master_row(ctx, Machine, exc.machine_id)
        kinds.append(("maintenance_request", {
            "machine": exc.machine_id, "machine_name": machine.name if machine else exc.machine_id,
            "description": f"{exc.summary} | fix: {proposal.get('text', '')}".strip(" |"),
            "reported_by": exc.reporter_id, "exception": exc.code, "downtime_minutes": downtime,
            "priority": {"critical": "urgent", "high": "high"}.get(exc.severity, "normal"),
            **breakdown_facts(ctx.session, exc),
        }))
    dispositions = proposal.get("dispositions") or []
    if exc.type in ("quality", "safety"):
        kinds.append(("nonconformance", {
            "exception": exc.code, "type": exc.type, "machine": exc.machine_id, "material": material,
            "work_order": work_order, "description": exc.summary,
            "quantity": sum(float(d.get("quantity") or 0) for d in dispositions) or None,
            "disposition": proposal.get("text", ""),
        }))
    for line in dispositions:
        if line.get("action") in ("block", "release", "scrap") and line.get("quantity"):
            kinds.append(("stock_status", {
                "action": line["action"], "material": line.get("material") or material,
                "quantity": line["quantity"], "unit": line.get("unit") or "pcs", "lot": line.get("lot"),
                "work_order": work_order, "reason": f"{exc.code}: {exc.summary}"[:200],
            }))
    for hold in proposal.get("work_order_actions") or []:
        kinds.append(("production_order_status", {
            "work_order": hold["work_order"], "action": hold["action"], "reason": exc.code,
        }))
    return [
        ErpTransaction(
            plant_id=ctx.plant.id, exception_id=exc.id, sequence=seq, kind=kind, fields=fields,
            idempotency_key=erp_key(ctx.plant.id, exc.code, approval.id, seq), created_at=ctx.now,
            next_attempt_at=ctx.now,
        )
        for seq, (kind, fields) in enumerate(kinds, start=1)
    ]


def record_erp_result(session: Session, txn: ErpTransaction, outcome: str, detail: str, now: datetime) -> None:
    """Called by the ERP outbox worker in the same DB transaction as the row's new status."""
    if txn.exception_id is None or outcome == "retry":
        return
    exc = session.get(PlantException, txn.exception_id)
    plant = session.get(Plant, txn.plant_id)
    if exc is None or plant is None:
        return
    ctx = Context(session=session, plant=plant, now=now, cause=f"erp:{txn.id}:{txn.attempts}:{outcome}")
    recipients = _unique([person(ctx, exc.proposal.get("by")), person(ctx, exc.reporter_id),
                          *_approvers_who_approved(ctx, exc)])
    if outcome == "posted":
        log(ctx, exc, "erp_posted", "", None, kind=txn.kind, reference=txn.reference)
        for who in recipients:
            notify(ctx, who, "erp_reference", messages.render("erp_posted", who.language, code=exc.code,
                                                              kind=txn.kind, reference=txn.reference), exc=exc)
        # A row abandoned after a rejection ("failed") no longer holds the exception back.
        # Decision parts' transactions (routing/decisions.py) settle their part, not the resolution.
        pending = session.exec(select(ErpTransaction.id).where(
            ErpTransaction.exception_id == exc.id, ErpTransaction.kind.notin_(DECISION_ERP_KINDS.values()),  # type: ignore[attr-defined]
            ErpTransaction.status.in_(("pending", "rejected")))).first()  # type: ignore[attr-defined]
        if pending is None:
            _finish_posting(ctx, exc)
    elif outcome == "rejected":
        log(ctx, exc, "erp_rejected", detail, None, kind=txn.kind, transaction=txn.id)
        # Whoever the table lets decide again (the approver role, on shift) gets Retry and Abandon.
        deciders = paged_for_role(ctx, exc.approver_role, exc.area_id) or paged_for_role(ctx, exc.approver_role, None)
        for who in _unique([*recipients, *deciders]):
            decides = check(ctx, exc, Action.erp_retry, who, explain=False) is None
            notify(ctx, who, "erp_rejected", messages.render("erp_rejected_decide" if decides else "erp_rejected",
                                                             who.language, code=exc.code, kind=txn.kind, reason=detail),
                   exc=exc, buttons=erp_buttons(txn.public_id) if decides else ())
    elif outcome == "auth_failed":
        log(ctx, exc, "erp_auth_failed", detail, None, kind=txn.kind)
        for who in _admins(ctx):
            notify(ctx, who, "erp_auth_failed", messages.render("erp_auth_failed", who.language, reason=detail),
                   exc=exc)


def _approvers_who_approved(ctx: Context, exc: PlantException) -> list[Person | None]:
    rows = ctx.session.exec(select(Approval).where(
        Approval.exception_id == exc.id, Approval.accepted == True, Approval.decision == "approve")).all()  # noqa: E712
    return [person(ctx, a.person_id) for a in rows]


def _admins(ctx: Context) -> list[Person]:
    """Plant engineers and managers hear about ERP credential trouble."""
    return paged_for_role(ctx, "manager", None)


def _finish_posting(ctx: Context, exc: PlantException) -> None:
    if transition(ctx, exc, Action.erp_posted, None, quiet=True).applied:
        close_if_done(ctx, exc)


def close_if_done(ctx: Context, exc: PlantException) -> None:
    """A posted exception closes once its machine (if it stopped one) runs again."""
    if step_for(exc.status, Action.close) is None:
        return
    if exc.type == "breakdown" and exc.machine_id:
        machine = master_row(ctx, Machine, exc.machine_id)
        if machine and not machine.running:
            return
    transition(ctx, exc, Action.close, None)
    for who in _unique([person(ctx, exc.reporter_id)]):
        notify(ctx, who, "closed", messages.render("closed", who.language, code=exc.code), exc=exc)


# --- machines and timers -----------------------------------------------------------------


def set_machine_running(ctx: Context, machine_id: str, running: bool, note: str) -> None:
    machine = master_row(ctx, Machine, machine_id)
    if machine is None or machine.running == running:
        return
    machine.running = running
    ctx.session.add(machine)
    for exc in open_exceptions(ctx):
        if exc.machine_id == machine_id:
            transition(ctx, exc, Action.machine_running if running else Action.machine_stopped, None, text=note,
                       running=running)
            if running:
                mes.on_running(ctx, exc)
            close_if_done(ctx, exc)


def escalate_unacknowledged(ctx: Context) -> int:
    """Fire every escalation timer due by `ctx.now`; a timer due while the process was down fires now."""
    due = ctx.session.exec(
        select(AckTimer).where(AckTimer.status == "pending", AckTimer.due_at <= ctx.now).order_by(AckTimer.due_at)
    ).all()
    for timer in due:
        exc = ctx.session.get(PlantException, timer.exception_id)
        timer.status = "fired"
        timer.settled_at = ctx.now
        ctx.session.add(timer)
        # Once approved, nobody is chased for an acknowledgement any more.
        if exc is None or step_for(exc.status, Action.escalate) is None:
            continue
        if timer.escalate_to:
            ack_within = timer.due_at - _routed_at(ctx, exc, timer.role)
            ctx.cause = f"timer:{timer.id}"
            _escalate(ctx, exc, timer.role, timer.escalate_to, "escalation", ack_within)
        else:
            log(ctx, exc, "ack_overdue", "", None, role=timer.role)
    return len(due)


def _routed_at(ctx: Context, exc: PlantException, role: str) -> datetime:
    event = ctx.session.exec(select(TimelineEvent).where(
        TimelineEvent.exception_id == exc.id, TimelineEvent.kind == "routed").order_by(TimelineEvent.id)).all()
    for row in event:
        if row.data.get("role") == role:
            return row.at
    return exc.opened_at


def next_timer_due(session: Session) -> datetime | None:
    timer = session.exec(
        select(AckTimer).where(AckTimer.status == "pending").order_by(AckTimer.due_at)
    ).first()
    return timer.due_at if timer else None

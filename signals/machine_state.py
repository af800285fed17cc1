"""Machine state events (MQTT, OPC UA, MES webhooks) -> machine up/down and breakdown exceptions.

Sources normalise their payloads to `{"machine": id, "state": STATE, ...}`; topic-based sources
may leave the machine in the topic (`plants/<plant>/<machine>/state`). A source that could
not read a message still stores it, with `unreadable` saying why, so nothing is lost.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

from sqlmodel import Session, func, select

from models import Machine, Signal
from models.plant_file import parse_duration
from routing import workflow as wf
from routing.options import offer as offer_options
from routing.workflow import Context

RUNNING_STATES = {"RUNNING", "RUN", "UP", "PRODUCING", "EXECUTE", "OK", "AUTO"}
DOWN_STATES = {"DOWN", "STOPPED", "FAULT", "ALARM", "ERROR", "BREAKDOWN", "ABORTED", "HELD"}
# Known states that say nothing about a breakdown: transitions (the end state follows) and
# an idle or finished machine. They are recorded and change nothing.
NEUTRAL_STATES = {"IDLE", "STANDBY", "READY", "SETUP", "UNDEFINED", "CLEARING", "STARTING", "SUSPENDED",
                  "STOPPING", "ABORTING", "HOLDING", "UNHOLDING", "SUSPENDING", "UNSUSPENDING", "RESETTING",
                  "COMPLETING", "COMPLETE"}
KNOWN_STATES = RUNNING_STATES | DOWN_STATES | NEUTRAL_STATES
MAX_STATE = 200  # characters of a state name kept; longer text is not a state
# PackML StateCurrent (ISA-TR88.00.02): PLCs publish the number, not the name.
PACKML_STATES = {0: "UNDEFINED", 1: "CLEARING", 2: "STOPPED", 3: "STARTING", 4: "IDLE", 5: "SUSPENDED",
                 6: "EXECUTE", 7: "STOPPING", 8: "ABORTING", 9: "ABORTED", 10: "HOLDING", 11: "HELD",
                 12: "UNHOLDING", 13: "SUSPENDING", 14: "UNSUSPENDING", 15: "RESETTING", 16: "COMPLETING",
                 17: "COMPLETE"}


def state_name(value: object) -> str:
    """A state as sources send it -> its upper-case name: `"fault "` -> FAULT, PackML `6` -> EXECUTE,
    a boolean "running" flag -> RUNNING / STOPPED. Total: any value gives a name (an unknown one
    is stored with an error), so no state a machine sends can stop a source."""
    if isinstance(value, bool):
        return "RUNNING" if value else "STOPPED"
    if isinstance(value, int):
        return PACKML_STATES.get(value) or (str(value) if abs(value) < 10**18 else "a very large number")
    if isinstance(value, float) and value.is_integer():
        return PACKML_STATES.get(int(value), str(value))
    text = (value if isinstance(value, str) else str(value or ""))[:MAX_STATE].strip().upper()
    if text.isascii() and text.isdigit() and len(text) < 3:  # "6": a PackML number sent as text
        return PACKML_STATES.get(int(text), text)
    return text


def machine_of(ctx: Context, payload: dict[str, Any]) -> str | None:
    machine_id = payload.get("machine")
    if not machine_id and (topic := payload.get("topic")):
        parts = str(topic).split("/")
        known = [p for p in parts if ctx.session.get(Machine, (ctx.plant.id, p))]
        machine_id = known[-1] if known else None
    return machine_id


def handle_machine_signal(ctx: Context, signal: Signal) -> None:
    payload = signal.payload
    if payload.get("unreadable"):
        signal.error = str(payload["unreadable"])
        return
    body = payload.get("payload") if isinstance(payload.get("payload"), dict) else payload
    state = state_name(body.get("state") if body.get("state") is not None else body.get("status"))
    named = body.get("machine") or payload.get("machine")
    if named is not None and not isinstance(named, str):
        signal.error = f"'machine' must be a machine id (text), got {type(named).__name__}"
        return
    machine_id = machine_of(ctx, {**body, "machine": named, "topic": payload.get("topic")})
    if not machine_id:
        signal.error = f"no machine of plant {ctx.plant.id} in {payload.get('topic') or body}"
        return
    machine = ctx.held.get((Machine, machine_id)) or wf.master_row(ctx, Machine, machine_id)
    if machine is None:
        signal.error = f"unknown machine {machine_id!r} in plant {ctx.plant.id}"
        return
    if state in RUNNING_STATES:
        if machine.running:
            return  # no change: most state messages repeat the last one, and cost no query
        machine.down_since = machine.breakdown_due_at = None  # a stop shorter than min_down: nobody was paged
        wf.set_machine_running(ctx, machine_id, True, f"{signal.source}: {state}")
    elif state in DOWN_STATES:
        _stopped(ctx, machine, state, str(body.get("reason") or body.get("alarm") or state), signal.source)
    elif state not in NEUTRAL_STATES:
        signal.error = f"unknown machine state {state!r}"


def _stopped(ctx: Context, machine: Machine, state: str, reason: str, source: str) -> None:
    """A DOWN state: the machine is down now; its breakdown opens at once, after `min_down`, or when
    the machine flaps, and never twice while one is open."""
    if machine.running:  # a stop, not a repeat: remember when, and (for the flapping limit) that it happened
        machine.down_since = ctx.now
        machine.stops = _recent_stops(ctx, machine)
        wf.set_machine_running(ctx, machine.id, False, f"{source}: {state}")
    since = machine.down_since or ctx.now
    if _breakdown_open(ctx, machine):
        machine.breakdown_due_at = None
        return
    flapping = (ctx.plant.signals or {}).get("flapping")
    if flapping and len(machine.stops) > flapping["stops"]:
        _open_breakdown(ctx, machine, since, f"{machine.id} stopped {len(machine.stops)} times within "
                                              f"{flapping['within']} (last: {state}: {reason})", source)
        return
    due = since + timedelta(seconds=machine.min_down_s or 0)
    if due > ctx.now:
        machine.breakdown_due_at = due  # `open_due_breakdowns` opens it then, unless it runs again first
        ctx.session.add(machine)
        return
    _open_breakdown(ctx, machine, since, f"{machine.id} {state}: {reason}", source)


def _recent_stops(ctx: Context, machine: Machine) -> list[str]:
    """The machine's stops within the plant's flapping period, this one included (none kept without a limit)."""
    flapping = (ctx.plant.signals or {}).get("flapping")
    if not flapping:
        return []
    start = ctx.now - parse_duration(flapping["within"])
    return [t for t in machine.stops if datetime.fromisoformat(t) > start] + [ctx.now.isoformat()]


def _breakdown_open(ctx: Context, machine: Machine) -> bool:
    """Whether the machine's breakdown is open; when not, this transaction holds the right to open it
    (`wf.find_correlated`), so a chat report or another replica's signal cannot open a second one."""
    return wf.find_correlated(ctx, exception_type="breakdown", machine_id=machine.id, area_id=None,
                              work_order_id=None) is not None


def _open_breakdown(ctx: Context, machine: Machine, since: datetime, text: str, source: str) -> None:
    """Open the breakdown, with the moment the machine stopped on its timeline: the downtime the ERP
    documents carry is measured from the state signals (`routing.erp_facts`), not from the paging."""
    machine.breakdown_due_at = None
    ctx.session.add(machine)
    exc = wf.open_exception(ctx, exception_type="breakdown", text=text, reporter=None, machine_id=machine.id,
                            severity="high", source=source)
    event = wf.log(ctx, exc, "machine_state", f"{machine.id} stopped", running=False)
    event.at = since
    offer_options(ctx, exc)  # the planner's options (routing/options.py)


def open_due_breakdowns(ctx: Context) -> int:
    """Open the breakdowns `min_down` held back whose machine is still down (the runtime's timers call this)."""
    due = ctx.session.exec(select(Machine).where(
        Machine.plant_id == ctx.plant.id, Machine.breakdown_due_at != None,  # noqa: E711
        Machine.breakdown_due_at <= ctx.now)).all()  # type: ignore[operator]
    for machine in due:
        ctx.cause = f"breakdown-due:{machine.id}:{machine.breakdown_due_at.isoformat()}"  # type: ignore[union-attr]
        if machine.running:
            machine.breakdown_due_at = None
            continue
        since = machine.down_since or ctx.now
        minutes = round((ctx.now - since).total_seconds() / 60, 1)
        if _breakdown_open(ctx, machine):
            machine.breakdown_due_at = None
            continue
        _open_breakdown(ctx, machine, since, f"{machine.id} down for {minutes:g} min (longer than its min_down)",
                        "signals")
    return len(due)


def next_breakdown_due(session: Session, after: datetime | None = None) -> datetime | None:
    """The earliest moment a held-back breakdown is due (replay steps its clock to it)."""
    query = select(func.min(Machine.breakdown_due_at))
    if after is not None:
        query = query.where(Machine.breakdown_due_at > after)  # type: ignore[operator]
    return session.exec(query).one()

"""Machine state events (MQTT, OPC UA, MES webhooks) -> machine up/down and breakdown exceptions.

Sources normalise their payloads to `{"machine": id, "state": STATE, ...}`; topic-based sources
may leave the machine in the topic (`plants/<plant>/<machine>/state`).
"""

from __future__ import annotations

from typing import Any

from models import Machine, Signal
from routing import workflow as wf
from routing.workflow import Context

RUNNING_STATES = {"RUNNING", "RUN", "UP", "PRODUCING", "EXECUTE", "OK", "AUTO"}
DOWN_STATES = {"DOWN", "STOPPED", "FAULT", "ALARM", "ERROR", "BREAKDOWN", "ABORTED", "HELD"}


def machine_of(ctx: Context, payload: dict[str, Any]) -> str | None:
    machine_id = payload.get("machine")
    if not machine_id and (topic := payload.get("topic")):
        parts = str(topic).split("/")
        known = [p for p in parts if ctx.session.get(Machine, (ctx.plant.id, p))]
        machine_id = known[-1] if known else None
    return machine_id


def handle_machine_signal(ctx: Context, signal: Signal) -> None:
    payload = signal.payload
    body = payload.get("payload") if isinstance(payload.get("payload"), dict) else payload
    state = str(body.get("state") or body.get("status") or "").upper()
    machine_id = machine_of(ctx, {**body, "topic": payload.get("topic")})
    if not machine_id or ctx.session.get(Machine, (ctx.plant.id, machine_id)) is None:
        signal.error = f"unknown machine in {payload.get('topic') or body}"
        return
    if state in RUNNING_STATES:
        wf.set_machine_running(ctx, machine_id, True, f"{signal.source}: {state}")
    elif state in DOWN_STATES:
        wf.set_machine_running(ctx, machine_id, False, f"{signal.source}: {state}")
        if not any(e.machine_id == machine_id and e.type == "breakdown" for e in wf.open_exceptions(ctx)):
            reason = body.get("reason") or body.get("alarm") or state
            wf.open_exception(ctx, exception_type="breakdown", text=f"{machine_id} {state}: {reason}", reporter=None,
                              machine_id=machine_id, severity="high", source=signal.source)
    else:
        signal.error = f"unknown machine state {state!r}"

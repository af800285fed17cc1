"""MES / ERP webhook: `POST /signals/mes`, signed with HMAC-SHA256, idempotent by `event_id`.

Body (JSON): machine events `{event_id, machine, state | event, work_order?, reason?, ts?}` and
work-order status events `{event_id, event: "work_order_status", work_order, status}`.
Header: `X-Mfgos-Signature: sha256=<hex HMAC-SHA256 of the raw body with MFGOS_SIGNALS_WEBHOOK_SECRET>`,
or instead `Authorization: Bearer <token>` with an API token of scope `signals` (`mfgos token create`;
the app's sign-in gate, mfgos/auth.py, puts the caller on `request.state.principal`).

Answers: 200 stored and applied (`duplicate: true` for an event id seen before; it is not
applied twice); 401 bad or missing signature (nothing stored); 413 over 64 KiB (nothing
stored); 400 not JSON, or JSON the store cannot keep; 422 a body of the wrong shape, or one
stored but not applicable, such as an unknown machine. A signed body that is answered 400
or 422 for its shape is kept as an `unreadable` signal with the reason (`stored: true`), so
the plant can see what its MES sent; sending it again changes nothing.
"""

from __future__ import annotations

import hashlib
import hmac
from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse
from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator
from sqlmodel import Session
from starlette.concurrency import run_in_threadpool

from models import Signal
from signals.base import SignalSink, digest
from signals.decoding import UNREADABLE, Unreadable, json_value, unreadable_payload

SIGNATURE_HEADER = "X-Mfgos-Signature"
SOURCE = "mes"
WORK_ORDER_STATUS = "work_order_status"
MAX_BODY = 64 * 1024  # an MES event is a few hundred bytes
# Event names MES systems send instead of a state.
EVENT_STATES = {
    **{e: "DOWN" for e in ("machine_down", "down", "downtime", "downtime_start", "breakdown", "stop", "stopped",
                           "fault", "alarm", "error")},
    **{e: "RUNNING" for e in ("machine_up", "up", "downtime_end", "running", "start", "started", "resumed",
                              "fault_cleared", "alarm_cleared")},
}


def sign(secret: str, body: bytes) -> str:
    """The header value a sender puts on `body`."""
    return "sha256=" + hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()


def signature_ok(secret: str, body: bytes, header: str | None) -> bool:
    return bool(header) and hmac.compare_digest(sign(secret, body).encode(), header.strip().lower().encode())


async def read_capped(request: Request, limit: int) -> bytes | None:
    """The body, or None once it is known to be over `limit` bytes: from Content-Length before reading,
    else while it streams in (it is not read further)."""
    declared = request.headers.get("content-length", "")
    if declared.isascii() and declared.isdigit() and int(declared) > limit:
        return None
    body = bytearray()
    async for chunk in request.stream():
        body += chunk
        if len(body) > limit:
            return None
    return bytes(body)


class MesEvent(BaseModel):
    model_config = ConfigDict(extra="allow")

    event_id: str = Field(min_length=1, max_length=200, pattern=r"^[A-Za-z0-9._:/-]+$")
    machine: str | None = Field(default=None, max_length=200)
    state: str | int | bool | None = None
    event: str | None = Field(default=None, max_length=100)
    work_order: str | None = Field(default=None, max_length=200)
    status: str | None = Field(default=None, max_length=100)
    reason: str | None = Field(default=None, max_length=2000)
    ts: str | int | float | None = None

    @model_validator(mode="after")
    def _complete(self) -> MesEvent:
        if self.event == WORK_ORDER_STATUS:
            if not self.work_order or not self.status:
                raise ValueError("a work_order_status event needs 'work_order' and 'status'")
        elif self.state is None and not self.event:
            raise ValueError("give 'state' (e.g. FAULT, RUNNING) or 'event' (e.g. machine_down)")
        elif not self.machine:
            raise ValueError("a machine event needs 'machine' (its id in the plant file)")
        return self


def _signal(event: MesEvent) -> tuple[str, dict[str, Any]]:
    """(kind, payload) of the signal an event becomes."""
    extra = event.model_extra or {}
    if event.event == WORK_ORDER_STATUS:
        return "work_order", {"event_id": event.event_id, "work_order": event.work_order, "status": event.status,
                              "reason": event.reason, "ts": event.ts, **extra}
    body: dict[str, Any] = {"state": event.state, "event": event.event, "reason": event.reason,
                            "work_order": event.work_order, "ts": event.ts, **extra}
    payload: dict[str, Any] = {"topic": None, "machine": event.machine, "event_id": event.event_id, "payload": body}
    if event.state is None:
        state = EVENT_STATES.get(str(event.event).strip().lower())
        if state is None:
            payload["unreadable"] = (f"unknown MES event {event.event!r}: send 'state', or one of "
                                     f"{', '.join(sorted(EVENT_STATES))}, or {WORK_ORDER_STATUS}")
        body["state"] = state
    return "machine", payload


def webhook_router(sink: SignalSink, secret: str) -> APIRouter:
    """The router to mount on the app; `secret` is MFGOS_SIGNALS_WEBHOOK_SECRET."""
    if not secret:
        raise ValueError("the MES webhook needs a secret (MFGOS_SIGNALS_WEBHOOK_SECRET)")
    router = APIRouter(tags=["signals"])

    @router.post("/signals/mes", summary="MES / ERP machine and work-order events (signed)")
    async def mes_webhook(request: Request) -> JSONResponse:
        body = await read_capped(request, MAX_BODY)
        if body is None:
            return JSONResponse({"detail": f"body larger than {MAX_BODY} bytes"}, status_code=413)
        if not (signature_ok(secret, body, request.headers.get(SIGNATURE_HEADER)) or _signals_token(request)):
            return JSONResponse({"detail": f"bad or missing {SIGNATURE_HEADER}: send sha256=<hex HMAC-SHA256 of "
                                           "the raw body with the shared secret>"}, status_code=401)
        data = json_value(body, limit=MAX_BODY)
        if isinstance(data, Unreadable):
            return await keep_unreadable(sink, SOURCE, body, f"body is {data.reason}", 400)
        try:
            event = MesEvent.model_validate(data)
        except ValidationError as error:
            problems = [f"{'.'.join(map(str, e['loc'])) or 'body'}: {e['msg']}" for e in error.errors()]
            return await keep_unreadable(sink, SOURCE, body, "; ".join(problems), 422, problems=problems)
        kind, payload = _signal(event)
        received = await run_in_threadpool(sink.receive, source=SOURCE, source_key=f"{SOURCE}:{event.event_id}",
                                           kind=kind, payload=payload)
        error_text = await run_in_threadpool(signal_error, sink, received.signal_id)
        answer = {"signal_id": received.signal_id, "duplicate": received.duplicate, "stored": True}
        if error_text:
            return JSONResponse({**answer, "detail": error_text}, status_code=422)
        return JSONResponse(answer)

    return router


async def keep_unreadable(sink: SignalSink, source: str, body: bytes, reason: str, status: int,
                          **extra: Any) -> JSONResponse:
    """An authenticated body we cannot use is kept as an `unreadable` signal (once per body) and answered why."""
    received = await run_in_threadpool(sink.receive, source=source, source_key=f"{source}:unreadable:{digest(body)}",
                                       kind=UNREADABLE, payload=unreadable_payload(reason, body))
    return JSONResponse({"detail": reason, **extra, "signal_id": received.signal_id,
                         "duplicate": received.duplicate, "stored": True}, status_code=status)


def _signals_token(request: Request) -> bool:
    """A `signals` API token identified by the app's sign-in gate stands in for the signature."""
    principal = getattr(request.state, "principal", None)
    return getattr(principal, "kind", None) == "token" and getattr(principal, "scope", None) == "signals"



def signal_error(sink: SignalSink, signal_id: int) -> str | None:
    """Why a stored signal could not be applied (None: applied), for the webhook's answer."""
    with Session(sink.engine) as session:
        signal = session.get(Signal, signal_id)
        return signal.error if signal else None

"""The local web console and its REST API: chat as any person, watch exceptions, the ERP and KPIs.

The page is one static HTML file with vanilla JS (mfgos/static/) that polls the JSON
endpoints; nothing is downloaded at runtime. Endpoints are plain `def` functions so
FastAPI runs their database work in its thread pool and the event loop stays free for the
outbox worker and the channel webhooks mounted beside them (`extra_routers`).
"""

from __future__ import annotations

import re
import uuid
from collections.abc import Callable, Iterable, Sequence
from contextlib import AbstractAsyncContextManager
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Annotated, Any, Literal

from fastapi import APIRouter, FastAPI, HTTPException, Query, Request
from fastapi import Path as InPath
from fastapi.exceptions import RequestValidationError
from fastapi.responses import FileResponse, JSONResponse, Response, StreamingResponse
from fastapi.staticfiles import StaticFiles
from pydantic import BaseModel, Field, field_validator
from sqlalchemy import func
from sqlalchemy.exc import SQLAlchemyError
from sqlmodel import Session, select

from bot import charts
from bot.channels.base import OutboundMessage
from bot.webhooks import MAX_TEXT, text_too_long
from mes_adapters.outbox import abandon_rejected as mes_abandon_rejected
from mes_adapters.outbox import retry_rejected as mes_retry_rejected
from mfgos import guard, metrics
from mfgos.auth import LINK_KIND, Auth, SignInGate, principal_of, sign_in_routers
from mfgos.runtime import Runtime
from models import (
    AckTimer,
    Approval,
    Area,
    ErpCheck,
    ErpTransaction,
    ExceptionDecision,
    LedgerDocument,
    Machine,
    Notification,
    Person,
    Plant,
    PlantException,
    Shift,
    Signal,
    StockWatchRun,
    TimelineEvent,
)
from models.db import migration_head, schema_revision
from models.mes import MesTransaction
from routing import decisions, erp_rejections, export, mes_rejections, messages, outcomes, trends
from routing.inbound import Inbound
from routing.kpis import compute
from routing.kpis import period as kpis_period
from routing.lifecycle import Action, erp_buttons
from routing.roster import on_shift, plant_local
from routing.timeline import Line, sentences
from routing.workflow import Context

STATIC = Path(__file__).parent / "static"
CONSOLE = "console"
LIST_LIMIT = 200  # newest rows a list endpoint returns; the console shows a plant's day, not its history
SIGNAL_PAGE = 50  # signals per page of the signal log (at most 200)
SIGNAL_TEXT = 200  # characters of a signal's text the log shows
FILTER_WORD = r"^[A-Za-z0-9._:@-]{1,64}$"  # a source or machine id to filter the signal log by
MAX_ID = 2**31 - 1  # row ids are 32-bit integers in the store: a bigger one must not reach PostgreSQL
EVENT_ID = re.compile(r"^[A-Za-z0-9._:-]{1,200}$")

Lifespan = Callable[[FastAPI], AbstractAsyncContextManager[None]]


class ConsoleChannel:
    """Delivery to the web console and the terminal chat: both read the notification rows
    themselves, so delivering only hands out an id (and keeps nothing in memory)."""

    name = CONSOLE

    async def send(self, message: OutboundMessage) -> str:
        return f"console-{message.notification_id}"


# --- request bodies ------------------------------------------------------------------------


class _FromPerson(BaseModel):
    person_id: str | None = Field(default=None, min_length=1, max_length=200,
                                  description="who acts: the signed-in person when left out (required in the demo)")
    event_id: str | None = Field(
        default=None, description="client-generated id; a second POST with the same id is ignored")

    @field_validator("event_id")
    @classmethod
    def _event_id_shape(cls, value: str | None) -> str | None:
        if value is not None and not EVENT_ID.match(value):
            raise ValueError("use 1-200 letters, digits or . _ : - (a UUID is ideal)")
        return value


class ChatIn(_FromPerson):
    text: str = Field(description=f"at most {MAX_TEXT} characters (413 beyond)")
    exception: str | None = Field(default=None, max_length=40, description="the thread (exception code) it belongs to")

    @field_validator("text")
    @classmethod
    def _not_empty(cls, value: str) -> str:
        if not value.strip():
            raise ValueError("the message is empty")
        return value


class ActionIn(_FromPerson):
    # A button: an action on `exception`, the answer to a "which one?" (`choose:E-0042`), Retry /
    # Abandon of a transaction the ERP refused (`erp_retry:<public id>`, as the message's button says),
    # or a decision part's (`part:approve:7`, routing/decisions.py).
    action: str = Field(pattern=r"^(ack|approve|reject|propose|choose:E-\d{1,6}|erp_(retry|abandon):[0-9a-f]{8,32}"
                                r"|part:(approve|reject|confirm|skip|option[1-9]):\d{1,9})$", max_length=50)
    exception: str = Field(min_length=1, max_length=40)
    text: str = Field(default="", max_length=4000,
                      description="a reason (reject, erp_abandon: asked in the chat when left out) or the fix (propose)")


class MesActionIn(BaseModel):
    person_id: str | None = Field(default=None, min_length=1, max_length=200,
                                  description="who acts: the signed-in person when left out (required in the demo)")
    text: str = Field(default="", max_length=500, description="the reason (required to abandon)")


MES_ROWS = mes_rejections.RowChanges(retry=mes_retry_rejected, abandon=mes_abandon_rejected)


# --- serialisation -------------------------------------------------------------------------


def iso(at: datetime | None) -> str | None:
    """UTC ISO text; SQLite hands datetimes back without their zone, and they are UTC."""
    if at is None:
        return None
    return (at if at.tzinfo else at.replace(tzinfo=UTC)).astimezone(UTC).isoformat()


def erp_status(txn: ErpTransaction) -> str:
    """The outbox says `sent`; people say `posted`."""
    return "posted" if txn.status == "sent" else txn.status


def _person_json(person: Person, shifts: dict[str, Shift], local: datetime) -> dict[str, Any]:
    return {"id": person.id, "name": person.name, "roles": person.roles, "areas": person.areas,
            "language": person.language, "channels": sorted(person.channels),
            "on_shift": on_shift(person, shifts, local)}


def _utc(at: datetime) -> datetime:
    return at if at.tzinfo else at.replace(tzinfo=UTC)


def viewer_language(lang: str | None) -> str:
    """The language the reader sees sentences in: the one asked for if we write it, else English."""
    return lang if lang in messages.LANGUAGES else "en"


def _machine_label(exc: PlantException, machines: dict[str, Machine]) -> str | None:
    machine = machines.get(exc.machine_id or "")
    return f"{machine.id} ({machine.name})" if machine else exc.machine_id


def _exception_json(exc: PlantException, machines: dict[str, Machine], language: str = "en") -> dict[str, Any]:
    machine = machines.get(exc.machine_id or "")
    return {
        "code": exc.code, "type": exc.type, "status": exc.status, "severity": exc.severity,
        "summary": exc.summary, "machine": exc.machine_id, "machine_name": machine.name if machine else None,
        "area": exc.area_id, "material": exc.material_id, "reporter": exc.reporter_id,
        "approver_role": exc.approver_role, "work_orders": exc.work_orders,
        "customer_orders_at_risk": exc.customer_orders_at_risk, "staging_conflict": exc.staging_conflict or None,
        "proposal": exc.proposal or None, "opened_at": iso(exc.opened_at),
        "acknowledged_at": iso(exc.acknowledged_at), "closed_at": iso(exc.closed_at),
        # The same in words, in the reader's language: the page shows these, never the ids.
        "type_name": messages.type_name(exc.type, language), "status_name": messages.status_name(exc.status, language),
        "severity_name": messages.severity_name(exc.severity, language),
        "approver_role_name": messages.role_name(exc.approver_role, language) if exc.approver_role else None,
    }


def _list_facts(session: Session, rows: Sequence[PlantException], now: datetime) -> dict[int, dict[str, Any]]:
    """Per exception what the list shows beside it: age, who has it, escalated, overdue and ERP refused.

    Six queries for the whole list (timers, pages, acknowledgements and escalations, refused ERP
    transactions, open decision parts, names), not six per exception. Who has it: the first person
    who acknowledged, else everyone paged. Escalated: an escalation fired. Overdue: an
    acknowledgement timer fired or is past due. ERP refused: a transaction waits for the approver to
    retry or abandon it. Open decisions: decision parts still needed, proposed or rejected
    (routing/decisions.py).
    """
    ids = [e.id for e in rows if e.id is not None]
    if not ids:
        return {}
    timers = session.exec(select(AckTimer).where(AckTimer.exception_id.in_(ids))).all()  # type: ignore[attr-defined]
    pages = session.exec(select(Notification.exception_id, Notification.person_id).where(
        Notification.exception_id.in_(ids),  # type: ignore[union-attr]
        Notification.kind.in_(("alert", "escalation")),  # type: ignore[attr-defined]
    ).order_by(Notification.id)).all()
    events = session.exec(select(TimelineEvent.exception_id, TimelineEvent.kind, TimelineEvent.person_id).where(
        TimelineEvent.exception_id.in_(ids),  # type: ignore[attr-defined]
        TimelineEvent.kind.in_(("acknowledged", "escalated")),  # type: ignore[attr-defined]
    ).order_by(TimelineEvent.id)).all()
    refused = set(session.exec(select(ErpTransaction.exception_id).where(
        ErpTransaction.exception_id.in_(ids), ErpTransaction.status == "rejected")))  # type: ignore[union-attr]
    open_parts = session.exec(select(ExceptionDecision.exception_id).where(
        ExceptionDecision.exception_id.in_(ids),  # type: ignore[attr-defined]
        ExceptionDecision.status.in_([s.value for s in decisions.OPEN]))).all()  # type: ignore[attr-defined]
    people = {pid for _, pid in pages} | {pid for _, _, pid in events if pid}
    names: dict[str, str] = {}
    if people:
        names = dict(session.exec(select(Person.id, Person.name).where(
            Person.plant_id == rows[0].plant_id, Person.id.in_(people))).all())  # type: ignore[attr-defined]
    facts: dict[int, dict[str, Any]] = {}
    for exc in rows:
        if exc.id is None:
            continue
        end = _utc(exc.closed_at) if exc.closed_at else _utc(now)
        age = max(0.0, (end - _utc(exc.opened_at)).total_seconds())
        paged = list(dict.fromkeys(names.get(pid, pid) for eid, pid in pages if eid == exc.id))
        ackers = [names.get(pid, pid) for eid, kind, pid in events if eid == exc.id and kind == "acknowledged" and pid]
        mine = [t for t in timers if t.exception_id == exc.id]
        facts[exc.id] = {
            "age_seconds": int(age), "age": messages.age(age),
            "acknowledged_by": ackers[0] if ackers else None, "paged": paged,
            "holder": ackers[0] if ackers else ", ".join(paged) or None,
            "escalated": any(eid == exc.id and kind == "escalated" for eid, kind, _ in events),
            "overdue": any(t.status == "fired" or t.status == "pending" and _utc(t.due_at) <= _utc(now)
                           for t in mine),
            "erp_refused": exc.id in refused,
            "open_decisions": sum(1 for eid in open_parts if eid == exc.id),
        }
    return facts


def _decision_json(part: ExceptionDecision, language: str, timezone: str) -> dict[str, Any]:
    """A decision part as the console shows it: in words, its state, whose it is, what is open."""
    return {"id": part.id, "kind": part.kind, "kind_name": messages.kind_name(part.kind, language),
            "status": part.status, "status_name": messages.render(f"part_status_{part.status}", language),
            "open": part.status in decisions.OPEN, "role": part.role,
            "role_name": messages.role_name(part.role, language),
            "text": decisions.describe(part, language, timezone), "proposed_by": part.proposed_by,
            "decided_by": part.decided_by, "updated_at": iso(part.updated_at)}


def _timeline_json(session: Session, exc: PlantException, events: Sequence[TimelineEvent],
                   machines: dict[str, Machine], language: str) -> list[dict[str, Any]]:
    """Each event with its `sentence` in the reader's language (null when it says nothing)."""
    people = {e.person_id for e in events if e.person_id}
    for event in events:
        people.update(p for p in (event.data or {}).get("people") or [] if isinstance(p, str))
    names = dict(session.exec(select(Person.id, Person.name).where(
        Person.plant_id == exc.plant_id, Person.id.in_(people))).all()) if people else {}  # type: ignore[attr-defined]
    where = _machine_label(exc, machines)
    if where is None and exc.area_id:
        area = session.get(Area, (exc.plant_id, exc.area_id))
        where = area.name if area else exc.area_id
    said = sentences([Line(kind=e.kind, person=e.person_id, text=e.text, data=e.data or {}) for e in events],
                     language, names=names, machine=_machine_label(exc, machines), where=where)
    return [{"id": e.id, "at": iso(e.at), "kind": e.kind, "person": e.person_id, "text": e.text, "data": e.data,
             "sentence": sentence} for e, sentence in zip(events, said, strict=True)]


def _notification_json(row: Notification, codes: dict[int, str],
                       update: Notification | None = None) -> dict[str, Any]:
    """A notification as the reader sees it now: when a later `buttons_update` replaced its
    buttons (`update`, the newest), its buttons are the update's and `buttons_status` says why."""
    return {
        "id": row.id, "at": iso(row.created_at), "to": row.person_id, "role": row.role,
        "role_name": messages.role_name(row.role, "en") if row.role else None,
        "kind": row.kind,
        "channel": row.channel, "text": row.text, "buttons": update.buttons if update else row.buttons,
        "buttons_status": update.text if update else None, "updates_id": row.updates_id,
        "exception": codes.get(row.exception_id) if row.exception_id else None,
        "status": row.status, "error": row.error, "chart": chart_url(row),
    }


def chart_url(row: Notification) -> str | None:
    """Where the console reads the chart of an answer (the PNG the chat platforms got), if it has one."""
    return f"/api/people/{row.person_id}/charts/{row.id}" if row.chart and row.id is not None else None


def _notifications_json(session: Session, rows: Sequence[Notification], codes: dict[int, str]) -> list[dict[str, Any]]:
    """`_notification_json` of each row with its newest buttons update, found in one query."""
    ids = [r.id for r in rows if r.id is not None and r.kind != "buttons_update"]
    newest: dict[int, Notification] = {}
    if ids:
        for update in session.exec(select(Notification).where(
                Notification.kind == "buttons_update", Notification.updates_id.in_(ids),  # type: ignore[union-attr]
        ).order_by(Notification.id)):
            if update.updates_id is not None:
                newest[update.updates_id] = update
    return [_notification_json(r, codes, newest.get(r.id) if r.id is not None else None) for r in rows]


def _transaction_json(txn: ErpTransaction, codes: dict[int, str]) -> dict[str, Any]:
    return {
        "id": txn.id, "public_id": txn.public_id,
        "exception": codes.get(txn.exception_id) if txn.exception_id else None,
        "sequence": txn.sequence, "kind": txn.kind, "kind_name": messages.kind_name(txn.kind, "en"),
        "fields": txn.fields, "status": erp_status(txn),
        "reference": txn.reference, "attempts": txn.attempts, "error": txn.error,
        "created_at": iso(txn.created_at), "posted_at": iso(txn.posted_at),
        # A refused one waits for the approver role: the buttons it presses (POST /api/actions).
        "actions": list(erp_buttons(txn.public_id)) if txn.status == "rejected" else [],
    }


def _codes(session: Session, ids: Iterable[int | None]) -> dict[int, str]:
    wanted = {i for i in ids if i is not None}
    if not wanted:
        return {}
    rows = session.exec(select(PlantException.id, PlantException.code)
                        .where(PlantException.id.in_(wanted))).all()  # type: ignore[union-attr]
    return {row_id: code for row_id, code in rows if row_id is not None}


def _mes_json(row: MesTransaction, codes: dict[int, str]) -> dict[str, Any]:
    return {"id": row.id, "exception": codes.get(row.exception_id), "kind": row.kind,
            "kind_name": messages.kind_name(row.kind, "en"), "fields": row.fields, "status": row.status,
            "reference": row.reference, "attempts": row.attempts, "error": row.error,
            "created_at": iso(row.created_at), "sent_at": iso(row.sent_at),
            "next_attempt_at": iso(row.next_attempt_at) if row.status == "pending" else None}


def _signal_what(signal: Signal) -> str:
    """One line of what a signal said: a person's text, a machine's state, a work order's status."""
    payload = signal.payload or {}
    if isinstance(payload.get("text"), str) and payload["text"]:
        said = payload["text"]
    elif signal.kind == "action":
        said = f"{payload.get('action') or ''} {payload.get('exception_ref') or ''}"
    elif signal.kind == "work_order":
        said = f"{payload.get('work_order') or ''} {payload.get('status') or ''}"
    else:
        said = " ".join(f"{k}={payload[k]}" for k in ("state", "running", "reason") if k in payload)
    said = " ".join(str(said).split())
    return said if len(said) <= SIGNAL_TEXT else said[:SIGNAL_TEXT - 1] + "…"


def _signal_json(signal: Signal) -> dict[str, Any]:
    machine = (signal.payload or {}).get("machine")
    return {"id": signal.id, "at": iso(signal.received_at), "source": signal.source, "kind": signal.kind,
            "person": signal.person_id, "machine": machine if isinstance(machine, str) else None,
            "what": _signal_what(signal), "processed": signal.processed_at is not None, "error": signal.error}


def _validation_problem(error: dict[str, Any]) -> str:
    where = ".".join(str(part) for part in error.get("loc", ()) if part != "body")
    message = str(error.get("msg", "invalid")).removeprefix("Value error, ")
    return f"{where}: {message}" if where else message


# --- the app -------------------------------------------------------------------------------


def create_app(runtime: Runtime, *, extra_routers: Sequence[APIRouter] = (),
               lifespan: Lifespan | None = None, demo: bool = False) -> FastAPI:
    """The console page, the REST API and `extra_routers` (channel webhooks) on one ASGI app.

    `lifespan` lets the server run its outbox worker beside the app; tests leave it out and
    drain the runtime themselves. Every route is behind `mfgos.auth.SignInGate` (sign-in or an
    API token); `demo=True` lets anyone act as anyone (`mfgos demo`, on loopback only).
    """
    app = FastAPI(title="mfgos console", lifespan=lifespan, docs_url="/api/docs", redoc_url=None,
                  openapi_url="/api/openapi.json")
    app.state.runtime = runtime
    plant_id = runtime.plant_id
    settings = runtime.settings
    auth = Auth(runtime.engine, plant_id, runtime.clock, session_hours=settings.session_hours,
                public_url=settings.public_url)
    app.state.auth = auth
    app.add_middleware(SignInGate, auth=auth, demo=demo)
    app.add_middleware(metrics.RequestTimer)
    # Added last, so outermost: limits, hosts and headers hold for every answer, the gate's 401s included.
    guard.install(app, runtime.settings.allowed_hosts)
    for router in sign_in_routers(auth, settings, demo=demo):
        app.include_router(router)

    @app.exception_handler(RequestValidationError)
    def _bad_request(_request: Request, error: RequestValidationError) -> JSONResponse:
        problems = [_validation_problem(e) for e in error.errors()]
        return JSONResponse(status_code=422, content={"detail": "; ".join(problems), "problems": problems})

    def person_or_404(session: Session, person_id: str) -> Person:
        person = session.get(Person, (plant_id, person_id))
        if person is None:
            raise HTTPException(404, f"unknown person {person_id!r} in plant {plant_id}")
        return person

    def exception_or_404(session: Session, code: str) -> PlantException:
        exc = session.exec(select(PlantException).where(
            PlantException.plant_id == plant_id, PlantException.code == code.strip().upper())).first()
        if exc is None:
            raise HTTPException(404, f"unknown exception {code!r}")
        return exc

    def check_sender(person_id: str, exception: str | None) -> int:
        """404 for an unknown person or thread; returns the newest notification id so far."""
        with Session(runtime.engine) as session:
            person_or_404(session, person_id)
            if exception:
                exception_or_404(session, exception)
            return session.exec(select(func.max(Notification.id))).one() or 0

    def outcome(signal_id: int, duplicate: bool, person_id: str, newer_than: int) -> dict[str, Any]:
        """The stored signal and what the bot answered its sender: notification keys start with
        their cause (`signal:ID:`); the id bound keeps the lookup on the primary key. Edits of the
        sender's earlier buttons (`buttons_update`) are not answers: the page applies them itself."""
        with Session(runtime.engine) as session:
            query = select(Notification).where(
                Notification.person_id == person_id, Notification.kind != "buttons_update",
                Notification.dedupe_key.startswith(f"signal:{signal_id}:"),  # type: ignore[attr-defined]
            )
            if not duplicate:
                query = query.where(Notification.id > newer_than)
            rows = session.exec(query.order_by(Notification.id)).all()
            signal = session.get(Signal, signal_id)
            codes = _codes(session, (r.exception_id for r in rows))
            return {"signal_id": signal_id, "duplicate": duplicate,
                    "error": signal.error if signal is not None else None,
                    "replies": _notifications_json(session, rows, codes)}

    # --- page and health -------------------------------------------------------------------

    @app.get("/", include_in_schema=False)
    def page() -> FileResponse:
        return FileResponse(STATIC / "index.html", headers={"Cache-Control": "no-cache"})

    app.mount("/static", StaticFiles(directory=STATIC), name="static")

    @app.get("/healthz")
    def healthz() -> dict[str, Any]:
        with Session(runtime.engine) as session:
            pending = session.exec(select(func.count()).select_from(Notification)
                                   .where(Notification.status == "pending")).one()
        return {"status": "ok", "plant": plant_id, "pending_notifications": pending}

    @app.get("/readyz")
    def readyz() -> JSONResponse:
        """Ready for traffic: the database answers and its schema is at the newest migration (503 otherwise)."""
        head = migration_head()
        try:
            current = schema_revision(runtime.engine)
        except SQLAlchemyError as error:
            return JSONResponse({"status": "unavailable", "database": f"unreachable ({type(error).__name__})"},
                                status_code=503)
        if current != head:
            return JSONResponse({"status": "unavailable", "database": "reachable", "migration": current,
                                 "expected": head}, status_code=503)
        return JSONResponse({"status": "ready", "database": "reachable", "migration": current})

    @app.get("/metrics", include_in_schema=False)
    def metrics_view() -> Response:
        """Prometheus metrics (mfgos/metrics.py); a `read` API token or a session may scrape."""
        return Response(metrics.render(runtime.engine, plant_id), media_type=metrics.CONTENT_TYPE)

    # --- reading -----------------------------------------------------------------------------

    @app.get("/api/session")
    def session_view(request: Request) -> dict[str, Any]:
        """Who the console is for: the demo (anyone), or the signed-in person (or token) acting."""
        principal = principal_of(request)
        person = None
        if principal.person_id:
            with Session(runtime.engine) as session:
                found = session.get(Person, (plant_id, principal.person_id))
                if found is not None:
                    person = {"id": found.id, "name": found.name, "roles": found.roles, "language": found.language}
        return {"demo": principal.kind == "demo", "kind": principal.kind, "person": person,
                "token": principal.name, "scope": principal.scope}

    @app.get("/api/plant")
    def plant_view() -> dict[str, Any]:
        with Session(runtime.engine) as session:
            plant = session.get(Plant, plant_id)
            if plant is None:
                raise HTTPException(503, "the plant is not loaded")
            local = plant_local(plant, runtime.clock.now())
            shifts = {s.id: s for s in session.exec(select(Shift).where(Shift.plant_id == plant_id))}
            people = session.exec(select(Person).where(Person.plant_id == plant_id).order_by(Person.id)).all()
            machines = session.exec(select(Machine).where(Machine.plant_id == plant_id).order_by(Machine.id)).all()
            areas = session.exec(select(Area).where(Area.plant_id == plant_id).order_by(Area.id)).all()
            return {
                "plant": {"id": plant.id, "name": plant.name, "timezone": plant.timezone,
                          "local_time": local.isoformat()},
                "areas": [{"id": a.id, "name": a.name} for a in areas],
                "people": [_person_json(p, shifts, local) for p in people],
                "machines": [{"id": m.id, "name": m.name, "area": m.area_id, "running": m.running}
                             for m in machines],
            }

    @app.get("/api/exceptions")
    def exceptions(status: Annotated[str | None, Query(max_length=20)] = None,
                   lang: Annotated[str | None, Query(max_length=5)] = None) -> dict[str, Any]:
        language = viewer_language(lang)
        with Session(runtime.engine) as session:
            query = select(PlantException).where(PlantException.plant_id == plant_id)
            if status == "open":
                query = query.where(PlantException.status != "closed")
            elif status:
                query = query.where(PlantException.status == status)
            rows = session.exec(query.order_by(PlantException.id.desc()).limit(LIST_LIMIT)).all()  # type: ignore[union-attr]
            machines = {m.id: m for m in session.exec(select(Machine).where(Machine.plant_id == plant_id))}
            facts = _list_facts(session, rows, runtime.clock.now())
            return {"exceptions": [{**_exception_json(e, machines, language), **facts.get(e.id or 0, {})}
                                   for e in rows]}

    @app.get("/api/exceptions/{code}")
    def exception_detail(code: str, lang: Annotated[str | None, Query(max_length=5)] = None) -> dict[str, Any]:
        language = viewer_language(lang)
        with Session(runtime.engine) as session:
            exc = exception_or_404(session, code)
            machines = {m.id: m for m in session.exec(select(Machine).where(Machine.plant_id == plant_id))}
            timeline = session.exec(select(TimelineEvent).where(TimelineEvent.exception_id == exc.id)
                                    .order_by(TimelineEvent.id)).all()
            notes = session.exec(select(Notification).where(Notification.exception_id == exc.id)
                                 .order_by(Notification.id)).all()
            txns = session.exec(select(ErpTransaction).where(ErpTransaction.exception_id == exc.id)
                                .order_by(ErpTransaction.sequence, ErpTransaction.id)).all()
            approvals = session.exec(select(Approval).where(Approval.exception_id == exc.id)
                                     .order_by(Approval.id)).all()
            codes = {exc.id: exc.code} if exc.id is not None else {}
            plant = session.get(Plant, plant_id)
            zone = plant.timezone if plant else "UTC"
            return {
                **_exception_json(exc, machines, language),
                **_list_facts(session, [exc], runtime.clock.now()).get(exc.id or 0, {}),
                "timeline": _timeline_json(session, exc, timeline, machines, language),
                "notifications": _notifications_json(session, notes, codes),
                "erp_transactions": [_transaction_json(t, codes) for t in txns],
                "approvals": [{"at": iso(a.at), "person": a.person_id, "decision": a.decision,
                               "accepted": a.accepted, "reason": a.reason} for a in approvals],
                "decisions": [_decision_json(p, language, zone) for p in decisions.parts(session, exc.id or 0)],
            }

    @app.get("/api/people/{person_id}/messages")
    def person_messages(person_id: str, request: Request, after: Annotated[int, Query(ge=0)] = 0,
                        after_sent: Annotated[int, Query(ge=0)] = 0) -> dict[str, Any]:
        """Bot messages to the person on any channel (`messages`) and what they sent (`sent`): a
        signed-in person reads only their own. Sign-in links are never shown (they sign people in)."""
        principal_of(request).acting_as(person_id)
        with Session(runtime.engine) as session:
            person_or_404(session, person_id)
            rows = session.exec(select(Notification).where(
                Notification.plant_id == plant_id, Notification.person_id == person_id, Notification.id > after,
                Notification.kind != LINK_KIND,
            ).order_by(Notification.id).limit(LIST_LIMIT)).all()
            sent = session.exec(select(Signal).where(
                Signal.plant_id == plant_id, Signal.person_id == person_id, Signal.id > after_sent,
                Signal.kind.in_(("chat", "action")),  # type: ignore[attr-defined]
            ).order_by(Signal.id).limit(LIST_LIMIT)).all()
            codes = _codes(session, (r.exception_id for r in rows))
            return {
                "person": person_id,
                "messages": _notifications_json(session, rows, codes),
                "sent": [{"id": s.id, "at": iso(s.received_at), "channel": s.payload.get("channel") or s.source,
                          "text": s.payload.get("text") or "", "action": s.payload.get("action"),
                          "exception": s.payload.get("exception_ref"), "error": s.error} for s in sent],
            }

    @app.get("/api/people/{person_id}/charts/{notification_id}", include_in_schema=False)
    def chart_png(person_id: str, notification_id: int, request: Request) -> Response:
        """The chart of a bot answer to `person_id`, as a PNG: the same drawing the chat platforms got.
        Read as the messages are: a signed-in person reads only their own; another plant's row is a 404."""
        principal_of(request).acting_as(person_id)
        with Session(runtime.engine) as session:
            row = session.get(Notification, notification_id)
            if row is None or row.plant_id != plant_id or row.person_id != person_id or not row.chart:
                raise HTTPException(404, "no such chart")
            chart = row.chart
        return Response(charts.render(chart), media_type="image/png",
                        headers={"Cache-Control": "private, max-age=86400", "ETag": f'"{charts.digest(chart)}"'})

    @app.get("/api/erp")
    def erp_view() -> dict[str, Any]:
        with Session(runtime.engine) as session:
            txns = session.exec(select(ErpTransaction).where(ErpTransaction.plant_id == plant_id)
                                .order_by(ErpTransaction.id.desc()).limit(LIST_LIMIT)).all()  # type: ignore[union-attr]
            documents = session.exec(select(LedgerDocument).order_by(LedgerDocument.id.desc())  # type: ignore[union-attr]
                                     .limit(LIST_LIMIT)).all()
            codes = _codes(session, (t.exception_id for t in txns))
            check = session.get(ErpCheck, plant_id)
            watch = session.get(StockWatchRun, plant_id)
            return {
                "erp": runtime.settings.erp,
                # The last preflight of the plant's erp: settings (`mfgos check-erp`), None before the first.
                "check": None if check is None else {
                    "erp": check.erp, "checked_at": iso(check.checked_at), "problems": check.problems,
                    "error": check.error},
                # The stock watch's last run (docs/routing.md, "Stock watch"), None before the first.
                "stock_watch": None if watch is None else {
                    "erp": watch.erp, "ran_at": iso(watch.ran_at), "materials": watch.materials,
                    "shortages": watch.shortages, "error": watch.error},
                "transactions": [_transaction_json(t, codes) for t in txns],
                "ledger_documents": [{"reference": d.reference, "kind": d.kind, "fields": d.fields,
                                      "idempotency_key": d.idempotency_key, "posted_at": iso(d.posted_at)}
                                     for d in documents],
            }

    def asked_period(since: str | None, until: str | None) -> tuple[datetime, datetime]:
        try:
            return kpis_period(since, until, runtime.clock.now())
        except ValueError as error:
            raise HTTPException(422, str(error)) from None

    @app.get("/api/kpis")
    def kpis(period: Literal["today", "week"] | None = None, since: Annotated[str | None, Query(max_length=40)] = None,
             until: Annotated[str | None, Query(max_length=40)] = None) -> dict[str, Any]:
        """The figures of docs/kpis.md for exceptions opened in [since, until) (ISO, or a span back
        from now such as `7d`; default the last seven days), or in `period`: today or this week, plant time."""
        now = runtime.clock.now()
        start, end = asked_period(since, until) if period is None else (now, now)
        with Session(runtime.engine) as session:
            plant = session.get(Plant, plant_id)
            if plant is None:
                raise HTTPException(503, "the plant is not loaded")
            if period is not None:
                local = plant_local(plant, now)
                start = local.replace(hour=0, minute=0, second=0, microsecond=0)
                if period == "week":
                    start -= timedelta(days=local.weekday())
                end = now + timedelta(seconds=1)
            figures = compute(session, plant_id, start, end)
        return {"plant": plant_id, **({"period": period} if period else {}), **figures.to_json()}

    def plant_or_503(session: Session) -> Plant:
        plant = session.get(Plant, plant_id)
        if plant is None:
            raise HTTPException(503, "the plant is not loaded")
        return plant

    # --- the dashboard (docs/console.md, "Dashboard") ------------------------------------------

    @app.get("/api/outcomes")
    def outcomes_view(since: Annotated[str | None, Query(max_length=40)] = None,
                      until: Annotated[str | None, Query(max_length=40)] = None) -> dict[str, Any]:
        """The four outcomes per exception type against the plant file's `baseline:` (docs/kpis.md)."""
        start, end = asked_period(since, until)
        with Session(runtime.engine) as session:
            plant = plant_or_503(session)
            found = outcomes.compute(session, plant_id, plant.baseline or {}, start, end)
        return {"plant": plant_id, **found.to_json()}

    @app.get("/api/trends")
    def trends_view(since: Annotated[str | None, Query(max_length=40)] = None,
                    until: Annotated[str | None, Query(max_length=40)] = None) -> dict[str, Any]:
        """KPIs per plant-local day of the period (at most `trends.MAX_DAYS` days; 422 beyond)."""
        start, end = asked_period(since, until)
        with Session(runtime.engine) as session:
            plant = plant_or_503(session)
            try:
                days = trends.daily(session, plant_id, plant.timezone, start, end)
            except ValueError as error:
                raise HTTPException(422, str(error)) from None
        return {"plant": plant_id, "since": start.isoformat(), "until": end.isoformat(), "timezone": plant.timezone,
                "days": days}

    @app.get("/api/pareto")
    def pareto_view(since: Annotated[str | None, Query(max_length=40)] = None,
                    until: Annotated[str | None, Query(max_length=40)] = None,
                    lang: Annotated[str | None, Query(max_length=5)] = None) -> dict[str, Any]:
        """Exception types by count and by downtime (minutes), largest first, with their running share."""
        start, end = asked_period(since, until)
        language = viewer_language(lang)
        with Session(runtime.engine) as session:
            ranked = trends.pareto(session, plant_id, start, end)
        for bars in ranked.values():
            for bar in bars:
                bar["type_name"] = messages.type_name(bar["type"], language)
        return {"plant": plant_id, "since": start.isoformat(), "until": end.isoformat(), **ranked}

    @app.get("/api/mes")
    def mes_view() -> dict[str, Any]:
        """The MES outbox (docs/mes.md), newest first, with how many rows wait or were refused."""
        with Session(runtime.engine) as session:
            rows = session.exec(select(MesTransaction).where(MesTransaction.plant_id == plant_id)
                                .order_by(MesTransaction.id.desc()).limit(LIST_LIMIT)).all()  # type: ignore[union-attr]
            counts = dict(session.exec(select(MesTransaction.status, func.count()).where(
                MesTransaction.plant_id == plant_id).group_by(MesTransaction.status)).all())
            codes = _codes(session, (r.exception_id for r in rows))
            plant = plant_or_503(session)
            return {"configured": bool(plant.mes), "counts": counts,
                    "transactions": [_mes_json(r, codes) for r in rows]}

    @app.get("/api/signals")
    def signals_view(source: Annotated[str | None, Query(pattern=FILTER_WORD)] = None,
                     machine: Annotated[str | None, Query(pattern=FILTER_WORD)] = None,
                     before: Annotated[int | None, Query(ge=1, le=MAX_ID)] = None,
                     limit: Annotated[int, Query(ge=1, le=LIST_LIMIT)] = SIGNAL_PAGE) -> dict[str, Any]:
        """The signal log: every inbound event of the plant, newest first, a page of `limit` with ids
        below `before`; filtered by `source` (slack, mqtt, mes, ...) and `machine`. `next_before` pages on."""
        query = select(Signal).where(Signal.plant_id == plant_id)
        if source:
            query = query.where(Signal.source == source)
        if machine:
            query = query.where(Signal.payload["machine"].as_string() == machine)  # type: ignore[index]
        if before:
            query = query.where(Signal.id < before)  # type: ignore[operator]
        with Session(runtime.engine) as session:
            rows = session.exec(query.order_by(Signal.id.desc()).limit(limit)).all()  # type: ignore[union-attr]
        return {"signals": [_signal_json(s) for s in rows],
                "next_before": rows[-1].id if len(rows) == limit else None}

    @app.get("/api/export")
    def export_view(since: Annotated[str | None, Query(max_length=40)] = None,
                    until: Annotated[str | None, Query(max_length=40)] = None,
                    format: Literal["csv", "json"] = "csv") -> StreamingResponse:
        """Exceptions opened in [since, until) with their timelines, streamed (docs/kpis.md, "Export")."""
        start, end = asked_period(since, until)
        lines = export.csv_lines if format == "csv" else export.json_chunks
        name = f"mfgos-{plant_id}-{start:%Y%m%dT%H%M}-{end:%Y%m%dT%H%M}.{format}"
        return StreamingResponse(
            lines(runtime.engine, plant_id, start, end),
            media_type="text/csv; charset=utf-8" if format == "csv" else "application/json",
            headers={"Content-Disposition": f'attachment; filename="{name}"'})

    # --- acting ------------------------------------------------------------------------------

    # Who acts is the signed-in person (or an act token's); what they may do is the lifecycle's call.

    @app.post("/api/messages")
    def post_message(body: ChatIn, request: Request) -> Any:
        if len(body.text) > MAX_TEXT:
            return text_too_long()
        person_id = principal_of(request).acting_as(body.person_id)
        newest = check_sender(person_id, body.exception)
        received = runtime.accept(Inbound(
            source=CONSOLE, event_id=body.event_id or uuid.uuid4().hex, address=person_id,
            person_id=person_id, text=body.text.strip(),
            exception_ref=body.exception.strip().upper() if body.exception else None))
        return outcome(received.signal_id, received.duplicate, person_id, newest)

    @app.post("/api/actions")
    def post_action(body: ActionIn, request: Request) -> dict[str, Any]:
        person_id = principal_of(request).acting_as(body.person_id)
        newest = check_sender(person_id, body.exception)
        erp = erp_rejections.button_action(body.action)
        if erp is not None:
            with Session(runtime.engine) as session:
                if erp_rejections.transaction(session, plant_id, erp[1]) is None:
                    raise HTTPException(404, "unknown ERP transaction")
        received = runtime.accept(Inbound(
            source=CONSOLE, event_id=body.event_id or uuid.uuid4().hex, address=person_id,
            person_id=person_id, text=body.text.strip(), exception_ref=body.exception.strip().upper(),
            action=body.action))
        if erp is not None and (refused := erp_refusal(person_id, *erp)) is not None:
            # Recorded and told like any refusal (the lifecycle's); the API says so with its status too.
            raise HTTPException(403, refused)
        return outcome(received.signal_id, received.duplicate, person_id, newest)

    @app.post("/api/mes/{row_id}/{action}")
    def mes_action(row_id: Annotated[int, InPath(ge=1, le=MAX_ID)], action: Literal["retry", "abandon"],
                   body: MesActionIn, request: Request) -> dict[str, Any]:
        """Retry or abandon a row the MES refused (docs/console.md, "Dashboard"): the lifecycle
        table decides who may (the exception's approver role; 403 with its sentence otherwise).
        The row, the timeline and the messages change in one DB transaction."""
        person_id = principal_of(request).acting_as(body.person_id)
        reason = body.text.strip()
        if action == "abandon" and not reason:
            raise HTTPException(422, "say why the row is given up (text)")
        with Session(runtime.engine) as session:
            who = person_or_404(session, person_id)
            row = session.get(MesTransaction, row_id)
            if row is None or row.plant_id != plant_id:
                raise HTTPException(404, "unknown MES transaction")
            plant = plant_or_503(session)
            ctx = Context(session=session, plant=plant, now=runtime.clock.now(),
                          cause=f"console:mes:{row_id}:{action}:{uuid.uuid4().hex[:12]}")
            try:
                refused = mes_rejections.settle(ctx, row, mes_rejections.ACTIONS[action], who, reason, MES_ROWS)
            except ValueError as problem:
                raise HTTPException(409, str(problem)) from None
            session.commit()
            if refused is not None:
                raise HTTPException(403, refused.text(who.language))
            return {"id": row_id, "status": row.status, "error": row.error}

    def erp_refusal(person_id: str, action: Action, public_id: str) -> str | None:
        """The lifecycle's refusal of a person outside the table's `who` for a Retry / Abandon."""
        with Session(runtime.engine) as session:
            txn = erp_rejections.transaction(session, plant_id, public_id)
            plant = session.get(Plant, plant_id)
            who = session.get(Person, (plant_id, person_id))
            if txn is None or plant is None or who is None:
                return None
            ctx = Context(session=session, plant=plant, now=runtime.clock.now(), cause="console:check")
            refused = erp_rejections.refusal(ctx, txn, action, who)
            return refused.text(who.language) if refused is not None and refused.reason == "role" else None

    for router in extra_routers:
        app.include_router(router)
    return app

"""Scenario replay (docs/architecture.md, "Time"): timed events through the real pipeline on a simulated clock.

Every channel is a capture channel and the ERP is the configured adapter (the embedded
ledger by default). Each event is stored as a signal with a key derived from the scenario
and the event's index, so replaying into the same database after a crash resumes where the
crash left off and repeats nothing.
"""

from __future__ import annotations

import asyncio
import hashlib
import os
import re
import signal as os_signal
import sys
import tempfile
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import yaml
from sqlmodel import Session, select

from bot.channels.base import CaptureChannel, Channel
from mfgos.config import Settings
from mfgos.runtime import Runtime
from models import (
    AckTimer,
    ErpTransaction,
    ExceptionDecision,
    MesTransaction,
    Notification,
    Person,
    PlantException,
    TimelineEvent,
)
from routing.clock import SimulatedClock
from routing.inbound import Inbound

CHANNELS = ("slack", "telegram", "whatsapp", "console", "bridge")
_DURATION = re.compile(r"^(?:(\d+)d)?(?:(\d+)h)?(?:(\d+)m)?(?:(\d+(?:\.\d+)?)s)?$")
DEFAULT_TAIL = timedelta(hours=1)  # timers keep running this long after the last event
# A decision part's button in a scenario: `part:approve:1` (routing/decisions.py), N counting the run's parts.
PART_BUTTON = re.compile(r"part:(approve|reject|confirm|skip|option[1-9]):(\d{1,4})")


class ScenarioError(Exception):
    """A scenario file that cannot be replayed; the message says where and why."""


@dataclass
class Event:
    index: int
    at: timedelta
    kind: str  # chat | action | signal
    body: dict[str, Any]


@dataclass
class Scenario:
    path: Path
    plant: Path
    start: datetime
    events: list[Event]
    until: timedelta
    key: str


def parse_offset(text: Any, where: str) -> timedelta:
    if isinstance(text, int | float):
        return timedelta(seconds=float(text))
    match = _DURATION.match(str(text).replace(" ", ""))
    if not match or not any(match.groups()):
        raise ScenarioError(f"{where}: bad time offset {text!r} (use e.g. 0s, 90s, 4m, 1h30m)")
    d, h, m, s = match.groups()
    return timedelta(days=int(d or 0), hours=int(h or 0), minutes=int(m or 0), seconds=float(s or 0))


def load_scenario(path: Path) -> Scenario:
    try:
        raw_text = path.read_text(encoding="utf-8")
    except OSError as error:
        raise ScenarioError(f"{path}: cannot read ({error.strerror})") from error
    try:
        raw = yaml.safe_load(raw_text)
    except yaml.YAMLError as error:
        mark = getattr(error, "problem_mark", None)
        line = f":{mark.line + 1}" if mark else ""
        raise ScenarioError(f"{path}{line}: YAML syntax error: {getattr(error, 'problem', error)}") from error
    if not isinstance(raw, dict):
        raise ScenarioError(f"{path}: a scenario is a mapping with plant, start and events")
    for key in ("plant", "start", "events"):
        if key not in raw:
            raise ScenarioError(f"{path}: missing key {key!r}")
    plant = (path.parent / str(raw["plant"])).resolve()
    if not plant.exists():
        raise ScenarioError(f"{path}: plant: file {plant} does not exist")
    try:
        start = datetime.fromisoformat(str(raw["start"]))
    except ValueError as error:
        raise ScenarioError(f"{path}: start: not an ISO datetime: {raw['start']!r}") from error
    if start.tzinfo is None:
        raise ScenarioError(f"{path}: start: give a UTC offset, e.g. 2026-11-25T09:00:00+05:30")
    if not isinstance(raw["events"], list):
        raise ScenarioError(f"{path}: events: must be a list")
    events = []
    for index, item in enumerate(raw["events"]):
        where = f"{path}: events[{index}]"
        if not isinstance(item, dict) or "at" not in item:
            raise ScenarioError(f"{where}: each event needs 'at' and one of chat, action, signal")
        kinds = [k for k in ("chat", "action", "signal") if k in item]
        if len(kinds) != 1 or not isinstance(item[kinds[0]], dict):
            raise ScenarioError(f"{where}: needs exactly one of chat, action, signal (a mapping)")
        body = item[kinds[0]]
        if kinds[0] in ("chat", "action") and "from" not in body and not (
                kinds[0] == "chat" and body.get("address") and body.get("channel") in CHANNELS):
            raise ScenarioError(f"{where}.{kinds[0]}: missing 'from' (a person id; or channel and address of "
                                "a sender the plant does not know)")
        if kinds[0] == "chat" and "text" not in body:
            raise ScenarioError(f"{where}.chat: missing 'text'")
        if kinds[0] == "action" and body.get("kind") not in ("ack", "approve", "reject", "propose", "yes", "no") and \
                not PART_BUTTON.fullmatch(str(body.get("kind"))):
            raise ScenarioError(f"{where}.action: kind must be ack, approve, reject, propose, yes, no or "
                                "part:<approve|reject|confirm|skip|optionK>:<N> (the scenario's Nth decision part)")
        if kinds[0] == "signal" and "payload" not in body:
            raise ScenarioError(f"{where}.signal: missing 'payload'")
        if kinds[0] == "signal" and body.get("kind", "machine") not in ("machine", "work_order", "quality"):
            raise ScenarioError(f"{where}.signal: kind must be machine (the default), work_order or quality")
        if kinds[0] == "signal" and body.get("kind") == "work_order" and not isinstance(body["payload"], dict):
            raise ScenarioError(f"{where}.signal: a work_order payload is a mapping with work_order and status")
        if kinds[0] == "signal" and body.get("kind") == "quality" and not isinstance(body["payload"], dict):
            raise ScenarioError(f"{where}.signal: a quality payload is a mapping with lot, characteristic and result")
        events.append(Event(index=index, at=parse_offset(item["at"], f"{where}.at"), kind=kinds[0], body=body))
    if any(b.at < a.at for a, b in zip(events, events[1:], strict=False)):
        raise ScenarioError(f"{path}: events must be in time order")
    last = events[-1].at if events else timedelta()
    until = parse_offset(raw["until"], f"{path}: until") if "until" in raw else last + DEFAULT_TAIL
    key = hashlib.sha256(raw_text.encode()).hexdigest()[:12]
    return Scenario(path=path, plant=plant, start=start, events=events, until=until, key=key)


class Replay:
    def __init__(self, scenario: Scenario, database_url: str, settings: Settings | None = None) -> None:
        self.scenario = scenario
        self.clock = SimulatedClock(scenario.start)
        self.captured: dict[str, CaptureChannel] = {name: CaptureChannel(name) for name in CHANNELS}
        base = settings or Settings()
        self.settings = base.model_copy(update={"database_url": database_url, "plant_file": scenario.plant})
        channels: dict[str, Channel] = dict(self.captured)
        self.runtime = Runtime(self.settings, clock=self.clock, channels=channels)

    def _part_button(self, kind: str, where: str) -> str:
        """`part:approve:2` names the scenario's second decision part; the button carries its row id."""
        found = PART_BUTTON.fullmatch(kind)
        if found is None:
            return kind
        with Session(self.runtime.engine) as session:
            rows = session.exec(select(ExceptionDecision.id).where(
                ExceptionDecision.plant_id == self.runtime.plant_id).order_by(ExceptionDecision.id)).all()
        number = int(found.group(2))
        if not 1 <= number <= len(rows):
            raise ScenarioError(f"{where}: decision part {number} does not exist yet ({len(rows)} so far)")
        return f"part:{found.group(1)}:{rows[number - 1]}"

    def _exception_ref(self, number: int, where: str) -> str:
        with Session(self.runtime.engine) as session:
            rows = session.exec(select(PlantException.code).where(PlantException.plant_id == self.runtime.plant_id)
                                .order_by(PlantException.id)).all()
        if not 1 <= number <= len(rows):
            raise ScenarioError(f"{where}: exception {number} does not exist yet ({len(rows)} opened so far)")
        return rows[number - 1]

    async def _advance_to(self, when: datetime) -> None:
        """Run everything due up to `when` at its own moment — escalation timers, outbox retries —
        then move the clock to `when`.

        The clock stops at each due moment in turn. Work due now that cannot go yet (an ERP
        transaction queued behind an earlier one, ERP posting paused) is passed over: the next
        stop is the next moment strictly later, so a retry due seconds after a failure is
        made seconds after it, not at the next event or the end of the replay. A digest goes out at
        its period's end (`Runtime.send_digests`), as `serve`'s scheduler sends it on the wall clock."""
        await self._run_due()
        while (due := self._next_stop()) is not None and due <= when:
            self.clock.set(due)
            await self._run_due()
        self.clock.set(when)
        await self._run_due()

    def _next_stop(self) -> datetime | None:
        """The next moment something is due: a timer, an outbox retry, or a digest (a shift's end)."""
        now = self.clock.now()
        moments = [self.runtime.next_due(after=now), self.runtime.next_digest(after=now)]
        return min((m for m in moments if m is not None), default=None)

    async def _run_due(self) -> None:
        """Timers and outboxes, then the digests of periods ended by now (which see what the timers did)."""
        await self.runtime.drain()
        if self.runtime.send_digests():
            await self.runtime.drain()

    async def run(self, pause_after: int | None = None) -> dict[str, Any]:
        # A signal stored before a crash but not processed is processed when its event comes
        # round again (`Runtime.receive` finds it by key), at the event's own time.
        for event in self.scenario.events:
            await self._advance_to(self.scenario.start + event.at)
            self._send(event)
            await self.runtime.drain()
            if pause_after is not None and event.index == pause_after:
                # Test hook: stop here so a test can kill -9 this process between two events.
                print(f"paused after event {event.index}", file=sys.stderr, flush=True)
                os_signal.pause()
        await self._advance_to(self.scenario.start + self.scenario.until)
        await self.runtime.erp.aclose()
        await self.runtime.mes.aclose()
        return self.report()

    def _send(self, event: Event) -> None:
        """Hand the event to the runtime's one gate, as a channel would, with an id from its place in the file."""
        body, where = event.body, f"{self.scenario.path}: events[{event.index}]"
        event_id = f"replay:{self.scenario.key}:{event.index}"
        if event.kind == "signal" and body.get("kind") in ("work_order", "quality"):  # as their webhooks store them
            kind = str(body["kind"])
            self.runtime.accept(Inbound(source=str(body.get("source", "mes" if kind == "work_order" else kind)),
                                        event_id=event_id, kind=kind, data=dict(body["payload"])))
            return
        if event.kind == "signal":
            self.runtime.accept(Inbound(source=str(body.get("source", "signal")), event_id=event_id, kind="machine",
                                        data={"topic": body.get("topic"), "payload": body.get("payload"),
                                              "machine": body.get("machine")}))
            return
        if "from" not in body:  # a stranger: the gate finds nobody at this address
            self.runtime.accept(Inbound(source=str(body["channel"]), event_id=event_id, address=str(body["address"]),
                                        text=str(body.get("text", ""))))
            return
        person_id = str(body["from"])
        with Session(self.runtime.engine) as session:
            who = session.get(Person, (self.runtime.plant_id, person_id))
        if who is None:
            raise ScenarioError(f"{where}: unknown person {person_id!r}")
        channel = str(body.get("channel") or next(iter(who.channels), "console"))
        address = who.channels.get(channel, who.id)
        ref = self._exception_ref(int(body["exception"]), where) if body.get("exception") is not None else None
        self.runtime.accept(Inbound(
            source=channel, event_id=event_id, address=address, person_id=person_id, text=str(body.get("text", "")),
            exception_ref=ref, action=self._part_button(str(body["kind"]), where) if event.kind == "action" else None))

    def report(self) -> dict[str, Any]:
        """The JSON replay prints: exceptions with timelines, notifications, ERP transactions."""
        start = self.scenario.start
        tz = start.tzinfo

        def when(at: datetime | None) -> str | None:
            return at.astimezone(tz).isoformat() if at else None

        def elapsed(at: datetime) -> float:
            return round((at - start).total_seconds(), 3)

        with Session(self.runtime.engine) as session:
            exceptions = session.exec(select(PlantException).where(PlantException.plant_id == self.runtime.plant_id)
                                      .order_by(PlantException.id)).all()
            number = {e.id: n for n, e in enumerate(exceptions, start=1)}
            out_exceptions = []
            for exc in exceptions:
                timeline = session.exec(select(TimelineEvent).where(TimelineEvent.exception_id == exc.id)
                                        .order_by(TimelineEvent.id)).all()
                out_exceptions.append({
                    "id": number[exc.id], "code": exc.code, "type": exc.type, "machine": exc.machine_id,
                    "area": exc.area_id, "material": exc.material_id, "severity": exc.severity,
                    "work_orders": exc.work_orders, "customer_orders_at_risk": exc.customer_orders_at_risk,
                    "staging_conflict": exc.staging_conflict or None, "status": exc.status,
                    "reporter": exc.reporter_id, "approver_role": exc.approver_role,
                    "opened_at": when(exc.opened_at), "closed_at": when(exc.closed_at),
                    "timeline": [{"at": when(t.at), "elapsed_s": elapsed(t.at), "kind": t.kind,
                                  "person": t.person_id, "text": t.text, **({"data": t.data} if t.data else {})}
                                 for t in timeline],
                })
            notes = session.exec(select(Notification).where(Notification.plant_id == self.runtime.plant_id)
                                 .order_by(Notification.id)).all()
            out_notes = [{
                "at": when(n.created_at), "elapsed_s": elapsed(n.created_at), "to": n.person_id, "role": n.role,
                "exception": number.get(n.exception_id) if n.exception_id else None, "kind": n.kind,
                "channel": n.channel, "text": n.text, "status": n.status, **({"chart": n.chart} if n.chart else {}),
            } for n in notes]
            txns = session.exec(select(ErpTransaction).where(ErpTransaction.plant_id == self.runtime.plant_id)
                                .order_by(ErpTransaction.id)).all()
            out_txns = [{
                "kind": t.kind, "fields": t.fields, "exception": number.get(t.exception_id) if t.exception_id else None,
                "status": "posted" if t.status == "sent" else t.status, "reference": t.reference,
                "created_at": when(t.created_at), "posted_at": when(t.posted_at), "error": t.error,
            } for t in txns]
            to_mes = session.exec(select(MesTransaction).where(MesTransaction.plant_id == self.runtime.plant_id)
                                  .order_by(MesTransaction.id)).all()  # type: ignore[arg-type]
            out_mes = [{
                "kind": t.kind, "fields": t.fields, "exception": number.get(t.exception_id), "status": t.status,
                "reference": t.reference, "created_at": when(t.created_at),
                "sent_at": when(t.sent_at), "error": t.error,
            } for t in to_mes]
            # Still waiting when the replay ended (its horizon: `until`, default an hour after the
            # last event): an ERP that never came back, a timer set beyond the horizon.
            timers = session.exec(select(AckTimer).where(AckTimer.status == "pending")).all()
            pending = {"erp_transactions": sum(t.status == "pending" for t in txns),
                       "mes_transactions": sum(t.status == "pending" for t in to_mes),
                       "notifications": sum(n.status == "pending" for n in notes),
                       "timers": sum(t.exception_id in number for t in timers)}
        return {"scenario": str(self.scenario.path), "plant": self.runtime.plant_id, "start": start.isoformat(),
                "end": when(self.clock.now()), "exceptions": out_exceptions, "notifications": out_notes,
                "erp_transactions": out_txns, "mes_transactions": out_mes, "pending": pending}


def replay(path: Path, database_url: str | None = None, pause_after: int | None = None,
           settings: Settings | None = None) -> dict[str, Any]:
    """Replay a scenario; without a database URL into a fresh temporary SQLite file."""
    scenario = load_scenario(path)
    with tempfile.TemporaryDirectory(prefix="mfgos-replay-") as tmp:
        url = database_url or f"sqlite:///{os.path.join(tmp, 'replay.db')}"
        runner = Replay(scenario, url, settings)
        try:
            return asyncio.run(runner.run(pause_after=pause_after))
        finally:
            runner.runtime.engine.dispose()

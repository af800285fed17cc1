"""Digests per shift and per day (issue 13, point 5; docs/digests.md), and the decision parts'
reminder interval from the plant file (issue 16): through `mfgos replay`, the runtime on an
injected clock, two runtimes on one PostgreSQL database, and `check-plant`."""

from __future__ import annotations

import asyncio
import subprocess
import sys
import threading
from collections import Counter
from collections.abc import Iterator
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from sqlmodel import Session, select

from bot.channels.base import CaptureChannel
from bot.channels.cards import ZWSP
from mfgos.config import Settings
from mfgos.replay import replay
from mfgos.runtime import Runtime
from mfgos.server import DigestScheduler
from models import DigestMark, Notification, Plant, PlantException, Shift, session_scope
from models.plant_file import check
from routing import digests
from routing.clock import SimulatedClock, SystemClock
from routing.kpis import Kpis
from tests.conftest import postgres_schema_url
from tests.fakes.server import wait_for
from tests.fakes.slack import FakeSlack
from tests.fakes.stack import start_stack

SCENARIOS = Path(__file__).parent / "scenarios"
PLANT = Path(__file__).parent / "data" / "pune_digest_plant.yaml"
PUNE = ZoneInfo("Asia/Kolkata")
SHIFT_END = 5 * 3600.0  # digest_shift_end.yaml starts 09:00; shift a ends 14:00


def digests_in(result: dict[str, Any]) -> dict[str, list[dict[str, Any]]]:
    found: dict[str, list[dict[str, Any]]] = {}
    for note in result["notifications"]:
        if note["kind"] == "digest":
            found.setdefault(note["to"], []).append(note)
    return found


def test_shift_end_digest_in_each_language_with_the_facts(database_url: str) -> None:
    result = replay(SCENARIOS / "digest_shift_end.yaml", database_url=database_url)
    sent = digests_in(result)
    # The supervisor and both managers, once each, at the shift's end; nobody else.
    assert {to: [n["elapsed_s"] for n in notes] for to, notes in sent.items()} == \
        {"sara": [SHIFT_END], "neha": [SHIFT_END], "kiran": [SHIFT_END]}
    assert {to: notes[0]["role"] for to, notes in sent.items()} == \
        {"sara": "supervisor", "neha": "manager", "kiran": "manager"}

    spanish = sent["sara"][0]["text"].splitlines()
    assert spanish[0] == "Resumen del turno a, 2026-11-25 06:00 - 14:00"
    assert "Abiertas: 2" in spanish and "Siguen abiertas: 2" in spanish and "Escaladas: 1" in spanish
    assert "Decisiones pendientes: 1" in spanish
    assert any(line.startswith("- E-0001 avería en HOB-01 (PARADA), abierta hace 5 h, espera una solución")
               for line in spanish)
    assert any(line.startswith("- E-0002 material en ASM-01, abierta hace 4 h, espera una confirmación")
               for line in spanish)
    assert "- E-0002: materiales no confirmó, se avisó a gerente a las 10:10" in spanish
    assert "- E-0001 reprogramación: por aprobar por supervisor, pendiente hace 5 h" in spanish
    assert spanish[-1].startswith("Últimos 7 días: 2 abiertas, 0 cerradas; MTTA 4 min, MTTR -")
    assert "tasa de escalada 50%" in spanish[-1]

    german = sent["neha"][0]["text"].splitlines()
    assert german[0] == "Schichtbericht a, 2026-11-25 06:00 - 14:00"
    assert {"Eröffnet: 2", "Noch offen: 2", "Eskalationen: 1", "Offene Entscheidungen: 1"} <= set(german)
    assert "- E-0001 Umplanung: freizugeben durch die Schichtleitung, offen seit 5 h" in german
    assert any("E-0001 Ausfall an HOB-01 (STEHT)" in line and "wartet auf eine Lösung" in line for line in german)

    # Kiran covers assembly only: the bearing shortage, not the hobber.
    hindi = sent["kiran"][0]["text"]
    assert hindi.startswith("Shift a ka saar") and "E-0002" in hindi and "E-0001" not in hindi
    assert "Khule: 1" in hindi and "Baaki decisions: 0" in hindi


def test_the_plant_files_reminder_interval_is_used(database_url: str) -> None:
    """The digest plant reminds every 3 h: the reschedule proposed at 09:10 reminds the supervisor at
    12:10, once before 14:30 (two hours, the default, would remind at 11:10 and 13:10)."""
    result = replay(SCENARIOS / "digest_shift_end.yaml", database_url=database_url)
    reminders = [(n["to"], n["elapsed_s"]) for n in result["notifications"] if n["kind"] == "reminder"]
    assert reminders == [("sara", 3 * 3600.0 + 600)]


def make_runtime(url: str, clock: SimulatedClock, plant: Path = PLANT) -> Runtime:
    channels = {name: CaptureChannel(name) for name in ("console", "slack", "whatsapp", "telegram")}
    return Runtime(Settings(database_url=url, plant_file=plant), clock=clock, channels=channels)


def digest_rows(runtime: Runtime) -> list[Notification]:
    with Session(runtime.engine) as session:
        return list(session.exec(select(Notification).where(Notification.kind == "digest").order_by(Notification.id)))


def local(day: date, hours: int, minutes: int = 0) -> datetime:
    return datetime(day.year, day.month, day.day, hours, minutes, tzinfo=PUNE)


def next_weekday(after: date) -> date:
    """The first Monday to Friday after `after`: the digest plant's shifts run Monday to Saturday."""
    day = after + timedelta(days=1)
    while day.weekday() > 4:
        day += timedelta(days=1)
    return day


def test_a_quiet_day_says_so_and_the_first_pass_only_starts_the_schedule(tmp_path: Path) -> None:
    day = next_weekday(datetime.now(UTC).date())
    clock = SimulatedClock(local(day, 5, 30))
    runtime = make_runtime(f"sqlite:///{tmp_path / 'quiet.db'}", clock)
    assert runtime.send_digests() == 0, "the first pass sets the mark: yesterday's periods are not sent"
    clock.set(local(day, 7, 0))
    assert runtime.send_digests() == 2, "the daily digest, to both managers"
    clock.set(local(day, 7, 30))
    assert runtime.send_digests() == 0
    rows = {row.person_id: row for row in digest_rows(runtime)}
    assert set(rows) == {"neha", "kiran"}
    previous = day - timedelta(days=1)
    assert rows["neha"].text.splitlines()[:2] == [
        f"Tagesbericht, {previous:%Y-%m-%d} 07:00 - {day:%Y-%m-%d} 07:00",
        "Nichts eröffnet, nichts offen, keine Eskalation, keine offene Entscheidung."]
    assert rows["kiran"].text.splitlines()[1] == \
        "Kuch nahi khula, kuch baaki nahi, koi escalation nahi, koi decision baaki nahi."
    assert rows["neha"].exception_id is None and rows["neha"].channel == "slack"
    asyncio.run(runtime.aclose())


@pytest.fixture
def postgresql_url() -> Iterator[str]:
    """A fresh schema on the test PostgreSQL (replicas share one database)."""
    yield from postgres_schema_url()


def test_two_runtimes_on_one_postgresql_send_each_digest_once(postgresql_url: str) -> None:
    url = postgresql_url
    day = next_weekday(datetime.now(UTC).date())
    clocks = [SimulatedClock(local(day, 13, 0)), SimulatedClock(local(day, 13, 0))]
    replicas = [make_runtime(url, clock) for clock in clocks]
    assert replicas[0].send_digests() == 0 and replicas[1].send_digests() == 0  # the schedule starts
    for clock in clocks:
        clock.set(local(day, 14, 0) + timedelta(seconds=1))
    barrier = threading.Barrier(2)
    counts: list[int] = []

    def run(runtime: Runtime) -> None:
        barrier.wait()
        counts.append(runtime.send_digests())

    threads = [threading.Thread(target=run, args=(r,)) for r in replicas]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
    assert sorted(counts) == [0, 3], "one replica sends shift a's digest to sara, neha and kiran"
    # A restart (a third runtime on the same database) and a later pass send nothing again.
    restarted = make_runtime(url, SimulatedClock(local(day, 15, 0)))
    assert restarted.send_digests() == 0
    rows = digest_rows(restarted)
    assert Counter(row.person_id for row in rows) == {"sara": 1, "neha": 1, "kiran": 1}
    assert all(row.text.startswith(("Resumen del turno a", "Schichtbericht a", "Shift a ka saar")) for row in rows)
    restarted.clock.set(local(day, 22, 0))  # type: ignore[attr-defined]
    assert restarted.send_digests() == 3, "shift b's digest is another period"
    for runtime in (*replicas, restarted):
        asyncio.run(runtime.aclose())


def test_the_scheduler_in_serve_runs_a_pass_at_start_and_plans_the_next_digest(tmp_path: Path) -> None:
    runtime = Runtime(Settings(database_url=f"sqlite:///{tmp_path / 's.db'}", plant_file=PLANT), clock=SystemClock(),
                      channels={"console": CaptureChannel("console")})

    async def main() -> datetime | None:
        scheduler = DigestScheduler(runtime)
        scheduler.start()
        for _ in range(200):  # the pass at start runs on the scheduler's executor
            await asyncio.sleep(0.05)
            job = scheduler.scheduler.get_job("digests")
            if job is not None and job.next_run_time is not None and \
                    job.next_run_time > datetime.now(UTC) + timedelta(seconds=1):
                break
        planned = job.next_run_time if job else None
        scheduler.stop()
        return planned

    planned = asyncio.run(main())
    with Session(runtime.engine) as session:
        marks = {m.kind for m in session.exec(select(DigestMark))}
    assert marks == {"shift", "daily"}, "the pass at start set the schedule's mark"
    expected = runtime.next_digest(datetime.now(UTC))
    assert planned is not None and expected is not None
    assert abs((planned - expected).total_seconds()) < 1
    asyncio.run(runtime.aclose())


def plant_row(timezone: str, section: dict[str, Any]) -> Plant:
    return Plant(id="p", name="P", timezone=timezone, digests=section)


def test_periods_follow_the_shifts_days_midnight_and_daylight_saving() -> None:
    berlin = ZoneInfo("Europe/Berlin")
    today = datetime.now(UTC).date()
    # The next change of Berlin's clocks, from today: the night shift that spans it is 7 or 9 hours long.
    change = next(today + timedelta(days=n) for n in range(1, 370)
                  if datetime.combine(today + timedelta(days=n), datetime.min.time(), berlin).utcoffset()
                  != datetime.combine(today + timedelta(days=n + 1), datetime.min.time(), berlin).utcoffset())
    night = Shift(plant_id="p", id="n", start="22:00", end="06:00", days=[])
    plant = plant_row("Europe/Berlin", {"shift": {"roles": ["supervisor"]}, "daily": {"at": "07:00", "roles": ["manager"]}})
    start = datetime.combine(change, datetime.min.time(), berlin)
    found = digests.periods_ending(plant, [night], start, start + timedelta(days=1))
    shift = next(p for p in found if p.kind == "shift")
    daily = next(p for p in found if p.kind == "daily")
    assert shift.start.astimezone(berlin).hour == 22 and shift.end.astimezone(berlin).hour == 6
    assert shift.end - shift.start in (timedelta(hours=7), timedelta(hours=9))
    assert daily.end - daily.start in (timedelta(hours=23), timedelta(hours=25))
    # Days: a Monday-only shift has one digest a week; `at` times split the day into periods.
    monday = Shift(plant_id="p", id="m", start="06:00", end="14:00", days=["mon"])
    week = digests.periods_ending(plant_row("UTC", {"shift": {"roles": ["supervisor"]}}), [monday],
                                  datetime.combine(today, datetime.min.time(), UTC),
                                  datetime.combine(today + timedelta(days=7), datetime.min.time(), UTC))
    assert [p.end.weekday() for p in week] == [0]
    times = digests.periods_ending(plant_row("UTC", {"shift": {"roles": ["supervisor"], "at": ["06:00", "18:00"]}}),
                                   [], datetime.combine(today, datetime.min.time(), UTC),
                                   datetime.combine(today + timedelta(days=1), datetime.min.time(), UTC))
    assert [(p.label, p.end.hour, (p.end - p.start).total_seconds() / 3600) for p in times] == \
        [("18:00-06:00", 6, 12.0), ("06:00-18:00", 18, 12.0)]


BASE = """
plant: {id: p1, name: P, timezone: Europe/Berlin}
areas: [{id: a1, name: A}]
people: [{id: s1, name: S, roles: [supervisor]}]
"""


@pytest.mark.parametrize(("section", "expected"), [
    ("shifts: [{id: a, start: '06:00', end: '14:00'}]\ndigests: {shift: {roles: [supervisr]}}",
     "digests.shift.roles[0]: unknown role 'supervisr' (did you mean supervisor?"),
    ("shifts: [{id: a, start: '06:00', end: '14:00'}]\ndigests: {shift: {roles: [supervisor], shifts: [b]}}",
     "digests.shift.shifts[0]: unknown shift 'b' (known: a)"),
    ("digests: {shift: {roles: [supervisor]}}",
     "digests.shift: the plant has no shifts: list the times the digest is sent under at"),
    ("shifts: [{id: a, start: '06:00', end: '14:00'}]\ndigests: {shift: {roles: [supervisor], shifts: [a], at: ['06:00']}}",
     "digests.shift: give either shifts (the plant's shifts) or at (times of day), not both"),
    ("digests: {shift: {roles: [supervisor], at: []}}", "digests.shift.at: must not be empty"),
    ("digests: {daily: {at: '7am', roles: [manager]}}", "digests.daily.at: bad time '7am'"),
    ("digests: {daily: {at: '07:00', roles: []}}", "digests.daily.roles: must not be empty"),
    ("digests: {daily: {roles: [manager]}}", "digests.daily: missing required key 'at'"),
    ("digests: {weekly: {at: '07:00', roles: [manager]}}", "digests: unknown key 'weekly' (known: shift, daily)"),
    ("digests: [daily]", "digests: expected a mapping (key: value), got a list"),
    ("decisions: {remind_every: 30s}", "decisions.remind_every: remind_every '30s' is too short: at least 1m"),
    ("decisions: {remind_every: 2 hours}", "decisions.remind_every: bad duration '2 hours'"),
    ("decisions: {remind_evry: 2h}", "decisions: unknown key 'remind_evry' (did you mean remind_every?"),
])
def test_check_plant_refuses_a_bad_digests_or_decisions_section(tmp_path: Path, section: str, expected: str) -> None:
    path = tmp_path / "plant.yaml"
    path.write_text(BASE + section + "\n", encoding="utf-8")
    reasons = [f"{p.location}: {p.reason}" for p in check(path)]
    assert any(reason.startswith(expected) for reason in reasons), reasons


def test_check_plant_accepts_the_digest_plant() -> None:
    assert check(PLANT) == []


def test_a_long_digest_is_cut_to_fit_one_message_and_keeps_the_weeks_figures() -> None:
    now = datetime.now(UTC)
    period = digests.Period("shift", "a", now - timedelta(hours=8), now)
    many = [PlantException(id=n, plant_id="p", code=f"E-{n:04d}", type="quality", status="open", machine_id="GRD-02",
                           summary="burrs on every gear of the lot, " * 10, opened_at=now - timedelta(hours=2))
            for n in range(1, 41)]
    week = Kpis(since=now - timedelta(days=7), until=now, opened=40, closed=0, open_now=40, mtta_minutes=None,
                mttr_minutes=None, mean_resolution_minutes=None, notify_p95_seconds=None, escalations=0,
                escalation_rate=0.0, schedule_adherence=0.75, customer_orders_at_risk=None, erp_latency_minutes=None,
                erp_rejected=None, messages_per_exception=None, people_per_exception=None)
    facts = digests.Facts(period, now, many, many, [], [], week, set())
    text = digests.render(facts, "en", "UTC")
    assert len(text) <= digests.MAX_CHARS
    lines = text.splitlines()
    assert "Opened: 40" in lines and "Still open: 40" in lines
    assert any(line.startswith("... and ") and line.endswith(" more") for line in lines)
    assert lines[-1].startswith("Last 7 days: 40 opened, 0 closed") and "schedule adherence 75%" in lines[-1]


HOSTILE = "<!channel> <@U123> <https://evil|click> *bold* &amp;"


@pytest.mark.anyio
async def test_a_digest_reaches_slack_with_what_people_wrote_escaped(tmp_path: Path) -> None:
    """The report's text inside a digest is shown as written: no mention, link or formatting reaches Slack."""
    slack = FakeSlack().start()
    day = next_weekday(datetime.now(UTC).date())
    clock = SimulatedClock(local(day, 13, 0))
    settings = Settings(_env_file=None, database_url=f"sqlite:///{tmp_path / 'slack.db'}",  # type: ignore[call-arg]
                        plant_file=PLANT, attachments_dir=tmp_path / "attachments", slack_bot_token="xoxb-fake",
                        slack_signing_secret="slack-secret", slack_api_url=slack.api_url)
    stack = await start_stack(settings, clock=clock)
    try:
        assert stack.runtime.send_digests() == 0
        with session_scope(stack.runtime.engine) as session:
            session.add(PlantException(plant_id="pune-1", code="E-0001", type="quality", machine_id="GRD-02",
                                       area_id="gears", summary=HOSTILE, opened_at=local(day, 10, 0)))
        clock.set(local(day, 14, 0))
        assert stack.runtime.send_digests() == 3
        stack.runtime.notifications.wake()
        [message] = await wait_for(lambda: slack.posted(to="U01SARA"))
        shown = message["text"]
        assert shown.startswith("Resumen del turno a") and "E-0001" in shown
        assert "<" not in shown and ">" not in shown, "no <!channel>, <@U...> or <url|label> reaches Slack"
        assert "&lt;!channel&gt;" in shown and "&lt;@U123&gt;" in shown and "&amp;amp;" in shown
        assert "*bold*" not in shown and "*bold*" in shown.replace(ZWSP, "")
    finally:
        await stack.stop()
        slack.stop()


def test_mfgos_check_plant_names_the_line_of_a_bad_digests_section(tmp_path: Path) -> None:
    path = tmp_path / "plant.yaml"
    path.write_text(BASE + "digests:\n  daily: {at: '07:00', roles: [manger]}\n", encoding="utf-8")
    done = subprocess.run([sys.executable, "-m", "mfgos.cli", "check-plant", str(path)], capture_output=True,
                          text=True, timeout=120, cwd=Path(__file__).resolve().parents[1])
    assert done.returncode == 1
    assert f"{path}:6: digests.daily.roles[0]: unknown role 'manger' (did you mean manager?" in done.stdout + done.stderr

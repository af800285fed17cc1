"""KPIs, export, /readyz and /metrics end to end: a scenario replayed into SQLite and PostgreSQL,
each figure computed by hand from the replay's JSON report, compared with `mfgos kpi --json`,
`GET /api/kpis` and the exports."""

from __future__ import annotations

import csv
import io
import json
import math
from collections.abc import Iterator
from datetime import datetime, timedelta
from pathlib import Path
from statistics import mean
from typing import Any
from zoneinfo import ZoneInfo

import pytest
import yaml
from fastapi.testclient import TestClient
from sqlalchemy import text

from mfgos.cli import main
from mfgos.config import Settings
from mfgos.replay import load_scenario, replay
from mfgos.runtime import Runtime
from mfgos.web import CONSOLE, ConsoleChannel, create_app
from routing.clock import SimulatedClock
from routing.kpis import DONE_WORDS, period
from signals.work_orders import STATUS_WORDS, work_order_status

SCENARIO = Path(__file__).parent / "scenarios" / "insight_day.yaml"
SINCE, UNTIL = "2026-11-25T00:00:00+05:30", "2026-11-26T00:00:00+05:30"


@pytest.fixture
def replayed(database_url: str) -> dict[str, Any]:
    return replay(SCENARIO, database_url=database_url)


def kpi_json(capsys: pytest.CaptureFixture[str], database_url: str, *period: str) -> dict[str, Any]:
    assert main(["kpi", "--json", "--database", database_url, *period]) == 0
    return json.loads(capsys.readouterr().out)


def at(text: str) -> datetime:
    return datetime.fromisoformat(text)


def minutes(seconds: list[float]) -> float | None:
    return round(mean(seconds) / 60, 1) if seconds else None


def by_hand(report: dict[str, Any], since: datetime, until: datetime) -> dict[str, Any]:
    """Every figure of docs/kpis.md from the replay report, the plant file and the scenario, in plain Python."""
    # What happened up to `until` only: the figures of a past period do not change later.
    cohort = [{**e, "timeline": [t for t in e["timeline"] if at(t["at"]) < until]}
              for e in report["exceptions"] if since <= at(e["opened_at"]) < until]
    numbers = {e["id"] for e in cohort}
    notes = [n for n in report["notifications"]
             if n["exception"] in numbers and n["kind"] != "buttons_update" and at(n["at"]) < until]
    assert any(n["kind"] == "buttons_update" for n in report["notifications"]), "the scenario must have some"

    def first(e: dict[str, Any], kind: str, **data: Any) -> datetime | None:
        return next((at(t["at"]) for t in e["timeline"] if t["kind"] == kind
                     and all(t.get("data", {}).get(k) == v for k, v in data.items())), None)

    def repaired(e: dict[str, Any]) -> datetime | None:
        ends = [m for m in (first(e, "machine_state", running=True), first(e, "closed")) if m and m < until]
        return min(ends, default=None)

    def repair_seconds(group: list[dict[str, Any]]) -> list[float]:
        return [(r - at(e["opened_at"])).total_seconds() for e in group if (r := repaired(e))]

    def groups(key: str) -> dict[str, dict[str, Any]]:
        out = {}
        for name in sorted({e[key] or "-" for e in cohort}):
            group = [e for e in cohort if (e[key] or "-") == name]
            down = [((repaired(e) or until) - at(e["opened_at"])).total_seconds()
                    for e in group if e["type"] == "breakdown"]
            out[name] = {"count": len(group), "downtime_minutes": round(sum(down) / 60, 1) if down else None,
                         "mttr_minutes": minutes(repair_seconds(group))}
        return out

    acks = [(a - at(e["opened_at"])).total_seconds() for e in cohort if (a := first(e, "acknowledged"))]
    closed = [e for e in cohort if e["closed_at"] and at(e["closed_at"]) < until]
    # Replay processes each event the moment it arrives: the event is the exception's opening.
    alerts = {}
    for n in notes:
        if n["kind"] == "alert":
            alerts[n["exception"]] = max(alerts.get(n["exception"], at(n["at"])), at(n["at"]))
    delays = sorted((alerts[e["id"]] - at(e["opened_at"])).total_seconds() for e in cohort if e["id"] in alerts)
    escalated = [e for e in cohort if first(e, "escalated")]
    erp_latency = []
    for e in cohort:
        posted = first(e, "posted")
        if posted:
            approved = max(at(t["at"]) for t in e["timeline"] if t["kind"] == "approved" and at(t["at"]) <= posted)
            erp_latency.append((posted - approved).total_seconds())
    has_erp = any(t["exception"] in numbers and at(t["created_at"]) < until for t in report["erp_transactions"])
    people = {(n["exception"], n["to"]) for n in notes} | {
        (e["id"], t["person"]) for e in cohort for t in e["timeline"] if t["person"]}

    # Schedule adherence: the plant file's work orders due in the period, and the MES's done reports.
    scenario = load_scenario(SCENARIO)
    plant = yaml.safe_load(scenario.plant.read_text())
    zone = ZoneInfo(plant["plant"]["timezone"])
    ends = {w["id"]: datetime.fromisoformat(w["end"]).replace(tzinfo=zone) for w in plant["work_orders"]}
    done = {}
    for event in scenario.events:
        body = event.body
        if event.kind == "signal" and body.get("kind") == "work_order" and \
                work_order_status(body["payload"]["status"]) == "done":
            done.setdefault(body["payload"]["work_order"], scenario.start + event.at)
    due = [w for w, end in ends.items() if since <= end < until]

    count = len(cohort)
    return {
        "opened": count, "closed": len(closed),
        "open_now": sum(e["status"] != "closed" for e in report["exceptions"]),
        "mtta_minutes": minutes(acks),
        "mttr_minutes": minutes(repair_seconds([e for e in cohort if e["type"] == "breakdown"])),
        "mean_resolution_minutes": minutes([(at(e["closed_at"]) - at(e["opened_at"])).total_seconds()
                                            for e in closed]),
        "notify_p95_seconds": round(delays[math.ceil(0.95 * len(delays)) - 1], 1) if delays else None,
        "escalations": sum(t["kind"] == "escalated" for e in cohort for t in e["timeline"]),
        "escalation_rate": round(len(escalated) / count, 3) if count else None,
        "schedule_adherence": round(sum(w in done and done[w] <= ends[w] for w in due) / len(due), 3) if due else None,
        "customer_orders_at_risk": len({o for e in cohort for o in e["customer_orders_at_risk"]}) if count else None,
        "erp_latency_minutes": minutes(erp_latency),
        "erp_rejected": sum(t["kind"] == "erp_rejected" for e in cohort for t in e["timeline"]) if has_erp else None,
        "messages_per_exception": round(len(notes) / count, 2) if count else None,
        "people_per_exception": round(len(people) / count, 2) if count else None,
        "by_type": groups("type"), "by_area": groups("area"),
    }


def test_mfgos_kpi_matches_each_figure_computed_by_hand(
        replayed: dict[str, Any], database_url: str, capsys: pytest.CaptureFixture[str]) -> None:
    figures = kpi_json(capsys, database_url, "--since", SINCE, "--until", UNTIL)
    expected = by_hand(replayed, at(SINCE), at(UNTIL))
    assert {k: figures[k] for k in expected} == expected
    assert (figures["plant"], at(figures["since"]), at(figures["until"])) == ("pune-1", at(SINCE), at(UNTIL))
    # The facts of the day, so a by-hand slip that matched the code's would still show.
    assert (figures["opened"], figures["closed"], figures["open_now"]) == (3, 2, 1)
    assert figures["mtta_minutes"] == 3.5  # tom after 4 min, ana after 3 min; the shortage never acknowledged
    assert figures["mttr_minutes"] == 50.0  # HOB-01 ran again when tom said so, before the close at 52 min
    assert figures["escalation_rate"] == 0.333 and figures["escalations"] == 1
    assert figures["schedule_adherence"] == 0.25  # WO-1042 on time; WO-1050 late; WO-1077, WO-1078 not done
    assert figures["by_type"]["breakdown"] == {"count": 1, "downtime_minutes": 50.0, "mttr_minutes": 50.0}
    assert figures["by_type"]["material"]["mttr_minutes"] is None

    # A shorter period: only the breakdown's hour; the rest opened later.
    hour = kpi_json(capsys, database_url, "--since", "2026-11-25T09:00:00+05:30", "--until", "2026-11-25T09:30+05:30")
    assert {k: hour[k] for k in expected} == by_hand(replayed, at("2026-11-25T09:00:00+05:30"),
                                                      at("2026-11-25T09:30:00+05:30"))
    assert hour["opened"] == 1 and hour["closed"] == 0 and hour["mttr_minutes"] is None
    assert hour["by_type"]["breakdown"]["downtime_minutes"] == 30.0  # still down at the period's end


def test_every_figure_is_null_when_there_is_nothing_to_measure(
        replayed: dict[str, Any], database_url: str, capsys: pytest.CaptureFixture[str]) -> None:
    empty = kpi_json(capsys, database_url, "--since", "2026-11-01", "--until", "2026-11-02")
    counts = {"opened": 0, "closed": 0, "open_now": 1, "escalations": 0, "by_type": {}, "by_area": {}}
    assert {k: v for k, v in empty.items() if k not in ("plant", "since", "until")} == {
        **dict.fromkeys(k for k in by_hand(replayed, at(SINCE), at(UNTIL)) if k not in counts), **counts}


def test_bad_periods_are_refused_with_a_reason(
        replayed: dict[str, Any], database_url: str, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["kpi", "--database", database_url, "--since", "last tuesday"]) == 2
    assert "span back from now" in capsys.readouterr().err
    assert main(["kpi", "--database", database_url, "--since", UNTIL, "--until", SINCE]) == 2
    assert "must be before" in capsys.readouterr().err
    assert main(["kpi", "--database", database_url, "--plant", "nowhere"]) == 2
    assert "pune-1" in capsys.readouterr().err
    # The table a person reads: every figure by name.
    assert main(["kpi", "--database", database_url, "--since", SINCE, "--until", UNTIL]) == 0
    table = capsys.readouterr().out
    assert "schedule adherence" in table and "0.25" in table and "breakdown" in table


def test_done_words_are_the_work_order_signals_done_statuses() -> None:
    assert set(DONE_WORDS) == {word for word, status in STATUS_WORDS.items() if status == "done"}


@pytest.fixture
def app_on_replay(replayed: dict[str, Any], database_url: str, tmp_path: Path) -> Iterator[Any]:
    settings = Settings(_env_file=None, database_url=database_url, plant_file=load_scenario(SCENARIO).plant,  # type: ignore[call-arg]
                        erp="ledger", attachments_dir=tmp_path / "attachments")
    runtime = Runtime(settings, clock=SimulatedClock(at(replayed["end"])), channels={CONSOLE: ConsoleChannel()})
    try:
        yield create_app(runtime)
    finally:
        runtime.engine.dispose()


def test_the_api_answers_the_same_for_a_read_token_and_nobody_else(
        app_on_replay: Any, database_url: str, capsys: pytest.CaptureFixture[str]) -> None:
    anonymous = TestClient(app_on_replay)
    params = {"since": SINCE, "until": UNTIL}
    for path in ("/api/kpis", "/api/export", "/metrics"):
        assert anonymous.get(path, params=params).status_code == 401, path
    reader = TestClient(app_on_replay, headers={
        "Authorization": f"Bearer {app_on_replay.state.auth.create_token('dashboard', 'read', None)}"})
    assert reader.get("/api/kpis", params=params).json() == kpi_json(capsys, database_url, "--since", SINCE,
                                                                       "--until", UNTIL)
    # Spans back from the clock's now (the replay's end): the last day holds all three.
    assert reader.get("/api/kpis", params={"since": "1d"}).json()["opened"] == 3
    assert reader.get("/api/kpis", params={"period": "today"}).json()["period"] == "today"
    bad = reader.get("/api/kpis", params={"since": "yesterday-ish"})
    assert bad.status_code == 422 and "span back from now" in bad.json()["detail"]
    assert reader.get("/api/kpis", params={"since": UNTIL, "until": SINCE}).status_code == 422
    assert reader.get("/api/kpis", params={"since": "x" * 41}).status_code == 422


def test_export_has_every_timeline_event_and_no_formula(
        app_on_replay: Any, replayed: dict[str, Any], database_url: str, capsys: pytest.CaptureFixture[str]) -> None:
    runtime = app_on_replay.state.runtime
    runtime.receive_chat(channel=CONSOLE, address="ravi", person_id="ravi", event_id="formula",
                         text='=HYPERLINK("http://evil.example/","hobber 1 band ho gaya") wo 1042')
    reader = TestClient(app_on_replay, headers={
        "Authorization": f"Bearer {app_on_replay.state.auth.create_token('exporter', 'read', None)}"})
    params = {"since": SINCE, "until": UNTIL}

    answer = reader.get("/api/export", params={**params, "format": "json"})
    assert answer.status_code == 200 and answer.headers["content-type"].startswith("application/json")
    exported = answer.json()
    assert [e["code"] for e in exported["exceptions"]] == [e["code"] for e in replayed["exceptions"]] + ["E-0004"]
    for ours, theirs in zip(exported["exceptions"], replayed["exceptions"], strict=False):
        assert [(t["kind"], t["person"], at(t["at"])) for t in ours["timeline"]] == [
            (t["kind"], t["person"], at(t["at"])) for t in theirs["timeline"]]
        assert (ours["type"], ours["status"], at(ours["opened_at"])) == (
            theirs["type"], theirs["status"], at(theirs["opened_at"]))

    answer = reader.get("/api/export", params=params)
    assert answer.status_code == 200 and answer.headers["content-type"].startswith("text/csv")
    assert "attachment" in answer.headers["content-disposition"]
    rows = list(csv.DictReader(io.StringIO(answer.text)))
    assert len(rows) == sum(len(e["timeline"]) for e in exported["exceptions"])
    assert [r["event_kind"] for r in rows if r["code"] == "E-0001"] == [
        t["kind"] for t in replayed["exceptions"][0]["timeline"]]
    assert {r["summary"] for r in rows if r["code"] == "E-0004"} == {
        '\'=HYPERLINK("http://evil.example/","hobber 1 band ho gaya") wo 1042'}
    assert not any(cell.startswith(("=", "+", "-", "@")) for r in rows for cell in r.values())

    # The command line writes the same.
    assert main(["export", "--database", database_url, "--since", SINCE, "--until", UNTIL]) == 0
    assert list(csv.DictReader(io.StringIO(capsys.readouterr().out))) == rows
    assert main(["export", "--format", "json", "--database", database_url, "--since", SINCE, "--until", UNTIL]) == 0
    assert json.loads(capsys.readouterr().out) == exported


def test_readyz_is_public_and_says_when_the_schema_is_behind(app_on_replay: Any) -> None:
    anonymous = TestClient(app_on_replay)
    ready = anonymous.get("/readyz")
    assert ready.status_code == 200 and ready.json()["status"] == "ready"
    engine = app_on_replay.state.runtime.engine
    with engine.begin() as connection:
        head = connection.execute(text("SELECT version_num FROM alembic_version")).scalar()
        connection.execute(text("UPDATE alembic_version SET version_num = '0006'"))
    behind = anonymous.get("/readyz")
    assert behind.status_code == 503 and (behind.json()["migration"], behind.json()["expected"]) == ("0006", head)


def test_metrics_report_the_store_and_the_latencies(app_on_replay: Any, replayed: dict[str, Any]) -> None:
    reader = TestClient(app_on_replay, headers={
        "Authorization": f"Bearer {app_on_replay.state.auth.create_token('prometheus', 'read', None)}"})
    assert reader.get("/api/kpis").status_code == 200
    answer = reader.get("/metrics")
    assert answer.status_code == 200 and answer.headers["content-type"].startswith("text/plain")
    lines = answer.text.splitlines()
    scenario = load_scenario(SCENARIO)
    chats = sum(e.kind == "chat" for e in scenario.events)
    assert f'mfgos_signals_total{{kind="chat"}} {float(chats)}' in lines
    assert 'mfgos_signals_total{kind="work_order"} 2.0' in lines
    assert 'mfgos_exceptions_open{type="material"} 1.0' in lines
    assert "mfgos_escalations_total 1.0" in lines
    assert 'mfgos_notifications{status="failed"} 0.0' in lines
    assert 'mfgos_erp_outbox{status="pending"} 0.0' in lines
    assert 'mfgos_mes_outbox{status="rejected"} 0.0' in lines
    assert any(line.startswith("mfgos_signal_processing_seconds_count ") and float(line.split()[1]) > 0
               for line in lines)
    assert any(line.startswith('mfgos_http_request_seconds_count{method="GET",route="/api/kpis"}') for line in lines)
    # An act token may not scrape: it is not a read of the store's figures by a monitor.
    actor = TestClient(app_on_replay, headers={
        "Authorization": f"Bearer {app_on_replay.state.auth.create_token('bot', 'act', 'sara')}"})
    assert actor.get("/metrics").status_code == 403


def test_period_spans_count_back_from_now() -> None:
    now = datetime.fromisoformat("2026-11-25T12:00:00+00:00")
    assert period("7d", None, now) == (now - timedelta(days=7), now)
    assert period("1d12h", "90m", now) == (now - timedelta(days=1, hours=12), now - timedelta(minutes=90))
    assert period("2026-11-20", None, now)[0] == datetime.fromisoformat("2026-11-20T00:00:00+00:00")

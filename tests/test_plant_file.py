"""The plant file: every problem reported at once with its line; loads are idempotent upserts."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlalchemy import func
from sqlalchemy.engine import Engine
from sqlmodel import Session, select

from models.db import session_scope
from models.plant_file import (
    PlantChanges,
    PlantFile,
    PlantFileError,
    Problem,
    apply,
    check,
    format_problems,
    load,
    parse_duration,
)
from models.tables import (
    Area,
    ChannelIdentity,
    CustomerOrder,
    ErpSyncState,
    Machine,
    Material,
    Notification,
    Person,
    Plant,
    PlantException,
    RoutingRule,
    Shift,
    Signal,
    WorkOrder,
)

ROOT = Path(__file__).resolve().parents[1]
DEMO_PLANT = ROOT / "mfgos" / "data" / "demo_plant.yaml"
PUNE_PLANT = ROOT / "tests" / "data" / "pune_plant.yaml"

BASE = """\
plant: {id: test-1, name: Test Plant, timezone: Europe/Berlin}
areas:
  - {id: machining, name: Machining hall}
  - {id: stores, name: Stores}
machines:
  - {id: CNC-07, name: CNC mill 7, area: machining, aliases: [mill 7]}
  - {id: CNC-08, name: CNC mill 8, area: machining}
materials:
  - {id: AL-BAR, name: Aluminium bar, area: stores}
customer_orders:
  - {id: SO-1, customer: ACME Pumps, due: "2026-11-27T16:00"}
work_orders:
  - {id: WO-1, machine: CNC-07, material: AL-BAR, quantity: 500, start: "2026-11-25T06:00", end: "2026-11-25T18:00", customer_order: SO-1, status: running}
  - {id: WO-2, machine: CNC-08, status: planned}
shifts:
  - {id: early, start: "06:00", end: "14:00", days: [mon, tue, wed, thu, fri]}
people:
  - {id: ravi, name: Ravi Kumar, roles: [operator], areas: [machining], shifts: [early], channels: {slack: U01RAVI, whatsapp: "+491700000001"}}
  - {id: tom, name: Tom Fischer, roles: [maintenance], channels: {slack: U01TOM}}
  - {id: sara, name: Sara Khan, roles: [supervisor]}
routing:
  - when: {type: breakdown}
    notify:
      - {role: maintenance, ack_within: 10m, escalate_to: supervisor}
      - {role: planner, if: staging_conflict}
    approver: supervisor
"""


def line_of(text: str, needle: str) -> int:
    lines = [number for number, line in enumerate(text.splitlines(), 1) if needle in line]
    assert len(lines) == 1, f"{needle!r} is on lines {lines}"
    return lines[0]


def write(tmp_path: Path, text: str, name: str = "plant.yaml") -> Path:
    path = tmp_path / name
    path.write_text(text, encoding="utf-8")
    return path


def edit(old: str, new: str) -> str:
    assert BASE.count(old) == 1, old
    return BASE.replace(old, new)


# --- valid files --------------------------------------------------------------------------


def test_base_demo_and_example_plants_have_no_problems(tmp_path: Path) -> None:
    assert check(write(tmp_path, BASE)) == []
    assert check(DEMO_PLANT) == []
    assert check(PUNE_PLANT) == []


def test_demo_plant_keeps_the_example_plant_and_its_routing() -> None:
    """Example scenarios are written against the example plant; the demo must behave the same.
    Loaded at the scenarios' 09:00 on a Wednesday in Pune, its relative dates are the example's."""
    demo, example = load(DEMO_PLANT, now=datetime(2026, 11, 25, 3, 30, tzinfo=UTC)), load(PUNE_PLANT)
    assert demo.plant == example.plant
    for section in ("areas", "machines", "materials", "customer_orders", "work_orders"):
        assert getattr(demo, section) == getattr(example, section), section
    # The demo's shifts turn with the clock (shift a is always on) and add a third one, c, for
    # the people the demo adds; everyone else keeps the example's shifts.
    assert [(s.id, s.start, s.end) for s in demo.shifts] == [("a", "08:00", "16:00"), ("b", "16:00", "00:00"),
                                                             ("c", "00:00", "08:00")]
    assert demo.people[: len(example.people)] == example.people
    assert all(person.shifts == ["c"] for person in demo.people[len(example.people):])

    def first_rule(plant: PlantFile, exception_type: str) -> object:
        for rule in plant.routing:
            wanted = rule.when.type
            if wanted is None or exception_type in ([wanted] if isinstance(wanted, str) else wanted):
                return rule
        return None

    for exception_type in ("breakdown", "quality", "material", "staffing", "other"):
        assert first_rule(demo, exception_type) == first_rule(example, exception_type), exception_type
    assert first_rule(demo, "safety").approver == "manager"
    assert demo.erp["quarantine_warehouse"] == "Quarantine - PD"


def test_datetimes_are_plant_local_unless_they_carry_an_offset(tmp_path: Path) -> None:
    text = edit('end: "2026-11-25T18:00"', 'end: "2026-11-25T18:00:00+05:30"')
    plant = load(write(tmp_path, text))
    order = plant.work_orders[0]
    assert order.start == datetime(2026, 11, 25, 5, 0, tzinfo=UTC)  # 06:00 Berlin (CET)
    assert order.end == datetime(2026, 11, 25, 12, 30, tzinfo=UTC)
    assert plant.customer_orders[0].due == datetime(2026, 11, 27, 15, 0, tzinfo=UTC)
    assert load(PUNE_PLANT).work_orders[0].start == datetime(2026, 11, 25, 0, 30, tzinfo=UTC)  # Asia/Kolkata


def test_yaml_keeps_times_phone_numbers_and_words_as_text(tmp_path: Path) -> None:
    """YAML 1.1 would read 06:00 as 360, +4917... as a number and `no` as false."""
    text = edit('start: "06:00", end: "14:00"', "start: 06:00, end: 14:00").replace(
        'whatsapp: "+491700000001"', "whatsapp: +491700000001, telegram: 1001, line: no"
    )
    plant = load(write(tmp_path, text))
    assert (plant.shifts[0].start, plant.shifts[0].end) == ("06:00", "14:00")
    assert plant.people[0].channels == {"slack": "U01RAVI", "whatsapp": "+491700000001", "telegram": "1001",
                                        "line": "no"}


def test_extension_keys_and_anchors_are_allowed(tmp_path: Path) -> None:
    text = BASE.replace(
        "people:\n",
        "x-notes: kept out of the store\nx-operator: &operator {roles: [operator], areas: [machining]}\npeople:\n"
        "  - {<<: *operator, id: priya, name: Priya Nair, x-badge: 4711}\n",
    )
    plant = load(write(tmp_path, text))
    priya = plant.people[0]
    assert (priya.id, priya.roles, priya.areas) == ("priya", ["operator"], ["machining"])


def test_shift_defaults_and_day_names(tmp_path: Path) -> None:
    text = edit("days: [mon, tue, wed, thu, fri]}", "days: [Monday, sat]}\n  - {id: night, start: \"22:00\", end: 6:00}")
    shifts = load(write(tmp_path, text)).shifts
    assert shifts[0].days == ["mon", "sat"]
    assert (shifts[1].end, shifts[1].days) == ("06:00", ["mon", "tue", "wed", "thu", "fri", "sat", "sun"])


@pytest.mark.parametrize(
    ("text", "expected"),
    [("90s", timedelta(seconds=90)), ("10m", timedelta(minutes=10)), ("1h", timedelta(hours=1)),
     ("1h30m", timedelta(minutes=90)), ("2d", timedelta(days=2)), ("1h 30m", timedelta(minutes=90)),
     ("0s", timedelta(0))],
)
def test_parse_duration_accepts(text: str, expected: timedelta) -> None:
    assert parse_duration(text) == expected


@pytest.mark.parametrize("text", ["10 mins", "10", "", "m", "1.5h", "10M", "30m1h", "-5m"])
def test_parse_duration_rejects(text: str) -> None:
    with pytest.raises(ValueError, match="bad duration"):
        parse_duration(text)


# --- one problem per kind, with its line ---------------------------------------------------

CASES = [
    # (id, old text, new text, location, reason fragment)
    ("missing key", "{id: CNC-08, name: CNC mill 8, area: machining}", "{id: CNC-08, name: CNC mill 8}",
     "machines[1]", "missing required key 'area'"),
    ("missing plant key", "name: Test Plant, ", "", "plant", "missing required key 'name'", "plant:"),
    ("list expected", "aliases: [mill 7]", "aliases: mill 7", "machines[0].aliases",
     "expected a list, got the text 'mill 7'"),
    ("number expected", "quantity: 500", "quantity: lots", "work_orders[0].quantity",
     "expected a number, got the text 'lots'"),
    ("text expected", "name: Sara Khan", "name: [Sara, Khan]", "people[2].name", "expected text, got a list"),
    ("mapping expected", "channels: {slack: U01TOM}", "channels: U01TOM", "people[1].channels",
     "expected a mapping (key: value), got the text 'U01TOM'"),
    ("quantity not positive", "quantity: 500", "quantity: 0", "work_orders[0].quantity", "must be greater than 0"),
    ("unknown entry key", "aliases: [mill 7]", "aliasses: [mill 7]", "machines[0]",
     "unknown key 'aliasses' (did you mean aliases? known: id, name, area, aliases, kind, mttr, min_down)"),
    ("unknown machine", "machine: CNC-07, material", "machine: CNC-99, material", "work_orders[0].machine",
     "unknown machine 'CNC-99' (known: CNC-07, CNC-08)"),
    ("unknown material", "material: AL-BAR,", "material: STEEL-BAR,", "work_orders[0].material",
     "unknown material 'STEEL-BAR' (known: AL-BAR)"),
    ("unknown customer order", "customer_order: SO-1", "customer_order: SO-9", "work_orders[0].customer_order",
     "unknown customer order 'SO-9'"),
    ("machine in unknown area", "area: machining, aliases", "area: milling, aliases", "machines[0].area",
     "unknown area 'milling' (known: machining, stores)"),
    ("material in unknown area", "area: stores}", "area: warehouse}", "materials[0].area",
     "unknown area 'warehouse'"),
    ("person in unknown area", "areas: [machining]", "areas: [welding]", "people[0].areas[0]",
     "unknown area 'welding'"),
    ("person on unknown shift", "shifts: [early]", "shifts: [late]", "people[0].shifts[0]",
     "unknown shift 'late' (known: early)"),
    ("person with unknown role", "roles: [operator]", "roles: [welder]", "people[0].roles[0]",
     "unknown role 'welder' (known: operator, supervisor, maintenance"),
    ("bad language", "roles: [supervisor]", "roles: [supervisor], language: english", "people[2].language",
     "bad language 'english'"),
    ("explicit console", "{slack: U01TOM}", "{slack: U01TOM, console: tom}", "people[1].channels.console",
     "'console' is implicit"),
    ("duplicate channel identity", "{slack: U01TOM}", "{slack: U01RAVI}", "people[1].channels.slack",
     f"slack address 'U01RAVI' is already used by person 'ravi' (line {line_of(BASE, 'U01RAVI')})"),
    ("unknown notify role", "role: maintenance, ack", "role: mechanic, ack", "routing[0].notify[0].role",
     "unknown role 'mechanic'"),
    ("unknown escalate_to role", "escalate_to: supervisor", "escalate_to: boss",
     "routing[0].notify[0].escalate_to", "unknown role 'boss'"),
    ("unknown approver role", "    approver: supervisor", "    approver: chief", "routing[0].approver",
     "unknown role 'chief'"),
    ("escalate_to without ack_within", "{role: planner, if: staging_conflict}",
     "{role: planner, escalate_to: manager}", "routing[0].notify[1].escalate_to", "escalate_to needs ack_within"),
    ("unknown exception type", "type: breakdown", "type: breakdwon", "routing[0].when.type",
     "unknown exception type 'breakdwon' (did you mean breakdown?"),
    ("unknown exception type in a list", "type: breakdown", "type: [breakdown, fire]", "routing[0].when.type",
     "unknown exception type 'fire'"),
    ("unknown area in when", "{type: breakdown}", "{type: breakdown, area: paint}", "routing[0].when.area",
     "unknown area 'paint'"),
    ("unknown when key", "{type: breakdown}", "{kind: breakdown}", "routing[0].when", "unknown key 'kind'"),
    ("rule without notify", "    notify:\n      - {role: maintenance, ack_within: 10m, escalate_to: supervisor}\n"
     "      - {role: planner, if: staging_conflict}\n", "", "routing[0]", "missing required key 'notify'", "- when:"),
    ("unknown condition", "if: staging_conflict", "if: always", "routing[0].notify[1].if",
     "unknown condition 'always' (known: staging_conflict, customer_orders_at_risk)"),
    ("bad duration", "ack_within: 10m", "ack_within: 10 mins", "routing[0].notify[0].ack_within",
     "bad duration '10 mins': write it like 90s, 10m, 1h, 1h30m or 2d"),
    ("duration without unit", "ack_within: 10m", "ack_within: 10", "routing[0].notify[0].ack_within",
     "bad duration 10: give a unit, e.g. 10m"),
    ("zero duration", "ack_within: 10m", "ack_within: 0m", "routing[0].notify[0].ack_within",
     "must be longer than zero"),
    ("bad timezone", "Europe/Berlin", "Europe/Berlim", "plant.timezone",
     "unknown timezone 'Europe/Berlim' (did you mean Europe/Berlin"),
    ("bad time", 'start: "06:00"', 'start: "25:00"', "shifts[0].start", "bad time '25:00'"),
    ("bad minutes", 'end: "14:00"', 'end: "14:75"', "shifts[0].end", "bad time '14:75'"),
    ("bad day", "thu, fri]", "thu, fry]", "shifts[0].days[4]", "unknown day 'fry'"),
    ("bad datetime", '"2026-11-25T18:00"', '"2026-11-31T18:00"', "work_orders[0].end",
     "bad datetime '2026-11-31T18:00' (day is out of range for month)"),
    ("datetime without time", '"2026-11-27T16:00"', '"2026-11-27"', "customer_orders[0].due",
     "add the time of day, e.g. 2026-11-27T16:00"),
    ("end before start", 'end: "2026-11-25T18:00"', 'end: "2026-11-25T05:00"', "work_orders[0].end",
     "end 2026-11-25T05:00 must be after start 2026-11-25T06:00"),
    ("bad status", "status: running", "status: paused", "work_orders[0].status",
     "unknown status 'paused' (known: planned, released, running, held, done)"),
    ("id with a space", "{id: sara,", "{id: sara k,", "people[2].id", "bad id 'sara k': ids may not contain spaces"),
    ("empty name", "name: Stores}", "name: ''}", "areas[1].name", "must not be empty"),
    ("unknown section", "routing:\n", "peopel: []\nrouting:\n", "peopel",
     "unknown section 'peopel' (did you mean people? known: plant, areas"),
    ("section not a list", "shifts:\n  - {id: early", "shifts: early\nx-was:\n  - {id: early", "shifts",
     "expected a list, got the text 'early'"),
    ("secret in erp block", "routing:\n", "erp: {company: ACME, api_token: abc}\nrouting:\n",
     "erp.api_token", "looks like a secret"),
    ("duplicate yaml key", "{id: sara, name: Sara Khan,", "{id: sara, name: Sara Khan, name: Sara,",
     "people[2].name", "duplicate key 'name' (first at line"),
]


@pytest.mark.parametrize(
    ("old", "new", "location", "reason", "needle"),
    [(*c[1:5], c[5] if len(c) > 5 else c[2].splitlines()[0].strip()) for c in CASES],
    ids=[c[0] for c in CASES],
)
def test_each_problem_kind_is_reported_with_its_line(tmp_path: Path, old: str, new: str, location: str,
                                                      reason: str, needle: str) -> None:
    """`needle` finds the line the problem must point at: the edited line unless stated."""
    text = edit(old, new)
    problems = check(write(tmp_path, text))
    assert len(problems) == 1, format_problems(problems)
    problem = problems[0]
    expected_line = line_of(text, needle)
    assert (problem.location, problem.line) == (location, expected_line), str(problem)
    assert reason in problem.reason
    assert str(problem).startswith(f"{tmp_path / 'plant.yaml'}:{expected_line}: {location}: ")


def test_duplicate_ids_name_both_lines(tmp_path: Path) -> None:
    text = edit("materials:\n", "  - {id: CNC-07, name: Copy of mill 7, area: machining}\nmaterials:\n")
    text = text.replace("routing:\n", "  - {id: tom, name: Tom Becker}\nrouting:\n")
    problems = check(write(tmp_path, text))
    assert [(p.location, p.line, p.reason) for p in problems] == [
        ("machines[2].id", line_of(text, "Copy of mill 7"),
         f"duplicate id 'CNC-07' (first at line {line_of(text, 'name: CNC mill 7')})"),
        ("people[3].id", line_of(text, "Tom Becker"), f"duplicate id 'tom' (first at line {line_of(text, 'Tom Fischer')})"),
    ]


def test_yaml_syntax_error_has_line_and_column(tmp_path: Path) -> None:
    problems = check(write(tmp_path, edit("{id: stores, name: Stores}", "{id: stores, name: Stores")))
    assert len(problems) == 1
    assert problems[0].line == 5
    assert problems[0].reason == ("YAML syntax error: expected ',' or '}', but got ':' "
                                  "(column 9; while parsing a flow mapping at line 4)")
    problems = check(write(tmp_path, "plant:\n  id: x\n   name: y\n"))
    assert [(p.line, p.reason) for p in problems] == [
        (3, "YAML syntax error: mapping values are not allowed here (column 8)")]


def test_files_that_are_not_a_plant(tmp_path: Path) -> None:
    assert [p.reason for p in check(write(tmp_path, "# nothing yet\n"))] == ["the file is empty"]
    assert [p.reason for p in check(write(tmp_path, "- a\n- b\n"))] == [
        "the top level must be a mapping of sections (plant, areas, machines, materials, customer_orders, "
        "work_orders, shifts, people, routing, approvals, erp, signals, digests, decisions, mes, stock_watch, baseline), got a list"]
    assert [(p.location, p.line, p.reason) for p in check(write(tmp_path, "areas: []\n"))] == [
        ("", 1, "missing required section 'plant'")]
    missing = check(tmp_path / "nope.yaml")
    assert len(missing) == 1 and missing[0].reason.startswith("cannot read the file: ")


def test_every_problem_in_a_file_is_reported_at_once(tmp_path: Path) -> None:
    text = (BASE.replace("Europe/Berlin", "Mars/Olympus")
            .replace("area: machining, aliases", "area: milling, aliases")
            .replace("machine: CNC-07, material", "machine: CNC-99, material")
            .replace("status: running", "status: paused")
            .replace("shifts: [early]", "shifts: [late]")
            .replace("{slack: U01TOM}", "{slack: U01RAVI}")
            .replace("ack_within: 10m", "ack_within: 10 mins")
            .replace("if: staging_conflict", "if: always"))
    path = write(tmp_path, text)
    problems = check(path)
    found = [(p.location, p.line) for p in problems]
    assert found == [
        ("plant.timezone", 1),
        ("machines[0].area", line_of(text, "milling")),
        ("work_orders[0].status", line_of(text, "CNC-99")),  # shape before references on one line
        ("work_orders[0].machine", line_of(text, "CNC-99")),
        ("people[0].shifts[0]", line_of(text, "id: ravi")),
        ("people[1].channels.slack", line_of(text, "id: tom")),
        ("routing[0].notify[0].ack_within", line_of(text, "10 mins")),
        ("routing[0].notify[1].if", line_of(text, "always")),
    ]
    with pytest.raises(PlantFileError) as raised:
        load(path)
    assert raised.value.problems == problems
    assert str(raised.value) == format_problems(problems)
    assert format_problems(problems).splitlines()[3] == (
        f"{path}:13: work_orders[0].machine: unknown machine 'CNC-99' (known: CNC-07, CNC-08)")


def test_problem_text() -> None:
    assert str(Problem("plant.yaml", "work_orders[2].machine", 14, "unknown machine 'CNC-99' (known: CNC-07)")) == (
        "plant.yaml:14: work_orders[2].machine: unknown machine 'CNC-99' (known: CNC-07)")
    assert str(Problem("plant.yaml", "", None, "the file is empty")) == "plant.yaml: the file is empty"


# --- storing ------------------------------------------------------------------------------

TABLES = (Plant, Area, Machine, Material, CustomerOrder, WorkOrder, Shift, Person, ChannelIdentity, RoutingRule)


def counts(engine: Engine) -> dict[str, int]:
    with Session(engine) as session:
        return {t.__tablename__: session.exec(select(func.count()).select_from(t)).one() for t in TABLES}


def apply_file(engine: Engine, path: Path, now: datetime | None = None) -> PlantChanges:
    plant_file = load(path, now=now)
    with session_scope(engine) as session:
        return apply(session, plant_file, source_file=str(path))


def test_apply_stores_every_section(engine: Engine) -> None:
    changes = apply_file(engine, DEMO_PLANT, now=datetime(2026, 11, 25, 3, 30, tzinfo=UTC))
    assert changes.sections["machines"].added == ["HOB-01", "GRD-02", "CNC-11", "HT-01", "WSH-01", "ASM-01",
                                                   "TST-01", "CMP-02"]
    assert counts(engine) == {"plants": 1, "areas": 4, "machines": 8, "materials": 4, "customer_orders": 2,
                              "work_orders": 6, "shifts": 3, "people": 13, "channel_identities": 13 + 15,
                              "routing_rules": 7}
    with Session(engine) as session:
        plant = session.get(Plant, "pune-1")
        assert (plant.timezone, plant.source_file, plant.erp["warehouse"]) == (
            "Asia/Kolkata", str(DEMO_PLANT), "Stores - PD")
        order = session.get(WorkOrder, ("pune-1", "WO-1042"))
        assert (order.machine_id, order.material_id, order.customer_order_id, order.status, order.quantity) == (
            "HOB-01", "FRG-20MNCR5", "SO-7001", "running", 400)
        assert order.start == datetime(2026, 11, 25, 0, 30, tzinfo=UTC)
        assert session.get(CustomerOrder, ("pune-1", "SO-7001")).due == datetime(2026, 11, 26, 12, 30, tzinfo=UTC)
        assert session.get(Machine, ("pune-1", "HT-01")).aliases == ["furnace 1", "furnace", "bhatti", "ofen 1"]
        assert session.get(Shift, ("pune-1", "a")).days == ["mon", "tue", "wed", "thu", "fri", "sat", "sun"]
        rules = session.exec(select(RoutingRule).order_by(RoutingRule.position)).all()
        assert rules[0].when == {"type": "breakdown"}
        assert rules[0].notify[0] == {"role": "maintenance", "ack_within": "10m", "escalate_to": "maintenance_lead",
                                      "if": None}
        assert rules[0].notify[2]["if"] == "staging_conflict"
        assert (rules[1].approver, rules[-1].when) == ("quality", {})
        sara = {(i.channel, i.address) for i in session.exec(
            select(ChannelIdentity).where(ChannelIdentity.person_id == "sara"))}
        assert sara == {("console", "sara"), ("slack", "U01SARA"), ("whatsapp", "+919800000003")}


def test_loading_the_same_file_again_changes_nothing(engine: Engine, tmp_path: Path) -> None:
    apply_file(engine, PUNE_PLANT)
    before = counts(engine)
    with Session(engine) as session:
        loaded_at = session.get(Plant, "pune-1").loaded_at
    again = apply_file(engine, PUNE_PLANT)
    assert not again.changed
    assert again.summary() == "plant pune-1: no changes"
    # Comments and layout are not content.
    reformatted = write(tmp_path, "# reformatted\n" + PUNE_PLANT.read_text().replace(", ", ",  "))
    with session_scope(engine) as session:
        assert not apply(session, load(reformatted), source_file=str(PUNE_PLANT)).changed
    assert counts(engine) == before
    with Session(engine) as session:
        assert session.get(Plant, "pune-1").loaded_at == loaded_at


def test_a_changed_file_updates_adds_and_removes_rows_but_not_history(engine: Engine, tmp_path: Path) -> None:
    apply_file(engine, PUNE_PLANT)
    opened = datetime(2026, 11, 25, 3, 30, tzinfo=UTC)
    with session_scope(engine) as session:
        session.get(Machine, ("pune-1", "HOB-01")).running = False
        session.add(Signal(plant_id="pune-1", source="whatsapp", source_key="wa:1", kind="chat", received_at=opened,
                           person_id="arjun", payload={"text": "hobber 1 band"}))
        exception = PlantException(plant_id="pune-1", code="E-0001", type="breakdown", machine_id="HOB-01",
                                   work_orders=["WO-1042", "WO-1043"], opened_at=opened)
        session.add(exception)
        session.flush()
        session.add(Notification(plant_id="pune-1", dedupe_key="n1", exception_id=exception.id, person_id="arjun",
                                 kind="alert", channel="whatsapp", address="+919800000002", text="HOB-01 down",
                                 created_at=opened))
    before = counts(engine)

    text = PUNE_PLANT.read_text()
    text = text.replace("name: Liebherr gear hobber 1", "name: Liebherr LC 300 hobber")
    text = "\n".join(line for line in text.splitlines() if "WO-1043" not in line and "id: arjun" not in line)
    text = text.replace("people:\n", "people:\n  - {id: priya, name: Priya Nair, roles: [operator], areas: [gears], "
                                     "shifts: [b], channels: {telegram: \"5002\"}}\n")
    changes = apply_file(engine, write(tmp_path, text))

    assert changes.sections["machines"].updated == ["HOB-01"]
    assert changes.sections["work_orders"].removed == ["WO-1043"]
    assert (changes.sections["people"].added, changes.sections["people"].removed) == (["priya"], ["arjun"])
    assert sorted(changes.sections["channel_identities"].added) == ["priya:console", "priya:telegram"]
    assert sorted(changes.sections["channel_identities"].removed) == ["arjun:console", "arjun:whatsapp"]
    assert changes.sections["plant"].updated == ["pune-1"]  # loaded from another file
    assert not changes.sections["areas"] and not changes.sections["routing"]
    assert "machines: 1 updated (HOB-01)" in changes.summary()

    after = counts(engine)
    assert after["work_orders"] == before["work_orders"] - 1
    assert after["people"] == before["people"]
    assert after["channel_identities"] == before["channel_identities"]
    with Session(engine) as session:
        hobber = session.get(Machine, ("pune-1", "HOB-01"))
        assert (hobber.name, hobber.running) == ("Liebherr LC 300 hobber", False)
        assert session.get(WorkOrder, ("pune-1", "WO-1043")) is None
        assert session.exec(select(Signal)).one().person_id == "arjun"
        assert session.exec(select(PlantException)).one().work_orders == ["WO-1042", "WO-1043"]
        assert session.exec(select(Notification)).one().person_id == "arjun"


def test_chat_addresses_can_move_between_people(engine: Engine, tmp_path: Path) -> None:
    """Swapping two people's addresses must not trip the (channel, address) unique key mid-update."""
    apply_file(engine, PUNE_PLANT)
    swapped = PUNE_PLANT.read_text().replace("U01TOM", "TMP").replace("U01LENA", "U01TOM").replace("TMP", "U01LENA")
    changes = apply_file(engine, write(tmp_path, swapped))
    assert sorted(changes.sections["channel_identities"].updated) == ["lena:slack", "tom:slack"]
    with Session(engine) as session:
        owner = session.exec(select(ChannelIdentity.person_id).where(ChannelIdentity.address == "U01TOM")).one()
        assert owner == "lena"


def test_a_new_timezone_moves_the_stored_times(sqlite_engine: Engine, tmp_path: Path) -> None:
    apply_file(sqlite_engine, PUNE_PLANT)
    moved = PUNE_PLANT.read_text().replace("Asia/Kolkata", "Europe/Berlin")
    changes = apply_file(sqlite_engine, write(tmp_path, moved))
    assert len(changes.sections["work_orders"].updated) == 6
    with Session(sqlite_engine) as session:
        assert session.get(WorkOrder, ("pune-1", "WO-1042")).start == datetime(2026, 11, 25, 5, 0, tzinfo=UTC)


def test_an_address_of_another_plant_is_refused_with_its_line(sqlite_engine: Engine, tmp_path: Path) -> None:
    apply_file(sqlite_engine, write(tmp_path, BASE))
    other = PUNE_PLANT.read_text().replace("U01TOM", "U01RAVI")
    path = write(tmp_path, other, "pune.yaml")
    with pytest.raises(PlantFileError) as raised:
        apply_file(sqlite_engine, path)
    found = [(p.file, p.location, p.line, p.reason) for p in raised.value.problems]
    # Console addresses are person ids, so plants sharing one database need distinct person ids.
    assert found == [
        (str(path), "people[0].id", line_of(other, "id: ravi,"),
         "console address 'ravi' already belongs to person 'ravi' of plant 'test-1'"),
        (str(path), "people[2].channels.slack", line_of(other, "id: tom,"),
         "slack address 'U01RAVI' already belongs to person 'ravi' of plant 'test-1'"),
        (str(path), "people[2].id", line_of(other, "id: tom,"),
         "console address 'tom' already belongs to person 'tom' of plant 'test-1'"),
        (str(path), "people[9].id", line_of(other, "id: sara,"),
         "console address 'sara' already belongs to person 'sara' of plant 'test-1'"),
    ]
    with Session(sqlite_engine) as session:
        assert session.get(Plant, "pune-1") is None


# --- rows an ERP sync brought in ----------------------------------------------------------


def add_erp_rows(engine: Engine) -> None:
    """What `mfgos sync-erp` writes: rows with origin "erp", machines in an area of their own."""
    with session_scope(engine) as session:
        session.add(Area(plant_id="test-1", id="erp", name="erp"))
        session.add(Machine(plant_id="test-1", id="PRESS-02", name="Press 2", area_id="erp", origin="erp"))
        session.add(Machine(plant_id="test-1", id="CNC-09", name="CNC mill 9 (ERP)", area_id="erp", origin="erp"))
        session.add(Material(plant_id="test-1", id="HOUSING-A", name="Pump housing A", origin="erp"))
        session.add(CustomerOrder(plant_id="test-1", id="SO-9001", customer="ACME", origin="erp"))
        session.add(WorkOrder(plant_id="test-1", id="WO-4472", machine_id="PRESS-02", status="released",
                              origin="erp"))


def test_a_load_deletes_only_its_own_rows_not_the_erps(engine: Engine, tmp_path: Path) -> None:
    apply_file(engine, write(tmp_path, BASE))
    add_erp_rows(engine)
    dropped = BASE.replace("  - {id: CNC-08, name: CNC mill 8, area: machining}\n", "").replace(
        "  - {id: WO-2, machine: CNC-08, status: planned}\n", "")
    changes = apply_file(engine, write(tmp_path, dropped))
    assert changes.sections["machines"].removed == ["CNC-08"]
    assert changes.sections["work_orders"].removed == ["WO-2"]
    assert not changes.sections["areas"].removed  # "erp" is not in the file, but ERP machines stand in it
    with Session(engine) as session:
        assert {m.id: m.origin for m in session.exec(select(Machine))} == {
            "CNC-07": "plant_file", "PRESS-02": "erp", "CNC-09": "erp"}
        assert session.get(WorkOrder, ("test-1", "WO-4472")).origin == "erp"
        assert session.get(Material, ("test-1", "HOUSING-A")) is not None
        assert session.get(CustomerOrder, ("test-1", "SO-9001")) is not None
        assert session.get(Area, ("test-1", "erp")) is not None


def test_an_entry_takes_over_the_erps_row_and_then_goes_with_the_file(engine: Engine, tmp_path: Path) -> None:
    apply_file(engine, write(tmp_path, BASE))
    add_erp_rows(engine)
    with session_scope(engine) as session:
        session.add(ErpSyncState(plant_id="test-1", erp="erpnext", watermark="2026-11-25T08:00:00+00:00",
                                 synced_at=datetime(2026, 11, 25, 8, 0, tzinfo=UTC)))
    taken = edit("  - {id: CNC-08, name: CNC mill 8, area: machining}\n",
                 "  - {id: CNC-08, name: CNC mill 8, area: machining}\n"
                 "  - {id: CNC-09, name: CNC mill 9, area: machining, aliases: [mill 9]}\n").replace(
        "  - {id: WO-2, machine: CNC-08, status: planned}\n",
        "  - {id: WO-2, machine: CNC-08, status: planned}\n  - {id: WO-4472, machine: CNC-09, status: held}\n")
    changes = apply_file(engine, write(tmp_path, taken))
    assert changes.sections["machines"].updated == ["CNC-09"] and not changes.sections["machines"].added
    with Session(engine) as session:
        mill = session.get(Machine, ("test-1", "CNC-09"))
        assert (mill.origin, mill.name, mill.area_id, mill.aliases) == ("plant_file", "CNC mill 9", "machining",
                                                                          ["mill 9"])
        order = session.get(WorkOrder, ("test-1", "WO-4472"))
        assert (order.origin, order.machine_id, order.status) == ("plant_file", "CNC-09", "held")
        assert session.get(ErpSyncState, "test-1").watermark is not None  # no order was dropped

    # Dropped from the file again: the taken-over rows are the file's now, so they go, and the
    # next sync reads every order again to bring the ERP's version back.
    changes = apply_file(engine, write(tmp_path, BASE))
    assert (changes.sections["machines"].removed, changes.sections["work_orders"].removed) == (["CNC-09"],
                                                                                             ["WO-4472"])
    with Session(engine) as session:
        assert session.get(Machine, ("test-1", "CNC-09")) is None
        assert session.get(Machine, ("test-1", "PRESS-02")).origin == "erp"
        assert session.get(ErpSyncState, "test-1").watermark is None


RELATIVE = BASE.replace('due: "2026-11-27T16:00"', "due: today+2d16h").replace(
    'start: "2026-11-25T06:00", end: "2026-11-25T18:00"', "start: now-2h, end: now + 10h")


@pytest.mark.parametrize("moment", [datetime(2026, 12, 6, 2, 30, tzinfo=UTC),   # 03:30 on a Sunday in Berlin
                                    datetime(2027, 12, 7, 13, 15, tzinfo=UTC)])  # 14:15 a year on
def test_relative_dates_are_resolved_against_the_moment_of_loading(tmp_path: Path, moment: datetime) -> None:
    assert RELATIVE != BASE
    plant = load(write(tmp_path, RELATIVE), now=moment)
    zone = ZoneInfo(plant.plant.timezone)
    hour = moment.astimezone(zone).replace(minute=0, second=0, microsecond=0)
    order = plant.work_orders[0]
    assert (order.start, order.end) == (hour - timedelta(hours=2), hour + timedelta(hours=10))
    midnight = hour.replace(hour=0)
    assert plant.customer_orders[0].due == midnight + timedelta(days=2, hours=16)
    # absolute dates in the same file are untouched
    assert load(write(tmp_path, BASE), now=moment).work_orders[0].start == datetime(2026, 11, 25, 6, 0, tzinfo=zone)


def test_a_shift_relative_to_now_and_a_bad_relative_date_are_reported(tmp_path: Path) -> None:
    moment = datetime(2026, 12, 6, 2, 30, tzinfo=UTC)  # 03:30 in Berlin
    shifted = BASE.replace('{id: early, start: "06:00", end: "14:00"', "{id: early, start: now-1h, end: now+7h")
    assert shifted != BASE
    (shift,) = load(write(tmp_path, shifted), now=moment).shifts
    assert (shift.start, shift.end) == ("02:00", "10:00")
    problems = check(write(tmp_path, RELATIVE.replace("now + 10h", "now+10 hours")), now=moment)
    assert [(p.location, "bad duration" in p.reason) for p in problems] == [("work_orders[0].end", True)]


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(value=st.one_of(st.from_regex(r"(now|today) ?[+-] ?[0-9]{1,25}[dhms]", fullmatch=True),
                       st.text(max_size=30)))
def test_any_relative_date_is_a_problem_or_a_moment_never_a_crash(tmp_path: Path, value: str) -> None:
    text = RELATIVE.replace("due: today+2d16h", f"due: {json.dumps(value)}").replace(
        '{id: early, start: "06:00"', f'{{id: early, start: {json.dumps(value)}')
    problems = check(write(tmp_path, text), now=datetime(2026, 12, 6, 2, 30, tzinfo=UTC))
    assert all(p.reason for p in problems)

"""The planner's options for every order a breakdown or a shortage holds, and the split and the move
reaching the ledger and each fake ERP exactly once (issue 16), through `mfgos replay`."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
import yaml
from sqlmodel import Session, select

from erp_adapters.sap_odata import odata_date
from mfgos.config import Settings
from mfgos.replay import replay
from models import LedgerDocument, WorkOrder, make_engine
from tests.erp_fakes.server import serve
from tests.test_erp_replay import ERP_BLOCKS, SITES, URL_QUERY, PuneErp, outcome

SCENARIOS = Path(__file__).parent / "scenarios"
DATA = Path(__file__).parent / "data"
# The split of WO-1042 (decide_split.yaml): 200 stay on HOB-01 after the repair, 200 on HOB-02.
SPLIT = {"work_order": "WO-1042", "quantity": 200.0, "machine": "HOB-01",
         "start": "2026-11-25T07:30:00+00:00", "end": "2026-11-25T12:00:00+00:00",
         "new_order": "WO-1042-2", "split_quantity": 200.0, "split_machine": "HOB-02",
         "split_start": "2026-11-25T08:30:00+00:00", "split_end": "2026-11-25T13:00:00+00:00"}
BLOCKS = {
    **ERP_BLOCKS,
    "odoo": {**ERP_BLOCKS["odoo"], "workcenters": {"HOB-01": "HOB-01", "HOB-02": "HOB-02", "GRD-02": "GRD-02"}},
}


def sent(result: dict[str, Any], to: str, kind: str) -> list[dict[str, Any]]:
    return [n for n in result["notifications"] if n["to"] == to and n["kind"] == kind]


def rows(database_url: str, table: Any) -> list[Any]:
    engine = make_engine(database_url)
    try:
        with Session(engine) as session:
            return list(session.exec(select(table)))
    finally:
        engine.dispose()


def test_a_shortage_offers_each_held_order_its_options_in_each_planners_language(database_url: str) -> None:
    result = replay(SCENARIOS / "decide_shortage_en.yaml", database_url=database_url)
    [english] = [n["text"] for n in sent(result, "deepa", "options")]
    [spanish] = [n["text"] for n in sent(result, "lucia", "options")]
    # The forgings come in 30 h (their lead time): Thursday 15:00. WO-1042 has 9 h left.
    assert "1) wait for the material: WO-1042 on HOB-01 from 2026-11-26 15:00, done 2026-11-27 00:00 " \
           "(late: SO-7001 6 h)" in english
    assert "3) split: 200 of WO-1042 on HOB-02 from 2026-11-26 15:00, the rest on its own machine, all done " \
           "2026-11-26 19:30 (late: SO-7001 1 h 30 min)" in english
    assert "1) esperar el material: WO-1042 en HOB-01 desde 2026-11-26 15:00, termina 2026-11-27 00:00 " \
           "(tarde: SO-7001 6 h)" in spanish
    # Every order the shortage holds, numbered on: WO-1043 waits behind WO-1042; moved to HOB-02 it
    # starts when the forgings come.
    assert "4) wait for the material: WO-1043 on HOB-01 from 2026-11-27 00:00, done 2026-11-27 10:00 (on time)" \
        in english
    assert "5) mover a HOB-02: WO-1043 desde 2026-11-26 15:00, termina 2026-11-27 01:00 (a tiempo)" in spanish
    # deepa waits for the material; approved, the reschedule goes to the ledger and customer
    # service hears SO-7001 will be 6 h late.
    [reschedule] = [t for t in result["erp_transactions"] if t["kind"] == "production_order_reschedule"]
    assert (reschedule["fields"]["start"], reschedule["fields"]["end"]) == (
        "2026-11-26T09:30:00+00:00", "2026-11-26T18:30:00+00:00")
    assert "machine" not in reschedule["fields"], "waiting keeps the order on its machine"
    [late] = sent(result, "john", "part_customer_order_date")
    assert "SO-7001" in late["text"] and "6 h" in late["text"]


def test_without_a_lead_time_or_a_coming_supply_a_shortage_offers_nothing(tmp_path: Path, database_url: str) -> None:
    plant = tmp_path / "plant.yaml"
    plant.write_text((DATA / "pune_shortage_plant.yaml").read_text(encoding="utf-8").replace(", lead_time: 30h", ""),
                     encoding="utf-8")
    raw = yaml.safe_load((SCENARIOS / "decide_shortage_en.yaml").read_text(encoding="utf-8"))
    raw.update(plant=str(plant), events=raw["events"][:1])
    scenario = tmp_path / "shortage.yaml"
    scenario.write_text(yaml.safe_dump(raw), encoding="utf-8")
    result = replay(scenario, database_url=database_url)
    assert not sent(result, "deepa", "options"), "no arrival known: waiting has no time"


def test_a_spanish_planner_splits_the_second_held_order_once(database_url: str) -> None:
    result = replay(SCENARIOS / "decide_shortage_es.yaml", database_url=database_url)
    [split] = [d for d in rows(database_url, LedgerDocument) if d.kind == "production_order_split"]
    assert {k: split.fields[k] for k in ("work_order", "quantity", "new_order", "split_quantity", "split_machine",
                                         "split_start")} == {
        "work_order": "WO-1043", "quantity": 150.0, "new_order": "WO-1043-2", "split_quantity": 150.0,
        "split_machine": "HOB-02", "split_start": "2026-11-26T09:30:00+00:00"}
    [approval] = sent(result, "sara", "approval_request")
    assert "WO-1043 split: 150 on HOB-01" in approval["text"] and "150 as WO-1043-2 on HOB-02" in approval["text"]
    [confirmed] = sent(result, "lucia", "confirmation")
    assert "WO-1043 dividida" in confirmed["text"]
    [posted] = sent(result, "lucia", "erp_reference")
    assert "división de orden" in posted["text"] and "SPL-" in posted["text"]


def test_a_split_is_one_transaction_and_two_orders_in_the_plan(database_url: str) -> None:
    result = replay(SCENARIOS / "decide_split.yaml", database_url=database_url)
    [split] = [t for t in result["erp_transactions"] if t["kind"] == "production_order_split"]
    assert {k: split["fields"][k] for k in SPLIT} == SPLIT and split["status"] == "posted"
    assert [d.kind for d in rows(database_url, LedgerDocument)].count("production_order_split") == 1
    plan = {w.id: w for w in rows(database_url, WorkOrder)}
    kept, second = plan["WO-1042"], plan["WO-1042-2"]
    assert (kept.quantity, kept.machine_id, second.quantity, second.machine_id) == (200, "HOB-01", 200, "HOB-02")
    assert second.customer_order_id == "SO-7001" and second.material_id == "FRG-20MNCR5"
    assert second.origin == "erp", "the ERP's order once posted: a plant-file reload does not delete it"
    # Materials is asked to bring the moved half's blanks to HOB-02 by its start.
    [staging] = sent(result, "vikram", "part_material_request")
    assert "WO-1042-2" in staging["text"] and "200" in staging["text"] and "HOB-02" in staging["text"] \
        and "2026-11-25 14:00" in staging["text"]


def _with_pune_orders(name: str, state: Any) -> None:
    """WO-1042 on HOB-01 (with its operation there), SO-7001, and the sister HOB-02."""
    if name == "erpnext":
        state.put("Workstation", {"name": "HOB-02", "workstation_name": "Liebherr gear hobber 2"})
        state.put("Sales Order", {"name": "SO-7001", "customer": "Deccan Tractors", "delivery_date": "2026-11-26",
                                  "docstatus": 1})
        state.put("Work Order", {"name": "WO-1042", "status": "In Process", "docstatus": 1,
                                 "company": "Pune Drives Pvt Ltd", "production_item": "FRG-20MNCR5", "qty": 400.0,
                                 "planned_start_date": "2026-11-25 06:00:00", "planned_end_date": "2026-11-25 18:00:00",
                                 "sales_order": "SO-7001", "operations": [{"operation": "Hobbing",
                                                                           "workstation": "HOB-01"}]})
    elif name == "odoo":
        blank = next(i for i, r in state.records["product.product"].items() if r["default_code"] == "FRG-20MNCR5")
        hob1 = next(i for i, r in state.records["mrp.workcenter"].items() if r["code"] == "HOB-01")
        state.add("mrp.workcenter", name="Liebherr gear hobber 2", code="HOB-02")
        production = state.add("mrp.production", name="WO-1042", state="progress", product_id=blank,
                               product_qty=400.0, qty_producing=100.0, date_start="2026-11-25 00:30:00",
                               date_finished="2026-11-25 12:30:00", origin="SO-7001")
        state.add("mrp.workorder", name="Hobbing", production_id=production, workcenter_id=hob1, state="progress",
                  working=True)
    else:
        state.work_centers.append({"WorkCenter": "HOB-02", "Plant": "1010", "WorkCenterDesc": "Liebherr gear hobber 2"})
        state.orders["WO-1042"] = {**state.orders["WO-4471"], "ManufacturingOrder": "WO-1042",
                                   "Material": "FRG-20MNCR5", "OrderIsTechnicallyCompleted": False,
                                   "SalesOrder": "SO-7001",
                                   "_operations": [{"ManufacturingOrder": "WO-1042",
                                                    "ManufacturingOrderOperation": "0010", "WorkCenter": "HOB-01"}]}


@pytest.fixture(params=list(SITES))
def pune_erp(request: pytest.FixtureRequest) -> Iterator[PuneErp]:
    build, make_app = SITES[request.param]
    state, holds, (user, token) = build()
    _with_pune_orders(request.param, state)
    with serve(make_app(state)) as url:
        yield PuneErp(request.param, url + URL_QUERY[request.param], user, token, holds, state)


def scenario_for(name: str, erp: str | None, directory: Path) -> Path:
    plant = directory / f"pune_decide_plant_{erp or 'ledger'}.yaml"
    block = yaml.safe_dump({"erp": BLOCKS[erp]}, sort_keys=False) if erp else ""
    plant.write_text((DATA / "pune_decide_plant.yaml").read_text(encoding="utf-8") + block, encoding="utf-8")
    raw = yaml.safe_load((SCENARIOS / f"{name}.yaml").read_text(encoding="utf-8"))
    raw["plant"] = plant.name
    path = directory / f"{name}_{erp or 'ledger'}.yaml"
    path.write_text(yaml.safe_dump(raw, sort_keys=False, allow_unicode=True), encoding="utf-8")
    return path


@pytest.fixture(scope="module")
def ledger_results(tmp_path_factory: pytest.TempPathFactory) -> dict[str, dict[str, Any]]:
    return {name: replay(scenario_for(name, None, tmp_path_factory.mktemp(name)), settings=Settings(erp="ledger"))
            for name in ("decide_split", "decide_options")}


@pytest.mark.parametrize("name", ["decide_split", "decide_options"])
def test_the_split_and_the_move_land_in_each_erp_once_with_the_right_fields(
        pune_erp: PuneErp, ledger_results: dict[str, dict[str, Any]], tmp_path: Path, name: str) -> None:
    database_url = f"sqlite:///{tmp_path / 'replay.db'}"
    result = replay(scenario_for(name, pune_erp.name, tmp_path), database_url=database_url,
                    settings=pune_erp.settings(database_url))
    assert outcome(result) == outcome(ledger_results[name])
    assert {t["status"] for t in result["erp_transactions"]} == {"posted"}
    state, erp = pune_erp.state, pune_erp.name
    if name == "decide_split":
        if erp == "erpnext":
            kept, second = state.docs["Work Order"]["WO-1042"], state.docs["Work Order"]["WO-1042-2"]
            assert (kept["qty"], kept["planned_start_date"], kept["planned_end_date"]) == (
                200.0, "2026-11-25 13:00:00", "2026-11-25 17:30:00")
            assert (second["qty"], second["docstatus"], second["production_item"], second["sales_order"]) == (
                200.0, 1, "FRG-20MNCR5", "SO-7001")
            assert [op["workstation"] for op in second["operations"]] == ["HOB-02"]
            assert second["planned_start_date"] == "2026-11-25 14:00:00"
            assert [n for _d, n in state.created].count("WO-1042-2") == 1
        elif erp == "odoo":
            productions = [p for p in state.records["mrp.production"].values() if p["name"].startswith("WO-1042")]
            kept, second = sorted(productions, key=lambda p: p["name"])
            assert (kept["product_qty"], kept["date_start"]) == (200.0, "2026-11-25 07:30:00")
            assert (second["name"], second["product_qty"], second["state"], second["date_start"]) == (
                "WO-1042-2", 200.0, "confirmed", "2026-11-25 08:30:00")
            hob2 = next(i for i, r in state.records["mrp.workcenter"].items() if r["code"] == "HOB-02")
            assert [w["workcenter_id"] for w in state.records["mrp.workorder"].values()
                    if w["production_id"] == second["id"]] == [hob2]
        else:
            kept, second = state.orders["WO-1042"], state.orders["WO-1042-2"]
            assert (kept["TotalQuantity"], kept["MfgOrderPlannedStartTime"]) == ("200", "PT13H00M00S")
            assert (second["TotalQuantity"], second["Material"], second["MfgOrderPlannedStartTime"]) == (
                "200", "FRG-20MNCR5", "PT14H00M00S")
            assert second["MfgOrderPlannedStartDate"] == odata_date(datetime(2026, 11, 25, tzinfo=UTC))
            assert [op["WorkCenter"] for op in second["_operations"]] == ["HOB-02"]
        return
    # The move: WO-1042 to HOB-02 from 14:00 to 23:00, its operation's machine with it.
    if erp == "erpnext":
        order = state.docs["Work Order"]["WO-1042"]
        assert (order["planned_start_date"], order["planned_end_date"]) == ("2026-11-25 14:00:00",
                                                                          "2026-11-25 23:00:00")
        assert [op["workstation"] for op in order["operations"]] == ["HOB-02"]
    elif erp == "odoo":
        [production] = [p for p in state.records["mrp.production"].values() if p["name"] == "WO-1042"]
        assert production["date_start"] == "2026-11-25 08:30:00"
        hob2 = next(i for i, r in state.records["mrp.workcenter"].items() if r["code"] == "HOB-02")
        assert [w["workcenter_id"] for w in state.records["mrp.workorder"].values()
                if w["production_id"] == production["id"]] == [hob2]
    else:
        order = state.orders["WO-1042"]
        assert order["MfgOrderPlannedStartTime"] == "PT14H00M00S"
        assert [op["WorkCenter"] for op in order["_operations"]] == ["HOB-02"]

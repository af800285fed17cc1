"""The decision chain (issue 16) against the fake ERPNext, Odoo and SAP: the same outcome as on the
ledger, and each ERP holds one reschedule, one material request and one customer-order date."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
import yaml

from erp_adapters.sap_odata import odata_date
from mfgos.config import Settings
from mfgos.replay import replay
from tests.erp_fakes.server import serve
from tests.test_erp_replay import ERP_BLOCKS, SITES, URL_QUERY, PuneErp, outcome

ROOT = Path(__file__).parent
PLANT = ROOT / "data" / "pune_decide_plant.yaml"
SCENARIO = ROOT / "scenarios" / "decide_chain_en.yaml"
BLOCKS = {**ERP_BLOCKS, "odoo": {**ERP_BLOCKS["odoo"], "staging_location": "WH/Staging"}}


def _with_pune_orders(name: str, state: Any) -> None:
    """The orders the chain touches: WO-1042 (moved) and SO-7001 (its customer's date)."""
    if name == "erpnext":
        state.put("Work Order", {"name": "WO-1042", "status": "In Process", "docstatus": 1,
                                 "company": "Pune Drives Pvt Ltd", "production_item": "FRG-20MNCR5", "qty": 400.0,
                                 "planned_start_date": "2026-11-25 06:00:00", "planned_end_date": "2026-11-25 18:00:00",
                                 "sales_order": "SO-7001", "operations": []})
        state.put("Workstation", {"name": "HOB-02", "workstation_name": "Liebherr gear hobber 2"})
        state.put("Sales Order", {"name": "SO-7001", "customer": "Deccan Tractors", "delivery_date": "2026-11-26",
                                  "docstatus": 1})
    elif name == "odoo":
        blank = next(i for i, r in state.records["product.product"].items() if r["default_code"] == "FRG-20MNCR5")
        state.add("mrp.production", name="WO-1042", state="progress", product_id=blank, product_qty=400.0,
                  qty_producing=100.0, date_start="2026-11-25 00:30:00", date_finished="2026-11-25 12:30:00",
                  origin="SO-7001")
        state.add("mrp.workcenter", name="Liebherr gear hobber 2", code="HOB-02")  # the move's machine
        partner = state.add("res.partner", name="Deccan Tractors")
        state.add("sale.order", name="SO-7001", partner_id=partner, state="sale",
                  commitment_date="2026-11-26 12:30:00")
    else:
        state.work_centers.append({"WorkCenter": "HOB-02", "Plant": "1010", "WorkCenterDesc": "Liebherr gear hobber 2"})
        state.orders["WO-1042"] = {**state.orders["WO-4471"], "ManufacturingOrder": "WO-1042",
                                   "Material": "FRG-20MNCR5", "OrderIsTechnicallyCompleted": False,
                                   "_operations": [{"ManufacturingOrder": "WO-1042",
                                                    "ManufacturingOrderOperation": "0010", "WorkCenter": "HOB-01"}]}
        state.sales_orders.append({"SalesOrder": "SO-7001", "SoldToParty": "17100002",
                                   "RequestedDeliveryDate": odata_date(datetime(2026, 11, 26, tzinfo=UTC)),
                                   "_changed": state.tick()})


@pytest.fixture(params=list(SITES))
def pune_erp(request: pytest.FixtureRequest) -> Iterator[PuneErp]:
    build, make_app = SITES[request.param]
    state, holds, (user, token) = build()
    _with_pune_orders(request.param, state)
    with serve(make_app(state)) as url:
        yield PuneErp(request.param, url + URL_QUERY[request.param], user, token, holds, state)


def scenario_for(erp: str | None, directory: Path) -> Path:
    plant = directory / f"pune_decide_plant_{erp or 'ledger'}.yaml"
    block = yaml.safe_dump({"erp": BLOCKS[erp]}, sort_keys=False) if erp else ""
    plant.write_text(PLANT.read_text(encoding="utf-8") + block, encoding="utf-8")
    raw = yaml.safe_load(SCENARIO.read_text(encoding="utf-8"))
    raw["plant"] = plant.name
    path = directory / f"decide_chain_{erp or 'ledger'}.yaml"
    path.write_text(yaml.safe_dump(raw, sort_keys=False, allow_unicode=True), encoding="utf-8")
    return path


@pytest.fixture(scope="module")
def ledger_result(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    return replay(scenario_for(None, tmp_path_factory.mktemp("ledger")), settings=Settings(erp="ledger"))


def test_the_chain_against_each_erp_matches_the_ledger_and_lands_once(
        pune_erp: PuneErp, ledger_result: dict[str, Any], tmp_path: Path) -> None:
    database_url = f"sqlite:///{tmp_path / 'replay.db'}"
    result = replay(scenario_for(pune_erp.name, tmp_path), database_url=database_url,
                    settings=pune_erp.settings(database_url))
    assert outcome(result) == outcome(ledger_result)
    kinds = [t["kind"] for t in result["erp_transactions"]]
    assert sorted(kinds) == ["customer_order_date", "maintenance_request", "material_request",
                             "production_order_reschedule"]
    assert {t["status"] for t in result["erp_transactions"]} == {"posted"}
    state = pune_erp.state
    if pune_erp.name == "erpnext":
        [request] = state.docs["Material Request"].values()
        assert (request["material_request_type"], request["docstatus"]) == ("Purchase", 1)
        [item] = request["items"]
        assert (item["item_code"], item["qty"], item["schedule_date"]) == ("FRG-20MNCR5", 400, "2026-11-26")
        order = state.docs["Work Order"]["WO-1042"]
        assert (order["planned_start_date"], order["planned_end_date"]) == ("2026-11-26 08:00:00", "2026-11-26 20:00:00")
        assert state.docs["Sales Order"]["SO-7001"]["delivery_date"] == "2026-11-26"
    elif pune_erp.name == "odoo":
        pickings = [p for p in state.records["stock.picking"].values() if str(p.get("origin", "")).startswith("mfgos:")]
        [picking] = pickings
        assert (picking["state"], picking["priority"], picking["scheduled_date"]) == \
            ("confirmed", "1", "2026-11-26 01:30:00")
        [move] = [m for m in state.records["stock.move"].values() if m["picking_id"] == picking["id"]]
        assert move["product_uom_qty"] == 400
        [production] = [p for p in state.records["mrp.production"].values() if p["name"] == "WO-1042"]
        assert (production["date_start"], production["date_finished"]) == ("2026-11-26 02:30:00",
                                                                          "2026-11-26 14:30:00")
        [sale] = [o for o in state.records["sale.order"].values() if o["name"] == "SO-7001"]
        assert sale["commitment_date"] == "2026-11-26 14:30:00"
    else:
        [requisition] = state.requisitions.values()
        [item] = requisition["to_PurchaseReqnItem"]["results"]
        assert (requisition["PurchaseRequisitionType"], item["Material"], item["RequestedQuantity"]) == \
            ("NB", "FRG-20MNCR5", "400.0")
        assert item["DeliveryDate"] == odata_date(datetime(2026, 11, 26, tzinfo=UTC))
        order = state.orders["WO-1042"]
        assert (order["MfgOrderPlannedStartTime"], order["MfgOrderPlannedEndTime"]) == ("PT08H00M00S", "PT20H00M00S")
        assert [op["WorkCenter"] for op in order["_operations"]] == ["HOB-02"], "the move is a machine change too"
        [sale] = [o for o in state.sales_orders if o["SalesOrder"] == "SO-7001"]
        assert sale["RequestedDeliveryDate"] == odata_date(datetime(2026, 11, 26, tzinfo=UTC))

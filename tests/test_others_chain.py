"""Issue 16's "replay scenarios written by others": tests/scenarios/others_chain_{en,es,de,hi}.yaml.

The scenarios were written from the documentation only (docs/routing.md "Decisions", docs/plant-file.md
`approvals`, docs/conversation.md `awaiting_decision`, docs/nlp.md "Times in decisions"), on the demo
plant adapted per language (tests/data/others_plant_<lang>.yaml). A replay scenario holds no
expectations of its own, so they are here: after the approvals the ledger, and each fake ERP (ERPNext,
Odoo, SAP), holds one reschedule, one material request and one customer-order date, each exactly once,
with the fields the messages said; the chain told materials and customer service; each part was
proposed by its role and decided by the approver the plant file names.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
import yaml
from sqlmodel import Session, select

from erp_adapters.sap_odata import odata_date
from mfgos.replay import replay
from models import ExceptionDecision, LedgerDocument, make_engine
from tests.erp_fakes.server import serve
from tests.test_decisions_erp import BLOCKS
from tests.test_erp_replay import SITES, URL_QUERY, PuneErp

ROOT = Path(__file__).parent
SCENARIOS = ROOT / "scenarios"
PUNE = timedelta(hours=5, minutes=30)


@dataclass(frozen=True)
class Expected:
    work_order: str
    start: str  # UTC, as the ledger keeps it
    end: str
    material: str
    quantity: float
    need_by: str
    customer_order: str
    promised: str
    deciders: tuple[tuple[str, str, str], ...]  # (kind, proposed_by, decided_by), in part order
    maintenance_requests: int  # the technician's fix, when the scenario approves one


EXPECTED = {
    # tomorrow 8am; by 7am tomorrow; tomorrow 8pm. Approvals: reschedule supervisor, material planner.
    "en": Expected("WO-1042", "2026-12-08T02:30:00+00:00", "2026-12-08T14:30:00+00:00",
                   "FRG-20MNCR5", 400, "2026-12-08T01:30:00+00:00", "SO-7001", "2026-12-08T14:30:00+00:00",
                   (("reschedule", "deepa", "sara"), ("material_request", "vikram", "deepa"),
                    ("customer_order_date", "john", "john")), 1),
    # asked back, "al martes a las 8 de la mañana"; "el martes a las 7 de la mañana"; "el martes a las 6 de
    # la tarde". Approvals: reschedule supervisor, material planner, customer date manager.
    "es": Expected("WO-1043", "2026-12-15T02:30:00+00:00", "2026-12-15T12:30:00+00:00",
                   "FRG-20MNCR5", 300, "2026-12-15T01:30:00+00:00", "SO-7002", "2026-12-15T12:30:00+00:00",
                   (("reschedule", "deepa", "sara"), ("material_request", "vikram", "deepa"),
                    ("customer_order_date", "john", "neha")), 0),
    # "nach der Reparatur" = Tom's "morgen um 14 Uhr"; "morgen um 13 Uhr"; the suggested new end.
    # Approvals: reschedule and material request supervisor.
    "de": Expected("WO-1042", "2026-12-12T08:30:00+00:00", "2026-12-12T20:30:00+00:00",
                   "FRG-20MNCR5", 400, "2026-12-12T07:30:00+00:00", "SO-7001", "2026-12-12T20:30:00+00:00",
                   (("reschedule", "deepa", "sara"), ("material_request", "vikram", "sara"),
                    ("customer_order_date", "john", "john")), 0),
    # asked back, "kal shaam 6 baje se"; corrected to "kal shaam 5 baje tak"; "guruvar subah 10 baje".
    "hi": Expected("WO-1042", "2026-12-09T12:30:00+00:00", "2026-12-10T00:30:00+00:00",
                   "FRG-20MNCR5", 400, "2026-12-09T11:30:00+00:00", "SO-7001", "2026-12-10T04:30:00+00:00",
                   (("reschedule", "deepa", "sara"), ("material_request", "vikram", "deepa"),
                    ("customer_order_date", "john", "john")), 0),
}
KINDS = ("production_order_reschedule", "material_request", "customer_order_date")


def _rows(database_url: str, model: Any) -> list[Any]:
    engine = make_engine(database_url)
    try:
        with Session(engine) as session:
            return list(session.exec(select(model).order_by(model.id)))
    finally:
        engine.dispose()


def _sent(result: dict[str, Any], to: str, kind: str) -> list[dict[str, Any]]:
    return [n for n in result["notifications"] if n["to"] == to and n["kind"] == kind]


def _check_transactions(result: dict[str, Any], want: Expected) -> None:
    """The replay's ERP outbox: each kind once, posted with a reference, with the right fields."""
    txns = result["erp_transactions"]
    by_kind = {k: [t for t in txns if t["kind"] == k] for k in (*KINDS, "maintenance_request")}
    counts = {k: len(v) for k, v in by_kind.items()}
    assert counts == {**dict.fromkeys(KINDS, 1), "maintenance_request": want.maintenance_requests}, counts
    assert all(t["status"] == "posted" and t["reference"] for t in txns)
    [reschedule], [material], [promise] = (by_kind[k] for k in KINDS)
    assert {k: reschedule["fields"][k] for k in ("work_order", "start", "end")} == {
        "work_order": want.work_order, "start": want.start, "end": want.end}
    assert {k: material["fields"][k] for k in ("material", "quantity", "unit", "need_by", "action", "work_order")} == {
        "material": want.material, "quantity": want.quantity, "unit": "pcs", "need_by": want.need_by,
        "action": "expedite", "work_order": want.work_order}
    assert {k: promise["fields"][k] for k in ("customer_order", "promised", "customer_told")} == {
        "customer_order": want.customer_order, "promised": want.promised, "customer_told": True}


@pytest.mark.parametrize("language", list(EXPECTED))
def test_others_chain_lands_in_the_ledger_once(database_url: str, language: str) -> None:
    want = EXPECTED[language]
    result = replay(SCENARIOS / f"others_chain_{language}.yaml", database_url=database_url)
    _check_transactions(result, want)
    books = _rows(database_url, LedgerDocument)
    counts = {k: sum(d.kind == k for d in books) for k in (*KINDS, "maintenance_request")}
    assert counts == {**dict.fromkeys(KINDS, 1), "maintenance_request": want.maintenance_requests}, counts
    [reschedule], [material], [promise] = ([d for d in books if d.kind == k] for k in KINDS)
    assert (reschedule.fields["work_order"], reschedule.fields["start"], reschedule.fields["end"]) == \
        (want.work_order, want.start, want.end)
    assert (material.fields["material"], material.fields["quantity"], material.fields["need_by"],
            material.fields["action"], material.fields["work_order"]) == \
        (want.material, want.quantity, want.need_by, "expedite", want.work_order)
    assert (promise.fields["customer_order"], promise.fields["promised"], promise.fields["customer_told"]) == \
        (want.customer_order, want.promised, True)
    parts = _rows(database_url, ExceptionDecision)
    assert [(p.kind, p.proposed_by, p.decided_by) for p in parts] == list(want.deciders)
    assert [p.status for p in parts] == ["settled"] * 3
    # The chain told materials of the staging conflict and customer service of the late order.
    assert len(_sent(result, "vikram", "part_material_request")) == 1
    assert len(_sent(result, "john", "part_customer_order_date")) == 1


# --- the same scenarios against the fake ERPs --------------------------------------------------------

def _with_orders(name: str, state: Any) -> None:
    """The orders the scenarios touch: WO-1042/WO-1043 on HOB-01, for SO-7001/SO-7002."""
    orders = (("WO-1042", 400.0, "SO-7001", "Deccan Tractors"), ("WO-1043", 300.0, "SO-7002", "Kaveri Pumps"))
    for work_order, qty, sales_order, customer in orders:
        if name == "erpnext":
            state.put("Work Order", {"name": work_order, "status": "Not Started", "docstatus": 1,
                                     "company": "Pune Drives Pvt Ltd", "production_item": "FRG-20MNCR5", "qty": qty,
                                     "planned_start_date": "2026-12-07 06:00:00",
                                     "planned_end_date": "2026-12-07 18:00:00",
                                     "sales_order": sales_order, "operations": []})
            state.put("Sales Order", {"name": sales_order, "customer": customer, "delivery_date": "2026-12-08",
                                      "docstatus": 1})
        elif name == "odoo":
            blank = next(i for i, r in state.records["product.product"].items()
                         if r["default_code"] == "FRG-20MNCR5")
            state.add("mrp.production", name=work_order, state="confirmed", product_id=blank, product_qty=qty,
                      qty_producing=0.0, date_start="2026-12-07 00:30:00", date_finished="2026-12-07 12:30:00",
                      origin=sales_order)
            partner = state.add("res.partner", name=customer)
            state.add("sale.order", name=sales_order, partner_id=partner, state="sale",
                      commitment_date="2026-12-08 12:30:00")
        else:
            state.orders[work_order] = {**state.orders["WO-4471"], "ManufacturingOrder": work_order,
                                        "Material": "FRG-20MNCR5", "OrderIsTechnicallyCompleted": False,
                                        "_operations": [{"ManufacturingOrder": work_order,
                                                         "ManufacturingOrderOperation": "0010",
                                                         "WorkCenter": "HOB-01"}]}
            state.sales_orders.append({"SalesOrder": sales_order, "SoldToParty": "17100002",
                                       "RequestedDeliveryDate": odata_date(datetime(2026, 12, 8, tzinfo=UTC)),
                                       "_changed": state.tick()})


@pytest.fixture(params=list(SITES))
def fake_erp(request: pytest.FixtureRequest) -> Iterator[PuneErp]:
    build, make_app = SITES[request.param]
    state, holds, (user, token) = build()
    _with_orders(request.param, state)
    with serve(make_app(state)) as url:
        yield PuneErp(request.param, url + URL_QUERY[request.param], user, token, holds, state)


def _scenario_for(language: str, erp: str, directory: Path) -> Path:
    """A copy of the scenario whose plant file carries the ERP's erp: block (the ledger needs none)."""
    raw = yaml.safe_load((SCENARIOS / f"others_chain_{language}.yaml").read_text(encoding="utf-8"))
    source = (SCENARIOS / raw["plant"]).resolve()
    plant = directory / f"{source.stem}_{erp}.yaml"
    plant.write_text(source.read_text(encoding="utf-8") + yaml.safe_dump({"erp": BLOCKS[erp]}, sort_keys=False),
                     encoding="utf-8")
    raw["plant"] = plant.name
    path = directory / f"others_chain_{language}_{erp}.yaml"
    path.write_text(yaml.safe_dump(raw, sort_keys=False, allow_unicode=True), encoding="utf-8")
    return path


def _utc(text: str) -> datetime:
    return datetime.fromisoformat(text).astimezone(UTC)


def _local(text: str) -> datetime:
    return _utc(text) + PUNE  # the wall clock in Pune (tzinfo stays UTC: only its fields are read)


@pytest.mark.parametrize("language", list(EXPECTED))
def test_others_chain_lands_in_each_fake_erp_once(fake_erp: PuneErp, language: str, tmp_path: Path) -> None:
    want = EXPECTED[language]
    database_url = f"sqlite:///{tmp_path / 'replay.db'}"
    result = replay(_scenario_for(language, fake_erp.name, tmp_path), database_url=database_url,
                    settings=fake_erp.settings(database_url))
    _check_transactions(result, want)
    state = fake_erp.state
    start, end, need, promised = (_local(want.start), _local(want.end), _local(want.need_by), _local(want.promised))
    if fake_erp.name == "erpnext":
        [request] = state.docs["Material Request"].values()
        assert (request["material_request_type"], request["docstatus"]) == ("Purchase", 1)
        [item] = request["items"]
        assert (item["item_code"], item["qty"], item["schedule_date"]) == \
            (want.material, want.quantity, need.strftime("%Y-%m-%d"))
        order = state.docs["Work Order"][want.work_order]
        assert (order["planned_start_date"], order["planned_end_date"]) == \
            (start.strftime("%Y-%m-%d %H:%M:%S"), end.strftime("%Y-%m-%d %H:%M:%S"))
        assert state.docs["Sales Order"][want.customer_order]["delivery_date"] == promised.strftime("%Y-%m-%d")
    elif fake_erp.name == "odoo":
        [picking] = [p for p in state.records["stock.picking"].values()
                     if str(p.get("origin", "")).startswith("mfgos:")]
        assert (picking["state"], picking["scheduled_date"]) == \
            ("confirmed", _utc(want.need_by).strftime("%Y-%m-%d %H:%M:%S"))
        [move] = [m for m in state.records["stock.move"].values() if m["picking_id"] == picking["id"]]
        assert move["product_uom_qty"] == want.quantity
        [production] = [p for p in state.records["mrp.production"].values() if p["name"] == want.work_order]
        assert (production["date_start"], production["date_finished"]) == \
            (_utc(want.start).strftime("%Y-%m-%d %H:%M:%S"), _utc(want.end).strftime("%Y-%m-%d %H:%M:%S"))
        [sale] = [o for o in state.records["sale.order"].values() if o["name"] == want.customer_order]
        assert sale["commitment_date"] == _utc(want.promised).strftime("%Y-%m-%d %H:%M:%S")
    else:
        [requisition] = state.requisitions.values()
        [item] = requisition["to_PurchaseReqnItem"]["results"]
        assert (item["Material"], float(item["RequestedQuantity"])) == (want.material, want.quantity)
        assert item["DeliveryDate"] == odata_date(datetime(need.year, need.month, need.day, tzinfo=UTC))
        order = state.orders[want.work_order]
        assert (order["MfgOrderPlannedStartTime"], order["MfgOrderPlannedEndTime"]) == \
            (start.strftime("PT%HH%MM%SS"), end.strftime("PT%HH%MM%SS"))
        [sale] = [o for o in state.sales_orders if o["SalesOrder"] == want.customer_order]
        assert sale["RequestedDeliveryDate"] == \
            odata_date(datetime(promised.year, promised.month, promised.day, tzinfo=UTC))

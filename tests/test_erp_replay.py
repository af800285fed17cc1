"""`mfgos replay` against the fake ERPNext, Odoo and SAP gives the ledger's outcome.

Each scenario runs once on the embedded ledger and once per ERP, through the real adapter
over HTTP (the fakes are real local servers). The outcome must match: the same exceptions
and statuses, the same people notified at the same minute, the same ERP transactions (kind
and fields), each posted with the ERP's own document number, which the fake must hold.
SAP takes the non-conformance as a quality notification (SAP QM), so every ERP ends where the
ledger does.

The erp: block differs per ERP (units, warehouses or locations, plant code), so each run writes a copy of
tests/data/pune_plant.yaml with that ERP's block, and a scenario copy pointing to it. The
fakes are seeded with the Pune plant's master data (tests/erp_fakes seeds the Berlin one).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
import yaml

from mfgos.config import Settings
from mfgos.replay import replay
from tests.erp_fakes import erpnext, odoo, sap
from tests.erp_fakes.server import serve

ROOT = Path(__file__).parent
PLANT = ROOT / "data" / "pune_plant.yaml"
SCENARIOS = ("breakdown_ledger", "quality_hold")
HELD = 400.0  # WO-1050's parts, in quarantine since the quality hold

# The plant file's erp: block for each ERP (docs/erp.md, "Plant-file erp: settings").
ERP_BLOCKS: dict[str, dict[str, Any]] = {
    "erpnext": {
        "company": "Pune Drives Pvt Ltd",
        "warehouse": "Stores - PD",
        "quarantine_warehouse": "Quarantine - PD",
        "quality_procedure": "QP-Deviation",
        "operator": "HR-EMP-0001",
        "units": {"pcs": "Nos"},
        "timezone": "Asia/Kolkata",
    },
    "odoo": {
        "stock_location": "WH/Stock",
        "quarantine_location": "WH/Quarantine",
        "units": {"pcs": "Units"},
        "workcenters": {"HOB-01": "HOB-01", "GRD-02": "GRD-02"},
    },
    "sap": {
        "plant": "1010",
        "storage_location": "0001",
        "units": {"pcs": "PC"},
        "equipment": {"HOB-01": "10000101", "GRD-02": "10000102"},
        "timezone": "Asia/Kolkata",
    },
}


@dataclass
class PuneErp:
    """A fake ERP holding the Pune plant, served for one test."""

    name: str
    url: str
    user: str | None
    token: str
    holds: Callable[[str, str], bool]  # holds(kind, reference): the ERP has that document
    state: Any

    def settings(self, database_url: str) -> Settings:
        return Settings(database_url=database_url, erp=self.name, erp_url=self.url, erp_user=self.user,
                        erp_token=self.token)

    def environment(self) -> dict[str, str]:
        env = {k: v for k, v in os.environ.items() if not k.startswith("MFGOS_")}
        env.update(MFGOS_ERP=self.name, MFGOS_ERP_URL=self.url, MFGOS_ERP_TOKEN=self.token)
        if self.user:
            env["MFGOS_ERP_USER"] = self.user
        return env


def _erpnext_site() -> tuple[erpnext.ErpNextState, Callable[[str, str], bool], tuple[str | None, str]]:
    site = erpnext.ErpNextState()
    site.seed()
    site.put("Company", {"name": "Pune Drives Pvt Ltd"})
    for warehouse in ("Stores - PD", "Quarantine - PD"):
        site.put("Warehouse", {"name": warehouse})
    for name, title in (("HOB-01", "Liebherr gear hobber 1"), ("GRD-02", "Gear grinder 2")):
        site.put("Workstation", {"name": name, "workstation_name": title})
    site.put("Item", {"name": "FRG-20MNCR5", "item_code": "FRG-20MNCR5", "item_name": "Gear blank forging 20MnCr5",
                      "stock_uom": "Nos", "uoms": ["Nos"], "disabled": 0, "is_stock_item": 1})
    site.bins[("FRG-20MNCR5", "Quarantine - PD")] = HELD

    doctypes = {"maintenance_request": "Downtime Entry", "nonconformance": "Non Conformance",
                "stock_status": "Stock Entry"}

    def holds(kind: str, reference: str) -> bool:
        return reference in site.docs[doctypes[kind]]

    return site, holds, (site.api_key, site.api_secret)


def _odoo_site() -> tuple[odoo.OdooState, Callable[[str, str], bool], tuple[str | None, str]]:
    state = odoo.OdooState()
    state.seed()
    units = next(i for i, r in state.records["uom.uom"].items() if r["name"] == "Units")
    blank = state.add("product.product", default_code="FRG-20MNCR5", name="Gear blank forging 20MnCr5",
                      uom_id=units)
    state.add("maintenance.equipment", name="Liebherr gear hobber 1")
    state.add("mrp.workcenter", name="Liebherr gear hobber 1", code="HOB-01")
    state.add("mrp.workcenter", name="Gear grinder 2", code="GRD-02")
    state.add("stock.quant", product_id=blank, location_id=state.location("WH/Quarantine"), lot_id=False,
              quantity=HELD, product_uom_id=units)

    def holds(kind: str, reference: str) -> bool:
        if kind == "maintenance_request":
            model, _, record_id = reference.partition("/")
            return model == "maintenance.request" and int(record_id) in state.records[model]
        model = {"nonconformance": "quality.alert", "stock_status": ("stock.scrap", "stock.picking")}[kind]
        models = model if isinstance(model, tuple) else (model,)
        return any(r.get("name") == reference and r.get("state", "done") == "done"
                   for m in models for r in state.records[m].values())

    return state, holds, (None, state.api_key)


def _sap_system() -> tuple[sap.SapState, Callable[[str, str], bool], tuple[str | None, str]]:
    system = sap.SapState()
    system.seed()
    system.materials["FRG-20MNCR5"] = ("Gear blank forging 20MnCr5", "PC")
    system.equipment |= {"10000101", "10000102"}
    system.stock[("FRG-20MNCR5", "1010", "0001", "", "07")] = HELD
    system.orders["WO-1050"] = {  # the order the quality hold names
        **system.orders["WO-4472"],
        "ManufacturingOrder": "WO-1050",
        "Material": "FRG-20MNCR5",
        "_operations": [{"ManufacturingOrder": "WO-1050", "ManufacturingOrderOperation": "0010", "WorkCenter": "GRD-02"}],
    }

    def holds(kind: str, reference: str) -> bool:
        if kind == "maintenance_request":
            return reference in system.notifications
        if kind == "nonconformance":
            return reference in system.quality_notifications
        return reference.split("/")[0] in system.material_documents

    return system, holds, (system.user, system.password)


SITES = {"erpnext": (_erpnext_site, erpnext.make_app), "odoo": (_odoo_site, odoo.make_app),
         "sap": (_sap_system, sap.make_app)}
URL_QUERY = {"erpnext": "", "odoo": "/?db=berlin", "sap": "/?sap-client=100"}


@pytest.fixture(params=list(SITES))
def pune_erp(request: pytest.FixtureRequest) -> Iterator[PuneErp]:
    build, make_app = SITES[request.param]
    state, holds, (user, token) = build()
    with serve(make_app(state)) as url:
        yield PuneErp(request.param, url + URL_QUERY[request.param], user, token, holds, state)


def scenario_for(name: str, erp: str | None, directory: Path) -> Path:
    """A copy of the scenario whose plant file carries the ERP's erp: block (the ledger needs none)."""
    plant = directory / f"pune_plant_{erp or 'ledger'}.yaml"
    block = yaml.safe_dump({"erp": ERP_BLOCKS[erp]}, sort_keys=False) if erp else ""
    plant.write_text(PLANT.read_text(encoding="utf-8") + block, encoding="utf-8")
    raw = yaml.safe_load((ROOT / "scenarios" / f"{name}.yaml").read_text(encoding="utf-8"))
    raw["plant"] = plant.name
    path = directory / f"{name}_{erp or 'ledger'}.yaml"
    path.write_text(yaml.safe_dump(raw, sort_keys=False, allow_unicode=True), encoding="utf-8")
    return path


def outcome(result: dict[str, Any]) -> dict[str, Any]:
    """What must not depend on the ERP: everything but document numbers and the texts quoting them."""
    return {
        "exceptions": [
            {"type": e["type"], "machine": e["machine"], "work_orders": e["work_orders"], "status": e["status"],
             "timeline": [(t["elapsed_s"], t["kind"], t["person"]) for t in e["timeline"]]}
            for e in result["exceptions"]
        ],
        "notifications": [(n["elapsed_s"] // 60, n["to"], n["role"], n["kind"], n["channel"], n["status"])
                          for n in result["notifications"]],
        "erp_transactions": [(t["kind"], t["fields"], t["status"]) for t in result["erp_transactions"]],
    }


@pytest.fixture(scope="module")
def ledger_results(tmp_path_factory: pytest.TempPathFactory) -> dict[str, dict[str, Any]]:
    directory = tmp_path_factory.mktemp("ledger")
    return {name: replay(scenario_for(name, None, directory), settings=Settings(erp="ledger"))
            for name in SCENARIOS}


def test_the_ledger_posts_every_transaction(ledger_results: dict[str, dict[str, Any]]) -> None:
    for name, result in ledger_results.items():
        transactions = result["erp_transactions"]
        assert transactions and {t["status"] for t in transactions} == {"posted"}, name
        assert [e["status"] for e in result["exceptions"]] == ["closed"], name
    kinds = [t["kind"] for t in ledger_results["quality_hold"]["erp_transactions"]]
    assert kinds == ["nonconformance", "stock_status", "stock_status"]


@pytest.mark.parametrize("scenario", SCENARIOS)
def test_replay_against_the_erp_matches_the_ledger(
    scenario: str, pune_erp: PuneErp, ledger_results: dict[str, dict[str, Any]], tmp_path: Path
) -> None:
    database_url = f"sqlite:///{tmp_path / 'replay.db'}"
    result = replay(scenario_for(scenario, pune_erp.name, tmp_path), database_url=database_url,
                    settings=pune_erp.settings(database_url))
    expected = outcome(ledger_results[scenario])
    assert outcome(result) == expected
    for txn in result["erp_transactions"]:
        assert txn["reference"] and txn["error"] is None
        assert txn["posted_at"] == txn["created_at"]  # posted at once, on the replay's clock
        if txn["kind"] != "production_order_status":
            assert pune_erp.holds(txn["kind"], txn["reference"]), txn
        quoted = [n for n in result["notifications"] if n["kind"] == "erp_reference" and txn["reference"] in n["text"]]
        assert quoted, f"{txn['reference']} never reached the thread"
    ledger_references = {t["reference"] for t in ledger_results[scenario]["erp_transactions"]}
    assert not ledger_references & {t["reference"] for t in result["erp_transactions"]}
    if scenario == "breakdown_ledger" and pune_erp.name == "erpnext":
        # The document carries the replay's simulated time, not the wall clock, and the machine's
        # own times: down at the report (09:00 in Pune), running again at 09:50 (the timeline's
        # machine_state), not at the approval at 09:52.
        (downtime,) = pune_erp.state.docs["Downtime Entry"].values()
        assert (downtime["from_time"], downtime["to_time"]) == ("2026-11-25 09:00:00", "2026-11-25 09:50:00")
        assert downtime["operator"] == "HR-EMP-0001"
    if scenario == "quality_hold":
        _stock_moved_in_the_erp(pune_erp)


def _stock_moved_in_the_erp(erp: PuneErp) -> None:
    """Scrap 8 and release 392 of the 400 held: the quarantine is empty, 392 are usable again."""
    if erp.name == "erpnext":
        bins = erp.state.bins
        assert (bins[("FRG-20MNCR5", "Quarantine - PD")], bins[("FRG-20MNCR5", "Stores - PD")]) == (0, 392)
    elif erp.name == "odoo":
        quants = {erp.state.records["stock.location"][q["location_id"]]["complete_name"]: q["quantity"]
                  for q in erp.state.records["stock.quant"].values()
                  if erp.state.records["product.product"][q["product_id"]]["default_code"] == "FRG-20MNCR5"}
        assert (quants["WH/Quarantine"], quants["WH/Stock"]) == (0, 392)
    else:
        stock = erp.state.stock
        assert (stock[("FRG-20MNCR5", "1010", "0001", "", "07")], stock[("FRG-20MNCR5", "1010", "0001", "", "01")]) == (
            0,
            392,
        )


def test_the_replay_command_posts_to_erpnext(tmp_path: Path, ledger_results: dict[str, dict[str, Any]]) -> None:
    """One real `mfgos replay --json` process, configured by MFGOS_ERP* environment variables only."""
    site, holds, (user, token) = _erpnext_site()
    with serve(erpnext.make_app(site)) as url:
        erp = PuneErp("erpnext", url, user, token, holds, site)
        done = subprocess.run(
            [sys.executable, "-m", "mfgos.cli", "replay", str(scenario_for("breakdown_ledger", "erpnext", tmp_path)),
             "--json"],
            capture_output=True, text=True, timeout=180, cwd=tmp_path,
            env=erp.environment(),
        )
    assert done.returncode == 0, done.stderr
    result = json.loads(done.stdout)
    assert outcome(result) == outcome(ledger_results["breakdown_ledger"])
    (txn,) = result["erp_transactions"]
    assert txn["status"] == "posted" and txn["reference"].startswith("MFGOS-pune-1-E-0001-")
    assert holds("maintenance_request", txn["reference"])
    assert token not in done.stdout + done.stderr


def test_a_busy_erp_gets_every_transaction_by_the_end_of_the_replay(tmp_path: Path) -> None:
    """The ERP rate-limits the first post: the outbox retries on the replay's clock when the ERP's
    Retry-After says, and adopts nothing twice."""
    site, holds, (user, token) = _erpnext_site()
    site.faults.throttle, site.faults.retry_after = 1, "7"
    with serve(erpnext.make_app(site)) as url:
        erp = PuneErp("erpnext", url, user, token, holds, site)
        database_url = f"sqlite:///{tmp_path / 'replay.db'}"
        result = replay(scenario_for("quality_hold", "erpnext", tmp_path), database_url=database_url,
                        settings=erp.settings(database_url))
    transactions = result["erp_transactions"]
    assert [t["status"] for t in transactions] == ["posted"] * 3
    assert all(holds(t["kind"], t["reference"]) for t in transactions)
    assert len(site.docs["Non Conformance"]) == 1 and len(site.docs["Stock Entry"]) == 2
    first = transactions[0]
    # not at the approval, nor at the end of the replay: the 429's 7 s later
    assert datetime.fromisoformat(first["posted_at"]) - datetime.fromisoformat(first["created_at"]) == timedelta(
        seconds=7)
    assert [e["status"] for e in result["exceptions"]] == ["closed"]


def test_outbox_retries_fire_at_their_own_minute_after_the_last_event(tmp_path: Path) -> None:
    """The ERP saves the first document but its answer is lost (a 5xx): the retry comes due a few
    seconds later on the replay's clock, after the last event. The replay stops at that moment,
    adopts the saved document, posts the rest, and ends with nothing pending."""
    site, holds, (user, token) = _erpnext_site()
    site.faults.lose_after_save = 1
    with serve(erpnext.make_app(site)) as url:
        erp = PuneErp("erpnext", url, user, token, holds, site)
        database_url = f"sqlite:///{tmp_path / 'replay.db'}"
        result = replay(scenario_for("quality_hold", "erpnext", tmp_path), database_url=database_url,
                        settings=erp.settings(database_url))
    transactions = result["erp_transactions"]
    assert [t["status"] for t in transactions] == ["posted"] * 3
    assert len(site.docs["Non Conformance"]) == 1 and len(site.docs["Stock Entry"]) == 2  # adopted, not doubled
    approved = datetime.fromisoformat(transactions[0]["created_at"])
    for txn in transactions:
        # Within minutes of the approval, not at the end of the replay an hour later.
        assert datetime.fromisoformat(txn["posted_at"]) - approved < timedelta(minutes=5), txn
    assert result["pending"] == {"erp_transactions": 0, "mes_transactions": 0, "notifications": 0, "timers": 0}

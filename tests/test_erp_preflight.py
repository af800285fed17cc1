"""The plant file's `erp:` block and the preflight against the ERP (`mfgos check-erp`).

The demo plant once carried `warehouses` per area and `maintenance_team`, keys no adapter
reads, and lacked the ones ERPNext needs; nothing said so. Now `check-plant` refuses keys no
adapter reads, and `mfgos check-erp` checks every setting and reference against the ERP.
"""

from __future__ import annotations

import asyncio
import io
import logging
import os
import subprocess
import sys
from datetime import UTC
from pathlib import Path
from typing import Any

import pytest
import yaml
from fastapi import FastAPI
from fastapi.testclient import TestClient
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from mfgos.config import Settings
from mfgos.runtime import Runtime
from mfgos.server import worker_lifespan
from mfgos.sync import check_erp_command, log_erp_problems
from mfgos.web import create_app
from models.erp_settings import known_keys
from models.plant_file import check
from tests.erp_fakes import erpnext
from tests.erp_fakes.server import serve
from tests.test_erp_replay import ERP_BLOCKS, PLANT, _erpnext_site

ROOT = Path(__file__).parent.parent
DEMO_PLANT = ROOT / "mfgos" / "data" / "demo_plant.yaml"


def plant_with(tmp_path: Path, block: Any) -> Path:
    path = tmp_path / "plant.yaml"
    path.write_text(PLANT.read_text(encoding="utf-8") + yaml.safe_dump({"erp": block}), encoding="utf-8")
    return path


# --- the plant file's erp: block -----------------------------------------------------------


def test_check_plant_refuses_keys_no_adapter_reads(tmp_path: Path) -> None:
    block = {
        "company": "Pune Drives Pvt Ltd",
        "warehouses": {"gears": "WIP-GEARS"},
        "maintenance_team": "PUNE-MAINT",
        "units": "Nos",
        "scrap_from": "quarantine",
        "timezone": "Asia/Kolkatta",
        "x-note": "extensions are fine",
    }
    reasons = {p.location: p.reason for p in check(plant_with(tmp_path, block))}
    assert reasons == {
        "erp.warehouses": "unknown key 'warehouses': no ERP adapter reads it; did you mean 'warehouse'?",
        "erp.maintenance_team": (
            "unknown key 'maintenance_team': no ERP adapter reads it; did you mean 'maintenance_team_id'?"
        ),
        "erp.units": "expected a mapping of names to text, got 'Nos'",
        "erp.scrap_from": "must be one of blocked, unrestricted, got 'quarantine'",
        "erp.timezone": "unknown time zone 'Asia/Kolkatta' (an IANA name such as Europe/Berlin)",
    }
    done = subprocess.run([sys.executable, "-m", "mfgos.cli", "check-plant", str(tmp_path / "plant.yaml")],
                          capture_output=True, text=True, timeout=60, cwd=ROOT)
    assert done.returncode == 1 and "erp.warehouses: unknown key 'warehouses'" in done.stderr


def test_every_adapters_block_and_the_demo_plant_pass(tmp_path: Path) -> None:
    for block in ERP_BLOCKS.values():
        assert check(plant_with(tmp_path, block)) == []
    assert check(DEMO_PLANT) == []
    demo = yaml.safe_load(DEMO_PLANT.read_text(encoding="utf-8"))["erp"]
    assert {"company", "warehouse", "quarantine_warehouse", "quality_procedure", "operator"} <= set(demo)


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(
    block=st.dictionaries(
        st.text(max_size=20),
        st.recursive(st.none() | st.booleans() | st.integers() | st.text(max_size=10),
                     lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=5), inner, max_size=3),
                     max_leaves=6),
        max_size=6,
    )
)
def test_any_erp_block_gets_problems_never_a_crash(tmp_path: Path, block: dict[str, Any]) -> None:
    """Every key no adapter reads is named (unless it is an x- extension), whatever the block."""
    problems = check(plant_with(tmp_path, block))
    assert all(p.location.startswith("erp") or p.location == "" for p in problems)
    for key in block:
        if key not in known_keys() and not key.startswith("x-"):
            assert any(p.location == f"erp.{key}" for p in problems), key


# --- mfgos check-erp -----------------------------------------------------------------------


@pytest.fixture
def pune_erpnext() -> Any:
    site, _holds, (user, token) = _erpnext_site()
    with serve(erpnext.make_app(site)) as url:
        yield site, url, user, token


def complete(site: erpnext.ErpNextState) -> None:
    """Everything the Pune plant names: the rest of its machines and its work orders' materials."""
    for name in ("CNC-11", "HT-01", "WSH-01", "ASM-01", "TST-01", "CMP-02"):
        site.put("Workstation", {"name": name, "workstation_name": name})
    for item in ("OIL-QUENCH", "BRG-6305", "SEAL-45"):
        site.put("Item", {"name": item, "item_code": item, "item_name": item, "stock_uom": "Nos", "uoms": ["Nos"],
                          "disabled": 0, "is_stock_item": 1})


def test_check_erp_names_every_problem_then_passes(pune_erpnext: Any, tmp_path: Path) -> None:
    site, url, user, token = pune_erpnext
    block = {k: v for k, v in ERP_BLOCKS["erpnext"].items() if k != "operator"}
    block |= {"quarantine_warehouse": "Quarantine - PX", "quality_procedure": "QP-Deviaton"}
    plant = plant_with(tmp_path, block)
    env = {k: v for k, v in os.environ.items() if not k.startswith("MFGOS_")}
    env.update(MFGOS_DATABASE_URL=f"sqlite:///{tmp_path / 'store.db'}", MFGOS_PLANT_FILE=str(plant),
               MFGOS_ERP="erpnext", MFGOS_ERP_URL=url, MFGOS_ERP_USER=str(user), MFGOS_ERP_TOKEN=token)
    done = subprocess.run([sys.executable, "-m", "mfgos.cli", "check-erp"], capture_output=True, text=True,
                          timeout=120, env=env, cwd=tmp_path)
    assert done.returncode == 1, done.stderr
    lines = done.stdout.splitlines()
    assert lines[:3] == [
        "erp.quarantine_warehouse: ERPNext has no Warehouse 'Quarantine - PX': "
        "name an existing Warehouse, or create it in ERPNext",
        "erp.quality_procedure: ERPNext has no Quality Procedure 'QP-Deviaton': "
        "name an existing Quality Procedure, or create it in ERPNext",
        "erp.operator: not set: name the Employee for Downtime Entries (ERPNext requires an operator)",
    ]
    assert "erp.workstations.CNC-11: ERPNext has no Workstation 'CNC-11': map the machine to its Workstation " \
           "in erp.workstations (or to an Asset in erp.assets)" in lines
    assert "material OIL-QUENCH: ERPNext has no Item 'OIL-QUENCH': create the Item, or correct the work " \
           "order's material" in lines
    assert not any("HOB-01" in line or "FRG-20MNCR5" in line or "erp.company" in line for line in lines)
    assert f"{len(lines)} problem(s) in the erp: settings of plant pune-1" in done.stderr
    assert token not in done.stdout + done.stderr and "Traceback" not in done.stderr

    complete(site)
    settings_ = Settings(database_url=f"sqlite:///{tmp_path / 'store.db'}", plant_file=plant_with(tmp_path, {
        **ERP_BLOCKS["erpnext"], "employees": {"tom": "HR-EMP-0001"}}), erp="erpnext", erp_url=url,
        erp_user=user, erp_token=token)
    out, err = io.StringIO(), io.StringIO()
    assert check_erp_command(settings_, out=out, err=err) == 0, out.getvalue() + err.getvalue()
    assert out.getvalue() == "plant pune-1: every erp: setting and reference found in erpnext\n"

    site.faults.down = True
    out, err = io.StringIO(), io.StringIO()
    assert check_erp_command(settings_, out=out, err=err) == 1
    assert err.getvalue().startswith("mfgos check-erp: cannot check against the ERP:")


def test_check_erp_names_an_operator_the_erp_does_not_have(pune_erpnext: Any, tmp_path: Path) -> None:
    """Issue 17, done when: the quality procedure, the operator and a warehouse all set but
    missing in ERPNext are each reported (the operator as an Employee ERPNext lacks, not unset)."""
    site, url, user, token = pune_erpnext
    complete(site)
    block = {**ERP_BLOCKS["erpnext"], "operator": "HR-EMP-0404", "warehouse": "Stores - PX",
             "quality_procedure": "QP-Nope"}
    settings_ = Settings(database_url=f"sqlite:///{tmp_path / 'store.db'}", plant_file=plant_with(tmp_path, block),
                         erp="erpnext", erp_url=url, erp_user=user, erp_token=token)
    out, err = io.StringIO(), io.StringIO()
    assert check_erp_command(settings_, out=out, err=err) == 1
    assert out.getvalue().splitlines() == [
        "erp.warehouse: ERPNext has no Warehouse 'Stores - PX': name an existing Warehouse, or create it in ERPNext",
        "erp.quality_procedure: ERPNext has no Quality Procedure 'QP-Nope': "
        "name an existing Quality Procedure, or create it in ERPNext",
        "erp.operator: ERPNext has no Employee 'HR-EMP-0404': name an existing Employee, or create it in ERPNext",
    ]


def test_check_erp_on_the_ledger_has_nothing_to_check(tmp_path: Path) -> None:
    out, err = io.StringIO(), io.StringIO()
    settings_ = Settings(database_url=f"sqlite:///{tmp_path / 'store.db'}", plant_file=PLANT, erp="ledger")
    assert check_erp_command(settings_, out=out, err=err) == 0
    assert "every erp: setting and reference found in ledger" in out.getvalue()


def test_serve_logs_the_problems_at_start(
    pune_erpnext: Any, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    site, url, user, token = pune_erpnext
    block = {k: v for k, v in ERP_BLOCKS["erpnext"].items() if k != "operator"}
    runtime = Runtime(Settings(database_url=f"sqlite:///{tmp_path / 'store.db'}", plant_file=plant_with(tmp_path, block),
                               erp="erpnext", erp_url=url, erp_user=user, erp_token=token, erp_sync_interval=900))
    caplog.set_level(logging.INFO, logger="mfgos.sync")

    async def serve_until_synced() -> None:
        async with worker_lifespan(runtime, interval=0.05)(FastAPI()):
            for _ in range(200):
                if any("ERP sync" in r.getMessage() for r in caplog.records):
                    return
                await asyncio.sleep(0.05)

    asyncio.run(serve_until_synced())
    logged = [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING]
    problem = "erp.operator: not set: name the Employee for Downtime Entries (ERPNext requires an operator)"
    assert f"ERP check: {problem}" in logged
    # The console shows the same problems, from the store (every replica's console alike).
    shown = TestClient(create_app(runtime, demo=True)).get("/api/erp").json()["check"]
    assert (shown["erp"], shown["error"]) == ("erpnext", None) and problem in shown["problems"]
    # The ERP down: the last problems stay, with the reason they could not be checked again.
    site.faults.down = True
    asyncio.run(log_erp_problems(runtime))
    shown = TestClient(create_app(runtime, demo=True)).get("/api/erp").json()["check"]
    assert problem in shown["problems"] and shown["error"]


def test_check_erp_reads_the_plant_from_either_store(pune_erpnext: Any, database_url: str, tmp_path: Path) -> None:
    """The machines, units and open orders' materials come from the store, SQLite or PostgreSQL."""
    site, url, user, token = pune_erpnext
    complete(site)
    del site.docs["Item"]["SEAL-45"]  # WO-1078's material
    settings_ = Settings(database_url=database_url, plant_file=plant_with(tmp_path, ERP_BLOCKS["erpnext"]),
                         erp="erpnext", erp_url=url, erp_user=user, erp_token=token)
    out, err = io.StringIO(), io.StringIO()
    assert check_erp_command(settings_, out=out, err=err) == 1
    assert out.getvalue().splitlines() == [
        "material SEAL-45: ERPNext has no Item 'SEAL-45': create the Item, or correct the work order's material"
    ]


# --- event times in the neutral fields ------------------------------------------------------


@settings(max_examples=200, deadline=None)
@given(
    down=st.one_of(st.none(), st.text(max_size=30), st.integers(), st.datetimes(timezones=st.none() | st.just(UTC)).map(lambda d: d.isoformat())),
    up=st.one_of(st.none(), st.text(max_size=30), st.integers(), st.datetimes(timezones=st.none() | st.just(UTC)).map(lambda d: d.isoformat())),
)
def test_breakdown_times_are_checked_never_a_crash(down: Any, up: Any) -> None:
    from erp_adapters.kinds import parse_time, problems

    fields = {"machine": "HOB-01", "description": "spindle", "down_at": down, "up_at": up}
    found = problems("maintenance_request", fields)
    for name, value in (("down_at", down), ("up_at", up)):
        if value not in (None, "") and parse_time(value) is None:
            assert any(p.startswith(f"{name} must be an ISO 8601 time") for p in found)
    start, end = parse_time(down), parse_time(up)
    assert (start is not None and end is not None and end < start) == any(p.startswith("up_at (") for p in found)

"""What each ERP adapter does beyond the shared contract: its wire-protocol duties and mapping."""

from __future__ import annotations

import dataclasses
from collections.abc import AsyncIterator
from datetime import UTC, datetime

import pytest
from sqlmodel import Session

from erp_adapters import kinds
from erp_adapters.base import PlantNeeds, Rejected
from erp_adapters.erpnext import ErpNextErp, document_name
from erp_adapters.odoo import OdooErp, marker
from erp_adapters.sap_odata import SapODataErp
from erp_adapters.sync import sync_master_data
from models.tables import Area, WorkOrder
from tests.erp_fakes.contract import ErpUnderTest
from tests.erp_fakes.erpnext import ErpNextFixtures, ErpNextState
from tests.erp_fakes.odoo import OdooFixtures, OdooJsonRpcFixtures, OdooState
from tests.erp_fakes.sap import SapFixtures, SapState

pytestmark = pytest.mark.anyio



@pytest.fixture
async def adapter(erp: ErpUnderTest) -> AsyncIterator[object]:
    built = erp.make()
    yield built
    await built.aclose()


# --- ERPNext ---------------------------------------------------------------------------------


class TestErpNextMapping(ErpNextFixtures):
    async def test_hold_and_release_stop_and_resume_the_work_order_once(
        self, erp: ErpUnderTest, adapter: ErpNextErp, site: ErpNextState
    ) -> None:
        assert await adapter.post(erp.transaction("production_order_status", "k1")) == "WO-4471 Stopped"
        saves = site.faults.saves
        assert site.docs["Work Order"]["WO-4471"]["status"] == "Stopped"
        assert await adapter.post(erp.transaction("production_order_status", "k2")) == "WO-4471 Stopped"
        assert site.faults.saves == saves  # already stopped: nothing sent
        assert (
            await adapter.post(erp.transaction("production_order_status", "k3", action="release"))
            == "WO-4471 released"
        )
        assert site.docs["Work Order"]["WO-4471"]["status"] == "In Process"

    @pytest.mark.parametrize(("work_order", "status"), [("WO-4480", "Closed"), ("WO-4481", "Cancelled")])
    async def test_a_finished_work_order_is_refused_never_reported_done(
        self, erp: ErpUnderTest, adapter: ErpNextErp, site: ErpNextState, work_order: str, status: str
    ) -> None:
        """ERPNext 15.99 answered nothing wrong to a release of a Closed order, and took new dates
        on it: the adapter must say so instead of "WO-4480 released"."""
        before = dict(site.docs["Work Order"][work_order])
        for action, words in (("release", "released"), ("hold", "held")):
            txn = erp.transaction("production_order_status", f"k-{action}", work_order=work_order, action=action)
            with pytest.raises(Rejected, match=f"^ERPNext Work Order {work_order} is {status}: it cannot be {words}$"):
                await adapter.post(txn)
        move = erp.transaction("production_order_reschedule", "k-move", work_order=work_order)
        with pytest.raises(Rejected, match=f"is {status}: it cannot be rescheduled"):
            await adapter.post(move)
        assert site.docs["Work Order"][work_order] == before

    async def test_a_downtime_entry_names_the_employee_erpnext_requires(
        self, erp: ErpUnderTest, adapter: ErpNextErp, site: ErpNextState
    ) -> None:
        """Real ERPNext refuses a Downtime Entry without `operator`; the fake does too."""
        site.put("Employee", {"name": "HR-EMP-0002"})
        press = erp.transaction("maintenance_request", "k1", machine="PRESS-02", fixed_by="tom")
        entry = site.docs["Downtime Entry"][await adapter.post(press)]
        assert entry["operator"] == "HR-EMP-0001"  # erp.operator: tom has no Employee of his own
        mapped = {**erp.settings, "employees": {"tom": "HR-EMP-0002"}}
        entry = site.docs["Downtime Entry"][
            await adapter.post(dataclasses.replace(press, idempotency_key="k2", plant_settings=mapped))
        ]
        assert entry["operator"] == "HR-EMP-0002"
        nobody = {k: v for k, v in erp.settings.items() if k != "operator"}
        with pytest.raises(Rejected, match=r"erp\.operator is not set; it is needed as the Employee"):
            await adapter.post(dataclasses.replace(press, idempotency_key="k3", plant_settings=nobody))
        with pytest.raises(Rejected, match="Value missing for Downtime Entry: Operator"):
            await adapter.request(
                "POST",
                "/api/v2/document/Downtime%20Entry",
                json={"workstation": "PRESS-02", "from_time": "2026-11-25 09:00:00",
                      "to_time": "2026-11-25 09:30:00", "stop_reason": "Other"},
            )

    async def test_documents_are_dated_when_things_happened_not_when_posted(
        self, erp: ErpUnderTest, adapter: ErpNextErp, site: ErpNextState
    ) -> None:
        decided = datetime(2026, 11, 25, 8, 52, tzinfo=UTC)  # 09:52 in Berlin, erp.timezone
        block = dataclasses.replace(erp.stock_txn("block", 40, "k1"), decided_at=decided)
        entry = site.docs["Stock Entry"][await adapter.post(block)]
        assert (entry["set_posting_time"], entry["posting_date"], entry["posting_time"]) == (
            1, "2026-11-25", "09:52:00",
        )
        breakdown = erp.transaction(
            "maintenance_request", "k2", machine="PRESS-02",
            down_at="2026-11-25T08:03:00+00:00", up_at="2026-11-25T08:41:30+00:00",
        )
        downtime = site.docs["Downtime Entry"][await adapter.post(dataclasses.replace(breakdown, decided_at=decided))]
        assert (downtime["from_time"], downtime["to_time"]) == ("2026-11-25 09:03:00", "2026-11-25 09:41:30")
        reported = erp.transaction("maintenance_request", "k3", machine="PRESS-02", downtime_minutes=52)
        downtime = site.docs["Downtime Entry"][await adapter.post(dataclasses.replace(reported, decided_at=decided))]
        assert (downtime["from_time"], downtime["to_time"]) == ("2026-11-25 09:00:00", "2026-11-25 09:52:00")

    async def test_a_quality_procedure_erpnext_lacks_is_refused(
        self, erp: ErpUnderTest, adapter: ErpNextErp, site: ErpNextState
    ) -> None:
        """ERPNext saves a Non Conformance whatever its `procedure` names; the adapter checks."""
        wrong = {**erp.settings, "quality_procedure": "QP-Deviaton"}
        txn = dataclasses.replace(erp.transaction("nonconformance", "k1"), plant_settings=wrong)
        with pytest.raises(Rejected, match="ERPNext has no Quality Procedure QP-Deviaton: correct the plant file's erp.quality_procedure"):
            await adapter.post(txn)
        assert not site.docs["Non Conformance"]

    async def test_only_stock_items_are_materials(self, erp: ErpUnderTest, adapter: ErpNextErp) -> None:
        materials = {m.id for m in await adapter.read_materials(erp.settings)}
        assert materials == {"AL-6061-BAR", "HOUSING-A"}  # not CNC-MILL, the fixed asset's item

    async def test_reschedule_writes_planned_dates_in_the_site_time_zone(
        self, erp: ErpUnderTest, adapter: ErpNextErp, site: ErpNextState
    ) -> None:
        reference = await adapter.post(
            erp.transaction(
                "production_order_reschedule", "k1", start="2026-11-26T05:00:00Z", end="2026-11-26T17:00:00Z"
            )
        )
        order = site.docs["Work Order"]["WO-4472"]
        assert (order["planned_start_date"], order["planned_end_date"]) == (
            "2026-11-26 06:00:00",
            "2026-11-26 18:00:00",
        )
        assert reference == "WO-4472 planned 2026-11-26 06:00:00 to 2026-11-26 18:00:00"

    async def test_a_stock_site_refuses_a_split_and_a_move_on_a_submitted_order_in_its_words(
        self, erp: ErpUnderTest, adapter: ErpNextErp, site: ErpNextState
    ) -> None:
        """`qty` and an operation's `workstation` are not Allow on Submit in ERPNext's Work Order:
        without the site's customisation the split and the move are refusals, and nothing is created."""
        site.work_order_customised = False
        with pytest.raises(Rejected, match="Not allowed to change qty after submission"):
            await adapter.post(erp.transaction("production_order_split", "split/stock"))
        with pytest.raises(Rejected, match="Not allowed to change operations after submission"):
            await adapter.post(erp.transaction("production_order_reschedule", "move/stock", machine="CNC-07"))
        assert "WO-4472-2" not in site.docs["Work Order"]
        assert site.docs["Work Order"]["WO-4472"]["qty"] == 500.0

    async def test_breakdown_is_an_asset_repair_or_a_downtime_entry(
        self, erp: ErpUnderTest, adapter: ErpNextErp, site: ErpNextState
    ) -> None:
        repair = await adapter.post(erp.transaction("maintenance_request", "k1"))
        assert site.docs["Asset Repair"][repair]["asset"] == "AST-0007"
        assert site.docs["Asset Repair"][repair]["repair_status"] == "Pending"
        no_asset = dataclasses.replace(erp.transaction("maintenance_request", "k2", machine="PRESS-02"))
        entry = site.docs["Downtime Entry"][await adapter.post(no_asset)]
        assert entry["workstation"] == "PRESS-02" and entry["stop_reason"] == "Unplanned machine maintenance"
        assert entry["from_time"] < entry["to_time"]

    async def test_stock_entries_are_submitted_transfers_and_issues(
        self, erp: ErpUnderTest, adapter: ErpNextErp, site: ErpNextState
    ) -> None:
        block = site.docs["Stock Entry"][await adapter.post(erp.stock_txn("block", 40, "k1"))]
        assert block["docstatus"] == 1 and block["stock_entry_type"] == "Material Transfer"
        expected = {"s_warehouse": "Stores - BG", "t_warehouse": "Quarantine - BG", "uom": "Nos", "qty": 40}
        assert expected.items() <= block["items"][0].items()
        scrap = site.docs["Stock Entry"][await adapter.post(erp.stock_txn("scrap", 5, "k2"))]
        assert (
            scrap["stock_entry_type"] == "Material Issue"
            and scrap["items"][0]["s_warehouse"] == "Quarantine - BG"
        )
        assert site.bins[("AL-6061-BAR", "Quarantine - BG")] == 35

    async def test_a_draft_left_under_our_name_is_refused_not_adopted(
        self, erp: ErpUnderTest, adapter: ErpNextErp, site: ErpNextState
    ) -> None:
        site.put("Stock Entry", {"name": document_name("k1"), "docstatus": 0})
        with pytest.raises(Rejected, match="already exists in ERPNext as a draft"):
            await adapter.post(erp.stock_txn("block", 40, "k1"))
        assert await adapter.lookup(erp.stock_txn("block", 40, "k1")) is None

    async def test_nonconformance_links_the_quality_procedure(
        self, erp: ErpUnderTest, adapter: ErpNextErp, site: ErpNextState
    ) -> None:
        record = site.docs["Non Conformance"][await adapter.post(erp.transaction("nonconformance", "k1"))]
        assert record["procedure"] == "QP-Deviation" and record["status"] == "Open"
        assert record["subject"] == "E-0001 quality: burrs on the bar ends"
        assert "disposition: scrap 5, release the rest" in record["details"]

    async def test_sync_picks_up_what_changed_since_the_watermark(
        self, erp: ErpUnderTest, adapter: ErpNextErp, site: ErpNextState
    ) -> None:
        site.put(
            "Work Order",
            {
                "name": "WO-4490",
                "status": "Draft",
                "company": "Berlin GmbH",
                "production_item": "HOUSING-A",
                "qty": 10.0,
                "operations": [],
            },
        )
        steps: list[tuple[str, int, int]] = []
        first = await sync_master_data(
            erp.engine, adapter, "berlin-1", lambda what, done, total: steps.append((what, done, total))
        )
        assert first.counts["work_orders"].skipped == 1
        assert first.warnings == [
            "work_orders: WO-4490 has no machine in the ERP and none in the store; skipped"
        ]
        assert [s for s in steps if s[0] == "machines"] == [
            ("machines", 0, 0),
            ("machines", 0, 2),
            ("machines", 2, 2),
        ]
        await adapter.post(erp.transaction("production_order_status", "k1"))  # WO-4471 is stopped in ERPNext
        again = await sync_master_data(erp.engine, adapter, "berlin-1", since=first.watermark)
        # The stopped order, and the one at the watermark itself (">=": read again, harmless).
        assert (again.counts["work_orders"].read, again.counts["work_orders"].updated) == (2, 1)
        assert (
            again.watermark is not None and first.watermark is not None and again.watermark > first.watermark
        )
        with Session(erp.engine) as session:
            order = session.get(WorkOrder, ("berlin-1", "WO-4471"))
            assert order is not None and order.status == "held"
            assert session.get(Area, ("berlin-1", "erp")) is not None  # machines new to the store get an area

    def test_document_names_are_deterministic_and_distinct(self) -> None:
        assert document_name("E-0001/1") == document_name("E-0001/1")
        assert document_name("E-0001/1") != document_name("E-0001-1")
        assert document_name("E-0001/1").startswith("MFGOS-E-0001-1-")


# --- Odoo ------------------------------------------------------------------------------------


class TestOdooMapping(OdooFixtures):
    async def test_mark_done_answers_with_the_backorder_wizard_which_is_skipped(
        self, erp: ErpUnderTest, adapter: OdooErp, odoo: OdooState
    ) -> None:
        assert (
            await adapter.post(erp.transaction("production_order_status", "k1", action="complete"))
            == "WO-4471 done"
        )
        assert odoo.wizards == ["mrp.production.backorder"]
        assert [p["state"] for p in odoo.records["mrp.production"].values() if p["name"] == "WO-4471"] == [
            "done"
        ]

    async def test_validate_answers_with_a_wizard_we_know_and_one_we_do_not(
        self, erp: ErpUnderTest, adapter: OdooErp, odoo: OdooState
    ) -> None:
        odoo.ask_sms = True
        assert (await adapter.post(erp.stock_txn("block", 40, "k1"))).startswith("WH/INT/")
        assert odoo.wizards == ["confirm.stock.sms"]

    async def test_hold_pauses_the_running_work_orders(
        self, erp: ErpUnderTest, adapter: OdooErp, odoo: OdooState
    ) -> None:
        assert (
            await adapter.post(erp.transaction("production_order_status", "k1", action="hold"))
            == "WO-4471 held"
        )
        assert [w["working"] for w in odoo.records["mrp.workorder"].values() if w["state"] == "progress"] == [
            False
        ]

    async def test_scrap_beyond_stock_is_refused_and_leaves_no_draft(
        self, erp: ErpUnderTest, adapter: OdooErp, odoo: OdooState
    ) -> None:
        with pytest.raises(Rejected, match="Odoo has not enough AL-6061-BAR to scrap 10 pcs"):
            await adapter.post(erp.stock_txn("scrap", 10, "k1"))
        assert odoo.with_marker("k1") == [] and odoo.wizards == ["stock.warn.insufficient.qty.scrap"]

    async def test_a_refused_transfer_is_cancelled_and_a_corrected_retry_starts_clean(
        self, erp: ErpUnderTest, adapter: OdooErp, odoo: OdooState
    ) -> None:
        with pytest.raises(Rejected, match="cannot reserve 4000 pcs of AL-6061-BAR in WH/Stock"):
            await adapter.post(erp.stock_txn("block", 4000, "k1"))
        assert [r["state"] for _, r in odoo.with_marker("k1")] == ["cancel"]
        assert await adapter.lookup(erp.stock_txn("block", 40, "k1")) is None
        reference = await adapter.post(erp.stock_txn("block", 40, "k1"))
        assert sorted(r["state"] for _, r in odoo.with_marker("k1")) == ["cancel", "done"]
        assert await adapter.lookup(erp.stock_txn("block", 40, "k1")) == reference

    async def test_a_transfer_with_nothing_reserved_is_refused_and_cancelled(
        self, erp: ErpUnderTest, adapter: OdooErp, odoo: OdooState
    ) -> None:
        # Nothing is in quarantine: Odoo reserves none, and button_validate refuses a zero transfer.
        with pytest.raises(
            Rejected, match="refused to validate the transfer of 5 pcs of AL-6061-BAR from WH/Quarantine: .*no quantities"
        ):
            await adapter.post(erp.stock_txn("release", 5, "k1"))
        assert [r["state"] for _, r in odoo.with_marker("k1")] == ["cancel"]
        assert odoo.wizards == []

    async def test_without_the_backorder_question_a_part_is_refused_before_validating(
        self, erp: ErpUnderTest, adapter: OdooErp, odoo: OdooState
    ) -> None:
        [picking_type] = odoo.records["stock.picking.type"].values()
        picking_type["create_backorder"] = "never"  # Odoo would validate the part it has, silently
        with pytest.raises(Rejected, match="cannot reserve 4000 pcs of AL-6061-BAR in WH/Stock"):
            await adapter.post(erp.stock_txn("block", 4000, "k1"))
        assert ("stock.picking", "button_validate") not in odoo.calls
        assert [r["state"] for _, r in odoo.with_marker("k1")] == ["cancel"]
        [quant] = [q for q in odoo.records["stock.quant"].values() if q["quantity"] == 1000.0]
        assert quant.get("reserved", 0.0) == 0.0  # the cancel gave the reservation back

    async def test_downtime_is_recorded_once_against_the_work_center(
        self, erp: ErpUnderTest, adapter: OdooErp, odoo: OdooState
    ) -> None:
        first = await adapter.post(erp.transaction("maintenance_request", "k1"))
        assert await adapter.post(erp.transaction("maintenance_request", "k1")) == first
        [downtime] = odoo.with_marker("k1", models=("mrp.workcenter.productivity",))
        record = downtime[1]
        assert odoo.records["mrp.workcenter"][record["workcenter_id"]]["code"] == "CNC-07"
        assert record["date_start"] < record["date_end"]
        request = odoo.records["maintenance.request"][int(first.rsplit("/", 1)[1])]
        assert (request["priority"], request["maintenance_type"]) == ("2", "corrective")
        assert odoo.records["maintenance.equipment"][request["equipment_id"]]["name"] == "CNC mill 7"

    async def test_transfers_and_downtime_carry_the_time_things_happened(
        self, erp: ErpUnderTest, adapter: OdooErp, odoo: OdooState
    ) -> None:
        decided = datetime(2026, 11, 25, 8, 52, tzinfo=UTC)
        await adapter.post(dataclasses.replace(erp.stock_txn("block", 40, "k1"), decided_at=decided))
        [(_, picking)] = odoo.with_marker("k1")
        assert picking["scheduled_date"] == "2026-11-25 08:52:00"
        breakdown = erp.transaction(
            "maintenance_request", "k2", down_at="2026-11-25T08:03:00+00:00", up_at="2026-11-25T08:41:30+00:00"
        )
        await adapter.post(dataclasses.replace(breakdown, decided_at=decided))
        [(_, downtime)] = odoo.with_marker("k2", models=("mrp.workcenter.productivity",))
        assert (downtime["date_start"], downtime["date_end"]) == ("2026-11-25 08:03:00", "2026-11-25 08:41:30")

    async def test_the_preflight_names_work_centers_equipment_locations_and_units(
        self, erp: ErpUnderTest, adapter: OdooErp
    ) -> None:
        wrong = {
            **erp.settings,
            "quarantine_location": "WH/Quarantaine",
            "workcenters": {"CNC-07": "CNC-7"},
            "equipment": {"CNC-07": "CNC mil 7"},
            "units": {"pcs": "Pieces"},
        }
        found = [str(p) for p in await adapter.check(wrong, PlantNeeds(machines=("CNC-07",), units=("pcs",)))]
        assert found == [
            "erp.quarantine_location: Odoo has no location WH/Quarantaine (erp.quarantine_location): "
            "give the location's full name, e.g. WH/Stock",
            "erp.workcenters.CNC-07: Odoo has no work center CNC-7: map the machine to its work center's code or name",
            "erp.equipment.CNC-07: Odoo has no equipment CNC mil 7: "
            "name the machine's maintenance equipment as Odoo shows it",
            "erp.units.pcs: Odoo has no unit of measure Pieces (map it with erp.units): "
            "map the plant's unit 'pcs' to an Odoo unit of measure",
        ]

    async def test_without_the_quality_app_a_nonconformance_is_refused_clearly(
        self, erp: ErpUnderTest, adapter: OdooErp, odoo: OdooState
    ) -> None:
        odoo.enterprise = False
        with pytest.raises(
            Rejected,
            match=r"Odoo cannot record a non-conformance in quality.alert \(the Quality app is Odoo Enterprise\)",
        ):
            await adapter.post(erp.transaction("nonconformance", "k1"))
        assert await adapter.lookup(erp.transaction("nonconformance", "k1")) is None

    async def test_every_record_carries_the_key_marker(
        self, erp: ErpUnderTest, adapter: OdooErp, odoo: OdooState
    ) -> None:
        picking = await adapter.post(erp.stock_txn("block", 40, "E-0042/3"))
        assert [r["name"] for _, r in odoo.with_marker("E-0042/3")] == [picking]
        assert marker("E-0042/3") == "mfgos:E-0042/3"


class TestOdoo16Mapping(OdooJsonRpcFixtures):
    version = "16.0"

    async def test_odoo_16_sets_quantity_done_and_planned_date_fields(
        self, erp: ErpUnderTest, adapter: OdooErp, odoo: OdooState
    ) -> None:
        await adapter.post(erp.stock_txn("block", 40, "k1"))
        [move] = odoo.records["stock.move"].values()
        assert (move["quantity_done"], move["picked"], move["state"]) == (40, False, "done")
        await adapter.post(erp.transaction("production_order_reschedule", "k2"))
        [order] = [p for p in odoo.records["mrp.production"].values() if p["name"] == "WO-4472"]
        assert (order["date_planned_start"], order["date_planned_finished"]) == (
            "2026-11-26 05:00:00",
            "2026-11-26 17:00:00",
        )

    async def test_a_refused_login_is_auth_failed(self, erp: ErpUnderTest) -> None:
        from erp_adapters.base import AuthFailed

        refused = erp.make(user="somebody-else")
        try:
            with pytest.raises(AuthFailed, match="login or API key was refused"):
                await refused.lookup(erp.transaction("maintenance_request", "k1"))
        finally:
            await refused.aclose()


# --- SAP -------------------------------------------------------------------------------------


class TestSapProtocol(SapFixtures):
    async def test_a_stale_csrf_token_is_fetched_again_once(
        self, erp: ErpUnderTest, adapter: SapODataErp, sap: SapState
    ) -> None:
        await adapter.post(erp.transaction("maintenance_request", "k1"))
        assert sap.csrf_fetches == 1
        await adapter.post(erp.transaction("maintenance_request", "k2"))
        assert sap.csrf_fetches == 1  # the token is reused while it is valid
        sap.sessions.clear()  # the session expired on the SAP side
        await adapter.post(erp.transaction("maintenance_request", "k3"))
        assert sap.csrf_fetches == 2
        assert erp.count("k3") == 1

    async def test_an_etag_mismatch_reads_the_order_again_and_retries(
        self, erp: ErpUnderTest, adapter: SapODataErp, sap: SapState
    ) -> None:
        sap.bump_etag_on_read = 1
        reference = await adapter.post(erp.transaction("production_order_reschedule", "k1"))
        assert reference == "WO-4472 planned 2026-11-26 06:00 to 2026-11-26 18:00"
        assert sap.calls.count("PATCH API_PRODUCTION_ORDER_2_SRV/A_ProductionOrder_2") == 2
        order = sap.orders["WO-4472"]
        assert (order["MfgOrderPlannedStartTime"], order["MfgOrderPlannedEndTime"]) == (
            "PT06H00M00S",
            "PT18H00M00S",
        )
        assert await adapter.post(erp.transaction("production_order_reschedule", "k2")) == reference
        assert sap.calls.count("PATCH API_PRODUCTION_ORDER_2_SRV/A_ProductionOrder_2") == 2  # already so

    async def test_movement_types_follow_the_action(
        self, erp: ErpUnderTest, adapter: SapODataErp, sap: SapState
    ) -> None:
        for number, (action, quantity) in enumerate((("block", 20), ("release", 10), ("scrap", 10)), 1):
            await adapter.post(erp.stock_txn(action, quantity, f"k{number}"))
        documents = list(sap.material_documents.values())
        items = [d["to_MaterialDocumentItem"]["results"][0] for d in documents]
        assert [
            (d["GoodsMovementCode"], i["GoodsMovementType"]) for d, i in zip(documents, items, strict=True)
        ] == [
            ("04", "344"),
            ("04", "343"),
            ("03", "555"),
        ]
        assert {i["EntryUnit"] for i in items} == {"PC"}

    async def test_release_of_a_released_order_sends_nothing(
        self, erp: ErpUnderTest, adapter: SapODataErp, sap: SapState
    ) -> None:
        assert (
            await adapter.post(erp.transaction("production_order_status", "k1", action="release"))
            == "WO-4471 ReleaseOrder"
        )
        assert not [c for c in sap.calls if c.startswith("POST") and "ReleaseOrder" in c]

    async def test_a_nonconformance_is_an_internal_quality_notification(
        self, erp: ErpUnderTest, adapter: SapODataErp, sap: SapState
    ) -> None:
        number = await adapter.post(erp.transaction("nonconformance", "k1"))
        notification = sap.quality_notifications[number]
        assert (notification["NotificationType"], notification["Plant"]) == ("Q3", "1010")
        assert (notification["Material"], notification["ManufacturingOrder"]) == ("AL-6061-BAR", "WO-4471")
        assert notification["NotificationText"] == "E-0001 quality: burrs on the bar ends"
        assert "disposition: scrap 5, release the rest" in notification["NotificationLongText"]
        assert notification["QltyNotifExtReferenceNumber"] == "k1"
        assert not sap.notifications  # SAP QM, not a maintenance notification

    async def test_a_hold_goes_to_sap_qm_on_the_order_once(
        self, erp: ErpUnderTest, adapter: SapODataErp, sap: SapState
    ) -> None:
        hold = erp.transaction("production_order_status", "k1", action="hold", reason="spindle failure")
        number = await adapter.post(hold)
        notification = sap.quality_notifications[number]
        assert notification["ManufacturingOrder"] == "WO-4471" and notification["Material"] == "HOUSING-A"
        assert notification["NotificationText"] == "WO-4471 hold: spindle failure"
        assert await adapter.post(hold) == number and await adapter.lookup(hold) == number
        assert len(sap.quality_notifications) == 1
        with pytest.raises(Rejected, match="SAP has no production order WO-9999"):
            await adapter.post(erp.transaction("production_order_status", "k2", action="hold", work_order="WO-9999"))

    async def test_a_hold_function_the_system_lacks_is_refused_in_sap_words(
        self, erp: ErpUnderTest, adapter: SapODataErp
    ) -> None:
        hold = erp.transaction("production_order_status", "k1", action="hold")
        hold = dataclasses.replace(hold, plant_settings={**erp.settings, "order_functions": {"hold": "LockOrder"}})
        with pytest.raises(Rejected, match=r"Function import LockOrder not found"):
            await adapter.post(hold)

    async def test_quality_notification_names_follow_the_plant_file(
        self, erp: ErpUnderTest, adapter: SapODataErp
    ) -> None:
        """The property names are unverified; a plant corrects one in erp.quality_notification_fields,
        and SAP's refusal of a name it does not know reaches the thread in its words."""
        renamed = {**erp.settings, "quality_notification_fields": {"reference": "ExternalReference"}}
        txn = dataclasses.replace(erp.transaction("nonconformance", "k1"), plant_settings=renamed)
        with pytest.raises(Rejected, match=r"Property 'ExternalReference' is invalid .*\(/IWBEP/CM_MGW_RT/021\)"):
            await adapter.post(txn)

    async def test_postings_are_dated_the_day_of_the_decision(
        self, erp: ErpUnderTest, adapter: SapODataErp, sap: SapState
    ) -> None:
        decided = datetime(2026, 11, 24, 23, 30, tzinfo=UTC)  # already the 25th in Berlin (erp.timezone)
        number = await adapter.post(dataclasses.replace(erp.stock_txn("block", 1, "k1"), decided_at=decided))
        document = sap.material_documents[number.split("/")[0]]
        the_25th = f"/Date({int(datetime(2026, 11, 25, tzinfo=UTC).timestamp() * 1000)})/"
        assert (document["PostingDate"], document["DocumentDate"]) == (the_25th, the_25th)
        breakdown = erp.transaction("maintenance_request", "k2", down_at="2026-11-25T08:03:00+00:00")
        notification = sap.notifications[await adapter.post(dataclasses.replace(breakdown, decided_at=decided))]
        assert (notification["MalfunctionStartDate"], notification["MalfunctionStartTime"]) == (the_25th, "PT09H03M00S")

    async def test_long_keys_fit_sap_reference_fields(
        self, erp: ErpUnderTest, adapter: SapODataErp, sap: SapState
    ) -> None:
        key = "plant-berlin-1/exception-E-0042/transaction-3"
        notification = await adapter.post(erp.transaction("maintenance_request", key))
        document = await adapter.post(erp.stock_txn("block", 1, key + "/stock"))
        assert sap.notifications[notification]["MaintNotifExtReferenceNumber"] == kinds.short_reference(
            key, 20
        )
        assert len(kinds.short_reference(key, 20)) == 20
        assert await adapter.lookup(erp.transaction("maintenance_request", key)) == notification
        assert await adapter.lookup(erp.stock_txn("block", 1, key + "/stock")) == document

    async def test_routing_shaped_keys_and_urgency_words_map_cleanly(
        self, erp: ErpUnderTest, adapter: SapODataErp, sap: SapState
    ) -> None:
        key = "berlin-1:E-0001:A3:1"  # the shape routing gives its idempotency keys
        notification = await adapter.post(erp.transaction("maintenance_request", key, priority="urgent"))
        assert sap.notifications[notification]["MaintNotifExtReferenceNumber"] == key
        assert sap.notifications[notification]["MaintPriority"] == "1"
        normal = await adapter.post(erp.transaction("maintenance_request", "k2", priority="normal"))
        assert sap.notifications[normal]["MaintPriority"] == "3"

    async def test_sap_error_details_reach_the_thread(self, erp: ErpUnderTest, adapter: SapODataErp) -> None:
        with pytest.raises(Rejected, match=r"^Equipment PRESS-02 does not exist \(IM/101\)$"):
            await adapter.post(erp.transaction("maintenance_request", "k1", machine="PRESS-02"))

"""The behaviour every ERP adapter shows, run against each one (fsspec style).

An adapter joins with one line in tests/test_erp_contract.py:
`class TestOdoo(ErpContract, OdooFixtures): pass`, where the fixtures class provides an `erp`
fixture returning an `ErpUnderTest` (the adapter factory, its fake ERP and sample data).
"""

from __future__ import annotations

import dataclasses
import logging
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from email.utils import format_datetime
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from sqlalchemy.engine import Engine
from sqlmodel import Session, select

from erp_adapters.base import AuthFailed, ErpAdapter, PlantNeeds, Rejected, Transaction, Unavailable
from erp_adapters.outbox import ErpOutbox
from erp_adapters.sync import sync_master_data
from models.tables import CustomerOrder, Machine, Material, WorkOrder
from tests.erp_fakes.db import T0, queue, row, seed_exception
from tests.erp_fakes.server import Faults

DOCUMENT_KINDS = ("maintenance_request", "stock_status", "nonconformance", "material_request")


@dataclasses.dataclass
class ErpUnderTest:
    name: str  # the registry name
    make: Callable[..., ErpAdapter]  # make(**overrides) builds a fresh adapter against the fake
    settings: dict[str, Any]  # the plant file's erp: block for the fake
    engine: Engine  # a migrated store with plant "berlin-1" carrying `settings`
    count: Callable[[str], int]  # how many documents in the ERP carry this idempotency key
    samples: dict[str, dict[str, Any]]  # kind -> valid neutral fields for the fake's master data
    refused: tuple[str, dict[str, Any], str]  # a transaction the ERP itself refuses, and words of its answer
    required_setting: tuple[str, str] | None  # (kind, erp: key) the mapping cannot do without
    bad_credentials: dict[str, Any] = dataclasses.field(default_factory=dict)
    secrets: tuple[str, ...] = ()  # must never reach a log line
    faults: Faults | None = None  # None: not over HTTP (the ledger)
    stock: bool = True  # reads stock, so block/release/scrap can be checked in the ERP
    master_data: bool = True  # reads machines, materials and orders
    material: str = "AL-6061-BAR"
    stock_unit: str = "pcs"
    work_order: str = "WO-4471"
    customer: str = "ACME Pumps"  # SAP's sales order names the sold-to party by number
    finished_work_order: str | None = "WO-4480"  # closed, cancelled or technically completed; None: no orders

    def transaction(self, kind: str, key: str, **changes: Any) -> Transaction:
        fields = {**self.samples[kind], **changes}
        return Transaction(kind, fields, key, exception_code="E-0001", plant_settings=self.settings)

    def stock_txn(self, action: str, quantity: float, key: str) -> Transaction:
        return self.transaction("stock_status", key, action=action, quantity=quantity)


class Clock:
    def __init__(self) -> None:
        self.at = T0

    def __call__(self) -> datetime:
        return self.at


def over_http(erp: ErpUnderTest) -> Faults:
    if erp.faults is None:
        pytest.skip(f"{erp.name} is not reached over HTTP")
    return erp.faults


async def warm(adapter: ErpAdapter, txn: Transaction) -> None:
    """A read before the timed part: on a loaded machine the fake's first answer can take longer
    than the adapter's 0.5 s timeout, which would turn the fault under test into a plain timeout."""
    for _ in range(5):
        try:
            assert await adapter.lookup(txn) is None
            return
        except Unavailable:
            continue


async def blocked(adapter: ErpAdapter, erp: ErpUnderTest) -> float:
    return sum(line.quantity for line in await adapter.read_stock(erp.settings, erp.material) if line.blocked)


class ErpContract:
    """Every test gets a fresh fake ERP through the `erp` fixture of the joining class."""

    pytestmark = pytest.mark.anyio

    @pytest.fixture
    def anyio_backend(self) -> str:
        return "asyncio"

    async def test_posts_every_kind_and_finds_documents_by_key(self, erp: ErpUnderTest) -> None:
        adapter = erp.make()
        try:
            for number, kind in enumerate(erp.samples, 1):
                key = f"E-0001/{number}"
                reference = await adapter.post(erp.transaction(kind, key))
                assert isinstance(reference, str) and reference, kind
                if kind in DOCUMENT_KINDS:
                    assert erp.count(key) == 1, kind
                    assert await adapter.lookup(erp.transaction(kind, key)) == reference, kind
                else:
                    assert await adapter.lookup(erp.transaction(kind, key)) in (None, reference), kind
            assert await adapter.lookup(erp.transaction("maintenance_request", "E-9999/1")) is None
        finally:
            await adapter.aclose()

    async def test_lookup_never_adopts_a_document_of_another_kind(self, erp: ErpUnderTest) -> None:
        """A key names one transaction: under it, a breakdown's document is no non-conformance
        and no stock movement (issue 17: the quality replay was adopted onto a Downtime Entry)."""
        adapter = erp.make()
        try:
            reference = await adapter.post(erp.transaction("maintenance_request", "one-key/1"))
            for kind in ("nonconformance", "stock_status"):
                assert await adapter.lookup(erp.transaction(kind, "one-key/1")) is None, kind
            assert await adapter.lookup(erp.transaction("maintenance_request", "one-key/1")) == reference
        finally:
            await adapter.aclose()

    async def test_the_preflight_finds_what_the_fake_holds_and_names_what_is_wrong(
        self, erp: ErpUnderTest
    ) -> None:
        needs = PlantNeeds(machines=("CNC-07",), units=(erp.stock_unit,), materials=(erp.material,))
        adapter = erp.make()
        try:
            assert [str(p) for p in await adapter.check(erp.settings, needs)] == []
            if erp.required_setting is None:
                return  # needs no settings: nothing can be missing
            _kind, setting = erp.required_setting
            missing = {k: v for k, v in erp.settings.items() if k != setting}
            unknown = PlantNeeds(materials=("NO-SUCH-MATERIAL",))
            found = [str(p) for p in await adapter.check(missing, unknown)]
        finally:
            await adapter.aclose()
        assert any(line.startswith(f"erp.{setting}: ") for line in found), found
        assert any(line.startswith("material NO-SUCH-MATERIAL: ") for line in found), found
        assert all(line.count(": ") >= 2 for line in found), found  # where: what is wrong: how to fix it

    async def test_a_finished_order_is_refused_never_reported_done(self, erp: ErpUnderTest) -> None:
        """Releasing, holding or rescheduling a closed or cancelled order changes nothing in any
        ERP (ERPNext 15.99 answered "WO-1042 released" and left it Closed): a rejection."""
        if erp.finished_work_order is None:
            pytest.skip(f"{erp.name} keeps no production orders")
        order = erp.finished_work_order
        adapter = erp.make()
        try:
            for number, (kind, fields) in enumerate(
                (
                    ("production_order_status", {"action": "release"}),
                    ("production_order_status", {"action": "hold"}),
                    ("production_order_reschedule", {}),
                ),
                1,
            ):
                with pytest.raises(Rejected, match=rf"{order} is \w.*: it cannot be "):
                    await adapter.post(erp.transaction(kind, f"finished/{number}", work_order=order, **fields))
        finally:
            await adapter.aclose()

    async def test_a_customer_order_date_lands_in_the_erp_once_and_stays_idempotent(self, erp: ErpUnderTest) -> None:
        """Customer service's decision (issue 16): the order's promised date in the ERP, read back by
        the same adapter's master-data reader; posting it again changes nothing and answers the same."""
        if not erp.master_data:
            pytest.skip(f"{erp.name} keeps no customer orders")
        fields = erp.samples["customer_order_date"]
        adapter = erp.make()
        try:
            first = await adapter.post(erp.transaction("customer_order_date", "date/1"))
            again = await adapter.post(erp.transaction("customer_order_date", "date/1"))
            orders = {o.id: o for o in await adapter.read_customer_orders(erp.settings)}
        finally:
            await adapter.aclose()
        assert first == again
        zone = ZoneInfo(erp.settings.get("timezone") or "UTC")
        promised = datetime.fromisoformat(fields["promised"]).astimezone(zone).date()
        due = orders[fields["customer_order"]].due
        assert due is not None and due.astimezone(zone).date() == promised

    async def test_a_split_lands_once_and_the_erp_reads_both_orders_back(self, erp: ErpUnderTest) -> None:
        """The planner's split (issue 16): the original order keeps its part with new dates, a second
        order makes the rest on the other machine; posted again, nothing changes and the answer is
        the same; the look-up finds it done (the second order exists, on its machine)."""
        fields = erp.samples["production_order_split"]
        adapter = erp.make()
        try:
            first = await adapter.post(erp.transaction("production_order_split", "split/1"))
            again = await adapter.post(erp.transaction("production_order_split", "split/1"))
            found = await adapter.lookup(erp.transaction("production_order_split", "split/1"))
            orders = await adapter.read_work_orders(erp.settings) if erp.master_data else []
        finally:
            await adapter.aclose()
        assert first == again and found in (first, fields["new_order"])
        if not erp.master_data:
            assert erp.count("split/1") == 1
            return
        named = [o for o in orders if o.id in (fields["work_order"], fields["new_order"])]
        assert sorted(o.id for o in named) == sorted((fields["work_order"], fields["new_order"])), "one new order"
        kept, second = (next(o for o in named if o.id == name) for name in (fields["work_order"], fields["new_order"]))
        assert (kept.quantity, second.quantity) == (fields["quantity"], fields["split_quantity"])
        assert second.machine == fields["split_machine"] and kept.machine != fields["split_machine"]
        assert kept.start == datetime.fromisoformat(fields["start"])
        assert second.start == datetime.fromisoformat(fields["split_start"])

    async def test_a_move_changes_the_orders_machine_in_the_erp(self, erp: ErpUnderTest) -> None:
        """A reschedule with `machine` moves the order's operations there, not only its dates."""
        if not erp.master_data:
            pytest.skip(f"{erp.name} keeps no production orders")
        adapter = erp.make()
        try:
            await adapter.post(erp.transaction("production_order_reschedule", "move/1", machine="CNC-07"))
            await adapter.post(erp.transaction("production_order_reschedule", "move/1", machine="CNC-07"))
            orders = {o.id: o for o in await adapter.read_work_orders(erp.settings)}
        finally:
            await adapter.aclose()
        moved = orders[erp.samples["production_order_reschedule"]["work_order"]]
        assert moved.machine == "CNC-07"
        assert moved.start == datetime.fromisoformat(erp.samples["production_order_reschedule"]["start"])

    async def test_the_same_key_twice_is_one_document(self, erp: ErpUnderTest) -> None:
        adapter = erp.make()
        try:
            for kind in (k for k in DOCUMENT_KINDS if k in erp.samples):
                first = await adapter.post(erp.transaction(kind, f"twice/{kind}"))
                again = await adapter.post(erp.transaction(kind, f"twice/{kind}"))
                assert first == again, kind
                assert erp.count(f"twice/{kind}") == 1, kind
            if erp.stock:
                assert await blocked(adapter, erp) == erp.samples["stock_status"]["quantity"]
        finally:
            await adapter.aclose()

    async def test_block_release_and_scrap_move_stock_in_the_erp(self, erp: ErpUnderTest) -> None:
        if not erp.stock:
            pytest.skip(f"{erp.name} keeps no stock")
        adapter = erp.make()
        try:
            assert await blocked(adapter, erp) == 0
            await adapter.post(erp.stock_txn("block", 40, "stock/1"))
            assert await blocked(adapter, erp) == 40
            await adapter.post(erp.stock_txn("release", 10, "stock/2"))
            assert await blocked(adapter, erp) == 30
            await adapter.post(erp.stock_txn("scrap", 5, "stock/3"))
            assert await blocked(adapter, erp) == 25
            usable = [
                line for line in await adapter.read_stock(erp.settings, erp.material) if not line.blocked
            ]
            assert sum(line.quantity for line in usable) == 1000 - 40 + 10
        finally:
            await adapter.aclose()

    async def test_the_stock_of_many_materials_is_one_read_per_material_and_place(self, erp: ErpUnderTest) -> None:
        """The stock watch's read (issue 12): a list of materials in as few requests as one, usable
        and blocked stock per place, nothing for a material without stock or unknown to the ERP."""
        if not erp.stock:
            pytest.skip(f"{erp.name} keeps no stock")
        wanted = [erp.material, "HOUSING-A", "NO-SUCH-MATERIAL"]
        adapter = erp.make()
        try:
            await adapter.post(erp.stock_txn("block", 40, "watch/1"))
            await adapter.read_stocks(erp.settings, [erp.material])  # a log-in or token fetched before counting
            before = erp.faults.requests if erp.faults else 0
            one = await adapter.read_stocks(erp.settings, [erp.material])
            single = (erp.faults.requests if erp.faults else 0) - before
            before = erp.faults.requests if erp.faults else 0
            lines = await adapter.read_stocks(erp.settings, wanted)
            several = (erp.faults.requests if erp.faults else 0) - before
        finally:
            await adapter.aclose()
        assert several <= single, "more materials, more requests"
        assert sorted(lines, key=repr) == sorted(one, key=repr)
        assert {line.material for line in lines} == {erp.material}
        assert sum(line.quantity for line in lines if not line.blocked) == 1000 - 40
        assert sum(line.quantity for line in lines if line.blocked) == 40
        assert all(line.location for line in lines)
        usable = {line.location for line in lines if not line.blocked}
        assert usable and usable.isdisjoint(line.location for line in lines if line.blocked) or erp.name == "sap"

    async def test_a_junk_stock_answer_is_unavailable_never_a_crash(self, erp: ErpUnderTest) -> None:
        """An ERP (or a proxy in front of it) answering junk: the error family's `Unavailable`, so a
        stock watch records it and opens nothing, instead of a parsing error escaping."""
        faults = over_http(erp)
        quantity = {  # the protocol's own shape, with a quantity that is no number
            "erpnext": '{"data": [{"item_code": "AL-6061-BAR", "warehouse": "Stores - BG", "actual_qty": "lots"}]}',
            "sap": '{"d": {"results": [{"Material": "AL-6061-BAR", "MatlWrhsStkQtyInMatlBaseUnit": "NaN"}]}}',
            "odoo": '[{"id": 1, "default_code": "AL-6061-BAR", "product_id": [1, "bar"], "quantity": "lots"}]',
        }
        row = '{"item_code": "AL-6061-BAR", "warehouse": "W", "actual_qty": 1, "Material": "AL-6061-BAR", "id": 1}'
        page, long = ",".join([row] * 500), ",".join([row] * 20_001)
        endless = {  # every page full, whatever was skipped; Odoo's one answer too long
            "erpnext": f'{{"data": [{page}]}}',
            "sap": f'{{"d": {{"results": [{page}]}}}}',
            "odoo": f"[{long}]",
        }
        for junk in ("<html>maintenance</html>", '{"data": 5, "d": 5, "result": 5}', quantity[erp.name],
                     endless[erp.name]):
            faults.junk = junk
            adapter = erp.make()
            try:
                with pytest.raises(Unavailable, match="stock answer|not understood|stock lines|more than 20000"):
                    await adapter.read_stocks(erp.settings, [erp.material])
            finally:
                await adapter.aclose()

    async def test_bad_fields_are_rejected_before_the_erp_is_asked(self, erp: ErpUnderTest) -> None:
        adapter = erp.make()
        requests = erp.faults.requests if erp.faults else 0
        try:
            with pytest.raises(
                Rejected, match=r"stock_status: quantity must be a number greater than 0 \(got -5\)"
            ):
                await adapter.post(erp.stock_txn("block", -5, "bad/1"))
            with pytest.raises(Rejected, match="maintenance_request: machine is missing"):
                await adapter.post(erp.transaction("maintenance_request", "bad/2", machine=None))
        finally:
            await adapter.aclose()
        assert (erp.faults.requests if erp.faults else 0) == requests
        assert erp.count("bad/1") == erp.count("bad/2") == 0

    async def test_the_erps_own_refusal_reaches_the_thread(self, erp: ErpUnderTest) -> None:
        kind, fields, words = erp.refused
        adapter = erp.make()
        try:
            with pytest.raises(Rejected) as refused:
                await adapter.post(erp.transaction(kind, "refused/1", **fields))
        finally:
            await adapter.aclose()
        assert words in refused.value.reason
        assert erp.count("refused/1") == 0

    async def test_a_missing_plant_setting_is_named(self, erp: ErpUnderTest) -> None:
        if erp.required_setting is None:
            pytest.skip(f"{erp.name} needs no plant settings")
        kind, setting = erp.required_setting
        adapter = erp.make()
        try:
            txn = erp.transaction(kind, "settings/1")
            txn = dataclasses.replace(
                txn, plant_settings={k: v for k, v in erp.settings.items() if k != setting}
            )
            with pytest.raises(Rejected, match=rf"erp\.{setting} is not set"):
                await adapter.post(txn)
        finally:
            await adapter.aclose()

    async def test_wrong_credentials_are_auth_failed(self, erp: ErpUnderTest) -> None:
        over_http(erp)
        adapter = erp.make(**erp.bad_credentials)
        try:
            with pytest.raises(AuthFailed):
                await adapter.post(erp.transaction("maintenance_request", "auth/1"))
        finally:
            await adapter.aclose()
        assert erp.count("auth/1") == 0

    async def test_secrets_never_reach_the_log(
        self, erp: ErpUnderTest, caplog: pytest.LogCaptureFixture
    ) -> None:
        over_http(erp)
        caplog.set_level(logging.DEBUG)
        adapter, refused = erp.make(), erp.make(**erp.bad_credentials)
        try:
            await adapter.post(erp.transaction("maintenance_request", "log/1"))
            with pytest.raises(AuthFailed) as failed:
                await refused.post(erp.transaction("maintenance_request", "log/2"))
        finally:
            await adapter.aclose()
            await refused.aclose()
        assert erp.secrets and caplog.records
        shown = caplog.text + str(failed.value) + repr(adapter) + repr(refused)
        for secret in (*erp.secrets, *erp.bad_credentials.values()):
            assert secret not in shown

    async def test_429_with_retry_after_seconds_is_unavailable(self, erp: ErpUnderTest) -> None:
        faults = over_http(erp)
        faults.throttle, faults.retry_after = 1, "7"
        adapter = erp.make()
        try:
            with pytest.raises(Unavailable) as busy:
                await adapter.post(erp.transaction("maintenance_request", "busy/1"))
            assert busy.value.retry_after == 7
            assert await adapter.post(erp.transaction("maintenance_request", "busy/1"))
        finally:
            await adapter.aclose()
        assert erp.count("busy/1") == 1

    async def test_503_with_an_http_date_is_unavailable(self, erp: ErpUnderTest) -> None:
        faults = over_http(erp)
        faults.down = True
        faults.retry_after = format_datetime(datetime.now(UTC) + timedelta(seconds=120), usegmt=True)
        adapter = erp.make()
        try:
            with pytest.raises(Unavailable) as down:
                await adapter.post(erp.transaction("maintenance_request", "down/1"))
        finally:
            await adapter.aclose()
        assert down.value.retry_after is not None and 100 < down.value.retry_after <= 120
        assert erp.count("down/1") == 0

    @pytest.mark.parametrize("fault", ["timeout", "502"])
    async def test_answer_lost_after_the_erp_saved_posts_nothing_twice(
        self, erp: ErpUnderTest, fault: str
    ) -> None:
        faults = over_http(erp)
        if fault == "timeout":
            faults.hang_after_save = 1
        else:
            faults.lose_after_save = 1
        exception_id = seed_exception(erp.engine, 1)
        key = "E-0001/1"
        txn_id = queue(
            erp.engine,
            "maintenance_request",
            erp.samples["maintenance_request"],
            key=key,
            exception_id=exception_id,
        )
        clock, adapter = Clock(), erp.make()
        await warm(adapter, erp.transaction("maintenance_request", key))
        outcomes: list[str] = []
        outbox = ErpOutbox(
            erp.engine, adapter, now=clock, on_settled=lambda _s, _t, outcome, _d: outcomes.append(outcome)
        )
        try:
            assert await outbox.post_due() == 1
            # The ERP saved something (for Odoo: the downtime record that comes first), the answer was lost.
            assert outcomes == ["retry"] and faults.saves >= 1 and erp.count(key) <= 1
            clock.at += timedelta(seconds=2)
            assert await outbox.post_due() == 1
        finally:
            await adapter.aclose()
        settled = row(erp.engine, txn_id)
        assert outcomes == ["retry", "posted"]
        assert settled.status == "sent" and settled.attempts == 2
        assert erp.count(key) == 1
        lookup_adapter = erp.make()
        try:
            assert (
                await lookup_adapter.lookup(erp.transaction("maintenance_request", key)) == settled.reference
            )
        finally:
            await lookup_adapter.aclose()

    async def test_master_data_sync_is_incremental(self, erp: ErpUnderTest) -> None:
        adapter = erp.make()
        try:
            first = await sync_master_data(erp.engine, adapter, "berlin-1")
            again = await sync_master_data(erp.engine, adapter, "berlin-1", since=first.watermark)
        finally:
            await adapter.aclose()
        with Session(erp.engine) as session:
            machines = {m.id: m for m in session.exec(select(Machine))}
            materials = {m.id for m in session.exec(select(Material))}
            orders = {w.id: w for w in session.exec(select(WorkOrder))}
            customer_orders = {c.id: c for c in session.exec(select(CustomerOrder))}
        if not erp.master_data:
            assert not (machines or materials or orders or customer_orders)
            assert all(c.read == 0 for c in first.counts.values())
            return
        assert "CNC-07" in machines and erp.material in materials
        order = orders[erp.work_order]
        assert order.machine_id == "CNC-07" and order.status == "running"
        assert order.start is not None and order.start.tzinfo is not None
        assert order.customer_order_id == "SO-9001"
        assert customer_orders["SO-9001"].customer == erp.customer
        assert first.counts["machines"].created >= 1 and first.counts["work_orders"].created >= 1
        assert first.watermark is not None
        assert all(c.created == 0 and c.updated == 0 for c in again.counts.values())

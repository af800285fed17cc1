"""Fewer round trips per posting: the outbox's first attempt skips the search-before-create, and
Odoo keeps the ids it looked up (bench/bench_erp.py, docs/benchmarks.md).

Skipping is safe only on the first attempt: a retry may find a document, or half an Odoo
flow, that an earlier attempt left, and must search first. The contract suite's lost-answer
tests (tests/erp_fakes/contract.py) cover that side.
"""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy.engine import Engine

from erp_adapters.base import Rejected, Transaction, Unavailable
from erp_adapters.ledger import LedgerErp
from erp_adapters.odoo import OdooErp
from erp_adapters.outbox import ErpOutbox
from erp_adapters.sap_odata import SapODataErp
from tests.erp_fakes import odoo, sap
from tests.erp_fakes.db import T0, queue, seed_plant
from tests.erp_fakes.server import serve

BLOCK = {"action": "block", "material": "AL-6061-BAR", "quantity": 2, "unit": "pcs"}


class FlakyLedger(LedgerErp):
    """The ledger, unavailable on its first post; remembers what each post was told."""

    def __init__(self, engine: Engine) -> None:
        super().__init__(engine)
        self.first_attempts: list[bool] = []

    async def post(self, transaction: Transaction) -> str:
        self.first_attempts.append(transaction.first_attempt)
        if len(self.first_attempts) == 1:
            raise Unavailable("busy", retry_after=1)
        return await super().post(transaction)


def test_the_outbox_marks_only_the_first_attempt(sqlite_engine: Engine) -> None:
    seed_plant(sqlite_engine)
    queue(sqlite_engine, "stock_status", BLOCK, key="E-0001/1")
    erp, clock = FlakyLedger(sqlite_engine), [T0]
    outbox = ErpOutbox(sqlite_engine, erp, now=lambda: clock[0])
    assert asyncio.run(outbox.post_due()) == 1  # refused for now: retry
    clock[0] += timedelta(seconds=2)
    assert asyncio.run(outbox.post_due()) == 1
    assert erp.first_attempts == [True, False]


def odoo_block(key: str, first_attempt: bool, quantity: float = 2) -> Transaction:
    return Transaction("stock_status", {**BLOCK, "quantity": quantity}, key, plant_settings=dict(odoo.SETTINGS),
                       first_attempt=first_attempt)


def test_odoo_searches_only_when_an_earlier_attempt_may_have_left_something() -> None:
    state = odoo.OdooState()
    state.seed()

    async def post(*transactions: Transaction) -> list[list[tuple[str, str]]]:
        """The ORM calls each posting made; the one with more than the stock must be refused."""
        calls = []
        with serve(odoo.make_app(state)) as url:
            adapter = OdooErp(f"{url}/?db={state.database}", token=state.api_key, timeout=5)
            try:
                for txn in transactions:
                    state.calls.clear()
                    if txn.fields["quantity"] > 1000:
                        with pytest.raises(Rejected, match="not enough available"):
                            await adapter.post(txn)
                    else:
                        await adapter.post(txn)
                    calls.append(list(state.calls))
            finally:
                await adapter.aclose()
        return calls

    first, cached, retry, refused, after_refusal = asyncio.run(post(
        odoo_block("k/1", True), odoo_block("k/2", True), odoo_block("k/3", False),
        odoo_block("k/4", True, quantity=5000), odoo_block("k/5", True)))
    lookups = {("stock.location", "search_read"), ("product.product", "search_read"), ("uom.uom", "search_read"),
               ("stock.picking.type", "search_read")}
    assert ("stock.picking", "search_read") not in first and lookups <= set(first)
    # Odoo 17+: web_save creates and returns the name, action_assign confirms and reserves,
    # button_validate finishes what is wholly reserved.
    assert cached == [("stock.picking", "web_save"), ("stock.picking", "action_assign"),
                      ("stock.picking", "button_validate")]
    assert retry[0] == ("stock.picking", "search_read") and retry[1:] == cached
    assert refused[-2:] == [("stock.picking", "button_validate"), ("stock.picking", "action_cancel")]
    assert state.wizards == ["stock.backorder.confirmation"]  # 1000 of 5000 reserved: a part, refused
    assert lookups <= set(after_refusal)  # a refusal may come from a stale id: look them up afresh


@pytest.mark.parametrize("first_attempt", [True, False])
def test_sap_posts_a_first_attempt_in_one_request(first_attempt: bool) -> None:
    system = sap.SapState()
    system.seed()
    txn = Transaction("stock_status", BLOCK, "E-0001/1", plant_settings=dict(sap.SETTINGS),
                      first_attempt=first_attempt)

    async def post() -> str:
        with serve(sap.make_app(system)) as url:
            adapter = SapODataErp(f"{url}/?sap-client=100", user=system.user, token=system.password, timeout=5,
                                  now=lambda: datetime(2026, 11, 25, 8, 0, tzinfo=UTC))
            try:
                return await adapter.post(txn)
            finally:
                await adapter.aclose()

    reference = asyncio.run(post())
    documents = "API_MATERIAL_DOCUMENT_SRV/A_MaterialDocumentHeader"
    assert system.calls == ([] if first_attempt else [f"GET {documents}"]) + [f"POST {documents}"]
    assert reference.split("/")[0] in system.material_documents

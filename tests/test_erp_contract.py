"""One behaviour suite, every ERP adapter: each registered adapter joins it with one line."""

from __future__ import annotations

import inspect

from erp_adapters.registry import ADAPTERS, adapter_class
from tests.erp_fakes.contract import ErpContract
from tests.erp_fakes.erpnext import ErpNextFixtures
from tests.erp_fakes.ledger import LedgerFixtures
from tests.erp_fakes.odoo import OdooFixtures, OdooJsonRpcFixtures
from tests.erp_fakes.sap import SapFixtures


class TestLedger(ErpContract, LedgerFixtures):
    adapter = "ledger"


class TestErpNext(ErpContract, ErpNextFixtures):
    adapter = "erpnext"


class TestOdoo(ErpContract, OdooFixtures):
    adapter = "odoo"


class TestOdooJsonRpc(ErpContract, OdooJsonRpcFixtures):
    adapter = "odoo"


class TestSap(ErpContract, SapFixtures):
    adapter = "sap"


def test_every_registered_adapter_joins_the_contract_suite() -> None:
    joined = {
        cls.adapter
        for cls in globals().values()
        if inspect.isclass(cls) and issubclass(cls, ErpContract) and cls is not ErpContract
    }
    missing = set(ADAPTERS) - joined
    assert not missing, f"adapters registered without a contract test class: {sorted(missing)}"
    assert joined <= set(ADAPTERS), (
        f"contract classes for unregistered adapters: {sorted(joined - set(ADAPTERS))}"
    )


def test_every_registered_adapter_imports_and_names_itself() -> None:
    for name in ADAPTERS:
        cls = adapter_class(name)
        assert cls.name == name
        assert callable(cls.from_settings)

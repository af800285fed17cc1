"""The explicit list of ERP adapters: name -> "module:Class", imported only when chosen.

Adding an ERP means one module and one line here; tests/test_erp_contract.py fails until
the new adapter also joins the contract suite.
"""

from __future__ import annotations

import importlib
from dataclasses import dataclass
from typing import Any

from sqlalchemy.engine import Engine

from erp_adapters.base import ErpAdapter


@dataclass(frozen=True)
class AdapterEntry:
    target: str  # "module:Class"
    install_hint: str  # shown when the module's dependencies are missing
    description: str


ADAPTERS: dict[str, AdapterEntry] = {
    "ledger": AdapterEntry(
        "erp_adapters.ledger:LedgerErp", "pip install mfgos", "embedded ledger in the mfgos database"
    ),
    "erpnext": AdapterEntry(
        "erp_adapters.erpnext:ErpNextErp", "pip install mfgos  (needs httpx)", "ERPNext / Frappe REST API"
    ),
    "odoo": AdapterEntry(
        "erp_adapters.odoo:OdooErp",
        "pip install mfgos  (needs httpx)",
        "Odoo 19+ JSON-2, Odoo 16-18 JSON-RPC",
    ),
    "sap": AdapterEntry(
        "erp_adapters.sap_odata:SapODataErp", "pip install mfgos  (needs httpx)", "SAP S/4HANA OData V2 APIs"
    ),
}


def available() -> list[str]:
    return sorted(ADAPTERS)


def adapter_class(name: str) -> type:
    """Import and return the adapter class registered under `name`."""
    entry = ADAPTERS.get(name)
    if entry is None:
        raise ValueError(f"unknown ERP {name!r} (MFGOS_ERP); choose one of: {', '.join(available())}")
    module_name, _, class_name = entry.target.partition(":")
    try:
        module = importlib.import_module(module_name)
    except ImportError as exc:
        raise ImportError(
            f"the {name} ERP adapter cannot be loaded ({exc}); install it with: {entry.install_hint}"
        ) from exc
    return getattr(module, class_name)


def create_adapter(name: str, *, engine: Engine, settings: Any, **kwargs: Any) -> ErpAdapter:
    """Build the configured adapter from the settings (erp_url, erp_user, erp_token).

    `kwargs` reach the adapter's constructor (tests pass an httpx transport or a clock).
    """
    cls = adapter_class(name)
    return cls.from_settings(settings, engine=engine, **kwargs)

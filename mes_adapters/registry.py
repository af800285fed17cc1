"""The explicit list of MES adapters: name -> "module:Class", imported only when chosen.

Adding an MES means one module and one line here; tests/test_mes_contract.py fails until the
new adapter also joins the contract suite.
"""

from __future__ import annotations

import importlib
from dataclasses import dataclass
from typing import Any

from sqlalchemy.engine import Engine

from mes_adapters.base import MesAdapter


@dataclass(frozen=True)
class AdapterEntry:
    target: str  # "module:Class"
    description: str


ADAPTERS: dict[str, AdapterEntry] = {
    "local": AdapterEntry("mes_adapters.local:LocalMes", "embedded book in the mfgos database (demo, replay)"),
    "rest": AdapterEntry("mes_adapters.rest:RestMes", "any MES taking a JSON webhook with an Idempotency-Key"),
}


def available() -> list[str]:
    return sorted(ADAPTERS)


def adapter_class(name: str) -> type:
    """The adapter class registered under `name`."""
    entry = ADAPTERS.get(name)
    if entry is None:
        raise ValueError(f"unknown MES {name!r} (MFGOS_MES); choose one of: {', '.join(available())}")
    module_name, _, class_name = entry.target.partition(":")
    return getattr(importlib.import_module(module_name), class_name)


def create_adapter(name: str, *, engine: Engine, settings: Any, **kwargs: Any) -> MesAdapter:
    """Build the configured adapter from the settings (mes_url, mes_token, mes_auth_header, mes_timeout).

    `kwargs` reach the adapter's constructor (tests pass an httpx transport, the runtime a clock)."""
    return adapter_class(name).from_settings(settings, engine=engine, **kwargs)

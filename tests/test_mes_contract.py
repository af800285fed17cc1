"""One behaviour suite, every MES adapter: each registered adapter joins it with one line."""

from __future__ import annotations

import inspect

from mes_adapters.registry import ADAPTERS, adapter_class
from tests.mes_fakes.contract import MesContract
from tests.mes_fakes.local import LocalFixtures
from tests.mes_fakes.rest import RestFixtures


class TestLocal(MesContract, LocalFixtures):
    adapter = "local"


class TestRest(MesContract, RestFixtures):
    adapter = "rest"


def test_every_registered_adapter_joins_the_contract_suite() -> None:
    joined = {cls.adapter for cls in globals().values()
              if inspect.isclass(cls) and issubclass(cls, MesContract) and cls is not MesContract}
    assert joined == set(ADAPTERS), f"registered without a contract class: {sorted(set(ADAPTERS) - joined)}"


def test_every_registered_adapter_imports_names_itself_and_speaks_the_protocol() -> None:
    for name in ADAPTERS:
        cls = adapter_class(name)
        assert cls.name == name and callable(cls.from_settings)
        assert all(callable(getattr(cls, method, None)) for method in ("post", "aclose"))

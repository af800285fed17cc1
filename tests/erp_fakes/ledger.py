"""The embedded ledger joins the contract suite too: same behaviour, no HTTP; its stock is counted in."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from typing import Any

import pytest
from sqlalchemy.engine import Engine
from sqlmodel import Session, func, select

from erp_adapters.ledger import LedgerErp
from models.tables import LedgerDocument
from tests.erp_fakes.contract import ErpUnderTest
from tests.erp_fakes.db import seed_plant
from tests.erp_fakes.samples import samples


class LedgerFixtures:
    @pytest.fixture
    def erp(self, sqlite_engine: Engine) -> Iterator[ErpUnderTest]:
        engine = sqlite_engine
        seed_plant(engine)
        asyncio.run(LedgerErp(engine).count_stock("AL-6061-BAR", 1000))  # as the fakes hold

        def count(key: str) -> int:
            with Session(engine) as session:
                return session.exec(
                    select(func.count())
                    .select_from(LedgerDocument)
                    .where(LedgerDocument.idempotency_key == key)
                ).one()

        def make(**_overrides: Any) -> LedgerErp:
            return LedgerErp(engine)

        yield ErpUnderTest(
            name="ledger",
            make=make,
            settings={},
            engine=engine,
            count=count,
            samples=samples(),
            refused=("stock_status", {"action": "hold"}, "action must be one of block, release, scrap"),
            required_setting=None,
            master_data=False,
            finished_work_order=None,
        )

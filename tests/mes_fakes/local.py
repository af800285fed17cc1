"""The embedded local MES joins the contract suite too: same behaviour, no HTTP."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from sqlalchemy.engine import Engine
from sqlmodel import Session, func, select

from mes_adapters.local import LocalMes
from models.mes import MesDocument
from tests.mes_fakes.contract import MesUnderTest, seed


class LocalFixtures:
    @pytest.fixture
    def mes(self, engine: Engine) -> Iterator[MesUnderTest]:
        seed(engine)

        def count(key: str) -> int:
            with Session(engine) as session:
                return session.exec(select(func.count()).select_from(MesDocument)
                                    .where(MesDocument.idempotency_key == key)).one()

        def stored(key: str) -> dict[str, Any]:
            with Session(engine) as session:
                return session.exec(select(MesDocument.fields).where(MesDocument.idempotency_key == key)).one()

        def make(**_overrides: Any) -> LocalMes:
            return LocalMes(engine)

        yield MesUnderTest(name="local", make=make, engine=engine, count=count, stored=stored)

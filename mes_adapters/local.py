"""The embedded MES: a book of what the MES was told, in our own database (`mes_documents`).

For the demo, trials and replays without an MES: the write-back still runs end to end and
the timeline shows references (MS-000001, WH-000002, ...). Like the ERP ledger it validates,
numbers per kind and never books one idempotency key twice.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any, ClassVar

from sqlalchemy.engine import Engine
from sqlalchemy.exc import IntegrityError
from sqlmodel import Session, select

from mes_adapters import kinds
from mes_adapters.base import Rejected, Transaction
from models.mes import MesDocument


class LocalMes:
    """`MesAdapter` writing `MesDocument` rows; safe to share between workers and replicas."""

    name: ClassVar[str] = "local"

    def __init__(self, engine: Engine, *, now: Callable[[], datetime] | None = None) -> None:
        self.engine = engine
        self.now = now or (lambda: datetime.now(UTC))

    @classmethod
    def from_settings(cls, settings: Any, *, engine: Engine | None = None, **kwargs: Any) -> LocalMes:
        if engine is None:
            raise ValueError("local: the embedded MES needs the database engine")
        return cls(engine, **kwargs)

    async def post(self, transaction: Transaction) -> str:
        kinds.validate(transaction.kind, transaction.fields)
        return await asyncio.to_thread(self._post, transaction)

    async def aclose(self) -> None:
        """Nothing to close: the engine belongs to the application."""

    def documents(self) -> list[MesDocument]:
        """Every document in the book, oldest first (replay output and tests)."""
        with Session(self.engine) as session:
            return list(session.exec(select(MesDocument).order_by(MesDocument.id)))  # type: ignore[arg-type]

    def _lookup(self, key: str, kind: str) -> str | None:
        with Session(self.engine) as session:
            return session.exec(select(MesDocument.reference).where(
                MesDocument.idempotency_key == key, MesDocument.kind == kind)).first()

    def _post(self, transaction: Transaction) -> str:
        existing = self._lookup(transaction.idempotency_key, transaction.kind)
        if existing is not None:
            return existing
        try:
            with Session(self.engine) as session:
                document = MesDocument(reference=f"new:{transaction.idempotency_key}",
                                       idempotency_key=transaction.idempotency_key, kind=transaction.kind,
                                       fields=dict(transaction.fields), posted_at=self.now())
                session.add(document)
                session.flush()  # the row id numbers the document: two writers never race for a number
                document.reference = f"{kinds.PREFIXES[transaction.kind]}-{document.id:06d}"
                reference = document.reference
                session.commit()
                return reference
        except IntegrityError:
            existing = self._lookup(transaction.idempotency_key, transaction.kind)
            if existing is None:
                raise Rejected(f"the local MES already holds another kind under key "
                               f"{transaction.idempotency_key}") from None
            return existing

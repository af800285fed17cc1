"""The embedded default ERP: a book of documents in our own database (`ledger_documents`).

Plants without an ERP connection (the demo, trials, replay) still get real document
numbers; the ledger behaves like a well-mannered ERP: it validates, numbers per kind
(MR-000001, STK-000002, ...) and never books one idempotency key twice.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any, ClassVar

from sqlalchemy.engine import Engine
from sqlalchemy.exc import IntegrityError
from sqlmodel import Session, select

from erp_adapters import kinds
from erp_adapters.base import ErpAdapterBase, Rejected, Transaction
from models.tables import LedgerDocument


class LedgerErp(ErpAdapterBase):
    """`ErpAdapter` writing `LedgerDocument` rows; safe to share between workers and replicas."""

    name: ClassVar[str] = "ledger"

    def __init__(self, engine: Engine, *, now: Callable[[], datetime] | None = None) -> None:
        self.engine = engine
        self.now = now or (lambda: datetime.now(UTC))

    @classmethod
    def from_settings(cls, settings: Any, *, engine: Engine | None = None, **kwargs: Any) -> LedgerErp:
        if engine is None:
            raise ValueError("ledger: the embedded ERP needs the database engine")
        return cls(engine, **kwargs)

    async def post(self, transaction: Transaction) -> str:
        kinds.validate(transaction.kind, transaction.fields)
        return await asyncio.to_thread(self._post, transaction)

    async def lookup(self, transaction: Transaction) -> str | None:
        return await asyncio.to_thread(self._lookup, transaction.idempotency_key, transaction.kind)

    async def aclose(self) -> None:
        """Nothing to close: the engine belongs to the application."""

    def documents(self) -> list[LedgerDocument]:
        """Every document in the book, oldest first (for replay output and tests)."""
        with Session(self.engine) as session:
            return list(session.exec(select(LedgerDocument).order_by(LedgerDocument.id)))

    def _lookup(self, idempotency_key: str, kind: str) -> str | None:
        """The document booked under this key, if it is of this kind (another kind is not ours)."""
        with Session(self.engine) as session:
            return session.exec(
                select(LedgerDocument.reference).where(
                    LedgerDocument.idempotency_key == idempotency_key, LedgerDocument.kind == kind
                )
            ).first()

    def _post(self, transaction: Transaction) -> str:
        # Look first: a failed insert would burn a PostgreSQL sequence value, a gap in the numbers.
        existing = self._lookup(transaction.idempotency_key, transaction.kind)
        if existing is not None:
            return existing
        try:
            with Session(self.engine) as session:
                # The row id numbers the document, so two writers never race for a number.
                document = LedgerDocument(
                    reference=f"new:{transaction.idempotency_key}",
                    idempotency_key=transaction.idempotency_key,
                    kind=transaction.kind,
                    fields=dict(transaction.fields),
                    posted_at=self.now(),
                )
                session.add(document)
                session.flush()
                reference = f"{kinds.PREFIXES[transaction.kind]}-{document.id:06d}"
                document.reference = reference
                session.commit()
                return reference
        except IntegrityError:
            # Another worker booked the same key between our look-up and insert: theirs stands.
            existing = self._lookup(transaction.idempotency_key, transaction.kind)
            if existing is None:
                raise Rejected(
                    f"the ledger already holds a document of another kind under key {transaction.idempotency_key}"
                ) from None
            return existing

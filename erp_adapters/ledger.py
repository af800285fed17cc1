"""The embedded default ERP: a book of documents in our own database (`ledger_documents`).

Plants without an ERP connection (the demo, trials, replay) still get real document
numbers; the ledger behaves like a well-mannered ERP: it validates, numbers per kind
(MR-000001, STK-000002, ...) and never books one idempotency key twice.

It keeps stock too, as a real ERP would: a stock count (`count_stock`, document `CNT-…`) sets
what is on hand, and the `stock_status` documents move it (block: usable to quarantine,
release: back, scrap: out of quarantine or, with `erp.scrap_from: unrestricted`, of usable
stock). A material never counted has none.
"""

from __future__ import annotations

import asyncio
import secrets
from collections import defaultdict
from collections.abc import Callable, Iterable
from datetime import UTC, datetime
from typing import Any, ClassVar

from sqlalchemy.engine import Engine
from sqlalchemy.exc import IntegrityError
from sqlmodel import Session, select

from erp_adapters import kinds
from erp_adapters.base import ErpAdapterBase, Rejected, StockLine, Transaction
from models.tables import LedgerDocument

COUNT = "stock_count"  # the ledger's own document kind: a stock count, not a neutral transaction
STORES, QUARANTINE = "stores", "quarantine"  # the ledger's two places: usable and blocked stock


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

    async def count_stock(self, material: str, quantity: float, unit: str = "pcs") -> str:
        """Book a stock count: `quantity` of `material` usable in the stores from now on (blocked
        stock stays). Returns the document's reference."""
        if not material or quantity < 0:
            raise Rejected(f"a stock count needs a material and a quantity of 0 or more (got {material!r}, {quantity})")
        return await asyncio.to_thread(self._book, COUNT, {"material": material, "quantity": quantity, "unit": unit},
                                       f"count:{secrets.token_hex(8)}", "CNT")

    async def read_stocks(self, settings: dict[str, Any], materials: Iterable[str]) -> list[StockLine]:
        return await asyncio.to_thread(self._stocks, settings, set(materials))

    async def read_stock(self, settings: dict[str, Any], material: str) -> list[StockLine]:
        return await self.read_stocks(settings, [material])

    def _stocks(self, settings: dict[str, Any], materials: set[str]) -> list[StockLine]:
        usable: dict[str, float] = defaultdict(float)
        blocked: dict[str, float] = defaultdict(float)
        units: dict[str, str] = {}
        from_blocked = settings.get("scrap_from", "blocked") == "blocked"
        with Session(self.engine) as session:
            documents = session.exec(select(LedgerDocument).where(
                LedgerDocument.kind.in_((COUNT, "stock_status"))).order_by(LedgerDocument.id))  # type: ignore[attr-defined]
            for document in documents:
                fields = document.fields
                material, quantity = fields.get("material"), float(fields.get("quantity") or 0)
                if material not in materials:
                    continue
                units.setdefault(material, fields.get("unit") or "pcs")
                action = fields.get("action") if document.kind == "stock_status" else COUNT
                if action == COUNT:
                    usable[material] = quantity
                elif action == "block":
                    usable[material] -= quantity
                    blocked[material] += quantity
                elif action == "release":
                    blocked[material] -= quantity
                    usable[material] += quantity
                elif action == "scrap" and from_blocked:
                    blocked[material] -= quantity
                elif action == "scrap":
                    usable[material] -= quantity
        lines = [StockLine(m, q, STORES, unit=units[m]) for m, q in sorted(usable.items()) if q]
        return lines + [StockLine(m, q, QUARANTINE, blocked=True, unit=units[m]) for m, q in sorted(blocked.items()) if q]

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
        return self._book(transaction.kind, dict(transaction.fields), transaction.idempotency_key,
                          kinds.PREFIXES[transaction.kind])

    def _book(self, kind: str, fields: dict[str, Any], idempotency_key: str, prefix: str) -> str:
        # Look first: a failed insert would burn a PostgreSQL sequence value, a gap in the numbers.
        existing = self._lookup(idempotency_key, kind)
        if existing is not None:
            return existing
        try:
            with Session(self.engine) as session:
                # The row id numbers the document, so two writers never race for a number.
                document = LedgerDocument(
                    reference=f"new:{idempotency_key}",
                    idempotency_key=idempotency_key,
                    kind=kind,
                    fields=fields,
                    posted_at=self.now(),
                )
                session.add(document)
                session.flush()
                reference = f"{prefix}-{document.id:06d}"
                document.reference = reference
                session.commit()
                return reference
        except IntegrityError:
            # Another worker booked the same key between our look-up and insert: theirs stands.
            existing = self._lookup(idempotency_key, kind)
            if existing is None:
                raise Rejected(
                    f"the ledger already holds a document of another kind under key {idempotency_key}"
                ) from None
            return existing

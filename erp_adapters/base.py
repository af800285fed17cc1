"""The one ERP protocol every adapter implements, and the typed errors at that edge."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Protocol, runtime_checkable


class ErpError(Exception):
    """Base of the ERP error family."""


class AuthFailed(ErpError):
    """Credentials refused: pause posting and tell an admin; retrying will not help."""


class Unavailable(ErpError):
    """The ERP is down, slow or rate-limiting: retry later (after `retry_after` seconds if given)."""

    def __init__(self, message: str = "ERP unavailable", retry_after: float | None = None) -> None:
        super().__init__(message)
        self.retry_after = retry_after


class Rejected(ErpError):
    """The ERP refused the document (validation): tell the thread, never retry unchanged."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


@dataclass(frozen=True)
class Transaction:
    """A neutral ERP transaction (DESIGN.md section 3 kinds) with its idempotency key."""

    kind: str
    fields: dict[str, Any]
    idempotency_key: str
    exception_code: str | None = None
    plant_settings: dict[str, Any] = field(default_factory=dict)  # the plant file's `erp:` block


@runtime_checkable
class ErpAdapter(Protocol):
    name: str

    async def post(self, transaction: Transaction) -> str:
        """Create the document in the ERP and return its reference (document number)."""
        ...

    async def lookup(self, idempotency_key: str) -> str | None:
        """Return the reference of a document already posted under this key, or None."""
        ...

    async def aclose(self) -> None: ...

"""The one MES protocol every adapter implements, and the typed errors at that edge.

The MES gets the confirmed outcome of an exception (docs/mes.md): what mfgos decided, not the
live state the MES may read from the machines itself. Every transaction carries an
idempotency key; an MES adapter must make a second post of one key answer the first one's
reference and store nothing new, because the outbox posts a key again whenever it cannot know
whether the first attempt arrived (a timeout, a lost answer, a crash).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Protocol, runtime_checkable


class MesError(Exception):
    """Base of the MES error family."""


class AuthFailed(MesError):
    """Credentials refused: pause sending and tell an admin; retrying unchanged will not help."""


class Unavailable(MesError):
    """The MES is down, slow or rate-limiting: retry later (after `retry_after` seconds if given)."""

    def __init__(self, message: str = "MES unavailable", retry_after: float | None = None) -> None:
        super().__init__(message)
        self.retry_after = retry_after


class Rejected(MesError):
    """The MES refused the transaction (validation, unknown machine): permanent, shown on the timeline."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


@dataclass(frozen=True)
class Transaction:
    """A neutral MES transaction (the kinds of `mes_adapters.kinds`) with its idempotency key."""

    kind: str
    fields: dict[str, Any]
    idempotency_key: str
    plant: str
    exception_code: str | None = None
    plant_settings: dict[str, Any] = field(default_factory=dict)  # the plant file's `mes:` section
    decided_at: datetime | None = None  # when the lifecycle step that caused it happened


@runtime_checkable
class MesAdapter(Protocol):
    name: str

    async def post(self, transaction: Transaction) -> str:
        """Hand the transaction to the MES and return the MES's reference for it. Posting a key
        the MES already holds returns the same reference and changes nothing."""
        ...

    async def aclose(self) -> None: ...

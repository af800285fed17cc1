"""Write-back to the MES: the outbox of what goes to it, and the local book of the demo's MES.

The confirmed outcome of an exception goes "back to both": the ERP gets its documents
(`erp_transactions`), the MES the machine's status, the hold and resume of its work orders
and the downtime reason code (`mes_transactions`, docs/mes.md). Each row is written in the
same database transaction as the lifecycle step that caused it, and `mes_adapters.outbox`
sends it exactly once.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import JSON, Column, Index, UniqueConstraint
from sqlmodel import Field, SQLModel


class MesTransaction(SQLModel, table=True):
    """Outbox row for one MES transaction (status as `OutboxStatus`: pending, sent, rejected)."""

    __tablename__ = "mes_transactions"
    __table_args__ = (
        Index("ix_mes_transactions_pending", "status", "next_attempt_at"),
        # One of each per exception: the machine's down and up, each work order's hold and resume,
        # one reason code; a second approval or a second RUNNING signal finds it written already.
        UniqueConstraint("exception_id", "slot"),
    )
    id: int | None = Field(default=None, primary_key=True)
    plant_id: str = Field(foreign_key="plants.id")
    exception_id: int = Field(foreign_key="exceptions.id", index=True)
    sequence: int = 0  # order within the exception: a hold goes before its resume
    slot: str  # "machine_status:down", "work_order_hold:WO-1042", "downtime_reason"
    kind: str  # machine_status | work_order_hold | work_order_resume | downtime_reason
    fields: dict[str, Any] = Field(default_factory=dict, sa_column=Column(JSON, nullable=False))
    idempotency_key: str = Field(unique=True)  # sent as the Idempotency-Key header; the MES dedupes on it
    status: str = "pending"
    attempts: int = 0
    next_attempt_at: datetime | None = None
    created_at: datetime = Field(index=True)
    sent_at: datetime | None = None
    reference: str | None = None  # the MES's own id of what it stored
    error: str | None = None


class MesDocument(SQLModel, table=True):
    """The `local` MES adapter's book: what a real MES would hold (the demo and replays without one)."""

    __tablename__ = "mes_documents"
    id: int | None = Field(default=None, primary_key=True)
    reference: str = Field(unique=True)
    idempotency_key: str = Field(unique=True)
    kind: str
    fields: dict[str, Any] = Field(default_factory=dict, sa_column=Column(JSON, nullable=False))
    posted_at: datetime

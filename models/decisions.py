"""Decision parts of an exception: what the planner, materials and customer service decided.

A breakdown's technician proposes the fix (the exception's own proposal); the other roles the
exception touches decide their part next to it: a work order moves (`reschedule`), material is
expedited or transferred (`material_request`), a customer order's promised date changes
(`customer_order_date`). Each part is one row here; its states and who may move them are
declared in routing/decisions.py, and an approved part becomes one ERP transaction.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import JSON, Column
from sqlmodel import Field, SQLModel

# The decision parts, and the role that decides each (proposes it in the thread).
DECISION_ROLES = {"reschedule": "planner", "material_request": "materials", "customer_order_date": "customer_service"}
DECISION_KINDS = tuple(DECISION_ROLES)
# The neutral ERP transaction each approved part becomes (erp_adapters/kinds.py).
DECISION_ERP_KINDS = {"reschedule": "production_order_reschedule", "material_request": "material_request",
                      "customer_order_date": "customer_order_date"}


class PlantApproval(SQLModel, table=True):
    """The plant file's `approvals:`: who approves a decision kind. A kind without a row stands on
    the deciding role's own word."""

    __tablename__ = "plant_approvals"
    plant_id: str = Field(primary_key=True, foreign_key="plants.id")
    kind: str = Field(primary_key=True)  # reschedule | material_request | customer_order_date
    role: str


class ExceptionDecision(SQLModel, table=True):
    """One role's decision on one exception (routing.decisions.Status says where it stands)."""

    __tablename__ = "exception_decisions"
    id: int | None = Field(default=None, primary_key=True)
    plant_id: str = Field(foreign_key="plants.id")
    exception_id: int = Field(foreign_key="exceptions.id", index=True)
    kind: str  # reschedule | material_request | customer_order_date
    status: str  # needed | proposed | approved | rejected | not_needed | settled
    role: str  # the role that decides this part (planner, materials, customer_service)
    # The decision itself, neutral: work_order/start/end/machine, material/quantity/unit/need_by/action,
    # customer_order/promised/customer_told; plus `reason` (what caused it: a conflict, a lateness).
    fields: dict[str, Any] = Field(default_factory=dict, sa_column=Column(JSON, nullable=False))
    proposed_by: str | None = None
    decided_by: str | None = None  # who approved or rejected it (the proposer when no approval is needed)
    erp_key: str | None = None  # the idempotency key of its ERP transaction, once approved
    created_at: datetime
    updated_at: datetime
    reminded_at: datetime | None = None  # the last reminder to its role while it is open

"""What each exception's KPI figures are, kept as they happen, so a year answers like a week.

`routing/kpis.py` computes every figure from the raw rows of a period; for a year of a busy
plant that reads a million timeline events per query (seconds, not milliseconds). These rows hold,
per exception, what those queries compute from its events: its moments (acknowledged, machine
running, approved, posted, closed) and its counts (escalations, ERP rejections and rows, messages,
people, the notification time). A KPI query over a period that nothing has happened after reads
them instead (`routing/figures.py`), one narrow row per exception.

`FiguresMark` says up to which moment every exception with an event has been brought up to date;
the next refresh looks again at what happened from a few minutes before it, so an event that
committed late is not missed. Only PostgreSQL keeps them: SQLite stores of one plant are small.
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import Index
from sqlmodel import Field, SQLModel


class ExceptionFigures(SQLModel, table=True):
    """One exception's figures as `routing/kpis.py` defines them, with no end to the period."""

    __tablename__ = "exception_figures"
    __table_args__ = (Index("ix_exception_figures_plant_opened", "plant_id", "opened_at"),
                      # The notification p95 walks the slowest 5 % of a period down this index.
                      Index("ix_exception_figures_plant_notify", "plant_id", "notify_seconds", "opened_at"))
    # No foreign key: the figures outlive nothing, they are rebuilt from the exceptions at will.
    exception_id: int = Field(primary_key=True)
    plant_id: str
    type: str
    area_id: str | None = None
    opened_at: datetime
    acknowledged_at: datetime | None = None
    running_at: datetime | None = None  # the first "machine running" on its timeline
    approved_at: datetime | None = None
    posted_at: datetime | None = None
    closed_at: datetime | None = None
    escalations: int = 0
    rejected: int = 0  # ERP rejections
    erp_rows: int = 0
    messages: int = 0
    people: int = 0
    notify_seconds: float | None = None  # reporting event's arrival -> last stakeholder's alert queued


class FigureOrder(SQLModel, table=True):
    """A customer order an exception named at risk: when each order was last named is kept from these."""

    __tablename__ = "figure_orders"
    __table_args__ = (Index("ix_figure_orders_plant_order", "plant_id", "customer_order", "opened_at"),)
    exception_id: int = Field(primary_key=True)
    customer_order: str = Field(primary_key=True)
    plant_id: str
    opened_at: datetime


class FigureOrderLast(SQLModel, table=True):
    """When a customer order was last named at risk by an exception opening. In a settled period
    (nothing opened after its end) an order was at risk in it exactly when its last opening falls
    in it: the distinct orders of a year are a range of this index, not a scan of a year's names."""

    __tablename__ = "figure_order_lasts"
    __table_args__ = (Index("ix_figure_order_lasts_plant_opened", "plant_id", "last_opened_at"),)
    plant_id: str = Field(primary_key=True)
    customer_order: str = Field(primary_key=True)
    last_opened_at: datetime


class FigureDay(SQLModel, table=True):
    """A day's exceptions (opened that UTC day) of one type and area, summed: a year of KPIs adds
    up a few thousand of these rather than reading a hundred thousand exceptions. Every mean is
    kept as its sum and count, so days add up exactly."""

    __tablename__ = "figure_days"
    plant_id: str = Field(primary_key=True)
    day: datetime = Field(primary_key=True)  # UTC midnight
    type: str = Field(primary_key=True)
    area_id: str = Field(primary_key=True)  # "-" for none
    opened: int = 0
    closed: int = 0
    ack_sum: float = 0.0  # seconds, over `ack_n` acknowledged
    ack_n: int = 0
    breakdowns: int = 0
    breakdown_repair_sum: float = 0.0  # seconds, over `breakdown_repair_n` breakdowns repaired
    breakdown_repair_n: int = 0
    resolution_sum: float = 0.0
    resolution_n: int = 0
    erp_latency_sum: float = 0.0
    erp_latency_n: int = 0
    repair_sum: float = 0.0  # every type: opened -> running or closed
    repair_n: int = 0
    unrepaired_breakdowns: int = 0  # down until the period's end: counted with `unrepaired_opened_sum`
    unrepaired_opened_sum: float = 0.0  # their openings, seconds since the epoch
    escalations: int = 0
    escalated: int = 0
    rejected: int = 0
    erp_rows: int = 0
    messages: int = 0
    people: int = 0
    notified: int = 0  # exceptions with a notification time


class FiguresMark(SQLModel, table=True):
    """Per plant: every exception with an event before `done_until` has its figures up to date."""

    __tablename__ = "figures_marks"
    plant_id: str = Field(primary_key=True)
    done_until: datetime

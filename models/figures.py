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
    __table_args__ = (Index("ix_exception_figures_plant_opened", "plant_id", "opened_at"),)
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
    """A customer order an exception named at risk: distinct orders over a period are counted here."""

    __tablename__ = "figure_orders"
    __table_args__ = (Index("ix_figure_orders_plant_opened", "plant_id", "opened_at"),)
    exception_id: int = Field(primary_key=True)
    customer_order: str = Field(primary_key=True)
    plant_id: str
    opened_at: datetime


class FiguresMark(SQLModel, table=True):
    """Per plant: every exception with an event before `done_until` has its figures up to date."""

    __tablename__ = "figures_marks"
    plant_id: str = Field(primary_key=True)
    done_until: datetime

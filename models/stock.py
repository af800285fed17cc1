"""The stock watch's memory (routing/stock_watch.py): the stock each material had at the last read,
and how the last run of a plant went.

The stock itself stays the ERP's: these rows only let the next run see what moved (a movement
is stored as a signal) and let the console and a second replica see when the watch last ran.
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import JSON, Column
from sqlmodel import Field, SQLModel


class StockLevel(SQLModel, table=True):
    """A material's quantity in one place of the ERP (usable or blocked) at the last read."""

    __tablename__ = "stock_levels"
    plant_id: str = Field(primary_key=True, foreign_key="plants.id")
    material_id: str = Field(primary_key=True)
    location: str = Field(primary_key=True)  # the ERP's warehouse, location or plant/storage location
    blocked: bool = Field(primary_key=True)
    quantity: float
    unit: str | None = None
    read_at: datetime


class StockWatchRun(SQLModel, table=True):
    """Per plant: when the watch last ran, and why it could not read the ERP (None: it could)."""

    __tablename__ = "stock_watch_runs"
    plant_id: str = Field(primary_key=True, foreign_key="plants.id")
    ran_at: datetime
    erp: str
    materials: int = 0  # how many materials the next work orders need
    shortages: list[str] = Field(default_factory=list, sa_column=Column(JSON, nullable=False))  # materials short
    error: str | None = None

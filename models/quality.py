"""Quality inspection results: where each characteristic's control chart stands (issue 12, point 3).

A result from the inspection system (`POST /signals/quality`, an MQTT topic) is stored as a
signal like any other; what has to outlive it is the run the drift rules count (routing/quality.py):
how many results in a row fell on one side of the centre line, and how many rose or fell in a row.
One row per machine and characteristic, so a new result reads and writes one row under its lock.
"""

from __future__ import annotations

from datetime import datetime

from sqlmodel import Field, SQLModel


class QualityChart(SQLModel, table=True):
    """The drift state of one characteristic on one machine: the current run and whether it warned."""

    __tablename__ = "quality_charts"
    plant_id: str = Field(primary_key=True, foreign_key="plants.id")
    machine_id: str = Field(primary_key=True)
    characteristic: str = Field(primary_key=True)
    side: int = 0  # +1 above the centre line, -1 below, 0 none yet (a point on the line breaks the run)
    run: int = 0  # results in a row on `side`
    run_warned: bool = False  # this run has opened its warning: one per run, not one per further point
    last_value: float | None = None
    direction: int = 0  # +1 rising, -1 falling, 0 neither
    trend: int = 0  # results in a row rising (or falling), the first of them included
    trend_warned: bool = False
    results: int = 0  # results counted since the chart began
    updated_at: datetime | None = None

"""Digests: how far each kind of digest (per shift, daily) of a plant has been sent.

The schedule itself is the plant file's `digests:` section (stored on the plant row); the
digest pass (routing/digests.py) sends every period that ended after `done_until` and moves it
on, in the same transaction as the outbox rows, so a restart or a second replica sends nothing twice.
"""

from __future__ import annotations

from datetime import datetime

from sqlmodel import Field, SQLModel


class DigestMark(SQLModel, table=True):
    """Per plant and digest kind: every period ending at or before `done_until` has been handled."""

    __tablename__ = "digest_marks"
    plant_id: str = Field(primary_key=True, foreign_key="plants.id")
    kind: str = Field(primary_key=True)  # shift | daily
    done_until: datetime

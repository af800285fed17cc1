"""The plant's static routing data — people, shifts, rules — read once per version of the plant.

Only loading the plant file writes these tables (an ERP sync brings machines, materials and
orders, never people or rules), and every load stores a new content hash on the plant row.
So a copy keyed on that hash stays right until the hash changes, also when another replica
loaded the file: every unit of work reads the plant row anyway and compares.
"""

from __future__ import annotations

from dataclasses import dataclass

from sqlmodel import Session

from models import Plant
from routing.roster import Roster
from routing.rules import RuleEntry, load_rules


@dataclass(frozen=True)
class StaticData:
    key: tuple[str, str | None]  # plant id, content hash
    roster: Roster
    rules: tuple[RuleEntry, ...]

    @classmethod
    def load(cls, session: Session, plant: Plant) -> StaticData:
        return cls((plant.id, plant.content_hash), Roster.load(session, plant.id), load_rules(session, plant.id))


class StaticCache:
    """The last `StaticData` read; a plant with another content hash (or none) is read again."""

    def __init__(self) -> None:
        # One reference, swapped whole: threads (timers, the ERP outbox) may read it side by side.
        self._data: StaticData | None = None

    def get(self, session: Session, plant: Plant) -> StaticData:
        data = self._data
        if data is not None and plant.content_hash is not None and data.key == (plant.id, plant.content_hash):
            return data
        data = StaticData.load(session, plant)
        self._data = data if plant.content_hash is not None else None
        return data

    def invalidate(self) -> None:
        """After loading the plant file: the next unit of work reads the tables again."""
        self._data = None

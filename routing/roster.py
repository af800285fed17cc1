"""Who is reachable for a role: area membership and the shift at the event time, plant-local.

The people and shifts change only when the plant file is loaded again, so a `Roster` keeps
them as plain data: choosing who to page costs no query, and only the people chosen are
read as rows (once per unit of work, then from the session's identity map).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, time, timedelta
from typing import Protocol
from zoneinfo import ZoneInfo

from sqlmodel import Session, select

from models import Person, Plant, Shift

DAY_NAMES = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")


class ShiftLike(Protocol):
    start: str
    end: str
    days: list[str]


def _parse_hhmm(text: str) -> time:
    hours, minutes = text.split(":")
    return time(int(hours), int(minutes))


@dataclass(frozen=True)
class ShiftHours:
    """A shift with its times parsed once: start, end (past midnight when end <= start), days."""

    start: time
    end: time
    days: tuple[str, ...]

    @classmethod
    def of(cls, shift: ShiftLike) -> ShiftHours:
        return cls(_parse_hhmm(shift.start), _parse_hhmm(shift.end),
                   tuple(d.lower()[:3] for d in shift.days) or DAY_NAMES)

    def covers(self, local: datetime) -> bool:
        today = DAY_NAMES[local.weekday()]
        clock = local.time()
        if self.start < self.end:
            return today in self.days and self.start <= clock < self.end
        # overnight, e.g. 22:00-06:00
        yesterday = DAY_NAMES[(local - timedelta(days=1)).weekday()]
        return (today in self.days and clock >= self.start) or (yesterday in self.days and clock < self.end)


def shift_covers(shift: ShiftLike, local: datetime) -> bool:
    """True if `local` (plant time) falls in the shift; a shift past midnight belongs to its start day."""
    return ShiftHours.of(shift).covers(local)


def plant_local(plant: Plant, at: datetime) -> datetime:
    return at.astimezone(ZoneInfo(plant.timezone))


def on_shift(person: Person, shifts: dict[str, Shift], local: datetime) -> bool:
    """People without shifts are reachable at any time (docs/plant-file.md)."""
    if not person.shifts:
        return True
    return any(sid in shifts and shift_covers(shifts[sid], local) for sid in person.shifts)


@dataclass(frozen=True)
class RosterEntry:
    person_id: str
    roles: tuple[str, ...]
    areas: tuple[str, ...]
    shifts: tuple[str, ...]


@dataclass(frozen=True)
class Roster:
    """The plant's people (ordered by id) and shifts as plain data, read once per plant version."""

    plant_id: str
    people: tuple[RosterEntry, ...]
    shifts: dict[str, ShiftHours]

    @classmethod
    def load(cls, session: Session, plant_id: str) -> Roster:
        shifts = {s.id: ShiftHours.of(s) for s in session.exec(select(Shift).where(Shift.plant_id == plant_id))}
        people = tuple(
            RosterEntry(p.id, tuple(p.roles), tuple(p.areas), tuple(p.shifts))
            for p in session.exec(select(Person).where(Person.plant_id == plant_id).order_by(Person.id))
        )
        return cls(plant_id, people, shifts)

    def ids_for_role(self, role: str, area: str | None, local: datetime) -> list[str]:
        """The ids of the people holding `role`, covering `area` (or all areas), on shift at `local`."""
        chosen = []
        for entry in self.people:
            if role not in entry.roles:
                continue
            if area and entry.areas and area not in entry.areas:
                continue
            if not entry.shifts or any(sid in self.shifts and self.shifts[sid].covers(local) for sid in entry.shifts):
                chosen.append(entry.person_id)
        return chosen


def people_by_id(session: Session, plant_id: str, ids: Sequence[str]) -> list[Person]:
    """The rows of `ids`, in that order: from the session's identity map, one query for the rest."""
    found: dict[str, Person] = {}
    for pid in ids:
        held = session.identity_map.get(session.identity_key(Person, (plant_id, pid)))
        if held is not None:
            found[pid] = held
    missing = [pid for pid in ids if pid not in found]
    if missing:
        # People are never written while a message is processed: nothing pending to flush first.
        with session.no_autoflush:
            found.update((p.id, p) for p in session.exec(
                select(Person).where(Person.plant_id == plant_id, Person.id.in_(missing))))  # type: ignore[attr-defined]
    return [found[pid] for pid in ids if pid in found]


def people_for_role(
    session: Session, plant: Plant, role: str, area: str | None, at: datetime, roster: Roster | None = None
) -> list[Person]:
    """People holding `role`, covering `area` (or all areas), on shift at `at`; ordered by id.

    `roster`: the plant's people and shifts already read (see `Roster`); read here without one.
    """
    roster = roster or Roster.load(session, plant.id)
    return people_by_id(session, plant.id, roster.ids_for_role(role, area, plant_local(plant, at)))

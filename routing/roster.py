"""Who is reachable for a role: area membership and the shift at the event time, plant-local."""

from __future__ import annotations

from datetime import datetime, time, timedelta
from zoneinfo import ZoneInfo

from sqlmodel import Session, select

from models import Person, Plant, Shift

DAY_NAMES = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")


def _parse_hhmm(text: str) -> time:
    hours, minutes = text.split(":")
    return time(int(hours), int(minutes))


def shift_covers(shift: Shift, local: datetime) -> bool:
    """True if `local` (plant time) falls in the shift; a shift past midnight belongs to its start day."""
    start, end = _parse_hhmm(shift.start), _parse_hhmm(shift.end)
    days = [d.lower()[:3] for d in shift.days] or list(DAY_NAMES)
    today = DAY_NAMES[local.weekday()]
    yesterday = DAY_NAMES[(local - timedelta(days=1)).weekday()]
    clock = local.time()
    if start < end:
        return today in days and start <= clock < end
    # overnight, e.g. 22:00-06:00
    return (today in days and clock >= start) or (yesterday in days and clock < end)


def plant_local(plant: Plant, at: datetime) -> datetime:
    return at.astimezone(ZoneInfo(plant.timezone))


def on_shift(person: Person, shifts: dict[str, Shift], local: datetime) -> bool:
    """People without shifts are reachable at any time (DESIGN.md section 4)."""
    if not person.shifts:
        return True
    return any(sid in shifts and shift_covers(shifts[sid], local) for sid in person.shifts)


def people_for_role(
    session: Session, plant: Plant, role: str, area: str | None, at: datetime
) -> list[Person]:
    """People holding `role`, covering `area` (or all areas), on shift at `at`; ordered by id."""
    shifts = {s.id: s for s in session.exec(select(Shift).where(Shift.plant_id == plant.id))}
    local = plant_local(plant, at)
    chosen = []
    for person in session.exec(select(Person).where(Person.plant_id == plant.id).order_by(Person.id)):
        if role not in person.roles:
            continue
        if area and person.areas and area not in person.areas:
            continue
        if on_shift(person, shifts, local):
            chosen.append(person)
    return chosen

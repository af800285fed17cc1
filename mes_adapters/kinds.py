"""The neutral MES transaction kinds: which fields each carries, checked once for every adapter.

Routing (routing/mes.py) produces these fields; every adapter validates them here before it
talks to its MES, so a bad transaction is refused with the same reason whichever MES the plant
runs. docs/mes.md documents the fields and the wire format.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from mes_adapters.base import Rejected

MACHINE_STATUSES = ("down", "running")
MAX_TEXT = 500  # characters of a free-text field (the approved fix) the MES gets

# kind -> (required fields, optional fields)
FIELDS: dict[str, tuple[tuple[str, ...], tuple[str, ...]]] = {
    "machine_status": (("machine", "status", "at"), ("exception",)),
    "work_order_hold": (("work_order", "machine", "at"), ("exception", "reason_code")),
    "work_order_resume": (("work_order", "machine", "at"), ("exception",)),
    "downtime_reason": (("machine", "reason_code", "down_at"),
                        ("up_at", "downtime_minutes", "exception", "type", "reason")),
}
TIMES = ("at", "down_at", "up_at")

# Reference prefixes of the local MES's book, one per kind.
PREFIXES = {"machine_status": "MS", "work_order_hold": "WH", "work_order_resume": "WR", "downtime_reason": "DR"}


def _time(value: Any) -> datetime | None:
    if not isinstance(value, str):
        return None
    try:
        parsed = datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        return None
    return parsed if parsed.utcoffset() is not None else None


def problems(kind: str, fields: Any) -> list[str]:
    """Every problem with these fields, in words an engineer can act on; empty when valid."""
    if kind not in FIELDS:
        return [f"unknown MES transaction kind {kind!r}; expected one of {', '.join(FIELDS)}"]
    if not isinstance(fields, dict):
        return [f"fields must be a mapping, got {type(fields).__name__}"]
    required, optional = FIELDS[kind]
    found = [f"{name} is missing" for name in required if fields.get(name) in (None, "")]
    found += [f"{name} is not a field of {kind}" for name in fields if name not in (*required, *optional)]
    for name, value in fields.items():
        if value in (None, "") or name not in (*required, *optional):
            continue
        if name in TIMES:
            if _time(value) is None:
                found.append(f"{name} must be an ISO 8601 time with a UTC offset (got {value!r})")
        elif name == "downtime_minutes":
            if not isinstance(value, int | float) or isinstance(value, bool) or value < 0:
                found.append(f"downtime_minutes must be a number of minutes, 0 or more (got {value!r})")
        elif not isinstance(value, str) or not value.strip() or len(value) > MAX_TEXT:
            found.append(f"{name} must be text of at most {MAX_TEXT} characters (got {value!r:.60})")
    if kind == "machine_status" and fields.get("status") not in (None, "", *MACHINE_STATUSES):
        found.append(f"status must be one of {', '.join(MACHINE_STATUSES)} (got {fields['status']!r})")
    down, up = _time(fields.get("down_at")), _time(fields.get("up_at"))
    if down and up and up < down:
        found.append(f"up_at ({fields['up_at']}) must not be before down_at ({fields['down_at']})")
    return found


def validate(kind: str, fields: Any) -> None:
    """Raise `Rejected` naming every problem at once."""
    found = problems(kind, fields)
    if found:
        raise Rejected(f"{kind}: " + "; ".join(found) if kind in FIELDS else found[0])

"""The neutral ERP transaction kinds: which fields each carries, checked once for every adapter.

Routing produces these fields; every adapter (ledger, ERPNext, Odoo, SAP) validates them here
before it talks to its ERP, so a bad transaction is rejected with the same clear reason
whichever ERP the plant runs. docs/erp.md documents the fields and each ERP's mapping.
"""

from __future__ import annotations

import base64
import hashlib
import re
from collections.abc import Callable
from datetime import datetime, timedelta
from typing import Any

from erp_adapters.base import Rejected, Transaction, decision_time

# Routing may speak of urgency instead of severity; both mean the same four levels.
PRIORITY_WORDS = {
    "low": "low",
    "normal": "medium",
    "medium": "medium",
    "high": "high",
    "urgent": "critical",
    "critical": "critical",
}
ORDER_ACTIONS = ("hold", "release", "complete")
STOCK_ACTIONS = ("block", "release", "scrap")
MATERIAL_ACTIONS = ("expedite", "transfer")

# kind -> (required fields, optional fields)
FIELDS: dict[str, tuple[tuple[str, ...], tuple[str, ...]]] = {
    "maintenance_request": (
        ("machine", "description"),
        (
            "machine_name",
            "reported_by",
            "fixed_by",
            "exception",
            "downtime_minutes",
            "down_at",
            "up_at",
            "priority",
        ),
    ),
    "production_order_status": (("work_order", "action"), ("reason",)),
    # `machine`: the machine the order now runs on (a move), else it stays where it is.
    "production_order_reschedule": (("work_order", "start", "end"), ("machine", "reason")),
    # The planner's split: the order keeps `quantity` (its new dates `start`/`end`, on its own
    # machine); a second order `new_order` makes `split_quantity` on `split_machine`.
    "production_order_split": (
        ("work_order", "quantity", "start", "end", "new_order", "split_quantity", "split_machine", "split_start",
         "split_end"),
        ("machine", "reason"),
    ),
    "stock_status": (("action", "material", "quantity", "unit"), ("lot", "work_order", "reason")),
    "nonconformance": (
        ("exception", "type", "description"),
        ("machine", "material", "work_order", "quantity", "unit", "disposition"),
    ),
    # Materials' decision on an exception: bring a quantity of a material by a time.
    "material_request": (("material", "quantity", "unit", "need_by"), ("action", "work_order", "reason")),
    # Customer service's decision: the customer order's promised date changes (and the customer was told).
    "customer_order_date": (("customer_order", "promised"), ("customer_told", "reason")),
}

# Document-number prefixes of the embedded ledger, one per kind.
PREFIXES = {
    "maintenance_request": "MR",
    "production_order_status": "POS",
    "production_order_reschedule": "RES",
    "production_order_split": "SPL",
    "stock_status": "STK",
    "nonconformance": "NC",
    "material_request": "MRQ",
    "customer_order_date": "COD",
}


def parse_time(value: Any) -> datetime | None:
    """An ISO 8601 timestamp with an offset, or None when it is not one."""
    if isinstance(value, datetime):
        parsed = value
    elif isinstance(value, str):
        try:
            parsed = datetime.fromisoformat(value.replace("Z", "+00:00"))
        except ValueError:
            return None
    else:
        return None
    return parsed if parsed.utcoffset() is not None else None


def _is_text(value: Any) -> bool:
    return isinstance(value, str) and bool(value.strip())


def _is_number(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool)


def problems(kind: str, fields: dict[str, Any]) -> list[str]:
    """Every problem with these fields, in words a planner can act on; empty when valid."""
    if kind not in FIELDS:
        return [f"unknown transaction kind {kind!r}; expected one of {', '.join(FIELDS)}"]
    if not isinstance(fields, dict):
        return [f"fields must be a mapping, got {type(fields).__name__}"]
    required, _optional = FIELDS[kind]
    found = [f"{name} is missing" for name in required if fields.get(name) in (None, "")]

    def text(name: str) -> None:
        value = fields.get(name)
        if value not in (None, "") and not _is_text(value) and not _is_number(value):
            found.append(f"{name} must be text, got {value!r}")

    def choice(name: str, allowed: tuple[str, ...]) -> None:
        value = fields.get(name)
        if value not in (None, "") and value not in allowed:
            found.append(f"{name} must be one of {', '.join(allowed)} (got {value!r})")

    def positive(name: str) -> None:
        value = fields.get(name)
        if value is not None and (not _is_number(value) or value <= 0):
            found.append(f"{name} must be a number greater than 0 (got {value!r})")

    if kind == "maintenance_request":
        for name in ("machine", "description", "machine_name", "reported_by", "exception"):
            text(name)
        choice("priority", tuple(PRIORITY_WORDS))
        minutes = fields.get("downtime_minutes")
        if minutes is not None and (not _is_number(minutes) or minutes < 0):
            found.append(f"downtime_minutes must be a number of minutes, 0 or more (got {minutes!r})")
        text("fixed_by")
        times = {name: fields.get(name) for name in ("down_at", "up_at")}
        for name, value in times.items():
            if value not in (None, "") and parse_time(value) is None:
                found.append(f"{name} must be an ISO 8601 time with a UTC offset (got {value!r})")
        down_at, up_at = parse_time(times["down_at"]), parse_time(times["up_at"])
        if down_at and up_at and up_at < down_at:
            found.append(f"up_at ({times['up_at']}) must not be before down_at ({times['down_at']})")
    elif kind == "production_order_status":
        text("work_order")
        choice("action", ORDER_ACTIONS)
    elif kind in ("production_order_reschedule", "production_order_split"):
        for name in ("work_order", "machine", "new_order", "split_machine"):
            text(name)
        spans = (("start", "end"), ("split_start", "split_end")) if kind == "production_order_split" else \
            (("start", "end"),)
        for first, last in spans:
            start, end = fields.get(first), fields.get(last)
            for name, value in ((first, start), (last, end)):
                if value not in (None, "") and parse_time(value) is None:
                    found.append(f"{name} must be an ISO 8601 time with a UTC offset (got {value!r})")
            start_at, end_at = parse_time(start), parse_time(end)
            if start_at and end_at and end_at <= start_at:
                found.append(f"{last} ({end}) must be after {first} ({start})")
        if kind == "production_order_split":
            positive("quantity")
            positive("split_quantity")
            if fields.get("new_order") not in (None, "") and fields.get("new_order") == fields.get("work_order"):
                found.append("new_order must name another order than work_order")
    elif kind == "stock_status":
        choice("action", STOCK_ACTIONS)
        for name in ("material", "unit", "lot", "work_order"):
            text(name)
        positive("quantity")
    elif kind == "material_request":
        for name in ("material", "unit", "work_order"):
            text(name)
        positive("quantity")
        choice("action", MATERIAL_ACTIONS)
        need_by = fields.get("need_by")
        if need_by not in (None, "") and parse_time(need_by) is None:
            found.append(f"need_by must be an ISO 8601 time with a UTC offset (got {need_by!r})")
    elif kind == "customer_order_date":
        text("customer_order")
        promised = fields.get("promised")
        if promised not in (None, "") and parse_time(promised) is None:
            found.append(f"promised must be an ISO 8601 time with a UTC offset (got {promised!r})")
        told = fields.get("customer_told")
        if told is not None and not isinstance(told, bool):
            found.append(f"customer_told must be true or false (got {told!r})")
    elif kind == "nonconformance":
        for name in ("exception", "type", "description", "machine", "material", "work_order", "disposition"):
            text(name)
        positive("quantity")
    return found


def validate(kind: str, fields: dict[str, Any]) -> None:
    """Raise `Rejected` naming every problem, so the thread can correct them in one go."""
    found = problems(kind, fields)
    if found:
        raise Rejected(f"{kind}: " + "; ".join(found) if kind in FIELDS else found[0])


def downtime_window(transaction: Transaction, now: Callable[[], datetime]) -> tuple[datetime, datetime]:
    """When the machine stopped and ran again: its own times (`down_at` / `up_at`, from the
    machine's state signals) where routing knew them, else the downtime counted up to the
    decision, ending at the decision."""
    decided = decision_time(transaction, now)
    fields = transaction.fields
    up = parse_time(fields.get("up_at")) or decided
    down = parse_time(fields.get("down_at")) or up - timedelta(minutes=float(fields.get("downtime_minutes") or 0))
    return down, max(up, down)


def priority(fields: dict[str, Any]) -> str:
    """The request's priority as low/medium/high/critical (medium when not given)."""
    return PRIORITY_WORDS.get(fields.get("priority") or "medium", "medium")


def key_digest(key: str, length: int) -> str:
    """A stable, upper-case alphanumeric digest of an idempotency key."""
    return base64.b32encode(hashlib.sha1(key.encode()).digest()).decode()[:length]


def short_reference(key: str, limit: int) -> str:
    """The key itself when it fits an ERP's short reference field, else a stable digest of it.

    SAP's MaintNotifExtReferenceNumber holds 20 characters; keys longer than that (or with
    characters a filter would need to escape) become "M" + 19 digest characters.
    """
    if len(key) <= limit and re.fullmatch(r"[A-Za-z0-9._/:-]+", key):
        return key
    return "M" + key_digest(key, limit - 1)

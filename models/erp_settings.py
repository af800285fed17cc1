"""The plant file's `erp:` block: the keys each ERP adapter reads, and the shape of each.

The block is handed to the adapter as is, so a key no adapter reads (a typo, or a key of an
adapter that never existed) would be ignored without a word. `check-plant` refuses it with
this schema; `mfgos check-erp` then checks the values against the ERP itself. Any key some
adapter reads is accepted, so one file can carry the blocks of an ERP migration. Keys
starting with `x-` are extensions, as everywhere in the plant file. docs/erp.md lists the
keys with their meaning.
"""

from __future__ import annotations

import difflib
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

TEXT, MAP, LIST = "text", "mapping", "list"

# Read by every adapter that posts stock, or by the sync.
COMMON = {"units": MAP, "scrap_from": TEXT, "default_area": TEXT, "timezone": TEXT}

ERP_SETTINGS: dict[str, dict[str, str]] = {
    "erpnext": {
        **COMMON,
        "company": TEXT,
        "warehouse": TEXT,
        "quarantine_warehouse": TEXT,
        "quality_procedure": TEXT,
        "assets": MAP,
        "workstations": MAP,
        "stop_reason": TEXT,
        "operator": TEXT,
        "employees": MAP,
    },
    "odoo": {
        **COMMON,
        "stock_location": TEXT,
        "quarantine_location": TEXT,
        "staging_location": TEXT,
        "scrap_location": TEXT,
        "picking_type": TEXT,
        "equipment": MAP,
        "workcenters": MAP,
        "maintenance_team_id": TEXT,
        "nonconformance_model": TEXT,
    },
    "sap": {
        **COMMON,
        "plant": TEXT,
        "storage_location": TEXT,
        "equipment": MAP,
        "movement_types": MAP,
        "cost_center": TEXT,
        "reason_codes": MAP,
        "notification_type": TEXT,
        "technical_object_type": TEXT,
        "order_functions": MAP,
        "quality_notification_type": TEXT,
        "quality_notification_fields": MAP,
        "requisition_types": MAP,
        "blocked_stock_types": LIST,
        "language": TEXT,
    },
}
SCRAP_FROM = ("blocked", "unrestricted")


def known_keys() -> dict[str, str]:
    """Every key some adapter reads, with its shape."""
    return {key: shape for keys in ERP_SETTINGS.values() for key, shape in keys.items()}


def _is_text(value: Any) -> bool:
    return isinstance(value, str | int | float) and not isinstance(value, bool) and str(value).strip() != ""


def problems(block: dict[Any, Any]) -> list[tuple[tuple[Any, ...], str]]:
    """(path inside `erp:`, what is wrong) for every unknown key and every value of the wrong shape."""
    known = known_keys()
    found: list[tuple[tuple[Any, ...], str]] = []
    for key, value in block.items():
        name = str(key)
        if name.startswith("x-"):
            continue
        shape = known.get(name)
        if shape is None:
            close = difflib.get_close_matches(name, known, n=1)
            hint = f"; did you mean {close[0]!r}?" if close else ""
            found.append(((key,), f"unknown key {name!r}: no ERP adapter reads it{hint}"))
            continue
        if shape == TEXT and not _is_text(value):
            found.append(((key,), f"expected text, got {value!r}"))
        elif shape == MAP and not (
            isinstance(value, dict) and all(_is_text(k) and _is_text(v) for k, v in value.items())
        ):
            found.append(((key,), f"expected a mapping of names to text, got {value!r}"))
        elif shape == LIST and not (isinstance(value, list) and all(_is_text(v) for v in value)):
            found.append(((key,), f"expected a list of text, got {value!r}"))
        elif name == "scrap_from" and value not in SCRAP_FROM:
            found.append(((key,), f"must be one of {', '.join(SCRAP_FROM)}, got {value!r}"))
        elif name == "timezone" and _is_text(value):
            try:
                ZoneInfo(str(value))
            except (ZoneInfoNotFoundError, ValueError):
                found.append(((key,), f"unknown time zone {value!r} (an IANA name such as Europe/Berlin)"))
    return found

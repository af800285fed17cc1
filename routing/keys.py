"""Idempotency keys of ERP transactions: unique forever, not only within one database.

The ERP outlives any mfgos database: a fresh install, a restored backup or a second plant
sharing the ERP numbers its exceptions and approvals from 1 again, so a key built from those
numbers alone names an older document, and the ERP adapters would adopt it instead of
posting. A random part per transaction makes every key new; the key is stored on its outbox
row, so every retry of that row still uses the same one.
"""

from __future__ import annotations

import uuid


def erp_key(plant_id: str, exception_code: str, approval_id: int | None, sequence: int) -> str:
    """`pune-1:E-0001:A2:1:3f9a0c1b2d4e`: readable where it came from, unique by its last part
    (48 random bits, and they only matter between keys whose readable parts are equal)."""
    return f"{plant_id}:{exception_code}:A{approval_id}:{sequence}:{uuid.uuid4().hex[:12]}"


def decision_key(plant_id: str, exception_code: str, decision_id: int) -> str:
    """`pune-1:E-0001:D3:5e0c2a9b1f7d`: the ERP key of a decision part (routing/decisions.py), one per
    part, as unique as `erp_key` and told apart from the resolution's keys by its `D`."""
    return f"{plant_id}:{exception_code}:D{decision_id}:{uuid.uuid4().hex[:12]}"

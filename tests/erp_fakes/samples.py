"""Valid neutral transactions for the demo plant's master data, as routing would produce them."""

from __future__ import annotations

from typing import Any


def samples() -> dict[str, dict[str, Any]]:
    return {
        "maintenance_request": {
            "machine": "CNC-07",
            "machine_name": "CNC mill 7",
            "description": "spindle noise, stopped",
            "reported_by": "ravi",
            "exception": "E-0001",
            "downtime_minutes": 35,
            "priority": "high",
        },
        "stock_status": {
            "action": "block",
            "material": "AL-6061-BAR",
            "quantity": 40,
            "unit": "pcs",
            "work_order": "WO-4471",
            "reason": "burrs on the bar ends",
        },
        "nonconformance": {
            "exception": "E-0001",
            "type": "quality",
            "machine": "CNC-07",
            "material": "AL-6061-BAR",
            "work_order": "WO-4471",
            "quantity": 40,
            "unit": "pcs",
            "description": "burrs on the bar ends",
            "disposition": "scrap 5, release the rest",
        },
        "production_order_status": {"work_order": "WO-4471", "action": "hold", "reason": "spindle failure"},
        "material_request": {
            "material": "AL-6061-BAR",
            "quantity": 40,
            "unit": "pcs",
            "need_by": "2026-11-26T06:00:00+01:00",
            "action": "expedite",
            "work_order": "WO-4471",
            "reason": "E-0001: CNC-07 down, WO-4471 moved",
        },
        "customer_order_date": {
            "customer_order": "SO-9001",
            "promised": "2026-11-28T12:00:00+01:00",
            "customer_told": True,
            "reason": "E-0001: CNC-07 down, WO-4471 moved",
        },
        "production_order_reschedule": {
            "work_order": "WO-4472",
            "start": "2026-11-26T06:00:00+01:00",
            "end": "2026-11-26T18:00:00+01:00",
        },
        "production_order_split": {
            "work_order": "WO-4472",
            "quantity": 300,
            "start": "2026-11-26T06:00:00+01:00",
            "end": "2026-11-26T14:00:00+01:00",
            "new_order": "WO-4472-2",
            "split_quantity": 200,
            "split_machine": "CNC-07",
            "split_start": "2026-11-25T20:00:00+01:00",
            "split_end": "2026-11-26T02:00:00+01:00",
            "reason": "E-0001: PRESS-02 down, half of WO-4472 on CNC-07",
        },
    }

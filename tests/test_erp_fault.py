"""1,000 approvals while the ERP is down for a stretch and loses answers after saving.

Two outbox workers on PostgreSQL. After recovery every transaction must be in the ERP exactly
once, in sequence order within its exception, and reported once with its reference (what the
thread gets).
"""

from __future__ import annotations

import time

import pytest
from sqlmodel import Session, select

from models.tables import ErpTransaction
from tests.erp_fakes.db import postgres_store
from tests.erp_fakes.harness import approvals, fake_erp, run_workers

EXCEPTIONS = 250  # four transactions each: 1,000 approvals


@pytest.mark.parametrize("erp_name", ["erpnext", "sap", "odoo"])
def test_a_thousand_approvals_survive_an_outage_exactly_once_in_order(erp_name: str) -> None:
    exceptions = EXCEPTIONS
    with postgres_store() as engine, fake_erp(erp_name, engine) as erp:
        keys = approvals(engine, exceptions, erp.settings)
        erp.faults.down = True
        erp.faults.retry_after = "0.3"
        erp.faults.lose_after_save_rate = 0.1

        def outage() -> None:
            time.sleep(1.5)
            assert erp.faults.requests > 0, "the workers never tried while the ERP was down"
            erp.faults.down = False

        elapsed, stats = run_workers(engine, erp.make, workers=2, deadline=240, during=outage)

        with Session(engine) as session:
            rows = list(session.exec(select(ErpTransaction)))
        assert len(rows) == 4 * exceptions
        assert {r.status for r in rows} == {"sent"}, f"not all posted after {elapsed:.1f} s"
        assert all(not s.errors for s in stats), [s.errors for s in stats]
        assert all(s.outcomes.get("posted") for s in stats), "both workers must have posted"
        assert sum(s.outcomes.get("retry", 0) for s in stats) > 0  # the outage and the lost answers were met
        reported = [item for s in stats for item in s.reported]
        assert sorted(key for key, _ in reported) == sorted(r.idempotency_key for r in rows)  # once each
        assert dict(reported) == {r.idempotency_key: r.reference for r in rows}
        assert all(r.reference for r in rows)
        assert len({r.reference for r in rows}) == len(rows), "two transactions adopted one document"
        for exception_keys in keys.values():
            positions = [erp.position(key) for key in exception_keys]
            assert all(len(p) == 1 for p in positions), (
                f"not exactly once: {dict(zip(exception_keys, positions, strict=True))}"
            )
            assert [p[0] for p in positions] == sorted(p[0] for p in positions), (
                f"out of order: {exception_keys}"
            )

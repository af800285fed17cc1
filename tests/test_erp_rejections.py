"""A rejected ERP transaction settles: retried after the fix, or abandoned, and the exception
moves on either way (before, an abandoned row left the exception `approved` for good).

The quality replay runs against the fake ERPNext with a Quality Procedure ERPNext lacks: the
Non Conformance is refused and holds the two stock movements behind it.
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from sqlmodel import Session, select

from erp_adapters.outbox import ErpOutbox, abandon_rejected, retry_rejected
from mfgos.replay import replay
from models.db import make_engine
from models.tables import ErpTransaction, Notification, Plant, PlantException, TimelineEvent
from routing.erp_rejections import erp_rejection_settled
from routing.workflow import WorkflowError, record_erp_result
from tests.erp_fakes import erpnext
from tests.erp_fakes.server import serve
from tests.test_erp_replay import ERP_BLOCKS, HELD, PuneErp, _erpnext_site, scenario_for


@pytest.fixture
def fake_erpnext() -> Iterator[PuneErp]:
    site, holds, (user, token) = _erpnext_site()
    with serve(erpnext.make_app(site)) as url:
        yield PuneErp("erpnext", url, user, token, holds, site)


def refused_replay(erp: PuneErp, scenario: str, database_url: str, directory: Path) -> tuple[dict[str, Any], datetime]:
    result = replay(scenario_for(scenario, "erpnext", directory), database_url=database_url,
                    settings=erp.settings(database_url))
    assert result["erp_transactions"][0]["status"] == "rejected"
    assert [e["status"] for e in result["exceptions"]] == ["approved"]
    return result, datetime.fromisoformat(result["erp_transactions"][0]["created_at"]) + timedelta(minutes=20)


@contextmanager
def settled(
    database_url: str, erp: PuneErp, now: datetime, action: str, reason: str = "", fix: Any = None,
    by: str = "ana",
) -> Iterator[Session]:
    """Decide on the rejected row as the thread would, drain the outbox, then show the store."""
    engine = make_engine(database_url)
    try:
        with Session(engine) as session:
            txn = session.exec(select(ErpTransaction).where(ErpTransaction.status == "rejected")).one()
            if fix:
                fix(session)
            if action == "retry":
                retry_rejected(session, txn.id)
            else:
                abandon_rejected(session, txn.id, reason)
            erp_rejection_settled(session, txn, action, by, reason, now)
            session.commit()
        adapter = erpnext.ErpNextErp(erp.url, user=erp.user, token=erp.token, now=lambda: now)
        outbox = ErpOutbox(engine, adapter, now=lambda: now,
                           on_settled=lambda s, t, outcome, detail: record_erp_result(s, t, outcome, detail, now))

        async def drain() -> None:
            try:
                for _ in range(5):
                    await outbox.post_due()
            finally:
                await adapter.aclose()

        asyncio.run(drain())
        with Session(engine) as session:
            yield session
    finally:
        engine.dispose()


def test_abandoning_the_last_rejection_settles_the_exception(
    fake_erpnext: PuneErp, database_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The breakdown's only transaction is refused (no erp.operator): abandoned, the exception is
    posted and closed; before, it stayed approved with nothing left to post."""
    monkeypatch.delitem(ERP_BLOCKS["erpnext"], "operator")
    result, now = refused_replay(fake_erpnext, "breakdown_ledger", database_url, tmp_path)
    assert "erp.operator is not set" in result["erp_transactions"][0]["error"]
    with settled(database_url, fake_erpnext, now, "abandon", "the Employee is not set up yet", by="sara") as session:
        assert [r.status for r in session.exec(select(ErpTransaction))] == ["failed"]
        assert session.exec(select(PlantException)).one().status == "closed"
        events = [e.kind for e in session.exec(select(TimelineEvent).order_by(TimelineEvent.id))]
        assert events[events.index("erp_abandoned"):] == ["erp_abandoned", "posted", "closed"]
        told = {(n.person_id, n.text) for n in session.exec(select(Notification).where(Notification.kind == "erp_abandoned"))}
        assert ("ravi", "E-0001: Sara Khan ne ERP mein maintenance request chhod diya (the Employee is not set up "
                "yet). Zaroorat ho to ERP mein haath se darj karein.") in told
        assert {who for who, _ in told} >= {"sara", "ravi", "tom"}  # who abandoned, the reporter, who fixed it
    assert not fake_erpnext.state.docs["Downtime Entry"]


def test_abandoning_a_rejection_lets_the_later_transactions_post(
    fake_erpnext: PuneErp, database_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setitem(ERP_BLOCKS["erpnext"], "quality_procedure", "QP-Nope")
    result, now = refused_replay(fake_erpnext, "quality_hold", database_url, tmp_path)
    assert [t["status"] for t in result["erp_transactions"]] == ["rejected", "pending", "pending"]
    with settled(database_url, fake_erpnext, now, "abandon", "no procedure for gear burns yet") as session:
        rows = session.exec(select(ErpTransaction).order_by(ErpTransaction.sequence)).all()
        assert [r.status for r in rows] == ["failed", "sent", "sent"]
        assert session.exec(select(PlantException)).one().status == "closed"
    assert not fake_erpnext.state.docs["Non Conformance"]
    assert fake_erpnext.state.bins[("FRG-20MNCR5", "Quarantine - PD")] == 0
    assert fake_erpnext.state.bins[("FRG-20MNCR5", "Stores - PD")] == HELD - 8


def test_a_retried_rejection_posts_after_the_fix(
    fake_erpnext: PuneErp, database_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setitem(ERP_BLOCKS["erpnext"], "quality_procedure", "QP-Nope")
    erp = fake_erpnext
    result, now = refused_replay(erp, "quality_hold", database_url, tmp_path)
    assert "ERPNext has no Quality Procedure QP-Nope" in result["erp_transactions"][0]["error"]

    def fix(session: Session) -> None:  # the plant file corrected and loaded again
        plant = session.get(Plant, "pune-1")
        plant.erp = {**plant.erp, "quality_procedure": "QP-Deviation"}
        session.add(plant)

    with settled(database_url, erp, now, "retry", fix=fix) as session:
        rows = session.exec(select(ErpTransaction).order_by(ErpTransaction.sequence)).all()
        assert [r.status for r in rows] == ["sent", "sent", "sent"]
        assert session.exec(select(PlantException)).one().status == "closed"
        retried = session.exec(select(Notification).where(Notification.kind == "erp_retried")).all()
        assert {n.person_id for n in retried} >= {"ana", "ravi"}
    assert [d["procedure"] for d in erp.state.docs["Non Conformance"].values()] == ["QP-Deviation"]


def test_only_the_approver_role_settles_a_rejection(
    fake_erpnext: PuneErp, database_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The lifecycle table decides outside a chat too: the quality engineer may not abandon a
    breakdown's transaction (the supervisor approves breakdowns)."""
    monkeypatch.delitem(ERP_BLOCKS["erpnext"], "operator")
    _, now = refused_replay(fake_erpnext, "breakdown_ledger", database_url, tmp_path)
    engine = make_engine(database_url)
    try:
        with Session(engine) as session:
            txn = session.exec(select(ErpTransaction)).one()
            with pytest.raises(WorkflowError, match="supervisor"):
                erp_rejection_settled(session, txn, "abandon", "ana", "not mine to say", now)
    finally:
        engine.dispose()

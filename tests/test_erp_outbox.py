"""The ERP outbox worker and the embedded ledger: exactly once, in order, through crashes."""

from __future__ import annotations

import asyncio
import random
import threading
from datetime import UTC, datetime, timedelta
from types import SimpleNamespace
from typing import Any

import pytest
from sqlalchemy.engine import Engine
from sqlmodel import Session, select

from erp_adapters.base import AuthFailed, Rejected, Transaction, Unavailable, parse_retry_after
from erp_adapters.ledger import LedgerErp
from erp_adapters.outbox import ErpOutbox, abandon_rejected, retry_rejected
from erp_adapters.registry import create_adapter
from models.tables import ErpTransaction, LedgerDocument, OutboxStatus, TimelineEvent
from tests.erp_fakes.db import T0, postgres_store, queue, row, seed_exception, seed_plant

pytestmark = pytest.mark.anyio

BREAKDOWN = {
    "machine": "CNC-07",
    "machine_name": "CNC mill 7",
    "description": "spindle noise, stopped",
    "reported_by": "ravi",
    "exception": "E-0001",
    "priority": "high",
}


def block(quantity: float = 40) -> dict[str, Any]:
    return {
        "action": "block",
        "material": "AL-6061-BAR",
        "quantity": quantity,
        "unit": "pcs",
        "reason": "burrs",
    }


class Clock:
    def __init__(self, start: datetime = T0) -> None:
        self.at = start

    def __call__(self) -> datetime:
        return self.at

    def advance(self, **delta: float) -> None:
        self.at += timedelta(**delta)


class Crash(BaseException):
    """The worker process dies at this point (not an error anyone handles)."""


class ScriptedLedger(LedgerErp):
    """The real ledger, with scripted failures before or after it books, recording every call."""

    def __init__(
        self,
        engine: Engine,
        *,
        before: list[BaseException] | None = None,
        after: list[BaseException] | None = None,
        lose_answer: float = 0.0,
        latency: float = 0.0,
        seed: int = 7,
    ) -> None:
        super().__init__(engine)
        self.before = before or []  # raised instead of booking
        self.after = after or []  # raised after booking: the ERP saved, the answer never arrived
        self.lose_answer = lose_answer
        self.latency = latency
        self.random = random.Random(seed)
        self.posts: list[str] = []
        self.lookups: list[str] = []

    async def post(self, transaction: Transaction) -> str:
        self.posts.append(transaction.idempotency_key)
        if self.latency:
            await asyncio.sleep(self.latency)
        if self.before:
            raise self.before.pop(0)
        reference = await super().post(transaction)
        if self.after:
            raise self.after.pop(0)
        if self.random.random() < self.lose_answer:
            raise Unavailable("503 after saving")
        return reference

    async def lookup(self, transaction: Transaction) -> str | None:
        self.lookups.append(transaction.idempotency_key)
        return await super().lookup(transaction)


class Settlements:
    """An `on_settled` that writes the timeline like routing does, in the settling transaction."""

    def __init__(self, fail: bool = False) -> None:
        self.calls: list[tuple[int, str, str]] = []
        self.fail = fail

    def __call__(self, session: Session, txn: ErpTransaction, outcome: str, detail: str) -> None:
        assert txn.id is not None
        if self.fail:
            raise RuntimeError("routing could not write the timeline")
        self.calls.append((txn.id, outcome, detail))
        if txn.exception_id is not None:
            session.add(
                TimelineEvent(
                    exception_id=txn.exception_id,
                    at=T0,
                    kind=f"erp_{outcome}",
                    text=detail,
                    data={"status": txn.status, "reference": txn.reference},
                )
            )



@pytest.fixture
def plant(engine: Engine) -> Engine:
    seed_plant(engine, erp={"company": "Berlin GmbH"})
    return engine


def documents(engine: Engine) -> list[LedgerDocument]:
    return LedgerErp(engine).documents()


def timeline(engine: Engine) -> list[TimelineEvent]:
    with Session(engine) as session:
        return list(session.exec(select(TimelineEvent).order_by(TimelineEvent.id)))


# --- the ledger ------------------------------------------------------------------------------


async def test_ledger_numbers_per_kind_and_books_a_key_once(plant: Engine) -> None:
    ledger = LedgerErp(plant, now=lambda: T0)
    first = await ledger.post(Transaction("maintenance_request", BREAKDOWN, "k-1"))
    again = await ledger.post(Transaction("maintenance_request", BREAKDOWN, "k-1"))
    stock = await ledger.post(Transaction("stock_status", block(), "k-2"))
    assert first == again == "MR-000001"
    assert stock == "STK-000002"
    assert await ledger.lookup(Transaction("maintenance_request", BREAKDOWN, "k-1")) == "MR-000001"
    assert await ledger.lookup(Transaction("stock_status", block(), "k-1")) is None  # another kind
    assert await ledger.lookup(Transaction("maintenance_request", BREAKDOWN, "never-posted")) is None
    books = documents(plant)
    assert [(d.reference, d.kind, d.posted_at) for d in books] == [
        ("MR-000001", "maintenance_request", T0),
        ("STK-000002", "stock_status", T0),
    ]
    assert books[1].fields["quantity"] == 40


@pytest.mark.parametrize(
    ("kind", "fields", "reason"),
    [
        ("maintenance_request", {"description": "noise"}, "maintenance_request: machine is missing"),
        (
            "stock_status",
            {"action": "hold", "material": "AL-6061-BAR", "quantity": -3, "unit": "pcs"},
            "stock_status: action must be one of block, release, scrap (got 'hold'); "
            "quantity must be a number greater than 0 (got -3)",
        ),
        (
            "production_order_reschedule",
            {
                "work_order": "WO-4471",
                "start": "2026-11-26T06:00:00+00:00",
                "end": "2026-11-26T05:00:00+00:00",
            },
            "production_order_reschedule: end (2026-11-26T05:00:00+00:00) must be after start",
        ),
        (
            "production_order_status",
            {"work_order": "WO-4471", "action": "pause"},
            "action must be one of hold",
        ),
        (
            "maintenance_request",
            {"machine": "CNC-07", "description": "noise", "priority": "asap"},
            "priority must be one of low, normal, medium, high, urgent, critical (got 'asap')",
        ),
        ("teleport", {}, "unknown transaction kind 'teleport'"),
    ],
)
async def test_ledger_rejects_bad_fields_with_a_clear_reason(
    plant: Engine, kind: str, fields: dict[str, Any], reason: str
) -> None:
    with pytest.raises(Rejected) as refused:
        await LedgerErp(plant).post(Transaction(kind, fields, "bad-1"))
    assert reason in refused.value.reason
    assert documents(plant) == []


def test_registry_builds_the_ledger_and_names_the_choices(plant: Engine) -> None:
    settings = SimpleNamespace(erp_url=None, erp_user=None, erp_token=None)
    adapter = create_adapter("ledger", engine=plant, settings=settings)
    assert isinstance(adapter, LedgerErp) and adapter.engine is plant
    with pytest.raises(ValueError, match="unknown ERP 'navision'.*ledger"):
        create_adapter("navision", engine=plant, settings=settings)


def test_retry_after_takes_seconds_and_http_dates() -> None:
    now = datetime(2026, 11, 25, 8, 0, tzinfo=UTC)
    assert parse_retry_after("120") == 120
    assert parse_retry_after("Wed, 25 Nov 2026 08:01:30 GMT", now=now) == 90
    assert parse_retry_after("Wed, 25 Nov 2026 07:00:00 GMT", now=now) == 0
    assert parse_retry_after("soon") is None
    assert parse_retry_after(None) is None


# --- the outbox ------------------------------------------------------------------------------


async def test_posts_once_and_reports_in_the_same_db_transaction(plant: Engine) -> None:
    exception_id = seed_exception(plant, 1)
    txn_id = queue(plant, "maintenance_request", BREAKDOWN, key="E-0001/1", exception_id=exception_id)
    clock, settled = Clock(), Settlements()
    erp = ScriptedLedger(plant)
    outbox = ErpOutbox(plant, erp, now=clock, on_settled=settled)

    assert await outbox.post_due() == 1
    assert await outbox.post_due() == 0

    posted = row(plant, txn_id)
    assert (posted.status, posted.reference, posted.attempts, posted.posted_at) == (
        "sent",
        "MR-000001",
        1,
        T0,
    )
    assert erp.posts == ["E-0001/1"] and erp.lookups == []  # a first attempt needs no look-up
    assert settled.calls == [(txn_id, "posted", "MR-000001")]
    [event] = timeline(plant)
    assert (event.kind, event.text, event.data) == (
        "erp_posted",
        "MR-000001",
        {"status": "sent", "reference": "MR-000001"},
    )
    assert [d.fields for d in documents(plant)] == [BREAKDOWN]


async def test_crash_between_post_and_commit_adopts_the_booked_document(plant: Engine) -> None:
    exception_id = seed_exception(plant, 1)
    txn_id = queue(plant, "stock_status", block(), key="E-0001/1", exception_id=exception_id)
    clock = Clock()
    crashing = ScriptedLedger(plant, after=[Crash()])
    with pytest.raises(Crash):
        await ErpOutbox(plant, crashing, now=clock).post_due()
    leased = row(plant, txn_id)
    assert (leased.status, leased.attempts, leased.next_attempt_at) == (
        "pending",
        1,
        T0 + timedelta(minutes=2),
    )
    assert [d.reference for d in documents(plant)] == ["STK-000001"]

    survivor, settled = ScriptedLedger(plant), Settlements()
    outbox = ErpOutbox(plant, survivor, now=clock, on_settled=settled)
    assert await outbox.post_due() == 0  # still leased by the dead worker
    clock.advance(minutes=2)
    assert await outbox.post_due() == 1

    assert survivor.lookups == ["E-0001/1"] and survivor.posts == []
    adopted = row(plant, txn_id)
    assert (adopted.status, adopted.reference, adopted.attempts) == ("sent", "STK-000001", 2)
    assert settled.calls == [(txn_id, "posted", "STK-000001")]
    assert len(documents(plant)) == 1


async def test_report_that_fails_rolls_back_and_the_row_is_settled_later(plant: Engine) -> None:
    exception_id = seed_exception(plant, 1)
    txn_id = queue(plant, "maintenance_request", BREAKDOWN, key="E-0001/1", exception_id=exception_id)
    clock = Clock()
    await ErpOutbox(plant, ScriptedLedger(plant), now=clock, on_settled=Settlements(fail=True)).post_due()
    assert row(plant, txn_id).status == "pending" and timeline(plant) == []

    clock.advance(minutes=3)
    erp, settled = ScriptedLedger(plant), Settlements()
    assert await ErpOutbox(plant, erp, now=clock, on_settled=settled).post_due() == 1
    assert erp.posts == [] and settled.calls == [(txn_id, "posted", "MR-000001")]
    assert [e.kind for e in timeline(plant)] == ["erp_posted"]


async def test_backoff_is_exponential_and_honours_retry_after(plant: Engine) -> None:
    exception_id = seed_exception(plant, 1)
    txn_id = queue(plant, "maintenance_request", BREAKDOWN, key="E-0001/1", exception_id=exception_id)
    clock, settled = Clock(), Settlements()
    erp = ScriptedLedger(
        plant, before=[Unavailable("429", retry_after=30), Unavailable("503"), Unavailable("timeout")]
    )
    outbox = ErpOutbox(plant, erp, now=clock, on_settled=settled)

    assert await outbox.post_due() == 1
    assert row(plant, txn_id).next_attempt_at == T0 + timedelta(seconds=30)
    clock.advance(seconds=29)
    assert await outbox.post_due() == 0  # the ERP asked for 30 s
    clock.advance(seconds=1)
    assert await outbox.post_due() == 1
    assert row(plant, txn_id).next_attempt_at == clock.at + timedelta(seconds=4)  # 2 s, 4 s, 8 s, ...
    clock.advance(seconds=4)
    assert await outbox.post_due() == 1
    third = row(plant, txn_id)
    assert (third.attempts, third.next_attempt_at, third.error) == (
        3,
        clock.at + timedelta(seconds=8),
        "timeout",
    )
    clock.advance(seconds=8)
    assert await outbox.post_due() == 1

    assert row(plant, txn_id).status == "sent"
    assert [outcome for _, outcome, _ in settled.calls] == ["retry", "retry", "retry", "posted"]
    assert "next attempt at 2026-11-25T08:00:30+00:00" in settled.calls[0][2]
    assert erp.lookups == ["E-0001/1"] * 3  # each re-post first asks whether the ERP has it


async def test_backoff_is_capped_and_attempts_never_run_out(plant: Engine) -> None:
    txn_id = queue(plant, "maintenance_request", BREAKDOWN, key="lonely")
    clock = Clock()
    erp = ScriptedLedger(plant, before=[Unavailable("down") for _ in range(12)])
    outbox = ErpOutbox(plant, erp, now=clock, backoff_cap=300)
    for _ in range(12):
        assert await outbox.post_due() == 1
        clock.at = row(plant, txn_id).next_attempt_at
    assert row(plant, txn_id).next_attempt_at - clock.at == timedelta(0)
    assert await outbox.post_due() == 1
    done = row(plant, txn_id)
    assert (done.status, done.attempts) == ("sent", 13)


async def test_rejected_is_reported_blocks_its_exception_and_can_be_corrected(plant: Engine) -> None:
    first, second = seed_exception(plant, 1), seed_exception(plant, 2)
    bad = queue(plant, "stock_status", block(quantity=0), key="E-0001/1", exception_id=first, sequence=1)
    after_bad = queue(plant, "maintenance_request", BREAKDOWN, key="E-0001/2", exception_id=first, sequence=2)
    other = queue(plant, "maintenance_request", BREAKDOWN, key="E-0002/1", exception_id=second, sequence=1)
    clock, settled = Clock(), Settlements()
    outbox = ErpOutbox(plant, ScriptedLedger(plant), now=clock, on_settled=settled)

    assert await outbox.post_due() == 2
    assert await outbox.post_due() == 0  # E-0001's second transaction waits behind the rejected one
    refused = row(plant, bad)
    assert refused.status == "rejected"
    assert refused.error == "stock_status: quantity must be a number greater than 0 (got 0)"
    assert (bad, "rejected", refused.error) in settled.calls
    assert row(plant, after_bad).status == "pending" and row(plant, other).status == "sent"

    with Session(plant) as session:
        with pytest.raises(ValueError, match="quantity must be a number greater than 0"):
            retry_rejected(session, bad, {"quantity": -1})
        with pytest.raises(ValueError, match="is sent; only a rejected one"):
            retry_rejected(session, other, None)
        retry_rejected(session, bad, {"quantity": 40, "reason": None})
        session.commit()
    corrected = row(plant, bad)
    assert corrected.status == "pending" and corrected.error is None
    assert corrected.fields == {"action": "block", "material": "AL-6061-BAR", "quantity": 40, "unit": "pcs"}

    assert await outbox.post_due() == 1
    assert await outbox.post_due() == 1
    assert [(row(plant, i).status, row(plant, i).reference) for i in (bad, after_bad)] == [
        ("sent", "STK-000002"),
        ("sent", "MR-000003"),
    ]


async def test_abandoning_a_rejected_transaction_unblocks_the_rest(plant: Engine) -> None:
    exception_id = seed_exception(plant, 1)
    bad = queue(
        plant, "stock_status", block(quantity=0), key="E-0001/1", exception_id=exception_id, sequence=1
    )
    later = queue(
        plant, "maintenance_request", BREAKDOWN, key="E-0001/2", exception_id=exception_id, sequence=2
    )
    outbox = ErpOutbox(plant, ScriptedLedger(plant), now=Clock())
    await outbox.post_due()
    with Session(plant) as session:
        abandon_rejected(session, bad, "booked by hand in the ERP")
        session.commit()
    assert await outbox.post_due() == 1
    assert row(plant, bad).status == "failed" and row(plant, later).status == "sent"


async def test_order_within_an_exception_survives_retries(plant: Engine) -> None:
    a, b = seed_exception(plant, 1), seed_exception(plant, 2)
    ids = {
        (a, 1): queue(plant, "stock_status", block(), key="A1", exception_id=a, sequence=1),
        (a, 2): queue(plant, "maintenance_request", BREAKDOWN, key="A2", exception_id=a, sequence=2),
        (a, 3): queue(
            plant,
            "nonconformance",
            {"exception": "E-0001", "type": "quality", "description": "burrs"},
            key="A3",
            exception_id=a,
            sequence=3,
        ),
        (b, 1): queue(plant, "stock_status", block(), key="B1", exception_id=b, sequence=1),
        (b, 2): queue(plant, "stock_status", block(), key="B2", exception_id=b, sequence=2),
    }
    clock = Clock()
    erp = ScriptedLedger(plant, before=[Unavailable("busy")])  # A1 fails once
    outbox = ErpOutbox(plant, erp, now=clock)
    assert await outbox.post_due() == 2  # the heads only: A1 (fails) and B1
    assert await outbox.post_due() == 1  # B2; A2 must wait for A1
    assert row(plant, ids[(a, 2)]).attempts == 0
    clock.advance(seconds=2)
    for _ in range(3):
        await outbox.post_due()
    assert erp.posts == ["A1", "B1", "B2", "A1", "A2", "A3"]
    by_key = {d.idempotency_key: d.id for d in documents(plant)}
    assert by_key["A1"] < by_key["A2"] < by_key["A3"] and by_key["B1"] < by_key["B2"]


async def test_auth_failure_pauses_all_posting_and_alerts_once(plant: Engine) -> None:
    exception_ids = [seed_exception(plant, n) for n in (1, 2, 3)]
    ids = [
        queue(plant, "maintenance_request", BREAKDOWN, key=f"E-{n}/1", exception_id=e)
        for n, e in enumerate(exception_ids, 1)
    ]
    clock, settled = Clock(), Settlements()
    erp = ScriptedLedger(plant, before=[AuthFailed("401 invalid API key")] * 3)
    outbox = ErpOutbox(
        plant, erp, now=clock, on_settled=settled, auth_pause=timedelta(minutes=5), concurrency=1
    )

    assert await outbox.post_due() == 1
    assert [outcome for _, outcome, _ in settled.calls] == ["auth_failed"]
    assert "401 invalid API key; ERP posting paused until 2026-11-25T08:05:00+00:00" in settled.calls[0][2]
    assert erp.posts == ["E-1/1"]  # the rest of the pass was held back, not tried
    assert all(row(plant, i).status == "pending" for i in ids)
    clock.advance(minutes=4)
    assert await outbox.post_due() == 0 and outbox.paused
    clock.advance(minutes=1)
    erp.before.clear()
    assert await outbox.post_due() == 3
    assert all(row(plant, i).status == "sent" for i in ids)
    assert len(documents(plant)) == 3


async def test_run_forever_posts_until_stopped(plant: Engine) -> None:
    for n in range(1, 4):
        queue(plant, "maintenance_request", BREAKDOWN, key=f"k{n}")
    stop = asyncio.Event()
    outbox = ErpOutbox(plant, ScriptedLedger(plant), now=lambda: datetime.now(UTC))
    worker = asyncio.create_task(outbox.run_forever(stop, poll_interval=0.05))
    for _ in range(100):
        if len(documents(plant)) == 3:
            break
        await asyncio.sleep(0.05)
    stop.set()
    await asyncio.wait_for(worker, 2)
    assert len(documents(plant)) == 3


def test_two_workers_on_postgresql_never_post_twice() -> None:
    """Two replicas, answers lost after saving at random: every key booked once, in order."""
    exceptions, per_exception = 40, 5
    with postgres_store() as store:
        seed_plant(store)
        expected: dict[int, list[str]] = {}
        for n in range(1, exceptions + 1):
            exception_id = seed_exception(store, n)
            expected[exception_id] = []
            for sequence in range(1, per_exception + 1):
                key = f"E-{n:04d}/{sequence}"
                queue(
                    store,
                    "stock_status",
                    block(sequence),
                    key=key,
                    exception_id=exception_id,
                    sequence=sequence,
                )
                expected[exception_id].append(key)
        erps = [ScriptedLedger(store, lose_answer=0.2, latency=0.002, seed=seed) for seed in (1, 2)]

        def replica(erp: ScriptedLedger) -> None:
            async def work() -> None:
                outbox = ErpOutbox(
                    store, erp, now=lambda: datetime.now(UTC), backoff_base=0.01, backoff_cap=0.05
                )
                idle = 0
                while idle < 20:
                    idle = 0 if await outbox.post_due(limit=25) else idle + 1
                    await asyncio.sleep(0.01)

            asyncio.run(work())

        threads = [threading.Thread(target=replica, args=(erp,)) for erp in erps]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(timeout=120)

        with Session(store) as session:
            rows = list(session.exec(select(ErpTransaction)))
        assert {r.status for r in rows} == {OutboxStatus.sent.value}
        books = documents(store)
        assert len(books) == exceptions * per_exception
        assert {r.reference for r in rows} == {d.reference for d in books}
        posted = erps[0].posts + erps[1].posts
        assert all(erp.posts for erp in erps), "both replicas must have posted"
        # A key is posted again only after a lost answer, and then the look-up finds it first.
        assert len(posted) == len(set(posted)) == exceptions * per_exception
        order = {d.idempotency_key: d.id for d in books}
        for keys in expected.values():
            assert [order[k] for k in keys] == sorted(order[k] for k in keys)

"""The behaviour every MES adapter shows, run against each one (like tests/erp_fakes/contract.py).

An adapter joins with one line in tests/test_mes_contract.py: `class TestRest(MesContract,
RestFixtures)`, where the fixtures class provides a `mes` fixture returning a `MesUnderTest`.
The outbox tests run the real `MesOutbox` with the real timeline writer (`routing.mes.record_result`)
on a migrated store, so "sent once", "refused for good" and "shown on the timeline" are checked
where they happen.
"""

from __future__ import annotations

import dataclasses
import logging
from collections.abc import Callable
from datetime import datetime, timedelta
from typing import Any

import pytest
from sqlalchemy.engine import Engine
from sqlmodel import Session, select

from mes_adapters.base import AuthFailed, MesAdapter, Rejected, Transaction
from mes_adapters.outbox import MesOutbox
from models import Plant, PlantException, TimelineEvent
from models.mes import MesTransaction
from routing import mes as mes_rows
from tests.erp_fakes.db import T0
from tests.erp_fakes.server import Faults

AT = T0.isoformat()
UP = (T0 + timedelta(minutes=40)).isoformat()
SETTINGS = {"site": "PUNE", "machines": {"HOB-01": "EQ-HOB1"}, "reason_codes": [], "default_reason": "DT-999"}
SAMPLES: dict[str, dict[str, Any]] = {
    "machine_status": {"machine": "HOB-01", "status": "down", "at": AT, "exception": "E-0001"},
    "work_order_hold": {"machine": "HOB-01", "work_order": "WO-1042", "at": AT, "reason_code": "DT-110",
                        "exception": "E-0001"},
    "work_order_resume": {"machine": "HOB-01", "work_order": "WO-1042", "at": UP, "exception": "E-0001"},
    "downtime_reason": {"machine": "HOB-01", "reason_code": "DT-110", "down_at": AT, "up_at": UP,
                        "downtime_minutes": 40.0, "type": "breakdown", "reason": "replaced the hob arbor bearing",
                        "exception": "E-0001"},
}


@dataclasses.dataclass
class MesUnderTest:
    name: str  # the registry name
    make: Callable[..., MesAdapter]  # make(**overrides): a fresh adapter against the fake
    engine: Engine  # a migrated store with plant pune-1 (its mes: settings) and exception E-0001
    count: Callable[[str], int]  # how many transactions the MES holds under this key
    stored: Callable[[str], dict[str, Any]]  # the neutral fields the MES holds under this key
    refused: tuple[dict[str, Any], str] | None = None  # fields the MES itself refuses, and words of its answer
    bad_credentials: dict[str, Any] = dataclasses.field(default_factory=dict)
    secrets: tuple[str, ...] = ()  # must never reach a log line
    faults: Faults | None = None  # None: not over HTTP (the local MES)


class Clock:
    def __init__(self) -> None:
        self.at = T0

    def __call__(self) -> datetime:
        return self.at


def seed(engine: Engine) -> int:
    """Plant pune-1 with the MES settings, and its exception E-0001 (returns its id)."""
    with Session(engine) as session:
        session.add(Plant(id="pune-1", name="Pune Drives Plant 1", timezone="Asia/Kolkata", mes=SETTINGS))
        exception = PlantException(plant_id="pune-1", code="E-0001", type="breakdown", machine_id="HOB-01",
                                   opened_at=T0)
        session.add(exception)
        session.commit()
        assert exception.id is not None
        return exception.id


def exception_id(engine: Engine) -> int:
    with Session(engine) as session:
        found = session.exec(select(PlantException.id).where(PlantException.code == "E-0001")).one()
        assert found is not None
        return found


def queue(engine: Engine, kind: str, fields: dict[str, Any], key: str, sequence: int = 1,
          due: datetime = T0) -> int:
    """One outbox row as routing/mes.py writes it."""
    with Session(engine) as session:
        row = MesTransaction(plant_id="pune-1", exception_id=exception_id(engine), sequence=sequence,
                             slot=f"{kind}:{sequence}", kind=kind, fields=fields, idempotency_key=key,
                             created_at=T0, next_attempt_at=due)
        session.add(row)
        session.commit()
        assert row.id is not None
        return row.id


def row(engine: Engine, row_id: int) -> MesTransaction:
    with Session(engine) as session:
        found = session.get(MesTransaction, row_id)
        assert found is not None
        return found


def timeline(engine: Engine) -> list[tuple[str, str, dict[str, Any]]]:
    with Session(engine) as session:
        return [(e.kind, e.text, e.data) for e in session.exec(
            select(TimelineEvent).where(TimelineEvent.kind.startswith("mes_")).order_by(TimelineEvent.id))]  # type: ignore[attr-defined]


def outbox(mes: MesUnderTest, adapter: MesAdapter, clock: Clock, outcomes: list[str]) -> MesOutbox:
    """The real outbox, settling into the real timeline, recording each outcome."""
    def settled(session: Session, txn: MesTransaction, outcome: str, detail: str) -> None:
        outcomes.append(outcome)
        mes_rows.record_result(session, txn, outcome, detail, clock())

    return MesOutbox(mes.engine, adapter, now=clock, on_settled=settled)


def transaction(kind: str, key: str, **changes: Any) -> Transaction:
    return Transaction(kind, {**SAMPLES[kind], **changes}, key, plant="pune-1", exception_code="E-0001",
                       plant_settings=SETTINGS, decided_at=T0)


def over_http(mes: MesUnderTest) -> Faults:
    if mes.faults is None:
        pytest.skip(f"{mes.name} is not reached over HTTP")
    return mes.faults


class MesContract:
    """Every test gets a fresh fake MES and store through the `mes` fixture of the joining class."""

    pytestmark = pytest.mark.anyio

    @pytest.fixture
    def anyio_backend(self) -> str:
        return "asyncio"

    async def test_every_kind_is_stored_once_with_its_fields(self, mes: MesUnderTest) -> None:
        adapter = mes.make()
        try:
            for number, kind in enumerate(SAMPLES, 1):
                key = f"pune-1:E-0001:{number}"
                first = await adapter.post(transaction(kind, key))
                again = await adapter.post(transaction(kind, key))
                assert isinstance(first, str) and first, kind
                assert again == first, kind
                assert mes.count(key) == 1, kind
                assert mes.stored(key) == SAMPLES[kind], kind
        finally:
            await adapter.aclose()

    async def test_bad_fields_are_refused_before_the_mes_is_asked(self, mes: MesUnderTest) -> None:
        requests = mes.faults.requests if mes.faults else 0
        adapter = mes.make()
        try:
            with pytest.raises(Rejected, match=r"machine_status: status must be one of down, running \(got 'sideways'\)"):
                await adapter.post(transaction("machine_status", "bad/1", status="sideways"))
            with pytest.raises(Rejected, match="work_order_hold: work_order is missing"):
                await adapter.post(transaction("work_order_hold", "bad/2", work_order=None))
            with pytest.raises(Rejected, match="downtime_reason: up_at .* must not be before down_at"):
                await adapter.post(transaction("downtime_reason", "bad/3", up_at=(T0 - timedelta(1)).isoformat()))
        finally:
            await adapter.aclose()
        assert (mes.faults.requests if mes.faults else 0) == requests
        assert mes.count("bad/1") == mes.count("bad/2") == mes.count("bad/3") == 0

    async def test_a_refused_row_is_permanent_shown_and_holds_back_nothing(self, mes: MesUnderTest) -> None:
        """4xx (here: the adapter's own validation, which every adapter has) is never retried; the
        timeline says why; the exception's next row still goes."""
        refused = queue(mes.engine, "machine_status", {**SAMPLES["machine_status"], "status": "sideways"}, "perm/1", 1)
        later = queue(mes.engine, "work_order_hold", SAMPLES["work_order_hold"], "perm/2", 2)
        clock, outcomes, adapter = Clock(), [], mes.make()
        box = outbox(mes, adapter, clock, outcomes)
        try:
            assert await box.send_due() == 1  # the later row waits behind the pending first one
            assert await box.send_due() == 1
            clock.at += timedelta(hours=1)
            assert await box.send_due() == 0
        finally:
            await adapter.aclose()
        assert outcomes == ["rejected", "sent"]
        first, second = row(mes.engine, refused), row(mes.engine, later)
        assert first.status == "rejected" and first.attempts == 1 and "status must be one of" in (first.error or "")
        assert second.status == "sent" and mes.count("perm/2") == 1 and mes.count("perm/1") == 0
        assert [(kind, data["kind"]) for kind, _text, data in timeline(mes.engine)] == [
            ("mes_rejected", "machine_status"), ("mes_sent", "work_order_hold")]
        assert "status must be one of" in timeline(mes.engine)[0][1]
        assert timeline(mes.engine)[1][2]["reference"] == second.reference

    async def test_the_mes_own_refusal_is_permanent_and_shown(self, mes: MesUnderTest) -> None:
        if mes.refused is None:
            pytest.skip(f"{mes.name} refuses nothing valid")
        changes, words = mes.refused
        txn_id = queue(mes.engine, "machine_status", {**SAMPLES["machine_status"], **changes}, "refused/1")
        clock, outcomes, adapter = Clock(), [], mes.make()
        box = outbox(mes, adapter, clock, outcomes)
        try:
            assert await box.send_due() == 1
            clock.at += timedelta(hours=1)
            assert await box.send_due() == 0
        finally:
            await adapter.aclose()
        settled = row(mes.engine, txn_id)
        assert outcomes == ["rejected"] and settled.status == "rejected" and words in (settled.error or "")
        assert timeline(mes.engine) == [("mes_rejected", settled.error, {"kind": "machine_status",
                                                                         "slot": "machine_status:1"})]
        assert mes.count("refused/1") == 0

    async def test_an_exceptions_rows_go_in_order(self, mes: MesUnderTest) -> None:
        """The machine's `running` never overtakes its `down`: a row waits while an earlier one is pending."""
        first = queue(mes.engine, "machine_status", SAMPLES["machine_status"], "order/1", 1, due=T0 + timedelta(seconds=30))
        queue(mes.engine, "machine_status", {**SAMPLES["machine_status"], "status": "running", "at": UP}, "order/2", 2)
        clock, outcomes, adapter = Clock(), [], mes.make()
        box = outbox(mes, adapter, clock, outcomes)
        try:
            assert await box.send_due() == 0 and mes.count("order/2") == 0
            clock.at += timedelta(seconds=30)
            assert await box.send_due() == 1 and row(mes.engine, first).status == "sent"
            assert await box.send_due() == 1
        finally:
            await adapter.aclose()
        assert outcomes == ["sent", "sent"] and mes.count("order/1") == mes.count("order/2") == 1

    @pytest.mark.parametrize("fault", ["timeout", "502"])
    async def test_answer_lost_after_the_mes_saved_sends_nothing_twice(self, mes: MesUnderTest, fault: str) -> None:
        faults = over_http(mes)
        if fault == "timeout":
            faults.hang_after_save = 1
        else:
            faults.lose_after_save = 1
        txn_id = queue(mes.engine, "work_order_hold", SAMPLES["work_order_hold"], "lost/1")
        clock, outcomes, adapter = Clock(), [], mes.make()
        box = outbox(mes, adapter, clock, outcomes)
        try:
            assert await box.send_due() == 1
            assert outcomes == ["retry"] and faults.saves == 1 and mes.count("lost/1") == 1
            assert row(mes.engine, txn_id).next_attempt_at == T0 + timedelta(seconds=2)
            for _ in range(5):  # on a loaded machine a resend can time out too: it is retried like the first
                clock.at += timedelta(minutes=5)
                assert await box.send_due() == 1
                if outcomes[-1] == "sent":
                    break
        finally:
            await adapter.aclose()
        settled = row(mes.engine, txn_id)
        assert outcomes[0] == "retry" and outcomes[-1] == "sent" and set(outcomes[1:-1]) <= {"retry"}
        assert settled.status == "sent" and settled.attempts == len(outcomes)
        assert mes.count("lost/1") == 1 and settled.reference
        assert timeline(mes.engine) == [("mes_sent", "", {"kind": "work_order_hold", "slot": "work_order_hold:1",
                                                          "reference": settled.reference})]

    async def test_a_worker_killed_after_the_mes_stored_leaves_it_to_the_next_once(self, mes: MesUnderTest) -> None:
        """kill -9 between the send and the settle: the row stays leased; when the lease ends another
        worker sends the same key, and the MES answers with what it stored the first time."""
        txn_id = queue(mes.engine, "work_order_resume", SAMPLES["work_order_resume"], "killed/1")
        clock, outcomes, adapter = Clock(), [], mes.make()
        dying, box = outbox(mes, adapter, clock, []), outbox(mes, adapter, clock, outcomes)
        try:
            [claim] = dying._claim(10)  # the dying worker claims and sends, and never settles
            first = await adapter.post(claim.transaction)
            assert await box.send_due() == 0  # leased: nobody else touches it
            clock.at += dying.lease
            assert await box.send_due() == 1
        finally:
            await adapter.aclose()
        settled = row(mes.engine, txn_id)
        assert outcomes == ["sent"] and settled.reference == first and settled.attempts == 2
        assert mes.count("killed/1") == 1

    async def test_5xx_is_retried_when_the_mes_says_until_it_is_back(self, mes: MesUnderTest) -> None:
        faults = over_http(mes)
        faults.down, faults.retry_after = True, "30"
        txn_id = queue(mes.engine, "downtime_reason", SAMPLES["downtime_reason"], "down/1")
        clock, outcomes, adapter = Clock(), [], mes.make()
        box = outbox(mes, adapter, clock, outcomes)
        try:
            assert await box.send_due() == 1
            waiting = row(mes.engine, txn_id)
            assert waiting.status == "pending" and "HTTP 503" in (waiting.error or "")
            assert waiting.next_attempt_at == T0 + timedelta(seconds=30)
            clock.at += timedelta(seconds=29)
            assert await box.send_due() == 0
            faults.down = False
            clock.at += timedelta(seconds=1)
            assert await box.send_due() == 1
        finally:
            await adapter.aclose()
        assert outcomes == ["retry", "sent"] and row(mes.engine, txn_id).status == "sent"
        assert mes.count("down/1") == 1 and [k for k, _t, _d in timeline(mes.engine)] == ["mes_sent"]

    async def test_wrong_credentials_pause_sending_and_are_shown(self, mes: MesUnderTest) -> None:
        over_http(mes)
        txn_id = queue(mes.engine, "machine_status", SAMPLES["machine_status"], "auth/1")
        clock, outcomes, adapter = Clock(), [], mes.make(**mes.bad_credentials)
        box = outbox(mes, adapter, clock, outcomes)
        try:
            with pytest.raises(AuthFailed):
                await adapter.post(transaction("machine_status", "auth/0"))
            assert await box.send_due() == 1
            assert await box.send_due() == 0  # paused: nothing is tried
        finally:
            await adapter.aclose()
        waiting = row(mes.engine, txn_id)
        assert outcomes == ["auth_failed"] and waiting.status == "pending"
        assert waiting.next_attempt_at == T0 + timedelta(minutes=5)
        assert [k for k, _t, _d in timeline(mes.engine)] == ["mes_auth_failed"]
        assert mes.count("auth/0") == mes.count("auth/1") == 0

    async def test_secrets_never_reach_the_log(self, mes: MesUnderTest, caplog: pytest.LogCaptureFixture) -> None:
        over_http(mes)
        caplog.set_level(logging.DEBUG)
        adapter, refused = mes.make(), mes.make(**mes.bad_credentials)
        try:
            await adapter.post(transaction("machine_status", "log/1"))
            with pytest.raises(AuthFailed) as failed:
                await refused.post(transaction("machine_status", "log/2"))
        finally:
            await adapter.aclose()
            await refused.aclose()
        assert mes.secrets and caplog.records
        shown = caplog.text + str(failed.value) + repr(adapter) + repr(refused)
        for secret in (*mes.secrets, *mes.bad_credentials.values()):
            assert secret not in shown

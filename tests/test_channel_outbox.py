"""The notification outbox and the rate limiter: order per thread, retries, failures, replicas."""

from __future__ import annotations

import asyncio
import random
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from sqlalchemy.engine import Engine
from sqlmodel import Session, select

from bot.channels.base import OutboundMessage, PermanentFailure, RateLimited, TemporaryFailure
from bot.outbox import NotificationOutbox
from bot.ratelimit import Rate, RateLimiter, rate_limited
from models import Notification, Plant, PlantException, TimelineEvent, session_scope

pytestmark = pytest.mark.anyio
T0 = datetime(2026, 11, 25, 9, 0, tzinfo=UTC)



class VirtualTime:
    """A clock that only moves when somebody sleeps: rate limits are checked exactly and instantly."""

    def __init__(self) -> None:
        self.now = 0.0
        self.sleeps: list[float] = []

    def clock(self) -> float:
        return self.now

    async def sleep(self, seconds: float) -> None:
        self.sleeps.append(seconds)
        self.now += seconds
        await asyncio.sleep(0)


# --- the rate limiter ----------------------------------------------------------------------


async def test_a_bucket_spaces_sends_by_its_interval_after_the_burst() -> None:
    time = VirtualTime()
    limiter = RateLimiter(time.clock, time.sleep)
    chat = ("chat", Rate(1, 1.0, burst=2))
    starts = [(await limiter.acquire([chat])).at for _ in range(4)]
    assert starts == pytest.approx([0.0, 0.0, 1.0, 2.0], abs=2 * RateLimiter.TICK)
    assert limiter.floor({"chat": 4}, {"chat": chat[1]}) == 2.0


async def test_a_refund_frees_the_slot_and_a_pause_holds_only_its_bucket() -> None:
    time = VirtualTime()
    limiter = RateLimiter(time.clock, time.sleep)
    bot = ("bot", Rate(10, 1.0))
    first = await limiter.acquire([("chat:1", Rate(1, 1.0)), bot])
    limiter.refund(first)  # the platform answered 429: no message counted
    limiter.pause("chat:1", 5.0)
    # Another chat is not held up by chat 1's pause, and chat 1's wait reserves no bot-wide slot.
    other = await limiter.acquire([("chat:2", Rate(1, 1.0)), bot])
    assert other.at == 0.0
    again = await limiter.acquire([("chat:1", Rate(1, 1.0)), bot])
    assert again.at == pytest.approx(5.0)


async def test_a_pause_ends_with_the_burst_the_bucket_had_before_it() -> None:
    # A 429 counted no message: when the Retry-After is over, a chat that had sent nothing sends its
    # burst back to back; before, the pause used the burst up and the chat went at one a second.
    time = VirtualTime()
    limiter = RateLimiter(time.clock, time.sleep)
    chat, bot = ("chat:1", Rate(1, 1.0, burst=3)), ("bot", Rate(30, 1.0, burst=3))
    limiter.refund(await limiter.acquire([chat, bot]))
    limiter.pause(chat[0], 1.0)
    starts = [(await limiter.acquire([chat, bot])).at for _ in range(4)]
    assert starts == pytest.approx([1.0, 1.0, 1.0, 2.0], abs=2 * RateLimiter.TICK)


async def test_the_platform_wide_bucket_is_shared_in_order() -> None:
    time = VirtualTime()
    limiter = RateLimiter(time.clock, time.sleep)
    bot = ("bot", Rate(2, 1.0))
    starts = await asyncio.gather(*(limiter.acquire([(f"chat:{i}", Rate(1, 1.0)), bot]) for i in range(6)))
    assert sorted(r.at for r in starts) == pytest.approx([0.0, 0.5, 1.0, 1.5, 2.0, 2.5], abs=2 * RateLimiter.TICK)


async def test_a_refused_send_lets_the_next_one_in_the_queue_go_at_once() -> None:
    time = VirtualTime()
    limiter = RateLimiter(time.clock, time.sleep)
    bot = ("bot", Rate(1, 1.0))
    first = await limiter.acquire([("chat:1", Rate(1, 1.0)), bot])
    waiting = asyncio.create_task(limiter.acquire([("chat:2", Rate(1, 1.0)), bot]))
    await asyncio.sleep(0)
    time.now = 0.2
    limiter.refund(first)  # 429: the platform counted nothing, so chat 2 need not wait for 1.0
    assert (await waiting).at == pytest.approx(0.2, abs=2 * RateLimiter.TICK)


# --- the outbox ----------------------------------------------------------------------------


class ScriptedChannel:
    """A channel whose platform fails as scripted: `failures[notification_id]` errors, raised one per attempt."""

    def __init__(self, name: str = "slack", failures: dict[int, list[Exception]] | None = None,
                 fail_rate: tuple[float, float] = (0.0, 0.0), seed: int = 1,
                 log: list[tuple[int, str]] | None = None) -> None:
        self.name = name
        self.failures = failures or {}
        self.fail_rate = fail_rate
        self.random = random.Random(seed)
        self.sent: list[tuple[int, str]] = []
        self.log = log if log is not None else []  # shared by replicas: the order the platform saw
        self.attempts = 0

    def rate_buckets(self, message: OutboundMessage) -> tuple[tuple[str, Rate], ...]:
        return (f"t:{message.address}", Rate(1000, 1.0)), ("t:all", Rate(5000, 1.0))

    async def send(self, message: OutboundMessage) -> str:
        self.attempts += 1
        await asyncio.sleep(0)
        assert message.notification_id is not None
        queued = self.failures.get(message.notification_id)
        if queued:
            raise queued.pop(0)
        roll = self.random.random()
        if roll < self.fail_rate[0]:
            raise rate_limited(0.001)
        if roll < sum(self.fail_rate):
            raise TemporaryFailure("502 from the platform")
        self.sent.append((message.notification_id, message.thread_key or ""))
        self.log.append(self.sent[-1])
        return f"msg-{message.notification_id}"


class Clock:
    def __init__(self) -> None:
        self.at = T0

    def now(self) -> datetime:
        return self.at


def seed(engine: Engine, threads: int, per_thread: int, channel: str = "slack") -> list[int]:
    """`threads` people x `per_thread` messages about one exception, interleaved as a busy plant writes them."""
    with session_scope(engine) as session:
        session.add(Plant(id="p1", name="Plant"))
        session.flush()
        exc = PlantException(plant_id="p1", code="E-0001", type="breakdown", opened_at=T0)
        session.add(exc)
        session.flush()
        rows = []
        for n in range(per_thread):
            for person in range(threads):
                row = Notification(plant_id="p1", dedupe_key=f"k:{person}:{n}", exception_id=exc.id,
                                   person_id=f"p{person}", kind="alert", channel=channel, address=f"U{person}",
                                   text=f"message {n} to p{person}", created_at=T0, next_attempt_at=T0)
                session.add(row)
                rows.append(row)
        session.flush()
        return [row.id for row in rows if row.id is not None]


def rows(engine: Engine) -> list[Notification]:
    with Session(engine) as session:
        return list(session.exec(select(Notification).order_by(Notification.id)))


def in_order(sent: list[tuple[int, str]]) -> bool:
    by_thread: dict[str, list[int]] = {}
    for notification_id, key in sent:
        by_thread.setdefault(key, []).append(notification_id)
    return all(ids == sorted(ids) for ids in by_thread.values())


async def test_faults_are_retried_in_place_and_every_thread_keeps_its_order(engine: Engine) -> None:
    ids = seed(engine, threads=6, per_thread=8)
    channel = ScriptedChannel(fail_rate=(0.33, 0.10))
    outbox = NotificationOutbox(engine, {"slack": channel}, now=Clock().now, backoff_base=0.001)
    assert await outbox.deliver_due() == len(ids)
    assert sorted(i for i, _ in channel.sent) == ids, "each message once"
    assert in_order(channel.sent) and channel.attempts > len(ids)
    assert {r.status for r in rows(engine)} == {"sent"} and all(r.platform_message_id for r in rows(engine))


async def test_a_long_retry_after_holds_the_thread_and_keeps_its_order(engine: Engine) -> None:
    ids = seed(engine, threads=2, per_thread=3)
    blocked = ids[2]  # the second message of person 0
    channel = ScriptedChannel(failures={blocked: [RateLimited(120)]})
    clock = Clock()
    outbox = NotificationOutbox(engine, {"slack": channel}, now=clock.now, max_inline_wait=1.0)
    await outbox.deliver_due()
    sent_first = [i for i, _ in channel.sent]
    assert blocked not in sent_first and ids[4] not in sent_first, "the rest of the thread waits behind it"
    assert {ids[1], ids[3], ids[5]} <= set(sent_first), "other threads go on"
    waiting = next(r for r in rows(engine) if r.id == blocked)
    assert waiting.status == "pending" and waiting.next_attempt_at == T0 + timedelta(seconds=120)
    assert await outbox.deliver_due() == 0, "nothing is due before the Retry-After"
    clock.at = T0 + timedelta(seconds=121)
    await outbox.deliver_due()
    assert sorted(i for i, _ in channel.sent) == ids and in_order(channel.sent)


async def test_the_rest_of_a_rescheduled_thread_goes_with_it_not_after_its_lease(engine: Engine) -> None:
    # The rows leased behind a rescheduled one are due again with it: they used to keep the lease
    # (60 s) and wait it out, long after the Retry-After (5 s) was over.
    ids = seed(engine, threads=1, per_thread=3)
    channel = ScriptedChannel(failures={ids[0]: [RateLimited(5)]})
    clock = Clock()
    outbox = NotificationOutbox(engine, {"slack": channel}, now=clock.now, max_inline_wait=1.0)
    await outbox.deliver_due()
    assert channel.sent == []
    clock.at = T0 + timedelta(seconds=6)
    await outbox.deliver_due()
    assert [i for i, _ in channel.sent] == ids


async def test_a_permanent_failure_is_recorded_on_the_timeline(engine: Engine) -> None:
    ids = seed(engine, threads=1, per_thread=2)
    channel = ScriptedChannel(failures={ids[0]: [PermanentFailure("Telegram: Forbidden: bot was blocked by the user")]})
    outbox = NotificationOutbox(engine, {"slack": channel}, now=Clock().now)
    assert await outbox.deliver_due() == 2
    failed, sent = rows(engine)
    assert (failed.status, sent.status) == ("failed", "sent")
    with Session(engine) as session:
        [event] = session.exec(select(TimelineEvent).where(TimelineEvent.kind == "not_reached")).all()
    assert event.person_id == "p0" and "blocked" in event.text and event.data["notification"] == ids[0]


async def test_a_channel_that_is_not_configured_is_marked_so_and_sends_nothing(engine: Engine) -> None:
    seed(engine, threads=1, per_thread=1, channel="whatsapp")
    console = ScriptedChannel(name="console")
    outbox = NotificationOutbox(engine, {"console": console}, now=Clock().now)
    await outbox.deliver_due()
    await outbox.deliver_due()
    [row] = rows(engine)
    assert (row.status, row.attempts) == ("not_configured", 1) and "whatsapp is not configured" in (row.error or "")
    assert not console.sent, "another channel does not stand in for it"


async def test_replicas_share_the_work_without_sending_anything_twice(engine: Engine) -> None:
    ids = seed(engine, threads=10, per_thread=5)
    platform: list[tuple[int, str]] = []
    channels = [ScriptedChannel(seed=s, fail_rate=(0.2, 0.1), log=platform) for s in (1, 2)]
    replicas = [NotificationOutbox(engine, {"slack": c}, now=Clock().now, backoff_base=0.001) for c in channels]
    for _ in range(10):
        await asyncio.gather(*(r.deliver_due(limit=3) for r in replicas))
    assert sorted(i for i, _ in platform) == ids, "every message once across both replicas"
    assert in_order(platform)
    if engine.dialect.name == "postgresql":
        # Only PostgreSQL's SKIP LOCKED guarantees the split; on SQLite (one process in
        # production) the first writer may legitimately take every row.
        assert channels[0].sent and channels[1].sent, "both replicas took threads"


async def test_the_continuous_worker_delivers_as_soon_as_it_is_woken(engine: Engine) -> None:
    seed(engine, threads=1, per_thread=1)
    channel = ScriptedChannel()
    outbox = NotificationOutbox(engine, {"slack": channel}, now=Clock().now)
    stop = asyncio.Event()
    worker = asyncio.create_task(outbox.run(stop, poll=30))
    try:
        for _ in range(100):
            if channel.sent:
                break
            await asyncio.sleep(0.01)
        assert len(channel.sent) == 1
        assert await outbox.deliver_due() == 0, "passes defer to the running worker"
        with session_scope(engine) as session:
            session.add(Notification(plant_id="p1", dedupe_key="late", person_id="p0", kind="reply", channel="slack",
                                     address="U0", text="late", created_at=T0, next_attempt_at=T0))
        outbox.wake()
        for _ in range(100):
            if len(channel.sent) == 2:
                break
            await asyncio.sleep(0.01)
        assert len(channel.sent) == 2
    finally:
        stop.set()
        await asyncio.wait_for(worker, 5)


def test_scoped_rate_limits_name_what_the_platform_limited() -> None:
    error: Any = rate_limited(2, "all", "WhatsApp 429 (code 130429)")
    assert isinstance(error, RateLimited) and error.retry_after == 2 and error.scope == "all"
    assert "130429" in str(error)


class EditingChannel(ScriptedChannel):
    """One message per chat every 3 s, and status edits recorded as the platform saw them."""

    def __init__(self) -> None:
        super().__init__()
        self.edits: list[tuple[int, str]] = []

    def rate_buckets(self, message: OutboundMessage) -> tuple[tuple[str, Rate], ...]:
        return (f"t:{message.address}", Rate(1, 3.0)), ("t:all", Rate(5000, 1.0))

    async def update_status(self, row: Notification, exception: PlantException) -> None:
        self.edits.append((row.id or 0, exception.status))
        self.log.append((row.id or 0, "edit"))


async def _until(predicate: Any, seconds: float) -> bool:
    for _ in range(int(seconds / 0.01)):
        if predicate():
            return True
        await asyncio.sleep(0.01)
    return bool(predicate())


async def test_a_status_edit_waiting_for_its_chat_holds_up_no_new_message(engine: Engine) -> None:
    [first] = seed(engine, threads=1, per_thread=1)
    with session_scope(engine) as session:
        row = session.get(Notification, first)
        assert row is not None
        row.buttons = ["ack"]
        exception_id = row.exception_id
        session.add(row)
    channel = EditingChannel()
    outbox = NotificationOutbox(engine, {"slack": channel}, now=Clock().now)
    stop = asyncio.Event()
    worker = asyncio.create_task(outbox.run(stop, poll=30))
    try:
        assert await _until(lambda: channel.sent, 2)
        with session_scope(engine) as session:  # the card's exception moved on: its edit needs U0's next slot, 3 s on
            session.add(TimelineEvent(exception_id=exception_id, at=T0, kind="acknowledged", person_id="p0", text="ack"))
        await asyncio.sleep(0.7)  # the status pass has found it and waits for the slot
        with session_scope(engine) as session:
            session.add(Notification(plant_id="p1", dedupe_key="other", person_id="p1", kind="alert", channel="slack",
                                     address="U1", text="to another chat", created_at=T0, next_attempt_at=T0))
        outbox.wake()
        assert await _until(lambda: len(channel.sent) == 2, 1.0), "the new message went out while the edit waited"
        assert channel.edits == []
        assert await _until(lambda: channel.edits, 3.0), "and the edit followed when the chat allowed it"
    finally:
        stop.set()
        await asyncio.wait_for(worker, 5)


async def test_the_opened_event_edits_nothing(engine: Engine) -> None:
    # Every message of an exception is written with its "opened" event or after it: it shows that state already.
    [first] = seed(engine, threads=1, per_thread=1)
    with session_scope(engine) as session:
        row = session.get(Notification, first)
        assert row is not None
        row.buttons = ["ack"]
        session.add(row)
        session.add(TimelineEvent(exception_id=row.exception_id, at=T0, kind="opened", person_id="p0", text="opened"))
    channel = EditingChannel()
    outbox = NotificationOutbox(engine, {"slack": channel}, now=Clock().now)
    outbox._status_mark = 0  # as if the event came after the worker started
    assert await outbox.deliver_due() == 1
    assert channel.sent and channel.edits == []

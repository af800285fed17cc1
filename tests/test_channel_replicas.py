"""Channel state two replicas share through the store: WhatsApp's 24-hour window.

Two `WhatsAppChannel`s on one database stand for the same number served by two replicas: what
one hears (a message, a 131047 refusal) decides what the other sends.
"""

from __future__ import annotations

import asyncio
import time
from datetime import timedelta

from sqlalchemy.engine import Engine

from bot.channels.whatsapp import WhatsAppChannel, window_upsert
from models import session_scope

ADDRESS = "+919800000002"
DAY = 24 * 3600


def replica(engine: Engine) -> WhatsAppChannel:
    return WhatsAppChannel(token="t", phone_number_id="1055", api_url="http://127.0.0.1:9", template="mfgos_update",
                           engine=engine)


def test_a_message_heard_by_one_replica_opens_the_window_on_the_other(engine: Engine) -> None:
    a, b = replica(engine), replica(engine)

    async def scenario() -> None:
        assert not await b.known_closed(ADDRESS), "never heard of: not known closed (the API decides)"
        a.heard_from([ADDRESS], time.time() - DAY - 3600)  # a delivery retried for a day
        await a.save_heard()
        assert await b.known_closed(ADDRESS), "the other replica knows the last message is over a day old"
        a.heard_from([ADDRESS], time.time())
        await a.save_heard()
        assert not await b.known_closed(ADDRESS), "they wrote again: open on every replica"

    asyncio.run(scenario())


def test_a_refusal_on_one_replica_closes_the_window_on_the_other_until_they_write(engine: Engine) -> None:
    a, b = replica(engine), replica(engine)
    window = timedelta(hours=24)

    async def scenario() -> None:
        a.heard_from([ADDRESS], time.time() - DAY - 60)
        await a.save_heard()
        with session_scope(engine) as session:  # what a 131047 refusal records on replica a
            session.execute(window_upsert(engine, "whatsapp", ADDRESS, 0.0, window))
        assert await b.known_closed(ADDRESS)
        b.heard_from([ADDRESS], time.time())
        await b.save_heard()
        assert not await a.known_closed(ADDRESS), "open again on the replica that recorded the refusal"
        # A refusal that races a fresh message (heard by the other replica) does not close the window.
        with session_scope(engine) as session:
            session.execute(window_upsert(engine, "whatsapp", ADDRESS, 0.0, window))
        fresh = replica(engine)
        assert not await fresh.known_closed(ADDRESS)

    asyncio.run(scenario())


def test_an_older_message_never_moves_the_window_back(engine: Engine) -> None:
    a, b = replica(engine), replica(engine)

    async def scenario() -> None:
        now = time.time()
        a.heard_from([ADDRESS], now)
        await a.save_heard()
        b.heard_from([ADDRESS], now - DAY - 60)  # a late redelivery of an old message, on the other replica
        await b.save_heard()
        assert not await replica(engine).known_closed(ADDRESS)

    asyncio.run(scenario())

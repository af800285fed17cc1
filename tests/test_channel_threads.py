"""The area-thread mirror (bot/threads.py) on SQLite and PostgreSQL: rows per event, once, in order."""

from __future__ import annotations

import threading
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy.engine import Engine
from sqlmodel import Session, delete, select

from bot.threads import AreaThreads
from models import Notification, Person, Plant, PlantException, TimelineEvent, session_scope

NOW = datetime.now(UTC)


def seed(engine: Engine) -> dict[str, int]:
    with session_scope(engine) as session:
        session.add(Plant(id="p1", name="Plant"))
        session.flush()
        session.add_all([Person(plant_id="p1", id="tom", name="Tom Fischer"),
                         Person(plant_id="p1", id="sara", name="Sara Khan")])
        gears = PlantException(plant_id="p1", code="E-0001", type="breakdown", area_id="gears", opened_at=NOW)
        assembly = PlantException(plant_id="p1", code="E-0002", type="quality", area_id="assembly", opened_at=NOW)
        session.add_all([gears, assembly])
        session.flush()
        return {"gears": gears.id or 0, "assembly": assembly.id or 0}


def event(engine: Engine, exception_id: int, kind: str, person: str | None = None, text: str = "",
          event_id: int | None = None, **data: Any) -> int:
    with session_scope(engine) as session:
        row = TimelineEvent(id=event_id, exception_id=exception_id, at=datetime.now(UTC), kind=kind, person_id=person, text=text,
                            data=data)
        session.add(row)
        session.flush()
        return row.id or 0


def thread(engine: Engine, address: str = "C0GEARS") -> list[Notification]:
    with Session(engine) as session:
        return list(session.exec(select(Notification).where(Notification.address == address)
                                 .order_by(Notification.id)))  # type: ignore[arg-type]


def test_one_root_then_one_reply_per_shown_event_in_order(engine: Engine) -> None:
    ids = seed(engine)
    event(engine, ids["gears"], "opened", "sara")
    event(engine, ids["gears"], "routed", role="maintenance", people=["tom"])
    event(engine, ids["gears"], "comment", "tom", "looking")  # the thread's own chatter is not echoed
    event(engine, ids["gears"], "acknowledged", "tom")
    event(engine, ids["assembly"], "opened", "sara")  # an area without a channel
    event(engine, ids["gears"], "not_reached", "thread:slack:C0GEARS", "channel_not_found")  # about the thread itself
    event(engine, ids["gears"], "not_reached", "sara", "blocked", channel="telegram")
    event(engine, ids["gears"], "closed")
    mirror = AreaThreads("slack", {"gears": "C0GEARS"}, engine, language="de")
    assert mirror.mirror() == 5
    rows = thread(engine)
    assert [(r.kind, r.text) for r in rows] == [
        ("thread_root", "E-0001"),
        ("thread_reply", "E-0001: Tom Fischer benachrichtigt (Instandhaltung)."),
        ("thread_reply", "E-0001: Tom Fischer hat bestätigt."),
        ("thread_reply", "E-0001: Sara Khan über Telegram nicht erreicht."),
        ("thread_reply", "E-0001 geschlossen."),
    ]
    assert {(r.channel, r.person_id, r.status, r.language) for r in rows} == \
        {("slack", "thread:slack:C0GEARS", "pending", "de")}
    assert mirror.mirror() == 0, "nothing new"


def test_every_other_area_and_a_second_channel_have_threads_of_their_own(engine: Engine) -> None:
    ids = seed(engine)
    event(engine, ids["assembly"], "opened", "sara")
    assert AreaThreads("slack", {"gears": "C0GEARS", "*": "C0PLANT"}, engine).mirror() == 1
    assert AreaThreads("telegram", {"*": "-100555"}, engine).mirror() == 1
    assert [r.channel for r in thread(engine, "C0PLANT")] == ["slack"]
    assert [r.channel for r in thread(engine, "-100555")] == ["telegram"]


def test_replicas_mirroring_at_once_write_each_row_once(engine: Engine) -> None:
    ids = seed(engine)
    for n in range(30):
        event(engine, ids["gears"], "acknowledged" if n % 2 else "proposed", "tom", f"fix {n}")
    replicas = [AreaThreads("slack", {"gears": "C0GEARS"}, engine) for _ in range(3)]
    start = threading.Barrier(len(replicas))

    def run(replica: AreaThreads) -> None:
        start.wait()
        for _ in range(3):
            replica.mirror()

    workers = [threading.Thread(target=run, args=(r,)) for r in replicas]
    for worker in workers:
        worker.start()
    for worker in workers:
        worker.join(30)
    rows = thread(engine)
    assert len(rows) == 31 and len({r.dedupe_key for r in rows}) == 31


def test_an_event_committed_after_a_later_one_is_still_mirrored(engine: Engine) -> None:
    ids = seed(engine)
    late = event(engine, ids["gears"], "acknowledged", "tom")
    event(engine, ids["gears"], "closed")
    with session_scope(engine) as session:  # as if its transaction had not committed yet
        session.exec(delete(TimelineEvent).where(TimelineEvent.id == late))  # type: ignore[call-overload]
    mirror = AreaThreads("slack", {"gears": "C0GEARS"}, engine)
    assert mirror.mirror() == 2  # the root and "closed"
    event(engine, ids["gears"], "acknowledged", "tom", event_id=late)  # ... and now it has
    assert mirror.mirror() == 1
    assert thread(engine)[-1].text == "E-0001: Tom Fischer acknowledged."


def test_a_restart_catches_up_on_the_last_day_only(engine: Engine) -> None:
    ids = seed(engine)
    with session_scope(engine) as session:
        session.add(TimelineEvent(exception_id=ids["gears"], at=NOW - timedelta(days=2), kind="acknowledged",
                                  person_id="tom"))
    event(engine, ids["gears"], "closed")
    assert AreaThreads("slack", {"gears": "C0GEARS"}, engine).mirror() == 2
    assert [r.text for r in thread(engine)] == ["E-0001", "E-0001 closed."]

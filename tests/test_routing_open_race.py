"""Two processes opening the same new breakdown at once open it once (routing.workflow.hold_opening).

With inbound workers (MFGOS_INBOUND_WORKERS > 1) or replicas, two reports of a breakdown nobody
has reported yet can be processed at the same moment, each in its own transaction: both look for
an open exception on the machine, both find none, and without a lock both open one. Here two
workers, each with its own runtime and connections on one PostgreSQL schema, start together on
reports stored in pairs (two people, one machine, one after the other), which is exactly when
each worker holds one report of the pair.
"""

from __future__ import annotations

import threading
from collections import Counter
from collections.abc import Iterator
from pathlib import Path

import pytest
import yaml
from sqlmodel import Session, select

from mfgos.config import Settings
from mfgos.runtime import Runtime
from models import PlantException, Signal
from tests.conftest import postgres_schema_url

PLANT = Path(__file__).parent / "data" / "pune_plant.yaml"
PRESSES = [f"PRS-{n:02d}" for n in range(1, 31)]  # machines nobody has reported yet
REPORTERS = ["meena", "sara", "neha"]  # one person's messages are read one at a time: pairs are of two people


@pytest.fixture
def url() -> Iterator[str]:
    yield from postgres_schema_url()


@pytest.fixture
def plant(tmp_path: Path) -> Path:
    """The Pune plant with thirty presses in the gears area."""
    data = yaml.safe_load(PLANT.read_text(encoding="utf-8"))
    data["machines"] += [{"id": press, "name": f"Transfer press {press[4:]}", "area": "gears"} for press in PRESSES]
    path = tmp_path / "plant.yaml"
    path.write_text(yaml.safe_dump(data, allow_unicode=True), encoding="utf-8")
    return path


def test_simultaneous_reports_of_a_new_breakdown_open_one_exception(url: str, plant: Path) -> None:
    settings = Settings(_env_file=None, database_url=url, plant_file=plant, erp="ledger")  # type: ignore[call-arg]
    workers = [Runtime(settings) for _ in range(2)]
    for runtime in workers:
        runtime.defer_processing = True  # stored only, as the web process of a replica with workers does
        runtime.reader.warm_up()
    for n, press in enumerate(PRESSES):
        for m in range(2):
            who = REPORTERS[(n + m) % len(REPORTERS)]
            workers[0].receive_chat(channel="console", address=who, person_id=who, event_id=f"{press}-{m}",
                                    text=f"{press} breakdown, the ram does not move")
    start = threading.Barrier(len(workers))
    failures: list[BaseException] = []

    def work(runtime: Runtime) -> None:
        """A worker's pass (mfgos/workers.py `work`), from the same moment as the other's."""
        try:
            start.wait(30)
            while runtime.process_waiting() > 0:
                pass
        except BaseException as error:  # noqa: BLE001 - reported by the test below
            failures.append(error)

    threads = [threading.Thread(target=work, args=(runtime,)) for runtime in workers]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(300)
    assert not failures, failures
    with Session(workers[0].engine) as session:
        assert session.exec(select(Signal).where(Signal.processed_at == None)).all() == []  # noqa: E711
        assert [s.error for s in session.exec(select(Signal)) if s.error] == []
        opened = Counter(session.exec(select(PlantException.machine_id).where(PlantException.type == "breakdown")))
    assert set(opened) == set(PRESSES), "every press's breakdown is open"
    assert {press: count for press, count in opened.items() if count > 1} == {}, "no press has two breakdowns"
    for runtime in workers:
        runtime.engine.dispose()

"""Per-message cost of the pipeline behind `Runtime.receive`, by what the message does.

    python bench/bench_pipeline.py [--plant pune|synthetic] [--messages 200] [--database URL] [--profile FILE]

One process, no channels, no network: a `Runtime` (a fresh SQLite file, or a fresh schema of
the PostgreSQL at `--database`) with a simulated clock, on the plant of
tests/data/pune_plant.yaml (11 people) or on the synthetic plant of bench_channels.py's
latency run (8 areas, 40 machines, 175 people). Four kinds of message, timed one at a time around `Runtime.receive_chat` (store the
signal, read it, correlate, route, write the outbox rows, commit):

- open:  a new breakdown report on a machine with no open exception (the exception opens,
         impact analysis runs, the rule's roles are paged);
- join:  the same breakdown reported again (joins the open exception);
- ack:   a paged technician's "on my way" in the exception's thread;
- query: "what is down?".

Between timed messages the setup (closing the exception an `open` made, opening the one an
`ack` answers) runs untimed. The NLP share is reported too (the extractor alone on the same
texts), so pipeline work can be told apart from reading the message. Prints one JSON object.
"""

from __future__ import annotations

import argparse
import asyncio
import cProfile
import json
import statistics
import sys
import tempfile
import time
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from sqlalchemy import text as sa_text  # noqa: E402
from sqlmodel import Session, select  # noqa: E402

from bot.channels.base import CaptureChannel  # noqa: E402
from mfgos.config import Settings  # noqa: E402
from mfgos.runtime import Runtime  # noqa: E402
from models import Person, PlantException, make_engine  # noqa: E402
from routing.clock import SimulatedClock  # noqa: E402

START = datetime.fromisoformat("2026-11-25T09:00:00+05:30")  # a Wednesday, shift a


@dataclass(frozen=True)
class BenchPlant:
    """A plant file and who says what in it."""

    path: Path
    # (reporter, text, machine): breakdowns the extractor reads as a report on that machine;
    # the first one is the exception `join`, `ack` and `query` work on.
    breakdowns: list[tuple[str, str, str]]
    second_reporter: str  # reports the first breakdown again (join)
    technician: str  # paged for the first breakdown (ack)
    manager: str  # asks what is down (query)


def pune_plant() -> BenchPlant:
    return BenchPlant(ROOT / "tests" / "data" / "pune_plant.yaml", [
        ("ravi", "hobber 1 band ho gaya, spindle se awaaz aa rahi hai. wo 1042", "HOB-01"),
        ("ravi", "grinder 2 stopped, breakdown", "GRD-02"),
        ("ravi", "mazak lathe 11 breakdown, spindle alarm", "CNC-11"),
        ("meena", "furnace 1 breakdown, burner not firing", "HT-01"),
        ("meena", "assembly line 1 stopped, conveyor motor broken", "ASM-01"),
        ("meena", "test bench breakdown, no pressure", "TST-01"),
    ], second_reporter="sara", technician="tom", manager="neha")


def synthetic(tmp: Path) -> BenchPlant:
    from bench.bench_channels import synthetic_plant  # the latency run's plant, same shape

    synthetic_plant(tmp / "plant.yaml")
    problems = ("stopped, hydraulic leak", "is down, motor overheated", "stopped, spindle noise", "down, sensor fault",
                "band hai, awaaz aa rahi hai", "parada, fuga de aceite")  # as tests/fakes/load.py sends them
    return BenchPlant(tmp / "plant.yaml", [
        (f"op{a}", f"press {a}{a % 5:02d} {problems[a % len(problems)]}", f"M-{a}{a % 5:02d}") for a in range(6)
    ], second_reporter="op8", technician="tech0_0", manager="sup")


@contextmanager
def database(url: str | None) -> Iterator[str]:
    """A fresh store: a temporary SQLite file, or a new schema on the given PostgreSQL (dropped after)."""
    if url is None:
        with tempfile.TemporaryDirectory() as tmp:
            yield f"sqlite:///{Path(tmp) / 'bench.db'}"
        return
    schema = f"bench_{uuid.uuid4().hex[:12]}"
    admin = make_engine(url)
    with admin.begin() as connection:
        connection.execute(sa_text(f'CREATE SCHEMA "{schema}"'))
    try:
        separator = "&" if "?" in url else "?"
        yield f"{url}{separator}options=-csearch_path%3D{schema}"
    finally:
        with admin.begin() as connection:
            connection.execute(sa_text(f'DROP SCHEMA "{schema}" CASCADE'))
        admin.dispose()


class Bench:
    def __init__(self, url: str, plant: BenchPlant) -> None:
        self.clock = SimulatedClock(START)
        self.plant = plant
        channels = {name: CaptureChannel(name) for name in ("console", "slack", "whatsapp", "telegram")}
        self.runtime = Runtime(Settings(database_url=url, plant_file=plant.path), clock=self.clock, channels=channels)
        self.events = 0

    def send(self, person: str, text: str, exception_ref: str | None = None) -> None:
        self.events += 1
        self.clock.set(START + timedelta(seconds=self.events))
        self.runtime.receive_chat(channel="console", address=person, person_id=person, text=text,
                                  event_id=f"e{self.events}", exception_ref=exception_ref)

    def timed(self, person: str, text: str, exception_ref: str | None = None) -> tuple[float, float]:
        """Wall-clock and this thread's CPU seconds (other jobs on a shared machine inflate only the first)."""
        started, started_cpu = time.perf_counter(), time.thread_time()
        self.send(person, text, exception_ref)
        return time.perf_counter() - started, time.thread_time() - started_cpu

    def open_on(self, machine: str) -> PlantException | None:
        with Session(self.runtime.engine) as session:
            return session.exec(select(PlantException).where(
                PlantException.machine_id == machine, PlantException.status != "closed")).first()

    def close_all(self) -> None:
        """Untimed: make the machines free again, so the next report opens a new exception."""
        with Session(self.runtime.engine) as session:
            for exc in session.exec(select(PlantException).where(PlantException.status != "closed")):
                exc.status = "closed"
                session.add(exc)
            session.commit()

    def open(self, count: int) -> list[tuple[float, float]]:
        times = []
        for k in range(count):
            person, text, machine = self.plant.breakdowns[k % len(self.plant.breakdowns)]
            self.close_all()
            times.append(self.timed(person, text))
            assert self.open_on(machine) is not None, f"{text!r} did not open an exception on {machine}"
        self.close_all()
        return times

    def join(self, count: int) -> list[tuple[float, float]]:
        reporter, text, machine = self.plant.breakdowns[0]
        self.send(reporter, text)
        times = [self.timed((reporter, self.plant.second_reporter)[k % 2], text) for k in range(count)]
        exc = self.open_on(machine)
        assert exc is not None and exc.status == "open"
        self.close_all()
        return times

    def ack(self, count: int) -> list[tuple[float, float]]:
        reporter, text, machine = self.plant.breakdowns[0]
        times = []
        for _ in range(count):
            self.close_all()
            self.send(reporter, text)
            exc = self.open_on(machine)
            assert exc is not None
            times.append(self.timed(self.plant.technician, "on my way", exception_ref=exc.code))
            assert self.open_on(machine).status == "acknowledged"  # type: ignore[union-attr]
        self.close_all()
        return times

    def query(self, count: int) -> list[tuple[float, float]]:
        self.send(*self.plant.breakdowns[0][:2])  # something to list
        times = [self.timed(self.plant.manager, "what is down?") for _ in range(count)]
        self.close_all()
        return times

    def nlp_only(self, count: int) -> list[tuple[float, float]]:
        reader = self.runtime.reader
        texts = [(t, p) for p, t, _ in self.plant.breakdowns] + [
            ("on my way", self.plant.technician), ("what is down?", self.plant.manager)]
        with Session(self.runtime.engine) as session:
            languages = {p.id: p.language for p in session.exec(select(Person))}
        times = []
        for k in range(count):
            text, person = texts[k % len(texts)]
            started, started_cpu = time.perf_counter(), time.thread_time()
            reader.extract(text, language=languages[person])
            times.append((time.perf_counter() - started, time.thread_time() - started_cpu))
        return times


def summary(times: list[tuple[float, float]]) -> dict[str, float]:
    result: dict[str, float] = {"n": len(times)}
    for label, values in (("", [w for w, _ in times]), ("cpu_", [c for _, c in times])):
        ordered = sorted(values)
        p99 = ordered[min(len(ordered) - 1, int(0.99 * len(ordered)))]
        result |= {f"{label}p50_ms": round(statistics.median(ordered) * 1000, 2),
                   f"{label}p99_ms": round(p99 * 1000, 2), f"{label}mean_ms": round(statistics.fmean(ordered) * 1000, 2)}
    return result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--plant", choices=("pune", "synthetic"), default="pune")
    parser.add_argument("--messages", type=int, default=200, help="timed messages per kind")
    parser.add_argument("--database", help="PostgreSQL URL (a fresh schema is made); default a temp SQLite file")
    parser.add_argument("--profile", type=Path, help="write a cProfile of the timed `open` messages here")
    args = parser.parse_args()
    with database(args.database) as url, tempfile.TemporaryDirectory() as tmp:
        bench = Bench(url, pune_plant() if args.plant == "pune" else synthetic(Path(tmp)))
        bench.runtime.reader.warm_up()
        for person, text, _ in bench.plant.breakdowns:  # warm: first queries, caches, pipelines
            bench.send(person, text)
        bench.close_all()
        bench.query(5)
        bench.ack(5)
        kinds: dict[str, Callable[[int], list[tuple[float, float]]]] = {
            "open": bench.open, "join": bench.join, "ack": bench.ack, "query": bench.query,
            "nlp_only": bench.nlp_only,
        }
        result: dict[str, Any] = {"plant": args.plant, "database": bench.runtime.engine.dialect.name,
                                  "messages": args.messages}
        for name, run in kinds.items():
            if name == "open" and args.profile:
                profiler = cProfile.Profile()
                profiler.enable()
                result[name] = summary(run(args.messages))
                profiler.disable()
                profiler.dump_stats(args.profile)
            else:
                result[name] = summary(run(args.messages))
        asyncio.run(bench.runtime.aclose())
    print(json.dumps(result, indent=1))


if __name__ == "__main__":
    main()

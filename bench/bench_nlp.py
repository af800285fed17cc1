"""NLP throughput and latency on one core, for the demo plant and a large synthetic plant.

    python bench/bench_nlp.py [--messages 5000] [--plant nlp/data/plants/demo.yaml]

Prints, per plant: the time to build the extractor (plant load: indexes), messages per
second and p50/p99 latency per message, by the wall clock and by the thread's CPU time
(other processes on a shared machine inflate the first, not the second). The process pins
itself to one CPU where the OS allows it, so these are single-core figures. Results go
into docs/benchmarks.md (NLP section).
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from nlp.evaluate import DATA, load_labelled, master_data_from_plant_file  # noqa: E402
from nlp.extractor import Extractor  # noqa: E402
from nlp.lexicon import load_lexicon  # noqa: E402
from nlp.synthetic import synthetic_master, synthetic_messages  # noqa: E402


def pin_to_one_core() -> str:
    if hasattr(os, "sched_setaffinity"):
        cpu = min(os.sched_getaffinity(0))
        os.sched_setaffinity(0, {cpu})
        return f"pinned to CPU {cpu}"
    return "not pinned (no sched_setaffinity here)"


def run(extractor: Extractor, messages: list[tuple[str, str]], count: int) -> dict[str, float]:
    """Wall-clock and CPU figures: on a shared machine the CPU ones say what one core does."""
    for text, language in messages[:200]:  # warm: spaCy pipelines per language, caches
        extractor.extract(text, language)
    wall, cpu = [], []
    started, started_cpu = time.perf_counter(), time.thread_time()
    for k in range(count):
        text, language = messages[k % len(messages)]
        w0, c0 = time.perf_counter_ns(), time.thread_time_ns()
        extractor.extract(text, language)
        cpu.append(time.thread_time_ns() - c0)
        wall.append(time.perf_counter_ns() - w0)
    elapsed, elapsed_cpu = time.perf_counter() - started, time.thread_time() - started_cpu
    wall.sort()
    cpu.sort()

    def pct(values: list[int], q: float) -> float:
        return values[min(len(values) - 1, int(len(values) * q))] / 1e6

    return {
        "msg_per_s": count / elapsed, "p50_ms": pct(wall, 0.5), "p99_ms": pct(wall, 0.99),
        "cpu_msg_per_s": count / elapsed_cpu, "cpu_p50_ms": pct(cpu, 0.5), "cpu_p99_ms": pct(cpu, 0.99),
        "mean_ms": statistics.fmean(wall) / 1e6,
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--messages", type=int, default=5000, help="messages timed per plant")
    parser.add_argument("--plant", default=str(DATA / "plants" / "demo.yaml"))
    args = parser.parse_args(argv)
    print(pin_to_one_core())

    t0 = time.perf_counter()
    load_lexicon()
    lexicon_s = time.perf_counter() - t0
    demo_master = master_data_from_plant_file(args.plant)
    t0 = time.perf_counter()
    demo = Extractor(demo_master)
    demo_build = time.perf_counter() - t0
    t0 = time.perf_counter()
    demo.extract("warm up", "en")
    first_s = time.perf_counter() - t0
    corpus = [(r["text"], r.get("lang") or "en") for name in ("demo_dev", "demo_test", "examples")
              for r in load_labelled(DATA / "corpus" / f"{name}.jsonl")]

    large_master = synthetic_master()
    t0 = time.perf_counter()
    large = Extractor(large_master)
    large_build = time.perf_counter() - t0
    large_messages = synthetic_messages(large_master, 2000)

    rows = [
        ("demo plant", demo_build, run(demo, corpus, args.messages)),
        (f"synthetic plant ({len(large_master.machines)} machines, {len(large_master.materials)} materials, "
         f"{len(large_master.work_orders)} work orders)", large_build, run(large, large_messages, args.messages)),
    ]
    print(f"lexicon load (once per process): {lexicon_s:.3f} s; first extract (imports spaCy, builds the "
          f"pipeline): {first_s:.3f} s")
    try:
        load = " ".join(f"{x:.2f}" for x in os.getloadavg())
    except OSError:
        load = "unknown"
    print(f"load average before timing: {load}")
    print(f"{'plant':<72} {'load s':>7} | wall: {'msg/s':>6} {'p50 ms':>7} {'p99 ms':>7} | "
          f"cpu: {'msg/s':>6} {'p50 ms':>7} {'p99 ms':>7}")
    for name, build, f in rows:
        print(f"{name:<72} {build:7.3f} |       {f['msg_per_s']:6.0f} {f['p50_ms']:7.3f} {f['p99_ms']:7.3f} | "
              f"     {f['cpu_msg_per_s']:6.0f} {f['cpu_p50_ms']:7.3f} {f['cpu_p99_ms']:7.3f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())

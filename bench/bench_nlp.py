"""NLP throughput and latency on one core, for the demo plant and a large synthetic plant.

    python bench/bench_nlp.py [--messages 5000] [--plant nlp/data/plants/demo.yaml]

Prints, per plant: the time to build the extractor (plant load: indexes), messages per
second and p50/p99 latency per message. The process pins itself to one CPU where the OS
allows it, so the figures are single-core figures. Results go into docs/benchmarks.md.
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
    for text, language in messages[:200]:  # warm: spaCy pipelines per language, caches
        extractor.extract(text, language)
    latencies = []
    started = time.perf_counter()
    for k in range(count):
        text, language = messages[k % len(messages)]
        t0 = time.perf_counter_ns()
        extractor.extract(text, language)
        latencies.append(time.perf_counter_ns() - t0)
    elapsed = time.perf_counter() - started
    latencies.sort()
    return {
        "msg_per_s": count / elapsed,
        "p50_ms": latencies[len(latencies) // 2] / 1e6,
        "p99_ms": latencies[min(len(latencies) - 1, int(len(latencies) * 0.99))] / 1e6,
        "mean_ms": statistics.fmean(latencies) / 1e6,
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
    print(f"{'plant':<80} {'load s':>7} {'msg/s':>8} {'p50 ms':>7} {'p99 ms':>7}")
    for name, build, figures in rows:
        print(f"{name:<80} {build:7.3f} {figures['msg_per_s']:8.0f} {figures['p50_ms']:7.3f} "
              f"{figures['p99_ms']:7.3f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())

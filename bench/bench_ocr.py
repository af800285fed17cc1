"""How well photos of paper are read: OCR accuracy and the NLP fields right, per language.

The pages are the ones the tests render (tests/paper.py): a deviation form, a label and a
handwritten-like note in English, Spanish, German and Hindi in Latin script, each drawn with
`--seeds` different seeds (font, tilt, baseline jitter) and sent as a phone sends it (PNG for
forms and labels, JPEG for notes). For each page:

- character accuracy: 1 - Levenshtein distance / length of the true text;
- word accuracy: the share of the true words found among the words read;
- NLP fields right: the exception type, machine, work order and material the NLP reads from
  the caption and the text read (tests/data/channels_plant.yaml), against what the page says;
- seconds per page (preparing and Tesseract): wall clock, and CPU time (ours and Tesseract's,
  a child process), which other jobs on a shared machine do not inflate.

Columns for the decisions in nlp/ocr.py: `raw` is Tesseract on the photo as sent (no
preprocessing), `global` thresholds the whole page at one gray level (Otsu) instead of taking
the shadow out, `+hin` adds Tesseract's Devanagari model to a Hindi sender's models.

    PYTHONPATH=. python bench/bench_ocr.py [--seeds 3] [--json]
"""

from __future__ import annotations

import argparse
import io
import json
import os
import statistics
import sys
import tempfile
import time
from collections import defaultdict
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from PIL import Image  # noqa: E402
from rapidfuzz.distance import Levenshtein  # noqa: E402

from mfgos.config import Settings  # noqa: E402
from mfgos.runtime import Runtime  # noqa: E402
from nlp import ocr  # noqa: E402
from tests.paper import PAPERS, Paper, render  # noqa: E402

PLANT = Path(__file__).resolve().parents[1] / "tests" / "data" / "channels_plant.yaml"
FIELDS = ("exception_type", "machine", "work_order", "material")


def char_accuracy(read: str, truth: str) -> float:
    return max(0.0, 1 - Levenshtein.distance(read, truth) / len(truth))


def word_accuracy(read: str, truth: str) -> float:
    found = read.split()
    words = truth.split()
    hits = 0
    for word in words:
        if word in found:
            found.remove(word)
            hits += 1
    return hits / len(words)


def global_threshold(data: bytes, models: str) -> str:
    """The page thresholded at one gray level for all of it (Otsu), as nlp/ocr.py does not."""
    from PIL import ImageOps

    image = ImageOps.autocontrast(Image.open(io.BytesIO(data)).convert("L"), cutoff=1)
    scale = min(ocr.MAX_UPSCALE, ocr.MIN_SIDE / max(image.size))
    if scale > 1.1:
        image = image.resize((round(image.width * scale), round(image.height * scale)), Image.Resampling.LANCZOS)
    histogram, total = image.histogram(), image.width * image.height
    weighted = sum(i * c for i, c in enumerate(histogram))
    best, cut, below, below_sum = -1.0, 127, 0, 0.0
    for level, count in enumerate(histogram):
        below += count
        if below in (0, total):
            continue
        below_sum += level * count
        between = below * (total - below) * (below_sum / below - (weighted - below_sum) / (total - below)) ** 2
        if between > best:
            best, cut = between, level
    return ocr.recognise(image.point(lambda v: 255 if v > cut else 0), models).text


def fields_right(reader: Any, paper: Paper, text: str) -> tuple[int, int]:
    """(right, asked) of the NLP fields the page defines."""
    ex = reader.extract("\n".join(p for p in (paper.caption, text) if p), language=paper.language)
    want = {f: getattr(paper, f) for f in FIELDS if getattr(paper, f)}
    return sum(getattr(ex, f) == v for f, v in want.items()), len(want)


def run(seeds: int) -> dict[str, Any]:
    with tempfile.TemporaryDirectory() as tmp:
        runtime = Runtime(Settings(_env_file=None, database_url=f"sqlite:///{tmp}/bench.db",  # type: ignore[call-arg]
                                   plant_file=PLANT, attachments_dir=Path(tmp) / "attachments"))
        reader = runtime.reader
        rows: dict[tuple[str, str], dict[str, list[float]]] = defaultdict(lambda: defaultdict(list))
        for paper in PAPERS:
            for seed in range(seeds):
                data = render(paper, seed, fmt="JPEG" if paper.kind == "note" else "PNG")
                started, cpu = time.perf_counter(), os.times()
                result = ocr.read_bytes(data, [paper.language])
                seconds, after = time.perf_counter() - started, os.times()
                cpu_seconds = sum(after[:4]) - sum(cpu[:4])  # user and system, ours and the children's
                models = ocr.models_for([paper.language])
                raw = ocr.recognise(Image.open(io.BytesIO(data)).convert("L"), models).text
                right, asked = fields_right(reader, paper, result.text)
                for key in ((paper.language, paper.kind), (paper.language, "all")):
                    row = rows[key]
                    row["chars"].append(char_accuracy(result.text, paper.text))
                    row["words"].append(word_accuracy(result.text, paper.text))
                    row["raw"].append(char_accuracy(raw, paper.text))
                    row["global"].append(char_accuracy(global_threshold(data, models), paper.text))
                    row["fields"].append(right / asked)
                    row["seconds"].append(seconds)
                    row["cpu"].append(cpu_seconds)
                    if paper.language == "hi":
                        hin = ocr.read_bytes(data, [paper.language], ocr.OcrLimits(devanagari=True))
                        row["hin"].append(char_accuracy(hin.text, paper.text))
        runtime.engine.dispose()
    return {f"{language}/{kind}": {name: round(statistics.mean(values), 3) for name, values in row.items()}
            for (language, kind), row in sorted(rows.items())}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", type=int, default=3, help="renderings of each page (default 3)")
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()
    result = run(args.seeds)
    if args.json:
        print(json.dumps(result, indent=1))
        return
    print(f"{'language/page':<14} {'chars':>6} {'words':>6} {'fields':>6} {'s/page':>6} {'cpu s':>6} "
          f"{'raw':>6} {'global':>6} {'+hin':>6}")
    for key, row in result.items():
        hin = f"{row['hin']:>6.1%}" if "hin" in row else f"{'':>6}"
        print(f"{key:<14} {row['chars']:>6.1%} {row['words']:>6.1%} {row['fields']:>6.1%} {row['seconds']:>6.2f} "
              f"{row['cpu']:>6.2f} {row['raw']:>6.1%} {row['global']:>6.1%} {hin}")


if __name__ == "__main__":
    main()

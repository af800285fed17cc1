"""Accuracy of the extractor on labelled messages, per field and per language.

    python -m nlp.evaluate [--plant plant.yaml] [--data messages.jsonl] [--errors] [--lexicon-only] [--noisy]

The labelled format is one JSON object per line: text, lang, intent, exception_type,
machine, work_order, material (ids from the plant file, or null).
"""

from __future__ import annotations

import argparse
import json
import sys
from collections import defaultdict
from pathlib import Path
from typing import Any

import yaml

from nlp.extraction import MachineRef, MasterData, MaterialRef, WorkOrderRef

FIELDS = ("intent", "exception_type", "machine", "work_order", "material")
DATA = Path(__file__).parent / "data"
DEFAULT_PLANT = DATA / "plants" / "demo.yaml"
DEFAULT_CORPUS = DATA / "corpus" / "test.jsonl"
CORPUS_PLANTS = {  # labelled split in nlp/data/corpus -> the plant file (nlp/data/plants) its ids refer to
    "examples": "demo", "demo_dev": "demo", "demo_test": "demo", "stamping_dev": "stamping",
    "stamping_test": "stamping", "foundry_test": "foundry", "foundry_probe": "foundry",
    "moulding_probe": "moulding", "moulding_check": "moulding", "bottling_probe": "bottling",
    "bodyshop_probe": "bodyshop", "foodpack_probe": "foodpack",
    "smalltalk_train": "demo", "smalltalk_probe": "demo", "smalltalk2_probe": "demo",
}


def master_data_from_plant_file(path: str | Path) -> MasterData:
    """Master data straight from a plant YAML (sections machines, materials, work_orders, customer_orders)."""
    data = yaml.safe_load(Path(path).read_text(encoding="utf-8")) or {}
    if not isinstance(data, dict):
        raise ValueError(f"{path}: a plant file is a mapping, got {type(data).__name__}")
    return master_data_from_dict(data)


def master_data_from_dict(data: dict[str, Any]) -> MasterData:
    def items(key: str) -> list[dict[str, Any]]:
        return [x for x in data.get(key) or [] if isinstance(x, dict) and "id" in x]

    return MasterData(
        machines=tuple(MachineRef(str(m["id"]), str(m.get("name", m["id"])), m.get("area"),
                                  tuple(str(a) for a in m.get("aliases") or ())) for m in items("machines")),
        materials=tuple(MaterialRef(str(m["id"]), str(m.get("name", m["id"])),
                                    tuple(str(a) for a in m.get("aliases") or ())) for m in items("materials")),
        work_orders=tuple(WorkOrderRef(str(w["id"]), w.get("machine"), w.get("material"), w.get("customer_order"))
                          for w in items("work_orders")),
        customer_orders=tuple(str(c["id"]) for c in items("customer_orders")),
    )


def load_labelled(path: str | Path) -> list[dict[str, Any]]:
    rows = []
    for number, line in enumerate(Path(path).read_text(encoding="utf-8").splitlines(), 1):
        if not line.strip():
            continue
        try:
            row = json.loads(line)
        except json.JSONDecodeError as error:
            raise ValueError(f"{path}:{number}: not JSON ({error.msg})") from error
        if "text" not in row:
            raise ValueError(f"{path}:{number}: no 'text'")
        rows.append(row)
    return rows


def evaluate(extractor: Any, rows: list[dict[str, Any]], hint: bool = True) -> dict[str, Any]:
    """Per-field accuracy overall and per language, plus the misses. With `hint`, the labelled
    language is passed as the sender's language (as the bot does); without, it is guessed."""
    totals: dict[str, list[int]] = defaultdict(lambda: [0, 0])
    by_language: dict[str, dict[str, list[int]]] = defaultdict(lambda: defaultdict(lambda: [0, 0]))
    misses = []
    for row in rows:
        language = row.get("lang")
        got = extractor.extract(row["text"], language if hint else None).to_json()
        for field in FIELDS:
            if field not in row:
                continue
            ok = got.get(field) == row[field]
            for bucket in (totals[field], by_language[language or "?"][field]):
                bucket[0] += ok
                bucket[1] += 1
            if not ok:
                misses.append({"text": row["text"], "field": field, "want": row[field], "got": got.get(field)})
        if "lang" in row:
            ok = got["language"] == language
            totals["language"][0] += ok
            totals["language"][1] += 1
            if not ok:
                misses.append({"text": row["text"], "field": "language", "want": language, "got": got["language"]})
    return {
        "messages": len(rows),
        "fields": {f: c / n for f, (c, n) in totals.items() if n},
        "languages": {lang: {f: c / n for f, (c, n) in fields.items() if n} for lang, fields in by_language.items()},
        "misses": misses,
    }


def _print_report(report: dict[str, Any], show_errors: bool) -> None:
    fields = [f for f in (*FIELDS, "language") if f in report["fields"]]
    print(f"messages: {report['messages']}")
    print(f"{'':10}" + "".join(f"{f:>16}" for f in fields))
    print(f"{'all':10}" + "".join(f"{report['fields'][f]:16.3f}" for f in fields))
    for language in sorted(report["languages"]):
        scores = report["languages"][language]
        print(f"{language:10}" + "".join(f"{scores[f]:16.3f}" if f in scores else f"{'':16}" for f in fields))
    if show_errors:
        for miss in report["misses"]:
            print(f"  {miss['field']:>14}: want {miss['want']!s:<12} got {miss['got']!s:<12} | {miss['text']}")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m nlp.evaluate", description=__doc__.splitlines()[0])
    parser.add_argument("--plant", default=str(DEFAULT_PLANT), help="plant YAML the labels refer to")
    parser.add_argument("--data", default=str(DEFAULT_CORPUS), help="labelled JSON lines")
    parser.add_argument("--errors", action="store_true", help="list every miss")
    parser.add_argument("--json", action="store_true", help="print the report as JSON")
    parser.add_argument("--no-hint", action="store_true", help="do not pass the labelled language as a hint")
    parser.add_argument("--lexicon-only", action="store_true", help="without the trained classifiers")
    parser.add_argument("--noisy", action="store_true", help="read the noisy copy of the messages (nlp/noise.py)")
    args = parser.parse_args(argv)
    from nlp.extractor import Extractor

    try:
        extractor = Extractor(master_data_from_plant_file(args.plant), models=not args.lexicon_only)
        rows = load_labelled(args.data)
        if args.noisy:
            from nlp.noise import noisy_rows

            rows = noisy_rows(rows)
    except (OSError, ValueError, yaml.YAMLError) as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    report = evaluate(extractor, rows, hint=not args.no_hint)
    if args.json:
        print(json.dumps(report, indent=2, ensure_ascii=False))
    else:
        _print_report(report, args.errors)
    return 0


if __name__ == "__main__":
    sys.exit(main())

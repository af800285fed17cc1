"""Train the language identifier: a small naive Bayes over words and letter trigrams.

    python -m nlp.train [--out nlp/data/langid.json]

Training data, all in the repo: the dev splits of the labelled corpus (never the test
splits) and the lexicon's per-language common words. The result is deterministic (same
data, same file) and small enough to ship in the package. Intent and exception type are
not trained: they come from the lexicon (see docs/nlp.md).
"""

from __future__ import annotations

import argparse
import json
import math
import sys
from collections import Counter
from pathlib import Path

from nlp.langid import LANGUAGES, MODEL_FILE, features
from nlp.lexicon import read_lexicon_file
from nlp.text import split

CORPUS = Path(__file__).parent / "data" / "corpus"
TRAINING_SPLITS = ("demo_dev.jsonl", "stamping_dev.jsonl")
MIN_COUNT = 2  # a feature seen once teaches nothing and costs space
SMOOTHING = 0.5


def training_documents() -> list[tuple[str, str]]:
    documents: list[tuple[str, str]] = []
    for name in TRAINING_SPLITS:
        for line in (CORPUS / name).read_text(encoding="utf-8").splitlines():
            if line.strip():
                row = json.loads(line)
                documents.append((row["text"], row["lang"]))
    lexicon = read_lexicon_file()
    for language, words in lexicon["language_words"].items():
        documents.extend((str(word), language) for word in words)
    return documents


def train(documents: list[tuple[str, str]]) -> dict[str, object]:
    counts = {language: Counter() for language in LANGUAGES}
    docs = Counter()
    for text, language in documents:
        if language in counts:
            counts[language].update(features(split(text)))
            docs[language] += 1
    total = Counter()
    for language_counts in counts.values():
        total.update(language_counts)
    kept = sorted(f for f, n in total.items() if n >= MIN_COUNT)
    table: dict[str, list[float]] = {}
    unseen: list[float] = []
    for language in LANGUAGES:
        size = sum(counts[language][f] for f in kept) + SMOOTHING * (len(kept) + 1)
        unseen.append(round(math.log(SMOOTHING / size), 3))
        for feature in kept:
            table.setdefault(feature, []).append(round(math.log((counts[language][feature] + SMOOTHING) / size), 3))
    all_docs = sum(docs.values())
    return {
        "languages": list(LANGUAGES),
        "prior": [round(math.log((docs[lang] + 1) / (all_docs + len(LANGUAGES))), 3) for lang in LANGUAGES],
        "unseen": unseen,
        "features": table,
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m nlp.train", description=__doc__.splitlines()[0])
    parser.add_argument("--out", default=str(MODEL_FILE))
    args = parser.parse_args(argv)
    documents = training_documents()
    model = train(documents)
    Path(args.out).write_text(json.dumps(model, sort_keys=True, separators=(",", ":")) + "\n", encoding="utf-8")
    print(f"trained on {len(documents)} documents, {len(model['features'])} features -> {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())

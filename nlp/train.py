"""Train the shipped models: the language identifier and the intent / exception-type classifiers.

    python -m nlp.train [--langid nlp/data/langid.json] [--classifier nlp/data/classifier.json]

Everything is trained from data in the repo and is deterministic (same data, same files):

- language identifier: a small naive Bayes over words and letter trigrams, from the dev splits of
  the labelled corpus (never the test splits) and the lexicon's per-language common words;
- classifiers (`nlp/model.py`): logistic regression over canonical words, from every labelled
  split of `nlp/data/corpus` (read against its plant, so the plant's names become placeholders)
  and the plant-free training sets of `nlp/data/training`, where the writer put the plant's names in
  [brackets]. The blind probes in `HELD_OUT` are never trained on: their figure stays an honest
  estimate for a plant and writers the models have not seen.
"""

from __future__ import annotations

import argparse
import json
import math
import re
import sys
from collections import Counter
from pathlib import Path

from nlp.evaluate import CORPUS_PLANTS, load_labelled, master_data_from_plant_file
from nlp.extraction import MachineRef, MasterData, MaterialRef, WorkOrderRef
from nlp.extractor import Extractor
from nlp.langid import LANGUAGES, MODEL_FILE, features
from nlp.lexicon import read_lexicon_file
from nlp.model import CUE, train_classifier
from nlp.model import MODEL_FILE as CLASSIFIER_FILE
from nlp.noise import SEED, noisy
from nlp.text import split

DATA = Path(__file__).parent / "data"
CORPUS = DATA / "corpus"
TRAINING = DATA / "training"
TRAINING_SPLITS = ("demo_dev.jsonl", "stamping_dev.jsonl")
HELD_OUT = frozenset({"bodyshop_probe", "foodpack_probe", "smalltalk_probe", "smalltalk2_probe"})
INTENTS = ("report", "update", "ack", "approve", "reject", "query", "other")
TYPES = ("breakdown", "quality", "material", "safety", "tooling", "utility", "staffing", "other")
MIN_COUNT = 2  # a feature seen once teaches nothing and costs space
# Every labelled line is learnt twice: as written and as typed with gloves on (nlp/noise.py), with
# another seed than the evaluation's noisy copies, so those stay unseen.
NOISE_SEED = SEED + 1
SMOOTHING = 0.5
_BRACKETS = re.compile(r"\[([^\]]*)\]")


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


def classifier_samples() -> list[tuple[list[str], str, str | None]]:
    """(features, intent, exception type) for every labelled message the classifiers learn from."""
    samples: list[tuple[list[str], str, str | None]] = []
    readers: dict[str, Extractor] = {}
    for name, plant in sorted(CORPUS_PLANTS.items()):
        if name in HELD_OUT:
            continue
        reader = readers.get(plant) or Extractor(master_data_from_plant_file(DATA / "plants" / f"{plant}.yaml"),
                                                 models=False)
        readers[plant] = reader
        for row in load_labelled(CORPUS / f"{name}.jsonl"):
            for text in (row["text"], noisy(row["text"], NOISE_SEED)):
                samples.append((reader.features(text, row.get("lang")), row["intent"], row["exception_type"]))
    marked = Extractor(MasterData(), models=False)
    for path in sorted(TRAINING.glob("*.jsonl")):
        rows = load_labelled(path)
        marked.refresh(_plant_of_marked_names(rows, marked))
        for row in rows:
            for text in (row["text"], noisy(row["text"], NOISE_SEED)):
                samples.append((marked.features(_BRACKETS.sub(r"\1", text), row.get("lang")), row["intent"],
                                row["exception_type"]))
    return samples


def _plant_of_marked_names(rows: list[dict], reader: Extractor) -> MasterData:
    """A plant made of the names the writers of a plant-free training set put in [brackets]: an
    order or lot when it starts with an order word or is a code, a machine when it has a machine
    kind in it or is a short name with a number ("loom 27", "engel 4"), else a material. Reading the lines against it makes the same placeholders as a
    real plant does."""
    lexicon = reader.lexicon
    order_words = {p[0] for p in (*lexicon.work_order_prefixes, *lexicon.customer_order_prefixes)} | {"#"} \
        | {w[0] for w in lexicon.lot_words}
    machines, materials, orders = {}, {}, {}
    for row in rows:
        for name in _BRACKETS.findall(row["text"]):
            words = lexicon.canon.words(name)
            if not words:
                continue
            if words[0] in order_words or all(any(ch.isdigit() for ch in w) or len(w) <= 2 for w in words):
                orders[name] = WorkOrderRef(name, None, None, None)
            elif any(w in reader.index.kind_words for w in words) or (len(words) <= 3 and words[-1].isdigit()):
                machines[name] = MachineRef(name, name, None, ())
            else:
                materials[name] = MaterialRef(name, name, ())
    return MasterData(machines=tuple(machines.values()), materials=tuple(materials.values()),
                      work_orders=tuple(orders.values()))


def train_classifiers(samples: list[tuple[list[str], str, str | None]]) -> dict[str, object]:
    intent = train_classifier([(f, i) for f, i, _ in samples], INTENTS)
    exception_type = train_classifier([([x for x in f if not x.startswith(CUE)], t) for f, _, t in samples if t],
                                      TYPES)
    return {"intent": intent.to_json(), "exception_type": exception_type.to_json()}


def _write(path: str, model: dict[str, object]) -> None:
    Path(path).write_text(json.dumps(model, sort_keys=True, separators=(",", ":")) + "\n", encoding="utf-8")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m nlp.train", description=__doc__.splitlines()[0])
    parser.add_argument("--langid", default=str(MODEL_FILE), help="where the language identifier goes")
    parser.add_argument("--classifier", default=str(CLASSIFIER_FILE), help="where the classifiers go")
    args = parser.parse_args(argv)
    documents = training_documents()
    langid = train(documents)
    _write(args.langid, langid)
    print(f"language identifier: {len(documents)} documents, {len(langid['features'])} features -> {args.langid}")
    samples = classifier_samples()
    classifiers = train_classifiers(samples)
    _write(args.classifier, classifiers)
    print(f"classifiers: {len(samples)} messages -> {args.classifier}")
    return 0


if __name__ == "__main__":
    sys.exit(main())

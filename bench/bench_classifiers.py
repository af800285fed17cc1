"""Which learner reads intent and exception type best: the shipped hand-written logistic
regression, scikit-learn's, or spaCy's own TextCategorizer, each blended with the lexicon as
the extractor does.

    python bench/bench_classifiers.py [--epochs 10] [--json]

All three learn from the same labelled messages (`nlp.train.classifier_samples`: every fitted
split and the plant-free training sets, as written and as typed with gloves on) and see the same
features (canonical words, pairs, prefixes, machine kinds, lexicon cues). Each is put into the
extractor in place of the shipped classifiers and measured on the blind probes, which no learner
ever sees (`nlp.train.HELD_OUT`), clean and noisy, per field and per language, and by the CPU
time per message. The shipped model is the baseline of the same run: the ratios say what the
others change.

scikit-learn is a benchmark-only dependency (`pip install scikit-learn`); spaCy ships with mfgos.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from collections.abc import Callable, Iterable, Sequence
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from nlp.evaluate import CORPUS_PLANTS, DATA, evaluate, load_labelled, master_data_from_plant_file  # noqa: E402
from nlp.extractor import Extractor  # noqa: E402
from nlp.model import CUE, Models, load_models  # noqa: E402
from nlp.noise import noisy_rows  # noqa: E402
from nlp.train import HELD_OUT, INTENTS, TYPES, classifier_samples  # noqa: E402

FIELDS = ("intent", "exception_type", "machine", "work_order")


class SklearnClassifier:
    """scikit-learn's multinomial logistic regression over the same binary features."""

    def __init__(self, samples: Sequence[tuple[list[str], str]], labels: Sequence[str], c: float) -> None:
        from sklearn.feature_extraction import DictVectorizer
        from sklearn.linear_model import LogisticRegression

        self.labels = tuple(labels)
        self.vectorizer = DictVectorizer()
        x = self.vectorizer.fit_transform([dict.fromkeys(f, 1) for f, _ in samples])
        self.model = LogisticRegression(C=c, max_iter=2000, random_state=7)
        self.model.fit(x, [label for _, label in samples])
        self.order = [list(self.model.classes_).index(label) if label in self.model.classes_ else None
                      for label in self.labels]

    def probabilities(self, features: Iterable[str]) -> dict[str, float]:
        row = self.model.predict_proba(self.vectorizer.transform([dict.fromkeys(features, 1)]))[0]
        return {label: (float(row[k]) if k is not None else 0.0) for label, k in zip(self.labels, self.order,
                                                                                      strict=True)}


class SpacyClassifier:
    """spaCy's TextCategorizer (bag of words, exclusive classes) over the same features, each
    feature one token of a Doc: the same input as the others, so the learner is what differs."""

    def __init__(self, samples: Sequence[tuple[list[str], str]], labels: Sequence[str], epochs: int) -> None:
        import random

        import spacy
        from spacy.training import Example

        spacy.util.fix_random_seed(7)
        self.labels = tuple(labels)
        self.nlp = spacy.blank("xx")
        textcat = self.nlp.add_pipe("textcat", config={"model": {
            "@architectures": "spacy.TextCatBOW.v3", "exclusive_classes": True, "ngram_size": 1,
            "no_output_layer": False, "length": 262144}})
        for label in self.labels:
            textcat.add_label(label)
        examples = [Example.from_dict(self._doc(f), {"cats": {x: float(x == gold) for x in self.labels}})
                    for f, gold in samples]
        optimizer = self.nlp.initialize(lambda: examples)
        shuffle = random.Random(7)
        for _ in range(epochs):
            shuffle.shuffle(examples)
            for start in range(0, len(examples), 32):
                self.nlp.update(examples[start:start + 32], sgd=optimizer, drop=0.0)
        self.textcat = textcat

    def _doc(self, features: Iterable[str]) -> Any:
        from spacy.tokens import Doc

        return Doc(self.nlp.vocab, words=[f.replace(" ", "\u2581") for f in features] or ["\u2581"])

    def probabilities(self, features: Iterable[str]) -> dict[str, float]:
        cats = self.textcat(self._doc(features)).cats
        return {label: float(cats.get(label, 0.0)) for label in self.labels}


def fitted(samples: list[tuple[list[str], str, str | None]],
           make: Callable[[list[tuple[list[str], str]], Sequence[str]], Any]) -> Models:
    intent = make([(f, i) for f, i, _ in samples], INTENTS)
    exception_type = make([([x for x in f if not x.startswith(CUE)], t) for f, _, t in samples if t], TYPES)
    return Models(exception_type, intent)


def probes() -> list[tuple[str, list[dict[str, Any]], Path]]:
    return [(name, load_labelled(DATA / "corpus" / f"{name}.jsonl"),
             DATA / "plants" / f"{CORPUS_PLANTS[name]}.yaml") for name in sorted(HELD_OUT)]


def measure(models: Models) -> dict[str, Any]:
    """Per probe, clean and noisy: fields overall and per language, small talk paging nobody, and
    the CPU time per message of the whole extraction."""
    result: dict[str, Any] = {}
    cpu = 0.0
    count = 0
    for name, rows, plant in probes():
        extractor = Extractor(master_data_from_plant_file(plant), models=models)
        for variant, labelled in (("clean", rows), ("noisy", noisy_rows(rows))):
            started = time.process_time()
            report = evaluate(extractor, labelled)
            cpu += time.process_time() - started
            count += len(labelled)
            result[f"{name} {variant}"] = {
                "fields": {f: round(report["fields"][f], 3) for f in FIELDS if f in report["fields"]},
                "languages": {lang: {f: round(v, 3) for f, v in scores.items() if f in FIELDS}
                              for lang, scores in sorted(report["languages"].items())},
            }
    result["ms_per_message"] = round(1000 * cpu / count, 3)
    result["classifier_ms_per_message"] = round(1000 * classifier_cpu(models), 3)
    return result


def classifier_cpu(models: Models) -> float:
    """CPU seconds per message of the two classifiers alone (features computed beforehand): what
    the learner adds to every message the plant sends."""
    features = []
    for _, rows, plant in probes():
        extractor = Extractor(master_data_from_plant_file(plant), models=False)
        features.extend(extractor.features(row["text"], row.get("lang")) for row in rows)
    started = time.process_time()
    for f in features:
        models.intent.probabilities(f)
        models.exception_type.probabilities([x for x in f if not x.startswith(CUE)])
    return (time.process_time() - started) / len(features)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--epochs", type=int, default=10, help="spaCy training epochs")
    parser.add_argument("--c", type=float, default=4.0, help="scikit-learn's inverse regularisation")
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args(argv)
    started = time.process_time()
    samples = classifier_samples()
    print(f"{len(samples)} training messages read in {time.process_time() - started:.1f} s CPU", file=sys.stderr)
    learners: dict[str, Callable[[], Models]] = {
        "hand-written (shipped)": lambda: load_models(),  # its training: `python -m nlp.train`, minutes
        "scikit-learn": lambda: fitted(samples, lambda s, labels: SklearnClassifier(s, labels, args.c)),
        "spaCy TextCategorizer": lambda: fitted(samples, lambda s, labels: SpacyClassifier(s, labels, args.epochs)),
    }
    results: dict[str, Any] = {}
    for name, build in learners.items():
        started = time.process_time()
        models = build()
        trained = time.process_time() - started
        shipped = name.endswith("(shipped)")
        results[name] = {"train_cpu_s": None if shipped else round(trained, 1), **measure(models)}
        print(f"{name}: {'loaded' if shipped else 'trained'} in {trained:.1f} s CPU", file=sys.stderr)
    if args.json:
        print(json.dumps(results, indent=2))
        return 0
    baseline = results["hand-written (shipped)"]
    for name, figures in results.items():
        training = ("trained by `python -m nlp.train`" if figures["train_cpu_s"] is None
                    else f"training {figures['train_cpu_s']} s CPU")
        print(f"\n## {name}: {figures['ms_per_message']} ms/message "
              f"({figures['ms_per_message'] / baseline['ms_per_message']:.2f} x shipped), classifiers alone "
              f"{figures['classifier_ms_per_message']} ms "
              f"({figures['classifier_ms_per_message'] / baseline['classifier_ms_per_message']:.1f} x), {training}")
        for probe, scores in figures.items():
            if not isinstance(scores, dict):
                continue
            worst = min((v, f"{lang} {f}") for lang, fs in scores["languages"].items() for f, v in fs.items())
            print(f"  {probe:24} " + "  ".join(f"{f} {v:.3f}" for f, v in scores["fields"].items())
                  + f"  | weakest {worst[1]} {worst[0]:.3f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())

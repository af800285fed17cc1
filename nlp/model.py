"""A small trained classifier for exception type and intent, blended with the lexicon's cues.

Why a model beside the lexicon: the lexicon is precise on the words it lists, but on new
writers a cue of one type often beats the right type ("burn marks" on parts read as an
injury, a jammed mould slide read as a machine fault). A bag of canonical words and word
pairs, learned from the whole labelled corpus, knows the company a cue keeps ("marks" next to
"parts" is quality), and gives a reading where no cue fires at all.

The model is multinomial logistic regression over sparse binary features of the canonical
message (after synonyms and typo mending, so "torno", "Drehmaschine" and "lathe" are one
feature, and with the plant's own names replaced by placeholders, so it carries over to
other plants). It is trained by `python -m nlp.train` (deterministic) into
`nlp/data/classifier.json` and costs a few dictionary look-ups per message.
"""

from __future__ import annotations

import json
import math
import random
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from functools import cache
from pathlib import Path

MODEL_FILE = Path(__file__).parent / "data" / "classifier.json"
MACHINE, MATERIAL, ORDER, NUMBER = "_m_", "_t_", "_o_", "_n_"  # placeholders for the plant's names
CUE = "c "  # the prefix of the cue features; only the intent model reads them (the type blend has the cues)
_PREFIX = 5  # a longer word also counts by its first letters: "verbrannt" / "verbrennt"


def message_features(words: Sequence[str], slots: Sequence[str | None], question: bool,
                     kinds: Iterable[str] = (), cues: Iterable[str] = ()) -> list[str]:
    """Binary features of one canonical message: words, word pairs, word beginnings, the kinds
    of the machines it names ("compressor", "utility") and which lexicon cues fired ("c tbreakdown",
    "c iother"; "c -" for none: small talk rarely uses the lexicon's problem words, and that carries
    over to words no training set had). `slots[i]` is the placeholder that stands for word i when
    it is part of a plant name (a machine, a material, an order or lot)."""
    seq = [slot or (NUMBER if w[:1].isdigit() else w) for w, slot in zip(words, slots, strict=True)]
    found: set[str] = {"k " + kind for kind in kinds} | ({CUE + cue for cue in cues} or {CUE + "-"})
    previous = "^"
    for word in seq:
        if word[0] != "_":
            found.add("w " + word)
            if len(word) > _PREFIX + 1:
                found.add("p " + word[:_PREFIX])
        if word != previous:
            found.add(f"b {previous} {word}")
        previous = word
    if seq:
        found.add(f"b {previous} $")
    if question:
        found.add("?")
    return sorted(found)


@dataclass(frozen=True)
class Classifier:
    """Weights per feature and label; `probabilities` is softmax over the summed weights."""

    labels: tuple[str, ...]
    bias: tuple[float, ...]
    weights: dict[str, tuple[float, ...]]

    def probabilities(self, features: Iterable[str]) -> dict[str, float]:
        sums = list(self.bias)
        weights = self.weights
        for feature in features:
            row = weights.get(feature)
            if row is not None:
                for k, w in enumerate(row):
                    sums[k] += w
        top = max(sums)
        exps = [math.exp(s - top) for s in sums]
        total = sum(exps)
        return {label: e / total for label, e in zip(self.labels, exps, strict=True)}

    def to_json(self) -> dict[str, object]:
        return {"labels": list(self.labels), "bias": list(self.bias),
                "weights": {f: list(w) for f, w in sorted(self.weights.items())}}

    @classmethod
    def from_json(cls, data: dict) -> Classifier:
        return cls(tuple(data["labels"]), tuple(data["bias"]),
                   {f: tuple(w) for f, w in data["weights"].items()})


@dataclass(frozen=True)
class Models:
    exception_type: Classifier
    intent: Classifier


@cache
def load_models(path: Path = MODEL_FILE) -> Models | None:
    """The shipped models, read once per process; None when the file is missing (then the lexicon
    decides alone, as before the model existed)."""
    if not path.exists():
        return None
    data = json.loads(path.read_text(encoding="utf-8"))
    return Models(Classifier.from_json(data["exception_type"]), Classifier.from_json(data["intent"]))


def train_classifier(samples: Sequence[tuple[list[str], str]], labels: Sequence[str], epochs: int = 30,
                     rate: float = 0.2, l2: float = 1e-4, min_count: int = 2, seed: int = 7) -> Classifier:
    """Logistic regression by SGD, deterministic for the same samples. Features seen fewer than
    `min_count` times are dropped (they only memorise a sentence); weights are rounded to keep the
    shipped file small and stable across platforms."""
    counts: dict[str, int] = {}
    for features, _ in samples:
        for f in features:
            counts[f] = counts.get(f, 0) + 1
    kept = {f for f, n in counts.items() if n >= min_count}
    index = {label: k for k, label in enumerate(labels)}
    data = [([f for f in features if f in kept], index[label]) for features, label in samples]
    n_labels = len(labels)
    weights: dict[str, list[float]] = {f: [0.0] * n_labels for f in sorted(kept)}
    bias = [0.0] * n_labels
    order = list(range(len(data)))
    shuffle = random.Random(seed)
    for epoch in range(epochs):
        shuffle.shuffle(order)
        step = rate / (1 + epoch * 0.2)
        decay = 1 - step * l2
        for i in order:
            features, gold = data[i]
            sums = list(bias)
            for f in features:
                for k, w in enumerate(weights[f]):
                    sums[k] += w
            top = max(sums)
            exps = [math.exp(s - top) for s in sums]
            total = sum(exps)
            grads = [e / total for e in exps]
            grads[gold] -= 1.0
            for k in range(n_labels):
                bias[k] -= step * grads[k]
            for f in features:
                row = weights[f]
                for k in range(n_labels):
                    row[k] = row[k] * decay - step * grads[k]
    rounded = {f: tuple(round(w, 3) for w in row) for f, row in weights.items()
               if any(abs(w) >= 0.002 for w in row)}
    return Classifier(tuple(labels), tuple(round(b, 3) for b in bias), rounded)

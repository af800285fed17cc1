"""Which of English, Spanish, German or Hindi (Latin script) a message is written in.

Off-the-shelf identifiers do not know Hindi in Latin script and are unreliable on five-word
chat lines, so this is our own: a small naive Bayes over words and letter trigrams trained
from the repo's dev corpus and lexicon (`python -m nlp.train` writes nlp/data/langid.json),
plus the lexicon's common words and the letters only one language uses (ñ ¿ ¡ for
Spanish, ä ö ü ß for German). A weak or tied reading falls back to the sender's language.
"""

from __future__ import annotations

import json
import math
from functools import cache
from pathlib import Path

from nlp.lexicon import Lexicon

LANGUAGES = ("en", "es", "de", "hi")
MODEL_FILE = Path(__file__).parent / "data" / "langid.json"
_SPANISH_MARKS = frozenset("ñ¿¡áéíóú")
_GERMAN_MARKS = frozenset("äöüß")
_HINT_WEIGHT = 1.5  # log-odds: the sender's usual language, when the text is not clear


def features(words: list[str]) -> list[str]:
    """Whole words and letter trigrams of each word with its edges ("^wo", "wo$" for "wo")."""
    out: list[str] = []
    for word in words:
        if not word.isalpha():
            continue
        out.append("w:" + word)
        padded = f"^{word}$"
        out.extend(padded[i : i + 3] for i in range(len(padded) - 2))
    return out


@cache
def load_model(path: Path = MODEL_FILE) -> dict[str, object] | None:
    """The trained tables, or None when the file is missing (the lexicon alone still works)."""
    if not path.exists():
        return None
    return json.loads(path.read_text(encoding="utf-8"))


def detect_language(text: str, words: list[str], lexicon: Lexicon, hint: str | None = None) -> tuple[str, float]:
    """(language, confidence 0..1). `words` are the folded words to judge (plant names left out)."""
    scores = [0.0] * len(LANGUAGES)
    model = load_model()
    found = features(words)
    if model is not None and found:
        table: dict[str, list[float]] = model["features"]  # type: ignore[assignment]
        unseen: list[float] = model["unseen"]  # type: ignore[assignment]
        prior: list[float] = model["prior"]  # type: ignore[assignment]
        totals = list(prior)
        for feature in found:
            row = table.get(feature)
            if row is not None:
                for k in range(len(LANGUAGES)):
                    totals[k] += row[k]
            else:
                for k in range(len(LANGUAGES)):
                    totals[k] += unseen[k]
        scale = 1.0 / max(1.0, len(found) / 6)  # long messages should not drown the other evidence
        scores = [t * scale for t in totals]
    common = lexicon.language_words
    for word in words:
        for language, weight in common.get(word, {}).items():
            scores[LANGUAGES.index(language)] += weight
    lowered = text.lower()
    if any(ch in _SPANISH_MARKS for ch in lowered):
        scores[1] += 3.0
    if any(ch in _GERMAN_MARKS for ch in lowered):
        scores[2] += 3.0
    if hint in LANGUAGES:
        scores[LANGUAGES.index(hint)] += _HINT_WEIGHT
    if not found and not any(ch in _SPANISH_MARKS | _GERMAN_MARKS for ch in lowered):
        return (hint if hint in LANGUAGES else "en"), 0.3
    top = max(scores)
    weights = [math.exp(s - top) for s in scores]
    best = scores.index(top)
    return LANGUAGES[best], round(weights[best] / sum(weights), 2)

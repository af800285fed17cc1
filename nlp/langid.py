"""Which of English, Spanish, German or Hindi (Latin script) a message is written in.

Off-the-shelf identifiers do not know Hindi in Latin script and are unreliable on five-word
chat lines, so this scores the lexicon's common words and cue words per language, plus the
letters only one language uses (ñ ¿ ¡ for Spanish, ä ö ü ß for German). A weak or tied
reading falls back to the sender's language.
"""

from __future__ import annotations

from nlp.lexicon import Lexicon

LANGUAGES = ("en", "es", "de", "hi")
_SPANISH_MARKS = frozenset("ñ¿¡áéíóú")
_GERMAN_MARKS = frozenset("äöüß")


def detect_language(text: str, words: list[str], lexicon: Lexicon, hint: str | None = None) -> tuple[str, float]:
    """(language, confidence 0..1). `words` are the folded raw tokens of `text`."""
    scores = dict.fromkeys(LANGUAGES, 0.0)
    table = lexicon.language_words
    for word in words:
        for language, weight in table.get(word, {}).items():
            scores[language] += weight
    lowered = text.lower()
    if any(ch in _SPANISH_MARKS for ch in lowered):
        scores["es"] += 1.5
    if any(ch in _GERMAN_MARKS for ch in lowered):
        scores["de"] += 1.5
    if hint in scores:
        scores[hint] += 0.4
    ranked = sorted(scores.items(), key=lambda kv: kv[1], reverse=True)
    (best, top), (_, second) = ranked[0], ranked[1]
    if top < 0.5:
        return (hint if hint in scores else "en"), 0.3
    return best, min(1.0, (top - second + 0.5) / (top + 0.5))
